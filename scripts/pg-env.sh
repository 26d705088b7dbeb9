# Sourced by scripts/demo.sh, bench/run.sh and the scripts in test/: where
# PostgreSQL 15 lives, and helpers.
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

