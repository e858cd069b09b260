/*
 * kvfsm.c — the replicated state machine of kvnode.
 *
 * A write command travels through the Raft log as one SR_ENTRY_NORMAL
 * entry (see kv_cmd_encode for the bytes).  Every node applies the same
 * entries in the same order, once each (the engine guarantees it), so
 * every map goes through the same states.  apply() must therefore be a
 * pure function of the map and the entry: INCR on a value that is not an
 * integer is not an error of the entry but a deterministic result
 * (KV_RES_NOTINT) that every node computes alike.  A malformed entry (it
 * cannot happen unless a buggy or hostile node proposed it) changes
 * nothing and returns SR_EPROTO to the proposer.
 *
 * Running out of memory while applying is the one thing that could make
 * this node's map differ from the others'.  The process exits instead
 * (status 71, with a message): it restarts from its snapshot and log and
 * applies the entry again, exactly like after a crash.
 *
 * Snapshots: snapshot() has a forked child serialize the state
 * (snapfork.c) or, without a loop to watch the child's pipe, serializes
 * the whole map at once, inside the callback, in 1 MiB pieces handed to
 * sr_node_snapshot_write(); restore()
 * parses a snapshot into a fresh map and swaps it in only if every byte
 * checked out (lengths against the size, CRC32C at the end), so a corrupt
 * snapshot leaves the old state in place and stops the node.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kvnode.h"

/* ------------------------------------------------------------------ */
/* Command encoding                                                   */
/* ------------------------------------------------------------------ */

static void put_le32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static void put_le64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

int kv_cmd_encode(struct kv_buf *b, int op, size_t n, const char *const *argv,
		  const size_t *lens)
{
	unsigned char hdr[5];
	size_t total = 5;

	for (size_t i = 0; i < n; i++) {
		if (lens[i] > UINT32_MAX)
			return -1;
		total += 4 + lens[i];
	}
	if (n > UINT32_MAX || kv_buf_reserve(b, total))
		return -1;
	hdr[0] = (unsigned char)op;
	put_le32(hdr + 1, (uint32_t)n);
	kv_buf_put(b, hdr, 5);
	for (size_t i = 0; i < n; i++) {
		unsigned char l[4];
		put_le32(l, (uint32_t)lens[i]);
		kv_buf_put(b, l, 4);
		kv_buf_put(b, argv[i], lens[i]);
	}
	return 0;
}

/* A decoded command: up to KV_DEC_MAX arguments are kept, more are
 * walked again by the caller with cmd_arg(). */
struct cmd_view {
	int op;
	uint32_t argc;
	const unsigned char *args; /* first argument's length field */
	const unsigned char *end;
};

static int cmd_decode(struct cmd_view *v, const void *data, size_t len)
{
	const unsigned char *p = data, *q;

	if (len < 5)
		return -1;
	v->op = p[0];
	v->argc = get_le32(p + 1);
	v->args = p + 5;
	v->end = p + len;
	q = v->args;
	for (uint32_t i = 0; i < v->argc; i++) {
		uint32_t l;
		if ((size_t)(v->end - q) < 4)
			return -1;
		l = get_le32(q);
		if ((size_t)(v->end - q - 4) < l)
			return -1;
		q += 4 + l;
	}
	return q == v->end ? 0 : -1;
}

/* Step through the arguments of a decoded command. */
static const unsigned char *cmd_arg(const unsigned char **cursor, size_t *len)
{
	const unsigned char *p = *cursor;
	*len = get_le32(p);
	*cursor = p + 4 + *len;
	return p + 4;
}

int kv_cmd_iter_init(struct kv_cmd_iter *it, const void *data, size_t len)
{
	struct cmd_view v;

	if (cmd_decode(&v, data, len) || v.argc > INT32_MAX)
		return -1;
	it->p = v.args;
	it->left = v.argc;
	return (int)v.argc;
}

int kv_cmd_iter_next(struct kv_cmd_iter *it, const char **arg, size_t *len)
{
	if (it->left == 0)
		return 0;
	it->left--;
	*arg = (const char *)cmd_arg(&it->p, len);
	return 1;
}

/* ------------------------------------------------------------------ */
/* Apply                                                              */
/* ------------------------------------------------------------------ */

static void fsm_fatal_oom(void) __attribute__((noreturn));
static void fsm_fatal_oom(void)
{
	static const char msg[] = "kvnode: out of memory applying a committed "
				  "entry; exiting "
				  "(restart recovers from the snapshot and the "
				  "log)\n";
	if (write(2, msg, sizeof(msg) - 1) < 0) {
		/* nothing more to say */
	}
	_exit(71);
}

void kv_fsm_oom(void)
{
	fsm_fatal_oom();
}

static void map_set_or_die(struct kv_map *m, const void *k, size_t kl,
			   const void *v, size_t vl)
{
	if (kv_map_set(m, k, kl, v, vl))
		fsm_fatal_oom();
}

static struct kv_result *result_new(int code, long long num)
{
	struct kv_result *r = malloc(sizeof(*r));
	if (!r)
		fsm_fatal_oom();
	r->code = code;
	r->num = num;
	r->len = 0;
	return r;
}

static struct kv_result *apply_incrby(struct kv_map *m, const void *k,
				      size_t kl, long long delta)
{
	const struct kv_ent *e = kv_map_get(m, k, kl);
	long long cur = 0;
	char num[24];
	int n;

	if (e && kv_parse_ll(kv_ent_val(e), e->vlen, &cur))
		return result_new(KV_RES_NOTINT, 0);
	if ((delta > 0 && cur > LLONG_MAX - delta) ||
	    (delta < 0 && cur < LLONG_MIN - delta))
		return result_new(KV_RES_OVERFLOW, 0);
	cur += delta;
	n = snprintf(num, sizeof(num), "%lld", cur);
	map_set_or_die(m, k, kl, num, (size_t)n);
	return result_new(KV_RES_OK, cur);
}

int kv_fsm_apply_cmd(struct kv_map *m, const void *data, size_t len,
		     struct kv_result **result)
{
	const unsigned char *cur, *k, *v;
	struct cmd_view c;
	size_t kl, vl;
	long long n = 0;

	*result = NULL;
	if (cmd_decode(&c, data, len))
		return SR_EPROTO;
	cur = c.args;
	switch (c.op) {
	case KV_OP_SET:
	case KV_OP_MSET:
		if (c.argc == 0 || c.argc % 2 ||
		    (c.op == KV_OP_SET && c.argc != 2))
			return SR_EPROTO;
		for (uint32_t i = 0; i < c.argc; i += 2) {
			k = cmd_arg(&cur, &kl);
			v = cmd_arg(&cur, &vl);
			map_set_or_die(m, k, kl, v, vl);
			kv_map_set_ttl(m, k, kl, 0); /* SET clears the TTL */
		}
		return 0;
	case KV_OP_DEL:
		if (c.argc == 0)
			return SR_EPROTO;
		for (uint32_t i = 0; i < c.argc; i++) {
			k = cmd_arg(&cur, &kl);
			n += kv_map_del(m, k, kl);
		}
		*result = result_new(KV_RES_OK, n);
		return 0;
	case KV_OP_INCRBY:
		if (c.argc != 2)
			return SR_EPROTO;
		k = cmd_arg(&cur, &kl);
		v = cmd_arg(&cur, &vl);
		if (vl != 8)
			return SR_EPROTO;
		*result = apply_incrby(m, k, kl, (long long)get_le64(v));
		return 0;
	case KV_OP_MULTI:
		return kv_txn_apply(m, data, len, result);
	case KV_OP_TIMED: {
		const void *in = data;
		size_t il = len;
		if (kv_timed_unwrap(m, &in, &il) ||
		    ((const unsigned char *)in)[0] == KV_OP_SESSION)
			return SR_EPROTO;
		return kv_fsm_apply_cmd(m, in, il, result);
	}
	case KV_OP_EXPIRE:
	case KV_OP_PERSIST:
	case KV_OP_GETEX:
	case KV_OP_SETX:
	case KV_OP_GETDEL:
	case KV_OP_APPEND:
	case KV_OP_SETRANGE:
	case KV_OP_INCRBYFLOAT:
	case KV_OP_MSETNX:
	case KV_OP_RENAME:
	case KV_OP_FLUSH:
		return kv_ops_apply(m, data, len, result);
	default:
		return SR_EPROTO;
	}
}

int kv_timed_unwrap(struct kv_map *m, const void **data, size_t *len)
{
	struct cmd_view v;
	const unsigned char *cur;
	const unsigned char *t, *in;
	size_t tl, il;
	uint64_t now;

	if (cmd_decode(&v, *data, *len) || v.op != KV_OP_TIMED || v.argc != 2)
		return -1;
	cur = v.args;
	t = cmd_arg(&cur, &tl);
	in = cmd_arg(&cur, &il);
	if (tl != 8 || il < 1 || in[0] == KV_OP_TIMED)
		return -1;
	now = get_le64(t);
	if (now > m->now) /* the log's clock never runs backwards */
		m->now = now;
	kv_map_purge_expired(m, 16);
	*data = in;
	*len = il;
	return 0;
}

void kv_cmd_le64(unsigned char out[8], long long v)
{
	put_le64(out, (uint64_t)v);
}

static int fsm_apply(void *ctx, const sr_entry *e, void **result)
{
	struct kv_fsm *f = ctx;
	struct kv_result *r = NULL;
	const void *data = e->data;
	size_t len = e->len;
	int rc;

	/* A write stamped with the leader's clock: keys expire against the
	 * log's time, the same on every node (never the local clock). */
	if (len && ((const unsigned char *)data)[0] == KV_OP_TIMED &&
	    kv_timed_unwrap(&f->map, &data, &len)) {
		f->applied = e->index;
		*result = NULL;
		return SR_EPROTO;
	}
	rc = len && ((const unsigned char *)data)[0] == KV_OP_SESSION
		     ? kv_session_apply(&f->map, &f->sessions, data, len, &r)
		     : kv_fsm_apply_cmd(&f->map, data, len, &r);
	f->applied = e->index;
	*result = r;
	return rc;
}

/*
 * The keys whose buckets a write will touch, for the prefetch hint: those
 * of SET, MSET, DEL and INCRBY, inside the TIMED and SESSION wrappers
 * (depth counts them; a well-formed entry has at most one of each).
 * Anything else, and malformed bytes, give none: a hint may miss.
 */
static size_t entry_keys(const void *data, size_t len, const void **keys,
			 size_t *klens, size_t max, int depth)
{
	const unsigned char *cur, *a = NULL;
	struct cmd_view c;
	size_t al = 0, n = 0;

	if (max == 0 || cmd_decode(&c, data, len))
		return 0;
	cur = c.args;
	switch (c.op) {
	case KV_OP_TIMED:
	case KV_OP_SESSION:
		if (depth >= 2 || c.argc != (c.op == KV_OP_TIMED ? 2u : 4u))
			return 0;
		for (uint32_t i = 0; i < c.argc; i++)
			a = cmd_arg(&cur, &al); /* the write is the last */
		return entry_keys(a, al, keys, klens, max, depth + 1);
	case KV_OP_SET:
	case KV_OP_MSET:
	case KV_OP_DEL:
	case KV_OP_INCRBY:
		for (uint32_t i = 0; i < c.argc && n < max; i++) {
			a = cmd_arg(&cur, &al);
			if (c.op == KV_OP_DEL || i % 2 == 0) {
				keys[n] = a;
				klens[n++] = al;
			}
			if (c.op == KV_OP_INCRBY)
				break;
		}
		return n;
	default:
		return 0;
	}
}

size_t kv_fsm_entry_keys(const void *data, size_t len, const void **keys,
			 size_t *klens, size_t max)
{
	return entry_keys(data, len, keys, klens, max, 0);
}

/* The engine hands a run of committed entries before applying them:
 * start loading the buckets of their keys together (kv_map_prefetch). */
#define PREFETCH_KEYS 256

static void prefetch_run(const struct kv_map *m, const sr_entry *e, size_t n)
{
	const void *keys[PREFETCH_KEYS];
	size_t klens[PREFETCH_KEYS], k = 0;

	for (size_t i = 0; i < n && k < PREFETCH_KEYS; i++)
		k += kv_fsm_entry_keys(e[i].data, e[i].len, keys + k, klens + k,
				       PREFETCH_KEYS - k);
	kv_map_prefetch(m, k, keys, klens);
}

static void fsm_prefetch(void *ctx, const sr_entry *e, size_t n)
{
	struct kv_fsm *f = ctx;

	prefetch_run(&f->map, e, n);
}

static void fsm_free_result(void *ctx, void *result)
{
	(void)ctx;
	free(result);
}

/* ------------------------------------------------------------------ */
/* Snapshot image                                                     */
/* ------------------------------------------------------------------ */

/* KVSNAP01: the map.  KVSNAP02 (written now): the map, then the session
 * table in the same record format (u64 count, records). */
static const char snap_magic[8] = { 'K', 'V', 'S', 'N', 'A', 'P', '0', '1' };
static const char snap_magic2[8] = { 'K', 'V', 'S', 'N', 'A', 'P', '0', '2' };

struct snap_out {
	kv_snap_write_fn fn;
	void *ctx;
	unsigned char *buf;
	size_t len;
	uint32_t crc;
	int err;
};

static void snap_flush(struct snap_out *o)
{
	if (o->len && !o->err)
		o->err = o->fn(o->ctx, o->buf, o->len);
	o->len = 0;
}

static void snap_put(struct snap_out *o, const void *data, size_t len)
{
	const unsigned char *p = data;

	o->crc = sr_crc32c(o->crc, data, len);
	while (len && !o->err) {
		size_t n = KV_SNAP_CHUNK - o->len;
		if (n > len)
			n = len;
		memcpy(o->buf + o->len, p, n);
		o->len += n;
		p += n;
		len -= n;
		if (o->len == KV_SNAP_CHUNK)
			snap_flush(o);
	}
}

static void snap_put_map(struct snap_out *o, const struct kv_map *m)
{
	const struct kv_ent *e = NULL;
	unsigned char hdr[8];
	size_t bucket = 0;

	put_le64(hdr, m && m->b ? m->count : 0);
	snap_put(o, hdr, 8);
	while (m && m->b && (e = kv_map_next(m, &bucket, e)) != NULL &&
	       !o->err) {
		put_le32(hdr, e->klen);
		put_le32(hdr + 4, e->vlen);
		snap_put(o, hdr, 8);
		snap_put(o, e->data, (size_t)e->klen + e->vlen);
	}
}

int kv_snap_save2(const struct kv_map *m, const struct kv_map *sessions,
		  kv_snap_write_fn fn, void *ctx)
{
	struct snap_out o = { .fn = fn, .ctx = ctx };
	unsigned char hdr[4];

	o.buf = malloc(KV_SNAP_CHUNK);
	if (!o.buf)
		return SR_ENOMEM;
	snap_put(&o, snap_magic2, sizeof(snap_magic2));
	snap_put_map(&o, m);
	snap_put_map(&o, sessions);
	{
		unsigned char now[8];
		put_le64(now, m->now);
		snap_put(&o, now, 8);
	}
	snap_put_map(&o, m->ttl);
	put_le32(hdr, o.crc);
	snap_put(&o, hdr, 4);
	snap_flush(&o);
	free(o.buf);
	return o.err;
}

int kv_snap_save(const struct kv_map *m, kv_snap_write_fn fn, void *ctx)
{
	struct snap_out o = { .fn = fn, .ctx = ctx };
	const struct kv_ent *e = NULL;
	unsigned char hdr[8];
	size_t bucket = 0;

	o.buf = malloc(KV_SNAP_CHUNK);
	if (!o.buf)
		return SR_ENOMEM;
	snap_put(&o, snap_magic, sizeof(snap_magic));
	put_le64(hdr, m->count);
	snap_put(&o, hdr, 8);
	while ((e = kv_map_next(m, &bucket, e)) != NULL && !o.err) {
		put_le32(hdr, e->klen);
		put_le32(hdr + 4, e->vlen);
		snap_put(&o, hdr, 8);
		snap_put(&o, e->data, (size_t)e->klen + e->vlen);
	}
	put_le32(hdr, o.crc);
	snap_put(&o, hdr, 4);
	snap_flush(&o);
	free(o.buf);
	return o.err;
}

struct snap_in {
	kv_snap_read_fn fn;
	void *ctx;
	uint64_t size,
		off;   /* image size; next offset to read from the source */
	uint64_t used; /* bytes consumed by the parser */
	unsigned char *buf;
	size_t len, pos;
	uint32_t crc;
};

/* Take exactly n bytes; -1 if the image ends early or the source fails. */
static int snap_get(struct snap_in *in, void *dst, size_t n, int crc)
{
	unsigned char *d = dst;

	if (n > in->size - in->used)
		return -1;
	while (n) {
		size_t k;
		if (in->pos == in->len) {
			size_t got = 0;
			size_t want = KV_SNAP_CHUNK;
			if (want > in->size - in->off)
				want = (size_t)(in->size - in->off);
			if (want == 0 ||
			    in->fn(in->ctx, in->off, in->buf, want, &got) ||
			    got == 0 || got > want)
				return -1;
			in->off += got;
			in->len = got;
			in->pos = 0;
		}
		k = in->len - in->pos;
		if (k > n)
			k = n;
		memcpy(d, in->buf + in->pos, k);
		if (crc)
			in->crc = sr_crc32c(in->crc, d, k);
		in->pos += k;
		in->used += k;
		d += k;
		n -= k;
	}
	return 0;
}

/*
 * Take n bytes into the scratch buffer, growing it as the bytes arrive
 * (at most one chunk ahead): a corrupt length costs at most what the
 * image really holds, never the claimed size.
 */
static int snap_get_grow(struct snap_in *in, struct kv_buf *b, uint64_t n)
{
	b->len = 0;
	while (n) {
		size_t k = n > KV_SNAP_CHUNK ? KV_SNAP_CHUNK : (size_t)n;
		if (kv_buf_reserve(b, k))
			return SR_ENOMEM;
		if (snap_get(in, b->p + b->len, k, 1))
			return SR_ECORRUPT;
		b->len += k;
		n -= k;
	}
	return 0;
}

static int snap_records(struct kv_map *m, struct snap_in *in, uint64_t count)
{
	struct kv_buf scratch = { 0 };
	unsigned char hdr[8];
	int rc = 0;

	for (uint64_t i = 0; i < count && rc == 0; i++) {
		const char *p;
		uint32_t kl, vl;
		if (snap_get(in, hdr, 8, 1)) {
			rc = SR_ECORRUPT;
			break;
		}
		kl = get_le32(hdr);
		vl = get_le32(hdr + 4);
		if ((uint64_t)kl + vl > in->size - in->used) {
			rc = SR_ECORRUPT; /* longer than what is left */
			break;
		}
		rc = snap_get_grow(in, &scratch, (uint64_t)kl + vl);
		/* an empty key with an empty value leaves scratch unallocated:
		 * no arithmetic or memcpy on its NULL pointer (fuzz_apply) */
		p = scratch.p ? scratch.p : "";
		if (rc == 0 && kv_map_set(m, p, kl, p + kl, vl))
			rc = SR_ENOMEM;
	}
	kv_buf_free(&scratch);
	return rc;
}

int kv_snap_load(struct kv_map *out, uint64_t size, kv_snap_read_fn fn,
		 void *ctx)
{
	struct kv_map sessions;
	int rc = kv_snap_load2(out, &sessions, size, fn, ctx);

	if (rc == 0)
		kv_map_free(&sessions);
	return rc;
}

int kv_snap_load2(struct kv_map *out, struct kv_map *sessions, uint64_t size,
		  kv_snap_read_fn fn, void *ctx)
{
	struct snap_in in = { .fn = fn, .ctx = ctx, .size = size };
	unsigned char hdr[16];
	uint64_t count;
	uint32_t want;
	int rc, v2;

	if (kv_map_init(out))
		return SR_ENOMEM;
	if (kv_map_init(sessions)) {
		kv_map_free(out);
		return SR_ENOMEM;
	}
	in.buf = malloc(KV_SNAP_CHUNK);
	if (!in.buf) {
		rc = SR_ENOMEM;
		goto fail;
	}
	rc = SR_ECORRUPT;
	if (snap_get(&in, hdr, 16, 1))
		goto fail;
	v2 = memcmp(hdr, snap_magic2, 8) == 0;
	if (!v2 && memcmp(hdr, snap_magic, 8))
		goto fail;
	count = get_le64(hdr + 8);
	if (count > (size - in.used) / 8)
		goto fail; /* every record takes at least 8 bytes */
	if ((rc = snap_records(out, &in, count)) != 0)
		goto fail;
	if (v2) {
		rc = SR_ECORRUPT;
		if (snap_get(&in, hdr, 8, 1))
			goto fail;
		count = get_le64(hdr);
		if (count > (size - in.used) / 8)
			goto fail;
		if ((rc = snap_records(sessions, &in, count)) != 0)
			goto fail;
		rc = SR_ECORRUPT;
		if (snap_get(&in, hdr, 16, 1))
			goto fail;
		out->now = get_le64(hdr);
		count = get_le64(hdr + 8);
		if (count > (size - in.used) / 8)
			goto fail;
		if (count) {
			out->ttl = calloc(1, sizeof(*out->ttl));
			if (!out->ttl || kv_map_init(out->ttl)) {
				free(out->ttl);
				out->ttl = NULL;
				rc = SR_ENOMEM;
				goto fail;
			}
			if ((rc = snap_records(out->ttl, &in, count)) != 0)
				goto fail;
		}
	}
	want = in.crc;
	rc = SR_ECORRUPT;
	if (snap_get(&in, hdr, 4, 0) || get_le32(hdr) != want)
		goto fail;
	/* Nothing may follow the checksum. */
	if (size != KV_SNAP_SIZE_UNKNOWN ? in.used != size
					 : snap_get(&in, hdr, 1, 0) == 0)
		goto fail;
	free(in.buf);
	return 0;
fail:
	free(in.buf);
	kv_map_free(out);
	kv_map_free(sessions);
	return rc;
}

/* ------------------------------------------------------------------ */
/* The engine's side                                                  */
/* ------------------------------------------------------------------ */

static int fsm_snap_write(void *ctx, const void *data, size_t len)
{
	struct kv_fsm *f = ctx;
	return sr_node_snapshot_write(f->node, data, len);
}

static int fsm_snap_read(void *ctx, uint64_t off, void *buf, size_t len,
			 size_t *n_out)
{
	struct kv_fsm *f = ctx;
	return sr_node_snapshot_read(f->node, off, buf, len, n_out);
}

/* With a loop, a forked child serializes the state at `index` while
 * later entries are applied (snapfork.c).  Otherwise, or when no child
 * can be started, or the last child failed, the map is serialized here:
 * it is exactly the state at `index` because nothing is applied while we
 * run. */
static int fsm_snapshot(void *ctx, sr_index index, sr_term term)
{
	struct kv_fsm *f = ctx;
	int rc;

	(void)index;
	(void)term;
	kv_snapfork_cancel(f); /* one the engine dropped (superseded) */
	f->snap_seq++;
	if (f->loop && !f->snap_inline_next && kv_snapfork_start(f) == 0)
		return 0;
	f->snap_inline_next = 0;
	f->snap_start_us = kv_snap_clock_us();
	rc = kv_snap_save2(&f->map, &f->sessions, fsm_snap_write, f);
	if (rc == 0)
		rc = sr_node_snapshot_done(f->node, 0);
	f->snap_done_seq = f->snap_seq;
	if (rc) {
		f->snap_failed_seq = f->snap_seq;
		f->n_snap_failed++;
		return rc;
	}
	f->n_snapshots++;
	f->last_snap_us = kv_snap_clock_us() - f->snap_start_us;
	return 0;
}

static int fsm_restore(void *ctx, sr_index index, sr_term term)
{
	struct kv_fsm *f = ctx;
	struct kv_map fresh, sessions;
	int rc;

	(void)term;
	kv_snapfork_cancel(f); /* the state it was writing is replaced */
	rc = kv_snap_load2(&fresh, &sessions, KV_SNAP_SIZE_UNKNOWN,
			   fsm_snap_read, f);
	if (rc)
		return rc;
	kv_map_swap(&f->map, &fresh);
	kv_map_free(&fresh);
	kv_map_swap(&f->sessions, &sessions);
	if (sessions.b)
		kv_map_free(&sessions);
	f->applied = index;
	f->n_restores++;
	f->last_restore_index = index;
	if (f->restored)
		f->restored(f->restored_ctx);
	return 0;
}

const sr_fsm_ops kv_fsm_ops = {
	.apply = fsm_apply,
	.free_result = fsm_free_result,
	.snapshot = fsm_snapshot,
	.restore = fsm_restore,
	.prefetch = fsm_prefetch,
};
