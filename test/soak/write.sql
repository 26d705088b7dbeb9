-- soak workload (test/t/009_soak.pl): an audited write to the protected
-- table under a context of a random tenant; the row's name and MRN are
-- encrypted with aads bound to its id, with a blind index and a token.
\set t random(1, 4)
\set v random(1, 5000)
BEGIN;
SELECT phi_guard.phi_set_context(token) FROM soak_tokens WHERE n = :t;
WITH i AS (SELECT nextval('patients_id_seq') AS id)
INSERT INTO patients (id, tenant, name_ct, mrn_ct, mrn_bidx, mrn_token)
SELECT i.id, phi_guard.phi_tenant_id(),
       phi_guard.phi_encrypt('Patient ' || :v, 'patients', 'patients.name:' || i.id),
       phi_guard.phi_encrypt('MRN-' || :v, 'patients', 'patients.mrn:' || i.id),
       phi_guard.phi_blind_index('MRN-' || :v, 'patients', 48),
       phi_guard.phi_tokenize('MRN-' || :v, 'mrn')
  FROM i;
COMMIT;
