#!/usr/bin/env bash
# run.sh SECONDS MAX_LEN TARGET... — run each libFuzzer target for SECONDS
# seconds on a temporary copy of corpus/TARGET (the committed corpus never
# grows), with -max_len=MAX_LEN.  Crash inputs are kept in
# artifacts/TARGET/.  Prints one line per target and a final line
# "fuzz: N passed, M failed"; exits non-zero if any target failed.
set -uo pipefail
cd "$(dirname "$0")"

if [ $# -lt 3 ]; then
  echo "usage: run.sh SECONDS MAX_LEN TARGET..." >&2
  exit 2
fi
secs=$1 maxlen=$2
shift 2
case $secs in ''|*[!0-9]*|0) echo "run.sh: SECONDS must be a positive integer" >&2; exit 2 ;; esac

passed=0 failed=0
for t in "$@"; do
  if [ ! -x "./$t" ]; then
    echo "not ok $t: not built"; failed=$((failed + 1)); continue
  fi
  work=$(mktemp -d "${TMPDIR:-/tmp}/phi_guard_fuzz.XXXXXX")
  mkdir -p "$work/corpus" "artifacts/$t"
  [ -d "corpus/$t" ] && cp -R "corpus/$t/." "$work/corpus/"
  seeds=$(find "$work/corpus" -type f | wc -l)
  ./"$t" -max_total_time="$secs" -max_len="$maxlen" -timeout=30 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="artifacts/$t/" "$work/corpus" >"$work/log" 2>&1
  rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -1)
  eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/log" | tail -1)
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$work/log" | tail -1)
  units=$(find "$work/corpus" -type f | wc -l)
  if [ "$rc" -eq 0 ]; then
    echo "ok $t: ${secs}s, ${runs:-?} runs, ${eps:-?} exec/s, $cov, corpus $seeds -> $units"
    passed=$((passed + 1))
  else
    echo "not ok $t: exit $rc after ${runs:-?} runs"
    # the sanitizer or libFuzzer report, and where the crashing input was saved
    sed -n '/^==[0-9]*==ERROR\|^[^ ]*: runtime error\|^==[0-9]*== ERROR: libFuzzer/,/^SUMMARY/p' "$work/log" | head -80
    art=$(sed -n 's/.*Test unit written to //p' "$work/log" | tail -1)
    echo "input saved as test/fuzz/${art:-artifacts/$t/?}"
    echo "reproduce: make -C test/fuzz $t && test/fuzz/$t test/fuzz/${art:-artifacts/$t/FILE}"
    failed=$((failed + 1))
  fi
  rm -rf "$work"
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
