"""Shared fixtures for the end-to-end tests: a real sonde, real servers.

Every process a test starts is stopped by that test (by pid). Ports are
picked free on 127.0.0.1, so the tests do not collide with a sonde or a web
server already running on the host; series are told apart by server_port.
"""
import http.client
import json
import os
import random
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
# SONDE_BIN: run the tests against another build (make e2e-sanitize).
SONDE = os.environ.get("SONDE_BIN") or os.path.join(ROOT, "sonde")
HOOKS = os.environ.get("SONDE_HOOKS")
# A sanitizer build holds freed memory back and links libasan: tests of
# sonde's memory or of the packaged ./sonde do not apply to it.
not_sanitized = pytest.mark.skipif(
    bool(os.environ.get("SONDE_SANITIZED")),
    reason="sonde is a sanitizer build (make e2e-sanitize)")
SERVERS = os.path.join(os.path.dirname(__file__), "servers")
HISTOGRAM = "http_server_request_duration_seconds"
CLIENT = "http_client_request_duration_seconds"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout=10.0, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def wait_port(port, timeout=10.0):
    def connectable():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            return False

    wait_for(connectable, timeout, what=f"port {port} to accept")


def stop_process(proc, sig=signal.SIGTERM, timeout=10):
    """Stops a process we started; returns its exit code."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def rss_kib(pid):
    """A process's resident memory, KiB (VmRSS in /proc/<pid>/status)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def parse_labels(text):
    """Parses 'a="x",b="y\\"z"' into a dict, honouring escapes."""
    labels, i = {}, 0
    while i < len(text):
        eq = text.index("=", i)
        name = text[i:eq].strip().lstrip(",").strip()
        assert text[eq + 1] == '"', text
        j, value = eq + 2, []
        while text[j] != '"':
            if text[j] == "\\":
                value.append({"n": "\n", "\\": "\\", '"': '"'}[text[j + 1]])
                j += 2
            else:
                value.append(text[j])
                j += 1
        labels[name] = "".join(value)
        i = j + 1
        while i < len(text) and text[i] in ", ":
            i += 1
    return labels


def parse_exposition(text):
    """Returns [(name, labels, value)] for every sample line."""
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if "{" in line:
            name, rest = line.split("{", 1)
            labels_text, value = rest.rsplit("}", 1)
            labels = parse_labels(labels_text)
        else:
            name, value = line.split(" ", 1)
            labels = {}
        samples.append((name, labels, float(value.strip())))
    return samples


class Sonde:
    """A running ./sonde with its own --listen port."""

    def __init__(self, *args, ready_tls=None):
        self.port = free_port()
        self.cafile = ready_tls
        self.log = tempfile.TemporaryFile()
        # SONDE_HOOKS=syscall runs the tests on the syscall hooks (make
        # e2e-syscall-hooks); a test that names its hooks keeps them.
        if HOOKS and "--hooks" not in args:
            args = (*args, "--hooks", HOOKS)
        self.proc = subprocess.Popen(
            [SONDE, "--listen", f"127.0.0.1:{self.port}", *args],
            stdout=self.log, stderr=subprocess.STDOUT)
        try:
            wait_for(self._ready, timeout=30, what="sonde /readyz")
        except AssertionError:
            self.stop()
            raise AssertionError("sonde did not become ready:\n" + self.output())

    def _ready(self):
        if self.proc.poll() is not None:
            raise AssertionError("sonde exited early:\n" + self.output())
        try:
            return self.get("/readyz")[0] == 200
        except OSError:
            return False

    def get(self, path, headers=None):
        if self.cafile:
            ctx = ssl.create_default_context(cafile=str(self.cafile))
            conn = http.client.HTTPSConnection("127.0.0.1", self.port,
                                               context=ctx, timeout=10)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                              timeout=10)
        try:
            conn.request("GET", path, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()

    def text(self):
        status, _, body = self.get("/metrics")
        assert status == 200
        return body.decode()

    def samples(self):
        return parse_exposition(self.text())

    def series(self, port, name=HISTOGRAM + "_count"):
        """{(method, status, route): value} for one server port."""
        out = {}
        for n, labels, value in self.samples():
            if n == name and labels.get("server_port") == str(port):
                key = (labels["http_request_method"],
                       labels["http_response_status_code"],
                       labels["http_route"])
                out[key] = value
        return out

    def settled_series(self, port, expect_total, timeout=10):
        """Waits until the counts for port add up to expect_total and stay
        there for a moment (events drain every 20 ms), then returns them."""
        def total_reached():
            s = self.series(port)
            return s if sum(s.values()) >= expect_total else None

        try:
            wait_for(total_reached, timeout,
                     what=f"{expect_total} requests on port {port}")
        except AssertionError:
            raise AssertionError(
                f"expected {expect_total} requests on port {port}, "
                f"got {self.series(port)}; sonde's losses: {self.losses()}")
        time.sleep(0.3)
        return self.series(port)

    def losses(self):
        """sonde's own counts of what it lost or could not read, those
        above 0: what a count that came up short says about why."""
        return {(n, tuple(sorted(labels.items()))): v
                for n, labels, v in self.samples()
                if v and n in ("sonde_events_dropped_total",
                               "sonde_parse_errors_total",
                               "sonde_program_recursion_misses_total")}

    def output(self):
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def stop(self, sig=signal.SIGTERM):
        code = stop_process(self.proc, sig)
        return code


@pytest.fixture
def sonde():
    s = Sonde()
    yield s
    code = s.stop()
    assert code == 0, "sonde exited with %s:\n%s" % (code, s.output())


def total(sonde, name, **labels):
    """Sum of the samples of name whose labels include labels."""
    return sum(v for n, lab, v in sonde.samples()
               if n == name and all(lab.get(k) == str(x)
                                    for k, x in labels.items()))


def settle(sonde, name, expect, timeout=15, **labels):
    """Waits until the sum reaches expect, then checks it stays there."""
    try:
        wait_for(lambda: total(sonde, name, **labels) >= expect, timeout,
                 what=f"{name} {labels} = {expect}")
    except AssertionError:
        raise AssertionError(f"{name} {labels}: expected {expect}, got "
                             f"{total(sonde, name, **labels)}")
    wait_for(lambda: True, 0.3)
    return total(sonde, name, **labels)


def client_series(sonde, port, service):
    """{(method, status): count} of service's calls to port."""
    out = {}
    for n, labels, value in sonde.samples():
        if (n == CLIENT + "_count" and labels["server_port"] == str(port)
                and labels["service_name"] == service):
            out[(labels["http_request_method"],
                 labels["http_response_status_code"])] = value
    return out


class Server:
    """A server process started by a test, stopped by pid."""

    def __init__(self, argv, port, env=None, cwd=None):
        self.port = port
        self.proc = subprocess.Popen(argv, env=env, cwd=cwd,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        try:
            wait_port(port)
        except AssertionError:
            self.stop()
            raise

    def stop(self):
        return stop_process(self.proc)


def python_server(port, env=None):
    """tests/e2e/servers/app.py: keep-alive HTTP/1.1 with sleepy routes."""
    return Server([sys.executable, os.path.join(SERVERS, "app.py"),
                   str(port)], port, env=env)


@pytest.fixture
def app():
    server = python_server(free_port())
    yield server
    server.stop()


NGINX_CONF = """
worker_processes 1;
user root;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    keepalive_requests 100000;
{servers}
}}
"""

# The test site: / 200, /fail 503, /users/<n> 200, /static/ by sendfile.
# {listen} may add "ssl" and the certificate lines.
NGINX_SITE = """
    server {{
        listen 127.0.0.1:{port}{listen};
        location = / {{ return 200 "ok\\n"; }}
        location = /fail {{ return 503; }}
        location /users/ {{ return 200 "user\\n"; }}
        location /static/ {{ root {dir}; sendfile on; }}
        location / {{ return 404; }}
    }}"""


# NGINX_SITE's {listen} for HTTPS, with the cert fixture's files.
NGINX_TLS_LISTEN = """ ssl;
        ssl_certificate {dir}/cert.pem;
        ssl_certificate_key {dir}/key.pem"""


@pytest.fixture
def cert(tmp_path):
    """A self-signed certificate for 127.0.0.1: (cert.pem, key.pem)."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-keyout", str(tmp_path / "key.pem"),
                    "-out", str(tmp_path / "cert.pem"), "-days", "1",
                    "-subj", "/CN=127.0.0.1"],
                   check=True, capture_output=True)
    return tmp_path / "cert.pem", tmp_path / "key.pem"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA and a server certificate for 127.0.0.1 signed by it."""
    d = tmp_path_factory.mktemp("pki")

    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True,
                       cwd=d)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", "/CN=sonde test CA", "-keyout", "ca.key", "-out", "ca.pem")
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", "server.key", "-out", "server.csr")
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey",
        "ca.key", "-CAcreateserial", "-days", "2", "-extfile", "san.ext",
        "-out", "server.pem")
    return d


def nginx_server(tmp_path, port, servers):
    """nginx with its files in tmp_path serving the given server blocks
    (already formatted), stopped by the caller."""
    conf = tmp_path / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=tmp_path, servers=servers))
    return Server(["nginx", "-c", str(conf), "-p", str(tmp_path)], port)


def nginx_site(tmp_path, port, listen=""):
    """nginx serving the test site on port."""
    return nginx_server(tmp_path, port, NGINX_SITE.format(
        dir=tmp_path, port=port, listen=listen))


@pytest.fixture
def nginx(tmp_path):
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "page.html").write_text("<p>static</p>\n" * 100)
    server = nginx_site(tmp_path, free_port())
    yield server
    server.stop()


def keepalive_requests(port, paths, connections=4, method="GET",
                       connect=None, timings=None):
    """Sends every path once, spread round-robin over a few keep-alive
    connections made by connect(port) (plain HTTP by default); returns the
    statuses in order. A timings list gets each request's time from its
    send to its whole response, in seconds (CLOCK_MONOTONIC), in order."""
    connect = connect or (lambda p: http.client.HTTPConnection(
        "127.0.0.1", p, timeout=10))
    conns = [connect(port) for _ in range(connections)]
    statuses = []
    try:
        for i, path in enumerate(paths):
            c = conns[i % connections]
            t0 = time.monotonic()
            c.request(method, path)
            resp = c.getresponse()
            resp.read()
            if timings is not None:
                timings.append(time.monotonic() - t0)
            statuses.append(resp.status)
    finally:
        for c in conns:
            c.close()
    return statuses


def check_buckets(buckets, spans, what="buckets"):
    """buckets maps each le (as exposed) to its cumulative count; spans
    holds one (least, most) pair per observation, in seconds: it took more
    than least (a sleep never ends early) and at most most (what its caller
    timed around it on the same clock, however busy the VM). A bucket
    holds every observation surely within its bound and none that surely
    is not; on a quiet VM the two are the same and the count is exact."""
    assert buckets, f"no {what}"
    for le, got in buckets.items():
        bound = float(le)
        surely = sum(most <= bound for least, most in spans)
        maybe = sum(least < bound for least, most in spans)
        assert surely <= got <= maybe, \
            f"{what}: le={le} holds {got}, expected {surely}..{maybe} " \
            f"from {sorted(spans)}"


def bpftool_json(*args):
    out = subprocess.run(["bpftool", "-j", *args], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out or "[]")


def run_checked(*argv):
    subprocess.run(argv, check=True, capture_output=True)


class Netns:
    """A network namespace joined to the host by a veth pair, with the
    host at 10.213.N.1 and the namespace at 10.213.N.2."""

    def __init__(self):
        tag = f"{os.getpid() % 10000}{random.randrange(1000)}"
        self.name = f"sonde{tag}"
        self.host_if, self.ns_if = f"sh{tag}", f"sn{tag}"
        n = random.randrange(1, 250)
        self.host_ip, self.ns_ip = f"10.213.{n}.1", f"10.213.{n}.2"
        run_checked("ip", "netns", "add", self.name)
        try:
            run_checked("ip", "link", "add", self.host_if, "type", "veth",
                        "peer", "name", self.ns_if)
            run_checked("ip", "link", "set", self.ns_if, "netns",
                        self.name)
            run_checked("ip", "addr", "add", f"{self.host_ip}/24", "dev",
                        self.host_if)
            run_checked("ip", "link", "set", self.host_if, "up")
            self.exec("ip", "addr", "add", f"{self.ns_ip}/24", "dev",
                      self.ns_if)
            self.exec("ip", "link", "set", self.ns_if, "up")
            self.exec("ip", "link", "set", "lo", "up")
        except Exception:
            self.delete()
            raise

    def exec(self, *argv):
        run_checked("ip", "netns", "exec", self.name, *argv)

    def drop_input(self, rule):
        """Adds an nftables input rule inside the namespace."""
        self.exec("nft", "add", "table", "inet", "sonde")
        self.exec("nft", "add chain inet sonde in { type filter hook input "
                  "priority 0; policy accept; }")
        self.exec("nft", f"add rule inet sonde in {rule} drop")

    def one_segment_per_packet(self):
        """The host side sends each TCP segment as a packet of its own:
        with GSO a megabyte crosses the veth in some 20 packets, few
        enough for a random drop rule to miss them all now and then."""
        run_checked("ip", "link", "set", self.host_if, "gso_max_segs", "1")

    def delete(self):
        subprocess.run(["ip", "link", "del", self.host_if],
                       capture_output=True)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)


@pytest.fixture
def netns():
    ns = Netns()
    yield ns
    ns.delete()


@pytest.fixture
def netns_drop_syn(netns):
    """The address of a namespace that drops every SYN to port 80."""
    netns.drop_input("tcp dport 80")
    return netns.ns_ip
