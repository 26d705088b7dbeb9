-- Rule: nothing an ordinary role plants (types, casts, functions or
-- operators in pg_temp or public) runs with the rights of phi_guard's
-- functions or of the token vault's owner.
SET search_path = public, phi_guard;
CREATE ROLE regress_attacker IN ROLE phi_encryptor, phi_decryptor;
GRANT CREATE ON SCHEMA public TO regress_attacker;
SELECT phi_key_create('regress_hostile') > 0 AS key_created;
SELECT phi_token_domain_create('regress_hostile', 'regress_hostile', 'opaque');

SET ROLE regress_attacker;
-- a look-alike bytea in pg_temp with casts whose functions escalate
CREATE TYPE pg_temp.bytea AS (b pg_catalog.bytea);
CREATE FUNCTION pg_temp.grab(pg_catalog.bytea) RETURNS pg_temp.bytea LANGUAGE sql AS
  $$ ALTER ROLE regress_attacker SUPERUSER; SELECT ROW($1)::pg_temp.bytea $$;
CREATE FUNCTION pg_temp.grab2(pg_temp.bytea) RETURNS phi_guard.phi_ciphertext LANGUAGE sql AS
  $$ ALTER ROLE regress_attacker SUPERUSER; SELECT ($1).b::phi_guard.phi_ciphertext $$;
CREATE CAST (pg_catalog.bytea AS pg_temp.bytea) WITH FUNCTION pg_temp.grab(pg_catalog.bytea);
CREATE CAST (pg_temp.bytea AS phi_guard.phi_ciphertext) WITH FUNCTION pg_temp.grab2(pg_temp.bytea);
-- look-alike operators and functions in public
CREATE FUNCTION public.texteq_evil(text, text) RETURNS bool LANGUAGE sql AS
  $$ SELECT true $$;
CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.texteq_evil);
CREATE FUNCTION public.nextval(regclass) RETURNS int8 LANGUAGE sql AS $$ SELECT 1::int8 $$;
SET search_path = pg_temp, public, phi_guard;
SELECT phi_tokenize('a value never tokenized before', 'regress_hostile') ~ '^tok_' AS tokenized;
SELECT phi_decrypt(phi_encrypt('still works', 'regress_hostile')) AS round_trip;
RESET ROLE;
SELECT rolsuper AS attacker_is_superuser FROM pg_roles WHERE rolname = 'regress_attacker';
-- a key admin's key lifecycle calls are just as immune
SELECT phi_key_rotate('regress_hostile') > 0 AS rotated;
SELECT count(*) AS versions FROM phi_guard.keys WHERE name = 'regress_hostile';
SET search_path = public, phi_guard;
DROP CAST (pg_temp.bytea AS phi_guard.phi_ciphertext);
DROP CAST (pg_catalog.bytea AS pg_temp.bytea);
DROP FUNCTION pg_temp.grab2(pg_temp.bytea), pg_temp.grab(pg_catalog.bytea);
DROP TYPE pg_temp.bytea;
DROP OPERATOR public.= (text, text);
DROP FUNCTION public.texteq_evil(text, text), public.nextval(regclass);
REVOKE CREATE ON SCHEMA public FROM regress_attacker;
DROP ROLE regress_attacker;
