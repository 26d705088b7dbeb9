#!/usr/bin/env bash
# A local Citus cluster with phi_guard for the benchmark and by hand: a
# coordinator and N workers (default 2) under DIR, each listening on
# 127.0.0.1 and a Unix socket in DIR only, all holding the same master key
# (DIR/master.key), run as $PG_USER when called as root.
#
#   scripts/citus-cluster.sh start DIR [WORKERS] [BASE_PORT]
#   scripts/citus-cluster.sh stop DIR
#
# start initdbs the nodes (DIR/coord, DIR/w1, ...), preloads citus and
# phi_guard, creates both extensions in database "postgres" of the
# coordinator (Citus propagates them), registers the coordinator and the
# workers, and runs phi_citus_setup().  Ports: BASE_PORT (default 5601) for
# the coordinator, then one more per worker.  stop stops every node under
# DIR and leaves the files.  The TAP suite (test/citus) starts its own
# clusters with PhiGuardCitus.pm; this script is for bench/citus.sh.
set -euo pipefail
. "$(dirname "$0")/pg-env.sh"

cmd=${1:?usage: citus-cluster.sh start|stop DIR [WORKERS] [BASE_PORT]}
dir=${2:?usage: citus-cluster.sh start|stop DIR [WORKERS] [BASE_PORT]}
workers=${3:-2}
base=${4:-5601}

nodes() { echo coord; for i in $(seq 1 "$workers"); do echo "w$i"; done; }

case $cmd in
  stop)
    for d in "$dir"/coord "$dir"/w*; do
      [ -f "$d/postmaster.pid" ] && as_pg_user "$PG_BINDIR/pg_ctl" -D "$d" -m fast -w stop >/dev/null
    done
    exit 0 ;;
  start) ;;
  *) echo "unknown command $cmd" >&2; exit 2 ;;
esac

mkdir -p "$dir"
[ "$(id -u)" -eq 0 ] && chown "$PG_USER" "$dir"
as_pg_user bash -c "$(declare -f new_master_key); new_master_key '$dir/master.key'"
port=$base
for n in $(nodes); do
  as_pg_user "$PG_BINDIR/initdb" -D "$dir/$n" -A trust -U postgres >/dev/null
  as_pg_user tee -a "$dir/$n/postgresql.conf" >/dev/null <<EOF
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
shared_preload_libraries = 'citus,phi_guard'
phi_guard.master_key_file = '$dir/master.key'
wal_level = logical
max_connections = 200
max_prepared_transactions = 200
citus.local_hostname = '127.0.0.1'
EOF
  as_pg_user "$PG_BINDIR/pg_ctl" -D "$dir/$n" -l "$dir/$n.log" -w start >/dev/null
  port=$((port + 1))
done

psql_c() { as_pg_user "$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$base" -d postgres "$@"; }
port=$((base + 1))
for n in $(nodes); do
  [ "$n" = coord ] && continue
  as_pg_user "$PG_BINDIR/psql" -X -q -h "$dir" -p "$port" -d postgres -c 'CREATE EXTENSION citus' >/dev/null
  port=$((port + 1))
done
psql_c -c 'CREATE EXTENSION citus' -c "SELECT citus_set_coordinator_host('127.0.0.1', $base)" >/dev/null
port=$((base + 1))
for n in $(nodes); do
  [ "$n" = coord ] && continue
  psql_c -c "SELECT citus_add_node('127.0.0.1', $port)" >/dev/null
  port=$((port + 1))
done
psql_c -c 'CREATE EXTENSION phi_guard' -c 'SET client_min_messages = warning' -c 'SELECT count(*) FROM phi_guard.phi_citus_setup()' >/dev/null
echo "coordinator: psql -h $dir -p $base -d postgres"
