/* Calls of the functions named with --uprobe BINARY:SYMBOL (struct
 * sonde_func_event), timed in sonde_function_duration_seconds under
 * their symbol: the protocol proto_func. */
#ifndef SONDE_FUNC_H
#define SONDE_FUNC_H

#include "proto/proto.h"

#endif
