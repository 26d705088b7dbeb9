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
  FOREACH r IN ARRAY ARRAY['phi_key_admin', 'phi_encryptor', 'phi_decryptor'] LOOP
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) r) THEN
      EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', r);
    END IF;
  END LOOP;
END
$roles$;

REVOKE ALL ON SCHEMA phi_guard FROM PUBLIC;
GRANT USAGE ON SCHEMA phi_guard TO phi_key_admin, phi_encryptor, phi_decryptor;

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
