-- Rule (SPEC §4): tokens have the documented shapes (opaque "tok_" + 32
-- hex; digits: same length, last 4 kept, never Luhn-valid from 12 digits;
-- ssn: "9dd-dd-" + last 4), deterministic domains give one token per value
-- (stable across sessions) and never one token to two values,
-- non-deterministic ones a fresh token each time; only phi_detokenizer
-- detokenizes, every detokenize and forget is audited, a forgotten or
-- unknown token is an error that never shows the value or the token.
-- (Tokens across a key rotation and a destroyed key: 08a_blind_index.)
SET search_path = public, phi_guard;

-- Luhn checksum of a string of digits
CREATE FUNCTION regress_luhn(d text) RETURNS bool LANGUAGE sql IMMUTABLE AS $$
  SELECT sum(CASE WHEN i % 2 = 1 THEN CASE WHEN x * 2 > 9 THEN x * 2 - 9 ELSE x * 2 END ELSE x END) % 10 = 0
    FROM (SELECT i - 1 AS i, substr(reverse(d), i, 1)::int AS x FROM generate_series(1, length(d)) i) s
$$;
SELECT regress_luhn('4111111111111111') AS luhn_valid_card, regress_luhn('4111111111111112') AS luhn_invalid;

SELECT phi_key_create('regress_tok') > 0 AS created, phi_key_create('regress_tok2') > 0 AS created2;

------------------------------------------------------------------------
-- Token domains
------------------------------------------------------------------------
SELECT phi_token_domain_create('regress_opaque', 'regress_tok');
SELECT phi_token_domain_create('regress_digits', 'regress_tok', 'digits');
SELECT phi_token_domain_create('regress_ssn', 'regress_tok', 'ssn');
SELECT phi_token_domain_create('regress_nd', 'regress_tok', 'opaque', false);
SELECT phi_token_domain_create('regress_nd_ssn', 'regress_tok', 'ssn', false);
SELECT phi_token_domain_create('regress_opaque_b', 'regress_tok');
SELECT phi_token_domain_create('regress_opaque2', 'regress_tok2');
SELECT name, key_name, format, deterministic FROM phi_guard.token_domains
 WHERE key_name OPERATOR(pg_catalog.=) ANY (ARRAY['regress_tok', 'regress_tok2']) ORDER BY name;
SELECT d AS case, regress_try_secrets(format('SELECT phi_guard.phi_token_domain_create(%s)', d)) AS result
  FROM unnest(ARRAY[
    $$'regress_opaque', 'regress_tok'$$,
    $$'regress_x', 'regress_tok', 'bogus'$$,
    $$'regress_x', 'regress_tok', 'OPAQUE'$$,
    $$'regress_x', 'regress_no_such_key'$$,
    $$NULL, 'regress_tok'$$,
    $$'regress_x', NULL$$,
    $$'regress_x', 'regress_tok', NULL$$,
    $$'regress_x', 'regress_tok', 'opaque', NULL$$]) d;
SELECT regress_try($$SELECT phi_guard.phi_token_domain_create('', 'regress_tok')$$) ~ '^23514: ' AS empty_name_refused,
       regress_try(format('SELECT phi_guard.phi_token_domain_create(%L, %L)', repeat('d', 64), 'regress_tok')) ~ '^23514: ' AS long_name_refused;

-- tokenize: argument errors
SELECT regress_try($$SELECT phi_guard.phi_tokenize('x', NULL)$$) AS null_domain,
       regress_try($$SELECT phi_guard.phi_tokenize('x', 'regress_no_such_domain')$$) AS unknown_domain,
       regress_try($$SELECT phi_guard.phi_tokenize('x', '')$$) AS empty_domain;
SELECT phi_tokenize(NULL, 'regress_opaque') IS NULL AS null_in_null_out,
       phi_detokenize(NULL, 'regress_opaque') IS NULL AS detok_null;

------------------------------------------------------------------------
-- Formats
------------------------------------------------------------------------
-- opaque: "tok_" + 32 lower-case hex digits, for any value
SELECT octet_length(v) AS value_bytes, t ~ '^tok_[0-9a-f]{32}$' AS opaque_shape,
       phi_detokenize(t, 'regress_opaque') = v AS round_trip
  FROM (VALUES (''), ('x'), ('Zoë Ñandú — 患者 🩺'), ('MRN-000042'), (repeat('long value ', 10000))) AS s(v),
       LATERAL (SELECT phi_tokenize(v, 'regress_opaque') AS t) l
 ORDER BY 1;

-- digits: same length, digits only, last 4 kept
SELECT v, length(t) = length(v) AS same_length, t ~ '^[0-9]+$' AS digits_only,
       right(t, 4) = right(v, 4) AS last4_kept,
       phi_detokenize(t, 'regress_digits') = v AS round_trip
  FROM (VALUES ('55555555'), ('1234567890'), ('4111111111111111'), ('12345678901234567890123')) AS s(v),
       LATERAL (SELECT phi_tokenize(v, 'regress_digits') AS t) l
 ORDER BY length(v);
-- a 5-digit value keeps 4 digits: one digit is drawn
SELECT phi_tokenize('12345', 'regress_digits') ~ '^[0-9]2345$' AS five_digits;
-- from 12 digits on a token is never Luhn-valid, even for Luhn-valid values
SELECT len, count(*) AS tokens, count(*) FILTER (WHERE regress_luhn(v)) > 0 AS some_values_luhn_valid,
       count(*) FILTER (WHERE regress_luhn(t)) AS luhn_valid_tokens,
       bool_and(length(t) = len AND t ~ '^[0-9]+$' AND right(t, 4) = right(v, 4)) AS shape_ok
  FROM (SELECT len, v, phi_tokenize(v, 'regress_digits') AS t
          FROM generate_series(12, 19) len, generate_series(1, 1000) g,
               LATERAL (SELECT lpad((g * 7919)::text, len, '3') AS v) s) s
 GROUP BY len ORDER BY len;
-- malformed digits values: 22023, the value is not in the error
SELECT v AS digits_value, regress_try_secrets(format('SELECT phi_guard.phi_tokenize(%L, %L)', v, 'regress_digits'), ARRAY[v]) AS result
  FROM (VALUES (''), ('1234'), ('12a45'), ('4111-1111-1111-1111'), (' 12345'), ('١٢٣٤٥')) AS s(v);

-- ssn: area 900-999, group 01-99, the value's last 4; both written forms,
-- which share one token and detokenize to the canonical ddd-dd-dddd
SELECT v, t ~ '^9[0-9]{2}-(0[1-9]|[1-9][0-9])-[0-9]{4}$' AS ssn_shape, right(t, 4) = right(v, 4) AS last4_kept,
       phi_detokenize(t, 'regress_ssn') = regexp_replace(v, '^(\d{3})(\d{2})(\d{4})$', '\1-\2-\3') AS round_trip
  FROM (VALUES ('123-45-6789'), ('123456789'), ('000-00-0000'), ('999-99-9999')) AS s(v),
       LATERAL (SELECT phi_tokenize(v, 'regress_ssn') AS t) l
 ORDER BY v;
SELECT count(*) AS tokens,
       bool_and(t ~ '^9[0-9]{2}-(0[1-9]|[1-9][0-9])-[0-9]{4}$' AND right(t, 4) = right(v, 4)) AS ssn_shape,
       count(DISTINCT left(t, 3)) > 90 AS areas_spread, count(DISTINCT substr(t, 5, 2)) > 90 AS groups_spread
  FROM (SELECT v, phi_tokenize(v, 'regress_ssn') AS t
          FROM generate_series(1, 3000) g,
               LATERAL (SELECT lpad((g * 104729 % 1000000000)::text, 9, '0') AS v) s) s;
SELECT v AS ssn_value, regress_try_secrets(format('SELECT phi_guard.phi_tokenize(%L, %L)', v, 'regress_ssn'), ARRAY[v]) AS result
  FROM (VALUES (''), ('12345678'), ('1234567890'), ('123-456-789'), ('12-345-6789'), ('123 45 6789'),
               ('abc-de-fghi'), ('123-45-678x'), ('١٢٣-٤٥-٦٧٨٩')) AS s(v);

------------------------------------------------------------------------
-- Determinism
------------------------------------------------------------------------
SELECT phi_tokenize('Secretvalue det', 'regress_opaque') = phi_tokenize('Secretvalue det', 'regress_opaque') AS opaque_same,
       phi_tokenize('123-45-6789', 'regress_ssn') = phi_tokenize('123-45-6789', 'regress_ssn') AS ssn_same,
       phi_tokenize('4111111111111111', 'regress_digits') = phi_tokenize('4111111111111111', 'regress_digits') AS digits_same;
-- the same new value several times in one statement: one token, one vault row
SELECT count(*) AS vault_rows FROM phi_guard.token_vault WHERE domain = 'regress_opaque' \gset before_
SELECT v, count(DISTINCT t) AS distinct_tokens, count(*) AS calls
  FROM (SELECT v, phi_tokenize(v, 'regress_opaque') AS t
          FROM (VALUES ('dup-a'), ('dup-b'), ('dup-a'), ('dup-a'), ('dup-b')) AS s(v)) s
 GROUP BY v ORDER BY v;
SELECT count(*) - :before_vault_rows AS new_vault_rows FROM phi_guard.token_vault WHERE domain = 'regress_opaque';
-- other domains, same key or another key: unrelated tokens
SELECT count(*) AS values,
       count(*) FILTER (WHERE phi_tokenize(v, 'regress_opaque') = phi_tokenize(v, 'regress_opaque_b')) AS equal_same_key,
       count(*) FILTER (WHERE phi_tokenize(v, 'regress_opaque') = phi_tokenize(v, 'regress_opaque2')) AS equal_other_key
  FROM (SELECT 'value ' || g AS v FROM generate_series(1, 1000) g) s;
-- a token from another domain does not detokenize here
SELECT regress_try_secrets(format('SELECT phi_guard.phi_detokenize(%L, %L)', t, 'regress_opaque_b'), ARRAY[t, 'Secretvalue det']) AS other_domain
  FROM (SELECT phi_tokenize('Secretvalue det', 'regress_opaque') AS t) s;

-- the same in a new session (nothing cached)
SELECT phi_tokenize('Secretvalue det', 'regress_opaque') AS tok_before_reconnect,
       phi_tokenize('123-45-6789', 'regress_ssn') AS ssn_before_reconnect \gset
\c -
SET search_path = public, phi_guard;
SELECT phi_tokenize('Secretvalue det', 'regress_opaque') = :'tok_before_reconnect' AS token_same,
       phi_tokenize('123-45-6789', 'regress_ssn') = :'ssn_before_reconnect' AS ssn_token_same;


------------------------------------------------------------------------
-- No two values share a token (100,000 values per format)
------------------------------------------------------------------------
-- digits, 7 long: 1,000 groups of 100 values sharing their last 4, each
-- group in a space of 1,000 tokens, so first choices collide often
SELECT phi_token_domain_create('regress_dg7', 'regress_tok', 'digits');
CREATE TABLE regress_dg7 AS
  SELECT v, phi_tokenize(v, 'regress_dg7') AS t
    FROM generate_series(0, 99999) g,
         LATERAL (SELECT lpad((g / 1000)::text, 3, '0') || lpad((g % 1000)::text, 4, '0') AS v) s;
SELECT count(*) AS values, count(DISTINCT v) AS distinct_values, count(DISTINCT t) AS distinct_tokens,
       bool_and(t ~ '^[0-9]{7}$' AND right(t, 4) = right(v, 4)) AS shape_ok,
       (SELECT count(*) FROM phi_guard.token_vault WHERE domain = 'regress_dg7') AS vault_rows
  FROM regress_dg7;
-- and each still gives its own token and value back
SELECT count(*) FILTER (WHERE phi_tokenize(v, 'regress_dg7') <> t) AS token_changed,
       count(*) FILTER (WHERE phi_detokenize(t, 'regress_dg7') <> v) AS wrong_value
  FROM regress_dg7;
DROP TABLE regress_dg7;
-- ssn: 5,000 values ending in 1234 (9,900 tokens end in 1234), and 95,000
-- in 1,000 groups of 95
SELECT phi_token_domain_create('regress_ssn_c', 'regress_tok', 'ssn');
CREATE TABLE regress_ssn_c AS
  SELECT v, phi_tokenize(v, 'regress_ssn_c') AS t
    FROM generate_series(0, 99999) g,
         LATERAL (SELECT CASE WHEN g < 5000 THEN lpad(g::text, 5, '0') || '1234'
                              ELSE lpad(((g - 5000) / 1000)::text, 5, '0') || lpad(((g - 5000) % 1000)::text, 4, '0')
                         END AS d) s,
         LATERAL (SELECT substr(d, 1, 3) || '-' || substr(d, 4, 2) || '-' || substr(d, 6, 4) AS v) f;
SELECT right(v, 4) = '1234' AS ends_in_1234, count(*) AS values, count(DISTINCT v) AS distinct_values,
       count(DISTINCT t) AS distinct_tokens,
       bool_and(t ~ '^9[0-9]{2}-(0[1-9]|[1-9][0-9])-[0-9]{4}$' AND right(t, 4) = right(v, 4)) AS shape_ok
  FROM regress_ssn_c GROUP BY 1 ORDER BY 1;
SELECT count(*) AS values, count(DISTINCT t) AS distinct_tokens,
       (SELECT count(*) FROM phi_guard.token_vault WHERE domain = 'regress_ssn_c') AS vault_rows
  FROM regress_ssn_c;
SELECT count(*) FILTER (WHERE phi_tokenize(v, 'regress_ssn_c') <> t) AS token_changed,
       count(*) FILTER (WHERE phi_detokenize(t, 'regress_ssn_c') <> v) AS wrong_value
  FROM regress_ssn_c WHERE right(v, 4) = '1234';
DROP TABLE regress_ssn_c;

------------------------------------------------------------------------
-- Non-deterministic domains: a fresh token each time, each detokenizes
------------------------------------------------------------------------
CREATE TABLE regress_nd AS
  SELECT g, phi_tokenize('same value', 'regress_nd') AS t FROM generate_series(1, 1000) g;
SELECT count(*) AS tokens, count(DISTINCT t) AS distinct_tokens, bool_and(t ~ '^tok_[0-9a-f]{32}$') AS opaque_shape,
       count(*) FILTER (WHERE phi_detokenize(t, 'regress_nd') = 'same value') AS detokenize_ok,
       (SELECT count(*) FROM phi_guard.token_vault WHERE domain = 'regress_nd') AS vault_rows,
       (SELECT count(*) FROM phi_guard.token_vault WHERE domain = 'regress_nd' AND fingerprint IS NOT NULL) AS with_fingerprint
  FROM regress_nd;
SELECT count(*) AS tokens, count(DISTINCT t) AS distinct_tokens,
       bool_and(t ~ '^9[0-9]{2}-(0[1-9]|[1-9][0-9])-6789$') AS ssn_shape,
       bool_and(phi_detokenize(t, 'regress_nd_ssn') = '123-45-6789') AS detokenize_ok
  FROM (SELECT phi_tokenize('123-45-6789', 'regress_nd_ssn') AS t FROM generate_series(1, 200)) s;

------------------------------------------------------------------------
-- Unknown and forgotten tokens
------------------------------------------------------------------------
-- a string that is no token gives an error, never the input back
SELECT t AS token, regress_try_secrets(format('SELECT phi_guard.phi_detokenize(%L, %L)', t, 'regress_opaque'), ARRAY[t]) AS result
  FROM (VALUES ('Secretvalue det'), ('tok_00000000000000000000000000000000'), (''), ('tok_')) AS s(t);
SELECT regress_try_secrets($$SELECT phi_guard.phi_detokenize('x', 'regress_no_such_domain')$$) AS unknown_domain,
       regress_try_secrets($$SELECT phi_guard.phi_detokenize('x', NULL)$$) AS null_domain;

CREATE ROLE regress_tok_admin IN ROLE phi_key_admin;
CREATE ROLE regress_tok_detok IN ROLE phi_detokenizer;
SELECT phi_tokenize('Forget Secretvalue', 'regress_opaque') AS ftok,
       phi_tokenize('Keep Secretvalue', 'regress_opaque') AS ktok \gset
SET ROLE regress_tok_detok;
SELECT phi_detokenize(:'ftok', 'regress_opaque') AS before_forget;
SET ROLE regress_tok_admin;
SELECT phi_token_forget('regress_opaque', :'ftok') AS forgotten,
       phi_token_forget('regress_opaque', :'ftok') AS forgotten_again,
       phi_token_forget('regress_opaque', NULL) IS NULL AS null_token,
       phi_token_forget('regress_opaque', 'tok_00000000000000000000000000000000') AS unknown_token;
SELECT regress_try($$SELECT phi_guard.phi_token_forget('regress_no_such_domain', 'x')$$) AS unknown_domain;
SET ROLE regress_tok_detok;
SELECT regress_try_secrets(format('SELECT phi_guard.phi_detokenize(%L, %L)', :'ftok', 'regress_opaque'),
                       ARRAY[:'ftok', 'Forget Secretvalue']) AS after_forget,
       phi_detokenize(:'ktok', 'regress_opaque') AS other_token;
RESET ROLE;
SELECT count(*) AS vault_rows_of_forgotten FROM phi_guard.token_vault
 WHERE domain = 'regress_opaque' AND token = :'ftok';
-- non-deterministic: forgetting one token leaves the value's other tokens
SELECT phi_tokenize('nd forget', 'regress_nd') AS nd1, phi_tokenize('nd forget', 'regress_nd') AS nd2 \gset
SET ROLE regress_tok_admin;
SELECT phi_token_forget('regress_nd', :'nd1') AS forgotten;
RESET ROLE;
SELECT regress_try_secrets(format('SELECT phi_guard.phi_detokenize(%L, %L)', :'nd1', 'regress_nd'), ARRAY[:'nd1', 'nd forget']) AS nd1,
       phi_detokenize(:'nd2', 'regress_nd') AS nd2;

------------------------------------------------------------------------
-- Privileges
------------------------------------------------------------------------
CREATE ROLE regress_tok_nobody;
CREATE ROLE regress_tok_enc IN ROLE phi_encryptor;
CREATE ROLE regress_tok_dec IN ROLE phi_decryptor;
CREATE ROLE regress_tok_masked IN ROLE phi_masked_reader;
GRANT USAGE ON SCHEMA phi_guard TO regress_tok_nobody;
CREATE TABLE regress_tok_ops (ord int, op text, q text);
INSERT INTO regress_tok_ops VALUES
  (1, 'tokenize',       $$SELECT phi_guard.phi_tokenize('priv value', 'regress_opaque')$$),
  (2, 'detokenize',     format('SELECT phi_guard.phi_detokenize(%L, %L)', :'ktok', 'regress_opaque')),
  (3, 'blind_index',    $$SELECT phi_guard.phi_blind_index('priv value', 'regress_tok')$$),
  -- (the domain exists: a role that may create domains gets 42710)
  (4, 'domain_create',  $$SELECT phi_guard.phi_token_domain_create('regress_opaque', 'regress_tok')$$),
  (5, 'token_forget',   $$SELECT phi_guard.phi_token_forget('regress_opaque', 'tok_00000000000000000000000000000000')$$),
  (6, 'read_vault',     $$SELECT count(*) FROM phi_guard.token_vault$$),
  (7, 'read_index_keys', $$SELECT count(*) FROM phi_guard.index_keys$$),
  (8, 'write_vault',    $$DELETE FROM phi_guard.token_vault$$),
  (9, 'mask',           $$SELECT phi_guard.phi_mask('123-45-6789', 'ssn')$$);
CREATE FUNCTION regress_tok_matrix() RETURNS TABLE (op text, result text) LANGUAGE sql AS $$
  SELECT op, regress_try(q) FROM regress_tok_ops ORDER BY ord
$$;
GRANT SELECT ON regress_tok_ops TO PUBLIC;
SET ROLE regress_tok_nobody;
SELECT * FROM regress_tok_matrix();
SET ROLE regress_tok_enc;
SELECT * FROM regress_tok_matrix();
SET ROLE regress_tok_dec;
SELECT * FROM regress_tok_matrix();
SET ROLE regress_tok_detok;
SELECT * FROM regress_tok_matrix();
SET ROLE regress_tok_admin;
SELECT * FROM regress_tok_matrix();
SET ROLE regress_tok_masked;
SELECT * FROM regress_tok_matrix();
RESET ROLE;
-- what phi_encryptor tokenizes, phi_detokenizer gets back
SET ROLE regress_tok_enc;
SELECT phi_tokenize('Encryptor Secretvalue', 'regress_opaque') AS etok \gset
SELECT :'etok' = phi_tokenize('Encryptor Secretvalue', 'regress_opaque') AS deterministic_for_encryptor;
SET ROLE regress_tok_detok;
SELECT phi_detokenize(:'etok', 'regress_opaque') AS detokenized;
RESET ROLE;

------------------------------------------------------------------------
-- Audit: detokenize (per statement and key, even when rolled back) and
-- forget; no values, and tokens only as row references
-- (tok:<domain>:<token> in detail.rows, SPEC §7)
------------------------------------------------------------------------
SELECT phi_tokenize('Audit Secretvalue a', 'regress_opaque') AS at1,
       phi_tokenize('Audit Secretvalue b', 'regress_opaque') AS at2,
       phi_tokenize('Audit Secretvalue c', 'regress_opaque') AS at3 \gset
SELECT phi_audit_seal() >= 0 AS sealed_before;
SELECT pg_current_xact_id() AS mark \gset
SET ROLE regress_tok_detok;
SELECT count(phi_detokenize(t, 'regress_opaque')) AS detokenized
  FROM (VALUES (:'at1'), (:'at2'), (:'at3')) AS s(t);
BEGIN;
SELECT phi_detokenize(:'at1', 'regress_opaque') AS rolled_back;
ROLLBACK;
SET ROLE regress_tok_admin;
SELECT phi_token_forget('regress_opaque', :'at3') AS forgotten;
RESET ROLE;
SELECT phi_audit_seal() > 0 AS sealed;
SELECT r->>'kind' AS kind, r->>'role' AS role,
       CASE WHEN jsonb_typeof(r->'detail') = 'object' THEN (r->'detail') - 'pid' - 'key_id' - 'access_id' - 'rows' ELSE r->'detail' END AS detail,
       r->>'table' AS tbl
  FROM phi_guard.audit_log, LATERAL (SELECT record::jsonb AS r) j
 WHERE xid > :'mark' AND r->>'kind' IN ('detokenize', 'token_forget', 'decrypt')
 ORDER BY 1, 2, 3;
SELECT count(*) AS entries_with_values_or_tokens
  FROM phi_guard.audit_log, LATERAL (SELECT (record::jsonb #- '{detail,rows}')::text AS r) j
 WHERE record ~ 'Secretvalue' OR strpos(j.r, :'at1') > 0 OR strpos(j.r, :'at3') > 0
    OR strpos(j.r, :'ktok') > 0 OR strpos(j.r, :'ftok') > 0;
SELECT count(*) AS detokenize_naming_at1 FROM phi_guard.audit_log
 WHERE xid > :'mark' AND record::jsonb ->> 'kind' = 'detokenize'
   AND record::jsonb #> '{detail,rows}' ? ('tok:regress_opaque:' || :'at1');
SELECT ok FROM phi_audit_verify();

------------------------------------------------------------------------
DROP TABLE regress_nd, regress_tok_ops;
DROP FUNCTION regress_tok_matrix(), regress_luhn(text);
REVOKE USAGE ON SCHEMA phi_guard FROM regress_tok_nobody;
DROP ROLE regress_tok_nobody, regress_tok_enc, regress_tok_dec, regress_tok_detok, regress_tok_admin,
          regress_tok_masked;
