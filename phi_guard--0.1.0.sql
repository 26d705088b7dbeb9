\echo Use "CREATE EXTENSION phi_guard" to load this file. \quit

-- phi_guard 0.1.0 install script.
-- Plain CREATE only; every reference qualified (pg_catalog., phi_guard.,
-- OPERATOR(pg_catalog.x)); every SECURITY DEFINER function pins search_path;
-- nothing is executable by PUBLIC unless listed at the end.

-- Refuse a pre-existing phi_guard schema that someone else owns: its owner
-- could have planted objects that our functions would resolve.
DO $guard$
BEGIN
  IF (SELECT n.nspowner OPERATOR(pg_catalog.<>) r.oid
        FROM pg_catalog.pg_namespace n, pg_catalog.pg_roles r
       WHERE n.nspname OPERATOR(pg_catalog.=) 'phi_guard'
         AND r.rolname OPERATOR(pg_catalog.=) CURRENT_USER) THEN
    RAISE EXCEPTION 'schema phi_guard exists and is owned by another role'
      USING ERRCODE = '42501',
            HINT = 'Drop or rename that schema, then run CREATE EXTENSION phi_guard again.';
  END IF;
END
$guard$;

-- Roles are cluster-wide: a second database installing phi_guard reuses them.
DO $roles$
DECLARE
  r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['phi_key_admin', 'phi_encryptor', 'phi_decryptor',
                           'phi_detokenizer', 'phi_masked_reader',
                           'phi_auditor', 'phi_audit_admin'] LOOP
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) r) THEN
      EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', r);
    END IF;
  END LOOP;
END
$roles$;

REVOKE ALL ON SCHEMA phi_guard FROM PUBLIC;
GRANT USAGE ON SCHEMA phi_guard TO phi_key_admin, phi_encryptor, phi_decryptor,
  phi_detokenizer, phi_masked_reader, phi_auditor, phi_audit_admin;

------------------------------------------------------------------------
-- Type phi_ciphertext (SPEC §3)
------------------------------------------------------------------------

CREATE TYPE phi_guard.phi_ciphertext;

CREATE FUNCTION phi_guard.phi_ciphertext_in(pg_catalog.cstring)
  RETURNS phi_guard.phi_ciphertext
  AS 'MODULE_PATHNAME', 'phi_guard_ciphertext_in'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION phi_guard.phi_ciphertext_out(phi_guard.phi_ciphertext)
  RETURNS pg_catalog.cstring
  AS 'MODULE_PATHNAME', 'phi_guard_ciphertext_out'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION phi_guard.phi_ciphertext_recv(pg_catalog.internal)
  RETURNS phi_guard.phi_ciphertext
  AS 'MODULE_PATHNAME', 'phi_guard_ciphertext_recv'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION phi_guard.phi_ciphertext_send(phi_guard.phi_ciphertext)
  RETURNS pg_catalog.bytea
  AS 'MODULE_PATHNAME', 'phi_guard_ciphertext_send'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE TYPE phi_guard.phi_ciphertext (
  INPUT = phi_guard.phi_ciphertext_in,
  OUTPUT = phi_guard.phi_ciphertext_out,
  RECEIVE = phi_guard.phi_ciphertext_recv,
  SEND = phi_guard.phi_ciphertext_send,
  INTERNALLENGTH = VARIABLE,
  ALIGNMENT = int4,
  STORAGE = external      -- ciphertext does not compress: skip the attempt
);
COMMENT ON TYPE phi_guard.phi_ciphertext IS
  'AES-256-GCM ciphertext (SPEC §3); text form phi1:<base64>; no comparison operators';

CREATE FUNCTION phi_guard.phi_ciphertext(pg_catalog.bytea)
  RETURNS phi_guard.phi_ciphertext
  AS 'MODULE_PATHNAME', 'phi_guard_ciphertext_from_bytea'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION phi_guard.phi_ciphertext(pg_catalog.bytea) IS
  'validating cast from the raw ciphertext bytes';

CREATE CAST (phi_guard.phi_ciphertext AS pg_catalog.bytea) WITHOUT FUNCTION;
CREATE CAST (pg_catalog.bytea AS phi_guard.phi_ciphertext)
  WITH FUNCTION phi_guard.phi_ciphertext(pg_catalog.bytea);

------------------------------------------------------------------------
-- Keyring (SPEC §2)
------------------------------------------------------------------------

CREATE SEQUENCE phi_guard.keys_id_seq AS pg_catalog.int4 MINVALUE 1 NO CYCLE;

CREATE TABLE phi_guard.keys (
  id          pg_catalog.int4 NOT NULL,
  name        pg_catalog.text COLLATE pg_catalog."C" NOT NULL,
  version     pg_catalog.int4 NOT NULL,
  state       pg_catalog.text NOT NULL,
  wrapped_key pg_catalog.bytea,
  created_at  pg_catalog.timestamptz NOT NULL DEFAULT pg_catalog.now(),
  CONSTRAINT keys_pkey PRIMARY KEY (id),
  CONSTRAINT keys_name_version_key UNIQUE (name, version),
  CONSTRAINT keys_state_check
    CHECK (state OPERATOR(pg_catalog.=) ANY (ARRAY['active', 'retired', 'destroyed']::pg_catalog.text[])),
  CONSTRAINT keys_wrapped_check
    CHECK ((state OPERATOR(pg_catalog.=) 'destroyed') OPERATOR(pg_catalog.=) (wrapped_key IS NULL)),
  CONSTRAINT keys_wrapped_len_check
    CHECK (pg_catalog.octet_length(wrapped_key) OPERATOR(pg_catalog.=) 60),
  CONSTRAINT keys_name_check
    CHECK (pg_catalog.octet_length(name) OPERATOR(pg_catalog.>=) 1
           AND pg_catalog.octet_length(name) OPERATOR(pg_catalog.<=) 63),
  CONSTRAINT keys_version_check CHECK (version OPERATOR(pg_catalog.>=) 1)
);
CREATE UNIQUE INDEX keys_one_active ON phi_guard.keys (name)
  WHERE state OPERATOR(pg_catalog.=) 'active';
ALTER SEQUENCE phi_guard.keys_id_seq OWNED BY phi_guard.keys.id;
COMMENT ON TABLE phi_guard.keys IS
  'data-key versions; wrapped_key = nonce || AES-256-GCM(master key, data key) || tag';

SELECT pg_catalog.pg_extension_config_dump('phi_guard.keys', '');
SELECT pg_catalog.pg_extension_config_dump('phi_guard.keys_id_seq', '');

CREATE FUNCTION phi_guard.keys_changed() RETURNS trigger
  AS 'MODULE_PATHNAME', 'phi_guard_keys_changed'
  LANGUAGE C;
COMMENT ON FUNCTION phi_guard.keys_changed() IS
  'invalidates every backend''s cache of unwrapped data keys';
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

CREATE FUNCTION phi_guard.phi_key_rotate(name pg_catalog.text)
  RETURNS pg_catalog.int4
  AS 'MODULE_PATHNAME', 'phi_guard_key_rotate'
  LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE
  SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION phi_guard.phi_key_rotate(pg_catalog.text) IS
  'adds a new active version, retiring the old one; returns the new id; requires phi_key_admin';

CREATE FUNCTION phi_guard.phi_key_destroy(name pg_catalog.text, version pg_catalog.int4 DEFAULT NULL)
  RETURNS pg_catalog.int4
  AS 'MODULE_PATHNAME', 'phi_guard_key_destroy'
  LANGUAGE C VOLATILE PARALLEL UNSAFE
  SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION phi_guard.phi_key_destroy(pg_catalog.text, pg_catalog.int4) IS
  'crypto-shreds one version (or every version when NULL); returns how many; requires phi_key_admin';

------------------------------------------------------------------------
-- Field encryption (SPEC §3)
------------------------------------------------------------------------

CREATE FUNCTION phi_guard.phi_encrypt(plaintext pg_catalog.text, key_name pg_catalog.text,
                                      aad pg_catalog.text DEFAULT NULL)
  RETURNS phi_guard.phi_ciphertext
  AS 'MODULE_PATHNAME', 'phi_guard_encrypt_text'
  LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION phi_guard.phi_encrypt(pg_catalog.text, pg_catalog.text, pg_catalog.text) IS
  'AES-256-GCM encryption under the active version of key_name, bound to aad; requires phi_encryptor';

CREATE FUNCTION phi_guard.phi_encrypt(plaintext pg_catalog.bytea, key_name pg_catalog.text,
                                      aad pg_catalog.text DEFAULT NULL)
  RETURNS phi_guard.phi_ciphertext
  AS 'MODULE_PATHNAME', 'phi_guard_encrypt_bytea'
  LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION phi_guard.phi_encrypt(pg_catalog.bytea, pg_catalog.text, pg_catalog.text) IS
  'AES-256-GCM encryption of bytes under the active version of key_name; requires phi_encryptor';

-- Decryption is VOLATILE: every call is an access to PHI, counted and audited.
CREATE FUNCTION phi_guard.phi_decrypt(ct phi_guard.phi_ciphertext, aad pg_catalog.text DEFAULT NULL)
  RETURNS pg_catalog.text
  AS 'MODULE_PATHNAME', 'phi_guard_decrypt_text'
  LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION phi_guard.phi_decrypt(phi_guard.phi_ciphertext, pg_catalog.text) IS
  'decrypts a value encrypted from text; requires phi_decryptor';

CREATE FUNCTION phi_guard.phi_decrypt_bytea(ct phi_guard.phi_ciphertext, aad pg_catalog.text DEFAULT NULL)
  RETURNS pg_catalog.bytea
  AS 'MODULE_PATHNAME', 'phi_guard_decrypt_bytea'
  LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION phi_guard.phi_decrypt_bytea(phi_guard.phi_ciphertext, pg_catalog.text) IS
  'decrypts a value to its bytes; requires phi_decryptor';

CREATE FUNCTION phi_guard.phi_rewrap(ct phi_guard.phi_ciphertext, aad pg_catalog.text DEFAULT NULL)
  RETURNS phi_guard.phi_ciphertext
  AS 'MODULE_PATHNAME', 'phi_guard_rewrap'
  LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION phi_guard.phi_rewrap(phi_guard.phi_ciphertext, pg_catalog.text) IS
  're-encrypts under the active version of the same key name without returning plaintext; requires phi_key_admin or phi_encryptor';

------------------------------------------------------------------------
-- Privileges
------------------------------------------------------------------------

REVOKE ALL ON ALL TABLES IN SCHEMA phi_guard FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA phi_guard FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA phi_guard FROM PUBLIC;

GRANT SELECT (id, name, version, state, created_at) ON phi_guard.keys TO phi_key_admin;
GRANT EXECUTE ON FUNCTION
  phi_guard.phi_key_create(pg_catalog.text),
  phi_guard.phi_key_rotate(pg_catalog.text),
  phi_guard.phi_key_destroy(pg_catalog.text, pg_catalog.int4),
  phi_guard.phi_rewrap(phi_guard.phi_ciphertext, pg_catalog.text)
  TO phi_key_admin;
GRANT EXECUTE ON FUNCTION
  phi_guard.phi_encrypt(pg_catalog.text, pg_catalog.text, pg_catalog.text),
  phi_guard.phi_encrypt(pg_catalog.bytea, pg_catalog.text, pg_catalog.text),
  phi_guard.phi_rewrap(phi_guard.phi_ciphertext, pg_catalog.text)
  TO phi_encryptor;
GRANT EXECUTE ON FUNCTION
  phi_guard.phi_decrypt(phi_guard.phi_ciphertext, pg_catalog.text),
  phi_guard.phi_decrypt_bytea(phi_guard.phi_ciphertext, pg_catalog.text)
  TO phi_decryptor;
-- The validating cast is harmless and needed by whoever stores raw bytes.
GRANT EXECUTE ON FUNCTION phi_guard.phi_ciphertext(pg_catalog.bytea)
  TO phi_key_admin, phi_encryptor, phi_decryptor;

------------------------------------------------------------------------
-- Blind indexes, tokenization, masking (SPEC §4, §5)
------------------------------------------------------------------------


-- One root key per key name for blind indexes and token fingerprints,
-- wrapped like a data key (SPEC §2 format, id from keys_id_seq); created
-- with the name's first version, destroyed with its last.
CREATE TABLE phi_guard.index_keys (
  name        pg_catalog.text COLLATE pg_catalog."C" NOT NULL,
  id          pg_catalog.int4 NOT NULL,
  wrapped_key pg_catalog.bytea NOT NULL,
  created_at  pg_catalog.timestamptz NOT NULL DEFAULT pg_catalog.now(),
  CONSTRAINT index_keys_pkey PRIMARY KEY (name),
  CONSTRAINT index_keys_id_key UNIQUE (id),
  CONSTRAINT index_keys_wrapped_len_check
    CHECK (pg_catalog.octet_length(wrapped_key) OPERATOR(pg_catalog.=) 60)
);
COMMENT ON TABLE phi_guard.index_keys IS
  'wrapped root keys of blind indexes and token fingerprints, one per key name';
SELECT pg_catalog.pg_extension_config_dump('phi_guard.index_keys', '');
CREATE TRIGGER index_keys_changed
  AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON phi_guard.index_keys
  FOR EACH STATEMENT EXECUTE FUNCTION phi_guard.keys_changed();

CREATE TABLE phi_guard.token_domains (
  name          pg_catalog.text COLLATE pg_catalog."C" NOT NULL,
  key_name      pg_catalog.text COLLATE pg_catalog."C" NOT NULL,
  format        pg_catalog.text NOT NULL,
  deterministic pg_catalog.bool NOT NULL,
  created_at    pg_catalog.timestamptz NOT NULL DEFAULT pg_catalog.now(),
  CONSTRAINT token_domains_pkey PRIMARY KEY (name),
  CONSTRAINT token_domains_format_check
    CHECK (format OPERATOR(pg_catalog.=) ANY (ARRAY['opaque', 'digits', 'ssn']::pg_catalog.text[])),
  CONSTRAINT token_domains_name_check
    CHECK (pg_catalog.octet_length(name) OPERATOR(pg_catalog.>=) 1
           AND pg_catalog.octet_length(name) OPERATOR(pg_catalog.<=) 63)
);
COMMENT ON TABLE phi_guard.token_domains IS 'token domains: key, format, determinism';

CREATE TABLE phi_guard.token_vault (
  domain      pg_catalog.text COLLATE pg_catalog."C" NOT NULL,
  token       pg_catalog.text COLLATE pg_catalog."C" NOT NULL,
  fingerprint pg_catalog.bytea,
  value       phi_guard.phi_ciphertext NOT NULL,
  created_at  pg_catalog.timestamptz NOT NULL DEFAULT pg_catalog.now(),
  CONSTRAINT token_vault_pkey PRIMARY KEY (domain, token),
  -- the fingerprint is keyed by the domain too, so it is unique on its own
  CONSTRAINT token_vault_fingerprint_key UNIQUE (fingerprint),
  CONSTRAINT token_vault_domain_fkey FOREIGN KEY (domain) REFERENCES phi_guard.token_domains (name)
);
-- lookups by fingerprint (phi_tokenize of a known value) use a hash index:
-- one bucket page instead of a B-tree descent over random keys
CREATE INDEX token_vault_fingerprint_hash ON phi_guard.token_vault USING hash (fingerprint);
COMMENT ON TABLE phi_guard.token_vault IS
  'token -> value encrypted under the domain key (aad phi_guard.token_vault:<domain>); fingerprint = keyed HMAC for deterministic domains';
SELECT pg_catalog.pg_extension_config_dump('phi_guard.token_domains', '');
SELECT pg_catalog.pg_extension_config_dump('phi_guard.token_vault', '');

CREATE FUNCTION phi_guard.phi_blind_index(value pg_catalog.text, key_name pg_catalog.text,
                                          bits pg_catalog.int4 DEFAULT 32)
  RETURNS pg_catalog.int8
  AS 'MODULE_PATHNAME', 'phi_guard_blind_index'
  LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION phi_guard.phi_blind_index(pg_catalog.text, pg_catalog.text, pg_catalog.int4) IS
  'first bits (8..63) of HMAC-SHA256 under the key name''s blind-index subkey, for equality search';

CREATE FUNCTION phi_guard.phi_token_domain_create(domain pg_catalog.text, key_name pg_catalog.text,
    format pg_catalog.text DEFAULT 'opaque', deterministic pg_catalog.bool DEFAULT true)
  RETURNS void
  LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
  SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
  IF domain IS NULL OR key_name IS NULL OR format IS NULL OR deterministic IS NULL THEN
    RAISE EXCEPTION 'arguments must not be null' USING ERRCODE = '22004';
  END IF;
  IF format OPERATOR(pg_catalog.<>) ALL (ARRAY['opaque', 'digits', 'ssn']) THEN
    RAISE EXCEPTION 'unknown token format "%"', format
      USING ERRCODE = '22023', HINT = 'Formats are opaque, digits and ssn.';
  END IF;
  IF NOT EXISTS (SELECT FROM phi_guard.keys k WHERE k.name OPERATOR(pg_catalog.=) key_name
                   AND k.state OPERATOR(pg_catalog.=) 'active') THEN
    RAISE EXCEPTION 'key "%" does not exist or has no active version', key_name
      USING ERRCODE = '42704', HINT = 'Create it with phi_key_create().';
  END IF;
  IF EXISTS (SELECT FROM phi_guard.token_domains d WHERE d.name OPERATOR(pg_catalog.=) domain) THEN
    RAISE EXCEPTION 'token domain "%" already exists', domain USING ERRCODE = '42710';
  END IF;
  INSERT INTO phi_guard.token_domains (name, key_name, format, deterministic)
    VALUES (domain, key_name, format, deterministic);
  PERFORM phi_guard.audit_event('token_domain_create', NULL,
    pg_catalog.jsonb_build_object('domain', domain, 'key', key_name, 'format', format,
                                  'deterministic', deterministic));
END
$$;
COMMENT ON FUNCTION phi_guard.phi_token_domain_create(pg_catalog.text, pg_catalog.text, pg_catalog.text, pg_catalog.bool) IS
  'creates a token domain under a key; requires phi_key_admin';

CREATE FUNCTION phi_guard.phi_tokenize(value pg_catalog.text, domain pg_catalog.text)
  RETURNS pg_catalog.text
  AS 'MODULE_PATHNAME', 'phi_guard_tokenize'
  LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION phi_guard.phi_tokenize(pg_catalog.text, pg_catalog.text) IS
  'the value''s token in a domain (the same one each time in a deterministic domain); requires phi_encryptor';

CREATE FUNCTION phi_guard.phi_detokenize(token pg_catalog.text, domain pg_catalog.text)
  RETURNS pg_catalog.text
  AS 'MODULE_PATHNAME', 'phi_guard_detokenize'
  LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION phi_guard.phi_detokenize(pg_catalog.text, pg_catalog.text) IS
  'the value behind a token; every call is audited; requires phi_detokenizer';

CREATE FUNCTION phi_guard.phi_token_forget(domain pg_catalog.text, token pg_catalog.text)
  RETURNS pg_catalog.bool
  AS 'MODULE_PATHNAME', 'phi_guard_token_forget'
  LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE
  SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION phi_guard.phi_token_forget(pg_catalog.text, pg_catalog.text) IS
  'removes a token''s value from the vault (audited); requires phi_key_admin';

CREATE FUNCTION phi_guard.phi_mask(value pg_catalog.text, kind pg_catalog.text)
  RETURNS pg_catalog.text
  AS 'MODULE_PATHNAME', 'phi_guard_mask'
  LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION phi_guard.phi_mask(pg_catalog.text, pg_catalog.text) IS
  'masks ssn, email, phone, name, dob (year only) or zip (3 digits); malformed input is fully masked';

CREATE FUNCTION phi_guard.phi_decrypt_masked(ct phi_guard.phi_ciphertext, aad pg_catalog.text,
                                             kind pg_catalog.text)
  RETURNS pg_catalog.text
  AS 'MODULE_PATHNAME', 'phi_guard_decrypt_masked'
  LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION phi_guard.phi_decrypt_masked(phi_guard.phi_ciphertext, pg_catalog.text, pg_catalog.text) IS
  'plaintext for roles with phi_decryptor''s privileges, the masked value for phi_masked_reader; audited';

------------------------------------------------------------------------
-- Audit log (SPEC §6)
------------------------------------------------------------------------


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

-- Refuse SQL changes of entries and blocks, even a superuser's by accident.
-- (A superuser can disable this; phi_audit_verify then finds the change.)
CREATE FUNCTION phi_guard.audit_append_only() RETURNS trigger
  LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
  RAISE EXCEPTION 'phi_guard.% is append-only', TG_TABLE_NAME
    USING ERRCODE = '42501',
          HINT = 'Audit entries and blocks are never changed or removed.';
END
$$;
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
  LANGUAGE C;
COMMENT ON FUNCTION phi_guard.audit_trigger() IS
  'statement-level trigger installed by phi_audit_enable: one entry per affected row';

CREATE FUNCTION phi_guard.audit_event(kind pg_catalog.text, tbl pg_catalog.regclass,
                                      detail pg_catalog.jsonb)
  RETURNS void
  AS 'MODULE_PATHNAME', 'phi_guard_audit_event'
  LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION phi_guard.audit_event(pg_catalog.text, pg_catalog.regclass, pg_catalog.jsonb) IS
  'internal: one entry written by phi_guard''s own functions; granted to no one';

CREATE FUNCTION phi_guard.phi_audit_enable(tbl pg_catalog.regclass) RETURNS void
  LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE
  SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
  kind "char";
  nsp pg_catalog.oid;
BEGIN
  SELECT c.relkind, c.relnamespace INTO kind, nsp
    FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl;
  IF kind IS NULL OR kind OPERATOR(pg_catalog.<>) ALL (ARRAY['r', 'p']::"char"[]) THEN
    RAISE EXCEPTION '"%" is not a table', tbl USING ERRCODE = '42809';
  END IF;
  IF nsp OPERATOR(pg_catalog.=) 'phi_guard'::pg_catalog.regnamespace THEN
    RAISE EXCEPTION 'phi_guard''s own tables cannot be audited this way' USING ERRCODE = '42809';
  END IF;
  IF EXISTS (SELECT FROM phi_guard.audited_tables a WHERE a.relid OPERATOR(pg_catalog.=) tbl) THEN
    RAISE NOTICE 'auditing of % is already enabled', tbl;
    RETURN;
  END IF;
  EXECUTE pg_catalog.format('CREATE TRIGGER phi_guard_audit_ins AFTER INSERT ON %s '
    'REFERENCING NEW TABLE AS phi_new FOR EACH STATEMENT EXECUTE FUNCTION phi_guard.audit_trigger()', tbl);
  EXECUTE pg_catalog.format('CREATE TRIGGER phi_guard_audit_upd AFTER UPDATE ON %s '
    'REFERENCING OLD TABLE AS phi_old NEW TABLE AS phi_new FOR EACH STATEMENT EXECUTE FUNCTION phi_guard.audit_trigger()', tbl);
  EXECUTE pg_catalog.format('CREATE TRIGGER phi_guard_audit_del AFTER DELETE ON %s '
    'REFERENCING OLD TABLE AS phi_old FOR EACH STATEMENT EXECUTE FUNCTION phi_guard.audit_trigger()', tbl);
  EXECUTE pg_catalog.format('CREATE TRIGGER phi_guard_audit_trunc AFTER TRUNCATE ON %s '
    'FOR EACH STATEMENT EXECUTE FUNCTION phi_guard.audit_trigger()', tbl);
  INSERT INTO phi_guard.audited_tables (relid) VALUES (tbl);
  PERFORM phi_guard.audit_event('audit_enable', tbl, NULL);
END
$$;
COMMENT ON FUNCTION phi_guard.phi_audit_enable(pg_catalog.regclass) IS
  'audits every INSERT, UPDATE, DELETE and TRUNCATE on a table; requires phi_audit_admin';

CREATE FUNCTION phi_guard.phi_audit_disable(tbl pg_catalog.regclass) RETURNS void
  LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE
  SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
  t pg_catalog.text;
BEGIN
  -- leave the registry first, so the drops below are not reported as tampering
  -- (audit_ddl_drop reports a dropped audit trigger only on a registered table)
  DELETE FROM phi_guard.audited_tables a WHERE a.relid OPERATOR(pg_catalog.=) tbl;
  IF NOT FOUND THEN
    RAISE NOTICE 'auditing of % is not enabled', tbl;
    RETURN;
  END IF;
  FOREACH t IN ARRAY ARRAY['phi_guard_audit_ins', 'phi_guard_audit_upd',
                           'phi_guard_audit_del', 'phi_guard_audit_trunc'] LOOP
    EXECUTE pg_catalog.format('DROP TRIGGER IF EXISTS %I ON %s', t, tbl);
  END LOOP;
  PERFORM phi_guard.audit_event('audit_disable', tbl, NULL);
END
$$;
COMMENT ON FUNCTION phi_guard.phi_audit_disable(pg_catalog.regclass) IS
  'removes a table''s audit triggers (itself an audit entry); requires phi_audit_admin';

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

-- DDL on audited tables (ALTER ... DISABLE TRIGGER, DROP, ...) and on
-- phi_guard's own tables is itself an audit entry.
CREATE FUNCTION phi_guard.audit_ddl() RETURNS event_trigger
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
  r record;
  enabled pg_catalog.bool;
BEGIN
  FOR r IN SELECT c.objid, c.command_tag FROM pg_catalog.pg_event_trigger_ddl_commands() c
            WHERE c.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
              AND (c.objid OPERATOR(pg_catalog.=) ANY (SELECT a.relid::pg_catalog.oid FROM phi_guard.audited_tables a)
                   OR c.schema_name OPERATOR(pg_catalog.=) 'phi_guard')
  LOOP
    SELECT pg_catalog.bool_and(t.tgenabled OPERATOR(pg_catalog.<>) 'D') INTO enabled
      FROM pg_catalog.pg_trigger t
     WHERE t.tgrelid OPERATOR(pg_catalog.=) r.objid
       AND t.tgname OPERATOR(pg_catalog.~~) 'phi\_guard\_audit\_%';
    PERFORM phi_guard.audit_event('ddl', r.objid::pg_catalog.regclass,
      pg_catalog.jsonb_build_object('command', r.command_tag, 'audit_triggers_enabled', enabled));
  END LOOP;
END
$$;
CREATE FUNCTION phi_guard.audit_ddl_drop() RETURNS event_trigger
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
    END IF;
  END LOOP;
END
$$;
CREATE EVENT TRIGGER phi_guard_audit_ddl ON ddl_command_end
  EXECUTE FUNCTION phi_guard.audit_ddl();
CREATE EVENT TRIGGER phi_guard_audit_ddl_drop ON sql_drop
  EXECUTE FUNCTION phi_guard.audit_ddl_drop();

REVOKE ALL ON phi_guard.audit_log, phi_guard.audit_block, phi_guard.audited_tables FROM PUBLIC;
REVOKE ALL ON FUNCTION
  phi_guard.audit_append_only(), phi_guard.audit_trigger(),
  phi_guard.audit_event(pg_catalog.text, pg_catalog.regclass, pg_catalog.jsonb),
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

-- §4/§5 grants (after the audit section: phi_token_domain_create writes entries)
REVOKE ALL ON phi_guard.index_keys, phi_guard.token_domains, phi_guard.token_vault FROM PUBLIC;
REVOKE ALL ON FUNCTION
  phi_guard.phi_blind_index(pg_catalog.text, pg_catalog.text, pg_catalog.int4),
  phi_guard.phi_token_domain_create(pg_catalog.text, pg_catalog.text, pg_catalog.text, pg_catalog.bool),
  phi_guard.phi_tokenize(pg_catalog.text, pg_catalog.text),
  phi_guard.phi_detokenize(pg_catalog.text, pg_catalog.text),
  phi_guard.phi_token_forget(pg_catalog.text, pg_catalog.text),
  phi_guard.phi_decrypt_masked(phi_guard.phi_ciphertext, pg_catalog.text, pg_catalog.text)
  FROM PUBLIC;
GRANT SELECT ON phi_guard.token_domains TO phi_encryptor, phi_detokenizer, phi_key_admin;
GRANT EXECUTE ON FUNCTION phi_guard.phi_blind_index(pg_catalog.text, pg_catalog.text, pg_catalog.int4)
  TO phi_encryptor, phi_decryptor;
GRANT EXECUTE ON FUNCTION phi_guard.phi_tokenize(pg_catalog.text, pg_catalog.text) TO phi_encryptor;
GRANT EXECUTE ON FUNCTION phi_guard.phi_detokenize(pg_catalog.text, pg_catalog.text) TO phi_detokenizer;
GRANT EXECUTE ON FUNCTION
  phi_guard.phi_token_domain_create(pg_catalog.text, pg_catalog.text, pg_catalog.text, pg_catalog.bool),
  phi_guard.phi_token_forget(pg_catalog.text, pg_catalog.text)
  TO phi_key_admin;
GRANT EXECUTE ON FUNCTION
  phi_guard.phi_decrypt_masked(phi_guard.phi_ciphertext, pg_catalog.text, pg_catalog.text)
  TO phi_decryptor, phi_masked_reader;
-- phi_mask is for every role with USAGE on schema phi_guard (SPEC §5)
GRANT EXECUTE ON FUNCTION phi_guard.phi_mask(pg_catalog.text, pg_catalog.text) TO PUBLIC;
