/*
 * test_codec.c — the wire codec (include/seshat/codec.h) on its own.
 *
 * Round trips for every message type over many seeds, golden frames whose
 * bytes were produced by an independent encoder written from
 * docs/wire-protocol.md (so the document, not just the code, is tested),
 * and hostile input: every truncation, every single-byte corruption,
 * unknown types and versions, lengths that disagree with the payload
 * (with a correct CRC, so the structural checks are what rejects them),
 * limits, and an entry count far beyond the bytes present, which must be
 * refused before anything is allocated.  Inputs are copied into buffers
 * of exactly their length so ASan catches any read past the end.
 */
#include <stdlib.h>
#include <string.h>

#include "count_alloc.h"
#include "msgs.h"
#include "seshat/codec.h"
#include "testlib.h"

/* Encode m into a fresh exact-size buffer; *len gets the size. */
static uint8_t *encode(const sr_msg *m, size_t *len)
{
	size_t n = sr_codec_size(m);
	if (!n)
		return NULL;
	uint8_t *b = malloc(n);
	size_t got = 0;
	if (!b || sr_codec_encode(m, b, n, &got) || got != n) {
		free(b);
		return NULL;
	}
	*len = n;
	return b;
}

/* Decode a copy of exactly len bytes (ASan sees any over-read). */
static int decode_exact(sr_decoder *d, const uint8_t *buf, size_t len,
			sr_msg *out, uint8_t **copy)
{
	*copy = malloc(len ? len : 1);
	memcpy(*copy, buf, len);
	size_t flen = 0;
	int rc = sr_codec_decode(d, *copy, len, out, &flen);
	if (rc == 0 && flen != len)
		return -1000;
	return rc;
}

/* Recompute the CRC after a test edited a frame on purpose. */
static void reseal(uint8_t *f, size_t len)
{
	uint32_t crc = sr_crc32c(0, f, 16);
	crc = sr_crc32c(crc, f + SR_FRAME_HDR_SIZE, len - SR_FRAME_HDR_SIZE);
	for (int i = 0; i < 4; i++)
		f[16 + i] = (uint8_t)(crc >> (8 * i));
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

TEST(test_crc32c_is_castagnoli)
{
	CHECK_EQ(sr_crc32c(0, "123456789", 9), 0xe3069283u);
}

TEST(test_roundtrip_every_type_many_seeds)
{
	sr_decoder d;
	sr_decoder_init(&d, 0, 0, NULL);
	for (uint32_t type = 1; type <= SR_MSG_TYPE_MAX; type++) {
		for (uint64_t seed = 0; seed < 40; seed++) {
			struct sample_store st;
			sr_msg m, out;
			size_t len = 0;
			uint8_t *copy;
			sample_msg(&m, type, seed, &st);
			uint8_t *f = encode(&m, &len);
			CHECK(f != NULL);
			CHECK_EQ(decode_exact(&d, f, len, &out, &copy), 0);
			if (!msg_equal(&m, &out))
				TEST_FAIL("type %u seed %llu differs", type,
					  (unsigned long long)seed);
			/* decode then encode reproduces the bytes */
			size_t len2;
			uint8_t *f2 = encode(&out, &len2);
			CHECK(f2 && len2 == len && !memcmp(f, f2, len));
			free(f2);
			free(copy);
			free(f);
		}
	}
	sr_decoder_free(&d);
}

TEST(test_decoded_pointers_point_into_the_input)
{
	struct sample_store st;
	sr_msg m, out;
	size_t len;
	sr_entry scratch[SAMPLE_ENTRIES];
	sr_decoder d;

	sample_msg(&m, SR_MSG_APPEND, 5, &st); /* 5 entries */
	CHECK_EQ(m.u.append.n_entries, 5);
	uint8_t *f = encode(&m, &len);
	sr_decoder_init_fixed(&d, 0, scratch, SAMPLE_ENTRIES);
	CHECK_EQ(sr_codec_decode(&d, f, len, &out, NULL), 0);
	CHECK(out.u.append.entries == scratch);
	for (uint32_t i = 0; i < 5; i++) {
		const uint8_t *p = out.u.append.entries[i].data;
		if (out.u.append.entries[i].len)
			CHECK(p > f && p < f + len);
	}
	free(f);

	sample_msg(&m, SR_MSG_SNAPSHOT, 7, &st);
	f = encode(&m, &len);
	CHECK_EQ(sr_codec_decode(&d, f, len, &out, NULL), 0);
	CHECK((const uint8_t *)out.u.snapshot.conf > f);
	CHECK((const uint8_t *)out.u.snapshot.data > f);
	CHECK((const uint8_t *)out.u.snapshot.data + out.u.snapshot.len <=
	      f + len);
	free(f);
}

TEST(test_golden_vote_frame_matches_the_document)
{
	static const uint8_t golden[62] = {
		0x53, 0x52, 0x41, 0x46, 0x01, 0x00, 0x01, 0x00, 0x07,
		0x00, 0x00, 0x00, 0x2a, 0x00, 0x00, 0x00, 0xf3, 0x13,
		0xbf, 0x1e, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00
	};
	sr_msg m = {
		.type = SR_MSG_VOTE, .group = 7, .from = 1, .to = 2, .term = 5
	};
	m.u.vote.last_index = 10;
	m.u.vote.last_term = 4;
	m.u.vote.pre = 1;
	uint8_t buf[62];
	size_t len;
	CHECK_EQ(sr_codec_size(&m), 62);
	CHECK_EQ(sr_codec_encode(&m, buf, sizeof(buf), &len), 0);
	CHECK_EQ(len, 62);
	CHECK(!memcmp(buf, golden, 62));
}

TEST(test_golden_append_frame_matches_the_document)
{
	static const uint8_t golden[106] = {
		0x53, 0x52, 0x41, 0x46, 0x01, 0x00, 0x03, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x56, 0x00, 0x00, 0x00, 0x01, 0x5e, 0xe7, 0xaf,
		0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
		0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x09, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
		0x02, 0x00, 0x00, 0x00, 0x68, 0x69
	};
	sr_entry e = { .term = 2,
		       .index = 9,
		       .type = SR_ENTRY_NORMAL,
		       .len = 2,
		       .data = "hi" };
	sr_msg m = { .type = SR_MSG_APPEND, .from = 2, .to = 3, .term = 9 };
	m.u.append.prev_index = 8;
	m.u.append.prev_term = 2;
	m.u.append.commit = 6;
	m.u.append.seq = 1;
	m.u.append.entries = &e;
	m.u.append.n_entries = 1;
	uint8_t buf[106];
	CHECK_EQ(sr_codec_encode(&m, buf, sizeof(buf), NULL), 0);
	CHECK(!memcmp(buf, golden, sizeof(golden)));

	sr_entry scratch[1];
	sr_decoder d;
	sr_msg out;
	sr_decoder_init_fixed(&d, 0, scratch, 1);
	CHECK_EQ(sr_codec_decode(&d, golden, sizeof(golden), &out, NULL), 0);
	CHECK(msg_equal(&m, &out));
}

TEST(test_golden_hello_frame)
{
	/* docs/wire-protocol.md, "Handshake": built by hand from the layout */
	static const uint8_t golden[SR_HELLO_FRAME_SIZE] = {
		0x53, 0x52, 0x41, 0x46, 0x01, 0x00, 0x40, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x98, 0x00, 0x00, 0x00, 0x45, 0xe1, 0x4d, 0x35,
		0xc1, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x31, 0x32, 0x37, 0x2e, 0x30, 0x2e,
		0x30, 0x2e, 0x31, 0x3a, 0x37, 0x30, 0x30, 0x32, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00
	};
	sr_hello h = { 0xc1, 2, 3, "127.0.0.1:7002", 0 }, out;
	uint8_t buf[SR_HELLO_FRAME_SIZE];
	CHECK_EQ(sr_codec_encode_hello(&h, buf, sizeof(buf)), 0);
	CHECK(!memcmp(buf, golden, sizeof(golden)));
	CHECK_EQ(sr_codec_decode_hello(golden, sizeof(golden), &out), 0);
	CHECK_EQ(out.cluster, 0xc1);
	CHECK_EQ(out.from, 2);
	CHECK_EQ(out.to, 3);
	CHECK(!strcmp(out.addr, "127.0.0.1:7002"));
	CHECK_EQ(sr_codec_encode_hello(&h, buf, sizeof(buf) - 1), SR_ETOOBIG);
	/* an address must end with its NUL, and nothing may follow it */
	memcpy(buf, golden, sizeof(buf));
	memset(buf + SR_FRAME_HDR_SIZE + 24, 'a', SR_ADDR_MAX);
	reseal(buf, sizeof(buf));
	CHECK_EQ(sr_codec_decode_hello(buf, sizeof(buf), &out), SR_EPROTO);
	memcpy(buf, golden, sizeof(buf));
	buf[sizeof(buf) - 1] = 'x';
	reseal(buf, sizeof(buf));
	CHECK_EQ(sr_codec_decode_hello(buf, sizeof(buf), &out), SR_EPROTO);
	/* a hello is not a message, and a message is not a hello */
	sr_decoder d;
	sr_msg m;
	sr_decoder_init(&d, 0, 0, NULL);
	CHECK_EQ(sr_codec_decode(&d, golden, sizeof(golden), &m, NULL),
		 SR_EPROTO);
	struct sample_store st;
	sample_msg(&m, SR_MSG_READ_INDEX, 1, &st);
	size_t len;
	uint8_t *f = encode(&m, &len);
	CHECK_EQ(sr_codec_decode_hello(f, len, &out), SR_EPROTO);
	free(f);
	/* a hello's group field carries its feature bits, every one
	 * round-trips (unknown ones are the receiver's to ignore) */
	memcpy(buf, golden, sizeof(buf));
	buf[8] = SR_FEATURE_BATCH;
	buf[11] = 0x80;
	reseal(buf, sizeof(buf));
	CHECK_EQ(sr_codec_decode_hello(buf, sizeof(buf), &out), 0);
	CHECK_EQ(out.features, 0x80000000u | SR_FEATURE_BATCH);
	uint8_t re[SR_HELLO_FRAME_SIZE];
	CHECK_EQ(sr_codec_encode_hello(&out, re, sizeof(re)), 0);
	CHECK(!memcmp(re, buf, sizeof(re)));
	/* truncated */
	CHECK_EQ(sr_codec_decode_hello(golden, sizeof(golden) - 1, &out),
		 SR_EPROTO);
}

TEST(test_every_truncation_is_rejected)
{
	sr_decoder d;
	sr_decoder_init(&d, 0, 0, NULL);
	for (uint32_t type = 1; type <= SR_MSG_TYPE_MAX; type++) {
		struct sample_store st;
		sr_msg m, out;
		size_t len;
		sample_msg(&m, type, 5, &st);
		uint8_t *f = encode(&m, &len);
		for (size_t cut = 0; cut < len; cut++) {
			uint8_t *copy;
			int rc = decode_exact(&d, f, cut, &out, &copy);
			free(copy);
			if (rc != SR_EPROTO)
				TEST_FAIL("type %u cut at %zu: rc %d", type,
					  cut, rc);
		}
		free(f);
	}
	sr_decoder_free(&d);
}

TEST(test_every_byte_corruption_is_rejected)
{
	sr_decoder d;
	sr_decoder_init(&d, 0, 0, NULL);
	for (uint32_t type = 1; type <= SR_MSG_TYPE_MAX; type++) {
		struct sample_store st;
		sr_msg m, out;
		size_t len;
		sample_msg(&m, type, 3, &st);
		uint8_t *f = encode(&m, &len);
		for (size_t i = 0; i < len; i++) {
			static const uint8_t flips[] = { 0x01, 0x80, 0xff };
			for (size_t k = 0; k < sizeof(flips); k++) {
				uint8_t *copy;
				f[i] ^= flips[k];
				int rc = decode_exact(&d, f, len, &out, &copy);
				f[i] ^= flips[k];
				free(copy);
				if (rc != SR_EPROTO && rc != SR_ETOOBIG)
					TEST_FAIL("type %u byte %zu ^%02x: rc "
						  "%d",
						  type, i, flips[k], rc);
			}
		}
		free(f);
	}
	sr_decoder_free(&d);
}

/* A valid frame of `type` with the header edited, CRC recomputed. */
static int decode_with_header(uint32_t type, int off, uint8_t val)
{
	struct sample_store st;
	sr_msg m, out;
	size_t len;
	sr_decoder d;
	sr_decoder_init(&d, 0, 0, NULL);
	sample_msg(&m, type, 2, &st);
	uint8_t *f = encode(&m, &len);
	f[off] = val;
	reseal(f, len);
	int rc = sr_codec_decode(&d, f, len, &out, NULL);
	free(f);
	sr_decoder_free(&d);
	return rc;
}

TEST(test_unknown_magic_version_and_type_are_rejected)
{
	CHECK_EQ(decode_with_header(SR_MSG_VOTE, 0, 'X'), SR_EPROTO);
	CHECK_EQ(decode_with_header(SR_MSG_VOTE, 4, 2), SR_EPROTO);
	CHECK_EQ(decode_with_header(SR_MSG_VOTE, 5, 1), SR_EPROTO);
	CHECK_EQ(decode_with_header(SR_MSG_VOTE, 6, 0), SR_EPROTO);
	CHECK_EQ(decode_with_header(SR_MSG_VOTE, 6, SR_MSG_TYPE_MAX + 1),
		 SR_EPROTO);
	CHECK_EQ(decode_with_header(SR_MSG_VOTE, 6, 63), SR_EPROTO);
	CHECK_EQ(decode_with_header(SR_MSG_VOTE, 7, 1), SR_EPROTO);
	/* the same frame relabelled as another type: sizes disagree */
	CHECK_EQ(decode_with_header(SR_MSG_VOTE, 6, SR_MSG_VOTE_RESP),
		 SR_EPROTO);
	/* the group is free */
	CHECK_EQ(decode_with_header(SR_MSG_VOTE, 11, 0xff), 0);
}

/* Build a frame by hand from a payload (CRC computed). */
static uint8_t *raw_frame(uint32_t type, const uint8_t *payload, uint32_t plen,
			  size_t *len)
{
	uint8_t *f = malloc(SR_FRAME_HDR_SIZE + plen + 1);
	put32(f, SR_FRAME_MAGIC);
	f[4] = 1;
	f[5] = 0;
	f[6] = (uint8_t)type;
	f[7] = 0;
	put32(f + 8, 0);
	put32(f + 12, plen);
	memcpy(f + SR_FRAME_HDR_SIZE, payload, plen);
	*len = SR_FRAME_HDR_SIZE + plen;
	reseal(f, *len);
	return f;
}

/* Re-encode m, then let edit() change its payload and reseal it. */
static int decode_edited(const sr_msg *m, size_t at, uint32_t v, int width,
			 int delta_len)
{
	size_t len;
	uint8_t *f = encode(m, &len);
	uint8_t *p = f + SR_FRAME_HDR_SIZE + at;
	if (width == 4)
		put32(p, v);
	else
		*p = (uint8_t)v;
	uint8_t *g;
	size_t glen;
	size_t plen = len - SR_FRAME_HDR_SIZE + (size_t)delta_len;
	uint8_t *payload = calloc(1, plen + 8);
	memcpy(payload, f + SR_FRAME_HDR_SIZE,
	       delta_len < 0 ? plen : len - SR_FRAME_HDR_SIZE);
	g = raw_frame(m->type, payload, (uint32_t)plen, &glen);
	sr_decoder d;
	sr_msg out;
	sr_decoder_init(&d, 0, 0, NULL);
	uint8_t *copy;
	int rc = decode_exact(&d, g, glen, &out, &copy);
	free(copy);
	sr_decoder_free(&d);
	free(payload);
	free(g);
	free(f);
	return rc;
}

TEST(test_inconsistent_lengths_with_a_good_crc_are_rejected)
{
	struct sample_store st;
	sr_msg m;

	/* append with 2 entries; n_entries at payload offset 56 */
	sample_msg(&m, SR_MSG_APPEND, 2, &st);
	CHECK_EQ(m.u.append.n_entries, 2);
	CHECK_EQ(decode_edited(&m, 56, 2, 4, 0), 0); /* unchanged: fine */
	CHECK_EQ(decode_edited(&m, 56, 3, 4, 0), SR_EPROTO);
	CHECK_EQ(decode_edited(&m, 56, 1, 4, 0), SR_EPROTO);
	CHECK_EQ(decode_edited(&m, 56, 0, 4, 0), SR_EPROTO);
	CHECK_EQ(decode_edited(&m, 56, 0xffffffffu, 4, 0), SR_EPROTO);
	/* first entry's len (at 60 + 20) larger / smaller than its data */
	CHECK_EQ(decode_edited(&m, 80, m.u.append.entries[0].len + 1, 4, 0),
		 SR_EPROTO);
	CHECK_EQ(decode_edited(&m, 80, 0xfffffff0u, 4, 0), SR_EPROTO);
	/* entry type out of range (at 60 + 16) */
	CHECK_EQ(decode_edited(&m, 76, 0, 4, 0), SR_EPROTO);
	CHECK_EQ(decode_edited(&m, 76, 4, 4, 0), SR_EPROTO);
	/* a byte too many or too few */
	CHECK_EQ(decode_edited(&m, 0, 2, 1, 1), SR_EPROTO);
	CHECK_EQ(decode_edited(&m, 0, 2, 1, -1), SR_EPROTO);

	/* snapshot: conf_len at 24 + 33, len at 24 + 37 */
	sample_msg(&m, SR_MSG_SNAPSHOT, 3, &st);
	CHECK_EQ(decode_edited(&m, 57, m.u.snapshot.conf_len + 1, 4, 0),
		 SR_EPROTO);
	CHECK_EQ(decode_edited(&m, 61, m.u.snapshot.len + 1, 4, 0), SR_EPROTO);
	CHECK_EQ(decode_edited(&m, 61, 0xffffffffu, 4, 0), SR_EPROTO);
	/* boolean `done` (24 + 32) must be 0 or 1 */
	CHECK_EQ(decode_edited(&m, 56, 2, 1, 0), SR_EPROTO);

	/* fixed-size messages: booleans and trailing bytes */
	sample_msg(&m, SR_MSG_VOTE, 0, &st);
	CHECK_EQ(decode_edited(&m, 40, 2, 1, 0), SR_EPROTO);
	CHECK_EQ(decode_edited(&m, 41, 0xff, 1, 0), SR_EPROTO);
	CHECK_EQ(decode_edited(&m, 0, 1, 1, 1), SR_EPROTO);
	sample_msg(&m, SR_MSG_TIMEOUT_NOW, 0, &st);
	CHECK_EQ(decode_edited(&m, 0, 1, 1, 1), SR_EPROTO);
	CHECK_EQ(decode_edited(&m, 0, 1, 1, -1), SR_EPROTO);
	/* read_index_resp status must be 0 or negative (at 24 + 16) */
	sample_msg(&m, SR_MSG_READ_INDEX_RESP, 0, &st);
	CHECK_EQ(decode_edited(&m, 40, 5, 4, 0), SR_EPROTO);
	CHECK_EQ(decode_edited(&m, 40, (uint32_t)-3, 4, 0), 0);
}

TEST(test_huge_entry_count_allocates_nothing)
{
	struct count_alloc ca;
	count_alloc_init(&ca);
	uint8_t payload[60];
	memset(payload, 0, sizeof(payload));
	put32(payload + 56, 0xffffffffu); /* n_entries, no entry bytes */
	size_t len;
	uint8_t *f = raw_frame(SR_MSG_APPEND, payload, sizeof(payload), &len);
	sr_decoder d;
	sr_msg out;
	sr_decoder_init(&d, 0, UINT32_MAX, &ca.hooks);
	CHECK_EQ(sr_codec_decode(&d, f, len, &out, NULL), SR_EPROTO);
	CHECK_EQ(ca.calls, 0);
	/* 1000 claimed, only 10 present */
	put32(payload + 56, 1000);
	free(f);
	uint8_t big[60 + 10 * 24];
	memset(big, 0, sizeof(big));
	memcpy(big, payload, 60);
	for (int i = 0; i < 10; i++)
		put32(big + 60 + i * 24 + 16, SR_ENTRY_NOOP);
	f = raw_frame(SR_MSG_APPEND, big, sizeof(big), &len);
	CHECK_EQ(sr_codec_decode(&d, f, len, &out, NULL), SR_EPROTO);
	CHECK_EQ(ca.calls, 0);
	/* exactly 10: decodes, allocating through the hooks */
	put32(big + 56, 10);
	free(f);
	f = raw_frame(SR_MSG_APPEND, big, sizeof(big), &len);
	CHECK_EQ(sr_codec_decode(&d, f, len, &out, NULL), 0);
	CHECK_EQ(out.u.append.n_entries, 10);
	CHECK(ca.calls > 0);
	CHECK(ca.live >= 10 * sizeof(sr_entry));
	sr_decoder_free(&d);
	CHECK_EQ(ca.live, 0);
	free(f);
}

TEST(test_limits_give_etoobig)
{
	struct sample_store st;
	sr_msg m, out;
	size_t len;
	sr_decoder d;

	sample_msg(&m, SR_MSG_APPEND, 5, &st);
	uint8_t *f = encode(&m, &len);
	uint32_t plen = (uint32_t)(len - SR_FRAME_HDR_SIZE);
	/* payload limit: exactly fits, one byte short */
	sr_decoder_init(&d, plen, 0, NULL);
	CHECK_EQ(sr_codec_decode(&d, f, len, &out, NULL), 0);
	sr_decoder_free(&d);
	sr_decoder_init(&d, plen - 1, 0, NULL);
	CHECK_EQ(sr_codec_decode(&d, f, len, &out, NULL), SR_ETOOBIG);
	sr_frame_hdr h;
	CHECK_EQ(sr_codec_header(f, len, plen - 1, &h), SR_ETOOBIG);
	CHECK_EQ(sr_codec_header(f, len, plen, &h), 0);
	CHECK_EQ(h.len, plen);
	CHECK_EQ(h.type, SR_MSG_APPEND);
	CHECK_EQ(sr_codec_header(f, SR_FRAME_HDR_SIZE - 1, plen, &h),
		 SR_EPROTO);
	/* entry limit */
	sr_decoder_init(&d, 0, 4, NULL);
	CHECK_EQ(sr_codec_decode(&d, f, len, &out, NULL), SR_ETOOBIG);
	sr_decoder_free(&d);
	sr_decoder_init(&d, 0, 5, NULL);
	CHECK_EQ(sr_codec_decode(&d, f, len, &out, NULL), 0);
	sr_decoder_free(&d);
	/* fixed scratch too small, then big enough */
	sr_entry scratch[5];
	sr_decoder_init_fixed(&d, 0, scratch, 4);
	CHECK_EQ(sr_codec_decode(&d, f, len, &out, NULL), SR_ETOOBIG);
	sr_decoder_init_fixed(&d, 0, scratch, 5);
	CHECK_EQ(sr_codec_decode(&d, f, len, &out, NULL), 0);
	/* a huge length field is refused from the header alone */
	put32(f + 12, 0xffffffffu);
	sr_decoder_init(&d, 0, 0, NULL);
	CHECK_EQ(sr_codec_decode(&d, f, len, &out, NULL), SR_ETOOBIG);
	free(f);
}

TEST(test_boundary_sizes_roundtrip)
{
	sr_decoder d;
	sr_msg m, out;
	sr_decoder_init(&d, 0, 0, NULL);

	/* zero entries, zero-length entries, a 4 MiB entry */
	sr_entry e[3] = {
		{ .term = 1, .index = 1, .type = SR_ENTRY_NOOP },
		{ .term = 1, .index = 2, .type = SR_ENTRY_NORMAL },
		{ .term = 1, .index = 3, .type = SR_ENTRY_NORMAL },
	};
	size_t big = 4u << 20;
	uint8_t *data = malloc(big);
	for (size_t i = 0; i < big; i++)
		data[i] = (uint8_t)(i * 31);
	e[2].len = (uint32_t)big;
	e[2].data = data;
	memset(&m, 0, sizeof(m));
	m.type = SR_MSG_APPEND;
	m.from = UINT64_MAX;
	m.to = 1;
	m.term = UINT64_MAX;
	m.group = UINT32_MAX;
	for (uint32_t n = 0; n <= 3; n++) {
		m.u.append.entries = n ? e : NULL;
		m.u.append.n_entries = n;
		size_t len;
		uint8_t *f = encode(&m, &len);
		CHECK(f);
		CHECK_EQ(sr_codec_decode(&d, f, len, &out, NULL), 0);
		CHECK(msg_equal(&m, &out));
		free(f);
	}
	/* snapshot chunk with empty conf and a large chunk */
	memset(&m, 0, sizeof(m));
	m.type = SR_MSG_SNAPSHOT;
	m.u.snapshot.data = data;
	m.u.snapshot.len = (uint32_t)big;
	m.u.snapshot.done = 1;
	size_t len;
	uint8_t *f = encode(&m, &len);
	CHECK_EQ(len, SR_FRAME_HDR_SIZE + 65 + big);
	CHECK_EQ(sr_codec_decode(&d, f, len, &out, NULL), 0);
	CHECK(msg_equal(&m, &out));
	free(f);
	free(data);
	sr_decoder_free(&d);
}

TEST(test_many_entries_grow_the_array)
{
	enum { N = 3000 };
	sr_entry *e = calloc(N, sizeof(*e));
	for (uint32_t i = 0; i < N; i++) {
		e[i].term = 7;
		e[i].index = 100 + i;
		e[i].type = SR_ENTRY_NORMAL;
		e[i].len = 1;
		e[i].data = &e[i].index;
	}
	sr_msg m = { .type = SR_MSG_APPEND, .from = 1, .to = 2 };
	m.u.append.entries = e;
	m.u.append.n_entries = N;
	size_t len;
	uint8_t *f = encode(&m, &len);
	CHECK_EQ(len, SR_FRAME_HDR_SIZE + 60 + N * 25);
	sr_decoder d;
	sr_msg out;
	sr_decoder_init(&d, 0, 0, NULL);
	CHECK_EQ(sr_codec_decode(&d, f, len, &out, NULL), 0);
	CHECK(msg_equal(&m, &out));
	CHECK(d.cap >= N);
	sr_decoder_free(&d);
	free(f);
	free(e);
}

TEST(test_two_frames_back_to_back)
{
	struct sample_store st1, st2;
	sr_msg a, b, out;
	size_t la, lb, flen;
	sample_msg(&a, SR_MSG_APPEND, 4, &st1);
	sample_msg(&b, SR_MSG_SNAPSHOT, 9, &st2);
	uint8_t *fa = encode(&a, &la), *fb = encode(&b, &lb);
	uint8_t *both = malloc(la + lb);
	memcpy(both, fa, la);
	memcpy(both + la, fb, lb);
	sr_decoder d;
	sr_decoder_init(&d, 0, 0, NULL);
	CHECK_EQ(sr_codec_decode(&d, both, la + lb, &out, &flen), 0);
	CHECK_EQ(flen, la);
	CHECK(msg_equal(&a, &out));
	CHECK_EQ(sr_codec_decode(&d, both + la, lb, &out, &flen), 0);
	CHECK_EQ(flen, lb);
	CHECK(msg_equal(&b, &out));
	sr_decoder_free(&d);
	free(both);
	free(fa);
	free(fb);
}

TEST(test_encode_refuses_what_it_cannot_encode)
{
	sr_msg m = { .type = SR_MSG_APPEND };
	uint8_t buf[256];
	m.u.append.n_entries = 1; /* entries NULL */
	CHECK_EQ(sr_codec_size(&m), 0);
	CHECK_EQ(sr_codec_encode(&m, buf, sizeof(buf), NULL), SR_EINVAL);
	sr_entry e = { .type = 9 };
	m.u.append.entries = &e;
	CHECK_EQ(sr_codec_encode(&m, buf, sizeof(buf), NULL), SR_EINVAL);
	e.type = SR_ENTRY_NORMAL;
	e.len = 3; /* data NULL */
	CHECK_EQ(sr_codec_encode(&m, buf, sizeof(buf), NULL), SR_EINVAL);
	e.data = "abc";
	CHECK_EQ(sr_codec_encode(&m, buf, sizeof(buf), NULL), 0);
	CHECK_EQ(sr_codec_encode(&m, buf, sr_codec_size(&m) - 1, NULL),
		 SR_ETOOBIG);
	m.type = 0;
	CHECK_EQ(sr_codec_encode(&m, buf, sizeof(buf), NULL), SR_EINVAL);
	m.type = SR_MSG_TYPE_MAX + 1;
	CHECK_EQ(sr_codec_size(&m), 0);
	m.type = SR_MSG_SNAPSHOT;
	memset(&m.u, 0, sizeof(m.u));
	m.u.snapshot.conf_len = 4;
	CHECK_EQ(sr_codec_size(&m), 0);
	/* booleans other than 0/1 are encoded as 1 */
	memset(&m, 0, sizeof(m));
	m.type = SR_MSG_VOTE_RESP;
	m.u.vote_resp.granted = 7;
	CHECK_EQ(sr_codec_encode(&m, buf, sizeof(buf), NULL), 0);
	CHECK_EQ(buf[SR_FRAME_HDR_SIZE + 24], 1);
}

int main(int argc, char **argv)
{
	return test_main(argc, argv);
}
