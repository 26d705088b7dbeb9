#!/usr/bin/env bash
# asan-regress.sh: the pg_regress suite (sql/) against a phi_guard built with
# AddressSanitizer and UndefinedBehaviorSanitizer.  Prints a last line
# "asan: N passed, M failed": N and M count pg_regress's tests, plus one test
# "no sanitizer report" (failed when any ASan or UBSan report was written).
#
# How: the tree is copied and built with gcc -fsanitize=address,undefined
# (the normal build and install are not touched).  PostgreSQL finds its
# library and share directories relative to its own binary, so a private
# copy of the installation (bin, lib/*.so, share) under a temporary prefix,
# with the same relative layout as /usr, is where the ASan phi_guard.so and
# its SQL are installed (make install DESTDIR=...).  The server itself is not
# instrumented: the ASan runtime is preloaded (LD_PRELOAD) into every
# process pg_regress starts; detect_leaks=0, because the postmaster and
# backends leave memory to process exit by design.  ASan's reports go to
# files under the output directory, UBSan's to the server log; both count.
# Scope: the redzones are those of malloc (OpenSSL's buffers, big chunks),
# the stack and globals; an overrun inside a palloc'd chunk is not seen,
# because the server's memory contexts are not instrumented.
#
# Why the libraries are patched: a preloaded runtime initialises itself on
# the first call it intercepts, and the dynamic loader runs the constructors
# of the libraries that depend only on libc before the runtime's own.  On
# Debian 12 two of those (libgpg-error, pulled in by libsystemd, and
# libp11-kit, pulled in by libldap through gnutls) call malloc while they
# hold a glibc lock (_nl_state_lock in bindtextdomain, __libc_setlocale_lock
# in newlocale); the runtime's initialisation then calls dlerror(), which
# takes the same lock, and the lock is left corrupt: postgres, initdb and
# psql hang at start (or at exit, in freelocale).  So every shared library
# those programs load is copied to a private directory with the ASan runtime
# added as a dependency (patchelf --add-needed), which makes the
# loader initialise the runtime first; LD_LIBRARY_PATH selects the copies.
#
# When run as root, the cluster runs as $PG_USER (default postgres).
# Needs gcc with libasan and libubsan (Debian: gcc, libasan8, libubsan1) and
# patchelf.
set -uo pipefail
cd "$(dirname "$0")/.."
. test/test-env.sh

CC=${ASAN_CC:-gcc}
SANITIZE="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1"
LIBASAN=$("$CC" -print-file-name=libasan.so)
[ -f "$LIBASAN" ] || { echo "asan: $CC has no libasan.so" >&2; echo "asan: 0 passed, 1 failed"; exit 1; }
LIBASAN=$(readlink -f "$LIBASAN")
command -v patchelf >/dev/null || { echo "asan: patchelf is missing (apt-get install patchelf)" >&2; echo "asan: 0 passed, 1 failed"; exit 1; }

ROOT=$(mktemp -d /tmp/phi_guard_asan.XXXXXX)
SRC=$ROOT/src
mkdir -p "$SRC" "$ROOT/reports"
tar --exclude=.git --exclude=tmp_check --exclude='*.o' --exclude='*.bc' --exclude='*.so' \
  -cf - . | tar -C "$SRC" -xf -

# UBSan's runtime (libubsan, loaded with phi_guard.so) reads UBSAN_OPTIONS
# only at its first report, from /proc/self/environ, which a backend has
# overwritten with its process title by then; so its options are compiled
# into the instrumented build (this file exists in the private copy only).
# Its log_path does not take effect beside a preloaded libasan: its reports
# go to stderr, the server log, which is scanned below.
cat > "$SRC/src/zz_sanitizer_options.c" <<C
/* zz_sanitizer_options.c: written by test/asan-regress.sh into its private
 * copy of the tree; UBSan's options for the instrumented build. */
const char *__ubsan_default_options(void);

const char *
__ubsan_default_options(void)
{
	return "print_stacktrace=1:halt_on_error=1:abort_on_error=1";
}
C

# a private copy of the PostgreSQL installation, same layout below $PREFIX
PREFIX=$ROOT/pg
BINDIR=$("$PG_CONFIG" --bindir)
PKGLIBDIR=$("$PG_CONFIG" --pkglibdir)
SHAREDIR=$("$PG_CONFIG" --sharedir)
mkdir -p "$PREFIX$BINDIR" "$PREFIX$PKGLIBDIR" "$PREFIX$SHAREDIR"
cp -a "$BINDIR/." "$PREFIX$BINDIR/"
cp -a "$PKGLIBDIR"/*.so "$PREFIX$PKGLIBDIR/"
# the JIT provider (jit = on by default) needs its type bitcode beside it
[ -f "$PKGLIBDIR/llvmjit_types.bc" ] && cp -a "$PKGLIBDIR/llvmjit_types.bc" "$PREFIX$PKGLIBDIR/"
cp -a "$SHAREDIR/." "$PREFIX$SHAREDIR/"
# a copy of a phi_guard installed earlier is replaced below; remove it so a
# failed install cannot leave the uninstrumented one in place
rm -f "$PREFIX$PKGLIBDIR/phi_guard.so" "$PREFIX$SHAREDIR/extension"/phi_guard*

echo "== build with $CC $SANITIZE"
if ! make -s -C "$SRC" PG_CONFIG="$PG_CONFIG" CC="$CC" with_llvm=no COPT="$SANITIZE" all >"$ROOT/build.log" 2>&1 \
   || ! make -s -C "$SRC" PG_CONFIG="$PG_CONFIG" CC="$CC" with_llvm=no COPT="$SANITIZE" \
          DESTDIR="$PREFIX" install >>"$ROOT/build.log" 2>&1; then
  cat "$ROOT/build.log"
  echo "asan build failed; output kept in $ROOT"
  echo "asan: 0 passed, 1 failed"
  exit 1
fi
if [ "$(nm -D "$PREFIX$PKGLIBDIR/phi_guard.so" | grep -c __asan_)" -eq 0 ]; then
  echo "asan: the installed phi_guard.so is not instrumented"
  echo "asan: 0 passed, 1 failed"
  exit 1
fi

# Copies of the shared libraries the PostgreSQL programs load, each with the
# ASan runtime as a dependency (see the comment at the top).  The runtime's
# own dependencies (libc, libm, libgcc_s, the loader) cannot depend on it;
# libicudata is data only and is big.
ASANLIB=$ROOT/asanlib
mkdir -p "$ASANLIB"
for prog in "$PREFIX$BINDIR"/postgres "$PREFIX$BINDIR"/initdb "$PREFIX$BINDIR"/psql \
            "$PREFIX$BINDIR"/pg_ctl "$PGXS_DIR/src/test/regress/pg_regress" "$PREFIX$PKGLIBDIR/phi_guard.so"; do
  ldd "$prog" | awk '$2 == "=>" && $3 ~ /^\// {print $3}'
done | sort -u | while read -r lib; do
  case "$(basename "$lib")" in
    libc.so.*|libm.so.*|libgcc_s.so.*|ld-linux*|libasan.so.*|libubsan.so.*|libicudata.so.*) continue ;;
  esac
  cp -L "$lib" "$ASANLIB/" && patchelf --add-needed "$LIBASAN" "$ASANLIB/$(basename "$lib")" \
    || { echo "asan: cannot patch $lib" >&2; exit 1; }
done || { echo "asan: 0 passed, 1 failed"; exit 1; }
RUN_ENV=(env LD_PRELOAD="$LIBASAN" LD_LIBRARY_PATH="$ASANLIB")

# Find a hang (see above) in seconds instead of in initdb.
for prog in postgres initdb psql; do
  if ! timeout 20 "${RUN_ENV[@]}" ASAN_OPTIONS=detect_leaks=0 "$PREFIX$BINDIR/$prog" -V >/dev/null 2>&1; then
    echo "not ok: $prog does not run with $LIBASAN preloaded (hangs or fails) on this system"
    echo "asan output kept in $ROOT"
    echo "asan: 0 passed, 1 failed"
    exit 1
  fi
done

# the same temporary configuration as test/run-tests.sh (test-env.sh)
write_test_conf "$ROOT"
[ "$(id -u)" -eq 0 ] && chown -R "$PG_USER" "$ROOT"

echo "== pg_regress (ASan + UBSan)"
mapfile -t names < <(regress_names)
ASAN="detect_leaks=0:abort_on_error=1:print_summary=1:log_path=$ROOT/reports/asan"
as_pg_user "${RUN_ENV[@]}" ASAN_OPTIONS="$ASAN" \
  "$PGXS_DIR/src/test/regress/pg_regress" \
  --inputdir="$SRC" --outputdir="$ROOT/regress_out" --bindir="$PREFIX$BINDIR" \
  --temp-instance="$ROOT/regress" --temp-config="$ROOT/phi_guard.conf" \
  --dbname=contrib_regression ${ASAN_PORT:+--port="$ASAN_PORT"} \
  "${names[@]}" 2>&1 | tee "$ROOT/regress.log"

count_regress "$ROOT/regress.log"
[ -f "$ROOT/regress_out/regression.diffs" ] && cat "$ROOT/regress_out/regression.diffs"

# One more test: no sanitizer report at all.  The server is not
# instrumented, so a report comes from phi_guard's code or from an
# intercepted libc call (memcpy, strlen, free, ...) made by any code; each
# counts, and says whether a phi_guard frame is on its stack.  Reports that
# reached the server log (UBSan's; ASan's when log_path could not be opened)
# are cut out of it first, one file each: from the report's first line to
# the next timestamped line.
awk -v dir="$ROOT/reports" '
  /runtime error:|ERROR: (AddressSanitizer|UndefinedBehaviorSanitizer)/ { n++; f = dir "/server_log." n }
  f != "" && /^[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] / { close(f); f = "" }
  f != "" { print > f }
' "$ROOT/regress_out/log"/*.log 2>/dev/null
nreports=0
for r in $(find "$ROOT/reports" -type f | sort); do
  nreports=$((nreports + 1))
  if grep -qE 'phi_guard\.so|[ /]src/(core/)?[a-z0-9_]+\.[ch]:[0-9]' "$r"; then where="in phi_guard code"; else where="no phi_guard frame"; fi
  echo "== sanitizer report $(basename "$r") ($where)"; cat "$r"
done
if [ "$nreports" -eq 0 ]; then
  echo "ok: no sanitizer report"; add 1 0
else
  echo "not ok: $nreports sanitizer report(s)"; add 0 1
fi

if [ "$failed" -eq 0 ]; then rm -rf "$ROOT"; else echo "asan output kept in $ROOT"; fi
echo "asan: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
