# backends/mem — the in-memory log store (seshat/mem.h), part of the library.
BACKEND_SRCS += backends/mem/mem.c backends/mem/mem_snap.c
