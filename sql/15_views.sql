-- Rule: the views for people show what phi_guard already knows, to the
-- roles that may know it.  audit_events types every audit record's fields
-- and tells whether its entry is sealed (caller's privileges:
-- phi_auditor); phi_access_report lists the entries about one row,
-- oldest first, by the text of its key or a JSON object of its key columns,
-- and a TRUNCATE of its table after it; key_status and phi_key_usage count
-- the values under each key version (phi_key_admin, and SELECT on the
-- column); phi_guard.stats counts phi_guard's work since server start
-- (key admins and auditors).  Everyone else gets 42501.
\set VERBOSITY terse
SET search_path = public, phi_guard;
SET application_name = 'regress_views';
\getenv abs_srcdir PG_ABS_SRCDIR
\set signer 'python3 ' :abs_srcdir '/test/context/sign_context.py'

CREATE ROLE regress_v_keys IN ROLE phi_key_admin;
CREATE ROLE regress_v_auditor IN ROLE phi_auditor;
CREATE ROLE regress_v_audadm IN ROLE phi_audit_admin;
CREATE ROLE regress_v_clerk IN ROLE phi_encryptor, phi_decryptor, phi_detokenizer, phi_app;
-- USAGE on schema phi_guard (through phi_app), nothing else
CREATE ROLE regress_v_nobody IN ROLE phi_app;

-- the views and who may use them
SELECT c.relname, c.relkind, c.reloptions FROM pg_class c
 WHERE c.relnamespace = 'phi_guard'::regnamespace
   AND c.relname IN ('audit_events', 'key_status', 'stats') ORDER BY 1;
SELECT r AS role,
       has_table_privilege(r, 'phi_guard.audit_events', 'SELECT') AS audit_events,
       has_function_privilege(r, 'phi_guard.phi_access_report(text, timestamptz)', 'EXECUTE') AS access_report,
       has_table_privilege(r, 'phi_guard.key_status', 'SELECT') AS key_status,
       has_function_privilege(r, 'phi_guard.phi_key_usage(regclass, name)', 'EXECUTE') AS key_usage,
       has_table_privilege(r, 'phi_guard.stats', 'SELECT') AS stats,
       has_function_privilege(r, 'phi_guard.phi_stats()', 'EXECUTE') AS phi_stats
  FROM unnest(ARRAY['phi_auditor', 'phi_audit_admin', 'phi_key_admin', 'phi_encryptor',
                    'phi_decryptor', 'phi_detokenizer', 'phi_app', 'public']) r;
SET ROLE regress_v_nobody;
SELECT regress_try('SELECT * FROM phi_guard.audit_events');
SELECT regress_try('SELECT * FROM phi_guard.phi_access_report(''1'')');
SELECT regress_try('SELECT * FROM phi_guard.key_status');
SELECT regress_try('SELECT * FROM phi_guard.phi_key_usage(''pg_class'', ''relname'')');
SELECT regress_try('SELECT * FROM phi_guard.stats');
SELECT regress_try('SELECT * FROM phi_guard.phi_stats()');
RESET ROLE;
-- audit_events runs with the caller's privileges: the view alone is not
-- enough, the caller must be able to read the log itself
GRANT SELECT ON phi_guard.audit_events TO regress_v_nobody;
SET ROLE regress_v_nobody;
SELECT regress_try('SELECT * FROM phi_guard.audit_events');
RESET ROLE;
REVOKE SELECT ON phi_guard.audit_events FROM regress_v_nobody;

------------------------------------------------------------------------
-- audit_events and phi_access_report on a small audited table
------------------------------------------------------------------------
SET ROLE regress_v_keys;
SELECT phi_key_create('regress_views') > 0 AS created;
SELECT phi_token_domain_create('regress_views_tok', 'regress_views');
RESET ROLE;
CREATE TABLE regress_v_pat (id int PRIMARY KEY, name phi_ciphertext, note text);
-- a composite key, and keys that are not numbers
CREATE TABLE regress_v_visit (clinic text, no int, PRIMARY KEY (clinic, no));
CREATE TABLE regress_v_chart (mrn text PRIMARY KEY);
GRANT ALL ON regress_v_pat, regress_v_visit, regress_v_chart TO regress_v_clerk;
SELECT phi_audit_enable('regress_v_pat'), phi_audit_enable('regress_v_visit'),
       phi_audit_enable('regress_v_chart');
SELECT pg_current_xact_id() AS xid0 \gset

SET ROLE regress_v_clerk;
INSERT INTO regress_v_pat SELECT g, phi_encrypt('name ' || g, 'regress_views'), NULL
  FROM generate_series(1, 5) g;
INSERT INTO regress_v_visit VALUES ('a', 1), ('a', 2), ('b', 1);
INSERT INTO regress_v_chart VALUES ('MRN-1'), ('MRN-"2"');
UPDATE regress_v_pat SET note = 'seen' WHERE id = 4;
DELETE FROM regress_v_pat WHERE id = 5;
SELECT clock_timestamp() AS mid \gset
-- an update under a signed context: who, tenant and purpose are recorded
RESET ROLE;
\set pem `:signer pem regress_v15`
SELECT phi_context_key_add('regress_v15', :'pem');
\set tok `:signer token regress_v15 sub=dr.v tenant=clinic-v roles=clinician exp=+300 iat=-5 purpose=treatment`
SET ROLE regress_v_clerk;
BEGIN;
SELECT phi_set_context(:'tok');
UPDATE regress_v_pat SET name = phi_encrypt('renamed', 'regress_views') WHERE id = 1;
SELECT count(phi_decrypt(name)) FROM regress_v_pat;
COMMIT;
TRUNCATE regress_v_chart;
RESET ROLE;

-- the entries, typed; none sealed yet (the suites seal by hand only)
SET ROLE regress_v_auditor;
SELECT kind, table_name, row_key, columns, role, app_user, tenant, purpose,
       client_addr, application_name, detail, sealed, block_no
  FROM phi_guard.audit_events
 WHERE table_name IN ('public.regress_v_pat', 'public.regress_v_visit', 'public.regress_v_chart')
   AND xid > :'xid0'
 ORDER BY xid, id;
-- column types, and the fields as the record holds them
SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
 WHERE a.attrelid = 'phi_guard.audit_events'::regclass AND a.attnum > 0 ORDER BY a.attnum;
SELECT count(*) AS entries,
       bool_and(e.ts = (l.record::jsonb->>'ts')::timestamptz) AS ts_typed,
       bool_and(e.db_user = session_user) AS db_user,
       bool_and(l.record::jsonb->>'client_addr' = '[local]') AS unix_socket_in_record,
       bool_and(e.entry_hash = l.entry_hash AND e.entry_hash = sha256(convert_to(l.record, 'UTF8'))) AS entry_hash
  FROM phi_guard.audit_events e JOIN phi_guard.audit_log l USING (xid, id)
 WHERE e.table_name = 'public.regress_v_pat' AND e.xid > :'xid0';
RESET ROLE;

-- sealing: every entry then lies in the block whose xid range holds it
SELECT phi_audit_seal() > 0 AS sealed;
SET ROLE regress_v_auditor;
SELECT count(*) AS entries, bool_and(e.sealed) AS all_sealed,
       bool_and(b.xid_lo <= e.xid AND e.xid < b.xid_hi) AS in_their_block
  FROM phi_guard.audit_events e LEFT JOIN phi_guard.audit_block b USING (block_no)
 WHERE e.xid > :'xid0'
   AND (e.table_name IN ('public.regress_v_pat', 'public.regress_v_visit', 'public.regress_v_chart')
        OR e.detail->>'key' = 'regress_views');
-- the decryptions under the context are access entries (written by the
-- worker, which the seal waits for: the intent, then the final entry with
-- the count) with its user, naming no table row
SELECT kind, table_name, row_key, app_user, tenant, purpose, detail->>'key' AS key,
       (detail->>'count')::int AS count
  FROM phi_guard.audit_events
 WHERE kind = 'decrypt' AND detail->>'key' = 'regress_views' AND xid > :'xid0'
 ORDER BY xid, id;
-- an entry written after the seal is not sealed
RESET ROLE;
SET ROLE regress_v_clerk;
INSERT INTO regress_v_visit VALUES ('c', 1);
SET ROLE regress_v_auditor;
SELECT kind, row_key, sealed, block_no FROM phi_guard.audit_events
 WHERE table_name = 'public.regress_v_visit' AND row_key->>'clinic' = 'c';

-- the access report of row 1: inserted, renamed under the context
SELECT kind, table_name, db_user = session_user AS db_user, app_user, tenant, purpose,
       client_addr, application_name, detail
  FROM phi_access_report('1')
 WHERE table_name IN ('public.regress_v_pat', 'public.regress_v_visit', 'public.regress_v_chart');
-- the same key as a JSON object (numbers are read as their text)
SELECT kind FROM phi_access_report('{"id": "1"}') WHERE table_name = 'public.regress_v_pat';
SELECT kind FROM phi_access_report('{"id": 1}') WHERE table_name = 'public.regress_v_pat';
-- row 4 (updated note), row 5 (deleted), a row that never was
SELECT kind, (SELECT columns FROM phi_guard.audit_events e
               WHERE e.table_name = r.table_name AND e.ts = r.ts AND e.kind = r.kind
                 AND e.row_key = '{"id": "4"}') AS columns
  FROM phi_access_report('4') r WHERE table_name = 'public.regress_v_pat';
SELECT kind FROM phi_access_report('5') WHERE table_name = 'public.regress_v_pat';
SELECT count(*) AS never FROM phi_access_report('regress no such key');
-- since: only what happened after it
SELECT kind FROM phi_access_report('1', :'mid') WHERE table_name = 'public.regress_v_pat';
SELECT count(*) AS after_row5_deleted FROM phi_access_report('5', :'mid')
 WHERE table_name = 'public.regress_v_pat';
-- a composite key: by the JSON object of its columns, in any order;
-- a single value does not match a two-column key
SELECT kind, table_name FROM phi_access_report('{"clinic": "a", "no": "2"}');
SELECT kind, table_name FROM phi_access_report('{"no": 2, "clinic": "a"}');
SELECT count(*) AS single_value FROM phi_access_report('a') WHERE table_name = 'public.regress_v_visit';
-- a text key with quotes; a TRUNCATE after the row was seen removed it too
SELECT kind, table_name FROM phi_access_report('MRN-"2"');
SELECT kind, table_name FROM phi_access_report('{"mrn": "MRN-1"}');
-- decryptions name rows by their aad: these values have none (they are
-- named by their nonces), so no read of row 1 is found for them
SELECT count(*) AS decrypts FROM phi_access_report('1')
 WHERE kind = 'decrypt' AND detail->>'key' = 'regress_views';
-- malformed keys
SELECT regress_try('SELECT * FROM phi_guard.phi_access_report(''{}'')');
SELECT regress_try('SELECT * FROM phi_guard.phi_access_report(''{"id": '')');
SELECT count(*) AS null_key FROM phi_access_report(NULL);
RESET ROLE;

------------------------------------------------------------------------
-- key_status and phi_key_usage: values per key version
------------------------------------------------------------------------
SET ROLE regress_v_clerk;
SELECT count(phi_tokenize(v, 'regress_views_tok')) FROM unnest(ARRAY['t1', 't2', 't3']) v;
RESET ROLE;
SET ROLE regress_v_keys;
SELECT phi_key_rotate('regress_views') > 0 AS rotated;
RESET ROLE;
SET ROLE regress_v_clerk;
SELECT phi_tokenize('t4', 'regress_views_tok') IS NOT NULL AS tokenized;
-- row 2 under the new version, rows 1, 3, 4 stay under version 1
UPDATE regress_v_pat SET name = phi_encrypt('new 2', 'regress_views') WHERE id = 2;
UPDATE regress_v_pat SET name = NULL WHERE id = 3;
RESET ROLE;
SET ROLE regress_v_keys;
SELECT name, version, state, vault_values, index_key_id IS NOT NULL AS has_index_key
  FROM phi_guard.key_status WHERE name = 'regress_views';
-- the column needs SELECT
SELECT regress_try('SELECT * FROM phi_guard.phi_key_usage(''regress_v_pat'', ''name'')');
RESET ROLE;
GRANT SELECT (id, name, note) ON regress_v_pat TO regress_v_keys;
SET ROLE regress_v_keys;
SELECT name, version, state, value_count,
       key_id = (SELECT id FROM phi_guard.key_status s
                  WHERE s.name = u.name AND s.version = u.version) AS key_id
  FROM phi_key_usage('regress_v_pat', 'name') u;
SELECT regress_try('SELECT * FROM phi_guard.phi_key_usage(''regress_v_pat'', ''note'')');
SELECT regress_try('SELECT * FROM phi_guard.phi_key_usage(''regress_v_pat'', ''nothing'')');
-- before destroying version 1: rewrap what is left on it, then check
SELECT regress_try('UPDATE regress_v_pat SET name = phi_rewrap(name)');
RESET ROLE;
GRANT UPDATE (name) ON regress_v_pat TO regress_v_keys;
SET ROLE regress_v_keys;
UPDATE regress_v_pat SET name = phi_rewrap(name);
SELECT name, version, state, value_count FROM phi_key_usage('regress_v_pat', 'name');
SELECT phi_key_destroy('regress_views', 1) AS destroyed;
SELECT name, version, state, vault_values FROM phi_guard.key_status WHERE name = 'regress_views';
SELECT name, version, state, value_count FROM phi_key_usage('regress_v_pat', 'name');
RESET ROLE;
-- the key id is bytes 4..7 of the value, big endian
SELECT phi_ciphertext_key_id(decode('01010000' || '7ffffffe' || repeat('00', 28), 'hex')::phi_ciphertext) AS high,
       phi_ciphertext_key_id(decode('01010000' || '00000102' || repeat('00', 28), 'hex')::phi_ciphertext) AS low,
       phi_ciphertext_key_id(NULL) AS null_value;

------------------------------------------------------------------------
-- stats: counters since server start; tested by their growth
------------------------------------------------------------------------
SELECT phi_key_create('regress_views_s') > 0 AS created;
SELECT phi_token_domain_create('regress_views_s', 'regress_views_s');
CREATE TEMP TABLE regress_v_s0 AS SELECT * FROM phi_guard.stats;
SELECT count(phi_encrypt('x', 'regress_views_s')) FROM generate_series(1, 5);
SELECT count(phi_decrypt(phi_encrypt('y', 'regress_views_s'))) FROM generate_series(1, 3);
SELECT regress_try($$SELECT phi_decrypt(phi_encrypt('z', 'regress_views_s', 'aad 1'), 'aad 2')$$);
SELECT count(phi_blind_index('v' || g, 'regress_views_s')) FROM generate_series(1, 4) g;
SELECT phi_tokenize('zed', 'regress_views_s') = phi_tokenize('zed', 'regress_views_s') AS same_token;
SELECT phi_detokenize(phi_tokenize('zed', 'regress_views_s'), 'regress_views_s');
SELECT regress_try($$SELECT phi_detokenize('no such token', 'regress_views_s')$$);
SELECT s.encrypt - b.encrypt AS encrypt,            -- 5 + 3 + 1 + 1 new vault value
       s.decrypt - b.decrypt AS decrypt,            -- 3 + 1 detokenized
       s.decrypt_failed - b.decrypt_failed AS decrypt_failed,
       s.tokenize - b.tokenize AS tokenize,         -- 3 calls
       s.detokenize - b.detokenize AS detokenize,
       s.detokenize_failed - b.detokenize_failed AS detokenize_failed,
       s.blind_index - b.blind_index AS blind_index,
       s.denied - b.denied AS denied,
       s.key_cache_hits > b.key_cache_hits AS cache_hits_grew,
       s.key_cache_misses > b.key_cache_misses AS cache_misses_grew,
       s.key_cache_hit_rate BETWEEN 0 AND 1 AS hit_rate_is_a_rate,
       s.key_cache_hit_rate = s.key_cache_hits::float8 / (s.key_cache_hits + s.key_cache_misses) AS hit_rate,
       s.since = b.since AND s.since <= now() AS since
  FROM phi_guard.stats s, regress_v_s0 b;
-- a read is one row of the same counters
SELECT count(*) AS rows, bool_and(s.encrypt >= b.encrypt + 10) AS encrypt
  FROM phi_guard.phi_stats() s, regress_v_s0 b;
-- readable by key admins and both auditor roles
SET ROLE regress_v_keys;
SELECT count(*) AS key_admin FROM phi_guard.stats WHERE encrypt > 0;
SET ROLE regress_v_auditor;
SELECT count(*) AS auditor FROM phi_guard.stats WHERE encrypt > 0;
SET ROLE regress_v_audadm;
SELECT count(*) AS audit_admin FROM phi_guard.stats WHERE encrypt > 0;
RESET ROLE;

-- clean up
SELECT phi_audit_disable('regress_v_pat'), phi_audit_disable('regress_v_visit'),
       phi_audit_disable('regress_v_chart');
DROP TABLE regress_v_pat, regress_v_visit, regress_v_chart;
DROP OWNED BY regress_v_keys, regress_v_auditor, regress_v_audadm, regress_v_clerk, regress_v_nobody;
DROP ROLE regress_v_keys, regress_v_auditor, regress_v_audadm, regress_v_clerk, regress_v_nobody;
