"""Go's net/http, server and client, plaintext: the runtime's netpoller
moves goroutines between threads, so one connection's reads and writes
come from several threads of the process; each request still counts once
on each side."""
import os
import random
import re
import subprocess

import pytest

from conftest import (CLIENT, HISTOGRAM, SERVERS, Server, client_series,
                      free_port, settle, total)


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


def set_state_misses(sonde):
    """Runs of the TCP state program the kernel skipped so far."""
    return total(sonde, "sonde_program_recursion_misses_total",
                 program="sock_set_state")


def test_go_server_and_client_count_every_request_once(sonde, goapp):
    tag = f"{os.getpid()}-{random.randrange(1 << 30):x}"
    server, client = f"go-srv-{tag}", f"go-cli-{tag}"
    port = free_port()
    proc = Server([goapp, "serve", f"127.0.0.1:{port}"], port,
                  env=dict(os.environ, OTEL_SERVICE_NAME=server))
    try:
        goroutines, n = 16, 60
        missed_before = set_state_misses(sonde)
        load = subprocess.run(
            [goapp, "load", f"http://127.0.0.1:{port}", str(goroutines),
             str(n)], env=dict(os.environ, OTEL_SERVICE_NAME=client),
            capture_output=True, text=True, timeout=60)
        assert load.returncode == 0, load.stderr
        dials = int(re.search(r"dials=(\d+)", load.stdout).group(1))
        calls = goroutines * (n + 1) + 1

        assert settle(sonde, HISTOGRAM + "_count", calls,
                      service_name=server) == calls
        assert settle(sonde, CLIENT + "_count", calls,
                      service_name=client) == calls
        assert sonde.series(port) == {
            ("GET", "200", "/items/{id}"): goroutines * n,
            ("POST", "201", "/items/{id}"): goroutines,
            ("GET", "500", "/fail"): 1,
        }
        assert client_series(sonde, port, client) == {
            ("GET", "200"): goroutines * n,
            ("POST", "201"): goroutines,
            ("GET", "500"): 1,
        }
        assert total(sonde, CLIENT + "_count", service_name=client,
                     server_address="127.0.0.1", server_port=port) == calls
        # Each connection the client dialled, once: connects are seen on
        # the socket, not on the thread that made them. A state change the
        # kernel did not show sonde's program (another BPF program was
        # running on the CPU when the SYN-ACK came in softirq context) is
        # counted as a miss instead.
        connects = total(sonde, "sonde_tcp_connects_total",
                         service_name=client, result="ok")
        missed = set_state_misses(sonde) - missed_before
        assert dials - missed <= connects <= dials, \
            (connects, dials, missed, sonde.losses())
    finally:
        proc.stop()
