#!/usr/bin/env bash
# Development helper: build, install and run a chosen part of the suites,
# the way test/run-tests.sh runs them all.
#
#   test/run-some.sh regress 07_audit 11_rls
#   test/run-some.sh regress                 (all of sql/)
#   test/run-some.sh isolation audit_writers (none named: all specs)
#   test/run-some.sh tap test/t/008_upgrade.pl
#   test/run-some.sh unit
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
. test/test-env.sh
suite=${1:?usage: test/run-some.sh regress|isolation|tap|unit [names...]}; shift
case "$suite" in
  regress|isolation|tap|unit) ;;
  *) echo "unknown suite $suite" >&2; exit 2 ;;
esac

prepare_scratch "${SCRATCH_PREFIX:-phi_guard_some}" || exit 1
names=()

case "$suite" in
  regress)
    [ $# -gt 0 ] || mapfile -t names < <(regress_names)
    run_regress "$@" "${names[@]}"
    rc=$?; [ -f "$ROOT/regress_out/regression.diffs" ] && cat "$ROOT/regress_out/regression.diffs" ;;
  isolation)
    [ $# -gt 0 ] || mapfile -t names < <(isolation_names)
    run_isolation "$@" "${names[@]}"
    rc=$?; [ -f "$ROOT/isolation_out/regression.diffs" ] && cat "$ROOT/isolation_out/regression.diffs" ;;
  tap)
    run_tap "$@"
    rc=$? ;;
  unit)
    make -s -C test/unit run; rc=$? ;;
esac
echo "output kept in $ROOT"
exit "$rc"
