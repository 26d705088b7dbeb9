-- Rule: phi_audit_prune removes archived blocks and their entries only for
-- phi_audit_admin, only against a digest that matches the chain, and only
-- blocks older than phi_guard.audit_min_retention; the checkpoint it leaves
-- is where verification, the digest and sealing continue; the log, the
-- blocks and the checkpoint stay closed to every SQL change, and a change
-- to the checkpoint is found by phi_audit_verify.
SET search_path = public, phi_guard;

CREATE FUNCTION regress_ret_verify(digest jsonb DEFAULT NULL) RETURNS text LANGUAGE sql AS $$
  SELECT CASE WHEN ok THEN 'ok' ELSE regexp_replace(problem, '[0-9]+', 'N', 'g') END
    FROM phi_guard.phi_audit_verify(digest)
$$;
-- regress_try with the numbers of the message as N (block numbers depend
-- on the files before this one)
CREATE FUNCTION regress_ret_try(sql text) RETURNS text LANGUAGE sql AS $$
  SELECT CASE WHEN r = 'ok' THEN r
              ELSE split_part(r, ': ', 1) || ': ' ||
                   regexp_replace(substr(r, strpos(r, ': ') + 2), '[0-9]+', 'N', 'g') END
    FROM regress_try(sql) r
$$;
-- the newest block's digest, as psql variables
CREATE FUNCTION regress_ret_digest(OUT b int8, OUT e int8, OUT h text, OUT d text)
LANGUAGE sql AS $$
  SELECT (x->>'block')::int8, (x->>'entries')::int8, x->>'block_hash', x::text
    FROM (SELECT phi_guard.phi_audit_digest() AS x) s
$$;

CREATE ROLE regress_ret_admin IN ROLE phi_audit_admin;
CREATE ROLE regress_ret_auditor IN ROLE phi_auditor;
CREATE ROLE regress_ret_exec IN ROLE phi_app;
CREATE ROLE regress_ret_nobody IN ROLE phi_app;  -- an ordinary application role
GRANT CREATE ON SCHEMA public TO regress_ret_nobody;

-- the minimum retention: 6 years, an interval, not negative, superuser only
SHOW phi_guard.audit_min_retention;
SELECT regress_try($$SET phi_guard.audit_min_retention = 'soon'$$) AS not_interval;
SELECT regress_try($$SET phi_guard.audit_min_retention = '-1 day'$$) AS negative;
SET ROLE regress_ret_admin;
SELECT regress_try($$SET phi_guard.audit_min_retention = '0'$$) AS not_superuser;
RESET ROLE;

-- three blocks: b0 (all earlier tests), b1 and b2 (an audited table's rows)
SET ROLE regress_ret_nobody;
CREATE TABLE regress_ret_t (id int PRIMARY KEY, note text);
RESET ROLE;
SELECT phi_audit_enable('regress_ret_t');
SELECT phi_audit_seal() > 0 AS sealed;
SELECT b AS b0, d AS d0 FROM regress_ret_digest() \gset
SET ROLE regress_ret_nobody;
INSERT INTO regress_ret_t VALUES (1, 'one'), (2, 'two'), (3, 'three');
RESET ROLE;
SELECT phi_audit_seal() AS sealed_b1;
SELECT b AS b1, e AS e1, h AS h1, d AS d1 FROM regress_ret_digest() \gset
SET ROLE regress_ret_nobody;
INSERT INTO regress_ret_t VALUES (4, 'four'), (5, 'five');
RESET ROLE;
SELECT phi_audit_seal() AS sealed_b2;
SELECT b AS b2, e AS e2, d AS d2 FROM regress_ret_digest() \gset
SELECT :b1 = :b0 + 1 AS b1_next, :b2 = :b1 + 1 AS b2_next, :e2 = :e1 + 2 AS e2_counts;
SELECT count(*) AS entries_before FROM audit_log \gset

-- who may prune: phi_audit_admin only (EXECUTE, and the function's own check)
SET ROLE regress_ret_nobody;
SELECT regress_ret_try(format('SELECT phi_guard.phi_audit_prune(%s, %L)', :b1, :'d1')) AS nobody;
RESET ROLE;
GRANT EXECUTE ON FUNCTION phi_audit_prune(int8, jsonb) TO regress_ret_exec;
SET ROLE regress_ret_exec;
SELECT regress_ret_try(format('SELECT phi_guard.phi_audit_prune(%s, %L)', :b1, :'d1')) AS granted_execute_only;
RESET ROLE;
REVOKE EXECUTE ON FUNCTION phi_audit_prune(int8, jsonb) FROM regress_ret_exec;
SET ROLE regress_ret_auditor;
SELECT regress_ret_try(format('SELECT phi_guard.phi_audit_prune(%s, %L)', :b1, :'d1')) AS auditor;
RESET ROLE;

-- a digest that does not match: 22023, nothing removed
SET ROLE regress_ret_admin;
SELECT regress_ret_try(format('SELECT phi_guard.phi_audit_prune(%s, %L)', :b1,
  jsonb_set(:'d1'::jsonb, '{block_hash}', to_jsonb(repeat('0', 64))))) AS other_hash;
SELECT regress_ret_try(format('SELECT phi_guard.phi_audit_prune(%s, %L)', :b1,
  jsonb_set(:'d1'::jsonb, '{entries}', to_jsonb(:e1 - 1)))) AS other_entries;
SELECT regress_ret_try(format('SELECT phi_guard.phi_audit_prune(%s, %L)', :b1,
  jsonb_set(:'d1'::jsonb, '{system_identifier}', '"1"'))) AS other_cluster;
SELECT regress_ret_try(format('SELECT phi_guard.phi_audit_prune(%s, %L)', :b1, :'d2')) AS other_block;
SELECT regress_ret_try(format('SELECT phi_guard.phi_audit_prune(%s, %L)', :b1, '{"block": 1}')) AS not_a_digest;
SELECT regress_ret_try(format('SELECT phi_guard.phi_audit_prune(%s, %L)', :b2 + 1, :'d2')) AS not_sealed;
-- younger than the minimum retention (6 years): 55000, nothing removed
SELECT regress_ret_try(format('SELECT phi_guard.phi_audit_prune(%s, %L)', :b1, :'d1')) AS too_young;
RESET ROLE;
SELECT count(*) = :entries_before AS nothing_removed, min(block_no) AS first_block,
       (SELECT count(*) FROM audit_checkpoint) AS checkpoints
  FROM audit_log, LATERAL (SELECT min(block_no) AS block_no FROM audit_block) b;
-- not in a REPEATABLE READ transaction (its snapshot could miss new blocks)
SET phi_guard.audit_min_retention = '0';
BEGIN ISOLATION LEVEL REPEATABLE READ;
SET LOCAL ROLE regress_ret_admin;
SELECT regress_ret_try(format('SELECT phi_guard.phi_audit_prune(%s, %L)', :b1, :'d1')) AS repeatable_read;
ROLLBACK;

-- pruning blocks 1..b1 removes exactly their entries and keeps the checkpoint
SELECT count(*) AS in_b1 FROM audit_log
 WHERE xid < (SELECT xid_hi FROM audit_block WHERE block_no = :b1) \gset
SET ROLE regress_ret_admin;
SELECT phi_audit_prune(:b1, :'d1') AS removed \gset
RESET ROLE;
SELECT :removed = :e1 AS removed_all_up_to_b1, :removed = :in_b1 AS removed_their_entries,
       (SELECT count(*) FROM audit_log) = :entries_before - :removed + 1 AS rest_kept_plus_prune_entry,
       (SELECT min(block_no) FROM audit_block) = :b1 + 1 AS first_block_left,
       (SELECT count(*) FROM audit_log
         WHERE xid < (SELECT xid_lo FROM audit_block WHERE block_no = :b1 + 1)) AS entries_below;
SELECT count(*) AS rows, bool_and(block_no = :b1) AS block_no, bool_and(entries = :e1) AS entries,
       bool_and(encode(block_hash, 'hex') = :'h1') AS block_hash,
       bool_and(pruned_at <= now()) AS pruned_at
  FROM audit_checkpoint;
SELECT r->>'kind' AS kind, r->>'table' AS tbl, r->>'db_user' AS db_user, r->>'role' AS role,
       (r->'detail'->>'block')::int8 = :b1 AS block, (r->'detail'->>'entries')::int8 = :e1 AS entries,
       r->'detail'->>'block_hash' = :'h1' AS block_hash,
       (r->'detail'->>'entries_removed')::int8 = :removed AS entries_removed,
       r->'detail'->'blocks_removed' = to_jsonb(:b1) AS blocks_removed,
       r->'detail'->'from_block' AS from_block, r->'detail'->'min_retention' AS min_retention
  FROM audit_log, LATERAL (SELECT record::jsonb AS r) j
 WHERE r->>'kind' = 'audit_prune';
-- the rest verifies from the checkpoint; counts and digests stay cumulative
SELECT ok, blocks = :b2 AS blocks, entries = :e2 AS entries, first_bad_block, problem
  FROM phi_audit_verify();
SELECT regress_ret_verify(:'d2') AS digest_b2, regress_ret_verify(:'d1') AS digest_checkpoint,
       regress_ret_verify(:'d0') AS digest_pruned_block;
SELECT b = :b2 AS digest_block, e = :e2 AS digest_entries FROM regress_ret_digest();
-- already pruned
SET ROLE regress_ret_admin;
SELECT regress_ret_try(format('SELECT phi_guard.phi_audit_prune(%s, %L)', :b1, :'d1')) AS again;
RESET ROLE;

-- new entries are sealed after the rest and verify
SET ROLE regress_ret_nobody;
INSERT INTO regress_ret_t VALUES (6, 'six');
RESET ROLE;
SELECT phi_audit_seal() AS sealed_b3;
SELECT b AS b3, e AS e3, h AS h3, d AS d3 FROM regress_ret_digest() \gset
SELECT :b3 = :b2 + 1 AS b3_next, :e3 = :e2 + 2 AS e3_counts_the_prune_entry, regress_ret_verify() AS verify;

-- pruning every block: the checkpoint is the previous block of the next seal
SET ROLE regress_ret_admin;
SELECT phi_audit_prune(:b3, :'d3') = :e3 - :e1 AS pruned_all;
RESET ROLE;
SELECT count(*) AS blocks_left FROM audit_block;
SELECT b = :b3 AS digest_block, e = :e3 AS digest_entries, h = :'h3' AS digest_hash,
       d::jsonb->'sealed_at' AS sealed_at FROM regress_ret_digest();
SELECT ok, blocks = :b3 AS blocks, entries = :e3 AS entries, problem FROM phi_audit_verify();
SELECT phi_audit_seal() AS sealed_b4;
SELECT block_no = :b3 + 1 AS block_no, encode(prev_hash, 'hex') = :'h3' AS chained,
       entries AS entries FROM audit_block;
SELECT regress_ret_verify() AS verify, regress_ret_verify(:'d3') AS digest_checkpoint;

-- nobody changes the log, the blocks or the checkpoint with SQL: not an
-- ordinary role, not phi_audit_admin, not the tables' owner (here a superuser)
SET ROLE regress_ret_nobody;
SELECT regress_try($$DELETE FROM phi_guard.audit_log$$) AS nobody_delete_log;
SELECT regress_try($$DELETE FROM phi_guard.audit_checkpoint$$) AS nobody_delete_checkpoint;
SELECT regress_try($$UPDATE phi_guard.audit_checkpoint SET entries = 0$$) AS nobody_update_checkpoint;
SELECT regress_try($$INSERT INTO phi_guard.audit_checkpoint VALUES (1, '', 0, now())$$) AS nobody_insert_checkpoint;
SET ROLE regress_ret_admin;
SELECT regress_try($$DELETE FROM phi_guard.audit_log$$) AS admin_delete_log;
SELECT regress_try($$DELETE FROM phi_guard.audit_block$$) AS admin_delete_blocks;
SELECT regress_try($$UPDATE phi_guard.audit_checkpoint SET entries = 0$$) AS admin_update_checkpoint;
RESET ROLE;
SELECT regress_try($$DELETE FROM phi_guard.audit_log$$) AS owner_delete_log;
SELECT regress_try($$DELETE FROM phi_guard.audit_block$$) AS owner_delete_blocks;
SELECT regress_try($$DELETE FROM phi_guard.audit_checkpoint$$) AS owner_delete_checkpoint;
SELECT regress_try($$UPDATE phi_guard.audit_checkpoint SET entries = 0$$) AS owner_update_checkpoint;
SELECT regress_try($$TRUNCATE phi_guard.audit_checkpoint$$) AS owner_truncate_checkpoint;
SELECT regress_ret_verify() AS still_ok;

-- a superuser who disables the protection and edits the checkpoint is found
BEGIN;
ALTER TABLE phi_guard.audit_checkpoint DISABLE TRIGGER audit_checkpoint_append_only;
UPDATE phi_guard.audit_checkpoint SET block_hash = sha256('forged');
SELECT ok, first_bad_block = :b3 + 1 AS first_bad_block, regress_ret_verify() AS problem FROM phi_audit_verify();
ROLLBACK;
BEGIN;
ALTER TABLE phi_guard.audit_checkpoint DISABLE TRIGGER audit_checkpoint_append_only;
UPDATE phi_guard.audit_checkpoint SET entries = entries + 1;
SELECT regress_ret_verify() AS entries_changed;
ROLLBACK;
BEGIN;
ALTER TABLE phi_guard.audit_checkpoint DISABLE TRIGGER audit_checkpoint_append_only;
DELETE FROM phi_guard.audit_checkpoint;
SELECT regress_ret_verify() AS checkpoint_removed;
ROLLBACK;
-- ... and so is a checkpoint added where nothing was pruned
BEGIN;
INSERT INTO phi_guard.audit_checkpoint SELECT block_no + 1, block_hash, entries, now() FROM phi_guard.audit_checkpoint;
SELECT regress_ret_verify() AS checkpoint_added;
ROLLBACK;
SELECT regress_ret_verify() AS verify;

RESET phi_guard.audit_min_retention;
SELECT phi_audit_disable('regress_ret_t');
DROP TABLE regress_ret_t;
REVOKE CREATE ON SCHEMA public FROM regress_ret_nobody;
DROP ROLE regress_ret_admin, regress_ret_auditor, regress_ret_exec, regress_ret_nobody;
DROP FUNCTION regress_ret_verify(jsonb), regress_ret_digest(), regress_ret_try(text);
