-- Rule: an existing plaintext column becomes phi_ciphertext with one CALL
-- (phi_encrypt_column), in committed batches that a later CALL resumes;
-- its values are rendered the same whatever the session's settings and are
-- bound to the aad expression; what cannot be migrated safely is refused
-- with a clear error.  phi_rewrap_column moves a column onto the active key
-- versions, so that phi_key_usage shows the old ones unused.  Tenant keys
-- (SPEC §9): a tenant's key is chosen under its context, refused to every
-- other, and phi_tenant_shred destroys the tenant's keys only.
SET search_path = public, phi_guard;
SET client_min_messages = warning;   -- the CALLs' progress NOTICEs hold rates
\getenv abs_srcdir PG_ABS_SRCDIR
\set signer 'python3 ' :abs_srcdir '/test/context/sign_context.py'

CREATE ROLE regress_ad_owner IN ROLE phi_encryptor, phi_decryptor, phi_key_admin;
CREATE ROLE regress_ad_plain IN ROLE phi_app;  -- owns a table, no phi_guard role but USAGE
CREATE ROLE regress_ad_other IN ROLE phi_encryptor;
GRANT CREATE ON SCHEMA public TO regress_ad_owner, regress_ad_plain;
SELECT phi_key_create('regress_ad') > 0 AS created;
SET ROLE regress_ad_owner;

------------------------------------------------------------------------
-- Refusals: each one leaves the table as it was
------------------------------------------------------------------------
CREATE TABLE regress_ad_nopk (id int, ssn text);
CALL phi_encrypt_column('regress_ad_nopk', 'ssn', 'regress_ad');
CREATE TABLE regress_ad_t (id int PRIMARY KEY, ssn text NOT NULL, seen timestamptz,
                           note text DEFAULT 'none', code text, born date, k2 int);
CREATE INDEX regress_ad_code ON regress_ad_t (code);
INSERT INTO regress_ad_t VALUES (1, '123-45-6789', now(), 'n', 'c', '1980-07-14', 7);
CALL phi_encrypt_column('regress_ad_t', 'nosuch', 'regress_ad');
CALL phi_encrypt_column('regress_ad_t', 'id', 'regress_ad');
CALL phi_encrypt_column('regress_ad_t', 'seen', 'regress_ad');
CALL phi_encrypt_column('regress_ad_t', 'note', 'regress_ad');
CALL phi_encrypt_column('regress_ad_t', 'code', 'regress_ad');
CALL phi_encrypt_column('regress_ad_t', 'ssn', 'regress_ad_nosuch');
CALL phi_encrypt_column('regress_ad_t', 'ssn', 'regress_ad', batch => 0);
CALL phi_encrypt_column('regress_ad_t', 'ssn', 'regress_ad', tenant_column => 'seen');
-- the aad: one expression over the table's columns, setting-independent
CALL phi_encrypt_column('regress_ad_t', 'ssn', 'regress_ad', $$'t:' || born$$);
CALL phi_encrypt_column('regress_ad_t', 'ssn', 'regress_ad', $$'t:' || ssn$$);
CALL phi_encrypt_column('regress_ad_t', 'ssn', 'regress_ad', $$'t:' || now()$$);
CALL phi_encrypt_column('regress_ad_t', 'ssn', 'regress_ad', $$(SELECT 't')$$);
CALL phi_encrypt_column('regress_ad_t', 'ssn', 'regress_ad', $$upper(note)$$);
CALL phi_encrypt_column('regress_ad_t', 'ssn', 'regress_ad', $$'t:' || id FROM pg_class$$);
CALL phi_encrypt_column('regress_ad_t', 'ssn', 'regress_ad', $$'t:' || id; DROP TABLE x$$);
CALL phi_encrypt_column('regress_ad_t', 'ssn', 'regress_ad', $$'t:' || nosuch$$);
-- inside a transaction block, from a function: it cannot commit
BEGIN;
CALL phi_encrypt_column('regress_ad_t', 'ssn', 'regress_ad');
ROLLBACK;
SELECT regress_try($$CALL phi_guard.phi_encrypt_column('regress_ad_t', 'ssn', 'regress_ad')$$) AS from_a_function;
-- not the owner; the owner without phi_encryptor
RESET ROLE;
SET ROLE regress_ad_other;
CALL phi_encrypt_column('regress_ad_t', 'ssn', 'regress_ad');
RESET ROLE;
SET ROLE regress_ad_plain;
CREATE TABLE regress_ad_plain_t (id int PRIMARY KEY, ssn text);
CALL phi_encrypt_column('regress_ad_plain_t', 'ssn', 'regress_ad');
RESET ROLE;
GRANT EXECUTE ON PROCEDURE phi_encrypt_column(regclass, name, text, text, int4, name) TO regress_ad_plain;
SET ROLE regress_ad_plain;
CALL phi_encrypt_column('regress_ad_plain_t', 'ssn', 'regress_ad');
RESET ROLE;
REVOKE EXECUTE ON PROCEDURE phi_encrypt_column(regclass, name, text, text, int4, name) FROM regress_ad_plain;
SET ROLE regress_ad_owner;
-- partitioned tables and their partitions
CREATE TABLE regress_ad_parted (id int PRIMARY KEY, ssn text) PARTITION BY RANGE (id);
CREATE TABLE regress_ad_part1 PARTITION OF regress_ad_parted FOR VALUES FROM (0) TO (100);
CALL phi_encrypt_column('regress_ad_parted', 'ssn', 'regress_ad');
CALL phi_encrypt_column('regress_ad_part1', 'ssn', 'regress_ad');
-- the internal row functions of phi_rewrap_column are no API
SELECT regress_try($$SELECT phi_guard.column_rewrap_due(phi_guard.phi_encrypt('x', 'regress_ad'))$$) AS rewrap_due;
SELECT regress_try($$SELECT phi_guard.column_rewrap(phi_guard.phi_encrypt('x', 'regress_ad'), NULL)$$) AS rewrap;
CALL phi_rewrap_column('regress_ad_t', 'ssn');
-- nothing changed: no new column, no trigger, no migration recorded
SELECT attname FROM pg_attribute WHERE attrelid = 'regress_ad_t'::regclass AND attnum > 0
   AND NOT attisdropped ORDER BY attnum;
SELECT count(*) AS triggers FROM pg_trigger WHERE tgrelid = 'regress_ad_t'::regclass;
SELECT count(*) AS migrations FROM phi_guard.column_migrations;

------------------------------------------------------------------------
-- Rendering: the same text whatever DateStyle, extra_float_digits or
-- client encoding the session has; NULL stays NULL; bytea stays bytes
------------------------------------------------------------------------
CREATE TABLE regress_ad_types (id int PRIMARY KEY, t text, v varchar(20), c char(6),
  i2 int2, i4 int4, i8 int8, n numeric, d date, b bytea);
INSERT INTO regress_ad_types VALUES
  (1, 'Zoë 患者', 'v1', 'ab', -2, 40000, 9000000000, 12.500, '1980-07-14', '\x00ff41'),
  (2, '', '', '', 0, 0, 0, 0, '0044-03-15 BC', '\x'),
  (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (4, 'x', 'y', 'z', 1, 1, 1, 1e-7, 'infinity', 'z');
SET datestyle = 'SQL, DMY';
SET extra_float_digits = -3;
CALL phi_encrypt_column('regress_ad_types', 't', 'regress_ad', $$'types.t:' || id$$);
CALL phi_encrypt_column('regress_ad_types', 'v', 'regress_ad', $$'types.v:' || id$$);
CALL phi_encrypt_column('regress_ad_types', 'c', 'regress_ad', $$'types.c:' || id$$);
CALL phi_encrypt_column('regress_ad_types', 'i2', 'regress_ad', $$'types.i2:' || id$$);
CALL phi_encrypt_column('regress_ad_types', 'i4', 'regress_ad', $$'types.i4:' || id$$);
CALL phi_encrypt_column('regress_ad_types', 'i8', 'regress_ad', $$'types.i8:' || id$$);
CALL phi_encrypt_column('regress_ad_types', 'n', 'regress_ad', $$'types.n:' || id$$);
CALL phi_encrypt_column('regress_ad_types', 'd', 'regress_ad', $$'types.d:' || id$$);
CALL phi_encrypt_column('regress_ad_types', 'b', 'regress_ad', $$'types.b:' || id$$);
RESET datestyle;
RESET extra_float_digits;
SELECT attname, atttypid::regtype, attnotnull FROM pg_attribute
 WHERE attrelid = 'regress_ad_types'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attname;
SELECT id, phi_decrypt(t, 'types.t:' || id) AS t, phi_decrypt(v, 'types.v:' || id) AS v,
       '[' || phi_decrypt(c, 'types.c:' || id) || ']' AS c,
       phi_decrypt(i2, 'types.i2:' || id) AS i2, phi_decrypt(i4, 'types.i4:' || id) AS i4,
       phi_decrypt(i8, 'types.i8:' || id) AS i8, phi_decrypt(n, 'types.n:' || id) AS n,
       phi_decrypt(d, 'types.d:' || id) AS d, phi_decrypt_bytea(b, 'types.b:' || id) AS b
  FROM regress_ad_types ORDER BY id;
-- the values are bound to their row: another row's aad does not open them
SELECT regress_try($$SELECT phi_guard.phi_decrypt(t, 'types.t:2') FROM regress_ad_types WHERE id = 1$$) AS moved;
-- a plaintext write into the column is an error now
INSERT INTO regress_ad_types (id, t) VALUES (5, 'plaintext');
UPDATE regress_ad_types SET t = 'plaintext' WHERE id = 1;
-- and an encrypted column is not encrypted twice
CALL phi_encrypt_column('regress_ad_types', 't', 'regress_ad', $$'types.t:' || id$$);
SELECT table_name, column_name, rows_done, rows_total, state, finished IS NOT NULL AS finished,
       operation, key_name, aad, skipped, swap_lock_ms >= 0 AS lock_measured
  FROM phi_guard.column_migrations WHERE table_name = 'regress_ad_types'::regclass AND column_name IN ('t', 'b');

------------------------------------------------------------------------
-- Online and resumable: an interruption in the middle (here a failing
-- user trigger) leaves the committed batches done; writes meanwhile are
-- encrypted by the migration's trigger; the next CALL goes on and ends
------------------------------------------------------------------------
CREATE TABLE regress_ad_big (id int PRIMARY KEY, ssn text NOT NULL, visits int);
INSERT INTO regress_ad_big SELECT g, 'ssn-' || g, 0 FROM generate_series(1, 1000) g;
CREATE TABLE regress_ad_fail (id int);
INSERT INTO regress_ad_fail VALUES (650);
CREATE FUNCTION regress_ad_fail() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.id IN (SELECT id FROM regress_ad_fail) THEN
    RAISE EXCEPTION 'simulated interruption at row %', NEW.id;
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER regress_ad_fail BEFORE UPDATE ON regress_ad_big
  FOR EACH ROW EXECUTE FUNCTION regress_ad_fail();
RESET ROLE;
SELECT phi_audit_enable('regress_ad_big');
SET ROLE regress_ad_owner;
CALL phi_encrypt_column('regress_ad_big', 'ssn', 'regress_ad', $$'big.ssn:' || id$$, 200);
SELECT state, rows_done, rows_total, finished IS NULL AS running
  FROM phi_guard.column_migrations WHERE table_name = 'regress_ad_big'::regclass;
-- the application goes on writing plaintext meanwhile, and it is audited
INSERT INTO regress_ad_big VALUES (1001, 'ssn-1001', 0);
UPDATE regress_ad_big SET ssn = 'ssn-2', visits = 1 WHERE id = 2;
UPDATE regress_ad_big SET visits = 1 WHERE id = 900;
DELETE FROM regress_ad_big WHERE id = 3;
-- the new column is filled for every row written and every row done
SELECT count(*) FILTER (WHERE id <= 600 AND phi_guard_new_2 IS NULL) AS unfilled_done,
       string_agg(id::text, ',' ORDER BY id) FILTER (WHERE id > 600 AND phi_guard_new_2 IS NOT NULL) AS filled_ahead
  FROM regress_ad_big;
-- resuming with other arguments is refused; with the same, it ends
CALL phi_encrypt_column('regress_ad_big', 'ssn', 'regress_ad', $$'big.ssn:' || -id$$, 200);
DELETE FROM regress_ad_fail;
CALL phi_encrypt_column('regress_ad_big', 'ssn', 'regress_ad', $$'big.ssn:' || id$$, 200);
SELECT state, rows_done, rows_total, finished IS NOT NULL AS finished
  FROM phi_guard.column_migrations WHERE table_name = 'regress_ad_big'::regclass;
SELECT count(*) AS rows_, count(*) FILTER (WHERE phi_decrypt(ssn, 'big.ssn:' || id) = 'ssn-' || id) AS decrypt_to_their_row
  FROM regress_ad_big;
SELECT attnotnull AS ssn_not_null FROM pg_attribute WHERE attrelid = 'regress_ad_big'::regclass AND attname = 'ssn';
SELECT count(*) AS triggers_left FROM pg_trigger
 WHERE tgrelid = 'regress_ad_big'::regclass AND tgname LIKE 'zz_phi_guard%';
-- the audited table stays audited; its log has the application's four
-- changes and one column_migration entry per batch, not one per row
RESET ROLE;
SELECT count(*) AS audit_triggers FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
 WHERE t.tgrelid = 'regress_ad_big'::regclass AND p.proname = 'audit_trigger';
SELECT r->>'kind' AS kind, r->'detail'->>'phase' AS phase, count(*) AS entries,
       sum((r->'detail'->>'rows')::int) AS rows_
  FROM phi_guard.audit_log, LATERAL (SELECT record::jsonb AS r) j
 WHERE r->>'table' = 'public.regress_ad_big' AND r->>'kind' IN ('insert', 'update', 'delete', 'column_migration')
 GROUP BY 1, 2 ORDER BY 1, 2;
SELECT count(*) AS entries_with_values FROM phi_guard.audit_log
 WHERE strpos(record, 'ssn-1') > 0;
SET ROLE regress_ad_owner;

------------------------------------------------------------------------
-- Rotation at scale: phi_rewrap_column moves every value onto the active
-- version with the recorded aad; phi_key_usage then shows the old version
-- unused, and destroying it loses nothing
------------------------------------------------------------------------
SELECT phi_key_rotate('regress_ad') > 0 AS rotated;
CALL phi_rewrap_column('regress_ad_big', 'ssn', 300);
SELECT name, version, state, value_count, tenant FROM phi_key_usage('regress_ad_big', 'ssn');
SELECT phi_key_destroy('regress_ad', 1) AS destroyed;
SELECT count(*) FILTER (WHERE phi_decrypt(ssn, 'big.ssn:' || id) = 'ssn-' || id) AS still_decrypt
  FROM regress_ad_big;
SELECT state, rows_done, skipped, aad FROM phi_guard.column_migrations
 WHERE table_name = 'regress_ad_big'::regclass AND operation = 'rewrap';
-- the other tables' values under the destroyed version are left and counted
CALL phi_rewrap_column('regress_ad_types', 'i4');
SELECT state, rows_done, skipped FROM phi_guard.column_migrations
 WHERE table_name = 'regress_ad_types'::regclass AND operation = 'rewrap';
RESET ROLE;

------------------------------------------------------------------------
-- Tenant keys
------------------------------------------------------------------------
\set pem `:signer pem regress_ad_ctx`
SELECT phi_context_key_add('regress_ad_ctx', :'pem');
\set tok_a `:signer token regress_ad_ctx sub=ann tenant=regress-acme roles=clinician exp=+600`
\set tok_b `:signer token regress_ad_ctx sub=bob tenant=regress-beta roles=clinician exp=+600`
\set tok_c `:signer token regress_ad_ctx sub=cid tenant=regress-gamma roles=clinician exp=+600`
GRANT phi_app TO regress_ad_owner;
SELECT phi_key_create('regress_tk') > 0 AS shared,
       phi_key_create('regress_tk', 'regress-acme') > 0 AS acme,
       phi_key_create('regress_tk', 'regress-beta') > 0 AS beta;
SELECT regress_try($$SELECT phi_guard.phi_key_create('regress_tk', 'regress-acme')$$) AS twice;
SELECT regress_try($$SELECT phi_guard.phi_key_create('regress_tk', '')$$) AS empty_tenant;
SELECT regress_try($$SELECT phi_guard.phi_key_rotate('regress_tk', 'regress-nobody')$$) AS unknown_tenant;
SELECT phi_key_create('regress_tk2', NULL) > 0 AS null_tenant_is_shared;
-- a call without a tenant never touches tenant keys
SELECT phi_key_rotate('regress_tk2') > 0 AS rotated_shared;
SELECT phi_key_rotate('regress_tk', 'regress-beta') > 0 AS rotated_beta;
SELECT name, version, state, tenant, index_key_id IS NOT NULL AS index_key
  FROM phi_guard.key_status WHERE name IN ('regress_tk', 'regress_tk2');
-- 0.2.0's columns come first, in their order
SELECT string_agg(attname, ',' ORDER BY attnum) AS key_status_columns FROM pg_attribute
 WHERE attrelid = 'phi_guard.key_status'::regclass;

SET ROLE regress_ad_owner;
CREATE TABLE regress_ad_tenants (id int PRIMARY KEY, tenant text, ssn text, mrn text);
INSERT INTO regress_ad_tenants VALUES (1, 'regress-acme', '111-11-1111', 'M1'),
  (2, 'regress-beta', '111-11-1111', 'M1'), (3, 'regress-gamma', '333-33-3333', 'M3'),
  (4, NULL, '444-44-4444', 'M4');
-- each value under its tenant's key; a tenant without one, or none, uses the shared key
CALL phi_encrypt_column('regress_ad_tenants', 'ssn', 'regress_tk', $$'ten.ssn:' || id$$, 2, 'tenant');
SELECT t.id, k.tenant AS key_tenant FROM regress_ad_tenants t
  JOIN phi_guard.key_status k ON k.id = phi_ciphertext_key_id(t.ssn) ORDER BY t.id;
-- without a context, tenant values are refused; shared ones are not
SELECT regress_try($$SELECT phi_guard.phi_decrypt(ssn, 'ten.ssn:' || id) FROM regress_ad_tenants WHERE id = 1$$) AS no_context;
SELECT phi_decrypt(ssn, 'ten.ssn:' || id) AS shared_value FROM regress_ad_tenants WHERE id = 4;
BEGIN;
SELECT phi_set_context(:'tok_a');
SELECT id, phi_decrypt(ssn, 'ten.ssn:' || id) FROM regress_ad_tenants WHERE id IN (1, 3, 4) ORDER BY id;
SELECT regress_try($$SELECT phi_guard.phi_decrypt(ssn, 'ten.ssn:' || id) FROM regress_ad_tenants WHERE id = 2$$) AS other_tenant;
-- phi_encrypt picks acme's key; equal values of two tenants do not match
CREATE TEMP TABLE regress_ad_seen ON COMMIT PRESERVE ROWS AS
  SELECT 'acme' AS who, (SELECT tenant FROM phi_guard.key_status
                           WHERE id = phi_ciphertext_key_id(phi_encrypt('x', 'regress_tk'))) AS key_tenant,
         phi_blind_index('111-11-1111', 'regress_tk') AS bidx;
COMMIT;
BEGIN;
SELECT phi_set_context(:'tok_b');
INSERT INTO regress_ad_seen
  SELECT 'beta', (SELECT tenant FROM phi_guard.key_status
                    WHERE id = phi_ciphertext_key_id(phi_encrypt('x', 'regress_tk'))),
         phi_blind_index('111-11-1111', 'regress_tk');
COMMIT;
BEGIN;
SELECT phi_set_context(:'tok_c');
INSERT INTO regress_ad_seen
  SELECT 'gamma (no key of its own)', (SELECT coalesce(tenant, '(shared)') FROM phi_guard.key_status
                    WHERE id = phi_ciphertext_key_id(phi_encrypt('x', 'regress_tk'))),
         phi_blind_index('111-11-1111', 'regress_tk');
COMMIT;
INSERT INTO regress_ad_seen SELECT 'no context', '(shared)', phi_blind_index('111-11-1111', 'regress_tk');
SELECT who, key_tenant, count(*) OVER (PARTITION BY bidx) AS same_bidx FROM regress_ad_seen ORDER BY who;
-- parallel query: a worker holds no context, so the functions that choose
-- a key by the context's tenant run in the leader (parallel restricted),
-- and a parallel-safe wrapper around them is refused (0A000) rather than
-- falling back to the shared key
CREATE FUNCTION regress_ad_wrap(v text) RETURNS phi_guard.phi_ciphertext
  LANGUAGE plpgsql PARALLEL SAFE AS $$BEGIN RETURN phi_guard.phi_encrypt(v, 'regress_tk'); END$$;
BEGIN;
SELECT phi_set_context(:'tok_a');
SET LOCAL force_parallel_mode = on;
SELECT (SELECT tenant FROM phi_guard.key_status WHERE id = phi_ciphertext_key_id(c)) AS key_tenant,
       b = (SELECT bidx FROM regress_ad_seen WHERE who = 'acme') AS acme_bidx
  FROM (SELECT phi_encrypt('x', 'regress_tk') AS c, phi_blind_index('111-11-1111', 'regress_tk') AS b) s;
\set VERBOSITY terse
SELECT phi_ciphertext_key_id(regress_ad_wrap('x')) IS NOT NULL AS encrypted_in_a_worker;
\set VERBOSITY default
ROLLBACK;
DROP FUNCTION regress_ad_wrap(text);
-- a protected table (row security forced, the owner sees no row without
-- a context): the migration still reaches every row, and the table stays
-- protected
CREATE TABLE regress_ad_prot (id int PRIMARY KEY, tenant text NOT NULL, ssn text);
INSERT INTO regress_ad_prot VALUES (1, 'regress-acme', 'p1'), (2, 'regress-beta', 'p2'),
  (3, 'regress-gamma', 'p3');
SELECT phi_protect_table('regress_ad_prot', 'tenant');
SELECT count(*) AS owner_sees_without_context FROM regress_ad_prot;
CALL phi_encrypt_column('regress_ad_prot', 'ssn', 'regress_tk', $$'prot.ssn:' || id$$, 1, 'tenant');
RESET ROLE;
SELECT p.id, coalesce(k.tenant, '(shared)') AS key_tenant FROM regress_ad_prot p
  JOIN phi_guard.key_status k ON k.id = phi_ciphertext_key_id(p.ssn) ORDER BY p.id;
SELECT relrowsecurity, relforcerowsecurity,
       (SELECT string_agg(polname, ',' ORDER BY polname) FROM pg_policy WHERE polrelid = c.oid) AS policies
  FROM pg_class c WHERE c.oid = 'regress_ad_prot'::regclass;
SET ROLE regress_ad_owner;
-- phi_rewrap keeps a value with its own tenant's key
SELECT k.tenant AS rewrapped_under FROM regress_ad_tenants t
  JOIN phi_guard.key_status k ON k.id = phi_ciphertext_key_id(phi_rewrap(t.ssn, 'ten.ssn:' || t.id))
 WHERE t.id = 2;
RESET ROLE;
-- tokens: a deterministic domain gives two tenants different tokens for
-- one value, and a tenant's token detokenizes under its context only
SELECT phi_token_domain_create('regress_ad_dom', 'regress_tk', 'opaque', true);
GRANT phi_detokenizer TO regress_ad_owner;
SET ROLE regress_ad_owner;
BEGIN;
SELECT phi_set_context(:'tok_a');
CREATE TEMP TABLE regress_ad_tok ON COMMIT PRESERVE ROWS AS
  SELECT 'acme' AS who, phi_tokenize('111-11-1111', 'regress_ad_dom') AS tok;
SELECT phi_tokenize('111-11-1111', 'regress_ad_dom') = (SELECT tok FROM regress_ad_tok) AS deterministic;
COMMIT;
BEGIN;
SELECT phi_set_context(:'tok_b');
INSERT INTO regress_ad_tok SELECT 'beta', phi_tokenize('111-11-1111', 'regress_ad_dom');
SELECT regress_try(format($$SELECT phi_guard.phi_detokenize(%L, 'regress_ad_dom')$$,
                          (SELECT tok FROM regress_ad_tok WHERE who = 'acme'))) AS acme_token_under_beta;
COMMIT;
SELECT count(DISTINCT tok) AS distinct_tokens FROM regress_ad_tok;
BEGIN;
SELECT phi_set_context(:'tok_a');
SELECT phi_detokenize((SELECT tok FROM regress_ad_tok WHERE who = 'acme'), 'regress_ad_dom') AS acme_under_acme;
COMMIT;
RESET ROLE;

-- shredding acme: its values become undecryptable (PH002), beta's and the
-- shared ones stay; one audit entry marks a changed safeguard
SELECT regress_try($$SELECT phi_guard.phi_tenant_shred('regress-nobody')$$) AS unknown;
SELECT regress_try($$SELECT phi_guard.phi_tenant_shred(NULL)$$) AS null_tenant;
SET ROLE regress_ad_plain;
SELECT regress_try($$SELECT phi_guard.phi_tenant_shred('regress-acme')$$) AS not_a_key_admin;
RESET ROLE;
SELECT phi_tenant_shred('regress-acme') AS versions_destroyed;
SELECT name, version, state, tenant, index_key_id IS NOT NULL AS index_key
  FROM phi_guard.key_status WHERE name = 'regress_tk';
SET ROLE regress_ad_owner;
BEGIN;
SELECT phi_set_context(:'tok_a');
SELECT regress_try($$SELECT phi_guard.phi_decrypt(ssn, 'ten.ssn:' || id) FROM regress_ad_tenants WHERE id = 1$$) AS acme_value;
SELECT regress_try($$SELECT phi_guard.phi_encrypt('x', 'regress_tk')$$) AS acme_encrypts;
SELECT regress_try($$SELECT phi_guard.phi_blind_index('x', 'regress_tk')$$) AS acme_blind_index;
COMMIT;
BEGIN;
SELECT phi_set_context(:'tok_b');
SELECT phi_decrypt(ssn, 'ten.ssn:' || id) AS beta_value FROM regress_ad_tenants WHERE id = 2;
SELECT phi_detokenize((SELECT tok FROM regress_ad_tok WHERE who = 'beta'), 'regress_ad_dom') AS beta_token;
COMMIT;
SELECT phi_decrypt(ssn, 'ten.ssn:' || id) AS shared_value FROM regress_ad_tenants WHERE id = 4;
-- a rewrap of the column leaves acme's value where it is and says so
SELECT phi_key_rotate('regress_tk') > 0 AS rotated_shared;
CALL phi_rewrap_column('regress_ad_tenants', 'ssn');
SELECT rows_done, skipped FROM phi_guard.column_migrations
 WHERE table_name = 'regress_ad_tenants'::regclass AND operation = 'rewrap';
SELECT name, version, state, value_count, tenant FROM phi_key_usage('regress_ad_tenants', 'ssn');
RESET ROLE;
SELECT r->'detail' AS shred_entry FROM phi_guard.audit_log, LATERAL (SELECT record::jsonb AS r) j
 WHERE r->>'kind' = 'tenant_shred';

------------------------------------------------------------------------
-- A bounded key cache: with room for 16 keys, 40 tenants' keys are used
-- in one migration and every value is under its own tenant's key
------------------------------------------------------------------------
SET phi_guard.key_cache_size = 16;
SELECT count(phi_key_create('regress_lru', 'regress-t' || g)) AS tenant_keys FROM generate_series(1, 40) g;
SELECT key_cache_misses AS misses_before FROM phi_guard.stats \gset
SET ROLE regress_ad_owner;
CREATE TABLE regress_ad_lru (id int PRIMARY KEY, tenant text, v text);
INSERT INTO regress_ad_lru SELECT g, 'regress-t' || (g % 40 + 1), 'v' || g FROM generate_series(1, 400) g;
CALL phi_encrypt_column('regress_ad_lru', 'v', 'regress_lru', NULL, 50, 'tenant');
SELECT count(*) AS rows_, count(*) FILTER (WHERE k.tenant = t.tenant) AS under_own_tenant_key
  FROM regress_ad_lru t JOIN phi_guard.key_status k ON k.id = phi_ciphertext_key_id(t.v);
RESET ROLE;
-- the 40 keys taken in turn did not fit: keys were evicted and read again
-- (an unbounded cache would miss 40 times)
SELECT key_cache_misses - :misses_before >= 200 AS evicted FROM phi_guard.stats;
SELECT 'phi_guard.key_cache_size' AS setting, current_setting('phi_guard.key_cache_size') AS value;
RESET phi_guard.key_cache_size;

-- clean up
DROP TABLE regress_ad_nopk, regress_ad_t, regress_ad_plain_t, regress_ad_parted, regress_ad_types,
  regress_ad_big, regress_ad_fail, regress_ad_tenants, regress_ad_prot, regress_ad_lru;
DROP FUNCTION regress_ad_fail();
REVOKE CREATE ON SCHEMA public FROM regress_ad_owner, regress_ad_plain;
DROP OWNED BY regress_ad_owner, regress_ad_plain, regress_ad_other;
DROP ROLE regress_ad_owner, regress_ad_plain, regress_ad_other;
