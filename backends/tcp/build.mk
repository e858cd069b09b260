# backends/tcp — the TCP transport (include/seshat/tcp.h).  It runs on the
# event loop, so it pulls in backends/loop as well.
-include backends/loop/build.mk
BACKEND_SRCS += backends/tcp/tcp.c backends/tcp/tcp_conn.c backends/tcp/tcp_coalesce.c \
		backends/tcp/tcp_auth.c backends/tcp/sha256.c
