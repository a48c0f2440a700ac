"""Function latency through uprobes: --uprobe BINARY:SYMBOL on programs
built here with the system cc, counts and buckets read from a live scrape."""
import os
import subprocess

import pytest

from conftest import SONDE, Sonde, check_buckets, free_port, wait_for

FAMILY = "sonde_function_duration_seconds"

# slow() sleeps 30 ms, quick() 2 ms; main calls them the number of times
# given on its command line and prints how long each call took, read on
# the clock sonde's probes read (CLOCK_MONOTONIC) just outside the call.
PROGRAM = r"""
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static void pause_ms(long ms)
{
    struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&t, &t))
        ;
}

__attribute__((noinline)) int slow(int x) { pause_ms(30); return x + 1; }
__attribute__((noinline)) int quick(int x) { pause_ms(2); return x * 2; }

static long long now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(int argc, char **argv)
{
    int n_slow = atoi(argv[1]), n_quick = atoi(argv[2]), acc = 0;
    long long t;
    for (int i = 0; i < n_slow; i++) {
        t = now_ns();
        acc += slow(i);
        printf("slow %lld\n", now_ns() - t);
    }
    for (int i = 0; i < n_quick; i++) {
        t = now_ns();
        acc += quick(i);
        printf("quick %lld\n", now_ns() - t);
    }
    return acc < 0;
}
"""


def build(tmp_path, name, *flags):
    src = tmp_path / "prog.c"
    src.write_text(PROGRAM)
    exe = tmp_path / name
    subprocess.run(["cc", "-O1", *flags, "-o", str(exe), str(src)],
                   check=True)
    return exe


def function_series(sonde, service, suffix):
    out = {}
    for name, labels, value in sonde.samples():
        if name == FAMILY + suffix and labels["service_name"] == service:
            key = labels["function"]
            if suffix == "_bucket":
                key = (labels["function"], labels["le"])
            out[key] = value
    return out


def run_calls(exe, env, n_slow, n_quick):
    """Runs the program; returns each function's call durations in seconds
    as the program saw them from outside the call."""
    out = subprocess.run([str(exe), str(n_slow), str(n_quick)], check=True,
                         timeout=30, env=env, capture_output=True,
                         text=True).stdout
    seen = {"slow": [], "quick": []}
    for line in out.splitlines():
        fn, ns = line.split()
        seen[fn].append(int(ns) / 1e9)
    assert [len(seen["slow"]), len(seen["quick"])] == [n_slow, n_quick]
    return seen


def settled_counts(sonde, service, expect):
    def reached():
        got = function_series(sonde, service, "_count")
        return got if got == expect else None

    try:
        return wait_for(reached, timeout=10, what=f"{expect} calls")
    except AssertionError:
        raise AssertionError(f"expected {expect}, got "
                             f"{function_series(sonde, service, '_count')}")


@pytest.mark.parametrize("flags", [["-fPIE", "-pie"], ["-fno-pie", "-no-pie"]],
                         ids=["pie", "nopie"])
def test_every_call_lands_in_its_bucket(tmp_path, flags):
    name = "fnlat_" + flags[-1].strip("-").replace("-", "")
    exe = build(tmp_path, name, *flags)
    # A busy VM once took over 25 ms for a 2 ms sleep: what the program
    # timed around each call bounds the buckets (check_buckets).
    sonde = Sonde("--uprobe", f"{exe}:slow", "--uprobe", f"{exe}:quick",
                  "--no-tls", "--label", "service_namespace",
                  "--buckets", "0.001,0.025,0.1,1")
    env = dict(os.environ, OTEL_RESOURCE_ATTRIBUTES="service.namespace=lab")
    try:
        attached = {labels["target"]: v for n, labels, v in sonde.samples()
                    if n == "sonde_uprobe_attached"}
        assert attached == {f"{exe}:slow": 1, f"{exe}:quick": 1}
        seen = run_calls(exe, env, 7, 5)
        settled_counts(sonde, name, {"slow": 7, "quick": 5})
        # The process's optional identity label is on its series.
        assert {labels.get("service_namespace")
                for n, labels, _ in sonde.samples()
                if n == FAMILY + "_count" and
                labels["service_name"] == name} == {"lab"}
        buckets = function_series(sonde, name, "_bucket")
        # Each call took more than its sleep and at most what the program
        # timed around it: on a quiet VM, 30 ms calls in (0.025, 0.1] and
        # 2 ms ones in (0.001, 0.025], exactly.
        for fn, least in (("slow", 0.030), ("quick", 0.002)):
            check_buckets({le: v for (f, le), v in buckets.items()
                           if f == fn},
                          [(least, d) for d in seen[fn]], fn + " buckets")
        sums = function_series(sonde, name, "_sum")
        assert 7 * 0.030 <= sums["slow"] <= sum(seen["slow"])
        assert 5 * 0.002 <= sums["quick"] <= sum(seen["quick"])
        # A second run adds exactly its calls.
        run_calls(exe, env, 3, 0)
        settled_counts(sonde, name, {"slow": 10, "quick": 5})
    finally:
        assert sonde.stop() == 0, sonde.output()


@pytest.mark.parametrize("spec,message", [
    ("/nonexistent/bin/x:main", "--uprobe /nonexistent/bin/x:main: no such "
     "binary '/nonexistent/bin/x'"),
    ("{exe}:no_such_fn", "--uprobe {exe}:no_such_fn: {exe} defines no "
     "function 'no_such_fn'"),
    ("{exe}", "--uprobe: '{exe}' is not BINARY:SYMBOL"),
    ("{exe}:", "--uprobe: '{exe}:' is not BINARY:SYMBOL"),
    ("{src}:main", "--uprobe {src}:main: cannot read {src}: not an ELF file "
     "with symbols"),
])
def test_bad_targets_are_one_line_errors(tmp_path, spec, message):
    exe = build(tmp_path, "fnlat_err")
    fmt = {"exe": exe, "src": tmp_path / "prog.c"}
    r = subprocess.run([SONDE, "--listen", f"127.0.0.1:{free_port()}",
                        "--uprobe", spec.format(**fmt)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert r.stderr == "sonde: " + message.format(**fmt) + "\n"


def test_binary_is_found_in_path(tmp_path):
    """'ls:main' style: a bare name is looked up in PATH, like a shell."""
    r = subprocess.run([SONDE, "--listen", f"127.0.0.1:{free_port()}",
                        "--uprobe", "sh:no_such_fn_in_sh"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert "defines no function 'no_such_fn_in_sh'" in r.stderr
    assert "/sh " in r.stderr
