#!/usr/bin/env bash
# phi_guard audit-log benchmark (run by bench/run.sh in a fresh database).
#
# Four measurements, each against the alternatives an application would
# otherwise write itself:
#
#   1. write throughput: pgbench, 8 clients (and 32 for the unaudited and
#      phi_guard variants), synchronous_commit = on, fsync on,
#      one single-row INSERT per transaction into a `patients` table that is
#      (a) not audited, (b) audited by phi_guard, (c) audited by a plain
#      plpgsql jsonb trigger, (d) audited by a plpgsql hash chain with a
#      locked chain-head row.  Interleaved rounds (a b c d a b c d ...),
#      median TPS.  At 8 clients also (e) the unaudited INSERT plus one
#      more row of an audit entry's shape and size (273 characters and a
#      32-byte hash) written by the same statement in plain SQL: what
#      PostgreSQL itself pays for one more row per transaction, the
#      reference for any audit that writes its entry in the transaction.
#   2. bulk insert: INSERT ... SELECT FROM generate_series(1, 200000) into each
#      variant (the hash chain: 20,000 rows), interleaved rounds, median time;
#      and (e) again: the same rows plus one row the size of a compact entry
#      (97 characters and a 32-byte hash) per row, by the same statement.
#   3. phi_audit_verify() throughput over >= 500,000 sealed entries.
#   4. sealing lag: a rate-limited writer offers 52,000 audited rows/s for
#      20 s; every 0.5 s a sampler records the sealed frontier
#      (max(xid_hi) of phi_guard.audit_block); afterwards the lag at each
#      sample is computed as sample time - ts of the oldest entry that was
#      unsealed at that time.
#
# Part 4 runs first (while the audit log is still small), then 1, 2, 3; the
# tables are printed in the order 1 2 3 4.  Only ratios between cases of this
# same run mean anything.  Targets are informational: a MISS never fails the
# script.  The script fails (exit 1, after measuring the alternatives) when
# the phi_guard audit functions are missing or a phi_guard step errors.
#
# Parts 1 and 4 turn fsync on for the cluster (ALTER SYSTEM + reload; fsync is
# a sighup setting) and run their sessions with synchronous_commit = on; the
# setting is reset on exit.  Parts 2 and 3 run with the cluster's own settings
# (the bench cluster: fsync off), so they measure CPU and WAL volume.
#
# Environment: PGHOST, PGPORT, PGUSER, PGDATABASE (from bench/run.sh).
# Knobs (defaults in brackets): AUDIT_BENCH_TPS_SECONDS [10],
# AUDIT_BENCH_ROUNDS [3], AUDIT_BENCH_SEAL_SECONDS [20],
# AUDIT_BENCH_SEAL_RATE [52000 rows/s], AUDIT_BENCH_FSYNC [on | keep].
# The targets are issue 14's: TPS >= 90% of unaudited at 8 and 32 clients,
# bulk <= 1.5x, verify >= 1.5M entries/s, sealing >= 50,000 entries/s with
# a lag under 2 s.
#
# Progress goes to stderr; stdout carries only the result tables.
set -euo pipefail

PG_BINDIR=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
[ -x "$PG_BINDIR/psql" ] || PG_BINDIR=$(pg_config --bindir)
PSQL_BIN=${PSQL:-$PG_BINDIR/psql}
PGBENCH=$PG_BINDIR/pgbench

: "${PGHOST:?PGHOST is not set: run this through bench/run.sh}"
: "${PGPORT:?PGPORT is not set: run this through bench/run.sh}"
: "${PGDATABASE:?PGDATABASE is not set: run this through bench/run.sh}"
export PGHOST PGPORT PGDATABASE
[ -n "${PGUSER:-}" ] && export PGUSER

TPS_SECONDS=${AUDIT_BENCH_TPS_SECONDS:-10}
ROUNDS=${AUDIT_BENCH_ROUNDS:-3}
TPS_CLIENTS=8
TPS_JOBS=2
BULK_ROWS=200000
CHAIN_ROWS=20000
VERIFY_MIN_ENTRIES=500000
SEAL_SECONDS=${AUDIT_BENCH_SEAL_SECONDS:-20}
SEAL_RATE=${AUDIT_BENCH_SEAL_RATE:-52000}   # offered rows/s
SEAL_BATCH=100                              # rows per writer transaction
SEAL_CLIENTS=4
SEAL_TAIL=4                                 # seconds sampled after the writer stops
FSYNC_MODE=${AUDIT_BENCH_FSYNC:-on}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/phi_audit_bench.XXXXXX")
RESULTS=$WORK/results.tsv     # part \t case \t round \t value
: > "$RESULTS"
SAMPLER_PID=
FSYNC_CHANGED=0
PHI_ERRORS=()

log() { echo "-- $*" >&2; }

# psql, one statement (or one implicit transaction), unaligned output
q() { "$PSQL_BIN" -X -q -At -v ON_ERROR_STOP=1 -c "$1"; }
# psql, a script on stdin: every statement in its own transaction
qf() { "$PSQL_BIN" -X -q -At -v ON_ERROR_STOP=1 -f - "$@"; }

result() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >> "$RESULTS"; }

phi_error() {
  PHI_ERRORS+=("$1")
  echo "ERROR (phi_guard): $1" >&2
}

cleanup() {
  local rc=$?
  set +e
  if [ -n "$SAMPLER_PID" ]; then
    touch "$WORK/stop"
    kill "$SAMPLER_PID" 2>/dev/null
    wait "$SAMPLER_PID" 2>/dev/null
  fi
  if [ "$FSYNC_CHANGED" -eq 1 ]; then
    fsync_restore
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# fsync is a sighup setting: ALTER SYSTEM + pg_reload_conf(), then wait until
# new sessions see it.
wait_setting() { # name value
  local i
  for i in $(seq 1 50); do
    [ "$(q "SHOW $1")" = "$2" ] && return 0
    sleep 0.1
  done
  echo "$1 did not become $2 after pg_reload_conf()" >&2
  return 1
}
fsync_on() {
  [ "$FSYNC_MODE" = on ] || return 0
  [ "$(q "SHOW fsync")" = on ] && return 0
  log "fsync on (ALTER SYSTEM + reload) for the durable-commit parts"
  qf >/dev/null <<'SQL'
ALTER SYSTEM SET fsync = on;
SELECT pg_reload_conf();
SQL
  FSYNC_CHANGED=1
  wait_setting fsync on
}
fsync_restore() {
  [ "$FSYNC_CHANGED" -eq 1 ] || return 0
  log "fsync back to the cluster setting (ALTER SYSTEM RESET + reload)"
  qf >/dev/null <<'SQL'
ALTER SYSTEM RESET fsync;
SELECT pg_reload_conf();
SQL
  FSYNC_CHANGED=0
  sleep 0.3
}

# run pgbench with durable commits; prints the TPS line's number
pgbench_tps() { # script seconds clients jobs [extra args...]
  local f=$1 secs=$2 c=$3 j=$4
  shift 4
  if ! PGOPTIONS="-c synchronous_commit=on" "$PGBENCH" -n -c "$c" -j "$j" -T "$secs" "$@" \
        -f "$f" > "$WORK/pgbench.out" 2> "$WORK/pgbench.err"; then
    echo "pgbench failed:" >&2
    head -n 6 "$WORK/pgbench.err" >&2
    return 1
  fi
  local tps
  tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)$/\1/p' "$WORK/pgbench.out")
  if [ -z "$tps" ]; then
    echo "pgbench printed no tps line:" >&2
    cat "$WORK/pgbench.out" >&2
    return 1
  fi
  echo "$tps"
}

# run one statement in its own transaction; prints its time in ms (psql's
# \timing, commit included)
time_sql() { # sql [psql options...]
  local sql=$1 out
  shift
  out=$(PGOPTIONS="-c work_mem=64MB" "$PSQL_BIN" -X -v ON_ERROR_STOP=1 "$@" \
          -c '\timing on' -c "$sql") || return 1
  sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' <<< "$out" | tail -n 1
}

############################################################################
# Set-up
############################################################################
log "set-up"
if ! q "CREATE EXTENSION IF NOT EXISTS phi_guard" >/dev/null; then
  echo "ERROR: CREATE EXTENSION phi_guard failed" >&2
fi
have() { [ "$(q "SELECT to_regprocedure('$1') IS NOT NULL")" = t ]; }
have_rel() { [ "$(q "SELECT to_regclass('$1') IS NOT NULL")" = t ]; }

HAVE_PHI=1
for fn in 'phi_guard.phi_audit_enable(regclass)' 'phi_guard.phi_audit_seal()' \
          'phi_guard.phi_audit_verify(jsonb)'; do
  if ! have "$fn"; then
    HAVE_PHI=0
    phi_error "function $fn does not exist: the phi_guard audit log is not built/installed yet"
  fi
done
for rel in phi_guard.audit_log phi_guard.audit_block; do
  if ! have_rel "$rel"; then
    HAVE_PHI=0
    phi_error "table $rel does not exist"
  fi
done
if [ "$HAVE_PHI" -eq 0 ]; then
  echo "ERROR: phi_guard audit API missing; measuring only the alternatives, the script will exit 1" >&2
fi

# The four variants of the same table; the trigger functions of the
# alternatives are the classic designs.
set_variants() {
  if [ "$HAVE_PHI" -eq 1 ]; then VARIANTS=(plain phi jsonb chain); else VARIANTS=(plain jsonb chain); fi
}
set_variants

make_table() { # name
  q "CREATE TABLE $1 (id bigserial PRIMARY KEY, tenant text, name text, ssn text,
                      created_at timestamptz DEFAULT now())" >/dev/null
}
for v in plain phi jsonb chain row; do make_table "p_$v"; done
make_table p_seal
# (e) the reference: one more row of an audit_log row's shape per INSERT
q "CREATE TABLE row_log (id bigint NOT NULL, xid xid8 NOT NULL, record text NOT NULL,
                        entry_hash bytea NOT NULL)" >/dev/null

qf >/dev/null <<'SQL'
-- (c) plain jsonb audit trigger: one AFTER ROW trigger, one audit row per row
CREATE TABLE jsonb_audit (
  id        bigserial PRIMARY KEY,
  ts        timestamptz NOT NULL DEFAULT now(),
  db_user   text NOT NULL DEFAULT session_user,
  tbl       text NOT NULL,
  op        text NOT NULL,
  row_data  jsonb
);
CREATE FUNCTION jsonb_audit_trg() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    INSERT INTO jsonb_audit (tbl, op, row_data) VALUES (TG_TABLE_NAME, TG_OP, to_jsonb(OLD));
  ELSE
    INSERT INTO jsonb_audit (tbl, op, row_data) VALUES (TG_TABLE_NAME, TG_OP, to_jsonb(NEW));
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER p_jsonb_audit AFTER INSERT OR UPDATE OR DELETE ON p_jsonb
  FOR EACH ROW EXECUTE FUNCTION jsonb_audit_trg();

-- (d) plpgsql hash chain: one chain-head row, locked by every writer
CREATE TABLE chain_head (last_hash bytea NOT NULL, seq bigint NOT NULL);
INSERT INTO chain_head VALUES (decode(repeat('00', 32), 'hex'), 0);
CREATE TABLE chain_log (
  seq       bigint PRIMARY KEY,
  ts        timestamptz NOT NULL DEFAULT now(),
  db_user   text NOT NULL DEFAULT session_user,
  tbl       text NOT NULL,
  op        text NOT NULL,
  row_data  text NOT NULL,
  hash      bytea NOT NULL
);
CREATE FUNCTION chain_trg() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  h bytea;
  s bigint;
  r text;
BEGIN
  SELECT last_hash, seq INTO h, s FROM chain_head FOR UPDATE;
  IF TG_OP = 'DELETE' THEN
    r := row_to_json(OLD)::text;
  ELSE
    r := row_to_json(NEW)::text;
  END IF;
  h := sha256(h || convert_to(r, 'UTF8'));
  s := s + 1;
  INSERT INTO chain_log (seq, tbl, op, row_data, hash) VALUES (s, TG_TABLE_NAME, TG_OP, r, h);
  UPDATE chain_head SET last_hash = h, seq = s;
  RETURN NULL;
END
$$;
CREATE TRIGGER p_chain_audit AFTER INSERT OR UPDATE OR DELETE ON p_chain
  FOR EACH ROW EXECUTE FUNCTION chain_trg();
SQL

if [ "$HAVE_PHI" -eq 1 ]; then
  if ! q "SELECT phi_guard.phi_audit_enable('p_phi'); SELECT phi_guard.phi_audit_enable('p_seal')" >/dev/null; then
    phi_error "phi_audit_enable failed"
    HAVE_PHI=0
    set_variants
  fi
fi

# Seal everything committed so far (the background worker may be sealing too:
# loop until a call finds nothing left).  Keeps sealing work out of the next
# timed case.
SEAL_BROKEN=0
seal_all() {
  [ "$HAVE_PHI" -eq 1 ] || return 0
  [ "$SEAL_BROKEN" -eq 0 ] || return 1
  local i n
  for i in $(seq 1 100); do
    if ! n=$(q "SELECT phi_guard.phi_audit_seal()"); then
      SEAL_BROKEN=1
      phi_error "phi_audit_seal() failed"
      return 1
    fi
    [ "$n" = 0 ] && return 0
  done
  SEAL_BROKEN=1
  phi_error "phi_audit_seal() still sealing entries after 100 calls"
  return 1
}
settle() { seal_all || true; q "CHECKPOINT" >/dev/null; }

insert_sql() { # table rows
  if [ "$1" = p_row ]; then
    # the reference: the same rows plus one compact-entry-sized row each
    echo "WITH a AS (INSERT INTO p_row (tenant, name, ssn)
                     SELECT 'tenant-' || (g % 20), 'patient ' || g, lpad(g::text, 9, '0')
                       FROM generate_series(1, $2) g RETURNING id)
          INSERT INTO row_log SELECT a.id, pg_current_xact_id(), repeat('x', 97),
                                     sha256(a.id::text::bytea) FROM a"
    return
  fi
  echo "INSERT INTO $1 (tenant, name, ssn)
        SELECT 'tenant-' || (g % 20), 'patient ' || g, lpad(g::text, 9, '0')
          FROM generate_series(1, $2) g"
}

############################################################################
# Part 4 (run first, while the audit log is small): sealing keeps up
############################################################################
part4() {
  log "part 4: sealing lag, writer offering $SEAL_RATE rows/s for ${SEAL_SECONDS}s"
  seal_all || return 1
  cat > "$WORK/seal.pgb" <<PGB
\\set t random(1, 20)
INSERT INTO p_seal (tenant, name, ssn)
  SELECT 'tenant-' || :t, 'patient ' || g, lpad(g::text, 9, '0')
    FROM generate_series(1, $SEAL_BATCH) g;
PGB
  local start_xid t_start t_end writer_rc=0 tx_rate
  start_xid=$(q "SELECT pg_snapshot_xmax(pg_current_snapshot())")
  tx_rate=$(( (SEAL_RATE + SEAL_BATCH - 1) / SEAL_BATCH ))

  # sampler: one psql session, one read-only autocommit query every 0.5 s
  # (it never takes an xid, so it cannot hold the sealed frontier back)
  rm -f "$WORK/stop"
  ( while [ ! -e "$WORK/stop" ]; do
      echo "SELECT clock_timestamp(), (SELECT max(xid_hi) FROM phi_guard.audit_block);"
      sleep 0.5
    done | "$PSQL_BIN" -X -q -At -F $'\t' -v ON_ERROR_STOP=1 > "$WORK/samples.tsv" ) &
  SAMPLER_PID=$!

  t_start=$(q "SELECT clock_timestamp()")
  pgbench_tps "$WORK/seal.pgb" "$SEAL_SECONDS" "$SEAL_CLIENTS" 2 -R "$tx_rate" \
    > "$WORK/seal.tps" || writer_rc=1
  t_end=$(q "SELECT clock_timestamp()")
  [ "$writer_rc" -eq 0 ] && cp "$WORK/pgbench.out" "$WORK/seal.pgbench.out"
  sleep "$SEAL_TAIL"
  touch "$WORK/stop"
  wait "$SAMPLER_PID" || { SAMPLER_PID=; phi_error "the lag sampler failed"; return 1; }
  SAMPLER_PID=
  [ "$writer_rc" -eq 0 ] || { phi_error "the part 4 writer (pgbench) failed"; return 1; }

  local sched_lag
  sched_lag=$(sed -n 's/^rate limit schedule lag: avg \([0-9.]*\) (max \([0-9.]*\)) ms$/\2/p' \
                "$WORK/seal.pgbench.out")
  log "part 4: computing the lag at each sample"
  local out
  out=$(qf -v start_xid="$start_xid" -v t_start="$t_start" -v t_end="$t_end" <<SQL
CREATE TEMP TABLE seal_sample (t timestamptz, frontier xid8);
\\copy seal_sample FROM '$WORK/samples.tsv' WITH (NULL '')
-- every entry the writer produced, per transaction: how many, oldest ts
CREATE TEMP TABLE seal_xact AS
  SELECT xid, count(*) AS n, min((record::jsonb ->> 'ts')::timestamptz) AS ts
    FROM phi_guard.audit_log
   WHERE xid >= :'start_xid'::xid8
   GROUP BY xid;
-- at sample time t an entry is unsealed when its xid >= the sealed frontier
-- (or there is no block yet) and it was written by then (ts <= t)
CREATE TEMP TABLE seal_lag AS
  SELECT s.t,
         coalesce(extract(epoch FROM s.t - u.oldest), 0) AS lag,
         coalesce(u.n, 0) AS unsealed
    FROM seal_sample s,
         LATERAL (SELECT min(x.ts) AS oldest, sum(x.n) AS n
                    FROM seal_xact x
                   WHERE (s.frontier IS NULL OR x.xid >= s.frontier)
                     AND x.ts <= s.t) u
   WHERE s.t >= :'t_start'::timestamptz;
SELECT (SELECT sum(n) FROM seal_xact),
       extract(epoch FROM :'t_end'::timestamptz - :'t_start'::timestamptz),
       (SELECT count(*) FROM p_seal),
       (SELECT count(*) FROM seal_lag),
       (SELECT max(lag) FROM seal_lag),
       (SELECT avg(lag) FROM seal_lag WHERE t <= :'t_end'::timestamptz),
       (SELECT extract(epoch FROM min(t) - :'t_end'::timestamptz)
          FROM seal_lag WHERE t > :'t_end'::timestamptz AND unsealed = 0),
       (SELECT max(unsealed) FROM seal_lag);
SQL
  ) || { phi_error "part 4 analysis query failed"; return 1; }
  local entries secs rows nsamples maxlag avglag drain maxunsealed
  IFS='|' read -r entries secs rows nsamples maxlag avglag drain maxunsealed <<< "$out"
  if [ -z "$entries" ] || [ "${entries:-0}" -lt "${rows:-0}" ]; then
    phi_error "part 4: ${entries:-no} audit entries for $rows rows written to an audited table"
  fi
  result seal entries 0 "$entries"
  result seal seconds 0 "$secs"
  result seal rows 0 "$rows"
  result seal samples 0 "$nsamples"
  result seal max_lag 0 "$maxlag"
  result seal avg_lag 0 "$avglag"
  result seal drain 0 "${drain:-}"
  result seal max_unsealed 0 "$maxunsealed"
  result seal offered 0 "$SEAL_RATE"
  result seal sched_lag_ms 0 "${sched_lag:-}"
  log "part 4: $entries entries in ${secs}s, max lag ${maxlag}s over $nsamples samples"
}

############################################################################
# Part 1: pgbench TPS, single-row INSERTs, durable commits
############################################################################
# A failing phi_guard case must not cost the alternatives: drop the phi
# variant (and its partial results for this part), report it, go on.
# Returns 1 when the failing case was not the phi_guard one.
case_failed() { # part variant message
  if [ "$2" = phi ]; then
    phi_error "$3"
    local keep=() x
    for x in "${VARIANTS[@]}"; do [ "$x" = phi ] || keep+=("$x"); done
    VARIANTS=("${keep[@]}")
    sed -i "/^$1\tphi\t/d" "$RESULTS"
    return 0
  fi
  echo "ERROR: $3" >&2
  return 1
}

part1() {
  local v r tps
  set_variants
  for v in "${VARIANTS[@]}"; do
    cat > "$WORK/tps_$v.pgb" <<PGB
\\set n random(1, 999999999)
\\set t random(1, 20)
INSERT INTO p_$v (tenant, name, ssn) VALUES ('tenant-' || :t, 'patient ' || :n, lpad(:n::text, 9, '0'));
PGB
  done
  cat > "$WORK/tps_row.pgb" <<'PGB'
\set n random(1, 999999999)
\set t random(1, 20)
WITH a AS (INSERT INTO p_row (tenant, name, ssn) VALUES ('tenant-' || :t, 'patient ' || :n, lpad(:n::text, 9, '0')) RETURNING id) INSERT INTO row_log SELECT a.id, pg_current_xact_id(), repeat('x', 273), sha256(a.id::text::bytea) FROM a;
PGB
  VARIANTS+=(row)
  log "part 1: warm-up (2 s per variant)"
  for v in "${VARIANTS[@]}"; do
    pgbench_tps "$WORK/tps_$v.pgb" 2 "$TPS_CLIENTS" "$TPS_JOBS" >/dev/null \
      || case_failed tps "$v" "part 1: pgbench on p_$v failed" || return 1
  done
  settle
  for r in $(seq 1 "$ROUNDS"); do
    for v in "${VARIANTS[@]}"; do
      if tps=$(pgbench_tps "$WORK/tps_$v.pgb" "$TPS_SECONDS" "$TPS_CLIENTS" "$TPS_JOBS"); then
        result tps "$v" "$r" "$tps"
        log "part 1: round $r/$ROUNDS $v: $tps TPS"
      else
        case_failed tps "$v" "part 1: pgbench on p_$v failed" || return 1
      fi
      settle
    done
  done
}

############################################################################
# Part 2: bulk INSERT ... SELECT
############################################################################
bulk_rows() { [ "$1" = chain ] && echo "$CHAIN_ROWS" || echo "$BULK_ROWS"; }
# Part 1 again at 32 clients, unaudited against phi_guard only (the
# scripts part 1 wrote), interleaved rounds.
part1_32() {
  local v r tps
  for r in $(seq 1 "$ROUNDS"); do
    for v in plain phi; do
      [[ " ${VARIANTS[*]} " == *" $v "* ]] || continue
      if tps=$(pgbench_tps "$WORK/tps_$v.pgb" "$TPS_SECONDS" 32 "$TPS_JOBS"); then
        result tps32 "$v" "$r" "$tps"
        log "part 1 (32 clients): round $r/$ROUNDS $v: $tps TPS"
      else
        case_failed tps32 "$v" "part 1: pgbench on p_$v at 32 clients failed" || return 1
      fi
      settle
    done
  done
}

part2() {
  local v r ms rows
  set_variants
  VARIANTS+=(row)
  log "part 2: warm-up (a tenth of the rows per variant)"
  for v in "${VARIANTS[@]}"; do
    q "TRUNCATE p_$v" >/dev/null || return 1
    time_sql "$(insert_sql "p_$v" $(( $(bulk_rows "$v") / 10 )))" >/dev/null \
      || case_failed bulk "$v" "part 2: bulk insert into p_$v failed" || return 1
  done
  for r in $(seq 1 "$ROUNDS"); do
    for v in "${VARIANTS[@]}"; do
      rows=$(bulk_rows "$v")
      q "TRUNCATE p_$v" >/dev/null || return 1
      if [ "$v" = chain ]; then q "VACUUM chain_head" >/dev/null || return 1; fi
      if [ "$v" = row ]; then q "TRUNCATE row_log" >/dev/null || return 1; fi
      settle
      if ms=$(time_sql "$(insert_sql "p_$v" "$rows")") && [ -n "$ms" ]; then
        result bulk "$v" "$r" "$ms"
        log "part 2: round $r/$ROUNDS $v: $rows rows in $ms ms"
      else
        case_failed bulk "$v" "part 2: bulk insert into p_$v failed" || return 1
      fi
    done
  done
  settle
}

############################################################################
# Part 3: phi_audit_verify() throughput
############################################################################
part3() {
  local n i out line ms
  n=$(q "SELECT count(*) FROM phi_guard.audit_log") || { phi_error "count(*) FROM phi_guard.audit_log failed"; return 1; }
  while [ "$n" -lt "$VERIFY_MIN_ENTRIES" ]; do
    log "part 3: audit_log holds $n entries, adding $BULK_ROWS audited rows"
    q "$(insert_sql p_phi "$BULK_ROWS")" >/dev/null || { phi_error "loading audit entries failed"; return 1; }
    n=$(q "SELECT count(*) FROM phi_guard.audit_log")
  done
  log "part 3: sealing $n entries"
  seal_all || return 1
  q "CHECKPOINT" >/dev/null
  local vrounds=$ROUNDS
  for i in $(seq 0 "$ROUNDS"); do
    [ "$i" -gt "$vrounds" ] && break
    out=$(PGOPTIONS="-c work_mem=64MB" "$PSQL_BIN" -X -At -v ON_ERROR_STOP=1 -c '\timing on' \
           -c "SELECT ok, blocks, entries, first_bad_block, problem FROM phi_guard.phi_audit_verify()") \
      || { phi_error "phi_audit_verify() failed"; return 1; }
    line=$(grep -E '^[tf]\|' <<< "$out" | head -n 1)
    ms=$(sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' <<< "$out" | tail -n 1)
    local ok blocks entries bad problem
    IFS='|' read -r ok blocks entries bad problem <<< "$line"
    if [ -z "$ms" ] || [ -z "$line" ]; then
      phi_error "phi_audit_verify() returned no row or no timing: $out"
      return 1
    fi
    if [ "$ok" != t ]; then
      phi_error "phi_audit_verify() says the chain is broken: block ${bad:-?}: ${problem:-?}"
      return 1
    fi
    if [ "$i" -eq 0 ]; then
      log "part 3: warm-up verify: $entries entries in $blocks blocks, $ms ms"
      result verify entries 0 "$entries"
      result verify blocks 0 "$blocks"
      result verify total 0 "$(q "SELECT count(*) FROM phi_guard.audit_log")"
      # keep the run short when verification is slow: one timed round
      [ "${ms%.*}" -gt 10000 ] && vrounds=1
    else
      result verify ms "$i" "$ms"
      log "part 3: round $i/$ROUNDS: $entries entries verified in $ms ms"
    fi
  done
}

############################################################################
# Run
############################################################################
fsync_on
DURABLE_SETTINGS="fsync = $(q "SHOW fsync"), synchronous_commit = $(PGOPTIONS="-c synchronous_commit=on" q "SHOW synchronous_commit")"
log "parts 4 and 1 run with $DURABLE_SETTINGS"
if [ "$HAVE_PHI" -eq 1 ]; then
  part4 || phi_error "part 4 (sealing lag) did not complete"
fi
part1 || { echo "part 1 failed" >&2; PART1_FAILED=1; }
[ "${PART1_FAILED:-0}" -eq 1 ] || part1_32 || { echo "part 1 (32 clients) failed" >&2; PART1_FAILED=1; }
fsync_restore
part2 || { echo "part 2 failed" >&2; PART2_FAILED=1; }
if [ "$HAVE_PHI" -eq 1 ]; then
  part3 || phi_error "part 3 (verify) did not complete"
fi
# leave no dirty buffers to the next bench script
q "CHECKPOINT" >/dev/null || true

############################################################################
# Report
############################################################################
BULK_SETTINGS="fsync = $(q "SHOW fsync"), synchronous_commit = $(q "SHOW synchronous_commit")"
cat > "$WORK/report.sql" <<SQL
\\set ON_ERROR_STOP 1
CREATE TEMP TABLE m (part text, id text, round int, val float8);
\\copy m FROM '$RESULTS' WITH (NULL '')
\\set tps_seconds $TPS_SECONDS
\\set rounds $ROUNDS
\\set bulk_rows $BULK_ROWS
\\set chain_rows $CHAIN_ROWS
\\set seal_seconds $SEAL_SECONDS
\\set durable '$DURABLE_SETTINGS'
\\set bulk '$BULK_SETTINGS'
SQL
cat >> "$WORK/report.sql" <<'SQL'
CREATE TEMP TABLE variant (ord int, id text, label text);
INSERT INTO variant VALUES
  (1, 'plain', 'unaudited'),
  (2, 'phi',   'phi_guard audit'),
  (3, 'jsonb', 'plpgsql jsonb trigger'),
  (4, 'chain', 'plpgsql hash chain (locked head)'),
  (5, 'row',   'unaudited + one more audit-sized row (reference)');
CREATE TEMP VIEW med AS
  SELECT part, id,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY val) AS med,
         min(val) AS lo, max(val) AS hi, count(*) AS n
    FROM m WHERE round > 0 GROUP BY part, id;
CREATE TEMP VIEW one AS SELECT part, id, val FROM m WHERE round = 0;
CREATE FUNCTION pg_temp.verdict(val numeric, op text, bound numeric) RETURNS text
  LANGUAGE sql AS $$
  SELECT CASE WHEN val IS NULL THEN 'n/a'
              WHEN op = '>=' THEN CASE WHEN val >= bound THEN 'PASS' ELSE 'MISS' END
              WHEN op = '<=' THEN CASE WHEN val <= bound THEN 'PASS' ELSE 'MISS' END
              WHEN op = '<'  THEN CASE WHEN val <  bound THEN 'PASS' ELSE 'MISS' END
              ELSE 'info' END $$;
\pset footer off
\pset null 'n/a'

\echo
\echo 'phi_guard audit-log benchmark'
\echo
\qecho '1. pgbench, 8 clients (-j 2), one single-row INSERT per transaction,' :durable
\qecho '   median of' :rounds 'interleaved runs of' :tps_seconds 's each'
\echo
SELECT v.label AS "table",
       to_char(d.med, 'FM9999990.0') AS "median TPS",
       to_char(d.lo,  'FM9999990.0') AS "min TPS",
       to_char(d.hi,  'FM9999990.0') AS "max TPS"
  FROM variant v LEFT JOIN med d ON d.part = 'tps' AND d.id = v.id
 ORDER BY v.ord;

\qecho '2. INSERT ... SELECT FROM generate_series in one statement:' :bulk_rows 'rows (hash chain:' :chain_rows 'rows),'
\qecho '   median of' :rounds 'interleaved runs, commit included,' :bulk
\echo
SELECT v.label AS "table",
       CASE WHEN v.id = 'chain' THEN :chain_rows ELSE :bulk_rows END AS rows,
       to_char(d.med, 'FM9999990.0') AS "median ms",
       to_char(d.lo,  'FM9999990.0') AS "min ms",
       to_char(d.hi,  'FM9999990.0') AS "max ms",
       to_char(d.med * 1000 / CASE WHEN v.id = 'chain' THEN :chain_rows ELSE :bulk_rows END,
               'FM9999990.00') AS "µs/row"
  FROM variant v LEFT JOIN med d ON d.part = 'bulk' AND d.id = v.id
 ORDER BY v.ord;

\echo '3. phi_audit_verify() over every sealed entry'
\echo
SELECT (SELECT val::int8 FROM one WHERE part = 'verify' AND id = 'entries') AS entries,
       (SELECT val::int8 FROM one WHERE part = 'verify' AND id = 'blocks')  AS blocks,
       (SELECT val::int8 FROM one WHERE part = 'verify' AND id = 'total')   AS "audit_log rows",
       (SELECT to_char(med, 'FM9999990.0') FROM med WHERE part = 'verify' AND id = 'ms') AS "median ms",
       (SELECT to_char(lo, 'FM9999990.0') FROM med WHERE part = 'verify' AND id = 'ms') AS "min ms",
       (SELECT to_char(hi, 'FM9999990.0') FROM med WHERE part = 'verify' AND id = 'ms') AS "max ms";

\qecho '4. sealing lag: writer pgbench -R, 4 clients, 100-row INSERTs, for' :seal_seconds 's,' :durable
\echo '   sealed frontier sampled every 0.5 s; lag = sample time - ts of the oldest entry then unsealed'
\echo
SELECT (SELECT val::int8 FROM one WHERE part = 'seal' AND id = 'offered') AS "offered rows/s",
       (SELECT val::int8 FROM one WHERE part = 'seal' AND id = 'rows') AS "rows",
       (SELECT val::int8 FROM one WHERE part = 'seal' AND id = 'entries') AS entries,
       (SELECT to_char(val, 'FM990.00') FROM one WHERE part = 'seal' AND id = 'seconds') AS "writer s",
       (SELECT val::int8 FROM one WHERE part = 'seal' AND id = 'samples') AS samples,
       (SELECT to_char(val, 'FM990.000') FROM one WHERE part = 'seal' AND id = 'max_lag') AS "max lag s",
       (SELECT to_char(val, 'FM990.000') FROM one WHERE part = 'seal' AND id = 'avg_lag') AS "mean lag s",
       (SELECT val::int8 FROM one WHERE part = 'seal' AND id = 'max_unsealed') AS "max unsealed",
       (SELECT to_char(val, 'FM990.00') FROM one WHERE part = 'seal' AND id = 'drain')
         AS "all sealed s after writer end",
       (SELECT to_char(val, 'FM999990.0') FROM one WHERE part = 'seal' AND id = 'sched_lag_ms')
         AS "pgbench max schedule lag ms";

\echo 'Results against the targets (informational; the machine may be noisy):'
\echo
WITH t AS (SELECT max(med) FILTER (WHERE id = 'plain') AS plain,
                  max(med) FILTER (WHERE id = 'phi')   AS phi,
                  max(med) FILTER (WHERE id = 'jsonb') AS jsonb,
                  max(med) FILTER (WHERE id = 'chain') AS chain,
                  max(med) FILTER (WHERE id = 'row')   AS row1
             FROM med WHERE part = 'tps'),
     t32 AS (SELECT max(med) FILTER (WHERE id = 'plain') AS plain,
                    max(med) FILTER (WHERE id = 'phi')   AS phi
               FROM med WHERE part = 'tps32'),
     b AS (SELECT max(med) FILTER (WHERE id = 'plain') AS plain,
                  max(med) FILTER (WHERE id = 'phi')   AS phi,
                  max(med) FILTER (WHERE id = 'jsonb') AS jsonb,
                  max(med) FILTER (WHERE id = 'chain') AS chain,
                  max(med) FILTER (WHERE id = 'row')   AS row1
             FROM med WHERE part = 'bulk'),
     vf AS (SELECT (SELECT val FROM one WHERE part = 'verify' AND id = 'entries')
                   / nullif((SELECT med FROM med WHERE part = 'verify' AND id = 'ms'), 0) * 1000 AS rate),
     s AS (SELECT (SELECT val FROM one WHERE part = 'seal' AND id = 'entries')
                  / nullif((SELECT val FROM one WHERE part = 'seal' AND id = 'seconds'), 0) AS rate,
                  (SELECT val FROM one WHERE part = 'seal' AND id = 'max_lag') AS maxlag),
     r AS (
  SELECT x.* FROM t, t32, b, vf, s, LATERAL (VALUES
    (1, '1. TPS: phi_guard / unaudited',
        round((100 * t.phi / t.plain)::numeric, 1), '%', '>= 90%', '>=', 90.0),
    (1.5, '1. TPS at 32 clients: phi_guard / unaudited',
        round((100 * t32.phi / t32.plain)::numeric, 1), '%', '>= 90%', '>=', 90.0),
    (2, '1. TPS: phi_guard / plpgsql hash chain',
        round((t.phi / t.chain)::numeric, 2), 'x', '>= 4.0x', '>=', 4.0),
    (3, '1. TPS: plpgsql jsonb trigger / unaudited',
        round((100 * t.jsonb / t.plain)::numeric, 1), '%', '(issue: ~70%)', NULL, NULL),
    (4, '1. TPS: plpgsql hash chain / unaudited',
        round((100 * t.chain / t.plain)::numeric, 1), '%', '-', NULL, NULL),
    (4.1, '1. TPS: one more audit-sized row (reference) / unaudited',
        round((100 * t.row1 / t.plain)::numeric, 1), '%', '-', NULL, NULL),
    (4.2, '1. TPS: phi_guard / that reference',
        round((100 * t.phi / t.row1)::numeric, 1), '%', '-', NULL, NULL),
    (5, '2. bulk 200k: phi_guard time / unaudited',
        round((b.phi / b.plain)::numeric, 2), 'x', '<= 1.5x', '<=', 1.5),
    (6, '2. bulk 200k: jsonb trigger time / unaudited',
        round((b.jsonb / b.plain)::numeric, 2), 'x', '-', NULL, NULL),
    (6.1, '2. bulk 200k: one more compact-sized row each (reference) / unaudited',
        round((b.row1 / b.plain)::numeric, 2), 'x', '-', NULL, NULL),
    (6.2, '2. bulk 200k: phi_guard time / that reference',
        round((b.phi / b.row1)::numeric, 2), 'x', '-', NULL, NULL),
    (7, '2. bulk: hash chain per row / unaudited per row',
        round(((b.chain / :chain_rows) / (b.plain / :bulk_rows))::numeric, 1), 'x', '-', NULL, NULL),
    (8, '2. bulk: hash chain, 20,000 rows',
        round((b.chain / 1000)::numeric, 2), ' s', '(issue: 7.8 s)', NULL, NULL),
    (9, '2. bulk: hash chain linear extrapolation to 200k rows',
        round((b.chain / :chain_rows * :bulk_rows / 1000)::numeric, 1), ' s', '(lower bound)', NULL, NULL),
    (10, '3. phi_audit_verify() entries/s',
        round(vf.rate::numeric), '/s', '>= 1500000/s', '>=', 1500000),
    (11, '4. sealing: audited entries/s sustained',
        round(s.rate::numeric), '/s', '>= 50000/s', '>=', 50000),
    (12, '4. sealing: max lag',
        round(s.maxlag::numeric, 3), ' s', '< 2 s', '<', 2.0)
  ) AS x(ord, metric, val, unit, target, op, bound))
SELECT metric,
       coalesce(val::text || unit, 'n/a') AS measured,
       target,
       pg_temp.verdict(val, op, bound) AS result
  FROM r ORDER BY ord;
SQL
"$PSQL_BIN" -X -q -v ON_ERROR_STOP=1 -f "$WORK/report.sql" || { echo "the report query failed" >&2; exit 1; }

status=0
if [ ${#PHI_ERRORS[@]} -gt 0 ]; then
  echo
  echo "phi_guard audit: NOT MEASURED / FAILED:"
  printf '  - %s\n' "${PHI_ERRORS[@]}"
  echo "ERROR: the phi_guard part of bench/audit.sh failed (the alternatives above were measured)" >&2
  status=1
fi
if [ -n "${PART1_FAILED:-}" ] || [ -n "${PART2_FAILED:-}" ]; then
  echo "ERROR: a part of bench/audit.sh failed" >&2
  status=1
fi
exit "$status"
