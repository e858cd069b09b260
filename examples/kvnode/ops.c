/*
 * ops.c — the string write commands beyond SET/DEL/INCRBY/MSET, applied
 * in the replicated state machine: SET with NX/XX/GET (and GETSET, SETNX),
 * GETDEL, APPEND, SETRANGE, INCRBYFLOAT, MSETNX, RENAME/RENAMENX and
 * FLUSHDB/FLUSHALL.
 *
 * Like every apply, each is a pure function of the map and the entry, so
 * all nodes compute the same result; the result carries the command's
 * RESP reply, built here (the leader sends it as is).  Arguments that can
 * be checked without the map (integers, offsets, sizes) are checked by
 * the leader before proposing (cmds.c); what depends on the map (a value
 * that is not a float, a missing RENAME source) is a deterministic error
 * reply, the same on every node.
 *
 * Encodings (arguments of the encoded command):
 *   SETX        flags (1 byte: 1 NX, 2 XX, 4 GET, 8 reply 1/0 as
 *               SETNX does), key, value
 *   GETDEL      key
 *   APPEND      key, value
 *   SETRANGE    key, offset (8 bytes LE), value
 *   INCRBYFLOAT key, increment (the client's text)
 *   MSETNX      key, value, ...
 *   RENAME      flags (1 byte: 1 NX), source, destination
 *   FLUSH       (none)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvnode.h"

static void set_or_die(struct kv_map *m, const char *k, size_t kl,
		       const void *v, size_t vl)
{
	if (kv_map_set(m, k, kl, v, vl))
		kv_fsm_oom();
}

static void ttl_or_die(struct kv_map *m, const char *k, size_t kl, uint64_t at)
{
	if (kv_map_set_ttl(m, k, kl, at))
		kv_fsm_oom();
}

static uint64_t ops_le64(const char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | (unsigned char)p[i];
	return v;
}

static void reply_ent(struct kv_buf *o, const struct kv_ent *e)
{
	if (e)
		kv_reply_bulk(o, kv_ent_val(e), e->vlen);
	else
		kv_reply_nil(o);
}

/* Parse a float as Redis does: the whole string, finite. */
static int parse_ld(const char *p, size_t len, long double *out)
{
	char buf[128], *end;

	if (len == 0 || len >= sizeof(buf) || memchr(p, 0, len) ||
	    p[0] == ' ' || p[0] == '\t')
		return -1;
	memcpy(buf, p, len);
	buf[len] = 0;
	*out = strtold(buf, &end);
	if (*end || isnan(*out) || isinf(*out))
		return -1;
	return 0;
}

int kv_ops_valid_float(const char *p, size_t len)
{
	long double v;

	return parse_ld(p, len, &v) == 0;
}

static int apply_op(struct kv_map *m, int op, int argc, struct kv_cmd_iter *it,
		    struct kv_buf *o)
{
	const char *a[3];
	size_t al[3];
	const struct kv_ent *e;

	switch (op) {
	case KV_OP_SETX: {
		int flags;
		const char *at = NULL;
		size_t atl = 0;
		if (argc != 3 && argc != 4)
			return -1;
		for (int i = 0; i < 3; i++)
			kv_cmd_iter_next(it, &a[i], &al[i]);
		if (argc == 4)
			kv_cmd_iter_next(it, &at, &atl);
		if (al[0] != 1 || (argc == 4 && atl != 8) ||
		    ((a[0][0] & 16) != 0) != (argc == 4))
			return -1;
		flags = (unsigned char)a[0][0];
		e = kv_map_get(m, a[1], al[1]);
		if (flags & 4)
			reply_ent(o, e);
		if ((flags & 1 && e) || (flags & 2 && !e)) {
			if (flags & 8)
				kv_reply_int(o, 0);
			else if (!(flags & 4))
				kv_reply_nil(o);
			return 0;
		}
		set_or_die(m, a[1], al[1], a[2], al[2]);
		if (flags & 16)
			ttl_or_die(m, a[1], al[1], ops_le64(at));
		else if (!(flags & 32))
			ttl_or_die(m, a[1], al[1], 0);
		if (flags & 8)
			kv_reply_int(o, 1);
		else if (!(flags & 4))
			kv_reply_simple(o, "OK");
		return 0;
	}
	case KV_OP_GETDEL:
		if (argc != 1)
			return -1;
		kv_cmd_iter_next(it, &a[0], &al[0]);
		e = kv_map_get(m, a[0], al[0]);
		reply_ent(o, e);
		if (e)
			kv_map_del(m, a[0], al[0]);
		return 0;
	case KV_OP_APPEND:
	case KV_OP_SETRANGE: {
		size_t off, need, cur;
		char *v;
		int nargs = op == KV_OP_APPEND ? 2 : 3;
		if (argc != nargs)
			return -1;
		for (int i = 0; i < nargs; i++)
			kv_cmd_iter_next(it, &a[i], &al[i]);
		if (op == KV_OP_SETRANGE && al[1] != 8)
			return -1;
		e = kv_map_get(m, a[0], al[0]);
		cur = e ? e->vlen : 0;
		if (op == KV_OP_APPEND) {
			off = cur;
		} else {
			uint64_t x = 0;
			for (int i = 7; i >= 0; i--)
				x = x << 8 | (unsigned char)a[1][i];
			if (x > 512u * 1024 * 1024)
				return -1;
			off = (size_t)x;
			a[1] = a[2];
			al[1] = al[2];
		}
		if (op == KV_OP_SETRANGE && al[1] == 0) {
			kv_reply_int(o, (long long)cur); /* changes nothing */
			return 0;
		}
		need = off + al[1] > cur ? off + al[1] : cur;
		v = calloc(1, need ? need : 1);
		if (!v)
			kv_fsm_oom();
		if (e)
			memcpy(v, kv_ent_val(e), cur);
		memcpy(v + off, a[1], al[1]);
		set_or_die(m, a[0], al[0], v, need);
		free(v);
		kv_reply_int(o, (long long)need);
		return 0;
	}
	case KV_OP_INCRBYFLOAT: {
		long double cur = 0, by;
		char num[160];
		int n;
		if (argc != 2)
			return -1;
		kv_cmd_iter_next(it, &a[0], &al[0]);
		kv_cmd_iter_next(it, &a[1], &al[1]);
		e = kv_map_get(m, a[0], al[0]);
		if ((e && parse_ld(kv_ent_val(e), e->vlen, &cur)) ||
		    parse_ld(a[1], al[1], &by)) {
			kv_reply_error(o, "ERR value is not a valid float");
			return 0;
		}
		cur += by;
		if (isnan(cur) || isinf(cur)) {
			kv_reply_error(o, "ERR increment would produce NaN or "
					  "Infinity");
			return 0;
		}
		/* Fixed notation, trailing zeros removed (as Redis prints). */
		n = snprintf(num, sizeof(num), "%.17Lf", cur);
		if (n <= 0 || (size_t)n >= sizeof(num)) {
			kv_reply_error(o, "ERR increment out of range");
			return 0;
		}
		if (strchr(num, '.')) {
			while (n > 0 && num[n - 1] == '0')
				n--;
			if (n > 0 && num[n - 1] == '.')
				n--;
		}
		if (n == 2 && num[0] == '-' && num[1] == '0')
			num[0] = '0', n = 1;
		set_or_die(m, a[0], al[0], num, (size_t)n);
		kv_reply_bulk(o, num, (size_t)n);
		return 0;
	}
	case KV_OP_MSETNX: {
		struct kv_cmd_iter chk = *it;
		const char *k, *v;
		size_t kl, vl;
		if (argc == 0 || argc % 2)
			return -1;
		while (kv_cmd_iter_next(&chk, &k, &kl) &&
		       kv_cmd_iter_next(&chk, &v, &vl)) {
			if (kv_map_get(m, k, kl)) {
				kv_reply_int(o, 0);
				return 0;
			}
		}
		while (kv_cmd_iter_next(it, &k, &kl) &&
		       kv_cmd_iter_next(it, &v, &vl)) {
			set_or_die(m, k, kl, v, vl);
			ttl_or_die(m, k, kl, 0);
		}
		kv_reply_int(o, 1);
		return 0;
	}
	case KV_OP_RENAME: {
		char *val;
		size_t vl;
		int nx;
		if (argc != 3)
			return -1;
		for (int i = 0; i < 3; i++)
			kv_cmd_iter_next(it, &a[i], &al[i]);
		if (al[0] != 1)
			return -1;
		nx = a[0][0] & 1;
		e = kv_map_get(m, a[1], al[1]);
		if (!e) {
			kv_reply_error(o, "ERR no such key");
			return 0;
		}
		if (nx && kv_map_get(m, a[2], al[2])) {
			kv_reply_int(o, 0);
			return 0;
		}
		vl = e->vlen;
		val = malloc(vl ? vl : 1);
		if (!val)
			kv_fsm_oom();
		memcpy(val, kv_ent_val(e), vl);
		{
			uint64_t at = kv_map_ttl(m, a[1], al[1]);
			kv_map_del(m, a[1], al[1]);
			set_or_die(m, a[2], al[2], val, vl);
			ttl_or_die(m, a[2], al[2], at); /* the TTL moves */
		}
		free(val);
		if (nx)
			kv_reply_int(o, 1);
		else
			kv_reply_simple(o, "OK");
		return 0;
	}
	case KV_OP_FLUSH: {
		struct kv_map fresh;
		if (argc != 0)
			return -1;
		if (kv_map_init(&fresh))
			kv_fsm_oom();
		fresh.now = m->now;
		kv_map_swap(m, &fresh);
		kv_map_free(&fresh);
		kv_reply_simple(o, "OK");
		return 0;
	}
	case KV_OP_EXPIRE: {
		int flags;
		uint64_t at, cur;
		if (argc != 3)
			return -1;
		for (int i = 0; i < 3; i++)
			kv_cmd_iter_next(it, &a[i], &al[i]);
		if (al[0] != 1 || al[2] != 8)
			return -1;
		flags = (unsigned char)a[0][0];
		at = ops_le64(a[2]);
		if (!kv_map_get(m, a[1], al[1])) {
			kv_reply_int(o, 0);
			return 0;
		}
		cur = kv_map_ttl(m, a[1], al[1]);
		if ((flags & 1 && cur) || (flags & 2 && !cur) ||
		    (flags & 4 && (!cur || at <= cur)) ||
		    (flags & 8 && cur && at >= cur)) {
			kv_reply_int(o, 0);
			return 0;
		}
		if (at <= m->now)
			kv_map_del(m, a[1], al[1]); /* a time in the past */
		else
			ttl_or_die(m, a[1], al[1], at);
		kv_reply_int(o, 1);
		return 0;
	}
	case KV_OP_PERSIST:
		if (argc != 1)
			return -1;
		kv_cmd_iter_next(it, &a[0], &al[0]);
		if (kv_map_get(m, a[0], al[0]) && kv_map_ttl(m, a[0], al[0])) {
			ttl_or_die(m, a[0], al[0], 0);
			kv_reply_int(o, 1);
		} else {
			kv_reply_int(o, 0);
		}
		return 0;
	case KV_OP_GETEX: {
		int mode;
		if (argc != 3)
			return -1;
		for (int i = 0; i < 3; i++)
			kv_cmd_iter_next(it, &a[i], &al[i]);
		if (al[0] != 1 || al[2] != 8 || a[0][0] > 2)
			return -1;
		mode = a[0][0];
		e = kv_map_get(m, a[1], al[1]);
		reply_ent(o, e);
		if (!e || mode == 0)
			return 0;
		if (mode == 2)
			ttl_or_die(m, a[1], al[1], 0);
		else if (ops_le64(a[2]) <= m->now)
			kv_map_del(m, a[1], al[1]);
		else
			ttl_or_die(m, a[1], al[1], ops_le64(a[2]));
		return 0;
	}
	default:
		return -1;
	}
}

int kv_ops_apply(struct kv_map *m, const void *data, size_t len,
		 struct kv_result **result)
{
	struct kv_cmd_iter it;
	struct kv_buf o = { 0 };
	struct kv_result *r;
	int argc = kv_cmd_iter_init(&it, data, len);

	*result = NULL;
	if (argc < 0 ||
	    apply_op(m, ((const unsigned char *)data)[0], argc, &it, &o)) {
		kv_buf_free(&o);
		return SR_EPROTO;
	}
	r = malloc(sizeof(*r) + o.len);
	if (!r)
		kv_fsm_oom();
	r->code = KV_RES_OK;
	r->num = 0;
	r->len = o.len;
	if (o.len)
		memcpy(r->resp, o.p, o.len);
	kv_buf_free(&o);
	*result = r;
	return 0;
}
