/*
 * server_log.c — the server's own log lines, at the bottom of its files:
 * every other file of the server logs through here (the engine's lines
 * go through server_glue.c's log callback instead, tagged with their
 * group).
 *
 * Lines go to cfg.log when one is set and the level passes cfg.log_level,
 * prefixed "server <id>: ".  A refused call is an SR_LOG_ERROR line that
 * names the call and what to do instead, so that a host's wiring mistake
 * is never a silent SR_ESTATE.
 */
#include "server_int.h"

#include <stdarg.h>
#include <stdio.h>

void server_log(sr_server *s, int level, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	if (!s->cfg.log || level < s->cfg.log_level)
		return;
	n = snprintf(line, sizeof(line),
		     "server %llu: ", (unsigned long long)s->cfg.id);
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	s->cfg.log(s->cfg.log_ctx, level, line);
}

int server_refuse(sr_server *s, const char *what, const char *why)
{
	server_log(s, SR_LOG_ERROR, "%s%s", what, why);
	return SR_ESTATE;
}
