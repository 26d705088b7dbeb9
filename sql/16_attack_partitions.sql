-- Rule (SPEC §5, §6): protection and auditing follow the data.
-- phi_protect_table and phi_audit_enable on a partitioned table cover every
-- partition at every level, present and future (CREATE TABLE ... PARTITION
-- OF, ATTACH PARTITION), and on a parent table its inheritance children
-- (INHERITS, ALTER TABLE ... INHERIT).  A role granted the partitions (GRANT
-- ... ON ALL TABLES IN SCHEMA) reads and changes through them only its
-- tenant's rows, nothing without a context, and every change is one audit
-- entry, under the table the statement named, whether it names the
-- parent, a partition or a child.  A partition detached (or a child
-- disinherited) stays protected and audited; a protected or audited table
-- cannot become a partition or child of a table that is not.  Written as
-- the attack of issue 11: the owner, the application role, the statements,
-- the refusals, then the proof: rows visible per context, audit entries.
\set VERBOSITY terse
SET search_path = public, phi_guard;
\getenv abs_srcdir PG_ABS_SRCDIR
\set signer 'python3 ' :abs_srcdir '/test/context/sign_context.py'
\set tok_a `:signer token k1 sub=alice tenant=clinic-a roles=clinician exp=+600`
\set tok_b `:signer token k1 sub=bob tenant=clinic-b roles=clinician exp=+600`
\set tok_d `:signer token k1 sub=dora tenant=clinic-d roles=clinician exp=+600`

CREATE ROLE regress_part_owner;
CREATE ROLE regress_part_app IN ROLE phi_app;
CREATE ROLE regress_part_aadmin IN ROLE phi_audit_admin;
CREATE ROLE regress_part_kadmin IN ROLE phi_key_admin;
GRANT USAGE ON SCHEMA phi_guard TO regress_part_owner;
CREATE SCHEMA regress_part AUTHORIZATION regress_part_owner;
GRANT USAGE ON SCHEMA regress_part TO regress_part_app, regress_part_aadmin, regress_part_kadmin;

-- Rows of every table of the schema as one context sees them:
-- table:ids, one line per table (rows of its partitions included).
CREATE FUNCTION regress_part_rows(tok text) RETURNS TABLE (tbl text, rows text)
LANGUAGE plpgsql SET client_min_messages = error AS $$
DECLARE
  t regclass;
  r text;
BEGIN
  PERFORM phi_guard.phi_clear_context();
  IF tok IS NOT NULL THEN
    PERFORM phi_guard.phi_set_context(tok);
  END IF;
  FOR t IN SELECT c.oid FROM pg_class c WHERE c.relnamespace = 'regress_part'::regnamespace
              AND c.relkind IN ('r', 'p') ORDER BY c.relname LOOP
    EXECUTE format('SELECT string_agg(id::text, %L ORDER BY id) FROM %s', ',', t) INTO r;
    RETURN QUERY SELECT t::text, coalesce(r, '-');
  END LOOP;
  PERFORM phi_guard.phi_clear_context();
END $$;
-- What guards each table of the schema: row security, forced, phi_guard's
-- policies, audit triggers, and both registries.
CREATE FUNCTION regress_part_guard() RETURNS TABLE (tbl text, rls bool, force bool, policies bigint,
                                                    audit_triggers bigint, protected bool, audited bool)
LANGUAGE sql AS $$
  SELECT c.oid::regclass::text, c.relrowsecurity, c.relforcerowsecurity,
         (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid),
         (SELECT count(*) FROM pg_trigger t WHERE t.tgrelid = c.oid
             AND t.tgfoid = 'phi_guard.audit_trigger()'::regprocedure AND t.tgenabled = 'O'),
         EXISTS (SELECT FROM phi_guard.protected_tables p WHERE p.relid = c.oid),
         EXISTS (SELECT FROM phi_guard.audited_tables a WHERE a.relid = c.oid)
    FROM pg_class c WHERE c.relnamespace = 'regress_part'::regnamespace AND c.relkind IN ('r', 'p')
   ORDER BY c.relname
$$;
-- Row entries written since a mark: kind, table, key.
CREATE FUNCTION regress_part_entries(since xid8) RETURNS TABLE (kind text, tbl text, row_key text)
LANGUAGE sql AS $$
  SELECT r->>'kind', r->>'table', r->>'row_key'
    FROM phi_guard.audit_log, LATERAL (SELECT record::jsonb AS r) j
   WHERE xid > since AND r->>'kind' IN ('insert', 'update', 'delete', 'truncate')
   ORDER BY xid, id
$$;

-- ---------------------------------------------------------------------
-- Partitions: a table partitioned by tenant, one partition per clinic and
-- a default one, itself partitioned by hash
-- ---------------------------------------------------------------------
SET ROLE regress_part_owner;
CREATE TABLE regress_part.visits (id int, tenant text NOT NULL, note text, PRIMARY KEY (tenant, id))
  PARTITION BY LIST (tenant);
CREATE TABLE regress_part.visits_a PARTITION OF regress_part.visits FOR VALUES IN ('clinic-a');
CREATE TABLE regress_part.visits_rest PARTITION OF regress_part.visits DEFAULT PARTITION BY HASH (id);
CREATE TABLE regress_part.visits_rest_0 PARTITION OF regress_part.visits_rest
  FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE regress_part.visits_rest_1 PARTITION OF regress_part.visits_rest
  FOR VALUES WITH (MODULUS 2, REMAINDER 1);
-- protecting or auditing one partition alone would leave its rows open
-- through the parent: refused
SELECT regress_try($$SELECT phi_protect_table('regress_part.visits_a', 'tenant')$$) AS protect_partition_alone;
SELECT phi_protect_table('regress_part.visits', 'tenant');
SET ROLE regress_part_aadmin;
SELECT regress_try($$SELECT phi_audit_enable('regress_part.visits_rest_0')$$) AS audit_partition_alone;
SELECT phi_audit_enable('regress_part.visits');
SET ROLE regress_part_owner;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA regress_part TO regress_part_app;
BEGIN;
SELECT phi_set_context(:'tok_a');
INSERT INTO regress_part.visits VALUES (1, 'clinic-a', 'a'), (2, 'clinic-a', 'a');
SELECT phi_set_context(:'tok_b');
INSERT INTO regress_part.visits VALUES (3, 'clinic-b', 'b'), (4, 'clinic-b', 'b'), (5, 'clinic-b', 'b');
COMMIT;
RESET ROLE;
SELECT * FROM regress_part_guard();

-- the attack: the application goes to the partitions directly
SET ROLE regress_part_app;
SELECT * FROM regress_part_rows(NULL);
SELECT * FROM regress_part_rows(:'tok_a');
SELECT * FROM regress_part_rows(:'tok_b');
WITH d AS (DELETE FROM regress_part.visits_rest_0 RETURNING 1),
     e AS (DELETE FROM regress_part.visits_rest_1 RETURNING 1)
SELECT (SELECT count(*) FROM d) + (SELECT count(*) FROM e) AS deleted_without_context;
BEGIN;
SELECT phi_set_context(:'tok_a');
WITH d AS (DELETE FROM regress_part.visits_rest RETURNING 1) SELECT count(*) AS deleted_by_other_tenant FROM d;
WITH u AS (UPDATE regress_part.visits_rest_1 SET note = 'x' RETURNING 1) SELECT count(*) AS updated_by_other_tenant FROM u;
SELECT regress_try($$INSERT INTO regress_part.visits_rest VALUES (9, 'clinic-b', 'forged')$$) AS insert_other_tenant;
SELECT regress_try($$UPDATE regress_part.visits SET tenant = 'clinic-b' WHERE id = 1$$) AS move_row_to_other;
COMMIT;

-- every change through a partition or through the parent: one entry each,
-- under the table the statement named (a row moving between partitions
-- through the parent included)
RESET ROLE;
SELECT pg_current_xact_id() AS mark \gset
SET ROLE regress_part_app;
BEGIN;
SELECT phi_set_context(:'tok_b');
UPDATE regress_part.visits_rest SET note = 'through the default partition' WHERE id = 3;
UPDATE regress_part.visits SET note = 'through the root' WHERE id = 3;
UPDATE regress_part.visits SET id = 13 WHERE id = 3;
INSERT INTO regress_part.visits VALUES (6, 'clinic-b', 'through the root');
DELETE FROM regress_part.visits_rest_0;
DELETE FROM regress_part.visits_rest_1;
COMMIT;
RESET ROLE;
SELECT * FROM regress_part_entries(:'mark');

-- future partitions: created later, or made elsewhere with rows of their
-- own and attached
SET ROLE regress_part_owner;
CREATE TABLE regress_part.visits_c PARTITION OF regress_part.visits FOR VALUES IN ('clinic-c');
CREATE TABLE regress_part.visits_d (id int, tenant text NOT NULL, note text, PRIMARY KEY (tenant, id));
INSERT INTO regress_part.visits_d VALUES (40, 'clinic-d', 'd'), (41, 'clinic-d', 'd');
ALTER TABLE regress_part.visits ATTACH PARTITION regress_part.visits_d FOR VALUES IN ('clinic-d');
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA regress_part TO regress_part_app;
RESET ROLE;
SELECT * FROM regress_part_guard() WHERE tbl IN ('regress_part.visits_c', 'regress_part.visits_d');
SELECT r->>'kind' AS kind, r->>'table' AS tbl, r->'detail' AS detail
  FROM phi_guard.audit_log, LATERAL (SELECT record::jsonb AS r) j
 WHERE xid > :'mark' AND r->>'kind' IN ('protect', 'audit_enable') ORDER BY xid, id;
SET ROLE regress_part_app;
SELECT * FROM regress_part_rows(NULL) WHERE tbl = 'regress_part.visits_d';
SELECT * FROM regress_part_rows(:'tok_a') WHERE tbl = 'regress_part.visits_d';
SELECT * FROM regress_part_rows(:'tok_d') WHERE tbl = 'regress_part.visits_d';
SELECT pg_current_xact_id() AS mark \gset
BEGIN;
SELECT phi_set_context(:'tok_d');
UPDATE regress_part.visits_d SET note = 'audited' WHERE id = 40;
COMMIT;
RESET ROLE;
SELECT * FROM regress_part_entries(:'mark');

-- detached, a partition keeps its protection and its auditing
SET ROLE regress_part_owner;
ALTER TABLE regress_part.visits DETACH PARTITION regress_part.visits_d;
SELECT regress_try('ALTER TABLE regress_part.visits_d DISABLE ROW LEVEL SECURITY') AS disable_after_detach;
RESET ROLE;
SELECT * FROM regress_part_guard() WHERE tbl = 'regress_part.visits_d';
SET ROLE regress_part_app;
SELECT * FROM regress_part_rows(NULL) WHERE tbl = 'regress_part.visits_d';
SELECT pg_current_xact_id() AS mark \gset
BEGIN;
SELECT phi_set_context(:'tok_d');
DELETE FROM regress_part.visits_d WHERE id = 41;
COMMIT;
RESET ROLE;
SELECT * FROM regress_part_entries(:'mark');
-- a protected, audited table cannot hang under a parent without them;
-- hung under a guarded parent, a table without them gets them
SET ROLE regress_part_owner;
CREATE TABLE regress_part.open_parent (id int, tenant text NOT NULL, note text, PRIMARY KEY (tenant, id))
  PARTITION BY LIST (tenant);
SELECT regress_try($$ALTER TABLE regress_part.open_parent ATTACH PARTITION regress_part.visits_d FOR VALUES IN ('clinic-d')$$)
  AS attach_under_open_parent;
SELECT regress_try($$ALTER TABLE regress_part.visits ATTACH PARTITION regress_part.open_parent FOR VALUES IN ('clinic-o')$$)
  AS attach_open_table_under_protected;
RESET ROLE;
SELECT * FROM regress_part_guard() WHERE tbl = 'regress_part.open_parent';
DROP TABLE regress_part.open_parent;
-- nor be unprotected or stop being audited alone while in the tree
SET ROLE regress_part_kadmin;
SELECT regress_try($$SELECT phi_unprotect_table('regress_part.visits_a')$$) AS unprotect_partition_alone;
SET ROLE regress_part_aadmin;
SELECT regress_try($$SELECT phi_audit_disable('regress_part.visits_a')$$) AS stop_auditing_partition_alone;
RESET ROLE;

-- TRUNCATE (which row security does not filter; the application has no
-- TRUNCATE privilege, the owner has): one entry per table it empties
SELECT pg_current_xact_id() AS mark \gset
SET ROLE regress_part_owner;
TRUNCATE regress_part.visits_a;
TRUNCATE regress_part.visits;
RESET ROLE;
SELECT * FROM regress_part_entries(:'mark');

-- ---------------------------------------------------------------------
-- Inheritance children: present (INHERITS before protecting) and future
-- (CREATE TABLE ... INHERITS, ALTER TABLE ... INHERIT with rows of its own)
-- ---------------------------------------------------------------------
SET ROLE regress_part_owner;
CREATE TABLE regress_part.notes (id int PRIMARY KEY, tenant text NOT NULL, body text);
CREATE TABLE regress_part.notes_old (CHECK (id < 100)) INHERITS (regress_part.notes);
SELECT phi_protect_table('regress_part.notes', 'tenant');
SET ROLE regress_part_aadmin;
SELECT phi_audit_enable('regress_part.notes');
SET ROLE regress_part_owner;
CREATE TABLE regress_part.notes_new (PRIMARY KEY (id)) INHERITS (regress_part.notes);
CREATE TABLE regress_part.notes_x (id int PRIMARY KEY, tenant text NOT NULL, body text);
INSERT INTO regress_part.notes_x VALUES (300, 'clinic-b', 'x');
ALTER TABLE regress_part.notes_x INHERIT regress_part.notes;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA regress_part TO regress_part_app;
BEGIN;
SELECT phi_set_context(:'tok_a');
INSERT INTO regress_part.notes VALUES (1, 'clinic-a', 'parent');
INSERT INTO regress_part.notes_old VALUES (2, 'clinic-a', 'old');
INSERT INTO regress_part.notes_new VALUES (200, 'clinic-a', 'new');
SELECT phi_set_context(:'tok_b');
INSERT INTO regress_part.notes_old VALUES (3, 'clinic-b', 'old');
COMMIT;
RESET ROLE;
SELECT * FROM regress_part_guard() WHERE tbl LIKE 'regress_part.notes%';
SET ROLE regress_part_app;
SELECT * FROM regress_part_rows(NULL) WHERE tbl LIKE 'regress_part.notes%';
SELECT * FROM regress_part_rows(:'tok_a') WHERE tbl LIKE 'regress_part.notes%';
SELECT * FROM regress_part_rows(:'tok_b') WHERE tbl LIKE 'regress_part.notes%';
SELECT pg_current_xact_id() AS mark \gset
BEGIN;
SELECT phi_set_context(:'tok_a');
UPDATE regress_part.notes SET body = 'through the parent';
UPDATE regress_part.notes_new SET body = 'through the child';
DELETE FROM regress_part.notes_x;
COMMIT;
RESET ROLE;
SELECT * FROM regress_part_entries(:'mark');
-- disinherited, a child stays protected and audited
SET ROLE regress_part_owner;
ALTER TABLE regress_part.notes_x NO INHERIT regress_part.notes;
RESET ROLE;
SELECT * FROM regress_part_guard() WHERE tbl = 'regress_part.notes_x';

-- a phi_key_admin and a phi_audit_admin lift it all, the tree at once
SELECT pg_current_xact_id() AS mark \gset
SET ROLE regress_part_kadmin;
SELECT phi_unprotect_table('regress_part.notes');
SET ROLE regress_part_aadmin;
SELECT phi_audit_disable('regress_part.notes');
RESET ROLE;
SELECT r->>'kind' AS kind, r->>'table' AS tbl, r->'detail' AS detail
  FROM phi_guard.audit_log, LATERAL (SELECT record::jsonb AS r) j
 WHERE xid > :'mark' AND r->>'kind' IN ('unprotect', 'audit_disable') ORDER BY xid, id;
SELECT * FROM regress_part_guard() WHERE tbl LIKE 'regress_part.notes%';

-- dropping tables (the data goes with them) is allowed, and leaves the
-- registries
SET ROLE regress_part_owner;
DROP TABLE regress_part.visits, regress_part.visits_d, regress_part.notes_x, regress_part.notes CASCADE;
RESET ROLE;
SELECT count(*) AS left_in_registries
  FROM (SELECT relid FROM phi_guard.protected_tables UNION ALL SELECT relid FROM phi_guard.audited_tables) r
 WHERE relid::text LIKE 'regress_part.%';

DROP FUNCTION regress_part_rows(text), regress_part_guard(), regress_part_entries(xid8);
DROP SCHEMA regress_part;
REVOKE USAGE ON SCHEMA phi_guard FROM regress_part_owner;
DROP ROLE regress_part_owner, regress_part_app, regress_part_aadmin, regress_part_kadmin;
