\echo Use "ALTER EXTENSION phi_guard UPDATE TO '0.2.0'" to load this file. \quit

-- phi_guard 0.1.0 -> 0.2.0.  There is no separate 0.2.0 install script:
-- CREATE EXTENSION runs phi_guard--0.1.0.sql and then this file, so a fresh
-- install and an upgraded one are the same by construction.
-- Same rules as the install script: new objects with plain CREATE, every
-- reference qualified, every SECURITY DEFINER function pins search_path,
-- nothing executable by PUBLIC unless said so.

------------------------------------------------------------------------
-- Signed request context, tenant row-level security, break-glass (SPEC §5)
------------------------------------------------------------------------

-- (first, so that the objects created below are not entries either)
-- DDL auditing now also covers protected tables: row security switched off
-- or on, and every policy command on them; the extension's own scripts are
-- not entries.
CREATE OR REPLACE FUNCTION phi_guard.audit_ddl() RETURNS event_trigger
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
  r record;
  enabled pg_catalog.bool;
BEGIN
  FOR r IN SELECT c.objid, c.command_tag FROM pg_catalog.pg_event_trigger_ddl_commands() c
            WHERE c.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
              -- not the extension's own scripts (CREATE / ALTER EXTENSION)
              AND NOT c.in_extension
              AND (c.objid OPERATOR(pg_catalog.=) ANY (SELECT a.relid::pg_catalog.oid FROM phi_guard.audited_tables a)
                   OR c.schema_name OPERATOR(pg_catalog.=) 'phi_guard'
                   OR c.objid OPERATOR(pg_catalog.=) ANY (SELECT p.polrelid FROM pg_catalog.pg_policy p
                                   WHERE p.polname OPERATOR(pg_catalog.=) 'phi_guard_tenant'))
  LOOP
    SELECT pg_catalog.bool_and(t.tgenabled OPERATOR(pg_catalog.<>) 'D') INTO enabled
      FROM pg_catalog.pg_trigger t
     WHERE t.tgrelid OPERATOR(pg_catalog.=) r.objid
       AND t.tgname OPERATOR(pg_catalog.~~) 'phi\_guard\_audit\_%';
    PERFORM phi_guard.audit_event('ddl', r.objid::pg_catalog.regclass,
      pg_catalog.jsonb_build_object('command', r.command_tag, 'audit_triggers_enabled', enabled)
      OPERATOR(pg_catalog.||)
      (SELECT CASE WHEN EXISTS (SELECT FROM pg_catalog.pg_policy p
                                 WHERE p.polrelid OPERATOR(pg_catalog.=) r.objid
                                   AND p.polname OPERATOR(pg_catalog.=) 'phi_guard_tenant')
                   THEN pg_catalog.jsonb_build_object('row_security', c.relrowsecurity,
                                                      'force_row_security', c.relforcerowsecurity)
                   ELSE '{}'::pg_catalog.jsonb END
         FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) r.objid));
  END LOOP;
  -- CREATE / ALTER POLICY on a protected table
  FOR r IN SELECT p.polrelid, p.polname, c.command_tag
             FROM pg_catalog.pg_event_trigger_ddl_commands() c
             JOIN pg_catalog.pg_policy p ON p.oid OPERATOR(pg_catalog.=) c.objid
            WHERE c.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_policy'::pg_catalog.regclass
              AND p.polrelid OPERATOR(pg_catalog.=) ANY (SELECT x.polrelid FROM pg_catalog.pg_policy x
                                  WHERE x.polname OPERATOR(pg_catalog.=) 'phi_guard_tenant')
  LOOP
    PERFORM phi_guard.audit_event('ddl', r.polrelid::pg_catalog.regclass,
      pg_catalog.jsonb_build_object('command', r.command_tag, 'policy', r.polname));
  END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION phi_guard.audit_ddl_drop() RETURNS event_trigger
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
  r record;
BEGIN
  FOR r IN SELECT d.objid, d.object_type, d.object_identity, d.address_names
             FROM pg_catalog.pg_event_trigger_dropped_objects() d LOOP
    IF r.object_type OPERATOR(pg_catalog.=) 'table'
       AND EXISTS (SELECT FROM phi_guard.audited_tables a
                    WHERE a.relid::pg_catalog.oid OPERATOR(pg_catalog.=) r.objid) THEN
      DELETE FROM phi_guard.audited_tables a WHERE a.relid::pg_catalog.oid OPERATOR(pg_catalog.=) r.objid;
      PERFORM phi_guard.audit_event('ddl', NULL,
        pg_catalog.jsonb_build_object('command', 'DROP TABLE', 'object', r.object_identity));
    ELSIF r.object_type OPERATOR(pg_catalog.=) 'trigger'
       AND r.address_names[3] OPERATOR(pg_catalog.~~) 'phi\_guard\_audit\_%'
       -- only while the table is audited: not phi_audit_disable, not DROP TABLE
       AND EXISTS (SELECT FROM phi_guard.audited_tables a
                    WHERE a.relid OPERATOR(pg_catalog.=) pg_catalog.to_regclass(
                      pg_catalog.quote_ident(r.address_names[1]) OPERATOR(pg_catalog.||) '.'
                      OPERATOR(pg_catalog.||) pg_catalog.quote_ident(r.address_names[2]))) THEN
      PERFORM phi_guard.audit_event('ddl', NULL,
        pg_catalog.jsonb_build_object('command', 'DROP TRIGGER', 'object', r.object_identity));
    ELSIF r.object_type OPERATOR(pg_catalog.=) 'policy'
       AND r.address_names[3] OPERATOR(pg_catalog.~~) 'phi\_guard\_%' THEN
      -- a dropped phi_guard policy: protection weakened (or phi_unprotect_table)
      PERFORM phi_guard.audit_event('ddl', NULL,
        pg_catalog.jsonb_build_object('command', 'DROP POLICY', 'object', r.object_identity));
    END IF;
  END LOOP;
END
$$;

-- The role of an application's pooled login role: USAGE on the schema, so
-- its sessions can set a context and pass protected tables' policies.
DO $roles$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'phi_app') THEN
    CREATE ROLE phi_app NOLOGIN;
  END IF;
END
$roles$;
GRANT USAGE ON SCHEMA phi_guard TO phi_app;

-- Signing keys of context tokens (public keys only; kept by pg_dump).
CREATE TABLE phi_guard.context_keys (
  kid        pg_catalog.text PRIMARY KEY
             CHECK (pg_catalog.octet_length(kid) OPERATOR(pg_catalog.<=) 255),
  public_key pg_catalog.bytea NOT NULL
             CHECK (pg_catalog.octet_length(public_key) OPERATOR(pg_catalog.=) 32),
  created_at pg_catalog.timestamptz NOT NULL DEFAULT pg_catalog.now(),
  revoked_at pg_catalog.timestamptz
);
SELECT pg_catalog.pg_extension_config_dump('phi_guard.context_keys', '');

-- Permissions of context roles: built-in defaults (not dumped: the
-- extension script recreates them) and the operator's overrides (dumped).
CREATE TABLE phi_guard.permission_defaults (
  role       pg_catalog.text NOT NULL,
  permission pg_catalog.text NOT NULL,
  PRIMARY KEY (role, permission)
);
INSERT INTO phi_guard.permission_defaults (role, permission) VALUES
  ('clinician', 'patient.read'), ('clinician', 'patient.write'),
  ('clinician', 'break_glass'), ('auditor', 'audit.read');
CREATE TABLE phi_guard.permission_overrides (
  role       pg_catalog.text NOT NULL CHECK (role OPERATOR(pg_catalog.<>) ''),
  permission pg_catalog.text NOT NULL CHECK (permission OPERATOR(pg_catalog.<>) ''),
  granted    pg_catalog.bool NOT NULL,
  changed_at pg_catalog.timestamptz NOT NULL DEFAULT pg_catalog.now(),
  PRIMARY KEY (role, permission)
);
SELECT pg_catalog.pg_extension_config_dump('phi_guard.permission_overrides', '');
CREATE VIEW phi_guard.permissions AS
  SELECT d.role, d.permission, true AS builtin
    FROM phi_guard.permission_defaults d
   WHERE NOT EXISTS (SELECT FROM phi_guard.permission_overrides o
                      WHERE o.role OPERATOR(pg_catalog.=) d.role
                        AND o.permission OPERATOR(pg_catalog.=) d.permission
                        AND NOT o.granted)
  UNION
  SELECT o.role, o.permission, false
    FROM phi_guard.permission_overrides o
   WHERE o.granted
     AND NOT EXISTS (SELECT FROM phi_guard.permission_defaults d
                      WHERE d.role OPERATOR(pg_catalog.=) o.role
                        AND d.permission OPERATOR(pg_catalog.=) o.permission);
COMMENT ON VIEW phi_guard.permissions IS
  'effective role-to-permission map of context roles: built-in defaults and overrides';

-- Break-glass grants: one row per grant, kept across connections.
CREATE TABLE phi_guard.break_glass (
  id         pg_catalog.int4 GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id    pg_catalog.text NOT NULL,
  tenant     pg_catalog.text NOT NULL,
  reason     pg_catalog.text NOT NULL,
  purpose    pg_catalog.text,
  opened_at  pg_catalog.timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
  expires_at pg_catalog.timestamptz NOT NULL,
  ended_at   pg_catalog.timestamptz
);
CREATE INDEX break_glass_user ON phi_guard.break_glass (user_id, tenant) WHERE ended_at IS NULL;
SELECT pg_catalog.pg_extension_config_dump('phi_guard.break_glass', '');
SELECT pg_catalog.pg_extension_config_dump('phi_guard.break_glass_id_seq', '');

CREATE FUNCTION phi_guard.context_key_raw(public_key_pem pg_catalog.text) RETURNS pg_catalog.bytea
  AS 'MODULE_PATHNAME', 'phi_guard_context_key_raw'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION phi_guard.context_key_raw(pg_catalog.text) IS
  'internal: the raw 32-byte key of an Ed25519 PEM public key';

CREATE FUNCTION phi_guard.phi_context_key_add(kid pg_catalog.text, public_key_pem pg_catalog.text)
  RETURNS void
  LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE
  SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
#variable_conflict use_variable
BEGIN
  IF pg_catalog.octet_length(kid) OPERATOR(pg_catalog.=) 0
     OR pg_catalog.octet_length(kid) OPERATOR(pg_catalog.>) 255
     OR kid OPERATOR(pg_catalog.~) '[[:cntrl:]]' THEN
    RAISE EXCEPTION 'invalid key id' USING ERRCODE = '22023',
      HINT = 'A kid has 1 to 255 bytes and no control characters.';
  END IF;
  IF EXISTS (SELECT FROM phi_guard.context_keys k WHERE k.kid OPERATOR(pg_catalog.=) kid) THEN
    RAISE EXCEPTION 'context key "%" already exists', kid USING ERRCODE = '42710',
      HINT = 'Key ids are never reused: register the new key under a new kid.';
  END IF;
  INSERT INTO phi_guard.context_keys (kid, public_key)
    VALUES (kid, phi_guard.context_key_raw(public_key_pem));
  PERFORM phi_guard.audit_event('context_key_add', NULL, pg_catalog.jsonb_build_object('kid', kid));
END
$$;
COMMENT ON FUNCTION phi_guard.phi_context_key_add(pg_catalog.text, pg_catalog.text) IS
  'registers the Ed25519 public key that verifies context tokens with this kid; requires phi_key_admin';

CREATE FUNCTION phi_guard.phi_context_key_revoke(kid pg_catalog.text) RETURNS pg_catalog.bool
  LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE
  SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
#variable_conflict use_variable
BEGIN
  UPDATE phi_guard.context_keys k SET revoked_at = pg_catalog.now()
   WHERE k.kid OPERATOR(pg_catalog.=) kid AND k.revoked_at IS NULL;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  PERFORM phi_guard.audit_event('context_key_revoke', NULL, pg_catalog.jsonb_build_object('kid', kid));
  RETURN true;
END
$$;
COMMENT ON FUNCTION phi_guard.phi_context_key_revoke(pg_catalog.text) IS
  'stops accepting tokens signed under kid (false when unknown or already revoked); requires phi_key_admin';

CREATE FUNCTION phi_guard.phi_context_keys(OUT kid pg_catalog.text, OUT created_at pg_catalog.timestamptz,
                                           OUT revoked_at pg_catalog.timestamptz)
  RETURNS SETOF record
  LANGUAGE sql STABLE PARALLEL SAFE
  SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$ SELECT k.kid, k.created_at, k.revoked_at FROM phi_guard.context_keys k ORDER BY k.created_at, k.kid $$;
COMMENT ON FUNCTION phi_guard.phi_context_keys() IS
  'the registered context signing keys; requires phi_key_admin';

CREATE FUNCTION phi_guard.phi_set_context(token pg_catalog.text) RETURNS void
  AS 'MODULE_PATHNAME', 'phi_guard_set_context'
  LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE
  SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION phi_guard.phi_set_context(pg_catalog.text) IS
  'verifies a signed context token (EdDSA JWT) and makes it the context until the transaction ends';

CREATE FUNCTION phi_guard.phi_clear_context() RETURNS void
  AS 'MODULE_PATHNAME', 'phi_guard_clear_context'
  LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION phi_guard.phi_clear_context() IS
  'drops the context before the transaction ends';

CREATE FUNCTION phi_guard.phi_user_id() RETURNS pg_catalog.text
  AS 'MODULE_PATHNAME', 'phi_guard_user_id' LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION phi_guard.phi_user_id() IS 'the context''s user (claim sub); NULL without a context';
CREATE FUNCTION phi_guard.phi_tenant_id() RETURNS pg_catalog.text
  AS 'MODULE_PATHNAME', 'phi_guard_tenant_id' LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION phi_guard.phi_tenant_id() IS 'the context''s tenant; NULL without a context';
CREATE FUNCTION phi_guard.phi_purpose() RETURNS pg_catalog.text
  AS 'MODULE_PATHNAME', 'phi_guard_purpose' LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION phi_guard.phi_purpose() IS 'the context''s purpose of use; NULL without a context or purpose';
CREATE FUNCTION phi_guard.phi_roles() RETURNS pg_catalog.text[]
  AS 'MODULE_PATHNAME', 'phi_guard_roles' LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION phi_guard.phi_roles() IS 'the context''s roles; NULL without a context';
CREATE FUNCTION phi_guard.phi_has_role(role pg_catalog.text) RETURNS pg_catalog.bool
  AS 'MODULE_PATHNAME', 'phi_guard_has_role' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION phi_guard.phi_has_role(pg_catalog.text) IS
  'whether the context holds the role; NULL without a context';
CREATE FUNCTION phi_guard.phi_has_permission(permission pg_catalog.text) RETURNS pg_catalog.bool
  AS 'MODULE_PATHNAME', 'phi_guard_has_permission' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION phi_guard.phi_has_permission(pg_catalog.text) IS
  'whether a role of the context has the permission (phi_guard.permissions); false without a context';

-- grant (true) or revoke (false) a context role's permission, as an
-- override of the built-in map
CREATE FUNCTION phi_guard.permission_set(role pg_catalog.text, permission pg_catalog.text,
                                         granted pg_catalog.bool)
  RETURNS void
  LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE
  SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
#variable_conflict use_variable
BEGIN
  INSERT INTO phi_guard.permission_overrides AS o (role, permission, granted)
    VALUES (role, permission, granted)
    ON CONFLICT ON CONSTRAINT permission_overrides_pkey
    DO UPDATE SET granted = EXCLUDED.granted, changed_at = pg_catalog.now();
  PERFORM phi_guard.audit_event(CASE WHEN granted THEN 'permission_grant' ELSE 'permission_revoke' END,
    NULL, pg_catalog.jsonb_build_object('role', role, 'permission', permission));
END
$$;
COMMENT ON FUNCTION phi_guard.permission_set(pg_catalog.text, pg_catalog.text, pg_catalog.bool) IS
  'internal: the override behind phi_permission_grant and phi_permission_revoke';

CREATE FUNCTION phi_guard.phi_permission_grant(role pg_catalog.text, permission pg_catalog.text)
  RETURNS void
  LANGUAGE sql VOLATILE STRICT PARALLEL UNSAFE
  SET search_path = pg_catalog, pg_temp
  RETURN phi_guard.permission_set(role, permission, true);
COMMENT ON FUNCTION phi_guard.phi_permission_grant(pg_catalog.text, pg_catalog.text) IS
  'gives a context role a permission; requires phi_key_admin';

CREATE FUNCTION phi_guard.phi_permission_revoke(role pg_catalog.text, permission pg_catalog.text)
  RETURNS void
  LANGUAGE sql VOLATILE STRICT PARALLEL UNSAFE
  SET search_path = pg_catalog, pg_temp
  RETURN phi_guard.permission_set(role, permission, false);
COMMENT ON FUNCTION phi_guard.phi_permission_revoke(pg_catalog.text, pg_catalog.text) IS
  'takes a permission from a context role (built-in ones too); requires phi_key_admin';

-- Break-glass
-- timestamps in audit details are UTC ISO-8601, whatever TimeZone says
CREATE FUNCTION phi_guard.utc_text(t pg_catalog.timestamptz) RETURNS pg_catalog.text
  LANGUAGE sql STABLE STRICT PARALLEL SAFE
  SET search_path = pg_catalog, pg_temp
  RETURN pg_catalog.to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"');
COMMENT ON FUNCTION phi_guard.utc_text(pg_catalog.timestamptz) IS
  'internal: a timestamp as UTC ISO-8601 with microseconds, as audit records write them';

CREATE FUNCTION phi_guard.phi_break_glass(reason pg_catalog.text, minutes pg_catalog.int4 DEFAULT 30)
  RETURNS pg_catalog.timestamptz
  LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
  SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
  ceiling pg_catalog.int4 := pg_catalog.current_setting('phi_guard.break_glass_max_minutes')::pg_catalog.int4;
  shortest pg_catalog.int4 := pg_catalog.current_setting('phi_guard.break_glass_min_reason')::pg_catalog.int4;
  g phi_guard.break_glass;
BEGIN
  IF phi_guard.phi_tenant_id() IS NULL THEN
    RAISE EXCEPTION 'break-glass needs a context' USING ERRCODE = '42501',
      HINT = 'Call phi_set_context() with the user''s signed context token first.';
  END IF;
  IF NOT phi_guard.phi_has_permission('break_glass') THEN
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
COMMENT ON FUNCTION phi_guard.phi_break_glass(pg_catalog.text, pg_catalog.int4) IS
  'opens time-boxed emergency read access for the context''s user within its tenant; returns the expiry';

CREATE FUNCTION phi_guard.phi_break_glass_end() RETURNS pg_catalog.bool
  LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
  SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
  g phi_guard.break_glass;
  ended pg_catalog.bool := false;
BEGIN
  FOR g IN UPDATE phi_guard.break_glass b SET ended_at = pg_catalog.clock_timestamp()
            WHERE b.user_id OPERATOR(pg_catalog.=) phi_guard.phi_user_id()
              AND b.tenant OPERATOR(pg_catalog.=) phi_guard.phi_tenant_id()
              AND b.ended_at IS NULL
              AND b.expires_at OPERATOR(pg_catalog.>) pg_catalog.clock_timestamp()
           RETURNING * LOOP
    PERFORM phi_guard.audit_event('break_glass_end', NULL,
      pg_catalog.jsonb_build_object('grant', g.id, 'reason', g.reason, 'opened_at', phi_guard.utc_text(g.opened_at)));
    ended := true;
  END LOOP;
  RETURN ended;
END
$$;
COMMENT ON FUNCTION phi_guard.phi_break_glass_end() IS
  'ends the context user''s active break-glass grants in its tenant; false when there was none';

CREATE FUNCTION phi_guard.phi_break_glass_active() RETURNS pg_catalog.bool
  AS 'MODULE_PATHNAME', 'phi_guard_break_glass_active'
  LANGUAGE C STABLE PARALLEL RESTRICTED
  SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION phi_guard.phi_break_glass_active() IS
  'whether the context''s user holds an active break-glass grant in its tenant';

CREATE FUNCTION phi_guard.break_glass_use(tbl pg_catalog.regclass) RETURNS pg_catalog.bool
  AS 'MODULE_PATHNAME', 'phi_guard_break_glass_use'
  LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED
  SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION phi_guard.break_glass_use(pg_catalog.regclass) IS
  'internal, the break-glass policy of protected tables: an active grant admits the row (audited as a use)';

-- Row-level security for tenants.  Invoker's rights: only the table's
-- owner (or a superuser) can change its row security.
CREATE FUNCTION phi_guard.phi_protect_table(tbl pg_catalog.regclass, tenant_column pg_catalog.name)
  RETURNS void
  LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE
  SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
  kind "char";
  owner pg_catalog.oid;
  typ pg_catalog.regtype;
  cond pg_catalog.text;
  r record;
BEGIN
  SELECT c.relkind, c.relowner INTO kind, owner FROM pg_catalog.pg_class c
   WHERE c.oid OPERATOR(pg_catalog.=) tbl;
  IF kind OPERATOR(pg_catalog.<>) ALL (ARRAY['r', 'p']::"char"[]) THEN
    RAISE EXCEPTION '"%" is not a table', tbl USING ERRCODE = '42809';
  END IF;
  IF tbl::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (SELECT c.oid FROM pg_catalog.pg_class c
                              WHERE c.relnamespace OPERATOR(pg_catalog.=) 'phi_guard'::pg_catalog.regnamespace) THEN
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
  -- the context's tenant, once per query (an InitPlan), cast to the column's
  -- type; a tenant that is not of that type matches no row (no error)
  IF typ OPERATOR(pg_catalog.=) ANY (ARRAY['text', 'character varying']::pg_catalog.regtype[]) THEN
    cond := pg_catalog.format('%I OPERATOR(pg_catalog.=) (SELECT phi_guard.phi_tenant_id())::%s',
                              tenant_column, typ);
  ELSE
    cond := pg_catalog.format('%I OPERATOR(pg_catalog.=) (SELECT CASE WHEN phi_guard.phi_tenant_id() '
                              'OPERATOR(pg_catalog.~) %L THEN phi_guard.phi_tenant_id()::%s END)',
                              tenant_column,
                              CASE
                                WHEN typ OPERATOR(pg_catalog.=) 'uuid'::pg_catalog.regtype
                                  THEN '^[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}$'
                                WHEN typ OPERATOR(pg_catalog.=) 'smallint'::pg_catalog.regtype THEN '^-?[0-9]{1,4}$'
                                WHEN typ OPERATOR(pg_catalog.=) 'integer'::pg_catalog.regtype THEN '^-?[0-9]{1,9}$'
                                ELSE '^-?[0-9]{1,18}$' END,
                              typ);
  END IF;

  EXECUTE pg_catalog.format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY', tbl);
  IF EXISTS (SELECT FROM pg_catalog.pg_policy p WHERE p.polrelid OPERATOR(pg_catalog.=) tbl
                AND p.polname OPERATOR(pg_catalog.=) 'phi_guard_tenant') THEN
    -- protected already: keep its other policies as they are (a dropped
    -- phi_guard_tenant_access stays dropped), renew the tenant wall only
    RAISE NOTICE '% is already protected; its tenant column is now %', tbl, tenant_column;
    EXECUTE pg_catalog.format('ALTER POLICY phi_guard_tenant ON %s USING (%s) WITH CHECK (%s)',
                              tbl, cond, cond);
  ELSE
    EXECUTE pg_catalog.format('CREATE POLICY phi_guard_tenant ON %s AS RESTRICTIVE FOR ALL TO PUBLIC '
                              'USING (%s) WITH CHECK (%s)', tbl, cond, cond);
    EXECUTE pg_catalog.format('CREATE POLICY phi_guard_tenant_access ON %s AS PERMISSIVE FOR ALL TO PUBLIC '
                              'USING (true) WITH CHECK (true)', tbl);
    EXECUTE pg_catalog.format('CREATE POLICY phi_guard_break_glass ON %s AS PERMISSIVE FOR SELECT TO PUBLIC '
                              'USING ((SELECT phi_guard.break_glass_use(%L::pg_catalog.regclass)))',
                              tbl, tbl::pg_catalog.text);
  END IF;

  -- who would still bypass the policies
  FOR r IN SELECT a.rolname, a.rolsuper, a.oid OPERATOR(pg_catalog.=) owner AS is_owner
             FROM pg_catalog.pg_roles a
            WHERE (a.rolsuper OR a.rolbypassrls)
              AND (a.oid OPERATOR(pg_catalog.=) owner
                   OR (NOT a.rolsuper AND pg_catalog.has_table_privilege(a.oid, tbl, 'SELECT, INSERT, UPDATE, DELETE')))
  LOOP
    RAISE WARNING 'role "%" bypasses the row-level security of %', r.rolname, tbl
      USING DETAIL = CASE WHEN r.is_owner THEN 'It owns the table and is '
                          ELSE 'It has privileges on the table and is ' END
                     OPERATOR(pg_catalog.||) CASE WHEN r.rolsuper THEN 'a superuser.' ELSE 'BYPASSRLS.' END,
            HINT = 'Let the application connect as a role that is neither superuser nor BYPASSRLS nor the owner.';
  END LOOP;
END
$$;
COMMENT ON FUNCTION phi_guard.phi_protect_table(pg_catalog.regclass, pg_catalog.name) IS
  'enables and forces row-level security: only rows of the context''s tenant, nothing without a context, reads under break-glass';

CREATE FUNCTION phi_guard.phi_unprotect_table(tbl pg_catalog.regclass) RETURNS void
  LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE
  SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
  p pg_catalog.text;
BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_policy x WHERE x.polrelid OPERATOR(pg_catalog.=) tbl
                    AND x.polname OPERATOR(pg_catalog.=) 'phi_guard_tenant') THEN
    RAISE NOTICE '% is not protected', tbl;
    RETURN;
  END IF;
  -- disable first, while the table still counts as protected: the audit
  -- log records it
  EXECUTE pg_catalog.format('ALTER TABLE %s NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY', tbl);
  FOREACH p IN ARRAY ARRAY['phi_guard_break_glass', 'phi_guard_tenant_access', 'phi_guard_tenant'] LOOP
    EXECUTE pg_catalog.format('DROP POLICY IF EXISTS %I ON %s', p, tbl);
  END LOOP;
END
$$;
COMMENT ON FUNCTION phi_guard.phi_unprotect_table(pg_catalog.regclass) IS
  'reverses phi_protect_table: disables row-level security and drops phi_guard''s policies';

REVOKE ALL ON phi_guard.context_keys, phi_guard.permission_defaults, phi_guard.permission_overrides,
  phi_guard.permissions, phi_guard.break_glass FROM PUBLIC;
REVOKE ALL ON FUNCTION
  phi_guard.context_key_raw(pg_catalog.text), phi_guard.utc_text(pg_catalog.timestamptz),
  phi_guard.permission_set(pg_catalog.text, pg_catalog.text, pg_catalog.bool),
  phi_guard.phi_context_key_add(pg_catalog.text, pg_catalog.text),
  phi_guard.phi_context_key_revoke(pg_catalog.text), phi_guard.phi_context_keys(),
  phi_guard.phi_permission_grant(pg_catalog.text, pg_catalog.text),
  phi_guard.phi_permission_revoke(pg_catalog.text, pg_catalog.text)
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
  phi_guard.phi_context_key_add(pg_catalog.text, pg_catalog.text),
  phi_guard.phi_context_key_revoke(pg_catalog.text), phi_guard.phi_context_keys(),
  phi_guard.phi_permission_grant(pg_catalog.text, pg_catalog.text),
  phi_guard.phi_permission_revoke(pg_catalog.text, pg_catalog.text),
  phi_guard.permission_set(pg_catalog.text, pg_catalog.text, pg_catalog.bool)
  TO phi_key_admin;
GRANT SELECT ON phi_guard.permissions TO phi_key_admin;
GRANT SELECT ON phi_guard.break_glass TO phi_auditor;
-- Every role with USAGE on schema phi_guard (SPEC §5): the context, its
-- readers and break-glass; the protect functions check ownership
-- themselves (ALTER TABLE does).  (PUBLIC's default EXECUTE stays on these.)

-- end of section: context

------------------------------------------------------------------------
-- Master-key rotation
------------------------------------------------------------------------

-- The key file or command output may list old master keys after the
-- current one (one key per line); these move every wrapped key to the
-- current master key and show which keys each loaded master key opens.
CREATE FUNCTION phi_guard.phi_master_key_rewrap()
  RETURNS pg_catalog.int8
  AS 'MODULE_PATHNAME', 'phi_guard_master_key_rewrap'
  LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE
  SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION phi_guard.phi_master_key_rewrap() IS
  'rewraps every data and index key still wrapped under an old master key with the current one, without touching any ciphertext; returns how many; requires phi_key_admin';

CREATE FUNCTION phi_guard.phi_master_key_status(
    OUT slot pg_catalog.int4, OUT name pg_catalog.text,
    OUT fingerprint pg_catalog.text, OUT current pg_catalog.bool,
    OUT data_keys pg_catalog.int8, OUT index_keys pg_catalog.int8)
  RETURNS SETOF record
  AS 'MODULE_PATHNAME', 'phi_guard_master_key_status'
  LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE
  SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION phi_guard.phi_master_key_status() IS
  'one row per loaded master key (slot 1 is current) with its fingerprint and how many data and index keys it unwraps; a NULL slot counts keys none unwraps; requires phi_key_admin';

REVOKE ALL ON FUNCTION phi_guard.phi_master_key_rewrap(),
  phi_guard.phi_master_key_status() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION phi_guard.phi_master_key_rewrap(),
  phi_guard.phi_master_key_status() TO phi_key_admin;

-- end of section: master-key rotation

------------------------------------------------------------------------
-- phi_check_config: risky settings for a PHI database
------------------------------------------------------------------------

-- One row per risky setting; nothing for a setting that is fine.  SECURITY
-- INVOKER on purpose: it reads only what the caller may read (pg_settings
-- hides superuser-only settings from roles without pg_read_all_settings,
-- pg_hba_file_rules is superuser-only in PostgreSQL 15) and reports what it
-- could not check as a row of its own instead of passing silently.
-- The checks, and why:
--   log_statement all/mod (high), ddl (low): statement text, with its
--     literals (PHI, passwords), is written to the server log.
--   log_min_duration_statement 0 (high), > 0 (medium); log_min_duration_sample
--     with log_statement_sample_rate > 0, log_transaction_sample_rate > 0
--     (medium): the same, for all, slow or sampled statements.
--   log_parameter_max_length <> 0 while statements are logged (medium),
--     log_parameter_max_length_on_error <> 0 (medium): bind parameter values
--     are logged next to the statement.
--   log_min_error_statement warning or more verbose (medium), error, the
--     default (low): the text of a statement that fails is logged.
--   debug_print_parse/rewritten/plan on (high): query trees, constants
--     included, are logged.
--   auto_explain.log_min_duration 0 (high), > 0 (medium), when auto_explain
--     is loaded: plans show the constants of their conditions.
--   pg_stat_statements.track_utility on, when pg_stat_statements is loaded
--     (medium): utility statements (CALL, DO, COPY, EXPLAIN, ...) are stored
--     with their literals, not normalised.
--   ssl off while listening on TCP (high), ssl_min_protocol_version below
--     TLSv1.2 (medium).
--   password_encryption other than scram-sha-256 (medium).
--   pg_hba.conf: trust (high) or password (high; medium on hostssl) for a
--     TCP connection, ident over TCP (medium), md5 (low), trust for local
--     sockets (medium), a line with an error (medium).
--   phi_guard not in shared_preload_libraries (high): no master key, no
--     audit sealing.
--   phi_guard.master_key_file and _command both empty or both set (high),
--     the key file inside the data directory (high: every copy or base
--     backup of the data directory carries the key next to the ciphertext).
-- Not reported, because not a PHI risk: log_connections, wal_level,
-- track_activity_query_size (query text in pg_stat_activity is visible only
-- to the same role and to pg_read_all_stats).
CREATE FUNCTION phi_guard.phi_check_config()
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
  RETURN;
END
$$;
COMMENT ON FUNCTION phi_guard.phi_check_config() IS
  'risky settings for a PHI database (statement logging, TLS, passwords, pg_hba.conf, master key), one row each; requires phi_key_admin or phi_audit_admin';
REVOKE ALL ON FUNCTION phi_guard.phi_check_config() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION phi_guard.phi_check_config() TO phi_key_admin, phi_audit_admin;

-- end of section: check_config

------------------------------------------------------------------------
-- Views and reports for people: audit_events, key_status, stats,
-- phi_access_report
------------------------------------------------------------------------

-- audit_events: the audit log with typed columns, for auditors.  The
-- caller's own privileges apply (security_invoker): phi_auditor reads
-- audit_log and audit_block already; a role granted only this view sees
-- nothing it could not read anyway.  Each record is parsed once
-- (json_to_record); "sealed" comes from the one block whose xid range
-- holds the entry, found through an index on xid_hi (blocks are
-- contiguous: the first block ending above the entry's xid is the only
-- candidate).
CREATE INDEX audit_block_xid_hi ON phi_guard.audit_block (xid_hi);

CREATE VIEW phi_guard.audit_events WITH (security_invoker = true) AS
  SELECT l.id, l.xid, r.ts, r.kind, r."table" AS table_name, r.row_key, r.columns,
         r.db_user, r.role, r.app_user, r.tenant, r.purpose,
         CASE WHEN r.client_addr OPERATOR(pg_catalog.=) '[local]' THEN NULL
              ELSE r.client_addr::pg_catalog.inet END AS client_addr,
         r.application_name, r.detail,
         (b.block_no IS NOT NULL) AS sealed, b.block_no, l.entry_hash
    FROM phi_guard.audit_log l
   CROSS JOIN LATERAL pg_catalog.json_to_record(l.record::pg_catalog.json)
         AS r(ts pg_catalog.timestamptz, kind pg_catalog.text, "table" pg_catalog.text,
              row_key pg_catalog.jsonb, columns pg_catalog.text[], db_user pg_catalog.text,
              role pg_catalog.text, app_user pg_catalog.text, tenant pg_catalog.text,
              purpose pg_catalog.text, client_addr pg_catalog.text,
              application_name pg_catalog.text, detail pg_catalog.jsonb)
    LEFT JOIN LATERAL (SELECT x.block_no, x.xid_lo FROM phi_guard.audit_block x
                        WHERE x.xid_hi OPERATOR(pg_catalog.>) l.xid
                        ORDER BY x.xid_hi LIMIT 1) b
           ON b.xid_lo OPERATOR(pg_catalog.<=) l.xid;
COMMENT ON VIEW phi_guard.audit_events IS
  'audit log entries with typed columns; sealed/block_no: the sealed block whose xid range holds the entry; for phi_auditor';

-- The key id a value names in its header (SPEC §3, bytes 4..7, big
-- endian).  Reads only the first 8 bytes (phi_ciphertext is stored
-- uncompressed, so a long out-of-line value is not fetched whole).
CREATE FUNCTION phi_guard.phi_ciphertext_key_id(ct phi_guard.phi_ciphertext) RETURNS pg_catalog.int4
  LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS
$$ SELECT ('x' OPERATOR(pg_catalog.||)
           pg_catalog.encode(pg_catalog.substring(ct::pg_catalog.bytea, 5, 4), 'hex'))::pg_catalog.bit(32)::pg_catalog.int4 $$;
COMMENT ON FUNCTION phi_guard.phi_ciphertext_key_id(phi_guard.phi_ciphertext) IS
  'the key id (phi_guard.keys.id) written in a value''s header';

-- key_status: every key version and the values known to use it.  Runs with
-- the view owner's rights (it counts token vault values, which phi_key_admin
-- cannot read) and shows no key material.
CREATE VIEW phi_guard.key_status AS
  SELECT k.name::pg_catalog.text AS name, k.version, k.id, k.state, k.created_at,
         COALESCE(v.n, 0) AS vault_values, i.id AS index_key_id
    FROM phi_guard.keys k
    LEFT JOIN (SELECT phi_guard.phi_ciphertext_key_id(t.value) AS key_id, pg_catalog.count(*) AS n
                 FROM phi_guard.token_vault t GROUP BY 1) v
           ON v.key_id OPERATOR(pg_catalog.=) k.id
    LEFT JOIN phi_guard.index_keys i ON i.name OPERATOR(pg_catalog.=) k.name
   ORDER BY k.name, k.version;
COMMENT ON VIEW phi_guard.key_status IS
  'key versions with the token vault values under each and the name''s index key; for phi_key_admin';

CREATE FUNCTION phi_guard.phi_key_usage(tbl pg_catalog.regclass, col pg_catalog.name)
  RETURNS TABLE(key_id pg_catalog.int4, name pg_catalog.text, version pg_catalog.int4,
                state pg_catalog.text, value_count pg_catalog.int8)
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
  -- key names with 0; runs as the caller, who needs SELECT on the column
  RETURN QUERY EXECUTE pg_catalog.format(
    'WITH c AS (SELECT phi_guard.phi_ciphertext_key_id(t.%1$I) AS key_id, pg_catalog.count(*) AS n'
    '             FROM %2$s t WHERE t.%1$I IS NOT NULL GROUP BY 1),'
    '     f AS (SELECT c.key_id, k.name::pg_catalog.text AS name, k.version, k.state, c.n'
    '             FROM c LEFT JOIN phi_guard.keys k ON k.id OPERATOR(pg_catalog.=) c.key_id)'
    ' SELECT f.key_id, f.name, f.version, f.state, f.n FROM f'
    ' UNION ALL'
    ' SELECT k.id, k.name::pg_catalog.text, k.version, k.state, 0::pg_catalog.int8'
    '   FROM phi_guard.keys k'
    '  WHERE EXISTS (SELECT FROM f WHERE f.name OPERATOR(pg_catalog.=) k.name)'
    '    AND NOT EXISTS (SELECT FROM f WHERE f.key_id OPERATOR(pg_catalog.=) k.id)'
    ' ORDER BY 2, 3, 1', col, tbl);
END
$$;
COMMENT ON FUNCTION phi_guard.phi_key_usage(pg_catalog.regclass, pg_catalog.name) IS
  'values of one phi_ciphertext column per key id (0 for the other versions of the same names); reads the whole column; requires phi_key_admin and SELECT on the column';

-- stats: counters since the server started (shared memory; PH003 when
-- phi_guard is not preloaded).
CREATE FUNCTION phi_guard.phi_stats(
    OUT encrypt pg_catalog.int8, OUT decrypt pg_catalog.int8, OUT decrypt_failed pg_catalog.int8,
    OUT tokenize pg_catalog.int8, OUT detokenize pg_catalog.int8, OUT detokenize_failed pg_catalog.int8,
    OUT blind_index pg_catalog.int8, OUT denied pg_catalog.int8,
    OUT key_cache_hits pg_catalog.int8, OUT key_cache_misses pg_catalog.int8,
    OUT since pg_catalog.timestamptz)
  RETURNS record
  AS 'MODULE_PATHNAME', 'phi_guard_stats'
  LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION phi_guard.phi_stats() IS
  'counts of encryptions, decryptions, tokens, blind indexes, refusals and key cache use since the server started; requires phi_key_admin, phi_auditor or phi_audit_admin';

CREATE VIEW phi_guard.stats WITH (security_invoker = true) AS
  SELECT s.encrypt, s.decrypt, s.decrypt_failed, s.tokenize, s.detokenize,
         s.detokenize_failed, s.blind_index, s.denied, s.key_cache_hits, s.key_cache_misses,
         CASE WHEN s.key_cache_hits OPERATOR(pg_catalog.+) s.key_cache_misses OPERATOR(pg_catalog.>) 0
              THEN s.key_cache_hits::pg_catalog.float8 OPERATOR(pg_catalog./)
                   (s.key_cache_hits OPERATOR(pg_catalog.+) s.key_cache_misses)::pg_catalog.float8
         END AS key_cache_hit_rate,
         s.since
    FROM phi_guard.phi_stats() s;
COMMENT ON VIEW phi_guard.stats IS
  'phi_stats() with the key cache hit rate; for phi_key_admin, phi_auditor, phi_audit_admin';

-- phi_access_report: what the log knows about one row (accounting of
-- disclosures).  row_key is the text form of a one-column primary key
-- value ('42'), or a JSON object of the key columns ('{"id":"42"}').
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
  needle pg_catalog.text;		-- JSON text every matching record contains
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

  RETURN QUERY
  WITH e AS (
    -- cheap text test first: only records that contain the key value (or
    -- are TRUNCATE entries) are parsed
    SELECT l.xid, l.id, j.ts, j.kind, j."table", j.row_key AS rk, j.db_user, j.app_user,
           j.tenant, j.purpose, j.client_addr, j.application_name, j.detail
      FROM phi_guard.audit_log l
     CROSS JOIN LATERAL pg_catalog.json_to_record(l.record::pg_catalog.json)
           AS j(ts pg_catalog.timestamptz, kind pg_catalog.text, "table" pg_catalog.text,
                row_key pg_catalog.jsonb, db_user pg_catalog.text, app_user pg_catalog.text,
                tenant pg_catalog.text, purpose pg_catalog.text, client_addr pg_catalog.text,
                application_name pg_catalog.text, detail pg_catalog.jsonb)
     WHERE pg_catalog.strpos(l.record, needle) OPERATOR(pg_catalog.>) 0
        OR pg_catalog.strpos(l.record, '"kind":"truncate"') OPERATOR(pg_catalog.>) 0
  ), m AS (
    SELECT e.* FROM e
     WHERE pg_catalog.jsonb_typeof(e.rk) OPERATOR(pg_catalog.=) 'object'
       AND CASE WHEN obj IS NOT NULL THEN e.rk OPERATOR(pg_catalog.=) obj
                ELSE (SELECT pg_catalog.array_agg(x.value) FROM pg_catalog.jsonb_each_text(e.rk) x)
                     OPERATOR(pg_catalog.=) ARRAY[val] END
  ), u AS (
    SELECT m.* FROM m
    UNION ALL
    -- a TRUNCATE of the table after the row was seen removed it too
    SELECT e.* FROM e
     WHERE e.kind OPERATOR(pg_catalog.=) 'truncate'
       AND EXISTS (SELECT FROM m WHERE m."table" OPERATOR(pg_catalog.=) e."table"
                                  AND m.ts OPERATOR(pg_catalog.<=) e.ts)
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
  'audit entries about one row (by primary key value or JSON object of key columns) since a time, oldest first; requires phi_auditor';

REVOKE ALL ON phi_guard.audit_events, phi_guard.key_status, phi_guard.stats FROM PUBLIC;
REVOKE ALL ON FUNCTION
  phi_guard.phi_ciphertext_key_id(phi_guard.phi_ciphertext),
  phi_guard.phi_key_usage(pg_catalog.regclass, pg_catalog.name),
  phi_guard.phi_stats(),
  phi_guard.phi_access_report(pg_catalog.text, pg_catalog.timestamptz)
  FROM PUBLIC;
GRANT SELECT ON phi_guard.audit_events TO phi_auditor;
GRANT EXECUTE ON FUNCTION phi_guard.phi_access_report(pg_catalog.text, pg_catalog.timestamptz)
  TO phi_auditor;
GRANT SELECT ON phi_guard.key_status TO phi_key_admin;
GRANT EXECUTE ON FUNCTION
  phi_guard.phi_ciphertext_key_id(phi_guard.phi_ciphertext),
  phi_guard.phi_key_usage(pg_catalog.regclass, pg_catalog.name)
  TO phi_key_admin;
GRANT SELECT ON phi_guard.stats TO phi_key_admin, phi_auditor, phi_audit_admin;
GRANT EXECUTE ON FUNCTION phi_guard.phi_stats() TO phi_key_admin, phi_auditor, phi_audit_admin;

-- end of section: views
