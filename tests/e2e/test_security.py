"""Least privilege and a protected endpoint: capabilities checked at start
and dropped after attaching, --check, TLS, basic auth, connection hoarding."""
import base64
import http.client
import os
import socket
import ssl
import subprocess
import sys
import time

import pytest

from conftest import (HISTOGRAM, SERVERS, SONDE, Server, Sonde, free_port,
                      keepalive_requests)

DROP_ATTACH_CAPS = "cap_bpf,cap_perfmon,cap_sys_admin"
CAP_DAC_READ_SEARCH = 2
CAP_SYS_PTRACE = 19
KEPT = 1 << CAP_SYS_PTRACE | 1 << CAP_DAC_READ_SEARCH


def capsh(*sonde_args, drop=DROP_ATTACH_CAPS):
    command = " ".join([SONDE, *sonde_args])
    return subprocess.run(["capsh", f"--drop={drop}", "--", "-c", command],
                          capture_output=True, text=True, timeout=30)


def status_fields(pid):
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f
                    if ":\t" in line)


def test_missing_capabilities_are_named():
    r = capsh("--listen", f"127.0.0.1:{free_port()}")
    assert r.returncode == 1
    assert r.stderr.strip() == ("sonde: missing privileges: need root, or "
                                "CAP_BPF and CAP_PERFMON (missing: CAP_BPF "
                                "CAP_PERFMON)")
    r = capsh("--listen", f"127.0.0.1:{free_port()}", drop="cap_perfmon,"
              "cap_sys_admin")
    assert r.returncode == 1 and "(missing: CAP_PERFMON)" in r.stderr


def test_check_reports_what_the_host_supports():
    r = subprocess.run([SONDE, "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout
    lines = {line.split()[0] + " " + line.split()[1]: line
             for line in r.stdout.splitlines() if len(line.split()) > 2}
    assert " ok " in lines["kernel BTF"]
    assert " ok " in lines["BPF ring"]
    assert "CAP_BPF" in r.stdout and "sonde can run on this host" in r.stdout

    r = capsh("--check")
    assert r.returncode == 1
    assert "capabilities           MISSING" in r.stdout
    assert "sonde cannot run on this host" in r.stdout


def test_capabilities_are_dropped_after_attach_and_metrics_flow(sonde, app):
    fields = status_fields(sonde.proc.pid)
    assert int(fields["CapEff"], 16) == KEPT
    assert int(fields["CapPrm"], 16) == KEPT
    assert int(fields["CapBnd"], 16) == KEPT
    assert int(fields["CapAmb"], 16) == 0
    assert fields["NoNewPrivs"] == "1"
    keepalive_requests(app.port, ["/after/drop"] * 7)
    assert sonde.settled_series(app.port, 7) == {
        ("GET", "200", "/after/drop"): 7}
    # The HTTP server's thread, having served, holds no capability.
    tasks = os.listdir(f"/proc/{sonde.proc.pid}/task")
    effective = {int(status_fields(f"{sonde.proc.pid}/task/{t}")["CapEff"],
                     16) for t in tasks}
    assert 0 in effective


def test_services_of_other_users_are_named_after_the_drop(sonde):
    """/proc/<pid>/environ is 0400 and owned by the process's user: naming
    a www-data or nobody service needs the capabilities sonde keeps."""
    port = free_port()
    env = dict(os.environ, OTEL_SERVICE_NAME="nobody-svc")
    server = Server(["setpriv", "--reuid=65534", "--regid=65534",
                     "--clear-groups", sys.executable,
                     os.path.join(SERVERS, "app.py"), str(port)], port,
                    env=env)
    try:
        keepalive_requests(port, ["/who"] * 3)
        sonde.settled_series(port, 3)
        names = {labels["service_name"] for name, labels, _ in
                 sonde.samples() if name == HISTOGRAM + "_count"
                 and labels.get("server_port") == str(port)}
        assert names == {"nobody-svc"}
    finally:
        server.stop()


def test_tls_endpoint(pki):
    s = Sonde("--tls-cert", str(pki / "server.pem"),
              "--tls-key", str(pki / "server.key"), ready_tls=pki / "ca.pem")
    try:
        status, headers, body = s.get("/metrics")  # trusting the test CA
        assert status == 200 and b"sonde_build_info" in body
        # curl, as a scraper would, trusting only the test CA.
        r = subprocess.run(["curl", "-sS", "--cacert", str(pki / "ca.pem"),
                            f"https://127.0.0.1:{s.port}/metrics"],
                           capture_output=True, text=True, timeout=10)
        assert r.returncode == 0 and "sonde_build_info" in r.stdout
        # Plain HTTP to the TLS port gets no metrics.
        with pytest.raises((http.client.HTTPException, OSError)):
            conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=5)
            conn.request("GET", "/metrics")
            resp = conn.getresponse()
            assert resp.status != 200 or b"sonde_" not in resp.read()
            raise http.client.HTTPException("answered, but not with metrics")
        # A client that does not trust the CA refuses the server.
        with pytest.raises(ssl.SSLError):
            ctx = ssl.create_default_context()
            with socket.create_connection(("127.0.0.1", s.port)) as raw:
                ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    finally:
        assert s.stop() == 0


def test_tls_flags_must_come_in_pairs_and_be_readable(pki, tmp_path):
    r = subprocess.run([SONDE, "--tls-cert", str(pki / "server.pem")],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert "--tls-cert and --tls-key go together" in r.stderr
    r = subprocess.run([SONDE, "--listen", f"127.0.0.1:{free_port()}",
                        "--tls-cert", str(tmp_path / "nope.pem"),
                        "--tls-key", str(pki / "server.key")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert r.stderr.strip() == (f"sonde: --tls-cert {tmp_path}/nope.pem: "
                                "No such file or directory")


def basic(user, password):
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def test_basic_auth(tmp_path):
    hashed = subprocess.run(["openssl", "passwd", "-6", "s3cret"],
                            capture_output=True, text=True,
                            check=True).stdout.strip()
    users = tmp_path / "users"
    users.write_text(f"# who may scrape\nprometheus:{hashed}\n")
    s = Sonde("--basic-auth-file", str(users))
    try:
        status, headers, _ = s.get("/metrics")
        assert status == 401
        assert headers["WWW-Authenticate"] == 'Basic realm="sonde"'
        assert s.get("/metrics", basic("prometheus", "wrong"))[0] == 401
        assert s.get("/metrics", basic("nobody", "s3cret"))[0] == 401
        status, _, body = s.get("/metrics", basic("prometheus", "s3cret"))
        assert status == 200 and b"sonde_build_info" in body
        # Probes stay open: they say nothing about the traffic.
        assert s.get("/healthz")[0] == 200
    finally:
        assert s.stop() == 0


def test_plain_text_password_file_is_rejected(tmp_path):
    users = tmp_path / "users"
    users.write_text("prometheus:hunter2\n")
    r = subprocess.run([SONDE, "--listen", f"127.0.0.1:{free_port()}",
                        "--basic-auth-file", str(users)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert r.stderr.strip() == (
        f"sonde: --basic-auth-file {users}:1: password is not a crypt(3) "
        "hash (make one with: openssl passwd -6)")


def test_hoarded_and_trickling_connections_do_not_stop_a_scrape(sonde):
    hoard = []
    try:
        for _ in range(300):
            hoard.append(socket.create_connection(("127.0.0.1", sonde.port)))
        slow = socket.create_connection(("127.0.0.1", sonde.port))
        hoard.append(slow)
        slow.sendall(b"GET /metr")  # and never the rest
        start = time.monotonic()
        status, _, body = sonde.get("/metrics")
        assert status == 200 and b"sonde_build_info" in body
        assert time.monotonic() - start < 5
    finally:
        for conn in hoard:
            conn.close()
