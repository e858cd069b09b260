/*
 * quorum.c — majorities over one or two voter sets (see quorum.h).
 *
 * One algorithm for every "what has a majority reached" question: the
 * values of a set's voters sorted in decreasing order, of which the
 * majority-th is the largest value a majority holds.  Sets have at most
 * SR_MAX_MEMBERS voters, so an insertion sort on the stack is the fastest
 * way there is.
 */
#include "quorum.h"

static uint32_t quorum_majority(uint32_t size)
{
	return size / 2 + 1;
}

/*
 * A simple configuration has one voter set, its voters (QUORUM_IN).  A
 * joint one (sr_member.new_role set) has two: C_new's voters, by new_role,
 * are the incoming set, C_old's, by role, the outgoing one.
 */
static uint32_t quorum_member_sets(const sr_member *m)
{
	if (!m->new_role)
		return m->role == SR_ROLE_VOTER ? QUORUM_IN : 0;
	return (m->new_role == SR_ROLE_VOTER ? QUORUM_IN : 0) |
	       (m->role == SR_ROLE_VOTER ? QUORUM_OUT : 0);
}

uint32_t quorum_sets_of(const sr_membership *c, sr_id id)
{
	for (uint32_t i = 0; i < c->n && i < SR_MAX_MEMBERS; i++)
		if (c->members[i].id == id)
			return quorum_member_sets(&c->members[i]);
	return 0;
}

void quorum_init(struct quorum *q, const sr_membership *c)
{
	q->size[0] = q->size[1] = 0;
	for (uint32_t i = 0; i < c->n && i < SR_MAX_MEMBERS; i++) {
		uint32_t sets = quorum_member_sets(&c->members[i]);
		q->size[0] += (sets & QUORUM_IN) != 0;
		q->size[1] += (sets & QUORUM_OUT) != 0;
	}
}

/* The largest value a majority of one set holds (0: no majority). */
static uint64_t quorum_agreed_in(const struct quorum_ack *acks, uint32_t k,
				 uint32_t set, uint32_t size)
{
	uint64_t v[SR_MAX_MEMBERS + 1];
	uint32_t m = 0, maj = quorum_majority(size);

	for (uint32_t i = 0; i < k && m <= SR_MAX_MEMBERS; i++) {
		uint64_t x = acks[i].value;
		uint32_t j = m;
		if (!(acks[i].sets & set))
			continue;
		/* insertion, largest first */
		while (j > 0 && v[j - 1] < x) {
			v[j] = v[j - 1];
			j--;
		}
		v[j] = x;
		m++;
	}
	return m < maj ? 0 : v[maj - 1];
}

uint64_t quorum_agreed(const struct quorum *q, const struct quorum_ack *acks,
		       uint32_t k)
{
	uint64_t in, out;

	if (q->size[0] == 0)
		return 0;
	in = quorum_agreed_in(acks, k, QUORUM_IN, q->size[0]);
	if (!quorum_is_joint(q))
		return in;
	out = quorum_agreed_in(acks, k, QUORUM_OUT, q->size[1]);
	return in < out ? in : out;
}

int quorum_tally(const struct quorum *q, const struct quorum_ack *acks,
		 uint32_t k)
{
	int won = 1;

	if (q->size[0] == 0)
		return QUORUM_PENDING;
	for (uint32_t s = 0; s < 2 && q->size[s]; s++) {
		uint32_t set = s ? QUORUM_OUT : QUORUM_IN, yes = 0, no = 0;
		uint32_t maj = quorum_majority(q->size[s]);
		for (uint32_t i = 0; i < k; i++) {
			if (!(acks[i].sets & set))
				continue;
			yes += acks[i].value == QUORUM_YES;
			no += acks[i].value == QUORUM_NO;
		}
		if (no >= maj)
			return QUORUM_LOST;
		if (yes < maj)
			won = 0;
	}
	return won ? QUORUM_WON : QUORUM_PENDING;
}
