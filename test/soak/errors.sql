-- soak workload (test/t/009_soak.pl): expected errors, each caught in its
-- own block (a subtransaction) and counted in soak_expected: decrypting
-- with the wrong aad, an expired token, a token signed with an unknown
-- key, a write for another tenant, detokenizing a token never issued.
-- An error other than the one expected, or no error, escapes the DO
-- block and aborts the pgbench client.
\set t random(1, 4)
\set v random(1, 5000)
BEGIN;
DO $$
DECLARE
  ct phi_guard.phi_ciphertext;
BEGIN
  ct := phi_guard.phi_encrypt('MRN-' || :v, 'patients', 'right:' || :v);
  BEGIN
    PERFORM phi_guard.phi_decrypt(ct, 'wrong:' || :v);
    RAISE EXCEPTION 'decrypt with the wrong aad succeeded';
  EXCEPTION WHEN SQLSTATE 'PH001' THEN
    INSERT INTO soak_expected (kind) VALUES ('wrong_aad');
  END;
  BEGIN
    PERFORM phi_guard.phi_set_context(token) FROM soak_tokens WHERE n = 0;
    RAISE EXCEPTION 'an expired token was accepted';
  EXCEPTION WHEN invalid_authorization_specification THEN
    INSERT INTO soak_expected (kind) VALUES ('expired_token');
  END;
  BEGIN
    PERFORM phi_guard.phi_set_context(token) FROM soak_tokens WHERE n = -1;
    RAISE EXCEPTION 'a token with a bad signature was accepted';
  EXCEPTION WHEN invalid_authorization_specification THEN
    INSERT INTO soak_expected (kind) VALUES ('bad_signature');
  END;
  PERFORM phi_guard.phi_set_context(token) FROM soak_tokens WHERE n = :t;
  BEGIN
    INSERT INTO patients (tenant, name_ct)
      VALUES ('tenant-' || (:t % 4 + 1), phi_guard.phi_encrypt('Mallory', 'patients'));
    RAISE EXCEPTION 'a row for another tenant was accepted';
  EXCEPTION WHEN insufficient_privilege THEN
    INSERT INTO soak_expected (kind) VALUES ('other_tenant');
  END;
  BEGIN
    PERFORM phi_guard.phi_detokenize('tok-never-issued-' || :v, 'mrn');
    RAISE EXCEPTION 'a token never issued detokenized';
  EXCEPTION WHEN no_data_found THEN
    INSERT INTO soak_expected (kind) VALUES ('unknown_token');
  END;
END
$$;
COMMIT;
