-- src/audit/audit.sql: the append-only, hash-chained audit log (SPEC §6).
--
-- Owns: the log (audit_log, with its BRIN operator class for xid8), the
-- chain of sealed blocks (audit_block), the registry of audited tables and
-- their statement triggers, the internal writer audit_event() that every
-- other piece's functions call, sealing and verification, DDL auditing
-- (event triggers), retention (audit_checkpoint, phi_audit_prune), and
-- the readers' views of the log (audit_events, phi_access_report,
-- phi_disclosures).  References only the roles
-- (src/common/schema.sql).  table_tree() here serves src/guard/guard.sql
-- as well.

-- Entries are written by the extension's C code only (straight into the
-- heap, no SQL); (xid, id) is unique without a shared sequence.  The log is
-- append-only and roughly in xid order, so it is indexed with BRIN, which
-- costs writers almost nothing (a B-tree entry per row cost as much as the
-- audited table's own primary key).  PostgreSQL 15 has no BRIN operator
-- class for xid8: this minmax one uses the core's generic support functions.
CREATE OPERATOR CLASS phi_guard.xid8_minmax_ops FOR TYPE pg_catalog.xid8 USING brin AS
  OPERATOR 1 pg_catalog.< (pg_catalog.xid8, pg_catalog.xid8),
  OPERATOR 2 pg_catalog.<= (pg_catalog.xid8, pg_catalog.xid8),
  OPERATOR 3 pg_catalog.= (pg_catalog.xid8, pg_catalog.xid8),
  OPERATOR 4 pg_catalog.>= (pg_catalog.xid8, pg_catalog.xid8),
  OPERATOR 5 pg_catalog.> (pg_catalog.xid8, pg_catalog.xid8),
  FUNCTION 1 pg_catalog.brin_minmax_opcinfo(pg_catalog.internal),
  FUNCTION 2 pg_catalog.brin_minmax_add_value(pg_catalog.internal, pg_catalog.internal,
                                               pg_catalog.internal, pg_catalog.internal),
  FUNCTION 3 pg_catalog.brin_minmax_consistent(pg_catalog.internal, pg_catalog.internal,
                                                pg_catalog.internal),
  FUNCTION 4 pg_catalog.brin_minmax_union(pg_catalog.internal, pg_catalog.internal,
                                           pg_catalog.internal);
CREATE TABLE phi_guard.audit_log (
  id         pg_catalog.int8 NOT NULL,
  xid        pg_catalog.xid8 NOT NULL,
  record     pg_catalog.text NOT NULL,
  entry_hash pg_catalog.bytea NOT NULL
);
-- sealing summarizes new ranges (brin_summarize_new_values) as it goes
CREATE INDEX audit_log_xid ON phi_guard.audit_log
  USING brin (xid phi_guard.xid8_minmax_ops) WITH (pages_per_range = 16, autosummarize = on);
COMMENT ON TABLE phi_guard.audit_log IS
  'append-only audit entries; entry_hash = SHA-256(UTF-8 record) (SPEC §6)';

CREATE TABLE phi_guard.audit_block (
  block_no   pg_catalog.int8 NOT NULL,
  xid_lo     pg_catalog.xid8 NOT NULL,
  xid_hi     pg_catalog.xid8 NOT NULL,
  entries    pg_catalog.int8 NOT NULL,
  prev_hash  pg_catalog.bytea NOT NULL,
  block_hash pg_catalog.bytea NOT NULL,
  sealed_at  pg_catalog.timestamptz NOT NULL,
  CONSTRAINT audit_block_pkey PRIMARY KEY (block_no)
);
COMMENT ON TABLE phi_guard.audit_block IS
  'hash chain over committed entries: block_hash = SHA-256(prev_hash || block_no || entries || entry hashes) (SPEC §6)';

CREATE TABLE phi_guard.audited_tables (
  relid      pg_catalog.regclass NOT NULL,
  enabled_at pg_catalog.timestamptz NOT NULL DEFAULT pg_catalog.now(),
  enabled_by pg_catalog.name NOT NULL DEFAULT SESSION_USER,
  CONSTRAINT audited_tables_pkey PRIMARY KEY (relid)
);
COMMENT ON TABLE phi_guard.audited_tables IS 'tables with phi_guard audit triggers';

SELECT pg_catalog.pg_extension_config_dump('phi_guard.audit_log', '');
SELECT pg_catalog.pg_extension_config_dump('phi_guard.audit_block', '');
SELECT pg_catalog.pg_extension_config_dump('phi_guard.audited_tables', '');

-- audit_events (below) finds the block that holds an entry through an
-- index on xid_hi: blocks are contiguous, so the first block ending above
-- the entry's xid is the only candidate.
CREATE INDEX audit_block_xid_hi ON phi_guard.audit_block (xid_hi);

-- Refuse SQL changes of entries, blocks and the checkpoint, even a
-- superuser's by accident.  (A superuser can disable this;
-- phi_audit_verify then finds the change.)  phi_audit_prune removes rows
-- below SQL: nothing here opens for it.
CREATE FUNCTION phi_guard.audit_append_only() RETURNS trigger
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
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON phi_guard.audit_log
  FOR EACH ROW EXECUTE FUNCTION phi_guard.audit_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON phi_guard.audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION phi_guard.audit_append_only();
CREATE TRIGGER audit_block_append_only BEFORE UPDATE OR DELETE ON phi_guard.audit_block
  FOR EACH ROW EXECUTE FUNCTION phi_guard.audit_append_only();
CREATE TRIGGER audit_block_no_truncate BEFORE TRUNCATE ON phi_guard.audit_block
  FOR EACH STATEMENT EXECUTE FUNCTION phi_guard.audit_append_only();

CREATE FUNCTION phi_guard.audit_trigger() RETURNS trigger
  AS 'MODULE_PATHNAME', 'phi_guard_audit_trigger'
  LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION phi_guard.audit_trigger() IS
  'statement-level trigger installed by phi_audit_enable: one entry per affected row';

CREATE FUNCTION phi_guard.audit_event(kind pg_catalog.text, tbl pg_catalog.regclass,
                                      detail pg_catalog.jsonb)
  RETURNS void
  AS 'MODULE_PATHNAME', 'phi_guard_audit_event'
  LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION phi_guard.audit_event(pg_catalog.text, pg_catalog.regclass, pg_catalog.jsonb) IS
  'internal: one entry written by phi_guard''s own functions; granted to no one';

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
CREATE FUNCTION phi_guard.phi_audit_enable(tbl pg_catalog.regclass) RETURNS void
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
CREATE FUNCTION phi_guard.phi_audit_disable(tbl pg_catalog.regclass) RETURNS void
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

CREATE FUNCTION phi_guard.phi_audit_seal() RETURNS pg_catalog.int8
  AS 'MODULE_PATHNAME', 'phi_guard_audit_seal'
  LANGUAGE C VOLATILE PARALLEL UNSAFE
  SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION phi_guard.phi_audit_seal() IS
  'seals committed entries into a new block now; returns how many entries it sealed';

CREATE FUNCTION phi_guard.phi_audit_verify(digest pg_catalog.jsonb DEFAULT NULL,
    OUT ok pg_catalog.bool, OUT blocks pg_catalog.int8, OUT entries pg_catalog.int8,
    OUT first_bad_block pg_catalog.int8, OUT problem pg_catalog.text)
  AS 'MODULE_PATHNAME', 'phi_guard_audit_verify'
  LANGUAGE C VOLATILE PARALLEL UNSAFE
  SECURITY DEFINER SET search_path = pg_catalog, pg_temp
  -- (xid, id, entry_hash) of every entry are sorted: keep that in memory
  SET work_mem = '256MB';
COMMENT ON FUNCTION phi_guard.phi_audit_verify(pg_catalog.jsonb) IS
  'recomputes every entry and block hash; with a digest, checks the chain still reaches it';

CREATE FUNCTION phi_guard.phi_audit_digest() RETURNS pg_catalog.jsonb
  AS 'MODULE_PATHNAME', 'phi_guard_audit_digest'
  LANGUAGE C VOLATILE PARALLEL UNSAFE
  SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION phi_guard.phi_audit_digest() IS
  'the newest block''s number and hash, to keep outside the database';

-- DDL on audited tables (ALTER TABLE ..., DROP TRIGGER, DROP TABLE), on
-- phi_guard's own tables and on tables under row security, protected
-- tables among them (ALTER TABLE, CREATE / ALTER / DROP POLICY), is itself
-- an audit entry; the extension's own scripts are not entries.  Tables are
-- recognised by the registry and their catalog state, audit triggers by
-- their function, never by a name.
CREATE FUNCTION phi_guard.audit_ddl() RETURNS event_trigger
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

CREATE FUNCTION phi_guard.audit_ddl_drop() RETURNS event_trigger
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

CREATE EVENT TRIGGER phi_guard_audit_ddl ON ddl_command_end
  EXECUTE FUNCTION phi_guard.audit_ddl();
CREATE EVENT TRIGGER phi_guard_audit_ddl_drop ON sql_drop
  EXECUTE FUNCTION phi_guard.audit_ddl_drop();
-- DDL is recorded under session_replication_role = replica too
ALTER EVENT TRIGGER phi_guard_audit_ddl ENABLE ALWAYS;
ALTER EVENT TRIGGER phi_guard_audit_ddl_drop ENABLE ALWAYS;

REVOKE ALL ON phi_guard.audit_log, phi_guard.audit_block, phi_guard.audited_tables FROM PUBLIC;
REVOKE ALL ON FUNCTION
  phi_guard.audit_append_only(), phi_guard.audit_trigger(),
  phi_guard.audit_event(pg_catalog.text, pg_catalog.regclass, pg_catalog.jsonb),
  phi_guard.table_tree(pg_catalog.regclass),
  phi_guard.phi_audit_enable(pg_catalog.regclass), phi_guard.phi_audit_disable(pg_catalog.regclass),
  phi_guard.phi_audit_seal(), phi_guard.phi_audit_verify(pg_catalog.jsonb), phi_guard.phi_audit_digest(),
  phi_guard.audit_ddl(), phi_guard.audit_ddl_drop()
  FROM PUBLIC;
GRANT SELECT ON phi_guard.audit_log, phi_guard.audit_block, phi_guard.audited_tables TO phi_auditor;
GRANT SELECT ON phi_guard.audited_tables TO phi_audit_admin;
GRANT EXECUTE ON FUNCTION
  phi_guard.phi_audit_seal(), phi_guard.phi_audit_verify(pg_catalog.jsonb), phi_guard.phi_audit_digest()
  TO phi_auditor, phi_audit_admin;
GRANT EXECUTE ON FUNCTION
  phi_guard.phi_audit_enable(pg_catalog.regclass), phi_guard.phi_audit_disable(pg_catalog.regclass)
  TO phi_audit_admin;

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


------------------------------------------------------------------------
-- Readers of the log: audit_events, phi_access_report, phi_disclosures
------------------------------------------------------------------------

-- audit_events: the audit log with typed columns, for auditors.  The
-- caller's own privileges apply (security_invoker): phi_auditor reads
-- audit_log and audit_block already; a role granted only this view sees
-- nothing it could not read anyway.  Each record is parsed once
-- (json_to_record); "sealed" comes from the one block whose xid range
-- holds the entry, found through audit_block_xid_hi (above).  A compact
-- row entry shows the who, when, where and why of its statement entry.
CREATE VIEW phi_guard.audit_events WITH (security_invoker = true) AS
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
COMMENT ON VIEW phi_guard.audit_events IS
  'audit log entries with typed columns; sealed/block_no: the sealed block whose xid range holds the entry; for phi_auditor';

-- phi_access_report: what the log knows about one row (accounting of
-- disclosures).  row_key is the text form of a one-column primary key
-- value ('42'), or a JSON object of the key columns ('{"id":"42"}').
-- Reads are the access entries (decrypt, decrypt_masked, detokenize,
-- tokenize) whose row references (detail.rows) hold row_key itself or end
-- in ':' || row_key, as the recommended aad '<table>.<column>:<key>' does;
-- one per access (statement and key): its final entry, or its intent when
-- no final entry names the row.
CREATE FUNCTION phi_guard.phi_access_report(row_key pg_catalog.text,
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

REVOKE ALL ON phi_guard.audit_events FROM PUBLIC;
REVOKE ALL ON FUNCTION phi_guard.phi_access_report(pg_catalog.text, pg_catalog.timestamptz),
  phi_guard.phi_disclosures(pg_catalog.text, pg_catalog.timestamptz) FROM PUBLIC;
GRANT SELECT ON phi_guard.audit_events TO phi_auditor;
GRANT EXECUTE ON FUNCTION phi_guard.phi_access_report(pg_catalog.text, pg_catalog.timestamptz),
  phi_guard.phi_disclosures(pg_catalog.text, pg_catalog.timestamptz) TO phi_auditor;
