/*
 * election.c — terms, votes and role changes (Raft §5.2, §5.4.1; thesis
 * §9.6 PreVote, §6.2 CheckQuorum and leader stickiness).
 *
 * A follower that hears nothing from a leader for its randomized election
 * timeout (uniform in [T, 2T)) first runs a PreVote round at term + 1
 * without changing its own term; only if a majority would vote for it does
 * it become a candidate, increment its term and ask for real votes.  A
 * node that is not a voter in its configuration never campaigns.
 *
 * Leader stickiness: a node that has heard from a live leader within the
 * election timeout ignores vote requests of a higher term (unless they
 * come from a leadership transfer), so a rejoining node cannot disrupt a
 * healthy cluster.
 *
 * Durability: the new term and the vote are made durable through
 * set_hard_state() before any message that depends on them is sent.
 */
#include <string.h>

#include "node.h"

/* Have we heard from a live leader recently (or are we that leader)? */
static int elect_in_lease(const sr_node *n)
{
	if (n->role == SR_LEADER)
		return n->cfg.check_quorum;
	return n->role == SR_FOLLOWER && n->leader != 0 &&
	       n->now - n->leader_heard < n->cfg.election_timeout_ms;
}

static void elect_send_requests(sr_node *n, int pre, int transfer)
{
	sr_index last = log_last(&n->log);
	sr_term last_term = log_last_term(&n->log);
	for (uint32_t i = 0; i < n->n_prs; i++) {
		struct progress *pr = &n->prs[i];
		sr_msg m;
		if (!pr->sets)
			continue;
		memset(&m, 0, sizeof(m));
		m.type = SR_MSG_VOTE;
		m.to = pr->id;
		m.term = pre ? n->term + 1 : n->term;
		m.u.vote.last_index = last;
		m.u.vote.last_term = last_term;
		m.u.vote.pre = (uint8_t)pre;
		m.u.vote.transfer = (uint8_t)transfer;
		node_send(n, &m);
	}
}

/*
 * May this node campaign?  A voter of its latest configuration may; so may
 * a voter that the latest configuration removes or demotes to learner
 * (sr_node_change, or a joint change's C_new) while that configuration is
 * not committed (thesis §4.2.2): otherwise a leader of two voters that
 * removed itself and lost leadership before the other held the change
 * would leave a cluster in which no one can win — the other needs its
 * vote, and its longer log makes it refuse.  Such a node votes for itself
 * (so it votes for no one else in that term) but does not count that vote.
 */
static int elect_can_campaign(sr_node *n)
{
	sr_membership prev;
	if (n->self_sets)
		return 1;
	if (!sr_membership_find(&n->conf, n->cfg.id) ||
	    n->conf_index <= n->commit)
		return 0;
	conf_previous(n, &prev);
	return quorum_sets_of(&prev, n->cfg.id) != 0;
}

void elect_start(sr_node *n, int pre, int transfer)
{
	/* a node missing entries it acknowledged votes for no one, itself
	 * included (repair.c) */
	if (n->role == SR_STOPPED || !elect_can_campaign(n) || n->repair_until)
		return;
	progress_clear_votes(n);
	n->leader = 0;
	if (pre && n->cfg.pre_vote) {
		n->role = SR_PRECANDIDATE;
		role_reset_timer(n);
		node_log(n, SR_LOG_INFO, "starting pre-vote for term %llu",
			 (unsigned long long)(n->term + 1));
		node_notify(n);
		if (progress_tally_votes(n) == QUORUM_WON) {
			elect_start(n, 0, 0);
			return;
		}
		elect_send_requests(n, 1, 0);
		return;
	}
	if (role_set_hard_state(n, n->term + 1, n->cfg.id))
		return;
	n->role = SR_CANDIDATE;
	n->verified = 0;
	n->acked = 0;
	role_reset_timer(n);
	node_log(n, SR_LOG_INFO, "campaigning%s",
		 transfer ? " (leadership transfer)" : "");
	node_notify(n);
	if (progress_tally_votes(n) == QUORUM_WON) {
		repl_become_leader(n);
		return;
	}
	elect_send_requests(n, 0, transfer);
}

void elect_tick(sr_node *n)
{
	if (n->now < n->election_deadline)
		return;
	if (!elect_can_campaign(n) || n->repair_until) {
		/* learners, removed nodes, nodes outside the configuration
		 * and nodes repairing a damaged log (repair.c) stay quiet */
		role_reset_timer(n);
		return;
	}
	elect_start(n, 1, 0);
}

/*
 * Apply the term rules common to every message (Raft §5.1): adopt a higher
 * term, reject or ignore a lower one.  Returns 1 if the message is to be
 * handled further.
 */
int elect_step_term(sr_node *n, const sr_msg *m)
{
	if (m->term > n->term) {
		sr_id leader = 0;
		if (m->type == SR_MSG_VOTE) {
			if (elect_in_lease(n) && !m->u.vote.transfer) {
				node_log(n, SR_LOG_DEBUG,
					 "ignoring %svote from %llu for term "
					 "%llu: leader is live",
					 m->u.vote.pre ? "pre-" : "",
					 (unsigned long long)m->from,
					 (unsigned long long)m->term);
				return 0;
			}
			if (m->u.vote.pre)
				return 1; /* a PreVote changes no term */
		} else if (m->type == SR_MSG_VOTE_RESP && m->u.vote_resp.pre &&
			   m->u.vote_resp.granted) {
			return 1; /* granted pre-votes carry the proposed term */
		}
		if (m->type == SR_MSG_APPEND || m->type == SR_MSG_SNAPSHOT ||
		    m->type == SR_MSG_TIMEOUT_NOW)
			leader = m->from;
		node_log(n, SR_LOG_INFO, "term %llu from %s of %llu",
			 (unsigned long long)m->term, sr_msg_type_name(m->type),
			 (unsigned long long)m->from);
		role_become_follower(n, m->term, leader);
		return n->role != SR_STOPPED;
	}
	if (m->term < n->term) {
		sr_msg r;
		memset(&r, 0, sizeof(r));
		r.to = m->from;
		if (m->type == SR_MSG_APPEND || m->type == SR_MSG_SNAPSHOT) {
			/* Tell a deposed leader about the newer term, so it
			 * steps down even when it cannot campaign (PreVote). */
			r.type = SR_MSG_APPEND_RESP;
			node_send(n, &r);
		} else if (m->type == SR_MSG_VOTE) {
			/* Deny with the newer term (Figure 2), a vote as a
			 * pre-vote: a candidate that hears terms from no one
			 * else (its configuration dropped the members that
			 * carry them) would otherwise campaign below this
			 * voter's term for ever. */
			r.type = SR_MSG_VOTE_RESP;
			r.u.vote_resp.pre = m->u.vote.pre;
			node_send(n, &r);
		}
		return 0;
	}
	return 1;
}

void elect_handle_vote(sr_node *n, const sr_msg *m)
{
	sr_index last = log_last(&n->log);
	sr_term last_term = log_last_term(&n->log);
	int up_to_date = m->u.vote.last_term > last_term ||
			 (m->u.vote.last_term == last_term &&
			  m->u.vote.last_index >= last);
	int grant;
	sr_msg r;

	memset(&r, 0, sizeof(r));
	r.type = SR_MSG_VOTE_RESP;
	r.to = m->from;
	r.u.vote_resp.pre = m->u.vote.pre;
	/* a store that lost entries compares with what it held (repair.c) */
	up_to_date = up_to_date && repair_vote_ok(n, m->u.vote.last_index,
						  m->u.vote.last_term);
	if (m->u.vote.pre) {
		grant = m->term > n->term && up_to_date;
		r.term = grant ? m->term : n->term;
	} else {
		/* One vote per term, first come first served (§5.2). */
		grant = up_to_date && (n->vote == m->from ||
				       (n->vote == 0 && n->leader == 0));
		if (grant) {
			if (role_set_hard_state(n, n->term, m->from))
				return;
			role_reset_timer(n);
		}
		r.term = n->term;
	}
	r.u.vote_resp.granted = (uint8_t)grant;
	node_log(n, SR_LOG_DEBUG, "%s %svote to %llu", grant ? "grant" : "deny",
		 m->u.vote.pre ? "pre-" : "", (unsigned long long)m->from);
	node_send(n, &r);
}

void elect_handle_vote_resp(sr_node *n, const sr_msg *m)
{
	struct progress *pr;
	int outcome;

	if (m->u.vote_resp.pre ? n->role != SR_PRECANDIDATE
			       : n->role != SR_CANDIDATE)
		return;
	if (m->u.vote_resp.pre && m->u.vote_resp.granted &&
	    m->term != n->term + 1)
		return;
	pr = progress_find(n, m->from);
	if (!pr || !pr->sets || pr->vote != QUORUM_NONE)
		return;
	pr->vote = m->u.vote_resp.granted ? QUORUM_YES : QUORUM_NO;
	outcome = progress_tally_votes(n);
	if (outcome == QUORUM_WON) {
		if (n->role == SR_PRECANDIDATE)
			elect_start(n, 0, 0);
		else
			repl_become_leader(n);
	} else if (outcome == QUORUM_LOST) {
		node_log(n, SR_LOG_INFO, "lost the %selection",
			 n->role == SR_PRECANDIDATE ? "pre-" : "");
		role_become_follower(n, n->term, 0);
	}
}
