"""Outgoing calls and TCP-level errors: client-side HTTP series, connect
results and durations, resets, retransmits and active connections, each
attributed to the process that owns the socket."""
import http.client
import os
import random
import socket
import struct
import subprocess
import sys
import textwrap

import pytest

from conftest import (CLIENT, Server, Sonde, bpftool_json, free_port,
                      keepalive_requests, nginx_server, python_server,
                      run_checked, settle, stop_process, total, wait_for)

TOOL = os.path.join(os.path.dirname(__file__), "clients", "tcp_tool.py")


def unique_service(tag):
    return f"{tag}-{os.getpid()}-{random.randrange(1 << 30):x}"


def tool(service, *args, stdin=None, netns=None):
    """Starts tcp_tool.py with its own service name."""
    env = dict(os.environ, OTEL_SERVICE_NAME=service)
    argv = [sys.executable, TOOL, *map(str, args)]
    if netns:
        argv = ["ip", "netns", "exec", netns, *argv]
    return subprocess.Popen(argv, env=env, stdin=stdin,
                            stdout=subprocess.PIPE, text=True)


def finish(proc, timeout=30):
    """The tool's report line; the process is stopped either way."""
    try:
        out, _ = proc.communicate(timeout=timeout)
    finally:
        stop_process(proc)
    return out.strip()


def test_curl_client_series_count_each_request_once(sonde, nginx):
    url = f"http://127.0.0.1:{nginx.port}"
    for _ in range(3):
        # One connection, three requests: two 200s and a 503.
        subprocess.run(["curl", "-s", "-o", "/dev/null", "-o", "/dev/null",
                        "-o", "/dev/null", f"{url}/", f"{url}/users/1",
                        f"{url}/fail"], check=True)
    subprocess.run(["curl", "-s", "-o", "/dev/null", "-I", f"{url}/"],
                   check=True)
    port = nginx.port
    assert settle(sonde, CLIENT + "_count", 10, service_name="curl",
                  server_port=port) == 10
    series = {(lab["http_request_method"], lab["http_response_status_code"],
               lab["server_address"]): v
              for n, lab, v in sonde.samples()
              if n == CLIENT + "_count" and lab["service_name"] == "curl"
              and lab["server_port"] == str(port)}
    assert series == {("GET", "200", "127.0.0.1"): 6,
                      ("GET", "503", "127.0.0.1"): 3,
                      ("HEAD", "200", "127.0.0.1"): 1}
    # The server side saw the same requests, once each.
    assert sum(sonde.series(port).values()) == 10
    # Four connects, all established, each timed.
    assert total(sonde, "sonde_tcp_connects_total", service_name="curl",
                 server_port=port, result="ok") == 4
    assert total(sonde, "sonde_tcp_connect_duration_seconds_count",
                 service_name="curl", server_port=port) == 4


def test_urllib_client_series_one_connection_per_request(sonde, app):
    service = unique_service("urllib")
    out = finish(tool(service, "urllib", app.port, 7))
    assert out == " ".join(["200"] * 7 + ["404", "201"])
    assert settle(sonde, CLIENT + "_count", 9, service_name=service) == 9
    series = {(lab["http_request_method"], lab["http_response_status_code"],
               lab["server_address"], lab["server_port"]): v
              for n, lab, v in sonde.samples()
              if n == CLIENT + "_count" and lab["service_name"] == service}
    port = str(app.port)
    assert series == {("GET", "200", "127.0.0.1", port): 7,
                      ("GET", "404", "127.0.0.1", port): 1,
                      ("POST", "201", "127.0.0.1", port): 1}
    # urllib sends "Connection: close": a connect per request.
    assert total(sonde, "sonde_tcp_connects_total", service_name=service,
                 result="ok") == 9


# Answers every request with its status line in two writes 50 ms apart,
# "HTTP/1.1 2" then the rest: the client's first read gets 10 bytes.
SPLIT_STATUS_SERVER = textwrap.dedent("""
    import socket, sys, threading, time

    def serve(conn):
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = b""
        with conn:
            while True:
                while b"\\r\\n\\r\\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                buf = buf.split(b"\\r\\n\\r\\n", 1)[1]
                conn.sendall(b"HTTP/1.1 2")
                time.sleep(0.05)
                conn.sendall(b"01 Created\\r\\nContent-Length: 2\\r\\n\\r\\nok")

    srv = socket.create_server(("127.0.0.1", int(sys.argv[1])))
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()
""")


def test_status_line_in_pieces_is_put_together(sonde, tmp_path):
    """A status line shorter than 12 bytes in a read (or a write) is kept
    until the rest comes: both sides count each exchange, with its
    status."""
    script = tmp_path / "split.py"
    script.write_text(SPLIT_STATUS_SERVER)
    port = free_port()
    server = Server([sys.executable, str(script), str(port)], port)
    try:
        url = f"http://127.0.0.1:{port}"
        out = subprocess.run(
            ["curl", "-s", "-w", "%{http_code}\n", "-o", "/dev/null",
             "-o", "/dev/null", "-o", "/dev/null", f"{url}/a/1",
             f"{url}/a/2", f"{url}/b"],
            check=True, capture_output=True, text=True, timeout=30).stdout
        assert out.split() == ["201"] * 3
        assert settle(sonde, CLIENT + "_count", 3, service_name="curl",
                      server_port=port) == 3
        assert total(sonde, CLIENT + "_count", service_name="curl",
                     server_port=port, http_response_status_code=201) == 3
        assert sonde.settled_series(port, 3) == {
            ("GET", "201", "/a/{id}"): 2, ("GET", "201", "/b"): 1}
    finally:
        server.stop()


PROXY_SERVER = """
    server {{
        listen 127.0.0.1:{port};
        location / {{ proxy_pass http://127.0.0.1:{backend}; }}
    }}"""


def test_reverse_proxy_counts_backend_proxy_and_upstream_call_once(
        sonde, tmp_path):
    backend = python_server(free_port())
    try:
        port = free_port()
        proxy = nginx_server(tmp_path, port, PROXY_SERVER.format(
            port=port, backend=backend.port))
        try:
            paths = ["/users/1", "/status/404", "/users/2", "/"] * 3
            statuses = keepalive_requests(port, paths, connections=2)
            assert statuses == [200, 404, 200, 200] * 3
            assert sum(sonde.settled_series(backend.port, 12).values()) == 12
            assert sonde.settled_series(port, 12) == {
                ("GET", "200", "/users/{id}"): 6,
                ("GET", "404", "/status/{id}"): 3,
                ("GET", "200", "/"): 3}
            assert settle(sonde, CLIENT + "_count", 12,
                          service_name="nginx",
                          server_port=backend.port) == 12
            assert total(sonde, CLIENT + "_count", service_name="nginx",
                         server_port=backend.port,
                         http_response_status_code=404) == 3
        finally:
            proxy.stop()
    finally:
        backend.stop()


def test_connect_to_a_closed_port_is_refused(sonde):
    service = unique_service("refused")
    port = free_port()
    out = finish(tool(service, "connect", "127.0.0.1", port, 5))
    assert out == "failed ConnectionRefusedError"
    assert settle(sonde, "sonde_tcp_connects_total", 1, service_name=service,
                  result="refused") == 1
    assert total(sonde, "sonde_tcp_connects_total",
                 service_name=service) == 1
    assert total(sonde, "sonde_tcp_connect_duration_seconds_count",
                 service_name=service) == 0
    # The reset that refused it is not also counted as a reset.
    assert total(sonde, "sonde_tcp_resets_total", service_name=service) == 0


def test_unanswered_connects_count_as_timeout_and_aborted(sonde, netns):
    netns.drop_input("tcp dport 80")
    kernel = unique_service("timeout")
    gave_up = unique_service("aborted")
    # The kernel gives up after one SYN retry (~3 s); the other client gives
    # up by itself after 0.5 s and closes the socket.
    p1 = tool(kernel, "connect", netns.ns_ip, 80, 0)
    p2 = tool(gave_up, "connect", netns.ns_ip, 80, 0.5)
    assert finish(p2) == "failed TimeoutError"
    assert finish(p1) == "failed TimeoutError"
    assert settle(sonde, "sonde_tcp_connects_total", 1, service_name=kernel,
                  server_address=netns.ns_ip, server_port=80,
                  result="timeout") == 1
    assert settle(sonde, "sonde_tcp_connects_total", 1,
                  service_name=gave_up, server_address=netns.ns_ip,
                  server_port=80, result="aborted") == 1
    for service in (kernel, gave_up):
        assert total(sonde, "sonde_tcp_connects_total",
                     service_name=service) == 1


def test_linger_zero_close_counts_a_reset_on_each_side(sonde):
    server, client = unique_service("rst-srv"), unique_service("rst-cli")
    port = free_port()
    srv = tool(server, "linger-server", port)
    try:
        assert srv.stdout.readline().strip() == "listening"
        assert finish(tool(client, "linger-client", port)) == "reset"
        assert finish(srv) == "reset"
    finally:
        stop_process(srv)
    assert settle(sonde, "sonde_tcp_resets_total", 1, service_name=server,
                  direction="sent") == 1
    assert settle(sonde, "sonde_tcp_resets_total", 1, service_name=client,
                  direction="received") == 1
    assert total(sonde, "sonde_tcp_resets_total", service_name=server,
                 direction="received") == 0
    assert total(sonde, "sonde_tcp_resets_total", service_name=client,
                 direction="sent") == 0


def test_lossy_link_retransmits_are_charged_to_the_sender(sonde, netns):
    # One incoming segment in ten is dropped inside the namespace, so the
    # host-side sender has to retransmit: some 180 segments of 1448 bytes
    # all get through at once with odds of 0.9^180, 5e-9. One in five
    # stalled the transfer now and then: the same segment dropped seven
    # times running backs the retransmission timer off past the tool's
    # 30 s (about 1% of runs at 700 segments).
    nbytes = 1 << 18
    netns.one_segment_per_packet()
    netns.drop_input("tcp dport 5001 numgen random mod 10 == 0")
    sender, receiver = unique_service("sender"), unique_service("receiver")
    sink = tool(receiver, "sink", netns.ns_ip, 5001, netns=netns.name)
    try:
        assert sink.stdout.readline().strip() == "listening"
        assert finish(tool(sender, "send", netns.ns_ip, 5001, nbytes),
                      timeout=60) == f"sent {nbytes}"
        assert finish(sink) == f"received {nbytes}"
    finally:
        stop_process(sink)
    wait_for(lambda: total(sonde, "sonde_tcp_retransmits_total",
                           service_name=sender) > 0, 10,
             what="retransmits for the sender")
    assert total(sonde, "sonde_tcp_connects_total", service_name=sender,
                 server_address=netns.ns_ip, result="ok") == 1


def test_active_connections_follow_held_keepalive_connections(sonde, app):
    service = unique_service("holder")
    active = "sonde_tcp_active_connections"
    before = total(sonde, active, service_name=service, role="client")
    holder = tool(service, "hold", app.port, 20, stdin=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert settle(sonde, active, 20, service_name=service,
                      role="client") == 20
        holder.stdin.write("close\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "closed"
        wait_for(lambda: total(sonde, active, service_name=service,
                               role="client") == before, 10,
                 what="active connections back to where they were")
    finally:
        stop_process(holder)
    assert before == 0
    assert total(sonde, "sonde_tcp_connects_total", service_name=service,
                 result="ok") == 20
    assert total(sonde, CLIENT + "_count", service_name=service,
                 server_port=app.port) == 20


def connect_many(port, n, line=None):
    """n connections to port, each sending line (and reading the answer)
    when one is given."""
    socks = []
    try:
        for _ in range(n):
            c = socket.create_connection(("127.0.0.1", port), timeout=10)
            socks.append(c)
            if line:
                c.sendall(line)
                assert c.recv(100) == b"ok\n"
    except BaseException:
        close_all(socks)
        raise
    return socks


def close_all(socks):
    for c in socks:
        c.close()


def say(proc, line, expect):
    proc.stdin.write(line + "\n")
    proc.stdin.flush()
    assert proc.stdout.readline().strip() == expect


ACTIVE = "sonde_tcp_active_connections"


def test_accepted_connections_are_active_before_their_first_read():
    """A server that was listening before sonde started accepts 20
    connections and reads none: they are its active connections from
    the start (a listener is found at start, and charged with what it
    accepts until a process reads or writes)."""
    service = unique_service("unread")
    port = free_port()
    server = tool(service, "idle-server", port, 20, 1, stdin=subprocess.PIPE)
    socks = []
    try:
        assert server.stdout.readline().strip() == "listening"
        sonde = Sonde()
        try:
            socks = connect_many(port, 20)
            assert server.stdout.readline().strip() == "accepted"
            assert settle(sonde, ACTIVE, 20, service_name=service,
                          role="server") == 20
            close_all(socks)
            wait_for(lambda: total(sonde, ACTIVE, service_name=service,
                                   role="server") == 0, 10,
                     what="active connections back to 0")
            say(server, "close", "closed")
            assert total(sonde, "sonde_tcp_resets_total",
                         service_name=service) == 0
        finally:
            assert sonde.stop() == 0
    finally:
        close_all(socks)
        stop_process(server)


def test_a_listener_closed_on_unaccepted_connections_resets_them_as_its_own():
    """Connections in a listener's backlog, never accepted: under socket
    hooks they are its process's active connections, and when it closes
    the listener the resets the kernel sends them are charged to it."""
    sonde = Sonde("--hooks", "socket")
    service = unique_service("backlog")
    port = free_port()
    server = tool(service, "idle-server", port, 0, 0, stdin=subprocess.PIPE)
    socks = []
    try:
        assert server.stdout.readline().strip() == "listening"
        socks = connect_many(port, 5)
        assert settle(sonde, ACTIVE, 5, service_name=service,
                      role="server") == 5
        say(server, "close", "closed")
        for c in socks:
            with pytest.raises(ConnectionResetError):
                c.recv(100)
        assert settle(sonde, "sonde_tcp_resets_total", 5,
                      service_name=service, direction="sent") == 5
        wait_for(lambda: total(sonde, ACTIVE, service_name=service,
                               role="server") == 0, 10,
                 what="active connections back to 0")
    finally:
        close_all(socks)
        stop_process(server)
        assert sonde.stop() == 0


def test_a_connection_moves_to_the_worker_that_reads_it(sonde):
    """A parent listens and hands the listener to a worker (another
    service name) that accepts and answers: once answered, the
    connections are the worker's, not the parent's, and counted once."""
    parent, child = unique_service("parent"), unique_service("worker")
    port = free_port()
    server = tool(parent, "spawn-worker", port, child, 10,
                  stdin=subprocess.PIPE)
    socks = []
    try:
        assert server.stdout.readline().strip() == "listening"
        socks = connect_many(port, 10, b"hello\n")
        assert server.stdout.readline().strip() == "accepted"
        assert settle(sonde, ACTIVE, 10, service_name=child,
                      role="server") == 10
        assert total(sonde, ACTIVE, service_name=parent, role="server") == 0
        close_all(socks)
        wait_for(lambda: total(sonde, ACTIVE, service_name=child,
                               role="server") == 0, 10,
                 what="active connections back to 0")
        say(server, "close", "closed")
    finally:
        close_all(socks)
        stop_process(server)


def accepted_owner(peer_port):
    """The socks entry of an accepted socket whose peer is peer_port;
    None until there is one."""
    for entry in bpftool_json("map", "dump", "name", "socks"):
        value = entry.get("formatted", {}).get("value", {})
        if value.get("dport") == peer_port and value.get("role") == 1:
            return entry
    return None


# struct sock_owner: syn_ns, tgid, fd, dport, role, active, closed,
# by_listener.
SOCK_OWNER = "<QIIHBBBB"


def test_an_owner_left_by_a_missed_close_does_not_decide_a_new_socket(app):
    """The kernel skips a program while another BPF program holds the CPU
    (a softirq closing a socket inside one), and a freed socket's memory
    is soon another's. What sonde knew of the old socket, here a client of
    another process, must not make the new one's server a client: its
    request is counted."""
    sonde = Sonde("--hooks", "socket")
    conn = http.client.HTTPConnection("127.0.0.1", app.port, timeout=10)
    try:
        conn.connect()
        port = conn.sock.getsockname()[1]
        entry = wait_for(lambda: accepted_owner(port), 10,
                         what="the accepted socket's owner entry")
        value = bytearray(int(b, 16) for b in entry["value"])
        # A server's (role 1) that no process has used yet, charged to
        # the process found listening when sonde started, and active.
        known = struct.unpack_from(SOCK_OWNER, value)
        assert known == (0, app.proc.pid, 0, port, 1, 1, 0, 1)
        # A connected client's entry (role 2) owned by init, peer port 443.
        struct.pack_into(SOCK_OWNER, value, 0, 1, 1, 3, 443, 2, 1, 0, 0)
        run_checked("bpftool", "map", "update", "name", "socks", "key",
                    "hex", *(b[2:] for b in entry["key"]), "value", "hex",
                    *("%02x" % b for b in value))
        conn.request("GET", "/fresh")
        assert conn.getresponse().read() == b"/fresh\n"
        assert sonde.settled_series(app.port, 1) == {
            ("GET", "200", "/fresh"): 1}
    finally:
        conn.close()
        assert sonde.stop() == 0


def test_peer_addresses_are_capped_per_service():
    capped = Sonde("--max-peers", "2")
    try:
        service = unique_service("peers")
        port = free_port()
        for host in range(2, 7):
            out = finish(tool(service, "connect", f"127.0.0.{host}", port, 5))
            assert out == "failed ConnectionRefusedError"
        assert settle(capped, "sonde_tcp_connects_total", 5,
                      service_name=service, result="refused") == 5
        peers = {lab["server_address"]: v for n, lab, v in capped.samples()
                 if n == "sonde_tcp_connects_total"
                 and lab["service_name"] == service}
        assert peers == {"127.0.0.2": 1, "127.0.0.3": 1, "_overflow": 3}
        assert total(capped, "sonde_peer_overflows_total",
                     service_name=service) == 3
    finally:
        assert capped.stop() == 0
