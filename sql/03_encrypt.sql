-- Rule: phi_encrypt/phi_decrypt round-trip any text or bytea (empty,
-- multi-byte, several MB), NULL gives NULL, the raw bytes follow SPEC §3
-- exactly, every encryption draws a fresh nonce, and aad binds a value to
-- its context.
SET search_path = public, phi_guard;
SELECT phi_key_create('regress_enc') AS enc_id \gset

-- round trips
SELECT v = phi_decrypt(phi_encrypt(v, 'regress_enc')) AS text_round_trip, octet_length(v) AS bytes
  FROM (VALUES ('123-45-6789'), (''), ('Zoë Ñandú — 患者 🩺'), (repeat('x', 5000000)),
               (repeat('é', 1000))) AS t(v);
SELECT v = phi_decrypt_bytea(phi_encrypt(v, 'regress_enc')) AS bytea_round_trip, octet_length(v) AS bytes
  FROM (VALUES ('\x'::bytea), ('\x00'::bytea), ('\x00ff00ff'::bytea),
               (decode(repeat('00ff', 2000000), 'hex'))) AS t(v);
-- with aad
SELECT phi_decrypt(phi_encrypt('123-45-6789', 'regress_enc', 'clinic.patients.ssn:1'),
                   'clinic.patients.ssn:1') AS with_aad,
       phi_decrypt(phi_encrypt('123-45-6789', 'regress_enc', ''), '') AS with_empty_aad,
       phi_decrypt(phi_encrypt('x', 'regress_enc', 'ünïcødé aad'), 'ünïcødé aad') AS with_unicode_aad;

-- NULL in, NULL out; NULL aad means "no aad"; NULL key name is an error
SELECT phi_encrypt(NULL::text, 'regress_enc') IS NULL AS enc_null_text,
       phi_encrypt(NULL::bytea, 'regress_enc') IS NULL AS enc_null_bytea,
       phi_decrypt(NULL) IS NULL AS dec_null,
       phi_decrypt_bytea(NULL) IS NULL AS dec_bytea_null,
       phi_rewrap(NULL) IS NULL AS rewrap_null,
       phi_decrypt(phi_encrypt('a', 'regress_enc', NULL), NULL) AS null_aad;
SELECT regress_try($$SELECT phi_guard.phi_encrypt('a', NULL)$$);
SELECT regress_try($$SELECT phi_guard.phi_encrypt('a', 'no_such_key')$$);
SELECT regress_try($$SELECT phi_guard.phi_encrypt('a', '')$$);

-- SPEC §3 layout: version, algorithm, flags, reserved, key id, sizes
CREATE TABLE regress_fmt AS
SELECT kind, pt_len, ct::bytea AS raw, ct::text AS txt FROM (VALUES
  ('text', 11, phi_encrypt('123-45-6789', 'regress_enc')),
  ('text+aad', 11, phi_encrypt('123-45-6789', 'regress_enc', 'ctx')),
  ('text+empty aad', 11, phi_encrypt('123-45-6789', 'regress_enc', '')),
  ('bytea', 3, phi_encrypt('\x010203'::bytea, 'regress_enc')),
  ('bytea+aad', 3, phi_encrypt('\x010203'::bytea, 'regress_enc', 'ctx')),
  ('empty', 0, phi_encrypt('', 'regress_enc')),
  ('utf8', 11, phi_encrypt('Zoë 患者', 'regress_enc'))) AS t(kind, pt_len, ct);
SELECT kind, get_byte(raw, 0) AS version, get_byte(raw, 1) AS alg, get_byte(raw, 2) AS flags,
       get_byte(raw, 3) AS reserved,
       substring(raw from 5 for 4) = int4send(:enc_id) AS key_id_big_endian,
       octet_length(raw) - pt_len AS overhead,
       left(txt, 5) AS prefix,
       decode(substr(txt, 6), 'base64') = raw AS text_is_base64_of_raw
  FROM regress_fmt ORDER BY kind;

-- fresh nonce every time: 2000 encryptions of one value, all nonces distinct
SELECT count(DISTINCT substring(c::bytea from 9 for 12)) AS distinct_nonces,
       count(DISTINCT c::bytea) AS distinct_values
  FROM (SELECT phi_encrypt('same value', 'regress_enc') AS c FROM generate_series(1, 2000)) AS s;

-- aad binding: a value copied to another row does not decrypt there
CREATE TABLE regress_patients (id int PRIMARY KEY, ssn phi_ciphertext);
INSERT INTO regress_patients
  SELECT g, phi_encrypt(format('000-00-%s', lpad(g::text, 4, '0')), 'regress_enc', 'clinic.patients.ssn:' || g)
  FROM generate_series(1, 3) g;
SELECT id, phi_decrypt(ssn, 'clinic.patients.ssn:' || id) FROM regress_patients ORDER BY id;
UPDATE regress_patients SET ssn = (SELECT ssn FROM regress_patients WHERE id = 1) WHERE id = 2;
SELECT regress_try($$SELECT phi_guard.phi_decrypt(ssn, 'clinic.patients.ssn:' || id) FROM regress_patients WHERE id = 2$$);
-- wrong aad, missing aad, aad where none was given, NULL vs empty
SELECT regress_try($$SELECT phi_guard.phi_decrypt(phi_guard.phi_encrypt('x', 'regress_enc', 'a'), 'b')$$) AS wrong_aad,
       regress_try($$SELECT phi_guard.phi_decrypt(phi_guard.phi_encrypt('x', 'regress_enc', 'a'))$$) AS missing_aad,
       regress_try($$SELECT phi_guard.phi_decrypt(phi_guard.phi_encrypt('x', 'regress_enc'), 'a')$$) AS unexpected_aad;
SELECT regress_try($$SELECT phi_guard.phi_decrypt(phi_guard.phi_encrypt('x', 'regress_enc', ''))$$) AS empty_vs_null,
       regress_try($$SELECT phi_guard.phi_decrypt(phi_guard.phi_encrypt('x', 'regress_enc'), '')$$) AS null_vs_empty;

-- bytea values are not returned as text; text values may be read as bytes
SELECT regress_try($$SELECT phi_guard.phi_decrypt(phi_guard.phi_encrypt('\x00ff'::bytea, 'regress_enc'))$$);
SELECT phi_decrypt_bytea(phi_encrypt('Zoë', 'regress_enc')) = convert_to('Zoë', 'UTF8') AS text_as_bytes;

-- volatility and parallel safety as documented
SELECT p.oid::regprocedure, provolatile, proparallel, prosecdef
  FROM pg_proc p WHERE pronamespace = 'phi_guard'::regnamespace
   AND proname IN ('phi_encrypt', 'phi_decrypt', 'phi_decrypt_bytea', 'phi_rewrap')
 ORDER BY p.oid::regprocedure::text;

-- no message contains the plaintext or aad
SELECT count(*) AS messages_with_data FROM (VALUES
  (regress_try($$SELECT phi_guard.phi_decrypt(phi_guard.phi_encrypt('SECRET-PLAINTEXT', 'regress_enc', 'SECRET-AAD'), 'OTHER-AAD')$$)),
  (regress_try($$SELECT phi_guard.phi_decrypt(phi_guard.phi_encrypt('\x5345435245542d504c41494e54455854'::bytea, 'regress_enc'))$$)),
  (regress_try($$SELECT phi_guard.phi_encrypt('SECRET-PLAINTEXT', 'SECRET-KEYNAME-XX')$$))) AS m(msg)
 WHERE msg ~ 'SECRET-(PLAINTEXT|AAD)|OTHER-AAD|phi1:';
DROP TABLE regress_fmt, regress_patients;
