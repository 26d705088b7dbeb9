#!/usr/bin/env bash
# make test: build, install, then run every test suite and print one total
# line "total: N passed, M failed".
#
# PostgreSQL refuses to run as root, so when run as root the suites run as
# the unprivileged user $PG_USER (default postgres) in a scratch copy of the
# tree that it owns; each suite starts its own temporary instance that
# listens on a Unix socket only and is stopped afterwards.
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/pg-env.sh

make -s PG_CONFIG="$PG_CONFIG" all >/dev/null && make -s PG_CONFIG="$PG_CONFIG" install >/dev/null \
  || { echo "build or install failed" >&2; exit 1; }

ROOT=$(mktemp -d /tmp/phi_guard_test.XXXXXX)
SRC=$ROOT/src
mkdir -p "$SRC" "$ROOT/tap"
tar --exclude=.git --exclude=tmp_check -cf - . | tar -C "$SRC" -xf -
write_test_conf "$ROOT"
[ "$(id -u)" -eq 0 ] && chown -R "$PG_USER" "$ROOT"

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

echo "== unit tests (src/core)"
make -s -C test/unit run 2>&1 | tee "$ROOT/unit.log"
p=$(grep -oE '^[0-9]+ passed, [0-9]+ failed' "$ROOT/unit.log" | grep -oE '^[0-9]+')
f=$(grep -oE '^[0-9]+ passed, [0-9]+ failed' "$ROOT/unit.log" | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+')
if [ -n "$p" ] && [ -n "$f" ]; then add "$p" "$f"; else echo "not ok: unit tests gave no summary"; add 0 1; fi

echo "== tools (verify_audit.py)"
/usr/bin/python3 -m unittest discover -s test/tools 2>&1 | tee "$ROOT/tools.log"
if r=$(grep -oE '^Ran [0-9]+ tests' "$ROOT/tools.log" | grep -oE '[0-9]+'); then
  if grep -qE '^OK' "$ROOT/tools.log"; then add "$r" 0
  else f=$(grep -oE '(failures|errors)=[0-9]+' "$ROOT/tools.log" | grep -oE '[0-9]+' | awk '{s+=$1} END {print s+0}'); add $((r - f)) "$f"; fi
else add 0 1; fi

echo "== every phi_* function is called by a test"
/usr/bin/python3 scripts/check-tested.py 2>&1 | tee "$ROOT/tested.log"
r=$(grep -oE '^tested: [0-9]+ passed, [0-9]+ failed' "$ROOT/tested.log")
if [ -n "$r" ]; then add "$(echo "$r" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+')" "$(echo "$r" | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+')"
else add 0 1; fi

echo "== pg_regress"
as_pg_user "$PGXS_DIR/src/test/regress/pg_regress" \
  --inputdir="$SRC" --outputdir="$ROOT/regress_out" --bindir="$PG_BINDIR" \
  --temp-instance="$ROOT/regress" --temp-config="$ROOT/phi_guard.conf" \
  --dbname=contrib_regression \
  $(cd "$SRC/sql" && ls *.sql | sed 's/\.sql$//') 2>&1 | tee "$ROOT/regress.log"
count_regress "$ROOT/regress.log"
[ -f "$ROOT/regress_out/regression.diffs" ] && cat "$ROOT/regress_out/regression.diffs"

echo "== isolation"
as_pg_user "$PGXS_DIR/src/test/isolation/pg_isolation_regress" \
  --inputdir="$SRC/test/isolation" --outputdir="$ROOT/isolation_out" --bindir="$PG_BINDIR" \
  --temp-instance="$ROOT/isolation" --temp-config="$ROOT/phi_guard.conf" \
  $(cd "$SRC/test/isolation/specs" && ls *.spec | sed 's/\.spec$//') 2>&1 | tee "$ROOT/isolation.log"
count_regress "$ROOT/isolation.log"
[ -f "$ROOT/isolation_out/regression.diffs" ] && cat "$ROOT/isolation_out/regression.diffs"

echo "== no secrets in the server logs"
key=$(tr -d ' \n' < "$ROOT/master.key")
if grep -rqiF "$key" "$ROOT/regress_out/log" "$ROOT/isolation_out/log" 2>/dev/null; then
  echo "not ok: the master key appears in a server log"; add 0 1
else
  echo "ok: the master key appears in no server log"; add 1 0
fi

# phi_guard's own messages (not the statements PostgreSQL logs because
# log_statement = all says so) never carry a context token
if /usr/bin/python3 scripts/log-tokens.py $(find "$ROOT/regress_out/log" "$ROOT/isolation_out/log" -name '*.log' 2>/dev/null); then
  echo "ok: no context token appears in a server message"; add 1 0
else
  echo "not ok: a context token appears in a server message"; add 0 1
fi

echo "== TAP (test/t)"
as_pg_user env -C "$SRC" TESTDIR="$ROOT/tap" PATH="$PG_BINDIR:$PATH" \
  PG_REGRESS="$PGXS_DIR/src/test/regress/pg_regress" \
  prove -I "$PGXS_DIR/src/test/perl" -I "$SRC/test/t" test/t/*.pl 2>&1 | tee "$ROOT/tap.log"
if t=$(grep -oE 'Tests=[0-9]+' "$ROOT/tap.log" | grep -oE '[0-9]+'); then
  f=$(grep -oE 'Failed: [0-9]+\)' "$ROOT/tap.log" | grep -oE '[0-9]+' | awk '{s+=$1} END {print s+0}')
  bad=$(grep -cE 'Wstat: [1-9]' "$ROOT/tap.log" || true)
  [ "$f" -eq 0 ] && [ "$bad" -gt 0 ] && f=$bad
  [ "$f" -eq 0 ] && ! grep -q '^Result: PASS' "$ROOT/tap.log" && f=1
  add $((t - f)) "$f"
else add 0 1; fi

echo "== pg_regress under AddressSanitizer and UBSan (scripts/asan-regress.sh)"
scripts/asan-regress.sh 2>&1 | tee "$ROOT/asan.log"
r=$(grep -oE '^asan: [0-9]+ passed, [0-9]+ failed' "$ROOT/asan.log" | tail -1)
if [ -n "$r" ]; then add "$(echo "$r" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+')" "$(echo "$r" | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+')"
else echo "not ok: the ASan run gave no summary"; add 0 1; fi

echo "== node example (examples/node)"
scripts/node-example.sh 2>&1 | tee "$ROOT/node.log"
p=$(grep -oE '^# pass [0-9]+' "$ROOT/node.log" | grep -oE '[0-9]+$')
f=$(grep -oE '^# fail [0-9]+' "$ROOT/node.log" | grep -oE '[0-9]+$')
if [ -n "$p" ] && [ -n "$f" ]; then add "$p" "$f"; else echo "not ok: the node example gave no summary"; add 0 1; fi

# libFuzzer targets (test/fuzz), when asked for (CI sets FUZZ_SECONDS);
# they need clang-14 and libclang-rt-14-dev
if [ -n "${FUZZ_SECONDS:-}" ]; then
  echo "== fuzz (test/fuzz, $FUZZ_SECONDS s per target)"
  make -s -C test/fuzz run SECONDS="$FUZZ_SECONDS" 2>&1 | tee "$ROOT/fuzz.log"
  if r=$(grep -oE '^fuzz: [0-9]+ passed, [0-9]+ failed' "$ROOT/fuzz.log"); then
    add "$(echo "$r" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+')" "$(echo "$r" | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+')"
  else echo "not ok: the fuzz targets did not build"; add 0 1; fi
fi

if [ "$failed" -eq 0 ]; then
  rm -rf "$ROOT"
else
  echo "test output kept in $ROOT"
fi
echo "total: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
