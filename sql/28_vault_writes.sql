-- Rule (SPEC §4, the vault's writes): phi_tokenize stores a new value
-- without SQL only while the vault is the table phi_guard created; the
-- row is the same as SQL's (every column, created_at = now()), later
-- look-ups of the same statement see it, a rollback (of the transaction
-- or of a savepoint) takes it away, and a read-only transaction is
-- refused as before.  Once the vault's owner attaches something to it (a
-- trigger, a CHECK constraint, an expression index), every new value goes
-- through SQL, so nothing attached is skipped.
\set VERBOSITY terse
SET search_path = public, phi_guard;
SELECT phi_key_create('regress_k28') > 0 AS created;
SELECT phi_token_domain_create('regress_vw', 'regress_k28');
SELECT phi_token_domain_create('regress_vw_ssn', 'regress_k28', 'ssn');

-- the same new value twice in one statement: one row, one token
BEGIN;
SELECT count(*) AS calls, count(DISTINCT t) AS tokens
  FROM (SELECT phi_tokenize(v, 'regress_vw') AS t
          FROM unnest(ARRAY['w-one', 'w-one', 'w-two', 'w-one']) v) s;
SELECT count(*) AS rows, count(DISTINCT token) AS tokens, bool_and(fingerprint IS NOT NULL) AS fingerprinted,
       bool_and(created_at = now()) AS created_now
  FROM token_vault WHERE domain = 'regress_vw';
COMMIT;
SELECT phi_detokenize(phi_tokenize('w-two', 'regress_vw'), 'regress_vw') AS round_trip;
-- a format-keeping domain: both spellings are one row
SELECT phi_tokenize('123-45-6789', 'regress_vw_ssn') = phi_tokenize('123456789', 'regress_vw_ssn') AS same_ssn_token;
SELECT count(*) AS ssn_rows FROM token_vault WHERE domain = 'regress_vw_ssn';

-- rollback of the transaction, then of a savepoint: no row is left
BEGIN;
SELECT phi_tokenize('w-rolled-back', 'regress_vw') IS NOT NULL AS tokenized;
ROLLBACK;
BEGIN;
SAVEPOINT a;
SELECT phi_tokenize('w-savepoint', 'regress_vw') IS NOT NULL AS tokenized;
ROLLBACK TO SAVEPOINT a;
SELECT phi_tokenize('w-after-savepoint', 'regress_vw') IS NOT NULL AS tokenized_again;
COMMIT;
SELECT v, EXISTS (SELECT FROM token_vault x WHERE x.domain = 'regress_vw'
                    AND phi_detokenize(x.token, 'regress_vw') = v) AS stored
  FROM unnest(ARRAY['w-rolled-back', 'w-savepoint', 'w-after-savepoint']) v ORDER BY v;

-- the plain vault takes the direct write: 20 new values read the domains
-- table a couple of times (the domain, its row lock), not once per row as
-- the SQL insert's foreign-key check does; so does a vault another table
-- references (its keys' triggers fire on other events).  Statistics
-- pending from earlier statements are flushed first, so that the
-- transaction's own counts are all pg_stat_xact_all_tables shows.
SELECT pg_stat_force_next_flush();
BEGIN;
SELECT count(phi_tokenize('w-fast-' || g, 'regress_vw')) AS tokenized FROM generate_series(1, 20) g;
SELECT seq_scan + coalesce(idx_scan, 0) < 5 AS few_domain_reads
  FROM pg_stat_xact_all_tables WHERE relid = 'phi_guard.token_domains'::regclass;
ROLLBACK;
CREATE TABLE regress_vw_ref (domain text COLLATE "C", token text COLLATE "C",
  FOREIGN KEY (domain, token) REFERENCES token_vault (domain, token));
SELECT pg_stat_force_next_flush();
BEGIN;
SELECT count(phi_tokenize('w-fast-ref-' || g, 'regress_vw')) AS tokenized FROM generate_series(1, 20) g;
SELECT seq_scan + coalesce(idx_scan, 0) < 5 AS few_domain_reads
  FROM pg_stat_xact_all_tables WHERE relid = 'phi_guard.token_domains'::regclass;
ROLLBACK;
DROP TABLE regress_vw_ref;

-- read-only: refused, nothing stored
BEGIN READ ONLY;
SELECT regress_try($$SELECT phi_guard.phi_tokenize('w-read-only', 'regress_vw')$$) AS read_only;
ROLLBACK;
SELECT count(*) AS rows FROM token_vault WHERE domain = 'regress_vw';

-- the owner's trigger on the vault sees every new row
CREATE TABLE regress_vw_seen (token text);
CREATE FUNCTION regress_vw_note() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO public.regress_vw_seen VALUES (NEW.token);
  RETURN NEW;
END
$$;
CREATE TRIGGER regress_vw_note AFTER INSERT ON token_vault
  FOR EACH ROW EXECUTE FUNCTION regress_vw_note();
SELECT pg_stat_force_next_flush();
BEGIN;
SELECT count(phi_tokenize('w-trigger-' || g, 'regress_vw')) AS tokenized FROM generate_series(1, 20) g;
-- ... through SQL: the foreign-key check reads the domains table per row
SELECT seq_scan + coalesce(idx_scan, 0) >= 20 AS domain_read_per_row
  FROM pg_stat_xact_all_tables WHERE relid = 'phi_guard.token_domains'::regclass;
COMMIT;
SELECT count(*) AS seen_by_trigger,
       count(*) FILTER (WHERE token IN (SELECT token FROM token_vault WHERE domain = 'regress_vw')) AS in_vault
  FROM regress_vw_seen;
DROP TRIGGER regress_vw_note ON token_vault;
DROP FUNCTION regress_vw_note();

-- the owner's CHECK constraint holds for new rows
ALTER TABLE token_vault ADD CONSTRAINT regress_vw_check CHECK (token <> '') NOT VALID;
ALTER TABLE token_vault ADD CONSTRAINT regress_vw_never CHECK (created_at < '2000-01-01') NOT VALID;
SELECT regress_try($$SELECT phi_guard.phi_tokenize('w-check', 'regress_vw')$$) AS check_violated;
ALTER TABLE token_vault DROP CONSTRAINT regress_vw_never;
SELECT phi_tokenize('w-check', 'regress_vw') IS NOT NULL AS tokenized_after_drop;
ALTER TABLE token_vault DROP CONSTRAINT regress_vw_check;

-- an expression index gets the new rows' entries
CREATE INDEX regress_vw_upper ON token_vault (upper(token));
SELECT upper(phi_tokenize('w-expression', 'regress_vw')) AS up \gset
SET enable_seqscan = off;
SET enable_bitmapscan = off;
EXPLAIN (COSTS OFF) SELECT count(*) FROM token_vault WHERE upper(token) = 'X';
SELECT count(*) AS found_by_expression_index FROM token_vault WHERE upper(token) = :'up';
RESET enable_seqscan;
RESET enable_bitmapscan;
DROP INDEX regress_vw_upper;

-- back to the plain vault: new values go in, and the domain's row is
-- still referenced (the foreign key holds)
SELECT phi_tokenize('w-plain-again', 'regress_vw') IS NOT NULL AS tokenized;
SELECT regress_try($$DELETE FROM phi_guard.token_domains WHERE name = 'regress_vw'$$) AS delete_domain;
SELECT count(*) AS rows FROM token_vault WHERE domain = 'regress_vw';
