# Sourced by the scripts in scripts/: where PostgreSQL 15 lives, and helpers.
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
[ -x "$PG_CONFIG" ] || PG_CONFIG=$(command -v pg_config)
PG_BINDIR=$("$PG_CONFIG" --bindir)
PGXS_DIR=$(dirname "$(dirname "$(dirname "$("$PG_CONFIG" --pgxs)")")")
PG_USER=${PG_USER:-postgres}

# Run a command as the unprivileged cluster owner when we are root.
as_pg_user() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u "$PG_USER" -- "$@"
  else
    "$@"
  fi
}

# Write a fresh random master key (64 hex characters) to $1, mode 0600.
new_master_key() {
  ( umask 077; od -An -N32 -tx1 /dev/urandom | tr -d ' \n' > "$1"; echo >> "$1" )
}

# The temporary instances' configuration of the test suites, in $1: a fresh
# master key ($1/master.key) and $1/phi_guard.conf.
write_test_conf() {
  new_master_key "$1/master.key"
  cat > "$1/phi_guard.conf" <<CONF
shared_preload_libraries = 'phi_guard'
phi_guard.master_key_file = '$1/master.key'
listen_addresses = ''
# the suites seal with phi_audit_seal() only, so block numbers are stable
phi_guard.audit_seal_interval = '1h'
# log everything, so the scan can show that no secret reaches the log
log_statement = 'all'
log_min_messages = debug1
log_min_error_statement = debug1
CONF
}
