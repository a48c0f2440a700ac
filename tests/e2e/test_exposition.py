"""/metrics as Prometheus sees it: promtool, a real Prometheus server, gzip,
content type, and the histogram invariants."""
import gzip
import json
import subprocess
import urllib.parse
import urllib.request
from collections import defaultdict

import promproto
from conftest import (HISTOGRAM, Server, Sonde, free_port,
                      keepalive_requests, wait_for)


def test_promtool_accepts_the_exposition(sonde, nginx, app):
    keepalive_requests(nginx.port, ["/", "/fail", "/users/1"] * 5)
    keepalive_requests(app.port, ["/sleep/1", "/status/404"] * 5)
    sonde.settled_series(nginx.port, 15)
    sonde.settled_series(app.port, 10)
    check = subprocess.run(["promtool", "check", "metrics"],
                           input=sonde.text(), capture_output=True,
                           text=True)
    # promtool exits 0 when the text parses; lint remarks go to stdout.
    assert check.returncode == 0, check.stdout + check.stderr


def test_buckets_are_cumulative_and_inf_equals_count(sonde, app):
    keepalive_requests(app.port, ["/sleep/1", "/sleep/30", "/sleep/120",
                                  "/status/500"] * 4)
    sonde.settled_series(app.port, 16)
    buckets, counts = defaultdict(list), {}
    for name, labels, value in sonde.samples():
        key = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        if name == HISTOGRAM + "_bucket":
            buckets[key].append((float(labels["le"]), value))
        elif name == HISTOGRAM + "_count":
            counts[key] = value
    assert buckets and set(buckets) == set(counts)
    for key, points in buckets.items():
        values = [v for _, v in sorted(points)]
        assert values == sorted(values), key
        assert sorted(points)[-1][0] == float("inf")
        assert values[-1] == counts[key], key


def test_gzip_only_when_accepted_and_content_type(sonde):
    status, headers, body = sonde.get("/metrics",
                                      {"Accept-Encoding": "gzip"})
    assert status == 200
    assert headers["Content-Type"] == \
        "text/plain; version=0.0.4; charset=utf-8"
    assert headers.get("Content-Encoding") == "gzip"
    text = gzip.decompress(body).decode()
    assert "sonde_build_info" in text

    status, headers, body = sonde.get("/metrics")
    assert "Content-Encoding" not in headers
    assert b"sonde_build_info" in body

    status, headers, body = sonde.get("/metrics",
                                      {"Accept-Encoding": "gzip;q=0"})
    assert "Content-Encoding" not in headers


def test_health_and_readiness(sonde):
    assert sonde.get("/healthz")[0] == 200
    assert sonde.get("/readyz")[0] == 200
    assert sonde.get("/nope")[0] == 404


PROMETHEUS_CONF = """
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: sonde
    static_configs:
      - targets: ["127.0.0.1:{port}"]
"""


def prometheus_query(port, expr):
    url = (f"http://127.0.0.1:{port}/api/v1/query?" +
           urllib.parse.urlencode({"query": expr}))
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.load(resp)["data"]["result"]


def test_prometheus_scrapes_and_computes_the_median(sonde, app, tmp_path):
    keepalive_requests(app.port, ["/sleep/50"] * 20, connections=2)
    sonde.settled_series(app.port, 20)

    conf = tmp_path / "prometheus.yml"
    conf.write_text(PROMETHEUS_CONF.format(port=sonde.port))
    port = free_port()
    prom = Server(["prometheus", f"--config.file={conf}",
                   f"--storage.tsdb.path={tmp_path / 'data'}",
                   f"--web.listen-address=127.0.0.1:{port}"], port)
    try:
        expr = ("histogram_quantile(0.5, sum by (le) (" + HISTOGRAM +
                f'_bucket{{server_port="{app.port}"}}))')

        def median():
            try:
                result = prometheus_query(port, expr)
            except OSError:
                return None
            return float(result[0]["value"][1]) if result else None

        value = wait_for(median, timeout=40, interval=0.5,
                         what="Prometheus to scrape sonde")
        assert 0.05 < value <= 0.075, value
    finally:
        prom.stop()


PROTOBUF_ACCEPT = ("application/vnd.google.protobuf;"
                   "proto=io.prometheus.client.MetricFamily;"
                   "encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3")


def test_native_histograms_for_a_prometheus_that_asks(app, tmp_path):
    s = Sonde("--native-histograms")
    try:
        keepalive_requests(app.port, ["/sleep/50"] * 20, connections=2)
        s.settled_series(app.port, 20)

        # The protobuf exposition: classic and native buckets in one
        # message, the classic ones as the text has them.
        status, headers, body = s.get("/metrics",
                                      headers={"Accept": PROTOBUF_ACCEPT})
        assert status == 200
        assert headers["Content-Type"] == (
            "application/vnd.google.protobuf; "
            "proto=io.prometheus.client.MetricFamily; encoding=delimited")
        fam = next(f for f in promproto.families(body)
                   if f["name"] == HISTOGRAM)
        assert fam["type"] == 4  # HISTOGRAM
        h = next(m for m in fam["metrics"]
                 if m["labels"]["server_port"] == str(app.port))["histogram"]
        assert h["count"] == 20 and 1.0 <= h["sum"] < 2.0
        text = {float(lab["le"]): v for n, lab, v in s.samples()
                if n == HISTOGRAM + "_bucket"
                and lab["server_port"] == str(app.port)
                and lab["le"] != "+Inf"}
        assert {b["le"]: b["cumulative"] for b in h["buckets"]} == text
        assert h["schema"] == 3 and h["zero_count"] == 0
        native = promproto.native_buckets(h)
        assert sum(native.values()) == 20
        # Each request slept 50 ms: every observation is in a bucket whose
        # upper bound, 2^(i/8), is above 0.05 s, and within 2 buckets.
        for i, n in native.items():
            assert n == 0 or 0.05 < 2 ** (i / 8) <= 0.05 * 2 ** (3 / 8), \
                native

        # Everyone else still gets the text.
        status, headers, _ = s.get("/metrics", headers={"Accept": "*/*"})
        assert headers["Content-Type"].startswith("text/plain")

        conf = tmp_path / "prometheus.yml"
        conf.write_text(PROMETHEUS_CONF.format(port=s.port))
        port = free_port()
        prom = Server(["prometheus", f"--config.file={conf}",
                       f"--storage.tsdb.path={tmp_path / 'data'}",
                       f"--web.listen-address=127.0.0.1:{port}",
                       "--enable-feature=native-histograms"], port)
        try:
            series = f'{HISTOGRAM}{{server_port="{app.port}"}}'

            def stored():
                try:
                    result = prometheus_query(port, series)
                except OSError:
                    return None
                return result[0] if result else None

            sample = wait_for(stored, timeout=40, interval=0.5,
                              what="Prometheus to scrape sonde")
            # A native histogram sample, not a float one.
            assert "histogram" in sample and "value" not in sample, sample
            assert sample["histogram"][1]["count"] == "20"
            value = float(prometheus_query(
                port, f"histogram_quantile(0.5, {series})")[0]["value"][1])
            # Within the resolution of 0.05's bucket at schema 3 (a
            # factor of 2^(1/8) either way).
            assert 0.05 / 2 ** (1 / 8) < value <= 0.05 * 2 ** (2 / 8), value
        finally:
            prom.stop()
    finally:
        assert s.stop() == 0, s.output()
