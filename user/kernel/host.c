#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kernel/host.h"
#include "util/log.h"

int host_check_btf(const char *path)
{
	if (access(path, R_OK) == 0)
		return 0;
	log_error("kernel has no BTF at %s: sonde needs a kernel built with "
		  "CONFIG_DEBUG_INFO_BTF=y",
		  path);
	return -ENOENT;
}

int host_ensure_tracefs(void)
{
	if (access(HOST_TRACEFS "/events", F_OK) == 0)
		return 0;
	log_info("tracefs not mounted at " HOST_TRACEFS ": mounting it");
	if (mount("tracefs", HOST_TRACEFS, "tracefs", 0, NULL)) {
		int err = errno;

		log_error(
			"cannot mount tracefs at " HOST_TRACEFS ": %s "
			"(mount it with: mount -t tracefs tracefs " HOST_TRACEFS
			")",
			strerror(err));
		return -err;
	}
	return 0;
}

static const char *listen_hint(int err)
{
	switch (err) {
	case EADDRINUSE:
		return " (another sonde or another server uses it; pick "
		       "another with --listen)";
	case EADDRNOTAVAIL:
		return " (not an address of this host)";
	case EACCES:
		return " (ports below 1024 need CAP_NET_BIND_SERVICE)";
	}
	return "";
}

int host_listen(const char *host, const char *port)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE,
	};
	struct addrinfo *ai;
	int fd, one = 1, err;

	err = getaddrinfo(host, port, &hints, &ai);
	if (err) {
		log_error("cannot listen on %s:%s: %s", host, port,
			  gai_strerror(err));
		return -EINVAL;
	}
	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
		    ai->ai_protocol);
	if (fd < 0) {
		err = errno;
		goto fail;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 64)) {
		err = errno;
		close(fd);
		goto fail;
	}
	freeaddrinfo(ai);
	return fd;
fail:
	freeaddrinfo(ai);
	log_error("cannot listen on %s%s%s:%s: %s%s",
		  strchr(host, ':') ? "[" : "", host,
		  strchr(host, ':') ? "]" : "", port, strerror(err),
		  listen_hint(err));
	return -err;
}
