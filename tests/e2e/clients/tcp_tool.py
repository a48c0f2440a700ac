"""Small TCP clients and servers for the TCP lifecycle tests.

    tcp_tool.py connect HOST PORT TIMEOUT   one connect; TIMEOUT 0 means
                                            blocking with the kernel giving
                                            up after one SYN retry
    tcp_tool.py linger-server PORT          accepts one connection, reads a
                                            line, closes with SO_LINGER 0
    tcp_tool.py send HOST PORT BYTES        sends BYTES, waits for the peer
                                            to close
    tcp_tool.py sink HOST PORT              accepts one connection and reads
                                            it to the end
    tcp_tool.py hold PORT N                 opens N keep-alive HTTP
                                            connections, one request each,
                                            prints "held", closes them when
                                            a line arrives on stdin
    tcp_tool.py idle-server PORT N ACCEPT   listens; with ACCEPT 1 accepts
                                            N connections and prints
                                            "accepted" (never reading);
                                            closes all when a line
                                            arrives on stdin
    tcp_tool.py spawn-worker PORT SERVICE N listens, then runs a worker
                                            (named SERVICE) with the
                                            listening fd that accepts N
                                            connections, answers a line
                                            on each, prints "accepted"
                                            and closes them when a line
                                            arrives on stdin
    tcp_tool.py urllib PORT N               with urllib.request, one
                                            connection per request: N GETs
                                            of /users/N, a GET answered
                                            404 and a POST; prints the
                                            statuses

Each prints one line saying what happened, and stays alive a moment at the
end so the agent can still read its environment (the service name).
"""
import http.client
import os
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request

LINGER = 0.7


def connect(host, port, timeout):
    s = socket.socket()
    if timeout == 0:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_SYNCNT, 1)
    else:
        s.settimeout(timeout)
    try:
        s.connect((host, port))
        print("connected", flush=True)
    except OSError as e:
        print("failed", type(e).__name__, flush=True)
    s.close()


def linger_server(port):
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen()
    print("listening", flush=True)
    srv.settimeout(20)
    conn, _ = srv.accept()
    conn.settimeout(20)
    conn.recv(100)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                    struct.pack("ii", 1, 0))
    conn.close()
    srv.close()
    print("reset", flush=True)


def linger_client(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    s.sendall(b"hello\n")
    try:
        data = s.recv(100)
        print("closed" if not data else "data", flush=True)
    except ConnectionResetError:
        print("reset", flush=True)
    s.close()


def send(host, port, nbytes):
    s = socket.create_connection((host, port), timeout=30)
    chunk = b"x" * 65536
    left = nbytes
    while left > 0:
        n = s.send(chunk[:left])
        left -= n
    s.shutdown(socket.SHUT_WR)
    s.recv(1)
    s.close()
    print("sent", nbytes, flush=True)


def sink(host, port):
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, port))
    srv.listen()
    print("listening", flush=True)
    srv.settimeout(30)
    conn, _ = srv.accept()
    conn.settimeout(30)
    total = 0
    while True:
        data = conn.recv(65536)
        if not data:
            break
        total += len(data)
    conn.close()
    srv.close()
    print("received", total, flush=True)


def hold(port, n):
    conns = []
    for _ in range(n):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/held")
        c.getresponse().read()
        conns.append(c)
    print("held", flush=True)
    sys.stdin.readline()
    for c in conns:
        c.close()
    print("closed", flush=True)


def listener(port):
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(64)
    print("listening", flush=True)
    return srv


def idle_server(port, n, accept):
    srv = listener(port)
    srv.settimeout(20)
    conns = [srv.accept()[0] for _ in range(n if accept else 0)]
    if accept:
        print("accepted", flush=True)
    sys.stdin.readline()
    for c in conns:
        c.close()
    srv.close()
    print("closed", flush=True)


def spawn_worker(port, service, n):
    srv = listener(port)
    env = dict(os.environ, OTEL_SERVICE_NAME=service)
    worker = subprocess.Popen(
        [sys.executable, __file__, "worker", str(srv.fileno()), str(n)],
        pass_fds=(srv.fileno(),), env=env)
    worker.wait(timeout=60)
    srv.close()


def worker(fd, n):
    srv = socket.socket(fileno=fd)
    srv.settimeout(20)
    conns = []
    for _ in range(n):
        conn = srv.accept()[0]
        conn.settimeout(20)
        conn.recv(100)
        conn.sendall(b"ok\n")
        conns.append(conn)
    print("accepted", flush=True)
    sys.stdin.readline()
    for c in conns:
        c.close()
    print("closed", flush=True)


def fetch_with_urllib(port, n):
    base = f"http://127.0.0.1:{port}"
    requests = [urllib.request.Request(f"{base}/users/{i}")
                for i in range(n)]
    requests.append(urllib.request.Request(f"{base}/status/404"))
    requests.append(urllib.request.Request(f"{base}/upload", data=b"x" * 64,
                                           method="POST"))
    statuses = []
    for req in requests:
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                resp.read()
                statuses.append(resp.status)
        except urllib.error.HTTPError as e:
            e.read()
            statuses.append(e.code)
    print(*statuses, flush=True)


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "connect":
        connect(args[0], int(args[1]), float(args[2]))
    elif cmd == "linger-server":
        linger_server(int(args[0]))
    elif cmd == "linger-client":
        linger_client(int(args[0]))
    elif cmd == "send":
        send(args[0], int(args[1]), int(args[2]))
    elif cmd == "sink":
        sink(args[0], int(args[1]))
    elif cmd == "hold":
        hold(int(args[0]), int(args[1]))
    elif cmd == "idle-server":
        idle_server(int(args[0]), int(args[1]), args[2] == "1")
    elif cmd == "spawn-worker":
        spawn_worker(int(args[0]), args[1], int(args[2]))
    elif cmd == "worker":
        worker(int(args[0]), int(args[1]))
    elif cmd == "urllib":
        fetch_with_urllib(int(args[0]), int(args[1]))
    else:
        sys.exit("unknown command " + cmd)
    time.sleep(LINGER)


if __name__ == "__main__":
    main()
