# test/soak — `make soak`: a long run of a 3-node kvnode cluster under
# load with periodic leader kills (test/soak/soak.py; docs/testing.md,
# "Soak").  Not part of `make test`: it runs for SOAK_SECONDS (600).
#
#   make soak SOAK_SECONDS=600 SOAK_IDLE=10000 SOAK_FLAGS="--clients 50"
#
# SOAK_IDLE idle connections are held (and measured) before the load
# starts; 0 skips that phase.  Needs python3; stdlib only.

SOAK_SECONDS ?= 600
SOAK_IDLE    ?= 10000
SOAK_FLAGS   ?=

soak: $(KVNODE_BIN)
	python3 test/soak/soak.py --kvnode $(KVNODE_BIN) \
		--seconds $(SOAK_SECONDS) --idle $(SOAK_IDLE) $(SOAK_FLAGS)

.PHONY: soak
