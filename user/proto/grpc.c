#include <string.h>
#include <strings.h>

#include "proto/grpc.h"

bool grpc_content_type(const uint8_t *v, size_t len)
{
	static const char base[] = "application/grpc";
	size_t n = sizeof(base) - 1;

	if (len < n || strncasecmp((const char *)v, base, n) != 0)
		return false;
	return len == n || v[n] == '+' || v[n] == ';';
}

int grpc_status_parse(const uint8_t *v, size_t len)
{
	int code = 0;

	if (len == 0 || len > 2)
		return GRPC_UNKNOWN;
	for (size_t i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return GRPC_UNKNOWN;
		code = code * 10 + (v[i] - '0');
	}
	return code <= GRPC_MAX_CODE ? code : GRPC_UNKNOWN;
}

uint64_t grpc_timeout_parse(const uint8_t *v, size_t len)
{
	uint64_t value = 0, unit;

	if (len < 2 || len > 9)
		return 0;
	for (size_t i = 0; i + 1 < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return 0;
		value = value * 10 + (v[i] - '0');
	}
	switch (v[len - 1]) {
	case 'H':
		unit = 3600000000000ULL;
		break;
	case 'M':
		unit = 60000000000ULL;
		break;
	case 'S':
		unit = 1000000000ULL;
		break;
	case 'm':
		unit = 1000000ULL;
		break;
	case 'u':
		unit = 1000ULL;
		break;
	case 'n':
		unit = 1;
		break;
	default:
		return 0;
	}
	return value > UINT64_MAX / unit ? UINT64_MAX : value * unit;
}

bool grpc_deadline_passed(uint64_t timeout_ns, uint64_t elapsed_ns)
{
	return timeout_ns && elapsed_ns >= timeout_ns - timeout_ns / 4;
}

int grpc_status_from_http(int http_status)
{
	switch (http_status) {
	case 400:
		return 13; /* INTERNAL */
	case 401:
		return 16; /* UNAUTHENTICATED */
	case 403:
		return 7; /* PERMISSION_DENIED */
	case 404:
		return 12; /* UNIMPLEMENTED */
	case 429:
	case 502:
	case 503:
	case 504:
		return 14; /* UNAVAILABLE */
	default:
		return GRPC_UNKNOWN;
	}
}

int grpc_status_from_reset(uint32_t error_code)
{
	switch (error_code) {
	case 0x7:	   /* REFUSED_STREAM: the server did not start it */
		return 14; /* UNAVAILABLE */
	case 0x8:	   /* CANCEL */
		return 1;  /* CANCELLED */
	case 0xb:	   /* ENHANCE_YOUR_CALM */
		return 8;  /* RESOURCE_EXHAUSTED */
	case 0xc:	   /* INADEQUATE_SECURITY */
		return 7;  /* PERMISSION_DENIED */
	default:
		return 13; /* INTERNAL */
	}
}

const char *grpc_status_name(int code)
{
	static const char *const names[GRPC_MAX_CODE + 1] = {
		"OK",
		"CANCELLED",
		"UNKNOWN",
		"INVALID_ARGUMENT",
		"DEADLINE_EXCEEDED",
		"NOT_FOUND",
		"ALREADY_EXISTS",
		"PERMISSION_DENIED",
		"RESOURCE_EXHAUSTED",
		"FAILED_PRECONDITION",
		"ABORTED",
		"OUT_OF_RANGE",
		"UNIMPLEMENTED",
		"INTERNAL",
		"UNAVAILABLE",
		"DATA_LOSS",
		"UNAUTHENTICATED",
	};

	return code >= 0 && code <= GRPC_MAX_CODE ? names[code] :
						    names[GRPC_UNKNOWN];
}

static bool name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

size_t grpc_method(const char *path, size_t len, char *out, size_t outsz)
{
	size_t slash = 0;

	if (len < 4 || path[0] != '/' || len - 1 >= outsz)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if (path[i] == '/' && !slash)
			slash = i;
		else if (!name_char(path[i]))
			return 0;
	}
	/* Both names non-empty: "/S/M" at the shortest. */
	if (slash < 2 || slash == len - 1)
		return 0;
	memcpy(out, path + 1, len - 1);
	out[len - 1] = '\0';
	return len - 1;
}
