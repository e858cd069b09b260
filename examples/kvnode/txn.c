/*
 * txn.c — a MULTI/EXEC transaction as one log entry, applied atomically.
 *
 * EXEC proposes one entry of operation KV_OP_MULTI whose arguments are:
 *
 *   argument 0   the WATCH conditions: an encoded command (op 0) whose
 *                arguments are pairs <key, digest>; the digest is the
 *                8-byte SipHash of the value the leader held when the
 *                client sent WATCH, or empty when the key was absent
 *   argument 1.. the queued commands, each an encoded command: the
 *                write operations of kvfsm.c, or the read operations
 *                KV_OP_R_* (a GET inside a transaction sees the writes
 *                queued before it, so reads are evaluated at apply time)
 *
 * apply checks every condition first; if one fails, nothing is applied
 * and the result is the nil array (Redis's reply to an EXEC whose
 * watched keys changed).  Otherwise the commands are applied one after
 * the other, in one apply call: no other entry can come between them, on
 * any node.  The result carries the RESP reply of EXEC, built here, so
 * the leader answers exactly what was applied.  A command that fails at
 * run time (INCR on a non-integer) answers its error inside the array and
 * the others still apply, as in Redis; commands refused before EXEC
 * (unknown, wrong arity, bad syntax) make EXEC answer EXECABORT and are
 * never proposed (multi.c).
 *
 * A changed-and-changed-back value is not seen by the digest: WATCH here
 * compares values, where Redis compares modifications.
 */
#include <stdlib.h>
#include <string.h>

#include "kvnode.h"

/* Fixed SipHash key: every node must compute the same digest. */
#define TXN_K0 0x6b766e6f64652d77ULL
#define TXN_K1 0x617463682d646967ULL

void kv_txn_digest(const struct kv_map *m, const char *key, size_t klen,
		   unsigned char out[8], size_t *out_len)
{
	const struct kv_ent *e = kv_map_get(m, key, klen);
	uint64_t h;

	if (!e) {
		*out_len = 0;
		return;
	}
	h = kv_siphash(TXN_K0, TXN_K1, kv_ent_val(e), e->vlen);
	kv_cmd_le64(out, (long long)h);
	*out_len = 8;
}

/* 1 if every watched key still has the value it had. */
static int watch_holds(const struct kv_map *m, const char *enc, size_t len)
{
	struct kv_cmd_iter it;
	const char *k, *d;
	size_t kl, dl;
	unsigned char now[8];
	size_t nl;
	int n = kv_cmd_iter_init(&it, enc, len);

	if (n < 0 || n % 2)
		return -1;
	while (kv_cmd_iter_next(&it, &k, &kl) &&
	       kv_cmd_iter_next(&it, &d, &dl)) {
		kv_txn_digest(m, k, kl, now, &nl);
		if (nl != dl || memcmp(now, d, nl))
			return 0;
	}
	return 1;
}

static void reply_value(struct kv_buf *o, const struct kv_ent *e)
{
	if (e)
		kv_reply_bulk(o, kv_ent_val(e), e->vlen);
	else
		kv_reply_nil(o);
}

/* A read inside a transaction: answered from the map as it is now. */
static int eval_read(const struct kv_map *m, int op, struct kv_cmd_iter *it,
		     int argc, struct kv_buf *o)
{
	const char *k;
	size_t kl;
	long long n = 0;

	switch (op) {
	case KV_OP_R_GET:
	case KV_OP_R_STRLEN:
		if (argc != 1 || !kv_cmd_iter_next(it, &k, &kl))
			return -1;
		if (op == KV_OP_R_GET) {
			reply_value(o, kv_map_get(m, k, kl));
		} else {
			const struct kv_ent *e = kv_map_get(m, k, kl);
			kv_reply_int(o, e ? e->vlen : 0);
		}
		return 0;
	case KV_OP_R_MGET:
		kv_reply_array(o, (size_t)argc);
		while (kv_cmd_iter_next(it, &k, &kl))
			reply_value(o, kv_map_get(m, k, kl));
		return 0;
	case KV_OP_R_EXISTS:
		while (kv_cmd_iter_next(it, &k, &kl))
			n += kv_map_get(m, k, kl) != NULL;
		kv_reply_int(o, n);
		return 0;
	case KV_OP_R_DBSIZE: /* live keys: the same on every node */
		kv_reply_int(o, (long long)kv_map_live_count(m));
		return 0;
	case KV_OP_R_TTL: {
		const char *md;
		size_t ml;
		uint64_t at;
		if (argc != 2 || !kv_cmd_iter_next(it, &md, &ml) || ml != 1 ||
		    !kv_cmd_iter_next(it, &k, &kl))
			return -1;
		if (!kv_map_get(m, k, kl)) {
			kv_reply_int(o, -2);
			return 0;
		}
		at = kv_map_ttl(m, k, kl);
		if (!at)
			kv_reply_int(o, -1);
		else if (md[0] == 2)
			kv_reply_int(o, (long long)(at / 1000));
		else if (md[0] == 3)
			kv_reply_int(o, (long long)at);
		else if (md[0] == 1)
			kv_reply_int(o, (long long)(at - m->now));
		else
			kv_reply_int(o,
				     (long long)((at - m->now + 500) / 1000));
		return 0;
	}
	default:
		return -1;
	}
}

/* The reply of one applied write inside the transaction. */
void kv_txn_write_reply(int op, int rc, const struct kv_result *r,
			struct kv_buf *o)
{
	if (rc == 0 && r && r->len)
		kv_buf_put(o, r->resp, r->len); /* ops.c built it */
	else if (rc)
		kv_reply_error(o, "ERR malformed command in transaction");
	else if (op == KV_OP_SET || op == KV_OP_MSET)
		kv_reply_simple(o, "OK");
	else if (!r)
		kv_reply_error(o, "ERR no result");
	else if (r->code == KV_RES_NOTINT)
		kv_reply_error(o, "ERR value is not an integer or out of "
				  "range");
	else if (r->code == KV_RES_OVERFLOW)
		kv_reply_error(o, "ERR increment or decrement would overflow");
	else
		kv_reply_int(o, r->num);
}

/* A result that carries a RESP reply. */
static struct kv_result *result_resp(const struct kv_buf *o)
{
	struct kv_result *r = malloc(sizeof(*r) + o->len);

	if (!r)
		return NULL;
	r->code = KV_RES_OK;
	r->num = 0;
	r->len = o->len;
	if (o->len)
		memcpy(r->resp, o->p, o->len);
	return r;
}

int kv_txn_apply(struct kv_map *m, const void *data, size_t len,
		 struct kv_result **result)
{
	struct kv_cmd_iter it, sub;
	struct kv_buf o = { 0 };
	const char *a;
	size_t al;
	int argc = kv_cmd_iter_init(&it, data, len), holds;

	*result = NULL;
	if (argc < 1 || !kv_cmd_iter_next(&it, &a, &al))
		return SR_EPROTO;
	/* Validate everything before changing anything: a malformed entry
	 * changes nothing. */
	holds = watch_holds(m, a, al);
	if (holds < 0)
		return SR_EPROTO;
	{
		struct kv_cmd_iter chk = it;
		const char *c;
		size_t cl;
		while (kv_cmd_iter_next(&chk, &c, &cl))
			if (cl < 1 || kv_cmd_iter_init(&sub, c, cl) < 0)
				return SR_EPROTO;
	}
	if (!holds) {
		kv_buf_put(&o, "*-1\r\n", 5);
		goto done;
	}
	kv_reply_array(&o, (size_t)argc - 1);
	while (kv_cmd_iter_next(&it, &a, &al)) {
		int op = (unsigned char)a[0], sargc;
		if (op >= KV_OP_R_GET) {
			sargc = kv_cmd_iter_init(&sub, a, al);
			if (eval_read(m, op, &sub, sargc, &o))
				kv_reply_error(&o, "ERR malformed read in "
						   "transaction");
		} else if (op == KV_OP_MULTI) {
			kv_reply_error(&o, "ERR nested transaction");
		} else {
			struct kv_result *r = NULL;
			int rc = kv_fsm_apply_cmd(m, a, al, &r);
			kv_txn_write_reply(op, rc, r, &o);
			free(r);
		}
	}
done:
	*result = result_resp(&o);
	kv_buf_free(&o);
	if (!*result)
		kv_fsm_oom(); /* applied but unanswerable: as kvfsm.c does */
	return 0;
}
