"""sonde watching itself: each BPF program's runs, run time and recursion
misses, and how full its BPF hash maps are, read from a live scrape and
checked against what the kernel says."""
import os
import re
import signal
import subprocess
import sys

from conftest import (ROOT, Sonde, bpftool_json, client_series, free_port,
                      keepalive_requests, python_server, stop_process, total,
                      wait_for)

CLIENTS = os.path.join(os.path.dirname(__file__), "clients")
TCP_TOOL = os.path.join(CLIENTS, "tcp_tool.py")


def by_label(sonde, name, key):
    """{value of label key: sample} for the samples of name."""
    return {lab[key]: v for n, lab, v in sonde.samples() if n == name}


def per_program(sonde, name):
    return by_label(sonde, name, "program")


def hold_connections(port, n):
    """tcp_tool.py holding n keep-alive connections to port; they close
    when a line is written to its stdin."""
    holder = subprocess.Popen(
        [sys.executable, TCP_TOOL, "hold", str(port), str(n)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
    except BaseException:
        stop_process(holder)
        raise
    return holder


def bpf_stats_sysctl_on():
    with open("/proc/sys/kernel/bpf_stats_enabled") as f:
        return f.read().strip() != "0"


def test_program_runs_are_counted_with_bpf_stats_only(nginx):
    paths = ["/"] * 30
    plain = Sonde()
    try:
        keepalive_requests(nginx.port, paths, connections=3)
        runs = per_program(plain, "sonde_program_runs_total")
        seconds = per_program(plain, "sonde_program_run_seconds_total")
    finally:
        assert plain.stop() == 0
    # Every loaded program is listed, tracepoints and OpenSSL probes.
    # nginx reads with recv(): under socket hooks, one program sees every
    # read and write, and connections are learnt from their state changes;
    # under syscall hooks one program sees the eight read and write
    # syscalls, another both accepts.
    if "sock_io" in runs:
        reads, conns = "sock_io", "sock_set_state"
    else:
        reads, conns = "sys_exit_io", "sys_exit_accept"
    assert {reads, conns, "tcp_retransmit", "ssl_entry", "tls_plain"} <= \
        set(runs)
    assert set(seconds) == set(runs)
    if not bpf_stats_sysctl_on():
        # Counting costs every BPF program on the host: off by default.
        assert set(runs.values()) == {0}
        assert set(seconds.values()) == {0}

    counted = Sonde("--bpf-stats")
    try:
        before = per_program(counted, "sonde_program_runs_total")
        keepalive_requests(nginx.port, paths, connections=3)
        runs = per_program(counted, "sonde_program_runs_total")
        seconds = per_program(counted, "sonde_program_run_seconds_total")
        kernel = [p.get("run_cnt", 0) for p in bpftool_json("prog", "show")
                  if p.get("name") == reads]
    finally:
        assert counted.stop() == 0
    # nginx read 30 requests with recv() and accepted 3 connections.
    assert runs[reads] - before[reads] >= 30
    assert runs[conns] - before[conns] >= 3
    assert seconds[reads] > 0
    # The scrape came before bpftool looked: the kernel's count can only
    # have grown since.
    assert any(0 < runs[reads] <= k for k in kernel)
    # The statistics end with the sonde that asked for them.
    if not bpf_stats_sysctl_on():
        again = Sonde()
        try:
            keepalive_requests(nginx.port, paths, connections=3)
            assert set(per_program(again, "sonde_program_runs_total")
                       .values()) == {0}
        finally:
            assert again.stop() == 0


def build_busy_bpf(tmp_path):
    """Compiles the long-running neighbour program and its loader."""
    obj, exe = tmp_path / "busy_bpf.bpf.o", tmp_path / "busy_bpf"
    subprocess.run(["clang", "-g", "-O2", "-target", "bpf",
                    "-I", os.path.join(ROOT, "vmlinux", "x86"),
                    "-c", os.path.join(CLIENTS, "busy_bpf.bpf.c"),
                    "-o", str(obj)], check=True)
    subprocess.run(["cc", "-O1", "-o", str(exe),
                    os.path.join(CLIENTS, "busy_bpf.c"), "-lbpf"],
                   check=True)
    return exe, obj


def test_programs_skipped_under_another_bpf_program_are_counted(
        sonde, tmp_path, netns_drop_syn):
    ns_ip = netns_drop_syn
    exe, obj = build_busy_bpf(tmp_path)
    assert per_program(sonde, "sonde_program_recursion_misses_total")[
        "tcp_retransmit"] == 0
    busy = subprocess.Popen([str(exe), str(obj), "6"], stdout=subprocess.PIPE,
                            text=True)
    connects = []
    try:
        assert busy.stdout.readline().strip() == "busy"
        # Four connects nobody answers: their SYNs are sent again from the
        # retransmit timer (after 1 s and 3 s), in softirq context, most
        # likely while a CPU is inside busy_bpf's program. Each client
        # gives up after 3.5 s.
        connects = [subprocess.Popen(
            [sys.executable, TCP_TOOL, "connect", ns_ip, "80", "3.5"],
            stdout=subprocess.PIPE, text=True) for _ in range(4)]
        for c in connects:
            out, _ = c.communicate(timeout=30)
            assert out.strip() == "failed TimeoutError"
        out, _ = busy.communicate(timeout=30)
    finally:
        for c in connects:
            stop_process(c)
        stop_process(busy)
    misses = per_program(sonde, "sonde_program_recursion_misses_total")
    assert misses["tcp_retransmit"] > 0, out
    # The same count the kernel keeps for the program (another sonde on
    # the host would have its own tcp_retransmit).
    kernel = [p.get("recursion_misses", 0)
              for p in bpftool_json("prog", "show")
              if p.get("name") == "tcp_retransmit"]
    assert misses["tcp_retransmit"] in kernel


def test_map_fill_follows_connections(sonde):
    app = python_server(free_port())
    holder = None
    try:
        conns = {"map": "conns"}
        assert total(sonde, "sonde_map_max_entries", **conns) == 32768
        assert total(sonde, "sonde_map_max_entries", map="socks") == 32768
        # A fresh sonde: the scrape's own connection, little else.
        assert total(sonde, "sonde_map_entries", **conns) < 40
        holder = hold_connections(app.port, 20)
        # 20 connections on each side; the count is refreshed every 5 s.
        wait_for(lambda: total(sonde, "sonde_map_entries", **conns)
                 >= 40, 15, what="40 tracked connections")
        held = total(sonde, "sonde_map_entries", **conns)
        assert total(sonde, "sonde_map_entries", map="socks") >= 40
        holder.stdin.write("close\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "closed"
        # close() forgets a connection at once.
        wait_for(lambda: total(sonde, "sonde_map_entries", **conns)
                 <= held - 40, 15, what="the closed connections forgotten")
    finally:
        if holder:
            stop_process(holder)
        app.stop()


def owners(map_name, part, field):
    """How many entries of a BPF map each task owns, from bpftool's dump
    (part is "key" or "value": where field holds the task id). An entry
    removed between bpftool's key walk and its lookup comes with an
    "error" instead of its fields: it is gone, and not counted."""
    counts = {}
    for entry in bpftool_json("map", "dump", "name", map_name):
        if "formatted" not in entry:
            continue
        task = entry["formatted"][part][field]
        counts[task] = counts.get(task, 0) + 1
    return counts


def test_socket_hooks_forget_a_killed_process():
    """A process killed with its connections open never calls close().
    Socket hooks see no fd that is not a socket, and the kernel's
    destruction of the sockets removes the connections and their
    owners."""
    sonde = Sonde("--hooks", "socket")
    app = python_server(free_port())
    holder = None
    try:
        holder = hold_connections(app.port, 20)
        pid = holder.pid
        assert owners("conns", "key", "tgid").get(pid, 0) >= 20
        assert owners("socks", "value", "tgid").get(pid, 0) >= 20
        assert pid not in owners("skip_fds", "key", "tgid")
        holder.kill()
        holder.wait()
        wait_for(lambda: pid not in owners("conns", "key", "tgid")
                 and pid not in owners("socks", "value", "tgid"),
                 15, what="the killed process's entries removed")
        assert owners("conns", "key", "tgid").get(app.proc.pid, 0) < 20
    finally:
        if holder:
            stop_process(holder)
        app.stop()
        assert sonde.stop() == 0


def test_sweep_removes_entries_of_a_killed_process():
    """The same under syscall hooks, which never see the close: sonde's
    sweep removes the (process, fd) entries, the kernel's destruction of
    the sockets their owners."""
    sonde = Sonde("--hooks", "syscall")
    app = python_server(free_port())
    holder = None
    try:
        removed = {m: total(sonde, "sonde_map_entries_removed_total", map=m)
                   for m in ("conns", "skip_fds")}
        holder = hold_connections(app.port, 20)
        pid = holder.pid
        # The holder's 20 connections and its stdin and stdout are known.
        assert owners("conns", "key", "tgid").get(pid, 0) >= 20
        assert owners("skip_fds", "key", "tgid").get(pid, 0) >= 1
        assert owners("socks", "value", "tgid").get(pid, 0) >= 20
        held = wait_for(lambda: total(sonde, "sonde_map_entries",
                                      map="conns") >= 20 and
                        total(sonde, "sonde_map_entries", map="conns"),
                        10, what="the connections in the count")

        holder.kill()
        holder.wait()
        # The sweep runs every 5 s; the sockets go once the server closes
        # its ends.
        wait_for(lambda: pid not in owners("conns", "key", "tgid")
                 and pid not in owners("skip_fds", "key", "tgid")
                 and pid not in owners("socks", "value", "tgid"),
                 15, what="the killed process's entries removed")
        wait_for(lambda: total(sonde, "sonde_map_entries_removed_total",
                               map="conns") >= removed["conns"] + 20,
                 10, what="the removals counted")
        assert total(sonde, "sonde_map_entries_removed_total",
                     map="skip_fds") >= removed["skip_fds"] + 1
        # The gauge follows: the 20 connections are gone from it.
        wait_for(lambda: total(sonde, "sonde_map_entries", map="conns")
                 <= held - 20, 10, what="the map's count to fall")
        # The server, alive, kept nothing of the closed connections.
        assert owners("conns", "key", "tgid").get(app.proc.pid, 0) < 20
    finally:
        if holder:
            stop_process(holder)
        app.stop()
        assert sonde.stop() == 0


def test_connection_maps_take_their_size_from_the_flag(nginx):
    sized = Sonde("--max-tracked-connections", "4096")
    try:
        statuses = keepalive_requests(nginx.port, ["/"] * 12, connections=3)
        assert statuses == [200] * 12
        # The maps still work at their new size: every request counted.
        assert sum(sized.settled_series(nginx.port, 12).values()) == 12
        sizes = by_label(sized, "sonde_map_max_entries", "map")
        kernel = {m["name"]: m["max_entries"]
                  for m in bpftool_json("map", "show")
                  if m.get("name") in sizes}
    finally:
        assert sized.stop() == 0
    for name in ("conns", "socks", "tls_fds"):
        assert sizes[name] == 4096, name
        assert kernel[name] == 4096, name
    # Maps keyed by fd or process keep their built-in sizes.
    assert sizes["skip_fds"] == kernel["skip_fds"] == 32768
    assert sizes["procs"] == 16384


def test_a_full_exchange_ring_drops_and_counts_what_it_cannot_hold(nginx):
    """While the daemon is stopped, nothing drains the per-CPU rings: wrk's
    load fills them, and every exchange after that is dropped, never
    waited for. Each request is then either counted (nginx's server side,
    wrk's client side) or in ringbuf_full, exactly."""
    s = Sonde()
    try:
        os.kill(s.proc.pid, signal.SIGSTOP)
        try:
            out = subprocess.run(
                ["wrk", "-t1", "-c4", "-d2s",
                 f"http://127.0.0.1:{nginx.port}/"],
                capture_output=True, text=True, timeout=60).stdout
        finally:
            os.kill(s.proc.pid, signal.SIGCONT)
        done = int(re.search(r"(\d+) requests in", out).group(1))
        # More than two 2 MiB rings of 128- and 176-byte records hold.
        assert done > 40000, out

        def accounted():
            got = (sum(s.series(nginx.port).values()) +
                   sum(client_series(s, nginx.port, "wrk").values()) +
                   total(s, "sonde_events_dropped_total",
                         reason="ringbuf_full"))
            return got if got >= 2 * done else None

        # A request in flight when wrk stopped was answered, and its
        # status line maybe read, but not counted by wrk: at most both of
        # its exchanges per connection.
        got = wait_for(accounted, 15, what="every exchange accounted for")
        assert got <= 2 * done + 2 * 4
        assert total(s, "sonde_events_dropped_total",
                     reason="ringbuf_full") > 0
        assert total(s, "sonde_events_dropped_total", reason="ring_busy") == 0
    finally:
        os.kill(s.proc.pid, signal.SIGCONT)
        assert s.stop() == 0, s.output()
