#!/usr/bin/env bash
# phi_guard tenant-key benchmark (run by bench/run.sh in a fresh database):
# with 10,000 tenants' keys in the keyring, the per-row cost of phi_encrypt
# and phi_decrypt under one tenant's signed context (its own key of the
# name, chosen among the 10,000) against the same under a key no tenant has
# (a one-key table).  Target (issue 15): within 10%.
#
# Every query handles the same 1,000,000 values and ends in the same
# count(), so the only difference between two cases is the key the
# function uses.  The cases run interleaved, 5 timed rounds after one
# warm-up round, in one transaction under the context (inside a DO block,
# clock_timestamp()); the tables print the median.  Only ratios of this
# run mean anything.  A shell script, not .sql, because the context token
# is signed by test/context/sign_context.py.
#
# Progress is reported as NOTICEs (stderr); stdout carries only the tables.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SIGN=("$(command -v python3)" "$HERE/../test/context/sign_context.py")
PEM=$("${SIGN[@]}" pem bench_ctx)
TOK=$("${SIGN[@]}" token bench_ctx sub=bench tenant=tenant-5000 roles=clinician exp=+3000)

"${PSQL:-psql}" -X -q -v ON_ERROR_STOP=1 -v pem="$PEM" -v tok="$TOK" <<'EOF'
\set ON_ERROR_STOP 1
SET client_min_messages = notice;
SET work_mem = '256MB';
SET jit = off;
SET max_parallel_workers_per_gather = 0;

-- the set-up's results are not part of the report
\o /dev/null
CREATE EXTENSION phi_guard;
SELECT phi_guard.phi_context_key_add('bench_ctx', :'pem');
-- the one-key case's key, and the 10,000 tenants' keys of another name
SELECT phi_guard.phi_key_create('bench_one') > 0 AS one_key;
\warn '-- creating 10,000 tenant keys'
SELECT count(phi_guard.phi_key_create('bench_t', 'tenant-' || g)) AS tenant_keys
  FROM generate_series(1, 10000) g;
CREATE TEMP TABLE bench_token AS SELECT :'tok'::text AS tok;

\warn '-- building t_one and t_tenant (1,000,000 rows each)'
CREATE TABLE t_one AS
  SELECT phi_guard.phi_encrypt('patient-' || g, 'bench_one') AS c FROM generate_series(1, 1000000) g;
BEGIN;
SELECT phi_guard.phi_set_context(tok) FROM bench_token;
CREATE TABLE t_tenant AS
  SELECT phi_guard.phi_encrypt('patient-' || g, 'bench_t') AS c FROM generate_series(1, 1000000) g;
COMMIT;
VACUUM ANALYZE t_one;
VACUUM ANALYZE t_tenant;

-- each table's values are under the key the case means
DO $check$
BEGIN
  IF (SELECT count(DISTINCT phi_guard.phi_ciphertext_key_id(c)) FROM t_one) <> 1
     OR (SELECT k.tenant FROM phi_guard.keys k
          WHERE k.id = (SELECT min(phi_guard.phi_ciphertext_key_id(c)) FROM t_tenant))
        IS DISTINCT FROM 'tenant-5000' THEN
    RAISE EXCEPTION 'the tables are not under the keys the cases mean';
  END IF;
END
$check$;

\o
CREATE TEMP TABLE bench_case (ord int PRIMARY KEY, id text UNIQUE, label text, q text);
INSERT INTO bench_case VALUES
 (1, 'enc_one',    'phi_encrypt, one key',
  $q$SELECT count(phi_guard.phi_encrypt('patient-' || g, 'bench_one')) FROM generate_series(1, 1000000) g$q$),
 (2, 'enc_tenant', 'phi_encrypt, the tenant''s key among 10,000',
  $q$SELECT count(phi_guard.phi_encrypt('patient-' || g, 'bench_t')) FROM generate_series(1, 1000000) g$q$),
 (3, 'dec_one',    'phi_decrypt, one key',
  $q$SELECT count(phi_guard.phi_decrypt(c)) FROM t_one$q$),
 (4, 'dec_tenant', 'phi_decrypt, the tenant''s key among 10,000',
  $q$SELECT count(phi_guard.phi_decrypt(c)) FROM t_tenant$q$);
CREATE TEMP TABLE bench_time (id text, round int, ms float8);

\warn '-- timing: 1 warm-up round + 5 interleaved rounds of 4 queries, under tenant-5000''s context'
DO $bench$
DECLARE
  cases bench_case[] := ARRAY(SELECT c FROM bench_case c ORDER BY ord);
  c     bench_case;
  n     bigint;
  t0    timestamptz;
BEGIN
  PERFORM phi_guard.phi_set_context(tok) FROM bench_token;
  FOREACH c IN ARRAY cases LOOP
    EXECUTE c.q INTO n;
    IF n <> 1000000 THEN
      RAISE EXCEPTION 'case %: count is %, expected 1000000', c.id, n;
    END IF;
  END LOOP;
  RAISE NOTICE 'warm-up done';
  FOR r IN 1..5 LOOP
    FOREACH c IN ARRAY cases LOOP
      t0 := clock_timestamp();
      EXECUTE c.q INTO n;
      INSERT INTO bench_time VALUES (c.id, r, extract(epoch FROM clock_timestamp() - t0) * 1000);
    END LOOP;
    RAISE NOTICE 'round % of 5 done', r;
  END LOOP;
END
$bench$;

CREATE TEMP VIEW bench_median AS
  SELECT id, percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS med,
         min(ms) AS lo, max(ms) AS hi
    FROM bench_time GROUP BY id;

\pset footer off
\echo
\echo 'phi_guard tenant-key benchmark: 10,000 tenants'' keys, 1,000,000 rows per query, median of 5 interleaved runs'
\echo
SELECT b.label AS "case",
       to_char(m.med, 'FM999990.0') AS "median ms",
       to_char(m.lo,  'FM999990.0') AS "min ms",
       to_char(m.hi,  'FM999990.0') AS "max ms"
  FROM bench_case b JOIN bench_median m USING (id)
 ORDER BY b.ord;

\echo 'Ratios from this run (targets are informational; the machine may be noisy):'
\echo
WITH v AS (
  SELECT max(med) FILTER (WHERE id = 'enc_one')    AS enc_one,
         max(med) FILTER (WHERE id = 'enc_tenant') AS enc_tenant,
         max(med) FILTER (WHERE id = 'dec_one')    AS dec_one,
         max(med) FILTER (WHERE id = 'dec_tenant') AS dec_tenant,
         max(lo) FILTER (WHERE id = 'enc_one')     AS enc_one_lo,
         max(lo) FILTER (WHERE id = 'enc_tenant')  AS enc_tenant_lo,
         max(lo) FILTER (WHERE id = 'dec_one')     AS dec_one_lo,
         max(lo) FILTER (WHERE id = 'dec_tenant')  AS dec_tenant_lo
    FROM bench_median
), r AS (
  SELECT x.*
    FROM v, LATERAL (VALUES
      (1, 'encrypt: tenant key among 10,000 / one key',
          round((enc_tenant / enc_one)::numeric, 2), 'x', '<= 1.1x', '<=', 1.1),
      (2, 'decrypt: tenant key among 10,000 / one key',
          round((dec_tenant / dec_one)::numeric, 2), 'x', '<= 1.1x', '<=', 1.1),
      -- the fastest runs: what the code costs when the machine is quiet
      (3, 'encrypt: tenant key among 10,000 / one key, fastest runs',
          round((enc_tenant_lo / enc_one_lo)::numeric, 2), 'x', '-', NULL, NULL),
      (4, 'decrypt: tenant key among 10,000 / one key, fastest runs',
          round((dec_tenant_lo / dec_one_lo)::numeric, 2), 'x', '-', NULL, NULL)
    ) AS x(ord, metric, val, unit, target, op, bound)
)
SELECT metric,
       val::text || unit AS measured,
       target,
       CASE op
         WHEN '<=' THEN CASE WHEN val <= bound THEN 'PASS' ELSE 'MISS' END
         ELSE 'info'
       END AS result
  FROM r ORDER BY ord;
EOF
