/*
 * internal/rand.h — the seeded pseudo-random generators of the engine and
 * the backends, one copy each.
 *
 * Nothing here is for secrets: the numbers spread election timeouts (thesis
 * §3.4) and reconnect delays so that peers do not move in lockstep, and the
 * simulator relies on a seed meaning the same schedule on every run, so the
 * outputs of these functions must never change.
 *
 * Not installed and static inline: no symbol is added to the library.
 */
#ifndef SR_INTERNAL_RAND_H
#define SR_INTERNAL_RAND_H

#include <stdint.h>

/* splitmix64's finaliser: a bijective mix of one word. */
static inline uint64_t rand_mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* splitmix64: small, fast, and good enough for timeouts and jitter. */
static inline uint64_t rand_next(uint64_t *state)
{
	return rand_mix(*state += 0x9e3779b97f4a7c15ull);
}

/*
 * xorshift64*: the TCP transport's reconnect jitter.  Its state must not be
 * zero (seed it from rand_next and replace a zero by any constant).
 */
static inline uint64_t rand_xorshift(uint64_t *state)
{
	*state ^= *state >> 12;
	*state ^= *state << 25;
	*state ^= *state >> 27;
	return *state * 0x2545f4914f6cdd1dull;
}

#endif
