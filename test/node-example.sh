#!/usr/bin/env bash
# test/node-example.sh: run the Node.js client example's tests
# (examples/node, `node --test`) against a throwaway cluster with phi_guard
# preloaded and a fresh random master key, listening on a Unix socket only.
# Uses the installed extension (run `make install` first). Prints node's TAP
# output, whose summary has "# pass N" and "# fail M"; exits non-zero when a
# test fails or the cluster cannot be started. The cluster is stopped and its
# directory removed in every case.
#
# Environment: PHI_GUARD_NODE_PORT (default 5442), PHI_GUARD_NODE_TIMEOUT
# (seconds, default 300), NODE (default node), NPM (default npm).
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/pg-env.sh

PORT=${PHI_GUARD_NODE_PORT:-5442}
NODE=${NODE:-node}
NPM=${NPM:-npm}
TIMEOUT=${PHI_GUARD_NODE_TIMEOUT:-300}   # seconds for the whole node --test run
EXAMPLE=$PWD/examples/node

if ! command -v "$NODE" >/dev/null; then
  echo "node-example: $NODE not found (install Node.js 18 or later)" >&2
  exit 1
fi
if [ ! -f "$("$PG_CONFIG" --sharedir)/extension/phi_guard.control" ]; then
  echo "node-example: phi_guard is not installed (run make install)" >&2
  exit 1
fi

TMP=$(mktemp -d /tmp/phi_guard_node.XXXXXX)
cleanup() {
  if [ -f "$TMP/data/postmaster.pid" ]; then
    as_pg_user "$PG_BINDIR/pg_ctl" -D "$TMP/data" -m fast -w stop >/dev/null 2>&1
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$(id -u)" -eq 0 ]; then
  chown "$PG_USER" "$TMP"
  DBUSER=$PG_USER
else
  DBUSER=$(id -un)
fi

fail() { echo "node-example: $*" >&2; [ -f "$TMP/server.log" ] && tail -n 20 "$TMP/server.log" >&2; exit 1; }

as_pg_user bash -c "umask 077; od -An -N32 -tx1 /dev/urandom | tr -d ' \n' > '$TMP/master.key'" \
  || fail "cannot write the master key"
as_pg_user "$PG_BINDIR/initdb" -D "$TMP/data" -A trust -E UTF8 --locale=C.UTF-8 >"$TMP/initdb.log" 2>&1 \
  || { cat "$TMP/initdb.log" >&2; fail "initdb failed"; }
as_pg_user bash -c "cat >> '$TMP/data/postgresql.conf'" <<CONF || fail "cannot write postgresql.conf"
listen_addresses = ''
unix_socket_directories = '$TMP'
port = $PORT
shared_preload_libraries = 'phi_guard'
phi_guard.master_key_file = '$TMP/master.key'
CONF
as_pg_user "$PG_BINDIR/pg_ctl" -D "$TMP/data" -l "$TMP/server.log" -w start >/dev/null || fail "the cluster did not start"

if [ ! -d "$EXAMPLE/node_modules" ]; then
  if [ -f "$EXAMPLE/package-lock.json" ]; then
    (cd "$EXAMPLE" && "$NPM" ci --no-audit --no-fund >"$TMP/npm.log" 2>&1)
  else
    (cd "$EXAMPLE" && "$NPM" install --no-audit --no-fund >"$TMP/npm.log" 2>&1)
  fi || { cat "$TMP/npm.log" >&2; fail "npm could not install the example's dependencies"; }
fi

cd "$EXAMPLE" || fail "no $EXAMPLE"
env -u PGPASSWORD -u PGSERVICE -u PGSERVICEFILE -u PGOPTIONS -u PGSSLMODE \
  PGHOST="$TMP" PGPORT="$PORT" PGUSER="$DBUSER" PGDATABASE=postgres PGAPPNAME=phi_guard_node_example \
  timeout --kill-after=10 "$TIMEOUT" "$NODE" --test --test-reporter=tap test/*.test.js
rc=$?
if [ "$rc" -ne 0 ]; then
  echo "node-example: node --test exited with status $rc; last lines of the server log:" >&2
  tail -n 20 "$TMP/server.log" >&2
fi
exit "$rc"
