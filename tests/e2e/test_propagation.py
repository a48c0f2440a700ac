"""--trace-propagation: sonde adds a W3C traceparent header to outgoing
plaintext HTTP/1.x requests that carry none, at the socket layer (sock_ops
puts client sockets into a socket map, sk_msg rewrites what they send), so
that a python client with no SDK calling a python server directly makes
the server receive one. Off by default: then nothing is loaded and no
header appears.

The servers answer with the traceparent values they received, so each
test sees exactly what arrived. The counts come from
sonde_trace_propagation_total, which the kernel side updates as the
request is sent: read right after, they are exact."""
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import threading
import urllib.request

import pytest

from conftest import (SONDE, Server, Sonde, bpftool_json, free_port,
                      parse_exposition)

TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-01$")
# A caller's own context (the W3C specification's example).
OWN = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
METRIC = "sonde_trace_propagation_total"
PROGRAMS = ("propagate_sockops", "propagate_sk_msg")
MAPS = ("prop_socks", "prop_results")

# A python server that answers every request with the JSON list of the
# traceparent field values it received (none, one, or more).
ECHO_HEADERS = r"""
import http.server, json, sys

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = json.dumps(self.headers.get_all("traceparent") or []).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = answer

    def log_message(self, *args):
        pass

http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])),
                                Handler).serve_forever()
"""


@pytest.fixture
def echo_headers():
    port = free_port()
    server = Server([sys.executable, "-c", ECHO_HEADERS, str(port)], port)
    yield server
    server.stop()


class EchoBytes:
    """A TCP server in this process that sends back the bytes of each
    connection as they arrived, once the client shuts its side."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                got = b""
                while chunk := conn.recv(65536):
                    got += chunk
                conn.sendall(got)

    def roundtrip(self, *sends):
        """What the server received of these sends on one connection, and
        what each send() returned."""
        with socket.create_connection(("127.0.0.1", self.port),
                                      timeout=10) as c:
            sent = [c.send(data) for data in sends]
            c.shutdown(socket.SHUT_WR)
            got = b""
            while chunk := c.recv(65536):
                got += chunk
        return got, sent

    def close(self):
        self.sock.close()


@pytest.fixture
def echo_bytes():
    server = EchoBytes()
    yield server
    server.close()


def get(port, path="/", headers=None, method="GET", body=None, conn=None):
    """The traceparent values the echo_headers server received for one
    request (on conn when given, a new connection otherwise)."""
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request(method, path, body=body, headers=headers or {})
        resp = c.getresponse()
        assert resp.status == 200
        return json.loads(resp.read())
    finally:
        if conn is None:
            c.close()


def injected(values):
    """The trace id of the one traceparent sonde added."""
    assert len(values) == 1, values
    m = TRACEPARENT.match(values[0])
    assert m, values[0]
    assert m.group(1) != "0" * 32 and m.group(2) != "0" * 16, values[0]
    return m.group(1)


def results(sonde):
    """{result: count} of sonde_trace_propagation_total. The scrape
    carries its own traceparent, so it adds one to present, not to
    injected."""
    status, _, body = sonde.get("/metrics", headers={"traceparent": OWN})
    assert status == 200
    return {labels["result"]: v
            for n, labels, v in parse_exposition(body.decode())
            if n == METRIC}


def loaded_programs():
    return {p.get("name") for p in bpftool_json("prog", "show")}


def loaded_maps():
    return {m.get("name") for m in bpftool_json("map", "show")}


def test_help_and_config_file(tmp_path):
    out = subprocess.run([SONDE, "--help"], capture_output=True, text=True,
                         check=True).stdout
    assert "--trace-propagation" in out
    conf = tmp_path / "sonde.yaml"
    conf.write_text("trace_propagation: true\n")
    out = subprocess.run([SONDE, "--config", str(conf), "--print-config"],
                         capture_output=True, text=True, check=True).stdout
    assert "trace_propagation: true\n" in out
    out = subprocess.run([SONDE, "--print-config"], capture_output=True,
                         text=True, check=True).stdout
    assert "trace_propagation: false\n" in out
    conf.write_text("trace_propagation: maybe\n")
    bad = subprocess.run([SONDE, "--config", str(conf)], capture_output=True,
                         text=True)
    assert bad.returncode == 2 and "trace_propagation" in bad.stderr


def test_off_by_default_nothing_loaded_no_header(echo_headers):
    sonde = Sonde()
    try:
        assert not loaded_programs() & set(PROGRAMS)
        assert not loaded_maps() & set(MAPS)
        assert METRIC not in sonde.text()
        for _ in range(3):
            assert get(echo_headers.port) == []
    finally:
        assert sonde.stop() == 0


def test_requests_get_a_traceparent_and_are_counted(echo_headers,
                                                    echo_bytes):
    """The client is this process (--pid): what the counts say is only
    what it sent, whatever else runs on the host."""
    sonde = Sonde("--trace-propagation", "--pid", str(os.getpid()))
    try:
        assert set(PROGRAMS) <= loaded_programs()
        before = results(sonde)
        port = echo_headers.port
        trace_ids = []
        # A connection per request (urllib), then keep-alive.
        for _ in range(5):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/u") as r:
                trace_ids.append(injected(json.loads(r.read())))
        keep = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            for _ in range(5):
                trace_ids.append(injected(get(port, "/k", conn=keep)))
            # A body in the same send as the head.
            for _ in range(3):
                trace_ids.append(injected(get(port, "/p", method="POST",
                                              body=b"x" * 100, conn=keep)))
            # The caller's own context arrives unchanged, once, whatever
            # the field name's case.
            assert get(port, "/own", headers={"TraceParent": OWN},
                       conn=keep) == [OWN]
            assert get(port, "/own", headers={"traceparent": OWN},
                       conn=keep) == [OWN]
        finally:
            keep.close()
        assert len(set(trace_ids)) == len(trace_ids), trace_ids

        # Byte for byte: the line goes right after the request line, and
        # send() returns what the caller gave it.
        head = b"GET /echo?q=1 HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\r\n"
        got, sent = echo_bytes.roundtrip(head)
        assert sent == [len(head)]
        assert got.startswith(b"GET /echo?q=1 HTTP/1.1\r\ntraceparent: 00-")
        line = got.split(b"\r\n")[1].decode()
        assert TRACEPARENT.match(line[len("traceparent: "):]), got
        assert got == b"GET /echo?q=1 HTTP/1.1\r\n" + line.encode() + \
            b"\r\nHost: a\r\nX-A: b\r\n\r\n"
        # HTTP/1.0 with no header line at all.
        got, _ = echo_bytes.roundtrip(b"GET / HTTP/1.0\r\n\r\n")
        assert re.fullmatch(rb"GET / HTTP/1\.0\r\ntraceparent: 00-[0-9a-f]{32}"
                            rb"-[0-9a-f]{16}-01\r\n\r\n", got), got
        # Not requests: left alone, not counted.
        for data in (b"HELLO world, not HTTP at all\r\n\r\n",
                     b"GET / HTTP/2.0\r\n\r\nPRI * HTTP/2.0\r\n\r\n",
                     b"get / http/1.1\r\nHost: a\r\n\r\n"):
            assert echo_bytes.roundtrip(data)[0] == data
        # A head written in two sends cannot be checked whole: unchanged.
        split = (b"GET /split HTTP/1.1\r\n", b"Host: a\r\n\r\n")
        assert echo_bytes.roundtrip(*split)[0] == b"".join(split)
        # Nor can one longer than the 2 KiB checked.
        long_head = (b"GET /long HTTP/1.1\r\nX-Pad: " + b"p" * 3000 +
                     b"\r\n\r\n")
        assert echo_bytes.roundtrip(long_head)[0] == long_head

        after = results(sonde)
        delta = {k: after[k] - before.get(k, 0) for k in after}
        # 13 through the HTTP server, 2 to the byte echo.
        assert delta["injected"] == 15, delta
        # The two with their own, and the scrape that read `after`.
        assert delta["present"] == 3, delta
        assert delta["skipped_head_split"] == 1, delta
        assert delta["skipped_head_long"] == 1, delta
        for reason in ("skipped_pull_failed", "skipped_push_failed",
                       "skipped_ring_full", "skipped_connection_untracked"):
            assert delta[reason] == 0, delta
        assert not sonde.losses(), sonde.losses()
    finally:
        assert sonde.stop() == 0
    # Detached at exit: nothing of it stays, nothing is added.
    assert not loaded_programs() & set(PROGRAMS)
    assert get(echo_headers.port) == []


def cgroup2_mounts():
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if " - cgroup2 " in line]


def start_fails(argv):
    """sonde --trace-propagation run by argv: its exit code and its
    output, which must be the endpoint's line then one line of reason."""
    run = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    lines = [line for line in run.stderr.splitlines()
             if not line.startswith("sonde: serving ")]
    assert len(lines) == 1, run.stderr
    return run.returncode, lines[0]


def test_start_fails_without_cgroup2():
    """With no cgroup v2 hierarchy mounted (in a mount namespace of its
    own), start fails with one line saying what to do."""
    umounts = " && ".join(f"umount {m}" for m in cgroup2_mounts()) or "true"
    code, line = start_fails([
        "unshare", "-m", "sh", "-c",
        f"{umounts} && exec {SONDE} --trace-propagation --no-tls "
        f"--listen 127.0.0.1:{free_port()}"])
    assert code == 1
    assert "no cgroup v2 hierarchy is mounted" in line
    assert "mount -t cgroup2" in line


def test_start_fails_without_net_admin():
    code, line = start_fails([
        "capsh", "--drop=cap_net_admin,cap_sys_admin", "--", "-c",
        f"exec {SONDE} --trace-propagation --no-tls "
        f"--listen 127.0.0.1:{free_port()}"])
    assert code == 1
    assert "--trace-propagation needs CAP_NET_ADMIN" in line


CLIENT = r"""
import json, sys, urllib.request
for _ in range(int(sys.argv[2])):
    with urllib.request.urlopen("http://127.0.0.1:%s/c" % sys.argv[1]) as r:
        print(json.dumps(json.loads(r.read())))
"""


def test_any_client_process_is_propagated(echo_headers):
    """A python client with no SDK, a process of its own, calling the
    python server directly: every request arrives with a traceparent.
    --port keeps the rest of the host's clients out of it."""
    sonde = Sonde("--trace-propagation", "--port", str(echo_headers.port))
    try:
        out = subprocess.run([sys.executable, "-c", CLIENT,
                              str(echo_headers.port), "4"],
                             capture_output=True, text=True, timeout=30,
                             check=True).stdout
        received = [json.loads(line) for line in out.splitlines()]
        assert len(received) == 4
        trace_ids = [injected(values) for values in received]
        assert len(set(trace_ids)) == 4
        # The spans these requests make, joined into one trace each:
        # test_traces.py, test_propagation_joins_client_and_server.
    finally:
        assert sonde.stop() == 0
