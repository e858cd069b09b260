/*
 * client.c — what clients of the simulated cluster do and see: proposals
 * and their outcomes, and linearizable reads.
 *
 * Proposals.  cluster_propose() gives every payload a proposal id (its
 * first bytes), so the checker recognizes it wherever it is applied.
 * Every outcome is recorded: refused at once, or done() with 0 (applied
 * at the index it names), SR_EDROPPED (never applied) or SR_EUNKNOWN.
 * check_done() holds the engine to that (check_apply() in check.c holds
 * the applications to it).
 *
 * Reads.  cluster_read() calls sr_node_read_index(); when read_done()
 * reports success the client reads every key of the node's state machine
 * (the registers check.c keeps: a write sets key sim_key_of(id) to its
 * proposal id).  Every call and return takes a tick of the history clock
 * (cluster.stamp), and lincheck.c checks at the end of a seed that the
 * history of writes and reads is linearizable.  Two rules also pinpoint
 * a stale read at its return (skipped by --safety-only): the read index
 * is at least the highest index acknowledged (done(0) on any node) before
 * the call, and the node's state machine holds every command up to it
 * and has applied the read index.  A read may fail (SR_ENOTLEADER,
 * SR_ENOQUORUM, SR_ETIMEOUT, SR_ESHUTDOWN: the statuses raft.h
 * documents), once.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

/* ------------------------------------------------------------------ */
/* Proposals                                                           */
/* ------------------------------------------------------------------ */

int cluster_propose(struct cluster *c, int i, size_t extra, uint64_t *pid_out)
{
	struct sim_node *sn = &c->nodes[i];
	unsigned char buf[8 + 1024];
	struct sim_prop *p;
	uint64_t pid;
	sr_index index = 0;
	size_t len;
	int rv;

	if (pid_out)
		*pid_out = 0;
	if (!sn->node)
		return SR_ESHUTDOWN;
	if (extra > sizeof(buf) - 8)
		extra = sizeof(buf) - 8;
	if (c->props_n == c->props_cap) {
		c->props_cap = c->props_cap ? c->props_cap * 2 : 256;
		c->props = realloc(c->props, c->props_cap * sizeof(*c->props));
		if (!c->props)
			abort();
	}
	pid = c->props_n + 1;
	buf[0] = SIM_PAYLOAD_MAGIC;
	for (int k = 1; k < 8; k++)
		buf[k] = (unsigned char)(pid >> (8 * (k - 1)));
	for (size_t k = 0; k < extra; k++)
		buf[8 + k] = (unsigned char)sim_rand(c);
	len = 8 + extra;
	sim_host_tick(c, sn);
	/* registered first: done() may run inside sr_node_propose() */
	p = &c->props[c->props_n++];
	memset(p, 0, sizeof(*p));
	p->slot = i;
	p->state = PROP_PENDING;
	p->h = sim_hash(0, buf, len);
	p->inv = ++c->stamp;
	rv = sr_node_propose(sn->node, buf, len, (void *)(uintptr_t)pid,
			     &index);
	p = &c->props[pid - 1];
	if (rv == 0) {
		p->index = index;
		p->term = sn->st.term;
		sim_trace(c, i, "propose #%" PRIu64 " -> index %" PRIu64, pid,
			  index);
		if (pid_out)
			*pid_out = pid;
	} else {
		p->state = PROP_FAILED;
		p->status = rv;
		sim_trace(c, i, "propose #%" PRIu64 " refused: %s", pid,
			  sr_strerror(rv));
	}
	check_step(c);
	return rv;
}

size_t cluster_acked(const struct cluster *c)
{
	size_t n = 0;

	for (size_t i = 0; i < c->props_n; i++)
		n += c->props[i].state == PROP_ACKED;
	return n;
}

void check_done(struct sim_node *sn, uint64_t pid, int status, sr_index index)
{
	struct cluster *c = sn->c;
	struct sim_prop *p;

	if (!pid || pid > c->props_n) {
		sim_fail(c,
			 "n%d reports an outcome for unknown cookie %" PRIu64,
			 sn->slot + 1, pid);
		return;
	}
	p = &c->props[pid - 1];
	if (p->state != PROP_PENDING) {
		sim_fail(c, "n%d reports proposal #%" PRIu64 " (%s) again: %s",
			 sn->slot + 1, pid,
			 p->state == PROP_FAILED ? "refused" : "finished",
			 sr_strerror(status));
		return;
	}
	if (p->slot != sn->slot)
		sim_fail(c, "n%d reports proposal #%" PRIu64 " made on n%d",
			 sn->slot + 1, pid, p->slot + 1);
	p->status = status;
	switch (status) {
	case 0:
		p->state = PROP_ACKED;
		p->resp = ++c->stamp;
		if (index > c->chk.acked_max)
			c->chk.acked_max = index;
		if (p->applied_at != index)
			sim_fail(c,
				 "proposal #%" PRIu64 " acknowledged at index "
				 "%" PRIu64 " but applied at %" PRIu64,
				 pid, index, p->applied_at);
		if (p->index && p->index != index)
			sim_fail(c,
				 "proposal #%" PRIu64 " was appended at "
				 "%" PRIu64 " but "
				 "acknowledged "
				 "at %" PRIu64,
				 pid, p->index, index);
		break;
	case SR_EDROPPED:
		p->state = PROP_DROPPED;
		if (p->applied_at)
			sim_fail(c,
				 "proposal #%" PRIu64 " reported dropped but "
				 "applied at %" PRIu64,
				 pid, p->applied_at);
		break;
	case SR_EUNKNOWN:
		p->state = PROP_UNKNOWN;
		break;
	default:
		p->state = PROP_FAILED;
		sim_fail(c,
			 "proposal #%" PRIu64 " finished with %s, which "
			 "done() may not report",
			 pid, sr_strerror(status));
	}
}

/* ------------------------------------------------------------------ */
/* Reads                                                               */
/* ------------------------------------------------------------------ */

int cluster_read(struct cluster *c, int i, uint64_t *rid_out)
{
	struct sim_node *sn = &c->nodes[i];
	struct sim_read *r;
	uint64_t rid;
	int rv;

	if (rid_out)
		*rid_out = 0;
	if (!sn->node)
		return SR_ESHUTDOWN;
	c->reads = sim_grow(c->reads, &c->reads_cap, c->reads_n + 1,
			    sizeof(*c->reads));
	rid = c->reads_n + 1;
	sim_host_tick(c, sn);
	/* registered first: read_done() may run inside the call */
	r = &c->reads[c->reads_n++];
	r->slot = i;
	r->state = READ_PENDING;
	r->need = c->chk.acked_max;
	r->at = c->now;
	r->inv = ++c->stamp;
	rv = sr_node_read_index(sn->node, (void *)(uintptr_t)rid);
	r = &c->reads[rid - 1];
	if (rv == 0) {
		sim_trace(c, i, "read #%" PRIu64 " (must see %" PRIu64 ")", rid,
			  r->need);
		if (rid_out)
			*rid_out = rid;
	} else {
		if (r->state != READ_PENDING)
			sim_fail(c,
				 "n%d refuses read #%" PRIu64 " (%s) after "
				 "reporting it done",
				 i + 1, rid, sr_strerror(rv));
		r->state = READ_REFUSED;
		r->status = rv;
		c->n_reads_refused++;
		sim_trace(c, i, "read #%" PRIu64 " refused: %s", rid,
			  sr_strerror(rv));
	}
	check_step(c);
	return rv;
}

/* The read succeeded: does the node's state hold what it must? */
static void read_check_state(struct sim_node *sn, uint64_t rid,
			     const struct sim_read *r)
{
	struct cluster *c = sn->c;
	sr_status st;

	/* rules: the end-to-end property is lincheck.c's */
	if (c->safety_only)
		return;
	sr_node_status(sn->node, &st);
	if (r->index < r->need)
		sim_fail(c,
			 "linearizability: n%d's read #%" PRIu64 " has read "
			 "index %" PRIu64 " below %" PRIu64 ", acknowledged "
			 "before it began",
			 sn->slot + 1, rid, r->index, r->need);
	else if (sn->fsm.index < r->need)
		sim_fail(c,
			 "linearizability: n%d serves read #%" PRIu64 " with "
			 "its state machine at command %" PRIu64
			 ", before %" PRIu64 " acknowledged before the read "
			 "began",
			 sn->slot + 1, rid, sn->fsm.index, r->need);
	else if (st.applied_index < r->index)
		sim_fail(c,
			 "n%d completes read #%" PRIu64 " at index %" PRIu64
			 " having applied %" PRIu64 " only",
			 sn->slot + 1, rid, r->index, st.applied_index);
}

void check_read_done(struct sim_node *sn, uint64_t rid, int status,
		     sr_index index)
{
	struct cluster *c = sn->c;
	struct sim_read *r;

	if (!rid || rid > c->reads_n) {
		sim_fail(c, "n%d reports unknown read #%" PRIu64, sn->slot + 1,
			 rid);
		return;
	}
	r = &c->reads[rid - 1];
	if (r->state != READ_PENDING || r->slot != sn->slot) {
		sim_fail(c, "n%d reports read #%" PRIu64 " of n%d again: %s",
			 sn->slot + 1, rid, r->slot + 1,
			 status ? sr_strerror(status) : "ok");
		return;
	}
	r->status = status;
	r->index = index;
	switch (status) {
	case 0:
		r->state = READ_OK;
		r->resp = ++c->stamp;
		c->n_reads_ok++;
		/* the client reads every key from the node's state machine */
		memcpy(r->val, sn->fsm.kv, sizeof(r->val));
		if (sn->node)
			read_check_state(sn, rid, r);
		break;
	case SR_ENOTLEADER:
	case SR_ENOQUORUM:
	case SR_ETIMEOUT:
	case SR_ESHUTDOWN:
		r->state = READ_FAILED;
		c->n_reads_failed++;
		break;
	default:
		r->state = READ_FAILED;
		sim_fail(c,
			 "n%d finishes read #%" PRIu64 " with %s, which "
			 "read_done() may not report",
			 sn->slot + 1, rid, sr_strerror(status));
	}
}
