#!/usr/bin/env bash
# Install what building and testing phi_guard needs, when it is missing.
# Debian 12 with PostgreSQL 15.  As root it installs with apt-get; as anyone
# else it names the packages to install and fails.
set -euo pipefail

need=()
# pgxs.mk alone can be present without the server headers
{ [ -f /usr/lib/postgresql/15/lib/pgxs/src/makefiles/pgxs.mk ] && [ -f /usr/include/postgresql/15/server/postgres.h ]; } || need+=(postgresql-server-dev-15)
[ -x /usr/lib/postgresql/15/bin/postgres ] || need+=(postgresql-15)
[ -d /usr/share/postgresql/15/extension ] && [ -f /usr/share/postgresql/15/extension/pgcrypto.control ] || need+=(postgresql-contrib)
[ -f /usr/include/openssl/evp.h ] || need+=(libssl-dev)
command -v openssl >/dev/null || need+=(openssl)
perl -MIPC::Run -e1 2>/dev/null || need+=(libipc-run-perl)
/usr/bin/python3 -c 'import cryptography.hazmat.primitives.ciphers.aead' 2>/dev/null || need+=(python3-cryptography)
/usr/bin/python3 -c 'import psycopg2' 2>/dev/null || need+=(python3-psycopg2)
command -v gcc >/dev/null || need+=(gcc)
command -v make >/dev/null || need+=(make)
command -v runuser >/dev/null || need+=(util-linux)
# the AddressSanitizer run of the regression suite (test/asan-regress.sh)
command -v patchelf >/dev/null || need+=(patchelf)
# the Node.js client (clients/node), the examples and their tests
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
# the Next.js example's browser tests (examples/nextjs): Debian's Chromium,
# driven by playwright-core (no browser download)
[ -x /usr/bin/chromium ] || need+=(chromium)
# building Citus from the vendored source (scripts/citus-build.sh) for the
# Citus suite, unless Citus is installed
if [ ! -f /usr/lib/postgresql/15/lib/citus.so ]; then
  [ -f /usr/include/krb5.h ] || need+=(libkrb5-dev)
  [ -f /usr/include/lz4.h ] || need+=(liblz4-dev)
  [ -f /usr/include/zstd.h ] || need+=(libzstd-dev)
fi

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "phi_guard needs these Debian packages: ${need[*]}" >&2
  echo "Install them as root: apt-get install ${need[*]}" >&2
  exit 1
fi
echo "Installing: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
