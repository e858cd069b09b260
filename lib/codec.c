/*
 * codec.c — sr_msg <-> wire frames (docs/wire-protocol.md is the
 * specification; this file must agree with it byte for byte).
 *
 * Frame: a 20-byte header
 *
 *   0  u32 magic "SRAF"   4  u16 version   6  u16 type
 *   8  u32 group         12  u32 payload length
 *  16  u32 CRC32C of bytes 0..15 followed by the payload
 *
 * then the payload: from, to, term (u64 each) and the type's own fields.
 * Every integer is little-endian and fixed-width; booleans are one byte
 * holding 0 or 1.
 *
 * A batch frame (type SR_FRAME_BATCH, group 0) carries several messages:
 * its payload is items back to back, each a 10-byte item header (type
 * u16, group u32, payload length u32) and the message's payload exactly
 * as its own frame would carry it.  One header and one CRC cover them
 * all, so a peer hosting many groups sends one frame per peer per loop
 * iteration instead of one per message.  A batch is built in place by the
 * transport (begin or wrap, add, seal) and read in two steps: open checks
 * the frame and the item structure, next decodes one message at a time.
 *
 * Encoding is a straight walk with a cursor into a buffer whose size was
 * checked first.  Decoding walks a bounded reader: every read checks the
 * bytes left, a failed read latches an error, and the payload must be
 * consumed exactly.  The canonical encoding is unique (booleans 0/1, no
 * padding, no optional fields), so decode followed by encode reproduces
 * the input bytes: the fuzzer checks that.
 *
 * Failure modes: malformed input gives SR_EPROTO, input over the decoder's
 * limits SR_ETOOBIG; the only allocation is the decoder's entries array,
 * grown after the entry count has been checked against the bytes present
 * (each entry takes at least SR_WIRE_ENTRY_SIZE bytes) and max_entries.
 */
#include "seshat/codec.h"

#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "internal/alloc.h"
#include "internal/frame.h"

/* Payload sizes (common prefix included) of the fixed-size parts. */
#define COMMON_SIZE	     24 /* from, to, term */
#define VOTE_SIZE	     (COMMON_SIZE + 18)
#define VOTE_RESP_SIZE	     (COMMON_SIZE + 2)
#define APPEND_SIZE	     (COMMON_SIZE + 36) /* + entries */
#define APPEND_RESP_SIZE     (COMMON_SIZE + 33)
#define SNAPSHOT_SIZE	     (COMMON_SIZE + 41) /* + conf + data */
#define SNAPSHOT_RESP_SIZE   (COMMON_SIZE + 18)
#define TIMEOUT_NOW_SIZE     COMMON_SIZE
#define READ_INDEX_SIZE	     (COMMON_SIZE + 8)
#define READ_INDEX_RESP_SIZE (COMMON_SIZE + 20)

/* ------------------------------------------------------------------ */
/* Little-endian primitives                                           */
/* ------------------------------------------------------------------ */

static uint8_t *put_u8(uint8_t *p, uint8_t v)
{
	*p = v;
	return p + 1;
}

static uint8_t *put_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	return p + 2;
}

static uint8_t *put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
	return p + 4;
}

static uint8_t *put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
	return p + 8;
}

static uint8_t *put_bytes(uint8_t *p, const void *src, size_t n)
{
	if (n)
		memcpy(p, src, n);
	return p + n;
}

static uint16_t get_u16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	       ((uint32_t)p[3] << 24);
}

static uint64_t get_u64(const uint8_t *p)
{
	return (uint64_t)get_u32(p) | ((uint64_t)get_u32(p + 4) << 32);
}

/*
 * A bounded reader.  Reads past the end return zero and set `bad`, so a
 * decoder can read a whole fixed part and check once at the end.
 */
struct rd {
	const uint8_t *p;
	size_t left;
	int bad;
};

static int rd_take(struct rd *r, size_t n)
{
	if (r->bad || r->left < n) {
		r->bad = 1;
		return 0;
	}
	return 1;
}

static uint8_t rd_u8(struct rd *r)
{
	if (!rd_take(r, 1))
		return 0;
	r->left--;
	return *r->p++;
}

/* A boolean: anything but 0 or 1 is malformed. */
static uint8_t rd_bool(struct rd *r)
{
	uint8_t v = rd_u8(r);
	if (v > 1)
		r->bad = 1;
	return v;
}

static const void *rd_bytes(struct rd *r, size_t n)
{
	if (!rd_take(r, n))
		return NULL;
	const void *v = r->p;
	r->p += n;
	r->left -= n;
	return v;
}

static uint32_t rd_u32(struct rd *r)
{
	const uint8_t *p = rd_bytes(r, 4);
	return p ? get_u32(p) : 0;
}

static uint64_t rd_u64(struct rd *r)
{
	const uint8_t *p = rd_bytes(r, 8);
	return p ? get_u64(p) : 0;
}

/* ------------------------------------------------------------------ */
/* Sizes                                                              */
/* ------------------------------------------------------------------ */

static int entry_type_ok(uint32_t t)
{
	return t == SR_ENTRY_NORMAL || t == SR_ENTRY_NOOP ||
	       t == SR_ENTRY_CONFIG;
}

/* Payload size of msg, or UINT64_MAX if it cannot be encoded. */
static uint64_t payload_size(const sr_msg *m)
{
	uint64_t n;

	switch (m->type) {
	case SR_MSG_VOTE:
		return VOTE_SIZE;
	case SR_MSG_VOTE_RESP:
		return VOTE_RESP_SIZE;
	case SR_MSG_APPEND:
		if (m->u.append.n_entries && !m->u.append.entries)
			return UINT64_MAX;
		n = APPEND_SIZE;
		for (uint32_t i = 0; i < m->u.append.n_entries; i++) {
			const sr_entry *e = &m->u.append.entries[i];
			if (!entry_type_ok(e->type) || (e->len && !e->data))
				return UINT64_MAX;
			n += SR_WIRE_ENTRY_SIZE + (uint64_t)e->len;
		}
		return n;
	case SR_MSG_APPEND_RESP:
		return APPEND_RESP_SIZE;
	case SR_MSG_SNAPSHOT:
		if ((m->u.snapshot.conf_len && !m->u.snapshot.conf) ||
		    (m->u.snapshot.len && !m->u.snapshot.data))
			return UINT64_MAX;
		return SNAPSHOT_SIZE + (uint64_t)m->u.snapshot.conf_len +
		       m->u.snapshot.len;
	case SR_MSG_SNAPSHOT_RESP:
		return SNAPSHOT_RESP_SIZE;
	case SR_MSG_TIMEOUT_NOW:
		return TIMEOUT_NOW_SIZE;
	case SR_MSG_READ_INDEX:
		return READ_INDEX_SIZE;
	case SR_MSG_READ_INDEX_RESP:
		return READ_INDEX_RESP_SIZE;
	default:
		return UINT64_MAX;
	}
}

SR_API size_t sr_codec_size(const sr_msg *msg)
{
	uint64_t n = msg ? payload_size(msg) : UINT64_MAX;
	if (n > UINT32_MAX)
		return 0;
	return SR_FRAME_HDR_SIZE + (size_t)n;
}

/* ------------------------------------------------------------------ */
/* Encoding                                                           */
/* ------------------------------------------------------------------ */

static uint8_t *encode_header(uint8_t *p, uint32_t type, uint32_t group,
			      uint32_t len)
{
	p = put_u32(p, SR_FRAME_MAGIC);
	p = put_u16(p, SR_FRAME_VERSION);
	p = put_u16(p, (uint16_t)type);
	p = put_u32(p, group);
	p = put_u32(p, len);
	return put_u32(p, 0); /* the CRC, filled in by seal_frame() */
}

/* Fill in the CRC once header and payload are written. */
static void seal_frame(uint8_t *frame, size_t payload_len)
{
	uint32_t crc = sr_crc32c(0, frame, 16);
	crc = sr_crc32c(crc, frame + SR_FRAME_HDR_SIZE, payload_len);
	put_u32(frame + 16, crc);
}

static uint8_t *encode_append(uint8_t *p, const sr_msg_append *a)
{
	p = put_u64(p, a->prev_index);
	p = put_u64(p, a->prev_term);
	p = put_u64(p, a->commit);
	p = put_u64(p, a->seq);
	p = put_u32(p, a->n_entries);
	for (uint32_t i = 0; i < a->n_entries; i++) {
		const sr_entry *e = &a->entries[i];
		p = put_u64(p, e->term);
		p = put_u64(p, e->index);
		p = put_u32(p, e->type);
		p = put_u32(p, e->len);
		p = put_bytes(p, e->data, e->len);
	}
	return p;
}

static uint8_t *encode_snapshot(uint8_t *p, const sr_msg_snapshot *s)
{
	p = put_u64(p, s->last_index);
	p = put_u64(p, s->last_term);
	p = put_u64(p, s->offset);
	p = put_u64(p, s->total);
	p = put_u8(p, s->done ? 1 : 0);
	p = put_u32(p, s->conf_len);
	p = put_u32(p, s->len);
	p = put_bytes(p, s->conf, s->conf_len);
	return put_bytes(p, s->data, s->len);
}

/* The type-specific part of the payload. */
static uint8_t *encode_body(uint8_t *p, const sr_msg *m)
{
	switch (m->type) {
	case SR_MSG_VOTE:
		p = put_u64(p, m->u.vote.last_index);
		p = put_u64(p, m->u.vote.last_term);
		p = put_u8(p, m->u.vote.pre ? 1 : 0);
		return put_u8(p, m->u.vote.transfer ? 1 : 0);
	case SR_MSG_VOTE_RESP:
		p = put_u8(p, m->u.vote_resp.granted ? 1 : 0);
		return put_u8(p, m->u.vote_resp.pre ? 1 : 0);
	case SR_MSG_APPEND:
		return encode_append(p, &m->u.append);
	case SR_MSG_APPEND_RESP:
		p = put_u8(p, m->u.append_resp.success ? 1 : 0);
		p = put_u64(p, m->u.append_resp.index);
		p = put_u64(p, m->u.append_resp.hint_index);
		p = put_u64(p, m->u.append_resp.hint_term);
		return put_u64(p, m->u.append_resp.seq);
	case SR_MSG_SNAPSHOT:
		return encode_snapshot(p, &m->u.snapshot);
	case SR_MSG_SNAPSHOT_RESP:
		p = put_u64(p, m->u.snapshot_resp.last_index);
		p = put_u64(p, m->u.snapshot_resp.offset);
		p = put_u8(p, m->u.snapshot_resp.done ? 1 : 0);
		return put_u8(p, m->u.snapshot_resp.rejected ? 1 : 0);
	case SR_MSG_READ_INDEX:
		return put_u64(p, m->u.read_index.ctx);
	case SR_MSG_READ_INDEX_RESP:
		p = put_u64(p, m->u.read_index_resp.ctx);
		p = put_u64(p, m->u.read_index_resp.index);
		return put_u32(p, (uint32_t)m->u.read_index_resp.status);
	default: /* SR_MSG_TIMEOUT_NOW: nothing beyond the common part */
		return p;
	}
}

/* The whole payload: the common part, then the type's fields. */
static void encode_payload(uint8_t *p, const sr_msg *m)
{
	p = put_u64(p, m->from);
	p = put_u64(p, m->to);
	p = put_u64(p, m->term);
	encode_body(p, m);
}

SR_API int sr_codec_encode(const sr_msg *msg, void *buf, size_t cap,
			   size_t *len_out)
{
	size_t size = sr_codec_size(msg);
	if (!size)
		return SR_EINVAL;
	if (!buf || cap < size)
		return SR_ETOOBIG;

	size_t plen = size - SR_FRAME_HDR_SIZE;
	uint8_t *p = encode_header(buf, msg->type, msg->group, (uint32_t)plen);
	encode_payload(p, msg);
	seal_frame(buf, plen);
	if (len_out)
		*len_out = size;
	return 0;
}

SR_API int sr_codec_encode_hello(const sr_hello *h, void *buf, size_t cap)
{
	if (!h || !buf || cap < SR_HELLO_FRAME_SIZE)
		return SR_ETOOBIG;
	int rc = frame_put_hello((uint8_t *)buf + SR_FRAME_HDR_SIZE, h);
	if (rc)
		return rc;
	frame_seal(buf, SR_FRAME_HELLO, h->features, SR_HELLO_PAYLOAD);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Batches: encoding                                                  */
/* ------------------------------------------------------------------ */

static int is_msg_type(uint32_t type)
{
	return type >= 1 && type <= SR_MSG_TYPE_MAX;
}

/* Magic, version and type of a batch (length and CRC come at sealing). */
static int is_batch_header(const uint8_t *f)
{
	return get_u32(f) == SR_FRAME_MAGIC &&
	       get_u16(f + 4) == SR_FRAME_VERSION &&
	       get_u16(f + 6) == SR_FRAME_BATCH;
}

static uint8_t *put_item_header(uint8_t *p, uint32_t type, uint32_t group,
				uint32_t plen)
{
	p = put_u16(p, (uint16_t)type);
	p = put_u32(p, group);
	return put_u32(p, plen);
}

SR_API size_t sr_codec_batch_item_size(const sr_msg *msg)
{
	size_t n = sr_codec_size(msg);
	return n ? n - SR_FRAME_HDR_SIZE + SR_BATCH_ITEM_HDR_SIZE : 0;
}

SR_API int sr_codec_batch_begin(void *buf, size_t cap)
{
	if (!buf || cap < SR_FRAME_HDR_SIZE)
		return SR_ETOOBIG;
	encode_header(buf, SR_FRAME_BATCH, 0, 0);
	return 0;
}

SR_API int sr_codec_batch_add(const sr_msg *msg, void *buf, size_t cap,
			      size_t *len)
{
	size_t n = sr_codec_batch_item_size(msg);
	if (!n || !buf || !len || *len < SR_FRAME_HDR_SIZE ||
	    !is_batch_header(buf))
		return SR_EINVAL;
	if (cap < *len || cap - *len < n ||
	    *len - SR_FRAME_HDR_SIZE + n > UINT32_MAX)
		return SR_ETOOBIG;
	uint8_t *p = (uint8_t *)buf + *len;
	p = put_item_header(p, msg->type, msg->group,
			    (uint32_t)(n - SR_BATCH_ITEM_HDR_SIZE));
	encode_payload(p, msg);
	*len += n;
	return 0;
}

SR_API int sr_codec_batch_wrap(void *buf, size_t cap, size_t *len)
{
	uint8_t *f = buf;
	if (!f || !len || *len < SR_FRAME_HDR_SIZE)
		return SR_EINVAL;
	uint32_t type = get_u16(f + 6), group = get_u32(f + 8);
	uint32_t plen = get_u32(f + 12);
	if (get_u32(f) != SR_FRAME_MAGIC ||
	    get_u16(f + 4) != SR_FRAME_VERSION || !is_msg_type(type) ||
	    *len - SR_FRAME_HDR_SIZE != plen)
		return SR_EINVAL;
	if (cap < *len || cap - *len < SR_BATCH_ITEM_HDR_SIZE ||
	    (uint64_t)plen + SR_BATCH_ITEM_HDR_SIZE > UINT32_MAX)
		return SR_ETOOBIG;
	memmove(f + SR_FRAME_HDR_SIZE + SR_BATCH_ITEM_HDR_SIZE,
		f + SR_FRAME_HDR_SIZE, plen);
	put_item_header(f + SR_FRAME_HDR_SIZE, type, group, plen);
	encode_header(f, SR_FRAME_BATCH, 0, 0);
	*len += SR_BATCH_ITEM_HDR_SIZE;
	return 0;
}

SR_API int sr_codec_batch_seal(void *buf, size_t len)
{
	if (!buf || len < SR_FRAME_HDR_SIZE + SR_BATCH_ITEM_HDR_SIZE ||
	    len - SR_FRAME_HDR_SIZE > UINT32_MAX || !is_batch_header(buf))
		return SR_EINVAL;
	size_t plen = len - SR_FRAME_HDR_SIZE;
	put_u32((uint8_t *)buf + 12, (uint32_t)plen);
	seal_frame(buf, plen);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Decoding                                                           */
/* ------------------------------------------------------------------ */

SR_API int sr_codec_header(const void *buf, size_t len, uint32_t max_payload,
			   sr_frame_hdr *hdr)
{
	const uint8_t *p = buf;

	if (!buf || len < SR_FRAME_HDR_SIZE)
		return SR_EPROTO;
	if (get_u32(p) != SR_FRAME_MAGIC || get_u16(p + 4) != SR_FRAME_VERSION)
		return SR_EPROTO;
	uint32_t type = get_u16(p + 6);
	if ((type < 1 || type > SR_MSG_TYPE_MAX) && type != SR_FRAME_HELLO &&
	    type != SR_FRAME_BATCH && type != SR_FRAME_HEARTBEATS &&
	    type != SR_FRAME_APPEND_RESPS)
		return SR_EPROTO;
	uint32_t plen = get_u32(p + 12);
	if (plen > max_payload)
		return SR_ETOOBIG;
	if (hdr) {
		hdr->type = type;
		hdr->group = get_u32(p + 8);
		hdr->len = plen;
		hdr->crc = get_u32(p + 16);
	}
	return 0;
}

SR_API void sr_decoder_init(sr_decoder *d, uint32_t max_payload,
			    uint32_t max_entries, const sr_alloc *alloc)
{
	memset(d, 0, sizeof(*d));
	d->max_payload = max_payload ? max_payload : SR_FRAME_MAX_DEFAULT;
	d->max_entries = max_entries ? max_entries
				     : SR_FRAME_MAX_ENTRIES_DEFAULT;
	d->alloc = alloc;
}

SR_API void sr_decoder_init_fixed(sr_decoder *d, uint32_t max_payload,
				  sr_entry *scratch, size_t cap)
{
	memset(d, 0, sizeof(*d));
	d->max_payload = max_payload ? max_payload : SR_FRAME_MAX_DEFAULT;
	d->max_entries = cap > UINT32_MAX ? UINT32_MAX : (uint32_t)cap;
	d->entries = scratch;
	d->cap = scratch ? cap : 0;
	d->fixed = 1;
}

SR_API void sr_decoder_free(sr_decoder *d)
{
	if (!d)
		return;
	if (!d->fixed && d->entries)
		hook_free(d->alloc, d->entries);
	d->entries = NULL;
	d->cap = 0;
}

/* Make room for n entries.  n was checked against max_entries. */
static int dec_reserve(sr_decoder *d, size_t n)
{
	if (n <= d->cap)
		return 0;
	if (d->fixed)
		return SR_ETOOBIG;
	size_t cap = d->cap ? d->cap : 16;
	while (cap < n)
		cap *= 2;
	if (cap > d->max_entries)
		cap = d->max_entries;
	void *p = hook_realloc(d->alloc, d->entries, cap * sizeof(sr_entry));
	if (!p)
		return SR_ENOMEM;
	d->entries = p;
	d->cap = cap;
	return 0;
}

static int decode_append(sr_decoder *d, struct rd *r, sr_msg_append *a)
{
	a->prev_index = rd_u64(r);
	a->prev_term = rd_u64(r);
	a->commit = rd_u64(r);
	a->seq = rd_u64(r);
	a->n_entries = rd_u32(r);
	a->entries = NULL;
	if (r->bad)
		return SR_EPROTO;
	/* The count must be possible given the bytes present, then within
	 * the limit, before anything is allocated for it. */
	if (a->n_entries > r->left / SR_WIRE_ENTRY_SIZE)
		return SR_EPROTO;
	if (a->n_entries > d->max_entries)
		return SR_ETOOBIG;
	if (!a->n_entries)
		return 0;
	int rc = dec_reserve(d, a->n_entries);
	if (rc)
		return rc;
	for (uint32_t i = 0; i < a->n_entries; i++) {
		sr_entry *e = &d->entries[i];
		e->term = rd_u64(r);
		e->index = rd_u64(r);
		e->type = rd_u32(r);
		e->len = rd_u32(r);
		e->data = rd_bytes(r, e->len);
		if (r->bad || !entry_type_ok(e->type))
			return SR_EPROTO;
		if (!e->len)
			e->data = NULL;
	}
	a->entries = d->entries;
	return 0;
}

static int decode_snapshot(struct rd *r, sr_msg_snapshot *s)
{
	s->last_index = rd_u64(r);
	s->last_term = rd_u64(r);
	s->offset = rd_u64(r);
	s->total = rd_u64(r);
	s->done = rd_bool(r);
	s->conf_len = rd_u32(r);
	s->len = rd_u32(r);
	s->conf = rd_bytes(r, s->conf_len);
	s->data = rd_bytes(r, s->len);
	if (r->bad)
		return SR_EPROTO;
	if (!s->conf_len)
		s->conf = NULL;
	if (!s->len)
		s->data = NULL;
	return 0;
}

static int decode_body(sr_decoder *d, struct rd *r, sr_msg *m)
{
	switch (m->type) {
	case SR_MSG_VOTE:
		m->u.vote.last_index = rd_u64(r);
		m->u.vote.last_term = rd_u64(r);
		m->u.vote.pre = rd_bool(r);
		m->u.vote.transfer = rd_bool(r);
		return 0;
	case SR_MSG_VOTE_RESP:
		m->u.vote_resp.granted = rd_bool(r);
		m->u.vote_resp.pre = rd_bool(r);
		return 0;
	case SR_MSG_APPEND:
		return decode_append(d, r, &m->u.append);
	case SR_MSG_APPEND_RESP:
		m->u.append_resp.success = rd_bool(r);
		m->u.append_resp.index = rd_u64(r);
		m->u.append_resp.hint_index = rd_u64(r);
		m->u.append_resp.hint_term = rd_u64(r);
		m->u.append_resp.seq = rd_u64(r);
		return 0;
	case SR_MSG_SNAPSHOT:
		return decode_snapshot(r, &m->u.snapshot);
	case SR_MSG_SNAPSHOT_RESP:
		m->u.snapshot_resp.last_index = rd_u64(r);
		m->u.snapshot_resp.offset = rd_u64(r);
		m->u.snapshot_resp.done = rd_bool(r);
		m->u.snapshot_resp.rejected = rd_bool(r);
		return 0;
	case SR_MSG_TIMEOUT_NOW:
		return 0;
	case SR_MSG_READ_INDEX:
		m->u.read_index.ctx = rd_u64(r);
		return 0;
	case SR_MSG_READ_INDEX_RESP:
		m->u.read_index_resp.ctx = rd_u64(r);
		m->u.read_index_resp.index = rd_u64(r);
		m->u.read_index_resp.status = (int32_t)rd_u32(r);
		/* 0 or a negative SR_E* code */
		if (m->u.read_index_resp.status > 0)
			r->bad = 1;
		return 0;
	default:
		return SR_EPROTO; /* a hello: not a message */
	}
}

/* A message of a known type from its payload (plen bytes at p), which
 * it must consume exactly. */
static int decode_msg(sr_decoder *d, uint32_t type, uint32_t group,
		      const uint8_t *p, size_t plen, sr_msg *out)
{
	struct rd r = { p, plen, 0 };
	memset(out, 0, sizeof(*out));
	out->type = type;
	out->group = group;
	out->from = rd_u64(&r);
	out->to = rd_u64(&r);
	out->term = rd_u64(&r);
	int rc = decode_body(d, &r, out);
	if (rc)
		return rc;
	if (r.bad || r.left)
		return SR_EPROTO; /* short, or bytes left over */
	return 0;
}

SR_API int sr_codec_decode(sr_decoder *d, const void *buf, size_t len,
			   sr_msg *out, size_t *frame_len)
{
	sr_frame_hdr h;

	if (!d || !out)
		return SR_EINVAL;
	int rc = frame_verify(buf, len, d->max_payload, &h);
	if (rc)
		return rc;
	if (!is_msg_type(h.type))
		return SR_EPROTO; /* a hello or a batch */
	rc = decode_msg(d, h.type, h.group,
			(const uint8_t *)buf + SR_FRAME_HDR_SIZE, h.len, out);
	if (rc)
		return rc;
	if (frame_len)
		*frame_len = SR_FRAME_HDR_SIZE + (size_t)h.len;
	return 0;
}

SR_API int sr_codec_decode_hello(const void *buf, size_t len, sr_hello *out)
{
	sr_frame_hdr h;

	int rc = frame_verify(buf, len, SR_HELLO_PAYLOAD, &h);
	if (rc)
		return SR_EPROTO;
	if (h.type != SR_FRAME_HELLO || h.len != SR_HELLO_PAYLOAD)
		return SR_EPROTO;
	out->features = h.group; /* a hello's group field: feature bits */
	return frame_get_hello((const uint8_t *)buf + SR_FRAME_HDR_SIZE, out);
}

/* ------------------------------------------------------------------ */
/* Batches: decoding                                                  */
/* ------------------------------------------------------------------ */

/* The item at p (left bytes to the batch's end): its header is there, its
 * type is a message type and its payload fits.  *size: the whole item. */
static int item_check(const uint8_t *p, size_t left, size_t *size)
{
	if (left < SR_BATCH_ITEM_HDR_SIZE || !is_msg_type(get_u16(p)))
		return SR_EPROTO; /* a cut header, a nested batch, a hello */
	uint32_t plen = get_u32(p + 6);
	if (plen > left - SR_BATCH_ITEM_HDR_SIZE)
		return SR_EPROTO;
	*size = SR_BATCH_ITEM_HDR_SIZE + (size_t)plen;
	return 0;
}

SR_API int sr_codec_batch_open(const sr_decoder *d, const void *buf, size_t len,
			       sr_batch_iter *it, uint32_t *count,
			       size_t *frame_len)
{
	sr_frame_hdr h;

	if (!d || !it)
		return SR_EINVAL;
	int rc = frame_verify(buf, len, d->max_payload, &h);
	if (rc)
		return rc;
	if (h.type != SR_FRAME_BATCH || h.group || !h.len)
		return SR_EPROTO;
	const uint8_t *p = (const uint8_t *)buf + SR_FRAME_HDR_SIZE;
	size_t left = h.len, size;
	uint32_t n = 0;
	while (left) {
		if (item_check(p, left, &size))
			return SR_EPROTO;
		p += size;
		left -= size;
		n++;
	}
	it->next = (const uint8_t *)buf + SR_FRAME_HDR_SIZE;
	it->left = h.len;
	if (count)
		*count = n;
	if (frame_len)
		*frame_len = SR_FRAME_HDR_SIZE + (size_t)h.len;
	return 0;
}

SR_API int sr_codec_batch_next(sr_decoder *d, sr_batch_iter *it, sr_msg *out)
{
	size_t size;

	if (!d || !it || !out)
		return SR_EINVAL;
	if (!it->left)
		return 0;
	if (!it->next || item_check(it->next, it->left, &size))
		return SR_EPROTO;
	const uint8_t *p = it->next;
	int rc = decode_msg(d, get_u16(p), get_u32(p + 2),
			    p + SR_BATCH_ITEM_HDR_SIZE,
			    size - SR_BATCH_ITEM_HDR_SIZE, out);
	if (rc)
		return rc;
	it->next += size;
	it->left -= size;
	return 1;
}
