-- phi_guard adoption benchmark (run by bench/run.sh in a fresh database):
-- bringing an existing 1,000,000-row column under phi_guard with
-- phi_encrypt_column, and rotating it with phi_rewrap_column, against the
-- plain statements that do the same work offline (issue 15: at most 3x).
--
--   encrypt: UPDATE t SET c = phi_encrypt(c, k)       (one statement, one
--            transaction, an exclusive row lock on every row until it ends)
--        vs  CALL phi_encrypt_column(t, c, k)         (online: batches of
--            10,000 committed as they go, the new column kept in sync by a
--            trigger, a short swap, then the rows rewritten once more so
--            that no live row keeps the dropped plaintext)
--   rewrap:  UPDATE t SET c = phi_rewrap(c)            vs  CALL phi_rewrap_column(t, c)
--
-- Each round starts from fresh copies of the same table (1,000,000 rows:
-- an int primary key, the value 'patient-<n>' and another column); 3
-- rounds, the cases interleaved, the median printed.  Only the ratios of
-- this run mean anything.  Progress is reported as NOTICEs (stderr);
-- stdout carries only the tables.

\set ON_ERROR_STOP 1
SET client_min_messages = notice;
SET jit = off;
SET max_parallel_workers_per_gather = 0;

CREATE EXTENSION phi_guard;
SELECT phi_guard.phi_key_create('bench') AS bench_key_id \gset

\warn '-- building the template table (1,000,000 rows)'
CREATE TABLE template AS
  SELECT g AS id, 'patient-' || g AS c, g % 100 AS visits FROM generate_series(1, 1000000) g;
CREATE TABLE bench_time (id text, round int, ms float8);

-- The rounds: a DO block outside a transaction block may COMMIT, and CALL
-- the procedures (which commit their batches) from it.
\warn '-- 3 rounds of: UPDATE encrypt, CALL phi_encrypt_column, UPDATE rewrap, CALL phi_rewrap_column'
DO $bench$
DECLARE
  t0 timestamptz;
BEGIN
  FOR r IN 1..3 LOOP
    -- fresh copies (not timed): a for the UPDATEs, b for the CALLs
    DROP TABLE IF EXISTS a, b;
    CREATE TABLE a AS SELECT * FROM template;
    ALTER TABLE a ADD PRIMARY KEY (id);
    CREATE TABLE b AS SELECT * FROM template;
    ALTER TABLE b ADD PRIMARY KEY (id);
    ANALYZE a;
    ANALYZE b;
    COMMIT;

    t0 := clock_timestamp();
    UPDATE a SET c = phi_guard.phi_encrypt(c, 'bench');
    COMMIT;
    INSERT INTO bench_time VALUES ('upd_enc', r, extract(epoch FROM clock_timestamp() - t0) * 1000);
    COMMIT;

    t0 := clock_timestamp();
    CALL phi_guard.phi_encrypt_column('b', 'c', 'bench');
    INSERT INTO bench_time VALUES ('col_enc', r, extract(epoch FROM clock_timestamp() - t0) * 1000);
    INSERT INTO bench_time
      SELECT 'swap_lock', r, m.swap_lock_ms FROM phi_guard.column_migrations m
       WHERE m.table_name = 'b'::regclass AND m.operation = 'encrypt';
    COMMIT;

    -- rotation: a's column, as phi_ciphertext, against b's
    ALTER TABLE a ALTER COLUMN c TYPE phi_guard.phi_ciphertext USING c::phi_guard.phi_ciphertext;
    PERFORM phi_guard.phi_key_rotate('bench');
    COMMIT;

    t0 := clock_timestamp();
    UPDATE a SET c = phi_guard.phi_rewrap(c);
    COMMIT;
    INSERT INTO bench_time VALUES ('upd_rew', r, extract(epoch FROM clock_timestamp() - t0) * 1000);
    COMMIT;

    t0 := clock_timestamp();
    CALL phi_guard.phi_rewrap_column('b', 'c');
    INSERT INTO bench_time VALUES ('col_rew', r, extract(epoch FROM clock_timestamp() - t0) * 1000);
    COMMIT;

    -- the two ways gave the same result
    IF (SELECT count(*) FROM b WHERE phi_guard.phi_decrypt(c) = 'patient-' || id) <> 1000000
       OR (SELECT count(*) FROM a WHERE phi_guard.phi_decrypt(c) = 'patient-' || id) <> 1000000 THEN
      RAISE EXCEPTION 'round %: values do not decrypt', r;
    END IF;
    RAISE NOTICE 'round % of 3 done', r;
    COMMIT;
  END LOOP;
END
$bench$;

------------------------------------------------------------------------
-- Results
------------------------------------------------------------------------
CREATE TEMP VIEW bench_median AS
  SELECT id, percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS med,
         min(ms) AS lo, max(ms) AS hi
    FROM bench_time GROUP BY id;
CREATE TEMP TABLE bench_case (ord int, id text, label text);
INSERT INTO bench_case VALUES
  (1, 'upd_enc',  'UPDATE t SET c = phi_encrypt(c, k)'),
  (2, 'col_enc',  'CALL phi_encrypt_column(t, c, k)'),
  (3, 'upd_rew',  'UPDATE t SET c = phi_rewrap(c)'),
  (4, 'col_rew',  'CALL phi_rewrap_column(t, c)');

\pset footer off
\echo
\echo 'phi_guard adoption benchmark: 1,000,000 rows, median of 3 rounds'
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
  SELECT max(med) FILTER (WHERE id = 'upd_enc') AS upd_enc,
         max(med) FILTER (WHERE id = 'col_enc') AS col_enc,
         max(med) FILTER (WHERE id = 'upd_rew') AS upd_rew,
         max(med) FILTER (WHERE id = 'col_rew') AS col_rew
    FROM bench_median
), r AS (
  SELECT x.*
    FROM v, LATERAL (VALUES
      (1, 'phi_encrypt_column / UPDATE phi_encrypt',
          round((col_enc / upd_enc)::numeric, 2), 'x', '<= 3.0x', '<=', 3.0),
      (2, 'phi_rewrap_column / UPDATE phi_rewrap',
          round((col_rew / upd_rew)::numeric, 2), 'x', '<= 3.0x', '<=', 3.0),
      (3, 'phi_encrypt_column rows per second',
          round((1e6 / (col_enc / 1000))::numeric, 0), '/s', '-', NULL, NULL),
      (4, 'phi_rewrap_column rows per second',
          round((1e6 / (col_rew / 1000))::numeric, 0), '/s', '-', NULL, NULL)
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

\echo 'The longest lock phi_encrypt_column held (its swap), per round:'
\echo
SELECT round AS "round", to_char(ms, 'FM999990.0') AS "swap lock ms"
  FROM bench_time WHERE id = 'swap_lock' ORDER BY round;
