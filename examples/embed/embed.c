/*
 * embed.c — the smallest program embedding libseshatraft: one voter, the
 * in-memory store and a counter state machine.  The host owns time (here
 * simulated: it jumps to each deadline; a real host passes a monotonic clock
 * in ms), the store, the state machine and the transport (unused by a single
 * node).  Build:  cc embed.c $(pkg-config --cflags --libs seshatraft)
 *
 * Expected output ends: counter = 15
 */
#include <seshat/mem.h>
#include <seshat/raft.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A command is an int64_t added to the counter.  The result (the new value)
 * is malloc'ed: whoever receives it, proposer or free_result, frees it. */
static int counter_apply(void *ctx, const sr_entry *e, void **result)
{
	int64_t *counter = ctx, delta, *out;

	if (e->len != sizeof delta)
		return SR_EINVAL; /* still counts as applied: a no-op */
	memcpy(&delta, e->data, sizeof delta);
	*counter += delta;
	if ((*result = out = malloc(sizeof *out)) != NULL)
		*out = *counter;
	return 0;
}

static void free_result(void *ctx, void *result)
{
	(void)ctx;
	free(result);
}

static int no_send(void *ctx, const sr_msg *msg)
{
	(void)ctx, (void)msg;
	return 0;
}

static void on_done(void *ctx, void *cookie, int status, sr_index index,
		    void *result)
{
	(void)cookie;
	if (status == 0 && result != NULL)
		printf("applied at index %" PRIu64 ": %" PRId64 "\n", index,
		       *(int64_t *)result);
	free_result(ctx, result);
}

/* The store reports durable appends here, maybe from inside append(). */
static void on_storage_done(void *node, uint64_t token, int status)
{
	sr_node_storage_done(node, token, status);
}

/* Jump to the node's next deadline; a minute is plenty for an election. */
static int advance(sr_node *node, uint64_t *now, sr_status *st)
{
	uint64_t next = sr_node_deadline(node);

	*now = next > *now ? next : *now + 1;
	if (*now > 60000)
		return SR_ETIMEOUT;
	sr_node_tick(node, *now);
	sr_node_status(node, st);
	return 0;
}

int main(void)
{
	static const sr_fsm_ops fsm = { .apply = counter_apply,
					.free_result = free_result };
	static const sr_transport_ops net = { .send = no_send };
	sr_mem_config mc = { .mode = SR_MEM_SYNC };
	sr_membership conf = { 0 };
	int64_t counter = 0, delta;
	sr_node *node = NULL;
	sr_mem *mem = NULL;
	uint64_t now = 0;
	sr_config cfg;
	sr_status st;
	int rc;

	sr_config_init(&cfg, 1);
	cfg.fsm = &fsm, cfg.fsm_ctx = &counter;
	cfg.transport = &net, cfg.host.done = on_done;
	if ((rc = sr_mem_create(&mc, &mem)) != 0)
		goto out;
	cfg.storage = sr_mem_ops(), cfg.storage_ctx = mem;
	if ((rc = sr_node_create(&cfg, &node)) != 0)
		goto out;
	sr_mem_set_done(mem, on_storage_done, node);
	if ((rc = sr_membership_add(&conf, 1, SR_ROLE_VOTER, "local")) != 0 ||
	    (rc = sr_node_bootstrap(node, &conf)) != 0 ||
	    (rc = sr_node_start(node, now)) != 0)
		goto out;
	for (sr_node_status(node, &st); rc == 0 && st.role != SR_LEADER;)
		rc = advance(node, &now, &st);
	if (rc == 0)
		printf("leader of term %" PRIu64 " at t=%" PRIu64 " ms\n",
		       st.term, now);
	for (delta = 1; rc == 0 && delta <= 5; delta++)
		rc = sr_node_propose(node, &delta, sizeof delta, NULL, NULL);
	/* One voter: its own durable log is a majority. */
	for (sr_node_status(node, &st);
	     rc == 0 && st.applied_index < st.last_index;)
		rc = advance(node, &now, &st);
	if (rc == 0)
		printf("counter = %" PRId64 "\n", counter);
out:
	if (rc != 0)
		fprintf(stderr, "embed: %s\n", sr_strerror(rc));
	if (node != NULL)
		sr_node_destroy(node); /* before the store it uses */
	sr_mem_destroy(mem);
	return rc != 0;
}
