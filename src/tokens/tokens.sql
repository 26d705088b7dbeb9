-- src/tokens/tokens.sql: blind indexes, tokenization and masking (SPEC §4,
-- §5).
--
-- Owns: phi_blind_index, the token domains and the token vault (values
-- encrypted under the domain key, keyed fingerprints for deterministic
-- domains), phi_tokenize / phi_detokenize / phi_token_forget, phi_mask and
-- phi_decrypt_masked.  References the roles (src/common/schema.sql), the
-- audit writer (src/audit/audit.sql), the keyring (src/keys/keys.sql: the
-- index keys) and the type phi_ciphertext (src/crypto/crypto.sql).

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
  LANGUAGE C STABLE PARALLEL RESTRICTED;
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
  'the value''s token in a domain (the same one each time in a deterministic domain); every call is audited; requires phi_encryptor';

CREATE FUNCTION phi_guard.phi_detokenize(token pg_catalog.text, domain pg_catalog.text)
  RETURNS pg_catalog.text
  AS 'MODULE_PATHNAME', 'phi_guard_detokenize'
  LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION phi_guard.phi_detokenize(pg_catalog.text, pg_catalog.text) IS
  'the value behind a token; every call is audited; requires phi_detokenizer and, when the domain''s key has an access rule, a context holding its permission';

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
  'plaintext for roles with phi_decryptor''s privileges under a context the key''s access rule reads in clear; otherwise the key''s bound mask (phi_mask_bind; **** without one), whatever kind says; audited';

-- Privileges
REVOKE ALL ON phi_guard.token_domains, phi_guard.token_vault FROM PUBLIC;
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
