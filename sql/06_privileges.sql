-- Rule: nothing in phi_guard is usable by PUBLIC, which has no USAGE on the
-- schema; the only functions executable by PUBLIC are those SPEC §5 gives
-- every role with USAGE (context, readers, masking, break-glass, the
-- protected tables' policy function) and phi_protect_table (which checks
-- that the caller owns the table); phi_encryptor may only
-- encrypt, phi_decryptor only decrypt, phi_key_admin manages keys and sees
-- the keyring without the wrapped keys; every SECURITY DEFINER function pins
-- search_path; settings naming the master key are superuser-only.
SET search_path = public, phi_guard;
\set VERBOSITY terse

-- catalog checks
SELECT p.oid::regprocedure AS executable_by_public
  FROM pg_proc p WHERE p.pronamespace = 'phi_guard'::regnamespace
   AND has_function_privilege('public', p.oid, 'EXECUTE')
 ORDER BY p.oid::regprocedure::text;
SELECT p.oid::regprocedure AS secdef, p.proconfig
  FROM pg_proc p WHERE p.pronamespace = 'phi_guard'::regnamespace AND p.prosecdef
 ORDER BY p.oid::regprocedure::text;
SELECT count(*) AS secdef_without_pinned_path
  FROM pg_proc p WHERE p.pronamespace = 'phi_guard'::regnamespace AND p.prosecdef
   AND NOT coalesce(p.proconfig @> ARRAY['search_path=pg_catalog, pg_temp'], false);
SELECT c.relname, has_table_privilege('public', c.oid, 'SELECT') AS public_select
  FROM pg_class c WHERE c.relnamespace = 'phi_guard'::regnamespace AND c.relkind IN ('r', 'S')
 ORDER BY 1;
SELECT has_schema_privilege('public', 'phi_guard', 'USAGE') AS public_usage;
SELECT name, context, setting <> '' AS is_set
  FROM pg_settings WHERE name LIKE 'phi\_guard.%' ORDER BY 1;

CREATE ROLE regress_nobody;
CREATE ROLE regress_enc IN ROLE phi_encryptor;
CREATE ROLE regress_dec IN ROLE phi_decryptor;
CREATE ROLE regress_admin IN ROLE phi_key_admin;
GRANT USAGE ON SCHEMA phi_guard TO regress_nobody;
GRANT CREATE ON SCHEMA public TO regress_enc;
SELECT phi_key_create('regress_priv') > 0 AS created;
CREATE TABLE regress_shared (id int, c phi_ciphertext);
GRANT SELECT, INSERT ON regress_shared TO regress_nobody, regress_enc, regress_dec;

-- a role with no phi_guard role: nothing works, but stored values can be read as ciphertext
SET ROLE regress_nobody;
SELECT regress_try($$SELECT phi_guard.phi_encrypt('x', 'regress_priv')$$) AS encrypt;
SELECT regress_try($$SELECT phi_guard.phi_key_create('regress_nope')$$) AS key_create;
SELECT regress_try($$SELECT * FROM phi_guard.keys$$) AS read_keys;
SELECT regress_try($$SHOW phi_guard.master_key_file$$) AS show_key_file;
SELECT count(*) AS key_settings_visible FROM pg_settings WHERE name LIKE 'phi\_guard.%';
RESET ROLE;

-- phi_encryptor: encrypts (and rewraps), cannot decrypt or manage keys
SET ROLE regress_enc;
INSERT INTO regress_shared VALUES (1, phi_guard.phi_encrypt('enc only', 'regress_priv'));
SELECT regress_try($$SELECT phi_guard.phi_decrypt(c) FROM regress_shared$$) AS decrypt;
SELECT regress_try($$SELECT phi_guard.phi_key_rotate('regress_priv')$$) AS key_rotate;
SELECT regress_try($$SELECT wrapped_key FROM phi_guard.keys$$) AS read_wrapped;
SELECT regress_try($$SELECT phi_guard.phi_rewrap(c) FROM regress_shared$$) AS rewrap;
SELECT left(c::text, 5) AS stored_as_ciphertext FROM regress_shared;
RESET ROLE;

-- phi_decryptor: decrypts, cannot encrypt
SET ROLE regress_dec;
SELECT phi_guard.phi_decrypt(c) AS decrypted FROM regress_shared;
SELECT regress_try($$SELECT phi_guard.phi_encrypt('x', 'regress_priv')$$) AS encrypt;
SELECT regress_try($$SELECT phi_guard.phi_key_destroy('regress_priv')$$) AS key_destroy;
RESET ROLE;

-- phi_key_admin: manages keys, sees the keyring but not wrapped keys
SET ROLE regress_admin;
SELECT phi_guard.phi_key_create('regress_admin_key') > 0 AS created;
SELECT phi_guard.phi_key_rotate('regress_admin_key') > 0 AS rotated;
SELECT name, version, state FROM phi_guard.keys WHERE name = 'regress_admin_key' ORDER BY version;
SELECT regress_try($$SELECT wrapped_key FROM phi_guard.keys$$) AS read_wrapped;
SELECT regress_try($$UPDATE phi_guard.keys SET state = 'active'$$) AS write_keys;
SELECT regress_try($$DELETE FROM phi_guard.keys$$) AS delete_keys;
SELECT phi_guard.phi_key_destroy('regress_admin_key') AS destroyed;
RESET ROLE;

DROP TABLE regress_shared;
REVOKE CREATE ON SCHEMA public FROM regress_enc;
REVOKE USAGE ON SCHEMA phi_guard FROM regress_nobody;
DROP ROLE regress_nobody, regress_enc, regress_dec, regress_admin;
