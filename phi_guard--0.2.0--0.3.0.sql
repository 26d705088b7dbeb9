\echo Use "ALTER EXTENSION phi_guard UPDATE TO '0.3.0'" to load this file. \quit

-- phi_guard 0.2.0 -> 0.3.0: the changes of 0.3.0 only (a delta).
--
-- A fresh CREATE EXTENSION does not run this file: it runs the generated
-- install script phi_guard--0.3.0.sql, which the Makefile builds from the
-- SQL pieces it lists in SQL_PIECES (src/*/*.sql, src/reports.sql: the
-- current definition of every object).  So every change of 0.3.0 is
-- written twice: in its piece, as the object is now, and here, as the step
-- from 0.2.0.  test/t/008_upgrade.pl checks that 0.1.0 -> 0.2.0 -> 0.3.0
-- and a fresh install give the same objects, definitions, comments and
-- privileges.
-- Rules: new objects with plain CREATE; CREATE OR REPLACE only for a
-- function whose body or settings change (never to change its signature or
-- result type: DROP and CREATE it, and grant again); every reference
-- qualified; every SECURITY DEFINER function pins search_path; COMMENT ON
-- every new function; nothing executable by PUBLIC unless said so.  Append
-- each change as a section of its own, headed by what it is for.

------------------------------------------------------------------------
-- Every function has a comment (install-script rule)
------------------------------------------------------------------------

COMMENT ON FUNCTION phi_guard.phi_ciphertext_in(pg_catalog.cstring) IS
  'input function of phi_ciphertext: phi1:<base64>, validated';
COMMENT ON FUNCTION phi_guard.phi_ciphertext_out(phi_guard.phi_ciphertext) IS
  'output function of phi_ciphertext: phi1:<base64>';
COMMENT ON FUNCTION phi_guard.phi_ciphertext_recv(pg_catalog.internal) IS
  'binary input function of phi_ciphertext: the raw bytes, validated';
COMMENT ON FUNCTION phi_guard.phi_ciphertext_send(phi_guard.phi_ciphertext) IS
  'binary output function of phi_ciphertext: the raw bytes';
COMMENT ON FUNCTION phi_guard.audit_append_only() IS
  'internal: refuses UPDATE, DELETE and TRUNCATE of audit entries and blocks';
COMMENT ON FUNCTION phi_guard.audit_ddl() IS
  'internal, event trigger: DDL on audited, protected and phi_guard''s own tables is an audit entry';
COMMENT ON FUNCTION phi_guard.audit_ddl_drop() IS
  'internal, event trigger: dropping an audited table, one of its audit triggers or a phi_guard policy is an audit entry';

-- end of section: function comments

------------------------------------------------------------------------
-- Protection follows the data and only phi_guard's own functions weaken
-- it (issue 11, src/guard)
------------------------------------------------------------------------
-- From this version the library refuses, for tables registered in
-- phi_guard.protected_tables or phi_guard.audited_tables, every statement
-- that would switch off row security or FORCE, alter or drop a restrictive
-- policy (or add one that sorts before the wall), or disable, rename,
-- replace or drop an audit trigger; it extends both to
-- new partitions and inheritance children.  Here: auditing and DDL
-- auditing as in src/audit/audit.sql, the registry and functions of
-- src/guard/guard.sql, then the tables protected or audited before.

-- A table with its partitions and inheritance children, all levels, each
-- after every parent of its own (phi_audit_enable and phi_audit_disable
-- here, the guard's phi_protect_table and phi_unprotect_table).
CREATE FUNCTION phi_guard.table_tree(tbl pg_catalog.regclass) RETURNS SETOF pg_catalog.regclass
  LANGUAGE sql STABLE STRICT PARALLEL SAFE
  SET search_path = pg_catalog, pg_temp AS
$$
  WITH RECURSIVE tree (relid, depth) AS (
    SELECT tbl::pg_catalog.oid, 0
    UNION ALL
    SELECT i.inhrelid, t.depth OPERATOR(pg_catalog.+) 1
      FROM pg_catalog.pg_inherits i JOIN tree t ON i.inhparent OPERATOR(pg_catalog.=) t.relid)
  SELECT t.relid::pg_catalog.regclass FROM tree t
   GROUP BY t.relid ORDER BY pg_catalog.max(t.depth), t.relid
$$;
COMMENT ON FUNCTION phi_guard.table_tree(pg_catalog.regclass) IS
  'internal: a table and its partitions and inheritance children, each after its parents';

-- Auditing covers the table's partitions and inheritance children, present
-- (here) and future (src/guard calls it for a new one).  A statement fires
-- the statement triggers of the table it names only, so every table of the
-- tree has its own four and each change is recorded once, under the name of
-- the table the statement named.  A re-run verifies them: a missing audit
-- trigger is created again, a disabled one enabled (audit triggers are
-- found by their function, never by their names).
CREATE OR REPLACE FUNCTION phi_guard.phi_audit_enable(tbl pg_catalog.regclass) RETURNS void
  LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE
  SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
  fn pg_catalog.oid := 'phi_guard.audit_trigger()'::pg_catalog.regprocedure;
  kind "char";
  nsp pg_catalog.oid;
  parent pg_catalog.regclass;
  t pg_catalog.regclass;
  ev record;
  trig record;
  repaired pg_catalog.bool;
  acted pg_catalog.bool := false;
BEGIN
  SELECT c.relkind, c.relnamespace INTO kind, nsp
    FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl;
  IF kind IS NULL OR kind OPERATOR(pg_catalog.<>) ALL (ARRAY['r', 'p']::"char"[]) THEN
    RAISE EXCEPTION '"%" is not a table', tbl USING ERRCODE = '42809';
  END IF;
  IF nsp OPERATOR(pg_catalog.=) 'phi_guard'::pg_catalog.regnamespace THEN
    RAISE EXCEPTION 'phi_guard''s own tables cannot be audited this way' USING ERRCODE = '42809';
  END IF;
  -- on Citus the triggers also go to every shard of a distributed table,
  -- which Citus allows only when asked: each shard's changes are then
  -- entries of the chain of the node that holds it (README, "Scaling out
  -- with Citus")
  IF pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL THEN
    PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', 'on', true);
  END IF;
  -- a change made through a parent fires the parent's triggers only
  SELECT i.inhparent::pg_catalog.regclass INTO parent FROM pg_catalog.pg_inherits i
   WHERE i.inhrelid OPERATOR(pg_catalog.=) tbl
     AND NOT EXISTS (SELECT FROM phi_guard.audited_tables a
                      WHERE a.relid::pg_catalog.oid OPERATOR(pg_catalog.=) i.inhparent)
   LIMIT 1;
  IF parent IS NOT NULL THEN
    RAISE EXCEPTION 'cannot audit % alone: its rows also change through %, which is not audited', tbl, parent
      USING ERRCODE = '55000',
            HINT = pg_catalog.format('Audit %s: that covers its partitions and inheritance children.', parent);
  END IF;
  FOR t IN SELECT phi_guard.table_tree(tbl) LOOP
    IF (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) t)
       OPERATOR(pg_catalog.<>) ALL (ARRAY['r', 'p']::"char"[]) THEN
      RAISE EXCEPTION 'cannot audit %: its partition or child % is not a table', tbl, t
        USING ERRCODE = '42809';
    END IF;
    repaired := false;
    FOR ev IN SELECT * FROM (VALUES
        ('phi_guard_audit_ins', 4, 'INSERT', 'REFERENCING NEW TABLE AS phi_new'),
        ('phi_guard_audit_upd', 16, 'UPDATE', 'REFERENCING OLD TABLE AS phi_old NEW TABLE AS phi_new'),
        ('phi_guard_audit_del', 8, 'DELETE', 'REFERENCING OLD TABLE AS phi_old'),
        ('phi_guard_audit_trunc', 32, 'TRUNCATE', '')) AS e (name, bit, event, transition) LOOP
      SELECT g.tgname, g.tgenabled INTO trig FROM pg_catalog.pg_trigger g
       WHERE g.tgrelid OPERATOR(pg_catalog.=) t AND g.tgfoid OPERATOR(pg_catalog.=) fn
         AND (g.tgtype::pg_catalog.int4 OPERATOR(pg_catalog.&) ev.bit) OPERATOR(pg_catalog.<>) 0
       LIMIT 1;
      IF trig.tgname IS NULL THEN
        EXECUTE pg_catalog.format('CREATE TRIGGER %I AFTER %s ON %s %s FOR EACH STATEMENT '
                                  'EXECUTE FUNCTION phi_guard.audit_trigger()',
                                  ev.name, ev.event, t, ev.transition);
        repaired := true;
      ELSIF trig.tgenabled OPERATOR(pg_catalog.<>) 'O' THEN
        EXECUTE pg_catalog.format('ALTER TABLE %s ENABLE TRIGGER %I', t, trig.tgname);
        repaired := true;
      END IF;
    END LOOP;
    IF NOT EXISTS (SELECT FROM phi_guard.audited_tables a WHERE a.relid OPERATOR(pg_catalog.=) t) THEN
      INSERT INTO phi_guard.audited_tables (relid) VALUES (t);
      PERFORM phi_guard.audit_event('audit_enable', t,
        CASE WHEN t OPERATOR(pg_catalog.=) tbl THEN NULL
             ELSE pg_catalog.jsonb_build_object('parent', tbl::pg_catalog.text) END);
      acted := true;
    ELSIF repaired THEN
      PERFORM phi_guard.audit_event('audit_enable', t, '{"repaired": true}'::pg_catalog.jsonb);
      RAISE WARNING 'the audit triggers of % had been removed or disabled; restored', t;
      acted := true;
    END IF;
  END LOOP;
  IF NOT acted THEN
    RAISE NOTICE 'auditing of % is already enabled', tbl;
  END IF;
END
$$;
COMMENT ON FUNCTION phi_guard.phi_audit_enable(pg_catalog.regclass) IS
  'audits every INSERT, UPDATE, DELETE and TRUNCATE on a table and its partitions and children, present and future; a re-run repairs; requires phi_audit_admin';

-- Ends the auditing of a table with its partitions and children, not of a
-- partition or child alone while its parent stays audited.
CREATE OR REPLACE FUNCTION phi_guard.phi_audit_disable(tbl pg_catalog.regclass) RETURNS void
  LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE
  SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
  fn pg_catalog.oid := 'phi_guard.audit_trigger()'::pg_catalog.regprocedure;
  parent pg_catalog.regclass;
  t pg_catalog.regclass;
  trig pg_catalog.name;
BEGIN
  IF NOT EXISTS (SELECT FROM phi_guard.audited_tables a WHERE a.relid OPERATOR(pg_catalog.=) tbl) THEN
    RAISE NOTICE 'auditing of % is not enabled', tbl;
    RETURN;
  END IF;
  SELECT i.inhparent::pg_catalog.regclass INTO parent FROM pg_catalog.pg_inherits i
    JOIN phi_guard.audited_tables a ON a.relid::pg_catalog.oid OPERATOR(pg_catalog.=) i.inhparent
   WHERE i.inhrelid OPERATOR(pg_catalog.=) tbl LIMIT 1;
  IF parent IS NOT NULL THEN
    RAISE EXCEPTION 'cannot stop auditing % alone: it is a partition or child of audited table %', tbl, parent
      USING ERRCODE = '55000',
            HINT = pg_catalog.format('Run phi_audit_disable on %s: that covers its partitions and inheritance children.', parent);
  END IF;
  -- on Citus the triggers go from every shard too (as phi_audit_enable)
  IF pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL THEN
    PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', 'on', true);
  END IF;
  FOR t IN SELECT phi_guard.table_tree(tbl) LOOP
    -- out of the registry first: src/guard then lets the triggers go
    DELETE FROM phi_guard.audited_tables a WHERE a.relid OPERATOR(pg_catalog.=) t;
    CONTINUE WHEN NOT FOUND;
    FOR trig IN SELECT g.tgname FROM pg_catalog.pg_trigger g
                 WHERE g.tgrelid OPERATOR(pg_catalog.=) t AND g.tgfoid OPERATOR(pg_catalog.=) fn LOOP
      EXECUTE pg_catalog.format('DROP TRIGGER %I ON %s', trig, t);
    END LOOP;
    PERFORM phi_guard.audit_event('audit_disable', t,
      CASE WHEN t OPERATOR(pg_catalog.=) tbl THEN NULL
           ELSE pg_catalog.jsonb_build_object('parent', tbl::pg_catalog.text) END);
  END LOOP;
END
$$;
COMMENT ON FUNCTION phi_guard.phi_audit_disable(pg_catalog.regclass) IS
  'removes the audit triggers of a table and its partitions and children (itself an audit entry); requires phi_audit_admin';

-- DDL on audited tables (ALTER TABLE ..., DROP TRIGGER, DROP TABLE), on
-- phi_guard's own tables and on tables under row security, protected
-- tables among them (ALTER TABLE, CREATE / ALTER / DROP POLICY), is itself
-- an audit entry; the extension's own scripts are not entries.  Tables are
-- recognised by the registry and their catalog state, audit triggers by
-- their function, never by a name.
CREATE OR REPLACE FUNCTION phi_guard.audit_ddl() RETURNS event_trigger
  LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
  fn pg_catalog.oid := 'phi_guard.audit_trigger()'::pg_catalog.regprocedure;
  r record;
  enabled pg_catalog.bool;
BEGIN
  -- a superuser restoring a dump under session_replication_role = replica
  -- (the restore runbook) replays DDL whose entries the dump already holds
  IF pg_catalog.current_setting('session_replication_role') OPERATOR(pg_catalog.=) 'replica'
     AND (SELECT s.rolsuper FROM pg_catalog.pg_roles s WHERE s.rolname OPERATOR(pg_catalog.=) SESSION_USER) THEN
    RETURN;
  END IF;
  FOR r IN SELECT c.objid, c.command_tag, x.relrowsecurity, x.relforcerowsecurity
             FROM pg_catalog.pg_event_trigger_ddl_commands() c
             JOIN pg_catalog.pg_class x ON x.oid OPERATOR(pg_catalog.=) c.objid
            WHERE c.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
              -- not the extension's own scripts (CREATE / ALTER EXTENSION)
              AND NOT c.in_extension
              AND (c.objid OPERATOR(pg_catalog.=) ANY (SELECT a.relid::pg_catalog.oid FROM phi_guard.audited_tables a)
                   OR c.schema_name OPERATOR(pg_catalog.=) 'phi_guard'
                   OR x.relrowsecurity OR x.relforcerowsecurity)
  LOOP
    SELECT pg_catalog.bool_and(t.tgenabled OPERATOR(pg_catalog.<>) 'D') INTO enabled
      FROM pg_catalog.pg_trigger t
     WHERE t.tgrelid OPERATOR(pg_catalog.=) r.objid AND t.tgfoid OPERATOR(pg_catalog.=) fn;
    PERFORM phi_guard.audit_event('ddl', r.objid::pg_catalog.regclass,
      pg_catalog.jsonb_build_object('command', r.command_tag, 'audit_triggers_enabled', enabled)
      OPERATOR(pg_catalog.||)
      CASE WHEN r.relrowsecurity OR r.relforcerowsecurity
           THEN pg_catalog.jsonb_build_object('row_security', r.relrowsecurity,
                                              'force_row_security', r.relforcerowsecurity)
           ELSE '{}'::pg_catalog.jsonb END);
  END LOOP;
  -- CREATE / ALTER POLICY on a table under row security
  FOR r IN SELECT p.polrelid, p.polname, c.command_tag
             FROM pg_catalog.pg_event_trigger_ddl_commands() c
             JOIN pg_catalog.pg_policy p ON p.oid OPERATOR(pg_catalog.=) c.objid
             JOIN pg_catalog.pg_class x ON x.oid OPERATOR(pg_catalog.=) p.polrelid
            WHERE c.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_policy'::pg_catalog.regclass
              AND NOT c.in_extension
              AND (x.relrowsecurity OR x.relforcerowsecurity)
  LOOP
    PERFORM phi_guard.audit_event('ddl', r.polrelid::pg_catalog.regclass,
      pg_catalog.jsonb_build_object('command', r.command_tag, 'policy', r.polname));
  END LOOP;
  -- CREATE TRIGGER / RULE / INDEX on an audited table or one under row
  -- security: objects that see its rows (phi_audit_enable's own triggers,
  -- which only it can create, are its audit_enable entry)
  FOR r IN SELECT t.relid, c.command_tag, c.object_identity
             FROM pg_catalog.pg_event_trigger_ddl_commands() c
            CROSS JOIN LATERAL (SELECT CASE
                     WHEN c.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_trigger'::pg_catalog.regclass
                       THEN (SELECT g.tgrelid FROM pg_catalog.pg_trigger g
                              WHERE g.oid OPERATOR(pg_catalog.=) c.objid
                                AND g.tgfoid OPERATOR(pg_catalog.<>) fn)
                     WHEN c.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_rewrite'::pg_catalog.regclass
                       THEN (SELECT w.ev_class FROM pg_catalog.pg_rewrite w
                              WHERE w.oid OPERATOR(pg_catalog.=) c.objid)
                     WHEN c.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
                       THEN (SELECT i.indrelid FROM pg_catalog.pg_index i
                              WHERE i.indexrelid OPERATOR(pg_catalog.=) c.objid)
                   END AS relid) t
             JOIN pg_catalog.pg_class x ON x.oid OPERATOR(pg_catalog.=) t.relid
            WHERE NOT c.in_extension
              AND (t.relid OPERATOR(pg_catalog.=) ANY (SELECT a.relid::pg_catalog.oid FROM phi_guard.audited_tables a)
                   OR x.relrowsecurity OR x.relforcerowsecurity)
  LOOP
    PERFORM phi_guard.audit_event('ddl', r.relid::pg_catalog.regclass,
      pg_catalog.jsonb_build_object('command', r.command_tag, 'object', r.object_identity));
  END LOOP;
END
$$;
COMMENT ON FUNCTION phi_guard.audit_ddl() IS
  'internal, event trigger: DDL on audited tables, on tables under row security and on phi_guard''s own tables is an audit entry';

CREATE OR REPLACE FUNCTION phi_guard.audit_ddl_drop() RETURNS event_trigger
  LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
  r record;
  tbl pg_catalog.regclass;
BEGIN
  -- a superuser restoring a dump under session_replication_role = replica
  -- (the restore runbook) replays DDL whose entries the dump already holds
  IF pg_catalog.current_setting('session_replication_role') OPERATOR(pg_catalog.=) 'replica'
     AND (SELECT s.rolsuper FROM pg_catalog.pg_roles s WHERE s.rolname OPERATOR(pg_catalog.=) SESSION_USER) THEN
    RETURN;
  END IF;
  FOR r IN SELECT d.objid, d.object_type, d.object_identity, d.address_names
             FROM pg_catalog.pg_event_trigger_dropped_objects() d LOOP
    IF r.object_type OPERATOR(pg_catalog.=) 'table'
       AND EXISTS (SELECT FROM phi_guard.audited_tables a
                    WHERE a.relid::pg_catalog.oid OPERATOR(pg_catalog.=) r.objid) THEN
      DELETE FROM phi_guard.audited_tables a WHERE a.relid::pg_catalog.oid OPERATOR(pg_catalog.=) r.objid;
      PERFORM phi_guard.audit_event('ddl', NULL,
        pg_catalog.jsonb_build_object('command', 'DROP TABLE', 'object', r.object_identity));
    ELSIF r.object_type OPERATOR(pg_catalog.=) ANY (ARRAY['trigger', 'policy']) THEN
      -- of a table that stays (not DROP TABLE): a trigger of an audited
      -- table, a policy of a table under row security
      tbl := pg_catalog.to_regclass(pg_catalog.quote_ident(r.address_names[1]) OPERATOR(pg_catalog.||) '.'
                                    OPERATOR(pg_catalog.||) pg_catalog.quote_ident(r.address_names[2]));
      IF (r.object_type OPERATOR(pg_catalog.=) 'trigger'
          AND EXISTS (SELECT FROM phi_guard.audited_tables a WHERE a.relid OPERATOR(pg_catalog.=) tbl))
         OR (r.object_type OPERATOR(pg_catalog.=) 'policy'
             AND EXISTS (SELECT FROM pg_catalog.pg_class x
                          WHERE x.oid OPERATOR(pg_catalog.=) tbl
                            AND (x.relrowsecurity OR x.relforcerowsecurity))) THEN
        PERFORM phi_guard.audit_event('ddl', NULL,
          pg_catalog.jsonb_build_object('command', 'DROP ' OPERATOR(pg_catalog.||) pg_catalog.upper(r.object_type),
                                        'object', r.object_identity));
      END IF;
    END IF;
  END LOOP;
END
$$;
COMMENT ON FUNCTION phi_guard.audit_ddl_drop() IS
  'internal, event trigger: dropping an audited table, a trigger of one or a policy of a table under row security is an audit entry';

REVOKE ALL ON FUNCTION phi_guard.table_tree(pg_catalog.regclass) FROM PUBLIC;

-- Tables protected by phi_protect_table: each partition and inheritance
-- child has a row of its own (kept by pg_dump; relid follows a renamed
-- table, tenant_column a renamed column).
CREATE TABLE phi_guard.protected_tables (
  relid         pg_catalog.regclass NOT NULL,
  tenant_column pg_catalog.name NOT NULL,
  protected_at  pg_catalog.timestamptz NOT NULL DEFAULT pg_catalog.now(),
  protected_by  pg_catalog.name NOT NULL DEFAULT SESSION_USER,
  CONSTRAINT protected_tables_pkey PRIMARY KEY (relid)
);
COMMENT ON TABLE phi_guard.protected_tables IS
  'tables protected by phi_protect_table, partitions and inheritance children included';
SELECT pg_catalog.pg_extension_config_dump('phi_guard.protected_tables', '');

-- The work of phi_protect_table, for tbl and then each of its partitions
-- and inheritance children.  Run as the extension's owner by the C entry
-- point, which has checked that the caller owns tbl.  A first run creates
-- the restrictive tenant wall and two permissive policies; a re-run keeps
-- the permissive ones as they were tuned (a dropped phi_guard_tenant_access
-- stays dropped) and verifies the rest: row security on and forced, the
-- wall present, restrictive, for all commands and every role, with the rule
-- it was given; whatever had been changed is restored and named in a
-- WARNING and the audit entry.  While it works, the table is out of the
-- registry (in this transaction only), so that the guard lets it repair.
CREATE FUNCTION phi_guard.protect_apply(tbl pg_catalog.regclass, tenant_column pg_catalog.name)
  RETURNS void
  LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE
  SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
  cls record;
  typ pg_catalog.regtype;
  cond pg_catalog.text;
  registered pg_catalog.name;
  early pg_catalog.name;
  parent pg_catalog.regclass;
  wall record;
  rule_before pg_catalog.text;
  repaired pg_catalog.text[] := '{}';
  t pg_catalog.regclass;
  r record;
  -- on a Citus distributed table the policies go to every shard, where
  -- Citus 13 sends no subquery and no AS RESTRICTIVE: the wall is then the
  -- table's only policy, permissive, reading the tenant per row (each node
  -- verifies the context once per transaction, src/context)
  distributed pg_catalog.bool := pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL;
  sel pg_catalog.text := '(SELECT ';
BEGIN
  SELECT c.relkind, c.relnamespace, c.relowner, c.relrowsecurity, c.relforcerowsecurity INTO cls
    FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl;
  IF cls.relkind OPERATOR(pg_catalog.<>) ALL (ARRAY['r', 'p']::"char"[]) THEN
    RAISE EXCEPTION '"%" is not a table', tbl USING ERRCODE = '42809',
      DETAIL = 'Row level security protects tables and partitioned tables only.';
  END IF;
  IF cls.relnamespace OPERATOR(pg_catalog.=) 'phi_guard'::pg_catalog.regnamespace THEN
    RAISE EXCEPTION 'phi_guard''s own tables cannot be protected this way' USING ERRCODE = '42809';
  END IF;
  SELECT a.atttypid::pg_catalog.regtype INTO typ FROM pg_catalog.pg_attribute a
   WHERE a.attrelid OPERATOR(pg_catalog.=) tbl AND a.attname OPERATOR(pg_catalog.=) tenant_column
     AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped;
  IF typ IS NULL THEN
    RAISE EXCEPTION 'column "%" of "%" does not exist', tenant_column, tbl USING ERRCODE = '42703';
  END IF;
  IF typ OPERATOR(pg_catalog.<>) ALL (ARRAY['text', 'character varying', 'uuid', 'smallint',
                                             'integer', 'bigint']::pg_catalog.regtype[]) THEN
    RAISE EXCEPTION 'tenant column "%" has type %', tenant_column, typ USING ERRCODE = '42804',
      HINT = 'The tenant column must be text, varchar, uuid, smallint, integer or bigint.';
  END IF;
  -- rows of a partition or child are also read and changed through its
  -- parents, which apply their own policies, not the child's
  SELECT i.inhparent::pg_catalog.regclass INTO parent FROM pg_catalog.pg_inherits i
   WHERE i.inhrelid OPERATOR(pg_catalog.=) tbl
     AND NOT EXISTS (SELECT FROM phi_guard.protected_tables p
                      WHERE p.relid::pg_catalog.oid OPERATOR(pg_catalog.=) i.inhparent)
   LIMIT 1;
  IF parent IS NOT NULL THEN
    RAISE EXCEPTION 'cannot protect % alone: its rows are also reached through %, which is not protected',
      tbl, parent USING ERRCODE = '55000',
      HINT = pg_catalog.format('Protect %s: that covers its partitions and inheritance children.', parent);
  END IF;
  SELECT p.tenant_column INTO registered FROM phi_guard.protected_tables p
   WHERE p.relid OPERATOR(pg_catalog.=) tbl;
  IF registered OPERATOR(pg_catalog.<>) tenant_column THEN
    RAISE EXCEPTION '% is protected on tenant column "%"', tbl, registered USING ERRCODE = '42501',
      DETAIL = 'Moving the tenant wall to another column would change which tenant sees each row.',
      HINT = 'To protect it on another column, a phi_key_admin runs phi_unprotect_table first.';
  END IF;
  -- restrictive policies apply in name order: one before the wall would
  -- see every tenant's rows (the C guard refuses new ones)
  SELECT p.polname INTO early FROM pg_catalog.pg_policy p
   WHERE p.polrelid OPERATOR(pg_catalog.=) tbl AND NOT p.polpermissive
     AND p.polname OPERATOR(pg_catalog.<) 'phi_guard_tenant'::pg_catalog.name
   ORDER BY p.polname LIMIT 1;
  IF early IS NOT NULL THEN
    RAISE EXCEPTION 'restrictive policy "%" of % sorts before the tenant wall "phi_guard_tenant"', early, tbl
      USING ERRCODE = '55000',
            DETAIL = 'PostgreSQL applies restrictive policies in name order; a policy applied before the wall sees every tenant''s rows.',
            HINT = 'Rename the policy so that it sorts after "phi_guard_tenant", then protect the table.';
  END IF;

  IF distributed THEN
    EXECUTE 'SELECT EXISTS (SELECT FROM pg_catalog.pg_dist_partition WHERE logicalrelid OPERATOR(pg_catalog.=) $1)'
      INTO distributed USING tbl;
  END IF;
  IF distributed THEN
    sel := '(';
  END IF;
  -- the context's tenant, once per query (an InitPlan, or per row on Citus),
  -- cast to the column's type; a tenant that is not of that type matches no
  -- row (no error)
  IF typ OPERATOR(pg_catalog.=) ANY (ARRAY['text', 'character varying']::pg_catalog.regtype[]) THEN
    cond := pg_catalog.format('%I OPERATOR(pg_catalog.=) %sphi_guard.phi_tenant_id())::%s',
                              tenant_column, sel, typ);
  ELSE
    cond := pg_catalog.format('%I OPERATOR(pg_catalog.=) %sCASE WHEN phi_guard.phi_tenant_id() '
                              'OPERATOR(pg_catalog.~) %L THEN phi_guard.phi_tenant_id()::%s END)',
                              tenant_column, sel,
                              CASE
                                WHEN typ OPERATOR(pg_catalog.=) 'uuid'::pg_catalog.regtype
                                  THEN '^[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}$'
                                WHEN typ OPERATOR(pg_catalog.=) 'smallint'::pg_catalog.regtype THEN '^-?[0-9]{1,4}$'
                                WHEN typ OPERATOR(pg_catalog.=) 'integer'::pg_catalog.regtype THEN '^-?[0-9]{1,9}$'
                                ELSE '^-?[0-9]{1,18}$' END,
                              typ);
  END IF;

  DELETE FROM phi_guard.protected_tables p WHERE p.relid OPERATOR(pg_catalog.=) tbl;
  IF registered IS NOT NULL AND NOT (cls.relrowsecurity AND cls.relforcerowsecurity) THEN
    repaired := repaired OPERATOR(pg_catalog.||) 'row security'::pg_catalog.text;
  END IF;
  EXECUTE pg_catalog.format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY', tbl);

  IF distributed THEN
    SELECT p.polname INTO early FROM pg_catalog.pg_policy p
     WHERE p.polrelid OPERATOR(pg_catalog.=) tbl
       AND p.polname OPERATOR(pg_catalog.<>) 'phi_guard_tenant'::pg_catalog.name
     ORDER BY p.polname LIMIT 1;
    IF early IS NOT NULL THEN
      RAISE EXCEPTION 'Citus table % has policy "%" besides the tenant wall', tbl, early
        USING ERRCODE = '55000',
              DETAIL = 'Citus 13 gives the shards every policy as permissive, so any other policy would widen the wall.',
              HINT = 'Drop the other policies of the table, then protect it.';
    END IF;
    IF EXISTS (SELECT FROM pg_catalog.pg_policy p WHERE p.polrelid OPERATOR(pg_catalog.=) tbl) THEN
      EXECUTE pg_catalog.format('DROP POLICY phi_guard_tenant ON %s', tbl);
    END IF;
    EXECUTE pg_catalog.format('CREATE POLICY phi_guard_tenant ON %s AS PERMISSIVE FOR ALL TO PUBLIC '
                              'USING (%s) WITH CHECK (%s)', tbl, cond, cond);
  ELSE
    SELECT p.oid, p.polpermissive, p.polcmd,
           pg_catalog.concat_ws(' / ', p.polroles::pg_catalog.text,
                                pg_catalog.pg_get_expr(p.polqual, p.polrelid),
                                pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid)) AS rule
      INTO wall FROM pg_catalog.pg_policy p
     WHERE p.polrelid OPERATOR(pg_catalog.=) tbl AND p.polname OPERATOR(pg_catalog.=) 'phi_guard_tenant';
    IF wall.oid IS NOT NULL AND NOT wall.polpermissive AND wall.polcmd OPERATOR(pg_catalog.=) '*' THEN
      rule_before := wall.rule;
      EXECUTE pg_catalog.format('ALTER POLICY phi_guard_tenant ON %s TO PUBLIC USING (%s) WITH CHECK (%s)',
                                tbl, cond, cond);
      IF rule_before OPERATOR(pg_catalog.<>) (
           SELECT pg_catalog.concat_ws(' / ', p.polroles::pg_catalog.text,
                                       pg_catalog.pg_get_expr(p.polqual, p.polrelid),
                                       pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid))
             FROM pg_catalog.pg_policy p WHERE p.oid OPERATOR(pg_catalog.=) wall.oid) THEN
        repaired := repaired OPERATOR(pg_catalog.||) 'the tenant policy''s rule or roles'::pg_catalog.text;
      END IF;
    ELSE
      IF wall.oid IS NOT NULL THEN
        EXECUTE pg_catalog.format('DROP POLICY phi_guard_tenant ON %s', tbl);
        repaired := repaired OPERATOR(pg_catalog.||) 'the tenant policy''s kind'::pg_catalog.text;
      ELSIF registered IS NOT NULL THEN
        repaired := repaired OPERATOR(pg_catalog.||) 'the missing tenant policy'::pg_catalog.text;
      END IF;
      EXECUTE pg_catalog.format('CREATE POLICY phi_guard_tenant ON %s AS RESTRICTIVE FOR ALL TO PUBLIC '
                                'USING (%s) WITH CHECK (%s)', tbl, cond, cond);
    END IF;
    -- the permissive policies come with the first protection only
    IF registered IS NULL AND wall.oid IS NULL THEN
      EXECUTE pg_catalog.format('CREATE POLICY phi_guard_tenant_access ON %s AS PERMISSIVE FOR ALL TO PUBLIC '
                                'USING (true) WITH CHECK (true)', tbl);
      EXECUTE pg_catalog.format('CREATE POLICY phi_guard_break_glass ON %s AS PERMISSIVE FOR SELECT TO PUBLIC '
                                'USING ((SELECT phi_guard.break_glass_use(%L::pg_catalog.regclass)))',
                                tbl, tbl::pg_catalog.text);
    END IF;
  END IF;
  INSERT INTO phi_guard.protected_tables (relid, tenant_column) VALUES (tbl, tenant_column);

  IF registered IS NULL OR pg_catalog.cardinality(repaired) OPERATOR(pg_catalog.>) 0 THEN
    PERFORM phi_guard.audit_event('protect', tbl,
      pg_catalog.jsonb_build_object('tenant_column', tenant_column)
      OPERATOR(pg_catalog.||)
      CASE WHEN pg_catalog.cardinality(repaired) OPERATOR(pg_catalog.=) 0 THEN '{}'::pg_catalog.jsonb
           ELSE pg_catalog.jsonb_build_object('repaired', repaired) END);
  END IF;
  IF pg_catalog.cardinality(repaired) OPERATOR(pg_catalog.>) 0 THEN
    RAISE WARNING 'the protection of % had been weakened; restored: %', tbl,
      pg_catalog.array_to_string(repaired, ', ');
  ELSIF registered IS NOT NULL THEN
    RAISE NOTICE '% is already protected on tenant column "%"', tbl, tenant_column;
  END IF;

  -- who would still bypass the policies
  FOR r IN SELECT a.rolname, a.rolsuper, a.oid OPERATOR(pg_catalog.=) cls.relowner AS is_owner
             FROM pg_catalog.pg_roles a
            WHERE (a.rolsuper OR a.rolbypassrls)
              AND (a.oid OPERATOR(pg_catalog.=) cls.relowner
                   OR (NOT a.rolsuper AND pg_catalog.has_table_privilege(a.oid, tbl, 'SELECT, INSERT, UPDATE, DELETE')))
  LOOP
    RAISE WARNING 'role "%" bypasses the row-level security of %', r.rolname, tbl
      USING DETAIL = CASE WHEN r.is_owner THEN 'It owns the table and is '
                          ELSE 'It has privileges on the table and is ' END
                     OPERATOR(pg_catalog.||) CASE WHEN r.rolsuper THEN 'a superuser.' ELSE 'BYPASSRLS.' END,
            HINT = 'Let the application connect as a role that is neither superuser nor BYPASSRLS nor the owner.';
  END LOOP;

  -- then its partitions and inheritance children, each before its own
  FOR t IN SELECT i.inhrelid::pg_catalog.regclass FROM pg_catalog.pg_inherits i
            WHERE i.inhparent OPERATOR(pg_catalog.=) tbl ORDER BY i.inhrelid LOOP
    PERFORM phi_guard.protect_apply(t, tenant_column);
  END LOOP;
END
$$;
COMMENT ON FUNCTION phi_guard.protect_apply(pg_catalog.regclass, pg_catalog.name) IS
  'internal: the work of phi_protect_table, run as the extension owner; granted to no one';

CREATE OR REPLACE FUNCTION phi_guard.phi_protect_table(tbl pg_catalog.regclass, tenant_column pg_catalog.name)
  RETURNS void
  AS 'MODULE_PATHNAME', 'phi_guard_protect_table'
  LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION phi_guard.phi_protect_table(pg_catalog.regclass, pg_catalog.name) IS
  'for the table''s owner: forces row-level security on it and its partitions and children, present and future: only rows of the context''s tenant, nothing without a context, reads under break-glass; a re-run repairs';

-- Only a phi_key_admin, who registers the keys that sign contexts (and so
-- could read every tenant anyway), may take a table's protection away.
CREATE OR REPLACE FUNCTION phi_guard.phi_unprotect_table(tbl pg_catalog.regclass) RETURNS void
  LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE
  SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
  parent pg_catalog.regclass;
  t pg_catalog.regclass;
  p pg_catalog.name;
BEGIN
  IF NOT EXISTS (SELECT FROM phi_guard.protected_tables x WHERE x.relid OPERATOR(pg_catalog.=) tbl) THEN
    RAISE NOTICE '% is not protected', tbl;
    RETURN;
  END IF;
  SELECT i.inhparent::pg_catalog.regclass INTO parent FROM pg_catalog.pg_inherits i
    JOIN phi_guard.protected_tables x ON x.relid::pg_catalog.oid OPERATOR(pg_catalog.=) i.inhparent
   WHERE i.inhrelid OPERATOR(pg_catalog.=) tbl LIMIT 1;
  IF parent IS NOT NULL THEN
    RAISE EXCEPTION 'cannot unprotect % alone: it is a partition or child of protected table %', tbl, parent
      USING ERRCODE = '55000',
            HINT = pg_catalog.format('Unprotect %s: that covers its partitions and inheritance children.', parent);
  END IF;
  FOR t IN SELECT phi_guard.table_tree(tbl) LOOP
    -- out of the registry first: the guard then lets the protection go
    DELETE FROM phi_guard.protected_tables x WHERE x.relid OPERATOR(pg_catalog.=) t;
    CONTINUE WHEN NOT FOUND;
    EXECUTE pg_catalog.format('ALTER TABLE %s NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY', t);
    FOR p IN SELECT x.polname FROM pg_catalog.pg_policy x
              WHERE x.polrelid OPERATOR(pg_catalog.=) t
                AND x.polname OPERATOR(pg_catalog.=) ANY (ARRAY['phi_guard_tenant', 'phi_guard_tenant_access',
                                                                'phi_guard_break_glass']::pg_catalog.name[]) LOOP
      EXECUTE pg_catalog.format('DROP POLICY %I ON %s', p, t);
    END LOOP;
    PERFORM phi_guard.audit_event('unprotect', t,
      CASE WHEN t OPERATOR(pg_catalog.=) tbl THEN NULL
           ELSE pg_catalog.jsonb_build_object('parent', tbl::pg_catalog.text) END);
  END LOOP;
END
$$;
COMMENT ON FUNCTION phi_guard.phi_unprotect_table(pg_catalog.regclass) IS
  'reverses phi_protect_table on a table and its partitions and children (audited); requires phi_key_admin';

-- A new inheritance link child -> parent (CREATE TABLE ... PARTITION OF /
-- INHERITS, ATTACH PARTITION, INHERIT), from the C guard when the statement
-- ends: the child, with its own partitions and children, gets the parent's
-- protection and auditing; a protected or audited child under a parent
-- without them is refused, since its rows would be read or changed through
-- the parent without the wall or without entries.  A link the statement
-- removed again (DETACH, NO INHERIT) changes nothing: the child keeps its
-- protection and auditing.
CREATE FUNCTION phi_guard.guard_inherit(child pg_catalog.regclass, parent pg_catalog.regclass)
  RETURNS void
  LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE
  SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
  col pg_catalog.name;
  other record;
BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_inherits i
                  WHERE i.inhrelid OPERATOR(pg_catalog.=) child
                    AND i.inhparent OPERATOR(pg_catalog.=) parent) THEN
    RETURN;
  END IF;
  SELECT p.tenant_column INTO col FROM phi_guard.protected_tables p
   WHERE p.relid OPERATOR(pg_catalog.=) parent;
  SELECT p.relid, p.tenant_column INTO other
    FROM phi_guard.table_tree(child) t(relid)
    JOIN phi_guard.protected_tables p ON p.relid OPERATOR(pg_catalog.=) t.relid
   WHERE col IS NULL OR p.tenant_column OPERATOR(pg_catalog.<>) col
   LIMIT 1;
  IF other.relid IS NOT NULL THEN
    RAISE EXCEPTION 'cannot make % a partition or child of %', child, parent USING ERRCODE = '42501',
      DETAIL = CASE WHEN col IS NULL
                 THEN pg_catalog.format('%s is protected and %s is not: its rows would be read through %s without the tenant wall.',
                                        other.relid, parent, parent)
                 ELSE pg_catalog.format('%s is protected on tenant column "%s", %s on "%s".',
                                        other.relid, other.tenant_column, parent, col) END,
      HINT = 'Protect the parent first (phi_protect_table covers its partitions and children), on the same tenant column.';
  END IF;
  IF col IS NOT NULL AND NOT EXISTS (SELECT FROM phi_guard.protected_tables p
                                      WHERE p.relid OPERATOR(pg_catalog.=) child) THEN
    PERFORM phi_guard.protect_apply(child, col);
  END IF;

  IF NOT EXISTS (SELECT FROM phi_guard.audited_tables a WHERE a.relid OPERATOR(pg_catalog.=) parent) THEN
    SELECT a.relid INTO other
      FROM phi_guard.table_tree(child) t(relid)
      JOIN phi_guard.audited_tables a ON a.relid OPERATOR(pg_catalog.=) t.relid LIMIT 1;
    IF other.relid IS NOT NULL THEN
      RAISE EXCEPTION 'cannot make % a partition or child of %', child, parent USING ERRCODE = '42501',
        DETAIL = pg_catalog.format('%s is audited and %s is not: its rows would change through %s without audit entries.',
                                   other.relid, parent, parent),
        HINT = 'Audit the parent first (phi_audit_enable covers its partitions and children).';
    END IF;
  ELSIF EXISTS (SELECT FROM phi_guard.table_tree(child) t(relid)
                 WHERE NOT EXISTS (SELECT FROM phi_guard.audited_tables a
                                    WHERE a.relid OPERATOR(pg_catalog.=) t.relid)) THEN
    PERFORM phi_guard.phi_audit_enable(child);
  END IF;
END
$$;
COMMENT ON FUNCTION phi_guard.guard_inherit(pg_catalog.regclass, pg_catalog.regclass) IS
  'internal, from the C guard: a new partition or child gets its parent''s protection and auditing; granted to no one';

-- ALTER TABLE ... RENAME COLUMN on a protected table, from the C guard: the
-- registry follows the tenant column (the policies follow by themselves).
CREATE FUNCTION phi_guard.guard_column_renamed(tbl pg_catalog.regclass, old_name pg_catalog.name,
                                               new_name pg_catalog.name)
  RETURNS void
  LANGUAGE sql VOLATILE STRICT PARALLEL UNSAFE
  SET search_path = pg_catalog, pg_temp AS
$$
  UPDATE phi_guard.protected_tables p SET tenant_column = new_name
   WHERE p.relid OPERATOR(pg_catalog.=) ANY (SELECT phi_guard.table_tree(tbl))
     AND p.tenant_column OPERATOR(pg_catalog.=) old_name;
$$;
COMMENT ON FUNCTION phi_guard.guard_column_renamed(pg_catalog.regclass, pg_catalog.name, pg_catalog.name) IS
  'internal, from the C guard: the registry follows a renamed tenant column; granted to no one';

-- A dropped protected table leaves the registry.  In every replication
-- role (ENABLE ALWAYS): forgetting a dropped table never weakens anything.
CREATE FUNCTION phi_guard.guard_drop() RETURNS event_trigger
  LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
  DELETE FROM phi_guard.protected_tables p
   WHERE p.relid::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (
           SELECT d.objid FROM pg_catalog.pg_event_trigger_dropped_objects() d
            WHERE d.object_type OPERATOR(pg_catalog.=) 'table');
END
$$;
COMMENT ON FUNCTION phi_guard.guard_drop() IS
  'internal, event trigger: a dropped table leaves phi_guard.protected_tables';
CREATE EVENT TRIGGER phi_guard_guard_drop ON sql_drop
  EXECUTE FUNCTION phi_guard.guard_drop();
ALTER EVENT TRIGGER phi_guard_guard_drop ENABLE ALWAYS;

REVOKE ALL ON phi_guard.protected_tables FROM PUBLIC;
REVOKE ALL ON FUNCTION
  phi_guard.protect_apply(pg_catalog.regclass, pg_catalog.name),
  phi_guard.phi_unprotect_table(pg_catalog.regclass),
  phi_guard.guard_inherit(pg_catalog.regclass, pg_catalog.regclass),
  phi_guard.guard_column_renamed(pg_catalog.regclass, pg_catalog.name, pg_catalog.name),
  phi_guard.guard_drop()
  FROM PUBLIC;
GRANT SELECT ON phi_guard.protected_tables TO phi_auditor, phi_key_admin;
GRANT EXECUTE ON FUNCTION phi_guard.phi_unprotect_table(pg_catalog.regclass) TO phi_key_admin;
-- phi_protect_table keeps PUBLIC's default EXECUTE: every role with USAGE
-- on the schema may call it, and it checks that the caller owns the table.

-- Tables protected or audited by 0.2.0: the same as new ones.  Audited
-- tables are in the registry already; a re-run of phi_audit_enable covers
-- their partitions and children and restores a missing or disabled audit
-- trigger.  Protected ones are registered now, found once by the name 0.2.0
-- gave their tenant policy and by the one column that policy reads; a
-- re-run of phi_protect_table's work verifies them and protects their
-- partitions and children.  A table that cannot be brought under the guard
-- (a partition whose parent is neither protected nor audited, a tenant
-- policy that reads no single column any more) is named in a WARNING and
-- left as it was.
DO $backfill$
DECLARE
  r record;
BEGIN
  FOR r IN SELECT a.relid FROM phi_guard.audited_tables a
            WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_inherits i
                                JOIN phi_guard.audited_tables p
                                  ON p.relid::pg_catalog.oid OPERATOR(pg_catalog.=) i.inhparent
                               WHERE i.inhrelid OPERATOR(pg_catalog.=) a.relid)
            ORDER BY a.relid LOOP
    BEGIN
      PERFORM phi_guard.phi_audit_enable(r.relid);
    EXCEPTION WHEN object_not_in_prerequisite_state OR wrong_object_type THEN
      RAISE WARNING 'auditing of % left as it was: %', r.relid, SQLERRM;
    END;
  END LOOP;
  FOR r IN SELECT p.polrelid::pg_catalog.regclass AS tbl,
                  pg_catalog.min(a.attname::pg_catalog.text)::pg_catalog.name AS col,
                  pg_catalog.count(DISTINCT a.attnum) AS cols
             FROM pg_catalog.pg_policy p
             LEFT JOIN pg_catalog.pg_depend d
               ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_policy'::pg_catalog.regclass
              AND d.objid OPERATOR(pg_catalog.=) p.oid
              AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
              AND d.refobjsubid OPERATOR(pg_catalog.>) 0
             LEFT JOIN pg_catalog.pg_attribute a
               ON a.attrelid OPERATOR(pg_catalog.=) d.refobjid
              AND a.attnum OPERATOR(pg_catalog.=) d.refobjsubid
            WHERE p.polname OPERATOR(pg_catalog.=) 'phi_guard_tenant'
              -- roots: a protected partition or child is protected with its parent
              AND NOT EXISTS (SELECT FROM pg_catalog.pg_inherits i
                                JOIN pg_catalog.pg_policy q
                                  ON q.polrelid OPERATOR(pg_catalog.=) i.inhparent
                                 AND q.polname OPERATOR(pg_catalog.=) 'phi_guard_tenant'
                               WHERE i.inhrelid OPERATOR(pg_catalog.=) p.polrelid)
            GROUP BY p.polrelid ORDER BY p.polrelid LOOP
    IF r.cols OPERATOR(pg_catalog.<>) 1 THEN
      RAISE WARNING 'protection of % left as it was: its tenant policy does not read one column', r.tbl
        USING HINT = 'Run phi_protect_table on it again, with its tenant column.';
      CONTINUE;
    END IF;
    BEGIN
      PERFORM phi_guard.protect_apply(r.tbl, r.col);
    EXCEPTION WHEN object_not_in_prerequisite_state OR wrong_object_type THEN
      RAISE WARNING 'protection of % left as it was: %', r.tbl, SQLERRM;
    END;
  END LOOP;
END
$backfill$;

-- end of section: protection follows the data

------------------------------------------------------------------------
-- Decryption obeys the signed context; masked readers get the bound kind;
-- phi_set_context(NULL) clears; tokenize is audited; break-glass use
-- entries only from the policy (issue 11, src/keys, src/crypto,
-- src/tokens, src/context)
------------------------------------------------------------------------
-- The library decides with phi_guard.key_access (cached like the keys);
-- without the table (before this update) no key has a rule.  phi_rewrap
-- returns no plaintext and ignores the rules.  tokenize access entries and
-- the break-glass planner hook are the library's alone.

COMMENT ON FUNCTION phi_guard.keys_changed() IS
  'invalidates every backend''s cache of the table: unwrapped data or index keys, key access rules';

CREATE TABLE phi_guard.key_access (
  name              pg_catalog.text COLLATE pg_catalog."C" NOT NULL,
  permission        pg_catalog.text,
  masked_permission pg_catalog.text,
  mask_kind         pg_catalog.text,
  changed_at        pg_catalog.timestamptz NOT NULL DEFAULT pg_catalog.now(),
  CONSTRAINT key_access_pkey PRIMARY KEY (name),
  CONSTRAINT key_access_name_check
    CHECK (pg_catalog.octet_length(name) OPERATOR(pg_catalog.>=) 1
           AND pg_catalog.octet_length(name) OPERATOR(pg_catalog.<=) 63),
  CONSTRAINT key_access_permission_check
    CHECK (permission OPERATOR(pg_catalog.<>) '' AND masked_permission OPERATOR(pg_catalog.<>) ''),
  CONSTRAINT key_access_masked_check CHECK (masked_permission IS NULL OR permission IS NOT NULL),
  CONSTRAINT key_access_kind_check
    CHECK (mask_kind OPERATOR(pg_catalog.=) ANY (ARRAY['ssn', 'email', 'phone', 'name', 'dob', 'zip']::pg_catalog.text[]))
);
COMMENT ON TABLE phi_guard.key_access IS
  'access rules of key names: the context permission for clear values, the one for masked values, the bound mask kind';
SELECT pg_catalog.pg_extension_config_dump('phi_guard.key_access', '');
CREATE TRIGGER key_access_changed
  AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON phi_guard.key_access
  FOR EACH STATEMENT EXECUTE FUNCTION phi_guard.keys_changed();

CREATE FUNCTION phi_guard.phi_key_access(key pg_catalog.text, permission pg_catalog.text,
                                         masked_permission pg_catalog.text DEFAULT NULL)
  RETURNS void
  LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
  SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
#variable_conflict use_variable
BEGIN
  IF key IS NULL THEN
    RAISE EXCEPTION 'key name must not be null' USING ERRCODE = '22004';
  END IF;
  IF permission OPERATOR(pg_catalog.=) '' OR masked_permission OPERATOR(pg_catalog.=) '' THEN
    RAISE EXCEPTION 'a permission must not be empty' USING ERRCODE = '22023';
  END IF;
  IF permission IS NULL AND masked_permission IS NOT NULL THEN
    RAISE EXCEPTION 'a masked permission needs a permission for clear values' USING ERRCODE = '22023',
      HINT = 'phi_key_access(key, NULL) removes the key''s rule.';
  END IF;
  IF NOT EXISTS (SELECT FROM phi_guard.keys k WHERE k.name OPERATOR(pg_catalog.=) key) THEN
    RAISE EXCEPTION 'key "%" does not exist', key USING ERRCODE = '42704',
      HINT = 'Create it with phi_key_create().';
  END IF;
  INSERT INTO phi_guard.key_access AS a (name, permission, masked_permission, changed_at)
    VALUES (key, permission, masked_permission, pg_catalog.now())
    ON CONFLICT ON CONSTRAINT key_access_pkey
    DO UPDATE SET permission = EXCLUDED.permission, masked_permission = EXCLUDED.masked_permission,
                  changed_at = EXCLUDED.changed_at;
  DELETE FROM phi_guard.key_access a
   WHERE a.name OPERATOR(pg_catalog.=) key AND a.permission IS NULL AND a.mask_kind IS NULL;
  PERFORM phi_guard.audit_event('key_access', NULL,
    pg_catalog.jsonb_build_object('key', key, 'permission', permission,
                                  'masked_permission', masked_permission));
END
$$;
COMMENT ON FUNCTION phi_guard.phi_key_access(pg_catalog.text, pg_catalog.text, pg_catalog.text) IS
  'lets only contexts whose roles hold permission read the key''s values in clear, and those holding masked_permission read its bound mask; NULL permission removes the rule; audited; requires phi_key_admin';

CREATE FUNCTION phi_guard.phi_mask_bind(key pg_catalog.text, kind pg_catalog.text)
  RETURNS void
  LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
  SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
#variable_conflict use_variable
BEGIN
  IF key IS NULL THEN
    RAISE EXCEPTION 'key name must not be null' USING ERRCODE = '22004';
  END IF;
  IF kind OPERATOR(pg_catalog.<>) ALL (ARRAY['ssn', 'email', 'phone', 'name', 'dob', 'zip']) THEN
    RAISE EXCEPTION 'unknown mask kind "%"', kind USING ERRCODE = '22023',
      HINT = 'Kinds are ssn, email, phone, name, dob and zip; NULL removes the binding.';
  END IF;
  IF NOT EXISTS (SELECT FROM phi_guard.keys k WHERE k.name OPERATOR(pg_catalog.=) key) THEN
    RAISE EXCEPTION 'key "%" does not exist', key USING ERRCODE = '42704',
      HINT = 'Create it with phi_key_create().';
  END IF;
  INSERT INTO phi_guard.key_access AS a (name, mask_kind, changed_at) VALUES (key, kind, pg_catalog.now())
    ON CONFLICT ON CONSTRAINT key_access_pkey
    DO UPDATE SET mask_kind = EXCLUDED.mask_kind, changed_at = EXCLUDED.changed_at;
  DELETE FROM phi_guard.key_access a
   WHERE a.name OPERATOR(pg_catalog.=) key AND a.permission IS NULL AND a.mask_kind IS NULL;
  PERFORM phi_guard.audit_event('mask_bind', NULL,
    pg_catalog.jsonb_build_object('key', key, 'kind', kind));
END
$$;
COMMENT ON FUNCTION phi_guard.phi_mask_bind(pg_catalog.text, pg_catalog.text) IS
  'binds the mask kind that masked readers of the key''s values get, whatever kind they ask for (NULL: a full mask); audited; requires phi_key_admin';

REVOKE ALL ON phi_guard.key_access FROM PUBLIC;
REVOKE ALL ON FUNCTION
  phi_guard.phi_key_access(pg_catalog.text, pg_catalog.text, pg_catalog.text),
  phi_guard.phi_mask_bind(pg_catalog.text, pg_catalog.text)
  FROM PUBLIC;
GRANT SELECT ON phi_guard.key_access TO phi_key_admin;
GRANT EXECUTE ON FUNCTION
  phi_guard.phi_key_access(pg_catalog.text, pg_catalog.text, pg_catalog.text),
  phi_guard.phi_mask_bind(pg_catalog.text, pg_catalog.text)
  TO phi_key_admin;

COMMENT ON FUNCTION phi_guard.phi_decrypt(phi_guard.phi_ciphertext, pg_catalog.text) IS
  'decrypts a value encrypted from text; requires phi_decryptor and, for a key with an access rule (phi_key_access), a context holding its permission';
COMMENT ON FUNCTION phi_guard.phi_decrypt_bytea(phi_guard.phi_ciphertext, pg_catalog.text) IS
  'decrypts a value to its bytes; requires phi_decryptor and, for a key with an access rule (phi_key_access), a context holding its permission';
COMMENT ON FUNCTION phi_guard.phi_rewrap(phi_guard.phi_ciphertext, pg_catalog.text) IS
  're-encrypts under the active version of the same key name without returning plaintext (so key access rules do not apply); requires phi_key_admin or phi_encryptor';
COMMENT ON FUNCTION phi_guard.phi_tokenize(pg_catalog.text, pg_catalog.text) IS
  'the value''s token in a domain (the same one each time in a deterministic domain); every call is audited; requires phi_encryptor';
COMMENT ON FUNCTION phi_guard.phi_detokenize(pg_catalog.text, pg_catalog.text) IS
  'the value behind a token; every call is audited; requires phi_detokenizer and, when the domain''s key has an access rule, a context holding its permission';
COMMENT ON FUNCTION phi_guard.phi_decrypt_masked(phi_guard.phi_ciphertext, pg_catalog.text, pg_catalog.text) IS
  'plaintext for roles with phi_decryptor''s privileges under a context the key''s access rule reads in clear; otherwise the key''s bound mask (phi_mask_bind; **** without one), whatever kind says; audited';

-- not STRICT any more: phi_set_context(NULL) clears the context
CREATE OR REPLACE FUNCTION phi_guard.phi_set_context(token pg_catalog.text) RETURNS void
  AS 'MODULE_PATHNAME', 'phi_guard_set_context'
  LANGUAGE C VOLATILE PARALLEL UNSAFE
  SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION phi_guard.phi_set_context(pg_catalog.text) IS
  'verifies a signed context token (EdDSA JWT) and makes it the context until the transaction ends; NULL clears the context';

COMMENT ON FUNCTION phi_guard.break_glass_use(pg_catalog.regclass) IS
  'internal, the break-glass policy of protected tables: an active grant admits the row; audited as a use only when called by that policy';

-- phi_check_config lists the keys without an access rule while context
-- signing keys are registered (the whole function, as in src/reports.sql)
CREATE OR REPLACE FUNCTION phi_guard.phi_check_config()
  RETURNS TABLE (setting pg_catalog.text, value pg_catalog.text,
                 risk pg_catalog.text, advice pg_catalog.text)
  LANGUAGE plpgsql VOLATILE PARALLEL RESTRICTED
  SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
  cfg pg_catalog.jsonb;
  can_read_all pg_catalog.bool;
  v pg_catalog.text;
  n pg_catalog.int8;
  stmt_logged pg_catalog.bool := false;
  key_file pg_catalog.text;
  key_cmd pg_catalog.text;
  data_dir pg_catalog.text;
  r record;
  hba_line pg_catalog.text;
  tcp pg_catalog.bool;
BEGIN
  -- every setting this role may read, raw (base units, no unit suffix);
  -- placeholders of libraries that are not loaded are not in pg_settings
  SELECT pg_catalog.jsonb_object_agg(s.name, s.setting) INTO cfg
    FROM pg_catalog.pg_settings s;
  can_read_all := pg_catalog.pg_has_role('pg_read_all_settings', 'USAGE');

  -- statement text in the log
  v := cfg OPERATOR(pg_catalog.->>) 'log_statement';
  IF v OPERATOR(pg_catalog.=) ANY (ARRAY['all', 'mod']) THEN
    stmt_logged := true;
    setting := 'log_statement'; value := v; risk := 'high';
    advice := 'Statements are logged with their literals, so PHI written as constants reaches the server log. Set log_statement = ''none'' (or ''ddl'').';
    RETURN NEXT;
  ELSIF v OPERATOR(pg_catalog.=) 'ddl' THEN
    stmt_logged := true;
    setting := 'log_statement'; value := v; risk := 'low';
    advice := 'DDL is logged with its literals (column defaults, CREATE ROLE ... PASSWORD). Prefer log_statement = ''none'' and keep DDL in reviewed migrations.';
    RETURN NEXT;
  END IF;

  n := (cfg OPERATOR(pg_catalog.->>) 'log_min_duration_statement')::pg_catalog.int8;
  IF n OPERATOR(pg_catalog.>=) 0 THEN
    stmt_logged := true;
    setting := 'log_min_duration_statement';
    value := (cfg OPERATOR(pg_catalog.->>) 'log_min_duration_statement') OPERATOR(pg_catalog.||) 'ms';
    risk := CASE WHEN n OPERATOR(pg_catalog.=) 0 THEN 'high' ELSE 'medium' END;
    advice := 'Statements that run at least this long are logged with their literals. Set it to -1, or log durations only (log_duration) without statement text.';
    RETURN NEXT;
  END IF;

  IF (cfg OPERATOR(pg_catalog.->>) 'log_min_duration_sample')::pg_catalog.int8 OPERATOR(pg_catalog.>=) 0
     AND (cfg OPERATOR(pg_catalog.->>) 'log_statement_sample_rate')::pg_catalog.float8 OPERATOR(pg_catalog.>) 0 THEN
    stmt_logged := true;
    setting := 'log_min_duration_sample';
    value := (cfg OPERATOR(pg_catalog.->>) 'log_min_duration_sample') OPERATOR(pg_catalog.||) 'ms';
    risk := 'medium';
    advice := 'A sample of the statements that run at least this long is logged with their literals. Set it to -1.';
    RETURN NEXT;
  END IF;

  IF (cfg OPERATOR(pg_catalog.->>) 'log_transaction_sample_rate')::pg_catalog.float8 OPERATOR(pg_catalog.>) 0 THEN
    stmt_logged := true;
    setting := 'log_transaction_sample_rate';
    value := cfg OPERATOR(pg_catalog.->>) 'log_transaction_sample_rate';
    risk := 'medium';
    advice := 'Every statement of the sampled transactions is logged with its literals. Set it to 0.';
    RETURN NEXT;
  END IF;

  IF stmt_logged
     AND (cfg OPERATOR(pg_catalog.->>) 'log_parameter_max_length')::pg_catalog.int4 OPERATOR(pg_catalog.<>) 0 THEN
    setting := 'log_parameter_max_length';
    value := cfg OPERATOR(pg_catalog.->>) 'log_parameter_max_length';
    risk := 'medium';
    advice := 'Bind parameter values (PHI sent as parameters) are logged next to each logged statement. Set it to 0, and stop logging statements.';
    RETURN NEXT;
  END IF;

  v := cfg OPERATOR(pg_catalog.->>) 'log_parameter_max_length_on_error';
  IF v::pg_catalog.int4 OPERATOR(pg_catalog.<>) 0 THEN
    setting := 'log_parameter_max_length_on_error'; value := v; risk := 'medium';
    advice := 'Bind parameter values of a failing statement are logged. Set it to 0.';
    RETURN NEXT;
  END IF;

  v := cfg OPERATOR(pg_catalog.->>) 'log_min_error_statement';
  IF v OPERATOR(pg_catalog.=) ANY (ARRAY['debug5', 'debug4', 'debug3', 'debug2', 'debug1',
                                        'info', 'notice', 'warning']) THEN
    setting := 'log_min_error_statement'; value := v; risk := 'medium';
    advice := 'The text of every statement that raises a message at this level or above (not only errors) is logged with its literals. Set it to ''error'' or, better, ''panic''.';
    RETURN NEXT;
  ELSIF v OPERATOR(pg_catalog.=) 'error' THEN
    setting := 'log_min_error_statement'; value := v; risk := 'low';
    advice := 'The text of a failing statement is logged with its literals (the default). Set it to ''panic'' to keep statements of failed queries out of the log.';
    RETURN NEXT;
  END IF;

  FOREACH v IN ARRAY ARRAY['debug_print_parse', 'debug_print_rewritten', 'debug_print_plan'] LOOP
    IF cfg OPERATOR(pg_catalog.->>) v OPERATOR(pg_catalog.=) 'on' THEN
      setting := v; value := 'on'; risk := 'high';
      advice := 'Query trees are logged, constants included. Turn it off.';
      RETURN NEXT;
    END IF;
  END LOOP;

  -- extensions that write query text or plans
  n := (cfg OPERATOR(pg_catalog.->>) 'auto_explain.log_min_duration')::pg_catalog.int8;
  IF n OPERATOR(pg_catalog.>=) 0 THEN
    setting := 'auto_explain.log_min_duration';
    value := (cfg OPERATOR(pg_catalog.->>) 'auto_explain.log_min_duration') OPERATOR(pg_catalog.||) 'ms';
    risk := CASE WHEN n OPERATOR(pg_catalog.=) 0 THEN 'high' ELSE 'medium' END;
    advice := 'auto_explain logs plans, which show the constants of their conditions (Filter: ssn = ''...''). Set it to -1 or unload auto_explain.';
    RETURN NEXT;
  END IF;

  IF cfg OPERATOR(pg_catalog.->>) 'pg_stat_statements.track_utility' OPERATOR(pg_catalog.=) 'on'
     AND cfg OPERATOR(pg_catalog.->>) 'pg_stat_statements.track' OPERATOR(pg_catalog.<>) 'none' THEN
    setting := 'pg_stat_statements.track_utility'; value := 'on'; risk := 'medium';
    advice := 'pg_stat_statements replaces constants by $n in planned queries only: utility statements (CALL, DO, COPY, EXPLAIN, PREPARE) are stored with their literals and readable by pg_read_all_stats. Set it to off.';
    RETURN NEXT;
  END IF;

  -- transport and passwords
  IF cfg OPERATOR(pg_catalog.->>) 'ssl' OPERATOR(pg_catalog.=) 'off'
     AND cfg OPERATOR(pg_catalog.->>) 'listen_addresses' OPERATOR(pg_catalog.<>) '' THEN
    setting := 'ssl'; value := 'off'; risk := 'high';
    advice := 'The server listens on TCP without TLS: PHI and passwords cross the network in clear. Set ssl = on with a certificate, and use hostssl lines in pg_hba.conf.';
    RETURN NEXT;
  ELSIF cfg OPERATOR(pg_catalog.->>) 'ssl' OPERATOR(pg_catalog.=) 'on'
        AND cfg OPERATOR(pg_catalog.->>) 'ssl_min_protocol_version' OPERATOR(pg_catalog.=) ANY (ARRAY['TLSv1', 'TLSv1.1']) THEN
    setting := 'ssl_min_protocol_version';
    value := cfg OPERATOR(pg_catalog.->>) 'ssl_min_protocol_version'; risk := 'medium';
    advice := 'TLS versions before 1.2 are deprecated. Set ssl_min_protocol_version = ''TLSv1.2''.';
    RETURN NEXT;
  END IF;

  v := cfg OPERATOR(pg_catalog.->>) 'password_encryption';
  IF v OPERATOR(pg_catalog.<>) 'scram-sha-256' THEN
    setting := 'password_encryption'; value := v; risk := 'medium';
    advice := 'New passwords are stored as MD5 hashes, which are weak and enough to log in with. Set password_encryption = ''scram-sha-256'' and reset the passwords.';
    RETURN NEXT;
  END IF;

  -- authentication rules (the file as it is on disk now)
  IF pg_catalog.has_function_privilege('pg_catalog.pg_hba_file_rules()', 'EXECUTE') THEN
    FOR r IN SELECT h.line_number, h.type, h.database, h.user_name, h.address,
                    h.netmask, h.auth_method, h.error
               FROM pg_catalog.pg_hba_file_rules() h
              ORDER BY h.line_number LOOP
      setting := 'pg_hba.conf line ' OPERATOR(pg_catalog.||) r.line_number;
      hba_line := pg_catalog.concat_ws(' ', r.type,
                    pg_catalog.array_to_string(r.database, ','),
                    pg_catalog.array_to_string(r.user_name, ','),
                    r.address, r.netmask, r.auth_method);
      tcp := r.type OPERATOR(pg_catalog.<>) 'local';
      risk := NULL;
      IF r.error IS NOT NULL THEN
        value := r.error; risk := 'medium';
        advice := 'This line has an error: a reload keeps the old rules and a restart fails. Fix the line.';
      ELSIF r.auth_method OPERATOR(pg_catalog.=) 'trust' AND tcp THEN
        risk := 'high';
        advice := 'Anyone who can reach this address connects as any of these roles without a password. Use scram-sha-256 (or cert) over hostssl.';
      ELSIF r.auth_method OPERATOR(pg_catalog.=) 'password' AND tcp THEN
        risk := CASE WHEN r.type OPERATOR(pg_catalog.=) 'hostssl' THEN 'medium' ELSE 'high' END;
        advice := 'The password is sent in clear text. Use scram-sha-256.';
      ELSIF r.auth_method OPERATOR(pg_catalog.=) 'ident' AND tcp THEN
        risk := 'medium';
        advice := 'ident over TCP trusts whatever the client host''s ident server answers. Use scram-sha-256 or cert.';
      ELSIF r.auth_method OPERATOR(pg_catalog.=) 'md5' THEN
        risk := 'low';
        advice := 'md5 accepts MD5-hashed passwords, which are weak. Use scram-sha-256 once every password is stored as SCRAM.';
      ELSIF r.auth_method OPERATOR(pg_catalog.=) 'trust' THEN
        risk := 'medium';
        advice := 'Every local operating-system user connects as any of these roles, superusers included, without a password. Use peer or scram-sha-256.';
      END IF;
      IF risk IS NOT NULL THEN
        IF r.error IS NULL THEN
          value := hba_line;
        END IF;
        RETURN NEXT;
      END IF;
    END LOOP;
  ELSE
    setting := 'pg_hba.conf'; value := 'not checked'; risk := 'low';
    advice := 'This role may not read pg_hba_file_rules (superusers only), so authentication rules were not checked. Run phi_check_config() as a superuser.';
    RETURN NEXT;
  END IF;

  -- phi_guard itself: audit_seal_interval exists only when preloaded
  IF NOT cfg OPERATOR(pg_catalog.?) 'phi_guard.audit_seal_interval' THEN
    setting := 'shared_preload_libraries';
    value := COALESCE(cfg OPERATOR(pg_catalog.->>) 'shared_preload_libraries', 'phi_guard not loaded');
    risk := 'high';
    advice := 'phi_guard is not preloaded: no master key is loaded, so encryption, tokens and audit sealing fail. Add phi_guard to shared_preload_libraries and restart.';
    RETURN NEXT;
  ELSIF NOT can_read_all THEN
    setting := 'phi_guard.master_key_file'; value := 'not checked'; risk := 'low';
    advice := 'The master key settings are readable only by superusers and pg_read_all_settings, so they were not checked. Run phi_check_config() as one of them.';
    RETURN NEXT;
  ELSE
    key_file := cfg OPERATOR(pg_catalog.->>) 'phi_guard.master_key_file';
    key_cmd := cfg OPERATOR(pg_catalog.->>) 'phi_guard.master_key_command';
    data_dir := pg_catalog.rtrim(cfg OPERATOR(pg_catalog.->>) 'data_directory', '/');
    IF key_file OPERATOR(pg_catalog.=) '' AND key_cmd OPERATOR(pg_catalog.=) '' THEN
      setting := 'phi_guard.master_key_file'; value := ''; risk := 'high';
      advice := 'Neither phi_guard.master_key_file nor phi_guard.master_key_command is set: no master key is loaded. Set one of them and restart.';
      RETURN NEXT;
    ELSIF key_file OPERATOR(pg_catalog.<>) '' AND key_cmd OPERATOR(pg_catalog.<>) '' THEN
      setting := 'phi_guard.master_key_command'; value := 'set'; risk := 'high';
      advice := 'Both phi_guard.master_key_file and phi_guard.master_key_command are set, so no master key is loaded. Keep one and restart.';
      RETURN NEXT;
    ELSIF key_file OPERATOR(pg_catalog.<>) ''
          AND (key_file OPERATOR(pg_catalog.!~~) '/%'
               OR pg_catalog.starts_with(key_file, data_dir OPERATOR(pg_catalog.||) '/')) THEN
      setting := 'phi_guard.master_key_file'; value := key_file; risk := 'high';
      advice := 'The key file is inside the data directory, so every copy or base backup of the data directory carries the key next to the ciphertext. Move it outside the data directory.';
      RETURN NEXT;
    END IF;
  END IF;

  -- keys that every context, and an SQL injection through the
  -- application's role without any context, decrypt in clear while signed
  -- contexts are in use (README "Decryption obeys the context")
  IF pg_catalog.has_table_privilege('phi_guard.key_access', 'SELECT')
     AND pg_catalog.has_column_privilege('phi_guard.keys', 'state', 'SELECT')
     AND pg_catalog.has_function_privilege('phi_guard.phi_context_keys()', 'EXECUTE') THEN
    IF EXISTS (SELECT FROM phi_guard.phi_context_keys() c WHERE c.revoked_at IS NULL) THEN
      SELECT pg_catalog.string_agg(k.name, ', ' ORDER BY k.name) INTO v
        FROM (SELECT DISTINCT k.name FROM phi_guard.keys k
               WHERE k.state OPERATOR(pg_catalog.<>) 'destroyed'
                 AND NOT EXISTS (SELECT FROM phi_guard.key_access a
                                  WHERE a.name OPERATOR(pg_catalog.=) k.name
                                    AND a.permission IS NOT NULL)) k;
      IF v IS NOT NULL THEN
        setting := 'phi_key_access'; value := 'keys without a rule'; risk := 'medium';
        advice := 'Signed contexts are in use, but every context decrypts the values of keys '
                  OPERATOR(pg_catalog.||) v OPERATOR(pg_catalog.||)
                  ' in clear, and so does an SQL injection through the application''s role without any context. Give each an access rule with phi_key_access().';
        RETURN NEXT;
      END IF;
    END IF;
  ELSE
    setting := 'phi_key_access'; value := 'not checked'; risk := 'low';
    advice := 'This role may not read the key access rules, so keys without one were not checked. Run phi_check_config() as a member of phi_key_admin.';
    RETURN NEXT;
  END IF;

  -- an audit chain restored from a cluster further ahead in transaction ids
  -- cannot be sealed on (README "Backup and restore")
  IF pg_catalog.has_table_privilege('phi_guard.audit_block', 'SELECT') THEN
    IF (SELECT pg_catalog.max(b.xid_hi) FROM phi_guard.audit_block b)
       OPERATOR(pg_catalog.>) pg_catalog.pg_snapshot_xmax(pg_catalog.pg_current_snapshot()) THEN
      setting := 'phi_guard.audit_block'; value := 'horizon ahead of this cluster'; risk := 'high';
      advice := 'The audit chain ends above this cluster''s transaction ids (it was restored from another cluster), so nothing new is sealed. Restore into a cluster started with pg_resetwal -e above the source''s epoch.';
      RETURN NEXT;
    END IF;
  ELSE
    setting := 'phi_guard.audit_block'; value := 'not checked'; risk := 'low';
    advice := 'This role may not read phi_guard.audit_block, so the audit chain''s horizon was not checked. Run phi_check_config() as a member of phi_auditor.';
    RETURN NEXT;
  END IF;

  -- on a Citus coordinator every worker must hold the same master key, or
  -- the keys it unwraps are not the coordinator's (README, "Scaling out
  -- with Citus")
  FOR r IN SELECT * FROM phi_guard.cluster_master_key_mismatches() LOOP
    setting := 'phi_guard.master_key_file'; risk := 'high';
    value := pg_catalog.format('node %s: %s', r.node, r.answer);
    advice := 'Every node of a Citus cluster must load the same master key (file or command): a worker with another key cannot open the keys the coordinator made. Give it the coordinator''s key and restart it.';
    RETURN NEXT;
  END LOOP;
  RETURN;
END
$$;
COMMENT ON FUNCTION phi_guard.phi_check_config() IS
  'risky settings for a PHI database (statement logging, TLS, passwords, pg_hba.conf, master key, keys without an access rule), one row each; requires phi_key_admin or phi_audit_admin';

-- end of section: decryption obeys the signed context

------------------------------------------------------------------------
-- Tenant keys: a key per tenant, chosen by the signed context's tenant,
-- refused to other tenants, shredded with one call; key status and key
-- usage per tenant (issue 15, src/keys, src/crypto, src/tokens)
------------------------------------------------------------------------
-- The library reads the tenant column when it exists; before this update
-- every key is shared and tenant keys are refused with a hint to update.

ALTER TABLE phi_guard.keys ADD COLUMN tenant pg_catalog.text COLLATE pg_catalog."C";
ALTER TABLE phi_guard.keys
  DROP CONSTRAINT keys_name_version_key,
  ADD CONSTRAINT keys_tenant_name_version_key UNIQUE NULLS NOT DISTINCT (tenant, name, version),
  ADD CONSTRAINT keys_tenant_check
    CHECK (pg_catalog.octet_length(tenant) OPERATOR(pg_catalog.>=) 1
           AND pg_catalog.octet_length(tenant) OPERATOR(pg_catalog.<=) 63);
DROP INDEX phi_guard.keys_one_active;
CREATE UNIQUE INDEX keys_one_active ON phi_guard.keys (tenant, name) NULLS NOT DISTINCT
  WHERE state OPERATOR(pg_catalog.=) 'active';
COMMENT ON TABLE phi_guard.keys IS
  'data-key versions; wrapped_key = nonce || AES-256-GCM(master key, data key) || tag; tenant NULL: a shared key';
GRANT SELECT (tenant) ON phi_guard.keys TO phi_key_admin;

ALTER TABLE phi_guard.index_keys ADD COLUMN tenant pg_catalog.text COLLATE pg_catalog."C";
ALTER TABLE phi_guard.index_keys
  DROP CONSTRAINT index_keys_pkey,
  ADD CONSTRAINT index_keys_tenant_name_key UNIQUE NULLS NOT DISTINCT (tenant, name),
  ADD CONSTRAINT index_keys_tenant_check
    CHECK (pg_catalog.octet_length(tenant) OPERATOR(pg_catalog.>=) 1
           AND pg_catalog.octet_length(tenant) OPERATOR(pg_catalog.<=) 63);
COMMENT ON TABLE phi_guard.index_keys IS
  'wrapped root keys of blind indexes and token fingerprints, one per key name of a tenant (NULL: shared)';

CREATE FUNCTION phi_guard.phi_key_create(name pg_catalog.text, tenant pg_catalog.text)
  RETURNS pg_catalog.int4
  AS 'MODULE_PATHNAME', 'phi_guard_key_create'
  LANGUAGE C VOLATILE PARALLEL UNSAFE
  SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION phi_guard.phi_key_create(pg_catalog.text, pg_catalog.text) IS
  'creates a data key (version 1) of one tenant (NULL: shared) and returns its id; requires phi_key_admin';

-- rotate and destroy gain a tenant argument with a default: a new
-- signature, so dropped and created again (with their privileges)
DROP FUNCTION phi_guard.phi_key_rotate(pg_catalog.text);
CREATE FUNCTION phi_guard.phi_key_rotate(name pg_catalog.text, tenant pg_catalog.text DEFAULT NULL)
  RETURNS pg_catalog.int4
  AS 'MODULE_PATHNAME', 'phi_guard_key_rotate'
  LANGUAGE C VOLATILE PARALLEL UNSAFE
  SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION phi_guard.phi_key_rotate(pg_catalog.text, pg_catalog.text) IS
  'adds a new active version of the shared key (or of the tenant''s), retiring the old one; returns the new id; requires phi_key_admin';

DROP FUNCTION phi_guard.phi_key_destroy(pg_catalog.text, pg_catalog.int4);
CREATE FUNCTION phi_guard.phi_key_destroy(name pg_catalog.text, version pg_catalog.int4 DEFAULT NULL,
                                          tenant pg_catalog.text DEFAULT NULL)
  RETURNS pg_catalog.int4
  AS 'MODULE_PATHNAME', 'phi_guard_key_destroy'
  LANGUAGE C VOLATILE PARALLEL UNSAFE
  SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION phi_guard.phi_key_destroy(pg_catalog.text, pg_catalog.int4, pg_catalog.text) IS
  'crypto-shreds one version (or every version when NULL) of the shared key (or of the tenant''s); returns how many; requires phi_key_admin';

CREATE FUNCTION phi_guard.phi_tenant_shred(tenant pg_catalog.text)
  RETURNS pg_catalog.int4
  AS 'MODULE_PATHNAME', 'phi_guard_tenant_shred'
  LANGUAGE C VOLATILE PARALLEL UNSAFE
  SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION phi_guard.phi_tenant_shred(pg_catalog.text) IS
  'crypto-shreds every key of one tenant (data and index keys), leaving other tenants and the shared keys untouched; returns how many versions; audited; requires phi_key_admin';

REVOKE ALL ON FUNCTION
  phi_guard.phi_key_create(pg_catalog.text, pg_catalog.text),
  phi_guard.phi_key_rotate(pg_catalog.text, pg_catalog.text),
  phi_guard.phi_key_destroy(pg_catalog.text, pg_catalog.int4, pg_catalog.text),
  phi_guard.phi_tenant_shred(pg_catalog.text)
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
  phi_guard.phi_key_create(pg_catalog.text, pg_catalog.text),
  phi_guard.phi_key_rotate(pg_catalog.text, pg_catalog.text),
  phi_guard.phi_key_destroy(pg_catalog.text, pg_catalog.int4, pg_catalog.text),
  phi_guard.phi_tenant_shred(pg_catalog.text)
  TO phi_key_admin;

-- key_status: the tenant as a last column (a view may gain columns at its
-- end in place, keeping its privileges)
CREATE OR REPLACE VIEW phi_guard.key_status AS
  SELECT k.name::pg_catalog.text AS name, k.version, k.id, k.state, k.created_at,
         COALESCE(v.n, 0) AS vault_values, i.id AS index_key_id, k.tenant::pg_catalog.text AS tenant
    FROM phi_guard.keys k
    LEFT JOIN (SELECT phi_guard.phi_ciphertext_key_id(t.value) AS key_id, pg_catalog.count(*) AS n
                 FROM phi_guard.token_vault t GROUP BY 1) v
           ON v.key_id OPERATOR(pg_catalog.=) k.id
    LEFT JOIN phi_guard.index_keys i
           ON i.name OPERATOR(pg_catalog.=) k.name AND i.tenant IS NOT DISTINCT FROM k.tenant
   ORDER BY k.name, k.tenant NULLS FIRST, k.version;
COMMENT ON VIEW phi_guard.key_status IS
  'key versions with the token vault values under each, the index key of their name and their tenant (NULL: shared); for phi_key_admin';

-- phi_key_usage: a tenant result column, last (a new result type: dropped
-- and created again, with its privileges)
DROP FUNCTION phi_guard.phi_key_usage(pg_catalog.regclass, pg_catalog.name);
CREATE FUNCTION phi_guard.phi_key_usage(tbl pg_catalog.regclass, col pg_catalog.name)
  RETURNS TABLE(key_id pg_catalog.int4, name pg_catalog.text, version pg_catalog.int4,
                state pg_catalog.text, value_count pg_catalog.int8, tenant pg_catalog.text)
  LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE
  SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
  typ pg_catalog.oid;
BEGIN
  SELECT a.atttypid INTO typ FROM pg_catalog.pg_attribute a
   WHERE a.attrelid OPERATOR(pg_catalog.=) tbl AND a.attname OPERATOR(pg_catalog.=) col
     AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'column "%" of relation % does not exist', col, tbl USING ERRCODE = '42703';
  END IF;
  IF typ OPERATOR(pg_catalog.<>) 'phi_guard.phi_ciphertext'::pg_catalog.regtype THEN
    RAISE EXCEPTION 'column "%" of relation % is not of type phi_ciphertext', col, tbl
      USING ERRCODE = '42804', HINT = 'Only phi_ciphertext columns carry a key id.';
  END IF;
  -- every key id found in the column, and the other versions of the same
  -- keys (name and tenant) with 0; runs as the caller, who needs SELECT on
  -- the column
  RETURN QUERY EXECUTE pg_catalog.format(
    'WITH c AS (SELECT phi_guard.phi_ciphertext_key_id(t.%1$I) AS key_id, pg_catalog.count(*) AS n'
    '             FROM %2$s t WHERE t.%1$I IS NOT NULL GROUP BY 1),'
    '     f AS (SELECT c.key_id, k.name::pg_catalog.text AS name, k.version, k.state, c.n,'
    '                  k.tenant::pg_catalog.text AS tenant'
    '             FROM c LEFT JOIN phi_guard.keys k ON k.id OPERATOR(pg_catalog.=) c.key_id)'
    ' SELECT f.key_id, f.name, f.version, f.state, f.n, f.tenant FROM f'
    ' UNION ALL'
    ' SELECT k.id, k.name::pg_catalog.text, k.version, k.state, 0::pg_catalog.int8, k.tenant::pg_catalog.text'
    '   FROM phi_guard.keys k'
    '  WHERE EXISTS (SELECT FROM f WHERE f.name OPERATOR(pg_catalog.=) k.name'
    '                                AND f.tenant IS NOT DISTINCT FROM k.tenant)'
    '    AND NOT EXISTS (SELECT FROM f WHERE f.key_id OPERATOR(pg_catalog.=) k.id)'
    ' ORDER BY 2, 6 NULLS FIRST, 3, 1', col, tbl);
END
$$;
COMMENT ON FUNCTION phi_guard.phi_key_usage(pg_catalog.regclass, pg_catalog.name) IS
  'values of one phi_ciphertext column per key id (0 for the other versions of the same keys: a version with 0 is safe to destroy for this column), with the key''s tenant; reads the whole column; requires phi_key_admin and SELECT on the column';
REVOKE ALL ON FUNCTION phi_guard.phi_key_usage(pg_catalog.regclass, pg_catalog.name) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION phi_guard.phi_key_usage(pg_catalog.regclass, pg_catalog.name) TO phi_key_admin;

-- end of section: tenant keys

------------------------------------------------------------------------
-- Bringing existing columns under phi_guard: phi_encrypt_column,
-- phi_rewrap_column and their state (issue 15, src/adopt)
------------------------------------------------------------------------
-- All new objects, as in src/adopt/adopt.sql.
-- One row per migration run; the running one has no finished time (at most
-- one per column and operation).  pg_dump keeps the rows: the aad
-- expression recorded here is what phi_rewrap_column uses by default (the
-- table is recorded as a regclass, which a dump writes by name).
CREATE SEQUENCE phi_guard.column_migration_id_seq AS pg_catalog.int8 MINVALUE 1 NO CYCLE;
CREATE TABLE phi_guard.column_migration (
  id            pg_catalog.int8 NOT NULL DEFAULT pg_catalog.nextval('phi_guard.column_migration_id_seq'::pg_catalog.regclass),
  tbl           pg_catalog.regclass NOT NULL,
  column_name   pg_catalog.name NOT NULL,
  operation     pg_catalog.text NOT NULL,
  key_name      pg_catalog.text,
  aad           pg_catalog.text,
  tenant_column pg_catalog.name,
  new_column    pg_catalog.name,
  batch_size    pg_catalog.int4 NOT NULL,
  state         pg_catalog.text NOT NULL,
  last_key      pg_catalog.text[],
  rows_done     pg_catalog.int8 NOT NULL DEFAULT 0,
  rows_total    pg_catalog.int8,
  skipped       pg_catalog.int8 NOT NULL DEFAULT 0,
  lock_ms       pg_catalog.float8,
  started       pg_catalog.timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
  finished      pg_catalog.timestamptz,
  CONSTRAINT column_migration_pkey PRIMARY KEY (id),
  CONSTRAINT column_migration_operation_check
    CHECK (operation OPERATOR(pg_catalog.=) ANY (ARRAY['encrypt', 'rewrap']::pg_catalog.text[])),
  CONSTRAINT column_migration_state_check
    CHECK (state OPERATOR(pg_catalog.=) ANY (ARRAY['prepare', 'backfill', 'validate', 'swap', 'scrub',
                                                   'rewrap', 'done']::pg_catalog.text[])),
  CONSTRAINT column_migration_finished_check
    CHECK ((state OPERATOR(pg_catalog.=) 'done') OPERATOR(pg_catalog.=) (finished IS NOT NULL))
);
CREATE UNIQUE INDEX column_migration_running ON phi_guard.column_migration (tbl, column_name, operation)
  WHERE finished IS NULL;
ALTER SEQUENCE phi_guard.column_migration_id_seq OWNED BY phi_guard.column_migration.id;
COMMENT ON TABLE phi_guard.column_migration IS
  'column migrations (phi_encrypt_column, phi_rewrap_column): arguments, state, progress; the running one has no finished time';
SELECT pg_catalog.pg_extension_config_dump('phi_guard.column_migration', '');
SELECT pg_catalog.pg_extension_config_dump('phi_guard.column_migration_id_seq', '');

-- Progress for people: rows_done counts the rows of the current state
-- (backfill, then scrub, for an encryption), rows_total the table's rows
-- when the migration began; swap_lock_ms is how long the swap held the
-- table's ACCESS EXCLUSIVE lock.  Runs with the view owner's rights.
CREATE VIEW phi_guard.column_migrations AS
  SELECT m.tbl AS table_name, m.column_name, m.rows_done, m.rows_total, m.state, m.started,
         m.finished, m.operation, m.key_name, m.aad, m.tenant_column, m.skipped,
         m.lock_ms AS swap_lock_ms
    FROM phi_guard.column_migration m
   ORDER BY m.started, m.id;
COMMENT ON VIEW phi_guard.column_migrations IS
  'progress of phi_encrypt_column and phi_rewrap_column: table, column, rows done and total, state, start and end; for phi_encryptor and phi_key_admin';

CREATE FUNCTION phi_guard.column_migration_sync() RETURNS trigger
  AS 'MODULE_PATHNAME', 'phi_guard_column_migration_sync'
  LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION phi_guard.column_migration_sync() IS
  'internal, trigger of a running phi_encrypt_column: every written row gets the encryption of its plaintext column in the new column';

CREATE FUNCTION phi_guard.column_rewrap(ct phi_guard.phi_ciphertext, r pg_catalog.record,
                                        aad pg_catalog.text)
  RETURNS phi_guard.phi_ciphertext
  AS 'MODULE_PATHNAME', 'phi_guard_column_rewrap'
  LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION phi_guard.column_rewrap(phi_guard.phi_ciphertext, pg_catalog.record, pg_catalog.text) IS
  'internal, phi_rewrap_column''s batches only: the value under its key''s active version, bound to the aad expression over row r, or unchanged when it cannot be opened';

CREATE FUNCTION phi_guard.column_rewrap_due(ct phi_guard.phi_ciphertext)
  RETURNS pg_catalog.bool
  AS 'MODULE_PATHNAME', 'phi_guard_column_rewrap_due'
  LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION phi_guard.column_rewrap_due(phi_guard.phi_ciphertext) IS
  'internal, phi_rewrap_column''s batches only: whether the value is under a version that is not its key''s active one';

-- Procedures: they commit after each batch, so they are CALLed on their
-- own (not in a transaction block) and are not SECURITY DEFINER; they check
-- that the caller owns the table.
CREATE PROCEDURE phi_guard.phi_encrypt_column(tbl pg_catalog.regclass, col pg_catalog.name,
    key pg_catalog.text, aad pg_catalog.text DEFAULT NULL, batch pg_catalog.int4 DEFAULT 10000,
    tenant_column pg_catalog.name DEFAULT NULL)
  AS 'MODULE_PATHNAME', 'phi_guard_encrypt_column'
  LANGUAGE C;
COMMENT ON PROCEDURE phi_guard.phi_encrypt_column(pg_catalog.regclass, pg_catalog.name, pg_catalog.text, pg_catalog.text, pg_catalog.int4, pg_catalog.name) IS
  'turns a plaintext column into phi_ciphertext online, in committed batches, bound to the aad expression, under each row''s tenant key with tenant_column; resumes when called again; for the table''s owner holding phi_encryptor';

CREATE PROCEDURE phi_guard.phi_rewrap_column(tbl pg_catalog.regclass, col pg_catalog.name,
    batch pg_catalog.int4 DEFAULT 10000, aad pg_catalog.text DEFAULT NULL)
  AS 'MODULE_PATHNAME', 'phi_guard_rewrap_column'
  LANGUAGE C;
COMMENT ON PROCEDURE phi_guard.phi_rewrap_column(pg_catalog.regclass, pg_catalog.name, pg_catalog.int4, pg_catalog.text) IS
  'moves every value of a phi_ciphertext column onto its key''s active version in committed batches (aad: the expression phi_encrypt_column recorded when NULL); resumes when called again; for the table''s owner holding phi_encryptor or phi_key_admin';

-- Privileges
REVOKE ALL ON phi_guard.column_migration, phi_guard.column_migrations FROM PUBLIC;
REVOKE ALL ON SEQUENCE phi_guard.column_migration_id_seq FROM PUBLIC;
REVOKE ALL ON FUNCTION
  phi_guard.column_migration_sync(),
  phi_guard.column_rewrap(phi_guard.phi_ciphertext, pg_catalog.record, pg_catalog.text),
  phi_guard.column_rewrap_due(phi_guard.phi_ciphertext)
  FROM PUBLIC;
REVOKE ALL ON PROCEDURE
  phi_guard.phi_encrypt_column(pg_catalog.regclass, pg_catalog.name, pg_catalog.text, pg_catalog.text, pg_catalog.int4, pg_catalog.name),
  phi_guard.phi_rewrap_column(pg_catalog.regclass, pg_catalog.name, pg_catalog.int4, pg_catalog.text)
  FROM PUBLIC;
GRANT SELECT ON phi_guard.column_migrations TO phi_encryptor, phi_key_admin;
-- the table owner creates the trigger (EXECUTE needed); writers fire it
-- without any privilege
GRANT EXECUTE ON FUNCTION phi_guard.column_migration_sync() TO phi_encryptor;
GRANT EXECUTE ON FUNCTION
  phi_guard.column_rewrap(phi_guard.phi_ciphertext, pg_catalog.record, pg_catalog.text),
  phi_guard.column_rewrap_due(phi_guard.phi_ciphertext)
  TO phi_encryptor, phi_key_admin;
GRANT EXECUTE ON PROCEDURE
  phi_guard.phi_encrypt_column(pg_catalog.regclass, pg_catalog.name, pg_catalog.text, pg_catalog.text, pg_catalog.int4, pg_catalog.name)
  TO phi_encryptor;
GRANT EXECUTE ON PROCEDURE
  phi_guard.phi_rewrap_column(pg_catalog.regclass, pg_catalog.name, pg_catalog.int4, pg_catalog.text)
  TO phi_encryptor, phi_key_admin;

-- end of section: bringing existing columns under phi_guard

-- DDL on audited tables and tables under row security is recorded under
-- session_replication_role = replica too, and so are the triggers, rules
-- and indexes created on them (audit_ddl above).
ALTER EVENT TRIGGER phi_guard_audit_ddl ENABLE ALWAYS;
ALTER EVENT TRIGGER phi_guard_audit_ddl_drop ENABLE ALWAYS;

------------------------------------------------------------------------
-- Disclosure accounting: who saw whose PHI (issue 13, SPEC §7)
------------------------------------------------------------------------
-- Access entries (decrypt, decrypt_masked, detokenize, tokenize) name the
-- rows whose values they revealed (detail.rows); phi_access_report lists
-- those reads with a row's changes, and phi_disclosures answers "who saw
-- this row".  As in src/audit/audit.sql.

-- audit_events: a compact row entry (SPEC §6) shows the who, when, where
-- and why of its statement entry.
CREATE OR REPLACE VIEW phi_guard.audit_events WITH (security_invoker = true) AS
  -- (s.*: a compact entry's statement entry, null for any other entry; a
  -- compact entry has none of these keys itself, so one of each pair is null)
  SELECT l.id, l.xid, COALESCE(s.ts, r.ts) AS ts,
         r.kind, r."table" AS table_name, r.row_key, r.columns,
         COALESCE(s.db_user, r.db_user) AS db_user, COALESCE(s.role, r.role) AS role,
         COALESCE(s.app_user, r.app_user) AS app_user, COALESCE(s.tenant, r.tenant) AS tenant,
         COALESCE(s.purpose, r.purpose) AS purpose,
         CASE WHEN COALESCE(s.client_addr, r.client_addr) OPERATOR(pg_catalog.=) '[local]' THEN NULL
              ELSE COALESCE(s.client_addr, r.client_addr)::pg_catalog.inet END AS client_addr,
         COALESCE(s.application_name, r.application_name) AS application_name,
         r.detail,
         (b.block_no IS NOT NULL) AS sealed, b.block_no, l.entry_hash
    FROM phi_guard.audit_log l
   CROSS JOIN LATERAL pg_catalog.json_to_record(l.record::pg_catalog.json)
         AS r(ts pg_catalog.timestamptz, kind pg_catalog.text, "table" pg_catalog.text,
              row_key pg_catalog.jsonb, columns pg_catalog.text[], db_user pg_catalog.text,
              role pg_catalog.text, app_user pg_catalog.text, tenant pg_catalog.text,
              purpose pg_catalog.text, client_addr pg_catalog.text,
              application_name pg_catalog.text, detail pg_catalog.jsonb, stmt pg_catalog.int8)
    -- a compact row entry (SPEC §6): who, when, where and why are its
    -- statement entry's, the entry of the same transaction whose id is stmt
    LEFT JOIN (SELECT sl.xid, sl.id, j.*
                 FROM phi_guard.audit_log sl
                CROSS JOIN LATERAL pg_catalog.json_to_record(sl.record::pg_catalog.json)
                      AS j(ts pg_catalog.timestamptz, db_user pg_catalog.text, role pg_catalog.text,
                           app_user pg_catalog.text, tenant pg_catalog.text, purpose pg_catalog.text,
                           client_addr pg_catalog.text, application_name pg_catalog.text)
                WHERE pg_catalog.strpos(pg_catalog.substr(sl.record, 1, 96), '"kind":"statement"')
                      OPERATOR(pg_catalog.>) 0) s
           ON s.xid OPERATOR(pg_catalog.=) l.xid AND s.id OPERATOR(pg_catalog.=) r.stmt
    LEFT JOIN LATERAL (SELECT x.block_no, x.xid_lo FROM phi_guard.audit_block x
                        WHERE x.xid_hi OPERATOR(pg_catalog.>) l.xid
                        ORDER BY x.xid_hi LIMIT 1) b
           ON b.xid_lo OPERATOR(pg_catalog.<=) l.xid;

-- phi_access_report: what the log knows about one row (accounting of
-- disclosures).  row_key is the text form of a one-column primary key
-- value ('42'), or a JSON object of the key columns ('{"id":"42"}').
-- Reads are the access entries (decrypt, decrypt_masked, detokenize,
-- tokenize) whose row references (detail.rows) hold row_key itself or end
-- in ':' || row_key, as the recommended aad '<table>.<column>:<key>' does;
-- one per access (statement and key): its final entry, or its intent when
-- no final entry names the row.
CREATE OR REPLACE FUNCTION phi_guard.phi_access_report(row_key pg_catalog.text,
                                            since pg_catalog.timestamptz DEFAULT '-infinity')
  RETURNS TABLE(ts pg_catalog.timestamptz, kind pg_catalog.text, table_name pg_catalog.text,
                db_user pg_catalog.text, app_user pg_catalog.text, tenant pg_catalog.text,
                purpose pg_catalog.text, client_addr pg_catalog.inet,
                application_name pg_catalog.text, detail pg_catalog.jsonb)
  LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE
  SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
  obj pg_catalog.jsonb;		-- the key as the record holds it (string values)
  val pg_catalog.text;		-- the one key value, or one of the object's
  needle pg_catalog.text;		-- JSON text every matching row entry contains
  ref_exact pg_catalog.text;	-- ... every read naming row_key itself
  ref_tail pg_catalog.text;		-- ... every read naming '...:' || row_key
BEGIN
  IF pg_catalog.starts_with(pg_catalog.ltrim(row_key), '{') THEN
    SELECT pg_catalog.jsonb_object_agg(e.key, e.value) INTO obj
      FROM pg_catalog.jsonb_each_text(row_key::pg_catalog.jsonb) e;
    IF obj IS NULL THEN
      RAISE EXCEPTION 'row key object has no columns' USING ERRCODE = '22023',
        HINT = 'Pass the primary key columns, for example {"id":"42"}, or the text of a one-column key.';
    END IF;
    SELECT pg_catalog.min(e.value) INTO val FROM pg_catalog.jsonb_each_text(obj) e;
  ELSE
    val := row_key;
  END IF;
  needle := COALESCE(pg_catalog.to_json(val)::pg_catalog.text, 'null');
  ref_exact := pg_catalog.to_json(row_key)::pg_catalog.text;
  ref_tail := ':' OPERATOR(pg_catalog.||) pg_catalog.substr(ref_exact, 2);

  RETURN QUERY
  WITH e AS (
    -- cheap text test first: only records that contain the key value (or
    -- are TRUNCATE entries) are parsed
    SELECT l.xid, l.id, j.ts, j.kind, j."table", j.row_key AS rk, j.db_user, j.app_user,
           j.tenant, j.purpose, j.client_addr, j.application_name, j.detail, j.stmt
      FROM phi_guard.audit_log l
     CROSS JOIN LATERAL pg_catalog.json_to_record(l.record::pg_catalog.json)
           AS j(ts pg_catalog.timestamptz, kind pg_catalog.text, "table" pg_catalog.text,
                row_key pg_catalog.jsonb, db_user pg_catalog.text, app_user pg_catalog.text,
                tenant pg_catalog.text, purpose pg_catalog.text, client_addr pg_catalog.text,
                application_name pg_catalog.text, detail pg_catalog.jsonb, stmt pg_catalog.int8)
     WHERE pg_catalog.strpos(l.record, needle) OPERATOR(pg_catalog.>) 0
        OR pg_catalog.strpos(l.record, '"kind":"truncate"') OPERATOR(pg_catalog.>) 0
        OR pg_catalog.strpos(l.record, ref_exact) OPERATOR(pg_catalog.>) 0
        OR pg_catalog.strpos(l.record, ref_tail) OPERATOR(pg_catalog.>) 0
  ), k AS (
    SELECT e.* FROM e
     WHERE pg_catalog.jsonb_typeof(e.rk) OPERATOR(pg_catalog.=) 'object'
       AND CASE WHEN obj IS NOT NULL THEN e.rk OPERATOR(pg_catalog.=) obj
                ELSE (SELECT pg_catalog.array_agg(x.value) FROM pg_catalog.jsonb_each_text(e.rk) x)
                     OPERATOR(pg_catalog.=) ARRAY[val] END
  ), m AS (
    -- a compact row entry takes who, when, where and why from its
    -- statement entry (SPEC §6): s is null for any other entry, and a
    -- compact entry has none of these keys itself
    SELECT k.xid, k.id, COALESCE(s.ts, k.ts) AS ts, k.kind, k."table", k.rk,
           COALESCE(s.db_user, k.db_user) AS db_user, COALESCE(s.app_user, k.app_user) AS app_user,
           COALESCE(s.tenant, k.tenant) AS tenant, COALESCE(s.purpose, k.purpose) AS purpose,
           COALESCE(s.client_addr, k.client_addr) AS client_addr,
           COALESCE(s.application_name, k.application_name) AS application_name,
           k.detail, k.stmt
      FROM k
      LEFT JOIN LATERAL (
            SELECT j.* FROM phi_guard.audit_log sl
             CROSS JOIN LATERAL pg_catalog.json_to_record(sl.record::pg_catalog.json)
                   AS j(ts pg_catalog.timestamptz, db_user pg_catalog.text, app_user pg_catalog.text,
                        tenant pg_catalog.text, purpose pg_catalog.text, client_addr pg_catalog.text,
                        application_name pg_catalog.text)
             WHERE k.stmt IS NOT NULL AND sl.xid OPERATOR(pg_catalog.=) k.xid
               AND sl.id OPERATOR(pg_catalog.=) k.stmt) s ON true
  ), r AS (
    -- reads of the row: one per access, its final entry first
    SELECT DISTINCT ON (COALESCE(e.detail OPERATOR(pg_catalog.->>) 'access_id',
                                 e.xid::pg_catalog.text OPERATOR(pg_catalog.||) '/'
                                 OPERATOR(pg_catalog.||) e.id::pg_catalog.text)) e.*
      FROM e
     WHERE e.kind OPERATOR(pg_catalog.=) ANY (ARRAY['decrypt', 'decrypt_masked', 'detokenize', 'tokenize'])
       AND EXISTS (SELECT FROM pg_catalog.jsonb_array_elements_text(e.detail OPERATOR(pg_catalog.->) 'rows') x(ref)
                    WHERE x.ref OPERATOR(pg_catalog.=) row_key
                       OR pg_catalog.right(x.ref, pg_catalog.length(row_key) OPERATOR(pg_catalog.+) 1)
                          OPERATOR(pg_catalog.=) (':' OPERATOR(pg_catalog.||) row_key))
     ORDER BY COALESCE(e.detail OPERATOR(pg_catalog.->>) 'access_id',
                       e.xid::pg_catalog.text OPERATOR(pg_catalog.||) '/'
                       OPERATOR(pg_catalog.||) e.id::pg_catalog.text),
              (e.detail OPERATOR(pg_catalog.->>) 'phase') OPERATOR(pg_catalog.=) 'final' DESC
  ), u AS (
    SELECT m.* FROM m
    UNION ALL
    -- a TRUNCATE of the table after the row was seen removed it too
    SELECT e.* FROM e
     WHERE e.kind OPERATOR(pg_catalog.=) 'truncate'
       AND EXISTS (SELECT FROM m WHERE m."table" OPERATOR(pg_catalog.=) e."table"
                                  AND m.ts OPERATOR(pg_catalog.<=) e.ts)
    UNION ALL
    SELECT r.* FROM r
  )
  SELECT u.ts, u.kind, u."table",  u.db_user, u.app_user, u.tenant, u.purpose,
         CASE WHEN u.client_addr OPERATOR(pg_catalog.=) '[local]' THEN NULL
              ELSE u.client_addr::pg_catalog.inet END,
         u.application_name, u.detail
    FROM u
   WHERE u.ts OPERATOR(pg_catalog.>=) since
   ORDER BY u.ts, u.xid, u.id;
END
$$;
COMMENT ON FUNCTION phi_guard.phi_access_report(pg_catalog.text, pg_catalog.timestamptz) IS
  'audit entries about one row (by primary key value or JSON object of key columns) since a time, with the reads whose row reference is the key or ends in '':'' and the key, oldest first; requires phi_auditor';

-- phi_disclosures: who saw one row's protected values (SPEC §7) — every
-- access whose row references (detail.rows) contain ref, oldest first: its
-- final entry, or its intent when no final entry names ref (a crash left
-- none, or phi_guard.access_rows_max left ref out of it).  A ref over 128
-- bytes is looked up as the log records it, 'sha256:' and the hex of its
-- SHA-256.  The log is read whole; a text test skips records without ref
-- before any is parsed.
CREATE FUNCTION phi_guard.phi_disclosures(ref pg_catalog.text,
                                          since pg_catalog.timestamptz DEFAULT '-infinity')
  RETURNS TABLE(ts pg_catalog.timestamptz, kind pg_catalog.text, db_user pg_catalog.text,
                app_user pg_catalog.text, tenant pg_catalog.text, purpose pg_catalog.text,
                request_id pg_catalog.text, key pg_catalog.text)
  LANGUAGE sql STABLE STRICT PARALLEL SAFE
  SET search_path = pg_catalog, pg_temp AS
$$
  WITH q AS (
    SELECT CASE WHEN pg_catalog.octet_length(pg_catalog.convert_to(ref, 'UTF8')) OPERATOR(pg_catalog.>) 128
                THEN 'sha256:' OPERATOR(pg_catalog.||)
                     pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(ref, 'UTF8')), 'hex')
                ELSE ref END AS ref
  ), d AS (
    SELECT DISTINCT ON (COALESCE(j.detail OPERATOR(pg_catalog.->>) 'access_id',
                                 l.xid::pg_catalog.text OPERATOR(pg_catalog.||) '/'
                                 OPERATOR(pg_catalog.||) l.id::pg_catalog.text))
           l.xid, l.id, j.ts, j.kind, j.db_user, j.app_user, j.tenant, j.purpose, j.request_id,
           CASE WHEN j.kind OPERATOR(pg_catalog.=) ANY (ARRAY['detokenize', 'tokenize'])
                THEN j.detail OPERATOR(pg_catalog.->>) 'domain'
                ELSE j.detail OPERATOR(pg_catalog.->>) 'key' END AS key
      FROM q, phi_guard.audit_log l
     CROSS JOIN LATERAL pg_catalog.json_to_record(l.record::pg_catalog.json)
           AS j(ts pg_catalog.timestamptz, kind pg_catalog.text, db_user pg_catalog.text,
                app_user pg_catalog.text, tenant pg_catalog.text, purpose pg_catalog.text,
                request_id pg_catalog.text, detail pg_catalog.jsonb)
     WHERE pg_catalog.strpos(l.record, pg_catalog.to_json(q.ref)::pg_catalog.text) OPERATOR(pg_catalog.>) 0
       AND j.kind OPERATOR(pg_catalog.=) ANY (ARRAY['decrypt', 'decrypt_masked', 'detokenize', 'tokenize'])
       AND (j.detail OPERATOR(pg_catalog.->) 'rows') OPERATOR(pg_catalog.@>) pg_catalog.jsonb_build_array(q.ref)
     ORDER BY COALESCE(j.detail OPERATOR(pg_catalog.->>) 'access_id',
                       l.xid::pg_catalog.text OPERATOR(pg_catalog.||) '/'
                       OPERATOR(pg_catalog.||) l.id::pg_catalog.text),
              (j.detail OPERATOR(pg_catalog.->>) 'phase') OPERATOR(pg_catalog.=) 'final' DESC
  )
  SELECT d.ts, d.kind, d.db_user, d.app_user, d.tenant, d.purpose, d.request_id, d.key
    FROM d
   WHERE d.ts OPERATOR(pg_catalog.>=) since
   ORDER BY d.ts, d.xid, d.id
$$;
COMMENT ON FUNCTION phi_guard.phi_disclosures(pg_catalog.text, pg_catalog.timestamptz) IS
  'who saw one row''s protected values: the access entries whose row references contain ref (the aad, ct:<nonce hex> or tok:<domain>:<token>) since a time, oldest first; requires phi_auditor';

REVOKE ALL ON FUNCTION phi_guard.phi_disclosures(pg_catalog.text, pg_catalog.timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION phi_guard.phi_disclosures(pg_catalog.text, pg_catalog.timestamptz) TO phi_auditor;

-- end of section: disclosure accounting

------------------------------------------------------------------------
-- Audit retention with checkpoints (issue 14, SPEC §8)
------------------------------------------------------------------------
-- phi_audit_prune removes archived blocks and their entries; the chain
-- continues from audit_checkpoint.  As in src/audit/audit.sql.

-- the append-only trigger function also guards the checkpoint; its hint
-- names the one way rows leave
CREATE OR REPLACE FUNCTION phi_guard.audit_append_only() RETURNS trigger
  LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
  RAISE EXCEPTION 'phi_guard.% is append-only', TG_TABLE_NAME
    USING ERRCODE = '42501',
          HINT = 'Audit entries, blocks and the checkpoint are never changed; only phi_audit_prune() removes archived blocks and their entries.';
END
$$;
COMMENT ON FUNCTION phi_guard.audit_append_only() IS
  'internal: refuses UPDATE, DELETE and TRUNCATE of audit entries, blocks and the checkpoint';

-- The last pruned block (SPEC §8): phi_audit_prune (src/audit/prune.c)
-- removes archived blocks and their entries and keeps here the block they
-- ended with (entries: every entry up to and including it); the remaining
-- chain is verified from it.  One row, replaced by each prune at the heap
-- level: like the log and the blocks, the table refuses every SQL UPDATE,
-- DELETE and TRUNCATE.  Nobody is granted more than reading it.
CREATE TABLE phi_guard.audit_checkpoint (
  block_no   pg_catalog.int8 NOT NULL,
  block_hash pg_catalog.bytea NOT NULL,
  entries    pg_catalog.int8 NOT NULL,
  pruned_at  pg_catalog.timestamptz NOT NULL
);
COMMENT ON TABLE phi_guard.audit_checkpoint IS
  'the last block removed by phi_audit_prune: the remaining chain continues from its block_hash; entries counts every entry up to it (SPEC §8)';
SELECT pg_catalog.pg_extension_config_dump('phi_guard.audit_checkpoint', '');
CREATE TRIGGER audit_checkpoint_append_only BEFORE UPDATE OR DELETE ON phi_guard.audit_checkpoint
  FOR EACH ROW EXECUTE FUNCTION phi_guard.audit_append_only();
CREATE TRIGGER audit_checkpoint_no_truncate BEFORE TRUNCATE ON phi_guard.audit_checkpoint
  FOR EACH STATEMENT EXECUTE FUNCTION phi_guard.audit_append_only();

-- Not SECURITY DEFINER: the C function checks that the caller has the
-- privileges of phi_audit_admin, reads as the tables' owner and removes
-- rows below the SQL level, so the append-only triggers stay in force.
CREATE FUNCTION phi_guard.phi_audit_prune(upto_block pg_catalog.int8,
                                          archive_digest pg_catalog.jsonb)
  RETURNS pg_catalog.int8
  AS 'MODULE_PATHNAME', 'phi_guard_audit_prune'
  LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE
  SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION phi_guard.phi_audit_prune(pg_catalog.int8, pg_catalog.jsonb) IS
  'removes sealed blocks up to upto_block and their entries once archive_digest (phi_audit_digest of that block) matches and they are older than phi_guard.audit_min_retention; returns the entries removed; requires phi_audit_admin';

REVOKE ALL ON phi_guard.audit_checkpoint FROM PUBLIC;
REVOKE ALL ON FUNCTION phi_guard.phi_audit_prune(pg_catalog.int8, pg_catalog.jsonb) FROM PUBLIC;
GRANT SELECT ON phi_guard.audit_checkpoint TO phi_auditor;
GRANT EXECUTE ON FUNCTION phi_guard.phi_audit_prune(pg_catalog.int8, pg_catalog.jsonb) TO phi_audit_admin;

-- end of section: audit retention

-- ---------------------------------------------------------------------
-- Functions that choose a key by the context's tenant run in the leader
-- only: a parallel worker holds no context and would choose the shared key
-- ---------------------------------------------------------------------
ALTER FUNCTION phi_guard.phi_encrypt(pg_catalog.text, pg_catalog.text, pg_catalog.text) PARALLEL RESTRICTED;
ALTER FUNCTION phi_guard.phi_encrypt(pg_catalog.bytea, pg_catalog.text, pg_catalog.text) PARALLEL RESTRICTED;
ALTER FUNCTION phi_guard.phi_blind_index(pg_catalog.text, pg_catalog.text, pg_catalog.int4) PARALLEL RESTRICTED;

-- ---------------------------------------------------------------------
-- Alerts: NOTIFY phi_guard_alert and the view phi_guard.alerts, raised by
-- sealing from the audit log (issue 14, SPEC §8; src/audit/alerts.sql);
-- refused break-glass is an access_denied entry (src/context/context.sql)
-- ---------------------------------------------------------------------
CREATE TABLE phi_guard.alert_log (
  ts       pg_catalog.timestamptz NOT NULL,
  kind     pg_catalog.text NOT NULL,
  db_user  pg_catalog.text,
  app_user pg_catalog.text,
  tenant   pg_catalog.text,
  detail   pg_catalog.jsonb NOT NULL
);
CREATE INDEX alert_log_kind_ts ON phi_guard.alert_log (kind, ts);
COMMENT ON TABLE phi_guard.alert_log IS
  'alerts raised by sealing (SPEC §8); read through phi_guard.alerts';
SELECT pg_catalog.pg_extension_config_dump('phi_guard.alert_log', '');

-- Denials of the last 5 minutes (by entry time), per subject: the app user
-- ('app_user:<sub>') of an entry written under a context, else its
-- database role ('db_user:<name>'); n is the entry's count.
CREATE TABLE phi_guard.alert_denials (
  ts      pg_catalog.timestamptz NOT NULL,
  subject pg_catalog.text NOT NULL,
  n       pg_catalog.int8 NOT NULL
);
CREATE INDEX alert_denials_subject_ts ON phi_guard.alert_denials (subject, ts);
COMMENT ON TABLE phi_guard.alert_denials IS
  'internal: the denials of the last 5 minutes that repeated_denials alerts count';

CREATE VIEW phi_guard.alerts AS
  SELECT a.ts, a.kind, a.db_user, a.app_user, a.tenant, a.detail
    FROM phi_guard.alert_log a;
COMMENT ON VIEW phi_guard.alerts IS
  'alerts: bulk_disclosure, repeated_denials, break_glass_open, safeguard_changed, off_hours (each also sent as NOTIFY phi_guard_alert); for phi_auditor';

-- One alert: a row of alert_log and its notification, whose payload is
-- {"kind","ts","db_user","app_user","tenant","detail"} (ts as the entry
-- wrote it).  A payload too long for NOTIFY (8000 bytes) is sent with
-- detail {"truncated": true}; the row keeps the whole detail.  While
-- PostgreSQL's notification queue is over half full (a listener that
-- never reads), the alert is kept but not sent, with a WARNING: a full
-- queue would fail the sealing transaction, and sealing must go on.
CREATE FUNCTION phi_guard.alert_raise(ts pg_catalog.text, kind pg_catalog.text,
                                      db_user pg_catalog.text, app_user pg_catalog.text,
                                      tenant pg_catalog.text, detail pg_catalog.jsonb)
  RETURNS void
  LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
  SET search_path = pg_catalog, pg_temp AS
$$
#variable_conflict use_variable
DECLARE
  payload pg_catalog.text;
BEGIN
  INSERT INTO phi_guard.alert_log (ts, kind, db_user, app_user, tenant, detail)
    VALUES (ts::pg_catalog.timestamptz, kind, db_user, app_user, tenant, detail);
  payload := pg_catalog.json_build_object('kind', kind, 'ts', ts, 'db_user', db_user,
                                          'app_user', app_user, 'tenant', tenant,
                                          'detail', detail)::pg_catalog.text;
  IF pg_catalog.octet_length(payload) OPERATOR(pg_catalog.>=) 8000 THEN
    payload := pg_catalog.json_build_object('kind', kind, 'ts', ts, 'db_user', db_user,
                                            'app_user', app_user, 'tenant', tenant,
                                            'detail', '{"truncated": true}'::pg_catalog.jsonb)::pg_catalog.text;
  END IF;
  IF pg_catalog.pg_notification_queue_usage() OPERATOR(pg_catalog.>) 0.5 THEN
    RAISE WARNING 'phi_guard alert % not sent: the notification queue is over half full', kind
      USING DETAIL = 'The alert is in phi_guard.alerts.',
            HINT = 'A session listening on some channel does not read its notifications; see pg_notification_queue_usage().';
  ELSE
    PERFORM pg_catalog.pg_notify('phi_guard_alert', payload);
  END IF;
END
$$;
COMMENT ON FUNCTION phi_guard.alert_raise(pg_catalog.text, pg_catalog.text, pg_catalog.text,
                                          pg_catalog.text, pg_catalog.text, pg_catalog.jsonb) IS
  'internal: records one alert in alert_log and sends it as NOTIFY phi_guard_alert';

-- The alerts of the entries with lo <= xid < hi, the block sealing has
-- just made (the settings come from the caller: SPEC §8).  Only entries
-- whose kind can raise an alert are parsed: the kind is read from the
-- record's first bytes (audit_record.c writes it among the first keys).
-- Returns the number of alerts raised.
CREATE FUNCTION phi_guard.alert_scan(lo pg_catalog.xid8, hi pg_catalog.xid8,
                                     bulk_rows pg_catalog.int8, denials pg_catalog.int8,
                                     hours pg_catalog.text, tz pg_catalog.text)
  RETURNS pg_catalog.int4
  LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
  SET search_path = pg_catalog, pg_temp AS
$$
#variable_conflict use_variable
DECLARE
  disclosures pg_catalog.text[] := ARRAY['decrypt', 'decrypt_masked', 'detokenize'];
  refusals pg_catalog.text[] := ARRAY['context_rejected', 'access_denied'];
  safeguards pg_catalog.text[] := ARRAY['audit_disable', 'unprotect', 'context_key_add',
                                        'context_key_revoke', 'permission_grant',
                                        'key_access', 'ddl'];
  watched pg_catalog.text[] := disclosures OPERATOR(pg_catalog.||) refusals
                               OPERATOR(pg_catalog.||) safeguards
                               OPERATOR(pg_catalog.||) 'break_glass_open'::pg_catalog.text;
  e record;
  t pg_catalog.timestamptz;
  n pg_catalog.int8;
  subject pg_catalog.text;
  local_ts pg_catalog.timestamp;
  opens pg_catalog.time;
  closes pg_catalog.time;
  inside pg_catalog.bool;
  raised pg_catalog.int4 := 0;
BEGIN
  IF hours OPERATOR(pg_catalog.<>) '' THEN
    opens := pg_catalog.split_part(hours, '-', 1)::pg_catalog.time;
    closes := pg_catalog.split_part(hours, '-', 2)::pg_catalog.time;
  END IF;
  FOR e IN SELECT r.*
             FROM phi_guard.audit_log l
            CROSS JOIN LATERAL pg_catalog.json_to_record(l.record::pg_catalog.json)
                  AS r(ts pg_catalog.text, kind pg_catalog.text, "table" pg_catalog.text,
                       db_user pg_catalog.text, app_user pg_catalog.text,
                       tenant pg_catalog.text, request_id pg_catalog.text,
                       detail pg_catalog.jsonb)
            WHERE l.xid OPERATOR(pg_catalog.>=) lo AND l.xid OPERATOR(pg_catalog.<) hi
              AND pg_catalog.split_part(pg_catalog.split_part(pg_catalog.substr(l.record, 1, 96),
                                                              '"kind":"', 2), '"', 1)
                  OPERATOR(pg_catalog.=) ANY (watched)
            ORDER BY r.ts, l.xid, l.id
  LOOP
    t := e.ts::pg_catalog.timestamptz;
    -- who off_hours and repeated_denials count against
    subject := CASE WHEN e.app_user IS NOT NULL THEN 'app_user:' OPERATOR(pg_catalog.||) e.app_user
                    ELSE 'db_user:' OPERATOR(pg_catalog.||) COALESCE(e.db_user, '') END;
    IF e.kind OPERATOR(pg_catalog.=) ANY (disclosures) THEN
      -- bulk_disclosure: one statement's access entry revealing more than
      -- bulk_rows values (its final entry: an intent counts 0)
      n := COALESCE((e.detail OPERATOR(pg_catalog.->>) 'count')::pg_catalog.int8, 0);
      IF bulk_rows OPERATOR(pg_catalog.>) 0 AND n OPERATOR(pg_catalog.>) bulk_rows THEN
        PERFORM phi_guard.alert_raise(e.ts, 'bulk_disclosure', e.db_user, e.app_user, e.tenant,
          pg_catalog.jsonb_build_object('access', e.kind, 'key', e.detail OPERATOR(pg_catalog.->) 'key',
                                        'values', n, 'threshold', bulk_rows,
                                        'request_id', e.request_id,
                                        'query_id', e.detail OPERATOR(pg_catalog.->) 'query_id'));
        raised := raised OPERATOR(pg_catalog.+) 1;
      END IF;
      -- off_hours: outside [opens, closes) in tz (a range may wrap past
      -- midnight), at most one per subject and local hour
      CONTINUE WHEN opens IS NULL;
      local_ts := t AT TIME ZONE tz;
      inside := CASE WHEN opens OPERATOR(pg_catalog.<=) closes
                     THEN local_ts::pg_catalog.time OPERATOR(pg_catalog.>=) opens
                          AND local_ts::pg_catalog.time OPERATOR(pg_catalog.<) closes
                     ELSE local_ts::pg_catalog.time OPERATOR(pg_catalog.>=) opens
                          OR local_ts::pg_catalog.time OPERATOR(pg_catalog.<) closes END;
      CONTINUE WHEN inside;
      CONTINUE WHEN EXISTS (
        SELECT FROM phi_guard.alert_log a
         WHERE a.kind OPERATOR(pg_catalog.=) 'off_hours'
           AND a.ts OPERATOR(pg_catalog.>) (t OPERATOR(pg_catalog.-) '1 hour'::pg_catalog.interval)
           AND a.detail OPERATOR(pg_catalog.->>) 'subject' OPERATOR(pg_catalog.=) subject
           AND a.detail OPERATOR(pg_catalog.->>) 'hour'
               OPERATOR(pg_catalog.=) pg_catalog.to_char(local_ts, 'YYYY-MM-DD HH24'));
      PERFORM phi_guard.alert_raise(e.ts, 'off_hours', e.db_user, e.app_user, e.tenant,
        pg_catalog.jsonb_build_object('access', e.kind, 'key', e.detail OPERATOR(pg_catalog.->) 'key',
                                      'local_time', pg_catalog.to_char(local_ts, 'YYYY-MM-DD"T"HH24:MI:SS'),
                                      'hour', pg_catalog.to_char(local_ts, 'YYYY-MM-DD HH24'),
                                      'hours', hours, 'timezone', tz, 'subject', subject,
                                      'request_id', e.request_id));
      raised := raised OPERATOR(pg_catalog.+) 1;
    ELSIF e.kind OPERATOR(pg_catalog.=) ANY (refusals) THEN
      -- repeated_denials: more than denials refusals by one subject within
      -- 5 minutes, at most one alert per subject and 5 minutes
      INSERT INTO phi_guard.alert_denials (ts, subject, n)
        VALUES (t, subject, COALESCE((e.detail OPERATOR(pg_catalog.->>) 'count')::pg_catalog.int8, 1));
      DELETE FROM phi_guard.alert_denials d
       WHERE d.ts OPERATOR(pg_catalog.<=) (t OPERATOR(pg_catalog.-) '10 minutes'::pg_catalog.interval);
      SELECT pg_catalog.sum(d.n) INTO n FROM phi_guard.alert_denials d
       WHERE d.subject OPERATOR(pg_catalog.=) subject
         AND d.ts OPERATOR(pg_catalog.>) (t OPERATOR(pg_catalog.-) '5 minutes'::pg_catalog.interval)
         AND d.ts OPERATOR(pg_catalog.<=) t;
      CONTINUE WHEN n OPERATOR(pg_catalog.<=) denials;
      CONTINUE WHEN EXISTS (
        SELECT FROM phi_guard.alert_log a
         WHERE a.kind OPERATOR(pg_catalog.=) 'repeated_denials'
           AND a.ts OPERATOR(pg_catalog.>) (t OPERATOR(pg_catalog.-) '5 minutes'::pg_catalog.interval)
           AND a.detail OPERATOR(pg_catalog.->>) 'subject' OPERATOR(pg_catalog.=) subject);
      PERFORM phi_guard.alert_raise(e.ts, 'repeated_denials', e.db_user, e.app_user, e.tenant,
        pg_catalog.jsonb_build_object('denials', n, 'threshold', denials, 'window_seconds', 300,
                                      'subject', subject, 'last', e.kind,
                                      'reason', e.detail OPERATOR(pg_catalog.->) 'reason'));
      raised := raised OPERATOR(pg_catalog.+) 1;
    ELSIF e.kind OPERATOR(pg_catalog.=) 'break_glass_open' THEN
      -- the reason is free text: it stays in the audit log, out of payloads
      PERFORM phi_guard.alert_raise(e.ts, 'break_glass_open', e.db_user, e.app_user, e.tenant,
        pg_catalog.jsonb_build_object('grant', e.detail OPERATOR(pg_catalog.->) 'grant',
                                      'minutes', e.detail OPERATOR(pg_catalog.->) 'minutes',
                                      'expires_at', e.detail OPERATOR(pg_catalog.->) 'expires_at',
                                      'request_id', e.request_id));
      raised := raised OPERATOR(pg_catalog.+) 1;
    ELSE
      -- safeguard_changed: auditing or protection removed, a context key
      -- added or revoked, a permission granted, a key's access rule
      -- removed, DDL that switched row security or an audit trigger off
      -- or dropped or altered a policy or trigger
      CONTINUE WHEN e.kind OPERATOR(pg_catalog.=) 'key_access'
                    AND e.detail OPERATOR(pg_catalog.->>) 'permission' IS NOT NULL;
      CONTINUE WHEN e.kind OPERATOR(pg_catalog.=) 'ddl'
                    AND NOT (e.detail OPERATOR(pg_catalog.@>) '{"audit_triggers_enabled": false}'
                             OR e.detail OPERATOR(pg_catalog.@>) '{"row_security": false}'
                             OR e.detail OPERATOR(pg_catalog.@>) '{"force_row_security": false}'
                             OR e.detail OPERATOR(pg_catalog.->>) 'command'
                                OPERATOR(pg_catalog.=) ANY (ARRAY['DROP POLICY', 'ALTER POLICY', 'DROP TRIGGER']));
      PERFORM phi_guard.alert_raise(e.ts, 'safeguard_changed', e.db_user, e.app_user, e.tenant,
        pg_catalog.jsonb_build_object('change', e.kind, 'table', e."table")
        OPERATOR(pg_catalog.||) COALESCE(e.detail, '{}'::pg_catalog.jsonb));
      raised := raised OPERATOR(pg_catalog.+) 1;
    END IF;
  END LOOP;
  RETURN raised;
END
$$;
COMMENT ON FUNCTION phi_guard.alert_scan(pg_catalog.xid8, pg_catalog.xid8, pg_catalog.int8,
                                         pg_catalog.int8, pg_catalog.text, pg_catalog.text) IS
  'internal, called by sealing: raises the alerts of the entries of a new block; returns how many';

-- A denial entry (kind access_denied, written even when the transaction
-- rolls back) for a refusal that a phi_guard SQL function is about to
-- raise; reason names the rule, never a value.
CREATE FUNCTION phi_guard.audit_denial(reason pg_catalog.text) RETURNS void
  AS 'MODULE_PATHNAME', 'phi_guard_audit_denial'
  LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION phi_guard.audit_denial(pg_catalog.text) IS
  'internal: records a refusal as an access_denied entry before a phi_guard function raises it; granted to no one';

REVOKE ALL ON phi_guard.alert_log, phi_guard.alert_denials, phi_guard.alerts FROM PUBLIC;
REVOKE ALL ON FUNCTION
  phi_guard.alert_raise(pg_catalog.text, pg_catalog.text, pg_catalog.text, pg_catalog.text,
                        pg_catalog.text, pg_catalog.jsonb),
  phi_guard.alert_scan(pg_catalog.xid8, pg_catalog.xid8, pg_catalog.int8, pg_catalog.int8,
                       pg_catalog.text, pg_catalog.text),
  phi_guard.audit_denial(pg_catalog.text)
  FROM PUBLIC;
GRANT SELECT ON phi_guard.alerts TO phi_auditor;

CREATE OR REPLACE FUNCTION phi_guard.phi_break_glass(reason pg_catalog.text, minutes pg_catalog.int4 DEFAULT 30)
  RETURNS pg_catalog.timestamptz
  LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
  SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
  ceiling pg_catalog.int4 := pg_catalog.current_setting('phi_guard.break_glass_max_minutes')::pg_catalog.int4;
  shortest pg_catalog.int4 := pg_catalog.current_setting('phi_guard.break_glass_min_reason')::pg_catalog.int4;
  g phi_guard.break_glass;
BEGIN
  -- a refusal is an access_denied entry, which survives the rollback
  IF phi_guard.phi_tenant_id() IS NULL THEN
    PERFORM phi_guard.audit_denial('break-glass: no context');
    RAISE EXCEPTION 'break-glass needs a context' USING ERRCODE = '42501',
      HINT = 'Call phi_set_context() with the user''s signed context token first.';
  END IF;
  IF NOT phi_guard.phi_has_permission('break_glass') THEN
    PERFORM phi_guard.audit_denial('break-glass: no permission');
    RAISE EXCEPTION 'no role of the context has the break_glass permission' USING ERRCODE = '42501';
  END IF;
  IF reason IS NULL OR pg_catalog.length(pg_catalog.btrim(reason)) OPERATOR(pg_catalog.<) shortest THEN
    RAISE EXCEPTION 'a break-glass reason of at least % characters is required', shortest
      USING ERRCODE = '22023';
  END IF;
  IF minutes IS NULL OR minutes OPERATOR(pg_catalog.<) 1 OR minutes OPERATOR(pg_catalog.>) ceiling THEN
    RAISE EXCEPTION 'break-glass minutes must be between 1 and %', ceiling USING ERRCODE = '22023',
      HINT = 'The ceiling is phi_guard.break_glass_max_minutes.';
  END IF;
  INSERT INTO phi_guard.break_glass (user_id, tenant, reason, purpose, expires_at)
    VALUES (phi_guard.phi_user_id(), phi_guard.phi_tenant_id(), reason, phi_guard.phi_purpose(),
            pg_catalog.clock_timestamp() OPERATOR(pg_catalog.+) pg_catalog.make_interval(mins => minutes))
    RETURNING * INTO g;
  PERFORM phi_guard.audit_event('break_glass_open', NULL,
    pg_catalog.jsonb_build_object('grant', g.id, 'reason', g.reason, 'minutes', minutes,
                                  'expires_at', phi_guard.utc_text(g.expires_at)));
  RETURN g.expires_at;
END
$$;

-- end of section: alerts

-- On a Citus cluster (README, "Scaling out with Citus"): phi_citus_setup
-- makes the tables every node must read (keys, index keys, key access
-- rules, context keys, permissions, break-glass grants, token domains and
-- vault) Citus reference tables, so that each node holds them and a key
-- lifecycle call on the coordinator changes every node in one distributed
-- transaction.  The audit log, its blocks and checkpoints stay local: each
-- node keeps its own chain (SPEC §10).

CREATE FUNCTION phi_guard.phi_citus_setup() RETURNS SETOF pg_catalog.regclass
  LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
  SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  t pg_catalog.regclass;
BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'citus') THEN
    RAISE EXCEPTION 'citus is not installed in this database'
      USING ERRCODE = '55000', HINT = 'Run CREATE EXTENSION citus first, on a Citus coordinator.';
  END IF;
  IF (SELECT groupid FROM pg_catalog.pg_dist_local_group) OPERATOR(pg_catalog.<>) 0 THEN
    RAISE EXCEPTION 'phi_citus_setup must run on the coordinator'
      USING ERRCODE = '55000', HINT = 'Connect to the coordinator and run it there.';
  END IF;
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_dist_node WHERE groupid OPERATOR(pg_catalog.=) 0) THEN
    RAISE EXCEPTION 'the coordinator is not registered in pg_dist_node'
      USING ERRCODE = '55000',
            DETAIL = 'The coordinator must hold a copy of the reference tables phi_guard reads without SQL.',
            HINT = 'Run SELECT citus_set_coordinator_host(''<host>'', <port>) first.';
  END IF;
  -- the tables carry phi_guard's own triggers (the key cache's coherence),
  -- which must follow the rows to every node's copy
  PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', 'on', true);
  -- a local table may not reference a reference table: the vault's key to
  -- its domains is dropped here and comes back on this shell once both are
  -- reference tables (the workers' shells never lost it; the shards check
  -- domains in phi_tokenize, not by key)
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_dist_partition
                  WHERE logicalrelid OPERATOR(pg_catalog.=) 'phi_guard.token_vault'::pg_catalog.regclass) THEN
    ALTER TABLE phi_guard.token_vault DROP CONSTRAINT token_vault_domain_fkey;
  END IF;
  FOREACH t IN ARRAY ARRAY['phi_guard.keys', 'phi_guard.index_keys', 'phi_guard.key_access',
                           'phi_guard.context_keys', 'phi_guard.permission_defaults',
                           'phi_guard.permission_overrides', 'phi_guard.break_glass',
                           'phi_guard.token_domains', 'phi_guard.token_vault']::pg_catalog.regclass[]
  LOOP
    CONTINUE WHEN EXISTS (SELECT FROM pg_catalog.pg_dist_partition
                           WHERE logicalrelid OPERATOR(pg_catalog.=) t);
    PERFORM pg_catalog.create_reference_table(t);
    -- the rows now live in every node's shard; none may stay behind in the
    -- shell (a destroyed key must be gone everywhere)
    PERFORM pg_catalog.truncate_local_data_after_distributing_table(t);
    RETURN NEXT t;
    IF t OPERATOR(pg_catalog.=) 'phi_guard.token_vault'::pg_catalog.regclass THEN
      PERFORM pg_catalog.set_config('citus.enable_ddl_propagation', 'off', true);
      ALTER TABLE phi_guard.token_vault ADD CONSTRAINT token_vault_domain_fkey
        FOREIGN KEY (domain) REFERENCES phi_guard.token_domains (name);
      PERFORM pg_catalog.set_config('citus.enable_ddl_propagation', 'on', true);
    END IF;
  END LOOP;
END
$fn$;
REVOKE ALL ON FUNCTION phi_guard.phi_citus_setup() FROM PUBLIC;
COMMENT ON FUNCTION phi_guard.phi_citus_setup() IS
  'on a Citus coordinator: make phi_guard''s keys, context keys, permissions, break-glass grants and token vault reference tables held by every node; returns the tables it distributed';

-- The workers of a coordinator that phi_audit_digest and phi_audit_verify
-- reach (SPEC §10): every primary other than the coordinator, disabled ones
-- too (a node is never left out silently: one that does not answer is an
-- error), in node-id order; none on a worker or without Citus.
CREATE FUNCTION phi_guard.cluster_workers(OUT nodeid pg_catalog.int4, OUT node pg_catalog.text,
                                          OUT host pg_catalog.text, OUT port pg_catalog.int4)
  RETURNS SETOF record
  LANGUAGE plpgsql STABLE PARALLEL UNSAFE
  SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
  IF pg_catalog.to_regclass('pg_catalog.pg_dist_local_group') IS NULL THEN
    RETURN;
  END IF;
  IF (SELECT g.groupid FROM pg_catalog.pg_dist_local_group g) OPERATOR(pg_catalog.<>) 0 THEN
    RETURN;
  END IF;
  RETURN QUERY
    SELECT n.nodeid, pg_catalog.format('%s:%s', n.nodename, n.nodeport), n.nodename::pg_catalog.text, n.nodeport
      FROM pg_catalog.pg_dist_node n
     WHERE n.groupid OPERATOR(pg_catalog.<>) 0 AND n.noderole OPERATOR(pg_catalog.=) 'primary'
     ORDER BY n.nodeid;
END
$fn$;
REVOKE ALL ON FUNCTION phi_guard.cluster_workers() FROM PUBLIC;
COMMENT ON FUNCTION phi_guard.cluster_workers() IS
  'internal: on a Citus coordinator, the workers whose chains phi_audit_digest and phi_audit_verify cover';

-- Run a query on every worker of cluster_workers(), in parallel, in
-- node-id order: format(command, the text of args' value under the
-- worker's "host:port", or NULL), so that each may get its own argument
-- (%L).  One row per worker: whether it answered and its result (the first
-- column of the first row, as text), or the error text.  With what given,
-- a worker that did not answer is an error (08006) "could not <what> of
-- node <host:port>" instead of a row.
CREATE FUNCTION phi_guard.cluster_run(command pg_catalog.text, args pg_catalog.jsonb,
                                      what pg_catalog.text,
                                      OUT node pg_catalog.text, OUT success pg_catalog.bool,
                                      OUT result pg_catalog.text)
  RETURNS SETOF record
  LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
  SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  r record;
BEGIN
  -- plpgsql: master_run_on_worker exists only where Citus is installed
  FOR r IN
    WITH w AS (SELECT * FROM phi_guard.cluster_workers())
    SELECT w.node, m.success, m.result
      FROM w
      JOIN pg_catalog.master_run_on_worker(
             ARRAY(SELECT x.host FROM w x ORDER BY x.nodeid),
             ARRAY(SELECT x.port FROM w x ORDER BY x.nodeid),
             ARRAY(SELECT pg_catalog.format(command, args OPERATOR(pg_catalog.->>) x.node)
                     FROM w x ORDER BY x.nodeid),
             true) m
        ON m.node_name OPERATOR(pg_catalog.=) w.host AND m.node_port OPERATOR(pg_catalog.=) w.port
     ORDER BY w.nodeid
  LOOP
    IF NOT r.success AND what IS NOT NULL THEN
      RAISE EXCEPTION 'could not % of node %', what, r.node
        USING ERRCODE = '08006', DETAIL = r.result,
              HINT = 'Every worker must be reachable and have phi_guard installed; retry when it is.';
    END IF;
    node := r.node;
    success := r.success;
    result := r.result;
    RETURN NEXT;
  END LOOP;
END
$fn$;
REVOKE ALL ON FUNCTION phi_guard.cluster_run(pg_catalog.text, pg_catalog.jsonb, pg_catalog.text) FROM PUBLIC;
COMMENT ON FUNCTION phi_guard.cluster_run(pg_catalog.text, pg_catalog.jsonb, pg_catalog.text) IS
  'internal: run a query on every Citus worker, each with its own argument; one row per worker';

-- SHA-256 of the block hashes of the coordinator's digest and then of each
-- worker's, in the order given (SPEC §10's cluster_hash).
CREATE FUNCTION phi_guard.cluster_hash(coordinator pg_catalog.jsonb, nodes pg_catalog.jsonb)
  RETURNS pg_catalog.text
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  SET search_path = pg_catalog, pg_temp
RETURN pg_catalog.encode(pg_catalog.sha256(pg_catalog.decode(
  (coordinator OPERATOR(pg_catalog.->>) 'block_hash') OPERATOR(pg_catalog.||)
  COALESCE((SELECT pg_catalog.string_agg(n.value OPERATOR(pg_catalog.->) 'digest' OPERATOR(pg_catalog.->>) 'block_hash',
                                         '' ORDER BY n.ordinality)
              FROM pg_catalog.jsonb_array_elements(nodes) WITH ORDINALITY n), ''),
  'hex')), 'hex');
REVOKE ALL ON FUNCTION phi_guard.cluster_hash(pg_catalog.jsonb, pg_catalog.jsonb) FROM PUBLIC;
COMMENT ON FUNCTION phi_guard.cluster_hash(pg_catalog.jsonb, pg_catalog.jsonb) IS
  'internal: SHA-256 of the coordinator''s and then each node''s block_hash (SPEC §10)';

-- phi_audit_digest on a coordinator: its own digest plus every worker's and
-- the cluster hash; a worker that does not answer is an error (an auditor
-- must not keep a digest that silently leaves a node out).
CREATE FUNCTION phi_guard.cluster_digest(local pg_catalog.jsonb) RETURNS pg_catalog.jsonb
  LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
  SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  nodes pg_catalog.jsonb := '[]';
  r record;
BEGIN
  IF NOT EXISTS (SELECT FROM phi_guard.cluster_workers()) THEN
    RETURN local;
  END IF;
  FOR r IN SELECT * FROM phi_guard.cluster_run('SELECT phi_guard.phi_audit_digest()', NULL,
                                                'read the audit digest')
  LOOP
    nodes := nodes OPERATOR(pg_catalog.||)
             pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object('node', r.node, 'digest', r.result::pg_catalog.jsonb));
  END LOOP;
  RETURN local OPERATOR(pg_catalog.||)
         pg_catalog.jsonb_build_object('nodes', nodes, 'cluster_hash', phi_guard.cluster_hash(local, nodes));
END
$fn$;
REVOKE ALL ON FUNCTION phi_guard.cluster_digest(pg_catalog.jsonb) FROM PUBLIC;
COMMENT ON FUNCTION phi_guard.cluster_digest(pg_catalog.jsonb) IS
  'internal: phi_audit_digest on a Citus coordinator, with every worker''s digest and the cluster hash (SPEC §10)';

-- phi_audit_verify on a coordinator: the coordinator's verdict (given)
-- combined with every worker's, each checked against its part of the
-- digest when one is given; the first problem found names its node.
CREATE FUNCTION phi_guard.cluster_verify(digest pg_catalog.jsonb, INOUT ok pg_catalog.bool,
                                         INOUT blocks pg_catalog.int8, INOUT entries pg_catalog.int8,
                                         INOUT first_bad_block pg_catalog.int8, INOUT problem pg_catalog.text)
  LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
  SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  r record;
  v pg_catalog.jsonb;
  node_digest pg_catalog.jsonb;
  missing pg_catalog.text;
BEGIN
  IF NOT EXISTS (SELECT FROM phi_guard.cluster_workers()) THEN
    RETURN;
  END IF;
  IF NOT ok THEN
    problem := 'coordinator: ' OPERATOR(pg_catalog.||) problem;
  END IF;
  IF digest OPERATOR(pg_catalog.?) 'nodes' THEN
    IF ok AND NOT COALESCE(phi_guard.cluster_hash(digest, digest OPERATOR(pg_catalog.->) 'nodes')
                           OPERATOR(pg_catalog.=) (digest OPERATOR(pg_catalog.->>) 'cluster_hash'), false) THEN
      ok := false;
      problem := 'cluster_hash of the digest does not match its nodes'' digests';
    END IF;
    SELECT n.value OPERATOR(pg_catalog.->>) 'node' INTO missing
      FROM pg_catalog.jsonb_array_elements(digest OPERATOR(pg_catalog.->) 'nodes') n
     WHERE NOT EXISTS (SELECT FROM phi_guard.cluster_workers() w
                        WHERE w.node OPERATOR(pg_catalog.=) (n.value OPERATOR(pg_catalog.->>) 'node'))
     LIMIT 1;
    IF missing IS NOT NULL AND ok THEN
      ok := false;
      problem := pg_catalog.format('node %s of the digest is not a worker of this cluster', missing);
    END IF;
    SELECT w.node INTO missing FROM phi_guard.cluster_workers() w
     WHERE NOT EXISTS (SELECT FROM pg_catalog.jsonb_array_elements(digest OPERATOR(pg_catalog.->) 'nodes') n
                        WHERE (n.value OPERATOR(pg_catalog.->>) 'node') OPERATOR(pg_catalog.=) w.node)
     LIMIT 1;
    IF missing IS NOT NULL AND ok THEN
      ok := false;
      problem := pg_catalog.format('worker %s is not in the digest', missing);
    END IF;
  END IF;
  FOR r IN SELECT * FROM phi_guard.cluster_run(
             'SELECT pg_catalog.row_to_json(v) FROM phi_guard.phi_audit_verify(%L::pg_catalog.jsonb) v',
             (SELECT pg_catalog.jsonb_object_agg(n.value OPERATOR(pg_catalog.->>) 'node',
                                                 n.value OPERATOR(pg_catalog.->) 'digest')
                FROM pg_catalog.jsonb_array_elements(digest OPERATOR(pg_catalog.->) 'nodes') n),
             'verify the audit chain')
  LOOP
    v := r.result::pg_catalog.jsonb;
    blocks := blocks OPERATOR(pg_catalog.+) (v OPERATOR(pg_catalog.->>) 'blocks')::pg_catalog.int8;
    entries := entries OPERATOR(pg_catalog.+) (v OPERATOR(pg_catalog.->>) 'entries')::pg_catalog.int8;
    IF ok AND NOT (v OPERATOR(pg_catalog.->>) 'ok')::pg_catalog.bool THEN
      ok := false;
      first_bad_block := (v OPERATOR(pg_catalog.->>) 'first_bad_block')::pg_catalog.int8;
      problem := pg_catalog.format('node %s: %s', r.node, v OPERATOR(pg_catalog.->>) 'problem');
    END IF;
  END LOOP;
END
$fn$;
REVOKE ALL ON FUNCTION phi_guard.cluster_verify(pg_catalog.jsonb, pg_catalog.bool, pg_catalog.int8,
  pg_catalog.int8, pg_catalog.int8, pg_catalog.text) FROM PUBLIC;
COMMENT ON FUNCTION phi_guard.cluster_verify(pg_catalog.jsonb, pg_catalog.bool, pg_catalog.int8,
  pg_catalog.int8, pg_catalog.int8, pg_catalog.text) IS
  'internal: phi_audit_verify on a Citus coordinator, every worker''s chain included (SPEC §10)';

-- phi_check_config on a Citus coordinator: the workers whose current
-- master key is not the coordinator's (compared by the secret-free
-- fingerprint of phi_master_key_status), or that did not answer.
CREATE FUNCTION phi_guard.cluster_master_key_mismatches(OUT node pg_catalog.text, OUT answer pg_catalog.text)
  RETURNS SETOF record
  LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
  SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  mine pg_catalog.text := (SELECT s.fingerprint FROM phi_guard.phi_master_key_status() s WHERE s.current);
BEGIN
  IF NOT EXISTS (SELECT FROM phi_guard.cluster_workers()) THEN
    RETURN;
  END IF;
  RETURN QUERY
    SELECT r.node, CASE WHEN r.success THEN 'a different master key' ELSE 'no answer' END
      FROM phi_guard.cluster_run('SELECT fingerprint FROM phi_guard.phi_master_key_status() WHERE current',
                                 NULL, NULL) r
     WHERE NOT r.success OR NOT COALESCE(r.result OPERATOR(pg_catalog.=) mine, false);
END
$fn$;
REVOKE ALL ON FUNCTION phi_guard.cluster_master_key_mismatches() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION phi_guard.cluster_master_key_mismatches() TO phi_key_admin, phi_audit_admin;
COMMENT ON FUNCTION phi_guard.cluster_master_key_mismatches() IS
  'internal, for phi_check_config on a Citus coordinator: the workers whose current master key differs from the coordinator''s, or that did not answer';

-- end of section: citus

-- Writes to the tables phi_citus_setup makes reference tables take their
-- times as values: Citus runs no function in the DO UPDATE of a reference
-- table, nor a volatile one in an UPDATE.

CREATE OR REPLACE FUNCTION phi_guard.permission_set(role pg_catalog.text, permission pg_catalog.text,
                                         granted pg_catalog.bool)
  RETURNS void
  LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE
  SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
#variable_conflict use_variable
BEGIN
  -- the time as a value, not a function of the update: Citus runs no
  -- function in the DO UPDATE of a reference table (README, "Scaling out")
  INSERT INTO phi_guard.permission_overrides AS o (role, permission, granted, changed_at)
    VALUES (role, permission, granted, pg_catalog.now())
    ON CONFLICT ON CONSTRAINT permission_overrides_pkey
    DO UPDATE SET granted = EXCLUDED.granted, changed_at = EXCLUDED.changed_at;
  PERFORM phi_guard.audit_event(CASE WHEN granted THEN 'permission_grant' ELSE 'permission_revoke' END,
    NULL, pg_catalog.jsonb_build_object('role', role, 'permission', permission));
END
$$;

CREATE OR REPLACE FUNCTION phi_guard.phi_break_glass_end() RETURNS pg_catalog.bool
  LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
  SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
  g phi_guard.break_glass;
  ended pg_catalog.bool := false;
  -- a value, not a volatile function of the update (Citus refuses those)
  at pg_catalog.timestamptz := pg_catalog.clock_timestamp();
BEGIN
  FOR g IN UPDATE phi_guard.break_glass b SET ended_at = at
            WHERE b.user_id OPERATOR(pg_catalog.=) phi_guard.phi_user_id()
              AND b.tenant OPERATOR(pg_catalog.=) phi_guard.phi_tenant_id()
              AND b.ended_at IS NULL
              AND b.expires_at OPERATOR(pg_catalog.>) at
           RETURNING * LOOP
    PERFORM phi_guard.audit_event('break_glass_end', NULL,
      pg_catalog.jsonb_build_object('grant', g.id, 'reason', g.reason, 'opened_at', phi_guard.utc_text(g.opened_at)));
    ended := true;
  END LOOP;
  RETURN ended;
END
$$;

-- end of section: citus-safe writes
