#!/usr/bin/env bash
# Development helper: build, install and run a chosen part of the suites,
# the way scripts/run-tests.sh runs them all.
#
#   test/run-some.sh regress 07_audit 11_rls
#   test/run-some.sh isolation audit_writers
#   test/run-some.sh tap test/t/008_upgrade.pl
#   test/run-some.sh unit
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/pg-env.sh
suite=${1:?usage: test/run-some.sh regress|isolation|tap|unit [names...]}; shift

make -s PG_CONFIG="$PG_CONFIG" all >/dev/null && make -s PG_CONFIG="$PG_CONFIG" install >/dev/null \
  || { echo "build or install failed" >&2; exit 1; }

ROOT=$(mktemp -d /tmp/phi_guard_some.XXXXXX)
SRC=$ROOT/src
mkdir -p "$SRC" "$ROOT/tap"
tar --exclude=.git --exclude=tmp_check --exclude=node_modules -cf - . | tar -C "$SRC" -xf -
write_test_conf "$ROOT"
[ "$(id -u)" -eq 0 ] && chown -R "$PG_USER" "$ROOT"

case "$suite" in
  regress)
    as_pg_user "$PGXS_DIR/src/test/regress/pg_regress" \
      --inputdir="$SRC" --outputdir="$ROOT/regress_out" --bindir="$PG_BINDIR" \
      --temp-instance="$ROOT/regress" --temp-config="$ROOT/phi_guard.conf" \
      --dbname=contrib_regression "$@"
    rc=$?; [ -f "$ROOT/regress_out/regression.diffs" ] && cat "$ROOT/regress_out/regression.diffs" ;;
  isolation)
    as_pg_user "$PGXS_DIR/src/test/isolation/pg_isolation_regress" \
      --inputdir="$SRC/test/isolation" --outputdir="$ROOT/isolation_out" --bindir="$PG_BINDIR" \
      --temp-instance="$ROOT/isolation" --temp-config="$ROOT/phi_guard.conf" "$@"
    rc=$?; [ -f "$ROOT/isolation_out/regression.diffs" ] && cat "$ROOT/isolation_out/regression.diffs" ;;
  tap)
    as_pg_user env -C "$SRC" TESTDIR="$ROOT/tap" PATH="$PG_BINDIR:$PATH" \
      PG_REGRESS="$PGXS_DIR/src/test/regress/pg_regress" \
      prove -I "$PGXS_DIR/src/test/perl" -I "$SRC/test/t" "$@"
    rc=$? ;;
  unit)
    make -s -C test/unit run; rc=$? ;;
  *) echo "unknown suite $suite" >&2; exit 2 ;;
esac
echo "output kept in $ROOT"
exit $rc
