-- Rule: any change to a stored value (header, key id, nonce, body, tag,
-- length) makes decryption fail with a stable SQLSTATE — PH001, or 42704
-- when the key id no longer names a key — never garbage, never a crash, and
-- the message holds no plaintext.
SET search_path = public, phi_guard;
SELECT phi_key_create('regress_tamper') AS tamper_id \gset
SELECT phi_key_create('regress_tamper_other') AS other_id \gset

CREATE TABLE regress_victim AS
  SELECT phi_encrypt('123-45-6789', 'regress_tamper', 'patients.ssn:7')::bytea AS raw;
SELECT phi_decrypt(raw::phi_ciphertext, 'patients.ssn:7') AS untouched FROM regress_victim;

CREATE FUNCTION regress_decrypt_raw(b bytea) RETURNS text LANGUAGE sql AS
$$ SELECT regress_try(format('SELECT phi_guard.phi_decrypt(%L::bytea::phi_guard.phi_ciphertext, %L)', b, 'patients.ssn:7')) $$;

-- named cases
SELECT what, regress_decrypt_raw(b) AS result FROM (
  SELECT 'flag: bytea bit set' AS what, set_byte(raw, 2, 2) AS b FROM regress_victim
  UNION ALL SELECT 'flag: aad bit cleared', set_byte(raw, 2, 0) FROM regress_victim
  UNION ALL SELECT 'key id: another existing key', overlay(raw placing int4send(:other_id) from 5) FROM regress_victim
  UNION ALL SELECT 'key id: unknown', overlay(raw placing int4send(2000000000) from 5) FROM regress_victim
  UNION ALL SELECT 'nonce: first byte', set_byte(raw, 8, get_byte(raw, 8) # 1) FROM regress_victim
  UNION ALL SELECT 'nonce: last byte', set_byte(raw, 19, get_byte(raw, 19) # 128) FROM regress_victim
  UNION ALL SELECT 'body: first byte', set_byte(raw, 20, get_byte(raw, 20) # 1) FROM regress_victim
  UNION ALL SELECT 'tag: last byte', set_byte(raw, octet_length(raw) - 1, get_byte(raw, octet_length(raw) - 1) # 1) FROM regress_victim
  UNION ALL SELECT 'truncated by one byte', substring(raw from 1 for octet_length(raw) - 1) FROM regress_victim
  UNION ALL SELECT 'one byte appended', raw || '\x00'::bytea FROM regress_victim
  UNION ALL SELECT 'body and tag swapped halves', substring(raw from 1 for 20) || substring(raw from 32) || substring(raw from 21 for 11) FROM regress_victim
) AS cases;

-- every single-bit flip in every byte that still parses fails, with PH001
-- or (key id bytes) 42704; none decrypts, none leaks the plaintext
WITH flips AS (
  SELECT i, bit, regress_decrypt_raw(set_byte(raw, i, get_byte(raw, i) # (1 << bit))) AS result
    FROM regress_victim, generate_series(0, octet_length(raw) - 1) AS i, generate_series(0, 7) AS bit
   WHERE i NOT IN (0, 1, 3) AND NOT (i = 2 AND bit > 1)
)
SELECT CASE WHEN i BETWEEN 4 AND 7 THEN 'key id' WHEN i = 2 THEN 'flags'
            WHEN i BETWEEN 8 AND 19 THEN 'nonce' ELSE 'body or tag' END AS region,
       left(result, 5) AS sqlstate, count(*) AS flips,
       count(*) FILTER (WHERE result LIKE '%123-45%') AS leaking
  FROM flips GROUP BY 1, 2 ORDER BY 1, 2;

-- flipping a bit of the version, algorithm or reserved byte is refused
-- before any key is touched
SELECT count(*) AS refused_as_malformed
  FROM regress_victim, generate_series(0, 7) AS bit, unnest(ARRAY[0, 1, 3]) AS i
 WHERE regress_try(format('SELECT %L::bytea::phi_guard.phi_ciphertext',
                          set_byte(raw, i, get_byte(raw, i) # (1 << bit)))) LIKE '22P03%';

-- the same checks through rewrap and decrypt_bytea
SELECT regress_try(format('SELECT phi_guard.phi_rewrap(%L::bytea::phi_guard.phi_ciphertext, %L)',
                          set_byte(raw, 20, get_byte(raw, 20) # 1), 'patients.ssn:7')) AS rewrap_tampered,
       regress_try(format('SELECT phi_guard.phi_decrypt_bytea(%L::bytea::phi_guard.phi_ciphertext, %L)',
                          set_byte(raw, 20, get_byte(raw, 20) # 1), 'patients.ssn:7')) AS decrypt_bytea_tampered
  FROM regress_victim;
DROP FUNCTION regress_decrypt_raw(bytea);
DROP TABLE regress_victim;
