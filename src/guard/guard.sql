-- src/guard/guard.sql: tenant protection that follows the data and that
-- only phi_guard's own functions can weaken (SPEC §5).
--
-- Owns: the registry of protected tables, phi_protect_table and
-- phi_unprotect_table with the policies they create, and the statement-end
-- work of the C guard (src/guard): protecting and auditing new partitions
-- and inheritance children like their parent (guard_inherit), following a
-- renamed tenant column (guard_column_renamed), forgetting dropped tables.
-- The C guard refuses, while a table is registered here or in
-- phi_guard.audited_tables, every statement that would switch off its row
-- security or FORCE, alter or drop its restrictive policies (or add one
-- that sorts before the wall), or disable, rename, replace or drop its
-- audit triggers; phi_unprotect_table and
-- phi_audit_disable take a table out of its registry first.
-- References the roles (src/common/schema.sql), audit_event() and
-- table_tree() (src/audit/audit.sql), phi_tenant_id() and break_glass_use()
-- (src/context/context.sql).

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

CREATE FUNCTION phi_guard.phi_protect_table(tbl pg_catalog.regclass, tenant_column pg_catalog.name)
  RETURNS void
  AS 'MODULE_PATHNAME', 'phi_guard_protect_table'
  LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION phi_guard.phi_protect_table(pg_catalog.regclass, pg_catalog.name) IS
  'for the table''s owner: forces row-level security on it and its partitions and children, present and future: only rows of the context''s tenant, nothing without a context, reads under break-glass; a re-run repairs';

-- Only a phi_key_admin, who registers the keys that sign contexts (and so
-- could read every tenant anyway), may take a table's protection away.
CREATE FUNCTION phi_guard.phi_unprotect_table(tbl pg_catalog.regclass) RETURNS void
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
