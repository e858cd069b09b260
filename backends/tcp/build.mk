# backends/tcp — the TCP transport (include/seshat/tcp.h).  It runs on the
# event loop, so it pulls in backends/loop as well.  Listed lowest layer
# first (backends/tcp/tcp_int.h tells each file's job).
-include backends/loop/build.mk
BACKEND_SRCS += backends/tcp/sha256.c backends/tcp/tcp_auth_wire.c \
		backends/tcp/tcp_addr.c backends/tcp/tcp_base.c \
		backends/tcp/tcp_queue.c backends/tcp/tcp_link.c \
		backends/tcp/tcp_auth.c backends/tcp/tcp_coalesce.c \
		backends/tcp/tcp_out.c backends/tcp/tcp_in.c backends/tcp/tcp.c
