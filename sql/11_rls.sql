-- Rule (SPEC §5): phi_protect_table makes a table show and accept only rows
-- of the context's tenant, for every command and every role but superusers
-- and BYPASSRLS (the owner included), and nothing at all without a context;
-- the tenant is read once per query; re-running it changes nothing that
-- was tuned; no SQL a non-superuser can write reaches another tenant
-- (settings, RESET, SET ROLE, views, definer functions, prepared plans,
-- COPY, row_security = off); the owner cannot switch the protection off,
-- a phi_key_admin can (phi_unprotect_table), and that is audited.
\set VERBOSITY terse
SET search_path = public, phi_guard;
\getenv abs_srcdir PG_ABS_SRCDIR
\set signer 'python3 ' :abs_srcdir '/test/context/sign_context.py'
\set tok_a `:signer token k1 sub=alice tenant=clinic-a roles=clinician exp=+600`
\set tok_b `:signer token k1 sub=bob tenant=clinic-b roles=clinician exp=+600`
SELECT current_user AS su \gset
\set tok_u `:signer token k1 sub=uma tenant=0b0e1e7e-0000-4000-8000-000000000001 roles=clinician exp=+600`

CREATE ROLE regress_rls_owner;
CREATE ROLE regress_rls_app LOGIN IN ROLE phi_app;
CREATE ROLE regress_rls_bypass BYPASSRLS IN ROLE phi_app;
GRANT CREATE ON SCHEMA public TO regress_rls_owner, regress_rls_app;
GRANT USAGE ON SCHEMA phi_guard TO regress_rls_owner;

SET ROLE regress_rls_owner;
CREATE TABLE regress_pat (id int PRIMARY KEY, tenant text NOT NULL, name text);
CREATE TABLE regress_utab (id int PRIMARY KEY, tenant uuid NOT NULL);
CREATE TABLE regress_jtab (id int, tenant jsonb);
GRANT SELECT, INSERT, UPDATE, DELETE ON regress_pat, regress_utab TO regress_rls_app;
GRANT SELECT ON regress_pat TO regress_rls_bypass;

-- only the owner protects; the tenant column must exist and have a simple type
SET ROLE regress_rls_app;
SELECT regress_try($$SELECT phi_protect_table('regress_pat', 'tenant')$$) AS by_non_owner;
SET ROLE regress_rls_owner;
SELECT regress_try($$SELECT phi_protect_table('regress_pat', 'clinic')$$) AS no_column;
SELECT regress_try($$SELECT phi_protect_table('regress_jtab', 'tenant')$$) AS jsonb_column;
RESET ROLE;
SELECT regress_try($$SELECT phi_protect_table('phi_guard.keys', 'name')$$) AS own_table;
SET ROLE regress_rls_owner;
-- a BYPASSRLS role with privileges is named in a warning
SELECT phi_protect_table('regress_pat', 'tenant');
SELECT phi_protect_table('regress_utab', 'tenant');
SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity FROM pg_class c
 WHERE c.relname IN ('regress_pat', 'regress_utab') ORDER BY 1;
SELECT policyname, permissive, cmd, qual, with_check FROM pg_policies
 WHERE tablename = 'regress_pat' ORDER BY policyname;

-- the owner too needs a context, and writes only its tenant's rows
SELECT count(*) AS owner_without_context FROM regress_pat;
SELECT regress_try($$INSERT INTO regress_pat VALUES (1, 'clinic-a', 'Ada')$$) AS insert_without_context;
BEGIN;
SELECT phi_set_context(:'tok_a');
INSERT INTO regress_pat VALUES (1, 'clinic-a', 'Ada'), (2, 'clinic-a', 'Alan'), (3, 'clinic-a', 'Grace');
SELECT regress_try($$INSERT INTO regress_pat VALUES (9, 'clinic-b', 'Mallory')$$) AS other_tenant;
COMMIT;
BEGIN;
SELECT phi_set_context(:'tok_b');
INSERT INTO regress_pat VALUES (4, 'clinic-b', 'Barbara'), (5, 'clinic-b', 'Bjarne');
COMMIT;
BEGIN;
SELECT phi_set_context(:'tok_u');
INSERT INTO regress_utab VALUES (1, '0b0e1e7e-0000-4000-8000-000000000001');
COMMIT;

-- the application: nothing without a context, its tenant's rows with one
SET ROLE regress_rls_app;
SELECT count(*) AS app_without_context FROM regress_pat;
SELECT regress_try($$UPDATE regress_pat SET name = 'x'$$) AS update_without_context,
       regress_try($$DELETE FROM regress_pat$$) AS delete_without_context;
BEGIN;
SELECT phi_set_context(:'tok_a');
SELECT id, tenant, name FROM regress_pat ORDER BY id;
SELECT count(*) AS other_tenant_by_where FROM regress_pat WHERE tenant = 'clinic-b';
SELECT regress_try($$UPDATE regress_pat SET tenant = 'clinic-b' WHERE id = 1$$) AS move_row;
UPDATE regress_pat SET name = name || '!' WHERE id IN (1, 4);
SELECT regress_try($$INSERT INTO regress_pat VALUES (4, 'clinic-a', 'dup') ON CONFLICT (id) DO UPDATE SET name = 'stolen'$$) AS upsert_other;
SAVEPOINT s;
DELETE FROM regress_pat;
SELECT count(*) AS after_delete_all FROM regress_pat;
ROLLBACK TO SAVEPOINT s;
-- COPY out shows the tenant's rows; COPY in is refused under row security
COPY regress_pat TO STDOUT;
COPY (SELECT id FROM regress_pat ORDER BY id) TO STDOUT;
-- a uuid tenant column: the text claim is cast to the column's type
SELECT count(*) AS uuid_rows_of_other FROM regress_utab;
COMMIT;
BEGIN;
SELECT phi_set_context(:'tok_u');
SELECT id FROM regress_utab;
\copy regress_pat FROM '/dev/null'
COMMIT;

-- the tenant is an InitPlan: evaluated once per query, index usable
BEGIN;
SELECT phi_set_context(:'tok_a');
SET LOCAL enable_seqscan = off;
SET LOCAL max_parallel_workers_per_gather = 0;
EXPLAIN (COSTS OFF) SELECT name FROM regress_pat WHERE id = 2;
COMMIT;

-- prepared statements follow the context of each execution, generic plans too
SET plan_cache_mode = force_generic_plan;
PREPARE regress_q AS SELECT string_agg(name, ',' ORDER BY id) FROM regress_pat;
BEGIN; SELECT phi_set_context(:'tok_a'); EXECUTE regress_q; COMMIT;
BEGIN; SELECT phi_set_context(:'tok_b'); EXECUTE regress_q; COMMIT;
EXECUTE regress_q;
DEALLOCATE regress_q;
RESET plan_cache_mode;

-- attempts to step around it, logged in as the application
\c - regress_rls_app
\set VERBOSITY terse
SET search_path = public, phi_guard;
BEGIN;
SELECT phi_set_context(:'tok_a');
SELECT regress_try($$SELECT set_config('phi_guard.tenant_id', 'clinic-b', true)$$) AS set_config;
RESET ALL;
SET search_path = public, phi_guard;
SELECT count(*) AS after_reset_all FROM regress_pat;
SELECT regress_try('SET ROLE regress_rls_owner') AS set_role_owner;
SELECT regress_try('SET SESSION AUTHORIZATION regress_rls_owner') AS set_session_auth;
SELECT regress_try('SET row_security = off; SELECT count(*) FROM regress_pat') AS row_security_off;
COMMIT;
-- a view and a SECURITY DEFINER function of the application's own
CREATE VIEW regress_app_view AS SELECT * FROM regress_pat;
CREATE FUNCTION regress_app_definer() RETURNS bigint LANGUAGE sql SECURITY DEFINER
  AS 'SELECT count(*) FROM public.regress_pat';
BEGIN;
SELECT phi_set_context(:'tok_b');
SELECT count(*) AS via_view, regress_app_definer() AS via_definer FROM regress_app_view;
COMMIT;
-- the owner's view and definer function: FORCE applies to the owner too
\c - :su
\set VERBOSITY terse
SET search_path = public, phi_guard;
SET ROLE regress_rls_owner;
CREATE VIEW regress_owner_view AS SELECT * FROM regress_pat;
CREATE FUNCTION regress_owner_definer() RETURNS bigint LANGUAGE sql SECURITY DEFINER
  AS 'SELECT count(*) FROM public.regress_pat';
GRANT SELECT ON regress_owner_view TO regress_rls_app;
SET ROLE regress_rls_app;
SELECT count(*) AS owner_view_without_context FROM regress_owner_view;
BEGIN;
SELECT phi_set_context(:'tok_b');
SELECT count(*) AS owner_view, regress_owner_definer() AS owner_definer FROM regress_owner_view;
COMMIT;
-- BYPASSRLS is what the warning said: it sees every tenant
SET ROLE regress_rls_bypass;
SELECT count(*) AS bypassrls_sees FROM regress_pat;

-- parallel scans get the tenant from the leader
SET ROLE regress_rls_app;
BEGIN;
SELECT phi_set_context(:'tok_a');
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL max_parallel_workers_per_gather = 2;
SELECT count(*) AS parallel_count FROM regress_pat;
COMMIT;

-- re-protecting keeps tuned policies and verifies the wall; the owner
-- cannot switch the protection off (sql/17_attack_owner_ddl tries every
-- way); a phi_key_admin can, and that is audited
RESET ROLE;
CREATE ROLE regress_rls_admin IN ROLE phi_key_admin;
SELECT pg_current_xact_id() AS mark \gset
SET ROLE regress_rls_owner;
DROP POLICY phi_guard_tenant_access ON regress_pat;
SELECT phi_protect_table('regress_pat', 'tenant');
SELECT policyname FROM pg_policies WHERE tablename = 'regress_pat' ORDER BY 1;
SELECT regress_try('ALTER TABLE regress_pat NO FORCE ROW LEVEL SECURITY') AS owner_no_force,
       regress_try($$SELECT phi_unprotect_table('regress_pat')$$) AS owner_unprotect;
SET ROLE regress_rls_admin;
SELECT phi_unprotect_table('regress_pat');
SELECT phi_unprotect_table('regress_pat');
SET ROLE regress_rls_owner;
SELECT policyname FROM pg_policies WHERE tablename = 'regress_pat';
SELECT count(*) AS unprotected_rows FROM regress_pat;
RESET ROLE;
SELECT r->>'kind' AS kind, r->>'table' AS tbl, r->'detail' AS detail
  FROM phi_guard.audit_log, LATERAL (SELECT record::jsonb AS r) j
 WHERE xid > :'mark' AND r->>'kind' IN ('ddl', 'protect', 'unprotect') ORDER BY xid, id;

DROP VIEW regress_app_view, regress_owner_view;
DROP FUNCTION regress_app_definer(), regress_owner_definer();
DROP TABLE regress_pat, regress_utab, regress_jtab;
REVOKE CREATE ON SCHEMA public FROM regress_rls_owner, regress_rls_app;
REVOKE USAGE ON SCHEMA phi_guard FROM regress_rls_owner;
DROP ROLE regress_rls_owner, regress_rls_app, regress_rls_bypass, regress_rls_admin;
