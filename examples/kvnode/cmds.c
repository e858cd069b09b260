/*
 * cmds.c — the commands kvnode understands, and how each one is answered.
 *
 * Three kinds of commands:
 *
 *   local      answered at once from this node's own state: PING, ECHO,
 *              INFO, CONFIG GET, COMMAND, CLIENT, CLUSTER NODES/INFO, ...
 *   writes     SET, DEL, INCR/INCRBY/DECR/DECRBY, MSET: encoded as a log
 *              entry (kvfsm.c) and proposed; answered when applied
 *   reads      GET, MGET, EXISTS, DBSIZE, STRLEN: answered after a
 *              ReadIndex round confirms this node still leads, so a read
 *              never returns a value older than a write that finished
 *              before it started (linearizable)
 *
 * Writes, reads and membership changes run only on the leader; elsewhere
 * they get "-MOVED 0 <leader client address>" (redis-cli -c follows it)
 * or "-CLUSTERDOWN no leader".  Both promise the command did nothing.  A
 * write whose fate is unknown gets "-TIMEOUT outcome unknown" instead:
 * it may or may not have happened.
 *
 * Arity follows Redis: a positive arity is exact, a negative one is a
 * minimum (-2: the name and at least one argument).
 */
#include <fnmatch.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "kvnode.h"

typedef void (*cmd_fn)(struct kv_cmdctx *ctx);

/* Command flags, as COMMAND reports them (and kvnode routes by them). */
enum {
	F_WRITE = 1 << 0,    /* changes data: proposed through the log */
	F_READONLY = 1 << 1, /* reads data: a ReadIndex read on the leader */
	F_DENYOOM = 1 << 2,
	F_ADMIN = 1 << 3,
	F_FAST = 1 << 4,
	F_LOADING = 1 << 5,
	F_STALE = 1 << 6,
	F_NOSCRIPT = 1 << 7,
	F_TXCTL = 1 << 8, /* runs even between MULTI and EXEC (not reported) */
	F_ONE_GROUP = 1 << 9 /* refused with --groups > 1 (not reported) */
};

/*
 * A command: its name, Redis's arity, flags, and where its keys are
 * (first and last argument positions, and the step between keys; last -1
 * is the last argument; 0 0 0 when the command has no keys).  Clients
 * such as redis-py's cluster router take the key positions from COMMAND.
 */
struct cmd {
	const char *name;
	int arity;
	cmd_fn fn;
	unsigned flags;
	int first, last, step;
};

static int slot_check(struct kv_cmdctx *ctx, const struct cmd *c, int *slot);

static int arg_is(const struct kv_cmdctx *ctx, size_t i, const char *s)
{
	return ctx->lens[i] == strlen(s) &&
	       strncasecmp(ctx->argv[i], s, ctx->lens[i]) == 0;
}

/* Copy argument i into a NUL-terminated buffer; -1 if it does not fit or
 * holds a NUL. */
static int arg_str(const struct kv_cmdctx *ctx, size_t i, char *buf, size_t cap)
{
	if (ctx->lens[i] >= cap || memchr(ctx->argv[i], 0, ctx->lens[i]))
		return -1;
	memcpy(buf, ctx->argv[i], ctx->lens[i]);
	buf[ctx->lens[i]] = 0;
	return 0;
}

static int arg_ll(struct kv_cmdctx *ctx, size_t i, long long *v)
{
	if (kv_parse_ll(ctx->argv[i], ctx->lens[i], v) == 0)
		return 0;
	kv_reply_error(ctx->out, "ERR value is not an integer or out of range");
	return -1;
}

/* ------------------------------------------------------------------ */
/* Writes                                                             */
/* ------------------------------------------------------------------ */

uint64_t kv_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A scratch buffer is emptied for the next write; one grown past 1 MiB
 * by a large value is given back rather than kept. */
static void scratch_done(struct kv_buf *b)
{
	if (b->cap > ((size_t)1 << 20))
		kv_buf_free(b);
	b->len = 0;
}

void kv_cmd_propose(struct kv_cmdctx *ctx, int kind, const struct kv_buf *enc)
{
	unsigned char now[8];
	const char *argv[2] = { (const char *)now, enc->p };
	size_t lens[2] = { 8, enc->len };
	struct kv_buf *timed = &ctx->s->timed_scratch;

	kv_cmd_le64(now, (long long)kv_wall_ms());
	timed->len = 0;
	if (kv_cmd_encode(timed, KV_OP_TIMED, 2, argv, lens))
		kv_reply_error(ctx->out, "ERR out of memory");
	else
		kv_server_async_write(ctx, kind, timed);
	scratch_done(timed);
}

/* Inside SESSION id seq: the write wrapped in a session entry stamped
 * with the leader's wall-clock time (session.c). */
static void session_write(struct kv_cmdctx *ctx, int op, size_t n,
			  const char *const *argv, const size_t *lens)
{
	struct kv_buf inner = { 0 }, enc = { 0 };
	unsigned char id[8], seq[8], now[8];
	struct timespec ts;
	const char *wargv[4] = { (const char *)id, (const char *)seq,
				 (const char *)now, NULL };
	size_t wlens[4] = { 8, 8, 8, 0 };

	clock_gettime(CLOCK_REALTIME, &ts);
	kv_cmd_le64(id, (long long)ctx->sess_id);
	kv_cmd_le64(seq, (long long)ctx->sess_seq);
	kv_cmd_le64(now, (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
	if (kv_cmd_encode(&inner, op, n, argv, lens)) {
		kv_reply_error(ctx->out, "ERR out of memory");
		return;
	}
	wargv[3] = inner.p;
	wlens[3] = inner.len;
	if (kv_cmd_encode(&enc, KV_OP_SESSION, 4, wargv, wlens))
		kv_reply_error(ctx->out, "ERR out of memory");
	else
		kv_cmd_propose(ctx, KV_K_EXEC, &enc);
	kv_buf_free(&inner);
	kv_buf_free(&enc);
}

static void write_args(struct kv_cmdctx *ctx, int kind, int op, size_t n,
		       const char *const *argv, const size_t *lens)
{
	struct kv_buf *enc = &ctx->s->enc_scratch;

	if (ctx->txn) {
		kv_multi_queue(ctx, op, n, argv, lens);
		return;
	}
	if (ctx->session) {
		session_write(ctx, op, n, argv, lens);
		return;
	}
	enc->len = 0;
	if (kv_cmd_encode(enc, op, n, argv, lens))
		kv_reply_error(ctx->out, "ERR out of memory");
	else
		kv_cmd_propose(ctx, kind, enc);
	scratch_done(enc);
}

static void read_only_cmd(struct kv_cmdctx *ctx, int kind);
static void op_args(struct kv_cmdctx *ctx, int op);

/* SETX (ops.c): SET with flags (16: expire at `at`), SETNX, GETSET. */
static void setx_at(struct kv_cmdctx *ctx, unsigned flags, size_t ki, size_t vi,
		    uint64_t at)
{
	unsigned char f = (unsigned char)flags, le[8];
	const char *argv[4] = { (const char *)&f, ctx->argv[ki], ctx->argv[vi],
				(const char *)le };
	size_t lens[4] = { 1, ctx->lens[ki], ctx->lens[vi], 8 };

	kv_cmd_le64(le, (long long)at);
	write_args(ctx, KV_K_EXEC, KV_OP_SETX, flags & 16 ? 4 : 3, argv, lens);
}

static void setx(struct kv_cmdctx *ctx, unsigned flags)
{
	setx_at(ctx, flags, 1, 2, 0);
}

/* An expiry argument: seconds or ms, relative or absolute; the absolute
 * time in ms, or 0 after replying the error. */
static uint64_t expiry_arg(struct kv_cmdctx *ctx, size_t i, int ms, int abs)
{
	long long v;

	if (kv_parse_ll(ctx->argv[i], ctx->lens[i], &v)) {
		kv_reply_error(ctx->out, "ERR value is not an integer or out "
					 "of "
					 "range");
		return 0;
	}
	if (v <= 0 || (!ms && v > LLONG_MAX / 1000)) {
		kv_reply_errorf(ctx->out,
				"ERR invalid expire time in '%s' "
				"command",
				"set");
		return 0;
	}
	if (!ms)
		v *= 1000;
	if (!abs) {
		if ((uint64_t)v > UINT64_MAX / 2 - kv_wall_ms()) {
			kv_reply_error(ctx->out, "ERR invalid expire time");
			return 0;
		}
		return kv_wall_ms() + (uint64_t)v;
	}
	return (uint64_t)v;
}

/* SET key value [NX|XX] [GET] [KEEPTTL].  Keys never expire in kvnode,
 * so KEEPTTL changes nothing and EX/PX/EXAT/PXAT are refused. */
static void cmd_set(struct kv_cmdctx *ctx)
{
	unsigned flags = 0;
	uint64_t at = 0;

	for (size_t i = 3; i < ctx->argc; i++) {
		if (arg_is(ctx, i, "NX") && !(flags & 2)) {
			flags |= 1;
		} else if (arg_is(ctx, i, "XX") && !(flags & 1)) {
			flags |= 2;
		} else if (arg_is(ctx, i, "GET")) {
			flags |= 4;
		} else if (arg_is(ctx, i, "KEEPTTL") && !(flags & 16)) {
			flags |= 32;
		} else if ((arg_is(ctx, i, "EX") || arg_is(ctx, i, "PX") ||
			    arg_is(ctx, i, "EXAT") || arg_is(ctx, i, "PXAT")) &&
			   !(flags & (16 | 32)) && i + 1 < ctx->argc) {
			int ms = ctx->argv[i][0] == 'P' ||
				 ctx->argv[i][0] == 'p';
			at = expiry_arg(ctx, i + 1, ms, ctx->lens[i] == 4);
			if (!at)
				return;
			flags |= 16;
			i++;
		} else {
			kv_reply_error(ctx->out, "ERR syntax error");
			return;
		}
	}
	if (flags)
		setx_at(ctx, flags, 1, 2, at);
	else
		write_args(ctx, KV_K_SET, KV_OP_SET, 2, ctx->argv + 1,
			   ctx->lens + 1);
}

/* SETEX key seconds value, PSETEX key ms value */
static void setex(struct kv_cmdctx *ctx, int ms)
{
	uint64_t at = expiry_arg(ctx, 2, ms, 0);

	if (at)
		setx_at(ctx, 16, 1, 3, at);
}

static void cmd_setex(struct kv_cmdctx *ctx)
{
	setex(ctx, 0);
}

static void cmd_psetex(struct kv_cmdctx *ctx)
{
	setex(ctx, 1);
}

/* EXPIRE/PEXPIRE/EXPIREAT/PEXPIREAT key time [NX|XX|GT|LT].  A time in
 * the past deletes the key (as Redis). */
static void expire_cmd(struct kv_cmdctx *ctx, int ms, int abs)
{
	unsigned char f = 0, le[8];
	const char *argv[3] = { (const char *)&f, ctx->argv[1],
				(const char *)le };
	size_t lens[3] = { 1, ctx->lens[1], 8 };
	long long v;
	uint64_t at;

	for (size_t i = 3; i < ctx->argc; i++) {
		if (arg_is(ctx, i, "NX"))
			f |= 1;
		else if (arg_is(ctx, i, "XX"))
			f |= 2;
		else if (arg_is(ctx, i, "GT"))
			f |= 4;
		else if (arg_is(ctx, i, "LT"))
			f |= 8;
		else {
			kv_reply_errorf(ctx->out,
					"ERR Unsupported option "
					"%.*s",
					(int)(ctx->lens[i] > 16 ? 16
								: ctx->lens[i]),
					ctx->argv[i]);
			return;
		}
	}
	if ((f & 1 && f & 14) || (f & 4 && f & 8)) {
		kv_reply_error(ctx->out, "ERR NX and XX, GT or LT options at "
					 "the same time are not compatible");
		return;
	}
	if (arg_ll(ctx, 2, &v))
		return;
	if (!ms && (v > LLONG_MAX / 1000 || v < LLONG_MIN / 1000)) {
		kv_reply_error(ctx->out, "ERR invalid expire time");
		return;
	}
	if (!ms)
		v *= 1000;
	if (abs)
		at = v < 1 ? 1 : (uint64_t)v;
	else if (v <= 0)
		at = 1; /* already past: the key is deleted */
	else
		at = kv_wall_ms() + (uint64_t)v;
	kv_cmd_le64(le, (long long)at);
	write_args(ctx, KV_K_EXEC, KV_OP_EXPIRE, 3, argv, lens);
}

static void cmd_expire(struct kv_cmdctx *ctx)
{
	expire_cmd(ctx, 0, 0);
}
static void cmd_pexpire(struct kv_cmdctx *ctx)
{
	expire_cmd(ctx, 1, 0);
}
static void cmd_expireat(struct kv_cmdctx *ctx)
{
	expire_cmd(ctx, 0, 1);
}
static void cmd_pexpireat(struct kv_cmdctx *ctx)
{
	expire_cmd(ctx, 1, 1);
}

static void cmd_persist(struct kv_cmdctx *ctx)
{
	op_args(ctx, KV_OP_PERSIST);
}

/* GETEX key [EX s|PX ms|EXAT t|PXAT t|PERSIST] */
static void cmd_getex(struct kv_cmdctx *ctx)
{
	unsigned char mode = 0, le[8];
	const char *argv[3] = { (const char *)&mode, ctx->argv[1],
				(const char *)le };
	size_t lens[3] = { 1, ctx->lens[1], 8 };
	uint64_t at = 0;

	if (ctx->argc == 3 && arg_is(ctx, 2, "PERSIST")) {
		mode = 2;
	} else if (ctx->argc == 4 &&
		   (arg_is(ctx, 2, "EX") || arg_is(ctx, 2, "PX") ||
		    arg_is(ctx, 2, "EXAT") || arg_is(ctx, 2, "PXAT"))) {
		at = expiry_arg(ctx, 3,
				ctx->argv[2][0] == 'P' ||
					ctx->argv[2][0] == 'p',
				ctx->lens[2] == 4);
		if (!at)
			return;
		mode = 1;
	} else if (ctx->argc != 2) {
		kv_reply_error(ctx->out, "ERR syntax error");
		return;
	}
	kv_cmd_le64(le, (long long)at);
	write_args(ctx, KV_K_EXEC, KV_OP_GETEX, 3, argv, lens);
}

static void cmd_ttl(struct kv_cmdctx *ctx)
{
	/* Inside MULTI: evaluated at apply time against the log's time. */
	if (ctx->txn) {
		unsigned char mode = (unsigned char)((ctx->argv[0][0] == 'p' ||
						      ctx->argv[0][0] == 'P') +
						     2 * (ctx->lens[0] > 4));
		const char *argv[2] = { (const char *)&mode, ctx->argv[1] };
		size_t lens[2] = { 1, ctx->lens[1] };
		kv_multi_queue(ctx, KV_OP_R_TTL, 2, argv, lens);
		return;
	}
	read_only_cmd(ctx, KV_K_TTL);
}

static void cmd_setnx(struct kv_cmdctx *ctx)
{
	setx(ctx, 1 | 8);
}

static void cmd_getset(struct kv_cmdctx *ctx)
{
	setx(ctx, 4);
}

/* A write of ops.c whose arguments go as they came (after the name). */
static void op_args(struct kv_cmdctx *ctx, int op)
{
	write_args(ctx, KV_K_EXEC, op, ctx->argc - 1, ctx->argv + 1,
		   ctx->lens + 1);
}

static void cmd_getdel(struct kv_cmdctx *ctx)
{
	op_args(ctx, KV_OP_GETDEL);
}

static void cmd_append(struct kv_cmdctx *ctx)
{
	op_args(ctx, KV_OP_APPEND);
}

static void cmd_msetnx(struct kv_cmdctx *ctx)
{
	if (ctx->argc % 2 == 0) {
		kv_reply_error(ctx->out, "ERR wrong number of arguments for "
					 "'msetnx' command");
		return;
	}
	op_args(ctx, KV_OP_MSETNX);
}

static void cmd_incrbyfloat(struct kv_cmdctx *ctx)
{
	if (!kv_ops_valid_float(ctx->argv[2], ctx->lens[2])) {
		kv_reply_error(ctx->out, "ERR value is not a valid float");
		return;
	}
	op_args(ctx, KV_OP_INCRBYFLOAT);
}

static void cmd_setrange(struct kv_cmdctx *ctx)
{
	unsigned char le[8];
	const char *argv[3] = { ctx->argv[1], (const char *)le, ctx->argv[3] };
	size_t lens[3] = { ctx->lens[1], 8, ctx->lens[3] };
	long long off;

	if (arg_ll(ctx, 2, &off))
		return;
	if (off < 0) {
		kv_reply_error(ctx->out, "ERR offset is out of range");
		return;
	}
	if ((unsigned long long)off + ctx->lens[3] > 512ULL * 1024 * 1024) {
		kv_reply_error(ctx->out, "ERR string exceeds maximum allowed "
					 "size (proto-max-bulk-len)");
		return;
	}
	kv_cmd_le64(le, off);
	write_args(ctx, KV_K_EXEC, KV_OP_SETRANGE, 3, argv, lens);
}

static void rename_cmd(struct kv_cmdctx *ctx, int nx)
{
	unsigned char f = (unsigned char)nx;
	const char *argv[3] = { (const char *)&f, ctx->argv[1], ctx->argv[2] };
	size_t lens[3] = { 1, ctx->lens[1], ctx->lens[2] };

	write_args(ctx, KV_K_EXEC, KV_OP_RENAME, 3, argv, lens);
}

static void cmd_rename(struct kv_cmdctx *ctx)
{
	rename_cmd(ctx, 0);
}

static void cmd_renamenx(struct kv_cmdctx *ctx)
{
	rename_cmd(ctx, 1);
}

static void cmd_flush(struct kv_cmdctx *ctx)
{
	if (ctx->argc > 2 || (ctx->argc == 2 && !arg_is(ctx, 1, "ASYNC") &&
			      !arg_is(ctx, 1, "SYNC"))) {
		kv_reply_error(ctx->out, "ERR syntax error");
		return;
	}
	write_args(ctx, KV_K_EXEC, KV_OP_FLUSH, 0, NULL, NULL);
}

static void cmd_mset(struct kv_cmdctx *ctx)
{
	if (ctx->argc % 2 == 0) {
		kv_reply_error(ctx->out, "ERR wrong number of arguments for "
					 "'mset' command");
		return;
	}
	write_args(ctx, KV_K_MSET, KV_OP_MSET, ctx->argc - 1, ctx->argv + 1,
		   ctx->lens + 1);
}

static void cmd_del(struct kv_cmdctx *ctx)
{
	write_args(ctx, KV_K_DEL, KV_OP_DEL, ctx->argc - 1, ctx->argv + 1,
		   ctx->lens + 1);
}

static void incr_by(struct kv_cmdctx *ctx, long long delta)
{
	unsigned char le[8];
	const char *argv[2] = { ctx->argv[1], (const char *)le };
	size_t lens[2] = { ctx->lens[1], 8 };

	kv_cmd_le64(le, delta);
	write_args(ctx, KV_K_INCR, KV_OP_INCRBY, 2, argv, lens);
}

static void cmd_incr(struct kv_cmdctx *ctx)
{
	incr_by(ctx, 1);
}

static void cmd_decr(struct kv_cmdctx *ctx)
{
	incr_by(ctx, -1);
}

static void cmd_incrby(struct kv_cmdctx *ctx)
{
	long long v;

	if (arg_ll(ctx, 2, &v) == 0)
		incr_by(ctx, v);
}

static void cmd_decrby(struct kv_cmdctx *ctx)
{
	long long v;

	if (arg_ll(ctx, 2, &v))
		return;
	if (v == LLONG_MIN) {
		kv_reply_error(ctx->out, "ERR decrement would overflow");
		return;
	}
	incr_by(ctx, -v);
}

void kv_cmd_write_reply(struct kv_group *g, int kind, int status,
			const struct kv_result *r, struct kv_buf *out)
{
	(void)g;
	if (status == SR_EUNKNOWN) {
		kv_reply_error(out, "TIMEOUT outcome unknown: the write may or "
				    "may not have happened");
	} else if (status == SR_EDROPPED) {
		kv_reply_error(out, "TRYAGAIN write not applied (replaced "
				    "after "
				    "a leader change); safe to retry");
	} else if (status < 0) {
		kv_reply_errorf(out, "ERR %s", sr_strerror(status));
	} else if (kind == KV_K_EXEC) {
		if (r && r->len)
			kv_buf_put(out, r->resp, r->len);
		else
			kv_reply_error(out, "ERR no result from the state "
					    "machine");
	} else if (kind == KV_K_SET || kind == KV_K_MSET) {
		kv_reply_simple(out, "OK");
	} else if (!r) {
		kv_reply_error(out, "ERR no result from the state machine");
	} else if (r->code == KV_RES_NOTINT) {
		kv_reply_error(out, "ERR value is not an integer or out of "
				    "range");
	} else if (r->code == KV_RES_OVERFLOW) {
		kv_reply_error(out, "ERR increment or decrement would "
				    "overflow");
	} else {
		kv_reply_int(out, r->num);
	}
}

/* ------------------------------------------------------------------ */
/* Reads                                                              */
/* ------------------------------------------------------------------ */

/* A read: a ReadIndex read, or inside MULTI a read operation queued in
 * the transaction (evaluated when it applies, after the writes queued
 * before it). */
static void read_cmd(struct kv_cmdctx *ctx, int kind, int txn_op)
{
	if (ctx->txn)
		kv_multi_queue(ctx, txn_op, ctx->argc - 1, ctx->argv + 1,
			       ctx->lens + 1);
	else
		kv_server_async_read(ctx, kind);
}

static void cmd_get(struct kv_cmdctx *ctx)
{
	read_cmd(ctx, KV_K_GET, KV_OP_R_GET);
}
static void cmd_mget(struct kv_cmdctx *ctx)
{
	read_cmd(ctx, KV_K_MGET, KV_OP_R_MGET);
}
static void cmd_exists(struct kv_cmdctx *ctx)
{
	read_cmd(ctx, KV_K_EXISTS, KV_OP_R_EXISTS);
}
static void cmd_dbsize(struct kv_cmdctx *ctx)
{
	read_cmd(ctx, KV_K_DBSIZE, KV_OP_R_DBSIZE);
}
static void cmd_strlen(struct kv_cmdctx *ctx)
{
	read_cmd(ctx, KV_K_STRLEN, KV_OP_R_STRLEN);
}

/* Reads with no transaction form: refused inside MULTI. */
static void read_only_cmd(struct kv_cmdctx *ctx, int kind)
{
	if (ctx->txn)
		kv_reply_errorf(ctx->out,
				"ERR '%.*s' cannot be queued in a "
				"kvnode transaction",
				(int)(ctx->lens[0] > 32 ? 32 : ctx->lens[0]),
				ctx->argv[0]);
	else
		kv_server_async_read(ctx, kind);
}

static void cmd_getrange(struct kv_cmdctx *ctx)
{
	long long v;

	if (arg_ll(ctx, 2, &v) == 0 && arg_ll(ctx, 3, &v) == 0)
		read_only_cmd(ctx, KV_K_GETRANGE);
}

static void cmd_keys(struct kv_cmdctx *ctx)
{
	read_only_cmd(ctx, KV_K_KEYS);
}

static void cmd_scan(struct kv_cmdctx *ctx)
{
	long long v;

	if (kv_parse_ll(ctx->argv[1], ctx->lens[1], &v)) {
		kv_reply_error(ctx->out, "ERR invalid cursor");
		return;
	}
	for (size_t i = 2; i < ctx->argc; i += 2) {
		if (i + 1 >= ctx->argc ||
		    !(arg_is(ctx, i, "MATCH") || arg_is(ctx, i, "COUNT") ||
		      arg_is(ctx, i, "TYPE"))) {
			kv_reply_error(ctx->out, "ERR syntax error");
			return;
		}
		if (arg_is(ctx, i, "COUNT") &&
		    (kv_parse_ll(ctx->argv[i + 1], ctx->lens[i + 1], &v) ||
		     v < 1)) {
			kv_reply_error(ctx->out, "ERR syntax error");
			return;
		}
	}
	read_only_cmd(ctx, KV_K_SCAN);
}

static void cmd_type(struct kv_cmdctx *ctx)
{
	read_only_cmd(ctx, KV_K_TYPE);
}

static void cmd_randomkey(struct kv_cmdctx *ctx)
{
	read_only_cmd(ctx, KV_K_RANDOMKEY);
}

/* Redis glob matching of a binary key (fnmatch without path rules). */
static int key_matches(const char *pat, const char *k, size_t kl)
{
	char buf[512];

	if (!pat)
		return 1;
	if (kl >= sizeof(buf) || memchr(k, 0, kl))
		return pat[0] == '*' && pat[1] == 0;
	memcpy(buf, k, kl);
	buf[kl] = 0;
	return fnmatch(pat, buf, 0) == 0;
}

static uint64_t rev64(uint64_t v)
{
	uint64_t r = 0;

	for (int i = 0; i < 64; i++, v >>= 1)
		r = r << 1 | (v & 1);
	return r;
}

/*
 * SCAN's cursor walks the buckets in reverse-binary order (the high bits
 * of the bucket index counted up), as Redis does: when the table doubles
 * between two calls, the buckets already visited map to buckets the
 * cursor has passed, so a key present for the whole scan is returned at
 * least once.
 */
static void eval_scan(const struct kv_map *m, struct kv_cmd_iter *it,
		      struct kv_buf *out)
{
	const char *a, *b, *pat = NULL;
	size_t al, bl, n = 0;
	long long cur = 0, count = 10;
	char patbuf[256];
	int want_string = 1;
	struct kv_buf keys = { 0 };
	uint64_t v, mask;
	char num[24];

	kv_cmd_iter_next(it, &a, &al);
	kv_parse_ll(a, al, &cur);
	while (kv_cmd_iter_next(it, &a, &al) && kv_cmd_iter_next(it, &b, &bl)) {
		if (al == 5 && strncasecmp(a, "MATCH", 5) == 0 &&
		    bl < sizeof(patbuf) && !memchr(b, 0, bl)) {
			memcpy(patbuf, b, bl);
			patbuf[bl] = 0;
			pat = patbuf;
		} else if (al == 5 && strncasecmp(a, "COUNT", 5) == 0) {
			kv_parse_ll(b, bl, &count);
		} else if (al == 4 && strncasecmp(a, "TYPE", 4) == 0) {
			want_string = bl == 6 &&
				      strncasecmp(b, "string", 6) == 0;
		}
	}
	v = (uint64_t)cur;
	if (!m->nb || !m->count) {
		v = 0;
		goto reply;
	}
	mask = m->nb - 1;
	do {
		for (const struct kv_ent *e = m->b[v & mask]; e; e = e->next) {
			if (!want_string || !kv_map_live(m, e) ||
			    !key_matches(pat, kv_ent_key(e), e->klen))
				continue;
			kv_reply_bulk(&keys, kv_ent_key(e), e->klen);
			n++;
		}
		v |= ~mask;
		v = rev64(v);
		v++;
		v = rev64(v);
	} while (v && count-- > 1);
reply:
	kv_reply_array(out, 2);
	snprintf(num, sizeof(num), "%llu", (unsigned long long)v);
	kv_reply_cstr(out, num);
	kv_reply_array(out, n);
	kv_buf_put(out, keys.p, keys.len);
	kv_buf_free(&keys);
}

static void eval_read(struct kv_group *g, int kind, const char *enc, size_t len,
		      struct kv_buf *out);

/* Reads see keys expire by the leader's clock (never earlier than the
 * log's time, which writes use). */
void kv_cmd_eval_read(struct kv_group *g, int kind, const char *enc, size_t len,
		      struct kv_buf *out)
{
	uint64_t saved = g->fsm.map.now, wall = kv_wall_ms();

	if (wall > saved)
		g->fsm.map.now = wall;
	eval_read(g, kind, enc, len, out);
	g->fsm.map.now = saved;
}

static void eval_read(struct kv_group *g, int kind, const char *enc, size_t len,
		      struct kv_buf *out)
{
	const struct kv_map *m = &g->fsm.map;
	struct kv_cmd_iter it;
	const struct kv_ent *e;
	const char *k;
	size_t kl;
	long long n = 0;
	int argc = kv_cmd_iter_init(&it, enc, len);

	if (argc < 1 || !kv_cmd_iter_next(&it, &k, &kl)) {
		kv_reply_error(out, "ERR internal: bad read request");
		return;
	}
	switch (kind) {
	case KV_K_GET:
	case KV_K_STRLEN:
		kv_cmd_iter_next(&it, &k, &kl);
		e = kv_map_get(m, k, kl);
		if (kind == KV_K_STRLEN)
			kv_reply_int(out, e ? e->vlen : 0);
		else if (e)
			kv_reply_bulk(out, kv_ent_val(e), e->vlen);
		else
			kv_reply_nil(out);
		return;
	case KV_K_MGET:
		kv_reply_array(out, (size_t)argc - 1);
		while (kv_cmd_iter_next(&it, &k, &kl)) {
			e = kv_map_get(m, k, kl);
			if (e)
				kv_reply_bulk(out, kv_ent_val(e), e->vlen);
			else
				kv_reply_nil(out);
		}
		return;
	case KV_K_EXISTS:
		while (kv_cmd_iter_next(&it, &k, &kl))
			n += kv_map_get(m, k, kl) != NULL;
		kv_reply_int(out, n);
		return;
	case KV_K_DBSIZE:
		kv_reply_int(out, (long long)kv_map_live_count(m));
		return;
	case KV_K_TTL: {
		int p = kl > 0 && (k[0] == 'p' || k[0] == 'P');
		int abs = kl > 3 && (k[kl - 1] == 'e' || k[kl - 1] == 'E');
		uint64_t at;
		kv_cmd_iter_next(&it, &k, &kl);
		if (!kv_map_get(m, k, kl)) {
			kv_reply_int(out, -2);
			return;
		}
		at = kv_map_ttl(m, k, kl);
		if (!at)
			kv_reply_int(out, -1);
		else if (abs)
			kv_reply_int(out, (long long)(p ? at : at / 1000));
		else if (p)
			kv_reply_int(out, (long long)(at - m->now));
		else
			kv_reply_int(out,
				     (long long)((at - m->now + 500) / 1000));
		return;
	}
	case KV_K_TYPE:
		kv_cmd_iter_next(&it, &k, &kl);
		kv_reply_simple(out, kv_map_get(m, k, kl) ? "string" : "none");
		return;
	case KV_K_GETRANGE: {
		const char *sa, *ea;
		size_t sl, el;
		long long st = 0, en = 0, vl;
		kv_cmd_iter_next(&it, &k, &kl);
		kv_cmd_iter_next(&it, &sa, &sl);
		kv_cmd_iter_next(&it, &ea, &el);
		kv_parse_ll(sa, sl, &st);
		kv_parse_ll(ea, el, &en);
		e = kv_map_get(m, k, kl);
		vl = e ? e->vlen : 0;
		if (st < 0)
			st = vl + st < 0 ? 0 : vl + st;
		if (en < 0)
			en = vl + en < 0 ? 0 : vl + en;
		if (en >= vl)
			en = vl - 1;
		if (!e || st > en || vl == 0)
			kv_reply_bulk(out, "", 0);
		else
			kv_reply_bulk(out, kv_ent_val(e) + st,
				      (size_t)(en - st + 1));
		return;
	}
	case KV_K_KEYS: {
		struct kv_buf keys = { 0 };
		char pat[512];
		size_t bucket = 0;
		const struct kv_ent *x = NULL;
		kv_cmd_iter_next(&it, &k, &kl);
		if (kl >= sizeof(pat) || memchr(k, 0, kl)) {
			kv_reply_array(out, 0);
			return;
		}
		memcpy(pat, k, kl);
		pat[kl] = 0;
		while ((x = kv_map_next(m, &bucket, x)) != NULL) {
			if (kv_map_live(m, x) &&
			    key_matches(pat, kv_ent_key(x), x->klen)) {
				kv_reply_bulk(&keys, kv_ent_key(x), x->klen);
				n++;
			}
		}
		kv_reply_array(out, (size_t)n);
		kv_buf_put(out, keys.p, keys.len);
		kv_buf_free(&keys);
		return;
	}
	case KV_K_SCAN:
		eval_scan(m, &it, out);
		return;
	case KV_K_RANDOMKEY: {
		size_t start, i;
		if (!m->count || !m->nb) {
			kv_reply_nil(out);
			return;
		}
		start = (size_t)rand() & (m->nb - 1);
		for (i = 0; i < m->nb; i++) {
			const struct kv_ent *x = m->b[(start + i) & (m->nb - 1)];
			for (; x; x = x->next) {
				if (kv_map_live(m, x)) {
					kv_reply_bulk(out, kv_ent_key(x),
						      x->klen);
					return;
				}
			}
		}
		kv_reply_nil(out);
		return;
	}
	default:
		kv_reply_error(out, "ERR internal: unknown read");
	}
}

/* ------------------------------------------------------------------ */
/* Local commands                                                     */
/* ------------------------------------------------------------------ */

static void cmd_ping(struct kv_cmdctx *ctx)
{
	if (ctx->argc == 1)
		kv_reply_simple(ctx->out, "PONG");
	else if (ctx->argc == 2)
		kv_reply_bulk(ctx->out, ctx->argv[1], ctx->lens[1]);
	else
		kv_reply_error(ctx->out, "ERR wrong number of arguments for "
					 "'ping' command");
}

static void cmd_echo(struct kv_cmdctx *ctx)
{
	kv_reply_bulk(ctx->out, ctx->argv[1], ctx->lens[1]);
}

static void cmd_quit(struct kv_cmdctx *ctx)
{
	kv_reply_simple(ctx->out, "OK");
	kv_server_close_after_reply(ctx->c);
}

static void cmd_select(struct kv_cmdctx *ctx)
{
	if (arg_is(ctx, 1, "0"))
		kv_reply_simple(ctx->out, "OK");
	else
		kv_reply_error(ctx->out, "ERR DB index is out of range");
}

static void cmd_info(struct kv_cmdctx *ctx)
{
	char section[32] = "all";

	if (ctx->argc > 2) {
		kv_reply_error(ctx->out, "ERR syntax error");
		return;
	}
	if (ctx->argc == 2 && arg_str(ctx, 1, section, sizeof(section))) {
		kv_reply_cstr(ctx->out, "");
		return;
	}
	struct kv_buf text = { 0 };
	kv_info(ctx->s, section, &text);
	kv_reply_verbatim(ctx->out, text.p ? text.p : "", text.len,
			  kv_server_conn_resp3(ctx->c));
	kv_buf_free(&text);
}

/* CONFIG GET: the parameters clients look at (redis-benchmark asks for
 * "save" and "appendonly"), as name/value pairs matching the patterns. */
static void cmd_config(struct kv_cmdctx *ctx)
{
	struct kv_server *s = ctx->s;
	char bulk[32], maxc[32], tmo[32];
	const char *params[][2] = {
		{ "save", "" },
		{ "appendonly", s->opt.storage_wal ? "yes" : "no" },
		{ "appendfsync", s->opt.storage_wal ? "always" : "no" },
		{ "databases", "1" },
		{ "maxclients", maxc },
		{ "proto-max-bulk-len", bulk },
		{ "timeout", "0" },
		{ "cluster-enabled", s->opt.plain ? "no" : "yes" },
		{ "kvnode-request-timeout-ms", tmo },
	};
	size_t np = sizeof(params) / sizeof(params[0]);
	struct kv_buf body = { 0 };
	size_t n = 0;

	if (!arg_is(ctx, 1, "GET")) {
		if (arg_is(ctx, 1, "RESETSTAT"))
			kv_reply_simple(ctx->out, "OK");
		else
			kv_reply_error(ctx->out, "ERR only CONFIG GET is "
						 "supported");
		return;
	}
	if (ctx->argc < 3) {
		kv_reply_error(ctx->out, "ERR wrong number of arguments for "
					 "'config|get' command");
		return;
	}
	snprintf(bulk, sizeof(bulk), "%llu",
		 (unsigned long long)s->opt.max_bulk);
	snprintf(maxc, sizeof(maxc), "%u", s->opt.max_clients);
	snprintf(tmo, sizeof(tmo), "%u", s->opt.timeout_ms);
	for (size_t i = 0; i < np; i++) {
		for (size_t a = 2; a < ctx->argc; a++) {
			char pat[128];
			if (arg_str(ctx, a, pat, sizeof(pat)) ||
			    fnmatch(pat, params[i][0], FNM_CASEFOLD))
				continue;
			kv_reply_cstr(&body, params[i][0]);
			kv_reply_cstr(&body, params[i][1]);
			n += 2;
			break;
		}
	}
	kv_reply_map(ctx->out, n / 2, kv_server_conn_resp3(ctx->c));
	kv_buf_put(ctx->out, body.p, body.len);
	kv_buf_free(&body);
}

/* ------------------------------------------------------------------ */
/* COMMAND: the command table as Redis reports it                     */
/* ------------------------------------------------------------------ */

static const struct cmd *cmd_lookup(const char *name, size_t len);
static const struct cmd *cmd_at(size_t i);

static void command_entry(struct kv_buf *o, const struct cmd *c, int r3)
{
	static const char *const names[] = { "write", "readonly", "denyoom",
					     "admin", "fast",	  "loading",
					     "stale", "noscript" };
	size_t nf = 0;

	kv_reply_array(o, 10);
	kv_reply_cstr(o, c->name);
	kv_reply_int(o, c->arity);
	for (size_t i = 0; i < 8; i++)
		nf += (c->flags >> i) & 1;
	kv_reply_set(o, nf, r3);
	for (size_t i = 0; i < 8; i++)
		if ((c->flags >> i) & 1)
			kv_reply_simple(o, names[i]);
	kv_reply_int(o, c->first);
	kv_reply_int(o, c->last);
	kv_reply_int(o, c->step);
	if (c->flags & F_WRITE) {
		kv_reply_set(o, 1, r3);
		kv_reply_simple(o, "@write");
	} else if (c->flags & F_READONLY) {
		kv_reply_set(o, 1, r3);
		kv_reply_simple(o, "@read");
	} else {
		kv_reply_set(o, 1, r3);
		kv_reply_simple(o, "@connection");
	}
	kv_reply_set(o, 0, r3); /* tips (a set in Redis 7's RESP3) */
	kv_reply_set(o, 0, r3); /* key specifications (first/last/step) */
	kv_reply_array(o, 0);	/* subcommands */
}

/* The positions of the keys of argv (argv[0] the command) per the table:
 * calls fn for each; returns the number of keys. */
static size_t command_keys(const struct cmd *c, size_t argc,
			   void (*fn)(void *arg, size_t pos), void *arg)
{
	size_t n = 0, last;

	if (c->first <= 0 || (size_t)c->first >= argc)
		return 0;
	last = c->last < 0 ? (size_t)((long)argc + c->last) : (size_t)c->last;
	if (last >= argc)
		last = argc - 1;
	for (size_t i = (size_t)c->first; i <= last; i += (size_t)c->step) {
		if (fn)
			fn(arg, i);
		n++;
	}
	return n;
}

static void getkeys_one(void *arg, size_t pos)
{
	struct kv_cmdctx *ctx = arg;

	kv_reply_bulk(ctx->out, ctx->argv[pos + 2], ctx->lens[pos + 2]);
}

static void cmd_command(struct kv_cmdctx *ctx)
{
	const struct cmd *c;
	int r3 = kv_server_conn_resp3(ctx->c);

	if (ctx->argc == 1) {
		kv_reply_array(ctx->out, kv_cmd_count());
		for (size_t i = 0; i < kv_cmd_count(); i++)
			command_entry(ctx->out, cmd_at(i), r3);
	} else if (arg_is(ctx, 1, "COUNT")) {
		kv_reply_int(ctx->out, (long long)kv_cmd_count());
	} else if (arg_is(ctx, 1, "INFO")) {
		if (ctx->argc == 2) { /* every command, as Redis 7 does */
			kv_reply_array(ctx->out, kv_cmd_count());
			for (size_t i = 0; i < kv_cmd_count(); i++)
				command_entry(ctx->out, cmd_at(i), r3);
			return;
		}
		kv_reply_array(ctx->out, ctx->argc - 2);
		for (size_t i = 2; i < ctx->argc; i++) {
			c = cmd_lookup(ctx->argv[i], ctx->lens[i]);
			if (c)
				command_entry(ctx->out, c, r3);
			else
				kv_reply_nil(ctx->out);
		}
	} else if (arg_is(ctx, 1, "LIST")) {
		kv_reply_array(ctx->out, kv_cmd_count());
		for (size_t i = 0; i < kv_cmd_count(); i++)
			kv_reply_cstr(ctx->out, cmd_at(i)->name);
	} else if (arg_is(ctx, 1, "GETKEYS")) {
		size_t argc = ctx->argc - 2, n;
		c = argc ? cmd_lookup(ctx->argv[2], ctx->lens[2]) : NULL;
		if (!c) {
			kv_reply_error(ctx->out, "ERR Invalid command "
						 "specified");
			return;
		}
		if ((c->arity > 0 && argc != (size_t)c->arity) ||
		    (c->arity < 0 && argc < (size_t)-c->arity)) {
			kv_reply_error(ctx->out, "ERR Invalid number of "
						 "arguments specified for "
						 "command");
			return;
		}
		n = command_keys(c, argc, NULL, NULL);
		if (n == 0) {
			kv_reply_error(ctx->out, "ERR The command has no key "
						 "arguments");
			return;
		}
		kv_reply_array(ctx->out, n);
		command_keys(c, argc, getkeys_one, ctx);
	} else if (arg_is(ctx, 1, "DOCS")) {
		kv_reply_map(ctx->out, 0, r3); /* no documentation served */
	} else {
		kv_reply_error(ctx->out, "ERR unknown COMMAND subcommand");
	}
}

static void cmd_client(struct kv_cmdctx *ctx)
{
	struct kv_buf text = { 0 };

	if (arg_is(ctx, 1, "ID")) {
		kv_reply_int(ctx->out, (long long)kv_server_conn_id(ctx->c));
	} else if (arg_is(ctx, 1, "GETNAME")) {
		const char *name = kv_server_conn_name(ctx->c);
		if (name[0])
			kv_reply_cstr(ctx->out, name);
		else
			kv_reply_nil(ctx->out);
	} else if (arg_is(ctx, 1, "SETNAME") && ctx->argc == 3) {
		for (size_t i = 0; i < ctx->lens[2]; i++) {
			unsigned char ch = (unsigned char)ctx->argv[2][i];
			if (ch <= ' ' || ch > '~') {
				kv_reply_error(ctx->out, "ERR Client names "
							 "cannot contain "
							 "spaces, newlines or "
							 "special "
							 "characters.");
				return;
			}
		}
		if (ctx->lens[2] >= 64) {
			kv_reply_error(ctx->out, "ERR client name longer than "
						 "63 bytes");
			return;
		}
		kv_server_set_conn_name(ctx->c, ctx->argv[2], ctx->lens[2]);
		kv_reply_simple(ctx->out, "OK");
	} else if (arg_is(ctx, 1, "LIST") || arg_is(ctx, 1, "INFO")) {
		kv_server_client_list(
			ctx->s, arg_is(ctx, 1, "INFO") ? ctx->c : NULL, &text);
		kv_reply_verbatim(ctx->out, text.p ? text.p : "", text.len,
				  kv_server_conn_resp3(ctx->c));
		kv_buf_free(&text);
	} else if (arg_is(ctx, 1, "REPLY") && ctx->argc == 3) {
		/* OFF and SKIP are not answered (server.c drops the reply of
		 * the commands that follow); ON is. */
		if (arg_is(ctx, 2, "ON")) {
			kv_server_reply_mode(ctx->c, KV_REPLY_ON);
			kv_reply_simple(ctx->out, "OK");
		} else if (arg_is(ctx, 2, "OFF")) {
			kv_server_reply_mode(ctx->c, KV_REPLY_OFF);
		} else if (arg_is(ctx, 2, "SKIP")) {
			kv_server_reply_mode(ctx->c, KV_REPLY_SKIP);
		} else {
			kv_reply_error(ctx->out, "ERR syntax error");
		}
	} else if (arg_is(ctx, 1, "SETINFO") || arg_is(ctx, 1, "NO-EVICT") ||
		   arg_is(ctx, 1, "NO-TOUCH")) {
		kv_reply_simple(ctx->out, "OK");
	} else {
		kv_reply_error(ctx->out, "ERR unknown CLIENT subcommand");
	}
}

/*
 * SESSION id seq command [args...]: run one write exactly once however
 * often it is retried with the same id and seq (session.c).
 */
static void cmd_session(struct kv_cmdctx *ctx)
{
	const struct cmd *c = cmd_lookup(ctx->argv[3], ctx->lens[3]);
	struct kv_cmdctx in = *ctx;
	long long id, seq;
	int slot;

	if (kv_parse_ll(ctx->argv[1], ctx->lens[1], &id) ||
	    kv_parse_ll(ctx->argv[2], ctx->lens[2], &seq) || seq < 1) {
		kv_reply_error(ctx->out, "ERR SESSION id seq command...: id "
					 "and seq must be integers, seq >= 1");
		return;
	}
	if (!c || !(c->flags & F_WRITE)) {
		kv_reply_error(ctx->out, "ERR SESSION takes a write command "
					 "(SET, DEL, INCR, ...)");
		return;
	}
	in.argc = ctx->argc - 3;
	in.argv = ctx->argv + 3;
	in.lens = ctx->lens + 3;
	if ((c->arity > 0 && in.argc != (size_t)c->arity) ||
	    (c->arity < 0 && in.argc < (size_t)-c->arity)) {
		kv_reply_errorf(ctx->out,
				"ERR wrong number of arguments for '%s' "
				"command",
				c->name);
		return;
	}
	if (slot_check(&in, c, &slot))
		return;
	if (!kv_cmd_is_leader(in.g)) {
		kv_slot_redirect(ctx->s, in.slot, ctx->out);
		return;
	}
	in.session = 1;
	in.sess_id = (uint64_t)id;
	in.sess_seq = (uint64_t)seq;
	c->fn(&in);
}

static void cmd_time(struct kv_cmdctx *ctx)
{
	struct timespec ts;
	char a[24], b[24];

	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(a, sizeof(a), "%lld", (long long)ts.tv_sec);
	snprintf(b, sizeof(b), "%ld", ts.tv_nsec / 1000);
	kv_reply_array(ctx->out, 2);
	kv_reply_cstr(ctx->out, a);
	kv_reply_cstr(ctx->out, b);
}

/* ROLE: the leader is "master" with its followers and their match index;
 * a follower is a "slave" of the leader it knows. */
static void cmd_role(struct kv_cmdctx *ctx)
{
	struct kv_group *g = ctx->g;
	sr_peer_status ps[SR_MAX_MEMBERS];
	size_t np = sr_node_peer_status(g->node, ps, SR_MAX_MEMBERS);
	const char *addr;
	char host[SR_ADDR_MAX];
	const char *colon;
	sr_status st;

	sr_node_status(g->node, &st);
	if (np > SR_MAX_MEMBERS)
		np = SR_MAX_MEMBERS;
	if (st.role == SR_LEADER) {
		kv_reply_array(ctx->out, 3);
		kv_reply_cstr(ctx->out, "master");
		kv_reply_int(ctx->out, (long long)st.commit_index);
		kv_reply_array(ctx->out, np);
		for (size_t i = 0; i < np; i++) {
			char port[16], match[24];
			addr = kv_raft_client_addr(g, ps[i].id);
			colon = addr ? strrchr(addr, ':') : NULL;
			snprintf(host, sizeof(host), "%.*s",
				 colon ? (int)(colon - addr) : 1,
				 colon ? addr : "?");
			snprintf(port, sizeof(port), "%s",
				 colon ? colon + 1 : "0");
			snprintf(match, sizeof(match), "%llu",
				 (unsigned long long)ps[i].match);
			kv_reply_array(ctx->out, 3);
			kv_reply_cstr(ctx->out, host);
			kv_reply_cstr(ctx->out, port);
			kv_reply_cstr(ctx->out, match);
		}
		return;
	}
	addr = st.leader ? kv_raft_client_addr(g, st.leader) : NULL;
	colon = addr ? strrchr(addr, ':') : NULL;
	snprintf(host, sizeof(host), "%.*s", colon ? (int)(colon - addr) : 1,
		 colon ? addr : "?");
	kv_reply_array(ctx->out, 5);
	kv_reply_cstr(ctx->out, "slave");
	kv_reply_cstr(ctx->out, host);
	kv_reply_int(ctx->out, colon ? atoi(colon + 1) : 0);
	kv_reply_cstr(ctx->out, st.leader ? "connected" : "connect");
	kv_reply_int(ctx->out, (long long)st.applied_index);
}

/* WAIT numreplicas timeout (wait.c). */
static void cmd_wait(struct kv_cmdctx *ctx)
{
	long long want, tmo;

	if (arg_ll(ctx, 1, &want) || arg_ll(ctx, 2, &tmo))
		return;
	if (tmo < 0) {
		kv_reply_error(ctx->out, "ERR timeout is negative");
		return;
	}
	kv_wait_cmd(ctx, want, tmo);
}

static void cmd_cluster(struct kv_cmdctx *ctx)
{
	if (!kv_slots_cmd(ctx))
		kv_cluster_cmd(ctx);
}

/* READONLY, READWRITE, ASKING: accepted.  kvnode's replicas never serve
 * reads (every read is a linearizable read on the leader), so after
 * READONLY a read sent to a replica is still redirected with MOVED. */
static void cmd_ok(struct kv_cmdctx *ctx)
{
	kv_reply_simple(ctx->out, "OK");
}

#define W (F_WRITE | F_DENYOOM)
#define R (F_READONLY | F_FAST)
static const struct cmd cmd_table[] = {
	{ "ping", -1, cmd_ping, F_FAST | F_STALE, 0, 0, 0 },
	{ "echo", 2, cmd_echo, F_FAST, 0, 0, 0 },
	{ "set", -3, cmd_set, W, 1, 1, 1 },
	{ "get", 2, cmd_get, R, 1, 1, 1 },
	{ "del", -2, cmd_del, F_WRITE, 1, -1, 1 },
	{ "unlink", -2, cmd_del, F_WRITE | F_FAST, 1, -1, 1 },
	{ "exists", -2, cmd_exists, R, 1, -1, 1 },
	{ "incr", 2, cmd_incr, W | F_FAST, 1, 1, 1 },
	{ "decr", 2, cmd_decr, W | F_FAST, 1, 1, 1 },
	{ "incrby", 3, cmd_incrby, W | F_FAST, 1, 1, 1 },
	{ "decrby", 3, cmd_decrby, W | F_FAST, 1, 1, 1 },
	{ "mset", -3, cmd_mset, W, 1, -1, 2 },
	{ "mget", -2, cmd_mget, R, 1, -1, 1 },
	{ "dbsize", 1, cmd_dbsize, R, 0, 0, 0 },
	{ "strlen", 2, cmd_strlen, R, 1, 1, 1 },
	{ "info", -1, cmd_info, F_LOADING | F_STALE, 0, 0, 0 },
	{ "config", -2, cmd_config, F_ADMIN | F_LOADING | F_STALE, 0, 0, 0 },
	{ "command", -1, cmd_command, F_LOADING | F_STALE, 0, 0, 0 },
	{ "client", -2, cmd_client, F_LOADING | F_STALE, 0, 0, 0 },
	{ "hello", -1, kv_auth_cmd_hello,
	  F_FAST | F_LOADING | F_STALE | F_TXCTL, 0, 0, 0 },
	{ "auth", -2, kv_auth_cmd_auth, F_FAST | F_LOADING | F_STALE | F_TXCTL,
	  0, 0, 0 },
	{ "select", 2, cmd_select, F_FAST | F_LOADING | F_STALE, 0, 0, 0 },
	{ "cluster", -2, cmd_cluster, F_STALE, 0, 0, 0 },
	{ "readonly", 1, cmd_ok, F_FAST | F_LOADING | F_STALE, 0, 0, 0 },
	{ "readwrite", 1, cmd_ok, F_FAST | F_LOADING | F_STALE, 0, 0, 0 },
	{ "asking", 1, cmd_ok, F_FAST, 0, 0, 0 },
	{ "multi", 1, kv_multi_cmd_multi, F_FAST | F_TXCTL, 0, 0, 0 },
	{ "exec", 1, kv_multi_cmd_exec, F_TXCTL, 0, 0, 0 },
	{ "discard", 1, kv_multi_cmd_discard, F_FAST | F_TXCTL, 0, 0, 0 },
	{ "watch", -2, kv_multi_cmd_watch, F_READONLY | F_FAST | F_TXCTL, 1, -1,
	  1 },
	{ "unwatch", 1, kv_multi_cmd_unwatch, F_FAST | F_TXCTL, 0, 0, 0 },
	{ "session", -5, cmd_session, F_DENYOOM, 4, 4, 1 },
	{ "setnx", 3, cmd_setnx, W | F_FAST, 1, 1, 1 },
	{ "getset", 3, cmd_getset, W | F_FAST, 1, 1, 1 },
	{ "getdel", 2, cmd_getdel, F_WRITE | F_FAST, 1, 1, 1 },
	{ "append", 3, cmd_append, W | F_FAST, 1, 1, 1 },
	{ "setrange", 4, cmd_setrange, W, 1, 1, 1 },
	{ "incrbyfloat", 3, cmd_incrbyfloat, W | F_FAST, 1, 1, 1 },
	{ "msetnx", -3, cmd_msetnx, W, 1, -1, 2 },
	{ "rename", 3, cmd_rename, F_WRITE, 1, 2, 1 },
	{ "renamenx", 3, cmd_renamenx, F_WRITE | F_FAST, 1, 2, 1 },
	{ "flushdb", -1, cmd_flush, F_WRITE | F_ONE_GROUP, 0, 0, 0 },
	{ "flushall", -1, cmd_flush, F_WRITE | F_ONE_GROUP, 0, 0, 0 },
	{ "getrange", 4, cmd_getrange, F_READONLY, 1, 1, 1 },
	{ "keys", 2, cmd_keys, F_READONLY, 0, 0, 0 },
	{ "scan", -2, cmd_scan, F_READONLY, 0, 0, 0 },
	{ "type", 2, cmd_type, R, 1, 1, 1 },
	{ "randomkey", 1, cmd_randomkey, F_READONLY, 0, 0, 0 },
	{ "setex", 4, cmd_setex, W, 1, 1, 1 },
	{ "psetex", 4, cmd_psetex, W, 1, 1, 1 },
	{ "expire", -3, cmd_expire, F_WRITE | F_FAST, 1, 1, 1 },
	{ "pexpire", -3, cmd_pexpire, F_WRITE | F_FAST, 1, 1, 1 },
	{ "expireat", -3, cmd_expireat, F_WRITE | F_FAST, 1, 1, 1 },
	{ "pexpireat", -3, cmd_pexpireat, F_WRITE | F_FAST, 1, 1, 1 },
	{ "persist", 2, cmd_persist, F_WRITE | F_FAST, 1, 1, 1 },
	{ "getex", -2, cmd_getex, F_WRITE | F_FAST, 1, 1, 1 },
	{ "ttl", 2, cmd_ttl, R, 1, 1, 1 },
	{ "pttl", 2, cmd_ttl, R, 1, 1, 1 },
	{ "expiretime", 2, cmd_ttl, R, 1, 1, 1 },
	{ "pexpiretime", 2, cmd_ttl, R, 1, 1, 1 },
	{ "wait", 3, cmd_wait, F_FAST, 0, 0, 0 },
	{ "time", 1, cmd_time, F_FAST | F_LOADING | F_STALE, 0, 0, 0 },
	{ "role", 1, cmd_role, F_FAST | F_LOADING | F_STALE, 0, 0, 0 },
	{ "quit", -1, cmd_quit, F_FAST | F_TXCTL, 0, 0, 0 },
};
#undef W
#undef R

size_t kv_cmd_count(void)
{
	return sizeof(cmd_table) / sizeof(cmd_table[0]);
}

static const struct cmd *cmd_at(size_t i)
{
	return &cmd_table[i];
}

int kv_cmd_kind_is_write(int kind)
{
	return kind == KV_K_SET || kind == KV_K_DEL || kind == KV_K_INCR ||
	       kind == KV_K_MSET || kind == KV_K_EXEC;
}

static const struct cmd *cmd_lookup(const char *name, size_t len)
{
	for (size_t i = 0; i < kv_cmd_count(); i++) {
		const struct cmd *c = &cmd_table[i];
		if (strlen(c->name) == len &&
		    strncasecmp(c->name, name, len) == 0)
			return c;
	}
	return NULL;
}

#ifdef KV_BUG_STALE_READS
/* Injected bug for test/jepsen (make KV_BUG=stale-reads): a follower runs
 * GET itself (requests.c reads its own map).  Never in a real build. */
#define KV_BUG_FOLLOWER_GET(c, txn) (!(txn) && (c)->fn == cmd_get)
#else
#define KV_BUG_FOLLOWER_GET(c, txn) 0
#endif

/*
 * Redis Cluster's rule: the keys of one command must hash to one slot
 * (hash tags, "{user1}:a" and "{user1}:b", keep keys together), or the
 * command is refused with CROSSSLOT before anything else is looked at.
 * With one Raft group kvnode could run such a command atomically; it
 * refuses it anyway so that an application written against kvnode keeps
 * working with --groups N and against a real Redis Cluster.
 * --cluster-mode no lifts the rule for keys of one group (a command's
 * keys in two groups could not be applied atomically, --groups > 1).
 *
 * The check also picks the command's group: its first key's, or the home
 * group (groups.c) for a command without keys.
 */
struct slot_check {
	const struct kv_cmdctx *ctx;
	int have, cross, cross_group;
	unsigned slot, first;
	struct kv_group *g;
};

static void slot_check_one(void *arg, size_t pos)
{
	struct slot_check *k = arg;
	unsigned slot = kv_key_slot(k->ctx->argv[pos], k->ctx->lens[pos]);
	struct kv_group *g = kv_group_of_slot(k->ctx->s, slot);

	if (k->have && slot != k->slot)
		k->cross = 1;
	if (k->have && g != k->g)
		k->cross_group = 1;
	if (!k->have)
		k->first = slot;
	k->slot = slot;
	k->g = g;
	k->have = 1;
}

/* 0 if the keys of ctx share a slot (*slot: it, -1 when no key; ctx->g
 * and ctx->slot set), else CROSSSLOT was replied. */
static int slot_check(struct kv_cmdctx *ctx, const struct cmd *c, int *slot)
{
	struct slot_check k = { .ctx = ctx };

	*slot = -1;
	command_keys(c, ctx->argc, slot_check_one, &k);
	if (k.cross_group || (k.cross && !ctx->s->opt.plain)) {
		kv_reply_error(ctx->out, "CROSSSLOT Keys in request don't hash "
					 "to the same slot");
		return -1;
	}
	if (k.have) {
		ctx->g = kv_group_of_slot(ctx->s, k.first);
		ctx->slot = k.first;
		*slot = (int)k.slot;
	} else {
		ctx->g = kv_group_home(ctx->s);
		ctx->slot = ctx->g->first_slot;
	}
	return 0;
}

/* The name of a command for an error message: printable, short. */
static void cmd_name_for_error(const char *p, size_t len, char *out, size_t cap)
{
	size_t i;

	for (i = 0; i < len && i + 1 < cap && i < 64; i++)
		out[i] = (p[i] >= 32 && p[i] < 127 && p[i] != '\'') ? p[i]
								    : '?';
	out[i] = 0;
}

void kv_cmd_exec(struct kv_cmdctx *ctx)
{
	const struct cmd *c = cmd_lookup(ctx->argv[0], ctx->lens[0]);
	struct kv_txn *txn = kv_multi_active(ctx);
	char name[72];
	int slot;

	if (!kv_auth_check(ctx, c ? c->name : ""))
		return;
	if (!c) {
		cmd_name_for_error(ctx->argv[0], ctx->lens[0], name,
				   sizeof(name));
		kv_reply_errorf(ctx->out, "ERR unknown command '%s'", name);
		if (txn)
			kv_multi_fail(txn);
		return;
	}
	if ((c->arity > 0 && ctx->argc != (size_t)c->arity) ||
	    (c->arity < 0 && ctx->argc < (size_t)-c->arity)) {
		kv_reply_errorf(ctx->out,
				"ERR wrong number of arguments for '%s' "
				"command",
				c->name);
		if (txn)
			kv_multi_fail(txn);
		return;
	}
	if (txn && !(c->flags & F_TXCTL) &&
	    !(c->flags & (F_WRITE | F_READONLY))) {
		kv_reply_errorf(ctx->out,
				"ERR '%s' cannot be queued in a transaction "
				"(only commands on keys can)",
				c->name);
		kv_multi_fail(txn);
		return;
	}
	if (slot_check(ctx, c, &slot)) {
		if (txn)
			kv_multi_fail(txn);
		return;
	}
	if ((c->flags & F_ONE_GROUP) && ctx->s->ngroups > 1) {
		/* Refused on every node alike, before any redirect: one
		 * entry per group would not be atomic, and the groups one
		 * node leads are not all of them. */
		kv_reply_errorf(ctx->out,
				"ERR '%s' is not supported with --groups > 1",
				c->name);
		if (txn)
			kv_multi_fail(txn);
		return;
	}
	/* Data commands run on the leader.  Elsewhere: MOVED with the slot
	 * of the first key (what cluster clients map to a node), or
	 * TRYAGAIN/CLUSTERDOWN when the leader is gone or unknown. */
	if ((c->flags & (F_WRITE | F_READONLY)) && !kv_cmd_is_leader(ctx->g) &&
	    !KV_BUG_FOLLOWER_GET(c, txn)) {
		kv_slot_redirect(ctx->s, ctx->slot, ctx->out);
		if (txn)
			kv_multi_fail(txn);
		return;
	}
	if (txn && !(c->flags & F_TXCTL)) {
		/* Checked like any command, then queued instead of run; a
		 * command that replied without queueing was refused. */
		ctx->txn = txn;
		c->fn(ctx);
		if (!ctx->queued)
			kv_multi_fail(txn);
		else if (slot >= 0)
			kv_multi_note_slot(ctx, txn, (unsigned)slot);
		return;
	}
	c->fn(ctx);
}
