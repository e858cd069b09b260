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
	if (pr->match == sr_log_last(&n->log))
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

int sr_node_transfer(sr_node *n, sr_id target)
{
	const sr_member *m;
	struct progress *pr;
	int rv = node_check_running(n);

	if (rv)
		return rv;
	if (n->role != SR_LEADER)
		return SR_ENOTLEADER;
	if (n->transfer_target)
		return SR_ETRANSFER;
	if (target == 0) {
		/* the most up-to-date voter */
		sr_index best = 0;
		for (uint32_t i = 0; i < n->n_prs; i++) {
			if (n->prs[i].role == SR_ROLE_VOTER &&
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
	m = sr_membership_find(&n->conf, target);
	if (!m || m->role == SR_ROLE_REMOVED)
		return SR_ENOTFOUND;
	if (m->role != SR_ROLE_VOTER)
		return SR_EINVAL;
	pr = node_progress(n, target);
	if (!pr)
		return SR_ENOTFOUND;
	node_enter(n);
	n->transfer_target = target;
	n->transfer_deadline = n->now + n->cfg.election_timeout_ms;
	if (pr->match == sr_log_last(&n->log))
		transfer_send_timeout_now(n, pr);
	else
		repl_send_append(n, pr, 0);
	node_leave(n);
	return 0;
}
