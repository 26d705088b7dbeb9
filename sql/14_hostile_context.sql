-- Rule: look-alikes an ordinary role plants in pg_temp or public (readers,
-- the break-glass policy function, permission checks, operators) change
-- nothing: protected tables' policies, phi_set_context and break-glass
-- call only phi_guard's own functions and pg_catalog's operators.
\set VERBOSITY terse
SET search_path = public, phi_guard;
\getenv abs_srcdir PG_ABS_SRCDIR
\set signer 'python3 ' :abs_srcdir '/test/context/sign_context.py'
\set bill `:signer token k1 sub=mallory tenant=clinic-a roles=billing exp=+600`

CREATE ROLE regress_hctx IN ROLE phi_app;
GRANT CREATE ON SCHEMA public TO regress_hctx;
CREATE TABLE regress_hpat (id int PRIMARY KEY, tenant text NOT NULL);
INSERT INTO regress_hpat VALUES (1, 'clinic-a'), (2, 'clinic-b');
-- the same rows, readable only through break-glass
CREATE TABLE regress_hglass AS SELECT * FROM regress_hpat;
GRANT SELECT ON regress_hpat, regress_hglass TO regress_hctx;
SET client_min_messages = error;
SELECT phi_protect_table('regress_hpat', 'tenant'), phi_protect_table('regress_hglass', 'tenant');
RESET client_min_messages;
DROP POLICY phi_guard_tenant_access ON regress_hglass;

SET ROLE regress_hctx;
CREATE FUNCTION public.phi_tenant_id() RETURNS text LANGUAGE sql AS $$ SELECT 'clinic-b' $$;
CREATE FUNCTION public.phi_user_id() RETURNS text LANGUAGE sql AS $$ SELECT 'dr.grey' $$;
CREATE FUNCTION public.phi_has_permission(text) RETURNS bool LANGUAGE sql AS $$ SELECT true $$;
CREATE FUNCTION public.break_glass_use(regclass) RETURNS bool LANGUAGE sql AS $$ SELECT true $$;
CREATE FUNCTION pg_temp.phi_tenant_id() RETURNS text LANGUAGE sql AS $$ SELECT 'clinic-b' $$;
CREATE FUNCTION public.texteq_evil(text, text) RETURNS bool LANGUAGE sql AS $$ SELECT true $$;
CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.texteq_evil);
CREATE OPERATOR public.~ (LEFTARG = text, RIGHTARG = text, FUNCTION = public.texteq_evil);
SET search_path = pg_temp, public, phi_guard;
-- without a context still nothing, with one only its tenant, and no
-- break-glass rows without a grant
SELECT count(*) AS rows_without_context FROM regress_hpat;
BEGIN;
SELECT phi_guard.phi_set_context(:'bill');
SELECT phi_guard.phi_tenant_id() AS real_tenant, phi_tenant_id() AS planted_tenant;
SELECT array_agg(id) AS rows_with_context FROM regress_hpat;
SELECT count(*) AS break_glass_rows FROM regress_hglass;
-- the planted permission check does not open break-glass
SELECT regress_try($$SELECT phi_guard.phi_break_glass('a long enough reason here', 5)$$) AS break_glass;
COMMIT;
RESET ROLE;
SET search_path = public, phi_guard;
SELECT count(*) AS grants FROM phi_guard.break_glass WHERE user_id = 'mallory';
DROP OPERATOR public.= (text, text), public.~ (text, text);
DROP FUNCTION public.texteq_evil(text, text), public.phi_tenant_id(), public.phi_user_id(),
  public.phi_has_permission(text), public.break_glass_use(regclass), pg_temp.phi_tenant_id();
DROP TABLE regress_hpat, regress_hglass;
REVOKE CREATE ON SCHEMA public FROM regress_hctx;
DROP ROLE regress_hctx;
