/*
 * mem_test.c — the in-memory log store on its own, through the storage
 * vtable as the engine uses it and through the test helpers: synchronous
 * and asynchronous completions, durability and crashes, truncation,
 * compaction, snapshots, injected failures, allocation hooks.
 */
#include <seshat/mem.h>

#include "testlib.h"

/* Completions land here. */
struct rec {
	uint64_t tokens[64];
	int status[64];
	int n;
	sr_mem *mem;  /* for the re-entrant test */
	int reappend; /* append again from inside done() */
};

static void on_done(void *ctx, uint64_t token, int status)
{
	struct rec *r = ctx;

	if (r->n < 64) {
		r->tokens[r->n] = token;
		r->status[r->n] = status;
	}
	r->n++;
	if (r->reappend) {
		sr_mem_info info;
		sr_entry e = { .term = 1, .type = SR_ENTRY_NORMAL };

		r->reappend = 0;
		sr_mem_get_info(r->mem, &info);
		e.index = info.last_index + 1;
		sr_mem_ops()->append(r->mem, 999, &e, 1);
	}
}

static sr_mem *make(int mode, struct rec *r)
{
	sr_mem_config mc = { .mode = mode, .done = on_done, .done_ctx = r };
	sr_mem *m = NULL;

	memset(r, 0, sizeof(*r));
	CHECK_EQ(sr_mem_create(&mc, &m), 0);
	r->mem = m;
	return m;
}

/* Append entries lo..hi of term t, data "e<index>". */
static int put(sr_mem *m, uint64_t token, sr_index lo, sr_index hi, sr_term t)
{
	sr_entry e[32];
	char buf[32][16];
	size_t n = 0;

	for (sr_index i = lo; i <= hi; i++, n++) {
		snprintf(buf[n], sizeof(buf[n]), "e%llu",
			 (unsigned long long)i);
		e[n].term = t;
		e[n].index = i;
		e[n].type = SR_ENTRY_NORMAL;
		e[n].len = (uint32_t)strlen(buf[n]);
		e[n].data = buf[n];
	}
	return sr_mem_ops()->append(m, token, e, n);
}

static sr_term term_at(sr_mem *m, sr_index i, int durable)
{
	sr_entry e;

	return sr_mem_entry(m, i, durable, &e) ? 0 : e.term;
}

static uint64_t always_keep(void *ctx)
{
	(void)ctx;
	return 2; /* r % 4 == 2: keep */
}

static uint64_t lcg(void *ctx)
{
	uint64_t *s = ctx;

	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	return *s >> 11;
}

TEST(test_sync_append_completes_inside_and_copies_data)
{
	struct rec r;
	sr_mem *m = make(SR_MEM_SYNC, &r);
	char data[] = "hello";
	sr_entry e = { .term = 1,
		       .index = 1,
		       .type = SR_ENTRY_NORMAL,
		       .len = 5,
		       .data = data },
		 out[4];
	size_t n;

	CHECK_EQ(sr_mem_ops()->append(m, 7, &e, 1), 0);
	CHECK_EQ(r.n, 1);
	CHECK_EQ(r.tokens[0], 7);
	CHECK_EQ(r.status[0], 0);
	data[0] = 'X'; /* the store owns a copy */
	CHECK_EQ(sr_mem_ops()->read(m, 1, 4, 1 << 20, out, &n), 0);
	CHECK_EQ(n, 1);
	CHECK_EQ(out[0].len, 5);
	CHECK(memcmp(out[0].data, "hello", 5) == 0);
	CHECK_EQ(sr_mem_pending(m), 0);
	sr_mem_destroy(m);
}

TEST(test_append_must_follow_the_last_entry)
{
	struct rec r;
	sr_mem *m = make(SR_MEM_SYNC, &r);

	CHECK_EQ(put(m, 1, 2, 2, 1), SR_EINVAL); /* gap */
	CHECK_EQ(put(m, 1, 1, 3, 1), 0);
	CHECK_EQ(put(m, 2, 3, 3, 1), SR_EINVAL); /* overlap */
	CHECK_EQ(r.n, 1);
	sr_mem_destroy(m);
}

TEST(test_load_reports_hard_state_and_bounds)
{
	struct rec r;
	sr_mem *m = make(SR_MEM_SYNC, &r);
	sr_durable d;

	CHECK_EQ(sr_mem_ops()->load(m, &d), 0);
	CHECK_EQ(d.first_index, 1);
	CHECK_EQ(d.last_index, 0);
	CHECK_EQ(d.term, 0);
	CHECK_EQ(sr_mem_ops()->set_hard_state(m, 4, 2), 0);
	CHECK_EQ(put(m, 1, 1, 5, 3), 0);
	CHECK_EQ(sr_mem_ops()->load(m, &d), 0);
	CHECK_EQ(d.term, 4);
	CHECK_EQ(d.vote, 2);
	CHECK_EQ(d.first_index, 1);
	CHECK_EQ(d.last_index, 5);
	CHECK_EQ(d.snapshot_index, 0);
	sr_mem_destroy(m);
}

TEST(test_read_limits_and_errors)
{
	struct rec r;
	sr_mem *m = make(SR_MEM_SYNC, &r);
	sr_entry out[10];
	size_t n;

	CHECK_EQ(put(m, 1, 1, 9, 1), 0); /* "e1".."e9": 2 bytes each */
	CHECK_EQ(sr_mem_ops()->read(m, 3, 4, 1 << 20, out, &n), 0);
	CHECK_EQ(n, 4);
	CHECK_EQ(out[0].index, 3);
	CHECK_EQ(out[3].index, 6);
	CHECK_EQ(sr_mem_ops()->read(m, 1, 10, 5, out, &n), 0);
	CHECK_EQ(n, 2); /* 2 + 2 bytes fit in 5, a third does not */
	CHECK_EQ(sr_mem_ops()->read(m, 1, 10, 0, out, &n), 0);
	CHECK_EQ(n, 1); /* at least one */
	CHECK_EQ(sr_mem_ops()->read(m, 10, 1, 100, out, &n), SR_ENOTFOUND);
	CHECK_EQ(sr_mem_ops()->compact(m, 4), 0);
	CHECK_EQ(sr_mem_ops()->read(m, 4, 1, 100, out, &n), SR_ECOMPACTED);
	CHECK_EQ(sr_mem_ops()->read(m, 5, 1, 100, out, &n), 0);
	CHECK_EQ(out[0].index, 5);
	sr_mem_destroy(m);
}

TEST(test_truncate_and_compact_move_the_bounds)
{
	struct rec r;
	sr_mem *m = make(SR_MEM_SYNC, &r);
	sr_mem_info info;

	CHECK_EQ(put(m, 1, 1, 10, 1), 0);
	CHECK_EQ(sr_mem_ops()->truncate(m, 7), 0);
	sr_mem_get_info(m, &info);
	CHECK_EQ(info.last_index, 6);
	CHECK_EQ(sr_mem_ops()->truncate(m, 20), 0); /* nothing there */
	CHECK_EQ(put(m, 2, 7, 8, 2), 0);
	CHECK_EQ(term_at(m, 7, 0), 2);
	CHECK_EQ(sr_mem_ops()->compact(m, 3), 0);
	sr_mem_get_info(m, &info);
	CHECK_EQ(info.first_index, 4);
	CHECK_EQ(info.last_index, 8);
	/* a snapshot past the log: empty log after it */
	CHECK_EQ(sr_mem_ops()->compact(m, 20), 0);
	sr_mem_get_info(m, &info);
	CHECK_EQ(info.first_index, 21);
	CHECK_EQ(info.last_index, 20);
	CHECK_EQ(put(m, 3, 21, 22, 3), 0);
	CHECK_EQ(term_at(m, 22, 0), 3);
	sr_mem_destroy(m);
}

TEST(test_async_completions_wait_for_flush)
{
	struct rec r;
	sr_mem *m = make(SR_MEM_ASYNC, &r);
	sr_mem_info info;

	CHECK_EQ(put(m, 11, 1, 2, 1), 0);
	CHECK_EQ(put(m, 12, 3, 3, 1), 0);
	CHECK_EQ(r.n, 0);
	CHECK_EQ(sr_mem_pending(m), 2);
	sr_mem_get_info(m, &info);
	CHECK_EQ(info.last_index, 3); /* readable at once */
	CHECK_EQ(info.durable_last, 0);
	CHECK_EQ(sr_mem_flush(m, 1), 1);
	CHECK_EQ(r.n, 1);
	CHECK_EQ(r.tokens[0], 11);
	sr_mem_get_info(m, &info);
	CHECK_EQ(info.durable_last, 2);
	CHECK_EQ(sr_mem_flush(m, 10), 1);
	CHECK_EQ(r.tokens[1], 12);
	sr_mem_get_info(m, &info);
	CHECK_EQ(info.durable_last, 3);
	CHECK_EQ(info.pending_ops, 0);
	sr_mem_destroy(m);
}

TEST(test_out_of_order_completion_makes_the_prefix_durable)
{
	struct rec r;
	sr_mem *m = make(SR_MEM_ASYNC, &r);
	sr_mem_info info;

	CHECK_EQ(put(m, 1, 1, 1, 1), 0);
	CHECK_EQ(put(m, 2, 2, 2, 1), 0);
	CHECK_EQ(put(m, 3, 3, 3, 1), 0);
	CHECK_EQ(sr_mem_complete(m, 1, 0), 0); /* token 2 first */
	CHECK_EQ(r.n, 1);
	CHECK_EQ(r.tokens[0], 2);
	sr_mem_get_info(m, &info);
	CHECK_EQ(info.durable_last, 2); /* 1 is durable too, not reported */
	CHECK_EQ(info.pending, 2);
	CHECK_EQ(sr_mem_complete(m, 5, 0), SR_ENOTFOUND);
	CHECK_EQ(sr_mem_complete(m, 1, 0), 0);
	CHECK_EQ(r.tokens[1], 3);
	CHECK_EQ(sr_mem_complete(m, 0, 0), 0);
	CHECK_EQ(r.tokens[2], 1);
	sr_mem_destroy(m);
}

TEST(test_crash_keeps_durable_and_drops_unreported_with_null_rand)
{
	struct rec r;
	sr_mem *m = make(SR_MEM_ASYNC, &r);
	sr_mem_info info;
	sr_durable d;

	CHECK_EQ(sr_mem_ops()->set_hard_state(m, 3, 1), 0);
	CHECK_EQ(put(m, 1, 1, 4, 1), 0);
	sr_mem_flush(m, 1);
	CHECK_EQ(put(m, 2, 5, 8, 3), 0);
	sr_mem_crash(m, NULL, NULL);
	sr_mem_get_info(m, &info);
	CHECK_EQ(info.last_index, 4);
	CHECK_EQ(info.pending, 0);
	CHECK_EQ(info.term, 3); /* hard state is always durable */
	CHECK_EQ(info.vote, 1);
	CHECK_EQ(sr_mem_ops()->load(m, &d), 0);
	CHECK_EQ(d.last_index, 4);
	CHECK_EQ(r.n, 1); /* no callback for the lost append */
	/* the store works on after the crash */
	CHECK_EQ(put(m, 3, 5, 5, 3), 0);
	CHECK_EQ(sr_mem_flush(m, 9), 1);
	CHECK_EQ(r.tokens[1], 3);
	sr_mem_destroy(m);
}

TEST(test_crash_may_keep_unreported_writes)
{
	struct rec r;
	sr_mem *m = make(SR_MEM_ASYNC, &r);
	sr_mem_info info;

	CHECK_EQ(put(m, 1, 1, 4, 1), 0);
	CHECK_EQ(put(m, 2, 5, 6, 1), 0);
	sr_mem_crash(m, always_keep, NULL);
	sr_mem_get_info(m, &info);
	CHECK_EQ(info.last_index, 6);
	CHECK_EQ(info.durable_last, 6);
	CHECK_EQ(info.pending, 0);
	sr_mem_destroy(m);
}

TEST(test_lost_truncate_brings_the_old_suffix_back)
{
	struct rec r;
	sr_mem *m = make(SR_MEM_ASYNC, &r);

	CHECK_EQ(put(m, 1, 1, 5, 1), 0);
	sr_mem_flush(m, 9);
	CHECK_EQ(sr_mem_ops()->truncate(m, 3), 0);
	CHECK_EQ(put(m, 2, 3, 3, 2), 0);
	CHECK_EQ(term_at(m, 3, 0), 2);
	CHECK_EQ(term_at(m, 3, 1), 1); /* durably still the old entry */
	CHECK_EQ(term_at(m, 5, 1), 1);
	sr_mem_crash(m, NULL, NULL);
	CHECK_EQ(term_at(m, 3, 0), 1);
	CHECK_EQ(term_at(m, 5, 0), 1);
	/* the same, but the append after the truncate completed */
	CHECK_EQ(sr_mem_ops()->truncate(m, 3), 0);
	CHECK_EQ(put(m, 3, 3, 3, 2), 0);
	sr_mem_flush(m, 9);
	sr_mem_crash(m, NULL, NULL);
	CHECK_EQ(term_at(m, 3, 0), 2);
	CHECK_EQ(term_at(m, 4, 0), 0);
	sr_mem_destroy(m);
}

TEST(test_random_crashes_leave_a_valid_prefix)
{
	uint64_t seed = 42;

	for (int round = 0; round < 200; round++) {
		struct rec r;
		sr_mem *m = make(SR_MEM_ASYNC, &r);
		sr_mem_info before, after;
		sr_index last = 0;

		for (int k = 0; k < 6; k++) {
			size_t cnt = 1 + lcg(&seed) % 4;
			CHECK_EQ(put(m, (uint64_t)k, last + 1, last + cnt,
				     1 + (sr_term)k),
				 0);
			last += cnt;
			if (lcg(&seed) % 3 == 0)
				sr_mem_flush(m, 1);
		}
		sr_mem_get_info(m, &before);
		sr_mem_crash(m, lcg, &seed);
		sr_mem_get_info(m, &after);
		CHECK(after.last_index >= before.durable_last);
		CHECK(after.last_index <= before.last_index);
		CHECK_EQ(after.durable_last, after.last_index);
		/* terms still increase along the log: no hole, no mix */
		for (sr_index i = 2; i <= after.last_index; i++)
			CHECK(term_at(m, i, 0) >= term_at(m, i - 1, 0));
		sr_mem_destroy(m);
	}
}

TEST(test_failed_completion_is_sticky_until_crash)
{
	struct rec r;
	sr_mem *m = make(SR_MEM_ASYNC, &r);
	sr_mem_info info;

	CHECK_EQ(put(m, 1, 1, 1, 1), 0);
	CHECK_EQ(put(m, 2, 2, 2, 1), 0);
	CHECK_EQ(sr_mem_complete(m, 0, SR_EIO), 0);
	CHECK_EQ(r.status[0], SR_EIO);
	CHECK_EQ(sr_mem_flush(m, 9), 1);
	CHECK_EQ(r.status[1], SR_EIO); /* not durable either */
	CHECK_EQ(put(m, 3, 3, 3, 1), SR_EIO);
	sr_mem_get_info(m, &info);
	CHECK_EQ(info.durable_last, 0);
	CHECK_EQ(info.failed, SR_EIO);
	sr_mem_crash(m, always_keep, NULL); /* failed writes never survive */
	sr_mem_get_info(m, &info);
	CHECK_EQ(info.last_index, 0);
	CHECK_EQ(info.failed, 0);
	CHECK_EQ(put(m, 4, 1, 1, 1), 0);
	sr_mem_destroy(m);
}

TEST(test_injected_errors_change_nothing)
{
	struct rec r;
	sr_mem *m = make(SR_MEM_SYNC, &r);
	sr_mem_info info;
	sr_entry out[2];
	size_t n;

	CHECK_EQ(sr_mem_inject(m, SR_MEM_FAIL_APPEND, SR_ENOSPC), 0);
	CHECK_EQ(put(m, 1, 1, 1, 1), SR_ENOSPC);
	CHECK_EQ(r.n, 0);
	CHECK_EQ(put(m, 1, 1, 1, 1), 0); /* only the next call fails */
	CHECK_EQ(sr_mem_inject(m, SR_MEM_FAIL_HARD_STATE, SR_EIO), 0);
	CHECK_EQ(sr_mem_ops()->set_hard_state(m, 5, 1), SR_EIO);
	CHECK_EQ(sr_mem_inject(m, SR_MEM_FAIL_TRUNCATE, SR_EIO), 0);
	CHECK_EQ(sr_mem_ops()->truncate(m, 1), SR_EIO);
	CHECK_EQ(sr_mem_inject(m, SR_MEM_FAIL_READ, SR_EIO), 0);
	CHECK_EQ(sr_mem_ops()->read(m, 1, 2, 100, out, &n), SR_EIO);
	sr_mem_get_info(m, &info);
	CHECK_EQ(info.term, 0);
	CHECK_EQ(info.last_index, 1);
	CHECK_EQ(sr_mem_inject(m, 99, SR_EIO), SR_EINVAL);
	CHECK_EQ(sr_mem_inject(m, SR_MEM_FAIL_READ, 0), SR_EINVAL);
	sr_mem_destroy(m);
}

TEST(test_snapshot_chunks_become_visible_on_commit_only)
{
	struct rec r;
	sr_mem *m = make(SR_MEM_ASYNC, &r);
	const sr_storage_ops *o = sr_mem_ops();
	sr_membership conf = { 0 };
	char buf[16];
	size_t n;
	sr_durable d;

	sr_membership_add(&conf, 1, SR_ROLE_VOTER, "a");
	CHECK_EQ(o->snapshot_read(m, 0, buf, sizeof(buf), &n), SR_ENOTFOUND);
	CHECK_EQ(o->snapshot_write(m, 0, "x", 1), SR_ESTATE);
	CHECK_EQ(o->snapshot_begin(m, 10, 2, &conf), 0);
	CHECK_EQ(o->snapshot_write(m, 0, "abc", 3), 0);
	CHECK_EQ(o->snapshot_write(m, 5, "z", 1), SR_EINVAL); /* a gap */
	CHECK_EQ(o->snapshot_write(m, 3, "def", 3), 0);
	CHECK_EQ(o->snapshot_read(m, 0, buf, sizeof(buf), &n), SR_ENOTFOUND);
	CHECK_EQ(o->snapshot_finish(m, 1), 0);
	CHECK_EQ(o->snapshot_read(m, 2, buf, sizeof(buf), &n), 0);
	CHECK_EQ(n, 4);
	CHECK(memcmp(buf, "cdef", 4) == 0);
	CHECK_EQ(o->load(m, &d), 0);
	CHECK_EQ(d.snapshot_index, 10);
	CHECK_EQ(d.snapshot_term, 2);
	CHECK_EQ(d.snapshot_conf.n, 1);
	CHECK_EQ(d.snapshot_conf.members[0].id, 1);
	/* an abandoned one leaves the current one alone */
	CHECK_EQ(o->snapshot_begin(m, 20, 3, &conf), 0);
	CHECK_EQ(o->snapshot_write(m, 0, "QQ", 2), 0);
	CHECK_EQ(o->snapshot_finish(m, 0), 0);
	CHECK_EQ(o->snapshot_finish(m, 1), SR_ESTATE);
	/* and a crash mid-write too */
	CHECK_EQ(o->snapshot_begin(m, 30, 3, &conf), 0);
	sr_mem_crash(m, NULL, NULL);
	CHECK_EQ(o->load(m, &d), 0);
	CHECK_EQ(d.snapshot_index, 10);
	CHECK_EQ(o->snapshot_read(m, 0, buf, 2, &n), 0);
	CHECK_EQ(n, 2);
	CHECK(memcmp(buf, "ab", 2) == 0);
	CHECK_EQ(o->snapshot_read(m, 7, buf, 2, &n), SR_EINVAL);
	sr_mem_destroy(m);
}

TEST(test_preload_builds_a_durable_log)
{
	struct rec r;
	sr_mem *m = make(SR_MEM_ASYNC, &r);
	sr_entry e[3] = {
		{ .term = 1, .index = 1, .type = SR_ENTRY_NOOP },
		{ .term = 1,
		  .index = 2,
		  .type = SR_ENTRY_NORMAL,
		  .len = 1,
		  .data = "a" },
		{ .term = 4,
		  .index = 3,
		  .type = SR_ENTRY_NORMAL,
		  .len = 1,
		  .data = "b" },
	};
	sr_mem_info info;

	CHECK_EQ(sr_mem_preload(m, e + 1, 2), SR_EINVAL); /* must start at 1 */
	CHECK_EQ(sr_mem_preload(m, e, 3), 0);
	sr_mem_set_hard_state(m, 4, 2);
	sr_mem_crash(m, NULL, NULL);
	sr_mem_get_info(m, &info);
	CHECK_EQ(info.last_index, 3);
	CHECK_EQ(info.term, 4);
	CHECK_EQ(info.vote, 2);
	CHECK_EQ(term_at(m, 3, 1), 4);
	CHECK_EQ(r.n, 0);
	sr_mem_destroy(m);
}

TEST(test_done_may_append_again)
{
	struct rec r;
	sr_mem *m = make(SR_MEM_ASYNC, &r);
	sr_mem_info info;

	CHECK_EQ(put(m, 1, 1, 1, 1), 0);
	r.reappend = 1;
	CHECK_EQ(sr_mem_flush(m, 1), 1);
	CHECK_EQ(sr_mem_pending(m), 1); /* the one appended from done() */
	CHECK_EQ(sr_mem_flush(m, 9), 1);
	CHECK_EQ(r.tokens[1], 999);
	sr_mem_get_info(m, &info);
	CHECK_EQ(info.durable_last, 2);
	/* synchronous: the nested completion comes from inside too */
	sr_mem_destroy(m);
	m = make(SR_MEM_SYNC, &r);
	r.reappend = 1;
	CHECK_EQ(put(m, 1, 1, 1, 1), 0);
	CHECK_EQ(r.n, 2);
	sr_mem_get_info(m, &info);
	CHECK_EQ(info.last_index, 2);
	sr_mem_destroy(m);
}

/* Counting allocator: everything allocated is freed, and failures are
 * clean. */
struct counting {
	long live;
	long calls;
	long fail_at; /* fail the n-th call (1-based), 0: never */
};

static void *c_malloc(void *ctx, size_t n)
{
	struct counting *k = ctx;

	if (k->fail_at && ++k->calls == k->fail_at)
		return NULL;
	k->live++;
	return malloc(n);
}

static void *c_realloc(void *ctx, void *p, size_t n)
{
	struct counting *k = ctx;

	if (k->fail_at && ++k->calls == k->fail_at)
		return NULL;
	if (!p)
		k->live++;
	return realloc(p, n);
}

static void c_free(void *ctx, void *p)
{
	struct counting *k = ctx;

	if (p)
		k->live--;
	free(p);
}

TEST(test_allocation_goes_through_the_hooks_and_failures_are_clean)
{
	struct counting k = { 0 };
	sr_alloc a = { c_malloc, c_realloc, c_free, &k };

	for (long fail = 0; fail < 40; fail++) {
		struct rec r;
		sr_mem_config mc = { .mode = SR_MEM_ASYNC,
				     .done = on_done,
				     .done_ctx = &r,
				     .alloc = &a };
		sr_mem *m = NULL;
		int rv;

		memset(&r, 0, sizeof(r));
		k.calls = 0;
		k.fail_at = fail;
		rv = sr_mem_create(&mc, &m);
		if (rv) {
			CHECK_EQ(rv, SR_ENOMEM);
			continue;
		}
		for (int i = 0; i < 20; i++) {
			sr_mem_info before, after;

			sr_mem_get_info(m, &before);
			rv = put(m, (uint64_t)i, before.last_index + 1,
				 before.last_index + 3, 1);
			sr_mem_get_info(m, &after);
			if (rv) {
				CHECK_EQ(rv, SR_ENOMEM);
				CHECK_EQ(after.last_index, before.last_index);
				CHECK_EQ(after.pending, before.pending);
			}
			if (i % 3 == 0)
				sr_mem_flush(m, 2);
		}
		sr_mem_crash(m, always_keep, NULL);
		sr_mem_destroy(m);
		CHECK_EQ(k.live, 0);
	}
}

int main(int argc, char **argv)
{
	return test_main(argc, argv);
}
