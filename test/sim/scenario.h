/*
 * scenario.h — helpers for the hand-driven scenario tests (paper_test.c,
 * faults_test.c): build a cluster, preload logs, craft messages as a peer
 * would send them, look at logs and held messages.
 *
 * Every scenario runs under the same checker as the simulator; SC_OK()
 * fails the test with the checker's reason and the last trace lines.
 * Set SIM_TRACE=1 in the environment to see a test's whole trace.
 */
#ifndef SIM_SCENARIO_H
#define SIM_SCENARIO_H

#include <stdlib.h>

#include "cluster.h"
#include "testlib.h"

#define SC_OK(c)                                                               \
	do {                                                                   \
		if ((c)->failed) {                                             \
			cluster_dump_ring((c), stderr);                        \
			TEST_FAIL("checker: %s", (c)->why);                    \
		}                                                              \
	} while (0)

/* Options for n members, the last n_ext of them external. */
static inline struct sim_opts sc_opts(int n, int n_ext)
{
	struct sim_opts o;

	sim_opts_default(&o);
	o.n = n;
	o.n_external = n_ext;
	o.log_level = SR_LOG_DEBUG;
	o.tick_on_event = 1;
	return o;
}

static inline struct cluster *sc_make(const struct sim_opts *o)
{
	struct cluster *c = malloc(sizeof(*c));
	const char *t = getenv("SIM_TRACE");

	CHECK(c != NULL);
	CHECK_EQ(cluster_init(c, o), 0);
	cluster_keep_ring(c, 40);
	if (t && *t == '1')
		c->trace = stderr;
	return c;
}

static inline void sc_start(struct cluster *c)
{
	CHECK_EQ(cluster_start(c), 0);
	SC_OK(c);
}

static inline struct cluster *sc_new(const struct sim_opts *o)
{
	struct cluster *c = sc_make(o);

	sc_start(c);
	return c;
}

static inline void sc_free(struct cluster *c)
{
	SC_OK(c);
	cluster_free(c);
	free(c);
}

/*
 * Preload slot's store (before sc_start): entry 1 is the configuration
 * (term 1, as sr_node_bootstrap writes it), entries 2.. have the given
 * terms; hard state (term, no vote).
 */
static inline void sc_preload(struct cluster *c, int slot, sr_term term,
			      const sr_term *terms, size_t n)
{
	unsigned char conf[sizeof(sr_membership)];
	int len = sr_membership_encode(&c->conf, conf, sizeof(conf));
	sr_entry e = { .term = 1, .index = 1, .type = SR_ENTRY_CONFIG };

	CHECK(len > 0);
	e.len = (uint32_t)len;
	e.data = conf;
	CHECK_EQ(sr_mem_preload(c->nodes[slot].mem, &e, 1), 0);
	for (size_t i = 0; i < n; i++) {
		char data[32];

		snprintf(data, sizeof(data), "x%zu", i + 2);
		e.term = terms[i];
		e.index = i + 2;
		e.type = SR_ENTRY_NORMAL;
		e.len = (uint32_t)strlen(data);
		e.data = data;
		CHECK_EQ(sr_mem_preload(c->nodes[slot].mem, &e, 1), 0);
	}
	sr_mem_set_hard_state(c->nodes[slot].mem, term, 0);
}

/* Term of slot's entry at i (0: none). */
static inline sr_term sc_term_at(struct cluster *c, int slot, sr_index i)
{
	sr_entry e;

	return sr_mem_entry(c->nodes[slot].mem, i, 0, &e) ? 0 : e.term;
}

static inline sr_index sc_last(struct cluster *c, int slot)
{
	sr_mem_info info;

	sr_mem_get_info(c->nodes[slot].mem, &info);
	return info.last_index;
}

/* Same entries (terms and bytes) in both stores? */
static inline int sc_logs_equal(struct cluster *c, int a, int b)
{
	sr_index last = sc_last(c, a);

	if (sc_last(c, b) != last)
		return 0;
	for (sr_index i = 1; i <= last; i++) {
		sr_entry x, y;

		if (sr_mem_entry(c->nodes[a].mem, i, 0, &x) ||
		    sr_mem_entry(c->nodes[b].mem, i, 0, &y) ||
		    x.term != y.term || x.len != y.len ||
		    (x.len && memcmp(x.data, y.data, x.len)))
			return 0;
	}
	return 1;
}

static inline sr_msg sc_msg(uint32_t type, int from, int to, sr_term term)
{
	sr_msg m;

	memset(&m, 0, sizeof(m));
	m.type = type;
	m.from = (sr_id)from + 1;
	m.to = (sr_id)to + 1;
	m.term = term;
	return m;
}

static inline sr_msg sc_vote(int from, int to, sr_term term, sr_index li,
			     sr_term lt, int pre)
{
	sr_msg m = sc_msg(SR_MSG_VOTE, from, to, term);

	m.u.vote.last_index = li;
	m.u.vote.last_term = lt;
	m.u.vote.pre = (uint8_t)pre;
	return m;
}

static inline sr_msg sc_vote_resp(int from, int to, sr_term term, int granted,
				  int pre)
{
	sr_msg m = sc_msg(SR_MSG_VOTE_RESP, from, to, term);

	m.u.vote_resp.granted = (uint8_t)granted;
	m.u.vote_resp.pre = (uint8_t)pre;
	return m;
}

static inline sr_msg sc_append(int from, int to, sr_term term, sr_index pi,
			       sr_term pt, sr_index commit, const sr_entry *e,
			       uint32_t n)
{
	sr_msg m = sc_msg(SR_MSG_APPEND, from, to, term);

	m.u.append.prev_index = pi;
	m.u.append.prev_term = pt;
	m.u.append.commit = commit;
	m.u.append.entries = e;
	m.u.append.n_entries = n;
	return m;
}

/* Index in c->held of the last held message of a type to a slot, or -1. */
static inline long sc_held(const struct cluster *c, uint32_t type, int to)
{
	for (size_t i = c->held_n; i-- > 0;)
		if (c->held[i]->m.type == type &&
		    (to < 0 || c->held[i]->m.to == (sr_id)to + 1))
			return (long)i;
	return -1;
}

/* Run until slot i has `role` (or ms pass); 1 if it has. */
static inline int sc_run_until_role(struct cluster *c, int i, int role,
				    uint64_t ms)
{
	uint64_t end = c->now + ms;

	while (c->nodes[i].st.role != role)
		if (!cluster_step(c, end))
			return c->nodes[i].st.role == role;
	return 1;
}

/* Propose on slot i and require acceptance; the proposal id. */
static inline uint64_t sc_propose(struct cluster *c, int i)
{
	uint64_t pid = 0;

	CHECK_EQ(cluster_propose(c, i, 16, &pid), 0);
	SC_OK(c);
	return pid;
}

#endif
