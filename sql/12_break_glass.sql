-- Rule (SPEC §5): phi_break_glass opens emergency read access for the
-- context's user within its tenant only, for a context whose roles have the
-- break_glass permission, with a reason of the minimum length and minutes
-- under the ceiling; the grant holds across transactions and connections
-- until it expires or is ended, never crosses tenants or users, never
-- widens writes; opening, every use and ending are audit entries with the
-- reason and the purpose of use.
\set VERBOSITY terse
SET search_path = public, phi_guard;
\getenv abs_srcdir PG_ABS_SRCDIR
\set signer 'python3 ' :abs_srcdir '/test/context/sign_context.py'
\set alice `:signer token k1 sub=alice tenant=clinic-a roles=clinician exp=+600 purpose=emergency`
\set alice_b `:signer token k1 sub=alice tenant=clinic-b roles=clinician exp=+600`
\set carol `:signer token k1 sub=carol tenant=clinic-a roles=clinician exp=+600`
\set billy `:signer token k1 sub=billy tenant=clinic-a roles=billing exp=+600`
SELECT current_user AS su \gset

CREATE ROLE regress_bg_app LOGIN IN ROLE phi_app;
CREATE TABLE regress_chart (id int PRIMARY KEY, tenant text NOT NULL, assigned text, note text);
GRANT SELECT, UPDATE ON regress_chart TO regress_bg_app;
SELECT phi_protect_table('regress_chart', 'tenant');
-- finer access than the tenant: clinicians see the patients assigned to them
DROP POLICY phi_guard_tenant_access ON regress_chart;
CREATE POLICY regress_care_team ON regress_chart
  USING (assigned = (SELECT phi_user_id()));
INSERT INTO regress_chart VALUES (1, 'clinic-a', 'alice', 'a1'), (2, 'clinic-a', 'carol', 'a2'),
  (3, 'clinic-a', 'carol', 'a3'), (4, 'clinic-b', 'alice', 'b4');

\c - regress_bg_app
\set VERBOSITY terse
SET search_path = public, phi_guard;
-- refusals: no context, no permission, a short reason, minutes out of range
SELECT regress_try($$SELECT phi_break_glass('patient unconscious in the ER', 10)$$) AS no_context;
BEGIN;
SELECT phi_set_context(:'billy');
SELECT regress_try($$SELECT phi_break_glass('patient unconscious in the ER', 10)$$) AS billing;
COMMIT;
BEGIN;
SELECT phi_set_context(:'alice');
SELECT regress_try($$SELECT phi_break_glass('urgent', 10)$$) AS short_reason,
       regress_try($$SELECT phi_break_glass(NULL, 10)$$) AS null_reason,
       regress_try($$SELECT phi_break_glass('          ', 10)$$) AS blank_reason,
       regress_try($$SELECT phi_break_glass('patient unconscious in the ER', 0)$$) AS zero_minutes,
       regress_try($$SELECT phi_break_glass('patient unconscious in the ER', 61)$$) AS over_ceiling,
       regress_try($$SELECT phi_break_glass('patient unconscious in the ER', NULL)$$) AS null_minutes;
SELECT regress_try('SET phi_guard.break_glass_max_minutes = 600') AS app_raises_ceiling;
-- before: only her own patient
SELECT id, note FROM regress_chart ORDER BY id;
SELECT phi_break_glass_active() AS active_before;
SELECT phi_break_glass('patient unconscious in the ER') AS expires \gset
SELECT :'expires'::timestamptz BETWEEN now() + interval '29 minutes'
                                   AND now() + interval '31 minutes' AS expires_in_30;
SELECT phi_break_glass_active() AS active;
-- all of her tenant's patients, none of the other tenant's, reads only
SELECT id, note FROM regress_chart ORDER BY id;
UPDATE regress_chart SET note = 'changed' WHERE id IN (1, 2);
SELECT id, note FROM regress_chart ORDER BY id;
COMMIT;

-- the grant holds in later transactions and on other connections
BEGIN;
SELECT phi_set_context(:'alice');
SELECT phi_break_glass_active() AS next_transaction, count(*) FROM regress_chart;
COMMIT;
\c - regress_bg_app
SET search_path = public, phi_guard;
BEGIN;
SELECT phi_set_context(:'alice');
SELECT phi_break_glass_active() AS new_connection, count(*) FROM regress_chart;
COMMIT;
-- but only for her and only in her tenant
BEGIN;
SELECT phi_set_context(:'carol');
SELECT phi_break_glass_active() AS carol, count(*) FROM regress_chart;
COMMIT;
BEGIN;
SELECT phi_set_context(:'alice_b');
SELECT phi_break_glass_active() AS other_tenant, array_agg(id) FROM regress_chart;
COMMIT;
SELECT phi_break_glass_active() AS without_context, count(*) FROM regress_chart;

-- it ends when told to
BEGIN;
SELECT phi_set_context(:'alice');
SELECT phi_break_glass_end() AS ended, phi_break_glass_end() AS ended_again;
SELECT phi_break_glass_active() AS active_after_end, count(*) FROM regress_chart;
COMMIT;

-- and when it expires (a ceiling of 2 minutes here; expiry moved forward)
\c - :su
SET search_path = public, phi_guard;
SET phi_guard.break_glass_max_minutes = 2;
BEGIN;
SELECT phi_set_context(:'alice');
SELECT regress_try($$SELECT phi_break_glass('patient unconscious in the ER', 3)$$) AS over_test_ceiling;
SELECT phi_break_glass('second emergency, cardiac arrest', 2) IS NOT NULL AS opened;
COMMIT;
RESET phi_guard.break_glass_max_minutes;
SELECT count(*) AS open_grants FROM phi_guard.break_glass WHERE ended_at IS NULL AND expires_at > now();
UPDATE phi_guard.break_glass SET expires_at = clock_timestamp() - interval '1 second' WHERE ended_at IS NULL;
\c - regress_bg_app
SET search_path = public, phi_guard;
BEGIN;
SELECT phi_set_context(:'alice');
SELECT phi_break_glass_active() AS active_after_expiry, count(*) FROM regress_chart;
SELECT phi_break_glass_end() AS nothing_to_end;
COMMIT;
-- the application can neither read nor forge grants
SELECT regress_try('SELECT count(*) FROM phi_guard.break_glass') AS read_grants,
       regress_try($$INSERT INTO phi_guard.break_glass (user_id, tenant, reason, expires_at)
                     VALUES ('alice', 'clinic-a', 'forged grant here', now() + interval '1 hour')$$) AS forge;

-- the audit trail: open, uses (per statement), end, with reason and purpose
\c - :su
SET search_path = public, phi_guard;
SELECT phi_audit_seal() > 0 AS sealed;
SELECT r->>'kind' AS kind, r->>'table' AS tbl, r->>'app_user' AS app_user, r->>'tenant' AS tenant,
       r->>'purpose' AS purpose, r->'detail'->>'reason' AS reason, r->'detail'->>'minutes' AS minutes,
       r->'detail'->>'count' AS uses
  FROM phi_guard.audit_log, LATERAL (SELECT record::jsonb AS r) j
 WHERE r->>'kind' LIKE 'break\_glass\_%'
 ORDER BY r->>'ts';
SELECT count(*) AS details_in_utc FROM phi_guard.audit_log, LATERAL (SELECT record::jsonb AS r) j
 WHERE r->>'kind' = 'break_glass_open' AND r->'detail'->>'expires_at' ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$';

DROP TABLE regress_chart;
DROP ROLE regress_bg_app;
