/*
 * multi.c — MULTI, EXEC, DISCARD, WATCH and UNWATCH: a connection's
 * transaction state, and the EXEC proposal (txn.c applies it).
 *
 * Between MULTI and EXEC each command is checked as it arrives (name,
 * arity, syntax, the leader) exactly as it would be outside, and then
 * queued instead of run: the client gets +QUEUED.  A command refused at
 * that point marks the transaction failed, and EXEC answers EXECABORT
 * without proposing anything, as Redis does.  EXEC proposes every queued
 * command as one log entry, so all of them apply together or none does:
 * a leader change or a TIMEOUT can never leave half of a transaction
 * applied.
 *
 * WATCH records, for each key, a digest of the value the leader holds
 * now; EXEC carries the digests and apply aborts the whole transaction
 * (nil reply) if any key holds something else by then.  The leader's
 * state may lag the commit index by a few entries, which can only make a
 * watched value look changed (a spurious abort), never unchanged.
 * Only commands that touch data can be queued (PING, INFO, ... are
 * refused inside MULTI).
 */
#include <stdlib.h>
#include <string.h>

#include "kvnode.h"

struct kv_txn {
	int active; /* between MULTI and EXEC/DISCARD */
	int failed; /* a command was refused: EXEC answers EXECABORT */
	unsigned slot;
	int have_slot;
	unsigned key_slot; /* the slot of the keys queued so far */
	int have_key_slot;
	int cross;	 /* queued keys in more than one slot: CROSSSLOT */
	int cross_group; /* ... or group (watches included) */
	struct kv_group *group; /* of the keys queued or watched so far */
	struct kv_buf cmds;	/* encoded commands, back to back */
	size_t *ends;
	size_t n, cap;
	struct kv_buf watch; /* <u32 len><key><u32 len><digest>... */
	size_t nwatch;
};

void kv_multi_free(struct kv_txn *t)
{
	if (!t)
		return;
	kv_buf_free(&t->cmds);
	kv_buf_free(&t->watch);
	free(t->ends);
	free(t);
}

static struct kv_txn *txn_of(struct kv_cmdctx *ctx, int create)
{
	struct kv_txn **tp = kv_server_conn_txn(ctx->c);

	if (!*tp && create)
		*tp = calloc(1, sizeof(**tp));
	return *tp;
}

/* Forget the queued commands and the watches. */
static void txn_reset(struct kv_txn *t)
{
	t->active = t->failed = t->have_slot = 0;
	t->have_key_slot = t->cross = t->cross_group = 0;
	t->group = NULL;
	t->cmds.len = 0;
	t->watch.len = 0;
	t->n = t->nwatch = 0;
}

struct kv_txn *kv_multi_active(struct kv_cmdctx *ctx)
{
	struct kv_txn *t = txn_of(ctx, 0);

	return t && t->active ? t : NULL;
}

void kv_multi_fail(struct kv_txn *t)
{
	t->failed = 1;
}

/* A transaction is one entry of one group: its keys (and watches) must
 * all be in that group. */
static void note_group(struct kv_txn *t, struct kv_group *g)
{
	if (t->group && t->group != g)
		t->cross_group = 1;
	t->group = g;
}

/* Redis Cluster checks the keys of every queued command together when
 * EXEC arrives; kvnode notes them as they are queued. */
void kv_multi_note_slot(struct kv_cmdctx *ctx, struct kv_txn *t, unsigned slot)
{
	note_group(t, kv_group_of_slot(ctx->s, slot));
	if (ctx->s->opt.plain)
		return;
	if (t->have_key_slot && t->key_slot != slot)
		t->cross = 1;
	t->key_slot = slot;
	t->have_key_slot = 1;
}

void kv_multi_queue(struct kv_cmdctx *ctx, int op, size_t n,
		    const char *const *argv, const size_t *lens)
{
	struct kv_txn *t = ctx->txn;

	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		size_t *ends = realloc(t->ends, cap * sizeof(*ends));
		if (!ends)
			goto oom;
		t->ends = ends;
		t->cap = cap;
	}
	if (kv_cmd_encode(&t->cmds, op, n, argv, lens))
		goto oom;
	t->ends[t->n++] = t->cmds.len;
	/* The first key of the command as the client sent it (the
	 * encoded form may start with a flags byte). */
	if (!t->have_slot && ctx->argc > 1 && op != KV_OP_R_DBSIZE &&
	    op != KV_OP_FLUSH) {
		t->slot = kv_key_slot(ctx->argv[1], ctx->lens[1]);
		t->have_slot = 1;
	}
	ctx->queued = 1;
	kv_reply_simple(ctx->out, "QUEUED");
	return;
oom:
	t->failed = 1;
	kv_reply_error(ctx->out, "ERR out of memory");
}

void kv_multi_cmd_multi(struct kv_cmdctx *ctx)
{
	struct kv_txn *t = txn_of(ctx, 1);

	if (!t) {
		kv_reply_error(ctx->out, "ERR out of memory");
	} else if (t->active) {
		kv_reply_error(ctx->out, "ERR MULTI calls can not be nested");
	} else {
		t->active = 1;
		kv_reply_simple(ctx->out, "OK");
	}
}

void kv_multi_cmd_discard(struct kv_cmdctx *ctx)
{
	struct kv_txn *t = kv_multi_active(ctx);

	if (!t) {
		kv_reply_error(ctx->out, "ERR DISCARD without MULTI");
		return;
	}
	txn_reset(t);
	kv_reply_simple(ctx->out, "OK");
}

void kv_multi_cmd_watch(struct kv_cmdctx *ctx)
{
	struct kv_txn *t;

	if (kv_multi_active(ctx)) {
		kv_reply_error(ctx->out, "ERR WATCH inside MULTI is not "
					 "allowed");
		return;
	}
	t = txn_of(ctx, 1);
	if (!t) {
		kv_reply_error(ctx->out, "ERR out of memory");
		return;
	}
	for (size_t i = 1; i < ctx->argc; i++) {
		unsigned char d[8];
		size_t dl;
		const char *argv[2] = { ctx->argv[i], (const char *)d };
		size_t lens[2] = { ctx->lens[i], 0 };
		struct kv_buf one = { 0 };
		kv_txn_digest(&ctx->g->fsm.map, ctx->argv[i], ctx->lens[i], d,
			      &dl);
		lens[1] = dl;
		/* Encoded as a command, then its 5-byte header dropped:
		 * what stays is the argument part EXEC reassembles. */
		if (kv_cmd_encode(&one, 0, 2, argv, lens) ||
		    kv_buf_put(&t->watch, one.p + 5, one.len - 5)) {
			kv_buf_free(&one);
			kv_reply_error(ctx->out, "ERR out of memory");
			return;
		}
		kv_buf_free(&one);
		t->nwatch += 2;
	}
	note_group(t, ctx->g);
	kv_reply_simple(ctx->out, "OK");
}

void kv_multi_cmd_unwatch(struct kv_cmdctx *ctx)
{
	struct kv_txn *t = txn_of(ctx, 0);

	if (t && !t->active) {
		t->watch.len = 0;
		t->nwatch = 0;
		t->group = NULL;
		t->cross_group = 0;
	}
	kv_reply_simple(ctx->out, "OK");
}

/* The KV_OP_MULTI entry: the watch list, then every queued command. */
static int build_entry(struct kv_txn *t, struct kv_buf *out)
{
	struct kv_buf watch = { 0 };
	unsigned char hdr[5];
	const char **argv = malloc((t->n + 1) * sizeof(*argv));
	size_t *lens = malloc((t->n + 1) * sizeof(*lens));
	int rc = -1;

	if (!argv || !lens)
		goto out;
	hdr[0] = 0;
	for (int i = 0; i < 4; i++)
		hdr[1 + i] = (unsigned char)((uint32_t)t->nwatch >> (8 * i));
	if (kv_buf_put(&watch, hdr, 5) ||
	    kv_buf_put(&watch, t->watch.p, t->watch.len))
		goto out;
	argv[0] = watch.p;
	lens[0] = watch.len;
	for (size_t i = 0; i < t->n; i++) {
		size_t from = i ? t->ends[i - 1] : 0;
		argv[i + 1] = t->cmds.p + from;
		lens[i + 1] = t->ends[i] - from;
	}
	rc = kv_cmd_encode(out, KV_OP_MULTI, t->n + 1, argv, lens);
out:
	kv_buf_free(&watch);
	free(argv);
	free(lens);
	return rc;
}

void kv_multi_cmd_exec(struct kv_cmdctx *ctx)
{
	struct kv_txn *t = kv_multi_active(ctx);
	struct kv_buf enc = { 0 };

	if (!t) {
		kv_reply_error(ctx->out, "ERR EXEC without MULTI");
		return;
	}
	/* The entry goes to the group of its keys (home without keys). */
	ctx->g = t->group ? t->group : kv_group_home(ctx->s);
	ctx->slot = t->have_slot ? t->slot : ctx->g->first_slot;
	if (t->failed) {
		kv_reply_error(ctx->out, "EXECABORT Transaction discarded "
					 "because of previous errors.");
	} else if (t->cross || t->cross_group) {
		kv_reply_error(ctx->out, "CROSSSLOT Keys in request don't hash "
					 "to the same slot");
	} else if (!kv_cmd_is_leader(ctx->g)) {
		kv_slot_redirect(ctx->s, ctx->slot, ctx->out);
	} else if (build_entry(t, &enc)) {
		kv_reply_error(ctx->out, "ERR out of memory (transaction "
					 "discarded)");
	} else {
		kv_cmd_propose(ctx, KV_K_EXEC, &enc);
	}
	kv_buf_free(&enc);
	txn_reset(t);
}
