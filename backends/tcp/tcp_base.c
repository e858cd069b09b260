/*
 * tcp_base.c — what every other file of the transport stands on: its
 * log line, its buffer accounting and the lookups of its peer table.
 *
 * Every buffer the transport holds (peers, send queues, receive buffers,
 * key copies) is allocated through tcp_realloc() and released through
 * tcp_free(), so sr_tcp_stats.buffer_bytes is the transport's memory to
 * the byte.  Nothing here calls another file of the transport.
 */
#include "internal/alloc.h"
#include "tcp_int.h"

#include <stdio.h>

void tcp_log(sr_tcp *t, int level, const char *fmt, ...)
{
	char line[256];
	va_list ap;

	if (!t->cfg.log || level < t->cfg.log_level)
		return;
	int n = snprintf(line, sizeof(line),
			 "tcp %llu: ", (unsigned long long)t->cfg.id);
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	t->cfg.log(t->cfg.log_ctx, level, line);
}

/* realloc through the hooks, keeping buffer_bytes current. */
void *tcp_realloc(sr_tcp *t, void *p, size_t old, size_t size)
{
	void *n = hook_realloc(t->cfg.alloc, p, size);
	if (n)
		t->st.buffer_bytes += size - old;
	return n;
}

void tcp_free(sr_tcp *t, void *p, size_t size)
{
	if (!p)
		return;
	t->st.buffer_bytes -= size;
	hook_free(t->cfg.alloc, p);
}

struct tcp_peer *tcp_peer_find(const sr_tcp *t, sr_id id)
{
	for (size_t i = 0; i < t->n_peers; i++)
		if (t->peers[i]->id == id)
			return t->peers[i];
	return NULL;
}

uint32_t tcp_features(const sr_tcp *t)
{
	return (t->batch_max ? SR_FEATURE_BATCH : 0) |
	       (t->coalesce_max ? SR_FEATURE_COALESCE : 0);
}
