# shellcheck shell=bash
# Sourced by the test runners in test/ (run-tests.sh, run-some.sh,
# asan-regress.sh): scripts/pg-env.sh (where PostgreSQL 15 lives,
# as_pg_user, new_master_key) and what they share: the suites' configuration,
# the scratch copy of the tree, one runner per suite and the tally of results.
TEST_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$TEST_DIR/../scripts/pg-env.sh"

# The temporary instances' configuration, in $1: a fresh master key
# ($1/master.key) and $1/phi_guard.conf (test/phi_guard_test.conf with
# that key).
write_test_conf() {
  new_master_key "$1/master.key"
  { cat "$TEST_DIR/phi_guard_test.conf"
    echo "phi_guard.master_key_file = '$1/master.key'"
  } > "$1/phi_guard.conf"
}

# Build and install phi_guard, then set ROOT to a new /tmp/$1.XXXXXX with a
# copy of the tree in SRC=$ROOT/src, a TAP folder $ROOT/tap and the
# suites' configuration (write_test_conf), owned by $PG_USER when run as
# root (PostgreSQL refuses to run as root).  Returns non-zero when the
# build or the install fails.
prepare_scratch() {
  if ! make -s PG_CONFIG="$PG_CONFIG" all >/dev/null || ! make -s PG_CONFIG="$PG_CONFIG" install >/dev/null; then
    echo "build or install failed" >&2
    return 1
  fi
  ROOT=$(mktemp -d "/tmp/$1.XXXXXX")
  SRC=$ROOT/src
  mkdir -p "$SRC" "$ROOT/tap"
  tar --exclude=.git --exclude=tmp_check --exclude=node_modules -cf - . | tar -C "$SRC" -xf -
  write_test_conf "$ROOT"
  if [ "$(id -u)" -eq 0 ]; then chown -R "$PG_USER" "$ROOT"; fi
}

# The names of every pg_regress test (sql/*.sql) and isolation spec
# (test/isolation/specs/*.spec) of the copy of the tree, in name order.
regress_names() { local f; for f in "$SRC"/sql/*.sql; do basename "$f" .sql; done; }
isolation_names() { local f; for f in "$SRC"/test/isolation/specs/*.spec; do basename "$f" .spec; done; }

# pg_regress of the named sql/ files in a temporary instance
# ($ROOT/regress, output in $ROOT/regress_out).
run_regress() {
  as_pg_user "$PGXS_DIR/src/test/regress/pg_regress" \
    --inputdir="$SRC" --outputdir="$ROOT/regress_out" --bindir="$PG_BINDIR" \
    --temp-instance="$ROOT/regress" --temp-config="$ROOT/phi_guard.conf" \
    --dbname=contrib_regression "$@"
}

# pg_isolation_regress of the named test/isolation specs in a temporary
# instance ($ROOT/isolation, output in $ROOT/isolation_out).
run_isolation() {
  as_pg_user "$PGXS_DIR/src/test/isolation/pg_isolation_regress" \
    --inputdir="$SRC/test/isolation" --outputdir="$ROOT/isolation_out" --bindir="$PG_BINDIR" \
    --temp-instance="$ROOT/isolation" --temp-config="$ROOT/phi_guard.conf" "$@"
}

# prove of the named TAP files, from the copy of the tree.
run_tap() {
  as_pg_user env -C "$SRC" TESTDIR="$ROOT/tap" PATH="$PG_BINDIR:$PATH" \
    PG_REGRESS="$PGXS_DIR/src/test/regress/pg_regress" \
    prove -I "$PGXS_DIR/src/test/perl" -I "$SRC/test/t" -I "$SRC/test/citus" "$@"
}

# A runner's tally: add N M counts N passed and M failed tests.
passed=0; failed=0
add() { passed=$((passed + $1)); failed=$((failed + $2)); }

# pg_regress-style summary: "All N tests passed." / "M of N tests failed."
# Anything else (a runner that died) counts as one failure.
count_regress() {
  local log=$1 n m
  n=$(grep -oE 'All [0-9]+ tests passed' "$log" | grep -oE '[0-9]+' | head -1)
  if [ -n "$n" ]; then add "$n" 0; return; fi
  m=$(grep -oE '[0-9]+ of [0-9]+ tests failed' "$log" | grep -oE '^[0-9]+' | head -1)
  n=$(grep -oE '[0-9]+ of [0-9]+ tests failed' "$log" | grep -oE '[0-9]+ tests' | grep -oE '[0-9]+' | head -1)
  if [ -n "$m" ] && [ -n "$n" ]; then add $((n - m)) "$m"
  else echo "not ok: no test summary in $log"; add 0 1; fi
}

# The last "<prefix>N passed, M failed" line of a runner's log ($1, prefix
# $2); none counts as one failure of $3.
count_summary() {
  local line
  line=$(grep -oE "^$2[0-9]+ passed, [0-9]+ failed" "$1" | tail -1)
  if [ -z "$line" ]; then echo "not ok: $3 gave no summary"; add 0 1; return; fi
  line=${line#"$2"}
  add "$(echo "$line" | cut -d' ' -f1)" "$(echo "$line" | cut -d' ' -f3)"
}

# prove's summary in $1: its tests, less the failed ones; a file that died
# (non-zero wait status) or no summary at all counts as a failure.
count_tap() {
  local log=$1 t f bad
  if t=$(grep -oE 'Tests=[0-9]+' "$log" | grep -oE '[0-9]+'); then
    f=$(grep -oE 'Failed: [0-9]+\)' "$log" | grep -oE '[0-9]+' | awk '{s+=$1} END {print s+0}')
    bad=$(grep -cE 'Wstat: [1-9]' "$log" || true)
    [ "$f" -eq 0 ] && [ "$bad" -gt 0 ] && f=$bad
    [ "$f" -eq 0 ] && ! grep -q '^Result: PASS' "$log" && f=1
    add $((t - f)) "$f"
  else add 0 1; fi
}

# The Citus suite (test/citus/*.pl, each starting a coordinator and two
# workers): Citus is built from the vendored source first when it is not
# installed (scripts/citus-build.sh); no Citus is one failure, never a skip.
run_citus_suite() {
  if ! bash "$TEST_DIR/../scripts/citus-build.sh" > "$ROOT/citus-build.log" 2>&1; then
    cat "$ROOT/citus-build.log"
    echo "not ok: Citus is not installed and could not be built"
    add 0 1
    return
  fi
  run_tap test/citus/*.pl 2>&1 | tee "$ROOT/citus.log"
  count_tap "$ROOT/citus.log"
}
