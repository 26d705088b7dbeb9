#!/usr/bin/env bash
# make test-citus: build and install phi_guard (and Citus from the vendored
# source when it is missing), then run the Citus suite alone (test/citus)
# and print "total: N passed, M failed".  make test runs it too.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
. test/test-env.sh

prepare_scratch phi_guard_citus || exit 1
run_citus_suite
if [ "$failed" -eq 0 ]; then rm -rf "$ROOT"; else echo "test output kept in $ROOT"; fi
echo "total: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
