"""Service names from the name a process was started as: a link to a
multi-call binary (Debian's /usr/bin/redis-server -> redis-check-rdb) names
the process after the link, not after the file it resolves to; a process
that rewrites its title to "<name>: <role>" keeps its executable's name."""
import os

from conftest import (HISTOGRAM, NGINX_CONF, NGINX_SITE, Server, free_port,
                      keepalive_requests)
# The fixture that builds tests/e2e/servers/goapp.go once per module.
from test_go import goapp  # noqa: F401


def services_on(sonde, port):
    """The service names of the server series on port."""
    return {labels["service_name"] for name, labels, _ in sonde.samples()
            if name == HISTOGRAM + "_count"
            and labels["server_port"] == str(port)}


def test_a_link_to_a_binary_names_its_process(sonde, goapp, tmp_path):
    link = tmp_path / "multi-call-svc"
    link.symlink_to(goapp)
    port = free_port()
    server = Server([str(link), "serve", f"127.0.0.1:{port}"], port)
    try:
        assert os.path.basename(os.readlink(f"/proc/{server.proc.pid}/exe")) \
            == "goapp"
        keepalive_requests(port, ["/items/1"] * 4 + ["/fail"] * 2)
        assert sonde.settled_series(port, 6) == {
            ("GET", "200", "/items/{id}"): 4,
            ("GET", "500", "/fail"): 2,
        }
        assert services_on(sonde, port) == {"multi-call-svc"}
    finally:
        server.stop()


def test_a_rewritten_title_keeps_the_executables_name(sonde, tmp_path):
    """nginx started through a link named edge-proxy rewrites its title
    to "nginx: master process ..." and "nginx: worker process": no trace
    of the link is left, and the executable names it."""
    link = tmp_path / "edge-proxy"
    link.symlink_to("/usr/sbin/nginx")
    port = free_port()
    conf = tmp_path / "nginx.conf"
    conf.write_text(NGINX_CONF.format(
        dir=tmp_path,
        servers=NGINX_SITE.format(dir=tmp_path, port=port, listen="")))
    server = Server([str(link), "-c", str(conf), "-p", str(tmp_path)], port)
    try:
        keepalive_requests(port, ["/"] * 3 + ["/fail"] * 2)
        assert sonde.settled_series(port, 5) == {
            ("GET", "200", "/"): 3,
            ("GET", "503", "/fail"): 2,
        }
        assert services_on(sonde, port) == {"nginx"}
    finally:
        server.stop()
