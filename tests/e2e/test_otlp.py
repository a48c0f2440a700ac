"""OTLP export: the requests sonde pushes, decoded by the protobuf code the
OpenTelemetry project publishes (@opentelemetry/otlp-transformer, run by
tests/e2e/otlp/receiver.js), hold what /metrics shows, and the delivery
rules of the OTLP specification hold against a receiver that fails on
purpose.

Series are told apart by the nginx fixture's server.port: sonde sees the
whole host, the receiver itself (service "node") included.
"""
import json
import os
import socket
import subprocess
import threading
import time
import urllib.request

import pytest

from conftest import (HISTOGRAM, SONDE, Server, Sonde, free_port,
                      keepalive_requests, not_sanitized, rss_kib, wait_for)

RECEIVER = os.path.join(os.path.dirname(__file__), "otlp", "receiver.js")
METRIC = "http.server.request.duration"
# The same mix of routes and statuses as the core nginx tests.
PATHS = ["/"] * 12 + ["/fail"] * 5 + ["/users/7", "/users/42"] * 3 + \
    ["/missing"] * 2
EXPECTED = {("GET", "200", "/"): 12, ("GET", "503", "/fail"): 5,
            ("GET", "200", "/users/{id}"): 6, ("GET", "404", "/missing"): 2}


class Receiver(Server):
    def __init__(self):
        port = free_port()
        super().__init__(["node", RECEIVER, str(port)], port)

    def _call(self, method, path, body=None):
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", method=method,
            data=None if body is None else json.dumps(body).encode())
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.read()

    def script(self, answers):
        self._call("POST", "/control/script", answers)

    def requests(self):
        return json.loads(self._call("GET", "/control/requests"))

    def url(self):
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.stop()


def start_sonde(monkeypatch, endpoint, interval=500, **env):
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", str(interval))
    # The metrics alone: --otlp-endpoint sends spans there too
    # (test_traces.py), which would come between the attempts timed here.
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Sonde("--otlp-endpoint", endpoint)


def stop_sonde(s):
    code = s.stop()
    assert code == 0, "sonde exited with %s:\n%s" % (code, s.output())


def attrs(kvs):
    out = {}
    for kv in kvs or []:
        value = kv.get("value", {})
        out[kv["key"]] = value.get("stringValue", value.get("intValue"))
    return out


def all_points(record, metric):
    """[(resource attributes, kind, data, point)] for every data point of
    metric in one decoded request; kind names the data ("histogram",
    "sum", "gauge", ...)."""
    out = []
    for rm in record.get("request", {}).get("resourceMetrics", []):
        resource = attrs(rm.get("resource", {}).get("attributes"))
        for sm in rm.get("scopeMetrics", []):
            for m in sm.get("metrics", []):
                if m["name"] != metric:
                    continue
                for kind in ("histogram", "exponentialHistogram", "sum",
                             "gauge"):
                    data = m.get(kind)
                    for p in (data or {}).get("dataPoints", []):
                        out.append((resource, kind, data, p))
    return out


def points(record, port, metric=METRIC):
    """[(resource attributes, temporality, kind, point)] for the data
    points of metric with server.port == port in one decoded request."""
    return [(resource, data.get("aggregationTemporality"), kind, p)
            for resource, kind, data, p in all_points(record, metric)
            if attrs(p.get("attributes")).get("server.port") == str(port)]


def key(point):
    a = attrs(point.get("attributes"))
    return (a["http.request.method"], a["http.response.status_code"],
            a["http.route"])


def counts(record, port):
    return {key(p): int(p.get("count", 0))
            for _, _, _, p in points(record, port)}


def delta_totals(records, port):
    """Counts, sums and bucket counts added up over delta requests."""
    total = {}
    for r in records:
        for _, temporality, _, p in points(r, port):
            assert temporality == 1, "expected AGGREGATION_TEMPORALITY_DELTA"
            t = total.setdefault(key(p), {"count": 0, "sum": 0.0,
                                          "buckets": None})
            t["count"] += int(p["count"])
            t["sum"] += p.get("sum", 0.0)
            b = [int(x) for x in p["bucketCounts"]]
            t["buckets"] = b if t["buckets"] is None else \
                [x + y for x, y in zip(t["buckets"], b)]
    return total


def scrape_histograms(s, port):
    """{key: {"count", "sum", "buckets" (per bucket, not cumulative)}}."""
    out = {}
    for name, labels, value in s.samples():
        # Client and TCP series carry server_port too.
        if (not name.startswith(HISTOGRAM + "_")
                or labels.get("server_port") != str(port)):
            continue
        k = (labels["http_request_method"],
             labels["http_response_status_code"], labels["http_route"])
        entry = out.setdefault(k, {"cumulative": []})
        if name == HISTOGRAM + "_count":
            entry["count"] = int(value)
        elif name == HISTOGRAM + "_sum":
            entry["sum"] = value
        elif name == HISTOGRAM + "_bucket":
            entry["cumulative"].append(value)
    for entry in out.values():
        c = [int(x) for x in entry.pop("cumulative")]
        entry["buckets"] = [c[0]] + [b - a for a, b in zip(c, c[1:])]
    return out


def self_metric(s, result):
    for name, labels, value in s.samples():
        if name == "sonde_otlp_exports_total" and \
                labels.get("result") == result:
            return int(value)
    raise AssertionError(f"no sonde_otlp_exports_total{{result={result}}}")


def answered(records, port, status):
    return [r for r in records
            if points(r, port) and r["answer"].get("status", 200) == status
            and not r["answer"].get("hang")]


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_histograms_equal_what_metrics_shows(monkeypatch, receiver, nginx,
                                             compression):
    s = start_sonde(monkeypatch, receiver.url(),
                    OTEL_EXPORTER_OTLP_COMPRESSION=compression)
    try:
        assert keepalive_requests(nginx.port, PATHS).count(200) == 18
        assert s.settled_series(nginx.port, len(PATHS)) == EXPECTED
        scraped = scrape_histograms(s, nginx.port)

        def export_caught_up():
            records = receiver.requests()
            last = [r for r in records if points(r, nginx.port)]
            return last[-1] if last and counts(last[-1], nginx.port) == \
                EXPECTED else None

        record = wait_for(export_caught_up, timeout=10,
                          what="an export with all nginx requests")
        assert "error" not in record, record.get("error")
        assert record["gzipped"] == (compression == "gzip")
        assert record["headers"]["user-agent"].startswith("sonde/")
        assert record["headers"]["content-type"] == "application/x-protobuf"
        found = points(record, nginx.port)
        assert len(found) == len(EXPECTED)
        for resource, temporality, kind, p in found:
            assert kind == "histogram" and temporality == 2  # cumulative
            want = scraped[key(p)]
            assert int(p["count"]) == want["count"]
            assert p["sum"] == pytest.approx(want["sum"], rel=1e-12)
            assert [int(x) for x in p["bucketCounts"]] == want["buckets"]
            assert p["explicitBounds"] == [0.005, 0.01, 0.025, 0.05, 0.075,
                                           0.1, 0.25, 0.5, 0.75, 1, 2.5, 5,
                                           7.5, 10]
            assert int(p["startTimeUnixNano"]) < int(p["timeUnixNano"])
            assert resource["service.name"] == "nginx"
            assert resource["host.name"] == socket.gethostname()
            assert resource["process.executable.name"] == "nginx"
            with open(f"/proc/{resource['process.pid']}/comm") as f:
                assert f.read().strip() == "nginx"
        scope = next(sm["scope"] for rm in record["request"]["resourceMetrics"]
                     for sm in rm["scopeMetrics"])
        assert scope["name"] == "sonde" and scope["version"]
        # Start times stay put from one export to the next.
        later = wait_for(lambda: [r for r in receiver.requests()
                                  if r["time"] > record["time"] and
                                  points(r, nginx.port)],
                         timeout=5, what="a later export")[0]
        starts = {key(p): p["startTimeUnixNano"]
                  for _, _, _, p in points(record, nginx.port)}
        assert starts == {key(p): p["startTimeUnixNano"]
                          for _, _, _, p in points(later, nginx.port)}
        assert self_metric(s, "success") >= 2
        assert self_metric(s, "failed") == 0
    finally:
        stop_sonde(s)


def test_delta_exports_sum_to_the_cumulative_totals(monkeypatch, receiver,
                                                     nginx):
    s = start_sonde(
        monkeypatch, receiver.url(),
        OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE="delta")
    try:
        for part in (PATHS[:10], PATHS[10:20], PATHS[20:]):
            keepalive_requests(nginx.port, part)
            time.sleep(1.2)  # more than two export intervals
        assert s.settled_series(nginx.port, len(PATHS)) == EXPECTED
        scraped = scrape_histograms(s, nginx.port)
        time.sleep(1.2)
        records = [r for r in receiver.requests() if points(r, nginx.port)]
        assert len(records) >= 3, "expected one delta per burst"
        total = delta_totals(records, nginx.port)
        assert {k: v["count"] for k, v in total.items()} == EXPECTED
        for k, t in total.items():
            assert t["buckets"] == scraped[k]["buckets"]
            assert t["sum"] == pytest.approx(scraped[k]["sum"], rel=1e-9)
        # Each delta of a series starts where its previous one ended.
        ends = {}
        for r in records:
            for _, _, _, p in points(r, nginx.port):
                if key(p) in ends:
                    assert p["startTimeUnixNano"] == ends[key(p)]
                ends[key(p)] = p["timeUnixNano"]
    finally:
        stop_sonde(s)


def test_exponential_histograms_hold_the_same_counts(monkeypatch, receiver,
                                                      nginx):
    s = start_sonde(
        monkeypatch, receiver.url(),
        OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION=(
            "base2_exponential_bucket_histogram"))
    try:
        keepalive_requests(nginx.port, PATHS)
        assert s.settled_series(nginx.port, len(PATHS)) == EXPECTED
        scraped = scrape_histograms(s, nginx.port)
        record = wait_for(
            lambda: next((r for r in reversed(receiver.requests())
                          if counts(r, nginx.port) == EXPECTED), None),
            timeout=10, what="an export with all nginx requests")
        for _, _, kind, p in points(record, nginx.port):
            assert kind == "exponentialHistogram"
            want = scraped[key(p)]
            assert int(p["count"]) == want["count"]
            assert p["sum"] == pytest.approx(want["sum"], rel=1e-12)
            in_buckets = sum(int(x) for x in
                             p.get("positive", {}).get("bucketCounts", []))
            assert in_buckets + int(p.get("zeroCount", 0)) == want["count"]
            assert -10 <= p["scale"] <= 20
            assert 0 < p["min"] <= p["max"]
    finally:
        stop_sonde(s)


def test_503_with_retry_after_is_sent_again_after_the_delay_once(
        monkeypatch, receiver, nginx):
    receiver.script([{"status": 503, "retryAfter": "2",
                      "port": nginx.port}])
    s = start_sonde(
        monkeypatch, receiver.url(),
        OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE="delta")
    try:
        keepalive_requests(nginx.port, PATHS)
        assert s.settled_series(nginx.port, len(PATHS)) == EXPECTED
        wait_for(lambda: delta_totals(
            answered(receiver.requests(), nginx.port, 200), nginx.port),
            timeout=15, what="the data to arrive after the 503")
        time.sleep(1.2)
        records = receiver.requests()
        refused = answered(records, nginx.port, 503)
        assert len(refused) == 1
        after = [r for r in records if r["time"] > refused[0]["time"]]
        # Nothing at all is sent until Retry-After has passed.
        assert after[0]["time"] - refused[0]["time"] >= 1.9
        assert counts(after[0], nginx.port) == counts(refused[0], nginx.port)
        total = delta_totals(answered(records, nginx.port, 200), nginx.port)
        assert {k: v["count"] for k, v in total.items()} == EXPECTED
        assert self_metric(s, "retried") == 1
        assert self_metric(s, "failed") == 0
    finally:
        stop_sonde(s)


def test_400_is_not_retried_and_counted_as_failed(monkeypatch, receiver,
                                                   nginx):
    receiver.script([{"status": 400, "port": nginx.port}])
    s = start_sonde(
        monkeypatch, receiver.url(),
        OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE="delta")
    try:
        keepalive_requests(nginx.port, PATHS)
        assert s.settled_series(nginx.port, len(PATHS)) == EXPECTED
        rejected = wait_for(
            lambda: answered(receiver.requests(), nginx.port, 400),
            timeout=10, what="the request the receiver rejects")
        assert len(rejected) == 1
        assert counts(rejected[0], nginx.port) == EXPECTED
        time.sleep(2.0)  # four intervals: time enough for a retry
        records = receiver.requests()
        assert answered(records, nginx.port, 200) == []
        later = [r for r in records if r["time"] > rejected[0]["time"]]
        # The next request comes at the next interval, not after a backoff.
        assert later and later[0]["time"] - rejected[0]["time"] < 1.5
        assert self_metric(s, "failed") == 1
        assert self_metric(s, "retried") == 0
        assert "rejected (HTTP status 400); not retried" in s.output()
    finally:
        stop_sonde(s)


def test_partial_success_is_logged_and_not_retried(monkeypatch, receiver,
                                                    nginx):
    receiver.script([{"status": 200, "port": nginx.port,
                      "partial": {"rejected": 2, "message": "too old"}}])
    s = start_sonde(
        monkeypatch, receiver.url(),
        OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE="delta")
    try:
        keepalive_requests(nginx.port, PATHS)
        assert s.settled_series(nginx.port, len(PATHS)) == EXPECTED
        wait_for(lambda: self_metric(s, "partial") == 1, timeout=10,
                 what="the partial success to be counted")
        time.sleep(1.2)
        records = [r for r in receiver.requests() if points(r, nginx.port)]
        assert len(records) == 1
        assert "partial success: 2 data points rejected: too old" \
            in s.output()
        assert self_metric(s, "retried") == 0
    finally:
        stop_sonde(s)


def test_hanging_receiver_times_out_without_stalling_metrics(
        monkeypatch, receiver, nginx):
    receiver.script([{"hang": True, "port": nginx.port}])
    s = start_sonde(monkeypatch, receiver.url(),
                    OTEL_EXPORTER_OTLP_TIMEOUT="1000")
    try:
        keepalive_requests(nginx.port, PATHS)
        hung = wait_for(
            lambda: [r for r in receiver.requests()
                     if r["answer"].get("hang")],
            timeout=10, what="a request to hang")[0]
        t0 = time.monotonic()
        s.text()  # /metrics answers while the exporter waits
        assert time.monotonic() - t0 < 0.5
        retry = wait_for(
            lambda: [r for r in receiver.requests()
                     if r["time"] > hung["time"]],
            timeout=10, what="the request after the timeout")[0]
        # 1 s timeout, then a backoff of 0.75 to 1 s.
        assert 1.6 <= retry["time"] - hung["time"] <= 4.0
        assert self_metric(s, "retried") == 1
        slow = [v for n, l, v in s.samples()
                if n == "sonde_otlp_export_duration_seconds_bucket"
                and l["le"] in ("0.75", "+Inf")]
        assert slow[1] - slow[0] >= 1  # the attempt that timed out
    finally:
        stop_sonde(s)


@not_sanitized
def test_down_collector_backs_off_and_memory_stays_flat(monkeypatch, nginx):
    down = free_port()  # nothing listens here
    s = start_sonde(
        monkeypatch, f"http://127.0.0.1:{down}", interval=200,
        OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE="delta")
    try:
        samples = []
        deadline = time.monotonic() + 9
        while time.monotonic() < deadline:  # bounded: about 90 rounds
            keepalive_requests(nginx.port, ["/", "/users/1"], connections=1)
            samples.append((time.monotonic(), rss_kib(s.proc.pid),
                            self_metric(s, "retried")))
            time.sleep(0.1)
        assert s.proc.poll() is None
        retried = samples[-1][2]
        # 9 s of refused connects with 1, 2, 4 s backoffs: a handful of
        # attempts, not one per 200 ms interval.
        assert 2 <= retried <= 6, retried
        # Delta requests queue up to the cap; the oldest are dropped.
        assert self_metric(s, "dropped") > 0
        assert self_metric(s, "success") == 0
        settled = [rss for t, rss, _ in samples if t > samples[0][0] + 3]
        assert max(settled) - settled[0] < 2048, (settled[0], max(settled))
        assert "failed (Couldn't connect to server); retrying" in s.output()
    finally:
        stop_sonde(s)


def test_retry_intervals_grow(monkeypatch, nginx):
    """A collector that accepts and hangs up: every attempt is a transport
    error, and the gaps between attempts grow."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    accepted = []
    stop = threading.Event()

    def hang_up():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except socket.timeout:
                continue
            accepted.append(time.monotonic())
            conn.close()

    t = threading.Thread(target=hang_up)
    t.start()
    s = start_sonde(monkeypatch,
                    f"http://127.0.0.1:{listener.getsockname()[1]}")
    try:
        deadline = time.monotonic() + 12
        while len(accepted) < 4 and time.monotonic() < deadline:
            keepalive_requests(nginx.port, ["/"], connections=1)
            time.sleep(0.2)
        assert len(accepted) >= 4, accepted
        gaps = [b - a for a, b in zip(accepted, accepted[1:])]
        # Backoffs of 0.75-1, 1.5-2, 3-4 s.
        assert gaps[1] > gaps[0] * 1.2 and gaps[2] > gaps[1] * 1.2, gaps
        assert s.proc.poll() is None
    finally:
        stop_sonde(s)
        stop.set()
        t.join()
        listener.close()


def scraped(s, name):
    return [(labels, value) for n, labels, value in s.samples()
            if n == name]


def test_self_metrics_reach_otlp_from_the_same_registration(
        monkeypatch, receiver, nginx):
    """sonde's own metrics, registered once, reach the collector as well
    as /metrics: the same values, names in OpenTelemetry form, on a
    resource of sonde's own."""
    s = start_sonde(monkeypatch, receiver.url())
    try:
        keepalive_requests(nginx.port, PATHS)
        s.settled_series(nginx.port, len(PATHS))
        [(_, before)] = scraped(s, "sonde_events_received_total")
        assert before >= len(PATHS)

        def export_after_scrape():
            for r in reversed(receiver.requests()):
                found = all_points(r, "sonde.events.received")
                if found and int(found[0][3]["asInt"]) >= before:
                    return r
            return None

        record = wait_for(export_after_scrape, timeout=10,
                          what="an export counting the scraped events")
        [(_, after)] = scraped(s, "sonde_events_received_total")
        [(resource, kind, data, p)] = all_points(
            record, "sonde.events.received")
        # A counter: a cumulative monotonic sum, counted since sonde
        # started, on a resource of sonde's own.
        assert kind == "sum" and data["isMonotonic"]
        assert data["aggregationTemporality"] == 2
        assert before <= int(p["asInt"]) <= after
        assert int(p["startTimeUnixNano"]) < int(p["timeUnixNano"])
        assert resource["service.name"] == "sonde"
        assert resource["process.pid"] == str(s.proc.pid)
        assert resource["host.name"] == socket.gethostname()
        assert resource["service.version"]
        assert [m["unit"] for rm in record["request"]["resourceMetrics"]
                for sm in rm["scopeMetrics"] for m in sm["metrics"]
                if m["name"] == "sonde.events.received"] == ["{event}"]
        # Gauges: one point per label value, as /metrics has them.
        attached = {attrs(p["attributes"])["sonde.program.name"]:
                    (kind, int(p["asInt"]))
                    for _, kind, _, p in all_points(
                        record, "sonde.program.attached")}
        assert attached == {
            labels["program"]: ("gauge", int(v))
            for labels, v in scraped(s, "sonde_program_attached")}
        assert set(attached.values()) == {("gauge", 1)}
        [(_, kind, _, p)] = all_points(record, "sonde.build_info")
        assert kind == "gauge" and int(p["asInt"]) == 1
        [(labels, _)] = scraped(s, "sonde_build_info")
        assert attrs(p["attributes"]) == {"sonde.version":
                                          labels["version"]}
        # Dropped events by reason, the same reasons as /metrics.
        reasons = {attrs(p["attributes"])["sonde.drop.reason"]
                   for _, _, _, p in all_points(record,
                                                "sonde.events.dropped")}
        assert reasons == {labels["reason"] for labels, _ in
                           scraped(s, "sonde_events_dropped_total")}
        # The exporter's own attempts reach the collector too.
        exports = {attrs(p["attributes"])["sonde.otlp.export.result"]:
                   int(p["asInt"]) for _, _, _, p in
                   all_points(record, "sonde.otlp.exports")}
        assert set(exports) == {"success", "partial", "retried", "failed",
                                "dropped"}
        assert exports["failed"] == 0
    finally:
        stop_sonde(s)


@pytest.mark.parametrize("env, message", [
    ({"OTEL_METRIC_EXPORT_INTERVAL": "soon"},
     "OTEL_METRIC_EXPORT_INTERVAL: 'soon' is not a number of milliseconds"),
    ({"OTEL_EXPORTER_OTLP_COMPRESSION": "br"},
     "OTEL_EXPORTER_OTLP_COMPRESSION: 'br' is not one of none, gzip"),
    ({"OTEL_EXPORTER_OTLP_HEADERS": "broken"},
     "OTEL_EXPORTER_OTLP_HEADERS: 'broken' is not key=value"),
    ({"OTEL_EXPORTER_OTLP_CERTIFICATE": "/nonexistent.pem"},
     "OTEL_EXPORTER_OTLP_CERTIFICATE: cannot read '/nonexistent.pem'"),
])
def test_bad_otlp_settings_exit_2_with_one_line(env, message):
    r = subprocess.run([SONDE, "--otlp-endpoint", "http://127.0.0.1:4318"],
                       env=dict(os.environ, **env), capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 2
    assert r.stderr.startswith("sonde: ") and message in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1


def test_bad_endpoint_flag_exits_2():
    r = subprocess.run([SONDE, "--otlp-endpoint", "collector:4318"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert "--otlp-endpoint: 'collector:4318' is not an http:// or " \
        "https:// URL" in r.stderr


def test_help_documents_the_otlp_flag():
    r = subprocess.run([SONDE, "--help"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0
    assert "--otlp-endpoint URL" in r.stdout
    assert "OTEL_EXPORTER_OTLP_[METRICS_|TRACES_]ENDPOINT" in r.stdout
