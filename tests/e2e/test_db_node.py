"""Databases and caches from a second language: Node.js drivers from npm
(tests/e2e/dbnode: node-postgres, ioredis, memcached) against the same
Debian servers as test_db.py, counted exactly on both sides.

These drivers batch the way real applications do, and the parsers must
follow them: node-postgres corks Parse/Bind/Describe/Execute/Sync into
one write, reuses a named statement with Bind/Describe/Execute/Sync
alone, and in pipeline mode writes many of those before the first
reply; ioredis's auto-pipelining sends hundreds of commands issued in
one tick in a few large writes. Each test runs its own sonde with --port
on the server's port (test_db.sonde_on), so the node client's series and
the server's are the test's alone."""
import json
import os
import shutil
import subprocess

import pytest

from test_db import (CLIENT, SERVER, by_call, check_exact,
                     memcached, postgres, redis_server, services, sonde_on)

DBNODE_DIR = os.path.join(os.path.dirname(__file__), "dbnode")
CLIENTS = os.path.join(DBNODE_DIR, "dbclients.js")
NODE = os.path.realpath(shutil.which("node") or "/usr/bin/node")

pytestmark = pytest.mark.skipif(
    not os.path.exists("/usr/bin/redis-server"),
    reason="database servers are not installed (make deps)")

# The fixtures come from test_db (module-scoped: this module gets servers
# of its own); named here so that pytest and linters see them used.
FIXTURES = (memcached, postgres, redis_server)


def run_node(mode, port):
    """dbclients.js's MODE against port; returns the summary it prints.
    Its packages come from `make test` (npm ci in tests/e2e/dbnode)."""
    assert os.path.isdir(os.path.join(DBNODE_DIR, "node_modules")), \
        "tests/e2e/dbnode/node_modules is missing: run make e2e (npm ci)"
    proc = subprocess.run([NODE, CLIENTS, mode, str(port)], cwd=DBNODE_DIR,
                          text=True, capture_output=True, timeout=90)
    assert proc.returncode == 0, \
        f"dbclients.js {mode} exited {proc.returncode}:\n{proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def db_lost(sonde):
    """sonde_parse_errors_total for database streams and calls, above 0."""
    return {labels["reason"]: v for n, labels, v in sonde.samples()
            if n == "sonde_parse_errors_total" and v
            and labels["reason"].startswith("db_")}


def check_both_sides(sonde, port, want, system, server_service,
                     handshake=None):
    """want, exactly, on the node client's series and on the server's, and
    nothing else on either but the driver's handshake: {operation: count},
    whatever their status (the server's version decides whether it knows
    them)."""
    handshake = handshake or {}
    client = check_exact(sonde, CLIENT, port, want, system)
    server = check_exact(sonde, SERVER, port, want, system)
    assert services(client) == {"node"}, client
    assert services(server) == {server_service}, server
    for side in (client, server):
        extra = {}
        for key, n in by_call(side).items():
            if key not in want:
                extra[key[0]] = extra.get(key[0], 0) + n
        assert extra == handshake, by_call(side)
    assert db_lost(sonde) == {}, sonde.losses()


# ---------------------------------------------------------------- PostgreSQL

PG_CALLS = {
    ("SELECT", "orders", ""): 25,           # the named statement 'by-id'
    ("INSERT", "orders", ""): 10,           # unnamed, with parameters
    ("SELECT", "no_such_table", "42P01"): 1,  # a simple Query
    ("UPDATE", "orders", ""): 8,            # queued on one client
    ("DELETE", "orders", ""): 15,           # pipeline mode, in flight
    ("SELECT", "missing_table", "42P01"): 1,  # ... among them, at Parse
}


def test_postgres_node_postgres(postgres):
    """node-postgres: a named prepared statement run 25 times (Parse
    once), unnamed statements with parameters (Parse/Bind/Describe/
    Execute/Sync in one write), an error on a simple Query, queries
    issued at once on one client (queued), and a pipeline-mode client
    with fifteen statements and a failing one in flight together."""
    with sonde_on(postgres.port) as s:
        got = run_node("pg", postgres.port)
        assert got == {"select": 25, "insert": 10, "update": 8,
                       "delete": 15, "errors": ["42P01", "42P01"]}
        check_both_sides(s, postgres.port, PG_CALLS, "postgresql",
                         "postgres")


# --------------------------------------------------------------------- Redis

REDIS_CALLS = {
    ("SET", "", ""): 300, ("GET", "", ""): 300,
    ("LPUSH", "", "WRONGTYPE"): 1,
    ("MULTI", "", ""): 1, ("INCR", "", ""): 2, ("EXEC", "", ""): 1,
}


def test_redis_ioredis_auto_pipelining(redis_server):
    """ioredis with enableAutoPipelining: 300 SETs issued at once, then
    300 GETs with a failing LPUSH among them, each batch in one write
    (12 KB, then 8 KB, under strace); then MULTI, INCR, INCR, EXEC. On connecting ioredis sends
    CLIENT SETINFO twice (an unknown subcommand, ERR, before Redis 7.2)
    and its ready check, INFO."""
    with sonde_on(redis_server.port) as s:
        got = run_node("redis", redis_server.port)
        assert got == {"set": 300, "get": 300, "error": "WRONGTYPE",
                       "incr": 2}
        check_both_sides(s, redis_server.port, REDIS_CALLS, "redis",
                         "redis-server", handshake={"CLIENT": 2, "INFO": 1})


# ----------------------------------------------------------------- Memcached

MEMCACHED_CALLS = {
    ("SET", "", ""): 10,
    ("GET", "", ""): 11,  # ten gets and one multi-get of three keys
    ("DELETE", "", ""): 3,
}


def test_memcached_node_memcached(memcached):
    """The memcached package (text protocol): set, get, a multi-get
    (one "get k1 k2 k3", one call) and delete."""
    with sonde_on(memcached.port) as s:
        got = run_node("memcached", memcached.port)
        assert got == {"set": 10, "get": 10, "getMulti": 3, "del": 3}
        check_both_sides(s, memcached.port, MEMCACHED_CALLS, "memcached",
                         "memcached")
