-- Rule (SPEC §8): sealing turns audit entries into alerts, each a row of
-- phi_guard.alerts (for phi_auditor only) and a NOTIFY phi_guard_alert:
-- bulk_disclosure (an access revealing more than alert_bulk_rows values),
-- repeated_denials (more than alert_denials refusals by one app user or
-- database role within 5 minutes, one alert per 5 minutes, refusals
-- counted even though their transactions rolled back), break_glass_open,
-- safeguard_changed (audit disabled, protection removed, a key's access
-- rule removed, a permission granted, a context key added or revoked) and
-- off_hours (a disclosure outside alert_hours, at most one per user and
-- hour; empty: none).  Below a threshold, nothing; the settings are
-- superuser-only and checked.
\set VERBOSITY terse
SET search_path = public, phi_guard;
\getenv abs_srcdir PG_ABS_SRCDIR
\set signer 'python3 ' :abs_srcdir '/test/context/sign_context.py'
\set pem `:signer pem k_al`
\set dana `:signer token k_al sub=dana tenant=clinic-z roles=clinician exp=+600`
\set erin `:signer token k_al sub=erin tenant=clinic-z roles=billing exp=+600`
SELECT current_user AS su \gset

-- the settings: defaults, checks, superuser only
SHOW phi_guard.alert_bulk_rows;
SHOW phi_guard.alert_denials;
SHOW phi_guard.alert_hours;
SHOW phi_guard.alert_timezone;
SELECT regress_try($$SET phi_guard.alert_hours = '7-19'$$) AS malformed_hours,
       regress_try($$SET phi_guard.alert_hours = '07:00-07:00'$$) AS no_hours,
       regress_try($$SET phi_guard.alert_hours = '07:00-24:00'$$) AS hour_24,
       regress_try($$SET phi_guard.alert_timezone = 'Mars/Olympus_Mons'$$) AS unknown_zone,
       regress_try($$SET phi_guard.alert_timezone = ''$$) AS empty_zone,
       regress_try($$SET phi_guard.alert_bulk_rows = -1$$) AS negative_rows;
CREATE ROLE regress_al_app IN ROLE phi_app;
CREATE ROLE regress_al_auditor IN ROLE phi_auditor;
SET ROLE regress_al_app;
SELECT regress_try($$SET phi_guard.alert_bulk_rows = 0$$) AS app_sets_rows,
       regress_try($$SET phi_guard.alert_hours = ''$$) AS app_sets_hours,
       regress_try($$SELECT * FROM phi_guard.alerts$$) AS app_reads,
       regress_try($$SELECT phi_guard.audit_denial('forged')$$) AS app_forges_denial,
       regress_try($$SELECT phi_guard.alert_raise('2026-01-01T00:00:00Z', 'off_hours', NULL, NULL, NULL, '{}')$$) AS app_forges_alert;
SET ROLE regress_al_auditor;
SELECT regress_try($$SELECT * FROM phi_guard.alerts$$) AS auditor_reads;
RESET ROLE;

-- each step seals and shows the alerts it raised (the superuser, whose name
-- varies, as "(superuser)"); what earlier files left unsealed is sealed first
SELECT phi_audit_seal() >= 0 AS sealed;
CREATE TABLE regress_al_seen AS SELECT * FROM phi_guard.alerts;
CREATE FUNCTION regress_al_new(OUT kind text, OUT db_user text, OUT app_user text,
                               OUT tenant text, OUT detail jsonb)
RETURNS SETOF record LANGUAGE plpgsql AS $$
BEGIN
  PERFORM phi_guard.phi_audit_seal();
  RETURN QUERY
    WITH n AS (SELECT * FROM phi_guard.alerts EXCEPT ALL SELECT * FROM regress_al_seen),
         i AS (INSERT INTO regress_al_seen SELECT * FROM n)
    SELECT n.kind,
           CASE WHEN n.db_user = current_setting('regress.su') THEN '(superuser)' ELSE n.db_user END,
           n.app_user, n.tenant,
           n.detail - 'query_id' - 'request_id' - 'local_time' - 'hour' - 'grant' - 'expires_at' - 'subject'
      FROM n ORDER BY n.ts, n.kind;
END
$$;
SET regress.su = :'su';
SELECT * FROM regress_al_new();

-- safeguard_changed: a context key added
SELECT phi_context_key_add('k_al', :'pem');
SELECT * FROM regress_al_new();

-- bulk_disclosure: more than alert_bulk_rows values of one key in one
-- statement; exactly that many is no alert
SELECT phi_key_create('regress_al_key') > 0 AS created;
CREATE TABLE regress_al_pt (id int PRIMARY KEY, tenant text NOT NULL, v phi_ciphertext);
INSERT INTO regress_al_pt SELECT g, 'clinic-z', phi_encrypt('value ' || g, 'regress_al_key', 'pt:' || g)
  FROM generate_series(1, 6) g;
SET phi_guard.alert_bulk_rows = 5;
SELECT count(phi_decrypt(v, 'pt:' || id)) FROM regress_al_pt WHERE id <= 5;
SELECT * FROM regress_al_new();
SELECT count(phi_decrypt(v, 'pt:' || id)) FROM regress_al_pt;
SELECT * FROM regress_al_new();
SET phi_guard.alert_bulk_rows = 0;
SELECT count(phi_decrypt(v, 'pt:' || id)) FROM regress_al_pt;
SELECT * FROM regress_al_new();
RESET phi_guard.alert_bulk_rows;

-- off_hours: a disclosure outside the working hours (two hours from now,
-- in UTC; a range may wrap past midnight), once per user and hour; none
-- inside them, none when alert_hours is empty
SELECT to_char(now() AT TIME ZONE 'UTC' + interval '2 hours', 'HH24:00') || '-' ||
       to_char(now() AT TIME ZONE 'UTC' + interval '3 hours', 'HH24:00') AS later,
       to_char(now() AT TIME ZONE 'UTC' - interval '1 hour', 'HH24:00') || '-' ||
       to_char(now() AT TIME ZONE 'UTC' + interval '2 hours', 'HH24:00') AS around \gset
SET phi_guard.alert_timezone = 'UTC';
SET phi_guard.alert_hours = :'around';
SELECT phi_decrypt(v, 'pt:1') IS NOT NULL AS read FROM regress_al_pt WHERE id = 1;
SELECT * FROM regress_al_new();
SET phi_guard.alert_hours = :'later';
SELECT phi_decrypt(v, 'pt:1') IS NOT NULL AS read FROM regress_al_pt WHERE id = 1;
SELECT phi_decrypt(v, 'pt:2') IS NOT NULL AS read FROM regress_al_pt WHERE id = 2;
SELECT kind, db_user, app_user, detail - 'hours' AS detail FROM regress_al_new();
SELECT phi_decrypt(v, 'pt:3') IS NOT NULL AS read FROM regress_al_pt WHERE id = 3;
SELECT * FROM regress_al_new();
SET phi_guard.alert_hours = '';
SELECT phi_decrypt(v, 'pt:4') IS NOT NULL AS read FROM regress_al_pt WHERE id = 4;
SELECT * FROM regress_al_new();
RESET phi_guard.alert_hours;
RESET phi_guard.alert_timezone;

-- repeated_denials: refusals (rolled back) counted per database role
-- (the session user) without a context: rejected tokens and refused reads
-- make 5, no alert; a refused break-glass makes 6, an alert; more within 5
-- minutes, no second one
SELECT phi_key_access('regress_al_key', 'patient.read');
CREATE ROLE regress_al_db LOGIN IN ROLE phi_app, phi_decryptor;
GRANT SELECT ON regress_al_pt TO regress_al_db;
\c - regress_al_db
SET search_path = public, phi_guard;
SELECT regress_try($$SELECT phi_set_context('not a token')$$) AS bad_token
  FROM generate_series(1, 3);
SELECT regress_try($$SELECT phi_decrypt(v, 'pt:1') FROM regress_al_pt WHERE id = 1$$) AS no_context;
SELECT regress_try($$SELECT phi_decrypt(v, 'pt:2') FROM regress_al_pt WHERE id = 2$$) AS no_context;
\c - :su
SET search_path = public, phi_guard;
SET regress.su = :'su';
SELECT * FROM regress_al_new();
\c - regress_al_db
SET search_path = public, phi_guard;
SELECT regress_try($$SELECT phi_break_glass('patient unconscious in the ER')$$) AS break_glass;
\c - :su
SET search_path = public, phi_guard;
SET regress.su = :'su';
SELECT * FROM regress_al_new();
\c - regress_al_db
SET search_path = public, phi_guard;
SELECT regress_try($$SELECT phi_decrypt(v, 'pt:3') FROM regress_al_pt WHERE id = 3$$) AS no_context;
\c - :su
SET search_path = public, phi_guard;
SET regress.su = :'su';
SELECT * FROM regress_al_new();
-- per app user under a context: one statement of 6 refusals
BEGIN;
SELECT phi_set_context(:'erin');
SELECT count(regress_try($$SELECT phi_break_glass('patient unconscious in the ER')$$))
  FROM generate_series(1, 6);
ROLLBACK;
SELECT * FROM regress_al_new();

-- break_glass_open: the grant, never its free-text reason
BEGIN;
SELECT phi_set_context(:'dana');
SELECT phi_break_glass('patient unconscious in the ER', 15) IS NOT NULL AS opened;
SELECT phi_break_glass_end() AS ended;
COMMIT;
SELECT * FROM regress_al_new();

-- safeguard_changed: a key's rule removed (a new rule is none), a
-- permission granted, auditing disabled (enabling is none), protection
-- removed (protecting is none), a context key revoked
SELECT phi_key_access('regress_al_key', NULL);
SELECT phi_key_access('regress_al_key', 'patient.read');
SELECT phi_permission_grant('billing', 'break_glass');
SELECT phi_permission_revoke('billing', 'break_glass');
SELECT phi_audit_enable('regress_al_pt');
SET client_min_messages = error;  -- (the superuser bypasses row security: a warning)
SELECT phi_protect_table('regress_al_pt', 'tenant');
RESET client_min_messages;
SELECT * FROM regress_al_new();
SELECT phi_audit_disable('regress_al_pt');
SELECT phi_unprotect_table('regress_al_pt');
SELECT phi_context_key_revoke('k_al');
SELECT * FROM regress_al_new();

-- the view shows the table, and the alerts are kept by pg_dump
SELECT count(*) = (SELECT count(*) FROM phi_guard.alert_log) AS view_is_table FROM phi_guard.alerts;
SELECT 'phi_guard.alert_log'::regclass = ANY (extconfig) AS dumped
  FROM pg_extension WHERE extname = 'phi_guard';

RESET regress.su;
DROP FUNCTION regress_al_new();
DROP TABLE regress_al_seen, regress_al_pt;
SELECT phi_key_access('regress_al_key', NULL);
DROP ROLE regress_al_app, regress_al_auditor, regress_al_db;
