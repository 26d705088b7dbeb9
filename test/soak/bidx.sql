-- soak workload (test/t/009_soak.pl): equality search through the blind
-- index under a context: every row found is the tenant's and decrypts to
-- the value searched for (48 bits: no collision among 5000 values).
\set t random(1, 4)
\set v random(1, 5000)
BEGIN;
SELECT phi_guard.phi_set_context(token) FROM soak_tokens WHERE n = :t;
SELECT soak_assert(coalesce(bool_and(tenant = 'tenant-' || :t
                                     AND phi_guard.phi_decrypt(mrn_ct, 'patients.mrn:' || id) = 'MRN-' || :v), true),
                   'blind index lookup')
  FROM patients WHERE mrn_bidx = phi_guard.phi_blind_index('MRN-' || :v, 'patients', 48);
COMMIT;
