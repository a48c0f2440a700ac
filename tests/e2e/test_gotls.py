"""Go's crypto/tls: HTTPS served and called by Go programs (net/http,
HTTP/2 by ALPN) is measured from the plaintext crypto/tls hands over,
with no change to the binaries, stripped ones included; the ciphertext
makes no series."""
import os
import random
import re
import subprocess

import pytest

from conftest import (CLIENT, HISTOGRAM, SERVERS, Server, Sonde,
                      client_series, free_port, settle, wait_for)

ITEMS = 30


@pytest.fixture(scope="module")
def gotls(tmp_path_factory):
    """tests/e2e/servers/goapp.go built once, as is and stripped
    (-ldflags='-s -w': no symbol table, no DWARF): {kind: path}."""
    out = tmp_path_factory.mktemp("gotls")
    env = dict(os.environ, GOCACHE=str(out / "cache"), GOPATH=str(out),
               GO111MODULE="off", CGO_ENABLED="0")
    built = {}
    for kind, flags in (("plain", []), ("stripped", ["-ldflags=-s -w"])):
        binary = out / f"gotls-{kind}"
        build = subprocess.run(
            ["go", "build", *flags, "-o", str(binary),
             os.path.join(SERVERS, "goapp.go")],
            env=env, capture_output=True, text=True, timeout=300)
        assert build.returncode == 0, build.stderr
        built[kind] = str(binary)
    return built


def attached(sonde, binary):
    """sonde_uprobe_attached for the executable: 1, 0, or None."""
    for n, labels, v in sonde.samples():
        if n == "sonde_uprobe_attached" and labels.get("target") == binary:
            return v
    return None


def start_server(sonde, binary, cert, service):
    port = free_port()
    server = Server([binary, "serve-tls", f"127.0.0.1:{port}", str(cert[0]),
                     str(cert[1])], port,
                    env=dict(os.environ, OTEL_SERVICE_NAME=service))
    try:
        wait_for(lambda: attached(sonde, binary) == 1, 10,
                 what=f"Go crypto/tls probes on {binary}")
    except AssertionError:
        server.stop()
        raise AssertionError(f"not attached: {sonde.output()}")
    return server


def curl(port, version_flag, paths):
    """One curl for every path on one connection; the HTTP versions
    curl reports."""
    args = []
    for p in paths:
        args += ["-o", "/dev/null", f"https://127.0.0.1:{port}{p}"]
    out = subprocess.run(["curl", "-sk", version_flag, "-w",
                          "%{http_version}\n", *args],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return set(out.stdout.split())


def server_counts(port):
    return {("GET", "200", "/items/{id}"): ITEMS,
            ("GET", "500", "/fail"): 1,
            ("GET", "404", "/nope"): 1}


def losses(sonde):
    """sonde's counts of what it lost or could not parse, for a failure's
    message."""
    return {(n, tuple(sorted(labels.items()))): v
            for n, labels, v in sonde.samples()
            if n.startswith("sonde_") and v and
            any(w in n for w in ("drop", "lost", "error", "miss"))}


def tag():
    return f"{os.getpid()}-{random.randrange(1 << 30):x}"


@pytest.mark.parametrize("kind", ["plain", "stripped"])
@pytest.mark.parametrize("version", ["--http1.1", "--http2"])
def test_go_https_server_started_after_sonde(sonde, gotls, cert, kind,
                                              version):
    server = start_server(sonde, gotls[kind], cert, f"gotls-{tag()}")
    try:
        paths = [f"/items/{i}" for i in range(ITEMS)] + ["/fail", "/nope"]
        assert curl(server.port, version, paths) == (
            {"1.1"} if version == "--http1.1" else {"2"})
        assert sonde.settled_series(server.port, ITEMS + 2) == \
            server_counts(server.port)
    finally:
        server.stop()
    # Nothing else came from that port: no series from the ciphertext.
    assert sum(sonde.series(server.port).values()) == ITEMS + 2


@pytest.mark.parametrize("kind", ["plain", "stripped"])
def test_go_https_client_and_server_over_http2(sonde, gotls, cert, kind):
    """The client runs the server's executable, already probed: it is
    traced from its first call (a Go executable no process ran yet is
    probed some milliseconds after its exec)."""
    t = tag()
    server_name, client_name = f"gotls-srv-{t}", f"gotls-cli-{t}"
    server = start_server(sonde, gotls[kind], cert, server_name)
    try:
        n = 50
        load = subprocess.run(
            [gotls[kind], "load-tls",
             f"https://127.0.0.1:{server.port}",
             str(n)], env=dict(os.environ, OTEL_SERVICE_NAME=client_name),
            capture_output=True, text=True, timeout=60)
        assert load.returncode == 0, load.stderr
        assert re.search(r"proto=HTTP/2.0", load.stdout), load.stdout
        assert settle(sonde, HISTOGRAM + "_count", n + 1,
                      service_name=server_name) == n + 1
        assert settle(sonde, CLIENT + "_count", n + 1,
                      service_name=client_name) == n + 1
        assert client_series(sonde, server.port, client_name) == {
            ("GET", "200"): n, ("GET", "500"): 1}
        assert sonde.series(server.port) == {
            ("GET", "200", "/items/{id}"): n, ("GET", "500", "/fail"): 1}
    finally:
        server.stop()


def test_go_https_server_running_before_sonde(gotls, cert):
    port = free_port()
    server = Server([gotls["stripped"], "serve-tls", f"127.0.0.1:{port}",
                     str(cert[0]), str(cert[1])], port)
    try:
        s = Sonde()
        try:
            wait_for(lambda: attached(s, gotls["stripped"]) == 1, 10,
                     what="Go crypto/tls probes on a running server")
            paths = [f"/items/{i}" for i in range(ITEMS)] + ["/fail",
                                                             "/nope"]
            curl(port, "--http2", paths)
            assert s.settled_series(port, ITEMS + 2) == server_counts(port)
        finally:
            assert s.stop() == 0, s.output()
    finally:
        server.stop()


def rpc_counts(sonde, name, port, service):
    """{(method, status): count} of service's gRPC series for port."""
    out = {}
    for n, lab, v in sonde.samples():
        if (n == name + "_count" and lab.get("server_port") == str(port)
                and lab.get("service_name") == service):
            key = (lab["rpc_method"], lab["rpc_response_status_code"])
            out[key] = out.get(key, 0) + v
    return out


def test_grpc_over_go_tls_gives_grpc_series(sonde, gotls, cert):
    """gRPC's wire format (length-prefixed messages, the status in HTTP/2
    trailers) between a Go client and a Go server over crypto/tls: gRPC
    series on both sides, by method and status, and no HTTP ones."""
    t = tag()
    server_name, client_name = f"gotls-srv-{t}", f"gotls-cli-{t}"
    server = start_server(sonde, gotls["plain"], cert, server_name)
    try:
        ok, missing = 12, 5
        run = subprocess.run(
            [gotls["plain"], "rpc", f"https://127.0.0.1:{server.port}",
             str(ok), str(missing)],
            env=dict(os.environ, OTEL_SERVICE_NAME=client_name),
            capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        assert f"done ok={ok} not_found={missing}" in run.stdout
        want = {("sonde.test.Shop/Get", "OK"): ok,
                ("sonde.test.Shop/Get", "NOT_FOUND"): missing}
        for name, service in (("rpc_server_call_duration_seconds",
                               server_name),
                              ("rpc_client_call_duration_seconds",
                               client_name)):
            try:
                wait_for(lambda: sum(rpc_counts(sonde, name, server.port,
                                                service).values())
                         >= ok + missing, 15, what=f"{name} of {service}")
            except AssertionError as e:
                raise AssertionError(
                    f"{e}: got {rpc_counts(sonde, name, server.port, service)}"
                    f"; {losses(sonde)}") from None
            assert rpc_counts(sonde, name, server.port, service) == want
        assert sonde.series(server.port) == {}
    finally:
        server.stop()
