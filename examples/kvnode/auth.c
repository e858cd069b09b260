/*
 * auth.c — AUTH and HELLO: the password a connection must present when
 * kvnode runs with --requirepass.
 *
 * Until it authenticates, a connection may only send AUTH, HELLO (with
 * its AUTH option) and QUIT; anything else is answered "-NOAUTH", as
 * Redis does.  Users: "default", whose password is the --requirepass
 * value (without it, default needs none and every connection starts
 * authenticated as default), and at most one named user given with
 * --user NAME:PASS (AUTH NAME PASS, HELLO 3 AUTH NAME PASS).  The
 * comparison takes the same time whatever the bytes of the attempt, so
 * timing does not reveal how much of a guess was right (only the
 * password's length range may show); the name is not a secret.
 *
 * HELLO 2 and HELLO 3 choose the connection's protocol: after HELLO 3
 * replies are RESP3 (server.c rewrites nulls as "_"; the commands with a
 * map, set or verbatim reply build it), HELLO 2 goes back to RESP2.
 */
#include <string.h>
#include <strings.h>

#include "kvnode.h"

static int arg_is(const struct kv_cmdctx *ctx, size_t i, const char *s)
{
	return ctx->lens[i] == strlen(s) &&
	       strncasecmp(ctx->argv[i], s, ctx->lens[i]) == 0;
}

/* Compare every byte of the longer of the two, whatever they hold. */
static int secret_equal(const char *want, const char *got, size_t got_len)
{
	size_t wl = strlen(want), n = wl > got_len ? wl : got_len;
	volatile unsigned char diff = (unsigned char)(wl != got_len);

	for (size_t i = 0; i < n; i++) {
		unsigned char a = i < wl ? (unsigned char)want[i] : 0;
		unsigned char b = i < got_len ? (unsigned char)got[i] : 0;
		diff |= (unsigned char)(a ^ b);
	}
	return diff == 0;
}

/* 1 if argument `user` (an index; 0: none, i.e. default) and `pass`
 * name the --user user and its password. */
static int named_user_ok(const struct kv_cmdctx *ctx, size_t user, size_t pass)
{
	const char *spec = ctx->s->opt.user, *colon;

	if (!spec || !user)
		return 0;
	colon = strchr(spec, ':');
	if (ctx->lens[user] != (size_t)(colon - spec) ||
	    memcmp(ctx->argv[user], spec, ctx->lens[user]))
		return 0;
	return secret_equal(colon + 1, ctx->argv[pass], ctx->lens[pass]);
}

/* 0 after authenticating; -1 after replying the error. */
static int try_auth(struct kv_cmdctx *ctx, size_t user, size_t pass)
{
	const char *want = ctx->s->opt.requirepass;
	int is_default = !user || arg_is(ctx, user, "default");

	if (!is_default) {
		if (!named_user_ok(ctx, user, pass))
			goto wrong;
		kv_server_set_conn_authed(ctx->c);
		return 0;
	}
	if (!want) {
		kv_reply_error(ctx->out, "ERR AUTH <password> called without "
					 "any "
					 "password configured for the default "
					 "user. Are you sure your "
					 "configuration is correct?");
		return -1;
	}
	if (!secret_equal(want, ctx->argv[pass], ctx->lens[pass]))
		goto wrong;
	kv_server_set_conn_authed(ctx->c);
	return 0;
wrong:
	kv_reply_error(ctx->out, "WRONGPASS invalid username-password "
				 "pair or user is disabled.");
	return -1;
}

int kv_auth_check(struct kv_cmdctx *ctx, const char *name)
{
	if (!ctx->s->opt.requirepass || kv_server_conn_authed(ctx->c) ||
	    !strcmp(name, "auth") || !strcmp(name, "hello") ||
	    !strcmp(name, "quit"))
		return 1;
	kv_reply_error(ctx->out, "NOAUTH Authentication required.");
	return 0;
}

/* AUTH [username] password */
void kv_auth_cmd_auth(struct kv_cmdctx *ctx)
{
	if (ctx->argc > 3) {
		kv_reply_error(ctx->out, "ERR syntax error");
		return;
	}
	if (try_auth(ctx, ctx->argc == 3 ? 1 : 0, ctx->argc - 1) == 0)
		kv_reply_simple(ctx->out, "OK");
}

/* What CLIENT SETNAME accepts too: printable, no spaces, < 64 bytes. */
static int name_ok(const char *p, size_t len)
{
	if (len >= 64)
		return 0;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)p[i] <= ' ' || (unsigned char)p[i] > '~')
			return 0;
	return 1;
}

/* HELLO [protover [AUTH username password] [SETNAME clientname]] */
void kv_auth_cmd_hello(struct kv_cmdctx *ctx)
{
	size_t i = 2;
	long long proto = 2;
	int resp3;

	if (ctx->argc >= 2 && kv_parse_ll(ctx->argv[1], ctx->lens[1], &proto)) {
		kv_reply_error(ctx->out, "ERR Protocol version is not an "
					 "integer or out of range");
		return;
	}
	if (ctx->argc >= 2 && proto != 2 && proto != 3) {
		kv_reply_error(ctx->out, "NOPROTO unsupported protocol "
					 "version");
		return;
	}
	for (; i < ctx->argc; i++) {
		if (arg_is(ctx, i, "AUTH") && i + 2 < ctx->argc) {
			if (try_auth(ctx, i + 1, i + 2))
				return;
			i += 2;
		} else if (arg_is(ctx, i, "SETNAME") && i + 1 < ctx->argc) {
			if (!name_ok(ctx->argv[i + 1], ctx->lens[i + 1])) {
				kv_reply_error(ctx->out, "ERR Client names "
							 "cannot "
							 "contain spaces, "
							 "newlines or "
							 "special characters.");
				return;
			}
			i++; /* applied below, once everything checked out */
		} else {
			kv_reply_errorf(ctx->out, "ERR Syntax error in HELLO "
						  "option");
			return;
		}
	}
	if (ctx->s->opt.requirepass && !kv_server_conn_authed(ctx->c)) {
		kv_reply_error(ctx->out, "NOAUTH HELLO must be called with the "
					 "client already authenticated, "
					 "otherwise the HELLO <proto> AUTH "
					 "<user> <pass> option can be used");
		return;
	}
	for (i = 2; i < ctx->argc; i++)
		if (arg_is(ctx, i, "SETNAME") && i + 1 < ctx->argc)
			kv_server_set_conn_name(ctx->c, ctx->argv[i + 1],
						ctx->lens[i + 1]);
	/* HELLO without a version keeps the protocol in use. */
	if (ctx->argc >= 2)
		kv_server_set_conn_resp3(ctx->c, proto == 3);
	resp3 = kv_server_conn_resp3(ctx->c);
	kv_reply_map(ctx->out, 7, resp3);
	kv_reply_cstr(ctx->out, "server");
	kv_reply_cstr(ctx->out, "redis");
	kv_reply_cstr(ctx->out, "version");
	kv_reply_cstr(ctx->out, "7.0.0");
	kv_reply_cstr(ctx->out, "proto");
	kv_reply_int(ctx->out, resp3 ? 3 : 2);
	kv_reply_cstr(ctx->out, "id");
	kv_reply_int(ctx->out, (long long)kv_server_conn_id(ctx->c));
	kv_reply_cstr(ctx->out, "mode");
	kv_reply_cstr(ctx->out, ctx->s->opt.plain ? "standalone" : "cluster");
	kv_reply_cstr(ctx->out, "role");
	kv_reply_cstr(ctx->out,
		      kv_cmd_is_leader(ctx->g) ? "master" : "replica");
	kv_reply_cstr(ctx->out, "modules");
	kv_reply_array(ctx->out, 0);
}
