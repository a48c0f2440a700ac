"""A keep-alive HTTP/1.1 server on python's http.server for the tests.

    app.py PORT [ssl-cert ssl-key]

GET /sleep/<ms>  sleeps that many milliseconds, then answers 200.
GET /status/<n>  answers with status n.
GET /early-hints answers "103 Early Hints" and the final 200 in one write.
GET /message     answers 200 with an HTTP response as its body
                 (message/http), written after the head.
anything else    answers 200 with the path in the body.
"""
import http.server
import sys
import time


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body, content_type="text/plain"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        parts = self.path.split("?")[0].strip("/").split("/")
        if len(parts) == 2 and parts[0] == "sleep" and parts[1].isdigit():
            time.sleep(int(parts[1]) / 1000.0)
            self.answer(200, b"slept\n")
        elif len(parts) == 2 and parts[0] == "status" and parts[1].isdigit():
            self.answer(int(parts[1]), b"status\n")
        elif parts == ["early-hints"]:
            # The interim and the final head leave in one send.
            self.wfile.write(b"HTTP/1.1 103 Early Hints\r\n"
                             b"Link: </style.css>; rel=preload\r\n\r\n"
                             b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n"
                             b"\r\nhints\n")
        elif parts == ["message"]:
            # The head and the body leave in two writes, and the body
            # starts like a status line.
            self.answer(200, b"HTTP/1.1 404 Not Found\r\n"
                        b"Content-Length: 0\r\n\r\n", "message/http")
        else:
            self.answer(200, self.path.encode() + b"\n")

    def do_POST(self):
        # http.server answers "Expect: 100-continue" with an interim
        # "100 Continue" head before this runs.
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        self.answer(201, b"got %d bytes\n" % len(body))



def main():
    port = int(sys.argv[1])
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
