#!/usr/bin/env bash
# phi_guard disclosure-accounting benchmark (run by bench/run.sh in a fresh
# database): what "durable before disclosure" costs a read workload.
#
# pgbench, 8 clients (-j 2), each transaction:
#   BEGIN; SELECT phi_set_context(<signed token>);
#   SELECT n, phi_decrypt(v, 'patient_values.v:' || pid || ':' || n)
#     FROM patient_values WHERE pid = <random patient>;     -- 10 values, one key
#   COMMIT;
# run with phi_guard.access_audit = 'durable' (the default: the statement's
# first value waits until the intent naming it is flushed to WAL, from
# which the audit worker writes its entry) and = 'async' (access entries queued in
# shared memory, written later), in interleaved rounds (durable async
# durable async ...), median TPS of each.  fsync is turned on for the run
# (ALTER SYSTEM + reload; reset on exit): durability without it means
# nothing.  The ratio durable / async is the figure; its target is >= 80%.
# For reference, in the same rounds: PostgreSQL's own group commit on this
# machine — the same transaction plus a one-row INSERT, access_audit
# 'async', with synchronous_commit on (pg_sync: one WAL flush per
# transaction, as durable mode needs) and off (pg_async); their ratio is
# what one flush per transaction costs PostgreSQL itself here.
# Afterwards the log must hold intent entries from the durable rounds and
# none from the async ones (else the script fails).
#
# Environment: PGHOST, PGPORT, PGUSER, PGDATABASE (from bench/run.sh).
# Knobs: DISCLOSURE_BENCH_SECONDS [15], DISCLOSURE_BENCH_ROUNDS [3],
# DISCLOSURE_BENCH_PATIENTS [1000].
# Progress goes to stderr; stdout carries only the result tables.
set -euo pipefail

ROOT_DIR=$(cd "$(dirname "$0")/.." && pwd)
PG_BINDIR=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
[ -x "$PG_BINDIR/psql" ] || PG_BINDIR=$(pg_config --bindir)
PSQL_BIN=${PSQL:-$PG_BINDIR/psql}
PGBENCH=$PG_BINDIR/pgbench
SIGNER=$ROOT_DIR/test/context/sign_context.py

: "${PGHOST:?PGHOST is not set: run this through bench/run.sh}"
: "${PGPORT:?PGPORT is not set: run this through bench/run.sh}"
: "${PGDATABASE:?PGDATABASE is not set: run this through bench/run.sh}"
export PGHOST PGPORT PGDATABASE
[ -n "${PGUSER:-}" ] && export PGUSER

SECONDS_PER_RUN=${DISCLOSURE_BENCH_SECONDS:-15}
ROUNDS=${DISCLOSURE_BENCH_ROUNDS:-3}
PATIENTS=${DISCLOSURE_BENCH_PATIENTS:-1000}
CLIENTS=8
JOBS=2
MODES=(durable async pg_sync pg_async)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/phi_disclosure_bench.XXXXXX")
FSYNC_CHANGED=0

log() { echo "-- $*" >&2; }
q() { "$PSQL_BIN" -X -q -At -v ON_ERROR_STOP=1 -c "$1"; }
qf() { "$PSQL_BIN" -X -q -At -v ON_ERROR_STOP=1 -f - "$@"; }

fsync_restore() {
  [ "$FSYNC_CHANGED" -eq 1 ] || return 0
  log "fsync back to the cluster setting"
  q "ALTER SYSTEM RESET fsync" >/dev/null
  q "SELECT pg_reload_conf()" >/dev/null
  FSYNC_CHANGED=0
}
cleanup() {
  local rc=$?
  set +e
  fsync_restore
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ "$(q "SHOW fsync")" != on ]; then
  log "fsync on (ALTER SYSTEM + reload) for the run"
  q "ALTER SYSTEM SET fsync = on" >/dev/null
  q "SELECT pg_reload_conf()" >/dev/null
  FSYNC_CHANGED=1
  for _ in $(seq 1 50); do
    [ "$(q "SHOW fsync")" = on ] && break
    sleep 0.1
  done
  [ "$(q "SHOW fsync")" = on ] || { echo "fsync did not turn on" >&2; exit 1; }
fi

############################################################################
# Set-up: one key, PATIENTS patients of 10 values each bound to their row
############################################################################
log "set-up: $PATIENTS patients x 10 values"
PEM=$(python3 "$SIGNER" pem bench_dx)
TOKEN=$(python3 "$SIGNER" token bench_dx sub=dr-bench tenant=clinic-bench \
          roles=clinician purpose=treatment jti=bench-request exp=+3500)
qf -v pem="$PEM" -v patients="$PATIENTS" >/dev/null <<'SQL'
CREATE EXTENSION phi_guard;
SELECT phi_guard.phi_key_create('bench_dx');
SELECT phi_guard.phi_context_key_add('bench_dx', :'pem');
CREATE TABLE patient_values (pid int, n int, v phi_guard.phi_ciphertext, PRIMARY KEY (pid, n));
CREATE TABLE commit_sink (pid int);
INSERT INTO patient_values
  SELECT p, n, phi_guard.phi_encrypt('value ' || p || '/' || n, 'bench_dx',
                                     'patient_values.v:' || p || ':' || n)
    FROM generate_series(1, :patients) p, generate_series(1, 10) n;
VACUUM ANALYZE patient_values;
SQL
cat > "$WORK/read.pgb" <<PGB
\\set pid random(1, $PATIENTS)
BEGIN;
SELECT phi_guard.phi_set_context('$TOKEN');
SELECT n, phi_guard.phi_decrypt(v, 'patient_values.v:' || pid || ':' || n) FROM patient_values WHERE pid = :pid;
COMMIT;
PGB
# the reference: the same transaction with a one-row write before COMMIT
sed 's/^COMMIT;$/INSERT INTO commit_sink VALUES (:pid);\nCOMMIT;/' "$WORK/read.pgb" > "$WORK/write.pgb"
grep -q '^INSERT INTO commit_sink' "$WORK/write.pgb" || { echo "write.pgb: no INSERT" >&2; exit 1; }

# one pgbench run in a mode; prints its TPS
run() { # mode seconds
  local opts script=read.pgb
  case $1 in
    durable|async) opts="-c phi_guard.access_audit=$1" ;;
    pg_sync)  opts="-c phi_guard.access_audit=async -c synchronous_commit=on"; script=write.pgb ;;
    pg_async) opts="-c phi_guard.access_audit=async -c synchronous_commit=off"; script=write.pgb ;;
  esac
  if ! PGOPTIONS="$opts" "$PGBENCH" -n -c "$CLIENTS" -j "$JOBS" \
        -T "$2" -f "$WORK/$script" > "$WORK/pgbench.out" 2> "$WORK/pgbench.err"; then
    echo "pgbench ($1) failed:" >&2
    head -n 6 "$WORK/pgbench.err" >&2
    return 1
  fi
  sed -n 's/^tps = \([0-9.]*\) (without initial connection time)$/\1/p' "$WORK/pgbench.out"
}

intents() { # entries of phase intent written from xid $1 on
  q "SELECT count(*) FROM phi_guard.audit_log
      WHERE xid >= '$1'::xid8 AND record::jsonb #>> '{detail,phase}' = 'intent'"
}

############################################################################
# Timed rounds
############################################################################
: > "$WORK/tps.tsv"
log "warm-up: 5 s in each mode"
for m in "${MODES[@]}"; do run "$m" 5 >/dev/null; done
declare -A INTENTS
for m in "${MODES[@]}"; do INTENTS[$m]=0; done
for r in $(seq 1 "$ROUNDS"); do
  for m in "${MODES[@]}"; do
    q "CHECKPOINT" >/dev/null
    xid=$(q "SELECT pg_snapshot_xmax(pg_current_snapshot())")
    tps=$(run "$m" "$SECONDS_PER_RUN")
    # the worker writes async entries within a seal interval: wait for them
    q "SELECT phi_guard.phi_audit_seal()" >/dev/null
    n=$(intents "$xid")
    INTENTS[$m]=$(( ${INTENTS[$m]} + n ))
    log "round $r/$ROUNDS $m: $tps TPS, $n intent entries"
    printf '%s\t%s\t%s\n' "$m" "$r" "$tps" >> "$WORK/tps.tsv"
  done
done

status=0
if [ "${INTENTS[durable]}" -eq 0 ]; then
  echo "ERROR: the durable rounds wrote no intent entry" >&2
  status=1
fi
for m in async pg_sync pg_async; do
  if [ "${INTENTS[$m]}" -ne 0 ]; then
    echo "ERROR: the $m rounds wrote ${INTENTS[$m]} intent entries" >&2
    status=1
  fi
done

############################################################################
# Report
############################################################################
cat > "$WORK/report.sql" <<SQL
CREATE TEMP TABLE m (mode text, round int, tps float8);
\\copy m FROM '$WORK/tps.tsv'
SQL
cat >> "$WORK/report.sql" <<'SQL'
CREATE TEMP VIEW med AS
  SELECT mode, percentile_cont(0.5) WITHIN GROUP (ORDER BY tps) AS med,
         min(tps) AS lo, max(tps) AS hi FROM m GROUP BY mode;
\pset footer off
\pset format aligned
\echo
\echo 'phi_guard disclosure accounting: durable vs async access entries'
\echo
\qecho 'pgbench, 8 clients (-j 2), fsync on; a transaction sets a signed context and'
\qecho 'decrypts the 10 values (aad-bound, one key) of one of' :patients 'patients;'
\qecho 'median of' :rounds 'interleaved runs of' :seconds 's each'
\echo
SELECT mode AS "phi_guard.access_audit",
       to_char(med, 'FM9999990.0') AS "median TPS",
       to_char(lo,  'FM9999990.0') AS "min TPS",
       to_char(hi,  'FM9999990.0') AS "max TPS"
  FROM med WHERE mode IN ('durable', 'async') ORDER BY mode DESC;

\echo 'For reference, PostgreSQL alone: the same transaction plus INSERT INTO commit_sink'
\echo '(one row), access_audit async, synchronous_commit on (one WAL flush per'
\echo 'transaction, group-committed by PostgreSQL) and off, in the same rounds:'
\echo
SELECT CASE mode WHEN 'pg_sync' THEN 'on' ELSE 'off' END AS "synchronous_commit",
       to_char(med, 'FM9999990.0') AS "median TPS",
       to_char(lo,  'FM9999990.0') AS "min TPS",
       to_char(hi,  'FM9999990.0') AS "max TPS"
  FROM med WHERE mode IN ('pg_sync', 'pg_async') ORDER BY mode DESC;
SELECT 'synchronous_commit on / off' AS "PostgreSQL's own flush per transaction",
       coalesce(round((100 * (SELECT med FROM med WHERE mode = 'pg_sync')
              / nullif((SELECT med FROM med WHERE mode = 'pg_async'), 0))::numeric, 1)::text || '%',
                'n/a') AS ratio
UNION ALL
-- async's time per transaction plus the time PostgreSQL's own flush adds to one
SELECT 'async + that flush''s cost / async',
       coalesce(round((100 / (1 + (SELECT med FROM med WHERE mode = 'async')
              * (1 / nullif((SELECT med FROM med WHERE mode = 'pg_sync'), 0)
                 - 1 / nullif((SELECT med FROM med WHERE mode = 'pg_async'), 0))))::numeric, 1)::text || '%',
                'n/a');

\echo 'Results against the targets (informational; the machine may be noisy):'
\echo
WITH r AS (SELECT round((100 * (SELECT med FROM med WHERE mode = 'durable')
                        / nullif((SELECT med FROM med WHERE mode = 'async'), 0))::numeric, 1) AS pct)
SELECT 'TPS: durable / async' AS metric,
       coalesce(pct::text || '%', 'n/a') AS measured,
       '>= 80%' AS target,
       CASE WHEN pct IS NULL THEN 'n/a' WHEN pct >= 80 THEN 'PASS' ELSE 'MISS' END AS result
  FROM r;
SQL
"$PSQL_BIN" -X -q -v ON_ERROR_STOP=1 -v seconds="$SECONDS_PER_RUN" -v rounds="$ROUNDS" \
  -v patients="$PATIENTS" -f "$WORK/report.sql"
exit "$status"
