-- Rule (SPEC §6, compact row entries): a statement that changes at least
-- phi_guard.audit_compact_rows rows (100 by default; 0: never) writes one
-- entry of kind "statement" holding who, when, where and why, then one
-- compact entry per row holding only v (2), kind, table, row_key, columns
-- and stmt, the statement entry's id in the same transaction.  Smaller
-- statements keep full entries.  audit_events and phi_access_report show
-- a compact entry with its statement's fields; sealing and verification
-- treat it like any entry.  Only a superuser may change the setting.
\set VERBOSITY terse
SET search_path = public, phi_guard;
\getenv abs_srcdir PG_ABS_SRCDIR
\set signer 'python3 ' :abs_srcdir '/test/context/sign_context.py'
\set pem `:signer pem regress_k27`
SELECT phi_context_key_add('regress_k27', :'pem');
\set eve `:signer token regress_k27 sub=dr-eve tenant=clinic-c roles=clinician exp=+600 purpose=operations jti=req-eve-7`

SHOW phi_guard.audit_compact_rows;
SELECT regress_try($$SET phi_guard.audit_compact_rows = -1$$) AS negative;
CREATE ROLE regress_cp_app IN ROLE phi_app;
SET ROLE regress_cp_app;
SELECT regress_try($$SET phi_guard.audit_compact_rows = 0$$) AS app_turns_it_off;
RESET ROLE;

CREATE TABLE regress_cp (id int PRIMARY KEY, note text);
GRANT SELECT, INSERT, UPDATE, DELETE ON regress_cp TO regress_cp_app;
SELECT phi_audit_enable('regress_cp');
SELECT max(xid) AS before FROM phi_guard.audit_log \gset

-- 99 rows: full entries, as before
INSERT INTO regress_cp SELECT g, 'a' FROM generate_series(1, 99) g;
SELECT record::jsonb ->> 'v' AS v, record::jsonb ->> 'kind' AS kind, count(*)
  FROM phi_guard.audit_log WHERE xid > :'before' GROUP BY 1, 2 ORDER BY 1, 2;

-- 100 rows under a context: the statement entry first, then compact rows
SELECT max(xid) AS before FROM phi_guard.audit_log \gset
BEGIN;
SET LOCAL application_name = 'regress-compact';
SET LOCAL ROLE regress_cp_app;
SELECT phi_set_context(:'eve');
INSERT INTO regress_cp SELECT g, 'b' FROM generate_series(101, 200) g;
COMMIT;
SELECT record::jsonb ->> 'v' AS v, record::jsonb ->> 'kind' AS kind, count(*)
  FROM phi_guard.audit_log WHERE xid > :'before' GROUP BY 1, 2 ORDER BY 1, 2;
-- the statement entry: every key of a full entry, the context's included
SELECT id, record::jsonb - 'ts' AS statement_entry
  FROM phi_guard.audit_log WHERE xid > :'before' AND record::jsonb ->> 'kind' = 'statement';
-- a compact entry holds exactly its six keys
SELECT record FROM phi_guard.audit_log
 WHERE xid > :'before' AND record::jsonb -> 'row_key' ->> 'id' = '142';
-- every compact entry names that statement entry, in its transaction
SELECT count(*) AS compact_rows,
       count(*) FILTER (WHERE (record::jsonb ->> 'stmt')::int8 = s.id AND l.xid = s.xid) AS naming_it,
       count(*) FILTER (WHERE l.id > s.id) AS after_it,
       count(*) FILTER (WHERE (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(record::jsonb) k)
                              = '{columns,kind,row_key,stmt,table,v}') AS six_keys
  FROM phi_guard.audit_log l,
       (SELECT xid, id FROM phi_guard.audit_log
         WHERE xid > :'before' AND record::jsonb ->> 'kind' = 'statement') s
 WHERE l.xid > :'before' AND l.record::jsonb ->> 'v' = '2';
-- fewer bytes: a compact entry is under half the size of a full one
SELECT (SELECT max(octet_length(record)) FROM phi_guard.audit_log
         WHERE xid > :'before' AND record::jsonb ->> 'v' = '2') * 2
     < (SELECT min(octet_length(record)) FROM phi_guard.audit_log
         WHERE record::jsonb ->> 'kind' = 'insert' AND record::jsonb ->> 'v' = '1'
           AND record::jsonb ->> 'table' = 'public.regress_cp') AS under_half;

-- audit_events shows each compact entry with its statement's fields
SELECT kind, table_name, db_user, role, app_user, tenant, purpose, application_name,
       count(*), count(DISTINCT ts) AS timestamps, bool_and(ts IS NOT NULL) AS all_timed
  FROM phi_guard.audit_events WHERE xid > :'before'
 GROUP BY 1, 2, 3, 4, 5, 6, 7, 8 ORDER BY 1;
SELECT e.ts = (SELECT (record::jsonb ->> 'ts')::timestamptz FROM phi_guard.audit_log
                WHERE xid > :'before' AND record::jsonb ->> 'kind' = 'statement') AS statement_ts
  FROM phi_guard.audit_events e WHERE e.xid > :'before' AND e.row_key ->> 'id' = '142';
-- ... and phi_access_report too
SELECT kind, table_name, db_user, app_user, tenant, purpose, application_name, ts IS NOT NULL AS timed
  FROM phi_access_report('142') WHERE table_name = 'public.regress_cp';

-- UPDATE and DELETE of 100 rows: compact, with the changed columns
SELECT max(xid) AS before FROM phi_guard.audit_log \gset
UPDATE regress_cp SET note = 'c' WHERE id > 100;
DELETE FROM regress_cp WHERE id > 100;
SELECT record::jsonb ->> 'kind' AS kind, record::jsonb ->> 'v' AS v,
       record::jsonb -> 'detail' AS detail, record::jsonb -> 'columns' AS columns, count(*)
  FROM phi_guard.audit_log WHERE xid > :'before' GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, (record::jsonb -> 'detail')::text;
SELECT kind, count(*), count(db_user) AS with_user FROM phi_guard.audit_events
 WHERE xid > :'before' GROUP BY 1 ORDER BY 1;

-- 0 turns it off
SELECT max(xid) AS before FROM phi_guard.audit_log \gset
SET phi_guard.audit_compact_rows = 0;
INSERT INTO regress_cp SELECT g, 'd' FROM generate_series(1001, 1150) g;
RESET phi_guard.audit_compact_rows;
SELECT record::jsonb ->> 'v' AS v, record::jsonb ->> 'kind' AS kind, count(*)
  FROM phi_guard.audit_log WHERE xid > :'before' GROUP BY 1, 2 ORDER BY 1, 2;

-- a rolled-back bulk statement leaves nothing
SELECT count(*) AS entries_before FROM phi_guard.audit_log \gset
BEGIN;
INSERT INTO regress_cp SELECT g, 'e' FROM generate_series(2001, 2300) g;
ROLLBACK;
SELECT count(*) - :entries_before AS new_entries FROM phi_guard.audit_log;

-- sealed and verified like any entry; a compact entry changed is caught
SELECT phi_audit_seal() > 0 AS sealed;
SELECT ok, problem FROM phi_audit_verify();
SET session_replication_role = replica;
UPDATE phi_guard.audit_log SET record = replace(record, '"stmt":', '"stmt": ')
 WHERE record::jsonb -> 'row_key' ->> 'id' = '142' AND record::jsonb ->> 'kind' = 'insert';
RESET session_replication_role;
SELECT ok, regexp_replace(problem, '[0-9]+', 'N', 'g') AS problem FROM phi_audit_verify();
SET session_replication_role = replica;
UPDATE phi_guard.audit_log SET record = replace(record, '"stmt": ', '"stmt":')
 WHERE record::jsonb -> 'row_key' ->> 'id' = '142' AND record::jsonb ->> 'kind' = 'insert';
RESET session_replication_role;
SELECT ok FROM phi_audit_verify();

SELECT phi_audit_disable('regress_cp');
DROP TABLE regress_cp;
DROP ROLE regress_cp_app;
SELECT phi_context_key_revoke('regress_k27');
