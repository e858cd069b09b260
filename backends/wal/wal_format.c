/*
 * wal_format.c — encode and check the WAL's on-disk structures.
 *
 * The layouts (docs/storage-format.md is the reference):
 *
 *   segment header, 64 bytes
 *     0 magic "SRWALSEG"   8 u32 version   12 u32 header size (64)
 *    16 u64 seq           24 u64 first_index   32 u64 start_index
 *    40 u64 first_batch   48..59 zero          60 u32 CRC32C of bytes 0..59
 *
 *   record, 48-byte header, payload, zero padding to a multiple of 8
 *     0 u32 CRC32C of every byte after it (header, payload, padding)
 *     4 u32 len       8 u32 kind     12 u32 entry type
 *    16 u64 index    24 u64 term     32 u64 batch     40 u32 batch offset
 *    44 u32 group (version-2 segments; in version 1 the high half of a
 *           u64 batch offset, always zero since offsets are < 2^32)
 *   kinds: 1 ENTRY, 2 TRUNCATE, 3 COMPACT (index set, no payload),
 *          4 RESET (index 0), version 3: 5 HARDSTATE (index 0, term,
 *          payload u64 vote), 6 DROP (index 0)
 *
 *   meta, 36 bytes
 *     0 magic "SRWALMET"   8 u32 version   12 u32 size (36)
 *    16 u64 term          24 u64 vote      32 u32 CRC32C of bytes 0..31
 *
 *   snapshot header, hdr_size bytes (a multiple of 8), then the data
 *     0 magic "SRWALSNP"   8 u32 version   12 u32 hdr_size
 *    16 u64 index   24 u64 term   32 u64 data size   40 u32 data CRC32C
 *    44 u32 membership length    48 u32 CRC32C of bytes 0..47 and 52..end
 *    52 u32 zero    56 membership: u32 n, then n times
 *                      (u64 id, u32 role, u32 addr length, addr bytes)
 *                      role: bits 0-7 the role, 8-15 the new role of a
 *                      joint configuration (0: none), bit 16 auto_promote;
 *                      a header whose role words use bits 8-16 is version
 *                      2, others stay version 1 (the role alone)
 *    then zero padding to hdr_size.
 *
 * Checks are strict: a field that a writer of this version never
 * produces (a non-zero padding byte, a truncate record with a payload, a
 * batch offset past the record) makes the structure BAD, exactly as a CRC
 * mismatch does.
 */
#include <string.h>

#include "wal_format.h"

int wal_fmt_is_zero(const unsigned char *p, size_t n)
{
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		uint64_t v;
		memcpy(&v, p + i, 8);
		if (v)
			return 0;
	}
	for (; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

void wal_fmt_seg_hdr_encode(unsigned char out[WAL_SEG_HDR],
			    const struct wal_seg_hdr *h)
{
	wal_fmt_seg_hdr_encode_v(out, h, WAL_SEG_VERSION);
}

void wal_fmt_seg_hdr_encode_v(unsigned char out[WAL_SEG_HDR],
			      const struct wal_seg_hdr *h, uint32_t version)
{
	memset(out, 0, WAL_SEG_HDR);
	memcpy(out, WAL_SEG_MAGIC, 8);
	wal_put32(out + 8, version);
	wal_put32(out + 12, WAL_SEG_HDR);
	wal_put64(out + 16, h->seq);
	wal_put64(out + 24, h->first_index);
	wal_put64(out + 32, h->start_index);
	wal_put64(out + 40, h->first_batch);
	wal_put32(out + 60, sr_crc32c(0, out, 60));
}

int wal_fmt_seg_hdr_decode(const unsigned char in[WAL_SEG_HDR],
			   struct wal_seg_hdr *h, const char **why)
{
	if (wal_fmt_is_zero(in, WAL_SEG_HDR)) {
		*why = "segment header is all zero";
		return WALFMT_ZERO;
	}
	if (memcmp(in, WAL_SEG_MAGIC, 8) != 0) {
		*why = "bad segment magic";
		return WALFMT_BAD;
	}
	if (wal_get32(in + 60) != sr_crc32c(0, in, 60)) {
		*why = "segment header CRC mismatch";
		return WALFMT_BAD;
	}
	if (wal_get32(in + 8) < WAL_SEG_VERSION_1 ||
	    wal_get32(in + 8) > WAL_SEG_VERSION) {
		*why = "unsupported segment format version";
		return WALFMT_BAD;
	}
	if (wal_get32(in + 12) != WAL_SEG_HDR ||
	    !wal_fmt_is_zero(in + 48, 12)) {
		*why = "malformed segment header";
		return WALFMT_BAD;
	}
	h->seq = wal_get64(in + 16);
	h->first_index = wal_get64(in + 24);
	h->start_index = wal_get64(in + 32);
	h->first_batch = wal_get64(in + 40);
	if (h->first_index == 0 || h->start_index < h->first_index ||
	    h->start_index > WAL_INDEX_MAX || h->first_batch == 0 ||
	    h->first_batch > WAL_INDEX_MAX) {
		*why = "segment header fields out of range";
		return WALFMT_BAD;
	}
	return WALFMT_OK;
}

void wal_fmt_rec_encode(unsigned char *out, const struct wal_rec *r)
{
	uint64_t size = wal_rec_size(r->len);

	wal_fmt_rec_encode_unsealed(out, r);
	wal_put32(out, sr_crc32c(0, out + 4, (size_t)(size - 4)));
}

void wal_fmt_seal(unsigned char *buf, size_t from, size_t to)
{
	while (from < to) {
		size_t size = (size_t)wal_rec_size(wal_get32(buf + from + 4));

		wal_put32(buf + from, sr_crc32c(0, buf + from + 4, size - 4));
		from += size;
	}
}

void wal_fmt_rec_fields(const unsigned char *in, struct wal_rec *r)
{
	r->len = wal_get32(in + 4);
	r->kind = wal_get32(in + 8);
	r->etype = wal_get32(in + 12);
	r->index = wal_get64(in + 16);
	r->term = wal_get64(in + 24);
	r->batch = wal_get64(in + 32);
	r->batch_off = wal_get32(in + 40);
	r->group = wal_get32(in + 44);
	r->data = in + WAL_REC_HDR;
}

void wal_fmt_rec_encode_unsealed(unsigned char *out, const struct wal_rec *r)
{
	uint64_t size = wal_rec_size(r->len);

	wal_put32(out, 0);
	wal_put32(out + 4, r->len);
	wal_put32(out + 8, r->kind);
	wal_put32(out + 12, r->etype);
	wal_put64(out + 16, r->index);
	wal_put64(out + 24, r->term);
	wal_put64(out + 32, r->batch);
	wal_put32(out + 40, (uint32_t)r->batch_off);
	wal_put32(out + 44, r->group);
	if (r->len)
		memcpy(out + WAL_REC_HDR, r->data, r->len);
	memset(out + WAL_REC_HDR + r->len, 0,
	       (size_t)(size - WAL_REC_HDR - r->len));
}

int wal_fmt_rec_peek(const unsigned char *hdr, uint64_t off, uint64_t avail,
		     uint64_t *size, const char **why)
{
	uint32_t len = wal_get32(hdr + 4), kind = wal_get32(hdr + 8);
	uint64_t boff = wal_get32(hdr + 40);

	if (wal_fmt_is_zero(hdr, WAL_REC_HDR)) {
		*why = "zeroed record header";
		return WALFMT_ZERO;
	}
	if (kind < WAL_REC_ENTRY || kind > WAL_REC_DROP) {
		*why = "bad record kind";
		return WALFMT_BAD;
	}
	if (len > WAL_REC_MAX_PAYLOAD || wal_rec_size(len) > avail) {
		*why = "record length runs past the end of the segment";
		return WALFMT_BAD;
	}
	if (boff < WAL_SEG_HDR || boff > off || (boff & 7u) ||
	    wal_get64(hdr + 32) == 0 || wal_get64(hdr + 32) > WAL_INDEX_MAX ||
	    (wal_get64(hdr + 16) == 0) != (kind >= WAL_REC_RESET) ||
	    wal_get64(hdr + 16) > WAL_INDEX_MAX ||
	    wal_get64(hdr + 24) > WAL_INDEX_MAX) {
		*why = "record header fields out of range";
		return WALFMT_BAD;
	}
	if (kind >= WAL_REC_HARDSTATE && wal_get32(hdr + 44) == 0) {
		*why = "hard-state or drop record of group 0";
		return WALFMT_BAD;
	}
	if (kind == WAL_REC_HARDSTATE &&
	    (len != WAL_HARDSTATE_LEN || wal_get32(hdr + 12) != 0)) {
		*why = "malformed hard-state record";
		return WALFMT_BAD;
	}
	if (kind != WAL_REC_ENTRY && kind != WAL_REC_HARDSTATE &&
	    (len != 0 || wal_get32(hdr + 12) != 0 || wal_get64(hdr + 24))) {
		*why = "marker record with entry fields";
		return WALFMT_BAD;
	}
	*size = wal_rec_size(len);
	return WALFMT_OK;
}

int wal_fmt_rec_allowed(uint32_t seg_version, const struct wal_rec *r)
{
	if (seg_version == WAL_SEG_VERSION_1)
		return !r->group && r->kind < WAL_REC_RESET;
	if (seg_version == WAL_SEG_VERSION_2)
		return r->kind <= WAL_REC_RESET;
	return 1;
}

int wal_fmt_rec_decode(const unsigned char *in, uint64_t off, uint64_t size,
		       struct wal_rec *r, const char **why)
{
	uint64_t want;
	int rv = wal_fmt_rec_peek(in, off, size, &want, why);

	if (rv != WALFMT_OK)
		return rv == WALFMT_ZERO ? WALFMT_BAD : rv;
	if (want != size) {
		*why = "record size mismatch";
		return WALFMT_BAD;
	}
	if (wal_get32(in) != sr_crc32c(0, in + 4, (size_t)(size - 4))) {
		*why = "record CRC mismatch";
		return WALFMT_BAD;
	}
	wal_fmt_rec_fields(in, r);
	return WALFMT_OK;
}

void wal_fmt_meta_encode(unsigned char out[WAL_META_SIZE],
			 const struct wal_meta *m)
{
	memcpy(out, WAL_META_MAGIC, 8);
	wal_put32(out + 8, WAL_VERSION);
	wal_put32(out + 12, WAL_META_SIZE);
	wal_put64(out + 16, m->term);
	wal_put64(out + 24, m->vote);
	wal_put32(out + 32, sr_crc32c(0, out, 32));
}

int wal_fmt_meta_decode(const unsigned char *in, size_t len, struct wal_meta *m,
			const char **why)
{
	if (len != WAL_META_SIZE) {
		*why = "meta file has the wrong size";
		return WALFMT_BAD;
	}
	if (memcmp(in, WAL_META_MAGIC, 8) != 0) {
		*why = "bad meta magic";
		return WALFMT_BAD;
	}
	if (wal_get32(in + 32) != sr_crc32c(0, in, 32)) {
		*why = "meta CRC mismatch";
		return WALFMT_BAD;
	}
	if (wal_get32(in + 8) != WAL_VERSION ||
	    wal_get32(in + 12) != WAL_META_SIZE) {
		*why = "unsupported meta version";
		return WALFMT_BAD;
	}
	m->term = wal_get64(in + 16);
	m->vote = wal_get64(in + 24);
	return WALFMT_OK;
}

void wal_fmt_lost_encode(unsigned char out[WAL_LOST_SIZE], sr_index last,
			 sr_term term)
{
	memcpy(out, WAL_LOST_MAGIC, 8);
	wal_put64(out + 8, last);
	wal_put32(out + 16, 2);
	wal_put32(out + 20, 0);
	wal_put64(out + 24, term);
	wal_put32(out + 32, sr_crc32c(0, out, 32));
}

int wal_fmt_lost_decode(const unsigned char *in, size_t len, sr_index *last,
			sr_term *term, const char **why)
{
	/* the word after lost_last is version 1's reserved zero */
	size_t body = len == WAL_LOST_SIZE ? 32 : 20;

	if ((len != WAL_LOST_SIZE && len != WAL_LOST_SIZE_V1) ||
	    memcmp(in, WAL_LOST_MAGIC, 8) != 0) {
		*why = "not a lost file (size or magic)";
		return WALFMT_BAD;
	}
	if (wal_get32(in + body) != sr_crc32c(0, in, body)) {
		*why = "lost file CRC mismatch";
		return WALFMT_BAD;
	}
	if (wal_get32(in + 16) != (len == WAL_LOST_SIZE ? 2u : 0u) ||
	    (len == WAL_LOST_SIZE && wal_get32(in + 20))) {
		*why = "unsupported lost file version";
		return WALFMT_BAD;
	}
	*last = wal_get64(in + 8);
	*term = len == WAL_LOST_SIZE ? wal_get64(in + 24) : 0;
	return WALFMT_OK;
}

static size_t conf_addr_len(const sr_member *m)
{
	size_t n = 0;

	while (n < SR_ADDR_MAX - 1 && m->addr[n])
		n++;
	return n;
}

size_t wal_fmt_conf_size(const sr_membership *conf)
{
	size_t n = 4;
	uint32_t count = conf ? conf->n : 0;

	if (count > SR_MAX_MEMBERS)
		count = SR_MAX_MEMBERS;
	for (uint32_t i = 0; i < count; i++)
		n += 16 + conf_addr_len(&conf->members[i]);
	return n;
}

uint32_t wal_fmt_snap_hdr_size(const sr_membership *conf)
{
	size_t n = WAL_SNAP_FIXED + wal_fmt_conf_size(conf);

	return (uint32_t)((n + 7u) & ~(size_t)7u);
}

/* CRC of a snapshot header: every byte but the CRC field at 48..51. */
static uint32_t snap_hdr_crc(const unsigned char *in, uint32_t hdr_size)
{
	uint32_t crc = sr_crc32c(0, in, 48);

	return sr_crc32c(crc, in + 52, hdr_size - 52u);
}

/* A member's role word: the role, then what joint consensus added. */
static uint32_t conf_role_word(const sr_member *m)
{
	return (m->role & 0xffu) | (m->new_role & 0xffu) << 8 |
	       (m->auto_promote ? 1u << 16 : 0);
}

void wal_fmt_snap_hdr_encode(unsigned char *out, const struct wal_snap_hdr *h,
			     const sr_membership *conf)
{
	uint32_t count = conf ? conf->n : 0, version = WAL_VERSION;
	size_t p = WAL_SNAP_FIXED;

	if (count > SR_MAX_MEMBERS)
		count = SR_MAX_MEMBERS;
	for (uint32_t i = 0; i < count; i++)
		if (conf_role_word(&conf->members[i]) > 0xffu)
			version = WAL_SNAP_VERSION_2;
	memset(out, 0, h->hdr_size);
	memcpy(out, WAL_SNAP_MAGIC, 8);
	wal_put32(out + 8, version);
	wal_put32(out + 12, h->hdr_size);
	wal_put64(out + 16, h->index);
	wal_put64(out + 24, h->term);
	wal_put64(out + 32, h->data_size);
	wal_put32(out + 40, h->data_crc);
	wal_put32(out + 44, (uint32_t)wal_fmt_conf_size(conf));
	wal_put32(out + p, count);
	p += 4;
	for (uint32_t i = 0; i < count; i++) {
		const sr_member *m = &conf->members[i];
		size_t alen = conf_addr_len(m);

		wal_put64(out + p, m->id);
		wal_put32(out + p + 8, conf_role_word(m));
		wal_put32(out + p + 12, (uint32_t)alen);
		memcpy(out + p + 16, m->addr, alen);
		p += 16 + alen;
	}
	wal_put32(out + 48, snap_hdr_crc(out, h->hdr_size));
}

static int conf_decode(const unsigned char *p, uint32_t len, uint32_t version,
		       sr_membership *c, const char **why)
{
	uint32_t n, pos = 4;
	int high = 0; /* a role word uses bits above the role */

	*why = "malformed snapshot membership";
	if (len < 4)
		return WALFMT_BAD;
	n = wal_get32(p);
	if (n > SR_MAX_MEMBERS)
		return WALFMT_BAD;
	if (c)
		memset(c, 0, sizeof(*c));
	for (uint32_t i = 0; i < n; i++) {
		uint32_t alen;

		if (len - pos < 16)
			return WALFMT_BAD;
		alen = wal_get32(p + pos + 12);
		if (alen >= SR_ADDR_MAX || len - pos - 16 < alen)
			return WALFMT_BAD;
		if (wal_get32(p + pos + 8) >> 17)
			return WALFMT_BAD;
		high |= wal_get32(p + pos + 8) > 0xffu;
		if (c) {
			uint32_t role = wal_get32(p + pos + 8);
			c->members[i].id = wal_get64(p + pos);
			c->members[i].role = role & 0xffu;
			c->members[i].new_role = (role >> 8) & 0xffu;
			c->members[i].auto_promote = role >> 16;
			memcpy(c->members[i].addr, p + pos + 16, alen);
		}
		pos += 16 + alen;
	}
	/* version 2 exactly when a role word needs it (the encoder's rule) */
	if (pos != len || high != (version == WAL_SNAP_VERSION_2))
		return WALFMT_BAD;
	if (c)
		c->n = n;
	return WALFMT_OK;
}

int wal_fmt_snap_hdr_decode(const unsigned char *in, size_t len,
			    struct wal_snap_hdr *h, sr_membership *conf,
			    const char **why)
{
	if (len < WAL_SNAP_FIXED || memcmp(in, WAL_SNAP_MAGIC, 8) != 0) {
		*why = "bad snapshot magic";
		return WALFMT_BAD;
	}
	h->hdr_size = wal_get32(in + 12);
	h->conf_len = wal_get32(in + 44);
	if (h->hdr_size < WAL_SNAP_FIXED + 4 || (h->hdr_size & 7u) ||
	    h->hdr_size >
		    WAL_SNAP_FIXED + 8 + SR_MAX_MEMBERS * (16 + SR_ADDR_MAX) ||
	    h->conf_len > h->hdr_size - WAL_SNAP_FIXED ||
	    h->hdr_size - WAL_SNAP_FIXED - h->conf_len >= 8) {
		*why = "bad snapshot header size";
		return WALFMT_BAD;
	}
	if (len < h->hdr_size) {
		*why = "short";
		return WALFMT_BAD;
	}
	if (wal_get32(in + 48) != snap_hdr_crc(in, h->hdr_size)) {
		*why = "snapshot header CRC mismatch";
		return WALFMT_BAD;
	}
	if ((wal_get32(in + 8) != WAL_VERSION &&
	     wal_get32(in + 8) != WAL_SNAP_VERSION_2) ||
	    wal_get32(in + 52) != 0 ||
	    !wal_fmt_is_zero(in + WAL_SNAP_FIXED + h->conf_len,
			     h->hdr_size - WAL_SNAP_FIXED - h->conf_len)) {
		*why = "unsupported snapshot version";
		return WALFMT_BAD;
	}
	h->index = wal_get64(in + 16);
	h->term = wal_get64(in + 24);
	h->data_size = wal_get64(in + 32);
	h->data_crc = wal_get32(in + 40);
	if (h->index == 0 || h->index > WAL_INDEX_MAX) {
		*why = "snapshot index out of range";
		return WALFMT_BAD;
	}
	return conf_decode(in + WAL_SNAP_FIXED, h->conf_len, wal_get32(in + 8),
			   conf, why);
}
