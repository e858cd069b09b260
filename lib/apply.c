/*
 * apply.c — applying committed entries, and telling proposers the outcome.
 *
 * Entries are applied in index order, once each: `applied` only moves
 * forward, and the state machine sees only SR_ENTRY_NORMAL entries (no-ops
 * and configurations advance `applied` without reaching it).
 *
 * Proposals wait in a queue sorted by index.  When index i is applied with
 * term t, a proposal (i, t) succeeded and receives the state machine's
 * result; any other proposal at or below i was overwritten by another
 * leader's entry and gets SR_EDROPPED.  A leader that steps down keeps its
 * proposals: their entries may still commit under the next leader, and
 * only the entry applied at their index tells which way it went.  The
 * outcome of whatever is still queued when the node is destroyed is
 * unknown (SR_EUNKNOWN).
 */
#include <string.h>

#include "node.h"

static struct proposal *apply_prop_at(sr_node *n, uint32_t i)
{
	return &n->props[ring_pos(&n->props_ring, i)];
}

int apply_add_proposal(sr_node *n, sr_index index, sr_term term, void *cookie)
{
	struct ring *r = &n->props_ring;
	struct proposal *p;
	uint32_t pos;
	if (ring_full(r)) {
		p = ring_grow(r, n->props, sizeof(*p), 256, n->alloc);
		if (!p)
			return SR_ENOMEM;
		n->props = p;
	}
	/* Usually the new index is the largest; after a re-election on a
	 * shorter log it may not be, so keep the queue sorted. */
	pos = r->count;
	while (pos > 0 && apply_prop_at(n, pos - 1)->index > index)
		pos--;
	p = &n->props[ring_insert(r, n->props, sizeof(*p), pos)];
	p->index = index;
	p->term = term;
	p->cookie = cookie;
	return 0;
}

static void apply_done(sr_node *n, void *cookie, int status, sr_index index,
		       void *result)
{
	if (n->cfg.host.done)
		n->cfg.host.done(n->cfg.host_ctx, cookie, status, index,
				 result);
	else if (result && n->cfg.fsm->free_result)
		n->cfg.fsm->free_result(n->cfg.fsm_ctx, result);
}

/* Resolve every proposal at or below e->index now that it is applied. */
static void apply_resolve(sr_node *n, const sr_entry *e, int status,
			  void *result)
{
	while (n->props_ring.count > 0) {
		struct proposal p = *apply_prop_at(n, 0);
		if (p.index > e->index)
			break;
		ring_pop(&n->props_ring);
		if (p.index == e->index && p.term == e->term) {
			apply_done(n, p.cookie, status, p.index, result);
			result = NULL;
		} else {
			apply_done(n, p.cookie, SR_EDROPPED, p.index, NULL);
		}
	}
	if (result && n->cfg.fsm->free_result)
		n->cfg.fsm->free_result(n->cfg.fsm_ctx, result);
}

/* Apply one entry read from the log and resolve its proposals. */
static void apply_entry(sr_node *n, const sr_entry *e)
{
	void *result = NULL;
	int status = 0;
	if (e->type == SR_ENTRY_NORMAL) {
		status = n->cfg.fsm->apply(n->cfg.fsm_ctx, e, &result);
		if (status > 0)
			status = 0;
	} else if (e->type == SR_ENTRY_CONFIG) {
		conf_entry_applied(n, e->index, e->data, e->len);
	}
	n->applied = e->index;
	n->applied_bytes += e->len;
	apply_resolve(n, e, status, result);
}

/* The length of the run of normal entries that starts at e[0]. */
static size_t apply_normal_run(const sr_entry *e, size_t n)
{
	size_t k = 0;
	while (k < n && e[k].type == SR_ENTRY_NORMAL)
		k++;
	return k;
}

/*
 * Without a prefetch hook, entries are read and applied one at a time as
 * they always were.  With one, up to SR_FSM_PREFETCH_MAX committed entries
 * (and APPLY_RUN_BYTES of data) are read in one log_get() call, which keeps
 * every pointer valid until the next store call: applying makes none (the
 * callbacks may not call into the engine, and storage_done only marks).
 * Each run of consecutive normal entries is handed to the hook just before
 * it is applied, so that the state machine can start its memory loads for
 * the whole run at once.
 */
#define APPLY_RUN_BYTES ((uint64_t)1 << 20)

void apply_committed(sr_node *n)
{
	sr_entry run[SR_FSM_PREFETCH_MAX];
	const sr_fsm_ops *fsm = n->cfg.fsm;
	while (n->applied < n->commit && n->role != SR_STOPPED) {
		sr_index left = n->commit - n->applied;
		size_t want = fsm->prefetch ? SR_FSM_PREFETCH_MAX : 1;
		size_t got = 0, hinted = 0;
		int rv;
		if (want > left)
			want = (size_t)left;
		rv = log_get(&n->log, n->applied + 1, want, APPLY_RUN_BYTES,
			     run, &got);
		if (rv || got == 0) {
			node_stop(n,
				  rv == 0 || rv == SR_ENOTFOUND ? SR_ECORRUPT
								: rv,
				  "reading an entry to apply");
			return;
		}
		for (size_t i = 0; i < got && n->role != SR_STOPPED; i++) {
			if (fsm->prefetch && i >= hinted &&
			    run[i].type == SR_ENTRY_NORMAL) {
				size_t k = apply_normal_run(run + i, got - i);
				fsm->prefetch(n->cfg.fsm_ctx, run + i, k);
				hinted = i + k;
			}
			apply_entry(n, &run[i]);
		}
	}
	/* Keep the cache near its size: applied and locally durable entries
	 * can be read back from the store if a slow follower needs them. */
	if (log_cached_count(&n->log) > n->cfg.cache_entries) {
		sr_index below = SR_MIN(n->applied, n->durable) + 1;
		sr_index keep = log_last(&n->log) + 1 - n->cfg.cache_entries;
		log_evict(&n->log, SR_MIN(below, keep));
	}
}

void apply_fail_through(sr_node *n, sr_index index, int status)
{
	while (n->props_ring.count > 0 && apply_prop_at(n, 0)->index <= index) {
		struct proposal p = *apply_prop_at(n, 0);
		ring_pop(&n->props_ring);
		apply_done(n, p.cookie, status, p.index, NULL);
	}
}

void apply_fail_all(sr_node *n, int status)
{
	apply_fail_through(n, UINT64_MAX, status);
}

void apply_free(sr_node *n)
{
	hook_free(n->alloc, n->props);
	n->props = NULL;
	memset(&n->props_ring, 0, sizeof(n->props_ring));
}
