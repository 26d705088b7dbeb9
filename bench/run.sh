#!/usr/bin/env bash
# make bench: start a throwaway PostgreSQL cluster with the installed
# phi_guard preloaded (run make install first), run every bench/*.sql and
# bench/*.sh script (but this runner) in name order, print their output and
# keep a copy in bench/results/<name>.txt, then write the report
# (bench/report.py).  The cluster is always stopped and removed at the end.
#
# The cluster listens on a Unix socket only (in $BENCH_DIR, port $BENCH_PORT).
# PostgreSQL refuses to run as root, so when run as root the cluster runs as
# $PG_USER (default postgres); other users run it directly.
#
# Scripts see PGHOST, PGPORT, PGUSER and PGDATABASE in their environment; each
# one gets a freshly created database.  Only the script's stdout goes to the
# results file; progress (psql NOTICEs, stderr) goes to the terminal only.
#
# The numbers are wall-clock times on whatever machine runs this: compare the
# ratios measured in the same run, not the absolute milliseconds.
set -euo pipefail
ROOT_DIR=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT_DIR/scripts/pg-env.sh"
RUNNER=$ROOT_DIR/bench/run.sh

BENCH_DIR=${BENCH_DIR:-/tmp/phi_guard_bench}
BENCH_PORT=${BENCH_PORT:-5493}
DATA=$BENCH_DIR/data
KEY=$BENCH_DIR/master.key
RESULTS=$ROOT_DIR/bench/results

pg_running() { [ -f "$DATA/postmaster.pid" ] && as_pg_user "$PG_BINDIR/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

cleanup() {
  local rc=$?
  set +e
  if [ -d "$DATA" ] && pg_running; then
    echo "== stopping the bench cluster" >&2
    as_pg_user "$PG_BINDIR/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >/dev/null 2>&1 \
      || as_pg_user "$PG_BINDIR/pg_ctl" -D "$DATA" -m immediate -w stop >/dev/null 2>&1
  fi
  rm -rf "$BENCH_DIR"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

shopt -s nullglob
scripts=("$ROOT_DIR"/bench/*.sql "$ROOT_DIR"/bench/*.sh)
shopt -u nullglob
# one list, in name order, .sql and .sh mixed, without this runner
mapfile -t scripts < <(printf '%s\n' "${scripts[@]}" | grep -vxF -e "$RUNNER" -e "" | sort)
# BENCH=name (make bench BENCH=audit) runs the scripts whose name contains it
if [ -n "${BENCH:-}" ]; then
  mapfile -t scripts < <(printf '%s\n' "${scripts[@]}" | grep -F -- "$BENCH" || true)
fi
if [ ${#scripts[@]} -eq 0 ]; then
  echo "no bench/*.sql or bench/*.sh scripts${BENCH:+ matching $BENCH}" >&2
  exit 1
fi
if [ ! -f "$("$PG_CONFIG" --sharedir)/extension/phi_guard.control" ]; then
  echo "phi_guard is not installed (run make install)" >&2
  exit 1
fi

# A leftover from an interrupted run: stop it and start over.
if [ -d "$BENCH_DIR" ]; then
  if [ -d "$DATA" ] && pg_running; then
    as_pg_user "$PG_BINDIR/pg_ctl" -D "$DATA" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$BENCH_DIR"
fi

mkdir -p "$BENCH_DIR" "$RESULTS"
chmod 755 "$BENCH_DIR"
new_master_key "$KEY"
chmod 600 "$KEY"
[ "$(id -u)" -eq 0 ] && chown -R "$PG_USER" "$BENCH_DIR"
# The postgres binaries want a current directory they can read.
cd "$BENCH_DIR"

echo "== initdb $DATA" >&2
as_pg_user "$PG_BINDIR/initdb" -D "$DATA" -A trust -U "$(as_pg_user id -un)" \
  --no-sync -E UTF8 --locale=C >/dev/null
cat >> "$DATA/postgresql.conf" <<CONF

# phi_guard bench (bench/run.sh)
listen_addresses = ''
unix_socket_directories = '$BENCH_DIR'
port = $BENCH_PORT
shared_preload_libraries = 'phi_guard'
phi_guard.master_key_file = '$KEY'
shared_buffers = 256MB
jit = off
max_parallel_workers_per_gather = 0
fsync = off
synchronous_commit = off
autovacuum = off
log_min_messages = warning
CONF

echo "== starting the bench cluster (port $BENCH_PORT, socket in $BENCH_DIR)" >&2
if ! as_pg_user "$PG_BINDIR/pg_ctl" -D "$DATA" -l "$BENCH_DIR/server.log" -w -t 60 start >/dev/null; then
  echo "the bench cluster did not start; server log:" >&2
  cat "$BENCH_DIR/server.log" >&2 || true
  exit 1
fi

PGUSER=$(as_pg_user id -un)
export PGHOST=$BENCH_DIR PGPORT=$BENCH_PORT PGUSER
export PSQL="$PG_BINDIR/psql"
status=0
for f in "${scripts[@]}"; do
  name=$(basename "$f"); name=${name%.*}
  db=bench_$name
  echo "== bench/$(basename "$f")" >&2
  as_pg_user "$PG_BINDIR/psql" -X -q -d postgres -v ON_ERROR_STOP=1 \
    -c "CREATE DATABASE \"$db\"" >/dev/null
  out=$RESULTS/$name.txt
  if [ "${f##*.}" = sql ]; then
    # psql reads the script from our stdin, so the cluster owner needs no
    # access to the source tree.
    as_pg_user "$PG_BINDIR/psql" -X -q -d "$db" -v ON_ERROR_STOP=1 -f - < "$f" \
      | tee "$out.tmp" && rc=0 || rc=$?
  else
    env PGDATABASE="$db" bash "$f" < /dev/null | tee "$out.tmp" && rc=0 || rc=$?
  fi
  if [ "$rc" -eq 0 ]; then
    mv "$out.tmp" "$out"
    echo "(saved to bench/results/$name.txt)" >&2
  else
    rm -f "$out.tmp" "$out"
    echo "bench/$(basename "$f") failed (exit $rc)" >&2
    status=1
  fi
done
# the report: bench/results.md and bench/chart.svg from bench/results/*.txt
/usr/bin/env python3 "$ROOT_DIR/bench/report.py" >&2 || status=1
exit "$status"
