/*
 * limits.c — what a client connection may cost, and for how long.
 *
 * server.c owns the sockets; this file decides when one must go.  Three
 * rules, each as Redis has it:
 *
 *   - Output limits (--client-output-buffer-limit HARD SOFT SECONDS): a
 *     connection whose unsent replies, plus ready replies queued behind a
 *     slower one, reach HARD is disconnected at once; one that stays at
 *     or above SOFT for more than SECONDS is disconnected then.  server.c
 *     calls kv_conn_out_check() whenever the output grows; the clock of
 *     the soft limit runs on the "heavy" list, which holds only the
 *     connections above it.
 *   - The idle timeout (--idle-timeout S): a connection that neither read
 *     nor wrote for S seconds, and waits for no reply, is closed.  Every
 *     byte moves the connection to the young end of an activity list, so
 *     the check looks only at the old end.
 *   - --max-clients is enforced where connections are accepted (server.c).
 *
 * A disconnect never frees the connection here: callers may be walking a
 * list it is on.  kv_conn_kill() drops its output and marks it dirty; the
 * deferred flush closes it.  Every disconnect is counted in INFO stats,
 * and the output-limit ones log a WARN line naming the client, so nothing
 * is dropped silently.
 *
 * Cost: the periodic check (every KV_CRON_MS) walks the heavy list and
 * the expired head of the activity list, never every connection: with
 * 10,000 idle clients a loop iteration still costs O(ready).
 */
#include <netdb.h>
#include <string.h>

#include "conn.h"

#define KV_CRON_MS 100 /* idle timeout and soft limit checks */

static void active_unlink(struct kv_conn *c)
{
	struct kv_server *s = c->s;

	if (c->aprev)
		c->aprev->anext = c->anext;
	else if (s->active_head == c)
		s->active_head = c->anext;
	if (c->anext)
		c->anext->aprev = c->aprev;
	else if (s->active_tail == c)
		s->active_tail = c->aprev;
	c->aprev = c->anext = NULL;
}

/* c read or wrote something: it moves to the young end of the list, so
 * the idle check only ever looks at the old end. */
void kv_conn_touch(struct kv_conn *c)
{
	struct kv_server *s = c->s;

	c->active_ms = kv_now_ms(s);
	if (s->active_tail == c)
		return;
	active_unlink(c);
	c->aprev = s->active_tail;
	if (s->active_tail)
		s->active_tail->anext = c;
	else
		s->active_head = c;
	s->active_tail = c;
}

static void heavy_unlink(struct kv_conn *c)
{
	if (!c->heavy)
		return;
	if (c->hprev)
		c->hprev->hnext = c->hnext;
	else
		c->s->heavy = c->hnext;
	if (c->hnext)
		c->hnext->hprev = c->hprev;
	c->hprev = c->hnext = NULL;
	c->heavy = 0;
}

static void heavy_link(struct kv_conn *c, uint64_t now)
{
	c->heavy = 1;
	c->soft_ms = now;
	c->hprev = NULL;
	c->hnext = c->s->heavy;
	if (c->hnext)
		c->hnext->hprev = c;
	c->s->heavy = c;
}

/* Drop what c is owed and close it at the next flush (a deferred call):
 * callers may be in the middle of walking lists c is on. */
void kv_conn_kill(struct kv_conn *c)
{
	c->killed = 1;
	c->closing = 1;
	c->paused = 1;
	c->out.len = c->out_off = 0;
	kv_conn_mark_dirty(c);
}

static void conn_obuf_kill(struct kv_conn *c, size_t used, int hard)
{
	const struct kv_opts *o = &c->s->opt;
	char addr[NI_MAXHOST + NI_MAXSERV + 4];

	kv_sock_name(c->fd, 1, addr, sizeof(addr));
	c->s->n_obuf_disconnects++;
	if (hard)
		kv_log(c->s, SR_LOG_WARN,
		       "client %llu (%s): %zu bytes of replies unsent reach "
		       "the hard output buffer limit (%llu): disconnecting "
		       "(--client-output-buffer-limit)",
		       (unsigned long long)c->id, addr, used,
		       (unsigned long long)o->obuf_hard);
	else
		kv_log(c->s, SR_LOG_WARN,
		       "client %llu (%s): %zu bytes of replies unsent, over "
		       "the soft output buffer limit (%llu) for more than %u "
		       "s: disconnecting (--client-output-buffer-limit)",
		       (unsigned long long)c->id, addr, used,
		       (unsigned long long)o->obuf_soft, o->obuf_soft_secs);
	kv_conn_kill(c);
}

/* After the output grew (or time passed): enforce the output limits.
 * Returns 1 if c is now being disconnected. */
int kv_conn_out_check(struct kv_conn *c)
{
	const struct kv_opts *o = &c->s->opt;
	size_t used = kv_conn_output(c);

	if (c->killed)
		return 1;
	if (o->obuf_hard && used >= o->obuf_hard) {
		conn_obuf_kill(c, used, 1);
		return 1;
	}
	if (o->obuf_soft && used >= o->obuf_soft) {
		uint64_t now = kv_now_ms(c->s);
		if (!c->heavy)
			heavy_link(c, now);
		else if (now - c->soft_ms >
			 (uint64_t)o->obuf_soft_secs * 1000) {
			conn_obuf_kill(c, used, 0);
			return 1;
		}
	} else if (c->heavy) {
		heavy_unlink(c);
	}
	return 0;
}

/* Every KV_CRON_MS: the soft output limit's clock and the idle timeout.
 * Both walks stop at the first connection with nothing to do. */
static void conn_cron(sr_loop *loop, uint64_t id, void *ctx)
{
	struct kv_server *s = ctx;
	struct kv_conn *c, *next;
	uint64_t now = kv_now_ms(s);

	(void)id;
	s->cron_timer = 0;
	if (s->stopping)
		return;
	for (c = s->heavy; c; c = next) {
		next = c->hnext; /* a kill leaves c on the list until closed */
		kv_conn_out_check(c);
	}
	if (s->opt.idle_timeout_s) {
		uint64_t idle = (uint64_t)s->opt.idle_timeout_s * 1000;
		for (c = s->active_head; c && now - c->active_ms >= idle;
		     c = next) {
			next = c->anext;
			if (c->killed)
				continue;
			if (c->head) { /* waiting for the engine: not idle */
				kv_conn_touch(c);
				continue;
			}
			s->n_idle_disconnects++;
			kv_log(s, SR_LOG_DEBUG,
			       "client %llu idle for %u s: closing "
			       "(--idle-timeout)",
			       (unsigned long long)c->id,
			       s->opt.idle_timeout_s);
			kv_conn_kill(c);
		}
	}
	sr_loop_timer_add(loop, KV_CRON_MS, conn_cron, s, &s->cron_timer);
}

/* The output shrank (a flush): leave the heavy list once below SOFT. */
void kv_conn_out_drained(struct kv_conn *c)
{
	if (c->heavy && kv_conn_output(c) < c->s->opt.obuf_soft)
		heavy_unlink(c);
}

/* c is being closed. */
void kv_conn_forget(struct kv_conn *c)
{
	active_unlink(c);
	heavy_unlink(c);
}

int kv_limits_start(struct kv_server *s)
{
	return sr_loop_timer_add(s->loop, KV_CRON_MS, conn_cron, s,
				 &s->cron_timer);
}

void kv_limits_stop(struct kv_server *s)
{
	if (s->cron_timer) {
		sr_loop_timer_cancel(s->loop, s->cron_timer);
		s->cron_timer = 0;
	}
}
