#!/usr/bin/python3
"""sonde benchmark: what does tracing cost the service it watches?

Runs one nginx (1 worker, keepalive) and loads it with `wrk -t1 -c32`, or a
load of its own, in these scenarios:

  direct  nginx answers `return 200 "ok\\n"` itself: one server exchange
          (nginx) and one client exchange (wrk) per request
  proxy   nginx proxies each request over keep-alive upstream connections to
          a second server block of its own: per request two server exchanges
          and two client exchanges (wrk's, and nginx's call upstream), the
          client-heavy case
  traces  as direct, with sonde exporting a span for every request over
          OTLP (OTEL_TRACES_SAMPLER=always_on: nginx's server span and
          wrk's client span, two a request) to a sink on the same nginx
          (a server block answering 200 to every POST, its body
          discarded): the sink's work is on the host too (target >= 93%
          of none)
  propagation
          as traces, with --trace-propagation: sonde's sk_msg program adds
          a traceparent to each of wrk's requests; what that costs on top
          of traces (reported, no target)
  tls     as direct, over TLS (`listen ... ssl`, a certificate made with
          openssl, wrk on https://): sonde reads the plaintext through its
          OpenSSL uprobes in nginx and in wrk (target >= 90% of none, and
          a loss at most 1.25x the floor's, the uprobe traps')
  go-tls  no nginx: tests/e2e/servers/goapp.go, a Go net/http HTTPS server
          (HTTP/1.1 to wrk) built here with Debian's Go, loaded by wrk on
          https://: sonde reads the plaintext through its uprobes on Go's
          crypto/tls in the server (wrk's OpenSSL as in tls), the floor
          puts empty probes at the same places; the same targets as tls
  redis   no nginx, no wrk: a redis-server of its own (no persistence)
          loaded by redis-benchmark -c 32 -t set,get, as many commands
          a run as the warm-up says fill the run's seconds: commands/s
          kept (target >= 95% of none), and sonde's counts of the SETs
          and GETs, server and client side, exact
  postgres
          no nginx, no wrk: a PostgreSQL cluster of its own (fsync off,
          pgbench -i -s 1) loaded by pgbench -S -c 8 -j 2 over TCP:
          transactions/s kept (target >= 95% of none), and sonde's
          counts of the SELECTs on pgbench_accounts, server and client
          side, exact (one a transaction)
  bystander
          no nginx, no wrk: build/tools/bystander, a process that never
          touches a socket, reads /dev/zero and a pipe in a loop; what the
          rest of the host pays for the agent, in calls/s kept (target >=
          98% of none). With the syscall hooks every read and write of
          every process runs a program, and every syscall takes the
          kernel's slow path; the socket hooks fire on socket I/O only
  exchange
          no nginx, no wrk: build/tools/pingpong, pinned to the last CPU,
          makes HTTP exchanges one at a time over one loopback connection,
          four calls each (client write, server read, server write, client
          read) with no work around them: what each agent adds to a call,
          and sonde's addition over the bound's, each with its spread over
          the rounds (no target: it moves a lot between runs on a shared
          host; sonde's counts of the exchanges must be exact)
  kernel  no nginx, no wrk: build/tools/pingpong --split, its server and
          client ends in two processes, one of them traced (sonde --pid,
          floor --bound --pid), for each path: HTTP/1 server, HTTP/1
          client, HTTP/2 server (--h2). With BPF run statistics on, the
          run time per run of the agent's programs on the socket
          tracepoints, sonde's against the bound's (target <= 1.25x), and
          sonde's counts of the traced side (exact) and the other (none)
  startup ./sonde started 5 times, alone: from just before its exec to
          the first 200 on GET /metrics (target <= 1 s) and on /readyz
          (<= 1.5 s), polled every 5 ms, medians
  scrape  what one /metrics scrape costs: build/tests/bench_scrape renders
          1k, 10k and 100k series in-process, plain and gzip (CPU time,
          median of 5; targets at 10k <= 50 ms plain and <= 100 ms gzip,
          100k <= 1 s plain); then a sonde holding 10k series (nginx
          served 10k routes) with 32 clients reading its body a byte a
          second for 10 s, one normal scrape a second: peak RSS (target:
          idle plus 4 bodies) and the normal scrapes' time (< 1 s)

and, in each scenario but kernel (bound and sonde), startup and scrape
(sonde),
three or four ways side by side:

  none    no agent: the service's own throughput
  floor   ./build/tools/floor: empty BPF programs on exactly the tracepoints
          sonde uses and, at the same offsets, on the OpenSSL functions it
          probes in the libssl that nginx and wrk load; i.e. what any design
          built on those hooks must pay (in tls, mostly the uprobe traps)
  bound   (direct, proxy, exchange, kernel, redis and postgres, on the
          socket hooks) ./build/tools/floor --bound: the floor, with the
          socket hooks running the least work per call any HTTP tracer on
          them does (bpf/floor.bpf.c): find the connection, read the first
          bytes of the call's buffer, stamp the time, write a small record
          per response; what the per-request work itself costs on this
          host, whatever the design. In redis and postgres, --bound-calls:
          the same for a protocol of requests and replies in turn, every
          other call of a connection taken for a reply
  sonde   ./sonde --listen 127.0.0.1:<port>, ready (/readyz 200) before load

Rounds are interleaved: each round runs the modes back to back, in an
order that rotates from round to round (none floor sonde, floor sonde
none, sonde none floor, ...), so no mode always follows another. The kept
ratios are medians over rounds of each round's own ratio (sonde / none of
the same round): the host's throughput drifts by tens of percent over a
minute here, and a ratio of two runs seconds apart cancels most of that,
where a ratio of medians taken over the whole run does not. Each mode's
median requests/s is shown too.

How to read the report:
  sonde/none        throughput kept with sonde running (target >= 95%;
                    proxy 93%, tls 90%, bystander 98%)
  floor/none        throughput kept with only the hooks attached
  bound/none        throughput kept with the least per-call work; below the
                    target, no tracer doing that work reaches it on this host
  loss vs floor     (1 - sonde/none) / (1 - floor/none): how many times the
                    hooks' own cost sonde's loss is (target <= 1.5x, tls
                    1.25x: there the floor's loss is the uprobe traps'); n/a
                    when the floor loss is under 0.5%, too small to divide by
  CPU us/request    sonde's time on a CPU (all threads, the scheduler's
                    nanoseconds in /proc/<pid>/task/*/schedstat) during the
                    load, divided by wrk's completed requests; this is
                    sonde's userspace process only, the BPF programs run in
                    the traced processes' context (target <= 0.2 us in
                    direct, one server and one client exchange a request)
  peak RSS          sonde's VmHWM, MiB (target <= 24 MiB)
  counted / wrk     nginx requests sonde counted on the port wrk loads (delta
                    of http_server_request_duration_seconds_count over
                    service_name="nginx") over the requests wrk completed;
                    slightly above 1 is expected, requests in flight when wrk
                    stops are served (and counted) but not reported by wrk.
                    Likewise wrk's own client series, and in the proxy
                    scenario nginx's client series towards its upstream
  counts exact      (redis, postgres) the load's own calls sonde counted
                    (db_server_ and db_client_operation_duration_seconds
                    _count on the server's port, the load's operations
                    only) against what the load says it made; its clients
                    wait for every reply, so none is in flight at the end
  added/call        (exchange) median over rounds of (mode - none) ns an
                    exchange, over 4 calls, and its min..max over rounds
  sonde/bound       (exchange) median over rounds of what sonde adds to an
                    exchange over what the bound adds, and its min..max;
                    pingpong's counts must be exact: an exchange is never
                    in flight when it stops
  ns/run            (kernel) the run time the kernel counted for the
                    agent's programs on sock_recv_length and
                    sock_send_length over the run, over their runs: the
                    traced side's calls, the untraced side's early exits
                    and other processes' (tools/README.md); sonde/bound is
                    the median over rounds of the two of one round

Targets are reported as PASS/MISS; a miss does not fail the run. The exit
status is 1 only when something broke (a process failed to start, wrk output
could not be read). Results also go to build/bench.json.

Usage: /usr/bin/python3 tools/bench.py [--rounds N] [--seconds S]
                         [--scenario direct|proxy|tls|redis|postgres|
                                     bystander|exchange|kernel|startup|
                                     scrape|all]
                         [--hooks auto|socket|syscall]
       (or BENCH_ROUNDS / BENCH_SECONDS / BENCH_SCENARIO / BENCH_HOOKS in
       the environment; as root)
"""

import argparse
import contextlib
import ctypes
import http.client
import json
import os
import pwd
import re
import select
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SONDE = os.path.join(ROOT, "sonde")
FLOOR = os.path.join(ROOT, "build", "tools", "floor")
RESULTS = os.path.join(ROOT, "build", "bench.json")

MODES = ("none", "floor", "sonde")
# Where the bound applies, over the socket hooks: plain HTTP, and the
# databases' requests and replies (floor --bound-calls).
BOUND_MODES = ("none", "floor", "bound", "sonde")
BOUND_SCENARIOS = ("direct", "proxy", "exchange", "redis", "postgres",
                   "traces", "propagation")
# Scenarios where sonde exports traces, and the flags and environment it
# gets there (set when the sink's port is known).
TRACE_SCENARIOS = ("traces", "propagation")
SONDE_ARGS = []
SONDE_ENV = {}
WRK_THREADS = 1
WRK_CONNECTIONS = 32
WARMUP_SECONDS = 2
# sonde's consumer drains the ring buffer every 20 ms; give it ample time to
# count the last exchanges before the CPU reading and the scrape.
SETTLE_SECONDS = 0.5
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0

TARGET_KEPT = 0.95  # sonde keeps >= 95% of the no-agent throughput
# ... as the median of the per-round ratios of at least this many rounds:
# fewer, and one noisy round moves the median.
MIN_ROUNDS = 9
# Rounds when neither --rounds nor BENCH_ROUNDS says: MIN_ROUNDS where a
# kept ratio is judged, fewer where the figures are steadier or have no
# such target; a full bench then takes 29 to 32 minutes on a 2-core host.
ROUNDS_BY_SCENARIO = {"direct": MIN_ROUNDS, "proxy": MIN_ROUNDS,
                      "tls": MIN_ROUNDS, "go-tls": MIN_ROUNDS,
                      "redis": MIN_ROUNDS, "traces": MIN_ROUNDS,
                      "postgres": MIN_ROUNDS}
DEFAULT_ROUNDS = 7
TARGET_LOSS_VS_FLOOR = 1.5  # and loses <= 1.5x what the bare hooks lose
# Over TLS the floor's loss is the uprobe traps': sonde's own work in its
# OpenSSL probes (parsing plaintext) may add a quarter to it.
TARGET_LOSS_VS_FLOOR_BY_SCENARIO = {"tls": 1.25, "go-tls": 1.25}
# --hooks for sonde and the floor alike (set from the command line).
HOOKS = ["auto"]
FLOOR_LOSS_MIN = 0.005  # below 0.5% the floor loss is noise: no ratio
# sonde's CPU per request in direct, microseconds: one server and one
# client exchange. At 110k requests/s that is 2% of a CPU taken from the
# service and its clients on a host they fill.
TARGET_CPU_US = 0.2
TARGET_RSS_MIB = 24.0  # sonde's peak resident memory
# The daemon's share of one CPU while the host has no socket I/O to trace
# (bystander scenario).
TARGET_IDLE_CPU = 0.005

# startup scenario: starts of ./sonde timed, and how they are watched. A
# 5 ms poll and a refused connect cost little next to a second's target.
STARTS = 5
STARTUP_PATHS = ("/metrics", "/readyz")
POLL_SECONDS = 0.005
CONNECT_TIMEOUT = 0.05
TARGET_FIRST_METRICS_S = 1.0  # self-metrics served while programs load
TARGET_READY_S = 1.5  # every program attached
STARTUP_FIGURES = (("first /metrics", "metrics_s", TARGET_FIRST_METRICS_S),
                   ("/readyz 200", "ready_s", TARGET_READY_S))

# kernel scenario: the socket programs' run time per run, by protocol
# path: (name, label, pingpong flags, the side traced). Each round also
# runs every agent on the baseline, where neither side is traced: its
# time per run is what an untraced call's early exit costs, taken off
# the paths' untraced calls to leave the traced calls' own time.
KERNEL_PATHS = (("http1_server", "HTTP/1 server", (), "server"),
                ("http1_client", "HTTP/1 client", (), "client"),
                ("http2_server", "HTTP/2 server", ("--h2",), "server"))
KERNEL_MODES = ("bound", "sonde")
KERNEL_BASELINE = "untraced"
# A traced side makes two calls an exchange: a read and a write.
TRACED_CALLS_PER_EXCHANGE = 2
# A run of 2 s makes some 10^5 exchanges, each 4 program runs: the mean
# per run settles well within it, and the scenario's six runs a round
# stay short.
KERNEL_SECONDS = 2
# sonde does more per call than the bound (request capture, pipelining,
# HTTP/2, TLS, records a daemon reads) and should cost little more.
TARGET_RUN_VS_BOUND = 1.25
SOCKET_TRACEPOINTS = ("sock_recv_length", "sock_send_length")
# bpf(2) on x86_64, the one architecture the Makefile builds for, and its
# command to have the kernel count programs' runs (include/uapi/linux/bpf.h).
SYS_BPF = 321
BPF_ENABLE_STATS = 32

NGINX_CONF = """\
worker_processes 1;
daemon off;
master_process on;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    keepalive_timeout 65;
    keepalive_requests 1000;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
{servers}
}}
"""

DIRECT_SERVERS = """\
    server {{
        listen 127.0.0.1:{port};
        location / {{
            default_type text/plain;
            return 200 "ok\\n";
        }}
    }}"""

PROXY_SERVERS = """\
    upstream backend {{
        server 127.0.0.1:{backend};
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
    server {{
        listen 127.0.0.1:{backend};
        location / {{
            default_type text/plain;
            return 200 "ok\\n";
        }}
    }}"""

TLS_SERVERS = """\
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {dir}/cert.pem;
        ssl_certificate_key {dir}/key.pem;
        location / {{
            default_type text/plain;
            return 200 "ok\\n";
        }}
    }}"""

# traces and propagation: the OTLP sink, on the same nginx.
SINK_SERVER = """
    server {{
        listen 127.0.0.1:{sink};
        location / {{ return 200; }}
    }}"""

SCENARIOS = {"direct": DIRECT_SERVERS, "proxy": PROXY_SERVERS,
             "tls": TLS_SERVERS, "traces": DIRECT_SERVERS + SINK_SERVER,
             "propagation": DIRECT_SERVERS + SINK_SERVER}
ALL_SCENARIOS = (*SCENARIOS, "go-tls", "redis", "postgres", "bystander",
                 "exchange", "kernel", "startup", "scrape")
# scrape scenario: one /metrics scrape at 1k, 10k and 100k series, rendered
# and gzipped in-process (tests/unit/bench_scrape.c); then a sonde holding
# 10k series (nginx served 10k routes) with SLOW_READERS clients reading
# its body a byte a second while a normal scrape is made each second.
BENCH_SCRAPE = os.path.join(ROOT, "build", "tests", "bench_scrape")
SCRAPE_SERIES = (1000, 10000, 100000)
SCRAPE_ROUTES = 10000
SLOW_READERS = 32
SLOW_SECONDS = 10
TARGET_RENDER_MS = {10000: 50.0, 100000: 1000.0}  # plain text
TARGET_GZIP_SCRAPE_MS = {10000: 100.0}  # render, then gzip
# Renderings alive at once (export/scrape.h) and one render in progress.
TARGET_SLOW_BODIES = 4
TARGET_SLOW_SCRAPE_S = 1.0
BYSTANDER = os.path.join(ROOT, "build", "tools", "bystander")
PINGPONG = os.path.join(ROOT, "build", "tools", "pingpong")
# Calls to the read and write hooks in one pingpong exchange.
CALLS_PER_EXCHANGE = 4
# Behind a proxy each request is four exchanges, not two: a little lower.
# Over TLS every OpenSSL call is a uprobe hit: lower still. A process that
# never touches a socket should not notice sonde at all: a higher one.
TARGET_KEPT_BY_SCENARIO = {"proxy": 0.93, "tls": 0.90, "go-tls": 0.90,
                           "bystander": 0.98, "traces": 0.93,
                           "propagation": None}
# go-tls scenario: the Go HTTPS server, built from the tests' source; the
# floor probes the executables listed here as sonde would.
GOTLS_SOURCE = os.path.join(ROOT, "tests", "e2e", "servers", "goapp.go")
GO = "/usr/bin/go"
GO_TLS_EXES = []

# redis and postgres scenarios: a database server of the bench's own on a
# free loopback port, loaded by the benchmark client its package ships.
# Each counts its load's own calls, by operation (and table), on both
# sides: the clients' set-up calls (redis-benchmark's CONFIG GETs,
# pgbench's count of pgbench_branches and its vacuums) are not the load.
DB_SCENARIOS = ("redis", "postgres")
REDIS_SERVER = "/usr/bin/redis-server"
REDIS_BENCHMARK = "/usr/bin/redis-benchmark"
REDIS_CLIENTS = 32
REDIS_TESTS = ("SET", "GET")  # redis-benchmark -t set,get, in its order
# The warm-up's commands of each test: 2 x 50k, a second or two here. Its
# rate sizes the runs: redis-benchmark -n makes exactly that many of each
# test and waits for every reply, so the counts are exact, where a run
# cut at a time would leave some in flight.
REDIS_WARMUP_REQUESTS = 50000
REDIS_MIN_REQUESTS = 1000
PG_BIN = "/usr/lib/postgresql/15/bin"
PG_USER = "postgres"
PG_CLIENTS = 8
PG_THREADS = 2
PG_SCALE = 1  # pgbench -i -s 1: 100k rows in pgbench_accounts
PG_TABLE = "pgbench_accounts"  # pgbench -S: one SELECT on it a transaction


class BenchError(Exception):
    """Something the bench needs did not work; the run cannot go on."""


class Interrupted(Exception):
    """SIGTERM arrived; unwind so every finally block stops its process."""


# --- processes ---------------------------------------------------------------

PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_bench():
    """In the child: get SIGTERM if the bench itself dies without cleaning."""
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _as_user(name):
    """In the child: become user name (its group alone), then ask for
    SIGTERM when the bench dies: a change of user clears that request."""
    pw = pwd.getpwnam(name)

    def become():
        os.setgroups([pw.pw_gid])
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)
        _die_with_bench()
    return become


def spawn(argv, log_path, stdout=None, user=None, env=None):
    """Starts argv in its own session (a Ctrl-C reaches only the bench, which
    then stops it), stderr (and stdout unless piped) to log_path; as user
    when given, with no wrapper between (its pid is the bench's to stop)."""
    log = open(log_path, "ab")
    try:
        return subprocess.Popen(
            argv, cwd=ROOT, stdin=subprocess.DEVNULL, env=env,
            stdout=stdout if stdout is not None else log, stderr=log,
            bufsize=0, start_new_session=True,
            preexec_fn=_as_user(user) if user else _die_with_bench)
    except OSError as e:
        raise BenchError(f"cannot start {argv[0]}: {e}") from e
    finally:
        log.close()


def stop(proc):
    """Stops one process we started, by its pid: SIGTERM, then SIGKILL if it
    has not exited after STOP_TIMEOUT. Returns its exit status."""
    if proc is None or proc.poll() is not None:
        return None if proc is None else proc.returncode
    try:
        os.kill(proc.pid, signal.SIGTERM)
        return proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        return proc.wait()
    except ProcessLookupError:
        return proc.wait()


def log_tail(path, lines=15):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:]).rstrip()
    except OSError:
        return "(no log)"


def exited(proc, what, log_path):
    """Raises BenchError if proc has exited, quoting the end of its log."""
    if proc.poll() is not None:
        raise BenchError(f"{what} exited with status {proc.returncode} "
                         f"while starting; its log ({log_path}):\n"
                         f"{log_tail(log_path)}")


def free_port():
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=2.0):
    """(status, body) of a GET; status 0 when nothing answered. https
    certificates are not checked (the bench makes its own)."""
    ctx = None
    if url.startswith("https:"):
        ctx = ssl._create_unverified_context()
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=ctx) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except (urllib.error.URLError, OSError):
        return 0, ""


def wait_http_200(url, proc, what, log_path):
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        exited(proc, what, log_path)
        if http_get(url)[0] == 200:
            return
        time.sleep(0.1)
    raise BenchError(f"{what}: {url} did not return 200 within "
                     f"{START_TIMEOUT:.0f} s; its log ({log_path}):\n"
                     f"{log_tail(log_path)}")


def make_certificate(tmp):
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                        "-nodes", "-keyout", os.path.join(tmp, "key.pem"),
                        "-out", os.path.join(tmp, "cert.pem"), "-days", "1",
                        "-subj", "/CN=127.0.0.1"], capture_output=True)
    if r.returncode:
        raise BenchError("openssl could not make a certificate: "
                         + r.stderr.decode(errors="replace"))


def start_nginx(tmp, scenario):
    port, backend, sink = free_port(), free_port(), free_port()
    if scenario == "tls":
        make_certificate(tmp)
    servers = SCENARIOS[scenario].format(port=port, backend=backend,
                                         dir=tmp, sink=sink)
    SONDE_ENV.clear()
    SONDE_ARGS.clear()
    if scenario in TRACE_SCENARIOS:
        SONDE_ENV.update({
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT":
                f"http://127.0.0.1:{sink}/v1/traces",
            "OTEL_TRACES_SAMPLER": "always_on"})
    if scenario == "propagation":
        SONDE_ARGS.append("--trace-propagation")
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(dir=tmp, servers=servers))
    log = os.path.join(tmp, "nginx.log")
    proc = spawn(["nginx", "-p", tmp, "-c", conf,
                  "-e", os.path.join(tmp, "error.log")], log)
    scheme = "https" if scenario == "tls" else "http"
    url = f"{scheme}://127.0.0.1:{port}/"
    try:
        wait_http_200(url, proc, "nginx", os.path.join(tmp, "error.log"))
    except BaseException:
        stop(proc)
        raise
    return proc, url


def libssl_files(programs=("nginx", "wrk")):
    """The libssl files the programs load (by ldd), each once: the floor
    probes them where sonde would."""
    files = set()
    for prog in programs:
        try:
            out = subprocess.run(["ldd", shutil.which(prog) or prog],
                                 capture_output=True, text=True,
                                 timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        for m in re.finditer(r"libssl\.so\S* => (\S+)", out):
            files.add(os.path.realpath(m.group(1)))
    return sorted(files)


def wait_line(proc, pattern, what, log=None):
    """The match of the first line of proc's stdout (an unbuffered pipe)
    that matches pattern, within START_TIMEOUT. Otherwise stops proc and
    raises BenchError with what it printed (and its log's end)."""
    seen = []
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and proc.poll() is None:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        line = proc.stdout.readline().decode(errors="replace") if ready else ""
        m = re.fullmatch(pattern, line.strip())
        if m:
            return m
        seen.append(line)
    rc = stop(proc)
    raise BenchError(f"{what} did not start (status {rc}); it printed:\n"
                     + "".join(seen)
                     + (f"its log ({log}):\n{log_tail(log)}" if log else ""))


def start_floor(tmp, bound=None, pid=None):
    """floor attached (the bound's programs with bound, its flag:
    "--bound" or "--bound-calls"; for pid alone with pid as well)."""
    log = os.path.join(tmp, "floor.log")
    argv = [FLOOR, "--hooks", HOOKS[0]] + ([bound] if bound else [])
    if pid:
        argv += ["--pid", str(pid)]
    for path in libssl_files():
        argv += ["--tls", path]
    for path in GO_TLS_EXES:
        argv += ["--go-tls", path]
    proc = spawn(argv, log, stdout=subprocess.PIPE)
    wait_line(proc, r"floor: attached", "floor", log)
    return proc


def sonde_argv(port, pid=None):
    return ([SONDE, "--listen", f"127.0.0.1:{port}", "--hooks", HOOKS[0]]
            + (["--pid", str(pid)] if pid else []) + SONDE_ARGS)


def check_stopped(rc, tmp):
    """Raises BenchError unless sonde, stopped, exited cleanly."""
    if rc not in (0, None):
        raise BenchError(f"sonde exited with status {rc} when stopped; its "
                         f"log:\n{log_tail(os.path.join(tmp, 'sonde.log'))}")


def start_sonde(tmp, pid=None):
    """sonde ready (for pid alone, with pid); returns it and its URL."""
    port = free_port()
    log = os.path.join(tmp, "sonde.log")
    proc = spawn(sonde_argv(port, pid), log,
                 env=dict(os.environ, **SONDE_ENV) if SONDE_ENV else None)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http_200(base + "/readyz", proc, "sonde", log)
    except BaseException:
        stop(proc)
        raise
    return proc, base


# --- measurements ------------------------------------------------------------

class Load:
    """What each mode of a round runs: run(seconds) gives a result with
    "rps" (requests or calls a second) and "requests" (how many); port is
    the loaded server's, whose requests sonde's counts are read for, or
    None when the load serves nothing; server and client name the services
    whose series count them. db: for a database's load, (db_system_name,
    the operations counted, the collection counted or None for any): its
    db_ series count it, not the HTTP ones. program_time: read the agent's
    socket programs' run time around the run."""

    program_time = False

    def __init__(self, run, port=None, unit="req/s", server="nginx",
                 client="wrk", db=None):
        self.run = run
        self.port = port
        self.unit = unit
        self.server = server
        self.client = client
        self.db = db

    def begin(self, seconds):
        """Readies the load before the agent starts. Returns the pid the
        agent is to trace alone, or None: every process."""
        return None

    def end(self):
        """Stops whatever begin started."""


@contextlib.contextmanager
def begun(load, seconds):
    """load begun for the with block (its pid to trace, or None), ended
    after it, whatever happens."""
    try:
        yield load.begin(seconds)
    finally:
        load.end()


class SplitPingpong(Load):
    """build/tools/pingpong --split (flags) pinned to the last CPU: its
    server and client ends in two processes, held until the agent is
    ready, which traces only side's ("server" or "client"); with side
    None, neither: the agent traces an idle process, and every call of
    both ends is an early exit (the baseline the traced runs are read
    against)."""

    program_time = True

    def __init__(self, flags, side):
        super().__init__(self.go, free_port(), unit="exch/s",
                         server="pingpong", client="pingpong")
        self.flags = list(flags)
        self.side = side
        self.proc = None
        self.idle = None

    def begin(self, seconds):
        self.proc = subprocess.Popen(
            ["taskset", "-c", str(os.cpu_count() - 1), PINGPONG, "--split",
             *self.flags, str(self.port), str(seconds)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, bufsize=0, start_new_session=True,
            preexec_fn=_die_with_bench)
        m = wait_line(self.proc, r"pingpong: server (\d+) client (\d+)",
                      "pingpong --split")
        if self.side is None:
            self.idle = subprocess.Popen(["sleep", "3600"],
                                         start_new_session=True,
                                         preexec_fn=_die_with_bench)
            return self.idle.pid
        return int(m.group(1 if self.side == "server" else 2))

    def go(self, seconds):
        """Lets the exchanges start; returns pingpong's figures."""
        try:
            out, _ = self.proc.communicate(b"\n", timeout=seconds + 30)
        except subprocess.TimeoutExpired:
            out = b"(no answer in time)"
        return parse_pingpong(out.decode(errors="replace"),
                              self.proc.poll())

    def end(self):
        stop(self.proc)
        self.proc = None
        if self.idle:
            stop(self.idle)
            self.idle = None


def wrk_load(url):
    return Load(lambda seconds: run_wrk(url, seconds),
                int(url.rsplit(":", 1)[1].strip("/")))


def pingpong_load():
    port = free_port()
    return Load(lambda seconds: run_pingpong(port, seconds), port,
                unit="exch/s", server="pingpong", client="pingpong")


def run_load(argv, seconds):
    """Runs a load generator that stops by itself after seconds (stopped by
    its pid if it has not 30 s later); returns its output and status."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True, preexec_fn=_die_with_bench)
    try:
        out, _ = proc.communicate(timeout=seconds + 30)
    finally:
        stop(proc)
    return out.decode(errors="replace"), proc.returncode


def run_bystander(seconds):
    """Runs build/tools/bystander; its calls a second and calls."""
    out, rc = run_load([BYSTANDER, str(seconds)], seconds)
    m = re.search(r"^bystander: (\d+) calls in ([\d.]+) s$", out, re.M)
    if rc != 0 or not m or float(m.group(2)) <= 0:
        raise BenchError(f"bystander failed (status {rc}); its output:\n"
                         f"{out}")
    calls = int(m.group(1))
    return {"rps": calls / float(m.group(2)), "requests": calls,
            "non_2xx": 0, "socket_errors": 0}


def run_pingpong(port, seconds):
    """Runs build/tools/pingpong pinned to the last CPU; its rate is the
    fastest pass's (see tools/pingpong.c)."""
    cpu = str(os.cpu_count() - 1)
    return parse_pingpong(*run_load(["taskset", "-c", cpu, PINGPONG,
                                     str(port), str(seconds)], seconds))


def parse_pingpong(out, rc):
    m = re.search(r"^pingpong: (\d+) exchanges in [\d.]+ s; ns/exchange "
                  r"fastest ([\d.]+) median ([\d.]+)$", out, re.M)
    if rc != 0 or not m or float(m.group(2)) <= 0:
        raise BenchError(f"pingpong failed (status {rc}); its output:\n"
                         f"{out}")
    fastest = float(m.group(2))
    return {"rps": 1e9 / fastest, "requests": int(m.group(1)),
            "ns_fastest": fastest, "ns_median": float(m.group(3)),
            "non_2xx": 0, "socket_errors": 0}


def run_wrk(url, seconds):
    """Runs wrk against url; returns requests/s, requests and error counts."""
    return parse_wrk(*run_load(["wrk", f"-t{WRK_THREADS}",
                                f"-c{WRK_CONNECTIONS}", f"-d{seconds}s", url],
                               seconds))


def parse_wrk(out, rc):
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M)
    total = re.search(r"^\s*(\d+) requests in ", out, re.M)
    if rc != 0 or not rps or not total:
        raise BenchError(f"wrk failed (status {rc}); its output:\n{out}")
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), "
                     r"write (\d+), timeout (\d+)", out)
    return {
        "rps": float(rps.group(1)),
        "requests": int(total.group(1)),
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sum(map(int, sock.groups())) if sock else 0,
    }


def run_redis_benchmark(port, requests, seconds):
    """redis-benchmark -n requests of each REDIS_TESTS on port (a run the
    warm-up sized to about seconds); its commands a second over both tests
    and its commands."""
    out, rc = run_load([REDIS_BENCHMARK, "-h", "127.0.0.1", "-p", str(port),
                        "-c", str(REDIS_CLIENTS), "-n", str(requests),
                        "-t", ",".join(REDIS_TESTS).lower(), "--csv"],
                       seconds)
    rates = {test: float(rps) for test, rps
             in re.findall(r'^"(\w+)","([\d.]+)"', out, re.M)}
    if rc != 0 or sorted(rates) != sorted(REDIS_TESTS) or not all(
            rates.values()):
        raise BenchError(f"redis-benchmark failed (status {rc}); its "
                         f"output:\n{out}")
    # Each test's rate is its own commands over its own time: the run's
    # is all commands over the tests' times together.
    busy = sum(requests / rps for rps in rates.values())
    total = requests * len(REDIS_TESTS)
    return {"rps": total / busy, "requests": total, "non_2xx": 0,
            "socket_errors": 0}


def run_pgbench(port, seconds):
    """pgbench -S for seconds on port (TCP); its transactions a second
    (without the connections' set-up), transactions and failed ones."""
    out, rc = run_load([os.path.join(PG_BIN, "pgbench"), "-S",
                        "-c", str(PG_CLIENTS), "-j", str(PG_THREADS),
                        "-T", str(seconds), "-h", "127.0.0.1",
                        "-p", str(port), "-U", PG_USER, "postgres"], seconds)
    tps = re.search(r"^tps = ([\d.]+) \(without initial connection time\)",
                    out, re.M)
    total = re.search(r"^number of transactions actually processed: (\d+)",
                      out, re.M)
    failed = re.search(r"^number of failed transactions: (\d+)", out, re.M)
    if rc != 0 or not tps or not total or float(tps.group(1)) <= 0:
        raise BenchError(f"pgbench failed (status {rc}); its output:\n{out}")
    return {"rps": float(tps.group(1)), "requests": int(total.group(1)),
            "non_2xx": int(failed.group(1)) if failed else 0,
            "socket_errors": 0}


def cpu_seconds(pid):
    """Time on a CPU of every live thread of the process, in seconds, from
    the scheduler's nanosecond clock (/proc/<pid>/task/*/schedstat, first
    field): utime and stime come in 10 ms ticks, too coarse for an idle
    daemon's few milliseconds a second. sonde's threads live as long as
    it does."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total / 1e9


def memory_kib(pid):
    """{'VmHWM': kB, 'VmRSS': kB} from /proc/<pid>/status."""
    mem = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                mem[key] = int(value.split()[0])
    return mem


def fdinfo(pid, fd):
    """/proc/<pid>/fdinfo/<fd> as {key: value}."""
    with open(f"/proc/{pid}/fdinfo/{fd}") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f
                    if ":\t" in line)


def socket_programs(pid):
    """The ids of the BPF programs process pid has attached to the socket
    tracepoints, from its raw tracepoint links' fdinfo. No program name is
    assumed, and one program attached to both tracepoints is one id.
    (bpftool's `pids` field would say who owns a program, but Debian's
    bpftool is built without it.)"""
    ids = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") != "anon_inode:bpf_link":
                continue
            info = fdinfo(pid, fd)
        except OSError:
            continue
        if (info.get("link_type") == "raw_tracepoint"
                and info.get("tp_name") in SOCKET_TRACEPOINTS):
            ids.add(int(info["prog_id"]))
    if not ids:
        raise BenchError(f"process {pid} has no program attached to "
                         f"{' or '.join(SOCKET_TRACEPOINTS)}")
    return ids


def program_time(ids):
    """(run_time_ns, run_cnt) summed over the programs ids, as bpftool
    reads them from the kernel (counted while kernel.bpf_stats is on)."""
    try:
        r = subprocess.run(["bpftool", "-j", "prog", "show"],
                           capture_output=True, text=True, timeout=30)
        progs = {p["id"]: p for p in json.loads(r.stdout)}
    except (OSError, subprocess.SubprocessError, ValueError) as e:
        raise BenchError(f"bpftool prog show failed: {e}") from e
    if not ids <= progs.keys():
        raise BenchError("bpftool does not list programs "
                         f"{sorted(ids - progs.keys())}")
    return (sum(progs[i].get("run_time_ns", 0) for i in ids),
            sum(progs[i].get("run_cnt", 0) for i in ids))


def program_figures(before, after, exchanges):
    """What the socket programs cost over a run of exchanges."""
    ns, runs = after[0] - before[0], after[1] - before[1]
    if runs <= 0 or ns <= 0:
        raise BenchError("the socket programs' run time did not grow: is "
                         "kernel.bpf_stats on?")
    return {"prog_ns": ns, "prog_runs": runs, "ns_per_run": ns / runs,
            "prog_ns_per_exchange": ns / exchanges,
            "runs_per_exchange": runs / exchanges}


@contextlib.contextmanager
def bpf_run_stats():
    """The kernel counts every BPF program's runs and run time while the
    block runs. BPF_ENABLE_STATS, as sonde --bpf-stats does, rather than
    writing kernel.bpf_stats_enabled: the kernel counts holders, so
    neither a test that sets and restores the sysctl meanwhile nor a bench
    killed before it could restore it leaves the other's setting wrong."""
    attr = ctypes.create_string_buffer(8)  # enable_stats.type: run time
    fd = _libc.syscall(ctypes.c_long(SYS_BPF), ctypes.c_int(BPF_ENABLE_STATS),
                       attr, ctypes.c_uint(len(attr)))
    if fd < 0:
        raise BenchError("cannot turn on BPF run statistics: "
                         + os.strerror(ctypes.get_errno()))
    try:
        yield
    finally:
        os.close(fd)


def http_status(port, path):
    """The status of GET path on 127.0.0.1:port, 0 when nothing answered.
    The connect gets CONNECT_TIMEOUT: one refused or unanswered is tried
    again at the next poll. An accepted request is waited for up to
    START_TIMEOUT, so a slow first answer is timed when it comes rather
    than given up and asked again later."""
    head = b""
    try:
        with socket.create_connection(("127.0.0.1", port),
                                      timeout=CONNECT_TIMEOUT) as s:
            s.settimeout(START_TIMEOUT)
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      "Connection: close\r\n\r\n".encode())
            while b"\r\n" not in head:
                chunk = s.recv(256)
                if not chunk:
                    break
                head += chunk
    except OSError:
        return 0
    m = re.match(rb"HTTP/1\.[01] (\d{3}) ", head)
    return int(m.group(1)) if m else 0


def first_answers(proc, port, t0, log):
    """Seconds from t0 to the first 200 of each STARTUP_PATHS, polled
    every POLL_SECONDS."""
    first = {}
    while len(first) < len(STARTUP_PATHS):
        for path in STARTUP_PATHS:
            if path not in first and http_status(port, path) == 200:
                first[path] = time.monotonic() - t0
        exited(proc, "sonde", log)
        if time.monotonic() - t0 > START_TIMEOUT:
            raise BenchError(f"sonde: no 200 on {port} for "
                             f"{set(STARTUP_PATHS) - set(first)} within "
                             f"{START_TIMEOUT:.0f} s; its log ({log}):\n"
                             f"{log_tail(log)}")
        time.sleep(POLL_SECONDS)
    return first


def time_start(tmp):
    """Starts ./sonde, times its first answers from just before the exec,
    stops it."""
    port = free_port()
    log = os.path.join(tmp, "sonde.log")
    t0 = time.monotonic()
    proc = spawn(sonde_argv(port), log)
    try:
        first = first_answers(proc, port, t0, log)
    finally:
        rc = stop(proc)
    check_stopped(rc, tmp)
    return {"metrics_s": first["/metrics"], "ready_s": first["/readyz"],
            "agent_pids": [proc.pid]}


LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
SAMPLE = re.compile(r"^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)")


def scrape(base):
    """sonde's /metrics as a list of (name, {label: value}, float)."""
    status, body = http_get(base + "/metrics", timeout=10.0)
    if status != 200:
        raise BenchError(f"scraping {base}/metrics failed (status {status})")
    samples = []
    for line in body.splitlines():
        m = SAMPLE.match(line)
        if m and not line.startswith("#"):
            labels = dict(LABEL.findall(m.group(2) or ""))
            samples.append((m.group(1), labels, float(m.group(3))))
    return samples


def counts(samples, load):
    """Exchanges counted so far: the server (nginx) serving the loaded
    port, the client (wrk) calling it, and the server calling anything
    else (nginx's upstream)."""
    out = {"counted": 0.0, "client_counted": 0.0, "upstream_counted": 0.0}
    if load.db:
        return db_counts(samples, load, out)
    for name, labels, v in samples:
        service = labels.get("service_name")
        on_port = labels.get("server_port") == str(load.port)
        if name == "http_server_request_duration_seconds_count":
            if service == load.server and on_port:
                out["counted"] += v
        elif name == "http_client_request_duration_seconds_count":
            if service == load.client and on_port:
                out["client_counted"] += v
            elif service == load.server and not on_port:
                out["upstream_counted"] += v
    return out


def db_counts(samples, load, out):
    """Database calls counted so far into out: the load's operations (on
    its collection) served by the server on the loaded port and made by
    the client to it (server_port is the server's on both sides)."""
    system, operations, collection = load.db
    for name, labels, v in samples:
        if (labels.get("server_port") != str(load.port)
                or labels.get("db_system_name") != system
                or labels.get("db_operation_name") not in operations
                or (collection is not None
                    and labels.get("db_collection_name") != collection)):
            continue
        service = labels.get("service_name")
        if name == "db_server_operation_duration_seconds_count":
            if service == load.server:
                out["counted"] += v
        elif name == "db_client_operation_duration_seconds_count":
            if service == load.client:
                out["client_counted"] += v
    return out


def drops(samples):
    return {labels.get("reason", ""): v for name, labels, v in samples
            if name == "sonde_events_dropped_total"}


def span_counts(samples):
    """Spans exported, and dropped by reason, so far."""
    out = {"exported": 0.0}
    for name, labels, v in samples:
        if name == "sonde_spans_exported_total":
            out["exported"] += v
        elif name == "sonde_spans_dropped_total":
            out["dropped_" + labels.get("reason", "")] = v
    return out


def other_agents(ours):
    """Processes that would skew the numbers and are not ours: other sonde
    or floor instances (they trace our nginx too) and other wrk, pingpong,
    redis-benchmark or pgbench loads."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        if int(pid) in ours:
            continue
        try:
            with open(f"/proc/{pid}/comm") as f:
                comm = f.read().strip()
        except OSError:
            continue
        if comm in ("sonde", "floor", "wrk", "pingpong", "redis-benchmark",
                    "pgbench"):
            found.append(f"{comm}[{pid}]")
    return found


# --- one run of each mode ----------------------------------------------------

def measured_run(load, seconds, agent_pid):
    """load.run(seconds); when the load asks for it, with the run time of
    the agent's socket programs over the run."""
    if not load.program_time:
        return load.run(seconds)
    ids = socket_programs(agent_pid)
    before = program_time(ids)
    result = load.run(seconds)
    result.update(program_figures(before, program_time(ids),
                                  result["requests"]))
    return result


def run_none(load, seconds, tmp):
    with begun(load, seconds):
        return load.run(seconds)


def run_floor(load, seconds, tmp, bound=None):
    with begun(load, seconds) as pid:
        proc = start_floor(tmp, bound, pid)
        try:
            result = measured_run(load, seconds, proc.pid)
        finally:
            stop(proc)
    result["agent_pids"] = [proc.pid]
    return result


def run_sonde(load, seconds, tmp):
    with begun(load, seconds) as pid:
        proc, base = start_sonde(tmp, pid)
        try:
            first = scrape(base)
            before = counts(first, load)
            spans0 = span_counts(first)
            cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
            result = measured_run(load, seconds, proc.pid)
            time.sleep(SETTLE_SECONDS)
            cpu1, t1 = cpu_seconds(proc.pid), time.monotonic()
            samples = scrape(base)
            mem = memory_kib(proc.pid)
        finally:
            rc = stop(proc)
    check_stopped(rc, tmp)
    after = counts(samples, load)
    for key in after:
        result[key] = after[key] - before[key]
    if SONDE_ENV:
        spans1 = span_counts(samples)
        result["spans"] = {k: v - spans0.get(k, 0.0)
                           for k, v in spans1.items()}
    counted = result["counted"]
    result.update({
        "agent_pids": [proc.pid],
        "cpu_seconds": cpu1 - cpu0,
        "cpu_share": (cpu1 - cpu0) / (t1 - t0),
        "cpu_us_per_request": (cpu1 - cpu0) * 1e6 / result["requests"],
        "hwm_kib": mem["VmHWM"],
        "rss_kib": mem["VmRSS"],
        "counted": counted,
        "count_ratio": counted / result["requests"],
        "drops": drops(samples),
    })
    return result


def run_bound(load, seconds, tmp):
    return run_floor(load, seconds, tmp,
                     bound="--bound-calls" if load.db else "--bound")


RUNNERS = {"none": run_none, "floor": run_floor, "bound": run_bound,
           "sonde": run_sonde}


def socket_hooks():
    """Whether sonde and the floor load the socket hooks: --hooks, or for
    auto what the kernel has (tracefs mounted as the agent would)."""
    if HOOKS[0] != "auto":
        return HOOKS[0] == "socket"
    events = "/sys/kernel/tracing/events"
    if not os.path.isdir(events):
        subprocess.run(["mount", "-t", "tracefs", "tracefs",
                        "/sys/kernel/tracing"], capture_output=True)
    return all(os.path.isdir(f"{events}/sock/{tp}")
               for tp in SOCKET_TRACEPOINTS)


def modes_of(scenario):
    return (BOUND_MODES if scenario in BOUND_SCENARIOS and socket_hooks()
            else MODES)


def watched(run, label, pids, warnings):
    """run(), with a warning in warnings when another agent or load (not
    in pids) ran before or after it."""
    before = other_agents(pids)
    res = run()
    others = sorted(set(before) | set(other_agents(pids)))
    if others:
        warnings.append(f"{label}: also running: " + ", ".join(others))
    return res


def rotated(modes, r):
    """Round r's order of the modes: each round starts one further on."""
    shift = (r - 1) % len(modes)
    return modes[shift:] + modes[:shift]


def run_rounds(load, modes, rounds, seconds, tmp, pids):
    """modes x rounds; returns {mode: [result, ...]} and the warnings about
    other load seen on the host."""
    results = {mode: [] for mode in modes}
    warnings = []
    for r in range(1, rounds + 1):
        for mode in rotated(modes, r):
            res = watched(lambda: RUNNERS[mode](load, seconds, tmp),
                          f"round {r} {mode}", pids, warnings)
            results[mode].append(res)
            print(f"  round {r}/{rounds} {mode:<5} {res['rps']:>10.0f} "
                  f"{load.unit}" + sonde_line(res, load), flush=True)
    return results, warnings


# Runs of the program-time pass that follows a database scenario's rounds.
PROGRAM_TIME_RUNS = 3


def program_time_runs(scenario, load, seconds, tmp, pids, warnings):
    """The bound's and sonde's socket programs' ns per run under load,
    PROGRAM_TIME_RUNS runs each, interleaved, after the rounds: the
    kernel counts run time only while asked to, which costs every run
    a little, so the rounds that measure throughput run without it.
    {mode: [ns per run, ...]}; {} on the syscall hooks."""
    modes = [m for m in ("bound", "sonde") if m in modes_of(scenario)]
    out = {m: [] for m in modes}
    if "bound" not in modes:
        return {}
    load.program_time = True
    try:
        with bpf_run_stats():
            for r in range(1, PROGRAM_TIME_RUNS + 1):
                for mode in rotated(modes, r):
                    res = watched(lambda: RUNNERS[mode](load, seconds, tmp),
                                  f"program time {r} {mode}", pids,
                                  warnings)
                    out[mode].append(res["ns_per_run"])
                    print(f"  program time {r}/{PROGRAM_TIME_RUNS} "
                          f"{mode:<5} {res['ns_per_run']:7.1f} ns/run",
                          flush=True)
    finally:
        load.program_time = False
    return out


def sonde_line(res, load):
    if "cpu_us_per_request" not in res:
        return ""
    if load.port is None:
        return (f"  cpu {res['cpu_share']:.2%}"
                f"  peak {res['hwm_kib'] / 1024:.1f} MiB")
    if load.db:
        return (f"  cpu {res['cpu_us_per_request']:.3f} us/call"
                f"  peak {res['hwm_kib'] / 1024:.1f} MiB"
                f"  counted server {res['counted']:.0f} client "
                f"{res['client_counted']:.0f} of {res['requests']}")
    spans = res.get("spans")
    return (f"  cpu {res['cpu_us_per_request']:.3f} us/req"
            f"  peak {res['hwm_kib'] / 1024:.1f} MiB"
            f"  counted {res['counted']:.0f}/{res['requests']}"
            + (f"  spans exported {spans['exported']:.0f} dropped "
               f"{sum(v for k, v in spans.items() if k != 'exported'):.0f}"
               if spans else ""))


# --- report ------------------------------------------------------------------

def median(results, key):
    return statistics.median(r[key] for r in results)


def paired_ratio(results, mode):
    """Median over rounds of mode's requests/s over none's in that round."""
    return statistics.median(r["rps"] / n["rps"] for r, n
                             in zip(results[mode], results["none"]))


def spread(values):
    """(median, min, max) of per-round values."""
    values = list(values)
    return statistics.median(values), min(values), max(values)


def exchange_costs(results):
    """The pingpong's figures, each as (median, min, max) over rounds:
    each mode's nanoseconds an exchange, what each agent adds to a call
    over none's run of the same round, and what sonde adds to an exchange
    over what the bound adds in the same round."""
    if "ns_fastest" not in results["none"][0]:
        return {}
    added = {m: [r["ns_fastest"] - n["ns_fastest"]
                 for r, n in zip(results[m], results["none"])]
             for m in results if m != "none"}
    out = {
        "ns_per_exchange": {m: spread(r["ns_fastest"] for r in results[m])
                            for m in results},
        "added_ns_per_call": {m: spread(v / CALLS_PER_EXCHANGE for v in vs)
                              for m, vs in added.items()},
    }
    if "bound" in results:
        out["sonde_vs_bound"] = spread(
            s / max(b, 1.0) for s, b in zip(added["sonde"], added["bound"]))
    return out


def drop_totals(runs):
    """sonde_events_dropped_total's increase over the runs, by reason."""
    totals = {}
    for res in runs:
        for reason, v in res["drops"].items():
            totals[reason] = totals.get(reason, 0) + v
    return totals


def summarize(results):
    floor_over_none = paired_ratio(results, "floor")
    sonde_over_none = paired_ratio(results, "sonde")
    floor_loss = 1 - floor_over_none
    sonde_loss = 1 - sonde_over_none
    runs = results["sonde"]
    bound = {}
    if "bound" in results:
        bound_over_none = paired_ratio(results, "bound")
        bound_loss = 1 - bound_over_none
        bound = {
            "bound_over_none": bound_over_none,
            "bound_loss": bound_loss,
            "loss_vs_bound": (sonde_loss / bound_loss
                              if bound_loss >= FLOOR_LOSS_MIN else None),
        }
    return {
        "rps": {m: median(results[m], "rps") for m in results},
        "rps_range": {m: (min(r["rps"] for r in results[m]),
                          max(r["rps"] for r in results[m]))
                      for m in results},
        "sonde_over_none": sonde_over_none,
        "floor_over_none": floor_over_none,
        "floor_loss": floor_loss,
        "sonde_loss": sonde_loss,
        **bound,
        "loss_vs_floor": (sonde_loss / floor_loss
                          if floor_loss >= FLOOR_LOSS_MIN else None),
        "cpu_us_per_request": median(runs, "cpu_us_per_request"),
        "cpu_share": median(runs, "cpu_share"),
        "peak_rss_mib": max(r["hwm_kib"] for r in runs) / 1024,
        "end_rss_mib": runs[-1]["rss_kib"] / 1024,
        "counted": sum(r["counted"] for r in runs),
        "client_counted": sum(r["client_counted"] for r in runs),
        "upstream_counted": sum(r["upstream_counted"] for r in runs),
        "wrk_requests": sum(r["requests"] for r in runs),
        "count_ratio": (sum(r["counted"] for r in runs)
                        / sum(r["requests"] for r in runs)),
        "client_count_ratio": (sum(r["client_counted"] for r in runs)
                               / sum(r["requests"] for r in runs)),
        **exchange_costs(results),
        "drops": drop_totals(runs),
        "wrk_errors": sum(r["non_2xx"] + r["socket_errors"]
                          for mode in results for r in results[mode]),
    }


def verdicts(s, scenario):
    """[(target, passed or None for n/a, measured)]. A bystander has two,
    what it keeps and what the idle daemon spends: it serves nothing, so
    sonde has nothing to count, nor a request to spend per."""
    if scenario == "startup":
        return startup_verdicts(s)
    if scenario == "kernel":
        return kernel_verdicts(s)
    if scenario == "scrape":
        return scrape_verdicts(s)
    lvf = s["loss_vs_floor"]
    kept = TARGET_KEPT_BY_SCENARIO.get(scenario, TARGET_KEPT)
    max_lvf = TARGET_LOSS_VS_FLOOR_BY_SCENARIO.get(scenario,
                                                   TARGET_LOSS_VS_FLOOR)
    kept_row = ((f"sonde >= {kept:.0%} of none",
                 s["sonde_over_none"] >= kept) if kept is not None else
                ("sonde of none (no target)", None)) + \
        (f"{s['sonde_over_none']:.1%}",)
    rss_row = (f"peak resident <= {TARGET_RSS_MIB:g} MiB",
               s["peak_rss_mib"] <= TARGET_RSS_MIB,
               f"{s['peak_rss_mib']:.1f} MiB")
    if scenario == "bystander":
        return [kept_row,
                (f"sonde CPU < {TARGET_IDLE_CPU:.1%} of one CPU",
                 s["cpu_share"] < TARGET_IDLE_CPU, f"{s['cpu_share']:.2%}")]
    exact_row = ("counts exact, server and client",
                 s["counted"] == s["wrk_requests"]
                 and s["client_counted"] == s["wrk_requests"],
                 f"{s['counted']:.0f} and {s['client_counted']:.0f} of "
                 f"{s['wrk_requests']}")
    if scenario == "exchange":
        # A synchronous exchange is never in flight when the load stops:
        # sonde's counts are the exchanges made, exactly. What sonde adds
        # over the bound has no target here: it moves too much from run
        # to run on a shared host (tools/README.md).
        return [exact_row, rss_row]
    if scenario in DB_SCENARIOS:
        # redis-benchmark and pgbench wait for every reply before they
        # stop: the calls sonde counts are the ones they report, exactly.
        # The loss against the floor's is printed without a target.
        return [kept_row, exact_row, rss_row]
    rows = [
        kept_row,
        (f"loss <= {max_lvf}x floor's",
         None if lvf is None else lvf <= max_lvf,
         "n/a (floor loss < 0.5%)" if lvf is None else f"{lvf:.2f}x"),
    ]
    # The CPU target is per direct request, one server and one client
    # exchange; elsewhere the figure is printed without one.
    if scenario == "direct":
        rows.append((f"daemon CPU <= {TARGET_CPU_US:g} us/request",
                     s["cpu_us_per_request"] <= TARGET_CPU_US,
                     f"{s['cpu_us_per_request']:.3f} us"))
    return rows + [rss_row]


def print_rates(cfg, s, unit):
    """Each mode's median rate, and with rounds > 1 its spread."""
    print(f"  {unit:<13}" + "   ".join(
        f"{m} {v:10.0f}" for m, v in s["rps"].items()))
    if cfg["rounds"] > 1:
        print("  spread       " + "   ".join(
            f"{m} {lo:.0f}..{hi:.0f}" for m, (lo, hi)
            in s["rps_range"].items()))


def print_verdicts(s, scenario, warnings):
    print()
    for target, ok, measured in verdicts(s, scenario):
        mark = "n/a " if ok is None else ("PASS" if ok else "MISS")
        print(f"  {mark}  {target:<40} {measured}")
    kept = TARGET_KEPT_BY_SCENARIO.get(scenario, TARGET_KEPT) or 0
    if scenario != "exchange" and s.get("bound_over_none", 1) < kept:
        print(f"  note: the bound keeps {s['bound_over_none']:.1%}, under "
              f"{kept:.0%}: on this host no tracer doing the per-call work "
              "reaches the target")
    if scenario in ("tls", "go-tls") and s.get("floor_over_none", 1) < kept:
        print(f"  note: the floor keeps {s['floor_over_none']:.1%}, under "
              f"{kept:.0%}: on this host the uprobe traps alone, at the "
              "places sonde probes, cost more than the target allows")
    for w in warnings:
        print(f"  warning: {w}")


def print_bystander_report(cfg, s, warnings):
    print()
    print(f"sonde bench, bystander: build/tools/bystander (reads of "
          f"/dev/zero and a pipe, no socket), {cfg['rounds']} round(s) x "
          f"{cfg['seconds']} s, medians; {cfg['cpus']} CPUs, kernel "
          f"{cfg['kernel']}, hooks {cfg['hooks']}")
    print_rates(cfg, s, "calls/s")
    print(f"  floor/none   {s['floor_over_none']:7.1%}   "
          f"(median of the rounds' ratios)")
    print(f"  sonde/none   {s['sonde_over_none']:7.1%}")
    print(f"  sonde CPU    {s['cpu_share']:.2%} of one CPU (the daemon, with "
          "no socket I/O on the host to trace; median)")
    print_verdicts(s, "bystander", warnings)


def print_exchange_report(cfg, s, warnings):
    print()
    print(f"sonde bench, exchange: build/tools/pingpong on CPU "
          f"{cfg['cpus'] - 1} (one loopback connection, {CALLS_PER_EXCHANGE}"
          f" calls an exchange), {cfg['rounds']} round(s) x "
          f"{cfg['seconds']} s, fastest pass, medians; {cfg['cpus']} CPUs, "
          f"kernel {cfg['kernel']}, hooks {cfg['hooks']}")
    print("  mode    ns/exchange (rounds)       added/call (rounds; over "
          "none's run of the same round)")
    for m, (med, lo, hi) in s["ns_per_exchange"].items():
        added = s["added_ns_per_call"].get(m)
        print(f"  {m:<6} {med:8.0f} ({lo:.0f}..{hi:.0f})"
              + (f"   {added[0]:6.0f} ns ({added[1]:.0f}..{added[2]:.0f})"
                 if added else ""))
    if "sonde_vs_bound" in s:
        med, lo, hi = s["sonde_vs_bound"]
        print(f"  sonde/bound  {med:.2f}x (rounds {lo:.2f}x..{hi:.2f}x): what "
              "sonde adds to an exchange over what the least per-call work "
              "adds; no target, see tools/README.md on how far to trust it")
    print(f"  sonde/none   {s['sonde_over_none']:7.1%}   (of the exchange "
          "rate: no work of its own, so the most a tracer can cost)")
    print(f"  sonde CPU    {s['cpu_us_per_request']:.3f} us/exchange "
          "(userspace process, two records an exchange, median)")
    print(f"  sonde RSS    peak {s['peak_rss_mib']:.1f} MiB, "
          f"at end {s['end_rss_mib']:.1f} MiB")
    print(f"  counted      server {s['counted']:.0f}, client "
          f"{s['client_counted']:.0f}, of {s['wrk_requests']} exchanges")
    print("  dropped      " + (", ".join(
        f"{k}={v:.0f}" for k, v in sorted(s["drops"].items())) or "(none)"))
    print_verdicts(s, "exchange", warnings)


def traced_ns_per_call(run, baseline):
    """The traced side's own time per call in a path's run: the run time
    less the baseline's per run for every other call (the untraced side's
    and other processes', all early exits), over the traced calls."""
    traced = TRACED_CALLS_PER_EXCHANGE * run["requests"]
    untraced = max(run["prog_runs"] - traced, 0)
    return (run["prog_ns"] - untraced * baseline["ns_per_run"]) / traced


def summarize_kernel(results):
    """Per path: each agent's ns per program run and per traced call (the
    untraced calls' early exits taken off at the baseline's rate of the
    same round), sonde's per traced call over the bound's of the same
    round, and sonde's counts of the traced and the untraced side."""
    out = {}
    base = results[KERNEL_BASELINE]
    out[KERNEL_BASELINE] = {
        "ns_per_run": {m: spread(r["ns_per_run"] for r in base[m])
                       for m in KERNEL_MODES}}
    for name, _, _, side in KERNEL_PATHS:
        by_mode = results[name]
        runs = by_mode["sonde"]
        traced, untraced = (("counted", "client_counted") if side == "server"
                            else ("client_counted", "counted"))
        per_call = {m: [traced_ns_per_call(run, b)
                        for run, b in zip(by_mode[m], base[m])]
                    for m in KERNEL_MODES}
        out[name] = {
            "ns_per_run": {m: spread(r["ns_per_run"] for r in by_mode[m])
                           for m in KERNEL_MODES},
            "ns_per_traced_call": {m: spread(per_call[m])
                                   for m in KERNEL_MODES},
            "ns_per_exchange": {m: median(by_mode[m], "prog_ns_per_exchange")
                                for m in KERNEL_MODES},
            "runs_per_exchange": {m: median(by_mode[m], "runs_per_exchange")
                                  for m in KERNEL_MODES},
            "sonde_vs_bound": spread(
                s / b for s, b in zip(per_call["sonde"], per_call["bound"])),
            "exchanges": sum(r["requests"] for r in runs),
            "traced_counted": sum(r[traced] for r in runs),
            "untraced_counted": sum(r[untraced] for r in runs),
            "drops": drop_totals(runs),
        }
    return out


def kernel_verdicts(s):
    rows = [(f"{label}: sonde <= {TARGET_RUN_VS_BOUND}x bound/run",
             s[name]["sonde_vs_bound"][0] <= TARGET_RUN_VS_BOUND,
             f"{s[name]['sonde_vs_bound'][0]:.2f}x")
            for name, label, _, _ in KERNEL_PATHS]
    # One exchange at a time: none is in flight when pingpong stops, and
    # the side sonde does not trace must not be counted at all.
    missed = [f"{label} {s[name]['traced_counted']:.0f} and "
              f"{s[name]['untraced_counted']:.0f} of {s[name]['exchanges']}"
              for name, label, _, _ in KERNEL_PATHS
              if s[name]["traced_counted"] != s[name]["exchanges"]
              or s[name]["untraced_counted"]]
    rows.append(("counts exact, traced side only", not missed,
                 "; ".join(missed) or f"all {len(KERNEL_PATHS)} paths"))
    return rows


def print_kernel_report(cfg, s, warnings):
    print()
    print(f"sonde bench, kernel: the socket programs' run time "
          f"(BPF_ENABLE_STATS), build/tools/pingpong --split on CPU "
          f"{cfg['cpus'] - 1}, one side traced (--pid), {cfg['rounds']} "
          f"round(s) x {min(cfg['seconds'], KERNEL_SECONDS)} s, medians; "
          f"{cfg['cpus']} CPUs, kernel {cfg['kernel']}")
    base = s[KERNEL_BASELINE]["ns_per_run"]
    print(f"  {'untraced':<14} " + "   ".join(
        f"{m} {med:6.1f} ns/run ({lo:.1f}..{hi:.1f})"
        for m, (med, lo, hi) in base.items())
        + "   (early exits: the baseline)")
    for name, label, _, side in KERNEL_PATHS:
        p = s[name]
        print(f"  {label:<14} " + "   ".join(
            f"{m} {med:6.1f} ns/traced call ({lo:.1f}..{hi:.1f})"
            for m, (med, lo, hi) in p["ns_per_traced_call"].items()))
        med, lo, hi = p["sonde_vs_bound"]
        print(f"  {'':<14} sonde/bound {med:.2f}x (rounds {lo:.2f}x.."
              f"{hi:.2f}x); ns/run " + ", ".join(
                  f"{m} {v[0]:.1f}" for m, v in p["ns_per_run"].items())
              + "; runs an exchange " + ", ".join(
                  f"{m} {v:.2f}" for m, v in p["runs_per_exchange"].items()))
        print(f"  {'':<14} sonde counted the {side} side "
              f"{p['traced_counted']:.0f} of {p['exchanges']} exchanges, "
              f"the other {p['untraced_counted']:.0f}; dropped "
              + (", ".join(f"{k}={v:.0f}" for k, v
                           in sorted(p["drops"].items()) if v) or "none"))
    print("  A traced call is one of the traced side's two calls an exchange "
          "(a read, a\n"
          "  write): the run time of a path's run less, for every other call "
          "(the\n"
          "  untraced side's and other processes', early exits on the pid "
          "filter), the\n"
          "  untraced baseline's time per run of the same round. Over HTTP/2 "
          "the bound\n"
          "  peeks 16 bytes a call as over HTTP/1: the least work, no frame "
          "followed.")
    print_verdicts(s, "kernel", warnings)


def summarize_startup(results):
    runs = results["sonde"]
    return {"metrics_s": spread(r["metrics_s"] for r in runs),
            "ready_s": spread(r["ready_s"] for r in runs)}


def startup_verdicts(s):
    return [(f"{what} <= {limit:g} s", s[key][0] <= limit,
             f"{s[key][0]:.2f} s") for what, key, limit in STARTUP_FIGURES]


def print_startup_report(cfg, s, warnings):
    print()
    print(f"sonde bench, startup: ./sonde from exec to its first answers, "
          f"{STARTS} starts, medians; {cfg['cpus']} CPUs, kernel "
          f"{cfg['kernel']}, hooks {cfg['hooks']}")
    for what, key, _ in STARTUP_FIGURES:
        med, lo, hi = s[key]
        print(f"  {what:<14} {med:6.3f} s   (starts {lo:.3f}..{hi:.3f} s)")
    print_verdicts(s, "startup", warnings)


def print_report(cfg, scenario, s, warnings):
    """The scenario's report: its own for those without nginx."""
    own = {"bystander": print_bystander_report,
           "exchange": print_exchange_report,
           "kernel": print_kernel_report,
           "startup": print_startup_report,
           "scrape": print_scrape_report}.get(scenario)
    if own:
        own(cfg, s, warnings)
    elif scenario in DB_SCENARIOS:
        print_db_report(cfg, scenario, s, warnings)
    else:
        print_nginx_report(cfg, scenario, s, warnings)


def print_nginx_report(cfg, scenario, s, warnings):
    print()
    server = ("a Go net/http HTTPS server" if scenario == "go-tls" else
              "nginx (1 worker)")
    print(f"sonde bench, {scenario}: {server} + wrk -t{WRK_THREADS} "
          f"-c{WRK_CONNECTIONS}, {cfg['rounds']} round(s) x "
          f"{cfg['seconds']} s, medians; {cfg['cpus']} CPUs, "
          f"kernel {cfg['kernel']}")
    print_rates(cfg, s, "requests/s")
    print_kept(cfg, s, "request")
    print(f"  counted      sonde {s['counted']:.0f} server requests, wrk "
          f"{s['wrk_requests']}, ratio {s['count_ratio']:.4f}")
    print(f"  client side  wrk's calls {s['client_counted']:.0f}"
          + (f", nginx's upstream calls {s['upstream_counted']:.0f}"
             if scenario == "proxy" else ""))
    print("  dropped      " + (", ".join(
        f"{k}={v:.0f}" for k, v in sorted(s["drops"].items())) or "(none)"))
    if s["wrk_errors"]:
        print(f"  wrk errors   {s['wrk_errors']} (non-2xx or socket errors)")
    print_verdicts(s, scenario, warnings)


def print_db_report(cfg, scenario, s, warnings):
    server, client, calls = {
        "redis": ("redis-server", "redis-benchmark",
                  f"{'+'.join(REDIS_TESTS)} commands"),
        "postgres": ("postgres", "pgbench",
                     f"SELECTs on {PG_TABLE} (transactions)"),
    }[scenario]
    print()
    print(f"sonde bench, {scenario}: {s['load']}, {cfg['rounds']} round(s) "
          f"x {cfg['seconds']} s, medians; {cfg['cpus']} CPUs, kernel "
          f"{cfg['kernel']}")
    print_rates(cfg, s, "commands/s" if scenario == "redis"
                else "transact/s")
    print_kept(cfg, s, "call")
    print(f"  counted      sonde {s['counted']:.0f} {calls} served by "
          f"{server}, {client} made {s['wrk_requests']}")
    print(f"  client side  sonde {s['client_counted']:.0f} made by {client}")
    if s.get("program_ns_per_run"):
        p = s["program_ns_per_run"]
        print("  ns/run       " + ", ".join(
            f"{m} {v[0]:.1f} ({v[1]:.1f}..{v[2]:.1f})" for m, v in p.items())
            + f"; sonde {p['sonde'][0] / p['bound'][0]:.2f}x the bound "
            f"(socket programs, {PROGRAM_TIME_RUNS} runs each after the "
            "rounds)")
    print("  dropped      " + (", ".join(
        f"{k}={v:.0f}" for k, v in sorted(s["drops"].items())) or "(none)"))
    if s["wrk_errors"]:
        print(f"  errors       {s['wrk_errors']} ({client}'s failed calls)")
    print_verdicts(s, scenario, warnings)


def print_kept(cfg, s, per):
    """The kept ratios, the losses against the floor's (and the bound's),
    and sonde's CPU (per request or call) and memory."""
    lvf = s["loss_vs_floor"]
    print(f"  floor/none   {s['floor_over_none']:7.1%}   "
          f"(loss {s['floor_loss']:.1%}; median of the rounds' ratios)")
    if "bound_over_none" in s:
        print(f"  bound/none   {s['bound_over_none']:7.1%}   "
              f"(loss {s['bound_loss']:.1%}; the least per-call work)")
    print(f"  sonde/none   {s['sonde_over_none']:7.1%}   "
          f"(loss {s['sonde_loss']:.1%})"
          + (f"; {cfg['rounds']} round(s), the target wants {MIN_ROUNDS} or "
             "more" if cfg["rounds"] < MIN_ROUNDS else ""))
    print("  sonde loss vs floor loss   "
          + ("n/a (floor loss < 0.5%)" if lvf is None else f"{lvf:.2f}x"))
    if "bound_over_none" in s:
        lvb = s["loss_vs_bound"]
        print("  sonde loss vs bound loss   "
              + ("n/a (bound loss < 0.5%)" if lvb is None
                 else f"{lvb:.2f}x"))
    print(f"  sonde CPU    {s['cpu_us_per_request']:.3f} us/{per} "
          "(userspace process, median)")
    print(f"  sonde RSS    peak {s['peak_rss_mib']:.1f} MiB, "
          f"at end {s['end_rss_mib']:.1f} MiB")


def write_json(cfg, scenarios):
    doc = {"config": cfg, "scenarios": {}}
    for name, (results, s, warnings) in scenarios.items():
        doc["scenarios"][name] = {
            "runs": results,
            "summary": s,
            "targets": [{"target": t, "pass": ok, "measured": m}
                        for t, ok, m in verdicts(s, name)],
            "warnings": warnings,
        }
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    print(f"\n  results written to {os.path.relpath(RESULTS, ROOT)}")


# --- main --------------------------------------------------------------------

def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    env_rounds = os.environ.get("BENCH_ROUNDS")
    p.add_argument("--rounds", type=int,
                   default=int(env_rounds) if env_rounds else None,
                   help="interleaved rounds of every mode, in every "
                   "scenario (env BENCH_ROUNDS; default 9 in direct, proxy, "
                   "tls, redis and postgres, 7 in the others)")
    p.add_argument("--seconds", type=int,
                   default=int(os.environ.get("BENCH_SECONDS", 5)),
                   help="wrk duration per run, and redis-benchmark's and "
                   "pgbench's (env BENCH_SECONDS, default 5)")
    p.add_argument("--scenario", choices=(*ALL_SCENARIOS, "all"),
                   default=os.environ.get("BENCH_SCENARIO", "all"),
                   help="direct, proxy (client-heavy), tls (https, "
                   "OpenSSL uprobes), redis (redis-benchmark SET and GET), "
                   "postgres (pgbench -S), bystander (a process with no "
                   "socket), "
                   "exchange (pingpong: per-call cost), kernel (BPF run "
                   "time per program run, by protocol path), startup (exec "
                   "to first answers), scrape (/metrics at 1k to 100k "
                   "series, and with slow readers) or all (env "
                   "BENCH_SCENARIO, default all)")
    p.add_argument("--hooks", choices=("auto", "socket", "syscall"),
                   default=os.environ.get("BENCH_HOOKS", "auto"),
                   help="sonde's and the floor's --hooks: where reads and "
                   "writes are seen (env BENCH_HOOKS, default auto)")
    args = p.parse_args()
    HOOKS[0] = args.hooks
    if (args.rounds is not None and args.rounds < 1) or args.seconds < 1:
        p.error("--rounds and --seconds must be at least 1")
    return args


def preflight():
    if os.geteuid() != 0:
        raise BenchError("run as root: loading BPF programs needs it")
    for path, hint in ((SONDE, "make"), (FLOOR, "make build/tools/floor"),
                       (BYSTANDER, "make build/tools/bystander"),
                       (PINGPONG, "make build/tools/pingpong"),
                       (BENCH_SCRAPE, "make build/tests/bench_scrape")):
        if not os.access(path, os.X_OK):
            raise BenchError(f"{path} missing: build it with `{hint}`")
    for tool in ("nginx", "wrk", "taskset", "bpftool"):
        if not any(os.access(os.path.join(d, tool), os.X_OK)
                   for d in os.environ.get("PATH", "").split(os.pathsep)):
            raise BenchError(f"{tool} not found in PATH (make deps)")


def bench_nginx(tmp, scenario, rounds, seconds):
    """Starts nginx in tmp, warms it up, runs the rounds, stops nginx."""
    os.chmod(tmp, 0o755)  # nginx's worker runs as nobody
    nginx = None
    try:
        nginx, url = start_nginx(tmp, scenario)
        print(f"bench: {scenario}: nginx[{nginx.pid}] on {url}; warming up "
              f"{WARMUP_SECONDS} s", flush=True)
        run_wrk(url, WARMUP_SECONDS)
        return run_rounds(wrk_load(url), modes_of(scenario), rounds,
                          seconds, tmp, {nginx.pid, os.getpid()})
    finally:
        stop(nginx)


def build_gotls(tmp):
    """tests/e2e/servers/goapp.go built into tmp; its path."""
    out = os.path.join(tmp, "gotls")
    env = dict(os.environ, GOCACHE=os.path.join(tmp, "gocache"),
               GOPATH=os.path.join(tmp, "gopath"), GO111MODULE="off",
               GOFLAGS="")
    r = subprocess.run([GO, "build", "-o", out, GOTLS_SOURCE], env=env,
                       capture_output=True, text=True, timeout=600)
    if r.returncode:
        raise BenchError(f"go build {GOTLS_SOURCE} failed:\n{r.stderr}")
    return out


def bench_go_tls(tmp, rounds, seconds):
    """Builds and starts the Go HTTPS server in tmp, warms it up, runs the
    rounds (the floor probing it as sonde does), stops it."""
    if missing("go-tls", [GO]):
        return None
    make_certificate(tmp)
    binary = build_gotls(tmp)
    port = free_port()
    log = os.path.join(tmp, "gotls.log")
    server = spawn([binary, "serve-tls", f"127.0.0.1:{port}",
                    os.path.join(tmp, "cert.pem"),
                    os.path.join(tmp, "key.pem")], log)
    url = f"https://127.0.0.1:{port}/items/1"
    GO_TLS_EXES[:] = [binary]
    try:
        wait_http_200(url, server, "the Go HTTPS server", log)
        print(f"bench: go-tls: gotls[{server.pid}] on {url}; warming up "
              f"{WARMUP_SECONDS} s", flush=True)
        run_wrk(url, WARMUP_SECONDS)
        load = Load(lambda s: run_wrk(url, s), port, server="gotls")
        return run_rounds(load, MODES, rounds, seconds, tmp,
                          {server.pid, os.getpid()})
    finally:
        GO_TLS_EXES.clear()
        stop(server)


def bench_bystander(tmp, rounds, seconds):
    print(f"bench: bystander: {BYSTANDER}", flush=True)
    return run_rounds(Load(run_bystander, unit="calls/s"), MODES, rounds,
                      seconds, tmp, {os.getpid()})


def bench_exchange(tmp, rounds, seconds):
    print(f"bench: exchange: {PINGPONG}", flush=True)
    return run_rounds(pingpong_load(), modes_of("exchange"), rounds, seconds,
                      tmp, {os.getpid()})


def missing(scenario, paths):
    """Whether any of paths is not an executable, saying the scenario is
    skipped for it."""
    absent = [p for p in paths if not os.access(p, os.X_OK)]
    if absent:
        print(f"bench: {scenario}: skipped: {', '.join(absent)} not "
              "installed (make deps)", flush=True)
    return bool(absent)


def wait_redis(port, proc, log):
    """Waits until the redis-server on port answers PING."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        exited(proc, "redis-server", log)
        try:
            with socket.create_connection(("127.0.0.1", port),
                                          timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(64).startswith(b"+PONG"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise BenchError(f"redis-server did not answer PING on {port} within "
                     f"{START_TIMEOUT:.0f} s; its log ({log}):\n"
                     f"{log_tail(log)}")


def bench_redis(tmp, rounds, seconds):
    """Starts a redis-server in tmp, sizes the runs from a warm-up, runs
    the rounds, stops it. None when redis is not installed."""
    if missing("redis", (REDIS_SERVER, REDIS_BENCHMARK)):
        return None
    data = os.path.join(tmp, "redis")
    os.makedirs(data)
    port = free_port()
    log = os.path.join(tmp, "redis.log")
    server = None
    try:
        server = spawn([REDIS_SERVER, "--port", str(port), "--bind",
                        "127.0.0.1", "--save", "", "--appendonly", "no",
                        "--dir", data, "--daemonize", "no", "--logfile", ""],
                       log)
        wait_redis(port, server, log)
        print(f"bench: redis: redis-server[{server.pid}] on 127.0.0.1:{port}"
              f"; warming up", flush=True)
        warm = run_redis_benchmark(port, REDIS_WARMUP_REQUESTS,
                                   WARMUP_SECONDS)
        requests = max(REDIS_MIN_REQUESTS, int(round(
            warm["rps"] * seconds / len(REDIS_TESTS), -3)))
        about = (f"redis-server + redis-benchmark -c {REDIS_CLIENTS} -t "
                 f"{','.join(REDIS_TESTS).lower()} -n {requests} (sized "
                 f"from the warm-up's {warm['rps']:.0f} commands/s)")
        print(f"  runs of {requests} of each of {', '.join(REDIS_TESTS)}",
              flush=True)
        load = Load(lambda secs: run_redis_benchmark(port, requests, secs),
                    port, unit="cmd/s", server="redis-server",
                    client="redis-benchmark", db=("redis", REDIS_TESTS, None))
        results, warnings = run_rounds(load, modes_of("redis"), rounds,
                                       seconds, tmp,
                                       {server.pid, os.getpid()})
        program = program_time_runs("redis", load, seconds, tmp,
                                    {server.pid, os.getpid()}, warnings)
        return results, warnings, about, program
    finally:
        stop(server)


def bench_postgres(tmp, rounds, seconds):
    """Makes a PostgreSQL cluster in tmp, starts it, fills pgbench's
    tables, warms up, runs the rounds, stops it. None when PostgreSQL is
    not installed."""
    postgres, pgbench = (os.path.join(PG_BIN, b)
                         for b in ("postgres", "pgbench"))
    initdb, isready = (os.path.join(PG_BIN, b)
                       for b in ("initdb", "pg_isready"))
    if missing("postgres", (postgres, pgbench, initdb, isready)):
        return None
    try:
        pw = pwd.getpwnam(PG_USER)
    except KeyError:
        print(f"bench: postgres: skipped: no user {PG_USER} to run the "
              "server as (make deps)", flush=True)
        return None
    home = os.path.join(tmp, "pg")  # the socket's directory too
    data = os.path.join(home, "data")
    os.chmod(tmp, 0o755)  # the server runs as postgres
    os.makedirs(home)
    os.chown(home, pw.pw_uid, pw.pw_gid)
    r = subprocess.run(["runuser", "-u", PG_USER, "--", initdb, "-D", data,
                        "-A", "trust", "-U", PG_USER, "--no-sync"],
                       capture_output=True, text=True, cwd=home)
    if r.returncode:
        raise BenchError(f"initdb failed (status {r.returncode}):\n"
                         f"{r.stdout}{r.stderr}")
    port = free_port()
    log = os.path.join(tmp, "postgres.log")
    server = None
    try:
        server = spawn([postgres, "-D", data, "-p", str(port), "-k", home,
                        "-c", "listen_addresses=127.0.0.1",
                        "-c", "fsync=off"], log, user=PG_USER)
        deadline = time.monotonic() + START_TIMEOUT
        while subprocess.run([isready, "-q", "-h", "127.0.0.1", "-p",
                              str(port)]).returncode:
            exited(server, "postgres", log)
            if time.monotonic() > deadline:
                raise BenchError(f"postgres did not accept connections "
                                 f"within {START_TIMEOUT:.0f} s; its log "
                                 f"({log}):\n{log_tail(log)}")
            time.sleep(0.1)
        r = subprocess.run([pgbench, "-i", "-s", str(PG_SCALE), "-h",
                            "127.0.0.1", "-p", str(port), "-U", PG_USER,
                            "postgres"], capture_output=True, text=True)
        if r.returncode:
            raise BenchError(f"pgbench -i failed (status {r.returncode}):\n"
                             f"{r.stdout}{r.stderr}")
        print(f"bench: postgres: postgres[{server.pid}] on 127.0.0.1:{port}"
              f", pgbench -i -s {PG_SCALE}; warming up {WARMUP_SECONDS} s",
              flush=True)
        run_pgbench(port, WARMUP_SECONDS)
        about = (f"postgres (fsync off) + pgbench -S -c {PG_CLIENTS} -j "
                 f"{PG_THREADS} over TCP, scale {PG_SCALE}")
        load = Load(lambda secs: run_pgbench(port, secs), port, unit="tps",
                    server="postgres", client="pgbench",
                    db=("postgresql", ("SELECT",), PG_TABLE))
        results, warnings = run_rounds(load, modes_of("postgres"), rounds,
                                       seconds, tmp,
                                       {server.pid, os.getpid()})
        program = program_time_runs("postgres", load, seconds, tmp,
                                    {server.pid, os.getpid()}, warnings)
        return results, warnings, about, program
    finally:
        stop(server)


DB_BENCHES = {"redis": bench_redis, "postgres": bench_postgres}


def bench_kernel(tmp, rounds, seconds):
    """Each path's bound and sonde runs, in interleaved rounds, with BPF
    run statistics on; None without the socket hooks, where there is no
    bound."""
    if not socket_hooks():
        print("bench: kernel: skipped: the bound and this measure need the "
              "socket hooks", flush=True)
        return None, []
    seconds = min(seconds, KERNEL_SECONDS)
    print(f"bench: kernel: {PINGPONG} --split, one side traced, "
          f"{seconds} s runs", flush=True)
    loads = {name: SplitPingpong(flags, side)
             for name, _, flags, side in KERNEL_PATHS}
    loads[KERNEL_BASELINE] = SplitPingpong((), None)
    results = {name: {mode: [] for mode in KERNEL_MODES} for name in loads}
    warnings = []
    with bpf_run_stats():
        for r in range(1, rounds + 1):
            for name, load in loads.items():
                for mode in rotated(KERNEL_MODES, r):
                    res = watched(
                        lambda: RUNNERS[mode](load, seconds, tmp),
                        f"round {r} {name} {mode}", {os.getpid()}, warnings)
                    results[name][mode].append(res)
                    print(f"  round {r}/{rounds} {name:<12} {mode:<5} "
                          f"{res['ns_per_run']:6.1f} ns/run "
                          f"{res['runs_per_exchange']:5.2f} runs/exch"
                          + kernel_counts_line(res, load), flush=True)
    return results, warnings


def kernel_counts_line(res, load):
    if "counted" not in res:
        return ""
    return (f"  counted server {res['counted']:.0f} client "
            f"{res['client_counted']:.0f} of {res['requests']}")


def bench_startup(tmp):
    """STARTS starts of sonde, one after the other."""
    print(f"bench: startup: {SONDE}, {STARTS} starts", flush=True)
    runs, warnings = [], []
    for i in range(1, STARTS + 1):
        res = watched(lambda: time_start(tmp), f"start {i}", {os.getpid()},
                      warnings)
        print(f"  start {i}/{STARTS}  first /metrics {res['metrics_s']:.3f} s"
              f"  /readyz 200 {res['ready_s']:.3f} s", flush=True)
        runs.append(res)
    return {"sonde": runs}, warnings


def route_series(base, port):
    """The /rN routes the nginx on port has series for, and the body."""
    status, text = http_get(base + "/metrics", timeout=10)
    if status != 200:
        raise BenchError(f"sonde's /metrics answered {status}")
    prefix = "http_server_request_duration_seconds_count{"
    return sum(1 for line in text.splitlines()
               if line.startswith(prefix) and 'http_route="/r' in line
               and f'server_port="{port}"' in line), text


def slow_readers(tmp):
    """sonde with SCRAPE_ROUTES series, then SLOW_READERS clients reading
    /metrics a byte a second for SLOW_SECONDS, a normal scrape each
    second."""
    nginx = proc = None
    readers = []
    try:
        nginx, url = start_nginx(tmp, "direct")
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        sport = free_port()
        log = os.path.join(tmp, "sonde.log")
        proc = spawn([SONDE, "--listen", f"127.0.0.1:{sport}",
                      "--hooks", HOOKS[0], "--max-routes", str(2 * SCRAPE_ROUTES),
                      "--max-series", str(3 * SCRAPE_ROUTES)], log)
        base = f"http://127.0.0.1:{sport}"
        wait_http_200(base + "/readyz", proc, "sonde", log)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for i in range(SCRAPE_ROUTES):
            conn.request("GET", f"/r{i}")
            conn.getresponse().read()
        conn.close()
        deadline = time.monotonic() + 30
        while route_series(base, port)[0] < SCRAPE_ROUTES:
            if time.monotonic() > deadline:
                raise BenchError(f"sonde did not reach {SCRAPE_ROUTES} "
                                 "route series in 30 s")
            time.sleep(0.5)
        body = route_series(base, port)[1]
        time.sleep(1)
        idle = memory_kib(proc.pid)["VmRSS"]
        for _ in range(SLOW_READERS):
            s = socket.create_connection(("127.0.0.1", sport), timeout=5)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            readers.append(s)
        peak, scrapes = idle, []
        for _ in range(SLOW_SECONDS):
            for s in readers:
                try:
                    s.recv(1)
                except OSError:
                    pass
            peak = max(peak, memory_kib(proc.pid)["VmRSS"])
            t0 = time.monotonic()
            status, text = http_get(base + "/metrics", timeout=10)
            scrapes.append(time.monotonic() - t0)
            if status != 200 or len(text) < 0.9 * len(body):
                raise BenchError("a scrape among slow readers came back "
                                 f"{status}, {len(text)} bytes")
            peak = max(peak, memory_kib(proc.pid)["VmRSS"])
            time.sleep(1)
        return {"idle_mib": idle / 1024, "peak_mib": peak / 1024,
                "body_mib": len(body) / 2**20,
                "scrape_max_s": max(scrapes),
                "scrape_median_s": statistics.median(scrapes)}
    finally:
        for s in readers:
            s.close()
        stop(proc)
        stop(nginx)


def bench_scrape(tmp):
    print(f"bench: scrape: {BENCH_SCRAPE}, then {SLOW_READERS} slow readers "
          f"of {SCRAPE_ROUTES} series", flush=True)
    out = subprocess.run([BENCH_SCRAPE, *map(str, SCRAPE_SERIES)],
                         capture_output=True, text=True)
    if out.returncode:
        raise BenchError(f"{BENCH_SCRAPE} failed: {out.stderr.strip()}")
    renders = [json.loads(line) for line in out.stdout.splitlines()]
    for r in renders:
        print(f"  {r['series']:>6} series  render {r['render_ms']:7.1f} ms "
              f"{r['bytes'] / 2**20:6.1f} MiB  gzip {r['gzip_ms']:7.1f} ms "
              f"{r['gzip_bytes'] / 2**20:5.2f} MiB", flush=True)
    slow = slow_readers(tmp)
    return {"render": renders, "slow": slow}, []


def scrape_verdicts(s):
    by = {r["series"]: r for r in s["render"]}
    rows = []
    for n, limit in TARGET_RENDER_MS.items():
        if n in by:
            rows.append((f"{n} series plain <= {limit:g} ms",
                         by[n]["render_ms"] <= limit,
                         f"{by[n]['render_ms']:.1f} ms"))
    for n, limit in TARGET_GZIP_SCRAPE_MS.items():
        if n in by:
            ms = by[n]["render_ms"] + by[n]["gzip_ms"]
            rows.append((f"{n} series gzip <= {limit:g} ms", ms <= limit,
                         f"{ms:.1f} ms"))
    slow = s["slow"]
    bound = slow["idle_mib"] + TARGET_SLOW_BODIES * slow["body_mib"]
    rows.append((f"RSS with {SLOW_READERS} slow readers <= idle + "
                 f"{TARGET_SLOW_BODIES} bodies", slow["peak_mib"] <= bound,
                 f"{slow['peak_mib']:.1f} MiB (bound {bound:.1f})"))
    rows.append((f"scrape among them < {TARGET_SLOW_SCRAPE_S:g} s",
                 slow["scrape_max_s"] < TARGET_SLOW_SCRAPE_S,
                 f"{slow['scrape_max_s']:.3f} s"))
    return rows


def print_scrape_report(cfg, s, warnings):
    print()
    print(f"sonde bench, scrape: one /metrics scrape (CPU time, median of "
          f"5 renders); {cfg['cpus']} CPUs, kernel {cfg['kernel']}")
    for r in s["render"]:
        print(f"  {r['series']:>6} series  plain {r['render_ms']:7.1f} ms "
              f"{r['bytes'] / 2**20:6.1f} MiB   gzip +{r['gzip_ms']:6.1f} ms "
              f"{r['gzip_bytes'] / 2**20:5.2f} MiB")
    slow = s["slow"]
    print(f"  {SLOW_READERS} slow readers of a {slow['body_mib']:.1f} MiB "
          f"body: RSS idle {slow['idle_mib']:.1f} MiB, peak "
          f"{slow['peak_mib']:.1f} MiB; a scrape among them "
          f"{slow['scrape_median_s']:.3f} s median, "
          f"{slow['scrape_max_s']:.3f} s max")
    print_verdicts(s, "scrape", warnings)


def run_scenario(name, tmp, rounds, seconds):
    """(results, summary, warnings) of one scenario; None when it does not
    apply to the hooks in use."""
    if name == "startup":
        results, warnings = bench_startup(tmp)
        return results, summarize_startup(results), warnings
    if name == "scrape":
        results, warnings = bench_scrape(tmp)
        return results, results, warnings
    if name == "kernel":
        results, warnings = bench_kernel(tmp, rounds, seconds)
        if results is None:
            return None
        return results, summarize_kernel(results), warnings
    if name in DB_BENCHES:
        ran = DB_BENCHES[name](tmp, rounds, seconds)
        if ran is None:
            return None
        results, warnings, about, program = ran
        return results, dict(summarize(results), load=about,
                             program_ns_per_run={m: spread(v) for m, v
                                                 in program.items()}), \
            warnings
    if name == "bystander":
        results, warnings = bench_bystander(tmp, rounds, seconds)
    elif name == "exchange":
        results, warnings = bench_exchange(tmp, rounds, seconds)
    elif name == "go-tls":
        ran = bench_go_tls(tmp, rounds, seconds)
        if ran is None:
            return None
        results, warnings = ran
    else:
        results, warnings = bench_nginx(tmp, name, rounds, seconds)
    return results, summarize(results), warnings


def on_sigterm(signum, frame):
    raise Interrupted()


def main():
    args = parse_args()
    signal.signal(signal.SIGTERM, on_sigterm)
    names = ALL_SCENARIOS if args.scenario == "all" else [args.scenario]
    rounds = {name: args.rounds
              or ROUNDS_BY_SCENARIO.get(name, DEFAULT_ROUNDS)
              for name in names}
    cfg = {"rounds": rounds, "seconds": args.seconds,
           "wrk": f"-t{WRK_THREADS} -c{WRK_CONNECTIONS}",
           "cpus": os.cpu_count(), "kernel": os.uname().release,
           "hooks": args.hooks}
    done = {}
    try:
        preflight()
        for name in names:
            with tempfile.TemporaryDirectory(prefix="sonde-bench-") as tmp:
                ran = run_scenario(name, tmp, rounds[name], args.seconds)
            if ran:
                done[name] = ran
        for name, (_, summary, warnings) in done.items():
            print_report(dict(cfg, rounds=rounds[name]), name, summary,
                         warnings)
        write_json(cfg, done)
        return 0
    except BenchError as e:
        print(f"bench: error: {e}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, Interrupted):
        print("bench: interrupted; stopping what it started", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
