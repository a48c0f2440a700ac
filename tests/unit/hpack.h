/* HTTP/2 header blocks for the tests, made by libnghttp2's HPACK encoder
 * as a real peer's would be. */
#ifndef SONDE_TEST_HPACK_H
#define SONDE_TEST_HPACK_H

#include <nghttp2/nghttp2.h>

#include "unit.h"

/* Encodes fields (name, value, name, value, ..., NULL; at most 32 pairs)
 * with enc into dst; returns the block's length, 0 (and a failed check)
 * when it does not fit. */
static inline size_t hpack_encode(nghttp2_hd_deflater *enc,
				  const char *const *fields, uint8_t *dst,
				  size_t room)
{
	nghttp2_nv nv[32];
	size_t n = 0;
	ssize_t len;

	for (; fields[2 * n] && n < 32; n++) {
		nv[n].name = (uint8_t *)fields[2 * n];
		nv[n].namelen = strlen(fields[2 * n]);
		nv[n].value = (uint8_t *)fields[2 * n + 1];
		nv[n].valuelen = strlen(fields[2 * n + 1]);
		nv[n].flags = NGHTTP2_NV_FLAG_NONE;
	}
	len = nghttp2_hd_deflate_hd(enc, dst, room, nv, n);
	CHECK(len > 0);
	return len > 0 ? (size_t)len : 0;
}

#endif
