/*
 * quorum.h — the only place that knows what a quorum is.
 *
 * A configuration's voters form a voter set; every decision of the engine
 * (commit, election, ReadIndex confirmation, CheckQuorum) needs a
 * majority of it.  While a joint configuration is in effect (thesis
 * §4.3) there are two sets, the incoming (C_new) and the outgoing
 * (C_old), and a decision needs a majority of each: that is what keeps
 * two disjoint majorities from deciding differently during the change.
 *
 * The functions here are pure arithmetic over what each voter
 * contributed (a struct quorum_ack per voter: a value and the sets it
 * votes in); progress.c gathers those from the per-peer records.
 */
#ifndef SR_QUORUM_H
#define SR_QUORUM_H

#include <seshat/types.h>

/* The voter sets a member votes in (a bit mask). */
enum { QUORUM_IN = 1u, QUORUM_OUT = 2u };

struct quorum {
	uint32_t size[2]; /* voters of the incoming and the outgoing set */
};

/* What one voter contributes to a decision. */
struct quorum_ack {
	uint64_t value;
	uint32_t sets; /* QUORUM_IN and/or QUORUM_OUT */
};

/* A vote, as struct quorum_ack.value for quorum_tally(). */
enum { QUORUM_NONE = 0, QUORUM_YES = 1, QUORUM_NO = 2 };

/* quorum_tally()'s outcome. */
enum { QUORUM_LOST = -1, QUORUM_PENDING = 0, QUORUM_WON = 1 };

/* The sets member id votes in under configuration c (0: none). */
uint32_t quorum_sets_of(const sr_membership *c, sr_id id);

/* The voter sets of configuration c. */
void quorum_init(struct quorum *q, const sr_membership *c);

static inline int quorum_is_joint(const struct quorum *q)
{
	return q->size[1] > 0;
}

/*
 * The largest value that a majority of every voter set has reached
 * (commit: the highest index durable on a majority; ReadIndex: the newest
 * heartbeat a majority echoed).  0 when a set has no majority among acks.
 */
uint64_t quorum_agreed(const struct quorum *q, const struct quorum_ack *acks,
		       uint32_t k);

/*
 * Count votes (values QUORUM_YES, QUORUM_NO, QUORUM_NONE): QUORUM_WON once
 * every set has a majority of yes, QUORUM_LOST once some set has a
 * majority of no, QUORUM_PENDING otherwise.
 */
int quorum_tally(const struct quorum *q, const struct quorum_ack *acks,
		 uint32_t k);

#endif
