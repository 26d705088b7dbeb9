-- Rule: an audited table gets one entry per changed row (row key and
-- changed column names, never values) in the same transaction; rolled-back
-- work leaves nothing, while decryptions are recorded even when rolled back;
-- records do not depend on session settings; entries and blocks are
-- append-only for everyone; sealing chains them and phi_audit_verify catches
-- any change a superuser makes.
SET search_path = public, phi_guard;

-- entries written after a mark, without the parts that vary between runs
-- (timestamps, pids, key ids)
CREATE FUNCTION regress_entries(since xid8) RETURNS TABLE (
  kind text, tbl text, row_key jsonb, columns jsonb, detail jsonb, db_user text, role text)
LANGUAGE sql AS $$
  SELECT r->>'kind', r->>'table', r->'row_key', r->'columns', CASE jsonb_typeof(r->'detail') WHEN 'object' THEN (r->'detail') - 'pid' - 'key_id' - 'access_id' - 'rows' ELSE r->'detail' END,
         r->>'db_user', r->>'role'
    FROM phi_guard.audit_log, LATERAL (SELECT record::jsonb AS r) j
   WHERE xid > since ORDER BY xid, id
$$;
CREATE FUNCTION regress_problem() RETURNS text LANGUAGE sql AS $$
  SELECT CASE WHEN ok THEN 'ok' ELSE regexp_replace(problem, '[0-9]+', 'N', 'g') END
    FROM phi_guard.phi_audit_verify()
$$;

CREATE ROLE regress_owner IN ROLE phi_encryptor;
CREATE ROLE regress_aadmin IN ROLE phi_audit_admin;
CREATE ROLE regress_auditor IN ROLE phi_auditor;
GRANT CREATE ON SCHEMA public TO regress_owner;
SELECT phi_key_create('regress_audit') > 0 AS key_created;
SET ROLE regress_owner;
CREATE TABLE regress_pat (id int PRIMARY KEY, name text, ssn phi_guard.phi_ciphertext, dob date);
RESET ROLE;

-- only phi_audit_admin (or a superuser) enables auditing
SET ROLE regress_owner;
SELECT regress_try($$SELECT phi_guard.phi_audit_enable('regress_pat')$$) AS owner_enable;
RESET ROLE;
CREATE VIEW regress_v AS SELECT 1 AS x;
SET ROLE regress_aadmin;
SELECT phi_guard.phi_audit_enable('regress_pat');
SELECT phi_guard.phi_audit_enable('regress_pat');
SELECT regress_try($$SELECT phi_guard.phi_audit_enable('phi_guard.keys')$$) AS own_table;
SELECT regress_try($$SELECT phi_guard.phi_audit_enable('regress_v')$$) AS a_view;
RESET ROLE;
DROP VIEW regress_v;
SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = 'regress_pat'::regclass ORDER BY 1;

-- one entry per row, with the key and (for UPDATE) the changed columns
SELECT pg_current_xact_id() AS mark \gset
SET ROLE regress_owner;
INSERT INTO regress_pat VALUES
  (1, 'Ada Secretname', phi_guard.phi_encrypt('111-11-1111', 'regress_audit'), '1815-12-10'),
  (2, 'Alan Secretname', phi_guard.phi_encrypt('222-22-2222', 'regress_audit'), '1912-06-23'),
  (3, 'Grace Secretname', phi_guard.phi_encrypt('333-33-3333', 'regress_audit'), '1906-12-09');
UPDATE regress_pat SET name = 'Ada L. Secretname' WHERE id = 1;
UPDATE regress_pat SET ssn = phi_guard.phi_encrypt('222-22-0000', 'regress_audit'), dob = dob WHERE id = 2;
DELETE FROM regress_pat WHERE id = 3;
COPY regress_pat (id, name) FROM stdin;
4	Copied Secretname
\.
-- rolled back: nothing
BEGIN;
INSERT INTO regress_pat VALUES (5, 'Rolled Secretname');
ROLLBACK;
BEGIN;
INSERT INTO regress_pat VALUES (6, 'Kept Secretname');
SAVEPOINT s;
INSERT INTO regress_pat VALUES (7, 'Savepoint Secretname');
ROLLBACK TO SAVEPOINT s;
COMMIT;
TRUNCATE regress_pat;
RESET ROLE;
SELECT * FROM regress_entries(:'mark');

-- nothing of the rows' values reached the log
SELECT count(*) AS entries_with_values FROM phi_guard.audit_log
 WHERE record ~ 'Secretname|111-11|222-22|333-33|1815-12-10|1912-06-23';

-- every entry_hash is SHA-256 of the record's UTF-8 bytes
SELECT count(*) FILTER (WHERE entry_hash <> sha256(convert_to(record, 'UTF8'))) AS bad_hashes,
       count(*) > 0 AS has_entries
  FROM phi_guard.audit_log;

-- the record is the same whatever the session settings
CREATE TABLE regress_visits (seen timestamptz, day date, note text, PRIMARY KEY (seen, day));
SELECT phi_audit_enable('regress_visits');
SELECT pg_current_xact_id() AS mark \gset
SET TimeZone = 'Pacific/Chatham';
SET DateStyle = 'SQL, DMY';
SET extra_float_digits = 0;
INSERT INTO regress_visits VALUES ('2026-03-04 05:06:07.089+00', '2026-03-04', 'a');
RESET TimeZone;
RESET DateStyle;
RESET extra_float_digits;
INSERT INTO regress_visits VALUES ('2026-03-05 05:06:07.089+00', '2026-03-05', 'b');
SELECT row_key, record ~ '"ts":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z","kind"' AS ts_is_utc_iso,
       record ~ '^\{"v":1,"ts":"[^"]*","kind":"insert","table":"public.regress_visits","row_key":\{[^}]*\},"columns":null,"db_user":"[^"]*","role":"[^"]*","app_user":null,"tenant":null,"purpose":null,"client_addr":"[^"]*","application_name":"[^"]*","detail":null\}$' AS canonical_shape
  FROM (SELECT record, record::jsonb->'row_key' AS row_key FROM phi_guard.audit_log WHERE xid > :'mark' ORDER BY xid, id) AS e;

-- decryptions are access entries, aggregated per statement and key, and
-- recorded even when the transaction rolls back
SELECT pg_current_xact_id() AS mark \gset
INSERT INTO regress_pat VALUES
  (10, 'x', phi_guard.phi_encrypt('x', 'regress_audit')), (11, 'y', phi_guard.phi_encrypt('y', 'regress_audit'));
SELECT count(phi_decrypt(ssn)) FROM regress_pat;
BEGIN;
SELECT phi_decrypt(ssn) FROM regress_pat WHERE id = 10;
ROLLBACK;
SELECT phi_audit_seal() > 0 AS sealed;
SELECT kind, detail, db_user FROM regress_entries(:'mark')
 WHERE kind = 'decrypt' AND detail->>'key' = 'regress_audit';

-- sealing: nothing left, the chain verifies, the digest describes it
SELECT phi_audit_seal() AS sealed_again;
SELECT ok, blocks > 0 AS has_blocks, entries = (SELECT count(*) FROM phi_guard.audit_log) AS all_sealed,
       first_bad_block, problem FROM phi_audit_verify();
SELECT phi_audit_digest() AS digest \gset
SELECT (:'digest'::jsonb ?& ARRAY['block', 'block_hash', 'entries', 'system_identifier', 'sealed_at']) AS digest_keys,
       (:'digest'::jsonb->>'block')::int8 = (SELECT max(block_no) FROM audit_block) AS names_last_block,
       (:'digest'::jsonb->>'entries')::int8 = (SELECT sum(entries) FROM audit_block) AS counts_entries;
SELECT ok FROM phi_audit_verify(:'digest');
SELECT block_no = 1 AS first, prev_hash = '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea AS zero_prev
  FROM audit_block ORDER BY block_no LIMIT 1;
SELECT count(*) AS broken_links FROM audit_block b JOIN audit_block p ON p.block_no = b.block_no - 1
 WHERE b.prev_hash <> p.block_hash OR b.xid_lo <> p.xid_hi;

-- append-only: refused even for a superuser by SQL
SELECT regress_try('UPDATE phi_guard.audit_log SET record = record') AS su_update,
       regress_try('DELETE FROM phi_guard.audit_log') AS su_delete,
       regress_try('TRUNCATE phi_guard.audit_log') AS su_truncate;
SELECT regress_try('UPDATE phi_guard.audit_block SET entries = 0') AS su_block_update,
       regress_try('DELETE FROM phi_guard.audit_block') AS su_block_delete;
-- and an ordinary role, even the audited table's owner, has no access at all
SET ROLE regress_owner;
SELECT regress_try($$INSERT INTO phi_guard.audit_log VALUES (1, '1', '{}', '\x00')$$) AS owner_insert,
       regress_try('DELETE FROM phi_guard.audit_log') AS owner_delete,
       regress_try('SELECT count(*) FROM phi_guard.audit_log') AS owner_select,
       regress_try($$SELECT phi_guard.audit_event('insert', NULL, NULL)$$) AS owner_forge;
-- the owner can neither disable nor drop the audit triggers of its own
-- table (refused: sql/17_attack_owner_ddl tries every way); enabling one
-- that is enabled changes nothing, and is recorded
SELECT pg_current_xact_id() AS mark \gset
SELECT regress_try('ALTER TABLE regress_pat DISABLE TRIGGER phi_guard_audit_ins') AS owner_disable,
       regress_try('DROP TRIGGER phi_guard_audit_del ON regress_pat') AS owner_drop;
ALTER TABLE regress_pat ENABLE TRIGGER phi_guard_audit_ins;
RESET ROLE;
SELECT kind, tbl, detail FROM regress_entries(:'mark');
-- an auditor reads and verifies
SET ROLE regress_auditor;
SELECT count(*) > 0 AS can_read FROM phi_guard.audit_log;
SELECT ok FROM phi_guard.phi_audit_verify();
SELECT regress_try($$SELECT phi_guard.phi_audit_disable('regress_pat')$$) AS auditor_disable;
RESET ROLE;

-- disabling is an entry; afterwards changes are no longer recorded
SELECT pg_current_xact_id() AS mark \gset
SET ROLE regress_aadmin;
SELECT phi_guard.phi_audit_disable('regress_pat');
SELECT phi_guard.phi_audit_disable('regress_pat');
RESET ROLE;
INSERT INTO regress_pat VALUES (20, 'unaudited');
SELECT kind, tbl FROM regress_entries(:'mark');
SELECT count(*) AS audit_triggers_left FROM pg_trigger WHERE tgrelid = 'regress_pat'::regclass;
-- dropping an audited table is recorded and unregisters it
SELECT pg_current_xact_id() AS mark \gset
DROP TABLE regress_visits;
SELECT kind, detail FROM regress_entries(:'mark');
SELECT count(*) AS registered FROM audited_tables;

-- a superuser who bypasses the append-only triggers is caught by verify
SELECT phi_audit_seal() >= 0 AS sealed;
SELECT phi_audit_digest() AS digest \gset
CREATE TABLE regress_saved_log AS SELECT * FROM phi_guard.audit_log;
CREATE TABLE regress_saved_block AS SELECT * FROM phi_guard.audit_block;
CREATE FUNCTION regress_restore() RETURNS void LANGUAGE sql AS $$
  DELETE FROM phi_guard.audit_log; INSERT INTO phi_guard.audit_log SELECT * FROM regress_saved_log;
  DELETE FROM phi_guard.audit_block; INSERT INTO phi_guard.audit_block SELECT * FROM regress_saved_block;
$$;
SET session_replication_role = replica;
-- the block holding the second entry, to compare with first_bad_block
SELECT b.block_no AS victim_block FROM phi_guard.audit_block b,
  (SELECT xid FROM phi_guard.audit_log ORDER BY xid, id OFFSET 1 LIMIT 1) e
 WHERE e.xid >= b.xid_lo AND e.xid < b.xid_hi \gset
CREATE FUNCTION regress_case(what text, sql text, digest jsonb DEFAULT NULL) RETURNS TABLE (
  tamper text, ok bool, bad_block_is_victim bool, problem text)
LANGUAGE plpgsql AS $$
DECLARE v record;
BEGIN
  EXECUTE sql;
  SELECT * INTO v FROM phi_guard.phi_audit_verify(digest);
  PERFORM regress_restore();
  RETURN QUERY SELECT what, v.ok, v.first_bad_block = current_setting('regress.victim')::int8,
                      regexp_replace(v.problem, '[0-9]+', 'N', 'g');
END $$;
SELECT set_config('regress.victim', :'victim_block', false) IS NOT NULL AS victim_set;
SELECT * FROM regress_case('edit a record',
  $$UPDATE phi_guard.audit_log SET record = replace(record, '"v":1', '"v":1 ') WHERE (xid, id) = (SELECT xid, id FROM phi_guard.audit_log ORDER BY xid, id OFFSET 1 LIMIT 1)$$);
SELECT * FROM regress_case('edit a record and its hash',
  $$UPDATE phi_guard.audit_log SET record = record || ' ', entry_hash = sha256(convert_to(record || ' ', 'UTF8')) WHERE (xid, id) = (SELECT xid, id FROM phi_guard.audit_log ORDER BY xid, id OFFSET 1 LIMIT 1)$$);
SELECT * FROM regress_case('delete an entry',
  $$DELETE FROM phi_guard.audit_log WHERE (xid, id) = (SELECT xid, id FROM phi_guard.audit_log ORDER BY xid, id OFFSET 1 LIMIT 1)$$);
SELECT * FROM regress_case('insert an entry into a sealed block',
  $$INSERT INTO phi_guard.audit_log SELECT id + 1000, xid, record, entry_hash FROM phi_guard.audit_log ORDER BY xid, id OFFSET 1 LIMIT 1$$);
SELECT * FROM regress_case('change a block''s entry count',
  $$UPDATE phi_guard.audit_block SET entries = entries + 1 WHERE block_no = current_setting('regress.victim')::int8$$);
SELECT * FROM regress_case('delete a block in the middle',
  $$DELETE FROM phi_guard.audit_block WHERE block_no = current_setting('regress.victim')::int8$$);
SELECT * FROM regress_case('truncate the log',
  $$TRUNCATE phi_guard.audit_log$$);
SELECT * FROM regress_case('drop the last block, no digest',
  $$DELETE FROM phi_guard.audit_block WHERE block_no = (SELECT max(block_no) FROM phi_guard.audit_block)$$);
SELECT tamper, ok, problem FROM regress_case('drop the last block, with the digest',
  $$DELETE FROM phi_guard.audit_block WHERE block_no = (SELECT max(block_no) FROM phi_guard.audit_block)$$, :'digest');
SELECT tamper, ok, problem FROM regress_case('rewrite the last block, with the digest',
  $$UPDATE phi_guard.audit_block SET block_hash = sha256(block_hash) WHERE block_no = (SELECT max(block_no) FROM phi_guard.audit_block)$$, :'digest');
RESET session_replication_role;
SELECT regress_problem() AS after_restoring;

-- the verifier sorts the entries by (xid, id) in memory, or through SQL
-- when they need more than maintenance_work_mem (48 bytes each: 1MB holds
-- 21845); both give the same verdicts, also when an entry was moved to the
-- heap's end (an update that changed nothing); a DEBUG message says which
CREATE FUNCTION regress_problem_debug() RETURNS text LANGUAGE sql
  SET client_min_messages = debug1 AS $$ SELECT regress_problem() $$;
CREATE TABLE regress_bulk (id int PRIMARY KEY);
SELECT phi_audit_enable('regress_bulk');
-- (full entries: the heap layout below depends on their size)
SET phi_guard.audit_compact_rows = 0;
INSERT INTO regress_bulk SELECT generate_series(1, 22000);
RESET phi_guard.audit_compact_rows;
SELECT phi_audit_seal() > 22000 AS sealed_bulk;
SET session_replication_role = replica;
UPDATE phi_guard.audit_log SET record = record
 WHERE (xid, id) = (SELECT xid, id FROM phi_guard.audit_log ORDER BY xid, id LIMIT 1);
SELECT ctid <> (SELECT min(ctid) FROM phi_guard.audit_log) AS first_entry_not_first_in_heap
  FROM phi_guard.audit_log ORDER BY xid, id LIMIT 1;
SELECT xid AS bulk_xid, id AS bulk_id FROM phi_guard.audit_log
 WHERE record LIKE '%"table":"public.regress_bulk"%' ORDER BY xid, id OFFSET 100 LIMIT 1 \gset
SELECT regress_problem_debug() AS in_memory;
SET maintenance_work_mem = '1MB';
SELECT regress_problem_debug() AS through_sql;
-- a record and its hash edited: its block's hash no longer matches
UPDATE phi_guard.audit_log SET record = record || ' ', entry_hash = sha256(convert_to(record || ' ', 'UTF8'))
 WHERE (xid, id) = (:'bulk_xid', :bulk_id);
SELECT regress_problem_debug() AS through_sql_edited;
RESET maintenance_work_mem;
SELECT regress_problem_debug() AS in_memory_edited;
UPDATE phi_guard.audit_log SET record = rtrim(record), entry_hash = sha256(convert_to(rtrim(record), 'UTF8'))
 WHERE (xid, id) = (:'bulk_xid', :bulk_id);
-- the last block's count lowered to 1: the array, sized by the counts,
-- grows past it in memory, or is dropped in the middle of the scan
SELECT block_no AS bulk_block, entries AS bulk_entries FROM phi_guard.audit_block
 ORDER BY block_no DESC LIMIT 1 \gset
UPDATE phi_guard.audit_block SET entries = 1 WHERE block_no = :bulk_block;
SELECT regress_problem_debug() AS in_memory_count;
SET maintenance_work_mem = '1MB';
SELECT regress_problem_debug() AS through_sql_count;
RESET maintenance_work_mem;
UPDATE phi_guard.audit_block SET entries = :bulk_entries WHERE block_no = :bulk_block;
-- in memory, a block is walked as soon as the scan has found as many of
-- its entries as it records, and its memory goes to the next block: a copy
-- of an entry of the block before the bulk one, added at the heap's end,
-- comes too late, and the walk goes through SQL, to the same verdict
SELECT xid_lo AS before_lo, xid_hi AS before_hi FROM phi_guard.audit_block
 WHERE block_no = :bulk_block - 1 \gset
INSERT INTO phi_guard.audit_log
SELECT id + 1000000, xid, record, entry_hash FROM phi_guard.audit_log
 WHERE xid >= :'before_lo' AND xid < :'before_hi' ORDER BY xid, id LIMIT 1;
SELECT regress_problem_debug() AS late_entry;
SET maintenance_work_mem = '1MB';
SELECT regress_problem_debug() AS through_sql_late_entry;
RESET maintenance_work_mem;
DELETE FROM phi_guard.audit_log
 WHERE xid >= :'before_lo' AND xid < :'before_hi' AND id >= 1000000;
RESET session_replication_role;
SELECT regress_problem() AS edit_undone;

DROP FUNCTION regress_case(text, text, jsonb);
DROP FUNCTION regress_restore();
DROP TABLE regress_saved_log, regress_saved_block, regress_pat, regress_bulk;
DROP FUNCTION regress_entries(xid8), regress_problem(), regress_problem_debug();
REVOKE CREATE ON SCHEMA public FROM regress_owner;
DROP ROLE regress_owner, regress_aadmin, regress_auditor;
