/*
 * groups.c — the multi-group world (groups.h): G clusters, one per Raft
 * group, whose slots are shared processes.  Here: stepping them on one
 * clock, routing messages by group id, process-wide crashes, restarts
 * and pauses, and the shared WAL with its batches.
 *
 * The shared WAL.  Every append, truncation and compaction a group's
 * store takes becomes a record in its process's write order
 * (world_wal_add).  The writer closes a batch 0-2 ms after the first
 * record it has not yet written arrives (group commit: whatever arrived
 * meanwhile, from any group, joins it), then syncs it with one fsync
 * taking the seed's disk delay.  When the fsync finishes, the batch's
 * appends are completed in write order (sr_mem_complete makes each and
 * everything its group issued before it durable, and hands the engine its
 * completion); records arriving during the fsync wait for the next batch.
 * A crash keeps, in write order, a prefix of the records not yet durable:
 * none half of the time (the whole unsynced batch is lost, whatever groups
 * it spans), else a random one whose last record may be torn.  Each
 * group's store is then crashed keeping its own records of that prefix
 * (world_crash_rand scripts sr_mem_crash).
 *
 * Events of the world (EV_WAL) live in group 0's heap; the groups a sync
 * touched are checked right after it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "groups.h"

/* A line of the world's own (no group tag). */
#define wtrace(w, slot, ...) sim_trace_proc((w)->g[0], (slot), __VA_ARGS__)

/* ------------------------------------------------------------------ */
/* Life cycle and stepping                                             */
/* ------------------------------------------------------------------ */

int world_init(struct sim_world *w, const struct sim_opts *o, int groups,
	       int bug)
{
	memset(w, 0, sizeof(*w));
	if (groups < 1 || groups > SIM_MAX_GROUPS)
		return SR_EINVAL;
	w->n_groups = groups;
	w->bug = bug;
	w->crash_keep = -1;
	for (int k = 0; k < groups; k++) {
		struct sim_opts go = *o;
		struct cluster *c = malloc(sizeof(*c));
		int rv;

		if (!c)
			return SR_ENOMEM;
		go.group = SIM_GROUP_ID(k);
		go.seed = o->seed + (uint64_t)k * 0x9e3779b97f4a7c15ull;
		go.async_disk = 1; /* the WAL completes every append */
		go.disk_reorder = 0;
		rv = cluster_init(c, &go);
		w->g[k] = c;
		if (rv)
			return rv;
		c->world = w;
		c->group_index = k;
		c->netp = &w->g[0]->net;
	}
	return 0;
}

static void wal_reset(struct sim_wal *wal)
{
	wal->n = 0;
	wal->batch_n = 0;
	wal->scheduled = 0;
	wal->epoch++;
}

int world_start(struct sim_world *w)
{
	for (int k = 0; k < w->n_groups; k++) {
		int rv = cluster_start(w->g[k]);

		if (rv)
			return rv;
	}
	/* cluster_start flushed the bootstrap records: they are durable */
	for (int i = 0; i < SIM_MAX_NODES; i++)
		wal_reset(&w->wal[i]);
	return 0;
}

void world_free(struct sim_world *w)
{
	/* engines first: destroying one reports to its group, and traces
	 * to group 0 */
	for (int k = 0; k < w->n_groups; k++)
		for (int i = 0; w->g[k] && i < w->g[k]->n; i++)
			if (w->g[k]->nodes[i].node) {
				sr_node_destroy(w->g[k]->nodes[i].node);
				w->g[k]->nodes[i].node = NULL;
			}
	for (int k = 0; k < w->n_groups; k++) {
		if (!w->g[k])
			continue;
		cluster_free(w->g[k]);
		free(w->g[k]);
	}
	for (int i = 0; i < SIM_MAX_NODES; i++)
		free(w->wal[i].rec);
	memset(w, 0, sizeof(*w));
}

void world_set_now(struct sim_world *w, uint64_t t)
{
	for (int k = 0; k < w->n_groups; k++)
		if (w->g[k]->now < t)
			w->g[k]->now = t;
}

int world_step(struct sim_world *w, uint64_t limit)
{
	uint64_t at = SIM_FOREVER;
	int best = -1;

	for (int k = 0; k < w->n_groups; k++) {
		uint64_t t;

		if (w->g[k]->failed)
			return 0;
		t = cluster_next_at(w->g[k]);
		if (t < at) {
			at = t;
			best = k;
		}
	}
	if (best < 0 || at > limit || !cluster_step_one(w->g[best], limit))
		return 0;
	world_set_now(w, w->g[best]->now);
	/* what other groups asked for in this step (crashes right after a
	 * durability point, parked messages) */
	for (int k = 0; k < w->n_groups; k++)
		if (k != best)
			sim_xfault_step(w->g[k]);
	return 1;
}

/* ------------------------------------------------------------------ */
/* Processes                                                           */
/* ------------------------------------------------------------------ */

uint64_t world_crash_rand(void *ctx)
{
	struct wal_script *s = ctx;

	/* sr_mem_crash: 0 drops this op and the rest, 2 keeps it whole,
	 * 1 + 4t keeps t + 1 entries of an append (torn) */
	if (!s->keep)
		return 0;
	return --s->keep ? 2 : s->last;
}

void world_crash(struct sim_world *w, int i)
{
	struct sim_wal *wal = &w->wal[i];
	struct cluster *c0 = w->g[0];
	size_t p = 0;
	int up = 0, tear = 0;

	for (int k = 0; k < w->n_groups; k++)
		up |= w->g[k]->nodes[i].node != NULL;
	if (!up)
		return;
	/* the prefix of unsynced records (in write order) that survives */
	if (w->crash_keep >= 0) {
		p = (size_t)w->crash_keep < wal->n ? (size_t)w->crash_keep
						   : wal->n;
	} else if (wal->n && sim_rand(c0) % 2) {
		p = sim_rand_range(c0, 1, wal->n);
		tear = (int)(sim_rand(c0) % 2);
	}
	wtrace(w, i,
	       "CRASH of the process: %zu of its %zu unsynced WAL records "
	       "survive%s",
	       p, wal->n, tear ? " (the last one torn if it can be)" : "");
	w->fanout = 1;
	for (int k = 0; k < w->n_groups; k++) {
		struct sim_node *sn = &w->g[k]->nodes[i];
		size_t cut = p, lost = 0;
		sr_mem_info info;

		/* SIM_BUG_SPLIT: what the fsync did not cover is lost */
		for (size_t r = 0; r < wal->n && r < cut; r++)
			if (wal->rec[r].group == k && wal->rec[r].split)
				cut = r;
		for (size_t r = cut; r < wal->n; r++)
			lost += wal->rec[r].group == k;
		sr_mem_get_info(sn->mem, &info);
		w->script.keep = info.pending_ops > lost
					 ? info.pending_ops - lost
					 : 0;
		w->script.last = 2;
		if (tear && cut == p && wal->rec[p - 1].group == k &&
		    wal->rec[p - 1].kind == WAL_APPEND && wal->rec[p - 1].n > 1)
			w->script.last = 1 + 4 * (sim_rand(c0) %
						  (wal->rec[p - 1].n - 1));
		w->n_crash_lost += lost;
		w->n_crash_kept += info.pending_ops - lost;
		cluster_crash(w->g[k], i);
	}
	w->fanout = 0;
	wal_reset(wal);
}

void world_retire(struct sim_world *w, int k, int i)
{
	struct sim_wal *wal = &w->wal[i];
	size_t kept = 0, batch = wal->batch_n;

	for (size_t r = 0; r < wal->n; r++) {
		if (wal->rec[r].group == k) {
			batch -= r < wal->batch_n;
			continue;
		}
		wal->rec[kept++] = wal->rec[r];
	}
	wal->n = kept;
	wal->batch_n = batch;
	w->fanout = w->retiring = 1;
	cluster_crash(w->g[k], i);
	w->fanout = w->retiring = 0;
}

int world_restart(struct sim_world *w, int i)
{
	int rv = 0;

	w->fanout = 1;
	for (int k = 0; k < w->n_groups; k++) {
		int r = cluster_restart(w->g[k], i);

		if (!rv)
			rv = r;
	}
	w->fanout = 0;
	return rv;
}

void world_pause(struct sim_world *w, int i, uint64_t ms)
{
	w->fanout = 1;
	for (int k = 0; k < w->n_groups; k++)
		cluster_pause(w->g[k], i, ms);
	w->fanout = 0;
}

/* ------------------------------------------------------------------ */
/* The transport                                                       */
/* ------------------------------------------------------------------ */

struct cluster *world_route(struct cluster *c, sr_msg *m)
{
	struct sim_world *w = c->world;
	int k = (int)(m->group - SIM_GROUP_ID(0));

	if (m->group != c->o.group || k < 0 || k >= w->n_groups) {
		sim_fail(c, "n%" PRIu64 " sends a message labelled group %u",
			 m->from, m->group);
		return c;
	}
	if (w->bug == SIM_BUG_MISROUTE && w->n_groups > 1 &&
	    sim_rand(c) % 100 == 0) {
		k = (k + 1 + (int)(sim_rand(c) % (uint64_t)(w->n_groups - 1))) %
		    w->n_groups;
		m->group = SIM_GROUP_ID(k);
		w->n_misrouted++;
	}
	return w->g[k];
}

/* ------------------------------------------------------------------ */
/* The shared WAL                                                      */
/* ------------------------------------------------------------------ */

static void wal_schedule(struct sim_world *w, int i, uint64_t at)
{
	struct sim_wal *wal = &w->wal[i];
	struct sim_ev ev = { .at = at, .kind = EV_WAL, .slot = i };

	ev.incarnation = wal->epoch;
	wal->scheduled = 1;
	sim_push_event(w->g[0], ev);
}

void world_wal_add(struct sim_node *sn, int kind, uint64_t token, size_t n)
{
	struct cluster *c = sn->c;
	struct sim_world *w = c->world;
	struct sim_wal *wal = &w->wal[sn->slot];
	struct sim_wal_rec *r;

	wal->rec = sim_grow(wal->rec, &wal->cap, wal->n + 1, sizeof(*r));
	r = &wal->rec[wal->n++];
	memset(r, 0, sizeof(*r));
	r->group = c->group_index;
	r->kind = kind;
	r->token = token;
	r->n = n;
	w->n_records++;
	if (!wal->scheduled && !wal->batch_n)
		wal_schedule(w, sn->slot, c->now + sim_rand_range(c, 0, 2));
}

/* Report record j of slot i's WAL durable to its engine now (bugs). */
static void wal_ack(struct sim_world *w, int i, size_t j)
{
	struct sim_wal_rec *r = &w->wal[i].rec[j];
	struct sim_node *sn = &w->g[r->group]->nodes[i];
	uint64_t token = r->token;

	r->acked = 1;
	if (r->kind != WAL_APPEND || !sn->node)
		return;
	sim_host_tick(sn->c, sn);
	/* may append: wal->rec may move */
	sr_node_storage_done(sn->node, token, 0);
}

/* The fsync of slot i's batch finished: complete its records. */
static void wal_sync(struct sim_world *w, int i)
{
	struct sim_wal *wal = &w->wal[i];
	struct cluster *c0 = w->g[0];
	size_t bn = wal->batch_n, keep = 0;
	struct sim_wal_rec *b = malloc(bn * sizeof(*b));
	uint64_t touched = 0;
	int fail = 0, last = -1, groups = 0;

	if (!b)
		abort(); /* test harness: out of memory is fatal */
	memcpy(b, wal->rec, bn * sizeof(*b));
	for (int k = 0; k < w->n_groups; k++)
		if (w->g[k]->nodes[i].fail_completion) {
			w->g[k]->nodes[i].fail_completion = 0;
			fail = 1;
		}
	for (size_t r = 0; r < bn; r++) {
		b[r].split = 0; /* this fsync covers earlier split records */
		touched |= 1ull << b[r].group;
	}
	for (uint64_t t = touched; t; t &= t - 1)
		groups++;
	if (w->bug == SIM_BUG_SPLIT && !fail && groups > 1)
		last = b[bn - 1].group;
	/* SIM_BUG_SPLIT: the last group's records stay unsynced, in front */
	for (size_t r = 0; r < bn; r++)
		if (b[r].group == last && !b[r].acked) {
			b[r].split = 1;
			wal->rec[keep] = b[r];
			wal->rec[keep].acked = 1;
			keep++;
		}
	memmove(wal->rec + keep, wal->rec + bn,
		(wal->n - bn) * sizeof(*wal->rec));
	wal->n = wal->n - bn + keep;
	wal->batch_n = 0;
	w->n_batches++;
	w->n_multi_batches += groups > 1;
	wtrace(w, i, "WAL fsync done: %zu records of %d groups durable%s", bn,
	       groups,
	       fail   ? ": I/O ERROR"
	       : keep ? " (BUG: the last group's records are not)"
		      : "");
	for (size_t r = 0; r < bn; r++) {
		struct sim_node *sn = &w->g[b[r].group]->nodes[i];

		if (b[r].kind != WAL_APPEND)
			continue;
		sim_host_tick(sn->c, sn);
		if (b[r].split) {
			if (sn->node)
				sr_node_storage_done(sn->node, b[r].token, 0);
			continue;
		}
		w->suppress = b[r].acked;
		w->syncing = 1;
		w->expect = b[r].token;
		/* the oldest completion of its store is this record's */
		if (sr_mem_complete(sn->mem, 0, fail ? SR_EIO : 0))
			sim_fail(sn->c,
				 "harness: n%d's WAL record (token %" PRIu64
				 ") has no completion in its store",
				 i + 1, b[r].token);
		w->suppress = w->syncing = 0;
	}
	for (int k = 0; k < w->n_groups; k++) {
		sr_mem *mem = w->g[k]->nodes[i].mem;

		/* truncations and compactions after its last append */
		if (touched >> k & 1 && !sr_mem_pending(mem))
			sr_mem_flush(mem, 0);
	}
	free(b);
	for (int k = 0; k < w->n_groups; k++)
		if (touched >> k & 1)
			check_step(w->g[k]);
	/* a durability point: crash right after it now and then */
	if (c0->xfaults && !c0->crash_at[i] && sim_rand(c0) % 1000 < 15)
		c0->crash_at[i] = c0->now;
}

void world_wal_event(struct sim_world *w, struct sim_ev *ev)
{
	struct cluster *c0 = w->g[0];
	struct sim_wal *wal = &w->wal[ev->slot];
	int i = ev->slot;

	if (ev->incarnation != wal->epoch)
		return;
	if (c0->nodes[i].paused_until > c0->now) {
		ev->at = c0->nodes[i].paused_until;
		sim_push_event(c0, *ev);
		return;
	}
	wal->scheduled = 0;
	if (wal->batch_n) {
		wal_sync(w, i);
		if (wal->n && !wal->scheduled)
			wal_schedule(w, i, c0->now + sim_rand_range(c0, 0, 2));
		return;
	}
	if (!wal->n)
		return;
	/* close a batch: an fsync covers what arrived until now */
	wal->batch_n = wal->n;
	wtrace(w, i, "WAL batch of %zu records: fsync", wal->n);
	if (w->bug == SIM_BUG_EARLY_ACK)
		for (size_t j = 0; j < wal->batch_n; j++)
			if (!wal->rec[j].acked)
				wal_ack(w, i, j);
	wal_schedule(w, i,
		     c0->now + sim_rand_range(c0, c0->o.disk_min_ms,
					      c0->o.disk_max_ms));
}
