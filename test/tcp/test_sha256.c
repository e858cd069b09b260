/*
 * test_sha256.c — the transport's SHA-256 and HMAC-SHA-256
 * (backends/tcp/sha256.c) against published vectors: the FIPS 180-4
 * example messages (one block, two blocks, a million 'a'), every RFC 4231
 * HMAC-SHA-256 test case (keys shorter than, equal to and longer than a
 * block), messages whose lengths sit on the padding boundaries, fed whole
 * and one byte at a time, and the constant-time comparison.
 */
#include "../../backends/tcp/sha256.h"
#include "testlib.h"

static void unhex(const char *hex, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		sscanf(hex + 2 * i, "%2x", &v);
		out[i] = (uint8_t)v;
	}
}

static int digest_is(const uint8_t *d, const char *hex, size_t n)
{
	uint8_t want[SHA256_SIZE];
	unhex(hex, want, n);
	if (memcmp(d, want, n) == 0)
		return 1;
	fprintf(stderr, "  got  ");
	for (size_t i = 0; i < n; i++)
		fprintf(stderr, "%02x", d[i]);
	fprintf(stderr, "\n  want %s\n", hex);
	return 0;
}

TEST(test_sha256_fips_180_4_examples)
{
	uint8_t d[SHA256_SIZE];

	sha256_digest("", 0, d);
	CHECK(digest_is(d,
			"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca4"
			"95991b7852b855",
			32));
	sha256_digest("abc", 3, d);
	CHECK(digest_is(d,
			"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb4"
			"10ff61f20015ad",
			32));
	const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnop"
			  "nopq";
	sha256_digest(two, strlen(two), d);
	CHECK(digest_is(d,
			"248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6"
			"ecedd419db06c1",
			32));
}

TEST(test_sha256_million_a_in_odd_chunks)
{
	static uint8_t a[1000];
	uint8_t d[SHA256_SIZE];
	sha256_ctx s;

	memset(a, 'a', sizeof(a));
	sha256_init(&s);
	size_t left = 1000000, step = 1;
	while (left) {
		size_t n = step < left ? step : left;
		sha256_update(&s, a, n);
		left -= n;
		step = step % 977 + 13; /* chunks that straddle blocks */
	}
	sha256_final(&s, d);
	CHECK(digest_is(d,
			"cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e04"
			"6d39ccc7112cd0",
			32));
}

TEST(test_sha256_padding_boundaries_whole_and_bytewise)
{
	static const struct {
		size_t n;
		const char *hex;
	} v[] = {
		{ 55, "e7313d333c272e639f790978283f9eb392e843d0f29b7016828bb1"
		      "daa4aac70b" },
		{ 56, "4324d65f3c103567f5589c710bc08f8523f929a9272e3af36fc968"
		      "e52abc6c27" },
		{ 63, "81c80242132f230c3bd41b3e63bbcff16107339549214a99614ff2"
		      "6664625055" },
		{ 64, "39e3d7b6b5d075d37d053ad89b24b41bef4f3c29760c84447cab3f"
		      "3be1882241" },
		{ 65, "aacca6ff74fdbb296d165a45cecfa04e5127bc008770fbbdd48006"
		      "f2d2fae95e" },
		{ 119, "9ce7368e4daf32341631b492e80359dc9f594b48453cd0dd5bf0b"
		       "19279cc177e" },
		{ 120, "7836b787757e95e58b3ca5aec90b1b004e8deba1e50e9675af9ca"
		       "bf1a13a04b5" },
		{ 128, "d2742f1f4ac6bb7ca2b239ee18402ba8b3f9f8e652d2a72973c2b"
		       "9ba11c08cf6" },
	};
	uint8_t m[128], d[SHA256_SIZE];
	for (size_t i = 0; i < sizeof(m); i++)
		m[i] = (uint8_t)(i * 7 + 3);
	for (size_t k = 0; k < sizeof(v) / sizeof(v[0]); k++) {
		sha256_digest(m, v[k].n, d);
		if (!digest_is(d, v[k].hex, 32))
			TEST_FAIL("whole, length %zu", v[k].n);
		sha256_ctx s;
		sha256_init(&s);
		for (size_t i = 0; i < v[k].n; i++)
			sha256_update(&s, m + i, 1);
		sha256_final(&s, d);
		if (!digest_is(d, v[k].hex, 32))
			TEST_FAIL("bytewise, length %zu", v[k].n);
	}
}

/* HMAC of one part. */
static void hmac1(const void *key, size_t klen, const void *msg, size_t mlen,
		  uint8_t *out)
{
	const void *part[1] = { msg };
	size_t len[1] = { mlen };
	hmac_sha256(key, klen, 1, part, len, out);
}

TEST(test_hmac_sha256_rfc_4231_vectors)
{
	uint8_t key[131], data[160], d[SHA256_SIZE];

	/* Test case 1 */
	memset(key, 0x0b, 20);
	hmac1(key, 20, "Hi There", 8, d);
	CHECK(digest_is(d,
			"b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726"
			"e9376c2e32cff7",
			32));
	/* 2: a key shorter than the output */
	hmac1("Jefe", 4, "what do ya want for nothing?", 28, d);
	CHECK(digest_is(d,
			"5bdcc146bf60754e6a042426089575c75a003f089d2739839d"
			"ec58b964ec3843",
			32));
	/* 3: combined key and data of 0xaa and 0xdd */
	memset(key, 0xaa, 20);
	memset(data, 0xdd, 50);
	hmac1(key, 20, data, 50, d);
	CHECK(digest_is(d,
			"773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9"
			"635514ced565fe",
			32));
	/* 4 */
	for (int i = 0; i < 25; i++)
		key[i] = (uint8_t)(i + 1);
	memset(data, 0xcd, 50);
	hmac1(key, 25, data, 50, d);
	CHECK(digest_is(d,
			"82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a"
			"2e3ff46729665b",
			32));
	/* 5: truncation to 128 bits (only the first 16 bytes are given) */
	memset(key, 0x0c, 20);
	hmac1(key, 20, "Test With Truncation", 20, d);
	CHECK(digest_is(d, "a3b6167473100ee06e0c796c2955552b", 16));
	/* 6: a key longer than a block is hashed first */
	memset(key, 0xaa, 131);
	const char *m6 = "Test Using Larger Than Block-Size Key - Hash Key "
			 "First";
	hmac1(key, 131, m6, strlen(m6), d);
	CHECK(digest_is(d,
			"60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c51405"
			"46040f0ee37f54",
			32));
	/* 7: key and data both longer than a block */
	const char *m7 = "This is a test using a larger than block-size key "
			 "and a larger than block-size data. The key needs to "
			 "be hashed before being used by the HMAC algorithm.";
	hmac1(key, 131, m7, strlen(m7), d);
	CHECK(digest_is(d,
			"9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a"
			"7f51535c3a35e2",
			32));
}

TEST(test_hmac_parts_are_concatenated)
{
	uint8_t a[SHA256_SIZE], b[SHA256_SIZE];
	const char *m = "what do ya want for nothing?";
	const void *part[3] = { m, m + 5, m + 20 };
	size_t len[3] = { 5, 15, 8 };

	hmac1("Jefe", 4, m, strlen(m), a);
	hmac_sha256("Jefe", 4, 3, part, len, b);
	CHECK(memcmp(a, b, sizeof(a)) == 0);
}

TEST(test_ct_equal_finds_every_difference)
{
	uint8_t x[32], y[32];
	for (int i = 0; i < 32; i++)
		x[i] = y[i] = (uint8_t)(i * 13);
	CHECK_EQ(ct_equal(x, y, 32), 1);
	CHECK_EQ(ct_equal(x, y, 0), 1);
	for (int i = 0; i < 32; i++)
		for (int bit = 0; bit < 8; bit++) {
			y[i] ^= (uint8_t)(1u << bit);
			if (ct_equal(x, y, 32) != 0)
				TEST_FAIL("byte %d bit %d not seen", i, bit);
			y[i] ^= (uint8_t)(1u << bit);
		}
}

int main(int argc, char **argv)
{
	return test_main(argc, argv);
}
