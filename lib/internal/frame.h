/*
 * internal/frame.h — pieces of the wire codec shared by its files
 * (lib/codec.c, lib/codec_coalesce.c) and reused by the TCP transport's
 * handshake frames: the frame header with its CRC, and the hello's
 * payload, which the authenticated hello carries before its nonce
 * (backends/tcp/tcp_auth.c).  Static inline: the engine's internal symbols are local to its
 * object, so backends share source, not symbols; nothing here is
 * installed (docs/wire-protocol.md describes the bytes).
 */
#ifndef SR_INTERNAL_FRAME_H
#define SR_INTERNAL_FRAME_H

#include <stdint.h>
#include <string.h>

#include "seshat/codec.h"

static inline void frame_put_le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint64_t frame_get_le(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* Write the header of a frame of `type` whose plen payload bytes are
 * already at frame + SR_FRAME_HDR_SIZE, CRC included.  group is 0 but in
 * a message, or a hello's feature bits. */
static inline void frame_seal(uint8_t *frame, uint32_t type, uint32_t group,
			      uint32_t plen)
{
	frame_put_le(frame, SR_FRAME_MAGIC, 4);
	frame_put_le(frame + 4, SR_FRAME_VERSION, 2);
	frame_put_le(frame + 6, type, 2);
	frame_put_le(frame + 8, group, 4);
	frame_put_le(frame + 12, plen, 4);
	uint32_t crc = sr_crc32c(0, frame, 16);
	crc = sr_crc32c(crc, frame + SR_FRAME_HDR_SIZE, plen);
	frame_put_le(frame + 16, crc, 4);
}

/* Header (sr_codec_header()), presence of the whole payload, and CRC. */
static inline int frame_verify(const uint8_t *p, size_t len,
			       uint32_t max_payload, sr_frame_hdr *hdr)
{
	int rc = sr_codec_header(p, len, max_payload, hdr);
	if (rc)
		return rc;
	if (len - SR_FRAME_HDR_SIZE < hdr->len)
		return SR_EPROTO; /* truncated */
	uint32_t crc = sr_crc32c(0, p, 16);
	crc = sr_crc32c(crc, p + SR_FRAME_HDR_SIZE, hdr->len);
	return crc == hdr->crc ? 0 : SR_EPROTO;
}

/* The SR_HELLO_PAYLOAD bytes of a hello.  SR_EINVAL if the address does
 * not fit with its NUL. */
static inline int frame_put_hello(uint8_t *p, const sr_hello *h)
{
	size_t alen = strnlen(h->addr, SR_ADDR_MAX);
	if (alen >= SR_ADDR_MAX)
		return SR_EINVAL;
	frame_put_le(p, h->cluster, 8);
	frame_put_le(p + 8, h->from, 8);
	frame_put_le(p + 16, h->to, 8);
	memset(p + 24, 0, SR_ADDR_MAX);
	memcpy(p + 24, h->addr, alen);
	return 0;
}

/* SR_EPROTO unless the address is NUL-terminated and zero-padded (one
 * encoding per hello). */
static inline int frame_get_hello(const uint8_t *p, sr_hello *out)
{
	const uint8_t *a = p + 24;
	size_t alen = strnlen((const char *)a, SR_ADDR_MAX);
	if (alen == SR_ADDR_MAX)
		return SR_EPROTO; /* no terminating NUL */
	for (size_t i = alen; i < SR_ADDR_MAX; i++)
		if (a[i])
			return SR_EPROTO;
	out->cluster = frame_get_le(p, 8);
	out->from = frame_get_le(p + 8, 8);
	out->to = frame_get_le(p + 16, 8);
	memcpy(out->addr, a, SR_ADDR_MAX);
	return 0;
}

#endif
