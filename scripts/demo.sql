-- The phi_guard guided demo (run by `make demo`).
\pset footer off
\set VERBOSITY default
\set SHOW_CONTEXT never

\echo
\echo '== 1. Install phi_guard and create a data key'
\echo '   The master key was read from a 0600 file at server start; SQL never sees it.'
CREATE EXTENSION phi_guard;
SET search_path = public, phi_guard;
SELECT phi_key_create('patients') AS key_id;
SELECT id, name, version, state, octet_length(wrapped_key) AS wrapped_bytes FROM phi_guard.keys;

\echo
\echo '== 2. Encrypt a patient row; aad binds each SSN to its row'
CREATE TABLE patients (
  id   int PRIMARY KEY,
  name text NOT NULL,
  ssn  phi_ciphertext NOT NULL
);
INSERT INTO patients VALUES
  (1, 'Ada Lovelace', phi_encrypt('123-45-6789', 'patients', 'patients.ssn:1')),
  (2, 'Alan Turing',  phi_encrypt('987-65-4321', 'patients', 'patients.ssn:2'));
SELECT id, name, left(ssn::text, 44) || '…' AS ssn_as_stored FROM patients ORDER BY id;

\echo
\echo '== 3. Decrypt it (a role granted phi_decryptor can do this)'
SELECT id, name, phi_decrypt(ssn, 'patients.ssn:' || id) AS ssn FROM patients ORDER BY id;

\echo
\echo '== 4. Copy Ada''s ciphertext onto Alan''s row: it no longer decrypts'
UPDATE patients SET ssn = (SELECT ssn FROM patients WHERE id = 1) WHERE id = 2;
DO $$
BEGIN
  PERFORM phi_decrypt(ssn, 'patients.ssn:' || id) FROM patients WHERE id = 2;
EXCEPTION WHEN OTHERS THEN
  RAISE NOTICE 'refused, SQLSTATE %: % (no PHI in the message)', SQLSTATE, SQLERRM;
END
$$;
UPDATE patients SET ssn = phi_encrypt('987-65-4321', 'patients', 'patients.ssn:2') WHERE id = 2;

\echo
\echo '== 5. Rotate the key: new values use version 2, old ones still decrypt'
SELECT phi_key_rotate('patients') AS new_key_id;
SELECT name, version, state FROM phi_guard.keys ORDER BY version;

\echo
\echo '== 6. Rewrap every row onto version 2 without plaintext leaving the server'
UPDATE patients SET ssn = phi_rewrap(ssn, 'patients.ssn:' || id);
SELECT k.version AS key_version, count(*) AS rows
  FROM patients p JOIN phi_guard.keys k
    ON pg_catalog.int4send(k.id) = substring(p.ssn::bytea from 5 for 4)
 GROUP BY 1 ORDER BY 1;

\echo
\echo '== 7. Crypto-shred version 1: nothing depends on it any more'
SELECT phi_key_destroy('patients', 1) AS destroyed;
SELECT id, name, phi_decrypt(ssn, 'patients.ssn:' || id) AS ssn FROM patients ORDER BY id;
