/*
 * test_apply_prefetch.c — the state machine's optional prefetch hint.
 *
 * A recording state machine checks, as the engine runs, that every run the
 * hint receives holds only normal entries, consecutive, at most
 * SR_FSM_PREFETCH_MAX of them, and is exactly what apply() gets next (same
 * index, term and bytes, in order); and that nothing is applied without a
 * hint first.  Then whole scenarios (proposals, a configuration entry in
 * the middle, restarts that read the log back from the store, snapshots)
 * run once with the hint and once without, and must make the same calls.
 */
#include "cluster.h"

#define RUNS_MAX 4096

struct node_rec {
	/* the run hinted last, from first: [next, end) is still to come */
	sr_index first, next, end;
	uint64_t hash[SR_FSM_PREFETCH_MAX];
	sr_term term[SR_FSM_PREFETCH_MAX];
	uint64_t hints, hinted, applied, max_run;
	uint64_t violations;
	/* the runs (first index, length), in order */
	sr_index run_first[RUNS_MAX];
	size_t run_len[RUNS_MAX];
	size_t n_runs;
};

static struct node_rec R[MAXN + 1];
static int use_hint;
/* Every apply and proposal outcome of every node, folded in order. */
static uint64_t trace;

static uint64_t fold(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
	return h * 0xff51afd7ed558ccdull;
}

static uint64_t bytes_hash(const sr_entry *e)
{
	const unsigned char *p = e->data;
	uint64_t h = e->len;
	for (uint32_t i = 0; i < e->len; i++)
		h = fold(h, p[i]);
	return h;
}

static void rec_prefetch(void *ctx, const sr_entry *e, size_t n)
{
	uint64_t id = *(uint64_t *)ctx;
	struct node_rec *r = &R[id];
	r->hints++;
	if (n < 1 || n > SR_FSM_PREFETCH_MAX || r->next != r->end)
		r->violations++;
	if (n > SR_FSM_PREFETCH_MAX)
		n = SR_FSM_PREFETCH_MAX;
	for (size_t k = 0; k < n; k++) {
		if (e[k].type != SR_ENTRY_NORMAL ||
		    e[k].index != e[0].index + k)
			r->violations++;
		r->hash[k] = bytes_hash(&e[k]);
		r->term[k] = e[k].term;
	}
	if (n && r->n_runs < RUNS_MAX) {
		r->run_first[r->n_runs] = e[0].index;
		r->run_len[r->n_runs++] = n;
	}
	r->first = r->next = n ? e[0].index : 0;
	r->end = r->next + n;
	r->hinted += n;
	if (n > r->max_run)
		r->max_run = n;
}

static int rec_apply(void *ctx, const sr_entry *e, void **result)
{
	uint64_t id = *(uint64_t *)ctx;
	struct node_rec *r = &R[id];
	if (use_hint) {
		/* k: the entry's place in the hinted run */
		size_t k = (size_t)(e->index - r->first);
		if (r->next >= r->end || e->index != r->next ||
		    k >= SR_FSM_PREFETCH_MAX || r->hash[k] != bytes_hash(e) ||
		    r->term[k] != e->term)
			r->violations++;
		else
			r->next++;
	}
	if (e->type != SR_ENTRY_NORMAL)
		r->violations++;
	r->applied++;
	trace = fold(fold(fold(trace, id), e->index), bytes_hash(e));
	return fsm_apply(ctx, e, result);
}

static int rec_snapshot(void *ctx, sr_index index, sr_term term)
{
	return fsm_snapshot(ctx, index, term);
}

static int rec_restore(void *ctx, sr_index index, sr_term term)
{
	uint64_t id = *(uint64_t *)ctx;
	trace = fold(fold(trace, id), 1000000 + index);
	return fsm_restore(ctx, index, term);
}

static const sr_fsm_ops with_hint = { .apply = rec_apply,
				      .snapshot = rec_snapshot,
				      .restore = rec_restore,
				      .prefetch = rec_prefetch };
static const sr_fsm_ops without_hint = { .apply = rec_apply,
					 .snapshot = rec_snapshot,
					 .restore = rec_restore };

static void rec_reset(int hint)
{
	memset(R, 0, sizeof(R));
	trace = 0;
	use_hint = hint;
	cluster_fsm_ops = hint ? &with_hint : &without_hint;
}

/* A restarted node applies from scratch: forget its pending run. */
static void rec_restart(int i)
{
	R[i].first = R[i].next = R[i].end = 0;
	cluster_restart(i);
}

static void check_clean(int nodes)
{
	for (int i = 1; i <= nodes; i++) {
		CHECK_EQ(R[i].violations, 0);
		CHECK(R[i].max_run <= SR_FSM_PREFETCH_MAX);
		if (use_hint) {
			CHECK_EQ(R[i].hinted, R[i].applied);
			CHECK(R[i].hints > 0);
		} else {
			CHECK_EQ(R[i].hints, 0);
		}
	}
}

TEST(test_hint_sees_exactly_the_entries_then_applied)
{
	int l;
	rec_reset(1);
	cluster_start(3);
	l = cluster_run_until_leader(1000);
	CHECK(l);
	cluster_propose_n(l, 1, 500);
	cluster_run(300);
	CHECK_EQ(C.done_ok, 500);
	check_clean(3);
	for (int i = 1; i <= 3; i++) {
		CHECK_EQ(R[i].applied, 500);
		CHECK_EQ(C.applied_count[i], 500);
	}
	cluster_stop();
}

TEST(test_a_lagging_follower_gets_full_runs)
{
	int l, f;
	rec_reset(1);
	cluster_start(3);
	l = cluster_run_until_leader(1000);
	CHECK(l);
	f = l == 1 ? 2 : 1;
	C.cut[f] = 1;
	cluster_propose_n(l, 1, 300);
	cluster_run(100);
	CHECK_EQ(C.done_ok, 300);
	CHECK_EQ(R[f].applied, 0);
	C.cut[f] = 0;
	cluster_run(300);
	CHECK_EQ(R[f].applied, 300);
	/* it learned of 300 committed entries at once: runs of the bound */
	CHECK_EQ(R[f].max_run, SR_FSM_PREFETCH_MAX);
	check_clean(3);
	cluster_stop();
}

TEST(test_a_configuration_entry_splits_the_run)
{
	int l, f;
	sr_index conf_at, before = 0, after = 0;
	rec_reset(1);
	cluster_start(3);
	l = cluster_run_until_leader(1000);
	CHECK(l);
	cluster_run(200); /* the leader's no-op commits */
	f = l == 1 ? 2 : 1;
	C.cut[f] = 1;
	cluster_propose_n(l, 1, 10);
	CHECK_EQ(sr_node_add(C.node[l], 4, "", 0), 0); /* never runs */
	conf_at = cluster_status(l).last_index;
	cluster_propose_n(l, 100, 10);
	cluster_run(100);
	CHECK_EQ(C.done_ok, 20);
	C.cut[f] = 0;
	cluster_run(300);
	CHECK_EQ(R[f].applied, 20);
	check_clean(3);
	/* the follower's runs end just before the entry and resume after */
	for (size_t k = 0; k < R[f].n_runs; k++) {
		sr_index first = R[f].run_first[k];
		sr_index last = first + R[f].run_len[k] - 1;
		CHECK(conf_at < first || conf_at > last);
		if (last == conf_at - 1)
			before = R[f].run_len[k];
		if (first == conf_at + 1)
			after = R[f].run_len[k];
	}
	CHECK_EQ(before, 10);
	CHECK_EQ(after, 10);
	cluster_stop();
}

/* Proposals, a configuration change, restarts (the restarted node reads
 * its log back from the store to apply it) and, with threshold set,
 * snapshots; returns the trace. */
static uint64_t scenario(int hint, uint64_t threshold)
{
	int l;
	rec_reset(hint);
	cluster_start_with(3, threshold, threshold / 4);
	l = cluster_run_until_leader(1000);
	CHECK(l);
	cluster_propose_n(l, 1, 200);
	cluster_run(50);
	CHECK_EQ(sr_node_add(C.node[l], 4, "", 0), 0);
	cluster_propose_n(l, 1000, 150);
	cluster_run(200);
	for (int i = 1; i <= 3; i++)
		if (i != l)
			rec_restart(i);
	cluster_propose_n(l, 5000, 70);
	cluster_run(300);
	rec_restart(l);
	l = cluster_run_until_leader(2000);
	CHECK(l);
	cluster_propose_n(l, 9000, 30);
	cluster_run(500);
	check_clean(3);
	trace = fold(fold(trace, (uint64_t)C.done_ok), (uint64_t)C.done_err);
	for (int i = 1; i <= 3; i++) {
		CHECK_EQ(cluster_status(i).applied_index,
			 cluster_status(l).commit_index);
		trace = fold(fold(trace, C.applied_sum[i]), C.applied_count[i]);
	}
	cluster_stop();
	return trace;
}

TEST(test_no_hint_and_hint_make_the_same_calls)
{
	uint64_t a = scenario(0, 0), b = scenario(1, 0);
	CHECK_EQ(a, b);
	CHECK(a != 0);
}

TEST(test_no_hint_and_hint_make_the_same_calls_with_snapshots)
{
	uint64_t a = scenario(0, 100), b = scenario(1, 100);
	CHECK_EQ(a, b);
}

int main(int argc, char **argv)
{
	return test_main(argc, argv);
}
