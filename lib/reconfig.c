/*
 * reconfig.c — membership changes (thesis §4.1 for one server at a time,
 * §4.3 for joint consensus, §4.2.3 for learners, and the fix of the
 * single-server algorithm from Ongaro's 2015 note: a leader changes the
 * configuration only after it has committed an entry of its own term).
 *
 * A change is a configuration entry proposed on the leader; like every
 * server, the leader uses the latest configuration in its log from the
 * moment it is appended.  Only one change may be in flight at a time.
 *
 * sr_node_change() takes a set of changes.  When they change the voters
 * by at most one server, one configuration entry carries them: every
 * majority of the old voters meets every majority of the new ones.
 * Otherwise two majorities could decide apart, so the leader goes through
 * a joint configuration C_old,new (each member with its old role and its
 * new one): while it is in effect, an election or a commit needs a
 * majority of the old voters and one of the new (quorum.c).  When the
 * joint entry commits, the leader — whichever leader holds it then —
 * appends C_new on its own (reconf_after_commit); until C_new commits no
 * other change is accepted.  A leader outside C_new's voters keeps
 * leading through the joint phase, counting itself in C_old only, and
 * steps down once C_new commits.
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

static int reconf_propose(sr_node *n, const sr_membership *c,
			  sr_index *index_out)
{
	sr_index index;
	int rv = conf_append(n, c, &index);
	if (rv)
		return rv;
	node_log(n, SR_LOG_INFO, "%sconfiguration change at %llu",
		 sr_membership_is_joint(c) ? "joint " : "",
		 (unsigned long long)index);
	repl_broadcast(n, 0);
	if (index_out)
		*index_out = index;
	return 0;
}

/* Apply one change to the configuration c being built. */
static int reconf_apply(sr_membership *c, const sr_change *ch)
{
	sr_member *m = NULL;
	int rv;

	for (uint32_t i = 0; i < c->n; i++)
		if (c->members[i].id == ch->id)
			m = &c->members[i];
	if (ch->op == SR_CHANGE_ADD_LEARNER || ch->op == SR_CHANGE_ADD_VOTER) {
		if (ch->id == 0)
			return SR_EINVAL;
		if (m)
			return SR_EEXIST; /* in use, or removed: never reused */
		rv = sr_membership_add(c, ch->id,
				       ch->op == SR_CHANGE_ADD_VOTER
					       ? SR_ROLE_VOTER
					       : SR_ROLE_LEARNER,
				       ch->addr);
		if (rv == 0)
			c->members[c->n - 1]
				.auto_promote = ch->op ==
							SR_CHANGE_ADD_LEARNER &&
						ch->auto_promote;
		return rv;
	}
	if (ch->op < SR_CHANGE_PROMOTE || ch->op > SR_CHANGE_REMOVE)
		return SR_EINVAL;
	if (!m || m->role == SR_ROLE_REMOVED)
		return SR_ENOTFOUND;
	if ((ch->op == SR_CHANGE_PROMOTE && m->role != SR_ROLE_LEARNER) ||
	    (ch->op == SR_CHANGE_DEMOTE && m->role != SR_ROLE_VOTER))
		return SR_EINVAL;
	m->role = ch->op == SR_CHANGE_PROMOTE  ? SR_ROLE_VOTER
		  : ch->op == SR_CHANGE_DEMOTE ? SR_ROLE_LEARNER
					       : SR_ROLE_REMOVED;
	m->auto_promote = 0;
	return 0;
}

/* How many ids are voters in exactly one of a and b (b extends a). */
static uint32_t reconf_voters_changed(const sr_membership *a,
				      const sr_membership *b)
{
	uint32_t changed = 0;
	for (uint32_t i = 0; i < b->n; i++) {
		int was = i < a->n && a->members[i].role == SR_ROLE_VOTER;
		changed += was != (b->members[i].role == SR_ROLE_VOTER);
	}
	return changed;
}

/*
 * The joint configuration between the configuration in effect and next
 * (which extends it): every member keeps its current role (a new one is
 * a learner of C_old: it receives the log but does not count there) and
 * gains its role in next.
 */
static void reconf_make_joint(const sr_membership *cur, sr_membership *next)
{
	for (uint32_t i = 0; i < next->n; i++) {
		sr_member *m = &next->members[i];
		m->new_role = m->role;
		m->role = i < cur->n ? cur->members[i].role : SR_ROLE_LEARNER;
	}
}

int reconf_change(sr_node *n, const sr_change *changes, size_t count,
		  sr_index *index_out)
{
	sr_membership next;
	uint32_t voters = 0;
	int rv = node_leader_ready(n, LEADER_CHANGE);

	if (rv)
		return rv;
	if (!changes || count == 0 || count > SR_MAX_MEMBERS)
		return SR_EINVAL;
	next = n->conf;
	for (size_t k = 0; k < count; k++) {
		for (size_t j = 0; j < k; j++)
			if (changes[j].id == changes[k].id)
				return SR_EINVAL;
		rv = reconf_apply(&next, &changes[k]);
		if (rv)
			return rv;
	}
	for (uint32_t i = 0; i < next.n; i++)
		voters += next.members[i].role == SR_ROLE_VOTER;
	if (voters == 0)
		return SR_EINVAL; /* removing the last voter */
	/* One voter more or less keeps every majority of the old voters
	 * meeting every majority of the new ones (thesis §4.1): no joint
	 * configuration needed.  Learners never count. */
	if (reconf_voters_changed(&n->conf, &next) > 1)
		reconf_make_joint(&n->conf, &next);
	return reconf_propose(n, &next, index_out);
}

/* The joint configuration committed: enter C_new (thesis §4.3). */
static void reconf_leave_joint(sr_node *n)
{
	sr_membership c = n->conf;
	int rv;
	for (uint32_t i = 0; i < c.n; i++) {
		c.members[i].role = c.members[i].new_role;
		c.members[i].new_role = 0;
	}
	rv = reconf_propose(n, &c, NULL);
	if (rv)
		node_log(n, SR_LOG_WARN, "leaving the joint configuration: %s",
			 sr_strerror(rv));
}

/* Auto-promotion of learners that have caught up. */
void reconf_tick(sr_node *n)
{
	sr_index last = log_last(&n->log);
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
			sr_change ch = { SR_CHANGE_PROMOTE, pr->id, NULL, 0 };
			node_log(n, SR_LOG_INFO,
				 "promoting caught-up learner "
				 "%llu",
				 (unsigned long long)pr->id);
			(void)reconf_change(n, &ch, 1, NULL);
			return; /* one change at a time */
		}
	}
}

/* Once the configuration in effect commits, a leader leaves a joint one,
 * and a leader that is no voter of it steps down. */
void reconf_after_commit(sr_node *n)
{
	/* called at the end of every engine call: the usual leader leaves
	 * at the second test */
	if (n->role != SR_LEADER || !n->conf_leave_due ||
	    n->conf_index > n->commit)
		return;
	if (quorum_is_joint(&n->quorum)) {
		reconf_leave_joint(n);
	} else if (!n->self_sets) {
		node_log(n, SR_LOG_INFO,
			 "removed from the configuration: "
			 "stepping down");
		role_become_follower(n, n->term, 0);
	}
}

int sr_node_recover(sr_node *n, const sr_membership *conf)
{
	int rv = conf_check_given(n, conf, "recover");
	if (rv)
		return rv;
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
