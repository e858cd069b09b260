/*
 * test_codec_coalesce.c — coalesced frames of the wire codec
 * (seshat/codec.h, docs/wire-protocol.md "Coalesced heartbeats").
 *
 * Round trips of heartbeats and append answers of many groups with every
 * field distinct (so a dropped or swapped field shows), extreme values
 * included; the golden frames of the document, whose bytes were computed
 * from the document by a separate encoder; which messages coalesce and
 * which do not; the builder's refusals (another kind, sender or receiver,
 * no room); and hostile input: every truncation and single-byte
 * corruption, a count that disagrees with the length, no record, bytes
 * over, a boolean other than 0/1, a group in the header, a payload over
 * the decoder's limit, and that the plain decoder and the batch reader
 * refuse a coalesced frame.  Inputs are copied into buffers of exactly
 * their length so ASan catches any read past the end.
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

static void reseal(uint8_t *f, size_t len)
{
	uint32_t crc = sr_crc32c(0, f, 16);
	crc = sr_crc32c(crc, f + SR_FRAME_HDR_SIZE, len - SR_FRAME_HDR_SIZE);
	put32(f + 16, crc);
}

/* Message i of a set of the given kind from 1 to 2: every field distinct
 * and different per message. */
static sr_msg coalescable(uint32_t type, uint64_t i)
{
	sr_msg m;
	memset(&m, 0, sizeof(m));
	m.type = type;
	m.group = (uint32_t)(i * 7919 + 3);
	m.from = 1;
	m.to = 2;
	m.term = 0x0102030405060708ull + i;
	if (type == SR_MSG_APPEND) {
		m.u.append.prev_index = 1000 + i;
		m.u.append.prev_term = 2000 + i;
		m.u.append.commit = 3000 + i;
		m.u.append.seq = UINT64_MAX - i;
	} else {
		m.u.append_resp.success = i & 1;
		m.u.append_resp.index = 4000 + i;
		m.u.append_resp.hint_index = 5000 + i;
		m.u.append_resp.hint_term = 6000 + i;
		m.u.append_resp.seq = UINT64_MAX - 2 * i;
	}
	return m;
}

/* A sealed coalesced frame of msgs[0..n); *len its size. */
static uint8_t *frame_of(const sr_msg *msgs, int n, size_t *len)
{
	size_t cap = SR_FRAME_HDR_SIZE + SR_COALESCED_HDR_SIZE;
	for (int i = 0; i < n; i++)
		cap += sr_codec_coalesced_rec_size(&msgs[i]);
	uint8_t *f = malloc(cap);
	size_t l = 0;
	if (!f || sr_codec_coalesced_begin(&msgs[0], f, cap, &l))
		abort();
	for (int i = 1; i < n; i++)
		if (sr_codec_coalesced_add(&msgs[i], f, cap, &l))
			abort();
	if (l != cap || sr_codec_coalesced_seal(f, l))
		abort();
	*len = l;
	return f;
}

/* Open a copy of exactly len bytes and read every message, comparing with
 * want (if not NULL): the number read, or the first error. */
static int frame_decode(uint32_t max_payload, const uint8_t *f, size_t len,
			const sr_msg *want, int n_want)
{
	uint8_t *copy = malloc(len ? len : 1);
	memcpy(copy, f, len);
	sr_decoder d;
	sr_decoder_init(&d, max_payload, 0, NULL);
	sr_coalesced_iter it;
	uint32_t count = 0;
	size_t flen = 0;
	int rc = sr_codec_coalesced_open(&d, copy, len, &it, &count, &flen);
	int n = 0;
	sr_msg m;
	while (rc == 0 && (rc = sr_codec_coalesced_next(&it, &m)) == 1) {
		if (want &&
		    (n >= n_want || !msg_equal(&m, &want[n]) ||
		     (m.type == SR_MSG_APPEND && m.u.append.entries != NULL))) {
			rc = -1000;
			break;
		}
		n++;
		rc = 0;
	}
	if (rc == 0 && ((uint32_t)n != count || flen != len))
		rc = -1001;
	sr_decoder_free(&d);
	free(copy);
	return rc ? rc : n;
}

TEST(test_heartbeats_and_answers_round_trip_field_for_field)
{
	static const uint32_t types[] = { SR_MSG_APPEND, SR_MSG_APPEND_RESP };
	for (int t = 0; t < 2; t++) {
		for (int n = 1; n <= 300; n += 37) {
			sr_msg *m = calloc((size_t)n, sizeof(*m));
			for (int i = 0; i < n; i++)
				m[i] = coalescable(types[t], (uint64_t)i);
			size_t len;
			uint8_t *f = frame_of(m, n, &len);
			size_t rec = t ? SR_APPEND_RESP_REC_SIZE
				       : SR_HEARTBEAT_REC_SIZE;
			CHECK_EQ(len, SR_FRAME_HDR_SIZE +
					      SR_COALESCED_HDR_SIZE +
					      (size_t)n * rec);
			CHECK_EQ(frame_decode(0, f, len, m, n), n);
			free(f);
			free(m);
		}
	}
}

TEST(test_extreme_values_survive)
{
	sr_msg m[2];
	m[0] = coalescable(SR_MSG_APPEND, 0);
	m[0].group = UINT32_MAX;
	m[0].from = m[0].to = UINT64_MAX;
	m[0].term = UINT64_MAX;
	m[0].u.append.prev_index = UINT64_MAX;
	m[0].u.append.prev_term = UINT64_MAX;
	m[0].u.append.commit = UINT64_MAX;
	m[1] = m[0];
	m[1].group = 0;
	m[1].term = 0;
	m[1].u.append.prev_index = 0;
	m[1].u.append.seq = 0;
	size_t len;
	uint8_t *f = frame_of(m, 2, &len);
	CHECK_EQ(frame_decode(0, f, len, m, 2), 2);
	free(f);
}

TEST(test_only_empty_appends_and_append_answers_coalesce)
{
	struct sample_store st;
	sr_msg m;
	for (uint32_t type = 1; type <= SR_MSG_TYPE_MAX; type++) {
		for (uint64_t seed = 0; seed < 12; seed++) {
			sample_msg(&m, type, seed, &st);
			uint32_t want = 0;
			if (type == SR_MSG_APPEND && m.u.append.n_entries == 0)
				want = SR_FRAME_HEARTBEATS;
			if (type == SR_MSG_APPEND_RESP)
				want = SR_FRAME_APPEND_RESPS;
			CHECK_EQ(sr_codec_coalesced_type(&m), want);
			CHECK_EQ(sr_codec_coalesced_rec_size(&m),
				 want == SR_FRAME_HEARTBEATS ? 44
				 : want			     ? 45
							     : 0);
			uint8_t buf[256];
			size_t len = 0;
			CHECK_EQ(sr_codec_coalesced_begin(&m, buf, sizeof(buf),
							  &len),
				 want ? 0 : SR_EINVAL);
		}
	}
	CHECK_EQ(sr_codec_coalesced_type(NULL), 0);
}

TEST(test_the_builder_refuses_another_kind_sender_or_receiver)
{
	uint8_t buf[512];
	size_t len = 0;
	sr_msg hb = coalescable(SR_MSG_APPEND, 1);
	sr_msg resp = coalescable(SR_MSG_APPEND_RESP, 2);
	CHECK_EQ(sr_codec_coalesced_begin(&hb, buf, sizeof(buf), &len), 0);
	CHECK_EQ(len, 84);
	CHECK_EQ(sr_codec_coalesced_add(&resp, buf, sizeof(buf), &len),
		 SR_EINVAL);
	sr_msg other = hb;
	other.from = 3;
	CHECK_EQ(sr_codec_coalesced_add(&other, buf, sizeof(buf), &len),
		 SR_EINVAL);
	other = hb;
	other.to = 3;
	CHECK_EQ(sr_codec_coalesced_add(&other, buf, sizeof(buf), &len),
		 SR_EINVAL);
	/* an append with entries is not a heartbeat */
	sr_entry e = { 1, 2, SR_ENTRY_NORMAL, 0, NULL };
	other = hb;
	other.u.append.entries = &e;
	other.u.append.n_entries = 1;
	CHECK_EQ(sr_codec_coalesced_add(&other, buf, sizeof(buf), &len),
		 SR_EINVAL);
	CHECK_EQ(sr_codec_coalesced_add(NULL, buf, sizeof(buf), &len),
		 SR_EINVAL);
	CHECK_EQ(len, 84); /* nothing was added */
	/* no room: the frame is unchanged */
	CHECK_EQ(sr_codec_coalesced_add(&hb, buf, len + 43, &len), SR_ETOOBIG);
	CHECK_EQ(len, 84);
	CHECK_EQ(sr_codec_coalesced_add(&hb, buf, len + 44, &len), 0);
	CHECK_EQ(len, 128);
	/* a length that is not a coalesced frame's */
	size_t bad = len - 1;
	CHECK_EQ(sr_codec_coalesced_add(&hb, buf, sizeof(buf), &bad),
		 SR_EINVAL);
	CHECK_EQ(sr_codec_coalesced_seal(buf, bad), SR_EINVAL);
	CHECK_EQ(sr_codec_coalesced_seal(buf, 40), SR_EINVAL); /* no record */
	CHECK_EQ(sr_codec_coalesced_seal(buf, len), 0);
	CHECK_EQ(sr_codec_coalesced_begin(&hb, buf, 83, &len), SR_ETOOBIG);
	/* a message frame is not a coalesced one */
	size_t mlen = 0;
	CHECK_EQ(sr_codec_encode(&hb, buf, sizeof(buf), &mlen), 0);
	CHECK_EQ(sr_codec_coalesced_add(&hb, buf, sizeof(buf), &mlen),
		 SR_EINVAL);
}

/* The documented frames (docs/wire-protocol.md), computed from the
 * document by a separate encoder. */
static const uint8_t golden_heartbeats[] = {
	0x53, 0x52, 0x41, 0x46, 0x01, 0x00, 0x21, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x6c, 0x00, 0x00, 0x00, 0x18, 0xe5, 0x59, 0xf1, 0x01, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x02, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x09, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x12, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
};

static const uint8_t golden_resps[] = {
	0x53, 0x52, 0x41, 0x46, 0x01, 0x00, 0x22, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x6e, 0x00, 0x00, 0x00, 0xb8, 0x1d, 0x5a, 0x55, 0x02, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x02, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x01, 0x0a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x0a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x09, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0f, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
};

static sr_msg hb_msg(uint32_t group, sr_term term, sr_index prev,
		     sr_term prev_term, sr_index commit, uint64_t seq)
{
	sr_msg m;
	memset(&m, 0, sizeof(m));
	m.type = SR_MSG_APPEND;
	m.group = group;
	m.from = 1;
	m.to = 2;
	m.term = term;
	m.u.append.prev_index = prev;
	m.u.append.prev_term = prev_term;
	m.u.append.commit = commit;
	m.u.append.seq = seq;
	return m;
}

static sr_msg resp_msg(uint32_t group, sr_term term, int ok, sr_index index,
		       sr_index hint_index, sr_term hint_term, uint64_t seq)
{
	sr_msg m;
	memset(&m, 0, sizeof(m));
	m.type = SR_MSG_APPEND_RESP;
	m.group = group;
	m.from = 2;
	m.to = 1;
	m.term = term;
	m.u.append_resp.success = (uint8_t)ok;
	m.u.append_resp.index = index;
	m.u.append_resp.hint_index = hint_index;
	m.u.append_resp.hint_term = hint_term;
	m.u.append_resp.seq = seq;
	return m;
}

TEST(test_the_documented_frames_byte_for_byte)
{
	sr_msg hb[2] = { hb_msg(4, 5, 10, 5, 9, 7),
			 hb_msg(9, 3, 20, 2, 18, 8) };
	size_t len;
	uint8_t *f = frame_of(hb, 2, &len);
	CHECK_EQ(len, sizeof(golden_heartbeats));
	CHECK(memcmp(f, golden_heartbeats, len) == 0);
	CHECK_EQ(frame_decode(0, golden_heartbeats, len, hb, 2), 2);
	free(f);

	sr_msg rs[2] = { resp_msg(4, 5, 1, 10, 10, 0, 7),
			 resp_msg(9, 3, 0, 20, 15, 2, 8) };
	f = frame_of(rs, 2, &len);
	CHECK_EQ(len, sizeof(golden_resps));
	CHECK(memcmp(f, golden_resps, len) == 0);
	CHECK_EQ(frame_decode(0, golden_resps, len, rs, 2), 2);
	free(f);

	/* the header reader knows the types */
	sr_frame_hdr h;
	CHECK_EQ(sr_codec_header(golden_heartbeats, 20, 1 << 20, &h), 0);
	CHECK_EQ(h.type, SR_FRAME_HEARTBEATS);
	CHECK_EQ(h.len, 108);
	CHECK_EQ(sr_codec_header(golden_resps, 20, 1 << 20, &h), 0);
	CHECK_EQ(h.type, SR_FRAME_APPEND_RESPS);
}

TEST(test_every_truncation_and_corruption_is_refused)
{
	const uint8_t *frames[] = { golden_heartbeats, golden_resps };
	const size_t lens[] = { sizeof(golden_heartbeats),
				sizeof(golden_resps) };
	for (int k = 0; k < 2; k++) {
		for (size_t cut = 0; cut < lens[k]; cut++)
			CHECK_EQ(frame_decode(0, frames[k], cut, NULL, 0),
				 SR_EPROTO);
		uint8_t *g = malloc(lens[k]);
		for (size_t i = 0; i < lens[k]; i++) {
			memcpy(g, frames[k], lens[k]);
			g[i] ^= 0x20;
			int rc = frame_decode(0, g, lens[k], NULL, 0);
			/* the type byte may turn into another known type;
			 * the length into more than is there */
			CHECK(rc == SR_EPROTO || rc == SR_ETOOBIG);
		}
		free(g);
	}
}

/* The golden heartbeats with the payload edited by fn, CRC fixed up. */
static int edited(size_t extra, void (*fn)(uint8_t *f, size_t len))
{
	size_t len = sizeof(golden_heartbeats) + extra;
	uint8_t *g = calloc(1, len);
	memcpy(g, golden_heartbeats, sizeof(golden_heartbeats));
	put32(g + 12, (uint32_t)(len - SR_FRAME_HDR_SIZE));
	fn(g, len);
	reseal(g, len);
	int rc = frame_decode(0, g, len, NULL, 0);
	free(g);
	return rc;
}

static void count_one(uint8_t *f, size_t len)
{
	(void)len;
	put32(f + 36, 1);
}

static void count_three(uint8_t *f, size_t len)
{
	(void)len;
	put32(f + 36, 3);
}

static void count_zero(uint8_t *f, size_t len)
{
	(void)len;
	put32(f + 36, 0);
}

static void count_huge(uint8_t *f, size_t len)
{
	(void)len;
	put32(f + 36, 0xffffffffu);
}

static void group_set(uint8_t *f, size_t len)
{
	(void)len;
	f[8] = 1;
}

static void nothing(uint8_t *f, size_t len)
{
	(void)f;
	(void)len;
}

static void empty(uint8_t *f, size_t len)
{
	(void)len;
	put32(f + 12, SR_COALESCED_HDR_SIZE);
	put32(f + 36, 0);
}

TEST(test_counts_and_lengths_that_disagree_are_refused)
{
	CHECK_EQ(edited(0, nothing), 2);
	CHECK_EQ(edited(0, count_one), SR_EPROTO);
	CHECK_EQ(edited(0, count_three), SR_EPROTO);
	CHECK_EQ(edited(0, count_zero), SR_EPROTO);
	CHECK_EQ(edited(0, count_huge), SR_EPROTO);
	CHECK_EQ(edited(0, group_set), SR_EPROTO);
	CHECK_EQ(edited(1, nothing), SR_EPROTO);  /* a byte over */
	CHECK_EQ(edited(44, nothing), SR_EPROTO); /* a record over, count 2 */
	CHECK_EQ(edited(44, count_three), 3);	  /* ... and counted */
	/* a frame with no record at all */
	size_t len = SR_FRAME_HDR_SIZE + SR_COALESCED_HDR_SIZE;
	uint8_t g[40];
	memcpy(g, golden_heartbeats, len);
	empty(g, len);
	reseal(g, len);
	CHECK_EQ(frame_decode(0, g, len, NULL, 0), SR_EPROTO);
	/* shorter than the coalesced header */
	put32(g + 12, 8);
	reseal(g, 28);
	CHECK_EQ(frame_decode(0, g, 28, NULL, 0), SR_EPROTO);
}

TEST(test_a_success_flag_other_than_0_or_1_is_refused)
{
	uint8_t g[sizeof(golden_resps)];
	memcpy(g, golden_resps, sizeof(g));
	/* the second record's success byte */
	size_t off = SR_FRAME_HDR_SIZE + SR_COALESCED_HDR_SIZE +
		     SR_APPEND_RESP_REC_SIZE + 12;
	CHECK_EQ(g[off], 0);
	g[off] = 2;
	reseal(g, sizeof(g));
	CHECK_EQ(frame_decode(0, g, sizeof(g), NULL, 0), SR_EPROTO);
	g[off] = 1;
	reseal(g, sizeof(g));
	CHECK_EQ(frame_decode(0, g, sizeof(g), NULL, 0), 2);
}

TEST(test_the_decoders_limit_and_the_other_readers)
{
	CHECK_EQ(frame_decode(107, golden_heartbeats, sizeof(golden_heartbeats),
			      NULL, 0),
		 SR_ETOOBIG);
	CHECK_EQ(frame_decode(108, golden_heartbeats, sizeof(golden_heartbeats),
			      NULL, 0),
		 2);
	sr_decoder d;
	sr_decoder_init(&d, 0, 0, NULL);
	sr_msg m;
	sr_batch_iter bi;
	CHECK_EQ(sr_codec_decode(&d, golden_heartbeats,
				 sizeof(golden_heartbeats), &m, NULL),
		 SR_EPROTO);
	CHECK_EQ(sr_codec_batch_open(&d, golden_resps, sizeof(golden_resps),
				     &bi, NULL, NULL),
		 SR_EPROTO);
	/* and a message or a batch is not a coalesced frame */
	uint8_t buf[256];
	size_t len = 0;
	sr_msg hb = hb_msg(1, 1, 1, 1, 1, 1);
	CHECK_EQ(sr_codec_encode(&hb, buf, sizeof(buf), &len), 0);
	sr_coalesced_iter it;
	CHECK_EQ(sr_codec_coalesced_open(&d, buf, len, &it, NULL, NULL),
		 SR_EPROTO);
	CHECK_EQ(sr_codec_coalesced_open(NULL, buf, len, &it, NULL, NULL),
		 SR_EINVAL);
	CHECK_EQ(sr_codec_coalesced_next(NULL, &m), SR_EINVAL);
	sr_decoder_free(&d);
}

int main(int argc, char **argv)
{
	return test_main(argc, argv);
}
