# test/server — the host runtime (seshat/server.h).
#
#   test_server   three (and four) members in one process over loopback
#                 TCP: election, replication, restart on the WAL, a member
#                 added, the shared-loop, fd+process and run() modes, and
#                 the wiring mistakes refused at create
#   test_groups   many Raft groups per server (three servers, up to 48
#                 groups each): election and replication in every group
#                 over one connection per peer, leaders spread and a
#                 server holding several leaders killed, groups created
#                 and destroyed at run time, messages for unknown groups
#                 counted, heartbeat waves, restart on the shared WAL,
#                 and a server in a child process killed with SIGKILL
#                 while it leads several groups
SERVER_OUT = $(BUILD)/test/server
TESTS += $(SERVER_OUT)/test_server $(SERVER_OUT)/test_groups

$(SERVER_OUT)/%: test/server/%.c $(STATIC) test/testlib.h test/server/server_testlib.h
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -o $@ $< $(TEST_LIBS)

# The tutorial's counter, three processes (examples/counter).
ifneq ($(wildcard examples/counter/counter.c),)
TEST_SCRIPTS += test/server/counter.sh
endif

# What idle groups cost (not part of `make test`: it takes a minute and
# its figures are for docs/benchmarks.md).  `make groups-idle`, or run
# $(SERVER_OUT)/groups_idle N... (env HB_MS, WINDOW_MS, WAL_DIR, COALESCE=0).
$(SERVER_OUT)/groups_idle: test/server/groups_idle.c $(STATIC) test/server/server_testlib.h
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -o $@ $< $(TEST_LIBS)

groups-idle: $(SERVER_OUT)/groups_idle
	$(SERVER_OUT)/groups_idle

.PHONY: groups-idle
