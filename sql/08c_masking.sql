-- Rule (SPEC §4 masking): phi_mask never returns malformed input as it is
-- (short, empty, non-ASCII or malformed values are fully masked) and shows
-- a birth year 90 or more years back as "<=" that year; phi_decrypt_masked
-- shows plaintext to phi_decryptor, the mask to phi_masked_reader and
-- nothing to other roles, binds the aad like phi_decrypt, and is audited
-- like a decrypt, without the value.  (The mask is the kind bound to the
-- key, a full mask without one: sql/18_attack_decrypt_context.)
SET search_path = public, phi_guard;

------------------------------------------------------------------------
-- Masking
------------------------------------------------------------------------
SELECT kind, v AS value, phi_mask(v, kind) AS masked
  FROM (VALUES
    ('ssn', '123-45-6789'), ('ssn', '123456789'), ('ssn', 'SSN 123 45 6789'),
    ('phone', '(555) 123-4567'), ('phone', '+1 555.123.4567'), ('phone', '555-1234'),
    ('email', 'jane.doe@example.org'), ('email', 'a@b.org'), ('email', 'Émile@exemple.fr'), ('email', '患者@例え.jp'),
    ('name', 'Ada King-Lovelace'), ('name', 'Zoë Ñandú'), ('name', 'Seán O''Brien'), ('name', '患者'),
    ('dob', '1980-07-14'), ('dob', '1980/07/14'), ('dob', '19800714'), ('dob', '2000-02-29'), ('dob', '1984-12-31'),
    ('zip', '02139'), ('zip', '021394307'), ('zip', '02139-4307'),
    ('zip', '03601'), ('zip', '89012')) AS t(kind, v);
-- a birth year 90 or more years back shows as "<=" current year - 90
SELECT phi_mask(((extract(year FROM now())::int - 90)::text || '-06-30'), 'dob')
         = '<=' || (extract(year FROM now())::int - 90) AS ninety_years,
       phi_mask('1850-01-01', 'dob') = '<=' || (extract(year FROM now())::int - 90) AS older,
       phi_mask(((extract(year FROM now())::int - 89)::text || '-06-30'), 'dob')
         = (extract(year FROM now())::int - 89)::text AS eighty_nine_years;
-- short, empty, non-ASCII or malformed input: a fully masked value
SELECT kind, v AS value, phi_mask(v, kind) AS masked
  FROM (VALUES
    ('ssn', ''), ('ssn', '6789'), ('ssn', '12345678'), ('ssn', '1234567890'), ('ssn', 'abc-de-fghi'),
    ('ssn', '１２３-４５-６７８９'), ('ssn', '١٢٣-٤٥-٦٧٨٩'),
    ('phone', ''), ('phone', '12345'), ('phone', '555-12'), ('phone', 'abc'), ('phone', 'call me'), ('phone', '---'),
    ('phone', '５５５１２３４５６７'),
    ('email', ''), ('email', 'jane.doe'), ('email', '@example.org'), ('email', 'jane@'),
    ('email', 'a@b@c.org'),
    ('name', 'x'), ('name', 'Ñ'),
    ('dob', ''), ('dob', '1980'), ('dob', '14/07/1980'), ('dob', '1980-13-01'), ('dob', '1980-00-10'),
    ('dob', '1980-07-32'), ('dob', '1980-02-30'), ('dob', '1981-02-29'), ('dob', '1900-02-29'), ('dob', '1980-04-31'),
    ('dob', '1980-07-1x'), ('dob', '１９８０-０７-１４'),
    ('zip', ''), ('zip', '0213'), ('zip', '021394'), ('zip', '02139 '), ('zip', 'abcde'),
    ('zip', '02139_4307'), ('zip', '０２１３９')) AS t(kind, v);
-- never the raw value
SELECT count(*) AS cases, count(*) FILTER (WHERE phi_mask(v, kind) = v) AS returned_as_is
  FROM (VALUES ('ssn'), ('phone'), ('email'), ('dob'), ('zip')) AS k(kind),
       (VALUES (''), ('x'), ('12345'), ('123-45-678'), ('Zoë Ñandú'), ('患者'), ('a@b'), ('1980-02'),
               ('02139-43'), ('12 34'), ('5551234567890123456789')) AS v(v);
SELECT phi_mask(NULL, 'ssn') IS NULL AS null_value, phi_mask('x', NULL) IS NULL AS null_kind;
SELECT k AS kind, regress_try(format('SELECT phi_guard.phi_mask(%L, %L)', '123-45-6789', k)) AS result
  FROM unnest(ARRAY['SSN', '', 'ssn ', 'credit_card']) k;

------------------------------------------------------------------------
-- phi_decrypt_masked: plaintext with phi_decryptor's privileges, the mask
-- for phi_masked_reader; NULL in, NULL out; aad still binds
------------------------------------------------------------------------
SELECT phi_key_create('regress_mask') > 0 AS created;
CREATE ROLE regress_tok_nobody;
CREATE ROLE regress_tok_enc IN ROLE phi_encryptor;
CREATE ROLE regress_tok_dec IN ROLE phi_decryptor;
CREATE ROLE regress_tok_masked IN ROLE phi_masked_reader;
CREATE ROLE regress_tok_both IN ROLE phi_masked_reader, phi_decryptor;
GRANT USAGE ON SCHEMA phi_guard TO regress_tok_nobody;
CREATE TABLE regress_masked (kind text, ct phi_ciphertext);
INSERT INTO regress_masked VALUES
  ('ssn', phi_encrypt('123-45-6789', 'regress_mask', 'regress_masked:ssn')),
  ('email', phi_encrypt('jane.doe@example.org', 'regress_mask', 'regress_masked:email')),
  ('name', phi_encrypt('Zoë Ñandú', 'regress_mask', 'regress_masked:name')),
  ('dob', phi_encrypt('1980-07-14', 'regress_mask', 'regress_masked:dob')),
  ('zip', phi_encrypt('02139-4307', 'regress_mask', 'regress_masked:zip')),
  ('phone', phi_encrypt('(555) 123-4567', 'regress_mask', 'regress_masked:phone'));
GRANT SELECT ON regress_masked TO PUBLIC;
CREATE FUNCTION regress_masked_view() RETURNS TABLE (kind text, shown text) LANGUAGE sql AS $$
  SELECT kind, phi_guard.phi_decrypt_masked(ct, 'regress_masked:' || kind, kind) FROM regress_masked ORDER BY kind
$$;
-- no kind is bound to regress_mask: a masked reader sees a full mask,
-- whatever kind it asks for
SET ROLE regress_tok_masked;
SELECT * FROM regress_masked_view();
SELECT phi_decrypt_masked(NULL, NULL, 'ssn') IS NULL AS null_in_null_out;
SELECT regress_try($$SELECT phi_guard.phi_decrypt(ct, 'regress_masked:ssn') FROM regress_masked WHERE kind = 'ssn'$$) AS plain_decrypt,
       regress_try_secrets($$SELECT phi_guard.phi_decrypt_masked(ct, 'wrong', 'ssn') FROM regress_masked WHERE kind = 'ssn'$$,
                           ARRAY['123-45-6789', '6789']) AS wrong_aad,
       regress_try($$SELECT phi_guard.phi_decrypt_masked(ct, 'regress_masked:ssn', 'bogus') FROM regress_masked WHERE kind = 'ssn'$$) AS unknown_kind,
       regress_try($$SELECT phi_guard.phi_decrypt_masked(ct, 'regress_masked:ssn', NULL) FROM regress_masked WHERE kind = 'ssn'$$) AS null_kind;
SET ROLE regress_tok_dec;
SELECT * FROM regress_masked_view();
SET ROLE regress_tok_both;
SELECT * FROM regress_masked_view();
SET ROLE regress_tok_nobody;
SELECT regress_try('SELECT * FROM regress_masked_view()') AS nobody;
SET ROLE regress_tok_enc;
SELECT regress_try('SELECT * FROM regress_masked_view()') AS encryptor;
RESET ROLE;

------------------------------------------------------------------------
-- Audit: a masked read is a decrypt_masked entry (per statement and key,
-- an intent and a final entry), with neither the value nor its mask
------------------------------------------------------------------------
SELECT phi_audit_seal() >= 0 AS sealed_before;
SELECT pg_current_xact_id() AS mark \gset
SET ROLE regress_tok_masked;
SELECT count(*) AS masked_reads FROM regress_masked_view();
RESET ROLE;
SELECT phi_audit_seal() > 0 AS sealed;
SELECT r->>'kind' AS kind, r->>'role' AS role,
       CASE WHEN jsonb_typeof(r->'detail') = 'object' THEN (r->'detail') - 'pid' - 'key_id' - 'access_id' - 'rows' ELSE r->'detail' END AS detail,
       r->>'table' AS tbl
  FROM phi_guard.audit_log, LATERAL (SELECT record::jsonb AS r) j
 WHERE xid > :'mark' AND r->>'kind' IN ('detokenize', 'token_forget', 'decrypt', 'decrypt_masked')
 ORDER BY 1, 2, 3;
SELECT count(*) AS entries_with_values_or_masks FROM phi_guard.audit_log
 WHERE xid > :'mark'
   AND (strpos(record, '123-45-6789') > 0 OR strpos(record, 'jane.doe') > 0 OR strpos(record, 'Ñandú') > 0
        OR strpos(record, '1980-07-14') > 0 OR strpos(record, '02139-4307') > 0
        OR strpos(record, '123-4567') > 0 OR strpos(record, '**') > 0);
SELECT ok FROM phi_audit_verify();

------------------------------------------------------------------------
DROP TABLE regress_masked;
DROP FUNCTION regress_masked_view();
REVOKE USAGE ON SCHEMA phi_guard FROM regress_tok_nobody;
DROP ROLE regress_tok_nobody, regress_tok_enc, regress_tok_dec, regress_tok_masked, regress_tok_both;
