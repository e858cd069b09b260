/*
 * transfer.c — leadership transfer (thesis §3.10).
 *
 * The leader stops accepting proposals, brings the target's log up to its
 * own, and sends it TimeoutNow; the target then campaigns at once, skipping
 * PreVote, and its vote requests carry a transfer flag that lets voters
 * ignore leader stickiness.  The transfer ends when the leader steps down
 * (it sees the target's higher term) or is abandoned after an election
 * timeout, after which proposals are accepted again.
 */
#include <string.h>

#include "node.h"

static void transfer_send_timeout_now(sr_node *n, struct progress *pr)
{
	sr_msg m;
	memset(&m, 0, sizeof(m));
	m.type = SR_MSG_TIMEOUT_NOW;
	m.to = pr->id;
	node_log(n, SR_LOG_INFO, "transferring leadership to %llu",
		 (unsigned long long)pr->id);
	node_send(n, &m);
}

/* Called when pr's match may have moved. */
void transfer_check(sr_node *n, struct progress *pr)
{
	if (n->role != SR_LEADER || n->transfer_target != pr->id)
		return;
	if (pr->match == log_last(&n->log))
		transfer_send_timeout_now(n, pr);
}

void transfer_tick(sr_node *n)
{
	if (n->transfer_target && n->now >= n->transfer_deadline) {
		node_log(n, SR_LOG_WARN,
			 "leadership transfer to %llu timed out",
			 (unsigned long long)n->transfer_target);
		n->transfer_target = 0;
	}
}

int transfer_start(sr_node *n, sr_id target)
{
	struct progress *pr;
	int rv = node_leader_ready(n, LEADER_TRANSFER);

	if (rv)
		return rv;
	if (target == 0) {
		/* the most up-to-date voter */
		sr_index best = 0;
		for (uint32_t i = 0; i < n->n_prs; i++) {
			if ((n->prs[i].sets & QUORUM_IN) &&
			    (target == 0 || n->prs[i].match > best)) {
				target = n->prs[i].id;
				best = n->prs[i].match;
			}
		}
		if (target == 0)
			return SR_ENOTFOUND;
	}
	if (target == n->cfg.id)
		return SR_EINVAL;
	pr = progress_find(n, target); /* members but removed ones */
	if (!pr)
		return SR_ENOTFOUND;
	if (!(pr->sets & QUORUM_IN))
		return SR_EINVAL; /* a learner, or a voter a joint change drops */
	n->transfer_target = target;
	n->transfer_deadline = n->now + n->cfg.election_timeout_ms;
	if (pr->match == log_last(&n->log))
		transfer_send_timeout_now(n, pr);
	else
		repl_send_append(n, pr, 0);
	return 0;
}
