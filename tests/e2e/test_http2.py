"""HTTP/2: nginx and node serve it over TLS (ALPN h2) and in cleartext
(h2c with prior knowledge); curl and node call them, many requests at once
on one connection, with bodies large enough to span many reads. Every
request is counted once, on both sides, with its method, route and
status; a connection whose frames sonde cannot follow is counted as
lost, never guessed at."""
import collections
import json
import os
import shutil
import socket
import subprocess
import time

import pytest

from conftest import (CLIENT, NGINX_SITE, NGINX_TLS_LISTEN, SERVERS,
                      Server, client_series, free_port, nginx_server,
                      python_server, settle, total, wait_for)

# The test site (conftest.NGINX_SITE) plus a large file, in h2.
NGINX_BIG = """
    server {{
        listen 127.0.0.1:{port}{listen};
        location = /big {{ alias {dir}/big.bin; }}
        location = /upload {{ return 201 "stored\\n"; }}
    }}"""


def h2_nginx(tmp_path, listen):
    """nginx serving the test site and /big (300000 bytes) on two ports
    with the given listen parameters; returns (server, site, big)."""
    (tmp_path / "big.bin").write_bytes(os.urandom(300000))
    site, big = free_port(), free_port()
    servers = (NGINX_SITE.format(dir=tmp_path, port=site, listen=listen) +
               NGINX_BIG.format(dir=tmp_path, port=big, listen=listen))
    return nginx_server(tmp_path, site, servers), site, big


def curl_h2(urls, *flags):
    """One curl process for every URL (one connection per origin);
    returns Counter of (status, HTTP version)."""
    args = []
    for url in urls:
        args += ["-o", "/dev/null", url]
    out = subprocess.run(["curl", "-sk", *flags,
                          "-w", "%{http_code} %{http_version}\\n", *args],
                         check=True, capture_output=True, text=True,
                         timeout=60).stdout
    return collections.Counter(tuple(line.split()) for line in
                               out.splitlines())


def lost(sonde):
    return (total(sonde, "sonde_parse_errors_total", reason="http2_lost"),
            total(sonde, "sonde_events_dropped_total",
                  reason="http2_unfollowed"))


def test_nginx_h2_over_tls_and_curl_in_parallel(sonde, cert, tmp_path):
    """curl negotiates h2 with nginx (ALPN) and sends up to 16 requests
    at once on one connection: 300000-byte answers interleave their DATA
    frames with other streams' HEADERS. 503 and 404 are not in HPACK's
    static table, so they travel as dynamic table references after their
    first use: every block must be decoded in order."""
    listen = NGINX_TLS_LISTEN.replace(" ssl;", " ssl http2;").format(
        dir=tmp_path)
    server, site, big = h2_nginx(tmp_path, listen)
    try:
        urls = []
        for i in range(20):
            urls += [f"https://127.0.0.1:{big}/big",
                     f"https://127.0.0.1:{site}/users/{i}",
                     f"https://127.0.0.1:{site}/fail",
                     f"https://127.0.0.1:{site}/nope"]
        urls += [f"https://127.0.0.1:{site}/"] * 10
        assert curl_h2(urls, "--http2", "-Z", "--parallel-max", "16") == {
            ("200", "2"): 50, ("503", "2"): 20, ("404", "2"): 20}
        assert sonde.settled_series(big, 20) == {("GET", "200", "/big"): 20}
        assert sonde.settled_series(site, 70) == {
            ("GET", "200", "/users/{id}"): 20,
            ("GET", "503", "/fail"): 20,
            ("GET", "404", "/nope"): 20,
            ("GET", "200", "/"): 10,
        }
        settle(sonde, CLIENT + "_count", 70, service_name="curl",
               server_port=site)
        assert client_series(sonde, site, "curl") == {
            ("GET", "200"): 30, ("GET", "503"): 20, ("GET", "404"): 20}
        assert client_series(sonde, big, "curl") == {("GET", "200"): 20}
        assert lost(sonde) == (0, 0)
    finally:
        server.stop()


H2C_PROXY = """
    server {{
        listen 127.0.0.1:{port} http2;
        client_max_body_size 1m;
        location / {{ proxy_pass http://127.0.0.1:{backend}; }}
    }}"""


def test_h2c_front_of_an_http1_backend_with_uploads(sonde, tmp_path):
    """Cleartext HTTP/2 (prior knowledge) into nginx, which proxies over
    HTTP/1.1 to a python backend: nginx writes a frame's header and its
    payload from separate buffers of one writev, and reads 200000-byte
    uploads in DATA frames. curl's calls and nginx's series are HTTP/2,
    nginx's upstream calls and the backend's series HTTP/1.1; each
    request is counted once on each."""
    backend = python_server(free_port())
    port = free_port()
    body = tmp_path / "body.bin"
    body.write_bytes(os.urandom(200000))
    proxy = nginx_server(tmp_path, port, H2C_PROXY.format(
        port=port, backend=backend.port))
    try:
        url = f"http://127.0.0.1:{port}"
        got = collections.Counter()
        # curl 7.88 does not reuse an h2c connection: one per request.
        for i in range(6):
            got += curl_h2([f"{url}/users/{i}"], "--http2-prior-knowledge")
            got += curl_h2([f"{url}/upload"], "--http2-prior-knowledge",
                           "--data-binary", f"@{body}")
        got += curl_h2([f"{url}/status/503"], "--http2-prior-knowledge")
        assert got == {("200", "2"): 6, ("201", "2"): 6, ("503", "2"): 1}
        want = {("GET", "200", "/users/{id}"): 6,
                ("POST", "201", "/upload"): 6,
                ("GET", "503", "/status/{id}"): 1}
        assert sonde.settled_series(port, 13) == want
        assert sonde.settled_series(backend.port, 13) == want
        settle(sonde, CLIENT + "_count", 13, service_name="curl",
               server_port=port)
        calls = {("GET", "200"): 6, ("POST", "201"): 6, ("GET", "503"): 1}
        assert client_series(sonde, port, "curl") == calls
        settle(sonde, CLIENT + "_count", 13, service_name="nginx",
               server_port=backend.port)
        assert client_series(sonde, backend.port, "nginx") == calls
        assert lost(sonde) == (0, 0)
    finally:
        proxy.stop()
        backend.stop()


def node_attached(sonde, node):
    return any(n == "sonde_uprobe_attached" and labels["target"] == node
               and v == 1 for n, labels, v in sonde.samples())


@pytest.mark.skipif(shutil.which("node") is None, reason="no node")
def test_node_http2_server_and_client_over_tls(sonde, cert):
    """node's http2 module on both sides, through the OpenSSL in node's
    executable: 60 streams opened at once on one session, uploads and
    100000-byte answers in flight together."""
    node = os.path.realpath(shutil.which("node"))
    app = os.path.join(SERVERS, "h2app.js")
    port = free_port()
    server = Server([node, app, "server", str(port), str(cert[0]),
                     str(cert[1])], port)
    try:
        wait_for(lambda: node_attached(sonde, node), timeout=20,
                 what=f"{node} attached")
        out = subprocess.run([node, app, "client", str(port), "60"],
                             check=True, capture_output=True, text=True,
                             timeout=60).stdout
        want = collections.Counter()
        for i in range(60):
            method = "POST" if i % 4 == 1 else "GET"
            if i % 10 == 9:
                route, status = "/boom", "500"
            else:
                route = "/big/{id}" if i % 3 == 0 else "/items/{id}"
                status = "201" if method == "POST" else "200"
            want[(method, status, route)] += 1
        statuses = collections.Counter()
        for (_, status, _), n in want.items():
            statuses[status] += n
        assert json.loads(out) == statuses
        assert sonde.settled_series(port, 60) == want
        settle(sonde, CLIENT + "_count", 60, service_name="node",
               server_port=port)
        calls = collections.Counter()
        for (method, status, _), n in want.items():
            calls[(method, status)] += n
        assert client_series(sonde, port, "node") == calls
        assert lost(sonde) == (0, 0)
    finally:
        server.stop()


def frame(kind, flags, stream, payload=b""):
    return (len(payload).to_bytes(3, "big") + bytes([kind, flags]) +
            stream.to_bytes(4, "big") + payload)


def test_more_frames_than_sonde_follows_is_counted_not_guessed(sonde,
                                                               tmp_path):
    """A client writes the preface, SETTINGS and 600 PINGs in one write,
    more frames than sonde walks in one call, then a request. Neither
    side's frames can be followed from there: each side's connection is
    counted once as unfollowed, and nothing is made up."""
    server, site, _ = h2_nginx(tmp_path, " http2")
    try:
        with socket.create_connection(("127.0.0.1", site), timeout=10) as s:
            s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" +
                      frame(4, 0, 0) +
                      b"".join(frame(6, 0, 0, i.to_bytes(8, "big"))
                               for i in range(600)))
            # GET / over http, authority 127.0.0.1: HPACK static
            # indexes 2, 6 and 4, and a literal.
            block = bytes([0x82, 0x86, 0x84, 0x41, 9]) + b"127.0.0.1"
            s.sendall(frame(1, 0x5, 1, block))
            deadline = time.monotonic() + 10
            got = b""
            while b"ok\n" not in got and time.monotonic() < deadline:
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
            assert b"ok\n" in got, "nginx did not answer the request"
        assert settle(sonde, "sonde_events_dropped_total", 2,
                      reason="http2_unfollowed") == 2
        assert sonde.series(site) == {}
        assert not [labels for n, labels, _ in sonde.samples()
                    if n == CLIENT + "_count"
                    and labels["server_port"] == str(site)]
        assert lost(sonde)[0] == 0
    finally:
        server.stop()
