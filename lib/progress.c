/*
 * progress.c — the leader's record of each peer, and the quorum questions
 * asked of them (after etcd-raft's tracker).
 *
 * There is one record per member of the configuration in effect other
 * than this node and removed ids (n->prs); progress_rebuild() follows
 * every configuration change, keeping the records of members that stay.
 * Each record carries the voter sets its member votes in (quorum.h), and
 * n->self_sets says the same of this node, so that counting a majority
 * never searches the membership.
 *
 * Every decision that needs a quorum asks here, and here only the values
 * are gathered; quorum.c does the arithmetic: the index durable on a
 * majority (commit), the heartbeat a majority echoed (ReadIndex), the
 * votes (elections) and who was heard from (CheckQuorum).
 */
#include <string.h>

#include "node.h"

struct progress *progress_find(sr_node *n, sr_id id)
{
	for (uint32_t i = 0; i < n->n_prs; i++)
		if (n->prs[i].id == id)
			return &n->prs[i];
	return NULL;
}

void progress_reset(sr_node *n, struct progress *pr)
{
	pr->state = SR_PROGRESS_PROBE;
	pr->match = 0;
	pr->match_seq = 0;
	pr->next = log_last(&n->log) + 1;
	pr->probe_sent = 0;
	pr->recent_active = 1;
	ring_clear(&pr->infl_ring);
	pr->infl_bytes = 0;
}

void progress_free(sr_node *n, struct progress *pr)
{
	hook_free(n->alloc, pr->infl);
	pr->infl = NULL;
	memset(&pr->infl_ring, 0, sizeof(pr->infl_ring));
}

void progress_free_all(sr_node *n)
{
	for (uint32_t i = 0; i < n->n_prs; i++)
		progress_free(n, &n->prs[i]);
	hook_free(n->alloc, n->prs);
	n->prs = NULL;
	n->n_prs = 0;
}

/* Records for the members of n->conf, keeping those of members that stay. */
void progress_rebuild(sr_node *n)
{
	const sr_membership *c = &n->conf;
	struct progress *np = NULL;
	uint32_t k = 0;

	if (c->n) {
		np = hook_malloc(n->alloc, c->n * sizeof(*np));
		if (!np) {
			node_stop(n, SR_ENOMEM, "configuration change");
			return;
		}
	}
	for (uint32_t i = 0; i < c->n; i++) {
		const sr_member *m = &c->members[i];
		struct progress *old;
		if (m->id == n->cfg.id || m->role == SR_ROLE_REMOVED)
			continue;
		old = progress_find(n, m->id);
		if (old) {
			np[k] = *old;
			old->infl = NULL; /* moved */
		} else {
			memset(&np[k], 0, sizeof(np[k]));
			np[k].id = m->id;
			progress_reset(n, &np[k]);
			np[k].last_heard = n->now;
		}
		np[k].role = m->role;
		np[k].sets = quorum_sets_of(c, m->id);
		k++;
	}
	progress_free_all(n);
	n->prs = np;
	n->n_prs = k;
	n->self_sets = quorum_sets_of(c, n->cfg.id);
	quorum_init(&n->quorum, c);
	n->conf_leave_due = !n->self_sets || quorum_is_joint(&n->quorum);
	n->commit_moved = 1;
}

struct progress *progress_heard_from(sr_node *n, const sr_msg *m)
{
	struct progress *pr;
	if (n->role != SR_LEADER || m->term != n->term)
		return NULL;
	pr = progress_find(n, m->from);
	if (pr) {
		pr->recent_active = 1; /* for CheckQuorum */
		pr->last_heard = n->now;
	}
	return pr;
}

int progress_is_voter(sr_node *n, sr_id id)
{
	const struct progress *pr;
	if (id == n->cfg.id)
		return n->self_sets != 0;
	pr = progress_find(n, id);
	return pr && pr->sets;
}

/* What the quorum questions count, per record. */
enum { PR_MATCH, PR_SEQ, PR_VOTE, PR_ACTIVE };

/* Gather one value per voter, this node's being self.  (The node's three
 * fields come as arguments: the call is on every acknowledgement, and
 * loading them in the caller keeps it as cheap whatever sr_node's
 * layout.) */
static uint32_t progress_acks_of(const struct progress *prs, uint32_t n_prs,
				 uint32_t self_sets, int what, uint64_t self,
				 struct quorum_ack *acks)
{
	uint32_t k = 0;
	if (self_sets) {
		acks[k].value = self;
		acks[k++].sets = self_sets;
	}
	for (uint32_t i = 0; i < n_prs; i++) {
		const struct progress *pr = &prs[i];
		if (!pr->sets)
			continue;
		switch (what) {
		case PR_MATCH:
			acks[k].value = pr->match;
			break;
		case PR_SEQ:
			acks[k].value = pr->acked_seq;
			break;
		case PR_VOTE:
			acks[k].value = pr->vote;
			break;
		default:
			acks[k].value = pr->recent_active ? QUORUM_YES
							  : QUORUM_NONE;
			break;
		}
		acks[k++].sets = pr->sets;
	}
	return k;
}

static uint32_t progress_acks(const sr_node *n, int what, uint64_t self,
			      struct quorum_ack *acks)
{
	return progress_acks_of(n->prs, n->n_prs, n->self_sets, what, self,
				acks);
}

sr_index progress_quorum_match(const sr_node *n)
{
	struct quorum_ack acks[SR_MAX_MEMBERS + 1];
	uint32_t k = progress_acks(n, PR_MATCH, n->durable, acks);
	return quorum_agreed(&n->quorum, acks, k);
}

uint64_t progress_quorum_seq(const sr_node *n)
{
	struct quorum_ack acks[SR_MAX_MEMBERS + 1];
	uint32_t k = progress_acks(n, PR_SEQ, UINT64_MAX, acks);
	return quorum_agreed(&n->quorum, acks, k);
}

int progress_tally_votes(const sr_node *n)
{
	struct quorum_ack acks[SR_MAX_MEMBERS + 1];
	uint32_t k = progress_acks(n, PR_VOTE, QUORUM_YES, acks);
	return quorum_tally(&n->quorum, acks, k);
}

void progress_clear_votes(sr_node *n)
{
	for (uint32_t i = 0; i < n->n_prs; i++)
		n->prs[i].vote = QUORUM_NONE;
}

int progress_quorum_active(sr_node *n)
{
	struct quorum_ack acks[SR_MAX_MEMBERS + 1];
	uint32_t k = progress_acks(n, PR_ACTIVE, QUORUM_YES, acks);
	for (uint32_t i = 0; i < n->n_prs; i++)
		n->prs[i].recent_active = 0;
	return quorum_tally(&n->quorum, acks, k) == QUORUM_WON;
}

int progress_self_decides(const sr_node *n)
{
	struct quorum_ack self = { QUORUM_YES, n->self_sets };
	return n->self_sets && quorum_tally(&n->quorum, &self, 1) == QUORUM_WON;
}
