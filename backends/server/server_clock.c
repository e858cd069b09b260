/*
 * server_clock.c — time for every group: each engine's clock, and the one
 * loop timer that serves all their deadlines.
 *
 * The engine has no clock: it measures its timers from the time of its
 * latest tick (a follower restarts its election timer from it when the
 * leader is heard, thesis §3.4).  So before every call that hands a
 * group's engine an event, server_clock_sync() reads the loop's clock and
 * ticks that engine if time moved.  After the call, server_clock_schedule() puts
 * the group back in the deadline heap at sr_node_deadline() and makes
 * sure the loop timer is armed no later than the heap's top (the timer is
 * only moved earlier, never cancelled for a later deadline: firing early
 * costs one pass that finds nothing due).
 *
 * Cost.  A server may carry thousands of groups, nearly all idle.  The
 * heap holds every started group keyed by its deadline, so one loop
 * iteration touches only the groups whose deadline is due (O(due · log
 * groups)); a message or completion for a group re-keys that group only.
 * Nothing walks all groups.
 *
 * Heartbeat waves.  A leader heartbeats every heartbeat_ms from the tick
 * that sent the previous one.  Left alone, the groups this node leads
 * would heartbeat at scattered times, each in its own loop iteration, and
 * every peer would get one small write per group per interval.  So their
 * deadlines are put on a common "wave": s->wave is the time of the next
 * one, and a leader's deadline is moved up to it (or to the one after,
 * never more than heartbeat_ms later).  The timer fires once per wave,
 * every due leader is ticked with the same time and so sends its
 * heartbeats in that iteration (they leave in one write per peer, or one
 * batch frame where the transport batches), and its next deadline is
 * exactly the next wave, now + heartbeat_ms.  A wave follows the timer's
 * actual firing time, so its lateness never doubles an interval.  Leaders
 * whose heartbeat was reset between waves (an append went out) join the
 * next wave but one at the latest.  Only leaders are moved: a follower's
 * election timer keeps its random spread (thesis §3.4), and it answers
 * heartbeats when they arrive, all in the iteration that reads them.
 */
#include "internal/alloc.h"
#include "server_int.h"

/* ------------------------------------------------------------------ */
/* The deadline heap                                                  */
/* ------------------------------------------------------------------ */

static void heap_put(sr_server *s, size_t i, sr_group *g)
{
	s->heap[i] = g;
	g->heap_pos = i;
}

static void heap_up(sr_server *s, size_t i)
{
	sr_group *g = s->heap[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (s->heap[parent]->due <= g->due)
			break;
		heap_put(s, i, s->heap[parent]);
		i = parent;
	}
	heap_put(s, i, g);
}

static void heap_down(sr_server *s, size_t i)
{
	sr_group *g = s->heap[i];

	for (;;) {
		size_t l = 2 * i + 1, m = l;
		if (l >= s->heap_n)
			break;
		if (l + 1 < s->heap_n && s->heap[l + 1]->due < s->heap[l]->due)
			m = l + 1;
		if (s->heap[m]->due >= g->due)
			break;
		heap_put(s, i, s->heap[m]);
		i = m;
	}
	heap_put(s, i, g);
}

void server_clock_unqueue(sr_group *g)
{
	sr_server *s = g->srv;
	size_t i = g->heap_pos;
	sr_group *moved;

	if (i == SERVER_NOT_QUEUED)
		return;
	g->heap_pos = SERVER_NOT_QUEUED;
	if (i == --s->heap_n)
		return;
	moved = s->heap[s->heap_n];
	heap_put(s, i, moved);
	heap_up(s, i);
	heap_down(s, moved->heap_pos);
}

/* Put g in the heap at due (or move it there). */
static int heap_set(sr_server *s, sr_group *g, uint64_t due)
{
	if (g->heap_pos == SERVER_NOT_QUEUED) {
		if (s->heap_n == s->heap_cap) {
			size_t cap = s->heap_cap ? s->heap_cap * 2 : 16;
			sr_group **h = hook_realloc(s->cfg.alloc, s->heap,
						    cap * sizeof(*h));
			if (!h)
				return SR_ENOMEM;
			s->heap = h;
			s->heap_cap = cap;
		}
		g->due = due;
		heap_put(s, s->heap_n++, g);
		heap_up(s, g->heap_pos);
		return 0;
	}
	if (due < g->due) {
		g->due = due;
		heap_up(s, g->heap_pos);
	} else if (due > g->due) {
		g->due = due;
		heap_down(s, g->heap_pos);
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* The loop timer                                                     */
/* ------------------------------------------------------------------ */

void server_clock_sync(sr_group *g)
{
	uint64_t now = sr_loop_update_now(g->srv->loop);

	if (now > g->last_tick) {
		g->last_tick = now;
		sr_node_tick(g->node, now);
	}
}

void server_clock_cancel_timer(sr_server *s)
{
	if (s->timer)
		sr_loop_timer_cancel(s->loop, s->timer);
	s->timer = 0;
}

static void on_deadline(sr_loop *loop, uint64_t id, void *ctx);

/* Arm the loop timer no later than the earliest group deadline. */
static void timer_arm(sr_server *s)
{
	uint64_t now, due;

	if (s->heap_n == 0)
		return;
	due = s->heap[0]->due;
	if (s->timer && s->timer_at <= due)
		return;
	server_clock_cancel_timer(s);
	now = sr_loop_now_ms(s->loop);
	if (sr_loop_timer_add(s->loop, due > now ? due - now : 0, on_deadline,
			      s, &s->timer))
		server_log(s, SR_LOG_ERROR,
			   "cannot arm the deadline timer (out of memory)");
	else
		s->timer_at = due;
}

/* A leader's deadline (due > now), moved up to the heartbeat wave. */
static uint64_t wave_align(sr_server *s, uint64_t due, uint64_t now)
{
	uint64_t hb = s->cfg.raft.heartbeat_ms;

	if (s->wave <= now || s->wave > now + hb)
		s->wave = due; /* no wave pending: this deadline starts one */
	if (due <= s->wave)
		return s->wave;
	return due <= s->wave + hb ? s->wave + hb : due;
}

void server_clock_schedule(sr_group *g)
{
	sr_server *s = g->srv;
	uint64_t now, due;

	if (!g->started)
		return;
	due = sr_node_deadline(g->node);
	if (due == UINT64_MAX) {
		server_clock_unqueue(
			g); /* stopped: nothing will be due again */
		return;
	}
	now = sr_loop_now_ms(s->loop);
	if (g->role == SR_LEADER && due > now)
		due = wave_align(s, due, now);
	if (due <= now)
		due = now + 1; /* never spin on a deadline in the past */
	if (heap_set(s, g, due)) {
		server_log(s, SR_LOG_ERROR,
			   "group %u: cannot queue its deadline (out of "
			   "memory)",
			   g->id);
		return;
	}
	if (!s->firing)
		timer_arm(s);
}

/* Tick every group whose deadline is due, all with the same time. */
static void on_deadline(sr_loop *loop, uint64_t id, void *ctx)
{
	sr_server *s = ctx;
	uint64_t now = sr_loop_update_now(loop);

	(void)id;
	s->timer = 0;
	s->stats.timer_fires++;
	if (s->wave && s->wave <= now)
		s->wave = now + s->cfg.raft.heartbeat_ms;
	s->firing = 1;
	/* A ticked group goes back at a deadline after now (kick), so the
	 * loop ends. */
	while (s->heap_n && s->heap[0]->due <= now) {
		sr_group *g = s->heap[0];
		server_clock_unqueue(g);
		s->stats.groups_due++;
		if (now > g->last_tick)
			g->last_tick = now;
		s->depth++;
		s->inside = g;
		sr_node_tick(g->node, g->last_tick);
		s->inside = NULL;
		s->depth--;
		server_clock_schedule(g);
	}
	s->firing = 0;
	timer_arm(s);
}
