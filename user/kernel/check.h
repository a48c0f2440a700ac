/* sonde --check: what this host supports, one line per need, for an
 * operator deciding whether sonde can run here. */
#ifndef SONDE_CHECK_H
#define SONDE_CHECK_H

/* Prints the report on stdout. Returns 0 when sonde can run here, 1 when
 * something it needs is missing. */
int check_host(void);

#endif
