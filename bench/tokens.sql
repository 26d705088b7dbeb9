-- phi_guard blind index and tokenization benchmark (run by bench/run.sh
-- in a fresh database).
--
-- Throughput cases handle the values 'patient-1' .. 'patient-1000000' and
-- end in the same count(), so the only difference between a case and the
-- bare query is the per-row function being measured:
--   * phi_blind_index over 1M values;
--   * phi_tokenize of 1M values already in the vault (deterministic opaque
--     domain, loaded beforehand);
--   * phi_tokenize of 100,000 values seen for the first time (a new set of
--     values in every round), inserting into a vault of 1M+ rows.
-- Two references show what PostgreSQL itself pays for the same work, in
-- the same rounds:
--   * a nested-loop join of the 1M known fingerprints (a table in random
--     order) with the vault: one index probe and heap fetch per row, the
--     look-up a known value needs, minus everything phi_tokenize adds
--     (measured over a count() of that table);
--   * INSERT of 100,000 new rows into ref_vault, a copy of the vault with
--     the same indexes (built from the vault once it is loaded, and growing
--     alongside it): the index and heap work a first-time value needs.
-- They run interleaved (A B C D A B C D ...), one warm-up round and 5 timed
-- rounds inside one DO block timed with clock_timestamp(); the tables print
-- the median of the 5 rounds.
--
-- Lookups: single statements, each run on its own through EXECUTE (parsed,
-- planned and executed like a client's query), 200 of them per kind, timed
-- one by one; the table prints the median and the 95th percentile.  EXPLAIN
-- shows which index each lookup uses.
--
-- Only ratios and differences measured in this same run mean anything: the
-- machine is shared and its absolute speed varies.  Progress goes to stderr
-- (\warn, NOTICE); stdout carries only the tables.

\set ON_ERROR_STOP 1
SET client_min_messages = notice;
SET work_mem = '256MB';
SET jit = off;
SET max_parallel_workers_per_gather = 0;

CREATE EXTENSION phi_guard;
DO $setup$
BEGIN
  PERFORM phi_guard.phi_key_create('bench');
  -- deterministic opaque domains: values loaded beforehand, values seen for
  -- the first time while timed
  PERFORM phi_guard.phi_token_domain_create('bench_known', 'bench');
  PERFORM phi_guard.phi_token_domain_create('bench_new', 'bench');
END
$setup$;

------------------------------------------------------------------------
-- Data: 1M values in the vault of 'bench_known'; a patients table with an
-- encrypted MRN and its blind index under a btree index.
------------------------------------------------------------------------
\warn '-- loading 1,000,000 values into the token vault (first-time tokenization; takes a while)'
CREATE TABLE bench_load (what text, n bigint, ms float8);
DO $load$
DECLARE
  t0 timestamptz := clock_timestamp();
  n  bigint;
BEGIN
  SELECT count(phi_guard.phi_tokenize('patient-' || g, 'bench_known')) INTO n
    FROM generate_series(1, 1000000) g;
  INSERT INTO bench_load VALUES ('vault load', n, extract(epoch FROM clock_timestamp() - t0) * 1000);
END
$load$;

\warn '-- building patients (1,000,000 rows: id, mrn phi_ciphertext, mrn_bidx int8)'
CREATE TABLE patients AS
  SELECT g AS id, phi_guard.phi_encrypt('patient-' || g, 'bench') AS mrn,
         phi_guard.phi_blind_index('patient-' || g, 'bench') AS mrn_bidx
    FROM generate_series(1, 1000000) g;
ALTER TABLE patients ADD PRIMARY KEY (id);
CREATE INDEX patients_mrn_bidx ON patients (mrn_bidx);
VACUUM ANALYZE patients;
VACUUM ANALYZE phi_guard.token_vault;

-- the references: the known fingerprints in random order, and a copy of
-- the vault with the vault's indexes
CREATE TABLE ref_fp AS
  SELECT fingerprint AS fp FROM phi_guard.token_vault WHERE domain = 'bench_known' ORDER BY random();
CREATE TABLE ref_vault AS SELECT * FROM phi_guard.token_vault;
ALTER TABLE ref_vault ADD PRIMARY KEY (domain, token), ADD UNIQUE (fingerprint),
  ALTER COLUMN created_at SET DEFAULT now();
CREATE INDEX ref_vault_fingerprint_hash ON ref_vault USING hash (fingerprint);
VACUUM ANALYZE ref_fp;
VACUUM ANALYZE ref_vault;
-- the probe reference is a nested loop over the vault's index
SET enable_hashjoin = off;
SET enable_mergejoin = off;

-- Sanity checks: 1M distinct tokens in the vault; a sample tokenizes to the
-- stored token and detokenizes to its value; the blind index matches.
DO $check$
DECLARE
  bad bigint;
BEGIN
  SELECT 1000000 - count(DISTINCT token) INTO bad FROM phi_guard.token_vault WHERE domain = 'bench_known';
  IF bad <> 0 THEN RAISE EXCEPTION 'vault: % tokens missing or repeated', bad; END IF;
  SELECT count(*) INTO bad
    FROM (SELECT 'patient-' || g AS v FROM generate_series(1, 1000000, 997) g) s,
         LATERAL (SELECT phi_guard.phi_tokenize(v, 'bench_known') AS t) l
   WHERE phi_guard.phi_detokenize(t, 'bench_known') <> v
      OR NOT EXISTS (SELECT FROM phi_guard.token_vault x WHERE x.domain = 'bench_known' AND x.token = t);
  IF bad <> 0 THEN RAISE EXCEPTION 'vault: % sampled values do not round-trip', bad; END IF;
  SELECT count(*) INTO bad FROM patients
   WHERE id % 997 = 0 AND (mrn_bidx <> phi_guard.phi_blind_index('patient-' || id, 'bench')
                           OR phi_guard.phi_decrypt(mrn) <> 'patient-' || id);
  IF bad <> 0 THEN RAISE EXCEPTION 'patients: % sampled rows wrong', bad; END IF;
END
$check$;

------------------------------------------------------------------------
-- Throughput cases, in the order each round runs them.  %s is the round
-- number (0 = warm-up): the first-time case gets new values every round.
------------------------------------------------------------------------
CREATE TEMP TABLE bench_case (ord int PRIMARY KEY, id text UNIQUE, label text, rows int, q text);
INSERT INTO bench_case VALUES
 (1, 'bare',      'bare generate_series + count', 1000000,
  $q$SELECT count('patient-' || g) FROM generate_series(1, 1000000) g$q$),
 (2, 'blind',     'phi_blind_index, 1M values', 1000000,
  $q$SELECT count(phi_guard.phi_blind_index('patient-' || g, 'bench')) FROM generate_series(1, 1000000) g$q$),
 (3, 'tok_known', 'phi_tokenize, 1M values in the vault', 1000000,
  $q$SELECT count(phi_guard.phi_tokenize('patient-' || g, 'bench_known')) FROM generate_series(1, 1000000) g$q$),
 (4, 'tok_new',   'phi_tokenize, 100k first-time values', 100000,
  $q$SELECT count(phi_guard.phi_tokenize('new-%s-' || g, 'bench_new')) FROM generate_series(1, 100000) g$q$),
 (5, 'ref_scan',  'reference: count() of the 1M fingerprints', 1000000,
  $q$SELECT count(fp) FROM ref_fp$q$),
 (6, 'ref_probe', 'reference: PostgreSQL''s index probe + heap fetch per fingerprint', 1000000,
  $q$SELECT count(v.token) FROM ref_fp f JOIN phi_guard.token_vault v ON v.fingerprint = f.fp$q$),
 (7, 'ref_insert', 'reference: PostgreSQL''s INSERT of 100k rows into a copy of the vault', 100000,
  $q$WITH i AS (INSERT INTO ref_vault (domain, token, fingerprint, value)
                SELECT 'bench_ref', 'tok_' || md5('ref-%1$s-' || g), sha256(('ref-%1$s-' || g)::bytea),
                       (SELECT value FROM ref_vault LIMIT 1)
                  FROM generate_series(1, 100000) g RETURNING 1)
    SELECT count(*) FROM i$q$);

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
  FOR r IN 0..5 LOOP
    FOREACH c IN ARRAY cases LOOP
      t0 := clock_timestamp();
      EXECUTE format(c.q, r) INTO n;
      t1 := clock_timestamp();
      IF n <> c.rows THEN
        RAISE EXCEPTION 'case %: count is %, expected %', c.id, n, c.rows;
      END IF;
      IF r > 0 THEN
        INSERT INTO bench_time VALUES (c.id, r, extract(epoch FROM t1 - t0) * 1000);
      END IF;
    END LOOP;
    RAISE NOTICE '%', CASE WHEN r = 0 THEN 'warm-up done' ELSE format('round %s of 5 done', r) END;
  END LOOP;
END
$bench$;

-- the known-value case found every value: the vault grew by the new values only
DO $grew$
DECLARE
  known bigint := (SELECT count(*) FROM phi_guard.token_vault WHERE domain = 'bench_known');
  fresh bigint := (SELECT count(*) FROM phi_guard.token_vault WHERE domain = 'bench_new');
BEGIN
  IF known <> 1000000 OR fresh <> 600000 THEN
    RAISE EXCEPTION 'vault rows: bench_known %, bench_new % (expected 1000000, 600000)', known, fresh;
  END IF;
  IF (SELECT count(*) FROM ref_vault WHERE domain = 'bench_ref') <> 600000 THEN
    RAISE EXCEPTION 'ref_vault: the reference inserts did not all go in';
  END IF;
END
$grew$;

------------------------------------------------------------------------
-- Lookups: the plans, then 200 single statements of each kind
------------------------------------------------------------------------
\warn '-- lookups: 200 single statements per kind'
SELECT token AS sample_token FROM phi_guard.token_vault
 WHERE domain = 'bench_known' ORDER BY token OFFSET 424242 LIMIT 1 \gset
CREATE TEMP TABLE bench_plan (kind text, plan text);
CREATE TEMP TABLE bench_explain (kind text, q text);
INSERT INTO bench_explain VALUES
  ('detokenize', format($q$SELECT value FROM phi_guard.token_vault WHERE domain = 'bench_known' AND token = %L$q$, :'sample_token')),
  ('tokenize',   format($q$SELECT token FROM phi_guard.token_vault WHERE fingerprint = %L::bytea$q$,
                        (SELECT fingerprint FROM phi_guard.token_vault WHERE domain = 'bench_known' AND token = :'sample_token'))),
  ('blind',      $q$SELECT id FROM patients WHERE mrn_bidx = phi_guard.phi_blind_index('patient-424242', 'bench') AND phi_guard.phi_decrypt(mrn) = 'patient-424242'$q$),
  ('reference probe', $q$SELECT count(v.token) FROM ref_fp f JOIN phi_guard.token_vault v ON v.fingerprint = f.fp$q$);
DO $plans$
DECLARE
  e    record;
  line text;
  p    text;
BEGIN
  FOR e IN SELECT * FROM bench_explain LOOP
    p := '';
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || e.q LOOP
      p := p || line || E'\n';
    END LOOP;
    INSERT INTO bench_plan VALUES (e.kind, rtrim(p, E'\n'));
  END LOOP;
END
$plans$;

CREATE TEMP TABLE bench_lookup (kind text, i int, ms float8);
DO $lookups$
DECLARE
  toks text[] := ARRAY(SELECT token FROM phi_guard.token_vault WHERE domain = 'bench_known'
                        ORDER BY random() LIMIT 200);
  ids  int[]  := ARRAY(SELECT 1 + (random() * 999999)::int FROM generate_series(1, 200));
  v    text;
  got  int;
  t0   timestamptz;
  t1   timestamptz;
BEGIN
  -- warm-up: the code paths and the upper index pages
  FOR i IN 1..20 LOOP
    EXECUTE format('SELECT phi_guard.phi_detokenize(%L, %L)', toks[i], 'bench_known') INTO v;
    EXECUTE format('SELECT phi_guard.phi_tokenize(%L, %L)', v, 'bench_known') INTO v;
    EXECUTE format('SELECT id FROM patients WHERE mrn_bidx = phi_guard.phi_blind_index(%L, %L) AND phi_guard.phi_decrypt(mrn) = %L',
                   'patient-' || ids[i], 'bench', 'patient-' || ids[i]) INTO got;
  END LOOP;
  FOR i IN 1..200 LOOP
    t0 := clock_timestamp();
    EXECUTE format('SELECT phi_guard.phi_detokenize(%L, %L)', toks[i], 'bench_known') INTO v;
    t1 := clock_timestamp();
    INSERT INTO bench_lookup VALUES ('detokenize', i, extract(epoch FROM t1 - t0) * 1000);
    IF v !~ '^patient-[0-9]+$' THEN RAISE EXCEPTION 'detokenize returned a wrong value'; END IF;

    t0 := clock_timestamp();
    EXECUTE format('SELECT phi_guard.phi_tokenize(%L, %L)', v, 'bench_known') INTO v;
    t1 := clock_timestamp();
    INSERT INTO bench_lookup VALUES ('tokenize', i, extract(epoch FROM t1 - t0) * 1000);
    IF v <> toks[i] THEN RAISE EXCEPTION 'tokenize returned another token'; END IF;

    t0 := clock_timestamp();
    EXECUTE format('SELECT id FROM patients WHERE mrn_bidx = phi_guard.phi_blind_index(%L, %L) AND phi_guard.phi_decrypt(mrn) = %L',
                   'patient-' || ids[i], 'bench', 'patient-' || ids[i]) INTO got;
    t1 := clock_timestamp();
    INSERT INTO bench_lookup VALUES ('blind', i, extract(epoch FROM t1 - t0) * 1000);
    IF got IS DISTINCT FROM ids[i] THEN RAISE EXCEPTION 'blind index lookup found % for %', got, ids[i]; END IF;
  END LOOP;
END
$lookups$;

------------------------------------------------------------------------
-- Results
------------------------------------------------------------------------
CREATE TEMP VIEW bench_median AS
  SELECT id,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS med,
         min(ms) AS lo, max(ms) AS hi
    FROM bench_time GROUP BY id;
CREATE TEMP VIEW bench_lookup_stats AS
  SELECT kind,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS med,
         percentile_cont(0.95) WITHIN GROUP (ORDER BY ms) AS p95,
         max(ms) AS hi
    FROM bench_lookup GROUP BY kind;

\pset footer off
\echo
\echo 'phi_guard blind index and tokenization benchmark: median of 5 interleaved runs'
\echo
SELECT b.label AS "case", b.rows AS "rows",
       to_char(m.med, 'FM999990.0') AS "median ms",
       to_char(m.lo,  'FM999990.0') AS "min ms",
       to_char(m.hi,  'FM999990.0') AS "max ms"
  FROM bench_case b JOIN bench_median m USING (id)
 ORDER BY b.ord;
SELECT what AS "load (not repeated)", n AS "rows", to_char(ms, 'FM999990.0') AS "ms",
       to_char(ms / n * 1000, 'FM990.00') AS "µs/row"
  FROM bench_load;

\echo 'Lookup plans (EXPLAIN (COSTS OFF) of the lookup each function does):'
\echo
SELECT kind AS lookup, plan FROM bench_plan ORDER BY kind;

\echo 'Single lookups, 200 statements each (vault of 1.6M rows, 1M for this domain; patients 1M rows):'
\echo
SELECT CASE kind WHEN 'detokenize' THEN 'phi_detokenize(token)'
                 WHEN 'tokenize' THEN 'phi_tokenize(known value)'
                 ELSE 'patients by blind index + phi_decrypt' END AS lookup,
       to_char(med, 'FM990.000') AS "median ms", to_char(p95, 'FM990.000') AS "p95 ms",
       to_char(hi, 'FM990.000') AS "max ms"
  FROM bench_lookup_stats ORDER BY kind;

\echo 'Targets (informational; the machine may be noisy):'
\echo
WITH v AS (
  SELECT max(med) FILTER (WHERE id = 'bare')      AS bare,
         max(med) FILTER (WHERE id = 'blind')     AS blind,
         max(med) FILTER (WHERE id = 'tok_known') AS tok_known,
         max(med) FILTER (WHERE id = 'tok_new')   AS tok_new,
         max(med) FILTER (WHERE id = 'ref_scan')  AS ref_scan,
         max(med) FILTER (WHERE id = 'ref_probe') AS ref_probe,
         max(med) FILTER (WHERE id = 'ref_insert') AS ref_insert
    FROM bench_median
), l AS (
  SELECT max(med) FILTER (WHERE kind = 'detokenize') AS detok,
         max(med) FILTER (WHERE kind = 'blind')      AS blind_lookup,
         bool_or(kind = 'detokenize' AND plan ~ 'Index Scan using token_vault_pkey') AS detok_index,
         bool_or(kind = 'blind' AND plan ~ '(Bitmap )?Index Scan using patients_mrn_bidx') AS blind_index
    FROM bench_lookup_stats FULL JOIN bench_plan USING (kind)
), r AS (
  SELECT x.*
    FROM v, l, LATERAL (VALUES
      -- (ms difference) / 1e6 rows * 1000 = microseconds per row
      (1, 'phi_blind_index overhead over bare, per row',
          round(((blind - bare) / 1e6 * 1000)::numeric, 3)::text || ' µs', '<= 1 µs',
          (blind - bare) / 1e6 * 1000 <= 1),
      (2, 'phi_tokenize (value in the vault) overhead over bare, per row',
          round(((tok_known - bare) / 1e6 * 1000)::numeric, 3)::text || ' µs', '<= 1.5 µs',
          (tok_known - bare) / 1e6 * 1000 <= 1.5),
      (3, 'phi_tokenize (first time), per row',
          round((tok_new / 1e5 * 1000)::numeric, 2)::text || ' µs', '<= 10 µs',
          tok_new / 1e5 * 1000 <= 10),
      (4, 'phi_detokenize: plan uses the vault''s primary key',
          CASE WHEN detok_index THEN 'index scan' ELSE 'no index scan' END, 'index scan', detok_index),
      (5, 'phi_detokenize: single lookup, median',
          round(detok::numeric, 3)::text || ' ms', '< 1 ms', detok < 1),
      (6, 'blind index search: plan uses patients_mrn_bidx',
          CASE WHEN blind_index THEN 'index scan' ELSE 'no index scan' END, 'index scan', blind_index),
      (7, 'blind index search: single lookup, median',
          round(blind_lookup::numeric, 3)::text || ' ms', '< 1 ms', blind_lookup < 1),
      (8, 'reference: PostgreSQL''s index probe + heap fetch per known fingerprint',
          round(((ref_probe - ref_scan) / 1e6 * 1000)::numeric, 3)::text || ' µs', '-', NULL),
      (9, 'reference: PostgreSQL''s INSERT per row into a copy of the vault',
          round((ref_insert / 1e5 * 1000)::numeric, 2)::text || ' µs', '-', NULL)
    ) AS x(ord, metric, measured, target, ok)
)
SELECT metric, measured, target,
       CASE WHEN ok IS NULL THEN 'info' WHEN ok THEN 'PASS' ELSE 'MISS' END AS result
  FROM r ORDER BY ord;
