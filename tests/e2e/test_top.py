"""sonde top: the live view in a real terminal (tmux), --once and --json,
against a real sonde measuring a real nginx driven at known rates, and
its one-line errors."""
import http.client
import json
import os
import re
import subprocess
import threading
import time

import pytest

from conftest import SONDE, Sonde, free_port, wait_for

# Driven traffic: 200 requests a second to / and 20 to /fail (503).
OK_RATE, FAIL_RATE = 200, 20
RATE = OK_RATE + FAIL_RATE
ERROR_PERCENT = 100.0 * FAIL_RATE / RATE
DELAY = 2


class Traffic:
    """Requests to nginx at RATE a second, every eleventh to /fail, from
    one keep-alive connection on a thread, for at most seconds."""

    def __init__(self, port, seconds):
        self.port = port
        self.seconds = seconds
        self.stopping = threading.Event()
        self.failures = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        start = time.monotonic()
        i = 0
        try:
            while not self.stopping.is_set():
                due = start + i / RATE
                now = time.monotonic()
                if now - start > self.seconds:
                    break
                if due > now:
                    time.sleep(due - now)
                path = "/fail" if i % (RATE // FAIL_RATE) == 0 else "/"
                conn.request("GET", path)
                conn.getresponse().read()
                i += 1
        except OSError as e:
            self.failures.append(e)
        finally:
            conn.close()

    def stop(self):
        self.stopping.set()
        self.thread.join(timeout=10)
        assert not self.failures, self.failures


def seconds_of(text):
    """"850us", "1.25ms", "2.50s" -> seconds; "-" -> None."""
    if text == "-":
        return None
    m = re.fullmatch(r"([0-9.]+)(us|ms|s)", text)
    assert m, f"not a latency with its unit: {text!r}"
    return float(m.group(1)) * {"us": 1e-6, "ms": 1e-3, "s": 1}[m.group(2)]


def table_rows(text):
    """The rows of a SERVICE REQ/S ERR% P50 P95 P99 CONNS KIND table, as
    dicts, from the line after its header."""
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines)
              if line.split()[:6] == ["SERVICE", "REQ/S", "ERR%", "P50",
                                      "P95", "P99"])
    rows = []
    for line in lines[at + 1:]:
        f = line.split()
        if len(f) != 8 or not re.fullmatch(r"[0-9.]+", f[1]):
            break
        rows.append({"service": f[0], "rate": float(f[1]),
                     "err": float(f[2]), "p50": seconds_of(f[3]),
                     "p95": seconds_of(f[4]), "p99": seconds_of(f[5]),
                     "conns": float(f[6]), "kind": f[7]})
    return rows


def check_nginx_row(row):
    assert abs(row["rate"] - RATE) <= 0.15 * RATE, row
    assert abs(row["err"] - ERROR_PERCENT) <= 2, row
    assert row["p50"] is not None and row["p50"] <= row["p95"] <= row["p99"]


@pytest.fixture
def driven(nginx, sonde):
    """nginx measured by sonde, with traffic flowing for up to 20 s."""
    traffic = Traffic(nginx.port, 20)
    time.sleep(1)  # every interval top measures is inside the traffic
    yield sonde, nginx
    traffic.stop()


class Tmux:
    """A tmux server of the test's own, one 160x45 shell pane in it."""

    def __init__(self):
        self.socket = f"sonde-top-test-{os.getpid()}"
        self.run("new-session", "-d", "-x", "160", "-y", "45",
                 "bash --norc --noprofile")
        self.pid = int(self.run("display-message", "-p", "#{pid}").strip())

    def run(self, *args):
        return subprocess.run(["tmux", "-L", self.socket, *args],
                              check=True, capture_output=True,
                              text=True).stdout

    def keys(self, *keys):
        self.run("send-keys", *keys)

    def screen(self):
        return self.run("capture-pane", "-p")

    def shows(self, predicate, what, timeout=10):
        """Waits until predicate(screen) is true; returns that screen."""
        seen = []

        def check():
            seen[:] = [self.screen()]
            return predicate(seen[0])

        try:
            wait_for(check, timeout, interval=0.1, what=what)
        except AssertionError:
            raise AssertionError(f"{what}; the pane shows:\n{seen[0]}")
        return seen[0]

    def flag(self, name):
        return self.run("display-message", "-p", "#{%s}" % name).strip()

    def close(self):
        subprocess.run(["tmux", "-L", self.socket, "kill-server"],
                       capture_output=True)
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return
        os.kill(self.pid, 15)


@pytest.fixture
def tmux():
    t = Tmux()
    yield t
    t.close()


def nginx_rows(screen):
    return [r for r in table_rows(screen) if r["service"] == "nginx"]


def test_live_view_keys_and_terminal_restored(driven, tmux):
    sonde, nginx = driven
    tmux.keys(f"{SONDE} top --url http://127.0.0.1:{sonde.port} -d {DELAY}",
              "Enter")
    screen = tmux.shows(lambda s: "SERVICE" in s and any(
        r["kind"] == "http-server" and r["rate"] > 0 for r in nginx_rows(s)),
        "nginx served requests in the view")
    assert "sonde top - " in screen and "sort: rate" in screen
    assert re.search(r"events \d+/s  drops \d+/s  series \d+", screen)
    check_nginx_row(next(r for r in nginx_rows(screen)
                         if r["kind"] == "http-server"))
    # The test's own client calls nginx: another service on the screen.
    assert any(r["service"] != "nginx" for r in table_rows(screen)), screen
    # Over 1% errors: nginx's rows are red (SGR 31), the header is not.
    coloured = tmux.run("capture-pane", "-p", "-e")
    nginx_line = next(line for line in coloured.splitlines()
                      if "nginx" in line and "http-server" in line)
    assert re.search(r"\x1b\[[0-9;]*31[;m]", nginx_line), repr(nginx_line)
    header = next(line for line in coloured.splitlines() if "sonde top" in line)
    assert "31" not in re.findall(r"\x1b\[([0-9;]*)m", header)

    tmux.keys("P")
    screen = tmux.shows(lambda s: "sort: p99" in s, "sorted by p99")
    p99s = [r["p99"] for r in table_rows(screen)]
    timed = [p for p in p99s if p is not None]
    assert timed == sorted(timed, reverse=True), screen
    assert p99s[:len(timed)] == timed, "idle rows come last: " + screen
    # The column to the left of P99.
    tmux.keys("<")
    screen = tmux.shows(lambda s: "sort: p95" in s, "sorted by p95")
    p95s = [r["p95"] for r in table_rows(screen) if r["p95"] is not None]
    assert p95s == sorted(p95s, reverse=True), screen

    tmux.keys("/", "nginx", "Enter")
    screen = tmux.shows(lambda s: "filter: nginx" in s, "filtered")
    rows = table_rows(screen)
    assert rows and all(r["service"] == "nginx" for r in rows), screen

    tmux.keys("Enter")
    screen = tmux.shows(lambda s: "nginx: operations and peers" in s,
                        "nginx's details")
    assert re.search(r"http-server\s+GET /fail\s", screen), screen
    assert re.search(r"http-server\s+GET /\s", screen), screen
    assert re.search(r"http-server\s+503\s", screen), screen
    assert re.search(r"http-server\s+200\s", screen), screen
    # Down scrolls the operations by one, Up back.
    ops = re.findall(r"^http-server\s+(GET \S+)\s", screen, re.M)
    assert sorted(ops) == ["GET /", "GET /fail"], screen
    tmux.keys("Down")
    screen = tmux.shows(lambda s: re.findall(
        r"^http-server\s+(GET \S+)\s", s, re.M) == ops[1:], "scrolled")
    tmux.keys("Up")
    tmux.shows(lambda s: re.findall(
        r"^http-server\s+(GET \S+)\s", s, re.M) == ops, "scrolled back")
    tmux.keys("Escape")
    tmux.shows(lambda s: "SERVICE" in s and "operations and peers" not in s,
               "back to the services")

    tmux.keys("q")
    tmux.shows(lambda s: tmux.flag("pane_current_command") == "bash",
               "top exited")
    assert tmux.flag("alternate_on") == "0"
    assert tmux.flag("cursor_flag") == "1"
    # Typed text echoes again, in cooked mode: the terminal is restored.
    tmux.keys("echo restored-$((6*7))", "Enter")
    tmux.shows(lambda s: "restored-42" in s.split("echo restored")[-1],
               "the shell answers")


def test_live_view_restores_the_terminal_on_sigterm(sonde, tmux):
    tmux.keys(f"{SONDE} top --url http://127.0.0.1:{sonde.port} -d 1",
              "Enter")
    tmux.shows(lambda s: "sonde top - " in s, "the view")
    assert tmux.flag("alternate_on") == "1"
    pid = int(subprocess.run(["pgrep", "-P", tmux.run(
        "display-message", "-p", "#{pane_pid}").strip(), "-x", "sonde"],
        capture_output=True, text=True, check=True).stdout.split()[0])
    os.kill(pid, 15)
    tmux.shows(lambda s: tmux.flag("pane_current_command") == "bash",
               "top exited")
    assert tmux.flag("alternate_on") == "0"
    assert tmux.flag("cursor_flag") == "1"


def top(*args, timeout=30):
    return subprocess.run([SONDE, "top", *args], capture_output=True,
                          text=True, timeout=timeout)


def test_once_json_and_a_pipe(driven):
    sonde, nginx = driven
    url = f"http://127.0.0.1:{sonde.port}"

    r = top("--url", url, "--once", "-d", str(DELAY))
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[:8] == ["SERVICE", "REQ/S", "ERR%", "P50", "P95",
                                    "P99", "CONNS", "KIND"]
    row = next(x for x in table_rows(r.stdout)
               if x["service"] == "nginx" and x["kind"] == "http-server")
    check_nginx_row(row)

    r = top("--url", url, "--json", "-d", str(DELAY))
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    row = next(x for x in rows
               if x["service"] == "nginx" and x["kind"] == "http-server")
    assert abs(row["rate"] - RATE) <= 0.15 * RATE, row
    assert abs(row["error_ratio"] - FAIL_RATE / RATE) <= 0.02, row
    assert 0 < row["p50"] <= row["p95"] <= row["p99"], row
    assert row["requests"] >= row["errors"] > 0

    # Not a terminal: the one-shot table, unasked.
    r = top("--url", url, "-d", str(DELAY))
    assert r.returncode == 0, r.stderr
    row = next(x for x in table_rows(r.stdout)
               if x["service"] == "nginx" and x["kind"] == "http-server")
    check_nginx_row(row)


def one_line_error(r, text):
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("sonde top: "), r.stderr
    assert text in lines[0], r.stderr


def test_no_sonde_there():
    one_line_error(top("--once", "--url", f"http://127.0.0.1:{free_port()}"),
                   "no sonde at http://127.0.0.1:")


def test_not_sonde(nginx):
    # nginx answers 404 to /metrics, and 200 with other text elsewhere.
    one_line_error(top("--once", "--url", f"http://127.0.0.1:{nginx.port}"),
                   "HTTP 404: not a sonde /metrics endpoint")
    one_line_error(top("--once", "--url",
                       f"http://127.0.0.1:{nginx.port}/users/1"),
                   "answers, but not as sonde")


def test_basic_auth(tmp_path):
    hashed = subprocess.run(["openssl", "passwd", "-6", "s3cret"],
                            capture_output=True, text=True,
                            check=True).stdout.strip()
    (tmp_path / "users").write_text(f"ops:{hashed}\n")
    s = Sonde("--basic-auth-file", str(tmp_path / "users"))
    try:
        url = f"http://127.0.0.1:{s.port}"
        one_line_error(top("--once", "-d", "0.2", "--url", url),
                       "401 Unauthorized: sonde asks for a user and "
                       "password")
        (tmp_path / "wrong").write_text("ops:nope\n")
        one_line_error(top("--once", "-d", "0.2", "--url", url,
                           "--basic-auth-file", str(tmp_path / "wrong")),
                       "credentials in --basic-auth-file were refused")
        (tmp_path / "right").write_text("ops:s3cret\n")
        r = top("--once", "-d", "0.2", "--url", url,
                "--basic-auth-file", str(tmp_path / "right"))
        assert r.returncode == 0 and r.stdout.startswith("SERVICE"), r.stderr
    finally:
        assert s.stop() == 0


def test_tls(pki):
    s = Sonde("--tls-cert", str(pki / "server.pem"),
              "--tls-key", str(pki / "server.key"), ready_tls=pki / "ca.pem")
    try:
        url = f"https://127.0.0.1:{s.port}"
        one_line_error(top("--once", "-d", "0.2", "--url", url),
                       f"TLS with {url}/metrics failed")
        for trust in (["--tls-ca", str(pki / "ca.pem")], ["--tls-insecure"]):
            r = top("--once", "-d", "0.2", "--url", url, *trust)
            assert r.returncode == 0 and r.stdout.startswith("SERVICE"), \
                r.stderr
    finally:
        assert s.stop() == 0


@pytest.mark.parametrize("args, text", [
    (["-d", "0"], "-d 0: expected seconds from 0.2 to 3600"),
    (["--url", "ftp://x"], "--url ftp://x: expected http://HOST:PORT"),
    (["--latency-threshold", "soon"], "--latency-threshold soon: expected"),
    (["--error-threshold", "120"], "--error-threshold 120: expected"),
    (["--basic-auth-file", "/nonexistent"],
     "--basic-auth-file /nonexistent: No such file or directory"),
])
def test_bad_flags(args, text):
    r = top(*args)
    assert r.returncode == 2, r
    assert r.stderr.startswith("sonde top: ") and text in r.stderr, r.stderr
