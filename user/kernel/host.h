/* What sonde needs from the host, checked before anything is loaded, each
 * failure reported as one line that says what to do. */
#ifndef SONDE_HOST_H
#define SONDE_HOST_H

#define HOST_BTF_PATH "/sys/kernel/btf/vmlinux"
#define HOST_TRACEFS "/sys/kernel/tracing"

/* Returns 0 when the kernel's BTF is readable at path (HOST_BTF_PATH);
 * -ENOENT after logging. */
int host_check_btf(const char *path);

/* Mounts tracefs at HOST_TRACEFS when it is not there (saying so).
 * Returns 0, or -errno after logging. */
int host_ensure_tracefs(void);

/* Binds and listens on host:port. Returns the socket, or -errno after
 * logging a line that names the address (in use, not local, ...). */
int host_listen(const char *host, const char *port);

#endif
