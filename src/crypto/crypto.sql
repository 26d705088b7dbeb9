-- src/crypto/crypto.sql: the type phi_ciphertext and field encryption
-- (SPEC §3).
--
-- Owns: the type phi_ciphertext (text form phi1:<base64>, no comparison
-- operators) with its casts from and to bytea, encryption, decryption and
-- rewrapping, and the readers of a value's key id (phi_ciphertext_key_id,
-- phi_key_usage).  References the roles (src/common/schema.sql) and the
-- keyring (src/keys/keys.sql).

CREATE TYPE phi_guard.phi_ciphertext;

CREATE FUNCTION phi_guard.phi_ciphertext_in(pg_catalog.cstring)
  RETURNS phi_guard.phi_ciphertext
  AS 'MODULE_PATHNAME', 'phi_guard_ciphertext_in'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION phi_guard.phi_ciphertext_in(pg_catalog.cstring) IS
  'input function of phi_ciphertext: phi1:<base64>, validated';
CREATE FUNCTION phi_guard.phi_ciphertext_out(phi_guard.phi_ciphertext)
  RETURNS pg_catalog.cstring
  AS 'MODULE_PATHNAME', 'phi_guard_ciphertext_out'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION phi_guard.phi_ciphertext_out(phi_guard.phi_ciphertext) IS
  'output function of phi_ciphertext: phi1:<base64>';
CREATE FUNCTION phi_guard.phi_ciphertext_recv(pg_catalog.internal)
  RETURNS phi_guard.phi_ciphertext
  AS 'MODULE_PATHNAME', 'phi_guard_ciphertext_recv'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION phi_guard.phi_ciphertext_recv(pg_catalog.internal) IS
  'binary input function of phi_ciphertext: the raw bytes, validated';
CREATE FUNCTION phi_guard.phi_ciphertext_send(phi_guard.phi_ciphertext)
  RETURNS pg_catalog.bytea
  AS 'MODULE_PATHNAME', 'phi_guard_ciphertext_send'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION phi_guard.phi_ciphertext_send(phi_guard.phi_ciphertext) IS
  'binary output function of phi_ciphertext: the raw bytes';

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

CREATE FUNCTION phi_guard.phi_encrypt(plaintext pg_catalog.text, key_name pg_catalog.text,
                                      aad pg_catalog.text DEFAULT NULL)
  RETURNS phi_guard.phi_ciphertext
  AS 'MODULE_PATHNAME', 'phi_guard_encrypt_text'
  LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION phi_guard.phi_encrypt(pg_catalog.text, pg_catalog.text, pg_catalog.text) IS
  'AES-256-GCM encryption under the active version of key_name, bound to aad; requires phi_encryptor';

CREATE FUNCTION phi_guard.phi_encrypt(plaintext pg_catalog.bytea, key_name pg_catalog.text,
                                      aad pg_catalog.text DEFAULT NULL)
  RETURNS phi_guard.phi_ciphertext
  AS 'MODULE_PATHNAME', 'phi_guard_encrypt_bytea'
  LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION phi_guard.phi_encrypt(pg_catalog.bytea, pg_catalog.text, pg_catalog.text) IS
  'AES-256-GCM encryption of bytes under the active version of key_name; requires phi_encryptor';

-- Decryption is VOLATILE: every call is an access to PHI, counted and
-- audited.  A key's access rule (phi_guard.key_access) narrows it to the
-- contexts that hold its permission; phi_rewrap, which returns no
-- plaintext, is not a disclosure and ignores the rules.
CREATE FUNCTION phi_guard.phi_decrypt(ct phi_guard.phi_ciphertext, aad pg_catalog.text DEFAULT NULL)
  RETURNS pg_catalog.text
  AS 'MODULE_PATHNAME', 'phi_guard_decrypt_text'
  LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION phi_guard.phi_decrypt(phi_guard.phi_ciphertext, pg_catalog.text) IS
  'decrypts a value encrypted from text; requires phi_decryptor and, for a key with an access rule (phi_key_access), a context holding its permission';

CREATE FUNCTION phi_guard.phi_decrypt_bytea(ct phi_guard.phi_ciphertext, aad pg_catalog.text DEFAULT NULL)
  RETURNS pg_catalog.bytea
  AS 'MODULE_PATHNAME', 'phi_guard_decrypt_bytea'
  LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION phi_guard.phi_decrypt_bytea(phi_guard.phi_ciphertext, pg_catalog.text) IS
  'decrypts a value to its bytes; requires phi_decryptor and, for a key with an access rule (phi_key_access), a context holding its permission';

CREATE FUNCTION phi_guard.phi_rewrap(ct phi_guard.phi_ciphertext, aad pg_catalog.text DEFAULT NULL)
  RETURNS phi_guard.phi_ciphertext
  AS 'MODULE_PATHNAME', 'phi_guard_rewrap'
  LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION phi_guard.phi_rewrap(phi_guard.phi_ciphertext, pg_catalog.text) IS
  're-encrypts under the active version of the same key name without returning plaintext (so key access rules do not apply); requires phi_key_admin or phi_encryptor';

-- The key id a value names in its header (SPEC §3, bytes 4..7, big
-- endian).  Reads only the first 8 bytes (phi_ciphertext is stored
-- uncompressed, so a long out-of-line value is not fetched whole).
CREATE FUNCTION phi_guard.phi_ciphertext_key_id(ct phi_guard.phi_ciphertext) RETURNS pg_catalog.int4
  LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS
$$ SELECT ('x' OPERATOR(pg_catalog.||)
           pg_catalog.encode(pg_catalog.substring(ct::pg_catalog.bytea, 5, 4), 'hex'))::pg_catalog.bit(32)::pg_catalog.int4 $$;
COMMENT ON FUNCTION phi_guard.phi_ciphertext_key_id(phi_guard.phi_ciphertext) IS
  'the key id (phi_guard.keys.id) written in a value''s header';

-- tenant comes last: readers of the 0.2.0 columns keep working.
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

-- Privileges.  The validating cast is harmless and needed by whoever stores
-- raw bytes.
REVOKE ALL ON FUNCTION
  phi_guard.phi_ciphertext_in(pg_catalog.cstring),
  phi_guard.phi_ciphertext_out(phi_guard.phi_ciphertext),
  phi_guard.phi_ciphertext_recv(pg_catalog.internal),
  phi_guard.phi_ciphertext_send(phi_guard.phi_ciphertext),
  phi_guard.phi_ciphertext(pg_catalog.bytea),
  phi_guard.phi_encrypt(pg_catalog.text, pg_catalog.text, pg_catalog.text),
  phi_guard.phi_encrypt(pg_catalog.bytea, pg_catalog.text, pg_catalog.text),
  phi_guard.phi_decrypt(phi_guard.phi_ciphertext, pg_catalog.text),
  phi_guard.phi_decrypt_bytea(phi_guard.phi_ciphertext, pg_catalog.text),
  phi_guard.phi_rewrap(phi_guard.phi_ciphertext, pg_catalog.text),
  phi_guard.phi_ciphertext_key_id(phi_guard.phi_ciphertext),
  phi_guard.phi_key_usage(pg_catalog.regclass, pg_catalog.name)
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
  phi_guard.phi_rewrap(phi_guard.phi_ciphertext, pg_catalog.text),
  phi_guard.phi_ciphertext_key_id(phi_guard.phi_ciphertext),
  phi_guard.phi_key_usage(pg_catalog.regclass, pg_catalog.name)
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
GRANT EXECUTE ON FUNCTION phi_guard.phi_ciphertext(pg_catalog.bytea)
  TO phi_key_admin, phi_encryptor, phi_decryptor;
