/*
 * test_codec_batch.c — batch frames of the wire codec (seshat/codec.h,
 * docs/wire-protocol.md "Batch frames").
 *
 * Round trips of batches holding every message type of many groups, built
 * both ways a sender builds them (begin + add, and wrap of a message frame
 * already queued); the golden batch of the document, whose bytes were
 * computed from the document by a separate encoder; and hostile input:
 * every truncation and single-byte corruption, item lengths that run past
 * the payload or leave bytes over, a batch or a handshake nested in a
 * batch, an empty batch, a group in the batch header, a malformed message
 * inside a well-formed batch, and the limits.  Inputs are copied into
 * buffers of exactly their length so ASan catches any read past the end.
 */
#include <stdlib.h>
#include <string.h>

#include "msgs.h"
#include "seshat/codec.h"
#include "testlib.h"

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Recompute the CRC after a test edited a frame on purpose. */
static void reseal(uint8_t *f, size_t len)
{
	uint32_t crc = sr_crc32c(0, f, 16);
	crc = sr_crc32c(crc, f + SR_FRAME_HDR_SIZE, len - SR_FRAME_HDR_SIZE);
	put32(f + 16, crc);
}

/* n sample messages, cycling through every type, groups all different. */
struct sample_set {
	sr_msg m[64];
	struct sample_store st[64];
	int n;
};

static void sample_set(struct sample_set *s, int n, uint64_t seed)
{
	s->n = n;
	for (int i = 0; i < n; i++)
		sample_msg(&s->m[i], 1 + (uint32_t)(i % SR_MSG_TYPE_MAX),
			   seed + (uint64_t)i, &s->st[i]);
}

/* A sealed batch of the set, built with begin + add; *len its size. */
static uint8_t *batch_of(const struct sample_set *s, size_t *len)
{
	size_t cap = SR_FRAME_HDR_SIZE;
	for (int i = 0; i < s->n; i++)
		cap += sr_codec_batch_item_size(&s->m[i]);
	uint8_t *f = malloc(cap);
	size_t n = SR_FRAME_HDR_SIZE;
	if (!f || sr_codec_batch_begin(f, cap))
		abort();
	for (int i = 0; i < s->n; i++)
		if (sr_codec_batch_add(&s->m[i], f, cap, &n))
			abort();
	if (n != cap || sr_codec_batch_seal(f, n))
		abort();
	*len = n;
	return f;
}

/* Open a copy of exactly len bytes and decode every message; the number
 * decoded, or the first error. */
static int batch_decode(sr_decoder *d, const uint8_t *f, size_t len,
			const struct sample_set *want)
{
	uint8_t *copy = malloc(len ? len : 1);
	memcpy(copy, f, len);
	sr_batch_iter it;
	uint32_t count = 0;
	size_t flen = 0;
	int rc = sr_codec_batch_open(d, copy, len, &it, &count, &flen);
	int n = 0;
	sr_msg m;
	while (rc == 0 && (rc = sr_codec_batch_next(d, &it, &m)) == 1) {
		if (want && (n >= want->n || !msg_equal(&m, &want->m[n]))) {
			rc = -1000;
			break;
		}
		n++;
		rc = 0;
	}
	if (rc == 0 && ((uint32_t)n != count || flen != len))
		rc = -1001;
	free(copy);
	return rc ? rc : n;
}

TEST(test_batches_of_every_type_round_trip)
{
	sr_decoder d;
	sr_decoder_init(&d, 0, 0, NULL);
	for (uint64_t seed = 0; seed < 40; seed++) {
		for (int n = 1; n <= 30; n += 7) {
			struct sample_set s;
			sample_set(&s, n, seed * 31);
			size_t len;
			uint8_t *f = batch_of(&s, &len);
			CHECK_EQ(batch_decode(&d, f, len, &s), n);
			free(f);
		}
	}
	sr_decoder_free(&d);
}

TEST(test_wrapping_a_queued_frame_gives_the_same_batch)
{
	struct sample_set s;
	sample_set(&s, 3, 77);
	size_t want_len;
	uint8_t *want = batch_of(&s, &want_len);

	/* what the transport does: the first message as a frame of its own,
	 * wrapped when the second comes */
	uint8_t *f = calloc(1, want_len);
	size_t len = 0;
	CHECK_EQ(sr_codec_encode(&s.m[0], f, want_len, &len), 0);
	CHECK_EQ(sr_codec_batch_wrap(f, len + 9, &len), SR_ETOOBIG);
	CHECK_EQ(sr_codec_batch_wrap(f, want_len, &len), 0);
	CHECK_EQ(len, sr_codec_batch_item_size(&s.m[0]) + SR_FRAME_HDR_SIZE);
	for (int i = 1; i < 3; i++)
		CHECK_EQ(sr_codec_batch_add(&s.m[i], f, want_len, &len), 0);
	CHECK_EQ(sr_codec_batch_seal(f, len), 0);
	CHECK_EQ(len, want_len);
	CHECK(!memcmp(f, want, want_len));
	/* a batch is not a message frame to wrap, nor a message to add to */
	CHECK_EQ(sr_codec_batch_wrap(f, want_len + 100, &len), SR_EINVAL);
	size_t one = 0;
	uint8_t g[256];
	CHECK_EQ(sr_codec_encode(&s.m[0], g, sizeof(g), &one), 0);
	CHECK_EQ(sr_codec_batch_add(&s.m[1], g, sizeof(g), &one), SR_EINVAL);
	CHECK_EQ(sr_codec_batch_seal(g, one), SR_EINVAL);
	/* no room for the item: nothing written past cap */
	size_t l2 = SR_FRAME_HDR_SIZE;
	CHECK_EQ(sr_codec_batch_begin(g, SR_FRAME_HDR_SIZE - 1), SR_ETOOBIG);
	CHECK_EQ(sr_codec_batch_begin(g, sizeof(g)), 0);
	CHECK_EQ(sr_codec_batch_add(&s.m[0], g, SR_FRAME_HDR_SIZE + 5, &l2),
		 SR_ETOOBIG);
	CHECK_EQ(l2, SR_FRAME_HDR_SIZE);
	/* an empty batch cannot be sealed */
	CHECK_EQ(sr_codec_batch_seal(g, SR_FRAME_HDR_SIZE), SR_EINVAL);
	free(f);
	free(want);
}

TEST(test_golden_batch_frame_matches_the_document)
{
	/* docs/wire-protocol.md, "Batch frames": a timeout_now of group 4
	 * and a read_index (ctx 7) of group 9, from 1 to 2, term 5 */
	static const uint8_t golden[96] = {
		0x53, 0x52, 0x41, 0x46, 0x01, 0x00, 0x20, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x4c, 0x00, 0x00, 0x00, 0x5c, 0xc2, 0x30, 0x6d,
		0x07, 0x00, 0x04, 0x00, 0x00, 0x00, 0x18, 0x00, 0x00, 0x00,
		0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x08, 0x00, 0x09, 0x00, 0x00, 0x00,
		0x20, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00
	};
	struct sample_set s;
	memset(&s, 0, sizeof(s));
	s.n = 2;
	s.m[0].type = SR_MSG_TIMEOUT_NOW;
	s.m[0].group = 4;
	s.m[1].type = SR_MSG_READ_INDEX;
	s.m[1].group = 9;
	s.m[1].u.read_index.ctx = 7;
	for (int i = 0; i < 2; i++) {
		s.m[i].from = 1;
		s.m[i].to = 2;
		s.m[i].term = 5;
	}
	size_t len;
	uint8_t *f = batch_of(&s, &len);
	CHECK_EQ(len, sizeof(golden));
	CHECK(!memcmp(f, golden, sizeof(golden)));
	sr_decoder d;
	sr_decoder_init(&d, 0, 0, NULL);
	CHECK_EQ(batch_decode(&d, golden, sizeof(golden), &s), 2);
	/* the stream reader's view: a known header; not a single message */
	sr_frame_hdr h;
	CHECK_EQ(sr_codec_header(golden, sizeof(golden), 1 << 20, &h), 0);
	CHECK_EQ(h.type, SR_FRAME_BATCH);
	CHECK_EQ(h.len, sizeof(golden) - SR_FRAME_HDR_SIZE);
	sr_msg m;
	CHECK_EQ(sr_codec_decode(&d, golden, sizeof(golden), &m, NULL),
		 SR_EPROTO);
	/* and a single message frame is not a batch */
	uint8_t one[64];
	CHECK_EQ(sr_codec_encode(&s.m[0], one, sizeof(one), NULL), 0);
	sr_batch_iter it;
	CHECK_EQ(sr_codec_batch_open(&d, one, sizeof(one), &it, NULL, NULL),
		 SR_EPROTO);
	sr_decoder_free(&d);
	free(f);
}

TEST(test_every_batch_truncation_and_corruption_is_rejected)
{
	struct sample_set s;
	sample_set(&s, 12, 5);
	size_t len;
	uint8_t *f = batch_of(&s, &len);
	sr_decoder d;
	sr_decoder_init(&d, 0, 0, NULL);
	for (size_t cut = 0; cut < len; cut++)
		CHECK(batch_decode(&d, f, cut, NULL) < 0);
	for (size_t at = 0; at < len; at++) {
		f[at] ^= 0x5a;
		CHECK(batch_decode(&d, f, len, NULL) < 0);
		f[at] ^= 0x5a;
	}
	CHECK_EQ(batch_decode(&d, f, len, &s), 12);
	sr_decoder_free(&d);
	free(f);
}

/* Build a batch frame from a payload written by hand (CRC computed). */
static int open_raw(const uint8_t *payload, uint32_t plen, uint32_t group)
{
	uint8_t *f = malloc(SR_FRAME_HDR_SIZE + plen);
	put32(f, SR_FRAME_MAGIC);
	f[4] = 1;
	f[5] = 0;
	f[6] = SR_FRAME_BATCH;
	f[7] = 0;
	put32(f + 8, group);
	put32(f + 12, plen);
	memcpy(f + SR_FRAME_HDR_SIZE, payload, plen);
	reseal(f, SR_FRAME_HDR_SIZE + plen);
	sr_decoder d;
	sr_decoder_init(&d, 0, 0, NULL);
	int rc = batch_decode(&d, f, SR_FRAME_HDR_SIZE + plen, NULL);
	sr_decoder_free(&d);
	free(f);
	return rc;
}

/* The payload of a two-message batch (a timeout_now, 34 bytes as an item,
 * then a read_index, 42), to edit. */
static uint32_t two_items(uint8_t *p)
{
	struct sample_set s;
	memset(&s, 0, sizeof(s));
	s.n = 2;
	s.m[0].type = SR_MSG_TIMEOUT_NOW;
	s.m[1].type = SR_MSG_READ_INDEX;
	size_t len;
	uint8_t *f = batch_of(&s, &len);
	uint32_t plen = (uint32_t)(len - SR_FRAME_HDR_SIZE);
	memcpy(p, f + SR_FRAME_HDR_SIZE, plen);
	free(f);
	return plen;
}

TEST(test_malformed_batches_with_a_good_crc_are_rejected)
{
	uint8_t p[256];
	uint32_t plen = two_items(p);
	CHECK_EQ(plen, 34 + 42);
	CHECK_EQ(open_raw(p, plen, 0), 2);
	/* the batch header's group must be 0 */
	CHECK_EQ(open_raw(p, plen, 3), SR_EPROTO);
	/* an empty batch */
	CHECK_EQ(open_raw(p, 0, 0), SR_EPROTO);
	/* trailing bytes: fewer than an item header, or a whole one */
	p[plen] = 0;
	CHECK_EQ(open_raw(p, plen + 1, 0), SR_EPROTO);
	memcpy(p + plen, p, 10);
	CHECK_EQ(open_raw(p, plen + 10, 0), SR_EPROTO);
	/* an item length past the payload, and one short of its message */
	plen = two_items(p);
	put32(p + 34 + 6, 33);
	CHECK_EQ(open_raw(p, plen, 0), SR_EPROTO);
	plen = two_items(p);
	put32(p + 6, 23); /* the timeout_now claims 23 bytes */
	CHECK_EQ(open_raw(p, plen, 0), SR_EPROTO);
	/* nested: an item typed as a batch, a hello, or no type at all */
	uint32_t bad[] = { SR_FRAME_BATCH, SR_FRAME_HELLO, 0,
			   SR_MSG_TYPE_MAX + 1, 65 };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		plen = two_items(p);
		p[34] = (uint8_t)bad[i];
		CHECK_EQ(open_raw(p, plen, 0), SR_EPROTO);
	}
	/* a whole sealed batch frame as the bytes of an item typed batch */
	struct sample_set s;
	sample_set(&s, 2, 3);
	size_t inner_len;
	uint8_t *inner = batch_of(&s, &inner_len);
	uint8_t nest[512];
	CHECK(inner_len + 10 <= sizeof(nest));
	nest[0] = SR_FRAME_BATCH;
	nest[1] = 0;
	put32(nest + 2, 0);
	put32(nest + 6, (uint32_t)inner_len);
	memcpy(nest + 10, inner, inner_len);
	CHECK_EQ(open_raw(nest, (uint32_t)inner_len + 10, 0), SR_EPROTO);
	free(inner);
	/* a well-framed item whose message is malformed: opens, but the
	 * message is refused (a relabelled type: the size disagrees) */
	plen = two_items(p);
	p[0] = SR_MSG_VOTE;
	CHECK_EQ(open_raw(p, plen, 0), SR_EPROTO);
}

TEST(test_batch_limits)
{
	struct sample_set s;
	sample_set(&s, 20, 9);
	size_t len;
	uint8_t *f = batch_of(&s, &len);
	sr_decoder d;
	sr_batch_iter it;
	sr_decoder_init(&d, (uint32_t)(len - SR_FRAME_HDR_SIZE - 1), 0, NULL);
	CHECK_EQ(sr_codec_batch_open(&d, f, len, &it, NULL, NULL), SR_ETOOBIG);
	sr_decoder_free(&d);
	sr_decoder_init(&d, (uint32_t)(len - SR_FRAME_HDR_SIZE), 0, NULL);
	CHECK_EQ(batch_decode(&d, f, len, &s), 20);
	sr_decoder_free(&d);
	/* a fixed decoder too small for an append inside: SR_ETOOBIG from
	 * next(), the iterator stays put */
	sr_entry one[1];
	sr_decoder_init_fixed(&d, 0, one, 1);
	CHECK_EQ(sr_codec_batch_open(&d, f, len, &it, NULL, NULL), 0);
	sr_msg m;
	int rc, n = 0;
	while ((rc = sr_codec_batch_next(&d, &it, &m)) == 1)
		n++;
	CHECK_EQ(rc, SR_ETOOBIG);
	sr_batch_iter at = it;
	CHECK_EQ(sr_codec_batch_next(&d, &it, &m), SR_ETOOBIG);
	CHECK(it.next == at.next && it.left == at.left);
	CHECK(n < 20);
	free(f);
}

int main(int argc, char **argv)
{
	return test_main(argc, argv);
}
