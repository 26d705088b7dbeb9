#!/usr/bin/env bash
# make demo / make demo-stop: a throwaway cluster with phi_guard preloaded
# and a freshly generated master key, listening on a Unix socket only.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/pg-env.sh

DEMO=${PHI_GUARD_DEMO_DIR:-/tmp/phi_guard_demo}
PORT=${PHI_GUARD_DEMO_PORT:-5499}
PSQL=("$PG_BINDIR/psql" -X -h "$DEMO" -p "$PORT")

# A context token (SPEC §5): a compact JWS signed with EdDSA by key file $1,
# for user $2 in tenant $3 with roles $4 (a JSON array) and purpose $5, a
# random request id (jti), valid for an hour — what an application makes per
# request (with jose etc.)
sign_context() {
  local b64url='basenc --base64url -w0' now head body
  now=$(date +%s)
  head=$(printf '{"alg":"EdDSA","kid":"demo-app"}' | $b64url | tr -d '=')
  body=$(printf '{"sub":"%s","tenant":"%s","roles":%s,"purpose":"%s","jti":"req-%s","iat":%d,"exp":%d}' \
           "$2" "$3" "$4" "$5" "$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')" "$now" $((now + 3600)) \
         | $b64url | tr -d '=')
  # Ed25519 signs in one shot: pkeyutl wants the input as a file
  printf '%s.%s' "$head" "$body" > "$DEMO/signing-input"
  printf '%s.%s.%s' "$head" "$body" \
    "$(openssl pkeyutl -sign -inkey "$1" -rawin -in "$DEMO/signing-input" | $b64url | tr -d '=')"
  rm -f "$DEMO/signing-input"
}

stop() {
  if [ -f "$DEMO/data/postmaster.pid" ]; then
    as_pg_user "$PG_BINDIR/pg_ctl" -D "$DEMO/data" -m fast -w stop >/dev/null
  fi
  rm -rf "$DEMO"
}

start() {
  make -s PG_CONFIG="$PG_CONFIG" all >/dev/null
  make -s PG_CONFIG="$PG_CONFIG" install >/dev/null
  stop
  mkdir -p "$DEMO"
  [ "$(id -u)" -eq 0 ] && chown "$PG_USER" "$DEMO"
  as_pg_user bash -c "umask 077; od -An -N32 -tx1 /dev/urandom | tr -d ' \n' > '$DEMO/master.key'"
  as_pg_user "$PG_BINDIR/initdb" -D "$DEMO/data" -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
  as_pg_user bash -c "cat >> '$DEMO/data/postgresql.conf'" <<CONF
listen_addresses = ''
unix_socket_directories = '$DEMO'
port = $PORT
shared_preload_libraries = 'phi_guard'
phi_guard.master_key_file = '$DEMO/master.key'
CONF
  as_pg_user "$PG_BINDIR/pg_ctl" -D "$DEMO/data" -l "$DEMO/server.log" -w start >/dev/null
  as_pg_user "$PG_BINDIR/createdb" -h "$DEMO" -p "$PORT" clinic
  cp scripts/demo.sql "$DEMO/demo.sql"
  [ "$(id -u)" -eq 0 ] && chown "$PG_USER" "$DEMO/demo.sql"
  # the application's context signing key (Ed25519), as an application keeps it
  ( umask 077; openssl genpkey -algorithm ed25519 -out "$DEMO/app-signing-key.pem" )
  openssl pkey -in "$DEMO/app-signing-key.pem" -pubout -out "$DEMO/app-signing-key.pub.pem"
  ( umask 077; openssl genpkey -algorithm ed25519 -out "$DEMO/attacker-key.pem" )
  as_pg_user "${PSQL[@]}" -q -v ON_ERROR_STOP=1 -d clinic \
    -v app_pub="$(cat "$DEMO/app-signing-key.pub.pem")" \
    -v tok_grey="$(sign_context "$DEMO/app-signing-key.pem" dr.grey clinic-a '["clinician"]' treatment)" \
    -v tok_house="$(sign_context "$DEMO/app-signing-key.pem" dr.house clinic-b '["clinician"]' treatment)" \
    -v tok_bill="$(sign_context "$DEMO/app-signing-key.pem" bill clinic-a '["billing"]' payment)" \
    -v tok_grey_er="$(sign_context "$DEMO/app-signing-key.pem" dr.grey clinic-a '["clinician"]' emergency)" \
    -v tok_forged="$(sign_context "$DEMO/attacker-key.pem" dr.grey clinic-b '["clinician"]' treatment)" \
    -f "$DEMO/demo.sql"
  local as=""
  [ "$(id -u)" -eq 0 ] && as="runuser -u $PG_USER -- "
  cat <<MSG

The demo cluster is still running. Explore it with:
    ${as}$PG_BINDIR/psql -h $DEMO -p $PORT clinic
Stop it (and delete its files) with:
    make demo-stop
MSG
}

case "${1:-start}" in
  start) start ;;
  stop) stop; echo "demo cluster stopped" ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
