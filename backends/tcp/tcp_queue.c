/*
 * tcp_queue.c — a peer's send queue: encoded frames back to back in one
 * buffer (struct tcp_peer in tcp_int.h), so that a batch of frames
 * leaves in one write(2) without an iovec per frame.
 *
 * tcp.c, tcp_coalesce.c and tcp_out.c append at the tail after
 * tcp_queue_reserve() made room; tcp_out.c writes from the head and
 * calls tcp_queue_written() to count what left; the last frame stays
 * open for batching or coalescing until tcp_queue_seal() closes it, which
 * every write does first.  A queue is bounded by max_queue_bytes; a peer
 * that goes down loses its queue (tcp_queue_reset(), each message counted
 * as a drop).
 */
#include "tcp_int.h"

#include <string.h>

/* Drop what is queued (counting the messages) and free the buffer. */
void tcp_queue_reset(sr_tcp *t, struct tcp_peer *p)
{
	if (p->q_msgs) {
		p->drops += p->q_msgs;
		t->st.drops += p->q_msgs;
		t->st.drops_down += p->q_msgs;
	}
	t->st.queued_bytes -= p->q_tail - p->q_head;
	tcp_free(t, p->q, p->q_cap);
	p->q = NULL;
	p->q_cap = p->q_head = p->q_tail = p->q_scan = p->q_last = 0;
	p->q_last_kind = TCP_LAST_NONE;
	p->q_msgs = 0;
	p->dirty = 0;
}

/*
 * Make room for n more bytes at the tail, within max_queue_bytes.
 *
 * The buffer holds q[q_scan, q_tail): frames not completely written (the
 * first possibly in part).  Completely written frames at the front are
 * reclaimed by sliding the rest down, but only when that is cheap for
 * what it frees (at least as many bytes freed as moved, or an eighth of
 * the buffer) or growing cannot make room: a slow reader that drains a
 * little at a time must not make every send move the whole queue.  A
 * queue near its limit with too little reclaimable counts as full.
 */
int tcp_queue_reserve(sr_tcp *t, struct tcp_peer *p, size_t n)
{
	size_t done = p->q_scan, keep = p->q_tail - p->q_scan;
	uint64_t max = t->cfg.max_queue_bytes;

	if ((uint64_t)keep + n > max)
		return SR_EBUSY;
	if (p->q_tail + n <= p->q_cap)
		return 0;
	if (done && (done >= keep || p->q_cap >= max || p->q_tail + n > max)) {
		if (done < keep && done < p->q_cap / 8)
			return SR_EBUSY;
		memmove(p->q, p->q + done, keep);
		p->q_head -= done;
		p->q_last -= p->q_last_kind ? done : 0;
		p->q_tail = keep;
		p->q_scan = 0;
		if (keep + n <= p->q_cap)
			return 0;
	}
	size_t cap = p->q_cap < TCP_QUEUE_INIT ? TCP_QUEUE_INIT : p->q_cap;
	while (cap < p->q_tail + n)
		cap *= 2;
	if (cap > max)
		cap = (size_t)max; /* still >= q_tail + n, by the tests above */
	void *q = tcp_realloc(t, p->q, p->q_cap, cap);
	if (!q)
		return SR_ENOMEM;
	p->q = q;
	p->q_cap = cap;
	return 0;
}

void tcp_queue_seal(struct tcp_peer *p)
{
	if (p->q_last_kind == TCP_LAST_BATCH)
		sr_codec_batch_seal(p->q + p->q_last, p->q_tail - p->q_last);
	else if (p->q_last_kind == TCP_LAST_COALESCED)
		sr_codec_coalesced_seal(p->q + p->q_last,
					p->q_tail - p->q_last);
	p->q_last_kind = TCP_LAST_NONE;
}

static uint32_t le32(const uint8_t *b)
{
	return (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) |
	       ((uint32_t)b[3] << 24);
}

/* Messages in the (sealed, our own) batch of plen payload bytes at f. */
static uint32_t batch_count(const uint8_t *f, uint32_t plen)
{
	uint32_t n = 0;
	for (size_t off = 0; off + SR_BATCH_ITEM_HDR_SIZE <= plen; n++)
		off += SR_BATCH_ITEM_HDR_SIZE +
		       le32(f + SR_FRAME_HDR_SIZE + off + 6);
	return n;
}

/* Advance q_scan over completely written frames, counting messages. */
void tcp_queue_written(struct tcp_peer *p)
{
	while (p->q_scan + SR_FRAME_HDR_SIZE <= p->q_head) {
		const uint8_t *h = p->q + p->q_scan;
		uint32_t type = (uint32_t)h[6] | ((uint32_t)h[7] << 8);
		uint32_t len = le32(h + 12);
		size_t end = p->q_scan + SR_FRAME_HDR_SIZE + len;
		if (end > p->q_head)
			break;
		if (type == SR_FRAME_BATCH)
			p->q_msgs -= batch_count(h, len);
		else if (type == SR_FRAME_HEARTBEATS ||
			 type == SR_FRAME_APPEND_RESPS) /* sealed: its count */
			p->q_msgs -= le32(h + SR_FRAME_HDR_SIZE + 16);
		else if (type < SR_FRAME_HELLO) /* not a handshake frame */
			p->q_msgs--;
		p->q_scan = end;
	}
}
