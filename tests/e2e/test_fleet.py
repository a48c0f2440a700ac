"""Running on fleets: the config file, process selection, service
identity, captured-header labels and stale-series expiry, against real
servers (nginx, python's http.server) and a live scrape."""
import http.client
import os
import subprocess
import sys
import time

import pytest

from conftest import (HISTOGRAM, ROOT, SERVERS, SONDE, Sonde,
                      free_port, keepalive_requests, python_server,
                      wait_for)
import conftest

EXAMPLE = os.path.join(ROOT, "deploy", "sonde.yaml")


def run_sonde(*args, timeout=30):
    return subprocess.run([SONDE, *args], capture_output=True, text=True,
                          timeout=timeout)


# --- config file -----------------------------------------------------------

def test_example_config_loads_and_round_trips(tmp_path):
    r = run_sonde("--config", EXAMPLE, "--print-config")
    assert r.returncode == 0, r.stderr
    printed = r.stdout
    for line in ("series_ttl: 5m", "max_routes: 100",
                 '    - {header: "X-Tenant-ID", label: "tenant_id", '
                 'max_values: "100"}',
                 '    - {port: "22"}',
                 '  - {name: "checkout", namespace: "shop", '
                 'exe: "/srv/checkout/bin/*"}'):
        assert line in printed.splitlines(), (line, printed)
    again = tmp_path / "printed.yaml"
    again.write_text(printed)
    r2 = run_sonde("--config", str(again), "--print-config")
    assert r2.returncode == 0, r2.stderr
    assert r2.stdout == printed


def test_flags_override_the_file(tmp_path):
    conf = tmp_path / "c.yaml"
    conf.write_text("max_routes: 5\nseries_ttl: 2s\n"
                    "select:\n  include:\n    - exe: nginx\n"
                    "    - port: 8080\n")
    r = run_sonde("--config", str(conf), "--max-routes", "7",
                  "--include", "pid=42", "--print-config")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "max_routes: 7" in lines
    assert "series_ttl: 2s" in lines
    # A list given on the command line replaces the file's.
    include = lines[lines.index("  include:") + 1:
                    lines.index("  exclude: []")]
    assert include == ['    - {pid: "42"}']


MISTAKES = [
    # (file text, line, reason)
    ("listen: 127.0.0.1:9464\nbogus: 1\n", 2, "unknown key 'bogus'"),
    ("select:\n  includes: []\n", 2, "unknown key 'includes' in 'select'"),
    ("max_routes: [1, 2]\n", 1,
     "max_routes: expected a single value, got a list"),
    ("max_series: lots\n", 1,
     "max_series: 'lots' is out of range or not a number"),
    ("verbose: maybe\n", 1, "verbose: 'maybe' is not true or false"),
    ("endpoint: 5\n", 1, "endpoint: expected a mapping, got a single value"),
    ("select:\n  exclude:\n    - exe: /usr/bin/[py\n", 3,
     "select.exclude: bad glob '/usr/bin/[py' for exe: it has an unclosed "
     "'['"),
    ("select:\n  include:\n    - port: 8080\n    - port: 70000\n", 4,
     "select.include: port '70000' is not a number from 1 to 65535"),
    ("port: 0\n", 1, "port: '0' is out of range or not a number"),
    ("select:\n  include:\n    - cpu: 3\n", 3,
     "select.include: unknown rule kind 'cpu'"),
    ("http:\n  capture_headers:\n    - header: X-Tenant-ID\n"
     "      max_values: 0\n", 3,
     "http.capture_headers: max_values '0' is not a number from 1 to "
     "100000"),
    ("labels: [pod_name]\n", 1, "labels: unknown label 'pod_name'"),
    ("series_ttl: soon\n", 1, "series_ttl: 'soon' is not a duration"),
    ("listen: 127.0.0.1:1\nlisten: 127.0.0.1:2\n", 2,
     "duplicate key 'listen' (first on line 1)"),
    ("buckets: [0.5, 0.1]\n", 1, "buckets: "),
    ("select: [\n", 2, "YAML syntax: "),
    ("- just\n- a list\n", 1, "the top level is a list"),
]


@pytest.mark.parametrize("text,line,reason", MISTAKES)
def test_config_mistakes_name_file_line_and_reason(tmp_path, text, line,
                                                   reason):
    conf = tmp_path / "bad.yaml"
    conf.write_text(text)
    r = run_sonde("--config", str(conf))
    assert r.returncode == 2, r
    assert r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith(f"sonde: {conf}:{line}: {reason}"), r.stderr


def test_missing_config_file_is_one_line():
    r = run_sonde("--config", "/nonexistent/sonde.yaml")
    assert r.returncode == 2
    assert r.stderr == ("sonde: /nonexistent/sonde.yaml: cannot open the "
                        "config file: No such file or directory\n")


def deep_block(levels):
    return "select:\n" + "".join("  " * i + f"k{i}:\n"
                                  for i in range(1, levels))


@pytest.mark.parametrize("make,reason", [
    # 100,000 levels of flow lists took libyaml 51 s to refuse.
    (lambda p: p.write_text("max_routes: " + "[" * 100000 + "]" * 100000),
     "{p}:1: nested deeper than 64 levels"),
    (lambda p: p.write_text(deep_block(70)),
     "{p}:65: nested deeper than 64 levels"),
    (lambda p: p.write_text("#" * (1 << 20) + "\n"),
     "{p}: 1048577 bytes, more than the 1024 KiB a config file may have"),
    (lambda p: p.mkdir(), "{p}: is a directory, expected a YAML file"),
    (lambda p: os.mkfifo(p), "{p}: is a FIFO, expected a YAML file"),
], ids=["deep-flow", "deep-block", "oversized", "directory", "fifo"])
def test_config_files_refused_before_parsing(tmp_path, make, reason):
    conf = tmp_path / "sonde.yaml"
    make(conf)
    # A FIFO with no writer, or libyaml on 100,000 levels, would hang.
    r = run_sonde("--config", str(conf), timeout=5)
    assert r.returncode == 2, r
    assert r.stderr == "sonde: " + reason.format(p=conf) + "\n", r.stderr


def test_config_nested_as_deep_as_allowed_is_read(tmp_path):
    # 64 levels: a mapping at the top and 63 under it is within the limit
    # (and then refused for its unknown key, on its line, not its depth).
    conf = tmp_path / "sonde.yaml"
    conf.write_text(deep_block(64))
    r = run_sonde("--config", str(conf))
    assert r.returncode == 2
    assert r.stderr == f"sonde: {conf}:2: unknown key 'k1' in 'select'\n", \
        r.stderr


# --- process selection -----------------------------------------------------

def python_exe():
    return os.path.basename(os.path.realpath(sys.executable))


def test_include_by_exe_traces_only_that_executable(nginx, app):
    s = Sonde("--include", "exe=nginx")
    try:
        keepalive_requests(app.port, ["/py"] * 5)
        keepalive_requests(nginx.port, ["/"] * 6)
        assert s.settled_series(nginx.port, 6) == {("GET", "200", "/"): 6}
        assert s.series(app.port) == {}
    finally:
        assert s.stop() == 0


def test_exclude_by_port_drops_the_other(nginx, app):
    s = Sonde("--exclude", f"port={app.port}")
    try:
        keepalive_requests(app.port, ["/py"] * 5)
        keepalive_requests(nginx.port, ["/"] * 4)
        assert s.settled_series(nginx.port, 4) == {("GET", "200", "/"): 4}
        assert s.series(app.port) == {}
    finally:
        assert s.stop() == 0


@pytest.mark.parametrize("rules", ["exclude_only", "include_and_exclude"])
def test_processes_started_after_sonde_follow_the_rules(tmp_path, rules):
    """Rules apply to processes that start after sonde (exec, fork of
    nginx's worker): an excluded one never produces series, an included
    one is traced. With only exclude rules, a new process is traced in the
    kernel until the daemon has decided, and the daemon drops what an
    excluded one sent meanwhile."""
    args = ["--exclude", f"exe={python_exe()}"]
    if rules == "include_and_exclude":
        args += ["--include", "exe=nginx", "--include",
                 f"exe={python_exe()}"]
    s = Sonde(*args)
    nginx_port = free_port()
    app = python_server(free_port())
    ngx = conftest.nginx_site(tmp_path, nginx_port)
    try:
        keepalive_requests(app.port, ["/py"] * 5)
        keepalive_requests(ngx.port, ["/"] * 3)
        assert s.settled_series(ngx.port, 3) == {("GET", "200", "/"): 3}
        assert s.series(app.port) == {}
    finally:
        app.stop()
        ngx.stop()
        assert s.stop() == 0


def test_config_file_selection_and_pid_filter_together(tmp_path, app, nginx):
    conf = tmp_path / "sel.yaml"
    conf.write_text(f"select:\n  include:\n    - port: {app.port}\n")
    s = Sonde("--config", str(conf))
    try:
        keepalive_requests(nginx.port, ["/"] * 3)
        keepalive_requests(app.port, ["/a"] * 2)
        assert s.settled_series(app.port, 2) == {("GET", "200", "/a"): 2}
        assert s.series(nginx.port) == {}
    finally:
        assert s.stop() == 0


# --- service identity ------------------------------------------------------

def service_of(sonde, port):
    for name, labels, _ in sonde.samples():
        if name == HISTOGRAM + "_count" and \
                labels.get("server_port") == str(port):
            return labels["service_name"], labels
    return None, None


def client_labels(sonde, port):
    for name, labels, _ in sonde.samples():
        if name == "http_client_request_duration_seconds_count" and \
                labels.get("server_port") == str(port):
            return labels
    return None


def client_count(sonde, port):
    return sum(v for name, labels, v in sonde.samples()
               if name == "http_client_request_duration_seconds_count" and
               labels.get("server_port") == str(port))


def test_service_identity_chain(tmp_path):
    conf = tmp_path / "svc.yaml"
    exe = os.path.realpath(sys.executable)
    ruled_port = free_port()
    conf.write_text(
        "services:\n"
        f"  - {{name: billing, namespace: money, exe: {exe}, "
        f"cgroup: '*'}}\n"
        "labels: [service_namespace]\n")
    # The rule matches every python process: the one with
    # OTEL_SERVICE_NAME too, since a config rule comes first in the chain.
    s = Sonde("--config", str(conf))
    env_name = python_server(
        free_port(), env=dict(os.environ, OTEL_SERVICE_NAME="checkout"))
    ruled = python_server(ruled_port)
    try:
        keepalive_requests(env_name.port, ["/a"] * 2)
        keepalive_requests(ruled.port, ["/a"] * 2)
        s.settled_series(env_name.port, 2)
        s.settled_series(ruled.port, 2)
        name, labels = service_of(s, ruled.port)
        assert (name, labels["service_namespace"]) == ("billing", "money")
        assert service_of(s, env_name.port)[0] == "billing"
        # This test's own process made the calls, and the rule matches it
        # too: its client series carry the same optional label.
        client = wait_for(lambda: client_count(s, ruled.port) == 2 and
                          client_labels(s, ruled.port),
                          what="the test's client series")
        assert (client["service_name"], client["service_namespace"]) == \
            ("billing", "money")
        # So do its TCP series: the connects it made to that server
        # (readiness probes too, refused before it listened).
        connects = wait_for(lambda: {
            (labels["service_name"], labels["service_namespace"])
            for name, labels, v in s.samples()
            if name == "sonde_tcp_connects_total" and v >= 1 and
            labels["result"] == "ok" and
            labels["server_port"] == str(ruled.port)}, what="the connect")
        assert connects == {("billing", "money")}
    finally:
        env_name.stop()
        ruled.stop()
        assert s.stop() == 0


def test_service_name_from_resource_attributes(sonde):
    env = dict(os.environ, OTEL_RESOURCE_ATTRIBUTES=(
        "deployment.environment=prod, service.name=pay%2Dments,"
        "service.namespace=shop"))
    env.pop("OTEL_SERVICE_NAME", None)
    server = python_server(free_port(), env=env)
    named = python_server(free_port(), env=dict(
        env, OTEL_SERVICE_NAME="checkout"))
    try:
        keepalive_requests(server.port, ["/a"] * 2)
        keepalive_requests(named.port, ["/a"] * 2)
        sonde.settled_series(server.port, 2)
        sonde.settled_series(named.port, 2)
        assert service_of(sonde, server.port)[0] == "pay-ments"
        # OTEL_SERVICE_NAME wins over the resource attribute.
        assert service_of(sonde, named.port)[0] == "checkout"
    finally:
        server.stop()
        named.stop()


def test_systemd_unit_names_the_service():
    if not os.path.isdir("/run/systemd/system"):
        pytest.skip("systemd is not PID 1 here: the unit parser is "
                    "covered by tests/unit/test_cgroup.c")
    port = free_port()
    unit = f"sonde-test-billing-{port}"
    s = Sonde()
    try:
        subprocess.run(["systemd-run", f"--unit={unit}", sys.executable,
                        os.path.join(SERVERS, "app.py"), str(port)],
                       check=True, capture_output=True)
        conftest.wait_port(port)
        keepalive_requests(port, ["/a"] * 2)
        s.settled_series(port, 2)
        assert service_of(s, port)[0] == unit
    finally:
        subprocess.run(["systemctl", "stop", unit], capture_output=True)
        assert s.stop() == 0


# --- captured headers ------------------------------------------------------

def tenant_requests(port, tenants):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        for t in tenants:
            conn.request("GET", "/orders", headers={"X-Tenant-ID": t})
            r = conn.getresponse()
            r.read()
            assert r.status == 200
    finally:
        conn.close()


def tenant_series(sonde, port):
    out = {}
    for name, labels, value in sonde.samples():
        if name == HISTOGRAM + "_count" and \
                labels.get("server_port") == str(port):
            out[labels["tenant_id"]] = value
    return out


def settled_tenants(sonde, port, total, timeout=30):
    wait_for(lambda: sum(tenant_series(sonde, port).values()) >= total,
             timeout, what=f"{total} requests on port {port}")
    time.sleep(0.3)
    return tenant_series(sonde, port)


def test_captured_header_labels_are_capped(app):
    s = Sonde("--capture-header",
              "header=X-Tenant-ID,label=tenant_id,max_values=10")
    try:
        tenant_requests(app.port, ["acme", "globex", "acme", "initech",
                                   "acme"])
        keepalive_requests(app.port, ["/orders"])  # no header
        assert settled_tenants(s, app.port, 6) == {
            "acme": 3, "globex": 1, "initech": 1, "": 1}
        tenant_requests(app.port, [f"t{i:04d}" for i in range(1000)])
        series = settled_tenants(s, app.port, 1006)
        # 3 tenants seen first, 7 more until the cap of 10, then one
        # overflow series for the other 993; the header-less series is
        # not a value and does not count.
        assert len(series) == 10 + 1 + 1, series
        assert series["_overflow"] == 993
        assert sorted(k for k in series if k.startswith("t")) == \
            [f"t{i:04d}" for i in range(7)]
        overflow = [v for n, l, v in s.samples()
                    if n == "sonde_label_overflows_total" and
                    l.get("label") == "tenant_id"]
        assert overflow == [993]
    finally:
        assert s.stop() == 0


# --- stale series ----------------------------------------------------------

def test_series_expire_after_ttl_and_come_back(tmp_path):
    s = Sonde("--series-ttl", "2s")
    port = free_port()
    server = python_server(port)
    try:
        keepalive_requests(port, ["/a"] * 3)
        assert s.settled_series(port, 3) == {("GET", "200", "/a"): 3}
        last = time.monotonic()
        server.stop()
        wait_for(lambda: s.series(port) == {}, timeout=15,
                 what="series to expire")
        assert time.monotonic() - last >= 1.5
        server = python_server(port)
        keepalive_requests(port, ["/a"] * 2)
        # A new series: counts start again from the new requests.
        assert s.settled_series(port, 2) == {("GET", "200", "/a"): 2}
    finally:
        server.stop()
        assert s.stop() == 0
