-- Rule: phi_ciphertext holds only well-formed SPEC §3 values, whatever way
-- they arrive (text, bytea cast, binary); it round-trips exactly and has no
-- comparison operators. Errors never echo the input.
SET search_path = public, phi_guard;

-- a well-formed value: version 1, alg 1, flags 0, reserved 0, key id 258,
-- 12-byte nonce, 0-byte body, 16-byte tag (36 bytes)
CREATE TABLE regress_raw AS
  SELECT decode('0101000000000102' || repeat('ab', 12) || repeat('cd', 16), 'hex') AS b;
SELECT b::phi_ciphertext AS text_form FROM regress_raw;
SELECT b::phi_ciphertext::text::phi_ciphertext::bytea = b AS text_round_trip,
       b::phi_ciphertext::bytea = b AS bytea_round_trip
  FROM regress_raw;
-- binary send/recv: COPY in binary format out and back in gives the same bytes
SELECT typreceive, typsend, typstorage FROM pg_type WHERE oid = 'phi_ciphertext'::regtype;
CREATE TABLE regress_bin (c phi_ciphertext);
CREATE TABLE regress_bin2 (c phi_ciphertext);
INSERT INTO regress_bin SELECT b::phi_ciphertext FROM regress_raw;
DO $$
DECLARE f text := '/tmp/phi_guard_regress_bin_' || pg_backend_pid();
BEGIN
  EXECUTE format('COPY regress_bin TO %L (FORMAT binary)', f);
  EXECUTE format('COPY regress_bin2 FROM PROGRAM %L (FORMAT binary)', format('cat %s && rm -f %s', f, f));
END $$;
SELECT a.c::bytea = b.c::bytea AS binary_round_trip FROM regress_bin a, regress_bin2 b;
DROP TABLE regress_bin, regress_bin2;

-- text input: anything that is not phi1: + canonical base64 of a valid value
SELECT input, regress_try(format('SELECT %L::phi_guard.phi_ciphertext', input)) AS result
  FROM (VALUES
    (''),
    ('123-45-6789'),
    ('phi1:'),
    ('PHI1:AQEAAAAAAQKrq6urq6urq6urq6vNzc3Nzc3Nzc3Nzc3Nzc3N'),
    ('phi1: AQEAAAAAAQKrq6urq6urq6urq6vNzc3Nzc3Nzc3Nzc3Nzc3N'),
    ('phi1:AQEAAAAAAQKrq6urq6urq6urq6vNzc3Nzc3Nzc3Nzc3Nzc3N '),
    ('phi1:AQEAAAAAAQKrq6urq6urq6urq6vNzc3Nzc3Nzc3Nzc3Nzc3'),
    ('phi1:AQEAAAAAAQKrq6urq6urq6urq6vNzc3Nzc3Nzc3Nzc3Nzc3N=='),
    ('phi1:AQEAAAAAAQKrq6urq6urq6urq6vNzc3Nzc3Nzc3Nzc3Nzc3-'),
    ('phi1:AAAA'),
    ('phi1:AQEAAAAAAQKrq6urq6urq6urq6vNzc3Nzc3Nzc3Nzc3Nzc0=')
  ) AS t(input);
-- the valid text of the same value is accepted
SELECT regress_try($$SELECT 'phi1:AQEAAAAAAQKrq6urq6urq6urq6vNzc3Nzc3Nzc3Nzc3Nzc3N'::phi_guard.phi_ciphertext$$);

-- bytea cast: every header field is checked
SELECT what, regress_try(format('SELECT %L::bytea::phi_guard.phi_ciphertext', b)) AS result
  FROM (SELECT 'valid' AS what, b FROM regress_raw
        UNION ALL SELECT '35 bytes', substring(b from 1 for 35) FROM regress_raw
        UNION ALL SELECT 'empty', ''::bytea
        UNION ALL SELECT 'version 2', set_byte(b, 0, 2) FROM regress_raw
        UNION ALL SELECT 'version 0', set_byte(b, 0, 0) FROM regress_raw
        UNION ALL SELECT 'algorithm 2', set_byte(b, 1, 2) FROM regress_raw
        UNION ALL SELECT 'flags 3 (aad + bytea)', set_byte(b, 2, 3) FROM regress_raw
        UNION ALL SELECT 'unknown flag 4', set_byte(b, 2, 4) FROM regress_raw
        UNION ALL SELECT 'unknown flag 128', set_byte(b, 2, 128) FROM regress_raw
        UNION ALL SELECT 'reserved 1', set_byte(b, 3, 1) FROM regress_raw) AS cases;

-- no comparison operators: equality, ordering, DISTINCT, GROUP BY all refuse
SELECT regress_try('SELECT b::phi_guard.phi_ciphertext = b::phi_guard.phi_ciphertext FROM regress_raw');
SELECT regress_try('SELECT b::phi_guard.phi_ciphertext < b::phi_guard.phi_ciphertext FROM regress_raw');
SELECT regress_try('SELECT DISTINCT b::phi_guard.phi_ciphertext FROM regress_raw');
SELECT regress_try('SELECT 1 FROM regress_raw ORDER BY b::phi_guard.phi_ciphertext');
-- and no implicit cast: a text or bytea column cannot silently receive one
SELECT castcontext, castsource::regtype, casttarget::regtype
  FROM pg_cast WHERE castsource = 'phi_ciphertext'::regtype OR casttarget = 'phi_ciphertext'::regtype
 ORDER BY 2, 3;
CREATE TABLE regress_typed (c phi_ciphertext);
SELECT regress_try($$INSERT INTO regress_typed VALUES ('plain text ssn 123-45-6789')$$);
SELECT regress_try($$INSERT INTO regress_typed VALUES ('\x0101'::bytea)$$);
-- no error message echoes the rejected input
SELECT count(*) AS messages_echoing_input FROM (VALUES
  (regress_try($$SELECT 'secret-ssn-123456789'::phi_guard.phi_ciphertext$$)),
  (regress_try($$SELECT 'phi1:c2VjcmV0LXNzbi0xMjM0NTY3ODk='::phi_guard.phi_ciphertext$$)),
  (regress_try($$SELECT 'secret-ssn-123456789'::bytea::phi_guard.phi_ciphertext$$))) AS m(msg)
 WHERE msg LIKE '%secret%' OR msg LIKE '%c2VjcmV0%' OR msg LIKE '%\\x%';
DROP TABLE regress_raw, regress_typed;
