/*
 * resp.c — the Redis protocol (RESP2) as a server sees it: an incremental
 * request parser and the reply encoders, plus the growable byte buffer
 * both work on.
 *
 * Requests come in two shapes (https://redis.io/docs/reference/protocol-spec/):
 *
 *   multibulk   *<n>\r\n then n times $<len>\r\n<len bytes>\r\n
 *   inline      a line of words separated by spaces or tabs (telnet,
 *               redis-benchmark's PING_INLINE)
 *
 * The parser works on the connection's input buffer in place and keeps its
 * position between calls, so a command that arrives a byte at a time is
 * scanned once, not once per byte.  Arguments are (offset, length) pairs
 * into the buffer: nothing is copied.
 *
 * Hostile input.  A count or length is only a claim: the parser allocates
 * for an argument when the bytes of its header have arrived, never for the
 * claimed size, so "*2147483647\r\n" or "$536870912\r\n" costs nothing
 * until the data actually comes (and the connection's buffer is bounded by
 * the server).  Lengths beyond max_bulk, counts beyond max_args, lines
 * longer than max_inline, non-digits, overflows and a missing CRLF after a
 * bulk string are protocol errors: the server replies and closes.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvnode.h"

/* ------------------------------------------------------------------ */
/* Byte buffer                                                        */
/* ------------------------------------------------------------------ */

int kv_buf_reserve(struct kv_buf *b, size_t extra)
{
	size_t need, cap;
	char *p;

	if (extra > SIZE_MAX / 2 - b->len)
		return -1;
	need = b->len + extra;
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p)
		return -1;
	b->p = p;
	b->cap = cap;
	return 0;
}

int kv_buf_put(struct kv_buf *b, const void *data, size_t len)
{
	if (kv_buf_reserve(b, len))
		return -1;
	if (len)
		memcpy(b->p + b->len, data, len);
	b->len += len;
	return 0;
}

__attribute__((format(printf, 2, 0))) static int
kv_buf_vprintf(struct kv_buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0 || kv_buf_reserve(b, (size_t)n + 1))
		return -1;
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int kv_buf_printf(struct kv_buf *b, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = kv_buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rc;
}

void kv_buf_free(struct kv_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

void kv_buf_consume(struct kv_buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
		return;
	}
	memmove(b->p, b->p + n, b->len - n);
	b->len -= n;
}

/* ------------------------------------------------------------------ */
/* Parser                                                             */
/* ------------------------------------------------------------------ */

void kv_parser_init(struct kv_parser *p, size_t max_bulk)
{
	memset(p, 0, sizeof(*p));
	p->max_bulk = max_bulk;
	p->max_args = 1024 * 1024;
	p->max_inline = 64 * 1024;
	p->nargs = -1;
	p->bulk = -1;
}

void kv_parser_free(struct kv_parser *p)
{
	free(p->args);
	p->args = NULL;
	p->args_cap = 0;
}

void kv_parser_shift(struct kv_parser *p, size_t n)
{
	p->start -= n;
	p->pos -= n;
	for (size_t i = 0; i < p->argc; i++)
		p->args[i].off -= n;
}

int kv_parse_ll(const char *s, size_t len, long long *out)
{
	unsigned long long v = 0, lim;
	size_t i = 0;
	int neg = 0;

	if (len == 0 || len > 20)
		return -1;
	if (s[0] == '-') {
		neg = 1;
		i = 1;
		if (len == 1)
			return -1;
	}
	if (s[i] == '0' && len > i + 1)
		return -1; /* no leading zeros, like Redis */
	lim = neg ? (unsigned long long)LLONG_MAX + 1
		  : (unsigned long long)LLONG_MAX;
	for (; i < len; i++) {
		unsigned d = (unsigned char)s[i] - '0';
		if (d > 9 || v > (lim - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (neg && v == 0)
		return -1; /* "-0" */
	*out = neg ? (long long)(0 - v) : (long long)v;
	return 0;
}

/* Append an argument; the vector grows one argument at a time. */
static int parse_push(struct kv_parser *p, size_t off, size_t len)
{
	if (p->argc == p->args_cap) {
		size_t cap = p->args_cap ? p->args_cap * 2 : 8;
		struct kv_arg *a = realloc(p->args, cap * sizeof(*a));
		if (!a)
			return -1;
		p->args = a;
		p->args_cap = cap;
	}
	p->args[p->argc].off = off;
	p->args[p->argc].len = len;
	p->argc++;
	return 0;
}

/*
 * Find the CRLF ending the line that starts at `from`.  Returns the offset
 * of the '\r', -1 if more bytes are needed, -2 if the line is too long.
 */
static long long parse_line(const struct kv_parser *p, const char *buf,
			    size_t len, size_t from)
{
	size_t lim = len;
	const char *nl;

	if (len - from > p->max_inline + 2)
		lim = from + p->max_inline + 2;
	nl = memchr(buf + from, '\n', lim - from);
	if (!nl)
		return len - from > p->max_inline + 1 ? -2 : -1;
	if (nl == buf + from || nl[-1] != '\r')
		return -3; /* a bare \n where a length line was expected */
	return (long long)(nl - 1 - buf);
}

/* The command is complete: reset for the next one. */
static int parse_complete(struct kv_parser *p)
{
	p->start = p->pos;
	p->nargs = -1;
	p->bulk = -1;
	p->is_inline = 0;
	return KV_PARSE_CMD;
}

static void parse_reset(struct kv_parser *p)
{
	p->argc = 0;
	p->nargs = -1;
	p->bulk = -1;
	p->is_inline = 0;
}

/* An inline command: words on one line ending in \n (a \r before it is
 * dropped).  Empty lines are skipped, as Redis does. */
static int parse_inline(struct kv_parser *p, const char *buf, size_t len,
			const char **err)
{
	size_t lim = len - p->pos > p->max_inline ? p->pos + p->max_inline
						  : len;
	const char *nl = memchr(buf + p->pos, '\n', lim - p->pos);
	size_t end, i;

	if (!nl) {
		if (len - p->pos >= p->max_inline) {
			*err = "Protocol error: too big inline request";
			return KV_PARSE_ERR;
		}
		return KV_PARSE_MORE;
	}
	end = (size_t)(nl - buf);
	i = p->pos;
	p->pos = end + 1;
	if (end > i && buf[end - 1] == '\r')
		end--;
	p->argc = 0;
	while (i < end) {
		size_t w;
		while (i < end && (buf[i] == ' ' || buf[i] == '\t'))
			i++;
		if (i == end)
			break;
		w = i;
		while (i < end && buf[i] != ' ' && buf[i] != '\t')
			i++;
		if (parse_push(p, w, i - w)) {
			*err = "out of memory";
			return KV_PARSE_ERR;
		}
	}
	if (p->argc == 0) {
		p->start = p->pos; /* an empty line: nothing to run */
		return KV_PARSE_MORE;
	}
	return parse_complete(p);
}

/* Read a "<c><integer>\r\n" header at p->pos. */
static int parse_header(struct kv_parser *p, const char *buf, size_t len,
			char c, long long *out, const char **err)
{
	long long cr;

	if (buf[p->pos] != c) {
		*err = c == '*' ? "Protocol error: invalid multibulk length"
				: "Protocol error: expected '$'";
		return KV_PARSE_ERR;
	}
	cr = parse_line(p, buf, len, p->pos);
	if (cr == -1)
		return KV_PARSE_MORE;
	if (cr < 0 ||
	    kv_parse_ll(buf + p->pos + 1, (size_t)cr - p->pos - 1, out)) {
		*err = c == '*' ? "Protocol error: invalid multibulk length"
				: "Protocol error: invalid bulk length";
		return KV_PARSE_ERR;
	}
	p->pos = (size_t)cr + 2;
	return KV_PARSE_CMD;
}

static int parse_multibulk(struct kv_parser *p, const char *buf, size_t len,
			   const char **err)
{
	long long v;
	int rc;

	if (p->nargs < 0) {
		rc = parse_header(p, buf, len, '*', &v, err);
		if (rc != KV_PARSE_CMD)
			return rc;
		if (v > (long long)p->max_args) {
			*err = "Protocol error: invalid multibulk length";
			return KV_PARSE_ERR;
		}
		if (v <= 0) { /* "*0" and "*-1": nothing to run */
			p->start = p->pos;
			parse_reset(p);
			return KV_PARSE_MORE;
		}
		p->nargs = v;
		p->argc = 0;
	}
	while ((long long)p->argc < p->nargs) {
		if (p->bulk < 0) {
			if (p->pos >= len)
				return KV_PARSE_MORE;
			rc = parse_header(p, buf, len, '$', &v, err);
			if (rc != KV_PARSE_CMD)
				return rc;
			if (v < 0 || (unsigned long long)v > p->max_bulk) {
				*err = "Protocol error: invalid bulk length";
				return KV_PARSE_ERR;
			}
			p->bulk = v;
		}
		if (len - p->pos < (size_t)p->bulk + 2)
			return KV_PARSE_MORE;
		if (buf[p->pos + p->bulk] != '\r' ||
		    buf[p->pos + p->bulk + 1] != '\n') {
			*err = "Protocol error: bulk string not terminated by "
			       "CRLF";
			return KV_PARSE_ERR;
		}
		if (parse_push(p, p->pos, (size_t)p->bulk)) {
			*err = "out of memory";
			return KV_PARSE_ERR;
		}
		p->pos += (size_t)p->bulk + 2;
		p->bulk = -1;
	}
	return parse_complete(p);
}

int kv_parse(struct kv_parser *p, const char *buf, size_t len, const char **err)
{
	int rc;

	*err = NULL;
	for (;;) {
		if (p->nargs < 0 && !p->is_inline) {
			if (p->pos >= len)
				return KV_PARSE_MORE;
			p->argc = 0;
			if (buf[p->pos] != '*')
				p->is_inline = 1;
		}
		if (p->is_inline) {
			size_t before = p->start;
			rc = parse_inline(p, buf, len, err);
			if (rc == KV_PARSE_MORE && p->start != before) {
				p->is_inline = 0; /* skipped an empty line */
				continue;
			}
			return rc;
		}
		size_t before = p->start;
		rc = parse_multibulk(p, buf, len, err);
		if (rc == KV_PARSE_MORE && p->start != before && p->nargs < 0)
			continue; /* skipped "*0\r\n" */
		return rc;
	}
}

/* ------------------------------------------------------------------ */
/* Replies                                                            */
/* ------------------------------------------------------------------ */

/* "<type><number>\r\n" without printf: every reply header of every
 * command goes through here. */
static int put_header(struct kv_buf *b, char type, int neg,
		      unsigned long long v)
{
	char tmp[24], *e = tmp + sizeof(tmp), *p = e;

	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	if (neg)
		*--p = '-';
	if (kv_buf_reserve(b, (size_t)(e - p) + 3))
		return -1;
	b->p[b->len++] = type;
	memcpy(b->p + b->len, p, (size_t)(e - p));
	b->len += (size_t)(e - p);
	b->p[b->len++] = '\r';
	b->p[b->len++] = '\n';
	return 0;
}

int kv_reply_simple(struct kv_buf *b, const char *s)
{
	size_t n = strlen(s);

	if (kv_buf_reserve(b, n + 3))
		return -1;
	b->p[b->len++] = '+';
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len++] = '\r';
	b->p[b->len++] = '\n';
	return 0;
}

/* Error text must be one line: CR and LF become spaces. */
int kv_reply_error(struct kv_buf *b, const char *s)
{
	size_t n = strlen(s), at;

	if (kv_buf_reserve(b, n + 3))
		return -1;
	b->p[b->len++] = '-';
	at = b->len;
	memcpy(b->p + at, s, n);
	for (size_t i = 0; i < n; i++)
		if (b->p[at + i] == '\r' || b->p[at + i] == '\n')
			b->p[at + i] = ' ';
	b->len += n;
	b->p[b->len++] = '\r';
	b->p[b->len++] = '\n';
	return 0;
}

int kv_reply_errorf(struct kv_buf *b, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	return kv_reply_error(b, line);
}

int kv_reply_int(struct kv_buf *b, long long v)
{
	/* the magnitude of LLONG_MIN does not fit a long long */
	return put_header(b, ':', v < 0,
			  v < 0 ? 0ULL - (unsigned long long)v
				: (unsigned long long)v);
}

int kv_reply_bulk(struct kv_buf *b, const void *p, size_t len)
{
	if (put_header(b, '$', 0, len) || kv_buf_put(b, p, len))
		return -1;
	return kv_buf_put(b, "\r\n", 2);
}

int kv_reply_cstr(struct kv_buf *b, const char *s)
{
	return kv_reply_bulk(b, s, strlen(s));
}

int kv_reply_nil(struct kv_buf *b)
{
	return kv_buf_put(b, "$-1\r\n", 5);
}

int kv_reply_array(struct kv_buf *b, size_t n)
{
	return put_header(b, '*', 0, n);
}

/* ------------------------------------------------------------------ */
/* RESP3 (HELLO 3)                                                    */
/* ------------------------------------------------------------------ */

/*
 * The replies are built in RESP2 by every command and by the state
 * machine (whose replies are replicated bytes and cannot depend on who
 * asks).  For a connection that said HELLO 3 the one RESP2 form RESP3
 * spells differently, the null ("$-1" and "*-1"), is rewritten to "_"
 * as the reply is moved to the output.  The commands whose RESP3 reply
 * has another shape (maps, sets, verbatim text) build it themselves
 * (kv_reply_map and friends below); the rewrite passes those through.
 *
 * The rewrite walks the bytes as a flat sequence of tokens: a line
 * (+ - : _ , # ( and the aggregate headers * % ~ > |) or a length-
 * prefixed payload ($ = !).  It never needs the nesting, and the result
 * is never longer than the input (it is done in place).
 */
static int resp3_line_end(const char *p, size_t len, size_t at, size_t *end)
{
	const char *nl = memchr(p + at, '\n', len - at);

	if (!nl || nl == p + at || nl[-1] != '\r')
		return -1;
	*end = (size_t)(nl - p) + 1;
	return 0;
}

int kv_resp3_fix(struct kv_buf *b, size_t from)
{
	size_t r = from, w = from;
	int rc = 0;

	if (from >= b->len)
		return 0;
	while (r < b->len) {
		char t = b->p[r];
		size_t end;
		long long n;

		if (resp3_line_end(b->p, b->len, r, &end) || end - r < 3 ||
		    !strchr("+-:_,#(*%~>|$=!", t)) {
			rc = -1;
			break;
		}
		if ((t == '$' || t == '*') && end - r == 5 &&
		    !memcmp(b->p + r + 1, "-1", 2)) {
			memcpy(b->p + w, "_\r\n", 3);
			w += 3;
			r = end;
			continue;
		}
		if (t == '$' || t == '=' || t == '!') {
			if (kv_parse_ll(b->p + r + 1, end - r - 3, &n) ||
			    n < 0 || (size_t)n > b->len - end ||
			    b->len - end - (size_t)n < 2) {
				rc = -1;
				break;
			}
			end += (size_t)n + 2;
		}
		memmove(b->p + w, b->p + r, end - r);
		w += end - r;
		r = end;
	}
	/* Whatever could not be read as replies stays as it was. */
	memmove(b->p + w, b->p + r, b->len - r);
	b->len = w + (b->len - r);
	return rc;
}

int kv_reply_map(struct kv_buf *b, size_t pairs, int resp3)
{
	return resp3 ? kv_buf_printf(b, "%%%zu\r\n", pairs)
		     : kv_reply_array(b, pairs * 2);
}

int kv_reply_set(struct kv_buf *b, size_t n, int resp3)
{
	return resp3 ? kv_buf_printf(b, "~%zu\r\n", n) : kv_reply_array(b, n);
}

/* Text for a human (INFO, CLIENT LIST, CLUSTER NODES): RESP3's verbatim
 * string of format "txt", a bulk string in RESP2. */
int kv_reply_verbatim(struct kv_buf *b, const char *p, size_t len, int resp3)
{
	if (!resp3)
		return kv_reply_bulk(b, p, len);
	if (kv_buf_printf(b, "=%zu\r\ntxt:", len + 4) || kv_buf_put(b, p, len))
		return -1;
	return kv_buf_put(b, "\r\n", 2);
}
