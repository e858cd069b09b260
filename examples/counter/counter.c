/* counter.c — a replicated counter: three processes on seshat/server.h.
 * Member i listens on 127.0.0.1:PORTi; whoever leads adds 1 until the
 * counter is 10.  Build: cc counter.c $(pkg-config --cflags --libs
 * seshatraft)  Run: for i in 1 2 3; do ./a.out $i /tmp/c$i 7001 7002 7003 &
 * done; wait  Prints (each member): counter = 10 */
#include <seshat/server.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define TARGET 10

struct app {
	sr_server *srv;
	int64_t counter; /* the replicated state */
	int lingered;	 /* ticks at TARGET: linger so the others learn it */
};

static int apply(void *ctx, const sr_entry *e, void **result)
{
	int64_t delta = 0; /* a command adds an int64_t */
	if (e->len == sizeof delta)
		memcpy(&delta, e->data, sizeof delta);
	((struct app *)ctx)->counter += delta;
	return *result = NULL, 0;
}

static void every_10ms(sr_loop *loop, uint64_t id, void *ctx)
{
	struct app *a = ctx;
	int64_t one = 1;
	sr_status st;
	(void)id;
	sr_server_status(a->srv, &st);
	/* Lead, with the whole log applied (so no +1 of ours is in flight,
	 * and a restart's history counts): add 1 while below TARGET. */
	if (st.role == SR_LEADER && st.applied_index == st.last_index &&
	    a->counter < TARGET)
		sr_server_propose(a->srv, &one, sizeof one, NULL, NULL);
	if (a->counter >= TARGET && ++a->lingered > 50)
		sr_server_stop(a->srv);
	else
		sr_loop_timer_add(loop, 10, every_10ms, a, NULL);
}

int main(int argc, char **argv)
{
	static const sr_fsm_ops fsm = { .apply = apply };
	static char addr[16][64];
	struct app a = { 0 };
	sr_server_config cfg;
	int rc;
	if (argc < 4)
		return fprintf(stderr, "usage: counter ID DIR PORT...\n"), 2;
	sr_server_config_init(&cfg, strtoull(argv[1], NULL, 10));
	for (int i = 1; i + 2 < argc && i <= 16; i++) {
		snprintf(addr[i - 1], 64, "127.0.0.1:%s", argv[i + 2]);
		sr_membership_add(&cfg.peers, i, SR_ROLE_VOTER, addr[i - 1]);
		if (cfg.id == (sr_id)i)
			cfg.listen_addr = addr[i - 1];
	}
	cfg.data_dir = argv[2];
	cfg.fsm = &fsm, cfg.fsm_ctx = &a;
	if ((rc = sr_server_create(&cfg, &a.srv)) == 0 &&
	    (rc = sr_server_start(a.srv)) == 0 &&
	    (rc = sr_loop_timer_add(sr_server_loop(a.srv), 10, every_10ms, &a,
				    NULL)) == 0 &&
	    (rc = sr_server_run(a.srv)) == 0)
		printf("counter = %lld\n", (long long)a.counter);
	else
		fprintf(stderr, "counter: %s\n", sr_strerror(rc));
	sr_server_destroy(a.srv);
	return rc != 0;
}
