/*
 * reconfig.c — membership changes, one server at a time (thesis §4.1,
 * §4.2.3 for learners, and the fix of the single-server algorithm from
 * Ongaro's 2015 note: a leader changes the configuration only after it
 * has committed an entry of its own term).
 *
 * A change is a configuration entry proposed on the leader; like every
 * server, the leader uses the latest configuration in its log from the
 * moment it is appended.  Only one change may be uncommitted at a time.
 *
 * New servers join as learners: they receive the log (and snapshots) but
 * neither vote nor count toward commit.  A learner added with
 * auto_promote is promoted by the leader once its match index has stayed
 * within catchup_entries of the leader's log for catchup_ms.
 *
 * A removed server stays in the configuration as SR_ROLE_REMOVED so its id
 * is never reused; its vote requests are ignored.  A leader that removes
 * itself stops counting its own log toward commit, and steps down once the
 * change is committed.
 */
#include <string.h>

#include "node.h"

static int reconf_propose(sr_node *n, const sr_membership *c)
{
	sr_index index;
	int rv = conf_append(n, c, &index);
	if (rv)
		return rv;
	node_log(n, SR_LOG_INFO, "configuration change at %llu",
		 (unsigned long long)index);
	repl_broadcast(n, 0);
	return 0;
}

int reconf_add(sr_node *n, sr_id id, const char *addr, int auto_promote)
{
	sr_membership c;
	int rv = node_leader_ready(n, LEADER_CHANGE);
	if (rv)
		return rv;
	if (id == 0)
		return SR_EINVAL;
	if (sr_membership_find(&n->conf, id))
		return SR_EEXIST;
	c = n->conf;
	rv = sr_membership_add(&c, id, SR_ROLE_LEARNER, addr);
	if (rv)
		return rv;
	c.members[c.n - 1].auto_promote = auto_promote ? 1 : 0;
	return reconf_propose(n, &c);
}

int reconf_set_role(sr_node *n, sr_id id, uint32_t role)
{
	sr_membership c;
	sr_member *m = NULL;
	uint32_t voters = 0;
	int rv = node_leader_ready(n, LEADER_CHANGE);
	if (rv)
		return rv;
	c = n->conf;
	for (uint32_t i = 0; i < c.n; i++) {
		if (c.members[i].id == id)
			m = &c.members[i];
	}
	if (!m || m->role == SR_ROLE_REMOVED)
		return SR_ENOTFOUND;
	if (role == SR_ROLE_VOTER && m->role == SR_ROLE_VOTER)
		return SR_EINVAL;
	m->role = role;
	m->auto_promote = 0;
	for (uint32_t i = 0; i < c.n; i++)
		voters += c.members[i].role == SR_ROLE_VOTER;
	if (voters == 0)
		return SR_EINVAL; /* removing the last voter */
	return reconf_propose(n, &c);
}

/* Auto-promotion of learners that have caught up. */
void reconf_tick(sr_node *n)
{
	sr_index last = sr_log_last(&n->log);
	for (uint32_t i = 0; i < n->n_prs; i++) {
		struct progress *pr = &n->prs[i];
		const sr_member *m = sr_membership_find(&n->conf, pr->id);
		if (!m || m->role != SR_ROLE_LEARNER || !m->auto_promote)
			continue;
		/* Caught up means close to our log, holding the current
		 * configuration, and heard from within an election timeout. */
		if (last - pr->match > n->cfg.catchup_entries ||
		    pr->match < n->conf_index ||
		    n->now - pr->last_heard >= n->cfg.election_timeout_ms) {
			pr->catchup_since = 0;
			continue;
		}
		if (pr->catchup_since == 0)
			pr->catchup_since = n->now ? n->now : 1;
		if (n->now - pr->catchup_since >= n->cfg.catchup_ms &&
		    node_leader_ready(n, LEADER_CHANGE) == 0) {
			node_log(n, SR_LOG_INFO,
				 "promoting caught-up learner "
				 "%llu",
				 (unsigned long long)pr->id);
			(void)reconf_set_role(n, pr->id, SR_ROLE_VOTER);
			return; /* one change at a time */
		}
	}
}

/* A leader removed by a committed change steps down. */
void reconf_after_commit(sr_node *n)
{
	if (n->role == SR_LEADER && !n->self_sets &&
	    n->conf_index <= n->commit) {
		node_log(n, SR_LOG_INFO,
			 "removed from the configuration: "
			 "stepping down");
		role_become_follower(n, n->term, 0);
	}
}

int sr_node_recover(sr_node *n, const sr_membership *conf)
{
	int rv;
	if (n->started)
		return SR_ESTATE;
	rv = conf_check(n, conf);
	if (rv)
		return rv;
	if (n->have_bootstrap || n->have_recover)
		return SR_EEXIST;
	n->recover = *conf;
	n->have_recover = 1;
	return 0;
}

/* At start: write the forced configuration in a new term (so the entry
 * cannot collide with any leader's) after the log. */
int reconf_write_recovery(sr_node *n)
{
	sr_index index;
	int rv;

	n->have_recover = 0;
	rv = role_set_hard_state(n, n->term + 1, 0);
	if (rv == 0)
		rv = conf_append(n, &n->recover, &index);
	if (rv)
		return rv;
	node_log(n, SR_LOG_WARN,
		 "forced configuration of %u members written "
		 "at %llu (term %llu)",
		 n->recover.n, (unsigned long long)index,
		 (unsigned long long)n->term);
	return 0;
}
