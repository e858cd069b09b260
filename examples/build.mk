# examples/build.mk — example programs, built in the tree against the static
# library ($(STATIC)) with the same warnings as everything else, so they
# keep compiling as the API moves.  `make examples` builds them and
# `make test` depends on them.  (test/install builds embed.c a second time,
# outside the tree, against the installed copy.)
#
# An example's fragment appends its programs to EXAMPLES.  Make expands a
# rule's prerequisites when it reads the rule, so a fragment included after
# this file (examples/kvnode/build.mk) also writes `examples: <programs>`.

-include examples/embed/build.mk
-include examples/counter/build.mk

examples: $(EXAMPLES)
test: examples

.PHONY: examples
