/*
 * tcp.c — the TCP transport's public face: configuration, create and
 * destroy, the peer calls, the send path, the deferred flush, the handler
 * of the one timer that drives reconnects and timeouts, statistics and
 * the test hook.  It is the top of the transport's files (tcp_int.h lists
 * them, lowest first): nothing below calls back into it.
 *
 * Send path: sr_tcp_send() encodes the message straight into the peer's
 * queue (one contiguous buffer, so a batch of frames leaves in one
 * write(2) without an iovec per frame) and asks the loop for one deferred
 * flush per iteration; the flush writes every dirty peer.  In
 * write-through mode the message is written at once instead.
 *
 * Batch frames: when the peer's handshake offered them, a message queued
 * behind a frame that has not started to leave joins it instead of
 * getting a frame of its own — the second message turns the first one's
 * frame into a batch (in place: the sizes work out the same), later ones
 * are appended — up to batch_max_bytes of payload.  The write that
 * follows seals the batch (length, CRC) first.  So the messages of every
 * group for one peer in one loop iteration cost one header, one CRC and
 * one frame to parse at the other end.  Heartbeats and append answers go
 * further when the peer offered it: they coalesce into one compact
 * message (tcp_coalesce.c).
 *
 * Bounds: a queue never holds more than max_queue_bytes; a message that
 * does not fit is dropped (SR_EBUSY).  A peer that is down has no queue
 * at all (messages are dropped, SR_ESTATE) except while connecting, so a
 * dead peer costs nothing but its table entry.  Receive buffers are
 * bounded in tcp_in.c by max_frame_bytes.
 *
 * Timer: tcp_link.c keeps one loop timer armed for the earliest
 * deadline; timer_cb() here acts on every deadline that passed (connect
 * to peers whose backoff ended, close connects and handshakes that took
 * too long, resume accepting) and re-arms it.
 */
#include "internal/alloc.h"
#include "internal/rand.h"
#include "tcp_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Configuration and lifetime                                         */
/* ------------------------------------------------------------------ */

SR_API void sr_tcp_config_init(sr_tcp_config *cfg, sr_id id,
			       uint64_t cluster_id)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->id = id;
	cfg->cluster_id = cluster_id;
	cfg->max_frame_bytes = SR_FRAME_MAX_DEFAULT;
	cfg->max_entries = SR_FRAME_MAX_ENTRIES_DEFAULT;
	cfg->max_queue_bytes = 64ull << 20;
	cfg->max_inbound = 256;
	cfg->reconnect_min_ms = 50;
	cfg->reconnect_max_ms = 5000;
	cfg->handshake_timeout_ms = 5000;
	cfg->user_timeout_ms = 10000;
	cfg->batch_max_bytes = 64u << 10;
	cfg->coalesce_max_bytes = 64u << 10;
	cfg->log_level = SR_LOG_INFO;
}

static int config_check(const sr_tcp_config *c)
{
	if (!c->id || !c->on_message || !c->max_frame_bytes ||
	    !c->max_entries || !c->max_inbound || !c->reconnect_min_ms ||
	    c->reconnect_max_ms < c->reconnect_min_ms ||
	    !c->handshake_timeout_ms ||
	    c->max_queue_bytes <
		    (uint64_t)c->max_frame_bytes + SR_FRAME_HDR_SIZE)
		return SR_EINVAL;
	if (c->listen_addr && strlen(c->listen_addr) >= SR_ADDR_MAX)
		return SR_EINVAL;
	if (c->advertise_addr && (strlen(c->advertise_addr) >= SR_ADDR_MAX ||
				  tcp_addr_check(c->advertise_addr)))
		return SR_EINVAL;
	return tcp_auth_check_config(c);
}

/* What the hello advertises: the configured address, or the listen
 * address with the port the kernel chose for ":0". */
static void advertise_init(sr_tcp *t)
{
	const char *la = t->cfg.listen_addr, *colon;
	if (t->cfg.advertise_addr) {
		strcpy(t->advertise, t->cfg.advertise_addr);
		t->cfg.advertise_addr = t->advertise;
		return;
	}
	if (!la)
		return;
	colon = strrchr(la, ':');
	if (colon && !strcmp(colon, ":0") &&
	    (size_t)(colon - la) + 8 < SR_ADDR_MAX)
		snprintf(t->advertise, SR_ADDR_MAX, "%.*s:%d",
			 (int)(colon - la), la, t->port);
	else
		strcpy(t->advertise, la);
}

static void timer_cb(sr_loop *loop, uint64_t id, void *ctx);

SR_API int sr_tcp_create(const sr_tcp_config *cfg, sr_tcp **out)
{
	int rc;

	if (!cfg || !out || config_check(cfg))
		return SR_EINVAL;
	const sr_alloc *a = cfg->alloc;
	sr_tcp *t = hook_malloc(a, sizeof(*t));
	if (!t)
		return SR_ENOMEM;
	memset(t, 0, sizeof(*t));
	t->cfg = *cfg;
	t->lfd = -1;
	t->on_timer = timer_cb;
	uint64_t seed = cfg->seed ^ (cfg->id * 0x9e3779b97f4a7c15ull);
	t->rng = rand_next(&seed);
	if (!t->rng)
		t->rng = 1;
	sr_decoder_init(&t->dec, cfg->max_frame_bytes, cfg->max_entries, a);
	t->batch_max = cfg->batch_max_bytes < cfg->max_frame_bytes
			       ? cfg->batch_max_bytes
			       : cfg->max_frame_bytes;
	t->coalesce_max = cfg->coalesce_max_bytes < cfg->max_frame_bytes
				  ? cfg->coalesce_max_bytes
				  : cfg->max_frame_bytes;
	rc = tcp_auth_init(t);
	if (rc)
		goto err;
	if (cfg->listen_addr) {
		strcpy(t->listen_addr, cfg->listen_addr);
		t->cfg.listen_addr = t->listen_addr;
	}
	if (cfg->loop) {
		t->loop = cfg->loop;
	} else {
		rc = sr_loop_create(a, &t->loop);
		if (rc)
			goto err;
		t->own_loop = 1;
	}
	if (cfg->listen_addr) {
		rc = tcp_listen(t, cfg->listen_addr);
		if (rc)
			goto err;
	}
	advertise_init(t);
	*out = t;
	return 0;
err:
	tcp_auth_free(t);
	if (t->own_loop)
		sr_loop_destroy(t->loop);
	hook_free(a, t);
	return rc;
}

static void flush_cb(sr_loop *loop, void *ctx);

static void peer_free(sr_tcp *t, struct tcp_peer *p)
{
	if (p->fd >= 0) {
		sr_loop_unwatch(t->loop, p->fd);
		close(p->fd);
		p->fd = -1;
	}
	if (p->in)
		tcp_in_close(t, p->in, SR_LOG_DEBUG, NULL);
	tcp_queue_reset(t, p);
	tcp_free(t, p, sizeof(*p));
}

SR_API void sr_tcp_destroy(sr_tcp *t)
{
	if (!t)
		return;
	/* Accepted connections first: closing one looks its peer up. */
	while (t->ins)
		tcp_in_close(t, t->ins, SR_LOG_DEBUG, NULL);
	for (size_t i = 0; i < t->n_peers; i++)
		peer_free(t, t->peers[i]);
	tcp_free(t, t->peers, t->cap_peers * sizeof(*t->peers));
	if (t->lfd >= 0) {
		sr_loop_unwatch(t->loop, t->lfd);
		close(t->lfd);
	}
	if (t->timer_id)
		sr_loop_timer_cancel(t->loop, t->timer_id);
	sr_loop_defer_cancel(t->loop, flush_cb, t);
	sr_decoder_free(&t->dec);
	tcp_auth_free(t);
	if (t->own_loop)
		sr_loop_destroy(t->loop);
	hook_free(t->cfg.alloc, t);
}

SR_API int sr_tcp_port(const sr_tcp *t)
{
	return t->port;
}

SR_API uint32_t sr_tcp_max_payload(const sr_tcp *t)
{
	return t->cfg.max_frame_bytes;
}

SR_API sr_loop *sr_tcp_loop(const sr_tcp *t)
{
	return t->loop;
}

SR_API int sr_tcp_fd(const sr_tcp *t)
{
	return sr_loop_fd(t->loop);
}

SR_API int sr_tcp_timeout_ms(const sr_tcp *t)
{
	return sr_loop_timeout_ms(t->loop);
}

SR_API int sr_tcp_process(sr_tcp *t)
{
	return sr_loop_run_once(t->loop, 0);
}

/* ------------------------------------------------------------------ */
/* Timer                                                              */
/* ------------------------------------------------------------------ */

/* Every deadline tcp_link.c arms the timer for: reconnects, connect and
 * handshake timeouts, the end of an accept pause. */
static void timer_cb(sr_loop *loop, uint64_t id, void *ctx)
{
	sr_tcp *t = ctx;
	uint64_t now = sr_loop_now_ms(loop);
	(void)id;

	t->timer_id = 0;
	if (t->accept_resume && t->accept_resume <= now)
		tcp_listen_resume(t);
	for (size_t i = 0; i < t->n_peers; i++) {
		struct tcp_peer *p = t->peers[i];
		if (p->state == SR_TCP_DOWN && !p->cut && p->retry_at <= now)
			tcp_out_connect(t, p);
		else if (p->state == SR_TCP_CONNECTING &&
			 p->connect_deadline <= now)
			tcp_peer_close(t, p, SR_LOG_INFO,
				       p->auth.wait_challenge ? "no "
								"challenge "
								"in time"
							      : "connect "
								"timed "
								"out");
	}
	struct tcp_in *next;
	for (struct tcp_in *c = t->ins; c; c = next) {
		next = c->next;
		if (!c->peer && c->deadline <= now)
			tcp_in_close(t, c, SR_LOG_WARN, "no handshake in time");
	}
	tcp_timer_arm(t);
}

/* ------------------------------------------------------------------ */
/* Peers                                                              */
/* ------------------------------------------------------------------ */

SR_API int sr_tcp_set_peer(sr_tcp *t, sr_id id, const char *addr)
{
	return tcp_out_set_peer(t, id, addr);
}

SR_API int sr_tcp_remove_peer(sr_tcp *t, sr_id id)
{
	for (size_t i = 0; i < t->n_peers; i++) {
		struct tcp_peer *p = t->peers[i];
		if (p->id != id)
			continue;
		t->peers[i] = t->peers[--t->n_peers];
		tcp_log(t, SR_LOG_INFO, "peer %llu removed",
			(unsigned long long)id);
		peer_free(t, p);
		tcp_timer_arm(t);
		return 0;
	}
	return SR_ENOTFOUND;
}

SR_API int sr_tcp_partition(sr_tcp *t, sr_id id, int cut)
{
	struct tcp_peer *p = tcp_peer_find(t, id);
	if (!p)
		return SR_ENOTFOUND;
	if (cut && !p->cut) {
		p->cut = 1;
		if (p->state != SR_TCP_DOWN)
			tcp_peer_close(t, p, SR_LOG_INFO,
				       "partitioned by the test hook");
		if (p->in)
			tcp_in_close(t, p->in, SR_LOG_INFO,
				     "partitioned by the test hook");
		tcp_timer_arm(t);
	} else if (!cut && p->cut) {
		p->cut = 0;
		tcp_out_restart(t, p, NULL);
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Sending                                                            */
/* ------------------------------------------------------------------ */

static void count_drop(sr_tcp *t, struct tcp_peer *p, uint64_t *reason)
{
	t->st.drops++;
	if (reason)
		(*reason)++;
	if (p)
		p->drops++;
}

static void flush_cb(sr_loop *loop, void *ctx)
{
	sr_tcp *t = ctx;
	(void)loop;

	t->flush_pending = 0;
	sr_tcp_flush(t);
}

SR_API void sr_tcp_flush(sr_tcp *t)
{
	for (size_t i = 0; i < t->n_peers; i++) {
		struct tcp_peer *p = t->peers[i];
		if (!p->dirty)
			continue;
		p->dirty = 0;
		/* Waiting for room already: the write watcher resumes. */
		if (!(sr_loop_interest(t->loop, p->fd) & SR_LOOP_WRITE))
			tcp_out_write(t, p);
	}
}

SR_API void sr_tcp_cork(sr_tcp *t, int on)
{
	t->corked = on != 0;
	if (!on)
		sr_tcp_flush(t);
}

/* Output is waiting: write it now or before the loop sleeps. */
static int kick(sr_tcp *t, struct tcp_peer *p)
{
	if (p->state != SR_TCP_UP ||
	    (sr_loop_interest(t->loop, p->fd) & SR_LOOP_WRITE))
		return 0;
	if (t->cfg.write_through)
		return tcp_out_write(t, p);
	p->dirty = 1;
	if (!t->flush_pending) {
		if (sr_loop_defer(t->loop, flush_cb, t))
			return tcp_out_write(t, p); /* no memory: now */
		t->flush_pending = 1;
	}
	return 0;
}

/* The peer's handshake offered batches, and we send them. */
static int peer_takes_batches(const sr_tcp *t, const struct tcp_peer *p)
{
	return t->batch_max && p->in && (p->in->features & SR_FEATURE_BATCH);
}

/*
 * Put msg (size bytes as a frame of its own) into the queue's last frame
 * if that frame may still grow, the peer takes batches and the result
 * stays within batch_max.  1: joined; 0: not (the caller queues a frame);
 * < 0: no room in the queue.
 */
static int queue_join(sr_tcp *t, struct tcp_peer *p, const sr_msg *msg,
		      size_t size)
{
	if ((p->q_last_kind != TCP_LAST_MSG &&
	     p->q_last_kind != TCP_LAST_BATCH) ||
	    !peer_takes_batches(t, p))
		return 0;
	size_t item = size - SR_FRAME_HDR_SIZE + SR_BATCH_ITEM_HDR_SIZE;
	size_t wrap = p->q_last_kind == TCP_LAST_MSG ? SR_BATCH_ITEM_HDR_SIZE
						     : 0;
	size_t cur = p->q_tail - p->q_last;
	if (cur - SR_FRAME_HDR_SIZE + wrap + item > t->batch_max)
		return 0;
	int rc = tcp_queue_reserve(t, p, wrap + item);
	if (rc)
		return rc;
	size_t len = cur;
	uint8_t *f = p->q + p->q_last;
	if (wrap) {
		sr_codec_batch_wrap(f, p->q_cap - p->q_last, &len);
		p->q_last_kind = TCP_LAST_BATCH;
		t->st.batched_msgs++; /* the message already there */
	}
	sr_codec_batch_add(msg, f, p->q_cap - p->q_last, &len);
	t->st.batched_msgs++;
	p->q_tail = p->q_last + len;
	t->st.queued_bytes += len - cur;
	return 1;
}

SR_API int sr_tcp_send(sr_tcp *t, const sr_msg *msg)
{
	struct tcp_peer *p = tcp_peer_find(t, msg->to);
	if (!p) {
		count_drop(t, NULL, NULL);
		return SR_ENOTFOUND;
	}
	size_t size = sr_codec_size(msg);
	if (!size) {
		count_drop(t, p, NULL);
		return SR_EINVAL;
	}
	if (size - SR_FRAME_HDR_SIZE > t->cfg.max_frame_bytes) {
		tcp_log(t, SR_LOG_WARN,
			"message of %zu bytes to %llu exceeds the frame "
			"limit",
			size, (unsigned long long)p->id);
		count_drop(t, p, NULL);
		return SR_ETOOBIG;
	}
	if (p->state == SR_TCP_DOWN) {
		count_drop(t, p, &t->st.drops_down);
		return SR_ESTATE;
	}
	int rc = tcp_coalesce_queue(t, p, msg);
	if (rc == 0)
		rc = queue_join(t, p, msg, size);
	if (rc == 0) {
		tcp_queue_seal(p); /* a full batch is done */
		rc = tcp_queue_reserve(t, p, size);
		if (rc == 0) {
			sr_codec_encode(msg, p->q + p->q_tail,
					p->q_cap - p->q_tail, NULL);
			p->q_last = p->q_tail;
			p->q_last_kind = TCP_LAST_MSG;
			p->q_tail += size;
			t->st.queued_bytes += size;
			t->st.frames_sent++;
		}
	}
	if (rc < 0) {
		count_drop(t, p, &t->st.drops_full);
		return rc;
	}
	p->q_msgs++;
	t->st.msgs_sent++;
	return kick(t, p);
}

static int transport_send(void *ctx, const sr_msg *msg)
{
	return sr_tcp_send(ctx, msg);
}

SR_API const sr_transport_ops *sr_tcp_transport_ops(void)
{
	static const sr_transport_ops ops = { transport_send };
	return &ops;
}

/* ------------------------------------------------------------------ */
/* Observation                                                        */
/* ------------------------------------------------------------------ */

SR_API void sr_tcp_stats_get(const sr_tcp *t, sr_tcp_stats *out)
{
	*out = t->st;
}

SR_API int sr_tcp_peer_get(const sr_tcp *t, sr_id id, sr_tcp_peer_info *out)
{
	const struct tcp_peer *p = tcp_peer_find(t, id);
	if (!p)
		return SR_ENOTFOUND;
	memset(out, 0, sizeof(*out));
	out->id = p->id;
	out->state = p->state;
	out->inbound = p->in != NULL;
	out->partitioned = p->cut;
	out->queued_bytes = p->q_tail - p->q_head;
	out->queued_msgs = p->q_msgs;
	out->drops = p->drops;
	out->attempts = p->attempts;
	return 0;
}
