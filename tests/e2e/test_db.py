"""Databases and caches: every call a process makes to PostgreSQL,
MariaDB, Redis or Memcached, and every call those servers answer, counted
exactly by operation, collection and status, from real servers (Debian's
packages) and real drivers.

Each test runs its own sonde with --port on the server's port: only the
test's connections are traced, at both ends (the client's series name the
server's port; the server's series are its own port's), so the counts
below are exact. Clients run in this process (Debian's python modules)
or as the tools the packages ship."""
import asyncio
import contextlib
import os
import random
import shutil
import socket
import subprocess
import time

import pytest

from conftest import ROOT, Sonde, wait_for
import dbservers

CLIENT = "db_client_operation_duration_seconds"
SERVER = "db_server_operation_duration_seconds"

pytestmark = pytest.mark.skipif(
    not os.path.exists("/usr/bin/redis-server"),
    reason="database servers are not installed (make deps)")


@contextlib.contextmanager
def sonde_on(port, *args):
    """A sonde tracing only connections with port at one end."""
    s = Sonde("--port", str(port), *args)
    try:
        yield s
    finally:
        code = s.stop()
    assert code == 0, "sonde exited with %s:\n%s" % (code, s.output())


def db_counts(sonde, family, port, system=None):
    """{(service, op, collection, status): count} of family's series on
    port (the server's port: server_port on both sides)."""
    out = {}
    for name, labels, value in sonde.samples():
        if name != family + "_count" or labels.get("server_port") != str(port):
            continue
        if system and labels["db_system_name"] != system:
            continue
        # error_type is set exactly when the call failed.
        if labels["db_response_status_code"]:
            assert labels["error_type"] == labels["db_response_status_code"]
        key = (labels["service_name"], labels["db_operation_name"],
               labels["db_collection_name"], labels["db_response_status_code"])
        out[key] = out.get(key, 0) + value
    return out


def by_call(counts):
    """The counts without the service: {(op, collection, status): n}."""
    out = {}
    for (_, op, coll, status), n in counts.items():
        out[(op, coll, status)] = out.get((op, coll, status), 0) + n
    return out


def settled(sonde, family, port, want, system=None, timeout=15):
    """Waits until every (op, collection, status) in want has at least its
    count on port, lets the drain catch up, and returns the counts."""
    def reached():
        got = by_call(db_counts(sonde, family, port, system))
        return all(got.get(k, 0) >= v for k, v in want.items())

    try:
        wait_for(reached, timeout, what=f"{family} {want}")
    except AssertionError:
        raise AssertionError(
            f"{family}: want {want}, got "
            f"{by_call(db_counts(sonde, family, port, system))}; "
            f"losses {sonde.losses()}")
    time.sleep(0.4)
    return db_counts(sonde, family, port, system)


def check_exact(sonde, family, port, want, system=None):
    got = settled(sonde, family, port, want, system)
    calls = by_call(got)
    for key, n in want.items():
        assert calls.get(key) == n, (key, calls)
    return got


def services(counts):
    return {service for service, _, _, _ in counts}


# ---------------------------------------------------------------- PostgreSQL

@pytest.fixture(scope="module")
def postgres(tmp_path_factory):
    server = dbservers.Postgres(str(tmp_path_factory.mktemp("pg")))
    import psycopg2
    conn = psycopg2.connect(server.dsn())
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE orders (id serial PRIMARY KEY, "
                    "item text, qty int)")
        cur.execute("INSERT INTO orders (item, qty) SELECT 'seed', g "
                    "FROM generate_series(1, 50) g")
    conn.close()
    yield server
    server.stop()


def run_psycopg2(dsn):
    import psycopg2
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    cur = conn.cursor()
    for i in range(20):
        cur.execute("SELECT id, item FROM orders WHERE qty > %s", (i,))
        cur.fetchall()
    for i in range(10):
        cur.execute("INSERT INTO orders (item, qty) VALUES (%s, %s)",
                    ("widget", i))
    for i in range(5):
        cur.execute("UPDATE orders SET qty = qty + 1 WHERE id = %s", (i,))
    for _ in range(3):
        with pytest.raises(psycopg2.errors.UndefinedTable):
            cur.execute("SELECT * FROM no_such_table")
    conn.close()


PSYCOPG2_CALLS = {
    ("SELECT", "orders", ""): 20,
    ("INSERT", "orders", ""): 10,
    ("UPDATE", "orders", ""): 5,
    ("SELECT", "no_such_table", "42P01"): 3,
}


def test_postgres_simple_protocol_psycopg2(postgres):
    with sonde_on(postgres.port) as s:
        run_psycopg2(postgres.dsn())
        client = check_exact(s, CLIENT, postgres.port, PSYCOPG2_CALLS,
                             "postgresql")
        server = check_exact(s, SERVER, postgres.port, PSYCOPG2_CALLS,
                             "postgresql")
        assert len(services(client)) == 1
        assert services(server) == {"postgres"}
        errors = [labels for name, labels, _ in s.samples()
                  if name == CLIENT + "_count"
                  and labels.get("error_type")]
        assert errors and all(e["error_type"] == "42P01" for e in errors)


def test_postgres_over_tls(postgres):
    """sslmode=require: the SSLRequest, then TLS; the plaintext comes from
    OpenSSL's functions in libpq and in the server."""
    with sonde_on(postgres.port) as s:
        run_psycopg2(postgres.dsn(sslmode="require"))
        check_exact(s, CLIENT, postgres.port, PSYCOPG2_CALLS, "postgresql")
        check_exact(s, SERVER, postgres.port, PSYCOPG2_CALLS, "postgresql")


def test_postgres_extended_protocol_asyncpg(postgres):
    """asyncpg prepares statements and runs them with Bind/Execute/Sync;
    executemany pipelines its executions before one Sync."""
    async def run():
        import asyncpg
        conn = await asyncpg.connect(host="127.0.0.1", port=postgres.port,
                                     user="postgres", database="postgres",
                                     ssl=False)
        stmt = await conn.prepare(
            "SELECT id, item FROM orders WHERE id = $1")
        for i in range(30):
            await stmt.fetch(i)
        await conn.executemany(
            "INSERT INTO orders (item, qty) VALUES ($1, $2)",
            [("gadget", i) for i in range(25)])
        # Parse/Describe/Sync, answered with an error: no Execute comes.
        with pytest.raises(asyncpg.exceptions.UndefinedTableError):
            await conn.fetch("SELECT 1 FROM missing_table")
        await conn.close()

    with sonde_on(postgres.port) as s:
        asyncio.run(run())
        want = {("SELECT", "orders", ""): 30,
                ("INSERT", "orders", ""): 25,
                ("SELECT", "missing_table", "42P01"): 1}
        check_exact(s, CLIENT, postgres.port, want, "postgresql")
        check_exact(s, SERVER, postgres.port, want, "postgresql")


def test_postgres_connection_open_before_sonde(postgres):
    """A pooled connection opened (and used) before sonde starts is
    measured from its next query, on both sides."""
    import psycopg2
    conn = psycopg2.connect(postgres.dsn())
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("SELECT 1")
    try:
        with sonde_on(postgres.port) as s:
            for _ in range(7):
                cur.execute("SELECT count(*) FROM orders")
                cur.fetchall()
            want = {("SELECT", "orders", ""): 7}
            check_exact(s, CLIENT, postgres.port, want, "postgresql")
            check_exact(s, SERVER, postgres.port, want, "postgresql")
    finally:
        conn.close()


# ------------------------------------------------------------------- MariaDB

@pytest.fixture(scope="module")
def mariadb(tmp_path_factory):
    server = dbservers.MariaDB(str(tmp_path_factory.mktemp("my")))
    import pymysql
    conn = wait_for(lambda: _mysql_connect(server.port, None), 30,
                    what="mariadb to accept logins")
    with conn.cursor() as cur:
        cur.execute("CREATE DATABASE shop")
        cur.execute("CREATE TABLE shop.orders (id int auto_increment "
                    "primary key, item varchar(32), qty int)")
        cur.execute("INSERT INTO shop.orders (item, qty) VALUES "
                    + ",".join(f"('seed', {i})" for i in range(40)))
    conn.commit()
    conn.close()
    yield server
    server.stop()


def _mysql_connect(port, db):
    import pymysql
    try:
        return pymysql.connect(host="127.0.0.1", port=port, user="root",
                               database=db, autocommit=True)
    except pymysql.err.OperationalError:
        return None


def test_mariadb_text_queries_pymysql(mariadb):
    import pymysql
    with sonde_on(mariadb.port) as s:
        conn = _mysql_connect(mariadb.port, "shop")
        with conn.cursor() as cur:
            for i in range(12):
                cur.execute("SELECT id, item FROM orders WHERE qty > %s", i)
                cur.fetchall()
            for i in range(4):
                cur.execute("INSERT INTO orders (item, qty) VALUES (%s, %s)",
                            ("widget", i))
            for _ in range(2):
                with pytest.raises(pymysql.err.ProgrammingError):
                    cur.execute("SELECT * FROM no_such_table")
        conn.close()
        want = {("SELECT", "orders", ""): 12,
                ("INSERT", "orders", ""): 4,
                ("SELECT", "no_such_table", "1146"): 2}
        client = check_exact(s, CLIENT, mariadb.port, want, "mariadb")
        server = check_exact(s, SERVER, mariadb.port, want, "mariadb")
        assert len(services(client)) == 1
        assert services(server) == {"mariadbd"}


STMT_CLIENT = r"""
#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	MYSQL *db = mysql_init(NULL);
	MYSQL_STMT *st;
	MYSQL_BIND param;
	int id;

	if (!mysql_real_connect(db, "127.0.0.1", "root", "", "shop",
				atoi(argv[1]), NULL, 0)) {
		fprintf(stderr, "connect: %s\n", mysql_error(db));
		return 1;
	}
	st = mysql_stmt_init(db);
	const char *q = "SELECT id, item FROM orders WHERE id = ?";
	if (mysql_stmt_prepare(st, q, strlen(q))) {
		fprintf(stderr, "prepare: %s\n", mysql_stmt_error(st));
		return 1;
	}
	memset(&param, 0, sizeof(param));
	param.buffer_type = MYSQL_TYPE_LONG;
	param.buffer = &id;
	mysql_stmt_bind_param(st, &param);
	for (id = 1; id <= atoi(argv[2]); id++) {
		if (mysql_stmt_execute(st) || mysql_stmt_store_result(st)) {
			fprintf(stderr, "execute: %s\n", mysql_stmt_error(st));
			return 1;
		}
		mysql_stmt_free_result(st);
	}
	mysql_stmt_close(st);
	if (mysql_query(db, "SELECT * FROM missing_table") == 0)
		return 1;
	mysql_close(db);
	return 0;
}
"""


def test_mariadb_prepared_statements_libmariadb(mariadb, tmp_path):
    """A C client on libmariadb: COM_STMT_PREPARE once, COM_STMT_EXECUTE
    12 times (binary protocol), an error 1146."""
    src = tmp_path / "stmt.c"
    src.write_text(STMT_CLIENT)
    binary = tmp_path / "stmt-client"
    cflags = subprocess.run(["mariadb_config", "--cflags", "--libs"],
                            capture_output=True, text=True, check=True)
    subprocess.run(["gcc", "-O1", "-o", str(binary), str(src),
                    *cflags.stdout.split()], check=True)
    with sonde_on(mariadb.port) as s:
        subprocess.run([str(binary), str(mariadb.port), "12"], check=True,
                       timeout=60)
        want = {("SELECT", "orders", ""): 12,
                ("SELECT", "missing_table", "1146"): 1}
        client = check_exact(s, CLIENT, mariadb.port, want, "mariadb")
        check_exact(s, SERVER, mariadb.port, want, "mariadb")
        assert services(client) == {"stmt-client"}


# --------------------------------------------------------------------- Redis

@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    server = dbservers.Redis(str(tmp_path_factory.mktemp("redis")))
    yield server
    server.stop()


def test_redis_commands_pipelines_and_transactions(redis_server):
    import redis
    port = redis_server.port
    with sonde_on(port) as s:
        r = redis.Redis(host="127.0.0.1", port=port)
        for i in range(50):
            r.set(f"key:{i}", f"value-{i}")
        for i in range(50):
            assert r.get(f"key:{i}") == f"value-{i}".encode()
        pipe = r.pipeline(transaction=False)
        for i in range(100):
            pipe.incr("counter")
        assert pipe.execute()[-1] == 100
        with pytest.raises(redis.exceptions.ResponseError):
            r.lpush("key:1", "x")  # a string: WRONGTYPE
        tx = r.pipeline(transaction=True)
        tx.hset("h", "f", "v")
        tx.hget("h", "f")
        tx.execute()
        r.close()
        want = {("SET", "", ""): 50, ("GET", "", ""): 50,
                ("INCRBY", "", ""): 100, ("LPUSH", "", "WRONGTYPE"): 1,
                ("MULTI", "", ""): 1, ("HSET", "", ""): 1,
                ("HGET", "", ""): 1, ("EXEC", "", ""): 1}
        client = check_exact(s, CLIENT, port, want, "redis")
        server = check_exact(s, SERVER, port, want, "redis")
        assert services(server) == {"redis-server"}
        assert len(services(client)) == 1


def test_redis_benchmark_counted_exactly(redis_server):
    port = redis_server.port
    with sonde_on(port) as s:
        subprocess.run(["redis-benchmark", "-h", "127.0.0.1", "-p", str(port),
                        "-n", "3000", "-c", "4", "-t", "set,get", "-q"],
                       check=True, capture_output=True, timeout=120)
        want = {("SET", "", ""): 3000, ("GET", "", ""): 3000}
        client = check_exact(s, CLIENT, port, want, "redis")
        check_exact(s, SERVER, port, want, "redis")
        assert "redis-benchmark" in services(client)


def test_redis_pipeline_of_hundreds_in_one_write(redis_server):
    """500 commands written at once (client-side pipelining), their
    replies read in a few reads: each is a call of its own."""
    port = redis_server.port
    cmds = b"".join(b"*3\r\n$3\r\nSET\r\n$6\r\nbk:%03d\r\n$2\r\nvv\r\n" % i
                    for i in range(500))
    with sonde_on(port) as s:
        with socket.create_connection(("127.0.0.1", port)) as c:
            c.sendall(cmds)
            got = b""
            while got.count(b"+OK\r\n") < 500:
                got += c.recv(65536)
        check_exact(s, CLIENT, port, {("SET", "", ""): 500}, "redis")
        check_exact(s, SERVER, port, {("SET", "", ""): 500}, "redis")


def resp(*args):
    """One RESP command: an array of bulk strings."""
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def one_reply(c):
    """Reads one reply to a command that answers with a line or one bulk
    string, whole, in reads of at most 4096 bytes."""
    got = b""
    while b"\r\n" not in got:
        got += c.recv(4096)
    line, rest = got.split(b"\r\n", 1)
    if line[:1] != b"$" or line == b"$-1":
        assert not rest
        return line
    need = int(line[1:]) + 2
    while len(rest) < need:
        rest += c.recv(min(4096, need - len(rest)))
    assert len(rest) == need
    return rest[:-2]


def events_received(sonde):
    return sum(v for n, _, v in sonde.samples()
               if n == "sonde_events_received_total")


def test_redis_calls_followed_whole_in_the_kernel(redis_server):
    """A client that writes one command and reads its reply has each call
    followed whole in BPF: one record a call at each end instead of the
    bytes of the command and of the reply (the events sonde reads half as
    many). Counts stay exact across what the BPF side hands to the daemon:
    a command it does not follow (CLIENT SETNAME) and its reply, an error
    reply, a value read over many reads, then a pipeline, after which the
    daemon follows the connection's bytes."""
    port = redis_server.port
    big = b"v" * 20000
    with sonde_on(port) as s:
        with socket.create_connection(("127.0.0.1", port)) as c:
            c.sendall(resp("CLIENT", "SETNAME", "fold-test"))
            assert one_reply(c) == b"+OK"
            c.sendall(resp("SET", "fold:s", "hello"))
            assert one_reply(c) == b"+OK"
            check_exact(s, SERVER, port, {("SET", "", ""): 1}, "redis")
            before = events_received(s)
            for _ in range(200):
                c.sendall(resp("GET", "fold:s"))
                assert one_reply(c) == b"hello"
            check_exact(s, SERVER, port, {("GET", "", ""): 200}, "redis")
            check_exact(s, CLIENT, port, {("GET", "", ""): 200}, "redis")
            # 200 calls, both ends: 400 records followed whole, 800 as bytes.
            grew = events_received(s) - before
            assert grew < 500, grew
            c.sendall(resp("LPUSH", "fold:s", "x"))
            assert one_reply(c).startswith(b"-WRONGTYPE")
            c.sendall(resp("SET", "fold:big", big))
            assert one_reply(c) == b"+OK"
            c.sendall(resp("GET", "fold:big"))
            assert one_reply(c) == big
            c.sendall(resp("GET", "fold:none"))
            assert one_reply(c) == b"$-1"
            for _ in range(20):
                c.sendall(resp("INCR", "fold:n"))
                one_reply(c)
            c.sendall(resp("GET", "fold:s") + resp("GET", "fold:s"))
            got = b""
            while got.count(b"hello") < 2:
                got += c.recv(4096)
            for _ in range(20):
                c.sendall(resp("GET", "fold:s"))
                assert one_reply(c) == b"hello"
        want = {("CLIENT", "", ""): 1, ("SET", "", ""): 2,
                ("GET", "", ""): 224, ("LPUSH", "", "WRONGTYPE"): 1,
                ("INCR", "", ""): 20}
        check_exact(s, CLIENT, port, want, "redis")
        check_exact(s, SERVER, port, want, "redis")
        assert not s.losses(), s.losses()


def histogram_of(sonde, family, port, op):
    """(count, sum, {le: cumulative}) of the series of op on port."""
    count, total, buckets = 0, 0.0, {}
    for name, labels, value in sonde.samples():
        if (labels.get("server_port") != str(port) or
                labels.get("db_operation_name") != op):
            continue
        if name == family + "_count":
            count += value
        elif name == family + "_sum":
            total += value
        elif name == family + "_bucket":
            buckets[labels["le"]] = buckets.get(labels["le"], 0) + value
    return count, total, buckets


def check_histogram(sonde, family, port, op, n):
    """op's series on port hold n calls, each in one bucket, their sum
    that of n loopback calls."""
    count, total, buckets = histogram_of(sonde, family, port, op)
    assert count == n and buckets["+Inf"] == n, (count, buckets)
    ordered = sorted(buckets.items(), key=lambda kv: float(kv[0]))
    assert all(a[1] <= b[1] for a, b in zip(ordered, ordered[1:])), ordered
    assert 0 < total < n * 0.05, total


INCR_AND_EXIT = """
import socket, sys
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
for _ in range(30):
    c.sendall(b"*2\\r\\n$4\\r\\nINCR\\r\\n$9\\r\\nsum:exits\\r\\n")
    got = b""
    while not got.endswith(b"\\r\\n"):
        got += c.recv(64)
"""


def test_redis_calls_summed_in_the_kernel(redis_server):
    """A call followed whole that succeeds is summed in BPF, in the
    family's buckets, and sends no record: the events sonde reads do not
    grow with the calls, yet each series counts them exactly, its buckets
    and sum whole. A client that exits right after its calls keeps them
    (its sums are read before its process is forgotten); errors still
    come one record each, with their code. With native histograms on,
    which need each call's duration, every call comes as a record
    again, and the counts are the same."""
    port = redis_server.port
    with sonde_on(port) as s:
        with socket.create_connection(("127.0.0.1", port)) as c:
            c.sendall(resp("SET", "sum:k", "v"))
            assert one_reply(c) == b"+OK"
            check_exact(s, SERVER, port, {("SET", "", ""): 1}, "redis")
            before = events_received(s)
            for _ in range(200):
                c.sendall(resp("GET", "sum:k"))
                assert one_reply(c) == b"v"
                c.sendall(resp("SET", "sum:k", "v"))
                assert one_reply(c) == b"+OK"
            for _ in range(5):
                c.sendall(resp("LPUSH", "sum:k", "x"))
                assert one_reply(c).startswith(b"-WRONGTYPE")
            want = {("GET", "", ""): 200, ("SET", "", ""): 201,
                    ("LPUSH", "", "WRONGTYPE"): 5}
            check_exact(s, SERVER, port, want, "redis")
            check_exact(s, CLIENT, port, want, "redis")
            # 400 calls at two ends: 800 records if each sent one; the
            # errors' 10 and the sonde's own scrapes' few.
            grew = events_received(s) - before
            assert grew < 40, grew
            for family in (SERVER, CLIENT):
                check_histogram(s, family, port, "GET", 200)
            # The sums' map shows its fill like sonde's other maps: at
            # least GET and SET at each end.
            fill = {n: v for n, labels, v in s.samples()
                    if labels.get("map") == "db_sums"}
            assert fill.get("sonde_map_max_entries") == 4096, fill
            assert fill.get("sonde_map_entries", 0) >= 4, fill
        subprocess.run(["/usr/bin/python3", "-c", INCR_AND_EXIT, str(port)],
                       check=True, timeout=30)
        check_exact(s, CLIENT, port, {("INCR", "", ""): 30}, "redis")
        check_exact(s, SERVER, port, {("INCR", "", ""): 30}, "redis")
        # The client's key went with its process.
        wait_for(lambda: sum(v for n, labels, v in s.samples()
                             if n == "sonde_map_entries_removed_total" and
                             labels.get("map") == "db_sums") >= 1,
                 10, what="the exited client's sums deleted")
        assert not s.losses(), s.losses()
    with sonde_on(port, "--native-histograms") as s:
        with socket.create_connection(("127.0.0.1", port)) as c:
            c.sendall(resp("SET", "sum:k", "v"))
            assert one_reply(c) == b"+OK"
            check_exact(s, SERVER, port, {("SET", "", ""): 1}, "redis")
            before = events_received(s)
            for _ in range(100):
                c.sendall(resp("GET", "sum:k"))
                assert one_reply(c) == b"v"
            check_exact(s, SERVER, port, {("GET", "", ""): 100}, "redis")
            check_exact(s, CLIENT, port, {("GET", "", ""): 100}, "redis")
            assert events_received(s) - before >= 200
            check_histogram(s, CLIENT, port, "GET", 100)


def one_array(c, count):
    """Reads an array reply of count bulk strings (nil ones included),
    whole."""
    got = b""
    while True:
        lines = got.split(b"\r\n")
        if lines[0][:1] == b"*" and len(lines) > 1:
            n = int(lines[0][1:])
            at, have = 1, 0
            while have < n and at < len(lines):
                if lines[at] == b"$-1":
                    at, have = at + 1, have + 1
                elif at + 1 < len(lines):
                    at, have = at + 2, have + 1
                else:
                    break
            if n == count and have == n and at < len(lines):
                return lines[1:at]
        got += c.recv(4096)


def test_redis_array_replies_followed_whole(redis_server):
    """A small array of bulk strings (MGET with a nil among them,
    HGETALL, LRANGE) ends its call in BPF like a line does: the
    connection keeps being followed whole, one record a call at each
    end, and every call is counted."""
    port = redis_server.port
    with sonde_on(port) as s:
        with socket.create_connection(("127.0.0.1", port)) as c:
            for cmd in (resp("HSET", "arr:h", "f1", "a", "f2", "b"),
                        resp("RPUSH", "arr:l", "x", "y", "z"),
                        resp("SET", "arr:k", "v")):
                c.sendall(cmd)
                one_reply(c)
            check_exact(s, SERVER, port, {("SET", "", ""): 1}, "redis")
            before = events_received(s)
            for _ in range(50):
                c.sendall(resp("MGET", "arr:k", "arr:none"))
                assert one_array(c, 2) == [b"$1", b"v", b"$-1"]
                c.sendall(resp("HGETALL", "arr:h"))
                assert len(one_array(c, 4)) == 8
                c.sendall(resp("LRANGE", "arr:l", 0, -1))
                assert len(one_array(c, 3)) == 6
                c.sendall(resp("GET", "arr:k"))
                assert one_reply(c) == b"v"
            want = {("MGET", "", ""): 50, ("HGETALL", "", ""): 50,
                    ("LRANGE", "", ""): 50, ("GET", "", ""): 50}
            check_exact(s, SERVER, port, want, "redis")
            check_exact(s, CLIENT, port, want, "redis")
            # 200 calls, both ends: 400 records followed whole, 800 as
            # bytes.
            grew = events_received(s) - before
            assert grew < 500, grew
        assert not s.losses(), s.losses()


# ----------------------------------------------------------------- Memcached

@pytest.fixture(scope="module")
def memcached(tmp_path_factory):
    server = dbservers.Memcached(str(tmp_path_factory.mktemp("mc")))
    yield server
    server.stop()


def test_memcached_set_get_delete(memcached):
    from pymemcache.client.base import Client
    port = memcached.port
    with sonde_on(port) as s:
        c = Client(("127.0.0.1", port))
        for i in range(10):
            c.set(f"k{i}", f"v{i}")
        for i in range(10):
            assert c.get(f"k{i}") == f"v{i}".encode()
        for _ in range(3):
            assert len(c.get_many(["k1", "k2", "k3"])) == 3
        for i in range(4):
            c.delete(f"k{i}")
        c.close()
        want = {("SET", "", ""): 10, ("GET", "", ""): 13,
                ("DELETE", "", ""): 4}
        check_exact(s, CLIENT, port, want, "memcached")
        server = check_exact(s, SERVER, port, want, "memcached")
        assert services(server) == {"memcached"}


# ----------------------------------------------------------------- bad input

OPS = {
    # The operations these tests may produce: a keyword or _OTHER.
    "postgresql", "mysql", "mariadb", "redis", "memcached",
}


def check_labels_in_sets(sonde):
    for name, labels, _ in sonde.samples():
        if not name.startswith(("db_client_operation", "db_server_operation")):
            continue
        assert labels["db_system_name"] in OPS, labels
        op = labels["db_operation_name"]
        assert op == "_OTHER" or (op.isupper() and op.replace("_", "").isalpha()
                                  and len(op) < 24), labels
        coll = labels["db_collection_name"]
        assert len(coll) <= 63 and all(ch.isalnum() or ch in "_.$"
                                       for ch in coll), labels
        status = labels["db_response_status_code"]
        assert len(status) < 16 and all(ch.isalnum() or ch == "_"
                                        for ch in status), labels
        assert (labels["error_type"] != "") == (status != "" or
                                               labels["error_type"] == "_OTHER")


def test_hostile_bytes_to_every_server(postgres, mariadb, redis_server,
                                       memcached):
    """Random and truncated bytes to each server's port: sonde stays up and
    every database label stays in its set."""
    rng = random.Random(7)
    ports = [postgres.port, mariadb.port, redis_server.port, memcached.port]
    prefixes = [b"", b"*3\r\n$3\r\nSET\r\n$", b"get ", b"set k 0 0 99999\r\n",
                b"Q\x00\x00\x00\x40SELECT", b"\x00\x00\x00\x08\x04\xd2\x16\x2f",
                b"*1\r\n$4\r\nPING\r\n*", b"\x05\x00\x00\x00\x03SEL"]
    for port in ports:
        with sonde_on(port) as s:
            for i in range(30):
                data = rng.choice(prefixes) + bytes(
                    rng.randrange(256) for _ in range(rng.randrange(0, 300)))
                with contextlib.suppress(OSError):
                    with socket.create_connection(("127.0.0.1", port),
                                                  timeout=1) as c:
                        c.sendall(data)
                        c.settimeout(0.2)
                        with contextlib.suppress(OSError):
                            c.recv(4096)
            time.sleep(0.5)
            assert s.proc.poll() is None, s.output()
            check_labels_in_sets(s)


# ---------------------------------------------------------------------- OTLP

def test_db_calls_reach_otlp(redis_server, monkeypatch):
    """The same calls over OTLP, decoded by the OpenTelemetry project's
    code: db.client.operation.duration and db.server.operation.duration
    with dotted attributes, status codes as strings, and the database
    families' finer bounds (from 100 us)."""
    from test_otlp import Receiver, all_points, attrs
    import redis
    port = redis_server.port
    receiver = Receiver()
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "500")
    try:
        with sonde_on(port, "--otlp-endpoint", receiver.url()):
            r = redis.Redis(host="127.0.0.1", port=port)
            for i in range(5):
                r.set(f"otlp:{i}", "x")
            for _ in range(2):
                with pytest.raises(redis.exceptions.ResponseError):
                    r.lpush("otlp:0", "y")
            r.close()

            def exported():
                found = {}
                for record in reversed(receiver.requests()):
                    for metric in ("db.client.operation.duration",
                                   "db.server.operation.duration"):
                        for _, kind, data, p in all_points(record, metric):
                            a = attrs(p.get("attributes"))
                            if a.get("server.port") != str(port):
                                continue
                            found[(metric, a["db.operation.name"])] = (
                                kind, a, p)
                    if len(found) == 4:
                        return found
                return None

            found = wait_for(exported, 20, what="database points over OTLP")
    finally:
        receiver.stop()
    for side in ("client", "server"):
        metric = f"db.{side}.operation.duration"
        kind, a, p = found[(metric, "SET")]
        assert kind == "histogram" and int(p["count"]) == 5
        assert a["db.system.name"] == "redis"
        # An empty attribute may be sent empty or left out.
        assert a.get("db.collection.name") in ("", None)
        assert a.get("error.type") in ("", None)
        assert float(p["explicitBounds"][0]) == 0.0001
        assert len(p["explicitBounds"]) == 16
        kind, a, p = found[(metric, "LPUSH")]
        assert int(p["count"]) == 2
        assert a["db.response.status_code"] == "WRONGTYPE"
        assert a["error.type"] == "WRONGTYPE"
    _, a, _ = found[("db.client.operation.duration", "SET")]
    assert a["server.address"] == "127.0.0.1"
