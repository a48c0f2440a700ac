"""Classification: each TCP connection is classified once, from its first
bytes in either direction, as http1, http2, tls (ciphertext, never parsed
from the socket) or unknown (nothing on it parsed, no record, no series),
and sonde_connections_classified_total counts each stream so classified.

Every test runs its own sonde with --port on the test's one server port:
the scrapes of /metrics, other tests' servers and whatever else runs on
the host are not traced, so the classified counts and
sonde_events_received_total move only with the test's own connections,
and are asserted exactly. Both ends of a connection are traced (the
server's local port and the client's peer port are the test's port):
each connection is two classified streams. Servers are started before
sonde (their readiness probe, a connect and a close, comes before it),
or say on their output that they listen; --no-tls, where no plaintext is
wanted, also keeps the exec reports of uprobe discovery, made for every
process on the host, out of the received count.

"No record" is read as sonde_events_received_total standing still from
just after a connection's first bytes have crossed (it is classified by
then) until its last bytes have: its connect, its accept and its owner
(the first process to read an accepted socket) are TCP lifecycle
records, sent before or at its first bytes, and its close after."""
import collections
import contextlib
import os
import random
import select
import socket
import subprocess
import sys
import time

import pytest

from conftest import (NGINX_TLS_LISTEN, Server, Sonde, client_series,
                      free_port, keepalive_requests, nginx_site,
                      stop_process, total, wait_for, wait_port)

TOOL = os.path.join(os.path.dirname(__file__), "clients", "classify_tool.py")
CLASSIFIED = "sonde_connections_classified_total"
PROTOCOLS = ("http1", "http2", "tls", "unknown", "postgresql", "mysql", "redis",
             "memcached")
# The service name of this process, the client in several tests.
PYTEST_SERVICE = os.path.basename(os.path.realpath(sys.executable))


@contextlib.contextmanager
def sonde_on(port, *args):
    """A sonde tracing only connections with port at one end; stopped by
    pid on the way out, and it must exit cleanly."""
    s = Sonde("--port", str(port), *args)
    try:
        yield s
    finally:
        code = s.stop()
    assert code == 0, "sonde exited with %s:\n%s" % (code, s.output())


def classified(sonde):
    """{protocol: count} as scraped; empty when the family is missing."""
    return {labels.get("protocol"): v for n, labels, v in sonde.samples()
            if n == CLASSIFIED}


def settle_classified(sonde, before, grown, timeout=15):
    """Waits until each protocol's count has grown from before by what
    grown says (0 for a protocol it leaves out), checks it stays so, and
    that the family has exactly the four protocols."""
    want = {p: grown.get(p, 0) for p in PROTOCOLS}

    def delta():
        now = classified(sonde)
        return {p: now.get(p, 0) - before.get(p, 0) for p in now}

    try:
        wait_for(lambda: all(delta().get(p, 0) >= n for p, n in want.items()
                             if n), timeout, what=f"{CLASSIFIED} +{want}")
    except AssertionError:
        raise AssertionError(f"{CLASSIFIED}: expected +{want} from "
                             f"{before}, got {classified(sonde)}")
    time.sleep(0.5)
    now = classified(sonde)
    assert set(now) == set(PROTOCOLS), now
    assert delta() == want, f"from {before} to {now}"


def received(sonde):
    return total(sonde, "sonde_events_received_total")


def parse_errors(sonde):
    return total(sonde, "sonde_parse_errors_total")


def quiet_received(sonde, still=0.5, timeout=10):
    """sonde_events_received_total once it has not moved for still
    seconds: what the connect and the accept sent has been read."""
    last, since = received(sonde), time.monotonic()
    first, deadline = last, since + timeout
    while time.monotonic() - since < still:
        assert time.monotonic() < deadline, \
            f"records kept coming: {last - first} in {timeout}s"
        time.sleep(0.1)
        now = received(sonde)
        if now != last:
            last, since = now, time.monotonic()
    return last


def assert_no_records_since(sonde, base):
    """Nothing read from the kernel since base was taken: records are
    drained every 20 ms, so a second is ample for any to show."""
    time.sleep(1)
    assert received(sonde) == base, (
        f"{received(sonde) - base} records from a connection that must "
        "make none")


def traffic_samples(sonde):
    """The names of samples that name a service or a server port outside
    sonde's own families: the HTTP and RPC families (and those of the
    protocols to come). Under --port, any of them would come from the
    test's connections. sonde's own are left out: its TCP families count
    a connection's connect and activity, which come before its first
    byte, and its per-service overflow counters come with them, at 0."""
    return sorted({n for n, labels, _ in sonde.samples()
                   if ("service_name" in labels or "server_port" in labels)
                   and not n.startswith("sonde_")})


def connects(sonde, port, service):
    return total(sonde, "sonde_tcp_connects_total", service_name=service,
                 server_port=port, result="ok")


def unique_service(tag):
    return f"{tag}-{os.getpid()}-{random.randrange(1 << 30):x}"


class Tool:
    """classify_tool.py in a process of its own, named service, driven by
    lines on its stdin; every read of its output has a deadline."""

    def __init__(self, service, *args):
        env = dict(os.environ, OTEL_SERVICE_NAME=service)
        self.proc = subprocess.Popen(
            [sys.executable, TOOL, *map(str, args)], env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.buf = b""

    def line(self, timeout=60):
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise AssertionError(f"no line from {self.proc.args} "
                                     f"within {timeout}s")
            chunk = os.read(fd, 4096)
            if not chunk:
                raise AssertionError(f"{self.proc.args} exited with "
                                     f"{self.proc.wait()}")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode().strip()

    def expect(self, want, timeout=60):
        got = self.line(timeout)
        assert got == want, f"{self.proc.args}: {got!r}, not {want!r}"

    def tell(self, text="go"):
        self.proc.stdin.write(text.encode() + b"\n")
        self.proc.stdin.flush()

    def stop(self):
        return stop_process(self.proc)


def read_responses(conn, n, timeout=10):
    """Reads exactly n responses of the form the test servers send
    (Content-Length bodies); returns their status codes."""
    conn.settimeout(timeout)
    data, statuses = b"", []
    while len(statuses) < n:
        end = data.find(b"\r\n\r\n")
        if end >= 0:
            head = data[:end].decode()
            length = next(int(h.split(":", 1)[1]) for h in head.split("\r\n")
                          if h.lower().startswith("content-length:"))
            if len(data) >= end + 4 + length:
                statuses.append(int(head.split(" ")[1]))
                data = data[end + 4 + length:]
                continue
        chunk = conn.recv(65536)
        assert chunk, "server closed early"
        data += chunk
    assert data == b"", f"more than {n} responses"
    return statuses


# --- the counter itself ----------------------------------------------------


def test_every_protocol_is_counted_from_zero_and_an_empty_connection_is_not(
        app):
    """The family has all four protocols from the start, at 0. A
    connection that carries no byte has no first bytes and is not
    classified; one HTTP request on a new connection then counts its two
    ends as http1, and nothing else moved."""
    with sonde_on(app.port) as sonde:
        assert classified(sonde) == dict.fromkeys(PROTOCOLS, 0)
        assert f"# TYPE {CLASSIFIED} counter" in sonde.text()
        for _ in range(3):
            socket.create_connection(("127.0.0.1", app.port),
                                     timeout=10).close()
        # Closed by the server too: its reads found the end, no byte.
        time.sleep(0.5)
        assert keepalive_requests(app.port, ["/after-empty"],
                                  connections=1) == [200]
        settle_classified(sonde, dict.fromkeys(PROTOCOLS, 0), {"http1": 2})
        assert sonde.settled_series(app.port, 1) == {
            ("GET", "200", "/after-empty"): 1}


# --- HTTP/1 ----------------------------------------------------------------


def test_http1_keepalive_connections_are_classified_once_each(nginx):
    """Twenty requests on two keep-alive connections to nginx: two
    connections, four ends, four http1 classifications (not one per
    request), and every request counted once on each side."""
    with sonde_on(nginx.port) as sonde:
        before = classified(sonde)
        paths = ["/", "/fail", "/users/7", "/", "/users/8"] * 4
        statuses = keepalive_requests(nginx.port, paths, connections=2)
        assert statuses.count(200) == 16 and statuses.count(503) == 4
        assert sonde.settled_series(nginx.port, 20) == {
            ("GET", "200", "/"): 8,
            ("GET", "503", "/fail"): 4,
            ("GET", "200", "/users/{id}"): 8,
        }
        wait_for(lambda: client_series(sonde, nginx.port, PYTEST_SERVICE)
                 == {("GET", "200"): 16, ("GET", "503"): 4}, 10,
                 what="this process's client series")
        settle_classified(sonde, before, {"http1": 4})


# --- HTTP/2 ----------------------------------------------------------------


def curl_counted(args):
    """Runs curl with one -w line per transfer: "status version
    connects"; returns (Counter of (status, version), connections)."""
    out = subprocess.run(["curl", "-sk", "-w",
                          "%{http_code} %{http_version} %{num_connects}\\n",
                          *args], check=True, capture_output=True,
                         text=True, timeout=60).stdout
    got, conns = collections.Counter(), 0
    for line in out.splitlines():
        status, version, n = line.split()
        got[(status, version)] += 1
        conns += int(n)
    return got, conns


H2_PATHS = ["/", "/users/1", "/fail", "/nope"]


def test_http2_prior_knowledge_is_classified_http2(tmp_path):
    """Cleartext HTTP/2 from its first byte (curl's prior knowledge, the
    client preface) into nginx: each connection's two ends are http2,
    never http1 (the preface is also a request line in form), and each
    request is counted once on each side."""
    port = free_port()
    server = nginx_site(tmp_path, port, " http2")
    try:
        with sonde_on(port) as sonde:
            before = classified(sonde)
            got, conns = collections.Counter(), 0
            # curl 7.88 reuses no h2c connection: one transfer each.
            for _ in range(3):
                for path in H2_PATHS:
                    g, n = curl_counted(["--http2-prior-knowledge", "-o",
                                         "/dev/null",
                                         f"http://127.0.0.1:{port}{path}"])
                    got += g
                    conns += n
            assert got == {("200", "2"): 6, ("503", "2"): 3,
                           ("404", "2"): 3}
            assert conns == 12
            check_h2_site_series(sonde, port)
            settle_classified(sonde, before, {"http2": 2 * conns})
    finally:
        server.stop()


def check_h2_site_series(sonde, port):
    """The test site's series after curl fetched H2_PATHS three times:
    nginx's and curl's, exact."""
    assert sonde.settled_series(port, 12) == {
        ("GET", "200", "/"): 3,
        ("GET", "200", "/users/{id}"): 3,
        ("GET", "503", "/fail"): 3,
        ("GET", "404", "/nope"): 3,
    }
    wait_for(lambda: client_series(sonde, port, "curl") == {
        ("GET", "200"): 6, ("GET", "503"): 3, ("GET", "404"): 3},
        10, what="curl's client series")


def test_http2_over_tls_is_tls_on_the_socket_and_http2_in_plaintext(
        tmp_path, cert):
    """curl negotiates h2 with nginx over TLS (ALPN): on the sockets both
    ends are tls, and in the plaintext the OpenSSL probes read, both ends
    are http2: each connection counts twice per end."""
    port = free_port()
    listen = NGINX_TLS_LISTEN.replace(" ssl;", " ssl http2;").format(
        dir=tmp_path)
    server = nginx_site(tmp_path, port, listen)
    try:
        with sonde_on(port) as sonde:
            before = classified(sonde)
            args = []
            for path in H2_PATHS * 3:
                args += ["-o", "/dev/null", f"https://127.0.0.1:{port}{path}"]
            got, conns = curl_counted(["--http2", *args])
            assert got == {("200", "2"): 6, ("503", "2"): 3,
                           ("404", "2"): 3}
            check_h2_site_series(sonde, port)
            settle_classified(sonde, before,
                              {"tls": 2 * conns, "http2": 2 * conns})
    finally:
        server.stop()


# --- TLS -------------------------------------------------------------------


@pytest.fixture
def nginx_tls(tmp_path, cert):
    server = nginx_site(tmp_path, free_port(),
                        NGINX_TLS_LISTEN.format(dir=tmp_path))
    yield server
    server.stop()


def tls_exchange(sonde, port, service, n, window=True):
    """tls-client: connects, does the TLS handshake, then n HTTPS
    requests on that connection. Returns the received count taken after
    the handshake and the one after the requests (before the close);
    window=False (records are expected): None, None."""
    client = Tool(service, "tls-client", port, n)
    try:
        client.expect("connected")
        wait_for(lambda: connects(sonde, port, service) == 1, 10,
                 what="the client's connect counted")
        client.tell()
        client.expect("handshaken")
        base = quiet_received(sonde) if window else None
        client.tell()
        assert client.line() == " ".join(["200"] * n)
        if window:
            time.sleep(1)
        end = received(sonde) if window else None
        client.tell()
        client.expect("closed")
    finally:
        client.stop()
    return base, end


def test_tls_ciphertext_alone_is_classified_tls_and_never_parsed(nginx_tls):
    """With the OpenSSL probes off (--no-tls), an HTTPS connection shows
    sonde only TLS records: both ends are tls, and nothing on them is
    parsed: no record for the eight requests after the handshake, no
    HTTP series, no parse error."""
    port = nginx_tls.port
    service = unique_service("tls-only")
    with sonde_on(port, "--no-tls") as sonde:
        before = classified(sonde)
        errors = parse_errors(sonde)
        base, end = tls_exchange(sonde, port, service, 8)
        assert end == base, f"{end - base} records from ciphertext"
        time.sleep(0.5)
        assert sonde.series(port) == {}
        assert client_series(sonde, port, service) == {}
        assert traffic_samples(sonde) == []
        assert parse_errors(sonde) == errors
        settle_classified(sonde, before, {"tls": 2})


def test_tls_with_plaintext_is_counted_once_as_tls_and_once_as_http1(
        nginx_tls):
    """The OpenSSL probes on: each end of an HTTPS connection is tls on
    its socket and http1 in the plaintext, once each whatever the number
    of requests, and the requests are counted exactly."""
    port = nginx_tls.port
    service = unique_service("tls-plain")
    with sonde_on(port) as sonde:
        assert 1 in {v for n, labels, v in sonde.samples()
                     if n == "sonde_uprobe_attached"}, "no OpenSSL probe"
        before = classified(sonde)
        tls_exchange(sonde, port, service, 8, window=False)
        assert sonde.settled_series(port, 8) == {
            ("GET", "200", "/users/{id}"): 8}
        wait_for(lambda: client_series(sonde, port, service) ==
                 {("GET", "200"): 8}, 10, what="the client's series")
        settle_classified(sonde, before, {"tls": 2, "http1": 2})


# --- unknown ---------------------------------------------------------------


@pytest.mark.parametrize("lookalike", [False, True],
                         ids=["random", "with-protocol-lookalikes"])
def test_ten_megabytes_of_unknown_bytes_make_no_record_and_no_series(
        lookalike):
    """A client and a server exchange 16 bytes each way, the first 0x00,
    then over 10 MB each way of binary data on the same connection, in
    writes of 1 byte to 400 kB. Both ends are unknown, and for those
    10 MB nothing is sent to the daemon (sonde_events_received_total does
    not move), no parse error, no series but the TCP lifecycle's. With
    lookalikes, some writes start with an HTTP/1 request or status line,
    the HTTP/2 preface or a TLS record header: the connection is not
    classified again."""
    port = free_port()
    server_name, client_name = unique_service("blob-srv"), \
        unique_service("blob-cli")
    seed = 30 + lookalike
    with sonde_on(port, "--no-tls") as sonde:
        before = classified(sonde)
        errors = parse_errors(sonde)
        server = Tool(server_name, "blob-server", port, seed, int(lookalike))
        client = None
        try:
            server.expect("listening")
            client = Tool(client_name, "blob-client", port, seed,
                          int(lookalike))
            client.expect("connected")
            server.expect("accepted")
            # sonde sees the connection: the connect is counted.
            wait_for(lambda: connects(sonde, port, client_name) == 1, 10,
                     what="the client's connect counted")
            client.tell()
            client.expect("first")
            base = quiet_received(sonde)
            client.tell()
            done = client.line(timeout=120).split()
            assert done[0] == "done" and min(map(int, done[1:])) >= 10**7
            assert_no_records_since(sonde, base)
            assert parse_errors(sonde) == errors
            client.tell()
            client.expect("closed")
            assert server.line().split() == ["done", done[1], done[2]]
        finally:
            if client:
                client.stop()
            server.stop()
        time.sleep(0.5)
        assert traffic_samples(sonde) == []
        settle_classified(sonde, before, {"unknown": 2})


def lead(first_bytes, size=16):
    """first_bytes, then fixed bytes that are no protocol's, as hex."""
    rest = random.Random(first_bytes).randbytes(size - len(first_bytes))
    return (first_bytes + rest).hex()


# (lead bytes in hex, who sends them, what the connection is): after the
# lead, the client sends HTTP/1.1 requests and the server answers them.
PREAMBLES = [
    pytest.param("", "client", "http1", id="no-lead-control"),
    pytest.param(lead(b"\x00"), "client", "unknown", id="zero-from-client"),
    pytest.param(lead(b"\x00"), "server", "unknown", id="zero-from-server"),
    pytest.param(lead(b"\xff\xfe"), "server", "unknown",
                 id="high-bytes-from-server"),
    # A TLS record header with a version byte past 0x04 is not TLS, nor
    # is an application-data record (0x17) at the start.
    pytest.param(lead(b"\x16\x03\x05"), "client", "unknown",
                 id="tls-version-out-of-range"),
    pytest.param(lead(b"\x17\x03\x03"), "client", "unknown",
                 id="tls-application-data-first"),
    pytest.param(lead(b"\x16\x03\x00"), "client", "tls", id="tls-3.0"),
    pytest.param(lead(b"\x16\x03\x04"), "client", "tls", id="tls-1.3-byte"),
    pytest.param(lead(b"\x16\x03\x03"), "server", "tls",
                 id="tls-from-server"),
]


@pytest.mark.parametrize("lead_hex,first,protocol", PREAMBLES)
def test_http_after_other_first_bytes_is_never_parsed(lead_hex, first,
                                                      protocol):
    """A connection whose first bytes (from either side) are not HTTP,
    then carries HTTP/1.1 requests and answers: classified once, from
    those first bytes, and the requests after them are not counted, make
    no record (from the lead read to the last answer) and no parse
    error. Without the lead (the control), the same server and client
    are http1 and every request counted."""
    port = free_port()
    n = 6
    server = Server([sys.executable, TOOL, "preamble-server", str(port),
                     lead_hex, first], port)
    try:
        with sonde_on(port, "--no-tls") as sonde:
            before = classified(sonde)
            errors = parse_errors(sonde)
            with socket.create_connection(("127.0.0.1", port),
                                          timeout=10) as conn:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                wait_for(lambda: connects(sonde, port, PYTEST_SERVICE) == 1,
                         10, what="this process's connect counted")
                lead_bytes = bytes.fromhex(lead_hex)
                if first == "client":
                    conn.sendall(lead_bytes)
                else:
                    conn.settimeout(10)
                    got = b""
                    while len(got) < len(lead_bytes):
                        got += conn.recv(len(lead_bytes) - len(got))
                    assert got == lead_bytes
                # The lead is a read of its own at the other end, made
                # by now.
                time.sleep(0.2)
                base = quiet_received(sonde)
                for i in range(n):
                    conn.sendall(b"GET /after/%d HTTP/1.1\r\nHost: x\r\n\r\n"
                                 % i)
                    assert read_responses(conn, 1) == [200]
                if protocol == "http1":
                    assert sonde.settled_series(port, n) == {
                        ("GET", "200", "/after/{id}"): n}
                else:
                    assert_no_records_since(sonde, base)
            assert parse_errors(sonde) == errors
            if protocol != "http1":
                time.sleep(0.5)
                assert traffic_samples(sonde) == []
            settle_classified(sonde, before, {protocol: 2})
    finally:
        server.stop()


def test_a_connection_that_switches_protocols_is_classified_afresh():
    """A WebSocket upgrade: the request and its 101 are one HTTP/1
    exchange on each side; what follows the 101 is classified anew, from
    its first bytes (a binary frame): unknown on both ends. Frames whose
    payload reads like an HTTP request are not taken for one, and the
    binary phase makes no record."""
    port = free_port()
    server = Server([sys.executable, TOOL, "upgrade-server", str(port)],
                    port)
    try:
        with sonde_on(port, "--no-tls") as sonde:
            before = classified(sonde)
            with socket.create_connection(("127.0.0.1", port),
                                          timeout=10) as conn:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conn.sendall(b"GET /chat HTTP/1.1\r\nHost: x\r\n"
                             b"Upgrade: websocket\r\n"
                             b"Connection: Upgrade\r\n\r\n")
                conn.settimeout(10)
                got = b""
                while b"\r\n\r\n" not in got:
                    got += conn.recv(4096)
                assert got.startswith(b"HTTP/1.1 101 ")
                assert sonde.settled_series(port, 1) == {
                    ("GET", "101", "/chat"): 1}
                settle_classified(sonde, before, {"http1": 2})
                base = quiet_received(sonde)
                # Binary frames (0x82: final, binary), some of whose
                # payloads start like a request line.
                for i in range(20):
                    payload = (b"GET /frame/%d HTTP/1.1\r\n\r\n" % i
                               if i % 2 else os.urandom(40))
                    frame = bytes([0x82, len(payload)]) + payload
                    conn.sendall(frame)
                    echo = b""
                    while len(echo) < len(frame):
                        echo += conn.recv(len(frame) - len(echo))
                    assert echo == frame
                assert_no_records_since(sonde, base)
            settle_classified(sonde, before, {"http1": 2, "unknown": 2})
            assert sonde.series(port) == {("GET", "101", "/chat"): 1}
    finally:
        server.stop()


# --- HTTP/1 found after a few bytes -----------------------------------------


def test_request_line_from_its_first_byte_in_pieces_is_counted_exactly(app):
    """Each request leaves in three writes 50 ms apart: "G", then the
    rest of the head but its last line, then "\\r\\n". The server's first
    read is the one byte "G": the connection is http1 from it, and each
    of the requests on it is counted once, on both sides."""
    k = 5
    with sonde_on(app.port) as sonde:
        before = classified(sonde)
        with socket.create_connection(("127.0.0.1", app.port),
                                      timeout=10) as conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for _ in range(k):
                for piece in (b"G", b"ET /split/12 HTTP/1.1\r\nHost: x\r\n",
                              b"\r\n"):
                    conn.sendall(piece)
                    time.sleep(0.05)
                assert read_responses(conn, 1) == [200]
        assert sonde.settled_series(app.port, k) == {
            ("GET", "200", "/split/{id}"): k}
        wait_for(lambda: client_series(sonde, app.port, PYTEST_SERVICE) ==
                 {("GET", "200"): k}, 10, what="this process's series")
        settle_classified(sonde, before, {"http1": 2})


def split_server(port, cut, hold=False):
    """classify_tool.py split-server: the first cut bytes of each status
    line, then the rest, 50 ms apart."""
    tool = Tool(unique_service("split"), "split-server", port, int(hold),
                cut)
    try:
        wait_port(port)
    except BaseException:
        tool.stop()
        raise
    return tool


def test_status_line_in_pieces_is_counted_exactly_by_the_client():
    """A server that writes each status line as "HTT" and then the rest:
    every one of the client's requests is counted once on its side (and
    on the server's), and the connection once as http1 at each end."""
    k = 6
    port = free_port()
    server = split_server(port, cut=3)
    try:
        with sonde_on(port) as sonde:
            before = classified(sonde)
            paths = [f"/piece/{i}" for i in range(k)]
            assert keepalive_requests(port, paths, connections=1) == \
                [200] * k
            wait_for(lambda: client_series(sonde, port, PYTEST_SERVICE) ==
                     {("GET", "200"): k}, 10, what="this process's series")
            assert sonde.settled_series(port, k) == {
                ("GET", "200", "/piece/{id}"): k}
            settle_classified(sonde, before, {"http1": 2})
    finally:
        server.stop()


def test_connection_opened_before_sonde_is_classified_from_its_status_line():
    """A connection opened, and its first request sent and read, before
    sonde starts: the first bytes sonde sees on it, at both ends, are
    "HTTP/1.1 2", the start of the answer's status line (not "HTT", which
    an extension method could begin too: from it no end could tell it
    is the server's). Both ends are http1 from there; the answer to the
    request sonde never saw is no exchange, and each request after it is
    counted once on each side."""
    k = 4
    port = free_port()
    server = split_server(port, cut=10, hold=True)
    try:
        with socket.create_connection(("127.0.0.1", port),
                                      timeout=10) as conn:
            conn.sendall(b"GET /piece/0 HTTP/1.1\r\nHost: x\r\n\r\n")
            server.expect("request")
            with sonde_on(port) as sonde:
                before = classified(sonde)
                server.tell()
                assert read_responses(conn, 1) == [200]
                for i in range(1, k + 1):
                    conn.sendall(b"GET /piece/%d HTTP/1.1\r\nHost: x\r\n\r\n"
                                 % i)
                    assert read_responses(conn, 1) == [200]
                assert sonde.settled_series(port, k) == {
                    ("GET", "200", "/piece/{id}"): k}
                wait_for(lambda: client_series(sonde, port, PYTEST_SERVICE)
                         == {("GET", "200"): k}, 10,
                         what="this process's series")
                settle_classified(sonde, before, {"http1": 2})
    finally:
        server.stop()
