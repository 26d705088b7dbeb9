-- Rule (SPEC §5): a table protected by phi_protect_table and audited by
-- phi_audit_enable cannot be weakened by its owner, nor by any statement
-- but phi_unprotect_table / phi_audit_disable: switching row security or
-- FORCE off, disabling, renaming, replica- or always-enabling or dropping an
-- audit trigger, renaming, changing or dropping a restrictive policy (also
-- through DROP COLUMN ... CASCADE or a DO block), writing in replica mode
-- are refused with 42501 and leave no trace of a change; what cannot weaken
-- the wall (another policy, ENABLE TRIGGER, renames of the table and of the
-- tenant column) is allowed and audited.  Re-running phi_protect_table
-- verifies the wall and repairs what a superuser changed.  Written as the
-- attack of issue 11: the owner (as an application connected as the owner
-- would be), the application role with GRANT ... ON ALL TABLES IN SCHEMA,
-- the statements, the refusals, then the proof: rows visible per context
-- and audit entries.
\set VERBOSITY terse
SET search_path = public, phi_guard;
\getenv abs_srcdir PG_ABS_SRCDIR
\set signer 'python3 ' :abs_srcdir '/test/context/sign_context.py'
\set tok_a `:signer token k1 sub=alice tenant=clinic-a roles=clinician exp=+600`
\set tok_b `:signer token k1 sub=bob tenant=clinic-b roles=clinician exp=+600`

CREATE ROLE regress_odl_owner;
CREATE ROLE regress_odl_app IN ROLE phi_app;
CREATE ROLE regress_odl_aadmin IN ROLE phi_audit_admin;
CREATE ROLE regress_odl_kadmin IN ROLE phi_key_admin;
GRANT USAGE ON SCHEMA phi_guard TO regress_odl_owner;
CREATE SCHEMA regress_odl AUTHORIZATION regress_odl_owner;
GRANT USAGE ON SCHEMA regress_odl TO regress_odl_aadmin, regress_odl_kadmin;

SET ROLE regress_odl_owner;
CREATE TABLE regress_odl.patients (id int PRIMARY KEY, tenant text NOT NULL, name text,
                                   visits int NOT NULL DEFAULT 0);
GRANT USAGE ON SCHEMA regress_odl TO regress_odl_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA regress_odl TO regress_odl_app;
SELECT phi_protect_table('regress_odl.patients', 'tenant');
BEGIN;
SELECT phi_set_context(:'tok_a');
INSERT INTO regress_odl.patients (id, tenant, name) VALUES (1, 'clinic-a', 'Ada'), (2, 'clinic-a', 'Alan');
SELECT phi_set_context(:'tok_b');
INSERT INTO regress_odl.patients (id, tenant, name) VALUES (3, 'clinic-b', 'Barbara');
COMMIT;
SET ROLE regress_odl_aadmin;
SELECT phi_audit_enable('regress_odl.patients');
RESET ROLE;
-- what a role sees and writes: rows per tenant without a context and with
-- each tenant's context, and how many rows an UPDATE of every row reaches
CREATE FUNCTION regress_odl_view(tok_a text, tok_b text) RETURNS TABLE (ctx text, rows text, updated bigint)
LANGUAGE plpgsql SET client_min_messages = error AS $$
DECLARE n bigint;
BEGIN
  PERFORM phi_guard.phi_clear_context();
  WITH u AS (UPDATE regress_odl.patients SET visits = visits RETURNING 1) SELECT count(*) INTO n FROM u;
  RETURN QUERY SELECT 'none', string_agg(tenant || ':' || id, ',' ORDER BY id), n FROM regress_odl.patients;
  PERFORM phi_guard.phi_set_context(tok_a);
  WITH u AS (UPDATE regress_odl.patients SET visits = visits RETURNING 1) SELECT count(*) INTO n FROM u;
  RETURN QUERY SELECT 'clinic-a', string_agg(tenant || ':' || id, ',' ORDER BY id), n FROM regress_odl.patients;
  PERFORM phi_guard.phi_set_context(tok_b);
  WITH u AS (UPDATE regress_odl.patients SET visits = visits RETURNING 1) SELECT count(*) INTO n FROM u;
  RETURN QUERY SELECT 'clinic-b', string_agg(tenant || ':' || id, ',' ORDER BY id), n FROM regress_odl.patients;
  PERFORM phi_guard.phi_clear_context();
END $$;
-- the state the attacks aim at
CREATE FUNCTION regress_odl_state() RETURNS TABLE (what text, state text)
LANGUAGE sql AS $$
  SELECT 'table', c.relname || ' rls=' || c.relrowsecurity || ' force=' || c.relforcerowsecurity
    FROM pg_class c WHERE c.oid = 'regress_odl.patients'::regclass
  UNION ALL
  SELECT 'policy', p.polname || ' ' || CASE WHEN p.polpermissive THEN 'permissive' ELSE 'restrictive' END
         || ' ' || p.polcmd::text || ' to ' || p.polroles::regrole[]::text || ' ' || pg_get_expr(p.polqual, p.polrelid)
    FROM pg_policy p WHERE p.polrelid = 'regress_odl.patients'::regclass
  UNION ALL
  SELECT 'trigger', t.tgname || ' ' || t.tgenabled::text
    FROM pg_trigger t WHERE t.tgrelid = 'regress_odl.patients'::regclass
  ORDER BY 1, 2
$$;
GRANT EXECUTE ON FUNCTION regress_odl_view(text, text), regress_odl_state() TO PUBLIC;

SELECT * FROM regress_odl_state();
CREATE TEMP TABLE regress_odl_before AS SELECT * FROM regress_odl_state();
SELECT pg_current_xact_id() AS mark \gset

-- the attack, as the owner: each statement is refused with 42501
SET ROLE regress_odl_owner;
SELECT regress_try('ALTER TABLE regress_odl.patients DISABLE ROW LEVEL SECURITY') AS disable_rls;
SELECT regress_try('ALTER TABLE regress_odl.patients NO FORCE ROW LEVEL SECURITY') AS no_force;
SELECT regress_try('ALTER TABLE regress_odl.patients NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY') AS both_at_once;
SELECT regress_try('ALTER TABLE regress_odl.patients DISABLE TRIGGER phi_guard_audit_del') AS disable_trigger;
SELECT regress_try('ALTER TABLE regress_odl.patients DISABLE TRIGGER ALL') AS disable_all;
SELECT regress_try('ALTER TABLE regress_odl.patients DISABLE TRIGGER USER') AS disable_user;
SELECT regress_try('ALTER TABLE regress_odl.patients ENABLE REPLICA TRIGGER phi_guard_audit_ins') AS enable_replica;
SELECT regress_try('ALTER TABLE regress_odl.patients ENABLE ALWAYS TRIGGER phi_guard_audit_ins') AS enable_always;
SELECT regress_try('ALTER TRIGGER phi_guard_audit_upd ON regress_odl.patients RENAME TO innocent') AS rename_trigger;
SELECT regress_try('DROP TRIGGER phi_guard_audit_upd ON regress_odl.patients') AS drop_trigger;
SELECT regress_try('ALTER POLICY phi_guard_tenant ON regress_odl.patients RENAME TO innocent') AS rename_policy;
SELECT regress_try('ALTER POLICY phi_guard_tenant ON regress_odl.patients USING (true)') AS policy_using_true;
SELECT regress_try('ALTER POLICY phi_guard_tenant ON regress_odl.patients WITH CHECK (true)') AS policy_check_true;
SELECT regress_try('ALTER POLICY phi_guard_tenant ON regress_odl.patients TO regress_odl_owner') AS policy_to_owner_only;
SELECT regress_try('DROP POLICY phi_guard_tenant ON regress_odl.patients') AS drop_policy;
SELECT regress_try('ALTER TABLE regress_odl.patients DROP COLUMN tenant CASCADE') AS drop_tenant_column;
SELECT regress_try('ALTER TABLE regress_odl.patients ALTER COLUMN tenant TYPE varchar(40)') AS retype_tenant_column;
SELECT regress_try($q$DO $do$ BEGIN EXECUTE 'DROP POLICY phi_guard_tenant ON regress_odl.patients'; END $do$$q$) AS drop_in_do_block;
SELECT regress_try($$SELECT phi_unprotect_table('regress_odl.patients')$$) AS owner_unprotects;
SELECT regress_try($$SELECT phi_audit_disable('regress_odl.patients')$$) AS owner_disables_audit;
SELECT regress_try($$SELECT phi_protect_table('regress_odl.patients', 'name')$$) AS move_wall_to_name;
-- the sequence of the report, in one transaction: the first step already fails
BEGIN;
ALTER TRIGGER phi_guard_audit_del ON regress_odl.patients RENAME TO x;
DROP TRIGGER x ON regress_odl.patients;
ROLLBACK;
-- a restrictive policy of the owner's own narrows the rows; it then stays
CREATE POLICY regress_odl_not_archived ON regress_odl.patients AS RESTRICTIVE USING (visits >= 0);
SELECT regress_try('DROP POLICY regress_odl_not_archived ON regress_odl.patients') AS drop_own_restrictive;
RESET ROLE;
-- a superuser's plain SQL is refused the same way, and so is dropping
-- phi_guard with CASCADE (which would take the walls, not the tables)
SELECT regress_try('ALTER TABLE regress_odl.patients DISABLE ROW LEVEL SECURITY') AS superuser_disable_rls,
       regress_try('DROP TRIGGER phi_guard_audit_ins ON regress_odl.patients') AS superuser_drop_trigger;
BEGIN;
SELECT regress_try('DROP EXTENSION phi_guard CASCADE') AS drop_extension;
ROLLBACK;

-- session_replication_role = replica silences triggers: a role granted SET
-- on it writes nothing to the audited table in that mode
GRANT SET ON PARAMETER session_replication_role TO regress_odl_owner;
SET ROLE regress_odl_owner;
SET session_replication_role = replica;
BEGIN;
SELECT phi_set_context(:'tok_a');
SELECT regress_try($$UPDATE regress_odl.patients SET name = 'unaudited' WHERE id = 1$$) AS replica_update,
       regress_try($$INSERT INTO regress_odl.patients (id, tenant) VALUES (9, 'clinic-a')$$) AS replica_insert,
       regress_try('DELETE FROM regress_odl.patients') AS replica_delete,
       regress_try($$WITH d AS (DELETE FROM regress_odl.patients RETURNING 1) SELECT count(*) FROM d$$) AS replica_cte,
       regress_try('TRUNCATE regress_odl.patients') AS replica_truncate;
COMMIT;
\copy regress_odl.patients FROM '/dev/null'
RESET session_replication_role;
RESET ROLE;
REVOKE SET ON PARAMETER session_replication_role FROM regress_odl_owner;

-- allowed, and changing nothing of the wall: a permissive policy of the
-- owner's (the restrictive wall still applies), dropping phi_guard's
-- permissive policy (fewer rows, not more), ENABLE TRIGGER ALL, renaming
-- the table and the tenant column (the registry follows)
SET ROLE regress_odl_owner;
CREATE POLICY regress_odl_everything ON regress_odl.patients AS PERMISSIVE USING (true) WITH CHECK (true);
DROP POLICY phi_guard_tenant_access ON regress_odl.patients;
ALTER TABLE regress_odl.patients ENABLE TRIGGER ALL;
ALTER TABLE regress_odl.patients RENAME TO patients_renamed;
ALTER TABLE regress_odl.patients_renamed RENAME COLUMN tenant TO clinic;
ALTER TABLE regress_odl.patients_renamed RENAME TO patients;
ALTER TABLE regress_odl.patients RENAME COLUMN clinic TO tenant;
RESET ROLE;
SELECT relid, tenant_column FROM phi_guard.protected_tables WHERE relid = 'regress_odl.patients'::regclass;

-- the proof: the wall and the audit triggers are as they were (but for the
-- two policies of the owner's and the one it dropped) ...
(SELECT 'now' AS side, * FROM regress_odl_state() EXCEPT SELECT 'now', * FROM regress_odl_before)
UNION ALL
(SELECT 'before', * FROM regress_odl_before EXCEPT SELECT 'before', * FROM regress_odl_state())
ORDER BY 1, 2, 3;
-- ... the application sees and changes only its tenant's rows, nothing
-- without a context ...
SET ROLE regress_odl_app;
SELECT * FROM regress_odl_view(:'tok_a', :'tok_b');
RESET ROLE;
-- ... and the log holds the allowed DDL and the application's updates (one
-- entry per row it reached), nothing of the refused statements
SELECT r->>'kind' AS kind, r->>'table' AS tbl, r->'detail'->>'command' AS command,
       coalesce(r->'detail'->>'policy', r->'detail'->>'object') AS object
  FROM phi_guard.audit_log, LATERAL (SELECT record::jsonb AS r) j
 WHERE xid > :'mark' ORDER BY xid, id;

-- re-running phi_protect_table verifies and repairs.  Only a superuser can
-- tamper (leaving the registry first, which the README names as the way
-- around the guard): a loosened wall without FORCE, ...
DELETE FROM phi_guard.protected_tables WHERE relid = 'regress_odl.patients'::regclass;
ALTER POLICY phi_guard_tenant ON regress_odl.patients USING (true) WITH CHECK (true);
ALTER TABLE regress_odl.patients NO FORCE ROW LEVEL SECURITY;
INSERT INTO phi_guard.protected_tables (relid, tenant_column) VALUES ('regress_odl.patients', 'tenant');
SET ROLE regress_odl_app;
SELECT * FROM regress_odl_view(:'tok_a', :'tok_b');
SET ROLE regress_odl_owner;
SELECT phi_protect_table('regress_odl.patients', 'tenant');
SET ROLE regress_odl_app;
SELECT * FROM regress_odl_view(:'tok_a', :'tok_b');
RESET ROLE;
-- ... a wall gone, ...
DELETE FROM phi_guard.protected_tables WHERE relid = 'regress_odl.patients'::regclass;
DROP POLICY phi_guard_tenant ON regress_odl.patients;
INSERT INTO phi_guard.protected_tables (relid, tenant_column) VALUES ('regress_odl.patients', 'tenant');
SET ROLE regress_odl_owner;
SELECT phi_protect_table('regress_odl.patients', 'tenant');
RESET ROLE;
-- ... a wall made permissive
DELETE FROM phi_guard.protected_tables WHERE relid = 'regress_odl.patients'::regclass;
DROP POLICY phi_guard_tenant ON regress_odl.patients;
CREATE POLICY phi_guard_tenant ON regress_odl.patients AS PERMISSIVE USING (true);
INSERT INTO phi_guard.protected_tables (relid, tenant_column) VALUES ('regress_odl.patients', 'tenant');
SET ROLE regress_odl_owner;
SELECT phi_protect_table('regress_odl.patients', 'tenant');
-- and a re-run with nothing to repair says so
SELECT phi_protect_table('regress_odl.patients', 'tenant');
SET ROLE regress_odl_app;
SELECT * FROM regress_odl_view(:'tok_a', :'tok_b');
RESET ROLE;
SELECT * FROM regress_odl_state() WHERE what = 'policy' AND state LIKE 'phi_guard_tenant %';
SELECT r->>'kind' AS kind, r->'detail' AS detail
  FROM phi_guard.audit_log, LATERAL (SELECT record::jsonb AS r) j
 WHERE xid > :'mark' AND r->>'kind' = 'protect' ORDER BY xid, id;

-- a phi_key_admin removes the protection, a phi_audit_admin the auditing;
-- both are audited; then the owner may do as it likes, and DROP TABLE
-- was allowed all along
SELECT pg_current_xact_id() AS mark \gset
SET ROLE regress_odl_kadmin;
SELECT phi_unprotect_table('regress_odl.patients');
SET ROLE regress_odl_aadmin;
SELECT phi_audit_disable('regress_odl.patients');
SET ROLE regress_odl_owner;
ALTER TABLE regress_odl.patients DISABLE ROW LEVEL SECURITY;
DROP POLICY regress_odl_not_archived ON regress_odl.patients;
DROP TABLE regress_odl.patients;
RESET ROLE;
SELECT r->>'kind' AS kind, r->>'table' AS tbl
  FROM phi_guard.audit_log, LATERAL (SELECT record::jsonb AS r) j
 WHERE xid > :'mark' AND r->>'kind' IN ('unprotect', 'audit_disable') ORDER BY xid, id;
SELECT count(*) AS left_in_registries
  FROM (SELECT relid FROM phi_guard.protected_tables UNION ALL SELECT relid FROM phi_guard.audited_tables) r
 WHERE relid::text LIKE 'regress_odl.%';

DROP FUNCTION regress_odl_view(text, text), regress_odl_state();
DROP SCHEMA regress_odl;
REVOKE USAGE ON SCHEMA phi_guard FROM regress_odl_owner;
DROP ROLE regress_odl_owner, regress_odl_app, regress_odl_aadmin, regress_odl_kadmin;
