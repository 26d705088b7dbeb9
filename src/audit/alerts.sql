-- src/audit/alerts.sql: alerts derived from the sealed audit log (SPEC §8).
--
-- Owns: the alerts raised so far (alert_log, read through the view
-- alerts), the recent denials they are counted from (alert_denials), the
-- scan that sealing runs over each new block (alert_scan), and the writer
-- of denial entries that SQL functions call before they refuse
-- (audit_denial).  References the roles (src/common/schema.sql) and the
-- audit log (src/audit/audit.sql).
--
-- Alerts come from committed, sealed entries only: an access refused in a
-- transaction that then rolled back still has its entry (the audit worker
-- writes denials in a transaction of its own), so it still counts.  Each
-- alert is a row of alert_log and a NOTIFY phi_guard_alert in the sealing
-- transaction: both or neither.

CREATE TABLE phi_guard.alert_log (
  ts       pg_catalog.timestamptz NOT NULL,
  kind     pg_catalog.text NOT NULL,
  db_user  pg_catalog.text,
  app_user pg_catalog.text,
  tenant   pg_catalog.text,
  detail   pg_catalog.jsonb NOT NULL
);
CREATE INDEX alert_log_kind_ts ON phi_guard.alert_log (kind, ts);
COMMENT ON TABLE phi_guard.alert_log IS
  'alerts raised by sealing (SPEC §8); read through phi_guard.alerts';
SELECT pg_catalog.pg_extension_config_dump('phi_guard.alert_log', '');

-- Denials of the last 5 minutes (by entry time), per subject: the app user
-- ('app_user:<sub>') of an entry written under a context, else its
-- database role ('db_user:<name>'); n is the entry's count.
CREATE TABLE phi_guard.alert_denials (
  ts      pg_catalog.timestamptz NOT NULL,
  subject pg_catalog.text NOT NULL,
  n       pg_catalog.int8 NOT NULL
);
CREATE INDEX alert_denials_subject_ts ON phi_guard.alert_denials (subject, ts);
COMMENT ON TABLE phi_guard.alert_denials IS
  'internal: the denials of the last 5 minutes that repeated_denials alerts count';

CREATE VIEW phi_guard.alerts AS
  SELECT a.ts, a.kind, a.db_user, a.app_user, a.tenant, a.detail
    FROM phi_guard.alert_log a;
COMMENT ON VIEW phi_guard.alerts IS
  'alerts: bulk_disclosure, repeated_denials, break_glass_open, safeguard_changed, off_hours (each also sent as NOTIFY phi_guard_alert); for phi_auditor';

-- One alert: a row of alert_log and its notification, whose payload is
-- {"kind","ts","db_user","app_user","tenant","detail"} (ts as the entry
-- wrote it).  A payload too long for NOTIFY (8000 bytes) is sent with
-- detail {"truncated": true}; the row keeps the whole detail.  While
-- PostgreSQL's notification queue is over half full (a listener that
-- never reads), the alert is kept but not sent, with a WARNING: a full
-- queue would fail the sealing transaction, and sealing must go on.
CREATE FUNCTION phi_guard.alert_raise(ts pg_catalog.text, kind pg_catalog.text,
                                      db_user pg_catalog.text, app_user pg_catalog.text,
                                      tenant pg_catalog.text, detail pg_catalog.jsonb)
  RETURNS void
  LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
  SET search_path = pg_catalog, pg_temp AS
$$
#variable_conflict use_variable
DECLARE
  payload pg_catalog.text;
BEGIN
  INSERT INTO phi_guard.alert_log (ts, kind, db_user, app_user, tenant, detail)
    VALUES (ts::pg_catalog.timestamptz, kind, db_user, app_user, tenant, detail);
  payload := pg_catalog.json_build_object('kind', kind, 'ts', ts, 'db_user', db_user,
                                          'app_user', app_user, 'tenant', tenant,
                                          'detail', detail)::pg_catalog.text;
  IF pg_catalog.octet_length(payload) OPERATOR(pg_catalog.>=) 8000 THEN
    payload := pg_catalog.json_build_object('kind', kind, 'ts', ts, 'db_user', db_user,
                                            'app_user', app_user, 'tenant', tenant,
                                            'detail', '{"truncated": true}'::pg_catalog.jsonb)::pg_catalog.text;
  END IF;
  IF pg_catalog.pg_notification_queue_usage() OPERATOR(pg_catalog.>) 0.5 THEN
    RAISE WARNING 'phi_guard alert % not sent: the notification queue is over half full', kind
      USING DETAIL = 'The alert is in phi_guard.alerts.',
            HINT = 'A session listening on some channel does not read its notifications; see pg_notification_queue_usage().';
  ELSE
    PERFORM pg_catalog.pg_notify('phi_guard_alert', payload);
  END IF;
END
$$;
COMMENT ON FUNCTION phi_guard.alert_raise(pg_catalog.text, pg_catalog.text, pg_catalog.text,
                                          pg_catalog.text, pg_catalog.text, pg_catalog.jsonb) IS
  'internal: records one alert in alert_log and sends it as NOTIFY phi_guard_alert';

-- The alerts of the entries with lo <= xid < hi, the block sealing has
-- just made (the settings come from the caller: SPEC §8).  Only entries
-- whose kind can raise an alert are parsed: the kind is read from the
-- record's first bytes (audit_record.c writes it among the first keys).
-- Returns the number of alerts raised.
CREATE FUNCTION phi_guard.alert_scan(lo pg_catalog.xid8, hi pg_catalog.xid8,
                                     bulk_rows pg_catalog.int8, denials pg_catalog.int8,
                                     hours pg_catalog.text, tz pg_catalog.text)
  RETURNS pg_catalog.int4
  LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
  SET search_path = pg_catalog, pg_temp AS
$$
#variable_conflict use_variable
DECLARE
  disclosures pg_catalog.text[] := ARRAY['decrypt', 'decrypt_masked', 'detokenize'];
  refusals pg_catalog.text[] := ARRAY['context_rejected', 'access_denied'];
  safeguards pg_catalog.text[] := ARRAY['audit_disable', 'unprotect', 'context_key_add',
                                        'context_key_revoke', 'permission_grant',
                                        'key_access', 'ddl'];
  watched pg_catalog.text[] := disclosures OPERATOR(pg_catalog.||) refusals
                               OPERATOR(pg_catalog.||) safeguards
                               OPERATOR(pg_catalog.||) 'break_glass_open'::pg_catalog.text;
  e record;
  t pg_catalog.timestamptz;
  n pg_catalog.int8;
  subject pg_catalog.text;
  local_ts pg_catalog.timestamp;
  opens pg_catalog.time;
  closes pg_catalog.time;
  inside pg_catalog.bool;
  raised pg_catalog.int4 := 0;
BEGIN
  IF hours OPERATOR(pg_catalog.<>) '' THEN
    opens := pg_catalog.split_part(hours, '-', 1)::pg_catalog.time;
    closes := pg_catalog.split_part(hours, '-', 2)::pg_catalog.time;
  END IF;
  FOR e IN SELECT r.*
             FROM phi_guard.audit_log l
            CROSS JOIN LATERAL pg_catalog.json_to_record(l.record::pg_catalog.json)
                  AS r(ts pg_catalog.text, kind pg_catalog.text, "table" pg_catalog.text,
                       db_user pg_catalog.text, app_user pg_catalog.text,
                       tenant pg_catalog.text, request_id pg_catalog.text,
                       detail pg_catalog.jsonb)
            WHERE l.xid OPERATOR(pg_catalog.>=) lo AND l.xid OPERATOR(pg_catalog.<) hi
              AND pg_catalog.split_part(pg_catalog.split_part(pg_catalog.substr(l.record, 1, 96),
                                                              '"kind":"', 2), '"', 1)
                  OPERATOR(pg_catalog.=) ANY (watched)
            ORDER BY r.ts, l.xid, l.id
  LOOP
    t := e.ts::pg_catalog.timestamptz;
    -- who off_hours and repeated_denials count against
    subject := CASE WHEN e.app_user IS NOT NULL THEN 'app_user:' OPERATOR(pg_catalog.||) e.app_user
                    ELSE 'db_user:' OPERATOR(pg_catalog.||) COALESCE(e.db_user, '') END;
    IF e.kind OPERATOR(pg_catalog.=) ANY (disclosures) THEN
      -- bulk_disclosure: one statement's access entry revealing more than
      -- bulk_rows values (its final entry: an intent counts 0)
      n := COALESCE((e.detail OPERATOR(pg_catalog.->>) 'count')::pg_catalog.int8, 0);
      IF bulk_rows OPERATOR(pg_catalog.>) 0 AND n OPERATOR(pg_catalog.>) bulk_rows THEN
        PERFORM phi_guard.alert_raise(e.ts, 'bulk_disclosure', e.db_user, e.app_user, e.tenant,
          pg_catalog.jsonb_build_object('access', e.kind, 'key', e.detail OPERATOR(pg_catalog.->) 'key',
                                        'values', n, 'threshold', bulk_rows,
                                        'request_id', e.request_id,
                                        'query_id', e.detail OPERATOR(pg_catalog.->) 'query_id'));
        raised := raised OPERATOR(pg_catalog.+) 1;
      END IF;
      -- off_hours: outside [opens, closes) in tz (a range may wrap past
      -- midnight), at most one per subject and local hour
      CONTINUE WHEN opens IS NULL;
      local_ts := t AT TIME ZONE tz;
      inside := CASE WHEN opens OPERATOR(pg_catalog.<=) closes
                     THEN local_ts::pg_catalog.time OPERATOR(pg_catalog.>=) opens
                          AND local_ts::pg_catalog.time OPERATOR(pg_catalog.<) closes
                     ELSE local_ts::pg_catalog.time OPERATOR(pg_catalog.>=) opens
                          OR local_ts::pg_catalog.time OPERATOR(pg_catalog.<) closes END;
      CONTINUE WHEN inside;
      CONTINUE WHEN EXISTS (
        SELECT FROM phi_guard.alert_log a
         WHERE a.kind OPERATOR(pg_catalog.=) 'off_hours'
           AND a.ts OPERATOR(pg_catalog.>) (t OPERATOR(pg_catalog.-) '1 hour'::pg_catalog.interval)
           AND a.detail OPERATOR(pg_catalog.->>) 'subject' OPERATOR(pg_catalog.=) subject
           AND a.detail OPERATOR(pg_catalog.->>) 'hour'
               OPERATOR(pg_catalog.=) pg_catalog.to_char(local_ts, 'YYYY-MM-DD HH24'));
      PERFORM phi_guard.alert_raise(e.ts, 'off_hours', e.db_user, e.app_user, e.tenant,
        pg_catalog.jsonb_build_object('access', e.kind, 'key', e.detail OPERATOR(pg_catalog.->) 'key',
                                      'local_time', pg_catalog.to_char(local_ts, 'YYYY-MM-DD"T"HH24:MI:SS'),
                                      'hour', pg_catalog.to_char(local_ts, 'YYYY-MM-DD HH24'),
                                      'hours', hours, 'timezone', tz, 'subject', subject,
                                      'request_id', e.request_id));
      raised := raised OPERATOR(pg_catalog.+) 1;
    ELSIF e.kind OPERATOR(pg_catalog.=) ANY (refusals) THEN
      -- repeated_denials: more than denials refusals by one subject within
      -- 5 minutes, at most one alert per subject and 5 minutes
      INSERT INTO phi_guard.alert_denials (ts, subject, n)
        VALUES (t, subject, COALESCE((e.detail OPERATOR(pg_catalog.->>) 'count')::pg_catalog.int8, 1));
      DELETE FROM phi_guard.alert_denials d
       WHERE d.ts OPERATOR(pg_catalog.<=) (t OPERATOR(pg_catalog.-) '10 minutes'::pg_catalog.interval);
      SELECT pg_catalog.sum(d.n) INTO n FROM phi_guard.alert_denials d
       WHERE d.subject OPERATOR(pg_catalog.=) subject
         AND d.ts OPERATOR(pg_catalog.>) (t OPERATOR(pg_catalog.-) '5 minutes'::pg_catalog.interval)
         AND d.ts OPERATOR(pg_catalog.<=) t;
      CONTINUE WHEN n OPERATOR(pg_catalog.<=) denials;
      CONTINUE WHEN EXISTS (
        SELECT FROM phi_guard.alert_log a
         WHERE a.kind OPERATOR(pg_catalog.=) 'repeated_denials'
           AND a.ts OPERATOR(pg_catalog.>) (t OPERATOR(pg_catalog.-) '5 minutes'::pg_catalog.interval)
           AND a.detail OPERATOR(pg_catalog.->>) 'subject' OPERATOR(pg_catalog.=) subject);
      PERFORM phi_guard.alert_raise(e.ts, 'repeated_denials', e.db_user, e.app_user, e.tenant,
        pg_catalog.jsonb_build_object('denials', n, 'threshold', denials, 'window_seconds', 300,
                                      'subject', subject, 'last', e.kind,
                                      'reason', e.detail OPERATOR(pg_catalog.->) 'reason'));
      raised := raised OPERATOR(pg_catalog.+) 1;
    ELSIF e.kind OPERATOR(pg_catalog.=) 'break_glass_open' THEN
      -- the reason is free text: it stays in the audit log, out of payloads
      PERFORM phi_guard.alert_raise(e.ts, 'break_glass_open', e.db_user, e.app_user, e.tenant,
        pg_catalog.jsonb_build_object('grant', e.detail OPERATOR(pg_catalog.->) 'grant',
                                      'minutes', e.detail OPERATOR(pg_catalog.->) 'minutes',
                                      'expires_at', e.detail OPERATOR(pg_catalog.->) 'expires_at',
                                      'request_id', e.request_id));
      raised := raised OPERATOR(pg_catalog.+) 1;
    ELSE
      -- safeguard_changed: auditing or protection removed, a context key
      -- added or revoked, a permission granted, a key's access rule
      -- removed, DDL that switched row security or an audit trigger off
      -- or dropped or altered a policy or trigger
      CONTINUE WHEN e.kind OPERATOR(pg_catalog.=) 'key_access'
                    AND e.detail OPERATOR(pg_catalog.->>) 'permission' IS NOT NULL;
      CONTINUE WHEN e.kind OPERATOR(pg_catalog.=) 'ddl'
                    AND NOT (e.detail OPERATOR(pg_catalog.@>) '{"audit_triggers_enabled": false}'
                             OR e.detail OPERATOR(pg_catalog.@>) '{"row_security": false}'
                             OR e.detail OPERATOR(pg_catalog.@>) '{"force_row_security": false}'
                             OR e.detail OPERATOR(pg_catalog.->>) 'command'
                                OPERATOR(pg_catalog.=) ANY (ARRAY['DROP POLICY', 'ALTER POLICY', 'DROP TRIGGER']));
      PERFORM phi_guard.alert_raise(e.ts, 'safeguard_changed', e.db_user, e.app_user, e.tenant,
        pg_catalog.jsonb_build_object('change', e.kind, 'table', e."table")
        OPERATOR(pg_catalog.||) COALESCE(e.detail, '{}'::pg_catalog.jsonb));
      raised := raised OPERATOR(pg_catalog.+) 1;
    END IF;
  END LOOP;
  RETURN raised;
END
$$;
COMMENT ON FUNCTION phi_guard.alert_scan(pg_catalog.xid8, pg_catalog.xid8, pg_catalog.int8,
                                         pg_catalog.int8, pg_catalog.text, pg_catalog.text) IS
  'internal, called by sealing: raises the alerts of the entries of a new block; returns how many';

-- A denial entry (kind access_denied, written even when the transaction
-- rolls back) for a refusal that a phi_guard SQL function is about to
-- raise; reason names the rule, never a value.
CREATE FUNCTION phi_guard.audit_denial(reason pg_catalog.text) RETURNS void
  AS 'MODULE_PATHNAME', 'phi_guard_audit_denial'
  LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION phi_guard.audit_denial(pg_catalog.text) IS
  'internal: records a refusal as an access_denied entry before a phi_guard function raises it; granted to no one';

REVOKE ALL ON phi_guard.alert_log, phi_guard.alert_denials, phi_guard.alerts FROM PUBLIC;
REVOKE ALL ON FUNCTION
  phi_guard.alert_raise(pg_catalog.text, pg_catalog.text, pg_catalog.text, pg_catalog.text,
                        pg_catalog.text, pg_catalog.jsonb),
  phi_guard.alert_scan(pg_catalog.xid8, pg_catalog.xid8, pg_catalog.int8, pg_catalog.int8,
                       pg_catalog.text, pg_catalog.text),
  phi_guard.audit_denial(pg_catalog.text)
  FROM PUBLIC;
GRANT SELECT ON phi_guard.alerts TO phi_auditor;
