"""/metrics as Prometheus sees it: promtool, a real Prometheus server, gzip,
content type, and the histogram invariants."""
import gzip
import json
import subprocess
import urllib.parse
import urllib.request
from collections import defaultdict

from conftest import (HISTOGRAM, Server, free_port, keepalive_requests,
                      wait_for)


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
