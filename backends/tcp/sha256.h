/*
 * sha256.h — SHA-256 (FIPS 180-4) and HMAC-SHA-256 (RFC 2104), for the
 * peer authentication of the TCP transport (tcp_auth.c).
 *
 * They live in the transport, not in the engine: lib/ keeps no
 * cryptography and no dependencies.  The implementation is a plain,
 * portable one; it is checked against the FIPS 180-4 examples and the
 * RFC 4231 HMAC vectors by test/tcp/test_sha256.c.  Nothing here is
 * secret-dependent in its timing except through the data it hashes
 * (no table lookups indexed by data), and ct_equal() compares
 * MACs in constant time.
 */
#ifndef TCP_SHA256_H
#define TCP_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_SIZE  32
#define SHA256_BLOCK 64

typedef struct sha256_ctx {
	uint32_t h[8];
	uint64_t total; /* bytes hashed so far */
	uint8_t buf[SHA256_BLOCK];
	size_t used; /* bytes waiting in buf */
} sha256_ctx;

void sha256_init(sha256_ctx *s);
void sha256_update(sha256_ctx *s, const void *data, size_t len);
void sha256_final(sha256_ctx *s, uint8_t out[SHA256_SIZE]);
void sha256_digest(const void *data, size_t len, uint8_t out[SHA256_SIZE]);

/* HMAC-SHA-256 of the concatenation of n parts (part[i], len[i]). */
void hmac_sha256(const void *key, size_t key_len, size_t n,
		 const void *const *part, const size_t *len,
		 uint8_t out[SHA256_SIZE]);

/* 1 if a and b (n bytes each) are equal; the time taken does not depend
 * on where they differ. */
int ct_equal(const void *a, const void *b, size_t n);

/* Overwrite n bytes at p with zeros in a way the compiler keeps. */
void secure_wipe(void *p, size_t n);

#endif
