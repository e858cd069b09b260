/*
 * codec_coalesce.c — coalesced heartbeats and append answers on the wire
 * (docs/wire-protocol.md, "Coalesced heartbeats").
 *
 * A process that carries thousands of Raft groups sends each peer, every
 * heartbeat interval, one heartbeat per group it leads there, and gets one
 * answer per heartbeat back.  Batch frames (codec.c) already put them in
 * one frame, but each still travels as a full message: a 10-byte item
 * header, from, to and term, then its fields.  A coalesced frame carries
 * many such messages of one kind compactly, the way CockroachDB coalesces
 * its heartbeats: from and to once for the frame, then one fixed-size
 * record per message holding everything else.
 *
 *   header   the usual 20 bytes: type SR_FRAME_HEARTBEATS (33) or
 *            SR_FRAME_APPEND_RESPS (34), group 0
 *   payload  from u64, to u64, count u32, then count records:
 *     heartbeat (44 bytes)    group u32, term, prev_index, prev_term,
 *                             commit, seq (u64 each)
 *     append_resp (45 bytes)  group u32, term u64, success u8 (0/1),
 *                             index, hint_index, hint_term, seq (u64 each)
 *
 * Coalescing is an encoding, not a summary: a record carries every field
 * of the message it replaces (an append without entries has nothing
 * else), so the receiver steps each group's engine with exactly the
 * message the sender's engine sent — the seq that ReadIndex confirmation
 * counts on included — in the order they were added.  The encoding is
 * canonical (the count agrees with the length, booleans are 0/1), so
 * decoding and re-encoding gives back the same bytes; the fuzzer checks
 * that.
 *
 * Building happens in place in the transport's send queue, as for a batch:
 * begin with the first message, add records while the frame is the last in
 * the queue and nothing of it was written, seal before the write.  Reading
 * is in two steps: open checks everything (header, CRC, count against
 * length, booleans), so that next cannot fail on a record.
 */
#include "seshat/codec.h"

#include "crc32c.h"
#include "internal/frame.h"

#define COALESCED_MIN                                                          \
	(SR_FRAME_HDR_SIZE + SR_COALESCED_HDR_SIZE) /* a frame with no record */

static int is_coalesced_type(uint32_t type)
{
	return type == SR_FRAME_HEARTBEATS || type == SR_FRAME_APPEND_RESPS;
}

static size_t rec_size_of(uint32_t type)
{
	return type == SR_FRAME_HEARTBEATS ? SR_HEARTBEAT_REC_SIZE
					   : SR_APPEND_RESP_REC_SIZE;
}

SR_API uint32_t sr_codec_coalesced_type(const sr_msg *msg)
{
	if (!msg)
		return 0;
	if (msg->type == SR_MSG_APPEND && msg->u.append.n_entries == 0)
		return SR_FRAME_HEARTBEATS;
	if (msg->type == SR_MSG_APPEND_RESP)
		return SR_FRAME_APPEND_RESPS;
	return 0;
}

SR_API size_t sr_codec_coalesced_rec_size(const sr_msg *msg)
{
	uint32_t type = sr_codec_coalesced_type(msg);
	return type ? rec_size_of(type) : 0;
}

/* Write msg's record at p (its size was checked by the caller). */
static void put_record(uint8_t *p, const sr_msg *m)
{
	frame_put_le(p, m->group, 4);
	frame_put_le(p + 4, m->term, 8);
	if (m->type == SR_MSG_APPEND) {
		const sr_msg_append *a = &m->u.append;
		frame_put_le(p + 12, a->prev_index, 8);
		frame_put_le(p + 20, a->prev_term, 8);
		frame_put_le(p + 28, a->commit, 8);
		frame_put_le(p + 36, a->seq, 8);
		return;
	}
	const sr_msg_append_resp *r = &m->u.append_resp;
	p[12] = r->success ? 1 : 0;
	frame_put_le(p + 13, r->index, 8);
	frame_put_le(p + 21, r->hint_index, 8);
	frame_put_le(p + 29, r->hint_term, 8);
	frame_put_le(p + 37, r->seq, 8);
}

SR_API int sr_codec_coalesced_begin(const sr_msg *msg, void *buf, size_t cap,
				    size_t *len)
{
	uint8_t *f = buf;
	uint32_t type = sr_codec_coalesced_type(msg);

	if (!type || !buf || !len)
		return SR_EINVAL;
	size_t size = COALESCED_MIN + rec_size_of(type);
	if (cap < size)
		return SR_ETOOBIG;
	/* The header's type names the kind while the frame grows; seal
	 * writes the rest of the header. */
	memset(f, 0, SR_FRAME_HDR_SIZE);
	frame_put_le(f + 6, type, 2);
	frame_put_le(f + SR_FRAME_HDR_SIZE, msg->from, 8);
	frame_put_le(f + SR_FRAME_HDR_SIZE + 8, msg->to, 8);
	frame_put_le(f + SR_FRAME_HDR_SIZE + 16, 1, 4);
	put_record(f + COALESCED_MIN, msg);
	*len = size;
	return 0;
}

/* The kind of the unsealed coalesced frame of len bytes at f, or 0 if
 * len is not the size of one. */
static uint32_t frame_kind(const uint8_t *f, size_t len)
{
	uint32_t type = (uint32_t)frame_get_le(f + 6, 2);
	if (!is_coalesced_type(type) || len < COALESCED_MIN)
		return 0;
	size_t recs = len - COALESCED_MIN;
	if (recs == 0 || recs % rec_size_of(type))
		return 0;
	return type;
}

SR_API int sr_codec_coalesced_add(const sr_msg *msg, void *buf, size_t cap,
				  size_t *len)
{
	uint8_t *f = buf;

	if (!buf || !len)
		return SR_EINVAL;
	uint32_t type = frame_kind(f, *len);
	if (!type || type != sr_codec_coalesced_type(msg) ||
	    msg->from != frame_get_le(f + SR_FRAME_HDR_SIZE, 8) ||
	    msg->to != frame_get_le(f + SR_FRAME_HDR_SIZE + 8, 8))
		return SR_EINVAL;
	size_t rec = rec_size_of(type);
	if (*len - SR_FRAME_HDR_SIZE + rec > UINT32_MAX)
		return SR_ETOOBIG;
	if (cap < *len || cap - *len < rec)
		return SR_ETOOBIG;
	put_record(f + *len, msg);
	*len += rec;
	return 0;
}

SR_API int sr_codec_coalesced_seal(void *buf, size_t len)
{
	uint8_t *f = buf;

	if (!buf)
		return SR_EINVAL;
	uint32_t type = frame_kind(f, len);
	if (!type || len - SR_FRAME_HDR_SIZE > UINT32_MAX)
		return SR_EINVAL;
	uint64_t count = (len - COALESCED_MIN) / rec_size_of(type);
	frame_put_le(f + SR_FRAME_HDR_SIZE + 16, count, 4);
	frame_seal(f, type, 0, (uint32_t)(len - SR_FRAME_HDR_SIZE));
	return 0;
}

/* ------------------------------------------------------------------ */
/* Decoding                                                           */
/* ------------------------------------------------------------------ */

SR_API int sr_codec_coalesced_open(const sr_decoder *d, const void *buf,
				   size_t len, sr_coalesced_iter *it,
				   uint32_t *count, size_t *frame_len)
{
	const uint8_t *f = buf;
	sr_frame_hdr h;

	if (!d || !it)
		return SR_EINVAL;
	int rc = frame_verify(f, len, d->max_payload, &h);
	if (rc)
		return rc;
	if (!is_coalesced_type(h.type) || h.group ||
	    h.len < SR_COALESCED_HDR_SIZE)
		return SR_EPROTO;
	const uint8_t *p = f + SR_FRAME_HDR_SIZE;
	uint32_t n = (uint32_t)frame_get_le(p + 16, 4);
	size_t rec = rec_size_of(h.type);
	/* The count must fill the payload exactly (no division overflow:
	 * n * rec is compared as a 64-bit product of 32-bit values). */
	if (n == 0 ||
	    (uint64_t)n * rec != (uint64_t)h.len - SR_COALESCED_HDR_SIZE)
		return SR_EPROTO;
	if (h.type == SR_FRAME_APPEND_RESPS) {
		const uint8_t *r = p + SR_COALESCED_HDR_SIZE;
		for (uint32_t i = 0; i < n; i++, r += rec)
			if (r[12] > 1)
				return SR_EPROTO; /* success: a boolean */
	}
	it->next = p + SR_COALESCED_HDR_SIZE;
	it->left = n;
	it->type = h.type;
	it->from = frame_get_le(p, 8);
	it->to = frame_get_le(p + 8, 8);
	if (count)
		*count = n;
	if (frame_len)
		*frame_len = SR_FRAME_HDR_SIZE + (size_t)h.len;
	return 0;
}

SR_API int sr_codec_coalesced_next(sr_coalesced_iter *it, sr_msg *out)
{
	if (!it || !out)
		return SR_EINVAL;
	if (!it->left || !it->next)
		return 0;
	const uint8_t *p = it->next;
	memset(out, 0, sizeof(*out));
	out->group = (uint32_t)frame_get_le(p, 4);
	out->from = it->from;
	out->to = it->to;
	out->term = frame_get_le(p + 4, 8);
	if (it->type == SR_FRAME_HEARTBEATS) {
		out->type = SR_MSG_APPEND;
		out->u.append.prev_index = frame_get_le(p + 12, 8);
		out->u.append.prev_term = frame_get_le(p + 20, 8);
		out->u.append.commit = frame_get_le(p + 28, 8);
		out->u.append.seq = frame_get_le(p + 36, 8);
		it->next += SR_HEARTBEAT_REC_SIZE;
	} else {
		out->type = SR_MSG_APPEND_RESP;
		out->u.append_resp.success = p[12];
		out->u.append_resp.index = frame_get_le(p + 13, 8);
		out->u.append_resp.hint_index = frame_get_le(p + 21, 8);
		out->u.append_resp.hint_term = frame_get_le(p + 29, 8);
		out->u.append_resp.seq = frame_get_le(p + 37, 8);
		it->next += SR_APPEND_RESP_REC_SIZE;
	}
	it->left--;
	return 1;
}
