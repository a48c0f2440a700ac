"""HTTPS through the OpenSSL uprobes: nginx, python's ssl module and node
serve TLS with a certificate made here, curl and python call them; the
plaintext gives the same route, method and status series as plain HTTP,
and the ciphertext on the same sockets adds nothing."""
import http.client
import os
import shutil
import socket
import ssl
import subprocess
import sys
import textwrap
import time

import pytest

from conftest import (HISTOGRAM, NGINX_SITE, NGINX_TLS_LISTEN, SERVERS,
                      Server, Sonde, check_buckets, client_series, free_port,
                      keepalive_requests, nginx_server, nginx_site, wait_for)


# TLS 1.3 only: the client's Finished and first request can share a segment.
NGINX_TLS13_LISTEN = NGINX_TLS_LISTEN + """;
        ssl_protocols TLSv1.3"""

# http.server behind ssl.SSLContext.wrap_socket: python's _ssl module
# calls SSL_read_ex / SSL_write_ex in libssl.
PY_TLS_SERVER = textwrap.dedent("""
    import http.server, ssl, sys, time

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            if self.path.startswith("/sleep/"):
                time.sleep(int(self.path.split("/")[2]) / 1000)
            code = 500 if self.path == "/boom" else 200
            body = b"hello\\n"
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[2], sys.argv[3])
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])),
                                          Handler)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    srv.serve_forever()
""")

NODE_TLS_SERVER = textwrap.dedent("""
    const https = require('https'), fs = require('fs');
    const [port, cert, key] = process.argv.slice(2);
    https.createServer({cert: fs.readFileSync(cert), key: fs.readFileSync(key)},
      (req, res) => {
        res.writeHead(req.url === '/boom' ? 500 : 200,
                      {'Content-Length': 6});
        res.end('hello\\n');
      }).listen(Number(port), '127.0.0.1');
""")


@pytest.fixture
def nginx_tls(tmp_path, cert):
    server = nginx_site(tmp_path, free_port(),
                        NGINX_TLS_LISTEN.format(dir=tmp_path))
    yield server
    server.stop()


def curl(port, paths):
    """One curl process per call, every path over one keep-alive TLS
    connection; returns the status codes."""
    args = []
    for p in paths:
        args += ["-o", "/dev/null", f"https://127.0.0.1:{port}{p}"]
    out = subprocess.run(["curl", "-sk", "--http1.1",
                          "-w", "%{http_code}\\n", *args],
                         check=True, capture_output=True, text=True,
                         timeout=60).stdout
    return [int(code) for code in out.split()]


def https_requests(port, paths, connections=3, timings=None):
    """python's http.client over TLS, keep-alive, round-robin."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return keepalive_requests(
        port, paths, connections,
        connect=lambda p: http.client.HTTPSConnection(
            "127.0.0.1", p, context=ctx, timeout=10), timings=timings)


def tls_no_socket(sonde):
    return sum(v for n, labels, v in sonde.samples()
               if n == "sonde_events_dropped_total"
               and labels["reason"] == "tls_no_socket")


def attached_targets(sonde):
    return {labels["target"]: v for n, labels, v in sonde.samples()
            if n == "sonde_uprobe_attached"}


def test_nginx_https_server_and_curl_client(sonde, nginx_tls):
    port = nginx_tls.port
    statuses = []
    for batch in range(5):
        statuses += curl(port, ["/"] * 4 + ["/fail"] * 2 +
                         [f"/users/{batch}{i}" for i in range(6)])
    assert statuses.count(200) == 50 and statuses.count(503) == 10

    series = sonde.settled_series(port, 60)
    # Exactly the plaintext exchanges: no series, no count from the
    # handshake or the encrypted records on the same sockets.
    assert series == {
        ("GET", "200", "/"): 20,
        ("GET", "503", "/fail"): 10,
        ("GET", "200", "/users/{id}"): 30,
    }
    services = {labels["service_name"] for n, labels, _ in sonde.samples()
                if n == HISTOGRAM + "_count"
                and labels["server_port"] == str(port)}
    assert services == {"nginx"}
    # curl, through libcurl's libssl, is the client side.
    assert wait_for(lambda: client_series(sonde, port, "curl") == {
        ("GET", "200"): 50, ("GET", "503"): 10}, timeout=10,
        what="curl's client series")
    assert 1 in attached_targets(sonde).values()


def test_curl_through_a_connect_proxy(sonde, nginx_tls):
    """curl reads a proxy's answer to CONNECT one byte at a time (so as
    not to read into the TLS that follows): the status line is put
    together across reads. The tunnel's CONNECT is counted once, and each
    HTTPS request through it once, with its own method."""
    proxy_port = free_port()
    proxy = Server([sys.executable, os.path.join(SERVERS, "connect_proxy.py"),
                    str(proxy_port)], proxy_port)
    try:
        url = f"https://127.0.0.1:{nginx_tls.port}"
        out = subprocess.run(
            ["curl", "-sk", "--http1.1", "-x", f"http://127.0.0.1:{proxy_port}",
             "-w", "%{http_code}\n", "-o", "/dev/null", "-o", "/dev/null",
             f"{url}/", f"{url}/fail"],
            check=True, capture_output=True, text=True, timeout=60).stdout
        assert out.split() == ["200", "503"]
        expected = {("CONNECT", "200"): 1, ("GET", "200"): 1,
                    ("GET", "503"): 1}
        wait_for(lambda: client_series(sonde, proxy_port, "curl") == expected,
                 timeout=10, what="curl's client series through the proxy")
        time.sleep(0.3)
        assert client_series(sonde, proxy_port, "curl") == expected
        assert sonde.settled_series(nginx_tls.port, 2) == {
            ("GET", "200", "/"): 1, ("GET", "503", "/fail"): 1}
    finally:
        proxy.stop()


def request_with_finished(port, path):
    """One TLS connection whose first request leaves in the same segment as
    the handshake's last client message (what a fast client on a short
    link looks like to the server): the handshake is run over memory BIOs,
    and the client Finished and the encrypted request go out in one send.
    nginx reads ahead, so OpenSSL takes the request in during the
    handshake and the SSL_read that returns it makes no syscall. Returns
    the status."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(inc, out, server_hostname="127.0.0.1")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                sock.sendall(out.read())
                data = sock.recv(65536)
                assert data, "server closed during the handshake"
                inc.write(data)
        tls.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n"
                  "Connection: close\r\n\r\n".encode())
        sock.sendall(out.read())
        reply = b""
        while True:
            try:
                chunk = tls.read(65536)
            except ssl.SSLWantReadError:
                data = sock.recv(65536)
                if not data:
                    break
                inc.write(data)
                continue
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                break
            if not chunk:
                break
            reply += chunk
    return int(reply.split(b" ", 2)[1])


def test_request_read_during_the_handshake_is_counted(sonde, cert, tmp_path):
    """The SSL object learns its socket in the handshake: a request that
    OpenSSL read together with the client Finished (TLS 1.3, where the
    client speaks first after the handshake) is still counted, on the
    right socket, for every connection."""
    server = nginx_site(tmp_path, free_port(),
                        NGINX_TLS13_LISTEN.format(dir=tmp_path))
    try:
        statuses = [request_with_finished(server.port, p)
                    for p in ["/"] * 15 + ["/fail"] * 5]
        assert statuses.count(200) == 15 and statuses.count(503) == 5
        assert sonde.settled_series(server.port, 20) == {
            ("GET", "200", "/"): 15,
            ("GET", "503", "/fail"): 5,
        }
        # The client ran OpenSSL over memory BIOs (no syscall inside any
        # SSL call): its exchanges are tied to its socket all the same.
        service = os.path.basename(os.path.realpath(sys.executable))
        assert wait_for(lambda: client_series(sonde, server.port, service) ==
                        {("GET", "200"): 15, ("GET", "503"): 5}, timeout=10,
                        what="the memory-BIO client's series")
        assert tls_no_socket(sonde) == 0
    finally:
        server.stop()


def test_tls_on_an_excluded_port_is_not_tied_to_another_socket(cert,
                                                               tmp_path):
    """One nginx worker serves HTTPS on a port sonde excludes and plain
    HTTP on one it traces; one client thread alternates between them,
    its TLS over memory BIOs. nginx's OpenSSL syscalls name the excluded
    socket, so its TLS plaintext is fed to no traced connection: the
    plain port counts exactly its own requests. (A port rule matches the
    local port: the client's side of the TLS connections is traced, and
    tied to the right socket among the client's two.)"""
    tls_port, plain_port = free_port(), free_port()
    tls_site = NGINX_SITE.format(
        dir=tmp_path, port=tls_port,
        listen=NGINX_TLS13_LISTEN.format(dir=tmp_path))
    plain_site = NGINX_SITE.format(dir=tmp_path, port=plain_port, listen="")
    server = nginx_server(tmp_path, tls_port, tls_site + plain_site)
    s = Sonde("--exclude", f"port={tls_port}")
    try:
        plain = http.client.HTTPConnection("127.0.0.1", plain_port,
                                           timeout=10)
        statuses = []
        for i in range(10):
            statuses.append(request_with_finished(tls_port, "/fail"))
            plain.request("GET", f"/users/{i}")
            resp = plain.getresponse()
            resp.read()
            statuses.append(resp.status)
        plain.close()
        assert statuses == [503, 200] * 10
        assert s.settled_series(plain_port, 10) == {
            ("GET", "200", "/users/{id}"): 10}
        service = os.path.basename(os.path.realpath(sys.executable))
        assert client_series(s, plain_port, service) == {("GET", "200"): 10}
        assert s.series(tls_port) == {}
        assert client_series(s, tls_port, service) == {("GET", "503"): 10}
        assert tls_no_socket(s) == 0
    finally:
        server.stop()
        assert s.stop() == 0, s.output()


def test_without_tls_tracing_the_ciphertext_counts_nothing(nginx_tls):
    """--no-tls: the syscalls on the TLS sockets carry only ciphertext,
    which must never look like HTTP."""
    s = Sonde("--no-tls")
    try:
        assert curl(nginx_tls.port, ["/"] * 10) == [200] * 10
        # A plain request elsewhere proves events flow meanwhile.
        time.sleep(1)
        assert s.series(nginx_tls.port) == {}
        assert attached_targets(s) == {}
    finally:
        assert s.stop() == 0, s.output()


def test_python_ssl_server(sonde, cert, tmp_path):
    port = free_port()
    script = tmp_path / "tls_server.py"
    script.write_text(PY_TLS_SERVER)
    server = Server([sys.executable, str(script), str(port), str(cert[0]),
                     str(cert[1])], port)
    try:
        paths = (["/sleep/30"] * 6 + ["/boom"] * 4 +
                 [f"/items/{n}" for n in range(10)])
        timings = []
        statuses = https_requests(port, paths, timings=timings)
        assert statuses.count(200) == 16 and statuses.count(500) == 4
        assert sonde.settled_series(port, 20) == {
            ("GET", "200", "/sleep/{id}"): 6,
            ("GET", "500", "/boom"): 4,
            ("GET", "200", "/items/{id}"): 10,
        }
        buckets = {labels["le"]: v for n, labels, v in sonde.samples()
                   if n == HISTOGRAM + "_bucket"
                   and labels["server_port"] == str(port)
                   and labels["http_route"] == "/sleep/{id}"}
        # Each took more than its 30 ms sleep and at most the client's
        # round trip: in (0.025, 0.075] on a quiet VM.
        check_buckets(buckets, [(0.030, t) for t in timings[:6]],
                      "/sleep/{id} buckets")
    finally:
        server.stop()


def test_tls_server_started_later_with_its_own_libssl(sonde, cert, tmp_path):
    """A libssl no process mapped when sonde started (a private copy, so a
    distinct inode) is found after the exec, attached, and released when
    its last user exits."""
    libdir = tmp_path / "lib"
    libdir.mkdir()
    system_lib = ssl_library_path()
    private = libdir / os.path.basename(system_lib)
    shutil.copy(system_lib, private)
    assert str(private) not in attached_targets(sonde)

    port = free_port()
    script = tmp_path / "tls_server.py"
    script.write_text(PY_TLS_SERVER)
    env = dict(os.environ, LD_LIBRARY_PATH=str(libdir))
    server = Server([sys.executable, str(script), str(port), str(cert[0]),
                     str(cert[1])], port, env=env)
    try:
        assert str(private) in open(f"/proc/{server.proc.pid}/maps").read()
        wait_for(lambda: attached_targets(sonde).get(str(private)) == 1,
                 timeout=15, what=f"{private} attached")
        assert https_requests(port, ["/late"] * 9) == [200] * 9
        assert sonde.settled_series(port, 9) == {("GET", "200", "/late"): 9}
    finally:
        server.stop()
    wait_for(lambda: str(private) not in attached_targets(sonde),
             timeout=15, what=f"{private} released")


def ssl_library_path():
    """The libssl this python's ssl module maps."""
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1]
            if "/libssl.so" in path:
                return path
    raise AssertionError("ssl module loaded no libssl")


@pytest.mark.skipif(shutil.which("node") is None, reason="no node")
def test_node_with_static_openssl_and_memory_bios(sonde, cert, tmp_path):
    """node carries OpenSSL in its executable (no libssl mapped): the exec
    scan finds SSL_read and SSL_write among its own symbols and attaches
    there. node feeds OpenSSL through memory BIOs (libuv does the socket
    I/O, outside any SSL call); the plaintext is still tied to the socket
    the thread read the ciphertext from, and counted exactly."""
    node = os.path.realpath(shutil.which("node"))
    port = free_port()
    script = tmp_path / "server.js"
    script.write_text(NODE_TLS_SERVER)
    server = Server([node, str(script), str(port), str(cert[0]),
                     str(cert[1])], port)
    try:
        assert "libssl" not in open(f"/proc/{server.proc.pid}/maps").read()
        wait_for(lambda: attached_targets(sonde).get(node) == 1,
                 timeout=20, what=f"{node} attached")
        assert https_requests(port, ["/n/1"] * 6 + ["/boom"] * 2) == \
            [200] * 6 + [500] * 2
        assert curl(port, ["/n/2", "/n/3"]) == [200, 200]
        series = sonde.settled_series(port, 10)
        assert series == {
            ("GET", "200", "/n/{id}"): 8,
            ("GET", "500", "/boom"): 2,
        }
        assert {labels["service_name"] for n, labels, _ in sonde.samples()
                if n == HISTOGRAM + "_count"
                and labels["server_port"] == str(port)} == {"node"}
        assert tls_no_socket(sonde) == 0
    finally:
        server.stop()


@pytest.mark.skipif(shutil.which("node") is None, reason="no node")
def test_node_started_again_after_its_probes_were_released(sonde, cert,
                                                           tmp_path):
    """A service restarted: its executable's probes are released when the
    last process running it exits, and the next process that runs it is
    attached again."""
    node = os.path.realpath(shutil.which("node"))
    script = tmp_path / "server.js"
    script.write_text(NODE_TLS_SERVER)
    for run, path in enumerate(["/first/1", "/second/2"]):
        port = free_port()
        server = Server([node, str(script), str(port), str(cert[0]),
                         str(cert[1])], port)
        try:
            wait_for(lambda: attached_targets(sonde).get(node) == 1,
                     timeout=20, what=f"{node} attached, run {run + 1}")
            assert https_requests(port, [path] * 4) == [200] * 4
            assert sonde.settled_series(port, 4) == {
                ("GET", "200", path.rsplit("/", 1)[0] + "/{id}"): 4}
        finally:
            server.stop()
        # Released (within the 2 s sweep) once no process runs it.
        wait_for(lambda: node not in attached_targets(sonde), timeout=20,
                 what=f"{node} released, run {run + 1}")


# node as an HTTPS client: keep-alive calls to one server alternate with
# calls on a new connection each to another, then several loops open new
# connections at once. It starts when a line arrives on stdin, or after
# the given milliseconds. node's SSL objects have no socket of their own
# (memory BIOs), and each new one makes calls before it has read anything
# from its connection.
NODE_TLS_CLIENT = textwrap.dedent("""
    const https = require('https');
    const [pa, pb, rounds, loops] = process.argv.slice(2, 6).map(Number);
    const opts = {rejectUnauthorized: false};
    const kept = new https.Agent({keepAlive: true, maxSockets: 1, ...opts});
    const fresh = new https.Agent({keepAlive: false, ...opts});
    const get = (port, path, agent) => new Promise((ok, ko) => {
      https.get({host: '127.0.0.1', port, path, agent}, res => {
        res.resume();
        res.on('end', () => ok(res.statusCode));
      }).on('error', ko);
    });
    async function run() {
      const codes = [];
      for (let i = 0; i < rounds; i++) {
        codes.push(await get(pa, '/', kept));
        codes.push(await get(pb, '/boom', fresh));
      }
      codes.push(await get(pa, '/', kept));
      const all = [];
      for (let l = 0; l < loops; l++)
        all.push((async () => {
          for (let i = 0; i < rounds; i++)
            codes.push(await get(pb, '/boom', fresh));
        })());
      await Promise.all(all);
      kept.destroy();
      console.log(codes.join(' '));
      process.exit(0);
    }
    const start = process.argv[6];
    if (start === 'stdin') process.stdin.once('data', run);
    else setTimeout(run, Number(start));
""")


def node_client_counted(sonde, tmp_path, cert, pa, rounds, loops, start):
    """Runs NODE_TLS_CLIENT against pa (nginx) and a python HTTPS server
    it starts; asserts that node's client series count every call once,
    against the port it went to. start "stdin": once node is attached."""
    node = os.path.realpath(shutil.which("node"))
    pb = free_port()
    (tmp_path / "client.js").write_text(NODE_TLS_CLIENT)
    (tmp_path / "server.py").write_text(PY_TLS_SERVER)
    server = Server([sys.executable, str(tmp_path / "server.py"), str(pb),
                     str(cert[0]), str(cert[1])], pb)
    client = subprocess.Popen([node, str(tmp_path / "client.js"), str(pa),
                               str(pb), str(rounds), str(loops), start],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        if start == "stdin":
            wait_for(lambda: attached_targets(sonde).get(node) == 1,
                     timeout=20, what=f"{node} attached")
        out, _ = client.communicate("go\n", timeout=60)
        codes = [int(c) for c in out.split()]
        calls_b = rounds + loops * rounds
        assert codes.count(200) == rounds + 1
        assert codes.count(500) == calls_b
        expected_a = {("GET", "200"): rounds + 1}
        expected_b = {("GET", "500"): calls_b}
        wait_for(lambda: client_series(sonde, pa, "node") == expected_a and
                 client_series(sonde, pb, "node") == expected_b,
                 timeout=10, what="node's client series")
        # And they stay so: nothing late, nothing to another port.
        time.sleep(0.3)
        assert client_series(sonde, pa, "node") == expected_a
        assert client_series(sonde, pb, "node") == expected_b
        assert tls_no_socket(sonde) == 0
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
        server.stop()


@pytest.mark.skipif(shutil.which("node") is None, reason="no node")
def test_node_client_calls_on_new_and_kept_connections(sonde, nginx_tls,
                                                       cert, tmp_path):
    """Every call of a node HTTPS client is counted once, against the
    server it went to: a new SSL object does not take the socket the
    thread read last before it has read from its own, nor the socket of
    a freed object whose address it reuses."""
    node_client_counted(sonde, tmp_path, cert, nginx_tls.port, rounds=10,
                        loops=8, start="stdin")


@pytest.mark.skipif(shutil.which("node") is None, reason="no node")
def test_node_client_calling_soon_after_it_starts(sonde, nginx_tls, cert,
                                                  tmp_path):
    """A short-lived client (a script, a job) is attached as soon as sonde
    sees its exec: node's OpenSSL is in its executable, there from the
    exec on. Its calls 400 ms after it starts are all counted (the
    discovery thread used to sleep through the exec until its next 2 s
    sweep)."""
    node_client_counted(sonde, tmp_path, cert, nginx_tls.port, rounds=3,
                        loops=0, start="400")


# asyncio's TLS goes through memory BIOs (ssl.SSLObject): OpenSSL makes no
# syscall of its own. With key logging on (SSLKEYLOGFILE does the same),
# OpenSSL writes to a file from inside the handshake.
ASYNCIO_KEYLOG_SERVER = textwrap.dedent("""
    import asyncio, ssl, sys

    async def handle(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\\r\\n\\r\\n")
                path = head.split(b" ", 2)[1]
                writer.write(b"HTTP/1.1 200 OK\\r\\nContent-Length: %d"
                             b"\\r\\n\\r\\n%s" % (len(path), path))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    async def main():
        port, cert, key, keylog = sys.argv[1:]
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        ctx.keylog_filename = keylog
        server = await asyncio.start_server(handle, "127.0.0.1", int(port),
                                            ssl=ctx)
        async with server:
            await server.serve_forever()

    asyncio.run(main())
""")


def test_memory_bio_server_writing_a_key_log_inside_openssl(sonde, cert,
                                                            tmp_path):
    """A file written from inside an OpenSSL call says nothing about the
    call's socket: the plaintext is still tied to the connection."""
    port = free_port()
    script = tmp_path / "asyncio_server.py"
    script.write_text(ASYNCIO_KEYLOG_SERVER)
    keylog = tmp_path / "keys.log"
    before = tls_no_socket(sonde)
    server = Server([sys.executable, str(script), str(port), str(cert[0]),
                     str(cert[1]), str(keylog)], port)
    try:
        paths = [f"/keyed/{n}" for n in range(9)]
        assert https_requests(port, paths) == [200] * 9
        assert keylog.stat().st_size > 0
        assert sonde.settled_series(port, 9) == {
            ("GET", "200", "/keyed/{id}"): 9}
        assert tls_no_socket(sonde) == before
    finally:
        server.stop()
