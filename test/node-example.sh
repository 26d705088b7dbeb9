#!/usr/bin/env bash
# test/node-example.sh: the Node.js suites, against one throwaway cluster
# with phi_guard preloaded and a fresh random master key, listening on a
# Unix socket only:
#   client   clients/node      the phi-guard package (built with tsc first)
#   example  examples/node     the small Node.js service on the package
#   nextjs   examples/nextjs   the Next.js app in headless Chromium
#                              (`next build`, then `next start` on 127.0.0.1)
# Usage: test/node-example.sh [client|example|nextjs ...]  (default: all three)
#
# Each suite's packages are installed with `npm ci` from its lock file when
# node_modules is missing or older than the lock file. Uses the installed
# extension (run `make install` first), Node.js 20 or later and, for nextjs,
# Debian's chromium (scripts/ensure-deps.sh installs it). Prints each
# suite's TAP output, whose summary has "# pass N" and "# fail M" (one pair
# per suite), and the seconds each step took; exits non-zero when a test
# fails or a step cannot run. The cluster is stopped and its directory
# removed in every case. The browser suite's screenshots are kept in
# examples/nextjs/test-output/screenshots (PHI_GUARD_NEXT_OUTPUT to change).
#
# Environment: PHI_GUARD_NODE_PORT (default 5442), PHI_GUARD_NODE_TIMEOUT
# (seconds per suite, default 300), NODE (default node), NPM (default npm),
# CHROMIUM (default /usr/bin/chromium).
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/pg-env.sh

PORT=${PHI_GUARD_NODE_PORT:-5442}
NODE=${NODE:-node}
NPM=${NPM:-npm}
TIMEOUT=${PHI_GUARD_NODE_TIMEOUT:-300}   # seconds for each node --test run
export CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
export NEXT_TELEMETRY_DISABLED=1
REPO=$PWD
SUITES=("$@")
[ ${#SUITES[@]} -eq 0 ] && SUITES=(client example nextjs)
for s in "${SUITES[@]}"; do
  case "$s" in client|example|nextjs) ;; *) echo "node-example: unknown suite $s" >&2; exit 2 ;; esac
done
wants() { local s; for s in "${SUITES[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }

if ! command -v "$NODE" >/dev/null; then
  echo "node-example: $NODE not found (install Node.js 20 or later)" >&2
  exit 1
fi
if [ "$("$NODE" -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  echo "node-example: Node.js 20 or later is needed, $NODE is $("$NODE" --version)" >&2
  exit 1
fi
if [ ! -f "$("$PG_CONFIG" --sharedir)/extension/phi_guard.control" ]; then
  echo "node-example: phi_guard is not installed (run make install)" >&2
  exit 1
fi
if wants nextjs && [ ! -x "$CHROMIUM" ]; then
  echo "node-example: $CHROMIUM not found (scripts/ensure-deps.sh installs Debian's chromium)" >&2
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

# step NAME CMD...: runs CMD and prints how many seconds it took
step() {
  local name=$1 start=$SECONDS status
  shift
  "$@"
  status=$?
  echo "# node-example: $name took $((SECONDS - start)) s"
  return "$status"
}

# npm ci in folder $1 unless its node_modules is newer than its lock file
install_deps() {
  if [ -f "$1/node_modules/.package-lock.json" ] && [ "$1/node_modules/.package-lock.json" -nt "$1/package-lock.json" ]; then
    return 0
  fi
  (cd "$1" && "$NPM" ci --no-audit --no-fund >"$TMP/npm.log" 2>&1) \
    || { cat "$TMP/npm.log" >&2; fail "npm ci failed in $1"; }
}

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

# npm run build in folder $1, its output in $TMP/build.log
build() {
  (cd "$1" && "$NPM" run --silent build >"$TMP/build.log" 2>&1) || { cat "$TMP/build.log" >&2; fail "the build failed in $1"; }
}

# every suite needs the package, built
step "npm ci (clients/node)" install_deps "$REPO/clients/node"
step "tsc (clients/node)" build "$REPO/clients/node"

# run_suite NAME DIR: node --test of DIR/test/*.test.js against the cluster
failed=0
run_suite() {
  local name=$1 dir=$2 status
  echo "# node-example: suite $name ($dir)"
  (cd "$dir" && env -u PGPASSWORD -u PGSERVICE -u PGSERVICEFILE -u PGOPTIONS -u PGSSLMODE \
    PGHOST="$TMP" PGPORT="$PORT" PGUSER="$DBUSER" PGDATABASE=postgres PGAPPNAME="phi_guard_node_$name" \
    timeout --kill-after=10 "$TIMEOUT" "$NODE" --test --test-reporter=tap test/*.test.js)
  status=$?
  if [ "$status" -ne 0 ]; then
    echo "node-example: suite $name: node --test exited with status $status; last lines of the server log:" >&2
    tail -n 20 "$TMP/server.log" >&2
    failed=1
  fi
}

if wants client; then
  step "suite client" run_suite client "$REPO/clients/node"
fi
if wants example; then
  step "npm ci (examples/node)" install_deps "$REPO/examples/node"
  step "suite example" run_suite example "$REPO/examples/node"
fi
if wants nextjs; then
  step "npm ci (examples/nextjs)" install_deps "$REPO/examples/nextjs"
  step "next build" build "$REPO/examples/nextjs"
  step "suite nextjs" run_suite nextjs "$REPO/examples/nextjs"
  echo "# node-example: screenshots in ${PHI_GUARD_NEXT_OUTPUT:-$REPO/examples/nextjs/test-output}/screenshots"
fi
exit "$failed"
