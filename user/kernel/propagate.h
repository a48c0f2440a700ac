/* --trace-propagation: the userspace side of bpf/core/propagate.bpf.h.
 * Leaves its programs out of the load when the option is off; when on,
 * checks what they need, attaches the sock_ops program to the root of
 * cgroup v2 and the sk_msg program to the socket map the first fills, and
 * reports what they did with each request as
 * sonde_trace_propagation_total{result}. capture.c calls these around
 * its load; one thread, at start and at exit. */
#ifndef SONDE_PROPAGATE_H
#define SONDE_PROPAGATE_H

#include <stdbool.h>
#include <stdint.h>

struct bpf_object;
struct bpf_program;

/* Before load. Off: neither program is loaded and their socket map is
 * not created. On: checks that the kernel loads sock_ops and sk_msg
 * programs and socket hash maps and that a cgroup v2 hierarchy is
 * mounted, sizes the socket map to max_conns (0: its built-in size) and
 * registers the metric. Returns 0, or -errno after logging one line that
 * says what is missing and what to do. */
int propagate_prepare(struct bpf_object *obj, bool on, uint32_t max_conns);

/* Whether prog is one of the two propagation programs, which
 * propagate_attach attaches (the tracepoint loop leaves them alone). */
bool propagate_owns(const struct bpf_program *prog);

/* After load: attaches both programs when propagate_prepare was told
 * on, and does nothing otherwise. Returns 0, or -errno after logging
 * which attach failed and what to do; what it attached stays for
 * propagate_detach. */
int propagate_attach(struct bpf_object *obj);

/* Detaches both programs and stops reading the counters; call before
 * the object is destroyed. Safe when nothing was attached, and twice. */
void propagate_detach(void);

#endif
