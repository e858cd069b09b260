/*
 * session.c — exactly-once writes: client sessions in the replicated
 * state.
 *
 * A write whose reply was lost (-TIMEOUT, a dropped connection, a leader
 * crash) may or may not have been applied; retrying an INCR could apply it
 * twice.  A client (or a proxy) that wants exactly-once writes names each
 * write with a session id it chose (a random 64-bit number, kept across
 * reconnects) and a sequence number it increments per write, and sends
 *
 *     SESSION <id> <seq> <write command and its arguments>
 *
 * retrying the same SESSION command, unchanged, until it gets a reply.
 * The entry carries id, seq, the leader's wall-clock time and the write.
 * Every node, applying it, looks the session up in the replicated session
 * table:
 *
 *   seq >  last   apply the write, remember seq and its reply
 *   seq == last   a retry of a write already applied: do not apply it
 *                 again, answer the remembered reply
 *   seq <  last   an older write: refused (its reply is gone)
 *
 * so whichever copies of the write get committed, it is applied once and
 * every copy is answered with the same reply (Raft thesis §6.3).
 *
 * Sessions expire deterministically: a session whose last write is more
 * than KV_SESSION_TTL_MS older than the entry being applied counts as
 * absent.  The time is the leader's clock stamped into the entry, never
 * the applying node's, so every node decides alike; expired records are
 * removed when met, which changes no decision.  The table travels in
 * snapshots (kvfsm.c, format KVSNAP02).
 *
 * Entry: operation 6, arguments: id (8 bytes LE), seq (8), time ms (8),
 * the encoded write.  Session record: key id (8 bytes), value seq (8),
 * time (8), the reply bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "kvnode.h"

static uint64_t sess_le64(const char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | (unsigned char)p[i];
	return v;
}

int kv_session_apply(struct kv_map *m, struct kv_map *sessions,
		     const void *data, size_t len, struct kv_result **result)
{
	struct kv_cmd_iter it;
	const char *a[4];
	size_t al[4];
	uint64_t seq, now, last = 0, at = 0;
	const struct kv_ent *rec;
	struct kv_buf o = { 0 };
	struct kv_result *r = NULL;
	int op, rc;

	*result = NULL;
	if (kv_cmd_iter_init(&it, data, len) != 4)
		return SR_EPROTO;
	for (int i = 0; i < 4; i++)
		kv_cmd_iter_next(&it, &a[i], &al[i]);
	if (al[0] != 8 || al[1] != 8 || al[2] != 8 || al[3] < 1)
		return SR_EPROTO;
	op = (unsigned char)a[3][0];
	if (op != KV_OP_SET && op != KV_OP_DEL && op != KV_OP_INCRBY &&
	    op != KV_OP_MSET && op != KV_OP_MULTI &&
	    (op < KV_OP_SETX || op > KV_OP_GETEX || op == KV_OP_TIMED))
		return SR_EPROTO;
	if (kv_cmd_iter_init(&it, a[3], al[3]) < 0)
		return SR_EPROTO;
	seq = sess_le64(a[1]);
	now = sess_le64(a[2]);
	if (!sessions->b && kv_map_init(sessions))
		kv_fsm_oom();
	rec = kv_map_get(sessions, a[0], 8);
	if (rec && rec->vlen >= 16) {
		last = sess_le64(kv_ent_val(rec));
		at = sess_le64(kv_ent_val(rec) + 8);
		if (now > at && now - at > KV_SESSION_TTL_MS) {
			kv_map_del(sessions, a[0], 8); /* expired */
			rec = NULL;
			last = 0;
		}
	} else {
		rec = NULL;
	}
	if (rec && seq == last) {
		kv_buf_put(&o, kv_ent_val(rec) + 16, rec->vlen - 16);
	} else if (rec && seq < last) {
		kv_reply_error(&o, "ERR session: this sequence number is older "
				   "than the session's last write (not "
				   "executed)");
	} else {
		/* A new write: apply it and remember its reply. */
		unsigned char hdr[16];
		rc = kv_fsm_apply_cmd(m, a[3], al[3], &r);
		if (r && r->len)
			kv_buf_put(&o, r->resp, r->len);
		else
			kv_txn_write_reply(op, rc, r, &o);
		free(r);
		kv_cmd_le64(hdr, (long long)seq);
		kv_cmd_le64(hdr + 8, (long long)now);
		{
			struct kv_buf v = { 0 };
			if (kv_buf_put(&v, hdr, 16) ||
			    kv_buf_put(&v, o.p, o.len) ||
			    kv_map_set(sessions, a[0], 8, v.p, v.len))
				kv_fsm_oom();
			kv_buf_free(&v);
		}
	}
	r = malloc(sizeof(*r) + o.len);
	if (!r)
		kv_fsm_oom();
	r->code = KV_RES_OK;
	r->num = 0;
	r->len = o.len;
	memcpy(r->resp, o.p, o.len);
	kv_buf_free(&o);
	*result = r;
	return 0;
}
