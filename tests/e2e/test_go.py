"""Go's net/http, server and client, plaintext: the runtime's netpoller
moves goroutines between threads, so one connection's reads and writes
come from several threads of the process; each request still counts once
on each side."""
import os
import random
import re
import subprocess

import pytest

from conftest import SERVERS, Server, free_port, total, wait_for

CLIENT = "http_client_request_duration_seconds"
SERVER = "http_server_request_duration_seconds"


@pytest.fixture(scope="module")
def goapp(tmp_path_factory):
    """tests/e2e/servers/goapp.go, built once for the module."""
    out = tmp_path_factory.mktemp("go")
    env = dict(os.environ, GOCACHE=str(out / "cache"), GOPATH=str(out),
               GO111MODULE="off", CGO_ENABLED="0")
    binary = out / "goapp"
    build = subprocess.run(["go", "build", "-o", str(binary),
                            os.path.join(SERVERS, "goapp.go")],
                           env=env, capture_output=True, text=True,
                           timeout=300)
    assert build.returncode == 0, build.stderr
    return str(binary)


def counts(sonde, name, service):
    """{(method, status, route or address:port): value} of one service."""
    out = {}
    for n, labels, value in sonde.samples():
        if n == name + "_count" and labels["service_name"] == service:
            where = labels.get("http_route") or "%s:%s" % (
                labels["server_address"], labels["server_port"])
            out[(labels["http_request_method"],
                 labels["http_response_status_code"], where)] = value
    return out


def test_go_server_and_client_count_every_request_once(sonde, goapp):
    tag = f"{os.getpid()}-{random.randrange(1 << 30):x}"
    port = free_port()
    server = Server([goapp, "serve", f"127.0.0.1:{port}"], port,
                    env=dict(os.environ, OTEL_SERVICE_NAME=f"go-srv-{tag}"))
    try:
        goroutines, n = 16, 60
        load = subprocess.run(
            [goapp, "load", f"http://127.0.0.1:{port}", str(goroutines),
             str(n)], env=dict(os.environ, OTEL_SERVICE_NAME=f"go-cli-{tag}"),
            capture_output=True, text=True, timeout=60)
        assert load.returncode == 0, load.stderr
        dials = int(re.search(r"dials=(\d+)", load.stdout).group(1))
        calls = goroutines * (n + 1) + 1

        def both_sides():
            return (counts(sonde, SERVER, f"go-srv-{tag}"),
                    counts(sonde, CLIENT, f"go-cli-{tag}"))

        try:
            wait_for(lambda: min(sum(c.values()) for c in both_sides())
                     >= calls, timeout=15, what="calls on each side")
        except AssertionError:
            raise AssertionError(f"expected {calls} calls on each side, "
                                 f"got {both_sides()}")
        wait_for(lambda: True, 0.3)
        assert counts(sonde, SERVER, f"go-srv-{tag}") == {
            ("GET", "200", "/items/{id}"): goroutines * n,
            ("POST", "201", "/items/{id}"): goroutines,
            ("GET", "500", "/fail"): 1,
        }
        peer = f"127.0.0.1:{port}"
        assert counts(sonde, CLIENT, f"go-cli-{tag}") == {
            ("GET", "200", peer): goroutines * n,
            ("POST", "201", peer): goroutines,
            ("GET", "500", peer): 1,
        }
        # Each connection the client dialled, once: connects are seen on
        # the socket, not on the thread that made them.
        assert total(sonde, "sonde_tcp_connects_total",
                     service_name=f"go-cli-{tag}", result="ok") == dials
    finally:
        server.stop()
