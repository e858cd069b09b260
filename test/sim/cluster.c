/*
 * cluster.c — the simulated cluster: engines, their stores ("disks"), the
 * network, the clock and the event loop.  The checks live in check.c.
 *
 * Event loop.  Pending work is a heap of events ordered by (time, seq):
 * messages in flight and store completions.  Each step takes whichever
 * comes first, a due event or the earliest engine deadline, advances the
 * clock to it, performs it and runs the checker.  Ties go to events, then
 * to the lowest slot: the order depends only on the seed.
 *
 * The engine calls send() and the store's append() synchronously inside
 * sr_node_*; both only queue (a deep copy of the message, a completion
 * event), so nothing is ever delivered re-entrantly.
 *
 * Spare slots (sim_opts.n_spare) start an engine on an empty store
 * without bootstrapping it: outside every configuration, it waits for a
 * leader to add it.
 *
 * Crash: the engine is destroyed, the store keeps what it reported durable
 * and, at random, part of what it did not (sr_mem_crash); events of the
 * old incarnation are ignored.  Pause: the engine is kept but gets no tick,
 * message or completion until it resumes; what arrived meanwhile is
 * delivered then.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "groups.h"

/* ------------------------------------------------------------------ */
/* Randomness, tracing, failure                                        */
/* ------------------------------------------------------------------ */

uint64_t sim_rand(struct cluster *c)
{
	uint64_t z = (c->rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint64_t sim_rand_range(struct cluster *c, uint64_t lo, uint64_t hi)
{
	if (hi <= lo)
		return lo;
	return lo + sim_rand(c) % (hi - lo + 1);
}

static uint64_t crash_rand(void *ctx)
{
	return sim_rand(ctx);
}

void cluster_keep_ring(struct cluster *c, size_t cap)
{
	free(c->ring);
	c->ring = cap ? calloc(cap, sizeof(*c->ring)) : NULL;
	c->ring_cap = c->ring ? cap : 0;
	c->ring_n = 0;
}

void cluster_dump_ring(const struct cluster *c, FILE *out)
{
	size_t n = c->ring_n < c->ring_cap ? c->ring_n : c->ring_cap;

	for (size_t i = c->ring_n - n; i < c->ring_n; i++)
		fprintf(out, "  %s\n", c->ring[i % c->ring_cap]);
}

/* A trace line: to c's trace and ring, with the world's group tag. */
static void vtrace(struct cluster *c, int slot, int tag, const char *fmt,
		   va_list ap) __attribute__((format(printf, 4, 0)));

static void vtrace(struct cluster *c, int slot, int tag, const char *fmt,
		   va_list ap)
{
	char line[512], g[16] = "";
	int off;

	if (c->world) {
		/* every group's lines go to group 0's trace and ring */
		if (tag)
			snprintf(g, sizeof(g),
				 slot >= 0 ? "g%d " : "g%d: ", c->group_index);
		c = c->world->g[0];
	}
	if (!c->trace && !c->ring_cap)
		return;
	if (slot >= 0)
		off = snprintf(line, sizeof(line), "%7" PRIu64 " n%d %s",
			       c->now, slot + 1, g);
	else
		off = snprintf(line, sizeof(line), "%7" PRIu64 " -- %s", c->now,
			       g);
	vsnprintf(line + off, sizeof(line) - (size_t)off, fmt, ap);
	if (c->trace)
		fprintf(c->trace, "%s\n", line);
	if (c->ring_cap) {
		char *dst = c->ring[c->ring_n % c->ring_cap];
		size_t l = strlen(line);

		if (l >= sizeof(c->ring[0]))
			l = sizeof(c->ring[0]) - 1;
		memcpy(dst, line, l);
		dst[l] = 0;
		c->ring_n++;
	}
}

void sim_trace(struct cluster *c, int slot, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vtrace(c, slot, 1, fmt, ap);
	va_end(ap);
}

void sim_trace_proc(struct cluster *c, int slot, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vtrace(c, slot, 0, fmt, ap);
	va_end(ap);
}

void sim_fail(struct cluster *c, const char *fmt, ...)
{
	va_list ap;

	if (c->failed)
		return;
	c->failed = 1;
	va_start(ap, fmt);
	vsnprintf(c->why, sizeof(c->why), fmt, ap);
	va_end(ap);
	sim_trace(c, -1, "VIOLATION: %s", c->why);
	/* one group failing fails the world, which names the group */
	if (c->world) {
		char why[sizeof(c->why)];

		snprintf(why, sizeof(why), "group %d (id %u): %.400s",
			 c->group_index, c->o.group, c->why);
		for (int k = 0; k < c->world->n_groups; k++) {
			c->world->g[k]->failed = 1;
			memcpy(c->world->g[k]->why, why, sizeof(why));
		}
	}
}

/* ------------------------------------------------------------------ */
/* The event heap                                                      */
/* ------------------------------------------------------------------ */

static int ev_before(const struct sim_ev *a, const struct sim_ev *b)
{
	return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

void sim_push_event(struct cluster *c, struct sim_ev ev)
{
	size_t i;

	if (c->heap_n == c->heap_cap) {
		c->heap_cap = c->heap_cap ? c->heap_cap * 2 : 256;
		c->heap = realloc(c->heap, c->heap_cap * sizeof(*c->heap));
		if (!c->heap)
			abort();
	}
	ev.seq = c->ev_seq++;
	i = c->heap_n++;
	while (i && ev_before(&ev, &c->heap[(i - 1) / 2])) {
		c->heap[i] = c->heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	c->heap[i] = ev;
}

static struct sim_ev heap_pop(struct cluster *c)
{
	struct sim_ev top = c->heap[0], last = c->heap[--c->heap_n];
	size_t i = 0;

	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		const struct sim_ev *best = &last;

		if (l < c->heap_n && ev_before(&c->heap[l], best)) {
			m = l;
			best = &c->heap[l];
		}
		if (r < c->heap_n && ev_before(&c->heap[r], best))
			m = r;
		if (m == i)
			break;
		c->heap[i] = c->heap[m];
		i = m;
	}
	if (c->heap_n)
		c->heap[i] = last;
	return top;
}

void sim_schedule_msg(struct cluster *c, int to, struct sim_msg *sm,
		      uint64_t at)
{
	struct sim_ev ev = { .at = at, .kind = EV_MSG, .slot = to, .msg = sm };

	sm->at = at;
	sim_push_event(c, ev);
}

void sim_held_push(struct cluster *c, struct sim_msg *sm)
{
	if (c->held_n == c->held_cap) {
		c->held_cap = c->held_cap ? c->held_cap * 2 : 64;
		c->held = realloc(c->held, c->held_cap * sizeof(*c->held));
		if (!c->held)
			abort();
	}
	c->held[c->held_n++] = sm;
}

/* ------------------------------------------------------------------ */
/* Life cycle                                                          */
/* ------------------------------------------------------------------ */

void sim_opts_default(struct sim_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->n = 3;
	o->seed = 1;
	o->election_ms = 100;
	o->heartbeat_ms = 20;
	o->pre_vote = 1;
	o->check_quorum = 1;
	o->disk_min_ms = 0;
	o->disk_max_ms = 2;
	o->log_level = SR_LOG_WARN;
	o->tick_on_event = 1;
}

int cluster_init(struct cluster *c, const struct sim_opts *o)
{
	memset(c, 0, sizeof(*c));
	if (o->n < 1 || o->n > SIM_MAX_NODES || o->n_external >= o->n ||
	    o->n_spare < 0 || o->n_spare >= o->n ||
	    (o->n_spare && o->n_external))
		return SR_EINVAL;
	c->o = *o;
	c->n = o->n;
	c->netp = &c->net;
	c->rng = o->seed ^ 0x5eed5eed5eedull;
	sim_hooks_init(c);
	c->net.delay_min = 1;
	c->net.delay_max = 1;
	for (int i = 0; i < c->n; i++)
		for (int j = 0; j < c->n; j++)
			c->netp->link[i][j] = 1;
	check_init(c);
	for (int i = 0; i < c->n; i++) {
		struct sim_node *sn = &c->nodes[i];
		sr_mem_config mc = { .mode = o->async_disk ? SR_MEM_ASYNC
							   : SR_MEM_SYNC,
				     .done = sim_disk_done,
				     .done_ctx = sn };
		char addr[32];
		int rv;

		sn->c = c;
		sn->slot = i;
		sn->id = (sr_id)i + 1;
		sn->external = i >= c->n - o->n_external;
		snprintf(addr, sizeof(addr), "sim:%d", i + 1);
		if (i < c->n - o->n_spare)
			sr_membership_add(&c->conf, sn->id, SR_ROLE_VOTER,
					  addr);
		if (sn->external)
			continue;
		if ((rv = sr_mem_create(&mc, &sn->mem)) ||
		    (rv = sim_node_make(c, sn)))
			return rv;
	}
	return 0;
}

int cluster_start(struct cluster *c)
{
	for (int i = 0; i < c->n; i++) {
		struct sim_node *sn = &c->nodes[i];
		sr_mem_info info;
		int rv;

		if (sn->external)
			continue;
		sr_mem_get_info(sn->mem, &info);
		/* spares wait to be added: no configuration of their own */
		if (info.last_index == 0 && i < c->n - c->o.n_spare &&
		    (rv = sr_node_bootstrap(sn->node, &c->conf)))
			return rv;
		rv = sr_node_start(sn->node, c->now);
		if (rv)
			return rv;
		/* the bootstrap entry is durable before anything else runs */
		sr_mem_flush(sn->mem, SIZE_MAX);
		check_restart(sn, 1);
	}
	check_step(c);
	return c->failed ? SR_ESTATE : 0;
}

void cluster_free(struct cluster *c)
{
	for (int i = 0; i < c->n; i++) {
		struct sim_node *sn = &c->nodes[i];

		if (sn->node)
			sr_node_destroy(sn->node);
		sn->node = NULL;
		sr_mem_destroy(sn->mem);
		free(sn->shadow);
		free(sn->lost_h);
	}
	while (c->heap_n) {
		struct sim_ev ev = heap_pop(c);
		free(ev.msg);
	}
	free(c->heap);
	cluster_drop_held(c);
	free(c->held);
	for (size_t k = 0; k < c->n_parked; k++)
		free(c->parked[k].sm);
	free(c->props);
	free(c->reads);
	free(c->ring);
	check_free(c);
	memset(c, 0, sizeof(*c));
}

/* ------------------------------------------------------------------ */
/* Stepping                                                            */
/* ------------------------------------------------------------------ */

/* A host that reads its clock per event tells the engine the time. */
void sim_host_tick(struct cluster *c, struct sim_node *sn)
{
	if (c->o.tick_on_event && sn->node && c->now > sn->last_tick) {
		sn->last_tick = c->now;
		sr_node_tick(sn->node, c->now);
	}
}

static void deliver_msg(struct cluster *c, struct sim_ev *ev)
{
	struct sim_node *sn = &c->nodes[ev->slot];
	struct sim_msg *sm = ev->msg;
	int from = (int)sm->m.from - 1;
	char desc[200];

	sim_msg_describe(&sm->m, desc, sizeof(desc));
	if (!sn->node) {
		sim_trace(c, ev->slot, "recv %s (node down: lost)", desc);
		c->n_lost++;
	} else if (sn->paused_until > c->now) {
		sim_schedule_msg(c, ev->slot, sm, sn->paused_until);
		return;
	} else if (from >= 0 && from < c->n && !c->netp->link[from][ev->slot]) {
		sim_trace(c, ev->slot, "recv %s (partitioned: lost)", desc);
		c->n_lost++;
	} else {
		int rv;

		sim_trace(c, ev->slot, "recv %s%s", desc,
			  sm->dup ? " (duplicate)" : "");
		c->n_delivered++;
		sim_host_tick(c, sn);
		check_conf_recv(sn, &sm->m, 0);
		rv = sr_node_step(sn->node, &sm->m);
		if (rv)
			sim_trace(c, ev->slot, "step: %s", sr_strerror(rv));
		/* the transport routes by group id: never a foreign one */
		if (rv == SR_EINVAL && c->world)
			sim_fail(c, "n%d refuses a message as misaddressed",
				 ev->slot + 1);
		check_conf_recv(sn, &sm->m, 1);
	}
	free(sm);
}

static void deliver_disk(struct cluster *c, struct sim_ev *ev)
{
	struct sim_node *sn = &c->nodes[ev->slot];
	size_t pending, k;

	if (!sn->node || ev->incarnation != sn->incarnation)
		return;
	if (sn->paused_until > c->now) {
		ev->at = sn->paused_until;
		sim_push_event(c, *ev);
		return;
	}
	pending = sr_mem_pending(sn->mem);
	if (!pending)
		return;
	k = c->o.disk_reorder ? sim_rand(c) % pending : 0;
	sim_trace(c, ev->slot, "store completion %zu of %zu%s", k + 1, pending,
		  sn->fail_completion ? ": I/O ERROR" : "");
	sim_host_tick(c, sn);
	sr_mem_complete(sn->mem, k, sn->fail_completion ? SR_EIO : 0);
	sn->fail_completion = 0;
	/* a durability point: crash right after it now and then */
	if (c->xfaults && !c->crash_at[ev->slot] && sim_rand(c) % 1000 < 15)
		c->crash_at[ev->slot] = c->now;
}

/* A deferred snapshot is ready: hand it over, or now and then give up. */
static void deliver_snap(struct cluster *c, struct sim_ev *ev)
{
	struct sim_node *sn = &c->nodes[ev->slot];

	if (!sn->node || ev->incarnation != sn->incarnation)
		return;
	if (sn->paused_until > c->now) {
		ev->at = sn->paused_until;
		sim_push_event(c, *ev);
		return;
	}
	sim_host_tick(c, sn);
	if (sim_rand(c) % 10 == 0) {
		sim_trace(c, ev->slot, "snapshot abandoned");
		sr_node_snapshot_done(sn->node, SR_EIO);
	} else {
		sim_trace(c, ev->slot, "snapshot bytes handed over");
		sim_snapshot_give(sn, sn->snap_buf);
	}
}

/* Is parked message p's condition met? */
static int park_due(struct cluster *c, const struct sim_parked *p)
{
	sr_term top = 0;

	if (c->now >= p->deadline)
		return 1;
	switch (p->cond) {
	case PARK_RECEIVER_RESTART:
		return c->nodes[p->to].incarnation != p->inc_to &&
		       c->nodes[p->to].node;
	case PARK_SENDER_RESTART:
		return c->nodes[p->from].incarnation != p->inc_from;
	default:
		for (int i = 0; i < c->n; i++)
			if (c->nodes[i].st.term > top)
				top = c->nodes[i].st.term;
		return top > p->term;
	}
}

static void release_parked(struct cluster *c, size_t k)
{
	struct sim_parked p = c->parked[k];
	char desc[200];

	c->parked[k] = c->parked[--c->n_parked];
	sim_msg_describe(&p.sm->m, desc, sizeof(desc));
	sim_trace(c, p.to, "release parked %s", desc);
	sim_schedule_msg(c, p.to, p.sm,
			 c->now + (c->xfaults ? sim_rand_range(c, 0, 60) : 1));
}

void cluster_release_parked(struct cluster *c)
{
	while (c->n_parked)
		release_parked(c, c->n_parked - 1);
}

/*
 * Between steps: crashes requested right after a durability point (a
 * quick reboot follows, or a longer outage), restarts that are due,
 * parked messages whose moment has come.
 */
void sim_xfault_step(struct cluster *c)
{
	for (int i = 0; i < c->n && !c->failed; i++) {
		struct sim_node *sn = &c->nodes[i];

		if (c->crash_at[i] && c->crash_at[i] <= c->now) {
			c->crash_at[i] = 0;
			if (sn->node && !sn->retired) {
				c->n_bias_crashes++;
				cluster_crash(c, i);
				c->restart_at[i] =
					c->now +
					(sim_rand(c) % 4
						 ? sim_rand_range(c, 1, 30)
						 : sim_rand_range(c, 30, 800));
			}
		}
		if (c->restart_at[i] && c->restart_at[i] <= c->now) {
			c->restart_at[i] = 0;
			cluster_restart(c, i);
		}
	}
	for (size_t k = 0; k < c->n_parked && !c->failed;)
		if (park_due(c, &c->parked[k]))
			release_parked(c, k);
		else
			k++;
}

/* The earliest engine timer: its slot, or -1. */
static int next_tick(struct cluster *c, uint64_t *at)
{
	int best = -1;

	*at = SIM_FOREVER;
	for (int i = 0; i < c->n; i++) {
		struct sim_node *sn = &c->nodes[i];
		uint64_t d;

		if (!sn->node)
			continue;
		d = sr_node_deadline(sn->node);
		if (d <= sn->last_tick)
			d = sn->last_tick + 1;
		if (d < sn->paused_until)
			d = sn->paused_until;
		if (d < *at) {
			*at = d;
			best = i;
		}
	}
	return best;
}

uint64_t cluster_next_at(struct cluster *c)
{
	uint64_t t_tick, t_ev = c->heap_n ? c->heap[0].at : SIM_FOREVER;

	next_tick(c, &t_tick);
	return t_ev < t_tick ? t_ev : t_tick;
}

int cluster_step(struct cluster *c, uint64_t limit)
{
	if (c->world)
		return world_step(c->world, limit);
	return cluster_step_one(c, limit);
}

int cluster_step_one(struct cluster *c, uint64_t limit)
{
	uint64_t t_tick, t_ev;
	int ti;

	if (c->failed)
		return 0;
	ti = next_tick(c, &t_tick);
	t_ev = c->heap_n ? c->heap[0].at : SIM_FOREVER;
	if (t_ev <= t_tick) {
		struct sim_ev ev;

		if (t_ev > limit || t_ev == SIM_FOREVER)
			return 0;
		ev = heap_pop(c);
		if (ev.at > c->now)
			c->now = ev.at;
		if (ev.kind == EV_MSG)
			deliver_msg(c, &ev);
		else if (ev.kind == EV_DISK)
			deliver_disk(c, &ev);
		else if (ev.kind == EV_WAL)
			world_wal_event(c->world, &ev);
		else
			deliver_snap(c, &ev);
	} else {
		struct sim_node *sn = &c->nodes[ti];

		if (t_tick > limit)
			return 0;
		if (t_tick > c->now)
			c->now = t_tick;
		sn->last_tick = c->now;
		sr_node_tick(sn->node, c->now);
	}
	c->steps++;
	check_step(c);
	sim_xfault_step(c);
	return 1;
}

/* The clock of this cluster, and of its world's every group, moves to t. */
static void set_now(struct cluster *c, uint64_t t)
{
	if (c->world)
		world_set_now(c->world, t);
	else
		c->now = t;
}

void cluster_run_until(struct cluster *c, uint64_t t)
{
	while (cluster_step(c, t))
		;
	if (!c->failed && c->now < t)
		set_now(c, t);
}

void cluster_run_for(struct cluster *c, uint64_t ms)
{
	cluster_run_until(c, c->now + ms);
}

int cluster_run_while_not(struct cluster *c, int (*pred)(struct cluster *),
			  uint64_t ms)
{
	uint64_t end = c->now + ms;

	while (!pred(c)) {
		if (!cluster_step(c, end)) {
			if (!c->failed)
				set_now(c, end);
			return pred(c);
		}
	}
	return 1;
}

static int has_leader(struct cluster *c)
{
	return cluster_leader(c) >= 0;
}

int cluster_leader(struct cluster *c)
{
	int best = -1;

	for (int i = 0; i < c->n; i++) {
		const sr_status *st = &c->nodes[i].st;

		if (c->nodes[i].node && st->role == SR_LEADER &&
		    (best < 0 || st->term > c->nodes[best].st.term))
			best = i;
	}
	return best;
}

int cluster_wait_leader(struct cluster *c, uint64_t ms)
{
	cluster_run_while_not(c, has_leader, ms);
	return cluster_leader(c);
}

const sr_status *cluster_status(struct cluster *c, int i)
{
	return &c->nodes[i].st;
}

int cluster_all_applied(struct cluster *c, sr_index index)
{
	uint32_t members = cluster_members(c);

	for (int i = 0; i < c->n; i++) {
		struct sim_node *sn = &c->nodes[i];

		if (sn->external || !(members >> i & 1))
			continue;
		if (!sn->node || sn->st.applied_index < index)
			return 0;
	}
	return 1;
}

/* ------------------------------------------------------------------ */
/* Faults                                                              */
/* ------------------------------------------------------------------ */

void cluster_heal(struct cluster *c)
{
	for (int i = 0; i < c->n; i++)
		for (int j = 0; j < c->n; j++)
			c->netp->link[i][j] = 1;
	sim_trace_proc(c, -1, "network healed");
}

void cluster_set_link(struct cluster *c, int from, int to, int up)
{
	c->netp->link[from][to] = (uint8_t)up;
}

void cluster_isolate(struct cluster *c, int i)
{
	for (int j = 0; j < c->n; j++) {
		c->netp->link[i][j] = 0;
		c->netp->link[j][i] = 0;
	}
	sim_trace_proc(c, i, "isolated");
}

void cluster_partition(struct cluster *c, uint32_t mask)
{
	char a[64] = "", b[64] = "";

	for (int i = 0; i < c->n; i++) {
		char *side = (mask >> i) & 1 ? a : b;
		size_t l = strlen(side);

		snprintf(side + l, sizeof(a) - l, " n%d", i + 1);
		for (int j = 0; j < c->n; j++)
			c->netp->link[i][j] = ((mask >> i) & 1) ==
					      ((mask >> j) & 1);
	}
	sim_trace_proc(c, -1, "partition {%s } | {%s }", a, b);
}

void cluster_crash(struct cluster *c, int i)
{
	struct sim_node *sn = &c->nodes[i];
	sr_mem_info before, after;
	sr_node *node = sn->node;

	if (c->world && !c->world->fanout) {
		world_crash(c->world, i); /* the process: every group */
		return;
	}
	if (!node)
		return;
	c->n_crashes++;
	sr_mem_get_info(sn->mem, &before);
	sr_node_destroy(node); /* pending proposals: done(SR_EUNKNOWN) */
	sn->node = NULL;
	if (c->world && !c->world->retiring)
		sr_mem_crash(sn->mem, world_crash_rand, &c->world->script);
	else
		sr_mem_crash(sn->mem, c->crash_drops_all ? NULL : crash_rand,
			     c);
	sr_mem_get_info(sn->mem, &after);
	sn->incarnation++;
	sn->paused_until = 0;
	memset(&sn->fsm, 0, sizeof(sn->fsm)); /* a new process */
	memset(&sn->st, 0, sizeof(sn->st));
	sim_trace(c, i,
		  "CRASH: log was %" PRIu64 "..%" PRIu64 " (durable ..%" PRIu64
		  "), keeps %" PRIu64 "..%" PRIu64,
		  before.first_index, before.last_index, before.durable_last,
		  after.first_index, after.last_index);
	check_restart(sn, 0);
	check_step(c);
}

int cluster_restart(struct cluster *c, int i)
{
	struct sim_node *sn = &c->nodes[i];
	int rv;

	if (c->world && !c->world->fanout)
		return world_restart(c->world, i);
	if (sn->node || sn->external || sn->retired)
		return 0;
	sn->restarted_at = c->now;
	rv = sim_node_make(c, sn);
	if (rv == 0)
		rv = sr_node_start(sn->node, c->now);
	sim_trace(c, i, "RESTART%s%s", rv ? ": " : "",
		  rv ? sr_strerror(rv) : "");
	if (rv) {
		sim_fail(c, "n%d fails to restart: %s", i + 1, sr_strerror(rv));
		if (sn->node)
			sr_node_destroy(sn->node);
		sn->node = NULL;
		return rv;
	}
	check_step(c);
	return 0;
}

/* sr_mem_crash keeping every operation: makes the corruption durable */
static uint64_t keep_all(void *ctx)
{
	(void)ctx;
	return 3;
}

int cluster_corrupt(struct cluster *c, int i)
{
	struct sim_node *sn = &c->nodes[i];
	sr_mem_info info;
	sr_index a, b;

	if (sn->external || sn->retired)
		return 0;
	cluster_crash(c, i);
	sr_mem_get_info(sn->mem, &info);
	/* entries the snapshot covers are not lost with the log */
	a = info.first_index > info.snapshot_index ? info.first_index
						   : info.snapshot_index + 1;
	if (info.last_index < a)
		return 0;
	a = sim_rand_range(c, a, info.last_index);
	b = info.last_index;
	free(sn->lost_h);
	sn->lost_h = malloc((size_t)(b - a + 1) * sizeof(*sn->lost_h));
	if (!sn->lost_h)
		return 0;
	for (sr_index k = a; k <= b; k++)
		sn->lost_h[k - a] = sn->shadow[k].h;
	sn->lost_first = a;
	if (sr_mem_ops()->truncate(sn->mem, a))
		return 0;
	sr_mem_crash(sn->mem, keep_all, NULL);
	if (b > sn->lost_last)
		sn->lost_last = b;
	/* every entry it held has a term <= its durable term (a term is
	 * durable before anything of it is appended): the WAL keeps this
	 * bound in its lost file */
	if (info.term > sn->lost_term)
		sn->lost_term = info.term;
	c->n_corruptions++;
	sim_trace(c, i,
		  "CORRUPT: durable entries %" PRIu64 "..%" PRIu64
		  " lost (the store reports up to %" PRIu64 ")",
		  a, b, sn->lost_last);
	check_restart(sn, 0);
	return 1;
}

void cluster_retire(struct cluster *c, int i)
{
	sim_trace(c, i, "RETIRED (removed; stays down)");
	if (c->world)
		world_retire(c->world, c->group_index, i); /* this group only */
	else
		cluster_crash(c, i);
	c->nodes[i].retired = 1;
}

void cluster_pause(struct cluster *c, int i, uint64_t ms)
{
	if (c->world && !c->world->fanout) {
		world_pause(c->world, i, ms);
		return;
	}
	if (!c->nodes[i].node)
		return;
	c->nodes[i].paused_until = c->now + ms;
	sim_trace_proc(c, i, "PAUSE until %" PRIu64, c->now + ms);
}

/* ------------------------------------------------------------------ */
/* Tests speaking for a peer                                           */
/* ------------------------------------------------------------------ */

int cluster_inject(struct cluster *c, int i, const sr_msg *m)
{
	struct sim_node *sn = &c->nodes[i];
	char desc[200];
	int rv;

	if (!sn->node)
		return SR_ESHUTDOWN;
	sim_msg_describe(m, desc, sizeof(desc));
	sim_trace(c, i, "recv %s (injected)", desc);
	sim_host_tick(c, sn);
	rv = sr_node_step(sn->node, m);
	c->steps++;
	check_step(c);
	return rv;
}

struct sim_msg *cluster_take_held(struct cluster *c, size_t k)
{
	struct sim_msg *sm;

	if (k >= c->held_n)
		return NULL;
	sm = c->held[k];
	memmove(c->held + k, c->held + k + 1,
		(c->held_n - k - 1) * sizeof(*c->held));
	c->held_n--;
	return sm;
}

void cluster_release(struct cluster *c, struct sim_msg *sm, uint64_t delay)
{
	int to = (int)sm->m.to - 1;

	if (to < 0 || to >= c->n || c->nodes[to].external) {
		free(sm);
		return;
	}
	sim_schedule_msg(c, to, sm, c->now + delay);
}

void cluster_drop_held(struct cluster *c)
{
	for (size_t i = 0; i < c->held_n; i++)
		free(c->held[i]);
	c->held_n = 0;
}

size_t cluster_count_held(const struct cluster *c, uint32_t type, int to)
{
	size_t n = 0;

	for (size_t i = 0; i < c->held_n; i++)
		if ((!type || c->held[i]->m.type == type) &&
		    (to < 0 || c->held[i]->m.to == (sr_id)to + 1))
			n++;
	return n;
}
