/*
 * conf.c — membership in the simulator: what the checker knows of every
 * configuration, the rules it checks about them, and the driver's calls
 * that change membership or transfer leadership.
 *
 * Node ids are slot + 1, so a configuration is three sets of slots
 * (voters, learners, removed) in a struct sim_conf.  The checker keeps a
 * table of every configuration entry any log ever held, keyed by (index,
 * term): log matching makes the pair name one entry.  Each node's latest
 * configuration entry is followed by index as its shadow log changes
 * (sim_node.conf_idx, maintained by check.c), so "the configuration in
 * effect on node i" is one lookup; the committed configuration (the
 * latest configuration entry of the committed prefix) follows the
 * committed prefix.
 *
 * End-to-end checks (always on):
 *
 *   No id reused.  Along the committed prefix, a removed id stays removed
 *   and no member ever disappears; and sr_node_add() of an id the node's
 *   configuration holds, removed ones included, must fail.
 *
 *   Removed servers cannot disrupt.  A node sends a vote request (PreVote
 *   included) or becomes leader only as a voter of its own configuration,
 *   or while the entry that removes it is not committed as far as it
 *   knows (thesis §4.2.2: a server outside its latest configuration may
 *   still be needed to elect a leader until that entry commits).  So a
 *   learner, a node outside every configuration, or a node that knows
 *   its removal committed never campaigns; no node grants a vote to an
 *   id that its configuration, committed as far as it knows, lists as
 *   removed, nor changes its term or role on such an id's vote request;
 *   and no node leads once it knows its removal committed.  TimeoutNow comes
 *   only from a leader, to a voter of its configuration.
 *
 * Rules (skipped by --safety-only):
 *
 *   One server at a time (thesis §4.1).  Each configuration entry differs
 *   from the previous one in the same log by the role of at most one id,
 *   and keeps every id the previous one had.
 *
 *   One change uncommitted.  When a configuration entry is appended, the
 *   log's previous configuration entry is committed (leaders change the
 *   configuration only once the last change committed; a follower's log
 *   is a prefix of some leader's, and commitment only grows).
 *
 *   The committed prefix is durable on a quorum.  See
 *   check_durable_quorum() for how the configuration in effect is chosen.
 *
 *   A leader's commit rests on a majority holding its entry.  When a
 *   leader's commit index moves to C, a majority of the voters of its own
 *   configuration in effect (its latest configuration entry) hold, durably,
 *   the entry at C with the term the leader's log has there — the same
 *   (index, term), not merely some entry at C: an acknowledgement that a
 *   follower carried over from an earlier term (a stale `verified` index)
 *   claims an entry the follower may hold from another leader.
 */
#include <inttypes.h>
#include <string.h>

#include "cluster.h"

static int popcount(uint32_t x)
{
	int n = 0;

	for (; x; x &= x - 1)
		n++;
	return n;
}

/* "n1 n3" for a set of slots. */
static const char *slots_str(uint32_t set, char *buf, size_t cap)
{
	size_t off = 0;

	buf[0] = 0;
	for (int i = 0; i < SIM_MAX_NODES && off < cap; i++)
		if (set >> i & 1)
			off += (size_t)snprintf(buf + off, cap - off, "%sn%d",
						off ? " " : "", i + 1);
	return buf;
}

/* ------------------------------------------------------------------ */
/* The table of configurations                                         */
/* ------------------------------------------------------------------ */

const struct sim_conf *conf_find(const struct cluster *c, sr_index index,
				 sr_term term)
{
	const struct sim_check *k = &c->chk;

	for (size_t i = k->confs_n; i-- > 0;)
		if (k->confs[i].index == index && k->confs[i].term == term)
			return &k->confs[i];
	return NULL;
}

/* Decode a configuration entry into slot sets; 0 or -1 (and a failure). */
static int conf_decode(struct sim_node *sn, const sr_entry *e,
		       struct sim_conf *out)
{
	struct cluster *c = sn->c;
	sr_membership m;

	memset(out, 0, sizeof(*out));
	out->index = e->index;
	out->term = e->term;
	if (sr_membership_decode(&m, e->data, e->len)) {
		sim_fail(c,
			 "n%d holds a malformed configuration entry %" PRIu64,
			 sn->slot + 1, e->index);
		return -1;
	}
	for (uint32_t j = 0; j < m.n; j++) {
		sr_id id = m.members[j].id;
		uint32_t bit;

		if (id < 1 || id > (sr_id)c->n) {
			sim_fail(c,
				 "configuration entry %" PRIu64 " names "
				 "node %" PRIu64 ", which does not exist",
				 e->index, id);
			return -1;
		}
		bit = 1u << (id - 1);
		if (m.members[j].new_role) {
			/* joint: C_new's roles; ids C_new drops stay members
			 * (learners here) until the next configuration */
			if (m.members[j].role == SR_ROLE_VOTER)
				out->old_voters |= bit;
			if (m.members[j].new_role == SR_ROLE_VOTER)
				out->voters |= bit;
			else if (m.members[j].role == SR_ROLE_REMOVED)
				out->removed |= bit;
			else
				out->learners |= bit;
		} else if (m.members[j].role == SR_ROLE_VOTER) {
			out->voters |= bit;
		} else if (m.members[j].role == SR_ROLE_LEARNER) {
			out->learners |= bit;
		} else {
			out->removed |= bit;
		}
	}
	return 0;
}

void conf_note(struct sim_node *sn, const sr_entry *e)
{
	struct sim_check *k = &sn->c->chk;
	struct sim_conf cf;

	if (conf_find(sn->c, e->index, e->term) || conf_decode(sn, e, &cf))
		return;
	k->confs = sim_grow(k->confs, &k->confs_cap, k->confs_n + 1,
			    sizeof(*k->confs));
	k->confs[k->confs_n++] = cf;
}

void conf_rescan(struct sim_node *sn)
{
	sr_index j = sn->shadow_last;

	while (j && sn->shadow[j].type != SR_ENTRY_CONFIG)
		j--;
	sn->conf_idx = j;
}

const struct sim_conf *cluster_conf_of(struct cluster *c, int i)
{
	struct sim_node *sn = &c->nodes[i];

	if (!sn->conf_idx || sn->conf_idx > sn->shadow_last)
		return NULL;
	return conf_find(c, sn->conf_idx, sn->shadow[sn->conf_idx].term);
}

/* The initial members: every slot but the spares. */
static uint32_t initial_members(const struct cluster *c)
{
	return (1u << (c->n - c->o.n_spare)) - 1;
}

uint32_t cluster_voters(const struct cluster *c)
{
	return c->chk.conf_known ? c->chk.conf.voters : initial_members(c);
}

uint32_t cluster_members(const struct cluster *c)
{
	return c->chk.conf_known ? c->chk.conf.voters | c->chk.conf.learners
				 : initial_members(c);
}

/* ------------------------------------------------------------------ */
/* Rules                                                               */
/* ------------------------------------------------------------------ */

/* a -> b keeps every id and every removal: 0, or the offending slots */
static uint32_t conf_lost_ids(const struct sim_conf *a,
			      const struct sim_conf *b)
{
	uint32_t all_a = a->voters | a->learners | a->removed;
	uint32_t all_b = b->voters | b->learners | b->removed;

	return (all_a & ~all_b) | (a->removed & ~b->removed);
}

void check_conf_append(struct sim_node *sn, const sr_entry *e)
{
	struct cluster *c = sn->c;
	const struct sim_conf *prev, *cf;
	uint32_t changed;
	char buf[64];

	conf_note(sn, e);
	cf = conf_find(c, e->index, e->term);
	if (!cf || c->safety_only || !sn->conf_idx)
		return; /* the first configuration has no predecessor */
	prev = conf_find(c, sn->conf_idx, sn->shadow[sn->conf_idx].term);
	if (!prev)
		return;
	changed = prev->voters ^ cf->voters;
	if (conf_lost_ids(prev, cf))
		sim_fail(c,
			 "n%d's configuration %" PRIu64 " drops or revives "
			 "%s of configuration %" PRIu64,
			 sn->slot + 1, e->index,
			 slots_str(conf_lost_ids(prev, cf), buf, sizeof(buf)),
			 prev->index);
	else if (prev->old_voters && (cf->old_voters || changed))
		sim_fail(c,
			 "n%d's configuration %" PRIu64 " does not leave joint "
			 "configuration %" PRIu64 " for its C_new",
			 sn->slot + 1, e->index, prev->index);
	else if (cf->old_voters && cf->old_voters != prev->voters)
		sim_fail(c,
			 "n%d's joint configuration %" PRIu64 " has C_old "
			 "voters {%s}, not those of configuration %" PRIu64,
			 sn->slot + 1, e->index,
			 slots_str(cf->old_voters, buf, sizeof(buf)),
			 prev->index);
	else if (!prev->old_voters && !cf->old_voters && popcount(changed) > 1)
		sim_fail(c,
			 "n%d's configuration %" PRIu64 " changes voters %s at "
			 "once without a joint configuration (previous: "
			 "%" PRIu64 ")",
			 sn->slot + 1, e->index,
			 slots_str(changed, buf, sizeof(buf)), prev->index);
	if (c->failed)
		return;
	/* one change at a time: the previous one is committed */
	check_catch_up(sn);
	if (prev->index > c->chk.commit)
		sim_fail(c,
			 "n%d appends configuration %" PRIu64 " while "
			 "configuration %" PRIu64 " is not committed "
			 "(commit %" PRIu64 ")",
			 sn->slot + 1, e->index, prev->index, c->chk.commit);
}

void check_conf_commit(struct sim_node *sn, sr_index from, sr_index to)
{
	struct cluster *c = sn->c;
	struct sim_check *k = &c->chk;
	char buf[64];

	for (sr_index i = from; i <= to && !c->failed; i++) {
		const struct sim_conf *cf;

		if (k->com[i].type != SR_ENTRY_CONFIG)
			continue;
		cf = conf_find(c, i, k->com[i].term);
		if (!cf) {
			sim_fail(c,
				 "committed configuration %" PRIu64 " was "
				 "never "
				 "seen "
				 "appended",
				 i);
			return;
		}
		if (k->conf_known && conf_lost_ids(&k->conf, cf))
			sim_fail(c,
				 "id reused: committed configuration %" PRIu64
				 " drops or revives %s of committed "
				 "configuration %" PRIu64,
				 i,
				 slots_str(conf_lost_ids(&k->conf, cf), buf,
					   sizeof(buf)),
				 k->conf.index);
		k->conf = *cf;
		k->conf_known = 1;
		sim_trace(c, -1,
			  "configuration %" PRIu64 " committed: voters "
			  "{%s}",
			  i, slots_str(cf->voters, buf, sizeof(buf)));
	}
	/* A leader whose log goes on with a newer configuration may have
	 * counted the quorum in that one (it takes effect when appended). */
	k->conf_next_pending = sn->st.role != SR_LEADER || sn->conf_idx > to;
}

/*
 * The committed prefix must survive the loss of any minority: the voters
 * of the committed configuration C that hold its last entry durably must
 * meet every quorum of C.  When the committing leader's log held no later
 * configuration, it counted a majority of C itself, which is required.
 * Otherwise it may have counted a majority of the next configuration C'
 * (one server more or less); a majority of C' holds at least half of C
 * (rounded up), which is what every quorum of C must meet, so that is
 * what is required then.
 */
/* How many of the voters in set hold entry ci with term t durably. */
static int conf_holders(struct cluster *c, uint32_t set, sr_index ci, sr_term t)
{
	int have = 0;

	for (int i = 0; i < c->n; i++) {
		sr_mem_info info;
		sr_entry e;
		int rv;

		if (!(set >> i & 1) || c->nodes[i].external)
			continue;
		/* a durable snapshot covering it holds it too (after a
		 * repair the store may hold the snapshot and no log), and a
		 * store that lost it (cluster_corrupt) still counts: its
		 * acknowledgement stands while it does not vote */
		sr_mem_get_info(c->nodes[i].mem, &info);
		rv = sr_mem_entry(c->nodes[i].mem, ci, 1, &e);
		if (ci <= info.snapshot_index || rv == SR_ECOMPACTED ||
		    (rv == 0 && e.term == t) || ci <= c->nodes[i].lost_last)
			have++;
	}
	return have;
}

void check_leader_commit(struct sim_node *ld, sr_index ci)
{
	struct cluster *c = ld->c;
	const struct sim_conf *cf = cluster_conf_of(c, ld->slot);
	sr_term t;

	if (!cf || c->o.n_external || c->safety_only || ci > ld->shadow_last)
		return;
	t = ld->shadow[ci].term;
	/* while joint, a majority of C_new and one of C_old (§4.3) */
	for (int k = 0; k < 2; k++) {
		uint32_t set = k ? cf->old_voters : cf->voters;
		int have;

		if (!set)
			continue;
		have = conf_holders(c, set, ci, t);
		if (have < popcount(set) / 2 + 1)
			sim_fail(c,
				 "leader n%d commits %" PRIu64 "/t%" PRIu64
				 " held durably by %d of the %d %svoters of "
				 "its configuration %" PRIu64 " only",
				 ld->slot + 1, ci, t, have, popcount(set),
				 k ? "C_old " : "", cf->index);
	}
}

void check_durable_quorum(struct cluster *c)
{
	struct sim_check *k = &c->chk;
	uint32_t voters = cluster_voters(c);
	int have, n = popcount(voters), need;

	if (!k->commit || c->o.n_external || c->safety_only)
		return;
	have = conf_holders(c, voters, k->commit, k->com[k->commit].term);
	need = k->conf_next_pending ? (n + 1) / 2 : n / 2 + 1;
	/* A committed joint configuration: its C_new is all the leaving
	 * configuration counts (conf_next_pending), but until that is
	 * appended every commit needed a majority of C_old too. */
	if (k->conf_known && k->conf.old_voters && !k->conf_next_pending) {
		uint32_t old = k->conf.old_voters;
		int have_old = conf_holders(c, old, k->commit,
					    k->com[k->commit].term);
		if (have_old < popcount(old) / 2 + 1)
			sim_fail(c,
				 "committed entry %" PRIu64 " (t%" PRIu64
				 ") is durable on %d of %d C_old voters only",
				 k->commit, k->com[k->commit].term, have_old,
				 popcount(old));
	}
	if (have < need)
		sim_fail(c,
			 "committed entry %" PRIu64 " (t%" PRIu64 ") is "
			 "durable on %d of %d voters only (%d needed)",
			 k->commit, k->com[k->commit].term, have, n, need);
}

/* ------------------------------------------------------------------ */
/* Elections and transfers                                             */
/* ------------------------------------------------------------------ */

/* Was sn a voter of the configuration before its latest one?  (1 when its
 * shadow no longer shows that one: the checker cannot tell.) */
static int conf_was_voter(struct sim_node *sn)
{
	for (sr_index j = sn->conf_idx; j-- > 1;) {
		const struct sim_conf *p;

		if (j > sn->shadow_last ||
		    sn->shadow[j].type != SR_ENTRY_CONFIG)
			continue;
		p = conf_find(sn->c, j, sn->shadow[j].term);
		return !p || (p->voters | p->old_voters) >> sn->slot & 1;
	}
	return 1;
}

/*
 * Why sn may not campaign (leading = 0) or lead (leading = 1) now, or NULL
 * if it may.  Like a removed voter, a voter that its latest configuration
 * demotes to learner (sr_node_change, a joint change's C_new) may campaign
 * and lead until that configuration commits, then steps down (thesis
 * §4.2.2; lib/election.c).  A leader may also be a learner of a
 * configuration it appended itself and has not seen committed.
 */
static const char *conf_no_vote(struct sim_node *sn, const struct sim_conf *cf,
				int leading)
{
	sr_status st;

	if (!cf)
		return "in no configuration";
	if ((cf->voters | cf->old_voters) >> sn->slot & 1)
		return NULL;
	sr_node_status(sn->node, &st);
	if (cf->learners >> sn->slot & 1)
		return st.commit_index < cf->index &&
				       (leading || conf_was_voter(sn))
			       ? NULL
			       : "a learner";
	if (!(cf->removed >> sn->slot & 1))
		return "absent";
	return st.commit_index >= cf->index ? "removed, committed" : NULL;
}

void check_conf_send(struct sim_node *sn, const sr_msg *m)
{
	struct cluster *c = sn->c;
	const struct sim_conf *cf = cluster_conf_of(c, sn->slot);
	const char *no = m->type == SR_MSG_VOTE ? conf_no_vote(sn, cf, 0)
						: NULL;
	int to = (int)m->to - 1;
	sr_status st;

	if (no)
		sim_fail(c,
			 "n%d asks for a%s vote but is %s in its "
			 "configuration %" PRIu64,
			 sn->slot + 1, m->u.vote.pre ? " pre" : "", no,
			 sn->conf_idx);
	else if (m->type == SR_MSG_VOTE_RESP && m->u.vote_resp.granted && cf &&
		 to >= 0 && to < c->n && cf->removed >> to & 1 &&
		 (sr_node_status(sn->node, &st), st.commit_index >= cf->index))
		sim_fail(c,
			 "n%d grants its%s vote to n%d, removed in its "
			 "committed configuration %" PRIu64,
			 sn->slot + 1, m->u.vote_resp.pre ? " pre" : "", to + 1,
			 sn->conf_idx);
	else if (m->type == SR_MSG_TIMEOUT_NOW) {
		sr_node_status(sn->node, &st);
		if (st.role != SR_LEADER || !cf || to < 0 || to >= c->n ||
		    !(cf->voters >> to & 1))
			sim_fail(c,
				 "n%d (%s) sends TimeoutNow to n%d, not a "
				 "voter of its configuration %" PRIu64,
				 sn->slot + 1, sr_role_name(st.role), to + 1,
				 sn->conf_idx);
	}
}

/*
 * A vote request from an id the receiver knows was removed (by a
 * committed configuration) changes nothing: not its term, not its role.
 */
void check_conf_recv(struct sim_node *sn, const sr_msg *m, int after)
{
	struct cluster *c = sn->c;
	const struct sim_conf *cf;
	int from = (int)m->from - 1;
	sr_status st;

	if (m->type != SR_MSG_VOTE || from < 0 || from >= c->n || !sn->node)
		return;
	sr_node_status(sn->node, &st);
	if (!after) {
		cf = cluster_conf_of(c, sn->slot);
		sn->removed_vote_term = 0;
		if (cf && cf->removed >> from & 1 &&
		    st.commit_index >= cf->index)
			sn->removed_vote_term = st.term;
		sn->removed_vote_role = st.role;
		return;
	}
	if (sn->removed_vote_term && (st.term != sn->removed_vote_term ||
				      st.role != sn->removed_vote_role))
		sim_fail(c,
			 "removed n%d disrupts n%d: %s t%" PRIu64
			 " -> %s t%" PRIu64 " on its vote request",
			 from + 1, sn->slot + 1,
			 sr_role_name(sn->removed_vote_role),
			 sn->removed_vote_term, sr_role_name(st.role), st.term);
}

void check_conf_leader(struct sim_node *sn)
{
	struct cluster *c = sn->c;
	const struct sim_conf *cf = cluster_conf_of(c, sn->slot);
	const char *no = conf_no_vote(sn, cf, 1);

	/* A node whose removal is committed without its knowing may still
	 * win an election among voters that do not know it either (thesis
	 * §4.2.2); it steps down when its first commit tells it.  Safety
	 * does not depend on it: it leads only with a quorum of the new
	 * configuration, which it does not count itself in. */
	if (no)
		sim_fail(c,
			 "n%d leads term %" PRIu64 " but is %s in its "
			 "configuration %" PRIu64,
			 sn->slot + 1, sn->st.term, no, sn->conf_idx);
}

/* ------------------------------------------------------------------ */
/* The driver's calls                                                  */
/* ------------------------------------------------------------------ */

/* Trace and count the outcome of a change; only ENOMEM is unexpected. */
static int conf_outcome(struct cluster *c, int i, const char *what, int slot,
			int rv, uint64_t *ok, uint64_t *refused)
{
	sim_trace(c, i, "%s n%d: %s", what, slot + 1,
		  rv ? sr_strerror(rv) : "accepted");
	if (rv == SR_ENOMEM)
		sim_fail(c, "n%d: %s n%d: out of memory", i + 1, what,
			 slot + 1);
	if (rv)
		(*refused)++;
	else
		(*ok)++;
	check_step(c);
	return rv;
}

/* A node a store error stopped answers every call with SR_ESHUTDOWN
 * first (docs/api.md, the error table): not a wrong answer to an add. */
static int node_stopped(const struct sim_node *sn)
{
	sr_status st;

	sr_node_status(sn->node, &st);
	return st.role == SR_STOPPED;
}

int cluster_add(struct cluster *c, int i, int slot, int auto_promote)
{
	struct sim_node *sn = &c->nodes[i];
	char addr[32];
	int known, rv;

	if (!sn->node)
		return SR_ESHUTDOWN;
	sim_host_tick(c, sn);
	known = sr_membership_find(sr_node_membership(sn->node),
				   (sr_id)slot + 1) != NULL;
	snprintf(addr, sizeof(addr), "sim:%d", slot + 1);
	rv = sr_node_add(sn->node, (sr_id)slot + 1, addr, auto_promote);
	if (known && rv == 0)
		sim_fail(c,
			 "id reused: n%d adds n%d, which its configuration "
			 "already holds",
			 i + 1, slot + 1);
	else if (known && rv != SR_EEXIST && rv != SR_ECONFPENDING &&
		 rv != SR_ETRANSFER && rv != SR_ENOTLEADER &&
		 !(rv == SR_ESHUTDOWN && node_stopped(sn)))
		sim_fail(c, "n%d refuses to add n%d (in use) with %s, not %s",
			 i + 1, slot + 1, sr_strerror(rv),
			 sr_strerror(SR_EEXIST));
	return conf_outcome(c, i, auto_promote ? "add (auto-promote)" : "add",
			    slot, rv, &c->n_conf_ok, &c->n_conf_refused);
}

int cluster_promote(struct cluster *c, int i, int slot)
{
	struct sim_node *sn = &c->nodes[i];

	if (!sn->node)
		return SR_ESHUTDOWN;
	sim_host_tick(c, sn);
	return conf_outcome(c, i, "promote", slot,
			    sr_node_promote(sn->node, (sr_id)slot + 1),
			    &c->n_conf_ok, &c->n_conf_refused);
}

int cluster_remove(struct cluster *c, int i, int slot)
{
	struct sim_node *sn = &c->nodes[i];

	if (!sn->node)
		return SR_ESHUTDOWN;
	sim_host_tick(c, sn);
	return conf_outcome(c, i, "remove", slot,
			    sr_node_remove(sn->node, (sr_id)slot + 1),
			    &c->n_conf_ok, &c->n_conf_refused);
}

int cluster_transfer(struct cluster *c, int i, int target)
{
	struct sim_node *sn = &c->nodes[i];

	if (!sn->node)
		return SR_ESHUTDOWN;
	sim_host_tick(c, sn);
	return conf_outcome(
		c, i, "transfer leadership to", target,
		sr_node_transfer(sn->node, target < 0 ? 0 : (sr_id)target + 1),
		&c->n_transfers, &c->n_transfers_refused);
}

/* splitmix64 over conf.c's own stream, seeded from the cluster's seed. */
static uint64_t conf_rand(struct cluster *c)
{
	uint64_t z;

	if (!c->joint_rng)
		c->joint_rng = c->o.seed ^ 0x6a6f696e74ull; /* "joint" */
	z = (c->joint_rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

int cluster_joint_turn(struct cluster *c)
{
	return conf_rand(c) % 5 == 0;
}

int cluster_change(struct cluster *c, int i, const sr_change *chs, size_t n)
{
	struct sim_node *sn = &c->nodes[i];
	int rv, slot = n ? (int)chs[0].id - 1 : -1;

	if (!sn->node)
		return SR_ESHUTDOWN;
	sim_host_tick(c, sn);
	rv = sr_node_change(sn->node, chs, n, NULL);
	if (rv == 0 && sr_membership_is_joint(sr_node_membership(sn->node)))
		c->n_joint++;
	return conf_outcome(c, i, n > 1 ? "change of several, first" : "change",
			    slot, rv, &c->n_conf_ok, &c->n_conf_refused);
}

/*
 * Promote each learner and demote or remove each voter with some chance,
 * keeping at least three voters (as the single-server driver does, so
 * that quorums usually survive the crashes: a C_new of two is stuck while
 * one of them repairs its log); two voter changes or more make it joint.
 * The leader may drop itself.
 */
int cluster_change_random(struct cluster *c, int i)
{
	const sr_membership *m;
	sr_change chs[SIM_MAX_NODES];
	size_t n = 0;
	int voters = 0, keep;

	if (!c->nodes[i].node)
		return SR_ESHUTDOWN;
	m = sr_node_membership(c->nodes[i].node);
	for (uint32_t j = 0; j < m->n; j++)
		voters += m->members[j].role == SR_ROLE_VOTER;
	keep = voters;
	memset(chs, 0, sizeof(chs));
	for (uint32_t j = 0; j < m->n && n < SIM_MAX_NODES; j++) {
		const sr_member *mb = &m->members[j];
		uint64_t x = conf_rand(c) % 6;

		if (mb->role == SR_ROLE_LEARNER && x < 3) {
			chs[n].op = SR_CHANGE_PROMOTE;
			chs[n++].id = mb->id;
			keep++;
		} else if (mb->role == SR_ROLE_VOTER && x < 2 && keep > 3) {
			chs[n].op = x ? SR_CHANGE_REMOVE : SR_CHANGE_DEMOTE;
			chs[n++].id = mb->id;
			keep--;
		}
	}
	if (!n)
		return 0;
	return cluster_change(c, i, chs, n);
}
