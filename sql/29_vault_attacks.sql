-- Rule (SPEC §4, the vault's writes; attacks on 28_vault_writes' direct
-- path): a new value stored without SQL obeys everything the SQL insert
-- would: the foreign key to its domain (even when this very transaction
-- removed the domain's row after an earlier value), every other foreign
-- key, NOT NULL, rule and column default the vault's owner added, and the
-- unique keys (a token already taken by another value is never returned).
-- Each attack runs in a transaction that is rolled back.
\set VERBOSITY terse
SET search_path = public, phi_guard;
SELECT phi_key_create('regress_k29') > 0 AS created;
SELECT phi_token_domain_create('regress_va', 'regress_k29');

-- the domain's row removed by this transaction after a first value (the
-- same call site, so its cached domain-row lock): the next value must not
-- be stored under a domain that no longer exists
BEGIN;
SELECT phi_token_domain_create('regress_va_gone', 'regress_k29');
SELECT regress_try($$
DO $d$
DECLARE t text;
BEGIN
  FOR i IN 1..2 LOOP
    t := phi_guard.phi_tokenize('va-gone-' || i, 'regress_va_gone');
    IF i = 1 THEN
      DELETE FROM phi_guard.token_vault WHERE domain = 'regress_va_gone';
      DELETE FROM phi_guard.token_domains WHERE name = 'regress_va_gone';
    END IF;
  END LOOP;
END
$d$
$$) ~ '^(23503|42704):' AS refused_after_domain_removed;
SELECT count(*) AS orphan_rows FROM token_vault v
 WHERE NOT EXISTS (SELECT FROM token_domains d WHERE d.name = v.domain);
ROLLBACK;

-- the owner's second foreign key on the vault holds for new rows
BEGIN;
CREATE TABLE regress_va_allowed (domain text COLLATE "C" PRIMARY KEY);
ALTER TABLE token_vault ADD CONSTRAINT regress_va_allowed_fkey
  FOREIGN KEY (domain) REFERENCES regress_va_allowed (domain) NOT VALID;
SELECT left(regress_try($$SELECT phi_guard.phi_tokenize('va-fkey', 'regress_va')$$), 5) AS second_fkey;
ROLLBACK;

-- the owner's NOT NULL holds for new rows (a random domain has no fingerprint)
BEGIN;
SELECT phi_token_domain_create('regress_va_random', 'regress_k29', 'opaque', false);
DELETE FROM token_vault WHERE fingerprint IS NULL;
ALTER TABLE token_vault ALTER COLUMN fingerprint SET NOT NULL;
SELECT left(regress_try($$SELECT phi_guard.phi_tokenize('va-not-null', 'regress_va_random')$$), 5) AS not_null;
SELECT count(*) AS null_fingerprints FROM token_vault WHERE fingerprint IS NULL;
ROLLBACK;

-- the owner's INSERT rule is not skipped (SQL refuses ON CONFLICT with
-- rules, so refusing is the other acceptable outcome)
BEGIN;
CREATE TABLE regress_va_mirror (token text);
CREATE RULE regress_va_mirror AS ON INSERT TO token_vault
  DO ALSO INSERT INTO public.regress_va_mirror VALUES (NEW.token);
SELECT regress_try($$SELECT phi_guard.phi_tokenize('va-rule', 'regress_va')$$) <> 'ok'
       OR EXISTS (SELECT FROM regress_va_mirror) AS rule_not_skipped;
ROLLBACK;

-- the owner's column default for created_at is the one a new row gets
BEGIN;
ALTER TABLE token_vault ALTER COLUMN created_at SET DEFAULT '2001-02-03 04:05:06+00';
SELECT phi_tokenize('va-default', 'regress_va') AS t_default \gset
SELECT created_at = '2001-02-03 04:05:06+00' AS owner_default
  FROM token_vault WHERE domain = 'regress_va' AND token = :'t_default';
ROLLBACK;

-- a token already taken by another value: the next candidate is stored
-- and returned, the other value's row is untouched
BEGIN;
SELECT phi_tokenize('va-collide', 'regress_va') AS t0 \gset
CREATE TEMP TABLE regress_va_row AS
  SELECT * FROM token_vault WHERE domain = 'regress_va' AND token = :'t0';
DELETE FROM token_vault WHERE domain = 'regress_va' AND token = :'t0';
INSERT INTO token_vault (domain, token, fingerprint, value)
  SELECT domain, token, '\x00'::bytea, value FROM regress_va_row;
SELECT phi_tokenize('va-collide', 'regress_va') AS t1 \gset
SELECT :'t1' <> :'t0' AS next_token,
       phi_detokenize(:'t1', 'regress_va') = 'va-collide' AS round_trip,
       (SELECT fingerprint FROM token_vault WHERE domain = 'regress_va' AND token = :'t0') = '\x00'::bytea AS other_row_kept,
       (SELECT count(*) FROM token_vault WHERE domain = 'regress_va' AND token IN (:'t0', :'t1')) AS rows;
ROLLBACK;

-- forgotten, then tokenized again in the same transaction: one live row
BEGIN;
SELECT phi_tokenize('va-forget', 'regress_va') AS f0 \gset
SELECT phi_token_forget('regress_va', :'f0') AS forgotten;
SELECT phi_tokenize('va-forget', 'regress_va') = :'f0' AS same_token_again;
SELECT count(*) AS rows FROM token_vault WHERE domain = 'regress_va' AND token = :'f0';
ROLLBACK;
