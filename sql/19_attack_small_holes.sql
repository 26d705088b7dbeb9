-- Rule (SPEC §5, §6): the smaller holes of issue 11 stay closed.
-- phi_set_context(NULL) clears the context (it used to keep the previous
-- request's, being STRICT).  Every phi_tokenize call is an access entry,
-- counted per statement and domain and kept when the transaction rolls
-- back, so guessing a low-entropy value by tokenizing candidates in a
-- deterministic domain leaves a trace.  A break-glass use entry is written
-- only when a protected table's own break-glass policy admits rows through
-- a grant: calling break_glass_use directly (from a query, a view, a
-- function, a check constraint, or another table's policy) answers like
-- phi_break_glass_active() and writes nothing.  Written as the attacks: the
-- roles, the statements, and the entries left behind.
\set VERBOSITY terse
SET search_path = public, phi_guard;
\getenv abs_srcdir PG_ABS_SRCDIR
\set signer 'python3 ' :abs_srcdir '/test/context/sign_context.py'
\set pem `:signer pem regress_k19`
SELECT phi_context_key_add('regress_k19', :'pem');
\set alice `:signer token regress_k19 sub=alice tenant=clinic-a roles=clinician exp=+600`

CREATE ROLE regress_sh_app IN ROLE phi_app;
CREATE ROLE regress_sh_enc IN ROLE phi_encryptor;
CREATE TABLE regress_sh_chart (id int PRIMARY KEY, tenant text NOT NULL, assigned text, note text);
GRANT SELECT ON regress_sh_chart TO regress_sh_app;
SET client_min_messages = error;  -- not the warning that the superuser bypasses it
SELECT phi_protect_table('regress_sh_chart', 'tenant');
RESET client_min_messages;
-- finer access than the tenant: clinicians see the patients assigned to them
DROP POLICY phi_guard_tenant_access ON regress_sh_chart;
CREATE POLICY regress_sh_care_team ON regress_sh_chart USING (assigned = (SELECT phi_user_id()));
INSERT INTO regress_sh_chart VALUES (1, 'clinic-a', 'alice', 'a1'), (2, 'clinic-a', 'carol', 'a2'),
  (3, 'clinic-b', 'bob', 'b3');

------------------------------------------------------------------------
-- phi_set_context(NULL) clears: a pooled connection whose next request
-- has no user must not keep the previous user's context
------------------------------------------------------------------------
SET ROLE regress_sh_app;
BEGIN;
SELECT phi_set_context(:'alice');
SELECT phi_tenant_id() AS tenant, phi_has_permission('patient.read') AS may_read,
       array_agg(id) AS rows FROM regress_sh_chart;
SELECT phi_set_context(NULL);
SELECT phi_tenant_id() IS NULL AS no_tenant, phi_user_id() IS NULL AS no_user,
       phi_roles() IS NULL AS no_roles, phi_has_permission('patient.read') AS may_read,
       count(*) AS rows FROM regress_sh_chart;
COMMIT;
RESET ROLE;

------------------------------------------------------------------------
-- Tokenize brute force: a phi_encryptor holds a patient's SSN token
-- (deterministic domain, ssn format: the last 4 digits are in the token)
-- and tokenizes candidates until one matches, in a transaction it rolls
-- back.  The guess succeeds (that is the limit of deterministic domains,
-- README "Tokenization"), but every attempt is counted and audited.
------------------------------------------------------------------------
SELECT phi_key_create('regress_sh_tok') > 0 AS created;
SELECT phi_token_domain_create('regress_sh_ssn', 'regress_sh_tok', 'ssn');
SELECT phi_token_domain_create('regress_sh_ssn_nd', 'regress_sh_tok', 'ssn', false);
SELECT phi_tokenize('123-45-6789', 'regress_sh_ssn') AS victim_token,
       phi_tokenize('123-45-6789', 'regress_sh_ssn_nd') AS victim_token_nd \gset
SELECT pg_current_xact_id() AS mark \gset
SET ROLE regress_sh_enc;
BEGIN;
SELECT c AS guessed
  FROM (SELECT lpad(n::text, 3, '0') || '-45-6789' AS c FROM generate_series(100, 199) n) s
 WHERE phi_tokenize(c, 'regress_sh_ssn') = :'victim_token';
-- a non-deterministic domain gives a fresh token each time: nothing matches
SELECT count(*) AS guessed_nd
  FROM (SELECT lpad(n::text, 3, '0') || '-45-6789' AS c FROM generate_series(100, 149) n) s
 WHERE phi_tokenize(c, 'regress_sh_ssn_nd') = :'victim_token_nd';
ROLLBACK;
RESET ROLE;
SELECT phi_audit_seal() > 0 AS sealed;
-- (the attacker's entries only: the worker writes the victim tokenization's
-- final entries at a moment of its own, before or after the mark)
SELECT r->>'kind' AS kind, r->>'role' AS role, r->'detail'->>'domain' AS domain,
       (r->'detail'->>'count')::int AS attempts
  FROM phi_guard.audit_log, LATERAL (SELECT record::jsonb AS r) j
 WHERE xid > :'mark' AND r->>'kind' = 'tokenize' AND r->>'role' = 'regress_sh_enc'
 ORDER BY domain, attempts;

------------------------------------------------------------------------
-- Break-glass use entries: alice opens a grant; the application role
-- then calls break_glass_use directly in every way SQL allows, naming the
-- protected table, and no use entry appears; a read of the table through
-- its policy writes one
------------------------------------------------------------------------
CREATE VIEW regress_sh_forge_view AS
  SELECT phi_guard.break_glass_use('regress_sh_chart'::regclass) AS used;
CREATE FUNCTION regress_sh_forge_fn() RETURNS bool LANGUAGE plpgsql AS $$
BEGIN
  RETURN phi_guard.break_glass_use('regress_sh_chart'::regclass);
END
$$;
CREATE TABLE regress_sh_forge_check (x int CHECK (phi_guard.break_glass_use('regress_sh_chart'::regclass)));
CREATE TABLE regress_sh_decoy (x int);
ALTER TABLE regress_sh_decoy ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY regress_sh_decoy_forge ON regress_sh_decoy
  USING ((SELECT phi_guard.break_glass_use('regress_sh_chart'::regclass)));
INSERT INTO regress_sh_decoy VALUES (1);
GRANT SELECT ON regress_sh_forge_view, regress_sh_decoy TO regress_sh_app;
GRANT INSERT ON regress_sh_forge_check TO regress_sh_app;
-- every role may execute it (row security runs policies as the reader)
SELECT has_function_privilege('regress_sh_app', 'phi_guard.break_glass_use(regclass)', 'EXECUTE') AS app_may_call;

SET ROLE regress_sh_app;
BEGIN;
SELECT phi_set_context(:'alice');
SELECT phi_break_glass('patient unconscious in the ER', 10) IS NOT NULL AS opened;
COMMIT;
RESET ROLE;
SELECT pg_current_xact_id() AS mark \gset
SET ROLE regress_sh_app;
BEGIN;
SELECT phi_set_context(:'alice');
SELECT phi_guard.break_glass_use('regress_sh_chart'::regclass) AS direct_call;
SELECT used AS through_view FROM regress_sh_forge_view;
SELECT regress_sh_forge_fn() AS through_function;
INSERT INTO regress_sh_forge_check VALUES (1);
SELECT count(*) AS through_decoy_policy FROM regress_sh_decoy;
PREPARE regress_sh_forge AS SELECT phi_guard.break_glass_use('regress_sh_chart'::regclass);
EXECUTE regress_sh_forge;
DEALLOCATE regress_sh_forge;
COMMIT;
RESET ROLE;
SELECT phi_audit_seal() >= 0 AS sealed;
SELECT count(*) AS forged_uses
  FROM phi_guard.audit_log, LATERAL (SELECT record::jsonb AS r) j
 WHERE xid > :'mark' AND r->>'kind' = 'break_glass_use';

-- a real read under the grant: one use per statement, with the table; a
-- direct call in the same statement adds nothing to the count
SELECT pg_current_xact_id() AS mark \gset
SET ROLE regress_sh_app;
BEGIN;
SELECT phi_set_context(:'alice');
SELECT array_agg(id ORDER BY id) AS read_under_grant FROM regress_sh_chart;
SELECT phi_guard.break_glass_use('regress_sh_chart'::regclass) AS direct_too, count(*) AS n
  FROM regress_sh_chart;
SELECT phi_break_glass_end() AS ended;
COMMIT;
RESET ROLE;
SELECT phi_audit_seal() > 0 AS sealed;
SELECT r->>'kind' AS kind, r->>'table' AS tbl, r->>'app_user' AS app_user,
       (r->'detail'->>'count')::int AS uses
  FROM phi_guard.audit_log, LATERAL (SELECT record::jsonb AS r) j
 WHERE xid > :'mark' AND r->>'kind' = 'break_glass_use'
 ORDER BY xid, id;
SELECT ok FROM phi_audit_verify();

DROP VIEW regress_sh_forge_view;
DROP FUNCTION regress_sh_forge_fn();
DROP TABLE regress_sh_forge_check, regress_sh_decoy, regress_sh_chart;
DROP ROLE regress_sh_app, regress_sh_enc;
