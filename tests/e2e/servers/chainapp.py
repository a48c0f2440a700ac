"""A thread-per-request HTTP server for the trace tests: each request is
served on a thread of its own. /checkout calls another HTTP service
(its /users/7) and PostgreSQL before it answers; /relay calls the other
service's /hello; anything else answers at once.

    chainapp.py PORT DOWNSTREAM_PORT PG_DSN

The traceparent each request arrived with (or "-") is appended, one per
line, to the file named by CHAINAPP_SEEN when it is set.
"""
import http.client
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, DOWNSTREAM = int(sys.argv[1]), int(sys.argv[2])
DSN = sys.argv[3] if len(sys.argv) > 3 else ""
SEEN = os.environ.get("CHAINAPP_SEEN")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, *args):
        pass

    def do_GET(self):
        if SEEN:
            with open(SEEN, "a") as f:
                f.write((self.headers.get("traceparent") or "-") + "\n")
        if self.path.startswith(("/checkout", "/relay")):
            c = http.client.HTTPConnection("127.0.0.1", DOWNSTREAM,
                                           timeout=10)
            c.request("GET", "/users/7" if self.path.startswith("/checkout")
                      else "/hello")
            c.getresponse().read()
            c.close()
        if self.path.startswith("/checkout"):
            import psycopg2
            conn = psycopg2.connect(DSN)
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SELECT id FROM orders WHERE qty > %s", (3,))
                cur.fetchall()
            conn.close()
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
