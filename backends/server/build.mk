# backends/server — the host runtime (include/seshat/server.h): the engine,
# a store, the TCP transport and the loop wired together.  It uses every
# other backend, so it pulls in the loop as well.  Listed lowest layer
# first (backends/server/server_int.h tells each file's job).
-include backends/loop/build.mk
BACKEND_SRCS += backends/server/server_log.c backends/server/server_clock.c \
	backends/server/server_peers.c backends/server/server_glue.c \
	backends/server/server_group.c backends/server/server.c
