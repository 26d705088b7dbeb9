-- Rule (SPEC §7): access entries (decrypt, decrypt_masked, detokenize,
-- tokenize) name the rows whose values they revealed.  detail.rows holds
-- the distinct row references of a statement and key in first-seen order
-- — the value's aad, 'sha256:' and the hex of its SHA-256 when the aad has
-- more than 128 bytes, 'ct:' and the hex of the nonce without aad,
-- 'tok:<domain>:<token>' for tokens — at most phi_guard.access_rows_max,
-- the other distinct references counted in rows_omitted; count is every
-- call; query_id the statement's query identifier (or null).  In durable
-- mode (the default) an intent entry naming the first reference is
-- committed before the first value leaves, then the final entry follows;
-- in async mode only the final entry.  Every entry written under a signed
-- context carries request_id (the token's jti, null without one);
-- phi_guard.context_issuer / context_audience refuse other tokens with
-- 28000.  phi_disclosures and phi_access_report tell a phi_auditor who saw
-- a row; nobody else may call them, and no role but a superuser may lower
-- the cap or switch durability off.
\set VERBOSITY terse
SET search_path = public, phi_guard;
\getenv abs_srcdir PG_ABS_SRCDIR
\set signer 'python3 ' :abs_srcdir '/test/context/sign_context.py'
\set pem `:signer pem regress_k22`
SELECT phi_context_key_add('regress_k22', :'pem');
\set ada `:signer token regress_k22 sub=dr-ada tenant=clinic-a roles=clinician exp=+600 purpose=treatment jti=req-ada-1`
\set bob `:signer token regress_k22 sub=dr-bob tenant=clinic-a roles=clinician exp=+600`

CREATE ROLE regress_dx_app IN ROLE phi_app, phi_encryptor, phi_decryptor, phi_detokenizer;
CREATE ROLE regress_dx_masked IN ROLE phi_app, phi_masked_reader;
CREATE ROLE regress_dx_auditor IN ROLE phi_auditor;
CREATE ROLE regress_dx_nobody IN ROLE phi_app;

SELECT phi_key_create(k) > 0 AS created
  FROM unnest(ARRAY['regress_dx_ssn', 'regress_dx_note']) k;
SELECT phi_token_domain_create('regress_dx_tok', 'regress_dx_ssn', 'ssn');
-- SSNs bound to their rows with the recommended aad <table>.<column>:<key>;
-- notes without aad; one value with a 200-byte aad, one with exactly 128
CREATE TABLE regress_dx_patients (id int PRIMARY KEY, ssn phi_ciphertext, note phi_ciphertext);
INSERT INTO regress_dx_patients
  SELECT g, phi_encrypt(lpad(g::text, 9, '0'), 'regress_dx_ssn', 'patients.ssn:' || g),
         phi_encrypt('note ' || g, 'regress_dx_note')
    FROM generate_series(1, 1500) g;
CREATE TABLE regress_dx_long (id int PRIMARY KEY, aad text, v phi_ciphertext);
INSERT INTO regress_dx_long VALUES
  (1, repeat('x', 200), phi_encrypt('long one', 'regress_dx_note', repeat('x', 200))),
  (2, repeat('é', 64), phi_encrypt('long two', 'regress_dx_note', repeat('é', 64)));
GRANT SELECT ON regress_dx_patients, regress_dx_long TO regress_dx_app, regress_dx_masked;
SELECT octet_length(convert_to(aad, 'UTF8')) AS aad_bytes FROM regress_dx_long ORDER BY id;

-- the access entries written from here on, as the log holds them
SELECT pg_current_xact_id() AS xid0 \gset
CREATE TABLE regress_dx_mark AS SELECT :'xid0'::xid8 AS xid0;
CREATE FUNCTION regress_dx_entries(key text)
  RETURNS TABLE(kind text, phase text, rows jsonb, rows_omitted int8, count int8,
                has_request_id bool, request_id text, app_user text)
  LANGUAGE sql AS $$
  SELECT r->>'kind', r#>>'{detail,phase}', r#>'{detail,rows}',
         (r#>>'{detail,rows_omitted}')::int8, (r#>>'{detail,count}')::int8,
         r ? 'request_id', r->>'request_id', r->>'app_user'
    FROM (SELECT l.xid, l.id, l.record::jsonb AS r FROM phi_guard.audit_log l
           WHERE l.xid > (SELECT xid0 FROM regress_dx_mark)) e
   WHERE coalesce(r#>>'{detail,key}', r#>>'{detail,domain}') = key
     AND r->>'kind' IN ('decrypt', 'decrypt_masked', 'detokenize', 'tokenize')
   ORDER BY e.xid, e.id
$$;

------------------------------------------------------------------------
-- rows in first-seen order, distinct per statement and key; count is
-- every call; an intent (durable, the default) before the final entry
------------------------------------------------------------------------
SHOW phi_guard.access_audit;
SHOW phi_guard.access_rows_max;
SET ROLE regress_dx_app;
BEGIN;
SELECT phi_set_context(:'ada');
SELECT phi_decrypt(p.ssn, 'patients.ssn:' || p.id) AS ssn
  FROM (SELECT p.* FROM unnest(ARRAY[3, 1, 3, 2, 1]) WITH ORDINALITY u(id, n)
          JOIN regress_dx_patients p USING (id) ORDER BY u.n OFFSET 0) p;
COMMIT;
RESET ROLE;
SELECT phi_audit_seal() >= 0 AS sealed;
SELECT * FROM regress_dx_entries('regress_dx_ssn');

-- the cap: two references listed, the two other distinct ones omitted
-- (repeats are not counted again); a superuser setting
SET phi_guard.access_rows_max = 2;
SET ROLE regress_dx_app;
SELECT regress_try('SET phi_guard.access_rows_max = 100000') AS app_raises_cap,
       regress_try('SET phi_guard.access_rows_max = 0') AS app_lowers_cap,
       regress_try($$SET phi_guard.access_audit = 'async'$$) AS app_goes_async;
SELECT count(phi_decrypt(p.ssn, 'patients.ssn:' || p.id))
  FROM (SELECT p.* FROM unnest(ARRAY[4, 5, 4, 6, 7, 6, 5]) WITH ORDINALITY u(id, n)
          JOIN regress_dx_patients p USING (id) ORDER BY u.n OFFSET 0) p;
RESET ROLE;
-- cap 0: no row listed, every one counted; the intent still names the first
SET phi_guard.access_rows_max = 0;
SET ROLE regress_dx_app;
SELECT count(phi_decrypt(ssn, 'patients.ssn:' || id)) FROM regress_dx_patients WHERE id <= 3;
RESET ROLE;
RESET phi_guard.access_rows_max;
SELECT regress_try('SET phi_guard.access_rows_max = 100001') AS over_max,
       regress_try('SET phi_guard.access_rows_max = -1') AS negative;
-- the default cap of 1000 on 1500 rows read twice
SET ROLE regress_dx_app;
SELECT count(phi_decrypt(p.ssn, 'patients.ssn:' || p.id))
  FROM regress_dx_patients p, generate_series(1, 2);
RESET ROLE;
SELECT phi_audit_seal() >= 0 AS sealed;
SELECT kind, phase, jsonb_array_length(rows) AS listed, rows -> 0 AS first, rows -> -1 AS last,
       rows_omitted, count
  FROM regress_dx_entries('regress_dx_ssn') OFFSET 2;

------------------------------------------------------------------------
-- references without aad, with a long aad, and of tokens
------------------------------------------------------------------------
SET ROLE regress_dx_app;
SELECT phi_decrypt(note) FROM regress_dx_patients WHERE id = 7;
SELECT phi_decrypt(v, aad) FROM regress_dx_long ORDER BY id;
SELECT phi_tokenize('123-45-6789', 'regress_dx_tok') AS tok \gset
SELECT phi_tokenize('123456789', 'regress_dx_tok') = :'tok' AS same_token;
SELECT phi_detokenize(:'tok', 'regress_dx_tok');
RESET ROLE;
SELECT phi_audit_seal() >= 0 AS sealed;
-- ct: and the value's nonce (bytes 8..19 of the ciphertext)
SELECT e.phase, e.rows = jsonb_build_array('ct:' || encode(substr(p.note::bytea, 9, 12), 'hex')) AS nonce_ref
  FROM regress_dx_entries('regress_dx_note') e, regress_dx_patients p
 WHERE p.id = 7 AND e.rows ->> 0 LIKE 'ct:%';
-- over 128 bytes: sha256:<hex>; exactly 128 bytes: the aad itself
SELECT e.phase, e.rows = jsonb_build_array(
         'sha256:' || encode(sha256(convert_to(repeat('x', 200), 'UTF8')), 'hex'),
         repeat('é', 64)) AS long_refs,
       e.count
  FROM regress_dx_entries('regress_dx_note') e
 WHERE e.rows ->> 0 LIKE 'sha256:%' AND e.phase = 'final';
-- tok:<domain>:<token>, one reference for two spellings of the same SSN
SELECT kind, phase, rows = jsonb_build_array('tok:regress_dx_tok:' || :'tok') AS token_ref, count
  FROM regress_dx_entries('regress_dx_tok');

------------------------------------------------------------------------
-- masked reads are decrypt_masked; a full reader's clear read is decrypt
------------------------------------------------------------------------
SET ROLE regress_dx_masked;
SELECT phi_decrypt_masked(ssn, 'patients.ssn:' || id, 'ssn') FROM regress_dx_patients WHERE id = 9;
SET ROLE regress_dx_app;
SELECT phi_decrypt_masked(ssn, 'patients.ssn:' || id, 'ssn') FROM regress_dx_patients WHERE id = 9;
RESET ROLE;
SELECT phi_audit_seal() >= 0 AS sealed;
SELECT kind, phase, rows, count FROM regress_dx_entries('regress_dx_ssn')
 WHERE rows = '["patients.ssn:9"]';

------------------------------------------------------------------------
-- async: the final entry only; query_id when the server computes one
------------------------------------------------------------------------
SET phi_guard.access_audit = 'async';
SET compute_query_id = on;
SET ROLE regress_dx_app;
SELECT phi_decrypt(ssn, 'patients.ssn:' || id) FROM regress_dx_patients WHERE id = 11;
RESET ROLE;
SET compute_query_id = off;
SELECT phi_decrypt(ssn, 'patients.ssn:' || id) FROM regress_dx_patients WHERE id = 12;
RESET phi_guard.access_audit;
RESET compute_query_id;
SELECT regress_try($$SET phi_guard.access_audit = 'sometimes'$$) AS bad_mode;
SELECT phi_audit_seal() >= 0 AS sealed;
SELECT e.record::jsonb #>> '{detail,phase}' AS phase,
       e.record::jsonb #>> '{detail,rows,0}' AS ref,
       e.record::jsonb #>> '{detail,query_id}' ~ '^-?[0-9]+$' AS query_id_number,
       e.record::jsonb #> '{detail,query_id}' = 'null' AS query_id_null
  FROM phi_guard.audit_log e
 WHERE e.xid > :'xid0'::xid8
   AND e.record::jsonb #>> '{detail,rows,0}' IN ('patients.ssn:11', 'patients.ssn:12')
 ORDER BY e.xid, e.id;

------------------------------------------------------------------------
-- request_id: the token's jti in every entry written under the context,
-- null without a jti, absent without a context
------------------------------------------------------------------------
CREATE TABLE regress_dx_visits (id int PRIMARY KEY, note text);
GRANT INSERT ON regress_dx_visits TO regress_dx_app;
SELECT phi_audit_enable('regress_dx_visits');
SET ROLE regress_dx_app;
BEGIN;
SELECT phi_set_context(:'ada');
INSERT INTO regress_dx_visits VALUES (1, 'under ada');
SELECT phi_decrypt(ssn, 'patients.ssn:' || id) FROM regress_dx_patients WHERE id = 21;
COMMIT;
BEGIN;
SELECT phi_set_context(:'bob');
INSERT INTO regress_dx_visits VALUES (2, 'under bob');
SELECT phi_decrypt(ssn, 'patients.ssn:' || id) FROM regress_dx_patients WHERE id = 22;
COMMIT;
INSERT INTO regress_dx_visits VALUES (3, 'no context');
SELECT phi_decrypt(ssn, 'patients.ssn:' || id) FROM regress_dx_patients WHERE id = 23;
RESET ROLE;
SELECT phi_audit_seal() >= 0 AS sealed;
SELECT r->>'kind' AS kind, coalesce(r#>>'{row_key,id}', r#>>'{detail,rows,0}') AS what,
       r#>>'{detail,phase}' AS phase, r ? 'request_id' AS has_request_id,
       r->>'request_id' AS request_id, r->>'app_user' AS app_user
  FROM (SELECT l.xid, l.id, l.record::jsonb AS r FROM phi_guard.audit_log l
         WHERE l.xid > :'xid0'::xid8) e
 WHERE r->>'table' = 'public.regress_dx_visits'
    OR r#>>'{detail,rows,0}' IN ('patients.ssn:21', 'patients.ssn:22', 'patients.ssn:23')
 ORDER BY r->>'kind' = 'insert', what, phase;
-- the key order of a record under a context: request_id after purpose
SELECT l.record ~ '"purpose":"treatment","request_id":"req-ada-1","client_addr":' AS key_order
  FROM phi_guard.audit_log l
 WHERE l.xid > :'xid0'::xid8 AND l.record::jsonb #>> '{row_key,id}' = '1'
   AND l.record::jsonb ->> 'table' = 'public.regress_dx_visits';

------------------------------------------------------------------------
-- jti, iss and aud of the token; phi_guard.context_issuer / _audience
------------------------------------------------------------------------
\set longjti `:signer token regress_k22 sub=u tenant=clinic-a roles= exp=+600 jti=$(printf 'j%.0s' $(seq 256))`
\set numjti `:signer token regress_k22 sub=u tenant=clinic-a roles= exp=+600 jti=json:7`
\set iss_ok `:signer token regress_k22 sub=u tenant=clinic-a roles= exp=+600 iss=https://idp.example aud=phi-db`
\set iss_other `:signer token regress_k22 sub=u tenant=clinic-a roles= exp=+600 iss=https://evil.example aud=phi-db`
\set no_iss `:signer token regress_k22 sub=u tenant=clinic-a roles= exp=+600 aud=phi-db`
\set aud_list `:signer token regress_k22 sub=u tenant=clinic-a roles= exp=+600 iss=https://idp.example 'aud=json:["other","phi-db"]'`
\set aud_other `:signer token regress_k22 sub=u tenant=clinic-a roles= exp=+600 iss=https://idp.example 'aud=json:["other"]'`
\set no_aud `:signer token regress_k22 sub=u tenant=clinic-a roles= exp=+600 iss=https://idp.example`
BEGIN;
SELECT regress_try(format('SELECT phi_set_context(%L)', :'longjti')) AS jti_256_bytes,
       regress_try(format('SELECT phi_set_context(%L)', :'numjti')) AS jti_number;
-- unchecked by default
SELECT regress_try(format('SELECT phi_set_context(%L)', :'no_iss')) AS unchecked_no_iss,
       regress_try(format('SELECT phi_set_context(%L)', :'no_aud')) AS unchecked_no_aud;
SET LOCAL phi_guard.context_issuer = 'https://idp.example';
SET LOCAL phi_guard.context_audience = 'phi-db';
SELECT regress_try(format('SELECT phi_set_context(%L)', :'iss_ok')) AS issuer_and_audience,
       regress_try(format('SELECT phi_set_context(%L)', :'aud_list')) AS audience_in_array;
SELECT regress_try(format('SELECT phi_set_context(%L)', :'iss_other')) AS other_issuer;
SELECT regress_try(format('SELECT phi_set_context(%L)', :'no_iss')) AS no_issuer;
SELECT regress_try(format('SELECT phi_set_context(%L)', :'aud_other')) AS other_audience;
SELECT regress_try(format('SELECT phi_set_context(%L)', :'no_aud')) AS no_audience;
-- settings only a superuser changes; the rejected token is not in the message
SET LOCAL ROLE regress_dx_app;
SELECT regress_try($$SET phi_guard.context_issuer = ''$$) AS app_clears_issuer,
       regress_try($$SET phi_guard.context_audience = 'x'$$) AS app_sets_audience;
SELECT regress_try_secrets(format('SELECT phi_set_context(%L)', :'iss_other'),
                           ARRAY[:'iss_other', 'evil.example']) AS no_token_in_error;
COMMIT;
SHOW phi_guard.context_issuer;
SELECT phi_audit_seal() >= 0 AS sealed;
SELECT r#>>'{detail,reason}' AS reason, count(*) AS entries
  FROM (SELECT l.record::jsonb AS r FROM phi_guard.audit_log l WHERE l.xid > :'xid0'::xid8) e
 WHERE r->>'kind' = 'context_rejected'
 GROUP BY 1 ORDER BY 1;

------------------------------------------------------------------------
-- phi_disclosures and phi_access_report: for phi_auditor only
------------------------------------------------------------------------
SET ROLE regress_dx_auditor;
-- who saw row 1's SSN: one line per access (its final entry)
SELECT kind, db_user = session_user AS db_user, app_user, tenant, purpose, request_id, key
  FROM phi_disclosures('patients.ssn:1') WHERE key = 'regress_dx_ssn';
-- row 9: the masked read and the clear one; the token; the long aad by itself
SELECT kind, app_user, key FROM phi_disclosures('patients.ssn:9') WHERE key = 'regress_dx_ssn';
SELECT kind, key FROM phi_disclosures('tok:regress_dx_tok:' || :'tok');
SELECT kind, key FROM phi_disclosures(repeat('x', 200)) WHERE key = 'regress_dx_note';
SELECT count(*) AS none FROM phi_disclosures('patients.ssn:99999');
-- since: nothing after now
SELECT count(*) AS after_now FROM phi_disclosures('patients.ssn:1', clock_timestamp());
-- the access with cap 0 named row 1 in its intent only (its final entry
-- lists nothing): found for row 1, not for rows 2 and 3, which it read too
SELECT (SELECT count(*) FROM phi_disclosures('patients.ssn:1') WHERE key = 'regress_dx_ssn') AS row_1,
       (SELECT count(*) FROM phi_disclosures('patients.ssn:2') WHERE key = 'regress_dx_ssn') AS row_2,
       (SELECT count(*) FROM phi_disclosures('patients.ssn:3') WHERE key = 'regress_dx_ssn') AS row_3;
-- phi_access_report: the reads whose reference ends in ':21' (not ':121'),
-- with the row's changes; row 1121 was read beyond the cap: counted, not named
SELECT kind, table_name, app_user, detail->>'phase' AS phase,
       jsonb_array_length(detail->'rows') AS listed, detail->'rows_omitted' AS omitted
  FROM phi_access_report('21') WHERE kind LIKE 'decrypt%' AND detail->>'key' = 'regress_dx_ssn';
SELECT count(*) AS reads_of_1121 FROM phi_access_report('1121') WHERE detail->>'key' = 'regress_dx_ssn';
RESET ROLE;
SET ROLE regress_dx_app;
SELECT regress_try($$SELECT * FROM phi_guard.phi_disclosures('patients.ssn:1')$$) AS app;
SET ROLE regress_dx_nobody;
SELECT regress_try($$SELECT * FROM phi_guard.phi_disclosures('patients.ssn:1')$$) AS nobody;
RESET ROLE;
------------------------------------------------------------------------
-- phi_guard.bulk_disclosure_limit (SPEC §8, superuser setting): under a
-- context, a statement that would reveal more values fails with 54000
-- before the value leaves; up to the limit it works; without a context, or
-- at 0 (the default), there is no limit; each statement counts afresh
------------------------------------------------------------------------
SHOW phi_guard.bulk_disclosure_limit;
SET phi_guard.bulk_disclosure_limit = 5;
SET ROLE regress_dx_app;
SELECT regress_try('SET phi_guard.bulk_disclosure_limit = 0') AS app_lifts_limit;
BEGIN;
SELECT phi_set_context(:'ada');
SELECT count(phi_decrypt(ssn, 'patients.ssn:' || id)) AS five FROM regress_dx_patients WHERE id <= 5;
SELECT count(phi_decrypt(ssn, 'patients.ssn:' || id)) AS five_again FROM regress_dx_patients WHERE id <= 5;
SELECT regress_try($$SELECT count(phi_guard.phi_decrypt(ssn, 'patients.ssn:' || id)) FROM regress_dx_patients WHERE id <= 6$$) AS six;
SELECT regress_try($$SELECT count(phi_guard.phi_decrypt(ssn, 'patients.ssn:' || id)) + count(phi_guard.phi_decrypt(note)) FROM regress_dx_patients WHERE id <= 3$$) AS three_and_three;
SELECT regress_try($$SELECT count(phi_guard.phi_decrypt_masked(ssn, 'patients.ssn:' || id, 'ssn')) FROM regress_dx_patients WHERE id <= 6$$) AS masked_six;
COMMIT;
SELECT count(phi_decrypt(ssn, 'patients.ssn:' || id)) AS no_context_ten FROM regress_dx_patients WHERE id <= 10;
RESET ROLE;
RESET phi_guard.bulk_disclosure_limit;
SELECT regress_try('SET phi_guard.bulk_disclosure_limit = -1') AS negative_limit;

SELECT r.rolname,
       has_function_privilege(r.rolname, 'phi_guard.phi_disclosures(text, timestamptz)', 'EXECUTE') AS disclosures,
       has_function_privilege(r.rolname, 'phi_guard.phi_access_report(text, timestamptz)', 'EXECUTE') AS access_report
  FROM pg_roles r
 WHERE r.rolname IN ('phi_auditor', 'phi_app', 'phi_decryptor', 'phi_key_admin', 'phi_audit_admin', 'regress_dx_auditor')
 ORDER BY 1;
SELECT count(*) AS public_execute FROM pg_proc p, aclexplode(p.proacl) a
 WHERE p.oid = 'phi_guard.phi_disclosures(text, timestamptz)'::regprocedure AND a.grantee = 0;
SELECT (phi_audit_verify()).ok AS chain_verifies;

SELECT phi_audit_disable('regress_dx_visits');
DROP TABLE regress_dx_patients, regress_dx_long, regress_dx_visits, regress_dx_mark;
DROP FUNCTION regress_dx_entries(text);
