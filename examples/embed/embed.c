/* embed.c — libseshatraft in a plain C program: one voter, the in-memory
 * store, a counter state machine; time jumps to each deadline.  Build:
 * cc embed.c $(pkg-config --cflags --libs seshatraft)  Prints: counter = 15 */
#include <seshat/mem.h>
#include <seshat/raft.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A command adds an int64_t; the result (the new value) is malloc'ed and
 * freed by whoever receives it: the proposer or free_result. */
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

static int no_send(void *ctx, const sr_msg *msg) /* one node: no peers */
{
	(void)ctx, (void)msg;
	return 0;
}

static void on_done(void *ctx, void *cookie, int status, sr_index index,
		    void *result)
{
	(void)cookie;
	if (status == 0 && result)
		printf("applied at %" PRIu64 ": %" PRId64 "\n", index,
		       *(int64_t *)result);
	free_result(ctx, result);
}

static void on_storage_done(void *node, uint64_t token, int status)
{
	sr_node_storage_done(node, token, status); /* maybe inside append() */
}

int main(void)
{
	static const sr_fsm_ops fsm = { .apply = counter_apply,
					.free_result = free_result };
	static const sr_transport_ops net = { .send = no_send };
	sr_mem_config mc = { .mode = SR_MEM_SYNC };
	sr_membership conf = { 0 };
	int64_t counter = 0;
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
	if ((rc = sr_membership_add(&conf, 1, SR_ROLE_VOTER, "local")) ||
	    (rc = sr_node_bootstrap(node, &conf)) ||
	    (rc = sr_node_start(node, now)))
		goto out;
	for (int64_t d = 1; rc == 0 && d <= 5; d++) {
		for (sr_node_status(node, &st); st.role != SR_LEADER && !rc;
		     sr_node_status(node, &st)) /* elect: jump to deadlines */
			rc = (now = sr_node_deadline(node)) > 60000
				     ? SR_ETIMEOUT
				     : sr_node_tick(node, now);
		if (rc == 0)
			rc = sr_node_propose(node, &d, sizeof d, NULL, NULL);
	}
	/* One voter: its own durable log is the majority, so all applied. */
	if (rc == 0)
		printf("counter = %" PRId64 "\n", counter);
out:
	if (rc != 0)
		fprintf(stderr, "embed: %s\n", sr_strerror(rc));
	sr_node_destroy(node); /* before the store it uses */
	sr_mem_destroy(mem);
	return rc != 0;
}
