#!/usr/bin/env bash
# Build and install Citus 13.2.2 for PostgreSQL 15 from the vendored source
# when it is not installed: the Citus suite (test/citus) and bench/citus.sh
# need it, and no Debian package ships it for PostgreSQL 15.  phi_guard
# itself neither links to nor needs Citus.
#
# The source is citus-13.2.2-pg15.tar.gz (Citus v13.2.2 with a one-line
# build fix for PostgreSQL 15.14 and later; AGPL-3.0), looked for at
# $CITUS_TARBALL, then in ../shared/vendor/ beside this tree, then in
# /work/shared/vendor/ (where the development machines keep it).  Its SHA-256
# is checked.  Installing needs write access to PostgreSQL's directories
# (root); scripts/ensure-deps.sh installs the build's libraries.
set -euo pipefail
. "$(dirname "$0")/pg-env.sh"

if [ -f "$("$PG_CONFIG" --pkglibdir)/citus.so" ]; then
  exit 0
fi
sum=ac6c71469dba487b90ad0ff8dbef273f8017b9feb77530c806fe6d586dd14e13
tree=$(cd "$(dirname "$0")/.." && pwd)
tarball=${CITUS_TARBALL:-}
if [ -z "$tarball" ]; then
  for d in "$tree/../shared/vendor" /work/shared/vendor; do
    [ -f "$d/citus-13.2.2-pg15.tar.gz" ] && { tarball=$d/citus-13.2.2-pg15.tar.gz; break; }
  done
  tarball=${tarball:-$tree/../shared/vendor/citus-13.2.2-pg15.tar.gz}
fi
if [ ! -f "$tarball" ]; then
  echo "citus-build: Citus is not installed and its source is not at $tarball" >&2
  echo "citus-build: set CITUS_TARBALL to citus-13.2.2-pg15.tar.gz" >&2
  exit 1
fi
if [ "$(sha256sum "$tarball" | cut -d' ' -f1)" != "$sum" ]; then
  echo "citus-build: $tarball does not have the expected SHA-256" >&2
  exit 1
fi
work=$(mktemp -d /tmp/citus-build.XXXXXX)
trap 'rm -rf "$work"' EXIT
tar -C "$work" -xzf "$tarball"
cd "$work/citus-13.2.2"
echo "citus-build: building Citus 13.2.2 (a few minutes)"
./configure --without-libcurl PG_CONFIG="$PG_CONFIG" >"$work/configure.log" 2>&1 \
  || { tail -20 "$work/configure.log" >&2; exit 1; }
make -j"$(nproc)" with_llvm=no >"$work/make.log" 2>&1 || { tail -20 "$work/make.log" >&2; exit 1; }
make install with_llvm=no >"$work/install.log" 2>&1 || { tail -20 "$work/install.log" >&2; exit 1; }
echo "citus-build: installed in $("$PG_CONFIG" --pkglibdir)"
