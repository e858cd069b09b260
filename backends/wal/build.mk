# backends/wal — the durable file WAL (seshat/wal.h), part of the library.
# The io_uring engine is compiled only when the Makefile enables URING
# (liburing found by pkg-config, or `make URING=1`).
# The files, lowest layer first (docs/design.md, "The WAL's files").
BACKEND_SRCS += backends/wal/wal_format.c backends/wal/wal_queue.c \
                backends/wal/wal_io.c backends/wal/wal_plan.c \
                backends/wal/wal_read.c backends/wal/wal_lost.c \
                backends/wal/wal_snap.c backends/wal/wal_log.c \
                backends/wal/wal_group.c backends/wal/wal_replay.c \
                backends/wal/wal_recover.c \
                backends/wal/wal_direct.c backends/wal/wal_posix.c backends/wal/wal.c
ifeq ($(URING),1)
BACKEND_SRCS += backends/wal/wal_uring.c
endif
