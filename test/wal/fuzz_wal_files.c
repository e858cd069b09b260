/*
 * fuzz_wal_files.c — libFuzzer target for the decoders of the WAL's small
 * files (`make fuzz`): the snapshot header with its membership, the meta
 * file (term and vote) and the lost file (protocol-aware repair).
 * fuzz_wal.c covers the segments and recovery; these three are read at
 * open and had no fuzzer of their own.
 *
 *   byte 0   bits 0-1: 0 = snapshot header, 1 = meta file, 2 = lost file,
 *            3 = a snapshot header built from the rest (a recipe);
 *            bit 2: recompute the CRC field of the raw bytes first, so
 *            that the fuzzer reaches the checks behind it
 *   rest     the file's bytes, or the recipe: index, term, data size and
 *            CRC, then 3 bytes per member (id, role word, address length),
 *            then where to flip one byte (0: nowhere)
 *
 * Properties (a violation aborts, which libFuzzer reports):
 *   - no crash, no leak, no sanitizer report, whatever the bytes;
 *   - whatever decodes, encodes again and decodes to the same values
 *     (the meta and lost files to the same bytes, too);
 *   - a header built by the encoder decodes to what was encoded, and with
 *     any one byte changed it does not decode.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <seshat/types.h>

#include "../../backends/wal/wal_format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(c)                                                             \
	do {                                                                   \
		if (!(c)) {                                                    \
			fprintf(stderr, "fuzz_wal_files: %s (line %d)\n", #c,  \
				__LINE__);                                     \
			abort();                                               \
		}                                                              \
	} while (0)

static int same_member(const sr_member *a, const sr_member *b)
{
	return a->id == b->id && a->role == b->role &&
	       a->new_role == b->new_role &&
	       a->auto_promote == b->auto_promote &&
	       strcmp(a->addr, b->addr) == 0;
}

static int same_conf(const sr_membership *a, const sr_membership *b)
{
	if (a->n != b->n)
		return 0;
	for (uint32_t i = 0; i < a->n; i++)
		if (!same_member(&a->members[i], &b->members[i]))
			return 0;
	return 1;
}

static int same_hdr(const struct wal_snap_hdr *a, const struct wal_snap_hdr *b)
{
	return a->hdr_size == b->hdr_size && a->index == b->index &&
	       a->term == b->term && a->data_size == b->data_size &&
	       a->data_crc == b->data_crc && a->conf_len == b->conf_len;
}

/* Encode h and conf into a fresh buffer and decode it back. */
static void snap_round_trip(const struct wal_snap_hdr *h,
			    const sr_membership *conf)
{
	struct wal_snap_hdr h2 = *h, back;
	sr_membership c2;
	const char *why = NULL;
	unsigned char *buf;

	h2.hdr_size = wal_fmt_snap_hdr_size(conf);
	buf = malloc(h2.hdr_size);
	REQUIRE(buf);
	wal_fmt_snap_hdr_encode(buf, &h2, conf);
	REQUIRE(wal_fmt_snap_hdr_decode(buf, h2.hdr_size, &back, &c2, &why) ==
		WALFMT_OK);
	h2.conf_len = (uint32_t)wal_fmt_conf_size(conf);
	REQUIRE(same_hdr(&back, &h2));
	REQUIRE(same_conf(&c2, conf));
	free(buf);
}

static void seal_snap(unsigned char *b, size_t len)
{
	uint32_t hs;
	uint32_t crc;

	if (len < WAL_SNAP_FIXED)
		return;
	hs = wal_get32(b + 12);
	if (hs < 52 || hs > len)
		return;
	crc = sr_crc32c(0, b, 48);
	wal_put32(b + 48, sr_crc32c(crc, b + 52, hs - 52u));
}

static void fuzz_snap(unsigned char *b, size_t len, int seal)
{
	struct wal_snap_hdr h;
	sr_membership c;
	const char *why = NULL;

	if (seal)
		seal_snap(b, len);
	if (wal_fmt_snap_hdr_decode(b, len, &h, &c, &why) != WALFMT_OK) {
		REQUIRE(why != NULL);
		return;
	}
	REQUIRE(h.hdr_size <= len && c.n <= SR_MAX_MEMBERS);
	for (uint32_t i = 0; i < c.n; i++)
		REQUIRE(memchr(c.members[i].addr, 0, SR_ADDR_MAX) != NULL);
	snap_round_trip(&h, &c);
	/* conf is optional for the caller */
	REQUIRE(wal_fmt_snap_hdr_decode(b, len, &h, NULL, &why) == WALFMT_OK);
}

static void fuzz_meta(unsigned char *b, size_t len, int seal)
{
	struct wal_meta m;
	unsigned char out[WAL_META_SIZE];
	const char *why = NULL;

	if (seal && len >= 36)
		wal_put32(b + 32, sr_crc32c(0, b, 32));
	if (wal_fmt_meta_decode(b, len, &m, &why) != WALFMT_OK) {
		REQUIRE(why != NULL);
		return;
	}
	wal_fmt_meta_encode(out, &m);
	REQUIRE(len == WAL_META_SIZE && memcmp(out, b, len) == 0);
}

static void fuzz_lost(unsigned char *b, size_t len, int seal)
{
	unsigned char out[WAL_LOST_SIZE];
	sr_index last, last2;
	sr_term term, term2;
	const char *why = NULL;

	if (seal && len == WAL_LOST_SIZE)
		wal_put32(b + 32, sr_crc32c(0, b, 32));
	if (seal && len == WAL_LOST_SIZE_V1)
		wal_put32(b + 20, sr_crc32c(0, b, 20));
	if (wal_fmt_lost_decode(b, len, &last, &term, &why) != WALFMT_OK) {
		REQUIRE(why != NULL);
		return;
	}
	wal_fmt_lost_encode(out, last, term);
	REQUIRE(wal_fmt_lost_decode(out, sizeof(out), &last2, &term2, &why) ==
		WALFMT_OK);
	REQUIRE(last2 == last && term2 == term);
	/* version 2 has one encoding; version 1 is read, never written */
	if (len == WAL_LOST_SIZE)
		REQUIRE(memcmp(out, b, len) == 0);
	else
		REQUIRE(term == 0);
}

static uint64_t take(const uint8_t **p, size_t *left, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n && *left; i++, (*p)++, (*left)--)
		v |= (uint64_t) * *p << (8 * i);
	return v;
}

/* A header from a recipe, encoded, decoded, then damaged by one byte. */
static void fuzz_recipe(const uint8_t *p, size_t left)
{
	struct wal_snap_hdr h, back;
	sr_membership c, c2;
	const char *why = NULL;
	unsigned char *buf;
	uint32_t flip;

	memset(&h, 0, sizeof(h));
	memset(&c, 0, sizeof(c));
	/* the encoder's callers write a snapshot of an entry that exists */
	h.index = 1 + take(&p, &left, 8) % WAL_INDEX_MAX;
	h.term = take(&p, &left, 8);
	h.data_size = take(&p, &left, 8);
	h.data_crc = (uint32_t)take(&p, &left, 4);
	flip = (uint32_t)take(&p, &left, 2);
	while (left >= 3 && c.n < SR_MAX_MEMBERS) {
		sr_member *m = &c.members[c.n];
		uint8_t role = (uint8_t)take(&p, &left, 1);
		size_t alen = (size_t)take(&p, &left, 1) % SR_ADDR_MAX;

		m->id = c.n + 1 + (uint64_t)take(&p, &left, 1) * 257;
		m->role = 1 + role % 3;
		m->new_role = (role >> 2) % 4;
		m->auto_promote = (role >> 4) & 1;
		for (size_t i = 0; i < alen && left; i++)
			m->addr[i] = (char)(1 + take(&p, &left, 1) % 255);
		c.n++;
	}
	h.hdr_size = wal_fmt_snap_hdr_size(&c);
	buf = malloc(h.hdr_size);
	REQUIRE(buf);
	wal_fmt_snap_hdr_encode(buf, &h, &c);
	REQUIRE(wal_fmt_snap_hdr_decode(buf, h.hdr_size, &back, &c2, &why) ==
		WALFMT_OK);
	REQUIRE(same_conf(&c2, &c));
	if (flip) {
		uint32_t at = (flip - 1) % h.hdr_size;
		unsigned char was = buf[at];

		buf[at] ^= (unsigned char)(1 + (flip >> 8) % 255);
		REQUIRE(buf[at] != was);
		REQUIRE(wal_fmt_snap_hdr_decode(buf, h.hdr_size, &back, &c2,
						&why) == WALFMT_BAD);
	}
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *b;
	size_t len;
	int seal;

	if (size < 1)
		return 0;
	if ((data[0] & 3) == 3) {
		fuzz_recipe(data + 1, size - 1);
		return 0;
	}
	/* a private copy, so that sealing may write and ASan sees the
	 * decoder read past the end */
	len = size - 1;
	b = malloc(len ? len : 1);
	REQUIRE(b);
	if (len)
		memcpy(b, data + 1, len);
	seal = (data[0] & 4) != 0;
	switch (data[0] & 3) {
	case 0:
		fuzz_snap(b, len, seal);
		break;
	case 1:
		fuzz_meta(b, len, seal);
		break;
	default:
		fuzz_lost(b, len, seal);
		break;
	}
	free(b);
	return 0;
}
