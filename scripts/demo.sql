-- The phi_guard guided demo (run by `make demo`).
\pset footer off
-- functions that return nothing are run with \gset, which prints no empty table
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
-- every change is recorded from now on
SELECT phi_audit_enable('patients') \gset
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

\echo
\echo '== 8. Search an encrypted column through a blind index (an ordinary btree)'
ALTER TABLE patients ADD COLUMN mrn phi_ciphertext, ADD COLUMN mrn_bidx int8;
UPDATE patients SET mrn = phi_encrypt('MRN-00' || id, 'patients', 'patients.mrn:' || id),
                    mrn_bidx = phi_blind_index('MRN-00' || id, 'patients', 16);
CREATE INDEX patients_mrn_bidx ON patients (mrn_bidx);
SELECT id, name FROM patients
 WHERE mrn_bidx = phi_blind_index('MRN-002', 'patients', 16)
   AND phi_decrypt(mrn, 'patients.mrn:' || id) = 'MRN-002';

\echo
\echo '== 9. Tokenize phone numbers: same length, digits only, last 4 kept'
SELECT phi_token_domain_create('phone', 'patients', 'digits') \gset
SELECT v AS phone, phi_tokenize(v, 'phone') AS token, phi_detokenize(phi_tokenize(v, 'phone'), 'phone') AS back
  FROM (VALUES ('6175550123'), ('2125550188')) AS t(v);

\echo
\echo '== 10. One query, two audiences: a clinician sees the SSN, billing sees it masked'
CREATE ROLE demo_clinician IN ROLE phi_decryptor;
CREATE ROLE demo_billing IN ROLE phi_masked_reader;
GRANT SELECT ON patients TO demo_clinician, demo_billing;
SET ROLE demo_clinician;
SELECT id, name, phi_guard.phi_decrypt_masked(ssn, 'patients.ssn:' || id, 'ssn') AS ssn FROM patients ORDER BY id;
SET ROLE demo_billing;
SELECT id, name, phi_guard.phi_decrypt_masked(ssn, 'patients.ssn:' || id, 'ssn') AS ssn FROM patients ORDER BY id;
RESET ROLE;

\echo
\echo '== 11. Two clinics, one table: a signed context per request, tenant row-level security'
\echo '   The application signs {sub, tenant, roles, purpose, exp} with its Ed25519 key;'
\echo '   the database verifies it, so an SQL injection cannot claim another clinic.'
SELECT phi_context_key_add('demo-app', :'app_pub') \gset
CREATE TABLE visits (
  id        int PRIMARY KEY,
  clinic    text NOT NULL,
  clinician text NOT NULL,
  patient   text NOT NULL,
  note      phi_ciphertext NOT NULL
);
SELECT phi_audit_enable('visits') \gset
SET client_min_messages = error;          -- (the demo's superuser owns the table: phi_guard would warn)
SELECT phi_protect_table('visits', 'clinic') \gset
RESET client_min_messages;
-- within a clinic, clinicians see their own patients' visits (break-glass admits the rest)
DROP POLICY phi_guard_tenant_access ON visits;
CREATE POLICY own_patients ON visits FOR ALL USING (clinician = (SELECT phi_user_id()));
CREATE ROLE demo_app IN ROLE phi_app, phi_encryptor, phi_decryptor;
GRANT SELECT, INSERT ON visits TO demo_app;
-- (loaded by the demo's superuser, which row-level security does not restrict)
INSERT INTO visits VALUES
  (1, 'clinic-a', 'dr.grey',  'Ada',   phi_encrypt('chest pain, ECG normal', 'patients', 'visits.note:1')),
  (2, 'clinic-a', 'dr.yang',  'Alan',  phi_encrypt('follow-up, stable', 'patients', 'visits.note:2')),
  (3, 'clinic-b', 'dr.house', 'Grace', phi_encrypt('lupus ruled out', 'patients', 'visits.note:3'));
\echo '-- from here on, the application''s pooled role'
SET ROLE demo_app;
\echo '-- no context: no rows'
SELECT count(*) AS visible_rows FROM visits;
\echo '-- dr.grey at clinic-a: her own patient only'
BEGIN;
SELECT phi_set_context(:'tok_grey') \gset
SELECT phi_user_id() AS app_user, phi_tenant_id() AS tenant, phi_purpose() AS purpose;
SELECT id, clinic, clinician, patient, phi_decrypt(note, 'visits.note:' || id) AS note FROM visits ORDER BY id;
COMMIT;
\echo '-- dr.house at clinic-b: clinic-b only'
BEGIN;
SELECT phi_set_context(:'tok_house') \gset
SELECT id, clinic, clinician, patient FROM visits ORDER BY id;
COMMIT;
\echo '-- dr.grey''s user id with clinic-b, signed by a key that is not the application''s: refused'
\set ON_ERROR_STOP 0
SELECT phi_set_context(:'tok_forged');
\set ON_ERROR_STOP 1

\echo
\echo '== 12. Break-glass: an emergency, time-boxed, audited'
\echo '-- billing may not break the glass'
BEGIN;
SELECT phi_set_context(:'tok_bill') \gset
DO $$
BEGIN
  PERFORM phi_break_glass('need the chart for a claim', 10);
EXCEPTION WHEN OTHERS THEN
  RAISE NOTICE 'refused, SQLSTATE %: %', SQLSTATE, SQLERRM;
END
$$;
COMMIT;
\echo '-- dr.grey opens it for 15 minutes: every visit of clinic-a, still nothing of clinic-b'
BEGIN;
SELECT phi_set_context(:'tok_grey_er') \gset
SELECT phi_break_glass('patient Alan unconscious in the ER, no ID', 15) > now() AS opened;
SELECT id, clinic, clinician, patient, phi_decrypt(note, 'visits.note:' || id) AS note FROM visits ORDER BY id;
SELECT phi_break_glass_end() AS ended;
COMMIT;
RESET ROLE;

\echo
\echo '== 13. Decryption obeys the signed context: billing sees masks because the database says so'
\echo '   A rule on the key: clear text for contexts holding patient.read, the bound'
\echo '   mask for contexts holding only patient.read_masked, nothing for anyone else.'
SELECT phi_key_access('patients', 'patient.read', 'patient.read_masked') \gset
SELECT phi_mask_bind('patients', 'ssn') \gset
SELECT phi_permission_grant('billing', 'patient.read_masked') \gset
GRANT SELECT ON patients TO demo_app;
SET ROLE demo_app;
\echo '-- billing, through the same pooled role: the bound mask, whatever kind it asks for'
BEGIN;
SELECT phi_set_context(:'tok_bill') \gset
SELECT id, phi_decrypt_masked(ssn, 'patients.ssn:' || id, 'phone') AS ssn FROM patients ORDER BY id;
DO $$
BEGIN
  PERFORM phi_decrypt(ssn, 'patients.ssn:' || id) FROM patients;
EXCEPTION WHEN insufficient_privilege THEN
  RAISE NOTICE 'clear text refused, SQLSTATE %: %', SQLSTATE, SQLERRM;
END
$$;
COMMIT;
\echo '-- dr.grey, a clinician: clear text'
BEGIN;
SELECT phi_set_context(:'tok_grey') \gset
SELECT id, phi_decrypt(ssn, 'patients.ssn:' || id) AS ssn FROM patients ORDER BY id;
COMMIT;
\echo '-- no context (an SQL injection through the pooled role): refused'
DO $$
BEGIN
  PERFORM phi_decrypt(ssn, 'patients.ssn:' || id) FROM patients;
EXCEPTION WHEN insufficient_privilege THEN
  RAISE NOTICE 'refused, SQLSTATE %: %', SQLSTATE, SQLERRM;
END
$$;
RESET ROLE;

\echo
\echo '== 14. The audit log: who did what, for whom and why, sealed into a hash chain'
SELECT phi_audit_seal() AS entries_sealed;
SELECT r->>'kind' AS kind, r->>'table' AS "table", r->>'row_key' AS row_key,
       r->>'columns' AS columns, r->>'role' AS role, r->>'app_user' AS app_user,
       r->>'tenant' AS tenant, r->>'purpose' AS purpose,
       coalesce(r->'detail'->>'count', r->'detail'->>'reason') AS "count / reason"
  FROM (SELECT record::jsonb AS r FROM phi_guard.audit_log ORDER BY xid, id) AS e;
SELECT * FROM phi_audit_verify();

\echo
\echo '== 15. A superuser quietly edits one entry: verification catches it'
SET session_replication_role = replica;   -- bypasses the append-only triggers
UPDATE phi_guard.audit_log SET record = replace(record, '"kind":"update"', '"kind":"insert"')
 WHERE record LIKE '%"kind":"update"%' AND xid = (SELECT min(xid) FROM phi_guard.audit_log WHERE record LIKE '%"kind":"update"%');
RESET session_replication_role;
SELECT ok, first_bad_block, problem FROM phi_audit_verify();

\echo
\echo '== 16. Who saw Ada''s SSN? The accounting of disclosures (45 CFR 164.528)'
\echo '   Every read named the rows it revealed by their aad (patients.ssn:1 is Ada''s SSN);'
\echo '   in durable mode each was on disk before the value left the server.'
SELECT to_char(ts, 'HH24:MI:SS.MS') AS at, kind, db_user, app_user, tenant, purpose,
       request_id, key
  FROM phi_disclosures('patients.ssn:1');

\echo
\echo '== 17. Alerts: sealing watches the log and notifies (NOTIFY phi_guard_alert)'
\echo '   This session listens, as a monitoring client would. dr.grey breaks the glass'
\echo '   again; the seal that takes the entry in sends the alert, and psql prints it.'
LISTEN phi_guard_alert;
SET ROLE demo_app;
BEGIN;
SELECT phi_set_context(:'tok_grey_er') \gset
SELECT phi_break_glass('patient Alan back in the ER, chart needed', 15) > now() AS opened;
SELECT phi_break_glass_end() AS ended;
COMMIT;
RESET ROLE;
SELECT phi_audit_seal() >= 0 AS sealed;
\echo '-- every alert so far, as phi_auditor reads them (the view phi_guard.alerts)'
SELECT to_char(ts, 'HH24:MI:SS.MS') AS at, kind, db_user, app_user, tenant, detail
  FROM phi_guard.alerts ORDER BY ts;
