/*
 * groups_test.c — the multi-group world of the simulator (groups.h) does
 * what docs/testing.md says: one fsync makes a batch of several groups'
 * appends durable and only then are they completed; a crash loses the
 * unsynced records of every group on the process, or keeps a prefix of
 * them in write order; a crash, pause or partition hits every group of
 * the process alike.  Every scenario runs under the checker of each group.
 * SIM_TRACE=1 shows the trace.
 */
#include <stdlib.h>

#include "groups.h"
#include "testlib.h"

#define W_OK(w)                                                                \
	do {                                                                   \
		if ((w)->g[0]->failed) {                                       \
			cluster_dump_ring((w)->g[0], stderr);                  \
			TEST_FAIL("checker: %s", (w)->g[0]->why);              \
		}                                                              \
	} while (0)

static struct sim_world *w_new(int groups)
{
	struct sim_world *w = malloc(sizeof(*w));
	const char *t = getenv("SIM_TRACE");
	struct sim_opts o;

	CHECK(w != NULL);
	sim_opts_default(&o);
	o.n = 3;
	o.seed = 7;
	o.disk_min_ms = 3; /* an fsync takes 3 ms */
	o.disk_max_ms = 3;
	o.log_level = SR_LOG_DEBUG;
	CHECK_EQ(world_init(w, &o, groups, SIM_BUG_NONE), 0);
	cluster_keep_ring(w->g[0], 60);
	if (t && *t == '1')
		w->g[0]->trace = stderr;
	CHECK_EQ(world_start(w), 0);
	W_OK(w);
	return w;
}

static void w_free(struct sim_world *w)
{
	W_OK(w);
	world_free(w);
	free(w);
}

static int all_lead(struct sim_world *w)
{
	for (int k = 0; k < w->n_groups; k++)
		if (cluster_leader(w->g[k]) < 0)
			return 0;
	return 1;
}

/* Groups with records among the first n of slot i's WAL (a bit each). */
static uint64_t wal_groups(const struct sim_wal *wal, size_t n)
{
	uint64_t set = 0;

	for (size_t r = 0; r < n; r++)
		set |= 1ull << wal->rec[r].group;
	return set;
}

static int popcount64(uint64_t x)
{
	int n = 0;

	for (; x; x &= x - 1)
		n++;
	return n;
}

static sr_mem_info info_of(struct sim_world *w, int k, int i)
{
	sr_mem_info info;

	sr_mem_get_info(w->g[k]->nodes[i].mem, &info);
	return info;
}

/* Elect a leader in every group, then propose in each on its leader. */
static void elect_and_propose(struct sim_world *w)
{
	uint64_t end = w->g[0]->now + 3000;

	while (!all_lead(w) && cluster_step(w->g[0], end))
		;
	W_OK(w);
	CHECK(all_lead(w));
	/* let the first entries of each term commit */
	cluster_run_for(w->g[0], 200);
	for (int k = 0; k < w->n_groups; k++)
		CHECK_EQ(cluster_propose(w->g[k], cluster_leader(w->g[k]), 8,
					 NULL),
			 0);
	W_OK(w);
}

/* Step until some process has a closed batch of >= 2 groups: its slot. */
static int wait_shared_batch(struct sim_world *w)
{
	uint64_t end = w->g[0]->now + 500;

	for (;;) {
		for (int i = 0; i < w->g[0]->n; i++) {
			const struct sim_wal *wal = &w->wal[i];

			if (wal->batch_n &&
			    popcount64(wal_groups(wal, wal->batch_n)) >= 2)
				return i;
		}
		W_OK(w);
		if (!cluster_step(w->g[0], end))
			TEST_FAIL("no batch of several groups in 500 ms");
	}
}

/*
 * Elect, propose in every group, and stop when some process has closed a
 * batch of several groups (its fsync in flight): that slot; *set gets the
 * batch's groups, durable[] and last[] each group's store there.
 */
static int shared_batch(struct sim_world *w, uint64_t *set, sr_index *durable,
			sr_index *last)
{
	int i;

	elect_and_propose(w);
	i = wait_shared_batch(w);
	*set = wal_groups(&w->wal[i], w->wal[i].batch_n);
	for (int k = 0; k < w->n_groups; k++) {
		sr_mem_info in = info_of(w, k, i);

		durable[k] = in.durable_last;
		last[k] = in.last_index;
	}
	return i;
}

/* Every group converged: everything acknowledged applied everywhere. */
static void all_converged(struct sim_world *w)
{
	W_OK(w);
	for (int k = 0; k < w->n_groups; k++) {
		char why[200];

		if (!check_converged(w->g[k], why, sizeof(why)))
			TEST_FAIL("group %d: %s", k, why);
	}
}

TEST(test_one_fsync_makes_a_batch_of_several_groups_durable)
{
	struct sim_world *w = w_new(3);
	sr_index durable[SIM_MAX_GROUPS], last[SIM_MAX_GROUPS];
	uint64_t set;
	int i = shared_batch(w, &set, durable, last);

	/* the fsync is in flight: nothing of the batch is durable or
	 * reported yet */
	for (int k = 0; k < w->n_groups; k++)
		if (set >> k & 1) {
			CHECK(durable[k] < last[k]);
			CHECK(info_of(w, k, i).pending > 0);
		}
	/* one step later than the fsync: every group's part is durable */
	while (w->wal[i].batch_n)
		CHECK(cluster_step(w->g[0], w->g[0]->now + 100));
	W_OK(w);
	for (int k = 0; k < w->n_groups; k++)
		if (set >> k & 1)
			CHECK(info_of(w, k, i).durable_last >= last[k]);
	CHECK(w->n_multi_batches >= 1);
	w_free(w);
}

TEST(test_a_crash_loses_the_unsynced_batch_of_every_group)
{
	struct sim_world *w = w_new(3);
	sr_index durable[SIM_MAX_GROUPS], last[SIM_MAX_GROUPS];
	uint64_t set;
	int i = shared_batch(w, &set, durable, last);

	w->crash_keep = 0;
	cluster_crash(w->g[1], i); /* any group's handle: the process */
	W_OK(w);
	for (int k = 0; k < w->n_groups; k++) {
		sr_mem_info in = info_of(w, k, i);

		CHECK(w->g[k]->nodes[i].node == NULL);
		CHECK_EQ(in.last_index, durable[k]);
		if (set >> k & 1)
			CHECK(last[k] > durable[k]);
	}
	CHECK_EQ(w->wal[i].n, 0);
	/* the process comes back with every group; each catches up */
	w->crash_keep = -1;
	CHECK_EQ(cluster_restart(w->g[2], i), 0);
	for (int k = 0; k < w->n_groups; k++)
		CHECK(w->g[k]->nodes[i].node != NULL);
	cluster_run_for(w->g[0], 2000);
	all_converged(w);
	w_free(w);
}

TEST(test_a_crash_keeps_a_prefix_of_the_unsynced_records_in_write_order)
{
	struct sim_world *w = w_new(2);
	uint64_t end;
	int i = -1, a, b;
	size_t keep_n;
	sr_index da, db;

	elect_and_propose(w);
	/* two unsynced appends of two groups, first a's then b's */
	end = w->g[0]->now + 500;
	while (i < 0) {
		for (int s = 0; s < w->g[0]->n && i < 0; s++) {
			const struct sim_wal *wal = &w->wal[s];

			if (wal->n >= 2 &&
			    wal->rec[0].group != wal->rec[1].group &&
			    wal->rec[0].kind == WAL_APPEND &&
			    wal->rec[1].kind == WAL_APPEND && wal->rec[0].n &&
			    wal->rec[1].n)
				i = s;
		}
		W_OK(w);
		if (i < 0 && !cluster_step(w->g[0], end))
			TEST_FAIL("no two unsynced records of two groups");
	}
	a = w->wal[i].rec[0].group;
	b = w->wal[i].rec[1].group;
	keep_n = w->wal[i].rec[0].n;
	da = info_of(w, a, i).durable_last;
	db = info_of(w, b, i).durable_last;
	w->crash_keep = 1;
	cluster_crash(w->g[0], i);
	W_OK(w);
	CHECK_EQ(info_of(w, a, i).last_index, da + keep_n);
	CHECK_EQ(info_of(w, b, i).last_index, db);
	w->crash_keep = -1;
	CHECK_EQ(cluster_restart(w->g[0], i), 0);
	cluster_run_for(w->g[0], 2000);
	w_free(w);
}

TEST(test_a_pause_and_a_partition_hit_every_group_of_the_process)
{
	struct sim_world *w = w_new(4);
	int i;

	elect_and_propose(w);
	i = cluster_leader(w->g[0]);
	cluster_pause(w->g[3], i, 300);
	for (int k = 0; k < w->n_groups; k++)
		CHECK_EQ(w->g[k]->nodes[i].paused_until, w->g[0]->now + 300);
	cluster_run_for(w->g[0], 400);
	/* one link for all groups: isolating the process deposes every
	 * leader it holds (CheckQuorum) and the others elect elsewhere */
	cluster_isolate(w->g[2], i);
	cluster_run_for(w->g[0], 1500);
	W_OK(w);
	for (int k = 0; k < w->n_groups; k++) {
		int ld = cluster_leader(w->g[k]);

		CHECK(ld >= 0 && ld != i);
		CHECK(w->g[k]->nodes[i].st.role != SR_LEADER);
	}
	cluster_heal(w->g[1]);
	for (int k = 0; k < w->n_groups; k++)
		CHECK_EQ(cluster_propose(w->g[k], cluster_leader(w->g[k]), 8,
					 NULL),
			 0);
	cluster_run_for(w->g[0], 1000);
	all_converged(w);
	w_free(w);
}

int main(int argc, char **argv)
{
	return test_main(argc, argv);
}
