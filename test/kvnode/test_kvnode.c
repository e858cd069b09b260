/*
 * test_kvnode.c — unit tests of kvnode's pieces that need no network: the
 * RESP parser, the hash map, the state machine's apply, and the snapshot
 * image.  The process-level behaviour (replication, redirects, crashes) is
 * tested by the Python suites next to this file.
 */
#include <limits.h>
#include <stdio.h>

#include "kvnode.h"
#include "testlib.h"

static struct kv_parser P;

static int feed(const char *s, size_t len, const char **err)
{
	return kv_parse(&P, s, len, err);
}

static int arg_eq(const char *buf, size_t i, const char *want)
{
	return i < P.argc && P.args[i].len == strlen(want) &&
	       memcmp(buf + P.args[i].off, want, P.args[i].len) == 0;
}

TEST(test_resp_multibulk_whole_and_pipelined)
{
	const char *in = "*3\r\n$3\r\nSET\r\n$1\r\na\r\n$2\r\nbc\r\n"
			 "*1\r\n$4\r\nPING\r\n";
	const char *err;

	kv_parser_init(&P, 1024);
	CHECK_EQ(feed(in, strlen(in), &err), KV_PARSE_CMD);
	CHECK_EQ(P.argc, 3);
	CHECK(arg_eq(in, 0, "SET") && arg_eq(in, 1, "a") &&
	      arg_eq(in, 2, "bc"));
	CHECK_EQ(feed(in, strlen(in), &err), KV_PARSE_CMD);
	CHECK_EQ(P.argc, 1);
	CHECK(arg_eq(in, 0, "PING"));
	CHECK_EQ(feed(in, strlen(in), &err), KV_PARSE_MORE);
	CHECK_EQ(kv_parser_done_bytes(&P), strlen(in));
	kv_parser_free(&P);
}

/* Every split point gives the same command, and MORE before the end. */
TEST(test_resp_byte_by_byte)
{
	const char *in = "*2\r\n$3\r\nGET\r\n$10\r\n0123456789\r\n";
	size_t n = strlen(in);
	const char *err;

	kv_parser_init(&P, 1024);
	for (size_t i = 1; i < n; i++)
		CHECK_EQ(feed(in, i, &err), KV_PARSE_MORE);
	CHECK_EQ(feed(in, n, &err), KV_PARSE_CMD);
	CHECK(arg_eq(in, 0, "GET") && arg_eq(in, 1, "0123456789"));
	kv_parser_free(&P);
}

TEST(test_resp_inline_and_empty_lines)
{
	const char *in = "\r\n\n  set  a\tb \r\nPING\n*0\r\nECHO x\r\n";
	const char *err;

	kv_parser_init(&P, 1024);
	CHECK_EQ(feed(in, strlen(in), &err), KV_PARSE_CMD);
	CHECK_EQ(P.argc, 3);
	CHECK(arg_eq(in, 0, "set") && arg_eq(in, 1, "a") && arg_eq(in, 2, "b"));
	CHECK_EQ(feed(in, strlen(in), &err), KV_PARSE_CMD);
	CHECK(P.argc == 1 && arg_eq(in, 0, "PING"));
	CHECK_EQ(feed(in, strlen(in), &err), KV_PARSE_CMD);
	CHECK(P.argc == 2 && arg_eq(in, 0, "ECHO") && arg_eq(in, 1, "x"));
	CHECK_EQ(feed(in, strlen(in), &err), KV_PARSE_MORE);
	kv_parser_free(&P);
}

TEST(test_resp_shift_keeps_partial_command)
{
	char buf[128];
	const char *a = "*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$3\r\nk";
	const char *err;
	size_t done;

	kv_parser_init(&P, 1024);
	strcpy(buf, a);
	CHECK_EQ(feed(buf, strlen(buf), &err), KV_PARSE_CMD);
	CHECK_EQ(feed(buf, strlen(buf), &err), KV_PARSE_MORE);
	done = kv_parser_done_bytes(&P);
	CHECK_EQ(done, 14);
	memmove(buf, buf + done, strlen(buf) - done + 1);
	kv_parser_shift(&P, done);
	strcat(buf, "ey\r\n");
	CHECK_EQ(feed(buf, strlen(buf), &err), KV_PARSE_CMD);
	CHECK(arg_eq(buf, 0, "GET") && arg_eq(buf, 1, "key"));
	kv_parser_free(&P);
}

static void expect_error(const char *in, size_t len, size_t max_bulk)
{
	const char *err = NULL;
	int rc;

	kv_parser_init(&P, max_bulk);
	rc = feed(in, len, &err);
	kv_parser_free(&P);
	if (rc != KV_PARSE_ERR || !err)
		TEST_FAIL("no error for %.*s", (int)(len > 40 ? 40 : len), in);
}

TEST(test_resp_rejects_malformed)
{
	expect_error("*x\r\n", 4, 1024);
	expect_error("*1\r\n:1\r\n", 8, 1024);
	expect_error("*1\r\n$-1\r\n", 9, 1024);
	expect_error("*1\r\n$01\r\na\r\n", 12, 1024);
	expect_error("*1\r\n$1\r\nab\r\n", 12, 1024);	    /* no CRLF after */
	expect_error("*1\r\n$2000\r\n", 11, 1024);	    /* over max_bulk */
	expect_error("*99999999999\r\n", 15, 1024);	    /* over max_args */
	expect_error("*9223372036854775808\r\n", 22, 1024); /* overflow */
	expect_error("*1\n$1\r\na\r\n", 10, 1024);	    /* bare \n */
}

TEST(test_resp_claims_cost_nothing_until_bytes_arrive)
{
	const char *in = "*1000000\r\n$536870912\r\nabc";
	const char *err;

	kv_parser_init(&P, 512u * 1024 * 1024);
	CHECK_EQ(feed(in, strlen(in), &err), KV_PARSE_MORE);
	CHECK(P.args_cap <= 8); /* not a million slots */
	CHECK_EQ(P.argc, 0);
	kv_parser_free(&P);
}

TEST(test_resp_long_lines_are_errors)
{
	size_t n = 70 * 1024;
	char *big = malloc(n);

	CHECK(big != NULL);
	memset(big, 'a', n); /* an inline command with no newline */
	expect_error(big, n, 1024);
	big[0] = '*'; /* a length line that never ends */
	memset(big + 1, '1', n - 1);
	expect_error(big, n, 1024);
	free(big);
}

TEST(test_parse_ll)
{
	long long v;

	CHECK(kv_parse_ll("0", 1, &v) == 0 && v == 0);
	CHECK(kv_parse_ll("-12", 3, &v) == 0 && v == -12);
	CHECK(kv_parse_ll("9223372036854775807", 19, &v) == 0 &&
	      v == LLONG_MAX);
	CHECK(kv_parse_ll("-9223372036854775808", 20, &v) == 0 &&
	      v == LLONG_MIN);
	CHECK(kv_parse_ll("9223372036854775808", 19, &v) != 0);
	CHECK(kv_parse_ll("01", 2, &v) != 0);
	CHECK(kv_parse_ll("+1", 2, &v) != 0);
	CHECK(kv_parse_ll(" 1", 2, &v) != 0);
	CHECK(kv_parse_ll("-", 1, &v) != 0);
	CHECK(kv_parse_ll("-0", 2, &v) != 0);
	CHECK(kv_parse_ll("", 0, &v) != 0);
	CHECK(kv_parse_ll("1a", 2, &v) != 0);
}

TEST(test_reply_encoding)
{
	struct kv_buf b = { 0 };
	const char *want = "+OK\r\n-ERR a "
			   "b\r\n:-5\r\n$3\r\nabc\r\n$-1\r\n*2\r\n";

	kv_reply_simple(&b, "OK");
	kv_reply_error(&b, "ERR a\nb");
	kv_reply_int(&b, -5);
	kv_reply_bulk(&b, "abc", 3);
	kv_reply_nil(&b);
	kv_reply_array(&b, 2);
	CHECK_EQ(b.len, strlen(want));
	CHECK(memcmp(b.p, want, b.len) == 0);
	kv_buf_free(&b);
	/* the integer edges, and lengths, as printf would write them */
	{
		const char *edges = ":0\r\n:9223372036854775807\r\n"
				    ":-9223372036854775808\r\n:-1\r\n"
				    "*0\r\n$0\r\n\r\n$10\r\n0123456789\r\n";
		kv_reply_int(&b, 0);
		kv_reply_int(&b, LLONG_MAX);
		kv_reply_int(&b, LLONG_MIN);
		kv_reply_int(&b, -1);
		kv_reply_array(&b, 0);
		kv_reply_bulk(&b, "", 0);
		kv_reply_bulk(&b, "0123456789", 10);
		CHECK_EQ(b.len, strlen(edges));
		CHECK(memcmp(b.p, edges, b.len) == 0);
		kv_buf_free(&b);
	}
}

/* HELLO 3: RESP2 nulls become "_", everything else is kept byte for
 * byte (a "$-1" inside a bulk string's payload is data, not a null). */
TEST(test_resp3_rewrites_nulls_only)
{
	struct kv_buf b = { 0 };
	const char *in = "+OK\r\n$-1\r\n*3\r\n$5\r\n$-1\r\n\r\n*-1\r\n:"
			 "7\r\n%1\r\n$1\r\nk\r\n$-1\r\n=8\r\ntxt:a\r\nb\r\n"
			 "-ERR x\r\n";
	const char *want = "+OK\r\n_\r\n*3\r\n$5\r\n$-1\r\n\r\n_\r\n:7\r\n"
			   "%1\r\n$1\r\nk\r\n_\r\n=8\r\ntxt:a\r\nb\r\n"
			   "-ERR x\r\n";

	kv_buf_put(&b, "keep$-1\r\n", 9);
	kv_buf_put(&b, in, strlen(in));
	CHECK_EQ(kv_resp3_fix(&b, 9), 0);
	CHECK_EQ(b.len, 9 + strlen(want));
	CHECK(memcmp(b.p, "keep$-1\r\n", 9) == 0); /* before `from` */
	CHECK(memcmp(b.p + 9, want, strlen(want)) == 0);
	/* A truncated reply: what came before it is rewritten, it is kept. */
	b.len = 0;
	kv_buf_put(&b, "$-1\r\n$9\r\nab", 11);
	CHECK_EQ(kv_resp3_fix(&b, 0), -1);
	CHECK_EQ(b.len, 9);
	CHECK(memcmp(b.p, "_\r\n$9\r\nab", 9) == 0);
	/* The RESP2 forms of the shapes RESP3 spells differently. */
	b.len = 0;
	kv_reply_map(&b, 2, 0);
	kv_reply_set(&b, 1, 0);
	kv_reply_verbatim(&b, "x", 1, 0);
	kv_reply_map(&b, 2, 1);
	kv_reply_set(&b, 1, 1);
	kv_reply_verbatim(&b, "x", 1, 1);
	want = "*4\r\n*1\r\n$1\r\nx\r\n%2\r\n~1\r\n=5\r\ntxt:x\r\n";
	CHECK_EQ(b.len, strlen(want));
	CHECK(memcmp(b.p, want, b.len) == 0);
	kv_buf_free(&b);
}

/* ------------------------------------------------------------------ */

TEST(test_map_set_get_del_and_growth)
{
	struct kv_map m;
	char k[32], v[64];
	size_t n = 50000, seen = 0, bucket = 0;
	const struct kv_ent *e = NULL;

	CHECK_EQ(kv_map_init(&m), 0);
	for (size_t i = 0; i < n; i++) {
		int kl = snprintf(k, sizeof(k), "key:%zu", i);
		int vl = snprintf(v, sizeof(v), "value-%zu", i * 7);
		CHECK_EQ(kv_map_set(&m, k, (size_t)kl, v, (size_t)vl), 0);
	}
	CHECK_EQ(m.count, n);
	CHECK(m.nb >= n);
	for (size_t i = 0; i < n; i += 97) {
		int kl = snprintf(k, sizeof(k), "key:%zu", i);
		int vl = snprintf(v, sizeof(v), "value-%zu", i * 7);
		e = kv_map_get(&m, k, (size_t)kl);
		CHECK(e && e->vlen == (uint32_t)vl &&
		      memcmp(kv_ent_val(e), v, (size_t)vl) == 0);
	}
	/* Overwrite with the same length (in place) and a new length. */
	CHECK_EQ(kv_map_set(&m, "key:1", 5, "value-X", 7), 0);
	CHECK_EQ(kv_map_set(&m, "key:1", 5, "", 0), 0);
	e = kv_map_get(&m, "key:1", 5);
	CHECK(e && e->vlen == 0);
	CHECK_EQ(m.count, n);
	CHECK_EQ(kv_map_del(&m, "key:1", 5), 1);
	CHECK_EQ(kv_map_del(&m, "key:1", 5), 0);
	CHECK(kv_map_get(&m, "key:1", 5) == NULL);
	for (e = NULL; (e = kv_map_next(&m, &bucket, e)) != NULL;)
		seen++;
	CHECK_EQ(seen, n - 1);
	CHECK_EQ(m.count, n - 1);
	kv_map_free(&m);
}

TEST(test_map_binary_keys)
{
	struct kv_map m;
	const char a[] = { 'x', 0, 'y' }, b[] = { 'x', 0, 'z' };

	CHECK_EQ(kv_map_init(&m), 0);
	CHECK_EQ(kv_map_set(&m, a, 3, "1", 1), 0);
	CHECK_EQ(kv_map_set(&m, b, 3, "2", 1), 0);
	CHECK_EQ(kv_map_set(&m, "", 0, "empty", 5), 0);
	CHECK_EQ(m.count, 3);
	CHECK(kv_map_get(&m, a, 3) &&
	      kv_ent_val(kv_map_get(&m, a, 3))[0] == '1');
	CHECK(kv_map_get(&m, b, 3) &&
	      kv_ent_val(kv_map_get(&m, b, 3))[0] == '2');
	CHECK(kv_map_get(&m, "", 0) != NULL);
	CHECK(kv_map_get(&m, a, 2) == NULL);
	kv_map_free(&m);
}

/* ------------------------------------------------------------------ */

static int apply(struct kv_map *m, int op, size_t n, const char *const *argv,
		 struct kv_result **r)
{
	struct kv_buf enc = { 0 };
	size_t lens[16];
	int rc;

	for (size_t i = 0; i < n; i++)
		lens[i] = strlen(argv[i]);
	if (kv_cmd_encode(&enc, op, n, argv, lens))
		return -100;
	rc = kv_fsm_apply_cmd(m, enc.p, enc.len, r);
	kv_buf_free(&enc);
	return rc;
}

static int apply_incr(struct kv_map *m, const char *key, long long d,
		      struct kv_result **r)
{
	unsigned char le[8];
	const char *argv[2] = { key, (const char *)le };
	size_t lens[2] = { strlen(key), 8 };
	struct kv_buf enc = { 0 };
	int rc;

	kv_cmd_le64(le, d);
	kv_cmd_encode(&enc, KV_OP_INCRBY, 2, argv, lens);
	rc = kv_fsm_apply_cmd(m, enc.p, enc.len, r);
	kv_buf_free(&enc);
	return rc;
}

TEST(test_fsm_apply_commands)
{
	struct kv_map m;
	struct kv_result *r = NULL;
	const char *set[] = { "a", "10" }, *mset[] = { "b", "x", "c", "y" };
	const char *del[] = { "a", "b", "zz" };

	CHECK_EQ(kv_map_init(&m), 0);
	CHECK_EQ(apply(&m, KV_OP_SET, 2, set, &r), 0);
	CHECK(r == NULL);
	CHECK_EQ(apply_incr(&m, "a", 5, &r), 0);
	CHECK(r && r->code == KV_RES_OK && r->num == 15);
	free(r);
	CHECK_EQ(apply_incr(&m, "new", -3, &r), 0);
	CHECK(r && r->code == KV_RES_OK && r->num == -3);
	free(r);
	CHECK_EQ(apply(&m, KV_OP_MSET, 4, mset, &r), 0);
	CHECK_EQ(apply_incr(&m, "b", 1, &r), 0);
	CHECK(r && r->code == KV_RES_NOTINT);
	free(r);
	CHECK(memcmp(kv_ent_val(kv_map_get(&m, "b", 1)), "x", 1) == 0);
	CHECK_EQ(apply(&m, KV_OP_SET, 2,
		       (const char *[]){ "big", "9223372036854775807" }, &r),
		 0);
	CHECK_EQ(apply_incr(&m, "big", 1, &r), 0);
	CHECK(r && r->code == KV_RES_OVERFLOW);
	free(r);
	CHECK_EQ(apply(&m, KV_OP_DEL, 3, del, &r), 0);
	CHECK(r && r->num == 2);
	free(r);
	CHECK_EQ(m.count, 3); /* new, c, big */
	kv_map_free(&m);
}

/* Every truncation or corruption of an entry is refused, never crashes,
 * and leaves the map alone. */
/* A MULTI entry: the watch list (pairs key, digest) then the commands. */
static void txn_entry(struct kv_buf *out, struct kv_buf *watch, size_t ncmds,
		      struct kv_buf *cmds)
{
	const char *argv[8];
	size_t lens[8];

	argv[0] = watch->p;
	lens[0] = watch->len;
	for (size_t i = 0; i < ncmds; i++) {
		argv[i + 1] = cmds[i].p;
		lens[i + 1] = cmds[i].len;
	}
	kv_cmd_encode(out, KV_OP_MULTI, ncmds + 1, argv, lens);
}

TEST(test_txn_applies_all_commands_in_one_entry)
{
	struct kv_map m;
	struct kv_result *r = NULL;
	struct kv_buf watch = { 0 }, cmds[3] = { { 0 } }, e = { 0 };
	unsigned char le[8], d[8];
	size_t dl;
	const char *set[] = { "k", "1" }, *incr[] = { "k", (const char *)le };
	size_t setl[] = { 1, 1 }, incrl[] = { 1, 8 }, getl[] = { 1 };
	const char *wargv[] = { "k", (const char *)d };
	size_t wl[2] = { 1, 0 };
	static const char want[] = "*3\r\n+OK\r\n:2\r\n$1\r\n2\r\n";

	CHECK_EQ(kv_map_init(&m), 0);
	kv_cmd_le64(le, 1);
	kv_cmd_encode(&cmds[0], KV_OP_SET, 2, set, setl);
	kv_cmd_encode(&cmds[1], KV_OP_INCRBY, 2, incr, incrl);
	kv_cmd_encode(&cmds[2], KV_OP_R_GET, 1, set, getl);
	kv_cmd_encode(&watch, 0, 0, NULL, NULL);
	txn_entry(&e, &watch, 3, cmds);
	CHECK_EQ(kv_fsm_apply_cmd(&m, e.p, e.len, &r), 0);
	CHECK(r && r->len == sizeof(want) - 1 &&
	      memcmp(r->resp, want, r->len) == 0);
	free(r);

	/* Watching "k" at its current value: applies; after a change it
	 * aborts (nil array) and changes nothing. */
	kv_txn_digest(&m, "k", 1, d, &dl);
	wl[1] = dl;
	watch.len = 0;
	kv_cmd_encode(&watch, 0, 2, wargv, wl);
	e.len = 0;
	txn_entry(&e, &watch, 1, &cmds[1]);
	CHECK_EQ(kv_fsm_apply_cmd(&m, e.p, e.len, &r), 0);
	CHECK(r && r->len == 8 && memcmp(r->resp, "*1\r\n:3\r\n", 8) == 0);
	free(r);
	CHECK_EQ(kv_fsm_apply_cmd(&m, e.p, e.len, &r), 0); /* k is 3 now */
	CHECK(r && r->len == 5 && memcmp(r->resp, "*-1\r\n", 5) == 0);
	free(r);
	CHECK(memcmp(kv_ent_val(kv_map_get(&m, "k", 1)), "3", 1) == 0);

	/* Malformed: every truncation is refused and changes nothing. */
	e.len = 0;
	txn_entry(&e, &watch, 3, cmds);
	for (size_t n = 0; n < e.len; n++) {
		r = NULL;
		CHECK_EQ(kv_fsm_apply_cmd(&m, e.p, n, &r), SR_EPROTO);
		CHECK(r == NULL);
	}
	CHECK(memcmp(kv_ent_val(kv_map_get(&m, "k", 1)), "3", 1) == 0);
	for (int i = 0; i < 3; i++)
		kv_buf_free(&cmds[i]);
	kv_buf_free(&watch);
	kv_buf_free(&e);
	kv_map_free(&m);
}

TEST(test_fsm_rejects_malformed_entries)
{
	struct kv_map m;
	struct kv_buf enc = { 0 };
	struct kv_result *r = NULL;
	const char *argv[] = { "key", "value" };
	size_t lens[] = { 3, 5 };

	CHECK_EQ(kv_map_init(&m), 0);
	kv_cmd_encode(&enc, KV_OP_SET, 2, argv, lens);
	for (size_t n = 0; n < enc.len; n++)
		CHECK_EQ(kv_fsm_apply_cmd(&m, enc.p, n, &r), SR_EPROTO);
	enc.p[0] = 99; /* unknown op */
	CHECK_EQ(kv_fsm_apply_cmd(&m, enc.p, enc.len, &r), SR_EPROTO);
	enc.p[0] = KV_OP_SET;
	enc.p[1] = 3; /* wrong argc */
	CHECK_EQ(kv_fsm_apply_cmd(&m, enc.p, enc.len, &r), SR_EPROTO);
	enc.p[1] = 2;
	enc.p[5] = (char)0xff; /* first length way too big */
	CHECK_EQ(kv_fsm_apply_cmd(&m, enc.p, enc.len, &r), SR_EPROTO);
	CHECK_EQ(m.count, 0);
	kv_buf_free(&enc);
	kv_map_free(&m);
}

/* ------------------------------------------------------------------ */

struct img {
	struct kv_buf b;
	int fail_at; /* fail the nth write/read (-1: never) */
	int calls;
};

static int img_write(void *ctx, const void *data, size_t len)
{
	struct img *im = ctx;
	if (im->calls++ == im->fail_at)
		return SR_EIO;
	return kv_buf_put(&im->b, data, len) ? SR_ENOMEM : 0;
}

static int img_read(void *ctx, uint64_t off, void *buf, size_t len,
		    size_t *n_out)
{
	struct img *im = ctx;
	size_t n = 0;
	if (off < im->b.len)
		n = im->b.len - (size_t)off < len ? im->b.len - (size_t)off
						  : len;
	memcpy(buf, im->b.p + off, n);
	*n_out = n;
	return 0;
}

static void fill_map(struct kv_map *m, size_t n)
{
	char k[32], v[32];
	for (size_t i = 0; i < n; i++) {
		int kl = snprintf(k, sizeof(k), "k%zu", i);
		int vl = snprintf(v, sizeof(v), "%zu", i * 3);
		kv_map_set(m, k, (size_t)kl, v, (size_t)(i % 5 ? vl : 0));
	}
}

static int maps_equal(const struct kv_map *a, const struct kv_map *b)
{
	size_t bucket = 0;
	const struct kv_ent *e = NULL, *f;

	if (a->count != b->count)
		return 0;
	while ((e = kv_map_next(a, &bucket, e)) != NULL) {
		f = kv_map_get(b, kv_ent_key(e), e->klen);
		if (!f || f->vlen != e->vlen ||
		    memcmp(kv_ent_val(f), kv_ent_val(e), e->vlen))
			return 0;
	}
	return 1;
}

/* An empty key with an empty value, alone: nothing to read for it, so
 * the loader's scratch buffer stays unallocated (UBSan: fuzz_apply found
 * pointer arithmetic on its NULL). */
TEST(test_snapshot_of_an_empty_key_and_value)
{
	struct kv_map m, back;
	struct img im = { .fail_at = -1 };
	const struct kv_ent *e;

	CHECK_EQ(kv_map_init(&m), 0);
	CHECK_EQ(kv_map_set(&m, "", 0, "", 0), 0);
	CHECK_EQ(kv_snap_save(&m, img_write, &im), 0);
	CHECK_EQ(kv_snap_load(&back, im.b.len, img_read, &im), 0);
	e = kv_map_get(&back, "", 0);
	CHECK(e != NULL);
	CHECK_EQ(e->vlen, 0);
	CHECK(maps_equal(&m, &back));
	kv_map_free(&back);
	kv_map_free(&m);
	kv_buf_free(&im.b);
}

TEST(test_snapshot_round_trip)
{
	struct kv_map m, back;
	struct img im = { .fail_at = -1 };
	char *big = malloc(3 * KV_SNAP_CHUNK + 17);

	CHECK(big != NULL);
	memset(big, 'z', 3 * KV_SNAP_CHUNK + 17);
	CHECK_EQ(kv_map_init(&m), 0);
	fill_map(&m, 20000);
	/* A value spanning several chunks. */
	CHECK_EQ(kv_map_set(&m, "big", 3, big, 3 * KV_SNAP_CHUNK + 17), 0);
	free(big);
	CHECK_EQ(kv_snap_save(&m, img_write, &im), 0);
	CHECK(im.calls >= 4);
	CHECK_EQ(kv_snap_load(&back, im.b.len, img_read, &im), 0);
	CHECK(maps_equal(&m, &back));
	kv_map_free(&back);
	CHECK_EQ(kv_snap_load(&back, KV_SNAP_SIZE_UNKNOWN, img_read, &im), 0);
	CHECK(maps_equal(&m, &back));
	kv_map_free(&back);
	kv_map_free(&m);
	kv_buf_free(&im.b);
}

TEST(test_snapshot_v2_carries_sessions)
{
	struct kv_map m, ses, back, bses;
	struct img im = { .fail_at = -1 };

	CHECK_EQ(kv_map_init(&m), 0);
	CHECK_EQ(kv_map_init(&ses), 0);
	fill_map(&m, 100);
	fill_map(&ses, 7);
	CHECK_EQ(kv_snap_save2(&m, &ses, img_write, &im), 0);
	CHECK(memcmp(im.b.p, "KVSNAP02", 8) == 0);
	CHECK_EQ(kv_snap_load2(&back, &bses, im.b.len, img_read, &im), 0);
	CHECK(maps_equal(&m, &back));
	CHECK(maps_equal(&ses, &bses));
	kv_map_free(&back);
	kv_map_free(&bses);
	/* Damage anywhere (here: the session section) is detected. */
	im.b.p[im.b.len - 6] ^= 1;
	CHECK_EQ(kv_snap_load2(&back, &bses, im.b.len, img_read, &im),
		 SR_ECORRUPT);
	/* A KVSNAP01 image loads with an empty session table. */
	im.b.len = 0;
	CHECK_EQ(kv_snap_save(&m, img_write, &im), 0);
	CHECK_EQ(kv_snap_load2(&back, &bses, im.b.len, img_read, &im), 0);
	CHECK(maps_equal(&m, &back));
	CHECK_EQ(bses.count, 0);
	kv_map_free(&back);
	kv_map_free(&bses);
	kv_map_free(&m);
	kv_map_free(&ses);
	kv_buf_free(&im.b);
}

TEST(test_session_dedups_retries)
{
	struct kv_map m, ses = { 0 };
	struct kv_buf inner = { 0 }, e = { 0 };
	struct kv_result *r = NULL;
	unsigned char id[8], seq[8], now[8], le[8];
	const char *incr[] = { "n", (const char *)le };
	size_t incrl[] = { 1, 8 };
	const char *w[4] = { (const char *)id, (const char *)seq,
			     (const char *)now, NULL };
	size_t wl[4] = { 8, 8, 8, 0 };

	CHECK_EQ(kv_map_init(&m), 0);
	kv_cmd_le64(le, 1);
	kv_cmd_encode(&inner, KV_OP_INCRBY, 2, incr, incrl);
	w[3] = inner.p;
	wl[3] = inner.len;
	kv_cmd_le64(id, 42);
	kv_cmd_le64(now, 1000);
	for (int s = 1; s <= 3; s++) {
		kv_cmd_le64(seq, s);
		e.len = 0;
		kv_cmd_encode(&e, KV_OP_SESSION, 4, w, wl);
		for (int copy = 0; copy < 3; copy++) { /* retried copies */
			char want[8];
			int n = snprintf(want, sizeof(want), ":%d\r\n", s);
			CHECK_EQ(kv_session_apply(&m, &ses, e.p, e.len, &r), 0);
			CHECK(r && r->len == (size_t)n &&
			      memcmp(r->resp, want, (size_t)n) == 0);
			free(r);
		}
	}
	CHECK(memcmp(kv_ent_val(kv_map_get(&m, "n", 1)), "3", 1) == 0);
	/* The same (id, seq) after the session expired is a new write. */
	kv_cmd_le64(now, 1000 + (long long)KV_SESSION_TTL_MS + 1);
	e.len = 0;
	kv_cmd_encode(&e, KV_OP_SESSION, 4, w, wl);
	CHECK_EQ(kv_session_apply(&m, &ses, e.p, e.len, &r), 0);
	free(r);
	CHECK(memcmp(kv_ent_val(kv_map_get(&m, "n", 1)), "4", 1) == 0);
	/* Malformed: changes nothing. */
	for (size_t n = 0; n < e.len; n++) {
		r = NULL;
		CHECK_EQ(kv_session_apply(&m, &ses, e.p, n, &r), SR_EPROTO);
		CHECK(r == NULL);
	}
	CHECK(memcmp(kv_ent_val(kv_map_get(&m, "n", 1)), "4", 1) == 0);
	kv_buf_free(&inner);
	kv_buf_free(&e);
	kv_map_free(&m);
	kv_map_free(&ses);
}

/* A write stamped with time t (a KV_OP_TIMED entry). */
static int apply_at(struct kv_map *m, uint64_t t, int op, size_t n,
		    const char *const *argv, const size_t *lens,
		    struct kv_result **r)
{
	struct kv_buf in = { 0 }, e = { 0 };
	unsigned char le[8];
	const char *w[2] = { (const char *)le, NULL };
	size_t wl[2] = { 8, 0 };
	int rc;

	kv_cmd_encode(&in, op, n, argv, lens);
	kv_cmd_le64(le, (long long)t);
	w[1] = in.p;
	wl[1] = in.len;
	kv_cmd_encode(&e, KV_OP_TIMED, 2, w, wl);
	*r = NULL;
	rc = kv_fsm_apply_cmd(m, e.p, e.len, r);
	kv_buf_free(&in);
	kv_buf_free(&e);
	return rc;
}

TEST(test_expiry_follows_the_log_time)
{
	struct kv_map m, back, ses;
	struct kv_result *r;
	struct img im = { .fail_at = -1 };
	unsigned char f = 16, at[8];
	const char *setex[] = { (const char *)&f, "k", "v", (const char *)at };
	size_t setexl[] = { 1, 1, 1, 8 };
	const char *set[] = { "p", "1" };
	size_t setl[] = { 1, 1 };

	CHECK_EQ(kv_map_init(&m), 0);
	kv_cmd_le64(at, 5000);
	CHECK_EQ(apply_at(&m, 1000, KV_OP_SETX, 4, setex, setexl, &r), 0);
	free(r);
	CHECK_EQ(apply_at(&m, 1001, KV_OP_SET, 2, set, setl, &r), 0);
	free(r);
	CHECK(kv_map_get(&m, "k", 1) != NULL);
	CHECK_EQ(kv_map_ttl(&m, "k", 1), 5000);
	CHECK_EQ(kv_map_ttl_count(&m), 1);
	/* The snapshot keeps the TTL and the log's time. */
	CHECK_EQ(kv_snap_save2(&m, NULL, img_write, &im), 0);
	CHECK_EQ(kv_snap_load2(&back, &ses, im.b.len, img_read, &im), 0);
	CHECK_EQ(kv_map_ttl(&back, "k", 1), 5000);
	CHECK_EQ(back.now, 1001);
	kv_map_free(&back);
	kv_map_free(&ses);
	/* An entry stamped later than the TTL: the key is gone, on every
	 * node alike, whatever their clocks; an earlier stamp never moves
	 * the log's time back. */
	CHECK_EQ(apply_at(&m, 6000, KV_OP_SET, 2, set, setl, &r), 0);
	free(r);
	CHECK(kv_map_get(&m, "k", 1) == NULL);
	CHECK_EQ(apply_at(&m, 10, KV_OP_SET, 2, set, setl, &r), 0);
	free(r);
	CHECK_EQ(m.now, 6000);
	CHECK(kv_map_get(&m, "k", 1) == NULL);
	CHECK_EQ(kv_map_ttl_count(&m), 0); /* purged when a write came */
	kv_map_free(&m);
	kv_buf_free(&im.b);
}

TEST(test_snapshot_of_empty_map)
{
	struct kv_map m, back;
	struct img im = { .fail_at = -1 };

	CHECK_EQ(kv_map_init(&m), 0);
	CHECK_EQ(kv_snap_save(&m, img_write, &im), 0);
	CHECK_EQ(im.b.len, 8 + 8 + 4);
	CHECK_EQ(kv_snap_load(&back, KV_SNAP_SIZE_UNKNOWN, img_read, &im), 0);
	CHECK_EQ(back.count, 0);
	kv_map_free(&back);
	kv_map_free(&m);
	kv_buf_free(&im.b);
}

TEST(test_snapshot_damage_is_detected)
{
	struct kv_map m, back;
	struct img im = { .fail_at = -1 };
	size_t len;

	CHECK_EQ(kv_map_init(&m), 0);
	fill_map(&m, 500);
	CHECK_EQ(kv_snap_save(&m, img_write, &im), 0);
	len = im.b.len;
	/* Flip one byte anywhere: refused. */
	for (size_t i = 0; i < len; i += 7) {
		im.b.p[i] ^= 0x40;
		CHECK_EQ(kv_snap_load(&back, KV_SNAP_SIZE_UNKNOWN, img_read,
				      &im),
			 SR_ECORRUPT);
		im.b.p[i] ^= 0x40;
	}
	/* Truncated anywhere: refused. */
	for (size_t cut = 0; cut < len; cut += 13) {
		im.b.len = cut;
		CHECK_EQ(kv_snap_load(&back, KV_SNAP_SIZE_UNKNOWN, img_read,
				      &im),
			 SR_ECORRUPT);
	}
	im.b.len = len;
	/* Trailing bytes: refused. */
	kv_buf_put(&im.b, "x", 1);
	CHECK_EQ(kv_snap_load(&back, KV_SNAP_SIZE_UNKNOWN, img_read, &im),
		 SR_ECORRUPT);
	CHECK_EQ(kv_snap_load(&back, len + 1, img_read, &im), SR_ECORRUPT);
	kv_map_free(&m);
	kv_buf_free(&im.b);
}

TEST(test_snapshot_write_error_is_returned)
{
	struct kv_map m;
	struct img im = { .fail_at = 0 };

	CHECK_EQ(kv_map_init(&m), 0);
	fill_map(&m, 10);
	CHECK_EQ(kv_snap_save(&m, img_write, &im), SR_EIO);
	kv_map_free(&m);
	kv_buf_free(&im.b);
}

/* ------------------------------------------------------------------ */
/* The prefetch hint                                                  */
/* ------------------------------------------------------------------ */

/* Encode op with NUL-terminated arguments into b (emptied first). */
static void enc_strs(struct kv_buf *b, int op, size_t n,
		     const char *const *argv)
{
	size_t lens[16];

	for (size_t i = 0; i < n; i++)
		lens[i] = strlen(argv[i]);
	b->len = 0;
	kv_cmd_encode(b, op, n, argv, lens);
}

/* Wrap b's bytes in a command of op whose arguments are n - 1 fillers of
 * 8 bytes and b's bytes last (TIMED: 2, SESSION: 4). */
static void enc_wrap(struct kv_buf *b, int op, size_t n)
{
	struct kv_buf out = { 0 };
	const char *argv[4] = { "12345678", "12345678", "12345678", NULL };
	size_t lens[4] = { 8, 8, 8, 0 };

	argv[n - 1] = b->p;
	lens[n - 1] = b->len;
	kv_cmd_encode(&out, op, n, argv, lens);
	kv_buf_free(b);
	*b = out;
}

static int keys_are(const struct kv_buf *b, size_t max, size_t n,
		    const char *const *want)
{
	const void *keys[8];
	size_t klens[8];

	if (kv_fsm_entry_keys(b->p, b->len, keys, klens, max) != n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (klens[i] != strlen(want[i]) ||
		    memcmp(keys[i], want[i], klens[i]))
			return 0;
	return 1;
}

TEST(test_entry_keys_finds_the_keys_of_writes)
{
	struct kv_buf b = { 0 };
	unsigned char le[8];
	const char *incr[] = { "n", (const char *)le };
	size_t incrl[] = { 1, 8 };

	enc_strs(&b, KV_OP_SET, 2, (const char *[]){ "a", "1" });
	CHECK(keys_are(&b, 8, 1, (const char *[]){ "a" }));
	enc_strs(&b, KV_OP_MSET, 4, (const char *[]){ "b", "x", "cc", "y" });
	CHECK(keys_are(&b, 8, 2, (const char *[]){ "b", "cc" }));
	CHECK(keys_are(&b, 1, 1, (const char *[]){ "b" })); /* max */
	CHECK(keys_are(&b, 0, 0, NULL));
	enc_strs(&b, KV_OP_DEL, 3, (const char *[]){ "a", "b", "zz" });
	CHECK(keys_are(&b, 8, 3, (const char *[]){ "a", "b", "zz" }));
	b.len = 0;
	kv_cmd_le64(le, 5);
	kv_cmd_encode(&b, KV_OP_INCRBY, 2, incr, incrl);
	CHECK(keys_are(&b, 8, 1, (const char *[]){ "n" }));
	/* through the time and session wrappers, as kvnode proposes them */
	enc_strs(&b, KV_OP_SET, 2, (const char *[]){ "key:1", "v" });
	enc_wrap(&b, KV_OP_TIMED, 2);
	CHECK(keys_are(&b, 8, 1, (const char *[]){ "key:1" }));
	enc_strs(&b, KV_OP_MSET, 2, (const char *[]){ "s", "v" });
	enc_wrap(&b, KV_OP_SESSION, 4);
	enc_wrap(&b, KV_OP_TIMED, 2);
	CHECK(keys_are(&b, 8, 1, (const char *[]){ "s" }));
	/* a third wrapper is more than any entry has */
	enc_wrap(&b, KV_OP_TIMED, 2);
	CHECK(keys_are(&b, 8, 0, NULL));
	/* other commands give none (the hint may miss) */
	enc_strs(&b, KV_OP_PERSIST, 1, (const char *[]){ "a" });
	CHECK(keys_are(&b, 8, 0, NULL));
	kv_buf_free(&b);
}

TEST(test_entry_keys_of_damaged_bytes_are_none)
{
	struct kv_buf b = { 0 };
	const void *keys[8];
	size_t klens[8];

	enc_strs(&b, KV_OP_MSET, 4, (const char *[]){ "b", "x", "c", "y" });
	enc_wrap(&b, KV_OP_TIMED, 2);
	CHECK_EQ(kv_fsm_entry_keys(b.p, b.len, keys, klens, 8), 2);
	for (size_t cut = 0; cut < b.len; cut++)
		CHECK_EQ(kv_fsm_entry_keys(b.p, cut, keys, klens, 8), 0);
	CHECK_EQ(kv_fsm_entry_keys(NULL, 0, keys, klens, 8), 0);
	/* every byte flipped: never a key outside the entry */
	for (size_t i = 0; i < b.len; i++) {
		size_t n;
		b.p[i] ^= 0xff;
		n = kv_fsm_entry_keys(b.p, b.len, keys, klens, 8);
		CHECK(n <= 8);
		for (size_t k = 0; k < n; k++)
			CHECK((const char *)keys[k] >= b.p &&
			      (const char *)keys[k] + klens[k] <= b.p + b.len);
		b.p[i] ^= 0xff;
	}
	kv_buf_free(&b);
}

TEST(test_prefetch_hint_changes_nothing)
{
	struct kv_fsm f;
	struct kv_buf enc[4] = { { 0 } };
	sr_entry e[5];
	char key[32];
	const void *keys[2] = { "k1", "absent" };
	size_t klens[2] = { 2, 6 };
	struct kv_map empty;
	uint64_t bytes;

	memset(&f, 0, sizeof(f));
	memset(&empty, 0, sizeof(empty));
	kv_map_prefetch(&empty, 2, keys, klens); /* no buckets yet */
	CHECK_EQ(kv_map_init(&f.map), 0);
	kv_map_prefetch(&f.map, 2, keys, klens); /* empty buckets */
	for (int i = 0; i < 1000; i++) {
		int n = snprintf(key, sizeof(key), "k%d", i);
		CHECK_EQ(kv_map_set(&f.map, key, (size_t)n, "v", 1), 0);
	}
	bytes = f.map.bytes;
	enc_strs(&enc[0], KV_OP_SET, 2, (const char *[]){ "k1", "new" });
	enc_strs(&enc[1], KV_OP_MSET, 4,
		 (const char *[]){ "k2", "x", "fresh", "y" });
	enc_strs(&enc[2], KV_OP_DEL, 2, (const char *[]){ "k3", "k4" });
	enc_wrap(&enc[2], KV_OP_TIMED, 2);
	enc_strs(&enc[3], KV_OP_SET, 2, (const char *[]){ "k5", "z" });
	enc[3].len--; /* damaged */
	for (int i = 0; i < 4; i++)
		e[i] = (sr_entry){ .index = (sr_index)i + 1,
				   .term = 1,
				   .type = SR_ENTRY_NORMAL,
				   .len = (uint32_t)enc[i].len,
				   .data = enc[i].p };
	e[4] = (sr_entry){ .index = 5, .term = 1, .type = SR_ENTRY_NORMAL };
	CHECK(kv_fsm_ops.prefetch != NULL);
	kv_fsm_ops.prefetch(&f, e, 5);
	CHECK_EQ(f.map.count, 1000);
	CHECK_EQ(f.map.bytes, bytes);
	CHECK(memcmp(kv_ent_val(kv_map_get(&f.map, "k1", 2)), "v", 1) == 0);
	CHECK(kv_map_get(&f.map, "fresh", 5) == NULL);
	CHECK_EQ(f.applied, 0);
	for (int i = 0; i < 4; i++)
		kv_buf_free(&enc[i]);
	kv_map_free(&f.map);
}

int main(int argc, char **argv)
{
	return test_main(argc, argv);
}
