-- Rule: CREATE EXTENSION installs everything into schema phi_guard, creates
-- the phi_guard roles, and works only as designed (not relocatable).
CREATE EXTENSION phi_guard;
SELECT extname, extversion, extrelocatable, n.nspname
  FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
 WHERE extname = 'phi_guard';
SELECT rolname, rolcanlogin FROM pg_roles
 WHERE rolname IN ('phi_key_admin', 'phi_encryptor', 'phi_decryptor') ORDER BY 1;
-- every object of the extension lives in schema phi_guard
SELECT count(*) AS objects_outside_schema
  FROM pg_depend d JOIN pg_proc p ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
 WHERE d.refclassid = 'pg_extension'::regclass
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'phi_guard')
   AND p.pronamespace <> 'phi_guard'::regnamespace;
-- the functions it installs (user-facing ones are named phi_*)
SELECT p.oid::regprocedure AS function
  FROM pg_proc p WHERE p.pronamespace = 'phi_guard'::regnamespace
 ORDER BY p.proname, p.oid::regprocedure::text;
-- the keyring is kept by pg_dump
SELECT c.relname FROM pg_extension e, unnest(e.extconfig) AS cfg(oid)
  JOIN pg_class c ON c.oid = cfg.oid
 WHERE e.extname = 'phi_guard' ORDER BY 1;

-- Test helper used by the later files: run a statement and report its
-- SQLSTATE and message (never its data).
CREATE FUNCTION regress_try(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE sql;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;
-- Like regress_try, plus the error's detail, and a flag when the message,
-- detail or hint contains one of the given secrets (08b_tokens, 08c_masking).
CREATE FUNCTION regress_try_secrets(sql text, secrets text[] DEFAULT '{}') RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  st text; msg text; det text; hnt text;
BEGIN
  EXECUTE sql;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                          det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
  RETURN st || ': ' || msg || coalesce(' [' || nullif(det, '') || ']', '')
         || CASE WHEN EXISTS (SELECT FROM unnest(secrets) s
                               WHERE s <> '' AND (strpos(msg, s) > 0 OR strpos(coalesce(det, ''), s) > 0
                                                  OR strpos(coalesce(hnt, ''), s) > 0))
                 THEN ' [LEAKS A SECRET]' ELSE '' END;
END
$$;
