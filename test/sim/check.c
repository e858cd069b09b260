/*
 * check.c — Raft's safety properties, checked as the simulation runs.
 *
 * The checker sees every store operation, message, application and
 * acknowledgement of every engine (cluster.c calls it from its wrappers of
 * the vtables) and the status of every engine after every step.  Each
 * property is checked incrementally, in O(1) or close to it per event, so
 * that it can run after every step of thousands of seeds:
 *
 *   Log matching (Raft §5.3).  Each slot keeps a shadow of its log: per
 *   index the entry's term and a chain hash over the entry and every entry
 *   before it.  A global table maps (index, term) to the chain hash of
 *   whatever entry any log ever held there; two logs holding the same
 *   (index, term) with different chain hashes violate log matching.
 *
 *   Election safety.  At most one leader per term, ever.
 *
 *   Commitment rule (§5.4.2).  A leader advances its commit index only to
 *   an entry of its own term: older entries commit with it, never alone.
 *
 *   Leader completeness (§5.4).  The committed prefix is recorded with,
 *   per index, the term of the node that first reported it committed.  A
 *   node seen as leader of term T must hold the prefix committed in terms
 *   below T; when the prefix grows, every leader of a higher term must
 *   hold the new part.  Chain hashes make either check one comparison.
 *
 *   State machine safety.  Whatever is applied at an index, by any node,
 *   in any incarnation, is the same entry; a node applies in increasing
 *   order, only committed entries it holds, and skips no command.
 *
 *   Durability.  The committed prefix is durable (in the store's crash
 *   image) on a quorum of the configuration in effect (conf.c); no leader
 *   truncates its log; no node truncates a committed entry; term and vote
 *   are persisted before a message depends on them, and never go back,
 *   across crashes too.
 *
 *   Acknowledgements and reads (client.c, lincheck.c).  done(0) names
 *   the index where the proposal was applied; a proposal reported dropped
 *   or refused is never applied; no proposal is applied at two indexes;
 *   done() comes once.  The history of writes and reads (the state
 *   machine is a set of registers) is linearizable.
 *
 *   Replies.  An append acknowledgement names only entries the follower
 *   holds durably, with the term the leader's log has there; a snapshot
 *   reply "installed" only an index the follower holds durably; a node
 *   its store stopped sends nothing.
 *
 *   Applied never goes back.  A restore below what the state machine
 *   applied or below the node's commit fails; the snapshot restored is
 *   the store's newest.
 *
 *   Membership (conf.c).  Ids are never reused, removed servers never
 *   campaign nor lead, one server and one uncommitted change at a time.
 *   Quorums everywhere are those of the configuration in effect: the
 *   checker follows every log's configuration entries.
 *
 * The first violation stops the run (sim_fail) with a one-line reason.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

uint64_t sim_hash(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;

	h ^= 0xcbf29ce484222325ull;
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

static uint64_t mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t entry_hash(const sr_entry *e)
{
	return sim_hash(mix(e->term * 31 + e->type), e->data, e->len);
}

void *sim_grow(void *p, size_t *cap, size_t need, size_t elem)
{
	size_t ncap = *cap ? *cap : 64;

	if (need <= *cap)
		return p;
	while (ncap < need)
		ncap *= 2;
	p = realloc(p, ncap * elem);
	if (!p)
		abort(); /* the harness has no way on without memory */
	memset((char *)p + *cap * elem, 0, (ncap - *cap) * elem);
	*cap = ncap;
	return p;
}

/* ------------------------------------------------------------------ */
/* The (index, term) -> chain hash table                               */
/* ------------------------------------------------------------------ */

static struct lm_slot *lm_find(struct sim_check *k, sr_index i, sr_term t)
{
	size_t mask = k->lm_cap - 1, h = (size_t)mix(i * 1000003u + t) & mask;

	while (k->lm[h].index && (k->lm[h].index != i || k->lm[h].term != t))
		h = (h + 1) & mask;
	return &k->lm[h];
}

static void lm_grow(struct sim_check *k)
{
	struct lm_slot *old = k->lm;
	size_t ocap = k->lm_cap;

	k->lm_cap = ocap ? ocap * 2 : 1024;
	k->lm = calloc(k->lm_cap, sizeof(*k->lm));
	if (!k->lm)
		abort();
	for (size_t i = 0; i < ocap; i++)
		if (old[i].index)
			*lm_find(k, old[i].index, old[i].term) = old[i];
	free(old);
}

/* Record or compare; 0 if consistent. */
static int lm_check(struct sim_check *k, sr_index i, sr_term t, uint64_t h,
		    int insert)
{
	struct lm_slot *s;

	if ((k->lm_n + 1) * 2 > k->lm_cap)
		lm_grow(k);
	s = lm_find(k, i, t);
	if (s->index)
		return s->h == h ? 0 : -1;
	if (!insert)
		return -1;
	s->index = i;
	s->term = t;
	s->h = h;
	k->lm_n++;
	return 0;
}

void check_init(struct cluster *c)
{
	memset(&c->chk, 0, sizeof(c->chk));
	lm_grow(&c->chk);
}

void check_free(struct cluster *c)
{
	free(c->chk.lm);
	free(c->chk.com);
	free(c->chk.app);
	free(c->chk.leader_of);
	free(c->chk.confs);
	memset(&c->chk, 0, sizeof(c->chk));
}

/* ------------------------------------------------------------------ */
/* Store operations                                                    */
/* ------------------------------------------------------------------ */

static void shadow_set(struct sim_node *sn, sr_index i, sr_term t,
		       uint32_t type, uint64_t h)
{
	sn->shadow = sim_grow(sn->shadow, &sn->shadow_cap, i + 1,
			      sizeof(*sn->shadow));
	sn->shadow[i].term = t;
	sn->shadow[i].h = h;
	sn->shadow[i].type = type;
	sn->shadow_last = i;
	if (type == SR_ENTRY_CONFIG)
		sn->conf_idx = i;
}

static const struct sim_chain *shadow_at(const struct sim_node *sn, sr_index i)
{
	static const struct sim_chain none;

	return i && i <= sn->shadow_last ? &sn->shadow[i] : &none;
}

void check_append(struct sim_node *sn, const sr_entry *e, size_t n)
{
	struct cluster *c = sn->c;
	sr_mem_info info;

	sr_mem_get_info(sn->mem, &info);
	for (size_t k = 0; k < n && !c->failed; k++) {
		sr_index i = e[k].index;
		const struct sim_chain *prev = shadow_at(sn, i - 1);
		uint64_t h = mix(prev->h ^ entry_hash(&e[k]));

		if (i != sn->shadow_last + 1)
			sim_fail(c,
				 "n%d appends index %" PRIu64 " after %" PRIu64,
				 sn->slot + 1, i, sn->shadow_last);
		else if (e[k].term < prev->term)
			sim_fail(c,
				 "n%d appends entry %" PRIu64 " of term "
				 "%" PRIu64 " after one of term %" PRIu64,
				 sn->slot + 1, i, e[k].term, prev->term);
		else if (e[k].term > info.term)
			sim_fail(c,
				 "n%d appends entry %" PRIu64 " of term "
				 "%" PRIu64 " while its durable term is "
				 "%" PRIu64,
				 sn->slot + 1, i, e[k].term, info.term);
		else if (lm_check(&c->chk, i, e[k].term, h, 1))
			sim_fail(c,
				 "log matching: n%d holds entry %" PRIu64
				 "/t%" PRIu64 " with a history another log "
				 "holding %" PRIu64 "/t%" PRIu64 " did not "
				 "have",
				 sn->slot + 1, i, e[k].term, i, e[k].term);
		if (!c->failed && e[k].type == SR_ENTRY_CONFIG)
			check_conf_append(sn, &e[k]);
		shadow_set(sn, i, e[k].term, e[k].type, h);
	}
}

/*
 * No leader truncates its log.  A follower may drop a committed entry
 * only while it is behind the term that committed it (a stale leader's
 * append can reach a node that slept through that term; such a node was
 * not among the majority that committed it).  From the committing term
 * on, every leader holds the entry (§5.4.3), so no append can conflict.
 */
void check_truncate(struct sim_node *sn, sr_index from)
{
	struct cluster *c = sn->c;
	sr_mem_info info;
	sr_status st;
	sr_index i;

	if (!sn->node)
		return;
	sr_node_status(sn->node, &st);
	if (st.role == SR_LEADER)
		sim_fail(c,
			 "leader n%d (t%" PRIu64 ") truncates its log "
			 "from %" PRIu64,
			 sn->slot + 1, st.term, from);
	/* entries its snapshot covers are not lost with the log */
	sr_mem_get_info(sn->mem, &info);
	i = from > info.snapshot_index ? from : info.snapshot_index + 1;
	if (i <= c->chk.commit && i <= sn->shadow_last &&
	    sn->shadow[i].h == c->chk.com[i].h && st.term >= c->chk.com[i].by)
		sim_fail(c,
			 "n%d (t%" PRIu64 ") truncates entry %" PRIu64
			 " committed in term %" PRIu64,
			 sn->slot + 1, st.term, i, c->chk.com[i].by);
	if (from && from <= sn->shadow_last)
		sn->shadow_last = from - 1;
	if (sn->conf_idx > sn->shadow_last)
		conf_rescan(sn); /* the engine rolls back to an older one */
}

void check_hard_state(struct sim_node *sn, sr_term term, sr_id vote)
{
	sr_mem_info info;

	sr_mem_get_info(sn->mem, &info);
	if (term < info.term)
		sim_fail(sn->c,
			 "n%d moves its term back from %" PRIu64 " to %" PRIu64,
			 sn->slot + 1, info.term, term);
	else if (term == info.term && info.vote && vote != info.vote)
		sim_fail(sn->c,
			 "n%d changes its vote in term %" PRIu64
			 " from n%" PRIu64 " to n%" PRIu64,
			 sn->slot + 1, term, info.vote, vote);
}

/*
 * The entries up to `upto` are in a snapshot now: the shadow takes the
 * committed ones there (going down from upto until it already agrees,
 * which by the chain hash means it agrees all the way down).
 */
static void shadow_from_snapshot(struct sim_node *sn, sr_index upto)
{
	struct sim_check *k = &sn->c->chk;
	int changed = 0;

	sn->shadow = sim_grow(sn->shadow, &sn->shadow_cap, upto + 1,
			      sizeof(*sn->shadow));
	for (sr_index j = upto; j >= 1; j--) {
		if (j <= sn->shadow_last && sn->shadow[j].h == k->com[j].h)
			break;
		sn->shadow[j].term = k->com[j].term;
		sn->shadow[j].h = k->com[j].h;
		sn->shadow[j].type = k->com[j].type;
		changed = 1;
	}
	if (sn->shadow_last < upto)
		sn->shadow_last = upto;
	if (changed)
		conf_rescan(sn);
}

static void commit_advance(struct cluster *c, struct sim_node *sn);

/*
 * Inside a step (a callback), a node may already have committed more than
 * the checker has seen: take its commit index now.
 */
void check_catch_up(struct sim_node *sn)
{
	if (!sn->node || sn->c->failed)
		return;
	sr_node_status(sn->node, &sn->st);
	if (sn->st.commit_index > sn->c->chk.commit &&
	    sn->st.commit_index <= sn->shadow_last)
		commit_advance(sn->c, sn);
}

void check_compact(struct sim_node *sn, sr_index upto)
{
	struct cluster *c = sn->c;

	check_catch_up(sn);
	if (upto > c->chk.commit) {
		sim_fail(c,
			 "n%d compacts up to %" PRIu64 ", beyond anything "
			 "committed (%" PRIu64 ")",
			 sn->slot + 1, upto, c->chk.commit);
		return;
	}
	if (sn->shadow_last > upto && sn->shadow[upto].h != c->chk.com[upto].h)
		sim_fail(c,
			 "n%d keeps entries after %" PRIu64 " that do not "
			 "follow its snapshot",
			 sn->slot + 1, upto);
	shadow_from_snapshot(sn, upto);
}

void check_restore(struct sim_node *sn, sr_index index, const void *buf,
		   size_t len)
{
	struct cluster *c = sn->c;
	struct sim_check *k = &c->chk;
	uint64_t v[SIM_SNAP_BYTES / 8];
	sr_mem_info info;

	if (len != sizeof(v)) {
		sim_fail(c, "n%d restores a snapshot of %zu bytes (%d written)",
			 sn->slot + 1, len, SIM_SNAP_BYTES);
		return;
	}
	memcpy(v, buf, sizeof(v));
	sr_mem_get_info(sn->mem, &info);
	check_catch_up(sn);
	if (v[0] != index || v[1] > index)
		sim_fail(c,
			 "n%d restores snapshot %" PRIu64 " holding the "
			 "state at %" PRIu64,
			 sn->slot + 1, index, v[0]);
	else if (index > k->commit)
		sim_fail(c,
			 "n%d restores snapshot %" PRIu64 " beyond anything "
			 "committed (%" PRIu64 ")",
			 sn->slot + 1, index, k->commit);
	else if (v[1] && (v[1] >= k->app_cap || k->app[v[1]].state != v[2]))
		sim_fail(c,
			 "state machine safety: n%d restores a state at "
			 "%" PRIu64 " no node had",
			 sn->slot + 1, v[1]);
	/* Applied never goes back within a process: a restore older than
	 * what the state machine applied, or than the node's commit index,
	 * rolls acknowledged state back. */
	else if (index < sn->applied_seen || sn->fsm.index > v[1])
		sim_fail(c,
			 "n%d restores snapshot %" PRIu64 " after applying "
			 "%" PRIu64 ": its state machine goes back",
			 sn->slot + 1, index, sn->applied_seen);
	else if (index < sn->commit_seen)
		sim_fail(c,
			 "n%d restores snapshot %" PRIu64 " older than its "
			 "commit index %" PRIu64,
			 sn->slot + 1, index, sn->commit_seen);
	/* Across restarts: what is restored is the newest durable snapshot
	 * (an older one would roll back what the store already holds). */
	else if (index != info.snapshot_index)
		sim_fail(c,
			 "n%d restores snapshot %" PRIu64 " but its store's "
			 "snapshot is %" PRIu64,
			 sn->slot + 1, index, info.snapshot_index);
	for (sr_index j = v[1] + 1; !c->failed && j <= index; j++)
		if (k->com[j].type == SR_ENTRY_NORMAL)
			sim_fail(c,
				 "n%d's snapshot %" PRIu64 " misses command "
				 "%" PRIu64,
				 sn->slot + 1, index, j);
	sn->fsm.index = v[1];
	sn->fsm.h = v[2];
	sn->fsm.count = v[3];
	for (int key = 0; key < SIM_KEYS; key++)
		sn->fsm.kv[key] = v[4 + key];
	sn->applied_seen = index;
}

/* After a crash: the shadow becomes what the store kept. */
void check_restart(struct sim_node *sn, int insert)
{
	struct cluster *c = sn->c;
	sr_mem_info info;

	sr_mem_get_info(sn->mem, &info);
	if (info.first_index > 1)
		shadow_from_snapshot(sn, info.first_index - 1);
	sn->shadow_last = info.first_index - 1;
	for (sr_index i = info.first_index; i <= info.last_index; i++) {
		sr_entry e;
		uint64_t h;

		if (sr_mem_entry(sn->mem, i, 0, &e))
			break;
		h = mix(shadow_at(sn, i - 1)->h ^ entry_hash(&e));
		if (lm_check(&c->chk, i, e.term, h, insert))
			sim_fail(c,
				 "n%d recovers entry %" PRIu64 "/t%" PRIu64
				 " that no log ever held",
				 sn->slot + 1, i, e.term);
		if (e.type == SR_ENTRY_CONFIG)
			conf_note(sn, &e);
		shadow_set(sn, i, e.term, e.type, h);
	}
	/* a snapshot the log does not lead up to replaces the log (the
	 * truncation that went with it may not have reached the disk) */
	if (info.snapshot_index &&
	    (sn->shadow_last < info.snapshot_index ||
	     sn->shadow[info.snapshot_index].h !=
		     c->chk.com[info.snapshot_index].h)) {
		sn->shadow_last = info.snapshot_index < sn->shadow_last
					  ? info.snapshot_index
					  : sn->shadow_last;
		shadow_from_snapshot(sn, info.snapshot_index);
		sn->shadow_last = info.snapshot_index;
	}
	conf_rescan(sn);
	memset(&sn->fsm, 0, sizeof(sn->fsm));
	sn->commit_seen = 0;
	sn->applied_seen = 0;
	sn->lc_term = 0;
	sn->led_term = 0;
}

/* ------------------------------------------------------------------ */
/* Messages, application, acknowledgements                             */
/* ------------------------------------------------------------------ */

static void check_ack_durable(struct sim_node *sn, sr_index i, const sr_msg *m);
static void check_snap_durable(struct sim_node *sn, sr_index i);

/*
 * Protocol-aware repair.  A node whose store lost entries (cluster_corrupt)
 * may have acknowledged committed entries it no longer holds.  Its vote
 * must still protect them: a vote or pre-vote it grants goes only to a
 * candidate holding every committed entry it held before the loss, and it
 * campaigns only once its own log holds them again.  The highest such
 * entry is the highest index where the chain it held matches the
 * committed chain; the chain hash checks the prefix before it at once.
 */
static int check_lost_vote(struct sim_node *sn, const sr_msg *m)
{
	struct cluster *c = sn->c;
	struct sim_check *k = &c->chk;
	const struct sim_node *who = sn;
	sr_index hi = sn->lost_last < k->commit ? sn->lost_last : k->commit;
	sr_index j = 0;
	int pre;

	if (m->type == SR_MSG_VOTE_RESP && m->u.vote_resp.granted) {
		if (m->to < 1 || m->to > (sr_id)c->n ||
		    c->nodes[m->to - 1].external)
			return 0;
		who = &c->nodes[m->to - 1];
		pre = m->u.vote_resp.pre;
	} else if (m->type == SR_MSG_VOTE) {
		pre = m->u.vote.pre;
	} else {
		return 0;
	}
	if (!sn->lost_h)
		return 0;
	for (sr_index x = hi; x >= sn->lost_first && x > 0; x--)
		if (sn->lost_h[x - sn->lost_first] == k->com[x].h) {
			j = x;
			break;
		}
	if (!j || (j <= who->shadow_last && who->shadow[j].h == k->com[j].h))
		return 0;
	if (who == sn)
		sim_fail(c,
			 "n%d asks for %s while its log lacks committed entry "
			 "%" PRIu64 " it held before its store lost ..%" PRIu64,
			 sn->slot + 1, pre ? "pre-votes" : "votes", j,
			 sn->lost_last);
	else
		sim_fail(c,
			 "n%d grants n%d %s lacking committed entry %" PRIu64
			 ", which n%d held before its store lost ..%" PRIu64,
			 sn->slot + 1, who->slot + 1,
			 pre ? "a pre-vote" : "its vote", j, sn->slot + 1,
			 sn->lost_last);
	return 1;
}

void check_send(struct sim_node *sn, const sr_msg *m)
{
	struct cluster *c = sn->c;
	int pre = (m->type == SR_MSG_VOTE && m->u.vote.pre) ||
		  (m->type == SR_MSG_VOTE_RESP && m->u.vote_resp.pre);
	sr_mem_info info;

	sr_mem_get_info(sn->mem, &info);
	check_conf_send(sn, m);
	if (c->safety_only)
		return;
	if (sn->node) {
		sr_status st;

		sr_node_status(sn->node, &st);
		if (st.role == SR_STOPPED) {
			sim_fail(c, "n%d sends %s after its store stopped it",
				 sn->slot + 1, sr_msg_type_name(m->type));
			return;
		}
	}
	if (sn->lost_last && check_lost_vote(sn, m))
		return;
	if (m->from != sn->id)
		sim_fail(c, "n%d sends a message from n%" PRIu64, sn->slot + 1,
			 m->from);
	else if (!pre && m->term > info.term)
		sim_fail(c,
			 "n%d sends %s in term %" PRIu64 " but its durable "
			 "term is %" PRIu64,
			 sn->slot + 1, sr_msg_type_name(m->type), m->term,
			 info.term);
	else if (m->type == SR_MSG_VOTE && !pre &&
		 (info.term != m->term || info.vote != sn->id))
		sim_fail(c,
			 "n%d campaigns in term %" PRIu64 " without a "
			 "durable vote for itself (t%" PRIu64 " vote n%" PRIu64
			 ")",
			 sn->slot + 1, m->term, info.term, info.vote);
	else if (m->type == SR_MSG_VOTE_RESP && !pre &&
		 m->u.vote_resp.granted &&
		 (info.term != m->term || info.vote != m->to))
		sim_fail(c,
			 "n%d grants n%" PRIu64 " its vote in term %" PRIu64
			 " but its durable vote is n%" PRIu64 " in t%" PRIu64,
			 sn->slot + 1, m->to, m->term, info.vote, info.term);
	else if (m->type == SR_MSG_APPEND_RESP && m->u.append_resp.success &&
		 m->u.append_resp.index)
		check_ack_durable(sn, m->u.append_resp.index, m);
	else if (m->type == SR_MSG_SNAPSHOT_RESP && m->u.snapshot_resp.done)
		check_snap_durable(sn, m->u.snapshot_resp.last_index);
}

/*
 * A snapshot reply "installed" lets the leader set the follower's match
 * to the snapshot's index: the follower must hold everything up to it
 * durably, in a snapshot or in its log (the committed entry there, by
 * log matching everything before it), whatever its commit index says.
 */
static void check_snap_durable(struct sim_node *sn, sr_index i)
{
	struct cluster *c = sn->c;
	sr_mem_info info;
	sr_entry d;
	int rv;

	sr_mem_get_info(sn->mem, &info);
	check_catch_up(sn);
	if (i <= info.snapshot_index)
		return;
	rv = sr_mem_entry(sn->mem, i, 1, &d);
	if (rv == SR_ECOMPACTED)
		return;
	if (rv || i > c->chk.commit || d.term != c->chk.com[i].term)
		sim_fail(c,
			 "n%d answers snapshot %" PRIu64 " installed but holds "
			 "durably only its snapshot %" PRIu64 " and log to "
			 "%" PRIu64,
			 sn->slot + 1, i, info.snapshot_index,
			 info.durable_last);
}

/*
 * A follower acknowledges only entries it holds durably (in its log or
 * in its snapshot, which is durable once written), and only the leader's
 * entries: the entry it holds at the index it names has the term the
 * leader's log has there (an index carried over from an earlier term
 * may name another leader's entry).
 */
static void check_ack_durable(struct sim_node *sn, sr_index i, const sr_msg *m)
{
	struct cluster *c = sn->c;
	sr_entry d, v;
	int rd = sr_mem_entry(sn->mem, i, 1, &d);
	int rv = sr_mem_entry(sn->mem, i, 0, &v);
	sr_mem_info info;
	const struct sim_node *ld;
	sr_index h;

	sr_mem_get_info(sn->mem, &info);
	if (i <= info.snapshot_index)
		return;
	if (rd || rv || d.term != v.term) {
		sim_fail(c,
			 "n%d acknowledges index %" PRIu64 " that it does "
			 "not hold durably (durable t%" PRIu64 ", log t%" PRIu64
			 ")",
			 sn->slot + 1, i, rd ? 0 : d.term, rv ? 0 : v.term);
		return;
	}
	if (m->to < 1 || m->to > (sr_id)c->n)
		return;
	ld = &c->nodes[m->to - 1];
	if (!ld->node || ld->st.role != SR_LEADER || ld->st.term != m->term)
		return;
	/* the hint of a success names the highest index known to match
	 * the leader's log (the leader moves `next` past it): it must be
	 * in the follower's log, with the leader's term there */
	h = m->u.append_resp.hint_index;
	if (h > info.snapshot_index &&
	    (h > sn->shadow_last || h > ld->shadow_last ||
	     sn->shadow[h].term != ld->shadow[h].term)) {
		sim_fail(c,
			 "n%d tells leader n%d of term %" PRIu64 " that its "
			 "log matches up to %" PRIu64 " (its log: last %" PRIu64
			 ", t%" PRIu64 " there; the leader's: last %" PRIu64
			 ", t%" PRIu64 " there)",
			 sn->slot + 1, ld->slot + 1, m->term, h,
			 sn->shadow_last,
			 h <= sn->shadow_last ? sn->shadow[h].term : 0,
			 ld->shadow_last,
			 h <= ld->shadow_last ? ld->shadow[h].term : 0);
		return;
	}
	if (i > ld->shadow_last || ld->shadow[i].term != d.term)
		sim_fail(c,
			 "n%d acknowledges %" PRIu64 "/t%" PRIu64 " to leader "
			 "n%d of term %" PRIu64 " whose log has %s%" PRIu64 " t"
			 "he"
			 "r"
			 "e",
			 sn->slot + 1, i, d.term, ld->slot + 1, m->term,
			 i > ld->shadow_last ? "nothing, last " : "t",
			 i > ld->shadow_last ? ld->shadow_last
					     : ld->shadow[i].term);
}

static uint64_t payload_pid(const struct cluster *c, const sr_entry *e)
{
	const unsigned char *p = e->data;
	uint64_t pid = 0;

	if (e->type != SR_ENTRY_NORMAL || e->len < 8 ||
	    p[0] != SIM_PAYLOAD_MAGIC)
		return 0;
	for (int k = 7; k >= 1; k--)
		pid = pid << 8 | p[k];
	return pid <= c->props_n ? pid : 0;
}

void check_apply(struct sim_node *sn, const sr_entry *e)
{
	struct cluster *c = sn->c;
	struct sim_check *k = &c->chk;
	uint64_t h = entry_hash(e), pid = payload_pid(c, e), state;
	sr_index i = e->index;
	sr_status st;

	sr_node_status(sn->node, &st);
	if (i <= sn->applied_seen)
		sim_fail(c, "n%d applies %" PRIu64 " after %" PRIu64,
			 sn->slot + 1, i, sn->applied_seen);
	if (i > st.commit_index)
		sim_fail(c,
			 "n%d applies %" PRIu64 " beyond its commit %" PRIu64,
			 sn->slot + 1, i, st.commit_index);
	if (i > sn->shadow_last || sn->shadow[i].term != e->term)
		sim_fail(c,
			 "n%d applies %" PRIu64 "/t%" PRIu64 " which its log "
			 "does not hold",
			 sn->slot + 1, i, e->term);
	for (sr_index j = sn->applied_seen + 1; j < i && j <= sn->shadow_last;
	     j++)
		if (sn->shadow[j].type == SR_ENTRY_NORMAL)
			sim_fail(c,
				 "n%d skips command %" PRIu64 " (applies "
				 "%" PRIu64 ")",
				 sn->slot + 1, j, i);
	state = mix(sn->fsm.h ^ h ^ i);
	k->app = sim_grow(k->app, &k->app_cap, i + 1, sizeof(*k->app));
	if (k->app[i].h && (k->app[i].h != h || k->app[i].term != e->term))
		sim_fail(c,
			 "state machine safety: n%d applies %" PRIu64 "/t"
			 "%" PRIu64 " but %" PRIu64 "/t%" PRIu64 " was applied "
			 "before",
			 sn->slot + 1, i, e->term, i, k->app[i].term);
	else if (k->app[i].state && k->app[i].state != state)
		sim_fail(c,
			 "state machine safety: n%d's state after %" PRIu64
			 " differs from another node's (commands missed or "
			 "repeated)",
			 sn->slot + 1, i);
	k->app[i].h = h;
	k->app[i].term = e->term;
	k->app[i].prop = pid;
	k->app[i].state = state;
	sn->fsm.index = i;
	sn->fsm.h = state;
	sn->fsm.count++;
	if (pid)
		sn->fsm.kv[sim_key_of(pid)] = pid;
	sn->applied_seen = i;
	sn->n_applied++;
	if (pid) {
		struct sim_prop *p = &c->props[pid - 1];

		if (p->applied_at && p->applied_at != i)
			sim_fail(c,
				 "proposal #%" PRIu64 " applied at %" PRIu64
				 " and at %" PRIu64,
				 pid, p->applied_at, i);
		if (p->state == PROP_DROPPED || p->state == PROP_FAILED)
			sim_fail(c,
				 "proposal #%" PRIu64 " was reported %s but "
				 "n%d applies it at %" PRIu64,
				 pid, sr_strerror(p->status), sn->slot + 1, i);
		p->applied_at = i;
	}
}

/* ------------------------------------------------------------------ */
/* After every step                                                    */
/* ------------------------------------------------------------------ */

/* A leader of term T holds everything committed in earlier terms. */
static void check_leader_complete(struct cluster *c, struct sim_node *ld)
{
	struct sim_check *k = &c->chk;
	sr_index i = k->commit;

	while (i && k->com[i].by >= ld->st.term)
		i--;
	if (i && shadow_at(ld, i)->h != k->com[i].h)
		sim_fail(c,
			 "leader completeness: n%d leads term %" PRIu64
			 " without entry %" PRIu64 " committed in term "
			 "%" PRIu64,
			 ld->slot + 1, ld->st.term, i, k->com[i].by);
}

static void check_leader(struct cluster *c, struct sim_node *sn)
{
	struct sim_check *k = &c->chk;
	sr_term t = sn->st.term;

	k->leader_of = sim_grow(k->leader_of, &k->leader_cap, t + 1,
				sizeof(*k->leader_of));
	if (!k->leader_of[t]) {
		k->leader_of[t] = sn->id;
		k->n_leaders++;
	} else if (k->leader_of[t] != sn->id) {
		sim_fail(c,
			 "election safety: n%" PRIu64 " and n%d both lead "
			 "term %" PRIu64,
			 k->leader_of[t], sn->slot + 1, t);
	}
	if (sn->lc_term != t) {
		sn->lc_term = t;
		check_leader_complete(c, sn);
		check_conf_leader(sn);
	}
}

/* sn reports a commit index beyond the global one: extend the prefix. */
static void commit_advance(struct cluster *c, struct sim_node *sn)
{
	struct sim_check *k = &c->chk;
	sr_index to = sn->st.commit_index, from = k->commit + 1;

	k->com = sim_grow(k->com, &k->com_cap, to + 1, sizeof(*k->com));
	for (sr_index i = k->commit + 1; i <= to; i++) {
		k->com[i].h = sn->shadow[i].h;
		k->com[i].term = sn->shadow[i].term;
		k->com[i].type = sn->shadow[i].type;
		k->com[i].by = sn->st.term;
	}
	k->commit = to;
	sim_trace(c, sn->slot, "commits up to %" PRIu64 " (t%" PRIu64 ")", to,
		  sn->st.term);
	check_conf_commit(sn, from, to);
	for (int j = 0; j < c->n; j++) {
		struct sim_node *ld = &c->nodes[j];

		if (ld->node && ld->st.role == SR_LEADER &&
		    ld->st.term > sn->st.term &&
		    shadow_at(ld, to)->h != k->com[to].h)
			sim_fail(c,
				 "leader completeness: n%d leads term %" PRIu64
				 " without entry %" PRIu64 " that n%d "
				 "committed "
				 "in term %" PRIu64,
				 j + 1, ld->st.term, to, sn->slot + 1,
				 sn->st.term);
	}
}

static void check_node(struct cluster *c, struct sim_node *sn)
{
	const sr_status *st = &sn->st;
	sr_mem_info info;

	sr_mem_get_info(sn->mem, &info);
	if (info.term < sn->hs_term ||
	    (info.term == sn->hs_term && sn->hs_vote &&
	     info.vote != sn->hs_vote))
		sim_fail(c,
			 "n%d's durable term/vote went from t%" PRIu64
			 "/n%" PRIu64 " to t%" PRIu64 "/n%" PRIu64,
			 sn->slot + 1, sn->hs_term, sn->hs_vote, info.term,
			 info.vote);
	sn->hs_term = info.term;
	sn->hs_vote = info.vote;
	if (st->role != SR_STOPPED && st->term != info.term)
		sim_fail(c,
			 "n%d is in term %" PRIu64 " but its durable term "
			 "is %" PRIu64,
			 sn->slot + 1, st->term, info.term);
	if (st->term < sn->st_term)
		sim_fail(c, "n%d's term went back from %" PRIu64 " to %" PRIu64,
			 sn->slot + 1, sn->st_term, st->term);
	sn->st_term = st->term;
	/* §5.4.2: a leader commits by counting only entries of its term */
	if (!c->safety_only && st->role == SR_LEADER &&
	    sn->led_term == st->term && st->commit_index > sn->commit_seen &&
	    st->commit_index <= sn->shadow_last &&
	    sn->shadow[st->commit_index].term != st->term)
		sim_fail(c,
			 "leader n%d of term %" PRIu64 " commits %" PRIu64
			 " of term %" PRIu64 " by counting",
			 sn->slot + 1, st->term, st->commit_index,
			 sn->shadow[st->commit_index].term);
	sn->led_term = st->role == SR_LEADER ? st->term : 0;
	if (st->role == SR_LEADER && st->commit_index > sn->commit_seen)
		check_leader_commit(sn, st->commit_index);
	if (st->commit_index < sn->commit_seen)
		sim_fail(c,
			 "n%d's commit index went back from %" PRIu64
			 " to %" PRIu64,
			 sn->slot + 1, sn->commit_seen, st->commit_index);
	sn->commit_seen = st->commit_index;
	if (st->commit_index > sn->shadow_last)
		sim_fail(c,
			 "n%d commits %" PRIu64 " beyond its last entry "
			 "%" PRIu64,
			 sn->slot + 1, st->commit_index, sn->shadow_last);
	if (st->applied_index > st->commit_index)
		sim_fail(c, "n%d applied %" PRIu64 " beyond commit %" PRIu64,
			 sn->slot + 1, st->applied_index, st->commit_index);
	if (st->role == SR_LEADER)
		check_leader(c, sn);
}

void check_step(struct cluster *c)
{
	struct sim_check *k = &c->chk;

	if (c->failed)
		return;
	for (int i = 0; i < c->n; i++) {
		struct sim_node *sn = &c->nodes[i];

		if (sn->node)
			sr_node_status(sn->node, &sn->st);
		else
			memset(&sn->st, 0, sizeof(sn->st));
	}
	for (int i = 0; i < c->n && !c->failed; i++)
		if (c->nodes[i].node)
			check_node(c, &c->nodes[i]);
	for (int i = 0; i < c->n && !c->failed; i++) {
		struct sim_node *sn = &c->nodes[i];
		sr_index ci = sn->st.commit_index;

		if (!sn->node || !ci || ci > sn->shadow_last)
			continue;
		if (ci > k->commit)
			commit_advance(c, sn);
		else if (sn->shadow[ci].h != k->com[ci].h)
			sim_fail(c,
				 "n%d committed %" PRIu64 "/t%" PRIu64
				 " but the committed entry there is t%" PRIu64,
				 i + 1, ci, sn->shadow[ci].term,
				 k->com[ci].term);
	}
	if (!c->failed)
		check_durable_quorum(c);
}

int check_converged(struct cluster *c, char *why, size_t cap)
{
	uint32_t members = cluster_members(c);
	sr_index need = 0;

	for (size_t p = 0; p < c->props_n; p++)
		if (c->props[p].state == PROP_ACKED && c->props[p].index > need)
			need = c->props[p].index;
	for (int i = 0; i < c->n; i++) {
		struct sim_node *sn = &c->nodes[i];

		if (sn->external || !(members >> i & 1))
			continue;
		if (!sn->node) {
			snprintf(why, cap, "n%d is down", i + 1);
			return 0;
		}
		if (sn->st.applied_index < need) {
			snprintf(why, cap,
				 "n%d applied %" PRIu64 " of %" PRIu64
				 " (role %s, term %" PRIu64 ", commit %" PRIu64
				 ")",
				 i + 1, sn->st.applied_index, need,
				 sr_role_name(sn->st.role), sn->st.term,
				 sn->st.commit_index);
			return 0;
		}
	}
	return 1;
}
