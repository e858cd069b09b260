/*
 * sha256.c — SHA-256 (FIPS 180-4, section 6.2) and HMAC-SHA-256
 * (RFC 2104), written for the peer handshake of the TCP transport.
 *
 * SHA-256 processes the message in 64-byte blocks: each block is
 * expanded into a 64-word schedule and mixed into the eight-word state
 * by 64 rounds.  The message is padded with 0x80, zeros, and its length
 * in bits as a big-endian 64-bit number, so that the padded length is a
 * multiple of 64 (FIPS 180-4, 5.1.1).  Everything is word arithmetic on
 * uint32_t; there are no data-indexed tables, so the timing does not
 * depend on the bytes hashed (only on their length).
 *
 * HMAC(K, m) = H((K0 ^ opad) || H((K0 ^ ipad) || m)), where K0 is the key
 * padded with zeros to the block size, or first hashed if it is longer
 * than a block (RFC 2104, section 2).
 *
 * Checked by test/tcp/test_sha256.c: the FIPS 180-4 example messages,
 * the million-'a' message, and the RFC 4231 HMAC test cases.
 */
#include "sha256.h"

#include <string.h>

static const uint32_t K[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
	0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
	0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
	0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
	0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
	0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
	0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
	0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
	0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
};

static uint32_t rotr(uint32_t x, unsigned n)
{
	return (x >> n) | (x << (32 - n));
}

static uint32_t load_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static void store_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* FIPS 180-4, 6.2.2: one block into the state. */
static void sha256_block(uint32_t h[8], const uint8_t *blk)
{
	uint32_t w[64], a, b, c, d, e, f, g, hh;

	for (int t = 0; t < 16; t++)
		w[t] = load_be32(blk + 4 * t);
	for (int t = 16; t < 64; t++) {
		uint32_t s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^
			      (w[t - 15] >> 3);
		uint32_t s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^
			      (w[t - 2] >> 10);
		w[t] = w[t - 16] + s0 + w[t - 7] + s1;
	}
	a = h[0], b = h[1], c = h[2], d = h[3];
	e = h[4], f = h[5], g = h[6], hh = h[7];
	for (int t = 0; t < 64; t++) {
		uint32_t S1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
		uint32_t ch = (e & f) ^ (~e & g);
		uint32_t t1 = hh + S1 + ch + K[t] + w[t];
		uint32_t S0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
		uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
		uint32_t t2 = S0 + maj;
		hh = g;
		g = f;
		f = e;
		e = d + t1;
		d = c;
		c = b;
		b = a;
		a = t1 + t2;
	}
	h[0] += a, h[1] += b, h[2] += c, h[3] += d;
	h[4] += e, h[5] += f, h[6] += g, h[7] += hh;
}

void sha256_init(sha256_ctx *s)
{
	/* FIPS 180-4, 5.3.3 */
	static const uint32_t h0[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372,
					0xa54ff53a, 0x510e527f, 0x9b05688c,
					0x1f83d9ab, 0x5be0cd19 };
	memcpy(s->h, h0, sizeof(h0));
	s->total = 0;
	s->used = 0;
}

void sha256_update(sha256_ctx *s, const void *data, size_t len)
{
	const uint8_t *p = data;

	s->total += len;
	if (s->used) {
		size_t take = SHA256_BLOCK - s->used;
		if (take > len)
			take = len;
		memcpy(s->buf + s->used, p, take);
		s->used += take;
		p += take;
		len -= take;
		if (s->used < SHA256_BLOCK)
			return;
		sha256_block(s->h, s->buf);
		s->used = 0;
	}
	for (; len >= SHA256_BLOCK; p += SHA256_BLOCK, len -= SHA256_BLOCK)
		sha256_block(s->h, p);
	if (len) {
		memcpy(s->buf, p, len);
		s->used = len;
	}
}

void sha256_final(sha256_ctx *s, uint8_t out[SHA256_SIZE])
{
	uint64_t bits = s->total * 8;

	/* FIPS 180-4, 5.1.1: 0x80, zeros to 56 mod 64, the bit length */
	s->buf[s->used++] = 0x80;
	if (s->used > 56) {
		memset(s->buf + s->used, 0, SHA256_BLOCK - s->used);
		sha256_block(s->h, s->buf);
		s->used = 0;
	}
	memset(s->buf + s->used, 0, 56 - s->used);
	store_be32(s->buf + 56, (uint32_t)(bits >> 32));
	store_be32(s->buf + 60, (uint32_t)bits);
	sha256_block(s->h, s->buf);
	for (int i = 0; i < 8; i++)
		store_be32(out + 4 * i, s->h[i]);
	secure_wipe(s, sizeof(*s));
}

void sha256_digest(const void *data, size_t len, uint8_t out[SHA256_SIZE])
{
	sha256_ctx s;
	sha256_init(&s);
	sha256_update(&s, data, len);
	sha256_final(&s, out);
}

void hmac_sha256(const void *key, size_t key_len, size_t n,
		 const void *const *part, const size_t *len,
		 uint8_t out[SHA256_SIZE])
{
	uint8_t k0[SHA256_BLOCK], pad[SHA256_BLOCK];
	uint8_t inner[SHA256_SIZE];
	sha256_ctx s;

	/* RFC 2104, section 2: a key longer than a block is hashed first */
	memset(k0, 0, sizeof(k0));
	if (key_len > SHA256_BLOCK)
		sha256_digest(key, key_len, k0);
	else if (key_len)
		memcpy(k0, key, key_len);

	for (int i = 0; i < SHA256_BLOCK; i++)
		pad[i] = k0[i] ^ 0x36;
	sha256_init(&s);
	sha256_update(&s, pad, sizeof(pad));
	for (size_t i = 0; i < n; i++)
		sha256_update(&s, part[i], len[i]);
	sha256_final(&s, inner);

	for (int i = 0; i < SHA256_BLOCK; i++)
		pad[i] = k0[i] ^ 0x5c;
	sha256_init(&s);
	sha256_update(&s, pad, sizeof(pad));
	sha256_update(&s, inner, sizeof(inner));
	sha256_final(&s, out);

	secure_wipe(k0, sizeof(k0));
	secure_wipe(pad, sizeof(pad));
	secure_wipe(inner, sizeof(inner));
}

int ct_equal(const void *a, const void *b, size_t n)
{
	const volatile uint8_t *x = a, *y = b;
	uint8_t d = 0;

	for (size_t i = 0; i < n; i++)
		d |= (uint8_t)(x[i] ^ y[i]);
	/* 1 when d == 0, without a data-dependent branch */
	return (int)(1 & (((unsigned)d - 1) >> 8));
}

void secure_wipe(void *p, size_t n)
{
	volatile uint8_t *v = p;
	while (n--)
		*v++ = 0;
}
