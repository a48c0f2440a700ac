"""A forward proxy that only tunnels: CONNECT host:port, then bytes both
ways until either side closes. One thread per direction."""
import socket
import sys
import threading


def pump(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def tunnel(client):
    with client:
        head = b""
        while b"\r\n\r\n" not in head:
            data = client.recv(4096)
            if not data:
                return
            head += data
        method, target = head.split(b" ", 2)[:2]
        if method != b"CONNECT":
            client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\n"
                           b"Content-Length: 0\r\n\r\n")
            return
        host, port = target.rsplit(b":", 1)
        with socket.create_connection((host.decode(), int(port))) as up:
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            back = threading.Thread(target=pump, args=(up, client))
            back.start()
            pump(client, up)
            back.join()


def main():
    srv = socket.create_server(("127.0.0.1", int(sys.argv[1])))
    while True:
        client, _ = srv.accept()
        threading.Thread(target=tunnel, args=(client,), daemon=True).start()


if __name__ == "__main__":
    main()
