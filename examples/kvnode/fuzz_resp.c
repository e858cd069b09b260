/*
 * fuzz_resp.c — libFuzzer target for kvnode's RESP request parser.
 *
 * The input is split into pieces (the first byte picks the piece size) and
 * fed the way a connection feeds it: bytes are appended to a buffer, every
 * complete command is parsed out, the consumed prefix is dropped and the
 * parser shifted.  Checked on every step: arguments lie inside the buffer
 * and inside the command; the parser never consumes more than it was
 * given; a command's arguments are within max_bulk; and a second parser
 * fed the whole input at once returns the same commands (the result does
 * not depend on how the bytes were split).
 *
 * The RESP3 null rewrite (kv_resp3_fix, HELLO 3) is checked on the same
 * input two ways: on the raw bytes it must never grow them, must leave a
 * prefix it could not read untouched in length order, and must be
 * idempotent; on replies built from each parsed command (an array of its
 * arguments, empty ones as RESP2 nulls, nested in a second array) it
 * must produce exactly the RESP3 encoding built directly.
 *
 * Build and run: make fuzz (the top-level Makefile compiles this file with
 * the library sources; resp.c is included here so the target needs
 * nothing else).
 */
#include <stdlib.h>
#include <string.h>

#include "resp.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_BULK 4096

struct digest {
	uint32_t crc; /* over every command's arguments */
	size_t cmds;
	int err;
};

/* The replies of one command in RESP2 (nulls for empty arguments) and,
 * separately, in RESP3: the rewrite of the first must be the second. */
static void fuzz_check_resp3(const struct kv_parser *p, const char *buf)
{
	struct kv_buf r2 = { 0 }, r3 = { 0 };

	kv_reply_array(&r2, 2);
	kv_reply_array(&r3, 2);
	kv_reply_array(&r2, p->argc);
	kv_reply_array(&r3, p->argc);
	for (size_t i = 0; i < p->argc; i++) {
		const struct kv_arg *a = &p->args[i];
		if (a->len == 0) {
			kv_reply_nil(&r2);
			kv_buf_put(&r3, "_\r\n", 3);
		} else {
			kv_reply_bulk(&r2, buf + a->off, a->len);
			kv_reply_bulk(&r3, buf + a->off, a->len);
		}
	}
	kv_buf_put(&r2, "*-1\r\n", 5);
	kv_buf_put(&r3, "_\r\n", 3);
	if (kv_resp3_fix(&r2, 0) || r2.len != r3.len ||
	    memcmp(r2.p, r3.p, r2.len))
		abort();
	kv_buf_free(&r2);
	kv_buf_free(&r3);
}

/* Arbitrary bytes: never longer, idempotent. */
static void fuzz_resp3_raw(const uint8_t *data, size_t size)
{
	struct kv_buf b = { 0 }, again = { 0 };

	if (kv_buf_put(&b, data, size))
		return;
	kv_resp3_fix(&b, 0);
	if (b.len > size)
		abort();
	if (b.len && kv_buf_put(&again, b.p, b.len))
		abort();
	kv_resp3_fix(&again, 0);
	if (again.len != b.len || (b.len && memcmp(again.p, b.p, b.len)))
		abort();
	kv_buf_free(&b);
	kv_buf_free(&again);
}

static void fuzz_check_cmd(const struct kv_parser *p, const char *buf,
			   size_t len, struct digest *d)
{
	uint32_t n;

	if (p->argc == 0 || p->pos > len)
		abort();
	for (size_t i = 0; i < p->argc; i++) {
		const struct kv_arg *a = &p->args[i];
		if (a->off > len || a->len > len - a->off ||
		    a->off + a->len > p->pos)
			abort();
		if (a->len > FUZZ_MAX_BULK)
			abort();
		n = (uint32_t)a->len;
		d->crc = sr_crc32c(d->crc, &n, sizeof(n));
		d->crc = sr_crc32c(d->crc, buf + a->off, a->len);
	}
	fuzz_check_resp3(p, buf);
	d->cmds++;
}

/* Feed in pieces of `step` bytes, like a socket would. */
static void fuzz_run(const uint8_t *data, size_t size, size_t step,
		     struct digest *d)
{
	struct kv_parser p;
	struct kv_buf in = { 0 };
	size_t off = 0;
	const char *err;

	kv_parser_init(&p, FUZZ_MAX_BULK);
	p.max_inline = 512;
	memset(d, 0, sizeof(*d));
	while (off < size && !d->err) {
		size_t n = size - off < step ? size - off : step;
		int rc;
		if (kv_buf_put(&in, data + off, n))
			break;
		off += n;
		while ((rc = kv_parse(&p, in.p, in.len, &err)) == KV_PARSE_CMD)
			fuzz_check_cmd(&p, in.p, in.len, d);
		if (rc == KV_PARSE_ERR) {
			if (!err)
				abort();
			d->err = 1;
		}
		size_t done = kv_parser_done_bytes(&p);
		if (done > in.len)
			abort();
		kv_buf_consume(&in, done);
		kv_parser_shift(&p, done);
	}
	kv_buf_free(&in);
	kv_parser_free(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct digest whole, pieces;
	size_t step;

	if (size < 1)
		return 0;
	step = (size_t)data[0] % 17 + 1;
	fuzz_resp3_raw(data + 1, size - 1);
	fuzz_run(data + 1, size - 1, size, &whole);
	fuzz_run(data + 1, size - 1, step, &pieces);
	/* Splitting may only matter once an error was seen (the line-length
	 * limit is checked against what has arrived so far). */
	if (!whole.err && !pieces.err &&
	    (whole.cmds != pieces.cmds || whole.crc != pieces.crc))
		abort();
	return 0;
}
