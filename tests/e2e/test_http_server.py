"""Server-side HTTP/1.x metrics, end to end: real servers, real clients,
counts read from a live scrape of sonde's /metrics."""
import os
import random
import re
import socket
import string
import sys
import textwrap
import time

from conftest import (HISTOGRAM, Server, Sonde, check_buckets,
                      keepalive_requests, python_server, free_port)

KNOWN_METHODS = {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT",
                 "OPTIONS", "TRACE", "PATCH", "_OTHER"}


def test_nginx_counts_every_request_once_per_route_and_status(sonde, nginx):
    paths = (["/"] * 40 + ["/fail"] * 25 +
             [f"/users/{n}" for n in range(1000, 1060)])
    random.Random(1).shuffle(paths)
    statuses = keepalive_requests(nginx.port, paths, connections=5)
    assert statuses.count(200) == 100 and statuses.count(503) == 25

    series = sonde.settled_series(nginx.port, len(paths))
    assert series == {
        ("GET", "200", "/"): 40,
        ("GET", "503", "/fail"): 25,
        ("GET", "200", "/users/{id}"): 60,
    }
    services = {labels["service_name"] for name, labels, _ in sonde.samples()
                if name == HISTOGRAM + "_count"
                and labels["server_port"] == str(nginx.port)}
    assert services == {"nginx"}


def test_durations_land_in_the_right_buckets(sonde, app):
    timings = []
    keepalive_requests(app.port, ["/sleep/5"] * 15 + ["/sleep/50"] * 15,
                       connections=3, timings=timings)
    sonde.settled_series(app.port, 30)

    buckets = {}
    for name, labels, value in sonde.samples():
        if (name == HISTOGRAM + "_bucket"
                and labels["server_port"] == str(app.port)):
            buckets[(labels["http_route"], labels["le"])] = value
    # The server's time lies between its handler's sleep and the client's
    # round trip: on a quiet VM, the 5 ms ones in (0.005, 0.01] and the
    # 50 ms ones in (0.05, 0.075], exactly.
    sleeps = [0.005] * 15 + [0.05] * 15
    check_buckets({le: v for (route, le), v in buckets.items()
                   if route == "/sleep/{id}"},
                  list(zip(sleeps, timings)), "/sleep/{id} buckets")


def test_connection_opened_before_sonde_starts_is_measured(app):
    conn = socket.create_connection(("127.0.0.1", app.port))
    try:
        request = b"GET /before HTTP/1.1\r\nHost: t\r\n\r\n"
        conn.sendall(request)
        assert read_responses(conn, 1) == [200]
        late = Sonde()
        try:
            for _ in range(5):
                conn.sendall(request)
                assert read_responses(conn, 1) == [200]
            series = late.settled_series(app.port, 5)
            assert series == {("GET", "200", "/before"): 5}
        finally:
            assert late.stop() == 0
    finally:
        conn.close()


def read_responses(conn, n, timeout=5):
    """Reads exactly n complete responses (bodies sized by Content-Length)
    and returns their status codes."""
    conn.settimeout(timeout)
    data, statuses = b"", []
    while len(statuses) < n:
        end = data.find(b"\r\n\r\n")
        if end >= 0:
            head = data[:end].decode()
            length = int(re.search(r"(?i)content-length: *(\d+)", head)[1])
            if len(data) >= end + 4 + length:
                statuses.append(int(head.split(" ")[1]))
                data = data[end + 4 + length:]
                continue
        chunk = conn.recv(65536)
        assert chunk, "server closed early"
        data += chunk
    assert data == b"", "more than %d responses" % n
    return statuses


def test_head_written_in_pieces_is_counted_once(sonde, app):
    pieces = [b"GE", b"T /split/pie", b"ces?token=abc HTTP/1.1\r\nHo",
              b"st: t\r\n", b"\r\n"]
    with socket.create_connection(("127.0.0.1", app.port)) as conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for piece in pieces:
            conn.sendall(piece)
            time.sleep(0.05)
        read_responses(conn, 1)
    assert sonde.settled_series(app.port, 1) == {
        ("GET", "200", "/split/pieces"): 1}


def test_pipelined_requests_are_each_counted(sonde, app):
    burst = b"".join(b"GET /pipe/%s HTTP/1.1\r\nHost: t\r\n\r\n" % p
                     for p in (b"a", b"b", b"c"))
    with socket.create_connection(("127.0.0.1", app.port)) as conn:
        conn.sendall(burst)
        read_responses(conn, 3)
    assert sonde.settled_series(app.port, 3) == {
        ("GET", "200", "/pipe/a"): 1,
        ("GET", "200", "/pipe/b"): 1,
        ("GET", "200", "/pipe/c"): 1,
    }


def test_a_body_that_starts_like_a_status_line_is_not_a_request(sonde, app):
    def no_request():
        return sum(v for n, lab, v in sonde.samples()
                   if n == "sonde_parse_errors_total"
                   and lab["reason"] == "no_request")

    before = no_request()
    paths = ["/message", "/x", "/message", "/message", "/x"]
    assert keepalive_requests(app.port, paths, connections=2) == [200] * 5
    # Each /message body, written after its head, begins with
    # "HTTP/1.1 404": it is seen, and set aside as no request's answer.
    assert sonde.settled_series(app.port, 5) == {
        ("GET", "200", "/message"): 3,
        ("GET", "200", "/x"): 2,
    }
    assert no_request() - before == 3


def test_nginx_pipelining_and_sendfile_responses(sonde, nginx):
    burst = b"".join(b"GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % p for p in (
        b"/users/1", b"/static/page.html", b"/fail", b"/nothing/here"))
    with socket.create_connection(("127.0.0.1", nginx.port)) as conn:
        conn.sendall(burst)
        assert read_responses(conn, 4) == [200, 200, 503, 404]
    assert sonde.settled_series(nginx.port, 4) == {
        ("GET", "200", "/users/{id}"): 1,
        ("GET", "200", "/static/page.html"): 1,
        ("GET", "503", "/fail"): 1,
        ("GET", "404", "/nothing/here"): 1,
    }


def test_query_strings_never_reach_a_label(sonde, app):
    keepalive_requests(app.port, ["/search?q=secret-value&user=42",
                                  "/search#frag-secret"], connections=1)
    assert sonde.settled_series(app.port, 2) == {
        ("GET", "200", "/search"): 2}
    text = sonde.text()
    assert "secret" not in text and "?" not in text.replace("# ", "")


def test_distinct_paths_are_capped_per_service():
    rng = random.Random(7)
    paths = set()
    while len(paths) < 1000:
        paths.add("/r/" + "".join(rng.choices(string.ascii_lowercase, k=8)))
    cap = 50
    late = Sonde("--max-routes", str(cap))
    # Its own service name: the cap is per service, and other servers on
    # the host may share the executable's name.
    service = f"capped-{os.getpid()}"
    server = python_server(free_port(),
                           env=dict(os.environ, OTEL_SERVICE_NAME=service))
    try:
        keepalive_requests(server.port, sorted(paths), connections=4)
        series = late.settled_series(server.port, 1000)
        assert len(series) == cap + 1
        assert series[("GET", "200", "_overflow")] == 1000 - cap
        assert sum(series.values()) == 1000
        overflows = [v for n, labels, v in late.samples()
                     if n == "sonde_route_overflows_total"
                     and labels["service_name"] == service]
        assert overflows == [1000 - cap]
    finally:
        server.stop()
        assert late.stop() == 0


def test_garbage_neither_crashes_sonde_nor_makes_labels(sonde, nginx):
    rng = random.Random(3)
    blobs = [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
             for _ in range(60)]
    blobs += [b"GET \x00\xff\xfe HTTP/1.1\r\nHost: t\r\n\r\n",
              b"GET /half",  # half-sent, then closed
              b"POST /ok HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\nx",
              b"FOO /users/1 HTTP/1.1\r\nHost: t\r\n\r\n",
              b"get /lower HTTP/1.1\r\nHost: t\r\n\r\n",
              b"GET " + b"/a" * 400 + b" HTTP/1.1\r\nHost: t\r\n\r\n",
              b"HTTP/1.1 200 OK\r\n\r\n"]
    for blob in blobs:
        with socket.create_connection(("127.0.0.1", nginx.port)) as conn:
            conn.settimeout(2)
            conn.sendall(blob)
            conn.shutdown(socket.SHUT_WR)
            try:
                while conn.recv(4096):
                    pass
            except OSError:
                pass
    # A well-formed request afterwards is still measured.
    keepalive_requests(nginx.port, ["/users/9"], connections=1)
    time.sleep(0.5)
    assert sonde.get("/healthz")[0] == 200
    series = sonde.series(nginx.port)
    assert series.get(("GET", "200", "/users/{id}")) == 1
    assert series.get(("_OTHER", "200", "/users/{id}")) == 1  # FOO
    for method, status, route in series:
        assert method in KNOWN_METHODS
        assert re.fullmatch(r"[1-5][0-9][0-9]", status)
        assert route in ("_unknown", "_overflow") or re.fullmatch(
            r"/[\x21-\x7e]*", route), route
        assert len(route) <= 96


def test_a_request_after_an_empty_line_is_counted(sonde, nginx):
    """RFC 9112 section 2.2: a client may send "\\r\\n" after a body; the
    server skips it before the next request line."""
    with socket.create_connection(("127.0.0.1", nginx.port)) as conn:
        conn.sendall(b"POST /users/1 HTTP/1.1\r\nHost: t\r\n"
                     b"Content-Length: 2\r\n\r\nhi")
        assert read_responses(conn, 1) == [200]
        conn.sendall(b"\r\nGET /users/2 HTTP/1.1\r\nHost: t\r\n\r\n")
        assert read_responses(conn, 1) == [200]
    assert sonde.settled_series(nginx.port, 2) == {
        ("POST", "200", "/users/{id}"): 1,
        ("GET", "200", "/users/{id}"): 1,
    }


# Before each read, peeks at the first bytes (as a server that sniffs for
# TLS on a shared port does), 1, 5 or 64 of them in turn, with
# recv(MSG_PEEK) and recvmsg(MSG_PEEK) by turns. One connection at a time.
PEEKING_SERVER = textwrap.dedent("""
    import socket, sys

    srv = socket.create_server(("127.0.0.1", int(sys.argv[1])))
    sizes = [1, 5, 64]
    n = 0
    while True:
        conn, _ = srv.accept()
        with conn:
            while True:
                size = sizes[n % len(sizes)]
                if n % 2:
                    head = conn.recvmsg(size, 0, socket.MSG_PEEK)[0]
                else:
                    head = conn.recv(size, socket.MSG_PEEK)
                n += 1
                if not head:
                    break
                path = conn.recv(65536).split(b" ", 2)[1]
                conn.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Length: %d"
                             b"\\r\\n\\r\\n%s" % (len(path), path))
""")


def test_bytes_peeked_before_the_read_are_taken_in_once(sonde, tmp_path):
    script = tmp_path / "peek.py"
    script.write_text(PEEKING_SERVER)
    port = free_port()
    server = Server([sys.executable, str(script), str(port)], port)
    try:
        paths = ["/users/1", "/orders/2", "/users/3"] * 3
        assert keepalive_requests(port, paths, connections=1) == [200] * 9
    finally:
        server.stop()
    assert sonde.settled_series(port, 9) == {
        ("GET", "200", "/users/{id}"): 6,
        ("GET", "200", "/orders/{id}"): 3,
    }
