/*
 * msgs.h — sample messages of every type and a deep comparison, shared by
 * the codec, transport and benchmark programs of test/tcp.
 *
 * sample_msg() fills every field with a distinct non-zero value derived
 * from a seed, so a field dropped or swapped by the codec shows up as a
 * mismatch.  Pointers (entries, data, conf) point into a caller-owned
 * struct sample_store.
 */
#ifndef SR_TEST_TCP_MSGS_H
#define SR_TEST_TCP_MSGS_H

#include <stdint.h>
#include <string.h>

#include "seshat/msg.h"

#define SAMPLE_ENTRIES 5

struct sample_store {
	sr_entry entries[SAMPLE_ENTRIES];
	uint8_t data[SAMPLE_ENTRIES][64];
	uint8_t conf[40];
	uint8_t chunk[300];
};

static inline void sample_msg(sr_msg *m, uint32_t type, uint64_t seed,
			      struct sample_store *st)
{
	memset(m, 0, sizeof(*m));
	m->type = type;
	m->group = (uint32_t)(seed * 3 + 1);
	m->from = 1 + seed % 7;
	m->to = 100 + seed % 5;
	m->term = 0x1122334455667788ull ^ seed;
	switch (type) {
	case SR_MSG_VOTE:
		m->u.vote.last_index = seed + 10;
		m->u.vote.last_term = seed + 11;
		m->u.vote.pre = seed & 1;
		m->u.vote.transfer = (seed >> 1) & 1;
		break;
	case SR_MSG_VOTE_RESP:
		m->u.vote_resp.granted = seed & 1;
		m->u.vote_resp.pre = (seed >> 1) & 1;
		break;
	case SR_MSG_APPEND: {
		uint32_t n = (uint32_t)(seed % (SAMPLE_ENTRIES + 1));
		m->u.append.prev_index = seed + 20;
		m->u.append.prev_term = seed + 21;
		m->u.append.commit = seed + 22;
		m->u.append.seq = UINT64_MAX - seed;
		for (uint32_t i = 0; i < n; i++) {
			sr_entry *e = &st->entries[i];
			e->term = seed + 21;
			e->index = seed + 21 + i;
			e->type = 1 + (i % 3);
			e->len = (uint32_t)((seed + i * 13) % 64);
			for (uint32_t k = 0; k < e->len; k++)
				st->data[i][k] = (uint8_t)(seed + i + k);
			e->data = e->len ? st->data[i] : NULL;
		}
		m->u.append.entries = n ? st->entries : NULL;
		m->u.append.n_entries = n;
		break;
	}
	case SR_MSG_APPEND_RESP:
		m->u.append_resp.success = seed & 1;
		m->u.append_resp.index = seed + 30;
		m->u.append_resp.hint_index = seed + 31;
		m->u.append_resp.hint_term = seed + 32;
		m->u.append_resp.seq = seed + 33;
		break;
	case SR_MSG_SNAPSHOT:
		m->u.snapshot.last_index = seed + 40;
		m->u.snapshot.last_term = seed + 41;
		m->u.snapshot.offset = (seed & 1) ? 0 : 4096 * seed;
		m->u.snapshot.total = 1ull << 33;
		m->u.snapshot.done = (seed >> 1) & 1;
		m->u.snapshot.conf_len = (seed & 1) ? sizeof(st->conf) : 0;
		for (size_t k = 0; k < sizeof(st->conf); k++)
			st->conf[k] = (uint8_t)(k * 7 + seed);
		m->u.snapshot.conf = m->u.snapshot.conf_len ? st->conf : NULL;
		m->u.snapshot.len = (uint32_t)(seed % sizeof(st->chunk));
		for (size_t k = 0; k < sizeof(st->chunk); k++)
			st->chunk[k] = (uint8_t)(k ^ seed);
		m->u.snapshot.data = m->u.snapshot.len ? st->chunk : NULL;
		break;
	case SR_MSG_SNAPSHOT_RESP:
		m->u.snapshot_resp.last_index = seed + 50;
		m->u.snapshot_resp.offset = seed + 51;
		m->u.snapshot_resp.done = seed & 1;
		m->u.snapshot_resp.rejected = (seed >> 1) & 1;
		break;
	case SR_MSG_TIMEOUT_NOW:
		break;
	case SR_MSG_READ_INDEX:
		m->u.read_index.ctx = seed * 0x9e3779b97f4a7c15ull;
		break;
	case SR_MSG_READ_INDEX_RESP:
		m->u.read_index_resp.ctx = seed + 60;
		m->u.read_index_resp.index = seed + 61;
		m->u.read_index_resp.status = (seed & 1) ? -14 : 0;
		break;
	}
}

static inline int bytes_equal(const void *a, const void *b, size_t n)
{
	return n == 0 || (a && b && memcmp(a, b, n) == 0);
}

/* 1 if a and b carry the same message (pointers compared by content). */
static inline int msg_equal(const sr_msg *a, const sr_msg *b)
{
	if (a->type != b->type || a->group != b->group || a->from != b->from ||
	    a->to != b->to || a->term != b->term)
		return 0;
	switch (a->type) {
	case SR_MSG_VOTE:
		return a->u.vote.last_index == b->u.vote.last_index &&
		       a->u.vote.last_term == b->u.vote.last_term &&
		       a->u.vote.pre == b->u.vote.pre &&
		       a->u.vote.transfer == b->u.vote.transfer;
	case SR_MSG_VOTE_RESP:
		return a->u.vote_resp.granted == b->u.vote_resp.granted &&
		       a->u.vote_resp.pre == b->u.vote_resp.pre;
	case SR_MSG_APPEND: {
		const sr_msg_append *x = &a->u.append, *y = &b->u.append;
		if (x->prev_index != y->prev_index ||
		    x->prev_term != y->prev_term || x->commit != y->commit ||
		    x->seq != y->seq || x->n_entries != y->n_entries)
			return 0;
		for (uint32_t i = 0; i < x->n_entries; i++) {
			const sr_entry *e = &x->entries[i], *f = &y->entries[i];
			if (e->term != f->term || e->index != f->index ||
			    e->type != f->type || e->len != f->len ||
			    !bytes_equal(e->data, f->data, e->len))
				return 0;
		}
		return 1;
	}
	case SR_MSG_APPEND_RESP:
		return a->u.append_resp.success == b->u.append_resp.success &&
		       a->u.append_resp.index == b->u.append_resp.index &&
		       a->u.append_resp.hint_index ==
			       b->u.append_resp.hint_index &&
		       a->u.append_resp.hint_term ==
			       b->u.append_resp.hint_term &&
		       a->u.append_resp.seq == b->u.append_resp.seq;
	case SR_MSG_SNAPSHOT: {
		const sr_msg_snapshot *x = &a->u.snapshot, *y = &b->u.snapshot;
		return x->last_index == y->last_index &&
		       x->last_term == y->last_term && x->offset == y->offset &&
		       x->total == y->total && x->done == y->done &&
		       x->conf_len == y->conf_len && x->len == y->len &&
		       bytes_equal(x->conf, y->conf, x->conf_len) &&
		       bytes_equal(x->data, y->data, x->len);
	}
	case SR_MSG_SNAPSHOT_RESP:
		return a->u.snapshot_resp.last_index ==
			       b->u.snapshot_resp.last_index &&
		       a->u.snapshot_resp.offset == b->u.snapshot_resp.offset &&
		       a->u.snapshot_resp.done == b->u.snapshot_resp.done &&
		       a->u.snapshot_resp.rejected ==
			       b->u.snapshot_resp.rejected;
	case SR_MSG_TIMEOUT_NOW:
		return 1;
	case SR_MSG_READ_INDEX:
		return a->u.read_index.ctx == b->u.read_index.ctx;
	case SR_MSG_READ_INDEX_RESP:
		return a->u.read_index_resp.ctx == b->u.read_index_resp.ctx &&
		       a->u.read_index_resp.index ==
			       b->u.read_index_resp.index &&
		       a->u.read_index_resp.status ==
			       b->u.read_index_resp.status;
	}
	return 0;
}

#endif
