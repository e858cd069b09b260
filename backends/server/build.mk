# backends/server — the host runtime (include/seshat/server.h): the engine,
# a store, the TCP transport and the loop wired together.  It uses every
# other backend, so it pulls in the loop as well.
-include backends/loop/build.mk
BACKEND_SRCS += backends/server/server.c backends/server/server_glue.c \
	backends/server/server_group.c backends/server/server_clock.c \
	backends/server/server_peers.c
