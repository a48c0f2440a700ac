/* cgroup paths from real hosts -> systemd unit, container, pod; and the
 * service identity chain built on them. */
#include <stdlib.h>

#include "identity/cgroup.h"
#include "identity/procinfo.h"
#include "identity/selection.h"
#include "unit.h"

#define ID "3f5c6f8e1c2b4a5d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d"
#define UID "1b2c3d4e-5f60-7182-93a4-b5c6d7e8f901"
#define UID_ "1b2c3d4e_5f60_7182_93a4_b5c6d7e8f901"

static struct cgroup_info parse(const char *text)
{
	struct cgroup_info info;

	CHECK(cgroup_parse_proc(text, strlen(text), &info) == 0);
	return info;
}

TEST(docker_cgroup_v1_cgroupfs)
{
	struct cgroup_info i = parse("12:pids:/docker/" ID "\n"
				     "11:memory:/docker/" ID "\n"
				     "2:cpu,cpuacct:/docker/" ID "\n"
				     "1:name=systemd:/docker/" ID "\n");

	CHECK_STR(i.container_id, ID);
	CHECK_STR(cgroup_runtime_name(i.runtime), "docker");
	CHECK_STR(i.unit, "");
	CHECK_STR(i.pod_uid, "");
}

TEST(docker_cgroup_v2_systemd_driver)
{
	struct cgroup_info i = parse("0::/system.slice/docker-" ID ".scope\n");

	CHECK_STR(i.container_id, ID);
	CHECK_STR(cgroup_runtime_name(i.runtime), "docker");
	CHECK_STR(i.unit, "");
	CHECK_STR(i.path, "/system.slice/docker-" ID ".scope");
}

TEST(containerd_kubernetes_v2_systemd_driver)
{
	struct cgroup_info i =
		parse("0::/kubepods.slice/kubepods-burstable.slice/"
		      "kubepods-burstable-pod" UID_ ".slice/cri-containerd-" ID
		      ".scope\n");

	CHECK_STR(i.container_id, ID);
	CHECK_STR(i.pod_uid, UID);
	CHECK_STR(cgroup_runtime_name(i.runtime), "containerd");
	CHECK_STR(i.unit, "");
}

TEST(containerd_kubernetes_v1_cgroupfs_driver)
{
	struct cgroup_info i =
		parse("11:memory:/kubepods/burstable/pod" UID "/" ID "\n"
		      "1:name=systemd:/kubepods/burstable/pod" UID "/" ID "\n");

	CHECK_STR(i.container_id, ID);
	CHECK_STR(i.pod_uid, UID);
	/* A bare id does not say which runtime made it. */
	CHECK_STR(cgroup_runtime_name(i.runtime), "unknown");
}

TEST(guaranteed_pod_has_no_qos_slice)
{
	struct cgroup_info i = parse("0::/kubepods.slice/kubepods-pod" UID_
				     ".slice/cri-containerd-" ID ".scope\n");

	CHECK_STR(i.pod_uid, UID);
	CHECK_STR(i.container_id, ID);
}

TEST(crio_container_and_its_conmon)
{
	struct cgroup_info i = parse(
		"0::/kubepods.slice/kubepods-besteffort.slice/"
		"kubepods-besteffort-pod" UID_ ".slice/crio-" ID ".scope\n");

	CHECK_STR(i.container_id, ID);
	CHECK_STR(cgroup_runtime_name(i.runtime), "cri-o");
	CHECK_STR(i.pod_uid, UID);
	/* cri-o's monitor sits next to the container: a pod, no container,
	 * and not a service either. */
	i = parse("0::/kubepods.slice/kubepods-besteffort.slice/"
		  "kubepods-besteffort-pod" UID_ ".slice/crio-conmon-" ID
		  ".scope\n");
	CHECK_STR(i.container_id, "");
	CHECK_STR(i.unit, "");
	CHECK_STR(i.pod_uid, UID);
	/* cgroupfs cri-o */
	i = parse("4:memory:/kubepods/besteffort/pod" UID "/crio-" ID "\n");
	CHECK_STR(i.container_id, ID);
	CHECK_STR(cgroup_runtime_name(i.runtime), "cri-o");
}

TEST(podman_rootless)
{
	struct cgroup_info i =
		parse("0::/user.slice/user-1000.slice/user@1000.service/"
		      "user.slice/libpod-" ID ".scope/container\n");

	CHECK_STR(i.container_id, ID);
	CHECK_STR(cgroup_runtime_name(i.runtime), "podman");
	CHECK_STR(i.unit, "");
}

TEST(systemd_units)
{
	struct cgroup_info i = parse("0::/system.slice/nginx.service\n");

	CHECK_STR(i.unit, "nginx.service");
	CHECK_STR(i.container_id, "");
	/* systemd-run --unit=billing */
	i = parse("0::/system.slice/billing.service\n");
	CHECK_STR(i.unit, "billing.service");
	/* systemd-run --scope --unit=billing */
	i = parse("0::/system.slice/billing.scope\n");
	CHECK_STR(i.unit, "billing.scope");
	/* Template instance in its own slice, names escaped with \x2d. */
	i = parse("0::/system.slice/system-openvpn\\x2dclient.slice/"
		  "openvpn\\x2dclient@office.service\n");
	CHECK_STR(i.unit, "openvpn-client@office.service");
	/* A user's own service beats the user manager's unit. */
	i = parse("0::/user.slice/user-1000.slice/user@1000.service/"
		  "app.slice/myapp.service\n");
	CHECK_STR(i.unit, "myapp.service");
	/* Login sessions and the manager itself are not services. */
	i = parse("0::/user.slice/user-1000.slice/session-3.scope\n");
	CHECK_STR(i.unit, "");
	i = parse("0::/user.slice/user-1000.slice/user@1000.service/"
		  "init.scope\n");
	CHECK_STR(i.unit, "");
	i = parse("0::/init.scope\n");
	CHECK_STR(i.unit, "");
	/* A malformed escape is kept as it is. */
	i = parse("0::/system.slice/odd\\x2.service\n");
	CHECK_STR(i.unit, "odd\\x2.service");
}

TEST(systemd_unit_from_cgroup_v1_hierarchy)
{
	struct cgroup_info i =
		parse("12:cpu,cpuacct:/\n"
		      "5:memory:/system.slice\n"
		      "1:name=systemd:/system.slice/billing.service\n"
		      "0::/\n");

	CHECK_STR(i.unit, "billing.service");
	CHECK_STR(i.path, "/system.slice/billing.service");
}

TEST(plain_hosts_and_garbage)
{
	struct cgroup_info i;

	/* A hybrid host where nothing names a unit or container: a 32-hex
	 * name is not a container id. */
	i = parse("9:name=systemd:/\n4:memory:/process_api/"
		  "1878ac2ced998edac2b6b08fe7da46e8\n0::/\n");
	CHECK_STR(i.container_id, "");
	CHECK_STR(i.unit, "");
	CHECK_STR(i.path, "/process_api/1878ac2ced998edac2b6b08fe7da46e8");
	i = parse("0::/\n");
	CHECK_STR(i.path, "/");
	CHECK(cgroup_parse_proc("", 0, &i) == -1);
	CHECK(cgroup_parse_proc("garbage\n", 8, &i) == -1);
	CHECK(cgroup_parse_proc("0::", 3, &i) == -1);
	/* Not NUL-terminated: the parser stays inside len. */
	CHECK(cgroup_parse_proc("0::/a.service", 6, &i) == 0);
	CHECK_STR(i.path, "/a.");
	/* An id one digit short, or upper-case, is not one. */
	i = parse("0::/system.slice/docker-" ID "0.scope\n");
	CHECK_STR(i.container_id, "");
	i = parse("0::/docker/3F5C6F8E1C2B4A5D9E8F7A6B5C4D3E2F1A0B9C8D7E6F5A4B"
		  "3C2D1E0F9A8B7C6D\n");
	CHECK_STR(i.container_id, "");
}

static struct procinfo identify_started(const char *env, size_t envlen,
					const char *cgroup, const char *exe,
					const char *cmdline, size_t cmdlen)
{
	struct procinfo_source src = { .pid = 4242,
				       .exe = exe,
				       .cmdline = cmdline,
				       .cmdline_len = cmdlen,
				       .environ = env,
				       .environ_len = envlen,
				       .comm = "kcomm" };
	struct cgroup_info cg;
	struct procinfo out;

	cgroup_parse_path(cgroup, &cg);
	src.cgroup = &cg;
	procinfo_identify(&src, &out);
	return out;
}

static struct procinfo identify(const char *env, size_t envlen,
				const char *cgroup, const char *exe)
{
	return identify_started(env, envlen, cgroup, exe, NULL, 0);
}

#define ENV(s) s, sizeof(s) - 1

/* A process outside any unit and container: argv and executable only. */
static const char *started_as(const char *cmdline, size_t len, const char *exe)
{
	static struct procinfo p;

	p = identify_started(ENV("PATH=/bin\0"), "/", exe, cmdline, len);
	return p.service;
}

TEST(identity_chain_first_match_wins)
{
	struct procinfo p;
	char err[256];

	p = identify(ENV("OTEL_SERVICE_NAME=checkout\0"),
		     "/system.slice/billing.service", "/usr/bin/python3");
	CHECK_STR(p.service, "checkout");
	p = identify(ENV("OTEL_RESOURCE_ATTRIBUTES=service.name=pay,"
			 "service.namespace=shop\0"),
		     "/system.slice/billing.service", "/usr/bin/python3");
	CHECK_STR(p.service, "pay");
	CHECK_STR(p.namespace, "shop");
	p = identify(ENV("PATH=/bin\0"), "/system.slice/billing.service",
		     "/usr/bin/python3");
	CHECK_STR(p.service, "billing");
	p = identify(ENV("PATH=/bin\0"),
		     "/system.slice/system-openvpn\\x2dclient.slice/"
		     "openvpn\\x2dclient@office.service",
		     "/usr/sbin/openvpn");
	CHECK_STR(p.service, "openvpn-client@office");
	/* Kubernetes: the workload from the pod name, ids kept. */
	p = identify(ENV("KUBERNETES_SERVICE_HOST=10.0.0.1\0"
			 "HOSTNAME=checkout-7d9f8c6b5-x2x9z\0"),
		     "/kubepods.slice/kubepods-burstable.slice/"
		     "kubepods-burstable-pod" UID_ ".slice/cri-containerd-" ID
		     ".scope",
		     "/app/server");
	CHECK_STR(p.service, "checkout");
	CHECK_STR(p.container_id, ID);
	CHECK_STR(p.pod_uid, UID);
	/* A plain container: the executable names it. */
	p = identify(ENV("HOSTNAME=3f5c6f8e1c2b\0"),
		     "/system.slice/docker-" ID ".scope", "/usr/sbin/nginx");
	CHECK_STR(p.service, "nginx");
	CHECK_STR(p.container_id, ID);
	p = identify(ENV(""), "/", "");
	CHECK_STR(p.service, "kcomm");
	/* A config rule comes before everything. */
	{
		char *services[] = { "name=orders,namespace=shop,"
				     "exe=/usr/bin/python3*,cgroup=/system."
				     "slice/*" };

		CHECK(selection_init(NULL, 0, NULL, 0, services, 1, err,
				     sizeof(err)) == 0);
		p = identify(ENV("OTEL_SERVICE_NAME=checkout\0"),
			     "/system.slice/billing.service",
			     "/usr/bin/python3.11");
		CHECK_STR(p.service, "orders");
		CHECK_STR(p.namespace, "shop");
		/* Every matcher must match. */
		p = identify(ENV("OTEL_SERVICE_NAME=checkout\0"),
			     "/user.slice/x.service", "/usr/bin/python3.11");
		CHECK_STR(p.service, "checkout");
		selection_free();
	}
}

TEST(service_is_the_name_the_process_was_started_as)
{
	struct procinfo p;

	/* Debian's /usr/bin/redis-server links to the multi-call
	 * redis-check-rdb: the link names it, by path or found on PATH, and
	 * after redis rewrote its title to "<argv[0]> <address>". */
	CHECK_STR(started_as(ENV("/usr/bin/redis-server\0"
				 "/etc/redis/redis.conf\0"),
			     "/usr/bin/redis-check-rdb"),
		  "redis-server");
	CHECK_STR(started_as(ENV("redis-server\0--port\0"
				 "6380\0"),
			     "/usr/bin/redis-check-rdb"),
		  "redis-server");
	CHECK_STR(started_as(ENV("/usr/bin/redis-server 127.0.0.1:6379\0\0\0"),
			     "/usr/bin/redis-check-rdb"),
		  "redis-server");
	/* busybox's applets, likewise. */
	CHECK_STR(started_as(ENV("httpd\0-f\0"), "/bin/busybox"), "httpd");
	/* Titles rewritten as "<name>: <role>": the executable names them,
	 * whatever link started them. */
	CHECK_STR(started_as(ENV("postgres: 17/main: checkpointer \0\0\0"),
			     "/usr/lib/postgresql/17/bin/postgres"),
		  "postgres");
	CHECK_STR(started_as(ENV("postgres: checkpointer"),
			     "/usr/local/bin/postgres"),
		  "postgres");
	CHECK_STR(started_as(ENV("nginx: worker process\0\0\0"),
			     "/usr/sbin/nginx"),
		  "nginx");
	CHECK_STR(started_as(ENV("nginx: master process /tmp/t/edge-proxy -c "
				 "/tmp/t/nginx.conf\0"),
			     "/usr/sbin/nginx"),
		  "nginx");
	/* A binary started by its own name: unchanged. */
	CHECK_STR(started_as(ENV("/usr/sbin/nginx\0-c\0/etc/nginx.conf\0"),
			     "/usr/sbin/nginx"),
		  "nginx");
	CHECK_STR(started_as(ENV("./server\0"), "/app/server"), "server");
	/* A link to a version of the program keeps the executable's name:
	 * interpreters stay named as they always were. */
	CHECK_STR(started_as(ENV("/usr/bin/python3\0app.py\0"),
			     "/usr/bin/python3.11"),
		  "python3.11");
	CHECK_STR(started_as(ENV("/srv/app/venv/bin/python\0-m\0app\0"),
			     "/usr/bin/python3.11"),
		  "python3.11");
	CHECK_STR(started_as(ENV("ruby\0app.rb\0"), "/usr/bin/ruby3.1"),
		  "ruby3.1");
	CHECK_STR(started_as(ENV("nodejs\0server.js\0"), "/usr/bin/node"),
		  "node");
	CHECK_STR(started_as(ENV("node\0server.js\0"), "/usr/bin/node"),
		  "node");
	/* No plain name in argv[0]: the executable, else the command. */
	CHECK_STR(started_as(ENV("-bash\0"), "/usr/bin/bash"), "bash");
	CHECK_STR(started_as(ENV("(sd-pam)\0"), "/usr/lib/systemd/systemd"),
		  "systemd");
	CHECK_STR(started_as(ENV("/proc/self/exe\0init\0"), "/usr/bin/runc"),
		  "runc");
	CHECK_STR(started_as(ENV(".hidden\0"), "/opt/x/agent"), "agent");
	CHECK_STR(started_as(ENV("/usr/bin/\0"), "/usr/bin/tool"), "tool");
	CHECK_STR(started_as(ENV("caf\xc3\xa9\0"), "/usr/bin/cafe"), "cafe");
	CHECK_STR(started_as(ENV("\0"), "/usr/bin/tool"), "tool");
	CHECK_STR(started_as(NULL, 0, "/usr/bin/tool"), "tool");
	CHECK_STR(started_as(ENV(""), ""), "kcomm");
	/* Not NUL-terminated: the name stays inside len. */
	CHECK_STR(started_as("/usr/bin/redis-server", 14, "/usr/bin/x"),
		  "redis");
	/* The rules before it still come first. */
	p = identify_started(ENV("OTEL_SERVICE_NAME=checkout\0"), "/",
			     "/usr/bin/redis-check-rdb",
			     ENV("/usr/bin/redis-server\0"));
	CHECK_STR(p.service, "checkout");
	p = identify_started(
		ENV("PATH=/bin\0"), "/system.slice/redis-server.service",
		"/usr/bin/redis-check-rdb", ENV("/usr/bin/cache\0"));
	CHECK_STR(p.service, "redis-server");
}

TEST(resource_attributes_are_percent_decoded)
{
	char out[SERVICE_NAME_MAX + 1];
	const char *a = " deployment.environment = prod , service.name = "
			"pay%2Dments%20api ,service.namespace=a%zzb";

	CHECK(procinfo_resource_attribute(a, strlen(a), "service.name", out) ==
	      0);
	CHECK_STR(out, "pay-ments_api");
	CHECK(procinfo_resource_attribute(a, strlen(a), "service.namespace",
					  out) == 0);
	CHECK_STR(out, "a%zzb");
	CHECK(procinfo_resource_attribute(a, strlen(a), "service", out) == -1);
	CHECK(procinfo_resource_attribute("service.name=", 13, "service.name",
					  out) == -1);
	CHECK(procinfo_resource_attribute("service.name", 12, "service.name",
					  out) == -1);
}

TEST(workload_from_pod_name)
{
	char out[SERVICE_NAME_MAX + 1];
	static const char *const cases[][2] = {
		{ "checkout-7d9f8c6b5-x2x9z", "checkout" }, /* Deployment */
		{ "node-exporter-x2x9z", "node-exporter" }, /* DaemonSet */
		{ "postgres-0", "postgres" },		    /* StatefulSet */
		{ "web-api-12", "web-api" },
		{ "standalone", "standalone" },
		{ "my-app-abc", "my-app-abc" }, /* 'a' is never generated */
		{ "-x2x9z", "-x2x9z" },
		{ "", "" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		procinfo_workload_from_pod(cases[i][0], out);
		CHECK_STR(out, cases[i][1]);
	}
}

/* Fills a path's room as the BPF side does: components last first. */
static uint16_t put_parts(char *room, const char *parts, size_t len)
{
	memcpy(room, parts, len);
	return (uint16_t)len;
}

#define PARTS(s) s, sizeof(s) - 1

/* The service the identity chain gives from what id kept. */
static const char *exit_service(const struct sonde_exit_identity *id,
				struct procinfo_source *src)
{
	static struct procinfo out;
	static struct cgroup_info cg;
	static char exe[SONDE_EXIT_PATH + 2];

	procinfo_exit_source(id, exe, sizeof(exe), &cg, src);
	procinfo_identify(src, &out);
	return out.service;
}

TEST(an_exit_identity_reads_as_proc_would)
{
	static struct sonde_exit_identity id;
	struct procinfo_source src = { .pid = 7, .comm = "short-lived-cli" };
	struct cgroup_info cg;
	struct procinfo out;
	char exe[SONDE_EXIT_PATH + 2];
	static const char env[] = "HOME=/root\0OTEL_SERVICE_NAME=gone\0";

	memset(&id, 0, sizeof(id));
	id.exe_len = put_parts(id.exe, PARTS("curl\0bin\0usr\0"));
	id.exe_whole = 1;
	id.cgroup_len =
		put_parts(id.cgroup, PARTS("billing.service\0system.slice\0"));
	id.cgroup_whole = 1;
	id.args_len = put_parts(id.args, PARTS("-\0-s\0"));
	id.env_len = put_parts(id.env, env, sizeof(env) - 1);
	procinfo_exit_source(&id, exe, sizeof(exe), &cg, &src);
	CHECK_STR(src.exe, "/usr/bin/curl");
	CHECK_STR(cg.path, "/system.slice/billing.service");
	CHECK_STR(cg.unit, "billing.service");
	CHECK(src.cmdline == id.args && src.cmdline_len == 5);
	CHECK(src.environ == id.env && src.environ_len == sizeof(env) - 1);
	procinfo_identify(&src, &out);
	CHECK_STR(out.service, "gone");

	/* Without the environment, the unit; without the unit, the
	 * executable (argv[0] "-" names no one). */
	id.env_len = 0;
	CHECK_STR(exit_service(&id, &src), "billing");
	id.cgroup_len = 0;
	CHECK_STR(exit_service(&id, &src), "curl");
	CHECK_STR(src.cgroup->path, "/");

	/* A walk cut short of the root: the components it has, relative. */
	id.exe_whole = 0;
	procinfo_exit_source(&id, exe, sizeof(exe), &cg, &src);
	CHECK_STR(src.exe, "usr/bin/curl");
	/* Nothing walked: no executable, and the comm names it. */
	id.exe_len = 0;
	CHECK_STR(exit_service(&id, &src), "short-lived-cli");
	CHECK_STR(src.exe, "");
}

TEST(an_exit_identity_never_reads_past_its_rooms)
{
	static struct sonde_exit_identity id;
	struct procinfo_source src = { .pid = 7, .comm = "x" };
	struct cgroup_info cg;
	char exe[SONDE_EXIT_PATH + 2], small[8];

	/* Lengths past the rooms, no NUL anywhere: what a wrong or hostile
	 * map value could hold. */
	memset(&id, 'a', sizeof(id));
	id.exe_len = id.cgroup_len = id.args_len = id.env_len = 0xffff;
	id.exe_whole = id.cgroup_whole = 1;
	procinfo_exit_source(&id, exe, sizeof(exe), &cg, &src);
	CHECK(strlen(src.exe) < sizeof(exe));
	CHECK(src.cmdline_len == SONDE_EXIT_ARGS);
	CHECK(src.environ_len == SONDE_EXIT_ENV);
	/* An output too small for the path is cut, still terminated. */
	id.exe_len = put_parts(id.exe, PARTS("curl\0bin\0usr\0"));
	procinfo_exit_source(&id, small, sizeof(small), &cg, &src);
	CHECK_STR(small, "/usr");
}

UNIT_MAIN("cgroup", UNIT_CASE(docker_cgroup_v1_cgroupfs),
	  UNIT_CASE(docker_cgroup_v2_systemd_driver),
	  UNIT_CASE(containerd_kubernetes_v2_systemd_driver),
	  UNIT_CASE(containerd_kubernetes_v1_cgroupfs_driver),
	  UNIT_CASE(guaranteed_pod_has_no_qos_slice),
	  UNIT_CASE(crio_container_and_its_conmon), UNIT_CASE(podman_rootless),
	  UNIT_CASE(systemd_units),
	  UNIT_CASE(systemd_unit_from_cgroup_v1_hierarchy),
	  UNIT_CASE(plain_hosts_and_garbage),
	  UNIT_CASE(identity_chain_first_match_wins),
	  UNIT_CASE(service_is_the_name_the_process_was_started_as),
	  UNIT_CASE(resource_attributes_are_percent_decoded),
	  UNIT_CASE(workload_from_pod_name),
	  UNIT_CASE(an_exit_identity_reads_as_proc_would),
	  UNIT_CASE(an_exit_identity_never_reads_past_its_rooms))
