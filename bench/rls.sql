-- phi_guard row-level security benchmark (run by bench/run.sh in a
-- fresh database).
--
-- SELECT count(*) over a 1,000,000-row table of 10 tenants, as a non-owner
-- role with a context for one tenant, three ways:
--   where      an unprotected copy with WHERE tenant = 'tenant-3' (the baseline)
--   protected  phi_protect_table: the tenant is read once per query (InitPlan)
--   per_row    a hand-written policy calling the reader in every row, for
--              comparison: what the InitPlan saves
-- Cases run interleaved, 7 timed rounds after a warm-up; the table prints
-- medians and ratios to the baseline.  Target: protected <= 1.3x where.
-- The context token is signed by a throwaway key (test/context/
-- sign_context.py, kid "bench") and valid until 2100, so the lifetime limit
-- is lifted for this session.

\set ON_ERROR_STOP 1
SET client_min_messages = notice;
SET jit = off;
SET max_parallel_workers_per_gather = 0;
SET phi_guard.context_max_lifetime = 0;

CREATE EXTENSION phi_guard;
\o /dev/null
SET client_min_messages = error;
SELECT phi_guard.phi_context_key_add('bench', '-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAMv+7EcUx6NpVL54EMFpJEi6WaAZZasMBoCFEUDf/DOs=
-----END PUBLIC KEY-----');
CREATE ROLE bench_app IN ROLE phi_app;

\warn '-- building the tables (1,000,000 rows each)'
CREATE TABLE t_plain AS
  SELECT g AS id, 'tenant-' || (g % 10) AS tenant, md5(g::text) AS payload
    FROM generate_series(1, 1000000) g;
CREATE TABLE t_protected AS SELECT * FROM t_plain;
CREATE TABLE t_per_row AS SELECT * FROM t_plain;
SELECT phi_guard.phi_protect_table('t_protected', 'tenant');
ALTER TABLE t_per_row ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY per_row ON t_per_row USING (tenant = phi_guard.phi_tenant_id());
GRANT SELECT ON t_plain, t_protected, t_per_row TO bench_app;
VACUUM ANALYZE t_plain, t_protected, t_per_row;
RESET client_min_messages;

SET ROLE bench_app;
BEGIN;
SELECT phi_guard.phi_set_context('eyJhbGciOiJFZERTQSIsImtpZCI6ImJlbmNoIn0.eyJzdWIiOiJiZW5jaC11c2VyIiwidGVuYW50IjoidGVuYW50LTMiLCJyb2xlcyI6WyJjbGluaWNpYW4iXSwiZXhwIjo0MTAyNDQ0ODAwfQ.Rk0eLx5V-YA-nw19pl8UExHrD0_dVL7XJYDduyO2dZDaODLvaw92MqQvAV6ZaUuvpuFXt-CGKNmyWF_F_BiZAQ');
\o
CREATE TEMP TABLE bench_run (name text, round int, ms float8);
DO $bench$
DECLARE
  cases text[] := ARRAY['where', 'protected', 'per_row'];
  sql text;
  c text;
  n bigint;
  t0 timestamptz;
BEGIN
  FOR r IN 0..7 LOOP
    FOREACH c IN ARRAY cases LOOP
      sql := CASE c
        WHEN 'where' THEN 'SELECT count(*) FROM t_plain WHERE tenant = ''tenant-3'''
        WHEN 'protected' THEN 'SELECT count(*) FROM t_protected'
        ELSE 'SELECT count(*) FROM t_per_row' END;
      t0 := clock_timestamp();
      EXECUTE sql INTO n;
      IF n <> 100000 THEN
        RAISE EXCEPTION 'case % counted % rows, expected 100000', c, n;
      END IF;
      IF r > 0 THEN
        INSERT INTO bench_run VALUES (c, r, extract(epoch FROM clock_timestamp() - t0) * 1000);
      END IF;
    END LOOP;
  END LOOP;
END
$bench$;
\echo 'phi_guard RLS benchmark: count(*) over 1,000,000 rows (100,000 of the context''s tenant), median of 7 interleaved runs'
WITH m AS (SELECT name, percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS med FROM bench_run GROUP BY name)
SELECT m.name AS "case", to_char(m.med, 'FM999990.0') AS "median ms",
       to_char(m.med / b.med, 'FM990.00') || 'x' AS "vs where"
  FROM m, m b WHERE b.name = 'where'
 ORDER BY array_position(ARRAY['where', 'protected', 'per_row'], m.name);
WITH m AS (SELECT name, percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS med FROM bench_run GROUP BY name)
SELECT CASE WHEN p.med / w.med <= 1.3 THEN 'ok' ELSE 'MISSED' END AS "target: protected <= 1.3x where",
       to_char(p.med / w.med, 'FM990.00') || 'x' AS measured
  FROM m p, m w WHERE p.name = 'protected' AND w.name = 'where';
COMMIT;
