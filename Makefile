# phi_guard — PGXS build.
#
#   make demo        install what is missing, build, start a throwaway cluster, run the demo
#   make demo-stop   stop and remove the demo cluster
#   make test        build, install and run every test (unit, pg_regress, isolation, TAP)
#   make bench       run the benchmark scripts (ratios against the alternatives)
#   make fuzz        run each libFuzzer target for FUZZ_SECONDS (default 60; needs clang-14)
#
# The usual PGXS targets (all, install, installcheck) work as well.

EXTENSION  = phi_guard
EXTVERSION = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" $(EXTENSION).control)

MODULE_big = phi_guard
OBJS       = $(patsubst %.c,%.o,$(wildcard src/*.c src/*/*.c))
DATA       = $(wildcard $(EXTENSION)--*.sql)
PG_CPPFLAGS = -I$(srcdir)/src -DPHI_GUARD_VERSION=\"$(EXTVERSION)\"
SHLIB_LINK += -lcrypto

# Tests need a preloaded library and a master key, so they always run in a
# temporary instance configured by scripts/run-tests.sh (TEST_TMP).
TEST_TMP    ?= $(CURDIR)/tmp_check
REGRESS      = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql)))
REGRESS_OPTS = --temp-instance=$(TEST_TMP)/regress --temp-config=$(TEST_TMP)/phi_guard.conf
ISOLATION    = $(patsubst test/isolation/specs/%.spec,%,$(sort $(wildcard test/isolation/specs/*.spec)))
ISOLATION_OPTS = --inputdir=test/isolation --outputdir=$(TEST_TMP)/isolation_out \
                 --temp-instance=$(TEST_TMP)/isolation --temp-config=$(TEST_TMP)/phi_guard.conf
TAP_TESTS    = 1
PROVE_TESTS  = test/t/*.pl
EXTRA_CLEAN  = tmp_check results regression.diffs regression.out

PG_CONFIG ?= $(firstword $(wildcard /usr/lib/postgresql/15/bin/pg_config) pg_config)
PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)
ifneq ($(wildcard $(PGXS)),)
include $(PGXS)
else
all install installcheck:
	@echo "PostgreSQL server headers are missing: run 'make test' or 'make demo' (they install them), or apt-get install postgresql-server-dev-15 libssl-dev" >&2; exit 1
endif

.PHONY: test demo demo-stop bench unit deps fuzz

FUZZ_SECONDS ?= 60

deps:
	@bash scripts/ensure-deps.sh

unit:
	$(MAKE) -C test/unit run

test: deps
	@bash scripts/run-tests.sh

demo: deps
	@bash scripts/demo.sh start

demo-stop:
	@bash scripts/demo.sh stop

bench: deps
	@bash scripts/bench.sh

fuzz:
	$(MAKE) -C test/fuzz run SECONDS=$(FUZZ_SECONDS)
