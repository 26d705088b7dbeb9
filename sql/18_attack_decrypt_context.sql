-- Rule (SPEC §5 phi_key_access, phi_mask_bind): decryption obeys the
-- signed context, not only the database role.  A key with an access rule
-- is read in clear (phi_decrypt, phi_decrypt_bytea, phi_decrypt_masked,
-- phi_detokenize of its token domains) only under a context one of whose
-- roles holds the rule's permission; a context with only the masked
-- permission gets the key's bound mask from phi_decrypt_masked and 42501
-- from the rest; no context, or neither permission, is 42501 with a
-- message naming the key and the permission, never a value.  A masked
-- reader gets the kind a key administrator bound to the key (a full mask
-- without one), whatever kind it asks for.  Keys without a rule behave as
-- in 0.2.0, and phi_check_config names them while contexts are in use.
-- phi_rewrap returns no plaintext and ignores the rules.  Written as the
-- attacks of issue 11: the application's one pooled role (it holds
-- phi_decryptor, as such roles do) under a billing context, the same role
-- driven by an SQL injection without a context, and masked readers asking
-- for a revealing kind.
\set VERBOSITY terse
SET search_path = public, phi_guard;
\getenv abs_srcdir PG_ABS_SRCDIR
\set signer 'python3 ' :abs_srcdir '/test/context/sign_context.py'
\set pem `:signer pem regress_k18`
SELECT phi_context_key_add('regress_k18', :'pem');
\set clinician `:signer token regress_k18 sub=dr-ada tenant=clinic-a roles=clinician exp=+600`
\set billing `:signer token regress_k18 sub=bill tenant=clinic-a roles=billing exp=+600`
\set visitor `:signer token regress_k18 sub=vic tenant=clinic-a roles=visitor exp=+600`

CREATE ROLE regress_dc_admin IN ROLE phi_key_admin;
-- the application's pooled role: it may do everything the application does
CREATE ROLE regress_dc_app IN ROLE phi_app, phi_encryptor, phi_decryptor, phi_detokenizer;
CREATE ROLE regress_dc_masked IN ROLE phi_app, phi_masked_reader;

-- Set-up, as a key administrator: SSNs and birth dates readable in clear
-- with patient.read (the built-in clinician permission), masked with
-- billing.read; notes under a key without a rule
SET ROLE regress_dc_admin;
SELECT phi_key_create(k) > 0 AS created
  FROM unnest(ARRAY['regress_dc_ssn', 'regress_dc_dob', 'regress_dc_note']) k;
SELECT phi_key_access('regress_dc_ssn', 'patient.read', 'billing.read'),
       phi_key_access('regress_dc_dob', 'patient.read', 'billing.read'),
       phi_mask_bind('regress_dc_ssn', 'ssn'),
       phi_mask_bind('regress_dc_dob', 'dob');
SELECT phi_permission_grant('billing', 'billing.read');
SELECT phi_token_domain_create('regress_dc_ssn_tok', 'regress_dc_ssn', 'ssn');
SELECT name, permission, masked_permission, mask_kind FROM phi_guard.key_access
 WHERE name LIKE 'regress\_dc\_%' ORDER BY name;
-- what a key administrator may not do
SELECT regress_try($$SELECT phi_key_access('regress_dc_nope', 'patient.read')$$) AS unknown_key,
       regress_try($$SELECT phi_key_access('regress_dc_ssn', NULL, 'billing.read')$$) AS masked_alone,
       regress_try($$SELECT phi_key_access('regress_dc_ssn', '')$$) AS empty_permission,
       regress_try($$SELECT phi_mask_bind('regress_dc_ssn', 'credit_card')$$) AS unknown_kind,
       regress_try($$SELECT phi_key_access(NULL, 'patient.read')$$) AS null_key;
RESET ROLE;

CREATE TABLE regress_dc_patients (id int PRIMARY KEY, ssn phi_ciphertext, dob phi_ciphertext,
                                  note phi_ciphertext, ssn_tok text);
GRANT SELECT, INSERT ON regress_dc_patients TO regress_dc_app;
GRANT SELECT ON regress_dc_patients TO regress_dc_masked;
SET ROLE regress_dc_app;
BEGIN;
SELECT phi_set_context(:'clinician');
INSERT INTO regress_dc_patients VALUES
  (1, phi_encrypt('123-45-6789', 'regress_dc_ssn', 'regress_dc:ssn:1'),
      phi_encrypt('1980-07-14', 'regress_dc_dob', 'regress_dc:dob:1'),
      phi_encrypt('allergic to penicillin', 'regress_dc_note', 'regress_dc:note:1'),
      phi_tokenize('123-45-6789', 'regress_dc_ssn_tok'));
COMMIT;
RESET ROLE;
-- the attacks use these; they show the outcome, never a value
CREATE FUNCTION regress_dc_read(fn text, col text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  RETURN regress_try_secrets(format('SELECT %s(%I, %L) FROM regress_dc_patients', fn, col, 'regress_dc:' || col || ':1'),
                             ARRAY['123-45-6789', '1980-07-14', 'allergic']);
END
$$;

------------------------------------------------------------------------
-- Attack 1: a billing context through the shared pooled role.  Before
-- 0.3.0 the role's phi_decryptor decrypted everything; now billing gets
-- masks, and only masks
------------------------------------------------------------------------
SET ROLE regress_dc_app;
BEGIN;
SELECT phi_set_context(:'billing');
SELECT regress_dc_read('phi_decrypt', 'ssn') AS decrypt_ssn,
       regress_dc_read('phi_decrypt_bytea', 'dob') AS decrypt_bytea_dob;
SELECT regress_try_secrets($$SELECT phi_detokenize(ssn_tok, 'regress_dc_ssn_tok') FROM regress_dc_patients$$,
                           ARRAY['123-45-6789']) AS detokenize;
-- the bound masks, whatever kind is asked for
SELECT phi_decrypt_masked(ssn, 'regress_dc:ssn:1', 'ssn') AS ssn_as_ssn,
       phi_decrypt_masked(ssn, 'regress_dc:ssn:1', 'zip') AS ssn_as_zip,
       phi_decrypt_masked(dob, 'regress_dc:dob:1', 'phone') AS dob_as_phone
  FROM regress_dc_patients;
COMMIT;
-- a clinician context through the same role reads in clear
BEGIN;
SELECT phi_set_context(:'clinician');
SELECT phi_decrypt(ssn, 'regress_dc:ssn:1') AS ssn, phi_decrypt_bytea(dob, 'regress_dc:dob:1') AS dob_bytes,
       phi_decrypt_masked(ssn, 'regress_dc:ssn:1', 'zip') AS masked_call_full_reader,
       phi_detokenize(ssn_tok, 'regress_dc_ssn_tok') AS detokenized
  FROM regress_dc_patients;
-- a context without either permission reads nothing
SELECT phi_set_context(:'visitor');
SELECT regress_dc_read('phi_decrypt', 'ssn') AS visitor_decrypt;
SELECT regress_try_secrets($$SELECT phi_decrypt_masked(ssn, 'regress_dc:ssn:1', 'ssn') FROM regress_dc_patients$$,
                           ARRAY['6789']) AS visitor_masked;
-- the decision follows the context within one statement: clinician for
-- the first row, billing for the second
SELECT regress_try($$SELECT phi_set_context(t), phi_decrypt(p.ssn, 'regress_dc:ssn:1')
                       FROM (VALUES (1, '$$ || :'clinician' || $$'), (2, '$$ || :'billing' || $$')) v(n, t),
                            regress_dc_patients p ORDER BY v.n$$) AS context_switch;
COMMIT;

------------------------------------------------------------------------
-- Attack 2: an SQL injection through the application's role, without a
-- context (it cannot sign one)
------------------------------------------------------------------------
SELECT regress_dc_read('phi_decrypt', 'ssn') AS decrypt_ssn,
       regress_dc_read('phi_decrypt', 'dob') AS decrypt_dob;
SELECT regress_try_secrets($$SELECT phi_decrypt_masked(ssn, 'regress_dc:ssn:1', 'ssn') FROM regress_dc_patients$$,
                           ARRAY['6789']) AS decrypt_masked;
-- the token vault answers nothing either, not even whether a token exists
SELECT regress_try_secrets($$SELECT phi_detokenize(ssn_tok, 'regress_dc_ssn_tok') FROM regress_dc_patients$$,
                           ARRAY['123-45-6789']) AS known_token,
       regress_try($$SELECT phi_detokenize('000-00-0000', 'regress_dc_ssn_tok')$$) AS unknown_token;
-- a context set and cleared again is no context
BEGIN;
SELECT phi_set_context(:'clinician');
SELECT phi_clear_context();
SELECT regress_dc_read('phi_decrypt', 'ssn') AS after_clear;
COMMIT;
-- rewrapping returns no plaintext: allowed without a context
SELECT phi_rewrap(ssn, 'regress_dc:ssn:1') IS NOT NULL AS rewrapped FROM regress_dc_patients;
-- a key without a rule behaves as in 0.2.0: the database role decides
SELECT phi_decrypt(note, 'regress_dc:note:1') AS note_without_rule FROM regress_dc_patients;
-- nor can the role give itself a rule, a binding or a permission
SELECT regress_try($$SELECT phi_key_access('regress_dc_ssn', 'app.read')$$) AS set_rule,
       regress_try($$SELECT phi_mask_bind('regress_dc_ssn', 'zip')$$) AS bind_kind,
       regress_try($$DELETE FROM phi_guard.key_access$$) AS delete_rules,
       regress_try($$SELECT phi_permission_grant('billing', 'patient.read')$$) AS grant_permission;
RESET ROLE;

------------------------------------------------------------------------
-- Attack 3: a masked reader asks for the kind that shows the most
------------------------------------------------------------------------
SET ROLE regress_dc_masked;
BEGIN;
SELECT phi_set_context(:'clinician');
-- phone on a date would show month and day, zip on an SSN its first digits
SELECT phi_decrypt_masked(dob, 'regress_dc:dob:1', 'phone') AS dob_as_phone,
       phi_decrypt_masked(ssn, 'regress_dc:ssn:1', 'zip') AS ssn_as_zip,
       phi_decrypt_masked(note, 'regress_dc:note:1', 'name') AS unbound_note
  FROM regress_dc_patients;
-- the database role still bounds the context: no clear values
SELECT regress_dc_read('phi_decrypt', 'ssn') AS masked_reader_decrypt;
COMMIT;
RESET ROLE;

------------------------------------------------------------------------
-- Rule changes reach every session's next statement (the rules are
-- cached with the keys); removing the rule restores 0.2.0 behaviour
------------------------------------------------------------------------
SET ROLE regress_dc_app;
SELECT regress_dc_read('phi_decrypt', 'dob') AS before_removal;
SET ROLE regress_dc_admin;
SELECT phi_key_access('regress_dc_dob', NULL);
SET ROLE regress_dc_app;
SELECT regress_dc_read('phi_decrypt', 'dob') AS after_removal;
SET ROLE regress_dc_admin;
SELECT phi_key_access('regress_dc_dob', 'patient.read', 'billing.read');
SET ROLE regress_dc_app;
SELECT regress_dc_read('phi_decrypt', 'dob') AS rule_again;
RESET ROLE;

------------------------------------------------------------------------
-- phi_check_config names the keys without a rule while contexts are in
-- use (context keys are registered above)
------------------------------------------------------------------------
SELECT setting, value, risk, advice ~ '(keys |, )regress_dc_note(,| in clear)' AS names_note,
       advice ~ '(keys |, )regress_dc_(ssn|dob)(,| in clear)' AS names_ruled
  FROM phi_check_config() WHERE setting = 'phi_key_access';

------------------------------------------------------------------------
-- Audit: rule and binding changes are entries; refusals revealed nothing
-- and wrote no decrypt entry of the refused role under billing
------------------------------------------------------------------------
SELECT phi_audit_seal() >= 0 AS sealed;
SELECT r->>'kind' AS kind, r->'detail' AS detail
  FROM phi_guard.audit_log, LATERAL (SELECT record::jsonb AS r) j
 WHERE r->>'kind' IN ('key_access', 'mask_bind') AND r->'detail'->>'key' LIKE 'regress\_dc\_%'
 ORDER BY xid, id;
SELECT count(*) AS entries_with_values FROM phi_guard.audit_log
 WHERE strpos(record, '123-45-6789') > 0 OR strpos(record, '1980-07-14') > 0
    OR strpos(record, 'penicillin') > 0;

DROP FUNCTION regress_dc_read(text, text);
DROP TABLE regress_dc_patients;
DROP ROLE regress_dc_admin, regress_dc_app, regress_dc_masked;
