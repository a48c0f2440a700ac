"""Real database servers for the end-to-end tests, from Debian's packages:
PostgreSQL, MariaDB, Redis and Memcached, each on a free port on
127.0.0.1 with its own data directory, started by a test module and
stopped by it (by pid)."""
import glob
import os
import pwd
import shutil
import subprocess
import tempfile

from conftest import Server, free_port, stop_process, wait_for, wait_port

PG_BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1] \
    if glob.glob("/usr/lib/postgresql/*/bin") else None


def _as_postgres(argv, **kw):
    return subprocess.run(["runuser", "-u", "postgres", "--", *argv],
                          check=True, capture_output=True, **kw)


class Postgres:
    """A PostgreSQL cluster of its own, trust authentication, TLS on with
    a self-signed certificate (sslmode=require works, prefer is not
    chosen by the clients here)."""

    def __init__(self, tmp):
        # Not under pytest's temporary directories: those are root's
        # alone, and the server runs as postgres.
        del tmp
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="sonde-pg-")
        os.chmod(self.dir, 0o755)
        pw = pwd.getpwnam("postgres")
        os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        data = os.path.join(self.dir, "data")
        _as_postgres([os.path.join(PG_BIN, "initdb"), "-D", data, "-A",
                      "trust", "-U", "postgres", "--no-sync"])
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                        "-nodes", "-keyout", os.path.join(data, "key.pem"),
                        "-out", os.path.join(data, "cert.pem"), "-days", "1",
                        "-subj", "/CN=127.0.0.1"],
                       check=True, capture_output=True)
        for f in ("key.pem", "cert.pem"):
            os.chown(os.path.join(data, f), pw.pw_uid, pw.pw_gid)
        os.chmod(os.path.join(data, "key.pem"), 0o600)
        self.server = Server(
            ["runuser", "-u", "postgres", "--",
             os.path.join(PG_BIN, "postgres"), "-D", data,
             "-p", str(self.port), "-k", self.dir,
             "-c", "listen_addresses=127.0.0.1", "-c", "ssl=on",
             "-c", "ssl_cert_file=cert.pem", "-c", "ssl_key_file=key.pem",
             "-c", "fsync=off", "-c", "max_connections=50"],
            self.port)
        wait_for(self._accepts, 20, what="postgres to accept queries")

    def _accepts(self):
        return subprocess.run(
            [os.path.join(PG_BIN, "pg_isready"), "-h", "127.0.0.1", "-p",
             str(self.port)], capture_output=True).returncode == 0

    def dsn(self, **extra):
        parts = {"host": "127.0.0.1", "port": self.port, "user": "postgres",
                 "dbname": "postgres", "sslmode": "disable"}
        parts.update(extra)
        return " ".join(f"{k}={v}" for k, v in parts.items())

    def stop(self):
        # runuser waits for postgres: stopping it stops the postmaster,
        # which ends its backends.
        self.server.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class MariaDB:
    """A MariaDB server of its own, grant tables skipped: any user."""

    def __init__(self, tmp):
        self.port = free_port()
        self.dir = os.path.join(tmp, "mariadb")
        os.makedirs(self.dir)
        subprocess.run(["mariadb-install-db", "--no-defaults",
                        f"--datadir={self.dir}/data", "--user=root",
                        "--auth-root-authentication-method=normal",
                        "--skip-test-db"],
                       check=True, capture_output=True)
        self.server = Server(
            ["mariadbd", "--no-defaults", f"--datadir={self.dir}/data",
             f"--port={self.port}", "--bind-address=127.0.0.1",
             f"--socket={self.dir}/sock", "--user=root",
             "--skip-grant-tables", "--skip-name-resolve",
             "--innodb-flush-log-at-trx-commit=0",
             f"--pid-file={self.dir}/pid"], self.port)

    def stop(self):
        self.server.stop()


class Redis:
    def __init__(self, tmp):
        self.port = free_port()
        self.dir = os.path.join(tmp, "redis")
        os.makedirs(self.dir)
        self.server = Server(
            ["/usr/bin/redis-server", "--port", str(self.port), "--bind",
             "127.0.0.1", "--save", "", "--appendonly", "no", "--dir",
             self.dir, "--daemonize", "no"], self.port)

    def stop(self):
        self.server.stop()


class Memcached:
    def __init__(self, tmp):
        self.port = free_port()
        self.server = Server(
            ["memcached", "-p", str(self.port), "-l", "127.0.0.1", "-U", "0",
             "-u", "root", "-t", "2"], self.port)

    def stop(self):
        self.server.stop()
