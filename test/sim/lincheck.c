/*
 * lincheck.c — is what the clients saw linearizable?
 *
 * The simulated state machine is a set of registers (SIM_KEYS keys).  A
 * proposal writes its own id, which no other write uses, to the key
 * sim_key_of(id); a read (sr_node_read_index, then the node's state
 * machine once read_done() reports success) sees every key.  Every call
 * and every return takes a tick of one history clock (cluster.stamp), so
 * real-time order is exact, even within a simulated millisecond.
 *
 * At the end of a seed the history is checked key by key (a history of
 * registers is linearizable iff each key's is: linearizability is local,
 * Herlihy & Wing 1990) with the Wing-Gong search as Lowe improved it:
 * take the calls in order of invocation, linearize the first one whose
 * effect is consistent with the register, backtrack when a return is
 * reached before its call was linearized, and remember every (set of
 * linearized operations, register value) already explored so that no
 * configuration is searched twice.
 *
 * What each outcome means:
 *   - done(0): the write took effect between its call and its return;
 *   - refused, or done(SR_EDROPPED): it never takes effect (left out);
 *   - done(SR_EUNKNOWN), or no outcome when the seed ends: it may take
 *     effect at any time after its call, or never.  An unknown write no
 *     read returned is left out (never taking effect is always a valid
 *     choice for it); one some read returned must take effect before
 *     that read returns, which becomes its return;
 *   - a read that succeeded returned the values it saw; a failed or
 *     unfinished read says nothing and is left out.
 * So a read may return neither a value older than one an earlier read
 * returned, nor one older than a write acknowledged (or observed) before
 * it began.
 *
 * The search is exponential in the worst case (many overlapping writes
 * nobody read, as proposals pending across a partition make), so it is
 * bounded (LIN_BUDGET steps per key).  Because every write writes its
 * own value, an exact polynomial test exists too (zones(), below); it
 * decides every key, and wherever the search finishes the two must
 * agree, which checks the checker.  A key whose search exhausts its
 * budget is counted (cluster.n_lin_giveup) and decided by zones alone.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

#define LIN_BUDGET 200000u

struct lop {
	uint64_t val; /* written, or seen */
	uint64_t inv, resp;
	uint64_t id; /* proposal or read id */
	int slot;
	int write;
};

struct lent {
	struct lent *prev, *next, *match;
	uint32_t op;
	int ret; /* 1: the return of op */
	uint64_t at;
};

/* The memo: (bit set of linearized ops, register value), hashed. */
struct memo {
	uint64_t *words; /* n_entries * (w + 1): bits then value */
	uint32_t *slots; /* 1-based entry numbers, open addressing */
	size_t w, n, cap_entries, n_slots;
};

static uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void memo_rehash(struct memo *m)
{
	size_t ns = m->n_slots ? m->n_slots * 2 : 1024;
	uint32_t *slots = calloc(ns, sizeof(*slots));

	if (!slots)
		abort();
	for (size_t e = 0; e < m->n; e++) {
		const uint64_t *b = m->words + e * (m->w + 1);
		uint64_t h = 0;
		size_t s;

		for (size_t k = 0; k <= m->w; k++)
			h = mix64(h ^ b[k]);
		s = (size_t)h & (ns - 1);
		while (slots[s])
			s = (s + 1) & (ns - 1);
		slots[s] = (uint32_t)(e + 1);
	}
	free(m->slots);
	m->slots = slots;
	m->n_slots = ns;
}

/* 1 if (bits, val) was new (and is now remembered), 0 if seen. */
static int memo_add(struct memo *m, const uint64_t *bits, uint64_t val)
{
	uint64_t h = 0, *dst;
	size_t s;

	if ((m->n + 1) * 2 > m->n_slots)
		memo_rehash(m);
	for (size_t k = 0; k < m->w; k++)
		h = mix64(h ^ bits[k]);
	h = mix64(h ^ val);
	s = (size_t)h & (m->n_slots - 1);
	while (m->slots[s]) {
		const uint64_t *b = m->words + (m->slots[s] - 1) * (m->w + 1);

		if (b[m->w] == val && !memcmp(b, bits, m->w * sizeof(*bits)))
			return 0;
		s = (s + 1) & (m->n_slots - 1);
	}
	if (m->n == m->cap_entries) {
		m->cap_entries = m->cap_entries ? m->cap_entries * 2 : 256;
		m->words = realloc(m->words, m->cap_entries * (m->w + 1) *
						     sizeof(*m->words));
		if (!m->words)
			abort();
	}
	dst = m->words + m->n * (m->w + 1);
	memcpy(dst, bits, m->w * sizeof(*bits));
	dst[m->w] = val;
	m->slots[s] = (uint32_t)(++m->n);
	return 1;
}

static int ent_cmp(const void *a, const void *b)
{
	const struct lent *x = a, *y = b;

	return x->at < y->at ? -1 : x->at > y->at;
}

static void lift(struct lent *e)
{
	e->prev->next = e->next;
	e->next->prev = e->prev;
	e->match->prev->next = e->match->next;
	e->match->next->prev = e->match->prev;
}

static void unlift(struct lent *e)
{
	e->match->prev->next = e->match;
	e->match->next->prev = e->match;
	e->prev->next = e;
	e->next->prev = e;
}

/* 1: linearizable, 0: not, -1: gave up. */
static int wgl(const struct lop *ops, size_t n)
{
	struct lent *ents = calloc(2 * n + 2, sizeof(*ents));
	struct lent *head, *tail, *e;
	struct {
		struct lent *e;
		uint64_t state;
	} *stack = calloc(n + 1, sizeof(*stack));
	struct memo m = { 0 };
	uint64_t *bits, state = 0, steps = 0;
	size_t sp = 0;
	int result = 1;

	if (!ents || !stack)
		abort();
	m.w = (n + 63) / 64;
	bits = calloc(m.w + 1, sizeof(*bits));
	if (!bits)
		abort();
	for (size_t i = 0; i < n; i++) {
		ents[2 * i] = (struct lent){ .op = (uint32_t)i,
					     .at = ops[i].inv };
		ents[2 * i + 1] = (struct lent){ .op = (uint32_t)i,
						 .ret = 1,
						 .at = ops[i].resp };
	}
	qsort(ents, 2 * n, sizeof(*ents), ent_cmp);
	{
		/* matches, after sorting */
		size_t *call = malloc(n * sizeof(*call));

		if (!call)
			abort();
		for (size_t i = 0; i < 2 * n; i++)
			if (!ents[i].ret)
				call[ents[i].op] = i;
		for (size_t i = 0; i < 2 * n; i++)
			if (ents[i].ret) {
				ents[call[ents[i].op]].match = &ents[i];
				ents[i].match = &ents[call[ents[i].op]];
			}
		free(call);
	}
	head = &ents[2 * n];
	tail = &ents[2 * n + 1];
	head->next = n ? &ents[0] : tail;
	tail->prev = n ? &ents[2 * n - 1] : head;
	for (size_t i = 0; i < 2 * n; i++) {
		ents[i].prev = i ? &ents[i - 1] : head;
		ents[i].next = i + 1 < 2 * n ? &ents[i + 1] : tail;
	}
	e = head->next;
	while (head->next != tail) {
		if (++steps > LIN_BUDGET) {
			result = -1;
			break;
		}
		if (!e->ret) {
			const struct lop *o = &ops[e->op];
			uint64_t next = o->write ? o->val : state;

			if (o->write || o->val == state) {
				bits[e->op / 64] |= 1ull << (e->op % 64);
				if (memo_add(&m, bits, next)) {
					stack[sp].e = e;
					stack[sp++].state = state;
					state = next;
					lift(e);
					e = head->next;
					continue;
				}
				bits[e->op / 64] &= ~(1ull << (e->op % 64));
			}
			e = e->next;
		} else {
			/* a return before its call was linearized: undo */
			if (!sp) {
				result = 0;
				break;
			}
			e = stack[--sp].e;
			state = stack[sp].state;
			bits[e->op / 64] &= ~(1ull << (e->op % 64));
			unlift(e);
			e = e->next;
		}
	}
	free(bits);
	free(m.words);
	free(m.slots);
	free(stack);
	free(ents);
	return result;
}

/*
 * The exact test for a register whose writes write distinct values
 * (Gibbons and Korach 1997, in the "zones" form of Golab, Li and Shah
 * 2011), in O(n log n).  The cluster of a write is the write and the
 * reads that returned its value; its zone runs from the earliest return
 * f to the latest call s in the cluster.  If f < s the zone is forward:
 * the value must be the register's over all of [f, s].  The history is
 * linearizable iff no read returns before its write was called, no two
 * forward zones overlap, and no backward zone ([s, f], s < f: the
 * cluster may be linearized at one point anywhere in it) lies inside a
 * forward zone.  The initial value 0 is a write at time 0.
 */
struct zone {
	uint64_t a, b;
};

static int zone_cmp(const void *x, const void *y)
{
	const struct zone *p = x, *q = y;

	return p->a < q->a ? -1 : p->a > q->a;
}

/* 1: linearizable, 0: not. */
static int zones(const struct lop *ops, size_t n, uint64_t max_val)
{
	struct cl {
		uint64_t f, s, w_inv;
		int used;
	} *cl = calloc(max_val + 1, sizeof(*cl));
	struct zone *fwd = calloc(n + 1, sizeof(*fwd));
	struct zone *bwd = calloc(n + 1, sizeof(*bwd));
	size_t nf = 0, nb = 0;
	int ok = 1;

	if (!cl || !fwd || !bwd)
		abort();
	cl[0].used = 1; /* the initial write, at time 0 */
	for (size_t i = 0; i < n; i++)
		if (ops[i].write) {
			struct cl *k = &cl[ops[i].val];

			k->used = 1;
			k->f = ops[i].resp;
			k->s = k->w_inv = ops[i].inv;
		}
	for (size_t i = 0; i < n && ok; i++) {
		struct cl *k = &cl[ops[i].val];

		if (ops[i].write)
			continue;
		if (!k->used || ops[i].resp < k->w_inv) {
			ok = 0; /* a value never written, or read before */
			break;
		}
		if (ops[i].resp < k->f)
			k->f = ops[i].resp;
		if (ops[i].inv > k->s)
			k->s = ops[i].inv;
	}
	for (uint64_t v = 0; v <= max_val && ok; v++) {
		if (!cl[v].used)
			continue;
		if (cl[v].f < cl[v].s)
			fwd[nf++] = (struct zone){ cl[v].f, cl[v].s };
		else if (cl[v].s < cl[v].f)
			bwd[nb++] = (struct zone){ cl[v].s, cl[v].f };
	}
	qsort(fwd, nf, sizeof(*fwd), zone_cmp);
	for (size_t i = 1; i < nf && ok; i++)
		if (fwd[i].a < fwd[i - 1].b)
			ok = 0;
	for (size_t i = 0; i < nb && ok; i++) {
		/* the forward zone starting last before bwd[i] starts */
		size_t lo = 0, hi = nf;

		while (lo < hi) {
			size_t mid = (lo + hi) / 2;

			if (fwd[mid].a < bwd[i].a)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo && fwd[lo - 1].b > bwd[i].b)
			ok = 0;
	}
	free(cl);
	free(fwd);
	free(bwd);
	return ok;
}

static int u64_cmp(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

	return a < b ? -1 : a > b;
}

/* The write of value v among ops, or NULL. */
static const struct lop *writer(const struct lop *ops, size_t n, uint64_t v)
{
	for (size_t i = 0; i < n; i++)
		if (ops[i].write && ops[i].val == v)
			return &ops[i];
	return NULL;
}

/*
 * A non-linearizable key: name the read that shows it.  The history cut
 * at time T (the writes called by T, the reads returned by T) is
 * linearizable if the whole one is (what a linearization orders after T
 * cannot matter to a read that returned before), so the first read
 * whose return makes the cut fail is found by bisection.
 */
static void explain(struct cluster *c, int key, const struct lop *ops, size_t n,
		    uint64_t max_val)
{
	struct lop *cut = calloc(n + 1, sizeof(*cut));
	uint64_t *ends = calloc(n + 1, sizeof(*ends));
	const struct lop *r = NULL, *w, *last = NULL, *prev = NULL;
	size_t ne = 0, lo = 0, hi;

	if (!cut || !ends)
		abort();
	for (size_t i = 0; i < n; i++)
		if (!ops[i].write)
			ends[ne++] = ops[i].resp;
	qsort(ends, ne, sizeof(*ends), u64_cmp);
	hi = ne;
	while (lo < hi) { /* the first end whose cut fails */
		size_t mid = (lo + hi) / 2, m = 0;

		for (size_t i = 0; i < n; i++)
			if (ops[i].write ? ops[i].inv <= ends[mid]
					 : ops[i].resp <= ends[mid])
				cut[m++] = ops[i];
		if (zones(cut, m, max_val))
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = 0; lo < ne && i < n; i++)
		if (!ops[i].write && ops[i].resp == ends[lo])
			r = &ops[i];
	free(cut);
	free(ends);
	if (!r) {
		sim_fail(c,
			 "linearizability: the history of key %d (%zu "
			 "operations) has no linearization",
			 key, n);
		return;
	}
	w = r->val ? writer(ops, n, r->val) : NULL;
	/* the latest write acknowledged before the read began */
	for (size_t i = 0; i < n; i++)
		if (ops[i].write && ops[i].resp < r->inv &&
		    (!last || ops[i].inv > last->inv))
			last = &ops[i];
	/* the latest read that returned another value before it began */
	for (size_t i = 0; i < n; i++)
		if (!ops[i].write && ops[i].val != r->val &&
		    ops[i].resp < r->inv && (!prev || ops[i].resp > prev->resp))
			prev = &ops[i];
	if (w && r->resp < w->inv)
		sim_fail(c,
			 "linearizability: n%d's read #%" PRIu64 " returns "
			 "#%" PRIu64 " for key %d before that write began",
			 r->slot + 1, r->id, r->val, key);
	else
		sim_fail(c,
			 "linearizability: n%d's read #%" PRIu64 " returns %s"
			 "%" PRIu64 " for key %d, which no linearization of "
			 "what came before allows (before it began: write "
			 "#%" PRIu64 " acknowledged, n%d's read #%" PRIu64
			 " returned %" PRIu64 ")",
			 r->slot + 1, r->id,
			 r->val ? "#" : "the initial value ", r->val, key,
			 last ? last->val : 0, prev ? prev->slot + 1 : 0,
			 prev ? prev->id : 0, prev ? prev->val : 0);
}

void check_linearizable(struct cluster *c)
{
	struct lop *ops;
	uint64_t *first_seen; /* per proposal: stamp of the first read
				 that returned it, 0 if none */

	if (c->failed)
		return;
	ops = calloc(c->props_n + c->reads_n + 1, sizeof(*ops));
	first_seen = calloc(c->props_n + 1, sizeof(*first_seen));
	if (!ops || !first_seen)
		abort();
	for (size_t r = 0; r < c->reads_n; r++) {
		const struct sim_read *rd = &c->reads[r];

		if (rd->state != READ_OK)
			continue;
		for (int k = 0; k < SIM_KEYS; k++) {
			uint64_t v = rd->val[k];

			if (v > c->props_n || (v && sim_key_of(v) != k)) {
				sim_fail(c,
					 "linearizability: n%d's read #%zu "
					 "returns %" PRIu64 " for key %d, "
					 "which no write wrote there",
					 rd->slot + 1, r + 1, v, k);
				goto out;
			}
			if (v && (!first_seen[v] || rd->resp < first_seen[v]))
				first_seen[v] = rd->resp;
		}
	}
	for (int k = 0; k < SIM_KEYS && !c->failed; k++) {
		size_t n = 0;
		int rv, zv;

		for (size_t p = 0; p < c->props_n; p++) {
			const struct sim_prop *pp = &c->props[p];
			struct lop *o = &ops[n];

			if (sim_key_of(p + 1) != k ||
			    pp->state == PROP_FAILED ||
			    pp->state == PROP_DROPPED)
				continue;
			o->write = 1;
			o->val = p + 1;
			o->id = p + 1;
			o->slot = pp->slot;
			o->inv = 2 * pp->inv;
			if (pp->state == PROP_ACKED)
				o->resp = 2 * pp->resp;
			else if (first_seen[p + 1])
				o->resp = 2 * first_seen[p + 1] - 1;
			else
				continue; /* unknown and never seen */
			n++;
		}
		for (size_t r = 0; r < c->reads_n; r++) {
			const struct sim_read *rd = &c->reads[r];
			struct lop *o = &ops[n];

			if (rd->state != READ_OK)
				continue;
			o->val = rd->val[k];
			o->id = r + 1;
			o->slot = rd->slot;
			o->inv = 2 * rd->inv;
			o->resp = 2 * rd->resp;
			n++;
		}
		c->n_lin_ops += n;
		rv = wgl(ops, n);
		zv = zones(ops, n, c->props_n);
		if (rv < 0)
			c->n_lin_giveup++;
		if (rv >= 0 && rv != zv)
			sim_fail(c,
				 "lincheck: the search and the zone test "
				 "disagree on key %d (%d, %d): a checker bug",
				 k, rv, zv);
		else if (!zv)
			explain(c, k, ops, n, c->props_n);
	}
out:
	free(first_seen);
	free(ops);
}
