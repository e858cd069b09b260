/*
 * fuzz_auth.c — libFuzzer target for the decoders of the authenticated
 * handshake (backends/tcp/tcp_auth.c; `make fuzz`).
 *
 * The first input byte picks a mode:
 *   bit 0 clear: the rest is taken as raw bytes from the wire;
 *   bit 0 set:   the harness first fixes up the length field and CRC of
 *                the frame (and, with bit 1, sets its type to one of the
 *                handshake types), so the fuzzer gets past the checksum
 *                and explores the field checks.
 * The bytes are then read as a stream of frames the way the acceptor
 * reads them before a connection is bound (header with the handshake
 * limit, whole frame, decode), and once more as the connector reads a
 * challenge.  Properties: nothing is read outside the input (ASan); a
 * header never accepts more than the handshake limit; every frame that
 * decodes re-encodes to the same bytes (the encoding is canonical, so
 * the MAC over a received hello is the MAC its sender computed).  The
 * decoders are also run on whatever is left of the stream: they read one
 * frame and leave what follows it (the connection hands them exactly one
 * frame), so there only the frame's own bytes must re-encode alike — a
 * valid frame followed by more bytes once tripped an exact-length check
 * here, after libFuzzer found a second frame's CRC.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../backends/tcp/tcp_auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
	if (!cond)
		__builtin_trap(); /* a property failed: make libFuzzer stop */
}

static void one_frame(const uint8_t *f, size_t flen, uint32_t type)
{
	uint8_t re[TCP_AUTH_HELLO_FRAME];
	uint8_t nonce[TCP_NONCE_SIZE], mac[TCP_MAC_SIZE];
	sr_hello h;

	switch (type) {
	case TCP_FRAME_AUTH_HELLO:
		if (tcp_auth_decode_hello(f, flen, &h, nonce))
			return;
		check(flen >= TCP_AUTH_HELLO_FRAME);
		check(tcp_auth_encode_hello(&h, nonce, re) == 0);
		check(memcmp(re, f, TCP_AUTH_HELLO_FRAME) == 0);
		/* the MAC is a function of the bytes: deterministic */
		uint8_t m1[TCP_MAC_SIZE], m2[TCP_MAC_SIZE];
		tcp_auth_mac(nonce, sizeof(nonce), TCP_PROVER_ACCEPTOR,
			     f + SR_FRAME_HDR_SIZE, nonce, m1);
		tcp_auth_mac(nonce, sizeof(nonce), TCP_PROVER_ACCEPTOR,
			     re + SR_FRAME_HDR_SIZE, nonce, m2);
		check(memcmp(m1, m2, sizeof(m1)) == 0);
		break;
	case TCP_FRAME_CHALLENGE:
		if (tcp_auth_decode_challenge(f, flen, nonce, mac))
			return;
		check(flen >= TCP_CHALLENGE_FRAME);
		tcp_auth_encode_challenge(nonce, mac, re);
		check(memcmp(re, f, TCP_CHALLENGE_FRAME) == 0);
		break;
	case TCP_FRAME_PROOF:
		if (tcp_auth_decode_proof(f, flen, mac))
			return;
		check(flen >= TCP_PROOF_FRAME);
		tcp_auth_encode_proof(mac, re);
		check(memcmp(re, f, TCP_PROOF_FRAME) == 0);
		break;
	case SR_FRAME_HELLO:
		if (sr_codec_decode_hello(f, flen, &h) == 0)
			check(flen == SR_HELLO_FRAME_SIZE);
		break;
	default:
		break;
	}
}

/* Frames one after another, as a connection in its handshake reads them
 * (challenge: as the connector reads the acceptor's answer). */
static void read_stream(const uint8_t *buf, size_t len, int challenge)
{
	size_t off = 0;
	while (len - off >= SR_FRAME_HDR_SIZE) {
		sr_frame_hdr h;
		if (tcp_auth_decode_header(buf + off, len - off, challenge, &h))
			return;
		check(h.len <= TCP_HS_MAX_PAYLOAD);
		size_t flen = SR_FRAME_HDR_SIZE + (size_t)h.len;
		if (len - off < flen)
			return;
		one_frame(buf + off, flen, h.type);
		/* the decoders alone, on any prefix of what is left */
		one_frame(buf + off, len - off, TCP_FRAME_AUTH_HELLO);
		one_frame(buf + off, len - off, TCP_FRAME_CHALLENGE);
		one_frame(buf + off, len - off, TCP_FRAME_PROOF);
		off += flen;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint16_t types[4] = { SR_FRAME_HELLO, TCP_FRAME_AUTH_HELLO,
					   TCP_FRAME_CHALLENGE,
					   TCP_FRAME_PROOF };
	if (size < 1)
		return 0;
	size_t len = size - 1;
	uint8_t *buf = malloc(len ? len : 1);
	memcpy(buf, data + 1, len);
	if ((data[0] & 1) && len >= SR_FRAME_HDR_SIZE) {
		if (data[0] & 2) {
			uint16_t t = types[(data[0] >> 2) & 3];
			buf[6] = (uint8_t)t;
			buf[7] = (uint8_t)(t >> 8);
		}
		uint32_t plen = (uint32_t)(len - SR_FRAME_HDR_SIZE);
		for (int i = 0; i < 4; i++)
			buf[12 + i] = (uint8_t)(plen >> (8 * i));
		uint32_t crc = sr_crc32c(0, buf, 16);
		crc = sr_crc32c(crc, buf + SR_FRAME_HDR_SIZE, plen);
		for (int i = 0; i < 4; i++)
			buf[16 + i] = (uint8_t)(crc >> (8 * i));
	}
	read_stream(buf, len, 0);
	read_stream(buf, len, 1);
	free(buf);
	return 0;
}
