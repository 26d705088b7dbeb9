-- src/context/context.sql: the signed request context, permissions,
-- break-glass and tenant row-level security (SPEC §5).
--
-- Owns: the context signing keys, the role-to-permission map (built-in
-- defaults and the operator's overrides), break-glass grants, the context
-- readers (phi_user_id, phi_tenant_id, ...) and the break-glass policy
-- function of protected tables (phi_protect_table and phi_unprotect_table
-- are src/guard/guard.sql's).  References the roles (src/common/schema.sql),
-- audit_event() (src/audit/audit.sql) and audit_denial()
-- (src/audit/alerts.sql).

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

-- not STRICT: phi_set_context(NULL) clears the context, never keeps the
-- previous request's
CREATE FUNCTION phi_guard.phi_set_context(token pg_catalog.text) RETURNS void
  AS 'MODULE_PATHNAME', 'phi_guard_set_context'
  LANGUAGE C VOLATILE PARALLEL UNSAFE
  SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION phi_guard.phi_set_context(pg_catalog.text) IS
  'verifies a signed context token (EdDSA JWT) and makes it the context until the transaction ends; NULL clears the context';

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
COMMENT ON FUNCTION phi_guard.phi_break_glass(pg_catalog.text, pg_catalog.int4) IS
  'opens time-boxed emergency read access for the context''s user within its tenant; returns the expiry';

CREATE FUNCTION phi_guard.phi_break_glass_end() RETURNS pg_catalog.bool
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
COMMENT ON FUNCTION phi_guard.phi_break_glass_end() IS
  'ends the context user''s active break-glass grants in its tenant; false when there was none';

CREATE FUNCTION phi_guard.phi_break_glass_active() RETURNS pg_catalog.bool
  AS 'MODULE_PATHNAME', 'phi_guard_break_glass_active'
  LANGUAGE C STABLE PARALLEL RESTRICTED
  SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION phi_guard.phi_break_glass_active() IS
  'whether the context''s user holds an active break-glass grant in its tenant';

-- The break-glass policy of protected tables.  Executable by every role
-- (policies run as the reader), so a direct call is possible: it answers
-- like phi_break_glass_active() and writes nothing.  A use entry is
-- written only for the call row security makes in the policy of the table
-- it names (the library's planner hook recognises it, src/context).
CREATE FUNCTION phi_guard.break_glass_use(tbl pg_catalog.regclass) RETURNS pg_catalog.bool
  AS 'MODULE_PATHNAME', 'phi_guard_break_glass_use'
  LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED
  SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION phi_guard.break_glass_use(pg_catalog.regclass) IS
  'internal, the break-glass policy of protected tables: an active grant admits the row; audited as a use only when called by that policy';

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
-- readers and break-glass.  (PUBLIC's default EXECUTE stays on these.)
