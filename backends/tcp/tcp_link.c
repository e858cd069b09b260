/*
 * tcp_link.c — the end of a connection and what brings the next one:
 * closing an outgoing connection (its queue dropped, a reconnect
 * scheduled after a capped, jittered backoff), closing an accepted one,
 * the identity checks that refuse a hello, and the one loop timer that
 * carries every deadline.
 *
 * Timer: the transport keeps at most one loop timer, armed for the
 * earliest of every down peer's retry time, every connecting peer's
 * connect deadline, every pending handshake's deadline and the end of an
 * accept pause (after EMFILE).  tcp_timer_arm() re-arms it whenever one
 * of those changes; what runs when it fires is tcp.c's (t->on_timer):
 * it scans them all (a few dozen at most) and re-arms.
 *
 * Closing an accepted connection while its read callback runs (the
 * callback may remove a peer, cut a partition, replace a connection)
 * only marks it: tcp_in.c frees it when the callback unwinds.
 */
#include "internal/rand.h"
#include "tcp_int.h"

#include <stdio.h>
#include <unistd.h>

/* Earliest deadline of any peer or pending handshake; UINT64_MAX: none. */
static uint64_t next_deadline(const sr_tcp *t)
{
	uint64_t when = UINT64_MAX;

	for (size_t i = 0; i < t->n_peers; i++) {
		const struct tcp_peer *p = t->peers[i];
		if (p->state == SR_TCP_DOWN && !p->cut && p->retry_at < when)
			when = p->retry_at;
		if (p->state == SR_TCP_CONNECTING && p->connect_deadline < when)
			when = p->connect_deadline;
	}
	for (const struct tcp_in *c = t->ins; c; c = c->next)
		if (!c->peer && c->deadline < when)
			when = c->deadline;
	if (t->accept_resume && t->accept_resume < when)
		when = t->accept_resume;
	return when;
}

void tcp_timer_arm(sr_tcp *t)
{
	uint64_t when = next_deadline(t);

	if (t->timer_id && when == t->timer_when)
		return;
	if (t->timer_id) {
		sr_loop_timer_cancel(t->loop, t->timer_id);
		t->timer_id = 0;
	}
	if (when == UINT64_MAX)
		return;
	uint64_t now = sr_loop_now_ms(t->loop);
	/* On failure the deadlines wait for the next arm; nothing is lost
	 * but time. */
	if (sr_loop_timer_add(t->loop, when > now ? when - now : 0, t->on_timer,
			      t, &t->timer_id) == 0)
		t->timer_when = when;
}

/* Capped exponential backoff with "equal jitter": [d/2, d]. */
static uint64_t backoff_delay(sr_tcp *t, struct tcp_peer *p)
{
	uint64_t d = t->cfg.reconnect_min_ms;
	for (uint32_t i = 0; i < p->attempts && d < t->cfg.reconnect_max_ms;
	     i++)
		d *= 2;
	if (d > t->cfg.reconnect_max_ms)
		d = t->cfg.reconnect_max_ms;
	uint64_t r = rand_xorshift(&t->rng);
	return d / 2 + r % (d - d / 2 + 1);
}

void tcp_peer_close(sr_tcp *t, struct tcp_peer *p, int level,
		    const char *reason)
{
	uint64_t now = sr_loop_now_ms(t->loop);

	if (p->fd >= 0) {
		sr_loop_unwatch(t->loop, p->fd);
		close(p->fd);
		p->fd = -1;
	}
	if (p->state == SR_TCP_UP && now - p->up_since >= TCP_UP_RESET_MS)
		p->attempts = 0;
	if (reason)
		tcp_log(t, p->attempts ? SR_LOG_DEBUG : level,
			"peer %llu (%s): %s", (unsigned long long)p->id,
			p->addr, reason);
	p->state = SR_TCP_DOWN;
	tcp_auth_out_reset(&p->auth);
	tcp_queue_reset(t, p);
	p->retry_at = now + backoff_delay(t, p);
	p->attempts++;
	tcp_timer_arm(t);
}

void tcp_in_free(sr_tcp *t, struct tcp_in *c)
{
	tcp_free(t, c->buf, c->cap);
	tcp_free(t, c, sizeof(*c));
}

void tcp_in_close(sr_tcp *t, struct tcp_in *c, int level, const char *reason)
{
	if (c->closing)
		return;
	if (reason)
		tcp_log(t, level, "connection from %s (node %llu): %s", c->name,
			(unsigned long long)c->peer, reason);
	c->closing = 1;
	sr_loop_unwatch(t->loop, c->fd);
	close(c->fd);
	c->fd = -1;
	if (c->peer) {
		struct tcp_peer *p = tcp_peer_find(t, c->peer);
		if (p && p->in == c)
			p->in = NULL;
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		t->ins = c->next;
	if (c->next)
		c->next->prev = c->prev;
	t->n_in--;
	if (!c->busy)
		tcp_in_free(t, c);
}

int tcp_hello_check(sr_tcp *t, struct tcp_in *c, const sr_hello *h)
{
	char why[160];
	const char *refuse = NULL;

	struct tcp_peer *p = tcp_peer_find(t, h->from);
	if (h->cluster != t->cfg.cluster_id) {
		snprintf(why, sizeof(why),
			 "refused: cluster id %llu, ours is %llu",
			 (unsigned long long)h->cluster,
			 (unsigned long long)t->cfg.cluster_id);
		refuse = why;
	} else if (h->to != t->cfg.id) {
		snprintf(why, sizeof(why), "refused: meant for node %llu",
			 (unsigned long long)h->to);
		refuse = why;
	} else if (!p && !t->cfg.accept_unknown_peers) {
		snprintf(why, sizeof(why), "refused: unknown node %llu",
			 (unsigned long long)h->from);
		refuse = why;
	} else if (p && p->cut) {
		refuse = "refused: partitioned by the test hook";
	}
	if (refuse) {
		t->st.refused++;
		tcp_in_close(t, c, SR_LOG_WARN, refuse);
		return -1;
	}
	return 0;
}
