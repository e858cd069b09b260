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
	fuzz_run(data + 1, size - 1, size, &whole);
	fuzz_run(data + 1, size - 1, step, &pieces);
	/* Splitting may only matter once an error was seen (the line-length
	 * limit is checked against what has arrived so far). */
	if (!whole.err && !pieces.err &&
	    (whole.cmds != pieces.cmds || whole.crc != pieces.crc))
		abort();
	return 0;
}
