-- soak workload (test/t/009_soak.pl): protected reads.  Without a context
-- no row is visible; with one, only the tenant's rows, and each of the
-- newest 20 decrypts with its own aads to a consistent name and MRN whose
-- blind index and deterministic token match what the writer stored.
-- Any violated property raises an error, which aborts the pgbench client.
\set t random(1, 4)
SELECT soak_assert(count(*) = 0, 'no row visible without a context') FROM patients;
BEGIN;
SELECT phi_guard.phi_set_context(token) FROM soak_tokens WHERE n = :t;
SELECT soak_assert(count(*) > 0
                   AND bool_and(p.tenant = 'tenant-' || :t)
                   AND bool_and(p.name = 'Patient ' || substr(p.mrn, 5))
                   AND bool_and(p.mrn_bidx = phi_guard.phi_blind_index(p.mrn, 'patients', 48))
                   AND bool_and(p.mrn_token = phi_guard.phi_tokenize(p.mrn, 'mrn')),
                   'protected read and decrypt')
  FROM (SELECT id, tenant, mrn_bidx, mrn_token,
               phi_guard.phi_decrypt(name_ct, 'patients.name:' || id) AS name,
               phi_guard.phi_decrypt(mrn_ct, 'patients.mrn:' || id) AS mrn
          FROM (SELECT * FROM patients ORDER BY id DESC LIMIT 20) l) p;
COMMIT;
