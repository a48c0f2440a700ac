"""The agent as a program: flags, errors, filters, identity, clean exit."""
import http.client
import os
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import (HISTOGRAM, HOOKS, SONDE, Sonde, bpftool_json, free_port,
                      keepalive_requests, parse_exposition, python_server,
                      stop_process, wait_for)


def run_sonde(*args, preexec=None):
    return subprocess.run([SONDE, *args], capture_output=True, text=True,
                          timeout=30, preexec_fn=preexec)


def test_help_and_version():
    r = run_sonde("--help")
    assert r.returncode == 0
    for flag in ("--listen", "--pid", "--port", "--buckets", "--max-routes",
                 "--max-series", "--verbose", "--help", "--version"):
        assert flag in r.stdout
    r = run_sonde("--version")
    assert r.returncode == 0 and r.stdout.startswith("sonde ")


def test_bad_flags_are_rejected_with_a_reason():
    cases = {
        ("--bogus",): "unknown option '--bogus'",
        ("--port", "70000"): "--port: '70000'",
        ("--pid", "abc"): "--pid: 'abc'",
        ("--listen", "localhost"): "--listen: 'localhost'",
        ("--listen", "nohost:80"): "not a numeric IPv4 or IPv6",
        ("--buckets", "0.1,0.05"): "not above the one before it",
        ("--listen",): "missing value for '--listen'",
        ("extra",): "unexpected argument 'extra'",
    }
    for args, message in cases.items():
        r = run_sonde(*args)
        assert r.returncode == 2, args
        assert r.stderr.startswith("sonde: "), r.stderr
        assert message in r.stderr, (args, r.stderr)
        assert r.stderr.count("\n") == 1, r.stderr


def get(port, path):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def server_threads(pid):
    """[(CapPrm, CapBnd, NoNewPrivs)] of pid's libmicrohttpd threads
    (named MHD-...)."""
    out = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                if not f.read().startswith("MHD"):
                    continue
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                fields = dict(line.rstrip("\n").split(":\t", 1)
                              for line in f if ":\t" in line)
        except OSError:
            continue
        out.append((int(fields["CapPrm"], 16), int(fields["CapBnd"], 16),
                    fields["NoNewPrivs"]))
    return out


def test_metrics_answer_while_the_programs_load():
    """The endpoint starts before the BPF programs load (the verifier
    takes hundreds of ms at the least, the server a few): a scrape polled
    for from exec succeeds while /readyz still says 503, and /readyz turns
    200 once everything is attached."""
    port = free_port()
    log = tempfile.TemporaryFile()
    args = ["--hooks", HOOKS] if HOOKS else []
    t0 = time.monotonic()
    proc = subprocess.Popen([SONDE, "--listen", f"127.0.0.1:{port}", *args],
                            stdout=log, stderr=subprocess.STDOUT)

    def output():
        log.seek(0)
        return log.read().decode(errors="replace")

    early = None  # a /metrics page followed by a /readyz that said 503
    try:
        while early is None and time.monotonic() - t0 < 30:
            assert proc.poll() is None, "sonde exited:\n" + output()
            try:
                status, page = get(port, "/metrics")
                ready, why = get(port, "/readyz")
                health, _ = get(port, "/healthz")
            except OSError:  # not listening yet
                time.sleep(0.002)
                continue
            assert status == 200, (status, page)
            assert ready != 200, (
                "sonde was ready before its first scrape, %.3f s after "
                "exec: /metrics did not answer while the programs loaded"
                % (time.monotonic() - t0))
            assert ready == 503 and health == 200, (ready, why, health)
            # Started while sonde still holds every capability, the
            # server's thread holds none.
            assert server_threads(proc.pid) == [(0, 0, "1")]
            early = page, time.monotonic() - t0
        assert early, "no scrape answered within 30 s:\n" + output()
        page, _ = early
        samples = parse_exposition(page)
        assert [(n, v) for n, _, v in samples
                if n == "sonde_build_info"] == [("sonde_build_info", 1)]
        # What is known before the programs are attached is already
        # counted; the page is valid exposition text.
        assert ("sonde_events_received_total", {}, 0) in samples
        check = subprocess.run(["promtool", "check", "metrics"], input=page,
                               capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr

        wait_for(lambda: get(port, "/readyz")[0] == 200, timeout=30,
                 interval=0.01, what="/readyz after the early scrape")
        attached = [v for n, _, v in parse_exposition(get(port,
                                                          "/metrics")[1])
                    if n == "sonde_program_attached"]
        # Socket hooks: one data program, two process, five TCP.
        assert len(attached) >= 8 and set(attached) == {1}
    finally:
        code = stop_process(proc)
    assert code == 0, output()


def test_listen_address_in_use_is_one_clear_line():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = run_sonde("--listen", f"127.0.0.1:{port}")
    assert r.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" \
        in r.stderr


def test_missing_privileges_are_named():
    def become_nobody():
        os.setgid(65534)
        os.setuid(65534)

    r = run_sonde("--listen", f"127.0.0.1:{free_port()}",
                  preexec=become_nobody)
    assert r.returncode == 1
    assert "missing privileges" in r.stderr and "CAP_BPF" in r.stderr


@pytest.mark.parametrize("flag", ["--pid", "--port"])
def test_filters_trace_only_the_chosen_server(flag):
    traced, other = python_server(free_port()), python_server(free_port())
    value = traced.proc.pid if flag == "--pid" else traced.port
    s = Sonde(flag, str(value))
    try:
        keepalive_requests(other.port, ["/x"] * 5)
        keepalive_requests(traced.port, ["/y"] * 5)
        assert s.settled_series(traced.port, 5) == {("GET", "200", "/y"): 5}
        assert s.series(other.port) == {}
    finally:
        traced.stop()
        other.stop()
        assert s.stop() == 0


def test_service_name_from_otel_env_else_executable(sonde):
    named = python_server(free_port(),
                          env=dict(os.environ, OTEL_SERVICE_NAME="checkout"))
    plain = python_server(free_port())
    try:
        keepalive_requests(named.port, ["/a"] * 3)
        keepalive_requests(plain.port, ["/a"] * 3)
        sonde.settled_series(named.port, 3)
        sonde.settled_series(plain.port, 3)
        services = {}
        for name, labels, _ in sonde.samples():
            if name == HISTOGRAM + "_count":
                services[int(labels["server_port"])] = labels["service_name"]
        assert services[named.port] == "checkout"
        assert services[plain.port].startswith("python3")
    finally:
        named.stop()
        plain.stop()


def test_expect_100_continue_counts_the_final_status(sonde, app):
    body = b"x" * 100
    with socket.create_connection(("127.0.0.1", app.port)) as conn:
        conn.settimeout(5)
        conn.sendall(b"POST /upload HTTP/1.1\r\nHost: t\r\n"
                     b"Content-Length: 100\r\nExpect: 100-continue\r\n\r\n")
        assert conn.recv(100).startswith(b"HTTP/1.1 100 Continue")
        conn.sendall(body)
        assert b" 201 " in conn.recv(4096)
    assert sonde.settled_series(app.port, 1) == {
        ("POST", "201", "/upload"): 1}


def test_interim_and_final_heads_in_one_write_count_the_final_status(
        sonde, app):
    """The server sends "103 Early Hints" and its 200 in one send: the
    exchange is the 200, on the server's side and on curl's."""
    url = f"http://127.0.0.1:{app.port}/early-hints"
    for _ in range(3):
        out = subprocess.run(["curl", "-s", url], check=True,
                             capture_output=True, text=True).stdout
        assert out == "hints\n"
    assert sonde.settled_series(app.port, 3) == {
        ("GET", "200", "/early-hints"): 3}
    wait_for(lambda: sum(client_calls(sonde, app.port).values()) >= 3,
             what="curl's client series")
    clients = client_calls(sonde, app.port)
    assert clients == {("GET", "200"): 3}


def client_calls(sonde, port):
    """curl's client series towards port: (method, status) -> count."""
    return {(lab["http_request_method"], lab["http_response_status_code"]): v
            for name, lab, v in sonde.samples()
            if name == "http_client_request_duration_seconds_count"
            and lab["service_name"] == "curl"
            and lab["server_port"] == str(port)}


def test_tracefs_is_mounted_when_missing():
    tracefs = "/sys/kernel/tracing"
    if os.path.exists(tracefs + "/events"):
        if subprocess.run(["umount", tracefs]).returncode != 0:
            pytest.skip("tracefs is busy (another tracer holds it)")
    assert not os.path.exists(tracefs + "/events")
    s = Sonde()
    try:
        assert os.path.exists(tracefs + "/events")
        assert ("tracefs not mounted at /sys/kernel/tracing: mounting it"
                in s.output())
    finally:
        assert s.stop() == 0


def sonde_objects(pid):
    """IDs of the BPF programs and links pid holds, from its fdinfo."""
    progs, links = set(), set()
    fdinfo = f"/proc/{pid}/fdinfo"
    for fd in os.listdir(fdinfo):
        try:
            with open(os.path.join(fdinfo, fd)) as f:
                for line in f:
                    key, _, value = line.partition(":")
                    if key == "prog_id":
                        progs.add(int(value))
                    elif key == "link_id":
                        links.add(int(value))
        except OSError:
            pass
    return progs, links


def test_sigterm_and_sigint_leave_nothing_in_the_kernel():
    for sig in (signal.SIGTERM, signal.SIGINT):
        s = Sonde()
        try:
            attached = [name for name, labels, v in s.samples()
                        if name == "sonde_program_attached" and v == 1]
            progs, links = sonde_objects(s.proc.pid)
        finally:
            code = s.stop(sig)
        assert code == 0, s.output()
        # Socket hooks: one data program (on both socket tracepoints),
        # two process, five TCP.
        assert len(attached) >= 8
        # Every tracepoint program has a link per tracepoint (the data
        # program two); the OpenSSL uprobe programs add one link per
        # attached library and function.
        assert len(progs) >= len(attached)
        assert len(links) >= len(attached) + 1
        left_progs = {p["id"] for p in bpftool_json("prog", "show")}
        left_links = {link["id"] for link in bpftool_json("link", "show")}
        assert not progs & left_progs
        assert not links & left_links
