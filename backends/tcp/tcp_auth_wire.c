/*
 * tcp_auth_wire.c — the frames of the authenticated handshake (tcp_auth.h
 * has their layouts) and the proof they carry: pure functions of bytes,
 * with no transport state, so that test/tcp/fuzz_auth.c can drive the
 * decoders directly and test/tcp/test_tcp_auth.c can speak the protocol
 * from raw sockets.  tcp_auth.c runs the handshake on top of them.
 *
 * Every decoder checks the whole frame before it reads a field: magic,
 * version, type, exact payload size and CRC.  Anything else is
 * SR_EPROTO; nothing is trusted, nothing is read past `len`.
 */
#include "sha256.h"
#include "tcp_auth.h"

#include "internal/frame.h"

#include <string.h>

static const char auth_context[] = "seshat peer auth v1";

static uint32_t get_u16(const uint8_t *p)
{
	return (uint32_t)frame_get_le(p, 2);
}

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)frame_get_le(p, 4);
}

static uint32_t payload_size(uint32_t type)
{
	switch (type) {
	case SR_FRAME_HELLO:
		return SR_HELLO_PAYLOAD;
	case TCP_FRAME_AUTH_HELLO:
		return TCP_AUTH_HELLO_PAYLOAD;
	case TCP_FRAME_CHALLENGE:
		return TCP_CHALLENGE_PAYLOAD;
	case TCP_FRAME_PROOF:
		return TCP_PROOF_PAYLOAD;
	default:
		return 0;
	}
}

int tcp_auth_decode_header(const void *buf, size_t len, int challenge,
			   sr_frame_hdr *h)
{
	const uint8_t *p = buf;

	if (!buf || len < SR_FRAME_HDR_SIZE)
		return SR_EPROTO;
	if (get_u32(p) != SR_FRAME_MAGIC || get_u16(p + 4) != SR_FRAME_VERSION)
		return SR_EPROTO;
	uint32_t type = get_u16(p + 6), plen = get_u32(p + 12);
	if (plen > TCP_HS_MAX_PAYLOAD)
		return SR_ETOOBIG;
	int ok = challenge ? type == TCP_FRAME_CHALLENGE
			   : (type == SR_FRAME_HELLO ||
			      type == TCP_FRAME_AUTH_HELLO ||
			      type == TCP_FRAME_PROOF);
	/* A message frame before the handshake is done: let the caller
	 * see it (and refuse it with its own words). */
	if (!challenge && type >= 1 && type < SR_FRAME_HELLO)
		ok = 1;
	if (!ok || (payload_size(type) && plen != payload_size(type)))
		return SR_EPROTO;
	h->type = type;
	h->group = get_u32(p + 8);
	h->len = plen;
	h->crc = get_u32(p + 16);
	return 0;
}

/* The whole frame is there, of this type and size, with a good CRC.  The
 * group field is 0, except in an auth hello: its feature bits. */
static int frame_check(const uint8_t *p, size_t len, uint32_t type)
{
	uint32_t plen = payload_size(type);
	if (!p || len < SR_FRAME_HDR_SIZE + (size_t)plen ||
	    get_u32(p) != SR_FRAME_MAGIC ||
	    get_u16(p + 4) != SR_FRAME_VERSION || get_u16(p + 6) != type ||
	    (type != TCP_FRAME_AUTH_HELLO && get_u32(p + 8) != 0) ||
	    get_u32(p + 12) != plen)
		return SR_EPROTO;
	uint32_t crc = sr_crc32c(0, p, 16);
	crc = sr_crc32c(crc, p + SR_FRAME_HDR_SIZE, plen);
	return crc == get_u32(p + 16) ? 0 : SR_EPROTO;
}

int tcp_auth_decode_hello(const void *buf, size_t len, sr_hello *h,
			  uint8_t nonce[TCP_NONCE_SIZE])
{
	const uint8_t *f = buf;
	if (frame_check(f, len, TCP_FRAME_AUTH_HELLO))
		return SR_EPROTO;
	const uint8_t *p = f + SR_FRAME_HDR_SIZE;
	if (frame_get_hello(p, h))
		return SR_EPROTO;
	h->features = get_u32(f + 8);
	memcpy(nonce, p + SR_HELLO_PAYLOAD, TCP_NONCE_SIZE);
	return 0;
}

int tcp_auth_decode_challenge(const void *buf, size_t len,
			      uint8_t nonce[TCP_NONCE_SIZE],
			      uint8_t mac[TCP_MAC_SIZE])
{
	const uint8_t *f = buf;
	if (frame_check(f, len, TCP_FRAME_CHALLENGE))
		return SR_EPROTO;
	memcpy(nonce, f + SR_FRAME_HDR_SIZE, TCP_NONCE_SIZE);
	memcpy(mac, f + SR_FRAME_HDR_SIZE + TCP_NONCE_SIZE, TCP_MAC_SIZE);
	return 0;
}

int tcp_auth_decode_proof(const void *buf, size_t len,
			  uint8_t mac[TCP_MAC_SIZE])
{
	const uint8_t *f = buf;
	if (frame_check(f, len, TCP_FRAME_PROOF))
		return SR_EPROTO;
	memcpy(mac, f + SR_FRAME_HDR_SIZE, TCP_MAC_SIZE);
	return 0;
}

int tcp_auth_encode_hello(const sr_hello *h,
			  const uint8_t nonce[TCP_NONCE_SIZE],
			  uint8_t out[TCP_AUTH_HELLO_FRAME])
{
	uint8_t *p = out + SR_FRAME_HDR_SIZE;
	int rc = frame_put_hello(p, h);

	if (rc)
		return rc;
	memcpy(p + SR_HELLO_PAYLOAD, nonce, TCP_NONCE_SIZE);
	frame_seal(out, TCP_FRAME_AUTH_HELLO, h->features,
		   TCP_AUTH_HELLO_PAYLOAD);
	return 0;
}

void tcp_auth_encode_challenge(const uint8_t nonce[TCP_NONCE_SIZE],
			       const uint8_t mac[TCP_MAC_SIZE],
			       uint8_t out[TCP_CHALLENGE_FRAME])
{
	memcpy(out + SR_FRAME_HDR_SIZE, nonce, TCP_NONCE_SIZE);
	memcpy(out + SR_FRAME_HDR_SIZE + TCP_NONCE_SIZE, mac, TCP_MAC_SIZE);
	frame_seal(out, TCP_FRAME_CHALLENGE, 0, TCP_CHALLENGE_PAYLOAD);
}

void tcp_auth_encode_proof(const uint8_t mac[TCP_MAC_SIZE],
			   uint8_t out[TCP_PROOF_FRAME])
{
	memcpy(out + SR_FRAME_HDR_SIZE, mac, TCP_MAC_SIZE);
	frame_seal(out, TCP_FRAME_PROOF, 0, TCP_PROOF_PAYLOAD);
}

void tcp_auth_mac(const uint8_t *key, size_t key_len, int prover,
		  const uint8_t hello[TCP_AUTH_HELLO_PAYLOAD],
		  const uint8_t nonce_a[TCP_NONCE_SIZE],
		  uint8_t out[TCP_MAC_SIZE])
{
	uint8_t who = (uint8_t)prover;
	const void *part[4] = { auth_context, &who, hello, nonce_a };
	size_t len[4] = { sizeof(auth_context) - 1, 1, TCP_AUTH_HELLO_PAYLOAD,
			  TCP_NONCE_SIZE };
	hmac_sha256(key, key_len, 4, part, len, out);
}
