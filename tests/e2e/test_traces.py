"""Traces: the spans sonde exports over OTLP, decoded by the OpenTelemetry
project's own protobuf code (@opentelemetry/otlp-transformer, run by
tests/e2e/otlp/receiver.js), for real servers and clients: nginx, nginx
proxying to a python backend, and a thread-per-request python server
that calls another HTTP service and PostgreSQL while it serves.

Spans are told apart by server.port: sonde sees the whole host, the
receiver and pytest's own HTTP clients included.
"""
import base64
import http.client
import json
import os
import subprocess
import sys
import time

import pytest

from conftest import (HISTOGRAM, SERVERS, Server, Sonde, free_port,
                      keepalive_requests, nginx_server, rss_kib, wait_for)
from test_otlp import Receiver

import dbservers

PATHS = ["/"] * 12 + ["/fail"] * 5 + ["/users/7", "/users/42"] * 3 + \
    ["/missing"] * 2
EXPECTED = {("GET /", 200): 12, ("GET /fail", 503): 5,
            ("GET /users/{id}", 200): 6, ("GET /missing", 404): 2}
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
SERVER, CLIENT = 2, 3


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.stop()


def start_sonde(monkeypatch, receiver, delay=200, **env):
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", str(delay))
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "60000")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Sonde("--otlp-endpoint", receiver.url())


def stop_sonde(s):
    code = s.stop()
    assert code == 0, "sonde exited with %s:\n%s" % (code, s.output())


def hexid(b64):
    return base64.b64decode(b64 or "").hex()


def attrs(kvs):
    out = {}
    for kv in kvs or []:
        value = kv.get("value", {})
        out[kv["key"]] = value.get("stringValue", value.get("intValue"))
    return out


def trace_requests(receiver):
    return json.loads(receiver._call("GET", "/control/traces"))


def spans(receiver, accepted_only=True):
    """Every span received, flattened: a dict with the span's fields (ids
    in hex) plus its resource's attributes under "resource"."""
    out = []
    for r in trace_requests(receiver):
        assert "error" not in r, r["error"]
        if accepted_only and r["answer"].get("status", 200) != 200:
            continue
        for rs in r["request"].get("resourceSpans", []):
            res = attrs(rs.get("resource", {}).get("attributes"))
            for ss in rs.get("scopeSpans", []):
                for sp in ss.get("spans", []):
                    out.append({
                        "trace": hexid(sp.get("traceId")),
                        "id": hexid(sp.get("spanId")),
                        "parent": hexid(sp.get("parentSpanId")),
                        "state": sp.get("traceState", ""),
                        "name": sp["name"],
                        "kind": sp.get("kind", 0),
                        "start": int(sp["startTimeUnixNano"]),
                        "end": int(sp["endTimeUnixNano"]),
                        "attrs": attrs(sp.get("attributes")),
                        "status": sp.get("status", {}).get("code", 0),
                        "resource": res,
                    })
    return out


def port_spans(receiver, port, kind=SERVER):
    return [s for s in spans(receiver)
            if s["kind"] == kind and s["attrs"].get("server.port") == str(port)]


def wait_spans(receiver, port, n, kind=SERVER, timeout=15):
    try:
        return wait_for(lambda: (lambda got: got if len(got) >= n else None)(
            port_spans(receiver, port, kind)), timeout,
            what=f"{n} spans on port {port}")
    except AssertionError:
        raise AssertionError(f"expected {n} spans on port {port}, got "
                             f"{len(port_spans(receiver, port, kind))}")


def get(port, path, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", path, headers=headers or {})
        resp = c.getresponse()
        resp.read()
        return resp.status
    finally:
        c.close()


def histogram_sums(sonde, port):
    """{route: _sum} of nginx's server histogram on port."""
    out = {}
    for n, labels, value in sonde.samples():
        if n == HISTOGRAM + "_sum" and labels.get("server_port") == str(port):
            out[labels["http_route"]] = out.get(labels["http_route"], 0) + \
                value
    return out


def test_nginx_makes_one_server_span_per_request(monkeypatch, receiver,
                                                 nginx):
    s = start_sonde(monkeypatch, receiver)
    try:
        assert keepalive_requests(nginx.port, PATHS).count(200) == 18
        s.settled_series(nginx.port, len(PATHS))
        got = wait_spans(receiver, nginx.port, len(PATHS))
        time.sleep(1)
        got = port_spans(receiver, nginx.port)
        counts = {}
        for sp in got:
            key = (sp["name"], int(sp["attrs"]["http.response.status_code"]))
            counts[key] = counts.get(key, 0) + 1
        assert counts == EXPECTED
        ids = set()
        for sp in got:
            a = sp["attrs"]
            assert sp["kind"] == SERVER
            assert a["http.request.method"] == "GET"
            assert a["url.path"] in {"/", "/fail", "/users/7", "/users/42",
                                     "/missing"}
            assert "?" not in a["url.path"]
            assert sp["status"] == (2 if a["http.response.status_code"] ==
                                    "503" else 0)
            if sp["status"] == 2:
                assert a["error.type"] == "503"
            assert len(sp["trace"]) == 32 and sp["parent"] == ""
            assert sp["id"] not in ids
            ids.add(sp["id"])
            assert 0 < sp["end"] - sp["start"] < 5e9
            assert abs(sp["start"] / 1e9 - time.time()) < 60
            assert sp["resource"]["service.name"] == "nginx"
            assert sp["resource"]["process.executable.name"] == "nginx"
        # The same kernel timestamps as the histograms: per route, the
        # spans' durations add up to the histogram's sum.
        sums = histogram_sums(s, nginx.port)
        for route in sums:
            total = sum(sp["end"] - sp["start"] for sp in got
                        if sp["attrs"].get("http.route") == route) / 1e9
            assert abs(total - sums[route]) < 1e-6, (route, total, sums)
    finally:
        stop_sonde(s)


def test_query_string_never_enters_a_span(monkeypatch, receiver, nginx):
    s = start_sonde(monkeypatch, receiver)
    try:
        assert get(nginx.port, "/users/9?token=secret123",
                   {"Authorization": "Bearer hush"}) == 200
        [sp] = wait_spans(receiver, nginx.port, 1)
        assert sp["attrs"]["url.path"] == "/users/9"
        text = repr(spans(receiver))
        assert "secret123" not in text and "hush" not in text
    finally:
        stop_sonde(s)


def test_incoming_traceparent_gives_the_context(monkeypatch, receiver,
                                                nginx):
    s = start_sonde(monkeypatch, receiver)
    try:
        for _ in range(5):
            assert get(nginx.port, "/users/3", {
                "traceparent": f"00-{TRACE}-{PARENT}-01",
                "tracestate": "vendor=abc"}) == 200
        got = wait_spans(receiver, nginx.port, 5)
        for sp in got:
            assert sp["trace"] == TRACE and sp["parent"] == PARENT
            assert sp["state"] == "vendor=abc"
        assert len({sp["id"] for sp in got}) == 5
    finally:
        stop_sonde(s)


def test_unsampled_parent_exports_nothing(monkeypatch, receiver, nginx):
    s = start_sonde(monkeypatch, receiver,
                    OTEL_TRACES_SAMPLER="parentbased_always_on")
    try:
        for _ in range(10):
            assert get(nginx.port, "/", {
                "traceparent": f"00-{TRACE}-{PARENT}-00"}) == 200
        # Then one sampled request: once its span is in, the ones before
        # it have been through the pipeline too.
        assert get(nginx.port, "/users/1", {
            "traceparent": f"00-{'a' * 32}-{PARENT}-01"}) == 200
        [sp] = wait_spans(receiver, nginx.port, 1)
        time.sleep(1)
        got = port_spans(receiver, nginx.port)
        assert [g["trace"] for g in got] == ["a" * 32]
    finally:
        stop_sonde(s)


PROXY_SITE = """
    server {{
        listen 127.0.0.1:{port};
        location / {{ proxy_pass http://127.0.0.1:{backend}; }}
    }}"""


def test_proxy_chain_shares_one_trace(monkeypatch, receiver, tmp_path):
    backend_port, proxy_port, down = free_port(), free_port(), free_port()
    backend = Server([sys.executable, os.path.join(SERVERS, "chainapp.py"),
                      str(backend_port), str(down)], backend_port)
    proxy = nginx_server(tmp_path, proxy_port, PROXY_SITE.format(
        port=proxy_port, backend=backend_port))
    s = start_sonde(monkeypatch, receiver)
    try:
        for i in range(4):
            tid = f"{i + 1:032x}"
            assert get(proxy_port, "/hello", {
                "traceparent": f"00-{tid}-{PARENT}-01"}) == 200
        front = wait_spans(receiver, proxy_port, 4)
        out = wait_spans(receiver, backend_port, 4, kind=CLIENT)
        back = wait_spans(receiver, backend_port, 4)
        every = spans(receiver)
        ids = [sp["id"] for sp in every]
        assert len(ids) == len(set(ids)), "two spans share an id"
        by_id = {sp["id"]: sp for sp in every}
        for i in range(4):
            tid = f"{i + 1:032x}"
            f = [sp for sp in front if sp["trace"] == tid]
            o = [sp for sp in out if sp["trace"] == tid]
            b = [sp for sp in back if sp["trace"] == tid]
            assert len(f) == len(o) == len(b) == 1, (tid, front, out, back)
            assert f[0]["resource"]["service.name"] == "nginx"
            assert o[0]["resource"]["service.name"] == "nginx"
            assert f[0]["parent"] == PARENT
            # nginx forwards the header unchanged: the backend's parent is
            # the span that header names.
            assert b[0]["parent"] == PARENT
            assert o[0]["parent"] in (PARENT, f[0]["id"])
        for sp in every:
            seen, cur = set(), sp
            while cur and cur["parent"] in by_id:
                assert cur["id"] not in seen, "a span is its own ancestor"
                seen.add(cur["id"])
                cur = by_id[cur["parent"]]
    finally:
        stop_sonde(s)
        proxy.stop()
        backend.stop()


@pytest.fixture(scope="module")
def postgres(tmp_path_factory):
    server = dbservers.Postgres(str(tmp_path_factory.mktemp("pg")))
    import psycopg2
    conn = psycopg2.connect(server.dsn())
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE orders (id serial PRIMARY KEY, "
                    "item text, qty int)")
        cur.execute("INSERT INTO orders (item, qty) SELECT 'seed', g "
                    "FROM generate_series(1, 20) g")
    conn.close()
    yield server
    server.stop()


def test_thread_per_request_calls_are_children(monkeypatch, receiver,
                                               nginx, postgres):
    port = free_port()
    app = Server([sys.executable, os.path.join(SERVERS, "chainapp.py"),
                  str(port), str(nginx.port), postgres.dsn()], port)
    s = start_sonde(monkeypatch, receiver)
    try:
        n = 6
        for _ in range(n):
            assert get(port, "/checkout") == 200
        served = wait_spans(receiver, port, n)
        calls = wait_spans(receiver, nginx.port, n, kind=CLIENT)
        wait_for(lambda: len([sp for sp in spans(receiver)
                              if sp["name"] == "SELECT orders"]) >= n, 15,
                 what="the database spans")
        every = spans(receiver)
        db = [sp for sp in every if sp["name"] == "SELECT orders"]
        assert len(db) == n
        by_id = {sp["id"]: sp for sp in served}
        for child in calls + db:
            parent = by_id.get(child["parent"])
            assert parent, f"{child['name']} is no child of a request"
            assert child["trace"] == parent["trace"]
            assert parent["start"] <= child["start"] <= child["end"] <= \
                parent["end"]
            assert child["kind"] == CLIENT
        for sp in db:
            a = sp["attrs"]
            assert a["db.system.name"] == "postgresql"
            assert a["db.operation.name"] == "SELECT"
            assert a["db.collection.name"] == "orders"
            assert a["server.port"] == str(postgres.port)
            # The statement's text and its parameter never enter a span.
            assert "qty" not in repr(sp)
        # Each request has its own trace, and nginx's server span for the
        # call it was made (nginx read no traceparent) is a root.
        assert len({sp["trace"] for sp in served}) == n
    finally:
        stop_sonde(s)
        app.stop()


def test_ratio_sampler_keeps_a_quarter(monkeypatch, receiver, nginx):
    s = start_sonde(monkeypatch, receiver, OTEL_TRACES_SAMPLER="traceidratio",
                    OTEL_TRACES_SAMPLER_ARG="0.25",
                    OTEL_BSP_MAX_QUEUE_SIZE="8192")
    try:
        n = 4000
        assert keepalive_requests(nginx.port, ["/"] * n).count(200) == n
        s.settled_series(nginx.port, n, timeout=30)
        time.sleep(2)
        got = port_spans(receiver, nginx.port)
        assert 900 <= len(got) <= 1100, len(got)
    finally:
        stop_sonde(s)


def test_collector_down_memory_flat_and_drops_counted(monkeypatch, nginx):
    dead = free_port()  # nothing listens there
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "200")
    s = Sonde("--otlp-endpoint", f"http://127.0.0.1:{dead}")
    try:
        keepalive_requests(nginx.port, ["/"] * 2000)
        s.settled_series(nginx.port, 2000, timeout=30)
        before = rss_kib(s.proc.pid)
        for _ in range(4):
            keepalive_requests(nginx.port, ["/"] * 4000)
        s.settled_series(nginx.port, 18000, timeout=60)
        after = rss_kib(s.proc.pid)
        assert after - before < 8 * 1024, (before, after)
        dropped = {labels["reason"]: v for name, labels, v in s.samples()
                   if name == "sonde_spans_dropped_total"}
        assert sum(dropped.values()) > 0, dropped
    finally:
        stop_sonde(s)


def test_503_then_200_delivers_each_span_once(monkeypatch, receiver, nginx):
    receiver._call("POST", "/control/trace-script",
                   [{"status": 503, "retryAfter": "1"}])
    s = start_sonde(monkeypatch, receiver)
    try:
        n = 20
        assert keepalive_requests(nginx.port, ["/"] * n).count(200) == n
        got = wait_spans(receiver, nginx.port, n, timeout=20)
        time.sleep(1.5)
        got = port_spans(receiver, nginx.port)
        assert len(got) == n and len({sp["id"] for sp in got}) == n
        answers = [r["answer"].get("status", 200)
                   for r in trace_requests(receiver)]
        assert answers[0] == 503 and 200 in answers
        exported = sum(v for name, _, v in s.samples()
                       if name == "sonde_spans_exported_total")
        assert exported >= n
    finally:
        stop_sonde(s)


def test_traces_none_exports_no_span(monkeypatch, receiver, nginx):
    s = start_sonde(monkeypatch, receiver, OTEL_TRACES_EXPORTER="none")
    try:
        assert get(nginx.port, "/") == 200
        s.settled_series(nginx.port, 1)
        time.sleep(1)
        assert trace_requests(receiver) == []
    finally:
        stop_sonde(s)


def test_grpc_calls_make_server_and_client_spans(monkeypatch, receiver):
    from test_grpc import GET, GRPC_DIR, NODE, PLAN, WATCH, run_client
    port = free_port()
    app = os.path.join(GRPC_DIR, "grpcapp.js")
    server = Server([NODE, app, "serve", str(port)], port, cwd=GRPC_DIR)
    s = start_sonde(monkeypatch, receiver)
    try:
        run_client([NODE, app, "call", str(port), json.dumps(PLAN)])
        n = sum(p["count"] for p in PLAN)
        served = wait_spans(receiver, port, n)
        made = wait_spans(receiver, port, n, kind=CLIENT)
        time.sleep(1)
        for side, got in ((SERVER, port_spans(receiver, port)),
                          (CLIENT, port_spans(receiver, port, CLIENT))):
            assert len(got) == n
            names = {}
            errors = {}
            for sp in got:
                assert sp["attrs"]["rpc.system.name"] == "grpc"
                assert sp["attrs"]["rpc.method"] == sp["name"]
                names[sp["name"]] = names.get(sp["name"], 0) + 1
                code = sp["attrs"]["rpc.response.status_code"]
                if sp["status"] == 2:
                    errors[code] = errors.get(code, 0) + 1
            assert names == {GET: n - 3, WATCH: 3}
            # The server's own faults fail its span; the client's fail on
            # every status but OK.
            assert errors == ({"DEADLINE_EXCEEDED": 4} if side == SERVER
                              else {"NOT_FOUND": 7, "PERMISSION_DENIED": 5,
                                    "DEADLINE_EXCEEDED": 4})
        assert served and made
    finally:
        stop_sonde(s)
        server.stop()


PLAIN_CLIENT = r"""
import sys, urllib.request
for _ in range(int(sys.argv[2])):
    urllib.request.urlopen("http://127.0.0.1:%s/hello" % sys.argv[1]).read()
"""


def test_propagation_joins_client_and_server(monkeypatch, receiver,
                                             tmp_path):
    """A python client with no SDK calls a python server directly: with
    --trace-propagation the server receives a traceparent it did not get
    before, naming the client's CLIENT span, and its SERVER span is that
    span's child; without the option it receives none."""
    port, seen = free_port(), tmp_path / "seen"
    app = Server([sys.executable, os.path.join(SERVERS, "chainapp.py"),
                  str(port), str(free_port())], port,
                 env=dict(os.environ, CHAINAPP_SEEN=str(seen)))
    try:
        for propagate in (False, True):
            seen.write_text("")
            monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "200")
            s = Sonde("--otlp-endpoint", receiver.url(), "--port", str(port),
                      *(["--trace-propagation"] if propagate else []))
            try:
                subprocess.run([sys.executable, "-c", PLAIN_CLIENT, str(port),
                                "3"], check=True, timeout=30)
                got = seen.read_text().split()
                assert len(got) == 3
                if not propagate:
                    assert got == ["-"] * 3
                    continue
                clients = wait_spans(receiver, port, 3, kind=CLIENT)
                servers = wait_spans(receiver, port, 6)
                for header in got:
                    _, trace, parent, flags = header.split("-")
                    c = [sp for sp in clients if sp["trace"] == trace]
                    sv = [sp for sp in servers if sp["trace"] == trace]
                    assert len(c) == 1 and len(sv) == 1, (header, clients)
                    assert c[0]["id"] == parent and flags == "01"
                    assert sv[0]["parent"] == c[0]["id"]
                    assert c[0]["resource"]["process.executable.name"] \
                        .startswith("python")
            finally:
                stop_sonde(s)
    finally:
        app.stop()


def test_propagation_carries_the_trace_through_a_service(monkeypatch,
                                                        receiver, tmp_path):
    """Two hops with no SDK anywhere: a python client calls service A
    (thread per request), whose handler calls service B. With
    --trace-propagation the client's request and A's call each get a
    traceparent, and A's carries the trace of the request A serves: the
    client's, A's and B's spans make one trace, each a child of the one
    before. Then the client sends its own traceparent: A's call to B
    carries that trace on."""
    a_port, b_port = free_port(), free_port()
    seen_a, seen_b = tmp_path / "a", tmp_path / "b"
    b = Server([sys.executable, os.path.join(SERVERS, "chainapp.py"),
                str(b_port), str(free_port())], b_port,
               env=dict(os.environ, CHAINAPP_SEEN=str(seen_b)))
    a = Server([sys.executable, os.path.join(SERVERS, "chainapp.py"),
                str(a_port), str(b_port)], a_port,
               env=dict(os.environ, CHAINAPP_SEEN=str(seen_a)))
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "200")
    s = Sonde("--otlp-endpoint", receiver.url(), "--trace-propagation")
    try:
        relay = PLAIN_CLIENT.replace("/hello", "/relay")
        subprocess.run([sys.executable, "-c", relay, str(a_port), "3"],
                       check=True, timeout=30)
        wait_spans(receiver, b_port, 3)
        wait_spans(receiver, b_port, 3, kind=CLIENT)
        got_a = seen_a.read_text().split()
        got_b = seen_b.read_text().split()
        assert len(got_a) == len(got_b) == 3
        # The client's spans wait a little for a request its thread
        # might be serving (it serves none): all ids in, then check.
        want = {h.split("-")[2] for h in got_a + got_b}
        wait_for(lambda: want <= {sp["id"] for sp in spans(receiver)}, 15,
                 what="the spans the headers name")
        for ha, hb in zip(got_a, got_b):
            trace, client_id = ha.split("-")[1:3]
            trace_b, call_id = hb.split("-")[1:3]
            assert trace_b == trace, (ha, hb)
            every = [sp for sp in spans(receiver) if sp["trace"] == trace]
            by_id = {sp["id"]: sp for sp in every}
            client = by_id[client_id]
            call = by_id[call_id]
            [served_a] = [sp for sp in every if sp["kind"] == SERVER and
                          sp["attrs"]["server.port"] == str(a_port)]
            [served_b] = [sp for sp in every if sp["kind"] == SERVER and
                          sp["attrs"]["server.port"] == str(b_port)]
            assert client["kind"] == CLIENT and client["parent"] == ""
            assert served_a["parent"] == client["id"]
            assert call["kind"] == CLIENT
            assert call["parent"] == served_a["id"]
            assert served_b["parent"] == call["id"]
        # A caller with its own context: A's call to B carries its trace.
        seen_b.write_text("")
        assert get(a_port, "/relay",
                   {"traceparent": f"00-{TRACE}-{PARENT}-01"}) == 200
        [hb] = seen_b.read_text().split()
        assert hb.split("-")[1] == TRACE
        # pytest's own call to A, A's, B's, and A's call to B.
        wait_for(lambda: len([sp for sp in spans(receiver)
                              if sp["trace"] == TRACE]) >= 4, 15,
                 what="the spans of the caller's trace")
        mine = [sp for sp in spans(receiver) if sp["trace"] == TRACE]
        [served_a] = [sp for sp in mine if sp["kind"] == SERVER and
                      sp["attrs"]["server.port"] == str(a_port)]
        [call] = [sp for sp in mine if sp["kind"] == CLIENT and
                  sp["attrs"]["server.port"] == str(b_port)]
        [served_b] = [sp for sp in mine if sp["kind"] == SERVER and
                      sp["attrs"]["server.port"] == str(b_port)]
        assert served_a["parent"] == PARENT
        assert call["parent"] == served_a["id"]
        assert served_b["parent"] == call["id"] == hb.split("-")[2]
    finally:
        stop_sonde(s)
        a.stop()
        b.stop()
