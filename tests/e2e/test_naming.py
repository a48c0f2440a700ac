"""Service names from the name a process was started as: a link to a
multi-call binary (Debian's /usr/bin/redis-server -> redis-check-rdb) names
the process after the link, not after the file it resolves to; a process
that rewrites its title to "<name>: <role>" keeps its executable's name.
A process that is gone before sonde reads its first record is named the
same way, from what the kernel kept of it as it exited."""
import contextlib
import os
import random
import shutil
import signal
import subprocess

import pytest

from conftest import (CLIENT, HISTOGRAM, NGINX_CONF, NGINX_SITE, Server,
                      Sonde, free_port, keepalive_requests, python_server,
                      run_checked, settle)
# The fixture that builds tests/e2e/servers/goapp.go once per module.
from test_go import goapp  # noqa: F401


def services_on(sonde, port):
    """The service names of the server series on port."""
    return {labels["service_name"] for name, labels, _ in sonde.samples()
            if name == HISTOGRAM + "_count"
            and labels["server_port"] == str(port)}


def test_a_link_to_a_binary_names_its_process(sonde, goapp, tmp_path):
    link = tmp_path / "multi-call-svc"
    link.symlink_to(goapp)
    port = free_port()
    server = Server([str(link), "serve", f"127.0.0.1:{port}"], port)
    try:
        assert os.path.basename(os.readlink(f"/proc/{server.proc.pid}/exe")) \
            == "goapp"
        keepalive_requests(port, ["/items/1"] * 4 + ["/fail"] * 2)
        assert sonde.settled_series(port, 6) == {
            ("GET", "200", "/items/{id}"): 4,
            ("GET", "500", "/fail"): 2,
        }
        assert services_on(sonde, port) == {"multi-call-svc"}
    finally:
        server.stop()


def test_a_rewritten_title_keeps_the_executables_name(sonde, tmp_path):
    """nginx started through a link named edge-proxy rewrites its title
    to "nginx: master process ..." and "nginx: worker process": no trace
    of the link is left, and the executable names it."""
    link = tmp_path / "edge-proxy"
    link.symlink_to("/usr/sbin/nginx")
    port = free_port()
    conf = tmp_path / "nginx.conf"
    conf.write_text(NGINX_CONF.format(
        dir=tmp_path,
        servers=NGINX_SITE.format(dir=tmp_path, port=port, listen="")))
    server = Server([str(link), "-c", str(conf), "-p", str(tmp_path)], port)
    try:
        keepalive_requests(port, ["/"] * 3 + ["/fail"] * 2)
        assert sonde.settled_series(port, 5) == {
            ("GET", "200", "/"): 3,
            ("GET", "503", "/fail"): 2,
        }
        assert services_on(sonde, port) == {"nginx"}
    finally:
        server.stop()


@contextlib.contextmanager
def stopped(sonde):
    """sonde frozen for the block: a client run inside has made its calls,
    exited and been reaped, its /proc entry gone, before sonde reads a
    record of it."""
    sonde.proc.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        sonde.proc.send_signal(signal.SIGCONT)


def run_client(argv, executable=None, env=None):
    run = subprocess.run(argv, executable=executable,
                         env=dict(os.environ, **(env or {})),
                         capture_output=True, timeout=30)
    assert run.returncode == 0, run.stderr


def gone_counts(sonde, want):
    """{service: client calls} for want's services, once settled."""
    return {service: settle(sonde, CLIENT + "_count", n,
                            service_name=service)
            for service, n in want.items()}


def test_a_client_gone_before_sonde_reads_it_keeps_its_name(tmp_path):
    """Three curl runs, each over before sonde reads a record: named by
    OTEL_SERVICE_NAME; by a --service rule on the executable's whole path,
    which lies across a mount; by the executable's file name, longer than
    the 15 bytes of the kernel's command name (what named them before)."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    run_checked("mount", "-t", "tmpfs", "sonde-test", str(mnt))
    try:
        tools = mnt / "opt" / "tools"
        tools.mkdir(parents=True)
        walked = tools / "short-lived-client-exe"
        plain = tmp_path / "another-short-lived-exe"
        shutil.copy("/usr/bin/curl", walked)
        shutil.copy("/usr/bin/curl", plain)
        s = Sonde("--service", f"name=walked-path,exe={tools}/*")
        server = python_server(free_port())
        try:
            url = f"http://127.0.0.1:{server.port}/items/1"
            with stopped(s):
                run_client(["curl", "-s", url, url, url],
                           env={"OTEL_SERVICE_NAME": "gone-by-env"})
                # argv[0] "-" is no name: the executable names them.
                run_client(["-", "-s", url, url], executable=walked)
                run_client(["-", "-s", url], executable=plain)
            want = {"gone-by-env": 3, "walked-path": 2,
                    "another-short-lived-exe": 1}
            assert gone_counts(s, want) == want
            assert settle(s, CLIENT + "_count", 6,
                          server_port=server.port) == 6
        finally:
            server.stop()
            assert s.stop() == 0, s.output()
    finally:
        run_checked("umount", str(mnt))


def cgroup2_root():
    with open("/proc/mounts") as f:
        for line in f:
            fields = line.split()
            if fields[2] == "cgroup2":
                return fields[1]
    return None


def test_a_client_gone_before_sonde_reads_it_keeps_its_unit(sonde):
    """A client in the cgroup of a systemd service, over before sonde reads
    a record: the unit in its cgroup path names it."""
    root = cgroup2_root()
    if not root:
        pytest.skip("no cgroup2 hierarchy mounted")
    name = f"sonde-gone-{random.randrange(1 << 30):x}"
    group = os.path.join(root, name + ".service")
    os.mkdir(group)
    server = python_server(free_port())
    try:
        url = f"http://127.0.0.1:{server.port}/items/1"
        with stopped(sonde):
            run_client(["sh", "-c", 'echo $$ > "$0/cgroup.procs" && '
                        'exec curl -s "$1" "$1"', group, url])
        assert gone_counts(sonde, {name: 2}) == {name: 2}
    finally:
        server.stop()
        os.rmdir(group)
