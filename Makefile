# libseshatraft — top-level build.
#
#   make                 libseshatraft.a and libseshatraft.so (+ backends)
#   make test            every test; ends with "N passed, N failed"
#   make sim SEEDS=n     n simulator seeds
#   make explore         the bounded exhaustive explorer (EXPLORE_SECONDS=60)
#   make soak            kvnode under load with leader kills (SOAK_SECONDS=600)
#   make jepsen          the fault-injection tester (JEPSEN_SECONDS=60 SEED=s)
#   make bench           benchmarks
#   make bench-scale     idle cost of 1..4096 Raft groups per process
#   make install         PREFIX=/usr/local DESTDIR=
#   make format          clang-format the tree
#
# Each backend and test suite adds itself through a fragment
# (backends/*/build.mk, test/*/build.mk) so that the pieces stay separate.

CC      ?= cc
AR      ?= ar
PREFIX  ?= /usr/local
LIBDIR  ?= $(PREFIX)/lib
INCDIR  ?= $(PREFIX)/include
# make KV_BUG=stale-reads|leader-reads|early-ack builds kvnode with a bug
# injected on purpose (examples/kvnode/requests.c, cmds.c), in its own BUILD
# directory, to show that test/jepsen catches it (docs/testing.md).  Never
# for real use.
KV_BUG  ?=
ifneq ($(KV_BUG),)
ifeq ($(filter $(KV_BUG),stale-reads leader-reads early-ack),)
$(error KV_BUG must be stale-reads, leader-reads or early-ack)
endif
BUILD   ?= build-bug-$(KV_BUG)
KV_BUG_FLAG = -DKV_BUG_$(subst -,_,$(shell echo $(KV_BUG) | tr a-z A-Z))
endif
BUILD   ?= build

VERSION  = 0.1.0
SOMAJOR  = 0

WARN    = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
          -Wpointer-arith -Wformat=2 -Wundef
OPT     ?= -O2 -g
SAN     ?=
CFLAGS_BASE = -std=c11 -D_GNU_SOURCE $(WARN) $(OPT) $(SAN) -Iinclude
# -Ilib: the engine and the backends include the internal layer as
# "internal/<name>.h" (lib/internal/, never installed).
LIB_CFLAGS  = $(CFLAGS_BASE) -Ilib -fPIC -fvisibility=hidden -DSR_BUILDING_LIBRARY
TEST_CFLAGS = $(CFLAGS_BASE) -Ilib -Itest
LDLIBS_ALL  = -lpthread

# io_uring: auto-detected, or forced with URING=1 / URING=0.
URING ?= $(shell pkg-config --exists liburing 2>/dev/null && echo 1 || echo 0)
ifeq ($(URING),1)
LIB_CFLAGS  += -DSR_HAVE_URING $(shell pkg-config --cflags liburing 2>/dev/null)
TEST_CFLAGS += -DSR_HAVE_URING
URING_LIBS   = $(shell pkg-config --libs liburing 2>/dev/null || echo -luring)
endif

LIB_SRCS     = $(wildcard lib/*.c)
BACKEND_SRCS =
-include backends/mem/build.mk
-include backends/wal/build.mk
-include backends/tcp/build.mk
-include backends/server/build.mk

ALL_LIB_SRCS = $(LIB_SRCS) $(BACKEND_SRCS)
LIB_OBJS     = $(patsubst %.c,$(BUILD)/obj/%.o,$(ALL_LIB_SRCS))

STATIC  = $(BUILD)/libseshatraft.a
SHARED  = $(BUILD)/libseshatraft.so.$(VERSION)
SONAME  = libseshatraft.so.$(SOMAJOR)

TESTS        =
TEST_SCRIPTS =
BENCHES      =
.DEFAULT_GOAL := all

all: $(STATIC) $(SHARED) $(BUILD)/seshatraft.pc

$(BUILD)/obj/%.o: %.c $(wildcard include/seshat/*.h) $(wildcard lib/*.h lib/internal/*.h) $(wildcard backends/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) -c $< -o $@

# The static archive holds the engine as one relocatable object whose hidden
# symbols are made local (so internal names such as repl_tick can never clash
# with a program's own), plus each backend's objects, so a static link pulls
# only the backends a program uses.
CORE_OBJS    = $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRCS))
BACKEND_OBJS = $(patsubst %.c,$(BUILD)/obj/%.o,$(BACKEND_SRCS))
CORE_RELOC   = $(BUILD)/obj/seshatraft-core.o

$(CORE_RELOC): $(CORE_OBJS)
	$(LD) -r -o $@ $^
	objcopy --localize-hidden $@

# A backend named in RELOC_BACKENDS goes into the archive the same way, as
# one relocatable object with its hidden symbols made local (its internal
# names, wal_io_pwrite_all and the like, carry no sr_ prefix).
RELOC_BACKENDS = mem tcp server wal
RELOC_OBJS     = $(patsubst %,$(BUILD)/obj/seshatraft-%.o,$(RELOC_BACKENDS))
PLAIN_BACKEND_OBJS = $(filter-out $(patsubst %,$(BUILD)/obj/backends/%/%.o,$(RELOC_BACKENDS)),$(BACKEND_OBJS))

define RELOC_RULE
$(BUILD)/obj/seshatraft-$(1).o: $(filter $(BUILD)/obj/backends/$(1)/%,$(BACKEND_OBJS))
	$$(LD) -r -o $$@ $$^
	objcopy --localize-hidden $$@
endef
$(foreach b,$(RELOC_BACKENDS),$(eval $(call RELOC_RULE,$(b))))

$(STATIC): $(CORE_RELOC) $(RELOC_OBJS) $(PLAIN_BACKEND_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && $(AR) rcs $@ $^

$(SHARED): $(LIB_OBJS)
	$(CC) -shared -Wl,-soname,$(SONAME) -o $@ $^ $(LDLIBS_ALL) $(URING_LIBS) $(SAN)
	ln -sf libseshatraft.so.$(VERSION) $(BUILD)/$(SONAME)
	ln -sf $(SONAME) $(BUILD)/libseshatraft.so

$(BUILD)/seshatraft.pc: pkgconfig/seshatraft.pc.in Makefile
	@mkdir -p $(dir $@)
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' -e 's|@INCDIR@|$(INCDIR)|g' \
	    -e 's|@VERSION@|$(VERSION)|g' -e 's|@LIBS_PRIVATE@|$(LDLIBS_ALL) $(URING_LIBS)|g' $< > $@

# Test programs: test/<suite>/build.mk append to TESTS (binaries run with no
# arguments) and TEST_SCRIPTS (shell scripts).  Every test program prints
# "N passed, N failed" as its last line; test/run-all sums them.
-include test/unit/build.mk
-include test/sim/build.mk
-include test/explore/build.mk
-include test/wal/build.mk
-include test/tcp/build.mk
-include test/server/build.mk
-include test/install/build.mk
-include examples/build.mk
-include examples/kvnode/build.mk
-include bench/build.mk
-include test/soak/build.mk
-include test/jepsen/build.mk

TEST_LIBS = $(STATIC) $(LDLIBS_ALL) $(URING_LIBS)

# libFuzzer targets: fragments append sources to FUZZ_SRCS (one target per
# file, each defining LLVMFuzzerTestOneInput).  `make fuzz` builds them with
# clang and runs each for FUZZ_SECONDS on a corpus under build/fuzz/.
FUZZ_SECONDS ?= 30
FUZZ_CC      ?= clang
FUZZ_FLAGS    = -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
                -fno-sanitize-recover=undefined -Iinclude -Ilib -Itest $(if $(filter 1,$(URING)),-DSR_HAVE_URING)
FUZZ_BINS     = $(patsubst %.c,$(BUILD)/fuzz/%,$(notdir $(FUZZ_SRCS)))

define FUZZ_RULE
# (a target may #include the sources beside it: they are prerequisites too)
$(BUILD)/fuzz/$(basename $(notdir $(1))): $(1) $$(ALL_LIB_SRCS) $$(wildcard include/seshat/*.h lib/*.h lib/internal/*.h backends/*/*.h $(dir $(1))*.c $(dir $(1))*.h)
	@mkdir -p $$(dir $$@)
	$$(FUZZ_CC) $$(FUZZ_FLAGS) -o $$@ $(1) $$(ALL_LIB_SRCS) -lpthread $$(URING_LIBS)
endef
$(foreach f,$(FUZZ_SRCS),$(eval $(call FUZZ_RULE,$(f))))

fuzz: $(FUZZ_BINS)
	@for f in $(FUZZ_BINS); do \
		mkdir -p $$f.corpus; \
		echo "== $$f ($(FUZZ_SECONDS)s)"; \
		$$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
			-artifact_prefix=$(BUILD)/fuzz/ $$f.corpus > $$f.log 2>&1 || \
			{ tail -n 40 $$f.log; echo "$$f failed (log: $$f.log)"; exit 1; }; \
		tail -n 3 $$f.log; \
	done

# Everything `make test` runs, built but not run (CI's second compiler).
build-tests: all $(TESTS) $(EXAMPLES)

test: all $(TESTS)
	@TEST_LOGDIR=$(BUILD)/test-logs bash test/run-all $(TESTS) $(TEST_SCRIPTS)

# The bounded exhaustive explorer (docs/explorer.md): EXPLORE_SECONDS of
# search in total, split between its profiles.
explore: all $(BUILD)/test/explore/explore
	@bash test/explore/run.sh $(BUILD)/test/explore/explore $(EXPLORE_SECONDS)

sim: $(BUILD)/test/sim/simulate
	$(BUILD)/test/sim/simulate --seeds $(or $(SEEDS),100) $(SIMFLAGS)

bench: all $(BENCHES)
	@for b in $(BENCHES); do echo "== $$b"; $$b || exit 1; done

install: all
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCDIR)/seshat $(DESTDIR)$(LIBDIR)/pkgconfig
	install -m 644 include/seshat/*.h $(DESTDIR)$(INCDIR)/seshat/
	install -m 644 $(STATIC) $(DESTDIR)$(LIBDIR)/
	install -m 755 $(SHARED) $(DESTDIR)$(LIBDIR)/
	ln -sf libseshatraft.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libseshatraft.so
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' -e 's|@INCDIR@|$(INCDIR)|g' \
	    -e 's|@VERSION@|$(VERSION)|g' -e 's|@LIBS_PRIVATE@|$(LDLIBS_ALL) $(URING_LIBS)|g' \
	    pkgconfig/seshatraft.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/seshatraft.pc
	chmod 644 $(DESTDIR)$(LIBDIR)/pkgconfig/seshatraft.pc

uninstall:
	rm -rf $(DESTDIR)$(INCDIR)/seshat
	rm -f $(DESTDIR)$(LIBDIR)/libseshatraft.* $(DESTDIR)$(LIBDIR)/pkgconfig/seshatraft.pc

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD)

.PHONY: all test build-tests sim explore bench fuzz install uninstall format format-check clean
