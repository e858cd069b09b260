/*
 * role.c — the durable term and vote, the election timer, and falling back
 * to follower (Raft §5.1, §5.2).
 *
 * Every module that learns of a newer term or a live leader (replies,
 * appends, snapshots, CheckQuorum, a removed leader stepping down) comes
 * here, so role.c sits below all of them in the module graph; winning an
 * election is election.c's business and becoming leader replication.c's.
 *
 * Durability: the new term and the vote are made durable through
 * set_hard_state() before any message that depends on them is sent.
 */
#include "node.h"

int role_set_hard_state(sr_node *n, sr_term term, sr_id vote)
{
	int rv;
	if (term == n->term && vote == n->vote)
		return 0;
	rv = n->cfg.storage->set_hard_state(n->cfg.storage_ctx, term, vote);
	if (rv) {
		node_stop(n, rv, "set_hard_state");
		return rv;
	}
	n->term = term;
	n->vote = vote;
	return 0;
}

void role_reset_timer(sr_node *n)
{
	uint64_t t = n->cfg.election_timeout_ms;
	n->election_deadline = n->now + t + rand_next(&n->rng) % t;
}

void role_become_follower(sr_node *n, sr_term term, sr_id leader)
{
	int changed = n->role != SR_FOLLOWER || n->leader != leader ||
		      n->term != term;
	/* Restart the election timer on hearing from a leader or on leaving
	 * another role — not when a follower merely adopts a higher term
	 * from a vote it denies (§5.2): a node with a stale log that keeps
	 * raising the term must not keep a better one from campaigning. */
	int reset = leader != 0 || n->role != SR_FOLLOWER;
	if (term > n->term) {
		if (role_set_hard_state(n, term, 0))
			return;
		n->verified = 0;
		n->acked = 0;
	}
	if (n->leader != leader || n->role != SR_FOLLOWER)
		n->last_seq = 0; /* a new leader numbers its appends anew */
	n->transfer_target = 0;
	n->role = SR_FOLLOWER;
	n->leader = leader;
	n->uncommitted_bytes = 0;
	if (leader)
		n->leader_heard = n->now;
	if (reset)
		role_reset_timer(n);
	if (changed)
		node_notify(n);
}
