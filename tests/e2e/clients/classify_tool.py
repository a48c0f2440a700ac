"""Servers and clients for the classification tests (test_classify.py):
each one connection at a time, gated by lines on stdin so a test can read
sonde's counters between the connect and the first byte, and between the
last byte and the close.

    classify_tool.py blob-server PORT SEED LOOKALIKE
    classify_tool.py blob-client PORT SEED LOOKALIKE
        One connection carrying binary data from random.Random(SEED) in
        rounds: the client writes a chunk, the server reads all of it and
        writes back a chunk, each of its own size. The first round is 16
        bytes each way, the client's starting with 0x00, which no
        protocol starts with; the rounds after it carry at least 10 MB
        each way, in chunks of 1 byte to 400 kB. LOOKALIKE 1: some of
        those chunks start with an HTTP/1 request, an HTTP/1 status line,
        the HTTP/2 preface or a TLS record header. The client prints
        "connected" and waits for a line; does the first round, prints
        "first" and waits for a line; does the others, prints "done SENT
        RECEIVED" (bytes after the first round) and waits for a line;
        closes and prints "closed". The server prints "listening",
        "accepted", then "done RECEIVED SENT" once the client has closed.

    classify_tool.py preamble-server PORT HEX FIRST
        Accepts one connection at a time. On each, the bytes HEX come
        first, from the client (FIRST=client: the server reads them) or
        from the server (FIRST=server: it writes them); then it answers
        HTTP/1.1 requests (heads only) with 200 and the path, until EOF.

    classify_tool.py split-server PORT HOLD CUT
        Accepts one connection at a time and answers HTTP/1.1 requests
        (heads only) with 200 and the path, the status line in two writes
        50 ms apart: its first CUT bytes ("HTT" for 3), then the rest.
        HOLD 1: on the first request of the first connection that sends
        one, prints "request" and waits for a line before answering.

    classify_tool.py upgrade-server PORT
        Accepts one connection at a time. Answers its first request head
        with "101 Switching Protocols" (a WebSocket upgrade), then echoes
        every chunk it reads, until EOF.

    classify_tool.py tls-client PORT N
        Connects, prints "connected" and waits for a line; does the TLS
        handshake (python's ssl module, no certificate check), prints
        "handshaken" and waits for a line; sends N keep-alive GET
        /users/<i> on that one connection, prints the statuses and waits
        for a line; closes and prints "closed".

Standard library only.
"""
import http.client
import random
import socket
import ssl
import sys
import time

LEAST_BYTES = 10_000_000

# Chunks that would start an exchange (or a protocol) if anything still
# parsed the connection after its first bytes.
LOOKALIKE_REQUESTS = [
    b"GET /blob/1 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    b"\x16\x03\x01\x00\x05hello",
    b"POST /blob/2 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
]
LOOKALIKE_RESPONSES = [
    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n",
]


def chunk_size(rng):
    """1 byte to 400 kB: small writes, a packet's worth, buffers of a few
    pages, and writes larger than a socket buffer."""
    kind = rng.randrange(10)
    if kind < 2:
        return rng.randint(1, 16)
    if kind < 4:
        return rng.randint(17, 1500)
    if kind < 7:
        return rng.randint(1501, 65536)
    return rng.randint(65537, 400_000)


def plan(seed, lookalike):
    """[(client chunk, server chunk)], the same on both sides: a first
    round of 16 bytes each way, the client's starting with 0x00, then at
    least LEAST_BYTES each way."""
    rng = random.Random(seed)
    rounds = [(b"\x00" + rng.randbytes(15), rng.randbytes(16))]
    up = down = 0
    while up < LEAST_BYTES or down < LEAST_BYTES:
        i = len(rounds)
        c2s = rng.randbytes(chunk_size(rng))
        s2c = rng.randbytes(chunk_size(rng))
        if lookalike and i % 5 == 2:
            c2s = LOOKALIKE_REQUESTS[i // 5 % len(LOOKALIKE_REQUESTS)] + c2s
            s2c = LOOKALIKE_RESPONSES[i // 5 % len(LOOKALIKE_RESPONSES)] + s2c
        rounds.append((c2s, s2c))
        up += len(c2s)
        down += len(s2c)
    return rounds


def recv_exactly(conn, n):
    """Reads n bytes, each recv asking for no more than what is left, so
    a read starts where each chunk starts."""
    parts, left = [], n
    while left:
        data = conn.recv(min(left, 1 << 16))
        if not data:
            raise ConnectionError(f"peer closed with {left} bytes to come")
        parts.append(data)
        left -= len(data)
    return b"".join(parts)


def listen(port):
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(16)
    return srv


def say(*words):
    print(*words, flush=True)


def wait_line():
    if not sys.stdin.readline():
        raise SystemExit("stdin closed")


def blob_server(port, seed, lookalike):
    srv = listen(port)
    say("listening")
    srv.settimeout(60)
    conn, _ = srv.accept()
    conn.settimeout(60)
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    say("accepted")
    received = sent = 0
    for i, (c2s, s2c) in enumerate(plan(seed, lookalike)):
        if recv_exactly(conn, len(c2s)) != c2s:
            raise SystemExit("received bytes differ from the plan")
        conn.sendall(s2c)
        if i:
            received += len(c2s)
            sent += len(s2c)
    if conn.recv(1):
        raise SystemExit("more bytes than the plan")
    conn.close()
    srv.close()
    say("done", received, sent)


def blob_client(port, seed, lookalike):
    conn = socket.create_connection(("127.0.0.1", port), timeout=60)
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    say("connected")
    wait_line()
    sent = received = 0
    for i, (c2s, s2c) in enumerate(plan(seed, lookalike)):
        conn.sendall(c2s)
        if recv_exactly(conn, len(s2c)) != s2c:
            raise SystemExit("received bytes differ from the plan")
        if i:
            sent += len(c2s)
            received += len(s2c)
        else:
            say("first")
            wait_line()
    say("done", sent, received)
    wait_line()
    conn.close()
    say("closed")


def serve_heads(conn, answer):
    """Answers each request head on conn with answer(conn, path) until
    EOF."""
    buf = b""
    while True:
        while b"\r\n\r\n" not in buf:
            data = conn.recv(65536)
            if not data:
                return
            buf += data
        head, buf = buf.split(b"\r\n\r\n", 1)
        answer(conn, head.split(b" ", 2)[1])


def whole_answer(conn, path):
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" %
                 (len(path), path))


def serve_connections(port, serve):
    """Accepts connections on port one at a time, for ever, and hands each
    to serve; a peer that goes away or stalls ends only its connection."""
    srv = listen(port)
    while True:
        conn, _ = srv.accept()
        with conn:
            conn.settimeout(30)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                serve(conn)
            except (ConnectionError, socket.timeout):
                pass


def preamble_server(port, lead, first):
    def serve(conn):
        if first == "client":
            recv_exactly(conn, len(lead))
        else:
            conn.sendall(lead)
        serve_heads(conn, whole_answer)

    serve_connections(port, serve)


def upgrade_server(port):
    def serve(conn):
        head = b""
        while b"\r\n\r\n" not in head:
            data = conn.recv(65536)
            if not data:
                raise ConnectionError("closed before its request")
            head += data
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\n"
                     b"Upgrade: websocket\r\n"
                     b"Connection: Upgrade\r\n\r\n")
        while True:
            data = conn.recv(65536)
            if not data:
                break
            conn.sendall(data)

    serve_connections(port, serve)


def split_server(port, hold, cut):
    held = [hold]

    def answer(conn, path):
        if held[0]:
            held[0] = False
            say("request")
            wait_line()
        reply = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (
            len(path), path)
        conn.sendall(reply[:cut])
        time.sleep(0.05)
        conn.sendall(reply[cut:])

    serve_connections(port, lambda conn: serve_heads(conn, answer))


def tls_client(port, n):
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    say("connected")
    wait_line()
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    tls = ctx.wrap_socket(sock, server_hostname="127.0.0.1")
    say("handshaken")
    wait_line()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.sock = tls
    statuses = []
    for i in range(n):
        conn.request("GET", f"/users/{i}")
        resp = conn.getresponse()
        resp.read()
        statuses.append(resp.status)
    say(*statuses)
    wait_line()
    conn.close()
    say("closed")


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "blob-server":
        blob_server(int(args[0]), int(args[1]), args[2] == "1")
    elif cmd == "blob-client":
        blob_client(int(args[0]), int(args[1]), args[2] == "1")
    elif cmd == "preamble-server":
        preamble_server(int(args[0]), bytes.fromhex(args[1]), args[2])
    elif cmd == "upgrade-server":
        upgrade_server(int(args[0]))
    elif cmd == "split-server":
        split_server(int(args[0]), args[1] == "1", int(args[2]))
    elif cmd == "tls-client":
        tls_client(int(args[0]), int(args[1]))
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
