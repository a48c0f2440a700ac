"""Scrapes at scale: 10k series served to concurrent and slow scrapers
from shared renderings, with memory that does not grow with their
number."""
import socket
import subprocess
import threading
import time

import pytest

from conftest import (HISTOGRAM, Sonde, keepalive_requests, nginx_site,
                      free_port, parse_exposition, rss_kib, wait_for)

SERIES = 10000


def route_series(sonde, port):
    """The /rN routes the nginx on port has a series for."""
    return sum(1 for line in sonde.text().splitlines()
               if line.startswith(HISTOGRAM + "_count{")
               and 'http_route="/r' in line
               and f'server_port="{port}"' in line)


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """sonde holding 10k series: nginx served one request to each of 10k
    routes (/r0 ... /r9999 stay routes of their own)."""
    tmp = tmp_path_factory.mktemp("scrape")
    (tmp / "static").mkdir()
    server = nginx_site(tmp, free_port())
    sonde = Sonde("--max-routes", str(2 * SERIES),
                  "--max-series", str(3 * SERIES))
    try:
        keepalive_requests(server.port,
                           [f"/r{i}" for i in range(SERIES)], connections=8)
        wait_for(lambda: route_series(sonde, server.port) == SERIES,
                 timeout=30,
                 interval=0.5, what=f"{SERIES} series")
        sonde.nginx_port = server.port
        yield sonde
    finally:
        server.stop()
        assert sonde.stop() == 0, sonde.output()


def get_body(port, out, i, start):
    start.wait()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n"
                  b"Connection: close\r\n\r\n")
        chunks = []
        while True:
            data = s.recv(1 << 20)
            if not data:
                break
            chunks.append(data)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    out[i] = (head, body)


def scrape_counts(sonde):
    """(text renderings made, scrapes served a shared one) as sonde's
    own metrics say before this scrape's rendering."""
    samples = sonde.samples()
    return (next(v for n, lab, v in samples
                 if n == "sonde_scrape_renders_total"
                 and lab == {"format": "text"}),
            next(v for n, _, v in samples
                 if n == "sonde_scrape_shared_total"))


def test_concurrent_scrapes_get_identical_complete_bodies(big):
    renders, shared = scrape_counts(big)
    out = [None] * 8
    start = threading.Event()
    threads = [threading.Thread(target=get_body,
                                args=(big.port, out, i, start))
               for i in range(8)]
    for t in threads:
        t.start()
    start.set()
    for t in threads:
        t.join(timeout=60)
    bodies = {body for _, body in out}
    assert len(bodies) == 1, "the scrapes that came together differ"
    body = bodies.pop()
    head = out[0][0].decode()
    length = int(next(line.split(":")[1] for line in head.split("\r\n")
                      if line.lower().startswith("content-length:")))
    assert len(body) == length
    text = body.decode()
    assert text.endswith("\n")
    counts = [s for s in parse_exposition(text)
              if s[0] == HISTOGRAM + "_count"
              and s[1]["server_port"] == str(big.nginx_port)
              and s[1]["http_route"].startswith("/r")]
    assert len(counts) == SERIES and all(v == 1 for _, _, v in counts)
    check = subprocess.run(["promtool", "check", "metrics"], input=text,
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout[:2000] + check.stderr[:2000]
    # One rendering served the eight: the read before them made one too.
    assert scrape_counts(big) == (renders + 2, shared + 7)


class SlowReader:
    """Asks for /metrics and then reads one byte a second."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        # A small receive buffer, so the body waits in sonde, not here.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")

    def read_one(self):
        try:
            self.sock.recv(1)
        except OSError:
            pass

    def close(self):
        self.sock.close()


def test_slow_readers_share_renderings(big):
    pid = big.proc.pid
    body = big.text()
    base = rss_kib(pid)
    readers = [SlowReader(big.port) for _ in range(32)]
    peak = base
    scrapes = []
    try:
        for _ in range(12):
            for r in readers:
                r.read_one()
            peak = max(peak, rss_kib(pid))
            t0 = time.monotonic()
            text = big.text()
            scrapes.append(time.monotonic() - t0)
            assert text.startswith("# HELP") and "sonde_build_info" in text
            assert len(text) > 0.9 * len(body)
            peak = max(peak, rss_kib(pid))
            time.sleep(1)
    finally:
        for r in readers:
            r.close()
    # Each scrape got a full body while 32 slow readers held theirs.
    assert max(scrapes) < 1.0, scrapes
    # Renderings alive at once are capped (export/scrape.h: 3), each held
    # once however many read it, plus one render in progress: the README's
    # bound, far below one body per reader (32 of them took 930 MiB).
    body_kib = len(body) // 1024
    assert peak - base < 4 * body_kib, (base, peak, body_kib)
