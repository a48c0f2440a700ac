"""gRPC: grpc-js (on node's http2) in cleartext and over TLS, and
grpcio (gRPC's C core, its own HTTP/2), as servers and as clients. Every
call is counted once on each side, by method and by the status gRPC
gives it: from the trailers, from a reset at the deadline, never as the
HTTP 200 every gRPC response carries. Calls last until their trailers,
so a stream's duration is the whole stream's."""
import json
import os
import shutil
import subprocess

from conftest import (CLIENT, HISTOGRAM, Server, Sonde, free_port, settle,
                      wait_for)

GRPC_DIR = os.path.join(os.path.dirname(__file__), "grpc")
SERVER = "rpc_server_call_duration_seconds"
CALLER = "rpc_client_call_duration_seconds"
NODE = os.path.realpath(shutil.which("node") or "/usr/bin/node")
PYTHON = "/usr/bin/python3"  # Debian's, where python3-grpcio is

# What grpcapp.js's client does with PLAN, and what each side must count.
PLAN = [{"method": "Get", "count": 20},
        {"method": "Get", "payload": "missing", "count": 7},
        {"method": "Get", "payload": "denied", "count": 5},
        {"method": "Watch", "count": 3},
        {"method": "Get", "payload": "sleep:500", "deadline": 150,
         "count": 4}]
GET, WATCH = "sonde.test.Shop/Get", "sonde.test.Shop/Watch"
EXPECTED = {(GET, "OK"): 20, (GET, "NOT_FOUND"): 7,
            (GET, "PERMISSION_DENIED"): 5, (WATCH, "OK"): 3,
            (GET, "DEADLINE_EXCEEDED"): 4}


def rpc_series(sonde, name, port, service, suffix="_count", **labels):
    """{(method, status): value} of service's series of name for port."""
    out = {}
    for n, lab, v in sonde.samples():
        if (n == name + suffix and lab["server_port"] == str(port)
                and lab["service_name"] == service
                and all(lab.get(k) == x for k, x in labels.items())):
            assert lab["rpc_system_name"] == "grpc"
            key = (lab["rpc_method"], lab["rpc_response_status_code"])
            out[key] = out.get(key, 0) + v
    return out


def settled(sonde, name, port, service, expect):
    """service's counts for port once they add up to expect's total."""
    want = sum(expect.values())
    try:
        wait_for(lambda: sum(rpc_series(sonde, name, port,
                                        service).values()) >= want,
                 timeout=15, what=f"{want} {name} calls on {port}")
    except AssertionError:
        raise AssertionError(f"{name} on {port}: expected {expect}, got "
                             f"{rpc_series(sonde, name, port, service)}")
    wait_for(lambda: True, 0.3)
    return rpc_series(sonde, name, port, service)


def no_http_series(sonde, port):
    return not any(n.startswith((HISTOGRAM, CLIENT)) and
                   lab.get("server_port") == str(port)
                   for n, lab, _ in sonde.samples())


def lost(sonde):
    return [v for n, lab, v in sonde.samples()
            if (n, lab.get("reason")) in
            (("sonde_parse_errors_total", "http2_lost"),
             ("sonde_events_dropped_total", "http2_unfollowed"))]


def run_client(argv):
    out = subprocess.run(argv, cwd=GRPC_DIR, check=True, text=True,
                         capture_output=True, timeout=60).stdout
    return json.loads(out.strip().splitlines()[-1])


def grpc_js_round(sonde, port, tls_cert=None):
    """grpcapp.js serving on port and calling it with PLAN; checks both
    sides' series."""
    app = os.path.join(GRPC_DIR, "grpcapp.js")
    server = Server([NODE, app, "serve", str(port),
                     *([str(tls_cert[0]), str(tls_cert[1])]
                       if tls_cert else [])], port, cwd=GRPC_DIR)
    try:
        if tls_cert:
            wait_for(lambda: any(n == "sonde_uprobe_attached" and
                                 lab["target"] == NODE and v == 1
                                 for n, lab, v in sonde.samples()),
                     timeout=20, what=f"{NODE} attached")
        got = run_client([NODE, app, "call", str(port), json.dumps(PLAN),
                          *([str(tls_cert[0])] if tls_cert else [])])
        assert got == {"OK": 23, "NOT_FOUND": 7, "PERMISSION_DENIED": 5,
                       "DEADLINE_EXCEEDED": 4}
        assert settled(sonde, SERVER, port, "node", EXPECTED) == EXPECTED
        assert settled(sonde, CALLER, port, "node", EXPECTED) == EXPECTED
        for name in (SERVER, CALLER):
            # Five messages 20 ms apart: a Watch lasts 100 ms or more,
            # to its trailers, not to its response head.
            assert rpc_series(sonde, name, port, "node", "_bucket",
                              rpc_method=WATCH, le="0.075") == {
                (WATCH, "OK"): 0}
            # Past a 150 ms deadline, the server still sleeping: timed to
            # the reset, from the request written (a little after the
            # deadline was set).
            fast = rpc_series(sonde, name, port, "node", "_bucket",
                              le="0.05")
            assert fast[(GET, "DEADLINE_EXCEEDED")] == 0
        assert no_http_series(sonde, port)
        assert lost(sonde) == [0, 0]
    finally:
        server.stop()


def test_grpc_js_in_cleartext(sonde):
    """h2c with prior knowledge: node writes a hundred frames' parts in
    one writev, and its preface and SETTINGS from two buffers."""
    grpc_js_round(sonde, free_port())


def test_grpc_js_over_tls(sonde, cert):
    """The same calls through the OpenSSL inside node's executable."""
    grpc_js_round(sonde, free_port(), cert)


def test_grpcio_c_core_server_and_client(sonde):
    """gRPC's C core has its own HTTP/2 (sendmsg and recvmsg with many
    buffers). At the deadline the client cancels and the server resets
    with NO_ERROR, in either order: both are DEADLINE_EXCEEDED."""
    port = free_port()
    app = os.path.join(GRPC_DIR, "grpcio.py")
    server = Server([PYTHON, app, "serve", str(port)], port)
    expect = {(GET, "OK"): 20, (GET, "NOT_FOUND"): 7,
              (GET, "DEADLINE_EXCEEDED"): 4}
    # The process's name: python3.11, from Debian's /usr/bin/python3.
    service = os.path.basename(os.path.realpath(PYTHON))
    try:
        assert run_client([PYTHON, app, "call", str(port)]) == {
            "OK": 20, "NOT_FOUND": 7, "DEADLINE_EXCEEDED": 4}
        assert settled(sonde, SERVER, port, service, expect) == expect
        assert settled(sonde, CALLER, port, service, expect) == expect
        assert no_http_series(sonde, port)
        assert lost(sonde) == [0, 0]
    finally:
        server.stop()


def test_method_labels_stay_bounded():
    """Paths a caller makes up do not become labels: a path that is not
    /Service/Method is _OTHER, and beyond --max-routes distinct methods a
    service's calls share _overflow. The server answers them all
    UNIMPLEMENTED, counted as such on both sides."""
    s = Sonde("--max-routes", "3")
    port = free_port()
    app = os.path.join(GRPC_DIR, "grpcapp.js")
    server = Server([NODE, app, "serve", str(port)], port, cwd=GRPC_DIR)
    try:
        plan = ([{"path": f"/made.Up{i}/Call", "count": 2}
                 for i in range(6)] +
                [{"path": "/../../etc/passwd", "count": 3},
                 {"path": "/a.B/C?x=1", "count": 1},
                 {"path": "/only-one-part", "count": 1}])
        assert run_client([NODE, app, "call", str(port),
                           json.dumps(plan)]) == {"UNIMPLEMENTED": 17}
        got = settled(s, SERVER, port, "node", {None: 17})
        assert got[("_OTHER", "UNIMPLEMENTED")] == 5
        assert sum(got.values()) == 17
        methods = {m for m, _ in got} - {"_OTHER", "_overflow"}
        assert len(methods) == 3 and all(
            m.startswith("made.Up") for m in methods)
        assert got[("_overflow", "UNIMPLEMENTED")] == 6
        text = s.text()
        assert "passwd" not in text and "x=1" not in text
        assert settle(s, CALLER + "_count", 17, server_port=port) == 17
    finally:
        server.stop()
        code = s.stop()
        assert code == 0, s.output()
