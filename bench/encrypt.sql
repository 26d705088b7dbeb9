-- phi_guard encryption benchmark (run by bench/run.sh in a fresh database).
--
-- Every query below handles the same 1,000,000 values 'patient-1' ..
-- 'patient-1000000' and ends in the same count(), so the only difference
-- between two cases is the per-row function being measured.  The cases are
-- run interleaved (A B C ... A B C ...), 5 timed rounds after one warm-up
-- round, inside one DO block using clock_timestamp(); the tables print the
-- median of the 5 rounds.  Only ratios between cases of this same run mean
-- anything: the machine is shared and its absolute speed varies.
--
-- Progress is reported as NOTICEs (stderr); stdout carries only the tables.

\set ON_ERROR_STOP 1
SET client_min_messages = notice;
-- generate_series() materialises its rows: keep them in memory for every
-- case, so no case pays for a temporary file.
SET work_mem = '256MB';
SET jit = off;
SET max_parallel_workers_per_gather = 0;

CREATE EXTENSION phi_guard;
CREATE EXTENSION pgcrypto;
SELECT phi_guard.phi_key_create('bench') AS bench_key_id \gset

-- pgcrypto key: a fixed 32-byte key (AES-256, as phi_guard uses), given as a
-- constant so that, like the key name 'bench', it is folded at plan time.
\set pgc_key '''\\x000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f''::bytea'

------------------------------------------------------------------------
-- Stored values for the decryption cases: the same plaintexts, encrypted by
-- phi_encrypt (one phi_ciphertext column) and by pgcrypto encrypt_iv with a
-- random IV per row (the IV stored next to the ciphertext).
------------------------------------------------------------------------
\warn '-- building t_phi and t_pgc (1,000,000 rows each)'
CREATE TABLE t_phi AS
  SELECT phi_guard.phi_encrypt('patient-' || g, 'bench') AS c
    FROM generate_series(1, 1000000) g;
CREATE TABLE t_pgc AS
  SELECT iv, encrypt_iv(convert_to('patient-' || g, 'UTF8'), :pgc_key, iv, 'aes-cbc') AS ct
    FROM (SELECT g, gen_random_bytes(16) AS iv
            FROM generate_series(1, 1000000) g
          OFFSET 0) s;                -- OFFSET 0: one IV per row, used for both columns
VACUUM ANALYZE t_phi;
VACUUM ANALYZE t_pgc;

-- Sanity checks: every stored value decrypts to its plaintext, IVs are unique.
-- (psql does not expand :pgc_key inside the dollar-quoted block: pass it in a table)
CREATE TEMP TABLE bench_key AS SELECT :pgc_key AS k;
DO $check$
DECLARE
  bad bigint;
  key bytea := (SELECT k FROM bench_key);
BEGIN
  SELECT count(*) INTO bad FROM t_phi
   WHERE phi_guard.phi_decrypt(c) !~ '^patient-[0-9]+$';
  IF bad <> 0 THEN RAISE EXCEPTION 't_phi: % values do not decrypt', bad; END IF;
  SELECT count(*) INTO bad FROM t_pgc
   WHERE convert_from(decrypt_iv(ct, key, iv, 'aes-cbc'), 'UTF8') !~ '^patient-[0-9]+$';
  IF bad <> 0 THEN RAISE EXCEPTION 't_pgc: % values do not decrypt', bad; END IF;
  SELECT 1000000 - count(DISTINCT iv) INTO bad FROM t_pgc;
  IF bad <> 0 THEN RAISE EXCEPTION 't_pgc: % repeated IVs', bad; END IF;
END
$check$;

------------------------------------------------------------------------
-- The cases, in the order each round runs them.
------------------------------------------------------------------------
CREATE TEMP TABLE bench_case (ord int PRIMARY KEY, id text UNIQUE, label text, q text);
INSERT INTO bench_case VALUES
 (1, 'bare',      'bare generate_series + count',
  $q$SELECT count('patient-' || g) FROM generate_series(1, 1000000) g$q$),
 (2, 'phi_enc',   'phi_encrypt (AES-256-GCM)',
  $q$SELECT count(phi_guard.phi_encrypt('patient-' || g, 'bench')) FROM generate_series(1, 1000000) g$q$),
 (3, 'pgc_iv',    'pgcrypto encrypt_iv, random IV',
  $q$SELECT count(encrypt_iv(convert_to('patient-' || g, 'UTF8'), $q$ || :'pgc_key' || $q$, gen_random_bytes(16), 'aes-cbc')) FROM generate_series(1, 1000000) g$q$),
 (4, 'pgc_zero',  'pgcrypto encrypt, zero IV',
  $q$SELECT count(encrypt(convert_to('patient-' || g, 'UTF8'), $q$ || :'pgc_key' || $q$, 'aes')) FROM generate_series(1, 1000000) g$q$),
 (5, 'scan',      'bare scan of t_phi',
  $q$SELECT count(c) FROM t_phi$q$),
 (6, 'phi_dec',   'phi_decrypt of t_phi',
  $q$SELECT count(phi_guard.phi_decrypt(c)) FROM t_phi$q$),
 (7, 'pgc_dec',   'pgcrypto decrypt_iv of t_pgc',
  $q$SELECT count(convert_from(decrypt_iv(ct, $q$ || :'pgc_key' || $q$, iv, 'aes-cbc'), 'UTF8')) FROM t_pgc$q$);

CREATE TEMP TABLE bench_time (id text, round int, ms float8);

\warn '-- timing: 1 warm-up round + 5 interleaved rounds of 7 queries'
DO $bench$
DECLARE
  cases bench_case[] := ARRAY(SELECT c FROM bench_case c ORDER BY ord);
  c     bench_case;
  n     bigint;
  t0    timestamptz;
  t1    timestamptz;
BEGIN
  -- warm-up: loads the code paths, the key cache and the tables' pages
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
      t1 := clock_timestamp();
      INSERT INTO bench_time VALUES (c.id, r, extract(epoch FROM t1 - t0) * 1000);
    END LOOP;
    RAISE NOTICE 'round % of 5 done', r;
  END LOOP;
END
$bench$;

------------------------------------------------------------------------
-- Results
------------------------------------------------------------------------
CREATE TEMP VIEW bench_median AS
  SELECT id,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS med,
         min(ms) AS lo, max(ms) AS hi
    FROM bench_time GROUP BY id;

\pset footer off
\echo
\echo 'phi_guard encryption benchmark: 1,000,000 rows per query, median of 5 interleaved runs'
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
  SELECT max(med) FILTER (WHERE id = 'bare')     AS bare,
         max(med) FILTER (WHERE id = 'phi_enc')  AS phi_enc,
         max(med) FILTER (WHERE id = 'pgc_iv')   AS pgc_iv,
         max(med) FILTER (WHERE id = 'pgc_zero') AS pgc_zero,
         max(med) FILTER (WHERE id = 'scan')     AS scan,
         max(med) FILTER (WHERE id = 'phi_dec')  AS phi_dec,
         max(med) FILTER (WHERE id = 'pgc_dec')  AS pgc_dec
    FROM bench_median
), r AS (
  SELECT x.*
    FROM v, LATERAL (VALUES
      (1, 'encrypt: pgcrypto encrypt_iv / phi_encrypt',
          round((pgc_iv / phi_enc)::numeric, 2), 'x', '>= 3.0x', '>=', 3.0),
      (2, 'encrypt: pgcrypto zero-IV encrypt / phi_encrypt',
          round((pgc_zero / phi_enc)::numeric, 2), 'x', '> 1.0x', '>', 1.0),
      (3, 'decrypt: pgcrypto decrypt_iv / phi_decrypt',
          round((pgc_dec / phi_dec)::numeric, 2), 'x', '>= 2.0x', '>=', 2.0),
      -- (ms difference) / 1e6 rows * 1000 = microseconds per row
      (4, 'phi_encrypt overhead over bare, per row',
          round(((phi_enc - bare) / 1e6 * 1000)::numeric, 3), ' µs', '<= 0.6 µs', '<=', 0.6),
      (5, 'phi_decrypt overhead over bare scan, per row',
          round(((phi_dec - scan) / 1e6 * 1000)::numeric, 3), ' µs', '-', NULL, NULL)
    ) AS x(ord, metric, val, unit, target, op, bound)
)
SELECT metric,
       val::text || unit AS measured,
       target,
       CASE op
         WHEN '>=' THEN CASE WHEN val >= bound THEN 'PASS' ELSE 'MISS' END
         WHEN '>'  THEN CASE WHEN val >  bound THEN 'PASS' ELSE 'MISS' END
         WHEN '<=' THEN CASE WHEN val <= bound THEN 'PASS' ELSE 'MISS' END
         ELSE 'info'
       END AS result
  FROM r ORDER BY ord;
