/*
 * review_test.c — the bugs a review of the engine found (issue 9), each
 * as a scenario with a forced schedule that random seeds almost never
 * produce: a message held across a crash and restart, a snapshot chunk
 * that arrives after the follower caught up by appends, chunks of one
 * snapshot coming from two leaders.  Every scenario failed on the engine
 * before its fix; each runs under the simulator's checker (scenario.h).
 *
 * The schedules are built with a filter that holds the messages a test
 * names; the test then releases them one by one, in the order it wants.
 */
#include "scenario.h"

/* Hold the messages of `type` (0: any) from `from` to `to` (-1: any). */
struct hold {
	int on;
	uint32_t type;
	int from, to;
};

static int hold_filter(struct cluster *c, const sr_msg *m, void *ctx)
{
	struct hold *h = ctx;

	(void)c;
	if (!h->on || (h->type && m->type != h->type) ||
	    (h->from >= 0 && m->from != (sr_id)h->from + 1) ||
	    (h->to >= 0 && m->to != (sr_id)h->to + 1))
		return SIM_DELIVER;
	return SIM_HOLD;
}

static void hold(struct cluster *c, struct hold *h, uint32_t type, int from,
		 int to)
{
	memset(h, 0, sizeof(*h));
	h->on = 1;
	h->type = type;
	h->from = from;
	h->to = to;
	c->filter = hold_filter;
	c->filter_ctx = h;
}

/* Index of the first held message of `type` to `to`, or -1. */
static long first_held(const struct cluster *c, uint32_t type, int to)
{
	for (size_t i = 0; i < c->held_n; i++)
		if (c->held[i]->m.type == type &&
		    c->held[i]->m.to == (sr_id)to + 1)
			return (long)i;
	return -1;
}

/* Release held message k for delivery `delay` ms from now. */
static void release(struct cluster *c, long k, uint64_t delay)
{
	CHECK(k >= 0);
	cluster_release(c, cluster_take_held(c, (size_t)k), delay);
}

static int all_settled(struct cluster *c)
{
	for (size_t p = 0; p < c->props_n; p++)
		if (c->props[p].state == PROP_PENDING)
			return 0;
	return 1;
}

/* Propose k commands on slot ld and wait until each has an outcome. */
static void propose_settled(struct cluster *c, int ld, int k)
{
	for (int i = 0; i < k; i++)
		sc_propose(c, ld);
	CHECK(cluster_run_while_not(c, all_settled, 2000));
	SC_OK(c);
}

/* ------------------------------------------------------------------ */
/* Reads forwarded by a follower (thesis §6.4)                         */
/* ------------------------------------------------------------------ */

/*
 * n2 forwards read #1 to the leader, whose answer (read index i) is held.
 * More writes are acknowledged; n2 crashes and restarts in the same term
 * and forwards read #2.  The old answer, released now, must not complete
 * read #2: its index is below writes acknowledged before read #2 began.
 * (Before the fix, tags restarted at 1 in every process and read #2
 * reused the tag of read #1.)
 */
TEST(test_read_answer_from_before_a_restart_never_completes_a_new_read)
{
	struct sim_opts o = sc_opts(3, 0);
	struct cluster *c;
	struct hold h;
	uint64_t r1 = 0, r2 = 0;
	sr_term term;
	long k;

	o.election_ms_of[0] = 50; /* n1 leads */
	c = sc_new(&o);
	CHECK_EQ(cluster_wait_leader(c, 1000), 0);
	propose_settled(c, 0, 3);
	term = c->nodes[0].st.term;

	/* read #1 on n2; the leader's answer is held */
	hold(c, &h, SR_MSG_READ_INDEX_RESP, 0, 1);
	CHECK_EQ(cluster_read(c, 1, &r1), 0);
	CHECK(r1 != 0);
	cluster_run_for(c, 3 * o.heartbeat_ms);
	CHECK_EQ(cluster_count_held(c, SR_MSG_READ_INDEX_RESP, 1), 1);

	/* writes acknowledged after the held answer was computed */
	propose_settled(c, 0, 5);

	/* n2 restarts (same term) and learns of the leader again */
	cluster_crash(c, 1);
	CHECK_EQ(cluster_restart(c, 1), 0);
	cluster_run_for(c, 3 * o.heartbeat_ms);
	SC_OK(c);
	CHECK_EQ(c->nodes[1].st.leader, 1);
	CHECK_EQ(c->nodes[1].st.term, term);
	CHECK_EQ(c->nodes[1].st.applied_index, c->nodes[0].st.commit_index);

	/* read #2: its request is held too, so the old answer comes first */
	hold(c, &h, SR_MSG_READ_INDEX, 1, 0);
	CHECK_EQ(cluster_read(c, 1, &r2), 0);
	CHECK(r2 != 0);
	k = first_held(c, SR_MSG_READ_INDEX_RESP, 1);
	release(c, k, 1);
	cluster_run_for(c, 5);
	SC_OK(c); /* before the fix: "read #2 has read index 5 below 10" */
	CHECK_EQ(c->reads[r2 - 1].state, READ_PENDING);

	/* the real answer completes it */
	h.on = 0;
	release(c, first_held(c, SR_MSG_READ_INDEX, 0), 1);
	cluster_run_for(c, 3 * o.heartbeat_ms);
	SC_OK(c);
	CHECK_EQ(c->reads[r2 - 1].state, READ_OK);
	CHECK(c->reads[r2 - 1].index >= c->reads[r2 - 1].need);
	sc_free(c);
}

/* ------------------------------------------------------------------ */
/* InstallSnapshot (Raft §7)                                           */
/* ------------------------------------------------------------------ */

static const sr_peer_status *peer(struct cluster *c, int ld, int slot)
{
	static sr_peer_status ps[SIM_MAX_NODES];
	size_t n = sr_node_peer_status(c->nodes[ld].node, ps, SIM_MAX_NODES);

	for (size_t i = 0; i < n; i++)
		if (ps[i].id == (sr_id)slot + 1)
			return &ps[i];
	return NULL;
}

/*
 * A cluster in which n3 lags behind a snapshot the leader n1 took by
 * hand, and n1 has just switched n3 to the SNAPSHOT state.  Everything
 * sent to n3 since it lagged is held: the appends and heartbeats that
 * would have caught it up, and the first snapshot chunk.  Snapshots come
 * automatically every `threshold` entries and by hand on the leader;
 * chunks carry `chunk` bytes (the simulator's snapshots are 32).
 */
static struct cluster *lagging_n3(struct hold *h, uint32_t chunk,
				  sr_index *snap_out)
{
	struct sim_opts o = sc_opts(3, 0);
	struct cluster *c;
	sr_index match;
	long k = -1;

	o.election_ms_of[0] = 50;
	o.async_disk = 1;
	o.snapshot_threshold = 10;
	o.snapshot_trailing = 0;
	o.snapshot_chunk_bytes = chunk;
	c = sc_new(&o);
	c->crash_drops_all = 1; /* a crash keeps only what was durable */
	CHECK_EQ(cluster_wait_leader(c, 1000), 0);
	propose_settled(c, 0, 10); /* every node snapshots once */
	cluster_run_for(c, 3 * o.heartbeat_ms);
	CHECK(c->nodes[2].st.snapshot_index > 0);
	match = peer(c, 0, 2)->match;
	CHECK_EQ(match, c->nodes[0].st.last_index);

	/* n3 hears nothing more; n1 and n2 go on, n1 snapshots by hand */
	hold(c, h, 0, -1, 2);
	propose_settled(c, 0, 4);
	CHECK_EQ(sr_node_snapshot(c->nodes[0].node), 0);
	check_step(c);
	SC_OK(c);
	*snap_out = c->nodes[0].st.snapshot_index;
	CHECK(*snap_out > match);
	CHECK(*snap_out - c->nodes[2].st.snapshot_index < 10);
	CHECK(c->nodes[0].st.first_index > match + 1);
	cluster_run_for(c, 2 * o.heartbeat_ms); /* heartbeats for n3, held */

	/* the newest heartbeat reaches n3 alone: n3 rejects it, and n1,
   * whose log no longer holds what n3 needs, sends a snapshot */
	for (size_t i = 0; i < c->held_n; i++) {
		const sr_msg *m = &c->held[i]->m;
		if (m->type == SR_MSG_APPEND && m->u.append.n_entries == 0 &&
		    m->from == 1)
			k = (long)i;
	}
	release(c, k, 1);
	cluster_run_for(c, 5);
	SC_OK(c);
	CHECK_EQ(peer(c, 0, 2)->state, SR_PROGRESS_SNAPSHOT);
	CHECK_EQ(cluster_count_held(c, SR_MSG_SNAPSHOT, 2), 1);
	return c;
}

/* Release everything held for n3 but snapshot chunks, in order. */
static void release_appends_to_n3(struct cluster *c)
{
	for (size_t i = 0; i < c->held_n;) {
		if (c->held[i]->m.type == SR_MSG_SNAPSHOT)
			i++;
		else
			release(c, (long)i, 1);
	}
}

/*
 * n3 catches up through held appends whose entries are not yet durable
 * (a slow disk) when the snapshot chunk arrives.  Its commit index covers
 * the snapshot, its disk does not: it must not answer "installed", for
 * the leader would take that as n3 durably holding the snapshot's index.
 * n3 then crashes and loses those entries; with n2 down, n1 needs n3 to
 * commit.  Before the fix, n1 kept match at the snapshot index and
 * dropped every rejection of the restarted n3 as stale: nothing
 * committed again.
 */
TEST(test_follower_never_reports_a_snapshot_installed_beyond_its_disk)
{
	struct hold h;
	sr_index snap;
	struct cluster *c = lagging_n3(&h, 1u << 20, &snap);
	uint64_t pid;

	/* n3's disk takes 500 ms from now on */
	c->o.disk_min_ms = c->o.disk_max_ms = 500;
	release_appends_to_n3(c);
	cluster_run_for(c, 5);
	SC_OK(c);
	CHECK(c->nodes[2].st.commit_index >= snap);
	CHECK(c->nodes[2].st.durable_index < snap);
	CHECK(c->nodes[2].st.snapshot_index < snap); /* no local one */

	/* the chunk arrives; n3 crashes before its disk catches up */
	release(c, first_held(c, SR_MSG_SNAPSHOT, 2), 1);
	cluster_run_for(c, 5);
	SC_OK(c);
	h.on = 0;
	cluster_crash(c, 2);
	c->o.disk_min_ms = 0;
	c->o.disk_max_ms = 2;
	CHECK_EQ(cluster_restart(c, 2), 0);
	cluster_crash(c, 1);
	SC_OK(c);

	/* n1 and n3 are a majority: a new write must commit */
	CHECK_EQ(cluster_propose(c, 0, 16, &pid), 0);
	cluster_run_while_not(c, all_settled, 3000);
	SC_OK(c);
	CHECK_EQ(c->props[pid - 1].state, PROP_ACKED);
	cluster_run_for(c, 3 * c->o.heartbeat_ms);
	CHECK(c->nodes[2].st.applied_index >= c->props[pid - 1].index);
	sc_free(c);
}

/*
 * n3 receives the first chunk of a snapshot, then catches up through
 * appends: the rest of the transfer is pointless, and the partial
 * snapshot must not keep n3 from taking snapshots of its own.  Before the
 * fix, the later chunks were answered "installed" and the receive state
 * stayed open for good: sr_node_snapshot() said SR_EBUSY forever.
 */
TEST(test_partial_snapshot_made_pointless_by_appends_does_not_block_snapshots)
{
	struct hold h;
	sr_index snap;
	struct cluster *c = lagging_n3(&h, 7, &snap);
	sr_index before = c->nodes[2].st.snapshot_index;

	/* the first chunk, then the appends, then the second chunk */
	release(c, first_held(c, SR_MSG_SNAPSHOT, 2), 1);
	cluster_run_for(c, 5);
	CHECK_EQ(cluster_count_held(c, SR_MSG_SNAPSHOT, 2), 1);
	release_appends_to_n3(c);
	cluster_run_for(c, 10);
	CHECK(c->nodes[2].st.commit_index >= snap);
	CHECK_EQ(c->nodes[2].st.snapshot_index, before);
	release(c, first_held(c, SR_MSG_SNAPSHOT, 2), 1);
	h.on = 0;
	cluster_run_for(c, 3 * c->o.heartbeat_ms);
	SC_OK(c);
	CHECK(peer(c, 0, 2)->state != SR_PROGRESS_SNAPSHOT);

	/* n3 keeps up by appends and snapshots on its own */
	propose_settled(c, 0, 25);
	cluster_run_for(c, 3 * c->o.heartbeat_ms);
	SC_OK(c);
	CHECK(c->nodes[2].st.applied_index >= snap + 25);
	CHECK(c->nodes[2].st.snapshot_index > snap);
	sc_free(c);
}

/*
 * Chunks are matched to their transfer by sender and term, not only by
 * snapshot index and offset: a chunk of leader n3 (term 3) must not
 * continue a snapshot that leader n2 (term 2) began, for two state
 * machines need not write the same bytes for the same index.  Slot 0 is
 * the only engine; the test speaks for n2 and n3.
 */
TEST(test_snapshot_chunks_from_two_leaders_are_never_mixed)
{
	struct sim_opts o = sc_opts(3, 2);
	struct cluster *c;
	unsigned char conf[sizeof(sr_membership)];
	unsigned char a[16], b[16];
	int conf_len;
	sr_msg m;
	long k;

	o.snapshot_threshold = 10; /* the state machine can restore */
	c = sc_new(&o);
	conf_len = sr_membership_encode(&c->conf, conf, sizeof(conf));
	CHECK(conf_len > 0);
	memset(a, 'a', sizeof(a));
	memset(b, 'b', sizeof(b));

	/* n2, leader of term 2, sends the first half of snapshot 10 */
	m = sc_msg(SR_MSG_SNAPSHOT, 1, 0, 2);
	m.u.snapshot.last_index = 10;
	m.u.snapshot.last_term = 2;
	m.u.snapshot.conf = conf;
	m.u.snapshot.conf_len = (uint32_t)conf_len;
	m.u.snapshot.data = a;
	m.u.snapshot.len = sizeof(a);
	cluster_inject(c, 0, &m);
	k = sc_held(c, SR_MSG_SNAPSHOT_RESP, 1);
	CHECK(k >= 0);
	CHECK_EQ(c->held[k]->m.u.snapshot_resp.offset, 16);
	CHECK_EQ(c->held[k]->m.u.snapshot_resp.rejected, 0);

	/* n3, leader of term 3, sends the second half of its own */
	m = sc_msg(SR_MSG_SNAPSHOT, 2, 0, 3);
	m.u.snapshot.last_index = 10;
	m.u.snapshot.last_term = 2;
	m.u.snapshot.offset = 16;
	m.u.snapshot.data = b;
	m.u.snapshot.len = sizeof(b);
	cluster_inject(c, 0, &m);
	k = sc_held(c, SR_MSG_SNAPSHOT_RESP, 2);
	CHECK(k >= 0);
	/* not taken: n3 must start from the beginning */
	CHECK(c->held[k]->m.u.snapshot_resp.rejected ||
	      c->held[k]->m.u.snapshot_resp.offset == 0);
	CHECK_EQ(c->held[k]->m.u.snapshot_resp.done, 0);

	/* and n3's own first chunk starts a transfer of its own */
	m.u.snapshot.offset = 0;
	m.u.snapshot.conf = conf;
	m.u.snapshot.conf_len = (uint32_t)conf_len;
	cluster_inject(c, 0, &m);
	k = sc_held(c, SR_MSG_SNAPSHOT_RESP, 2);
	CHECK_EQ(c->held[k]->m.u.snapshot_resp.offset, 16);
	CHECK_EQ(c->held[k]->m.u.snapshot_resp.rejected, 0);
	CHECK_EQ(c->nodes[0].st.snapshot_index, 0);
	cluster_drop_held(c);
	sc_free(c);
}

int main(int argc, char **argv)
{
	return test_main(argc, argv);
}
