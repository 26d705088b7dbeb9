-- Rule (SPEC §5, §6): a red team's attacks on the guarantees of issue 11,
-- as the owner of a protected, audited table (a non-superuser), as an SQL
-- injection through the application's pooled role, and as a role with one
-- grant more (TRIGGER, SET on session_replication_role, phi_masked_reader).
-- Each is written as the attack: the role, the statements, the refusal or
-- the unchanged outcome.  The ones that worked before this file are:
-- a restrictive policy of the owner's sorting before the tenant wall (and
-- so applied first, to every tenant's rows); a permissive policy of the
-- owner's meeting another tenant's row in INSERT ... ON CONFLICT DO UPDATE
-- or MERGE before the wall; CREATE OR REPLACE TRIGGER swapping an audit
-- trigger's function (the TRIGGER privilege is enough);
-- session_replication_role switched to replica by the statement itself,
-- after it was checked; and break_glass_use entries forged through an
-- updatable security_barrier view or through another role's table read
-- by a policy.  The owner's functions see what they are given: here a function
-- that reports every row of another tenant than the context's it is shown
-- (regress_rt.peek, a NOTICE, which no rollback takes back) stands for one
-- that copies rows elsewhere.
\set VERBOSITY terse
SET search_path = public, phi_guard;
\getenv abs_srcdir PG_ABS_SRCDIR
\set signer 'python3 ' :abs_srcdir '/test/context/sign_context.py'
\set pem `:signer pem regress_k20`
SELECT phi_context_key_add('regress_k20', :'pem');
\set tok_a `:signer token regress_k20 sub=alice tenant=clinic-a roles=clinician exp=+600`
\set tok_b `:signer token regress_k20 sub=bob tenant=clinic-b roles=clinician exp=+600`
\set tok_bill `:signer token regress_k20 sub=bill tenant=clinic-a roles=billing exp=+600`

CREATE ROLE regress_rt_owner;
CREATE ROLE regress_rt_app IN ROLE phi_app, phi_encryptor, phi_decryptor;
CREATE ROLE regress_rt_aadmin IN ROLE phi_audit_admin;
CREATE ROLE regress_rt_kadmin IN ROLE phi_key_admin;
CREATE ROLE regress_rt_trig;
CREATE ROLE regress_rt_masked IN ROLE phi_app, phi_masked_reader;
GRANT USAGE ON SCHEMA phi_guard TO regress_rt_owner;
CREATE SCHEMA regress_rt AUTHORIZATION regress_rt_owner;
GRANT USAGE ON SCHEMA regress_rt TO regress_rt_app, regress_rt_aadmin, regress_rt_kadmin,
  regress_rt_trig, regress_rt_masked;

-- the owner's spy: reports every row of another tenant a policy shows it
-- (cheap, so that the planner runs it early), and says yes
SET ROLE regress_rt_owner;
CREATE FUNCTION regress_rt.peek(tbl text, tenant text, name text) RETURNS bool
  LANGUAGE plpgsql VOLATILE COST 0.0001 SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
  IF tenant IS DISTINCT FROM phi_guard.phi_tenant_id() THEN
    RAISE NOTICE 'peek was shown % row % of tenant %', tbl, name, tenant;
  END IF;
  RETURN true;
END
$$;
CREATE FUNCTION regress_rt.noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
-- a protected, audited table the application reads and writes
CREATE TABLE regress_rt.patients (id int PRIMARY KEY, tenant text NOT NULL, name text);
GRANT SELECT, INSERT, UPDATE, DELETE ON regress_rt.patients TO regress_rt_app;
SELECT phi_protect_table('regress_rt.patients', 'tenant');
SET ROLE regress_rt_aadmin;
SELECT phi_audit_enable('regress_rt.patients');
SET ROLE regress_rt_app;
BEGIN;
SELECT phi_set_context(:'tok_a');
INSERT INTO regress_rt.patients VALUES (1, 'clinic-a', 'Ada'), (2, 'clinic-a', 'Alan');
SELECT phi_set_context(:'tok_b');
INSERT INTO regress_rt.patients VALUES (3, 'clinic-b', 'Barbara');
COMMIT;
RESET ROLE;
-- what guards patients: the wall and the audit triggers
CREATE FUNCTION regress_rt_state() RETURNS TABLE (what text, state text) LANGUAGE sql AS $$
  SELECT 'table', c.relname || ' rls=' || c.relrowsecurity || ' force=' || c.relforcerowsecurity
    FROM pg_class c WHERE c.oid = 'regress_rt.patients'::regclass
  UNION ALL
  SELECT 'policy', p.polname || ' ' || CASE WHEN p.polpermissive THEN 'permissive' ELSE 'restrictive' END
         || ' ' || pg_get_expr(p.polqual, p.polrelid)
    FROM pg_policy p WHERE p.polrelid = 'regress_rt.patients'::regclass
  UNION ALL
  SELECT 'trigger', t.tgname || ' ' || t.tgfoid::regproc::text || ' ' || t.tgenabled::text
    FROM pg_trigger t WHERE t.tgrelid = 'regress_rt.patients'::regclass
  ORDER BY 1, 2
$$;
-- rows of patients per context, as the caller sees them (called in a
-- transaction block; peek's NOTICEs are not silenced)
CREATE FUNCTION regress_rt_rows(tok text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE r text;
BEGIN
  PERFORM phi_guard.phi_clear_context();
  IF tok IS NOT NULL THEN
    PERFORM phi_guard.phi_set_context(tok);
  END IF;
  SELECT coalesce(string_agg(tenant || ':' || id, ',' ORDER BY id), '-') INTO r FROM regress_rt.patients;
  PERFORM phi_guard.phi_clear_context();
  RETURN r;
END
$$;
-- row entries written since a mark
CREATE FUNCTION regress_rt_entries(since xid8) RETURNS TABLE (kind text, tbl text, row_key text)
LANGUAGE sql AS $$
  SELECT r->>'kind', r->>'table', r->>'row_key'
    FROM phi_guard.audit_log, LATERAL (SELECT record::jsonb AS r) j
   WHERE xid > since AND r->>'kind' IN ('insert', 'update', 'delete', 'truncate')
   ORDER BY xid, id
$$;
GRANT EXECUTE ON FUNCTION regress_rt_rows(text) TO PUBLIC;
CREATE TEMP TABLE regress_rt_before AS SELECT * FROM regress_rt_state();
SELECT * FROM regress_rt_before;

------------------------------------------------------------------------
-- Attack 1, the owner: a restrictive policy that sorts before the wall.
-- PostgreSQL applies restrictive policies in name order, each before the
-- next, and a cheap function first: peek would be shown every tenant's
-- rows on every read, by every role.  Refused; one sorting after the wall
-- is allowed and is shown only rows the wall let through (no NOTICE)
------------------------------------------------------------------------
SET ROLE regress_rt_owner;
SELECT regress_try($$CREATE POLICY aaa_spy ON regress_rt.patients AS RESTRICTIVE
                     USING (regress_rt.peek('patients', tenant, name))$$) AS restrictive_before_wall,
       regress_try($$CREATE POLICY "phi_guard_tenan" ON regress_rt.patients AS RESTRICTIVE
                     USING (regress_rt.peek('patients', tenant, name))$$) AS prefix_of_wall;
CREATE POLICY regress_rt_spy ON regress_rt.patients AS RESTRICTIVE
  USING (regress_rt.peek('patients', tenant, name));
SELECT count(*) AS owner_without_context FROM regress_rt.patients;
RESET ROLE;
SET ROLE regress_rt_app;
BEGIN;
SELECT regress_rt_rows(NULL) AS no_context, regress_rt_rows(:'tok_a') AS clinic_a;
COMMIT;
RESET ROLE;
-- a table with such a policy already in place is not protected, and
-- neither is it attached under a protected table
SET ROLE regress_rt_owner;
CREATE TABLE regress_rt.early (id int PRIMARY KEY, tenant text NOT NULL, name text);
ALTER TABLE regress_rt.early ENABLE ROW LEVEL SECURITY;
CREATE POLICY aaa_spy ON regress_rt.early AS RESTRICTIVE USING (regress_rt.peek('early', tenant, name));
SELECT regress_try($$SELECT phi_protect_table('regress_rt.early', 'tenant')$$) AS protect_with_early_policy;
CREATE TABLE regress_rt.visits (id int, tenant text NOT NULL, PRIMARY KEY (tenant, id)) PARTITION BY LIST (tenant);
SELECT phi_protect_table('regress_rt.visits', 'tenant');
CREATE TABLE regress_rt.visits_b (id int, tenant text NOT NULL, PRIMARY KEY (tenant, id));
CREATE POLICY aaa_spy ON regress_rt.visits_b AS RESTRICTIVE USING (regress_rt.peek('visits_b', tenant, NULL));
SELECT regress_try($$ALTER TABLE regress_rt.visits ATTACH PARTITION regress_rt.visits_b FOR VALUES IN ('clinic-b')$$)
  AS attach_with_early_policy;
RESET ROLE;
SELECT c.relname, EXISTS (SELECT FROM phi_guard.protected_tables p WHERE p.relid = c.oid) AS protected,
       (SELECT count(*) FROM pg_inherits i WHERE i.inhrelid = c.oid) AS parents
  FROM pg_class c WHERE c.oid IN ('regress_rt.early'::regclass, 'regress_rt.visits_b'::regclass) ORDER BY 1;

------------------------------------------------------------------------
-- Attack 2, the owner: tune access with a permissive policy of its own
-- (phi_guard_tenant_access dropped, as the README allows), then upsert
-- onto another tenant's key, or MERGE without reading the target's
-- columns.  PostgreSQL checks such an existing row against the permissive
-- policies before the restrictive ones; the guard puts the wall first, so
-- peek is never shown the other tenant's row
------------------------------------------------------------------------
SET ROLE regress_rt_owner;
CREATE TABLE regress_rt.notes (id int PRIMARY KEY, tenant text NOT NULL, name text);
GRANT SELECT, INSERT, UPDATE, DELETE ON regress_rt.notes TO regress_rt_app;
SELECT phi_protect_table('regress_rt.notes', 'tenant');
DROP POLICY phi_guard_tenant_access ON regress_rt.notes;
CREATE POLICY regress_rt_team ON regress_rt.notes USING (regress_rt.peek('notes', tenant, name));
RESET ROLE;
INSERT INTO regress_rt.notes VALUES (1, 'clinic-a', 'a-note'), (3, 'clinic-b', 'b-secret');
SET ROLE regress_rt_app;
BEGIN;
SELECT phi_set_context(:'tok_a');
SELECT regress_try($$INSERT INTO regress_rt.notes VALUES (3, 'clinic-a', 'mine') ON CONFLICT (id) DO UPDATE SET name = 'taken'$$)
  AS upsert_onto_other_tenant,
       regress_try($$WITH u AS (INSERT INTO regress_rt.notes VALUES (3, 'clinic-a', 'mine')
                                ON CONFLICT (id) DO UPDATE SET name = 'taken' RETURNING 1)
                     SELECT count(*) FROM u$$) AS upsert_in_with;
SELECT regress_try($$MERGE INTO regress_rt.notes t USING (SELECT 1) s ON true
                     WHEN MATCHED THEN UPDATE SET name = 'taken'$$) AS merge_update,
       regress_try($$MERGE INTO regress_rt.notes t USING (SELECT 1) s ON true
                     WHEN MATCHED THEN DELETE$$) AS merge_delete;
INSERT INTO regress_rt.notes VALUES (1, 'clinic-a', 'mine') ON CONFLICT (id) DO UPDATE SET name = 'own row';
COMMIT;
RESET ROLE;
SELECT id, tenant, name FROM regress_rt.notes ORDER BY id;

------------------------------------------------------------------------
-- Attack 3: CREATE OR REPLACE TRIGGER on an audit trigger swaps its
-- function in place (no ALTER, no DROP); any role with the TRIGGER
-- privilege may run it.  Refused for it and for the owner; the owner's
-- own triggers are still replaceable
------------------------------------------------------------------------
GRANT TRIGGER ON regress_rt.patients TO regress_rt_trig;
SET ROLE regress_rt_trig;
SELECT regress_try($$CREATE OR REPLACE TRIGGER phi_guard_audit_del AFTER DELETE ON regress_rt.patients
                     FOR EACH STATEMENT EXECUTE FUNCTION regress_rt.noop()$$) AS trigger_role_replaces;
SELECT regress_try('DROP TRIGGER phi_guard_audit_del ON regress_rt.patients') AS trigger_role_drops,
       regress_try('ALTER TABLE regress_rt.patients DISABLE TRIGGER phi_guard_audit_del') AS trigger_role_disables;
SET ROLE regress_rt_owner;
SELECT regress_try($$CREATE OR REPLACE TRIGGER phi_guard_audit_ins AFTER INSERT ON regress_rt.patients
                     REFERENCING NEW TABLE AS phi_new FOR EACH STATEMENT EXECUTE FUNCTION regress_rt.noop()$$)
  AS owner_replaces_insert,
       regress_try($$CREATE OR REPLACE TRIGGER phi_guard_audit_trunc AFTER INSERT ON regress_rt.patients
                     FOR EACH STATEMENT EXECUTE FUNCTION regress_rt.noop()$$) AS owner_moves_truncate;
CREATE TRIGGER regress_rt_own AFTER DELETE ON regress_rt.patients FOR EACH STATEMENT EXECUTE FUNCTION regress_rt.noop();
CREATE OR REPLACE TRIGGER regress_rt_own AFTER UPDATE ON regress_rt.patients FOR EACH STATEMENT EXECUTE FUNCTION regress_rt.noop();
DROP TRIGGER regress_rt_own ON regress_rt.patients;
RESET ROLE;
REVOKE TRIGGER ON regress_rt.patients FROM regress_rt_trig;
SELECT pg_current_xact_id() AS mark \gset
SET ROLE regress_rt_app;
BEGIN;
SELECT phi_set_context(:'tok_a');
INSERT INTO regress_rt.patients VALUES (4, 'clinic-a', 'Ava');
DELETE FROM regress_rt.patients WHERE id = 4;
COMMIT;
RESET ROLE;
SELECT * FROM regress_rt_entries(:'mark');

------------------------------------------------------------------------
-- Attack 4: a role a superuser granted SET on session_replication_role
-- switches to replica mode from inside the statement that writes, after
-- the statement was checked: the audit triggers would not fire.  Such a
-- role (or one that may SET ROLE to such a role) writes no audited table,
-- in any mode
------------------------------------------------------------------------
CREATE ROLE regress_rt_repl IN ROLE phi_app;
CREATE ROLE regress_rt_srr;
SET ROLE regress_rt_owner;
CREATE TABLE regress_rt.ledger (id int PRIMARY KEY, note text);
INSERT INTO regress_rt.ledger VALUES (1, 'one'), (2, 'two');
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON regress_rt.ledger TO regress_rt_repl;
RESET ROLE;
GRANT USAGE ON SCHEMA regress_rt TO regress_rt_repl;
SET ROLE regress_rt_aadmin;
SELECT phi_audit_enable('regress_rt.ledger');
RESET ROLE;
SELECT pg_current_xact_id() AS mark \gset
GRANT SET ON PARAMETER session_replication_role TO regress_rt_repl;
SET SESSION AUTHORIZATION regress_rt_repl;
SELECT regress_try($$UPDATE regress_rt.ledger SET note = 'silent'
                     WHERE set_config('session_replication_role', 'replica', true) IS NOT NULL$$) AS flip_in_where,
       regress_try($$WITH s AS (SELECT set_config('session_replication_role', 'replica', true) AS r)
                     DELETE FROM regress_rt.ledger WHERE (SELECT r FROM s) IS NOT NULL$$) AS flip_in_with,
       regress_try($$INSERT INTO regress_rt.ledger VALUES (3, 'three')$$) AS plain_insert,
       regress_try('TRUNCATE regress_rt.ledger') AS truncate;
SELECT current_setting('session_replication_role') AS mode;
RESET SESSION AUTHORIZATION;
REVOKE SET ON PARAMETER session_replication_role FROM regress_rt_repl;
-- the grant held by a role it may become
GRANT SET ON PARAMETER session_replication_role TO regress_rt_srr;
GRANT regress_rt_srr TO regress_rt_repl;
ALTER ROLE regress_rt_repl NOINHERIT;
SET SESSION AUTHORIZATION regress_rt_repl;
SELECT regress_try($$UPDATE regress_rt.ledger SET note = 'silent'
                     WHERE set_config('role', 'regress_rt_srr', true) IS NOT NULL
                       AND set_config('session_replication_role', 'replica', true) IS NOT NULL$$) AS flip_through_set_role;
RESET SESSION AUTHORIZATION;
REVOKE regress_rt_srr FROM regress_rt_repl;
-- without either, the role writes, and is audited
SET SESSION AUTHORIZATION regress_rt_repl;
SELECT regress_try($$UPDATE regress_rt.ledger SET note = 'audited' WHERE id = 1$$) AS without_the_grant;
RESET SESSION AUTHORIZATION;
SELECT id, note FROM regress_rt.ledger ORDER BY id;
SELECT * FROM regress_rt_entries(:'mark');

------------------------------------------------------------------------
-- Attack 5: break_glass_use entries forged through an updatable
-- security_barrier view (an UPDATE or DELETE through the view puts its
-- WHERE clause into the written table's security quals, where the
-- policy's own call sits), or through the policy of another role's table
-- that a policy of the table reads.  With the default policies the grant
-- admits nothing more, so no use may be recorded; a read through a tuned
-- policy still is
------------------------------------------------------------------------
CREATE ROLE regress_rt_x;
GRANT USAGE ON SCHEMA phi_guard TO regress_rt_x;
GRANT CREATE, USAGE ON SCHEMA regress_rt TO regress_rt_x;
SET ROLE regress_rt_owner;
CREATE TABLE regress_rt.charts (id int PRIMARY KEY, tenant text NOT NULL, assigned text);
GRANT SELECT, UPDATE, DELETE ON regress_rt.charts TO regress_rt_app;
SELECT phi_protect_table('regress_rt.charts', 'tenant');
SET ROLE regress_rt_x;
CREATE TABLE regress_rt.assign (chart int, clinician text);
GRANT SELECT ON regress_rt.assign TO regress_rt_app;
ALTER TABLE regress_rt.assign ENABLE ROW LEVEL SECURITY;
CREATE POLICY regress_rt_forge ON regress_rt.assign
  USING ((SELECT phi_guard.break_glass_use('regress_rt.charts'::regclass)) OR true);
SET ROLE regress_rt_owner;
CREATE POLICY regress_rt_assigned ON regress_rt.charts AS RESTRICTIVE
  USING (EXISTS (SELECT FROM regress_rt.assign a WHERE a.chart = id));
CREATE TABLE regress_rt.team_charts (id int PRIMARY KEY, tenant text NOT NULL, assigned text);
GRANT SELECT ON regress_rt.team_charts TO regress_rt_app;
SELECT phi_protect_table('regress_rt.team_charts', 'tenant');
DROP POLICY phi_guard_tenant_access ON regress_rt.team_charts;
CREATE POLICY regress_rt_care_team ON regress_rt.team_charts USING (assigned = (SELECT phi_user_id()));
RESET ROLE;
INSERT INTO regress_rt.charts VALUES (1, 'clinic-a', 'alice'), (2, 'clinic-a', 'carol');
INSERT INTO regress_rt.assign VALUES (1, 'alice'), (2, 'carol');
INSERT INTO regress_rt.team_charts VALUES (1, 'clinic-a', 'alice'), (2, 'clinic-a', 'carol');
SET ROLE regress_rt_app;
BEGIN;
SELECT phi_set_context(:'tok_a');
SELECT phi_break_glass('patient unconscious in the ER', 10) IS NOT NULL AS opened;
COMMIT;
RESET ROLE;
SELECT phi_audit_seal() >= 0 AS sealed;
SELECT pg_current_xact_id() AS mark \gset
SET ROLE regress_rt_app;
BEGIN;
SELECT phi_set_context(:'tok_a');
CREATE TEMP VIEW regress_rt_forge WITH (security_barrier) AS
  SELECT * FROM regress_rt.charts WHERE phi_guard.break_glass_use('regress_rt.charts'::regclass);
CREATE TEMP VIEW regress_rt_forge_sub WITH (security_barrier) AS
  SELECT * FROM regress_rt.charts WHERE (SELECT phi_guard.break_glass_use('regress_rt.charts'::regclass));
UPDATE regress_rt_forge SET assigned = assigned;
DELETE FROM regress_rt_forge WHERE id = 99;
UPDATE regress_rt_forge_sub SET assigned = assigned;
SELECT count(*) AS read_through_assign FROM regress_rt.charts;
DROP VIEW regress_rt_forge, regress_rt_forge_sub;
COMMIT;
RESET ROLE;
SELECT phi_audit_seal() >= 0 AS sealed;
SELECT count(*) AS forged_uses
  FROM phi_guard.audit_log, LATERAL (SELECT record::jsonb AS r) j
 WHERE xid > :'mark' AND r->>'kind' = 'break_glass_use';
SELECT pg_current_xact_id() AS mark \gset
SET ROLE regress_rt_app;
BEGIN;
SELECT phi_set_context(:'tok_a');
SELECT array_agg(id ORDER BY id) AS read_under_grant FROM regress_rt.team_charts;
SELECT phi_break_glass_end() AS ended;
COMMIT;
RESET ROLE;
SELECT phi_audit_seal() > 0 AS sealed;
SELECT r->>'table' AS tbl, (r->'detail'->>'count')::int > 0 AS counted
  FROM phi_guard.audit_log, LATERAL (SELECT record::jsonb AS r) j
 WHERE xid > :'mark' AND r->>'kind' = 'break_glass_use';

------------------------------------------------------------------------
-- Refused or harmless: what the owner tried next.  Turning the table into
-- a view, typing it, copying its definition, rewriting, clustering,
-- vacuuming, reindexing, making it unlogged and back, statistics it could
-- read back, a publication, a second parent without the wall (either
-- order), locking phi_guard's tables.  The wall, the triggers and the rows
-- each context sees are unchanged
------------------------------------------------------------------------
SET ROLE regress_rt_owner;
CREATE TABLE regress_rt.empty (id int, tenant text NOT NULL, name text);
SELECT phi_protect_table('regress_rt.empty', 'tenant');
SELECT regress_try($$CREATE RULE "_RETURN" AS ON SELECT TO regress_rt.empty DO INSTEAD
                     SELECT 1 AS id, 'clinic-b'::text AS tenant, 'x'::text AS name$$) AS into_a_view;
CREATE TYPE regress_rt.patient_row AS (id int, tenant text, name text);
ALTER TABLE regress_rt.patients OF regress_rt.patient_row;
ALTER TABLE regress_rt.patients NOT OF;
CREATE TABLE regress_rt.copy (LIKE regress_rt.patients INCLUDING ALL);
SELECT count(*) AS copied_rows,
       (SELECT count(*) FROM pg_policy WHERE polrelid = 'regress_rt.copy'::regclass) AS copied_policies
  FROM regress_rt.copy;
ALTER TABLE regress_rt.patients SET ACCESS METHOD heap;
CLUSTER regress_rt.patients USING patients_pkey;
VACUUM FULL regress_rt.patients;
REINDEX TABLE regress_rt.patients;
ALTER TABLE regress_rt.patients SET UNLOGGED;
ALTER TABLE regress_rt.patients SET LOGGED;
CREATE STATISTICS regress_rt.patients_mcv (mcv) ON tenant, name FROM regress_rt.patients;
ANALYZE regress_rt.patients;
SELECT count(*) AS column_stats_shown FROM pg_stats
 WHERE schemaname = 'regress_rt' AND tablename = 'patients' AND most_common_vals IS NOT NULL;
SELECT count(*) AS extended_stats_shown FROM pg_stats_ext
 WHERE schemaname = 'regress_rt' AND tablename = 'patients' AND most_common_vals IS NOT NULL;
SELECT left(regress_try('CREATE PUBLICATION regress_rt_pub FOR TABLE regress_rt.patients'), 5) AS publication;
CREATE TABLE regress_rt.open_parent (id int, tenant text NOT NULL, name text);
SELECT regress_try('CREATE TABLE regress_rt.kid1 () INHERITS (regress_rt.open_parent, regress_rt.patients)') AS open_parent_first,
       regress_try('CREATE TABLE regress_rt.kid2 () INHERITS (regress_rt.patients, regress_rt.open_parent)') AS open_parent_second;
SELECT regress_try('DO $do$ BEGIN LOCK TABLE phi_guard.protected_tables; END $do$') AS lock_registry;
RESET ROLE;
SELECT 'now' AS side, * FROM regress_rt_state() EXCEPT SELECT 'now', * FROM regress_rt_before
UNION ALL
SELECT 'before', * FROM regress_rt_before EXCEPT SELECT 'before', * FROM regress_rt_state()
ORDER BY 1, 2, 3;
SET ROLE regress_rt_app;
BEGIN;
SELECT regress_rt_rows(NULL) AS no_context, regress_rt_rows(:'tok_a') AS clinic_a,
       regress_rt_rows(:'tok_b') AS clinic_b;
COMMIT;
RESET ROLE;

------------------------------------------------------------------------
-- Refused or harmless: an SQL injection through the application's role
-- (its own session), without a context or with a low one.  It cannot lock
-- phi_guard's tables, raise phi_guard's settings, become the owner or get
-- past the key rule by rewrapping or RESET ALL; a decision follows the
-- context into an open cursor, and a statement prepared before a rule is
-- made obeys it
------------------------------------------------------------------------
SET ROLE regress_rt_kadmin;
SELECT phi_key_create('regress_rt_ssn') > 0 AS created, phi_key_create('regress_rt_note') > 0 AS created;
SELECT phi_key_access('regress_rt_ssn', 'patient.read', 'billing.read'), phi_mask_bind('regress_rt_ssn', 'ssn');
SELECT phi_permission_grant('billing', 'billing.read');
RESET ROLE;
CREATE TABLE regress_rt_secrets (id int PRIMARY KEY, ssn phi_ciphertext, note phi_ciphertext);
GRANT SELECT ON regress_rt_secrets TO regress_rt_app, regress_rt_masked;
INSERT INTO regress_rt_secrets
  SELECT g, phi_encrypt('123-45-6789', 'regress_rt_ssn', 'rt:' || g), phi_encrypt('allergic', 'regress_rt_note', 'rt:' || g)
    FROM generate_series(1, 3) g;
SET SESSION AUTHORIZATION regress_rt_app;
SELECT regress_try('DO $do$ BEGIN LOCK TABLE phi_guard.audit_log; END $do$') AS lock_log,
       regress_try($$SELECT set_config('phi_guard.break_glass_max_minutes', '100000', false)$$) AS raise_ceiling,
       regress_try('SET ROLE regress_rt_owner') AS become_owner;
SELECT regress_try_secrets($$SELECT phi_decrypt(phi_rewrap(ssn, 'rt:1'), 'rt:1') FROM regress_rt_secrets WHERE id = 1$$,
                           ARRAY['123-45-6789']) AS rewrap_then_decrypt;
RESET ALL;
SET search_path = public, phi_guard;
SELECT regress_try_secrets($$SELECT phi_decrypt(ssn, 'rt:1') FROM regress_rt_secrets WHERE id = 1$$,
                           ARRAY['123-45-6789']) AS after_reset_all;
BEGIN;
SELECT phi_set_context(:'tok_a');
DECLARE regress_rt_cur CURSOR FOR SELECT phi_decrypt(ssn, 'rt:' || id) FROM regress_rt_secrets ORDER BY id;
FETCH 1 FROM regress_rt_cur;
SELECT phi_set_context(:'tok_bill');
FETCH 1 FROM regress_rt_cur;
ROLLBACK;
PREPARE regress_rt_note AS SELECT phi_decrypt(note, 'rt:1') FROM regress_rt_secrets WHERE id = 1;
EXECUTE regress_rt_note;
RESET SESSION AUTHORIZATION;
SET ROLE regress_rt_kadmin;
SELECT phi_key_access('regress_rt_note', 'patient.read');
RESET ROLE;
SET SESSION AUTHORIZATION regress_rt_app;
EXECUTE regress_rt_note;
DEALLOCATE regress_rt_note;
RESET SESSION AUTHORIZATION;
SET search_path = public, phi_guard;

------------------------------------------------------------------------
-- Refused or harmless: one grant more, phi_masked_reader.  Under a
-- clinician's context it still gets the bound mask, whatever kind it
-- names, and no other reader
------------------------------------------------------------------------
SET ROLE regress_rt_masked;
BEGIN;
SELECT phi_set_context(:'tok_a');
SELECT phi_decrypt_masked(ssn, 'rt:1', 'zip') AS asks_zip, phi_decrypt_masked(ssn, 'rt:1', 'name') AS asks_name,
       phi_decrypt_masked(note, 'rt:1', 'phone') AS unbound_note
  FROM regress_rt_secrets WHERE id = 1;
SELECT regress_try($$SELECT phi_decrypt(ssn, 'rt:1') FROM regress_rt_secrets$$) AS decrypt,
       regress_try($$SELECT phi_detokenize('x', 'none')$$) AS detokenize;
COMMIT;
RESET ROLE;

-- objects that see an audited table's rows are DDL entries: a trigger, a
-- rule and an index of the owner's; and DDL is recorded under
-- session_replication_role = replica too (the event triggers fire always),
-- but for a superuser's (a restore)
SET ROLE regress_rt_owner;
CREATE TRIGGER regress_rt_copy AFTER INSERT ON regress_rt.patients
  FOR EACH ROW EXECUTE FUNCTION regress_rt.noop();
CREATE RULE regress_rt_rule AS ON UPDATE TO regress_rt.patients DO ALSO NOTIFY regress_rt;
CREATE INDEX regress_rt_name ON regress_rt.patients (name);
DROP TRIGGER regress_rt_copy ON regress_rt.patients;
DROP RULE regress_rt_rule ON regress_rt.patients;
DROP INDEX regress_rt.regress_rt_name;
RESET ROLE;
GRANT SET ON PARAMETER session_replication_role TO regress_rt_owner;
SET SESSION AUTHORIZATION regress_rt_owner;
SET session_replication_role = replica;
CREATE INDEX regress_rt_tenant ON regress_rt.patients (tenant);
RESET session_replication_role;
DROP INDEX regress_rt.regress_rt_tenant;
RESET SESSION AUTHORIZATION;
REVOKE SET ON PARAMETER session_replication_role FROM regress_rt_owner;
-- (a superuser's DDL under replica is a restore replaying the dump: not recorded)
SET session_replication_role = replica;
CREATE INDEX regress_rt_restored ON regress_rt.patients (tenant);
RESET session_replication_role;
DROP INDEX regress_rt.regress_rt_restored;
SELECT r->'detail'->>'command' AS command, r->'detail'->>'object' AS object, r->>'table' AS "table"
  FROM (SELECT record::jsonb AS r, xid, id FROM phi_guard.audit_log) e
 WHERE r->>'kind' = 'ddl' AND r->'detail'->>'object' LIKE '%regress_rt\_%'
 ORDER BY xid, id;

-- nothing above left a value in the log
SELECT count(*) AS entries_with_values FROM phi_guard.audit_log
 WHERE strpos(record, '123-45-6789') > 0 OR strpos(record, 'Barbara') > 0 OR strpos(record, 'b-secret') > 0;

-- clean up: dropping the tables is allowed (the data goes too)
DROP TABLE regress_rt_secrets;
SET ROLE regress_rt_x;
DROP POLICY regress_rt_forge ON regress_rt.assign;
SET ROLE regress_rt_owner;
DROP TABLE regress_rt.patients, regress_rt.notes, regress_rt.ledger, regress_rt.charts, regress_rt.team_charts,
  regress_rt.early, regress_rt.visits, regress_rt.visits_b, regress_rt.empty, regress_rt.copy,
  regress_rt.open_parent;
DROP FUNCTION regress_rt.peek(text, text, text), regress_rt.noop();
DROP TYPE regress_rt.patient_row;
SET ROLE regress_rt_x;
DROP TABLE regress_rt.assign;
RESET ROLE;
DROP FUNCTION regress_rt_state(), regress_rt_rows(text), regress_rt_entries(xid8);
DROP SCHEMA regress_rt;
REVOKE USAGE ON SCHEMA phi_guard FROM regress_rt_owner, regress_rt_x;
REVOKE SET ON PARAMETER session_replication_role FROM regress_rt_srr;
DROP ROLE regress_rt_owner, regress_rt_app, regress_rt_aadmin, regress_rt_kadmin, regress_rt_trig,
  regress_rt_masked, regress_rt_repl, regress_rt_srr, regress_rt_x;
