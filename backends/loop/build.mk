# backends/loop — the epoll event loop (include/seshat/loop.h).
# Included by backends/tcp/build.mk (the top-level Makefile does not list
# this directory); the guard keeps it from being added twice.
ifndef SR_LOOP_MK
SR_LOOP_MK := 1
BACKEND_SRCS += backends/loop/loop.c
endif
