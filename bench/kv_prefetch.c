/*
 * kv_prefetch.c — what the state machine's prefetch hint saves when
 * kvnode applies a run of SETs to a map whose memory is not in the cache.
 *
 * A map of --keys keys (100-byte values, "key:%012d") is filled, then
 * batches of --batch SETs of random existing keys are applied, each after
 * walking an --evict MiB buffer so that the map's buckets and entries have
 * left the caches (on a busy host three nodes and the clients share the
 * last-level cache, as in `make bench-kv`).  Four ways, taken in turn so
 * that each sees the same machine:
 *
 *   map        kv_map_set() of each key
 *   map+hint   kv_map_prefetch() of the batch's keys, then the sets
 *   fsm        kv_fsm_ops.apply() of each entry (TIMED(SET key value), as
 *              kvnode proposes it)
 *   fsm+hint   kv_fsm_ops.prefetch() of the run, then apply(), as the
 *              engine does with the hook
 *
 * Prints the median over --rounds rounds of each way's ns per SET (a round
 * is --batches batches of each) and the ratios.  `make bench-kvmap`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kvnode.h"

#define MAX_BATCH SR_FSM_PREFETCH_MAX
enum { MAP, MAP_HINT, FSM, FSM_HINT, WAYS };
static const char *const way_name[WAYS] = { "map", "map+hint", "fsm",
					    "fsm+hint" };

static double now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static uint64_t rng = 88172645463325252ull;
static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Walk the buffer, one write a cache line, so it displaces the map. */
static void evict(unsigned char *buf, size_t len)
{
	for (size_t i = 0; i < len; i += 64)
		buf[i]++;
}

/* One batch of SETs the given way; returns the ns it took. */
static double run_batch(struct kv_fsm *f, int way, size_t n, char keys[][32],
			const size_t *klens, const sr_entry *ents,
			const char *val)
{
	const void *kp[MAX_BATCH];
	double t0 = now_ns();

	switch (way) {
	case MAP_HINT:
		for (size_t i = 0; i < n; i++)
			kp[i] = keys[i];
		kv_map_prefetch(&f->map, n, kp, klens);
		/* fall through */
	case MAP:
		for (size_t i = 0; i < n; i++)
			if (kv_map_set(&f->map, keys[i], klens[i], val, 100))
				kv_fsm_oom();
		break;
	case FSM_HINT:
		kv_fsm_ops.prefetch(f, ents, n);
		/* fall through */
	case FSM:
		for (size_t i = 0; i < n; i++) {
			void *r = NULL;
			kv_fsm_ops.apply(f, &ents[i], &r);
			if (r)
				kv_fsm_ops.free_result(f, r);
		}
		break;
	}
	return now_ns() - t0;
}

/* A SET of a random existing key as kvnode proposes it, TIMED(SET key
 * val), into enc and e (pointing into enc); the key goes to key (32
 * bytes); returns its length. */
static size_t make_set(struct kv_buf *enc, sr_entry *e, char *key, size_t nkeys,
		       const char *val, sr_index index)
{
	unsigned char t[8];
	const char *ta[2] = { (const char *)t, NULL };
	size_t tl[2] = { 8, 0 };
	struct kv_buf set = { 0 };
	const char *sa[2] = { key, val };
	size_t sl[2] = { 0, 100 };

	sl[0] = (size_t)snprintf(key, 32, "key:%012llu",
				 (unsigned long long)(next_rand() % nkeys));
	kv_cmd_le64(t, 1);
	if (kv_cmd_encode(&set, KV_OP_SET, 2, sa, sl))
		kv_fsm_oom();
	ta[1] = set.p;
	tl[1] = set.len;
	enc->len = 0;
	if (kv_cmd_encode(enc, KV_OP_TIMED, 2, ta, tl))
		kv_fsm_oom();
	kv_buf_free(&set);
	*e = (sr_entry){ .index = index,
			 .term = 1,
			 .type = SR_ENTRY_NORMAL,
			 .len = (uint32_t)enc->len,
			 .data = enc->p };
	return sl[0];
}

static unsigned long arg(int argc, char **argv, const char *name,
			 unsigned long dflt)
{
	for (int i = 1; i + 1 < argc; i++)
		if (strcmp(argv[i], name) == 0)
			return strtoul(argv[i + 1], NULL, 10);
	return dflt;
}

int main(int argc, char **argv)
{
	size_t nkeys = arg(argc, argv, "--keys", 100000);
	size_t batch = arg(argc, argv, "--batch", 50);
	size_t batches = arg(argc, argv, "--batches", 400);
	size_t rounds = arg(argc, argv, "--rounds", 5);
	size_t evict_len = arg(argc, argv, "--evict", 64) << 20;
	static char keys[MAX_BATCH][32];
	size_t klens[MAX_BATCH];
	sr_entry ents[MAX_BATCH];
	struct kv_buf enc[MAX_BATCH];
	char val[100], key[32];
	unsigned char *junk = NULL;
	double *per_round[WAYS];
	struct kv_fsm f;

	if (batch < 1 || batch > MAX_BATCH || nkeys < 1 || rounds < 1 ||
	    batches < 1) {
		fprintf(stderr,
			"usage: kv_prefetch [--keys N] [--batch 1..%d] "
			"[--batches N] [--rounds N] [--evict MiB]\n",
			MAX_BATCH);
		return 2;
	}
	memset(&f, 0, sizeof(f));
	memset(enc, 0, sizeof(enc));
	memset(val, 'x', sizeof(val));
	if (kv_map_init(&f.map))
		kv_fsm_oom();
	for (size_t i = 0; i < nkeys; i++) {
		int n = snprintf(key, sizeof(key), "key:%012zu", i);
		if (kv_map_set(&f.map, key, (size_t)n, val, sizeof(val)))
			kv_fsm_oom();
	}
	if (evict_len && !(junk = calloc(1, evict_len)))
		kv_fsm_oom();
	for (int w = 0; w < WAYS; w++)
		if (!(per_round[w] = calloc(rounds, sizeof(double))))
			kv_fsm_oom();
	for (size_t r = 0; r < rounds; r++) {
		double total[WAYS] = { 0 };
		for (size_t b = 0; b < batches * WAYS; b++) {
			int way = (int)(b % WAYS);
			for (size_t i = 0; i < batch; i++)
				klens[i] = make_set(&enc[i], &ents[i], keys[i],
						    nkeys, val,
						    b * batch + i + 1);
			if (junk)
				evict(junk, evict_len);
			total[way] += run_batch(&f, way, batch, keys, klens,
						ents, val);
		}
		for (int w = 0; w < WAYS; w++)
			per_round[w][r] = total[w] / (double)(batches * batch);
	}
	printf("kv_prefetch: %zu keys, batches of %zu SETs (100-byte values), "
	       "%zu MiB evicted before each, %zu rounds of %zu batches a "
	       "way\n",
	       nkeys, batch, evict_len >> 20, rounds, batches);
	for (int w = 0; w < WAYS; w++)
		qsort(per_round[w], rounds, sizeof(double), cmp_double);
	for (int w = 0; w < WAYS; w++)
		printf("  %-9s %7.0f ns per SET (median; rounds %.0f..%.0f)\n",
		       way_name[w], per_round[w][rounds / 2], per_round[w][0],
		       per_round[w][rounds - 1]);
	printf("  hint/none: map %.2fx, fsm %.2fx\n",
	       per_round[MAP_HINT][rounds / 2] / per_round[MAP][rounds / 2],
	       per_round[FSM_HINT][rounds / 2] / per_round[FSM][rounds / 2]);
	for (size_t i = 0; i < MAX_BATCH; i++)
		kv_buf_free(&enc[i]);
	for (int w = 0; w < WAYS; w++)
		free(per_round[w]);
	free(junk);
	kv_map_free(&f.map);
	return 0;
}
