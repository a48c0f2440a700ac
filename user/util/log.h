/* The one error printer: "sonde: <message>" on stderr. Debug lines only
 * with -v. */
#ifndef SONDE_LOG_H
#define SONDE_LOG_H

#include <stdbool.h>

extern bool log_verbose;

void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
