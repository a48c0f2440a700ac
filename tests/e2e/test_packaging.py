"""Deployment packaging in deploy/: the systemd unit and its defaults file,
the container image recipe, the Kubernetes manifests, and the Makefile's
install/uninstall targets.

This machine runs no Docker engine and no cluster, so the image and the
manifests are checked by parsing them. The unit goes through
`systemd-analyze verify`, which also works when systemd is not PID 1, with
ExecStart pointed at the built ./sonde. Every checker returns a list of
problems. Each check runs on the real files, and again on a broken copy, to
prove it can fail.
"""
import json
import os
import re
import shlex
import subprocess

import pytest
import yaml

from conftest import ROOT, SONDE, not_sanitized

DEPLOY = os.path.join(ROOT, "deploy")
UNIT = os.path.join(DEPLOY, "systemd", "sonde.service")
DEFAULTS = os.path.join(DEPLOY, "systemd", "sonde.default")
DOCKERFILE = os.path.join(DEPLOY, "docker", "Dockerfile")
MANIFEST = os.path.join(DEPLOY, "kubernetes", "daemonset.yaml")

INSTALLED_BINARY = "/usr/local/bin/sonde"
PORT = 9464
# The unit's capabilities. Any other capability, or one of these missing,
# is a change to review, not drift.
UNIT_CAPS = {"CAP_BPF", "CAP_PERFMON", "CAP_SYS_PTRACE", "CAP_DAC_READ_SEARCH",
             "CAP_SYS_ADMIN"}
K8S_CAPS_REQUIRED = {"BPF", "PERFMON", "SYS_PTRACE", "DAC_READ_SEARCH"}
K8S_CAPS_ALLOWED = K8S_CAPS_REQUIRED | {"SYS_ADMIN"}
# Build package -> the runtime package holding its shared library.
RUNTIME_OF_DEV = {
    "libbpf-dev": "libbpf1",
    "libelf-dev": "libelf1",
    "zlib1g-dev": "zlib1g",
    "libmicrohttpd-dev": "libmicrohttpd12",
    "libcrypt-dev": "libcrypt1",
}
# What debian:bookworm-slim always has, so the image need not install it.
BASE_IMAGE_PACKAGES = {"libc6"}
BUILD_ONLY = re.compile(
    r"(-dev|-dbg)$|^(gcc|g\+\+|cpp|clang|llvm|make|bpftool|pkg-config|"
    r"build-essential|binutils)(-\d+)?$")


def read(path):
    with open(path) as f:
        return f.read()


def require_sonde():
    assert os.access(SONDE, os.X_OK), (
        f"{SONDE} is missing or not executable: build it first with `make` "
        "(make test does)")


def logical_lines(text, comment_prefixes):
    """Non-empty lines with comment lines dropped and backslash
    continuations joined, as both systemd and Docker read their files."""
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith(comment_prefixes):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = (pending + line).strip(), ""
        if line:
            yield line


# --- systemd -----------------------------------------------------------------

def parse_unit(text):
    """{section: {key: [value, ...]}} in file order, as systemd reads a unit:
    comment lines (# or ;) skipped, backslash continuations joined."""
    sections, current = {}, None
    for line in logical_lines(text, ("#", ";")):
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None and "=" in line, f"bad unit line: {line!r}"
        key, value = line.split("=", 1)
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def last(section, key):
    values = section.get(key)
    return values[-1] if values else None


def list_setting(values):
    """Effective value of a list setting (CapabilityBoundingSet=, ...):
    assignments add up and an empty one resets. Returns (inverted, set)."""
    inverted, items = False, set()
    for value in values or []:
        if not value:
            inverted, items = False, set()
            continue
        if value.startswith("~"):
            inverted, value = True, value[1:]
        items |= set(value.split())
    return inverted, items


def is_yes(value):
    return value is not None and value.lower() in ("yes", "true", "on", "1")


def unit_problems(text):
    """Hardening and shape of the unit, as a list of problems."""
    unit = parse_unit(text)
    problems = []
    u, s, i = (unit.get(n, {}) for n in ("Unit", "Service", "Install"))
    if not s:
        return ["no [Service] section"]

    for key in ("Description", "Documentation"):
        if not last(u, key):
            problems.append(f"[Unit] has no {key}=")
    expect = {
        "Type": "simple",
        "User": "root",
        "Restart": "on-failure",
        "ProtectSystem": "strict",
        "SystemCallArchitectures": "native",
        "LimitMEMLOCK": "infinity",
    }
    for key, want in expect.items():
        if last(s, key) != want:
            problems.append(f"{key}={last(s, key)}, expected {want}")
    if last(s, "ProtectHome") not in ("read-only", "yes", "tmpfs"):
        problems.append(f"ProtectHome={last(s, 'ProtectHome')}")
    for key in ("NoNewPrivileges", "PrivateTmp", "PrivateDevices",
                "ProtectControlGroups", "ProtectKernelModules",
                "ProtectKernelTunables", "ProtectKernelLogs", "ProtectClock",
                "ProtectHostname", "RestrictNamespaces", "RestrictRealtime",
                "RestrictSUIDSGID", "LockPersonality",
                "MemoryDenyWriteExecute"):
        if not is_yes(last(s, key)):
            problems.append(f"{key}={last(s, key)}, expected yes")
    memory = last(s, "MemoryMax")
    if not memory or memory == "infinity":
        problems.append(f"MemoryMax={memory}: no memory limit")

    exec_start = shlex.split(last(s, "ExecStart") or "")
    if exec_start[:1] != [INSTALLED_BINARY] or "$SONDE_ARGS" not in exec_start:
        problems.append(f"ExecStart={exec_start}: expected "
                        f"{INSTALLED_BINARY} $SONDE_ARGS")
    if "-/etc/default/sonde" not in s.get("EnvironmentFile", []):
        problems.append("no EnvironmentFile=-/etc/default/sonde")

    for key in ("CapabilityBoundingSet", "AmbientCapabilities"):
        inverted, caps = list_setting(s.get(key))
        if inverted or caps != UNIT_CAPS:
            problems.append(f"{key}={'~' if inverted else ''}{sorted(caps)}, "
                            f"expected exactly {sorted(UNIT_CAPS)}")
    inverted, families = list_setting(s.get("RestrictAddressFamilies"))
    allowed = {"AF_INET", "AF_INET6", "AF_UNIX", "AF_NETLINK"}
    if inverted or not {"AF_INET", "AF_INET6"} <= families <= allowed:
        problems.append(f"RestrictAddressFamilies={sorted(families)}")

    # These would hide the processes sonde traces, or its capabilities.
    if last(s, "ProtectProc") in ("invisible", "noaccess", "ptraceable"):
        problems.append(f"ProtectProc={last(s, 'ProtectProc')} hides processes")
    if last(s, "ProcSubset") == "pid":
        problems.append("ProcSubset=pid")
    for key in ("PrivateUsers", "PrivateNetwork", "DynamicUser"):
        if is_yes(last(s, key)):
            problems.append(f"{key}=yes breaks sonde")

    if "multi-user.target" not in " ".join(i.get("WantedBy", [])).split():
        problems.append("[Install] is not WantedBy=multi-user.target")
    return problems


_verify_options = None


def verify_options():
    """--recursive-errors=one (systemd 250+) checks this unit alone and
    turns its parse warnings into a failing exit status. Hosts' own broken
    units then do not count."""
    global _verify_options
    if _verify_options is None:
        help_text = subprocess.run(
            ["systemd-analyze", "--help"], capture_output=True, text=True,
            timeout=30).stdout
        _verify_options = ["--man=no"]
        if "--recursive-errors" in help_text:
            _verify_options.append("--recursive-errors=one")
    return _verify_options


def verify_unit(text, directory, binary=None):
    """Runs `systemd-analyze verify` on text as <directory>/sonde.service,
    with ExecStart's binary replaced by binary (default: the built ./sonde).
    Returns (exit status, output lines that mention the unit)."""
    binary = binary or SONDE
    if re.search(r"\s", binary):
        binary = f'"{binary}"'
    text, n = re.subn(r"^(ExecStart=[-@:+!]*)" + re.escape(INSTALLED_BINARY),
                      lambda m: m.group(1) + binary, text, flags=re.M)
    assert n == 1, f"expected one ExecStart={INSTALLED_BINARY} line, found {n}"
    path = os.path.join(directory, "sonde.service")
    with open(path, "w") as f:
        f.write(text)
    # Without systemd as PID 1, verify loads units from disk by itself and
    # needs no bus. It logs to the journal if JOURNAL_STREAM says stderr is
    # one, and drops warnings below an inherited SYSTEMD_LOG_LEVEL. So start
    # from a clean environment.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SYSTEMD_")
           and k not in ("JOURNAL_STREAM", "NOTIFY_SOCKET", "INVOCATION_ID")}
    env.update(SYSTEMD_LOG_LEVEL="info", SYSTEMD_LOG_TARGET="console",
               SYSTEMD_LOG_COLOR="0", SYSTEMD_PAGER="")
    result = subprocess.run(
        ["systemd-analyze", "verify", *verify_options(), path],
        capture_output=True, text=True, env=env, timeout=120)
    mentions = [line for line in (result.stderr + result.stdout).splitlines()
                if "sonde.service" in line or directory in line]
    return result.returncode, mentions


def test_systemd_analyze_verifies_unit(tmp_path):
    require_sonde()
    code, mentions = verify_unit(read(UNIT), str(tmp_path))
    # Any line naming the unit is a warning about it: an unknown key, a value
    # that failed to parse, a binary that is not executable.
    assert code == 0 and not mentions, (
        f"systemd-analyze verify exited {code}:\n" + "\n".join(mentions))


@pytest.mark.parametrize("breakage,edit", [
    ("unknown key", lambda t: t.replace("[Service]\n", "[Service]\nNoSuchKey=1\n")),
    ("bad value", lambda t: t.replace("ProtectSystem=strict", "ProtectSystem=bogus")),
    ("typo in a section", lambda t: t.replace("[Install]", "[Instal]")),
])
def test_systemd_analyze_catches_broken_unit(tmp_path, breakage, edit):
    require_sonde()
    broken = edit(read(UNIT))
    assert broken != read(UNIT)
    code, mentions = verify_unit(broken, str(tmp_path))
    assert code != 0 or mentions, f"{breakage} went unnoticed"


def test_systemd_analyze_catches_missing_binary(tmp_path):
    code, mentions = verify_unit(read(UNIT), str(tmp_path),
                                 binary=str(tmp_path / "no-such-sonde"))
    assert code != 0
    assert any("is not executable" in line for line in mentions), mentions


def test_unit_is_hardened():
    problems = unit_problems(read(UNIT))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("breakage,edit", [
    ("no NoNewPrivileges", lambda t: t.replace("NoNewPrivileges=yes\n", "")),
    ("an extra capability", lambda t: t.replace(
        "CapabilityBoundingSet=CAP_BPF", "CapabilityBoundingSet=CAP_NET_ADMIN CAP_BPF")),
    ("a capability missing", lambda t: t.replace(
        "AmbientCapabilities=CAP_BPF ", "AmbientCapabilities=")),
    ("a later line switching a protection off", lambda t: t.replace(
        "[Install]", "MemoryDenyWriteExecute=no\n\n[Install]")),
    ("ProtectSystem=full", lambda t: t.replace("ProtectSystem=strict", "ProtectSystem=full")),
    ("processes hidden", lambda t: t.replace("[Install]", "ProtectProc=invisible\n[Install]")),
    ("another binary", lambda t: t.replace(
        "ExecStart=/usr/local/bin/sonde", "ExecStart=/usr/bin/sonde")),
    ("not installable", lambda t: t.replace("WantedBy=multi-user.target", "")),
])
def test_unit_check_catches_weakened_unit(breakage, edit):
    broken = edit(read(UNIT))
    assert broken != read(UNIT)
    assert unit_problems(broken), f"{breakage} went unnoticed"


def defaults_args(text):
    """SONDE_ARGS from an EnvironmentFile, split as systemd splits
    $SONDE_ARGS on ExecStart."""
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("SONDE_ARGS="):
            value = shlex.split(line.split("=", 1)[1])
            return value[0].split() if value else []
    return None


def test_defaults_file_listens_on_loopback():
    args = defaults_args(read(DEFAULTS))
    assert args == ["--listen", f"127.0.0.1:{PORT}"], args
    assert defaults_args("# SONDE_ARGS=x\n") is None


# --- Dockerfile --------------------------------------------------------------

def dockerfile_stages(text):
    """[{"from": [...], "name": str|None, "steps": [(INSTRUCTION, args)]}]
    with comments dropped and continuations joined, as Docker reads it."""
    stages = []
    for line in logical_lines(text, ("#",)):
        instruction, _, args = line.partition(" ")
        instruction, args = instruction.upper(), args.strip()
        if instruction == "FROM":
            words = args.split()
            name = words[2] if len(words) == 3 and words[1].lower() == "as" else None
            stages.append({"from": words[0], "name": name, "steps": []})
        else:
            assert stages, f"{instruction} before FROM"
            stages[-1]["steps"].append((instruction, args))
    return stages


def apt_packages(stage):
    """Packages named on `apt-get install` lines of a stage."""
    packages = set()
    for instruction, args in stage["steps"]:
        if instruction != "RUN":
            continue
        for command in re.split(r"&&|;|\|\|", args):
            words = shlex.split(command)
            for j, word in enumerate(words):
                if word in ("apt-get", "apt") and "install" in words[j:]:
                    rest = words[words.index("install", j) + 1:]
                    packages |= {w for w in rest if not w.startswith("-")}
    return packages


def exec_form(stage, instruction):
    args = [a for i, a in stage["steps"] if i == instruction]
    return json.loads(args[-1]) if args else None


def needed_packages(binary):
    """Debian packages holding the shared libraries binary is linked to."""
    dynamic = subprocess.run(["readelf", "-d", binary], capture_output=True,
                             text=True, check=True).stdout
    sonames = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dynamic)
    assert sonames, f"readelf found no shared libraries in {binary}"
    cache = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True,
                           check=True).stdout
    packages = {}
    for soname in sonames:
        paths = re.findall(r"^\s*" + re.escape(soname) + r" \(([^)]*)\) => (\S+)",
                           cache, flags=re.M)
        paths = [p for flags, p in paths if "x86-64" in flags] or [p for _, p in paths]
        assert paths, f"{soname} is not in the linker cache"
        candidates = []
        for p in paths:
            candidates += [p, os.path.realpath(p)]
            candidates += [p[4:] if p.startswith("/usr/") else "/usr" + p]
        for candidate in candidates:
            owner = subprocess.run(["dpkg", "-S", candidate], capture_output=True,
                                   text=True)
            if owner.returncode == 0:
                packages[soname] = owner.stdout.split(":")[0]
                break
        else:
            raise AssertionError(f"no Debian package owns {soname} ({paths})")
    return packages


def makefile_packages():
    """The Makefile's DEBIAN_PACKAGES, continuation lines joined, less its
    TEST_ONLY_PACKAGES (the tests' own: not for the build stage)."""
    text = read(os.path.join(ROOT, "Makefile")).replace("\\\n", " ")
    m = re.search(r"^DEBIAN_PACKAGES\s*:?=(.*)$", text, flags=re.M)
    assert m, "Makefile has no DEBIAN_PACKAGES: update this test"
    t = re.search(r"^TEST_ONLY_PACKAGES\s*:?=(.*)$", text, flags=re.M)
    test_only = set(t.group(1).split()) if t else set()
    return set(m.group(1).split()) - test_only - {"$(TEST_ONLY_PACKAGES)"}


def dockerfile_problems(text, needed=None, makefile=None):
    """Shape of the image recipe. needed: {soname: package} the binary links
    to; makefile: the Makefile's package list."""
    stages = dockerfile_stages(text)
    if len(stages) < 2:
        return [f"{len(stages)} stage(s): expected a build and a runtime stage"]
    problems = []
    build = next((s for s in stages if s["name"] == "build"), None)
    final = stages[-1]
    if build is None or build is final:
        return ["no stage named build before the runtime stage"]
    for stage in (build, final):
        if stage["from"] != "debian:bookworm-slim":
            problems.append(f"stage from {stage['from']}, expected debian:bookworm-slim")

    build_pkgs, final_pkgs = apt_packages(build), apt_packages(final)
    build_runs = " ".join(a for i, a in build["steps"] if i == "RUN")
    if not re.search(r"\bmake\b(?!\s+deps)", build_runs) or "make deps" in build_runs:
        problems.append("the build stage does not run `make` (and must not run make deps)")
    if not any(i in ("COPY", "ADD") and a.split()[0] == "." for i, a in build["steps"]):
        problems.append("the build stage does not COPY the context")
    for dev in sorted(RUNTIME_OF_DEV):
        if dev not in build_pkgs:
            problems.append(f"the build stage does not install {dev}")
    for package in sorted((makefile or set()) - build_pkgs):
        if package.endswith("-dev"):
            problems.append(f"the Makefile needs {package}; the build stage lacks it")

    for package in sorted(final_pkgs):
        if BUILD_ONLY.search(package):
            problems.append(f"the runtime stage installs build package {package}")
    for dev in sorted(build_pkgs & set(RUNTIME_OF_DEV)):
        if RUNTIME_OF_DEV[dev] not in final_pkgs:
            problems.append(f"the runtime stage lacks {RUNTIME_OF_DEV[dev]} "
                            f"(the library of {dev})")
    for soname, package in sorted((needed or {}).items()):
        if package not in final_pkgs | BASE_IMAGE_PACKAGES:
            problems.append(f"./sonde needs {soname}, from {package}, which the "
                            "runtime stage does not install")
    for instruction, args in final["steps"]:
        for command in re.split(r"&&|;|\|\|", args) if instruction == "RUN" else []:
            words = [w for w in shlex.split(command) if not re.match(r"\w+=", w)]
            if words[:1] and words[0] in ("make", "gcc", "cc", "clang"):
                problems.append(f"the runtime stage compiles: {command.strip()}")
    copies = [a.split() for i, a in final["steps"] if i == "COPY"]
    if ["--from=build", "/src/sonde", INSTALLED_BINARY] not in copies:
        problems.append(f"the runtime stage does not COPY --from=build /src/sonde "
                        f"{INSTALLED_BINARY}")
    if exec_form(final, "ENTRYPOINT") != [INSTALLED_BINARY]:
        problems.append(f"ENTRYPOINT is {exec_form(final, 'ENTRYPOINT')}, "
                        f"expected [\"{INSTALLED_BINARY}\"]")
    cmd = exec_form(final, "CMD") or []
    if cmd[:1] != ["--listen"] or cmd[1:2] != [f"0.0.0.0:{PORT}"]:
        problems.append(f"CMD is {cmd}: the container must listen beyond loopback")
    exposed = " ".join(a for i, a in final["steps"] if i == "EXPOSE").split()
    if str(PORT) not in exposed and f"{PORT}/tcp" not in exposed:
        problems.append(f"the runtime stage does not EXPOSE {PORT}")
    return problems


@not_sanitized
def test_dockerfile_runtime_stage_is_minimal():
    require_sonde()
    problems = dockerfile_problems(read(DOCKERFILE), needed_packages(SONDE),
                                   makefile_packages())
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("breakage,edit", [
    ("a compiler in the runtime stage", lambda t: t.replace(
        "libbpf1 libelf1", "libbpf1 clang libelf1")),
    ("a -dev package in the runtime stage", lambda t: t.replace(
        "libbpf1 libelf1", "libbpf1 libbpf-dev libelf1")),
    ("a library the binary needs missing", lambda t: t.replace(
        "zlib1g libmicrohttpd12", "zlib1g")),
    ("another entrypoint", lambda t: t.replace(
        'ENTRYPOINT ["/usr/local/bin/sonde"]', 'ENTRYPOINT ["/bin/sh"]')),
    ("one stage only", lambda t: t.split("FROM debian:bookworm-slim\n")[0]),
    ("make deps", lambda t: t.replace("make clean && make", "make deps && make")),
    ("compiling in the runtime stage", lambda t: t.replace(
        "COPY --from=build /src/sonde /usr/local/bin/sonde",
        "COPY --from=build /src/sonde /usr/local/bin/sonde\nRUN make all")),
])
def test_dockerfile_check_catches_broken_recipe(breakage, edit):
    require_sonde()
    broken = edit(read(DOCKERFILE))
    assert broken != read(DOCKERFILE)
    problems = dockerfile_problems(broken, needed_packages(SONDE),
                                   makefile_packages())
    assert problems, f"{breakage} went unnoticed"


def test_needed_packages_name_the_libraries():
    require_sonde()
    packages = needed_packages(SONDE)
    assert packages.get("libbpf.so.1") == "libbpf1", packages
    assert packages.get("libmicrohttpd.so.12") == "libmicrohttpd12", packages


# --- Kubernetes --------------------------------------------------------------

def quantity(value):
    """A Kubernetes quantity (cpu or memory) as a float."""
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30,
             "k": 1e3, "M": 1e6, "G": 1e9, "": 1}
    m = re.fullmatch(r"([0-9.]+)(m|Ki|Mi|Gi|k|M|G|)", str(value))
    assert m, f"unreadable quantity {value!r}"
    return float(m.group(1)) * units[m.group(2)]


def manifest_problems(docs):
    docs = [d for d in docs if d]
    problems = []
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d.get("kind"), []).append(d)
    for kind in ("Namespace", "ServiceAccount", "DaemonSet", "Service"):
        if len(by_kind.get(kind, [])) != 1:
            problems.append(f"expected one {kind}, found {len(by_kind.get(kind, []))}")
    if problems:
        return problems
    namespace = by_kind["Namespace"][0]["metadata"]["name"]
    for d in docs:
        if d["kind"] != "Namespace" and d["metadata"].get("namespace") != namespace:
            problems.append(f"{d['kind']} {d['metadata']['name']} is not in "
                            f"namespace {namespace}")

    ds = by_kind["DaemonSet"][0]
    if ds.get("apiVersion") != "apps/v1":
        problems.append("DaemonSet is not apps/v1")
    spec = ds["spec"]
    labels = spec["template"]["metadata"].get("labels", {})
    selector = spec["selector"].get("matchLabels", {})
    if not selector or not selector.items() <= labels.items():
        problems.append(f"selector {selector} does not match template labels {labels}")
    update = spec.get("updateStrategy", {})
    if update.get("type") != "RollingUpdate" or \
            "maxUnavailable" not in update.get("rollingUpdate", {}):
        problems.append(f"updateStrategy {update}")
    pod = spec["template"]["spec"]
    if pod.get("hostPID") is not True:
        problems.append("hostPID is not true: sonde would see its own pod only")
    if pod.get("serviceAccountName") != by_kind["ServiceAccount"][0]["metadata"]["name"]:
        problems.append("serviceAccountName is not the ServiceAccount")
    if not any(t.get("operator") == "Exists" and "key" not in t
               for t in pod.get("tolerations", [])):
        problems.append("no toleration of every taint (operator: Exists, no key)")

    containers = {c["name"]: c for c in pod.get("containers", [])}
    if "sonde" not in containers:
        return problems + ["no container named sonde"]
    c = containers["sonde"]
    for key in spec["template"]["metadata"].get("annotations", {}):
        if key.startswith("container.apparmor.security.beta.kubernetes.io/") \
                and key.split("/", 1)[1] not in containers:
            problems.append(f"annotation {key} names no container")

    sc = c.get("securityContext", {})
    caps = sc.get("capabilities", {})
    added = set(caps.get("add", []))
    if not K8S_CAPS_REQUIRED <= added or not added <= K8S_CAPS_ALLOWED:
        problems.append(f"capabilities add {sorted(added)}: expected "
                        f"{sorted(K8S_CAPS_REQUIRED)} (+ SYS_ADMIN at most)")
    if caps.get("drop") != ["ALL"]:
        problems.append(f"capabilities drop {caps.get('drop')}, expected [ALL]")
    if sc.get("privileged"):
        problems.append("privileged: true")
    if sc.get("allowPrivilegeEscalation") is not False:
        problems.append("allowPrivilegeEscalation is not false")
    if sc.get("readOnlyRootFilesystem") is not True:
        problems.append("readOnlyRootFilesystem is not true")
    if sc.get("runAsUser") != 0:
        problems.append("runAsUser is not 0 (tracefs is root-only)")

    ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
    if PORT not in ports.values():
        problems.append(f"no containerPort {PORT}")
    args = c.get("args", [])
    listen = args[args.index("--listen") + 1] if "--listen" in args[:-1] else ""
    host, _, port = listen.rpartition(":")
    if port != str(PORT) or host in ("", "127.0.0.1", "localhost", "[::1]"):
        problems.append(f"--listen {listen!r}: must be reachable from outside "
                        f"the pod on {PORT}")

    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = c.get(probe, {}).get("httpGet", {})
        target = get.get("port")
        target = ports.get(target, target)
        if get.get("path") != path or target != PORT:
            problems.append(f"{probe} is {get}, expected GET {path} on {PORT}")

    resources = c.get("resources", {})
    for kind in ("requests", "limits"):
        for resource in ("cpu", "memory"):
            if resource not in resources.get(kind, {}):
                problems.append(f"no resources.{kind}.{resource}")
    if not problems:
        for resource in ("cpu", "memory"):
            if quantity(resources["requests"][resource]) > \
                    quantity(resources["limits"][resource]):
                problems.append(f"{resource} request above its limit")

    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
    for path in ("/sys/kernel/btf", "/sys/kernel/tracing"):
        m = mounts.get(path)
        host_path = (volumes.get(m["name"], {}).get("hostPath") or {}) if m else {}
        if host_path.get("path") != path:
            problems.append(f"no hostPath {path} mounted at {path}")
    if not mounts.get("/sys/kernel/btf", {}).get("readOnly"):
        problems.append("/sys/kernel/btf is not mounted read-only")

    svc = by_kind["Service"][0]
    if svc["spec"].get("clusterIP") != "None":
        problems.append("the Service is not headless (clusterIP: None)")
    svc_selector = svc["spec"].get("selector", {})
    if not svc_selector or not svc_selector.items() <= labels.items():
        problems.append(f"Service selector {svc_selector} matches no sonde pod")
    svc_ports = svc["spec"].get("ports", [])
    if not any(p.get("port") == PORT and
               ports.get(p.get("targetPort"), p.get("targetPort", PORT)) == PORT
               for p in svc_ports):
        problems.append(f"the Service does not expose {PORT} to the pods' {PORT}")
    return problems


def load_manifest(text):
    return list(yaml.safe_load_all(text))


def test_kubernetes_manifest():
    problems = manifest_problems(load_manifest(read(MANIFEST)))
    assert not problems, "\n".join(problems)


def _ds(docs):
    return next(d for d in docs if d and d["kind"] == "DaemonSet")


def _container(docs):
    return _ds(docs)["spec"]["template"]["spec"]["containers"][0]


def _drop_kind(kind):
    return lambda docs: docs.__setitem__(
        slice(None), [d for d in docs if not d or d["kind"] != kind])


@pytest.mark.parametrize("breakage,edit", [
    ("hostPID off", lambda d: _ds(d)["spec"]["template"]["spec"].update(hostPID=False)),
    ("BPF not added", lambda d: _container(d)["securityContext"]["capabilities"]
     ["add"].remove("BPF")),
    ("capabilities kept", lambda d: _container(d)["securityContext"]["capabilities"]
     .update(drop=["NET_RAW"])),
    ("privileged", lambda d: _container(d)["securityContext"].update(privileged=True)),
    ("no btf mount", lambda d: _container(d).update(volumeMounts=[
        m for m in _container(d)["volumeMounts"] if m["mountPath"] != "/sys/kernel/btf"])),
    ("readiness on /healthz", lambda d: _container(d)["readinessProbe"]["httpGet"]
     .update(path="/healthz")),
    ("no limits", lambda d: _container(d)["resources"].pop("limits")),
    ("another port", lambda d: _container(d)["ports"][0].update(containerPort=9465)),
    ("loopback only", lambda d: _container(d).update(args=["--listen", "127.0.0.1:9464"])),
    ("no Service", _drop_kind("Service")),
    ("Service selecting nothing", lambda d: next(
        x for x in d if x and x["kind"] == "Service")["spec"].update(
        selector={"app": "other"})),
])
def test_manifest_check_catches_broken_manifest(breakage, edit):
    docs = load_manifest(read(MANIFEST))
    edit(docs)
    assert docs != load_manifest(read(MANIFEST))
    assert manifest_problems(docs), f"{breakage} went unnoticed"


# --- make install / uninstall ------------------------------------------------

def make(*args):
    return subprocess.run(["make", "--no-print-directory", "-C", ROOT, *args],
                          capture_output=True, text=True, timeout=600)


@not_sanitized
def test_make_install_and_uninstall(tmp_path):
    dry = make("-n", "install", f"DESTDIR={tmp_path}/probe")
    if "No rule to make target 'install'" in dry.stderr:
        pytest.skip("the Makefile has no install target yet")
    require_sonde()
    dest = tmp_path / "root"
    result = make("install", f"DESTDIR={dest}")
    assert result.returncode == 0, result.stdout + result.stderr
    binary = dest / "usr/local/bin/sonde"
    unit = dest / "etc/systemd/system/sonde.service"
    defaults = dest / "etc/default/sonde"
    assert os.access(binary, os.X_OK) and binary.stat().st_mode & 0o777 == 0o755
    assert binary.read_bytes() == open(SONDE, "rb").read()
    assert unit.read_text() == read(UNIT)
    assert defaults.read_text() == read(DEFAULTS)
    example = dest / "usr/local/share/doc/sonde/sonde.yaml"
    assert example.read_text() == read(os.path.join(ROOT, "deploy/sonde.yaml"))
    # The example is a config sonde accepts as it is.
    check = subprocess.run([SONDE, "--config", str(example), "--print-config"],
                           capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr

    # An existing /etc/default/sonde is the admin's: install keeps it.
    defaults.write_text('SONDE_ARGS="--listen 0.0.0.0:9464"\n')
    result = make("install", f"DESTDIR={dest}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert defaults.read_text() == 'SONDE_ARGS="--listen 0.0.0.0:9464"\n'

    # Another PREFIX moves the binary, and the unit follows it.
    other = tmp_path / "usr-root"
    result = make("install", f"DESTDIR={other}", "PREFIX=/usr")
    assert result.returncode == 0, result.stdout + result.stderr
    assert os.access(other / "usr/bin/sonde", os.X_OK)
    moved = parse_unit((other / "etc/systemd/system/sonde.service").read_text())
    assert shlex.split(last(moved["Service"], "ExecStart"))[0] == "/usr/bin/sonde"

    result = make("uninstall", f"DESTDIR={dest}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert not binary.exists() and not unit.exists() and not example.exists()
    assert defaults.exists(), "uninstall removed the admin's /etc/default/sonde"
