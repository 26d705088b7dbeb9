-- src/common/schema.sql: the schema phi_guard and the roles.
--
-- Owns: the check that schema phi_guard is the installing role's own, the
-- cluster-wide NOLOGIN roles every other piece grants to, and USAGE on the
-- schema.  References nothing else of phi_guard; every later piece may rely
-- on these roles existing.
--
-- This file is one piece of the install script of the current version:
-- the Makefile concatenates the pieces (src/*/*.sql, see SQL_PIECES there)
-- into phi_guard--<default_version>.sql.  Rules of every piece: plain CREATE
-- only (no OR REPLACE, no IF NOT EXISTS), every reference qualified
-- (pg_catalog., phi_guard., OPERATOR(pg_catalog.x)), every SECURITY DEFINER
-- function pins search_path = pg_catalog, pg_temp, a COMMENT ON every
-- function, volatility and parallel safety stated, nothing executable by
-- PUBLIC unless said so.  A change here is a change of the current version:
-- the same change goes into that version's update script, and
-- test/t/008_upgrade.pl checks that both give the same database.

-- Refuse a pre-existing phi_guard schema that someone else owns: its owner
-- could have planted objects that our functions would resolve.
DO $guard$
BEGIN
  IF (SELECT n.nspowner OPERATOR(pg_catalog.<>) r.oid
        FROM pg_catalog.pg_namespace n, pg_catalog.pg_roles r
       WHERE n.nspname OPERATOR(pg_catalog.=) 'phi_guard'
         AND r.rolname OPERATOR(pg_catalog.=) CURRENT_USER) THEN
    RAISE EXCEPTION 'schema phi_guard exists and is owned by another role'
      USING ERRCODE = '42501',
            HINT = 'Drop or rename that schema, then run CREATE EXTENSION phi_guard again.';
  END IF;
END
$guard$;

-- Roles are cluster-wide: a second database installing phi_guard reuses them.
-- phi_app is the role of an application's pooled login role: USAGE on the
-- schema, so its sessions can set a context and pass protected tables'
-- policies.
DO $roles$
DECLARE
  r pg_catalog.text;
BEGIN
  FOREACH r IN ARRAY ARRAY['phi_key_admin', 'phi_encryptor', 'phi_decryptor',
                           'phi_detokenizer', 'phi_masked_reader',
                           'phi_auditor', 'phi_audit_admin', 'phi_app'] LOOP
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) r) THEN
      EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', r);
    END IF;
  END LOOP;
END
$roles$;

REVOKE ALL ON SCHEMA phi_guard FROM PUBLIC;
GRANT USAGE ON SCHEMA phi_guard TO phi_key_admin, phi_encryptor, phi_decryptor,
  phi_detokenizer, phi_masked_reader, phi_auditor, phi_audit_admin, phi_app;
