#!/usr/bin/env bash
# make test: build, install, then run every test suite and print one total
# line "total: N passed, M failed".
#
# PostgreSQL refuses to run as root, so when run as root the suites run as
# the unprivileged user $PG_USER (default postgres) in a scratch copy of the
# tree that it owns; each suite starts its own temporary instance that
# listens on a Unix socket only and is stopped afterwards.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
. test/test-env.sh

prepare_scratch phi_guard_test || exit 1

echo "== unit tests (src/core)"
make -s -C test/unit run 2>&1 | tee "$ROOT/unit.log"
count_summary "$ROOT/unit.log" '' "the unit tests"

echo "== tools (test/tools: tools/*.py, bench/report.py, the test checkers)"
/usr/bin/python3 -m unittest discover -s test/tools 2>&1 | tee "$ROOT/tools.log"
if r=$(grep -oE '^Ran [0-9]+ tests' "$ROOT/tools.log" | grep -oE '[0-9]+'); then
  if grep -qE '^OK' "$ROOT/tools.log"; then add "$r" 0
  else f=$(grep -oE '(failures|errors)=[0-9]+' "$ROOT/tools.log" | grep -oE '[0-9]+' | awk '{s+=$1} END {print s+0}'); add $((r - f)) "$f"; fi
else add 0 1; fi

echo "== every phi_* function is called by a test"
/usr/bin/python3 test/check-tested.py 2>&1 | tee "$ROOT/tested.log"
count_summary "$ROOT/tested.log" 'tested: ' "check-tested.py"

echo "== pg_regress"
mapfile -t names < <(regress_names)
run_regress "${names[@]}" 2>&1 | tee "$ROOT/regress.log"
count_regress "$ROOT/regress.log"
[ -f "$ROOT/regress_out/regression.diffs" ] && cat "$ROOT/regress_out/regression.diffs"

echo "== isolation"
mapfile -t names < <(isolation_names)
run_isolation "${names[@]}" 2>&1 | tee "$ROOT/isolation.log"
count_regress "$ROOT/isolation.log"
[ -f "$ROOT/isolation_out/regression.diffs" ] && cat "$ROOT/isolation_out/regression.diffs"

# the master key in no log, and no context token in phi_guard's own
# messages (not the statements PostgreSQL logs because log_statement = all
# says so); no log to read fails both
echo "== no secrets in the server logs"
mapfile -t logs < <(find "$ROOT/regress_out/log" "$ROOT/isolation_out/log" -type f 2>/dev/null | sort)
/usr/bin/python3 test/log-scan.py --master-key "$ROOT/master.key" "${logs[@]}" 2>&1 | tee "$ROOT/logscan.log"
count_summary "$ROOT/logscan.log" 'log scan: ' "the log scan"

echo "== TAP (test/t)"
run_tap test/t/*.pl 2>&1 | tee "$ROOT/tap.log"
count_tap "$ROOT/tap.log"

echo "== Citus (test/citus: a coordinator and two workers)"
run_citus_suite

echo "== pg_regress under AddressSanitizer and UBSan (test/asan-regress.sh)"
test/asan-regress.sh 2>&1 | tee "$ROOT/asan.log"
count_summary "$ROOT/asan.log" 'asan: ' "the ASan run"

# three node --test suites, one "# pass N" / "# fail M" pair each: the
# phi-guard client, examples/node, and the Next.js browser suite
echo "== Node.js (test/node-example.sh: clients/node, examples/node, examples/nextjs in Chromium)"
test/node-example.sh 2>&1 | tee "$ROOT/node.log"
node_rc=${PIPESTATUS[0]}
n=$(grep -cE '^# pass [0-9]+' "$ROOT/node.log")
p=$(grep -oE '^# pass [0-9]+' "$ROOT/node.log" | grep -oE '[0-9]+$' | awk '{s+=$1} END {print s+0}')
f=$(grep -oE '^# fail [0-9]+' "$ROOT/node.log" | grep -oE '[0-9]+$' | awk '{s+=$1} END {print s+0}')
add "$p" "$f"
if [ "$n" -lt 3 ]; then echo "not ok: $((3 - n)) of the 3 Node.js suites gave no summary"; add 0 $((3 - n))
elif [ "$node_rc" -ne 0 ] && [ "$f" -eq 0 ]; then echo "not ok: test/node-example.sh failed"; add 0 1; fi

# libFuzzer targets (test/fuzz), when asked for (CI sets FUZZ_SECONDS);
# they need clang-14 and libclang-rt-14-dev
if [ -n "${FUZZ_SECONDS:-}" ]; then
  echo "== fuzz (test/fuzz, $FUZZ_SECONDS s per target)"
  make -s -C test/fuzz run SECONDS="$FUZZ_SECONDS" 2>&1 | tee "$ROOT/fuzz.log"
  count_summary "$ROOT/fuzz.log" 'fuzz: ' "the fuzz run"
fi

if [ "$failed" -eq 0 ]; then
  rm -rf "$ROOT"
else
  echo "test output kept in $ROOT"
fi
echo "total: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
