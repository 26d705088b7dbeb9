-- src/keys/keys.sql: the keyring (SPEC §2).
--
-- Owns: the wrapped-key store - data-key versions (keys, keys_id_seq) and
-- the one root key per key name of blind indexes and token fingerprints
-- (index_keys, ids from the same sequence), each shared or of one tenant
-- (SPEC §9) - with the trigger that invalidates every backend's key cache,
-- the key lifecycle (create, rotate, destroy, shred a tenant), master-key
-- rotation (rewrap, status) and the access rules of
-- key names (key_access: which context permission reads a key's values in
-- clear or masked, and the mask kind bound to it).  References the roles
-- (src/common/schema.sql) and audit_event() (src/audit/audit.sql).

CREATE SEQUENCE phi_guard.keys_id_seq AS pg_catalog.int4 MINVALUE 1 NO CYCLE;

CREATE TABLE phi_guard.keys (
  id          pg_catalog.int4 NOT NULL,
  name        pg_catalog.text COLLATE pg_catalog."C" NOT NULL,
  version     pg_catalog.int4 NOT NULL,
  state       pg_catalog.text NOT NULL,
  wrapped_key pg_catalog.bytea,
  created_at  pg_catalog.timestamptz NOT NULL DEFAULT pg_catalog.now(),
  tenant      pg_catalog.text COLLATE pg_catalog."C",
  CONSTRAINT keys_pkey PRIMARY KEY (id),
  CONSTRAINT keys_tenant_name_version_key UNIQUE NULLS NOT DISTINCT (tenant, name, version),
  CONSTRAINT keys_state_check
    CHECK (state OPERATOR(pg_catalog.=) ANY (ARRAY['active', 'retired', 'destroyed']::pg_catalog.text[])),
  CONSTRAINT keys_wrapped_check
    CHECK ((state OPERATOR(pg_catalog.=) 'destroyed') OPERATOR(pg_catalog.=) (wrapped_key IS NULL)),
  CONSTRAINT keys_wrapped_len_check
    CHECK (pg_catalog.octet_length(wrapped_key) OPERATOR(pg_catalog.=) 60),
  CONSTRAINT keys_name_check
    CHECK (pg_catalog.octet_length(name) OPERATOR(pg_catalog.>=) 1
           AND pg_catalog.octet_length(name) OPERATOR(pg_catalog.<=) 63),
  CONSTRAINT keys_version_check CHECK (version OPERATOR(pg_catalog.>=) 1),
  CONSTRAINT keys_tenant_check
    CHECK (pg_catalog.octet_length(tenant) OPERATOR(pg_catalog.>=) 1
           AND pg_catalog.octet_length(tenant) OPERATOR(pg_catalog.<=) 63)
);
CREATE UNIQUE INDEX keys_one_active ON phi_guard.keys (tenant, name) NULLS NOT DISTINCT
  WHERE state OPERATOR(pg_catalog.=) 'active';
ALTER SEQUENCE phi_guard.keys_id_seq OWNED BY phi_guard.keys.id;
COMMENT ON TABLE phi_guard.keys IS
  'data-key versions; wrapped_key = nonce || AES-256-GCM(master key, data key) || tag; tenant NULL: a shared key';

SELECT pg_catalog.pg_extension_config_dump('phi_guard.keys', '');
SELECT pg_catalog.pg_extension_config_dump('phi_guard.keys_id_seq', '');

CREATE FUNCTION phi_guard.keys_changed() RETURNS trigger
  AS 'MODULE_PATHNAME', 'phi_guard_keys_changed'
  LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION phi_guard.keys_changed() IS
  'invalidates every backend''s cache of the table: unwrapped data or index keys, key access rules';
CREATE TRIGGER keys_changed
  AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON phi_guard.keys
  FOR EACH STATEMENT EXECUTE FUNCTION phi_guard.keys_changed();

CREATE FUNCTION phi_guard.phi_key_create(name pg_catalog.text)
  RETURNS pg_catalog.int4
  AS 'MODULE_PATHNAME', 'phi_guard_key_create'
  LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE
  SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION phi_guard.phi_key_create(pg_catalog.text) IS
  'creates a data key (version 1) and returns its id; requires phi_key_admin';

-- Tenant keys (SPEC §9): a key of one tenant is chosen over the shared key
-- of the same name under that tenant's signed context (phi_encrypt,
-- phi_blind_index, phi_tokenize), and its values decrypt only there.  The
-- calls without a tenant never touch tenant keys.
CREATE FUNCTION phi_guard.phi_key_create(name pg_catalog.text, tenant pg_catalog.text)
  RETURNS pg_catalog.int4
  AS 'MODULE_PATHNAME', 'phi_guard_key_create'
  LANGUAGE C VOLATILE PARALLEL UNSAFE
  SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION phi_guard.phi_key_create(pg_catalog.text, pg_catalog.text) IS
  'creates a data key (version 1) of one tenant (NULL: shared) and returns its id; requires phi_key_admin';

CREATE FUNCTION phi_guard.phi_key_rotate(name pg_catalog.text, tenant pg_catalog.text DEFAULT NULL)
  RETURNS pg_catalog.int4
  AS 'MODULE_PATHNAME', 'phi_guard_key_rotate'
  LANGUAGE C VOLATILE PARALLEL UNSAFE
  SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION phi_guard.phi_key_rotate(pg_catalog.text, pg_catalog.text) IS
  'adds a new active version of the shared key (or of the tenant''s), retiring the old one; returns the new id; requires phi_key_admin';

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

-- One root key per key name (of a tenant, or shared) for blind indexes and
-- token fingerprints, wrapped like a data key (SPEC §2 format, id from
-- keys_id_seq); created with the name's first version, destroyed with its
-- last.
CREATE TABLE phi_guard.index_keys (
  name        pg_catalog.text COLLATE pg_catalog."C" NOT NULL,
  id          pg_catalog.int4 NOT NULL,
  wrapped_key pg_catalog.bytea NOT NULL,
  created_at  pg_catalog.timestamptz NOT NULL DEFAULT pg_catalog.now(),
  tenant      pg_catalog.text COLLATE pg_catalog."C",
  CONSTRAINT index_keys_tenant_name_key UNIQUE NULLS NOT DISTINCT (tenant, name),
  CONSTRAINT index_keys_id_key UNIQUE (id),
  CONSTRAINT index_keys_wrapped_len_check
    CHECK (pg_catalog.octet_length(wrapped_key) OPERATOR(pg_catalog.=) 60),
  CONSTRAINT index_keys_tenant_check
    CHECK (pg_catalog.octet_length(tenant) OPERATOR(pg_catalog.>=) 1
           AND pg_catalog.octet_length(tenant) OPERATOR(pg_catalog.<=) 63)
);
COMMENT ON TABLE phi_guard.index_keys IS
  'wrapped root keys of blind indexes and token fingerprints, one per key name of a tenant (NULL: shared)';
SELECT pg_catalog.pg_extension_config_dump('phi_guard.index_keys', '');
CREATE TRIGGER index_keys_changed
  AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON phi_guard.index_keys
  FOR EACH STATEMENT EXECUTE FUNCTION phi_guard.keys_changed();

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

-- Decryption obeys the signed context (SPEC §5): a key name with a rule is
-- read in clear only under a context one of whose roles holds
-- 'permission' (phi_has_permission), masked only under one holding
-- 'masked_permission', not at all otherwise; a name without a rule is read
-- as in 0.2.0 (database roles alone decide).  mask_kind is the kind that
-- masked readers get (phi_mask_bind), whatever kind they ask for; none
-- means a full mask.  A row without a permission or a kind is deleted.
-- Every backend caches the rows with its keys (the same invalidation
-- trigger), so a change takes effect in every session's next statement.
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

-- A rule or a binding names a key that has versions (in any state).
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

-- Privileges: key administration is phi_key_admin's; the key material
-- itself (wrapped_key) is readable by no one but the owner.
REVOKE ALL ON phi_guard.keys, phi_guard.index_keys, phi_guard.key_access FROM PUBLIC;
REVOKE ALL ON SEQUENCE phi_guard.keys_id_seq FROM PUBLIC;
REVOKE ALL ON FUNCTION
  phi_guard.keys_changed(),
  phi_guard.phi_key_create(pg_catalog.text),
  phi_guard.phi_key_create(pg_catalog.text, pg_catalog.text),
  phi_guard.phi_key_rotate(pg_catalog.text, pg_catalog.text),
  phi_guard.phi_key_destroy(pg_catalog.text, pg_catalog.int4, pg_catalog.text),
  phi_guard.phi_tenant_shred(pg_catalog.text),
  phi_guard.phi_master_key_rewrap(),
  phi_guard.phi_master_key_status(),
  phi_guard.phi_key_access(pg_catalog.text, pg_catalog.text, pg_catalog.text),
  phi_guard.phi_mask_bind(pg_catalog.text, pg_catalog.text)
  FROM PUBLIC;
GRANT SELECT (id, name, version, state, created_at, tenant) ON phi_guard.keys TO phi_key_admin;
GRANT SELECT ON phi_guard.key_access TO phi_key_admin;
GRANT EXECUTE ON FUNCTION
  phi_guard.phi_key_create(pg_catalog.text),
  phi_guard.phi_key_create(pg_catalog.text, pg_catalog.text),
  phi_guard.phi_key_rotate(pg_catalog.text, pg_catalog.text),
  phi_guard.phi_key_destroy(pg_catalog.text, pg_catalog.int4, pg_catalog.text),
  phi_guard.phi_tenant_shred(pg_catalog.text),
  phi_guard.phi_master_key_rewrap(),
  phi_guard.phi_master_key_status(),
  phi_guard.phi_key_access(pg_catalog.text, pg_catalog.text, pg_catalog.text),
  phi_guard.phi_mask_bind(pg_catalog.text, pg_catalog.text)
  TO phi_key_admin;
