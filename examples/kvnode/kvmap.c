/*
 * kvmap.c — the key-value map: a chained hash table of byte strings.
 *
 * Each key lives with its value in one allocation (struct kv_ent: header,
 * key bytes, value bytes), linked into a bucket.  The bucket count is a
 * power of two and doubles when the table holds as many keys as buckets,
 * so chains stay short on average; a resize rehashes every entry at once
 * (a few tens of milliseconds at a million keys, rare and amortized).
 *
 * Keys come from clients, so the hash is keyed: SipHash-1-3 with a random
 * per-process key (written here from the SipHash paper's description).  A
 * client cannot aim many keys at one bucket without knowing the key.  The
 * layout of the table differs between processes; nothing depends on it
 * (snapshots list the keys in table order, and restore does not care).
 *
 * Failure: kv_map_set() returns -1 on allocation failure and leaves the
 * map as it was; the state machine treats that as fatal (see kvfsm.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "kvnode.h"

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static void sip_round(uint64_t v[4])
{
	v[0] += v[1];
	v[1] = ROTL(v[1], 13);
	v[1] ^= v[0];
	v[0] = ROTL(v[0], 32);
	v[2] += v[3];
	v[3] = ROTL(v[3], 16);
	v[3] ^= v[2];
	v[0] += v[3];
	v[3] = ROTL(v[3], 21);
	v[3] ^= v[0];
	v[2] += v[1];
	v[1] = ROTL(v[1], 17);
	v[1] ^= v[2];
	v[2] = ROTL(v[2], 32);
}

static uint64_t load_le64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* SipHash with one compression and three finalization rounds. */
uint64_t kv_siphash(uint64_t k0, uint64_t k1, const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t v[4] = { k0 ^ 0x736f6d6570736575ULL,
			  k1 ^ 0x646f72616e646f6dULL,
			  k0 ^ 0x6c7967656e657261ULL,
			  k1 ^ 0x7465646279746573ULL };
	uint64_t m, last = (uint64_t)(len & 0xff) << 56;
	size_t i, full = len & ~(size_t)7;

	for (i = 0; i < full; i += 8) {
		m = load_le64(p + i);
		v[3] ^= m;
		sip_round(v);
		v[0] ^= m;
	}
	for (size_t j = 0; i + j < len; j++)
		last |= (uint64_t)p[i + j] << (8 * j);
	v[3] ^= last;
	sip_round(v);
	v[0] ^= last;
	v[2] ^= 0xff;
	sip_round(v);
	sip_round(v);
	sip_round(v);
	return v[0] ^ v[1] ^ v[2] ^ v[3];
}

int kv_map_init(struct kv_map *m)
{
	uint64_t key[2] = { 0x0123456789abcdefULL, 0xfedcba9876543210ULL };

	memset(m, 0, sizeof(*m));
	/* A fixed key if the kernel has no randomness for us: still a good
	 * hash, only not flood-resistant. */
	if (getrandom(key, sizeof(key), GRND_NONBLOCK) != sizeof(key))
		fprintf(stderr, "kvnode: getrandom failed; fixed hash key\n");
	m->k0 = key[0];
	m->k1 = key[1];
	m->nb = 16;
	m->b = calloc(m->nb, sizeof(*m->b));
	return m->b ? 0 : -1;
}

void kv_map_free(struct kv_map *m)
{
	for (size_t i = 0; i < m->nb; i++) {
		struct kv_ent *e = m->b[i], *next;
		for (; e; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(m->b);
	if (m->ttl) {
		kv_map_free(m->ttl);
		free(m->ttl);
	}
	memset(m, 0, sizeof(*m));
}

/* ------------------------------------------------------------------ */
/* Expiry                                                             */
/* ------------------------------------------------------------------ */

/*
 * A key's expiry time (absolute milliseconds) lives in the side table
 * m->ttl (a map of key -> 8 bytes LE), so that keys without one cost
 * nothing.  A key whose time is <= m->now is absent for every function
 * here; m->now is the time of the entry being applied, stamped by the
 * leader (kvfsm.c), so every node expires the same keys at the same
 * point of the log.  Expired keys are removed when a write touches them
 * or by kv_map_purge_expired.
 */
static uint64_t ttl_at(const struct kv_map *m, const void *key, size_t klen)
{
	const struct kv_ent *t;
	uint64_t v = 0;

	if (!m->ttl || !m->ttl->count)
		return 0;
	t = kv_map_get(m->ttl, key, klen);
	if (!t || t->vlen != 8)
		return 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | (unsigned char)kv_ent_val(t)[i];
	return v;
}

static int expired(const struct kv_map *m, const void *key, size_t klen)
{
	uint64_t at = ttl_at(m, key, klen);

	return at && at <= m->now;
}

uint64_t kv_map_ttl(const struct kv_map *m, const void *key, size_t klen)
{
	return ttl_at(m, key, klen);
}

int kv_map_live(const struct kv_map *m, const struct kv_ent *e)
{
	return !expired(m, kv_ent_key(e), e->klen);
}

size_t kv_map_live_count(const struct kv_map *m)
{
	size_t dead = 0, bucket = 0;
	const struct kv_ent *t = NULL;

	while (m->ttl && (t = kv_map_next(m->ttl, &bucket, t)) != NULL)
		dead += expired(m, kv_ent_key(t), t->klen);
	return m->count - dead;
}

size_t kv_map_ttl_count(const struct kv_map *m)
{
	return m->ttl ? m->ttl->count : 0;
}

int kv_map_set_ttl(struct kv_map *m, const void *key, size_t klen, uint64_t at)
{
	unsigned char le[8];

	if (!at) {
		if (m->ttl)
			kv_map_del(m->ttl, key, klen);
		return 0;
	}
	if (!m->ttl) {
		m->ttl = calloc(1, sizeof(*m->ttl));
		if (!m->ttl || kv_map_init(m->ttl)) {
			free(m->ttl);
			m->ttl = NULL;
			return -1;
		}
	}
	for (int i = 0; i < 8; i++)
		le[i] = (unsigned char)(at >> (8 * i));
	return kv_map_set(m->ttl, key, klen, le, 8);
}

size_t kv_map_purge_expired(struct kv_map *m, size_t max)
{
	size_t n = 0, bucket = 0;
	const struct kv_ent *t = NULL;

	while (m->ttl && n < max &&
	       (t = kv_map_next(m->ttl, &bucket, t)) != NULL) {
		char key[256];
		if (t->klen > sizeof(key) ||
		    !expired(m, kv_ent_key(t), t->klen))
			continue;
		memcpy(key, kv_ent_key(t), t->klen);
		kv_map_del(m, key, t->klen); /* also drops the ttl entry */
		n++;
		bucket = 0; /* the table changed: start over */
		t = NULL;
	}
	return n;
}

void kv_map_swap(struct kv_map *a, struct kv_map *b)
{
	struct kv_map t = *a;
	*a = *b;
	*b = t;
}

static struct kv_ent **map_slot(const struct kv_map *m, uint64_t h,
				const void *key, size_t klen)
{
	struct kv_ent **pp = &m->b[h & (m->nb - 1)];

	for (; *pp; pp = &(*pp)->next) {
		const struct kv_ent *e = *pp;
		if (e->hash == h && e->klen == klen &&
		    memcmp(e->data, key, klen) == 0)
			break;
	}
	return pp;
}

/*
 * Over more keys than the cache holds, a set or delete waits on two DRAM
 * misses in a row: the bucket slot, then the entry it points to.  For a
 * run of keys, issue the loads of all the slots first (hashing each key),
 * then those of the entries the slots point to, so the misses overlap
 * instead of following one another.  Reads the map, changes nothing.
 */
#define PREFETCH_CHUNK 64

void kv_map_prefetch(const struct kv_map *m, size_t n, const void *const *keys,
		     const size_t *klens)
{
	size_t slot[PREFETCH_CHUNK];

	if (!m->b || !m->nb)
		return;
	for (size_t base = 0; base < n; base += PREFETCH_CHUNK) {
		size_t k = n - base < PREFETCH_CHUNK ? n - base
						     : PREFETCH_CHUNK;
		for (size_t i = 0; i < k; i++) {
			uint64_t h = kv_siphash(m->k0, m->k1, keys[base + i],
						klens[base + i]);
			slot[i] = (size_t)h & (m->nb - 1);
			__builtin_prefetch(&m->b[slot[i]]);
		}
		for (size_t i = 0; i < k; i++) {
			const struct kv_ent *e = m->b[slot[i]];
			if (e)
				__builtin_prefetch(e);
		}
	}
}

const struct kv_ent *kv_map_get(const struct kv_map *m, const void *key,
				size_t klen)
{
	uint64_t h = kv_siphash(m->k0, m->k1, key, klen);
	const struct kv_ent *e = *map_slot(m, h, key, klen);

	return e && expired(m, key, klen) ? NULL : e;
}

/* Double the bucket array; on allocation failure keep the old one (the
 * table still works, with longer chains). */
static void map_grow(struct kv_map *m)
{
	size_t nb = m->nb * 2;
	struct kv_ent **b = calloc(nb, sizeof(*b));

	if (!b)
		return;
	for (size_t i = 0; i < m->nb; i++) {
		struct kv_ent *e = m->b[i], *next;
		for (; e; e = next) {
			next = e->next;
			e->next = b[e->hash & (nb - 1)];
			b[e->hash & (nb - 1)] = e;
		}
	}
	free(m->b);
	m->b = b;
	m->nb = nb;
}

int kv_map_set(struct kv_map *m, const void *key, size_t klen, const void *val,
	       size_t vlen)
{
	uint64_t h = kv_siphash(m->k0, m->k1, key, klen);
	struct kv_ent **pp = map_slot(m, h, key, klen), *old = *pp, *e;

	if (klen > UINT32_MAX || vlen > UINT32_MAX - klen)
		return -1;
	if (old && expired(m, key, klen))
		kv_map_del(m->ttl, key, klen); /* a new key: no time to live */
	if (old && old->vlen == vlen) {
		memcpy(old->data + klen, val, vlen);
		return 0;
	}
	e = malloc(sizeof(*e) + klen + vlen);
	if (!e)
		return -1;
	e->hash = h;
	e->klen = (uint32_t)klen;
	e->vlen = (uint32_t)vlen;
	memcpy(e->data, key, klen);
	if (vlen)
		memcpy(e->data + klen, val, vlen);
	if (old) {
		e->next = old->next;
		*pp = e;
		m->bytes -= old->vlen;
		m->bytes += vlen;
		free(old);
		return 0;
	}
	e->next = NULL;
	*pp = e;
	m->count++;
	m->bytes += klen + vlen;
	if (m->count > m->nb)
		map_grow(m);
	return 0;
}

int kv_map_del(struct kv_map *m, const void *key, size_t klen)
{
	uint64_t h = kv_siphash(m->k0, m->k1, key, klen);
	struct kv_ent **pp = map_slot(m, h, key, klen), *e = *pp;
	int live;

	if (!e)
		return 0;
	live = !expired(m, key, klen);
	if (m->ttl)
		kv_map_del(m->ttl, key, klen);
	*pp = e->next;
	m->count--;
	m->bytes -= e->klen + e->vlen;
	free(e);
	return live;
}

const struct kv_ent *kv_map_next(const struct kv_map *m, size_t *bucket,
				 const struct kv_ent *e)
{
	if (e && e->next)
		return e->next;
	if (e)
		(*bucket)++;
	for (; *bucket < m->nb; (*bucket)++)
		if (m->b[*bucket])
			return m->b[*bucket];
	return NULL;
}
