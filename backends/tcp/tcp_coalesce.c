/*
 * tcp_coalesce.c — coalesced heartbeats and append answers between two
 * transports (docs/wire-protocol.md, "Coalesced heartbeats").
 *
 * A process carrying thousands of Raft groups sends each peer one
 * heartbeat per group it leads there per heartbeat interval, and one
 * answer per heartbeat it gets.  When the peer's handshake offered
 * SR_FEATURE_COALESCE, the transport queues those messages (appends
 * without entries, and append answers) as records of one coalesced frame
 * instead: from and to once, 44 or 45 bytes per message, one message on
 * the wire for all of them.
 *
 * Sending.  The frame is built in place at the tail of the peer's send
 * queue, like a batch: the first such message begins it, each following
 * one of the same kind appends its record while the frame is still the
 * queue's last, nothing of the queue has been written since and the
 * payload stays within coalesce_max_bytes.  Any other message for the
 * peer closes it (tcp_queue_seal() seals it: count, length, CRC),
 * so the order of the peer's messages is exactly the order they were
 * sent: nothing is moved ahead of or behind anything else.  Heartbeat
 * waves (backends/server/server_clock.c) produce every group's heartbeats
 * for a peer back to back in one loop iteration, and the follower answers
 * them back to back while reading that one frame, so an idle process
 * sends each peer one coalesced message each way per wave.
 *
 * Receiving.  A coalesced frame is checked whole (CRC, count, lengths,
 * booleans, the sender and receiver against the handshake) before the
 * first of its messages is delivered, so a bad frame delivers nothing and
 * closes the connection; then each message goes to on_message as if it
 * had arrived alone.  A node that did not offer the feature (or whose
 * coalesce_max_bytes is 0) refuses such a frame.
 */
#include "tcp_int.h"

#include <stdio.h>

/* The peer's handshake offered coalesced frames, and we send them. */
static int peer_takes_coalesced(const sr_tcp *t, const struct tcp_peer *p)
{
	return t->coalesce_max && !t->cfg.write_through && p->in &&
	       (p->in->features & SR_FEATURE_COALESCE);
}

/* Add msg's record to the coalesced frame at the queue's tail: 1 done,
 * 0 it does not fit or is of another kind, < 0 no room in the queue. */
static int coalesce_join(sr_tcp *t, struct tcp_peer *p, const sr_msg *msg,
			 size_t rec)
{
	size_t cur = p->q_tail - p->q_last;

	if (p->q_last_kind != TCP_LAST_COALESCED ||
	    cur - SR_FRAME_HDR_SIZE + rec > t->coalesce_max)
		return 0;
	int rc = tcp_queue_reserve(t, p, rec);
	if (rc)
		return rc;
	size_t len = cur; /* reserve may have moved the queue */
	if (sr_codec_coalesced_add(msg, p->q + p->q_last, p->q_cap - p->q_last,
				   &len))
		return 0;
	p->q_tail = p->q_last + len;
	t->st.queued_bytes += rec;
	return 1;
}

int tcp_coalesce_queue(sr_tcp *t, struct tcp_peer *p, const sr_msg *msg)
{
	size_t rec = sr_codec_coalesced_rec_size(msg);
	size_t size = SR_FRAME_HDR_SIZE + SR_COALESCED_HDR_SIZE + rec;

	if (!rec || !peer_takes_coalesced(t, p) ||
	    size - SR_FRAME_HDR_SIZE > t->coalesce_max)
		return 0;
	int rc = coalesce_join(t, p, msg, rec);
	if (rc == 0) {
		tcp_queue_seal(p);
		rc = tcp_queue_reserve(t, p, size);
		if (rc)
			return rc;
		sr_codec_coalesced_begin(msg, p->q + p->q_tail,
					 p->q_cap - p->q_tail, &size);
		p->q_last = p->q_tail;
		p->q_last_kind = TCP_LAST_COALESCED;
		p->q_tail += size;
		t->st.queued_bytes += size;
		t->st.frames_sent++;
		t->st.coalesced_sent++;
	} else if (rc < 0) {
		return rc;
	}
	t->st.coalesced_msgs++;
	return 1;
}

static void in_bad(sr_tcp *t, struct tcp_in *c, const char *why)
{
	t->st.proto_errors++;
	tcp_in_close(t, c, SR_LOG_WARN, why);
}

void tcp_coalesce_deliver(sr_tcp *t, struct tcp_in *c, const uint8_t *f,
			  size_t flen)
{
	sr_coalesced_iter it;
	sr_msg m;
	char why[160];

	if (!t->coalesce_max) {
		in_bad(t, c,
		       "a coalesced frame, but this node does not take "
		       "them");
		return;
	}
	int rc = sr_codec_coalesced_open(&t->dec, f, flen, &it, NULL, NULL);
	if (rc) {
		in_bad(t, c,
		       rc == SR_ETOOBIG ? "oversized coalesced frame"
					: "malformed (CRC, count, lengths or "
					  "fields) coalesced frame");
		return;
	}
	if (it.from != c->peer || it.to != t->cfg.id) {
		snprintf(why, sizeof(why),
			 "message from %llu to %llu in a coalesced frame",
			 (unsigned long long)it.from,
			 (unsigned long long)it.to);
		in_bad(t, c, why);
		return;
	}
	t->st.frames_recv++;
	t->st.coalesced_recv++;
	while (!c->closing && sr_codec_coalesced_next(&it, &m) == 1) {
		t->st.msgs_recv++;
		t->st.coalesced_msgs_recv++;
		t->cfg.on_message(t->cfg.ctx, &m);
	}
}
