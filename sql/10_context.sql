-- Rule (SPEC §5): phi_set_context accepts only a compact JWS signed with
-- EdDSA by a registered, unrevoked key, with sub, tenant, roles and exp of
-- the right types, inside its validity window (leeway) and lifetime limit;
-- every other token is refused with 28000, a reason, and never the token.
-- The verified context lasts until the transaction ends (commit, rollback,
-- error), a failed call leaves no context, and no setting can feed it.
-- Readers are NULL without a context; phi_has_permission is deny-by-default.
\set VERBOSITY terse
SET search_path = public, phi_guard;
\getenv abs_srcdir PG_ABS_SRCDIR
\set signer 'python3 ' :abs_srcdir '/test/context/sign_context.py'
-- run a statement; its SQLSTATE and message, flagged when it shows a secret
CREATE FUNCTION regress_ctx_try(sql text, secret text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  msg text; det text; hnt text;
BEGIN
  EXECUTE sql;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
  RETURN SQLSTATE || ': ' || msg
         || CASE WHEN secret <> '' AND strpos(concat(msg, det, hnt), secret) > 0
                 THEN ' (LEAKS THE TOKEN)' ELSE '' END;
END
$$;

CREATE ROLE regress_ctx_admin IN ROLE phi_key_admin;
CREATE ROLE regress_ctx_app IN ROLE phi_app;
CREATE ROLE regress_ctx_nobody;

-- registering keys: key admins only, Ed25519 PEM only, kids never reused
\set pem1 `:signer pem k1`
\set pem2 `:signer pem k2`
\set pem3 `:signer pem k3`
SET ROLE regress_ctx_app;
SELECT regress_try(format('SELECT phi_context_key_add(%L, %L)', 'k1', :'pem1'));
SET ROLE regress_ctx_admin;
SELECT phi_context_key_add('k1', :'pem1');
SELECT phi_context_key_add('k2', :'pem2');
SELECT phi_context_key_add('k3', :'pem3');
SELECT regress_try(format('SELECT phi_context_key_add(%L, %L)', 'k1', :'pem2'));
SELECT regress_try($$SELECT phi_context_key_add('k9', 'not a key')$$);
SELECT regress_try($$SELECT phi_context_key_add('k9', '-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEWbKtkjpIZhRHFT1Co6BqlXKmXxrq
Y5Ru7Ns1k7d3yRFbFhkS7ZCRr2uumhX4qD8s9+5ixwGzmTIpdHTN1iS0sQ==
-----END PUBLIC KEY-----')$$);
SELECT regress_try(format('SELECT phi_context_key_add(%L, %L)', '', :'pem2'));
SELECT regress_try(format('SELECT phi_context_key_add(%L, %L)', E'a\nb', :'pem2'));
SELECT kid, revoked_at IS NULL AS active FROM phi_context_keys();
RESET ROLE;
SELECT kid, octet_length(public_key) AS key_bytes FROM phi_guard.context_keys ORDER BY kid;

-- without a context every reader is NULL and no permission holds
SET ROLE regress_ctx_app;
SELECT phi_user_id(), phi_tenant_id(), phi_roles(), phi_has_role('clinician'),
       phi_purpose(), phi_has_permission('patient.read');

-- a valid token: the context holds for the transaction, then ends
\set tok `:signer token k1 sub=alice tenant=clinic-a roles=clinician,nurse exp=+300 iat=-5 purpose=treatment`
BEGIN;
SELECT phi_set_context(:'tok');
SELECT phi_user_id(), phi_tenant_id(), phi_roles(), phi_has_role('nurse') AS nurse,
       phi_has_role('billing') AS billing, phi_purpose();
SELECT phi_has_permission('patient.read') AS read, phi_has_permission('break_glass') AS glass,
       phi_has_permission('audit.read') AS audit;
COMMIT;
SELECT phi_user_id() AS after_commit, phi_tenant_id();
BEGIN;
SELECT phi_set_context(:'tok');
ROLLBACK;
SELECT phi_user_id() AS after_rollback;
BEGIN;
SELECT phi_set_context(:'tok');
SELECT 1 / 0;
ROLLBACK;
SELECT phi_user_id() AS after_error;
-- phi_clear_context ends it early
BEGIN;
SELECT phi_set_context(:'tok');
SELECT phi_clear_context();
SELECT phi_tenant_id() AS after_clear;
COMMIT;
-- outside a transaction block it lasts one statement, with a warning
SELECT phi_set_context(:'tok');
SELECT phi_tenant_id() AS next_statement;

-- purpose is optional; roles may be empty
\set tok2 `:signer token k2 sub=bob tenant=clinic-b roles= exp=+60`
BEGIN;
SELECT phi_set_context(:'tok2');
SELECT phi_user_id(), phi_tenant_id(), phi_roles(), phi_purpose() IS NULL AS no_purpose,
       phi_has_permission('patient.read') AS read;
COMMIT;

-- every rejection: 28000, the reason, never the token (flagged if it were)
\set t_expired `:signer token k1 sub=a tenant=t roles=x exp=-120`
\set t_nbf `:signer token k1 sub=a tenant=t roles=x exp=+300 nbf=+200`
\set t_tamper `:signer token k1 sub=a tenant=t roles=x exp=+300 --tamper`
\set t_otherkey `:signer token k1 sub=a tenant=t roles=x exp=+300 --sign-with=k2`
\set t_unknown `:signer token k7 sub=a tenant=t roles=x exp=+300`
\set t_nokid `:signer token k1 sub=a tenant=t roles=x exp=+300 hdr.kid=-`
\set t_none `:signer token k1 sub=a tenant=t roles=x exp=+300 hdr.alg=none`
\set t_hs256 `:signer token k1 sub=a tenant=t roles=x exp=+300 hdr.alg=HS256`
\set t_crit `:signer token k1 sub=a tenant=t roles=x exp=+300 'hdr.crit=json:["exp"]'`
\set t_noexp `:signer token k1 sub=a tenant=t roles=x`
\set t_nosub `:signer token k1 tenant=t roles=x exp=+300`
\set t_notenant `:signer token k1 sub=a roles=x exp=+300`
\set t_noroles `:signer token k1 sub=a tenant=t exp=+300`
\set t_rolesstr `:signer token k1 sub=a tenant=t 'roles=json:"admin"' exp=+300`
\set t_rolesnum `:signer token k1 sub=a tenant=t 'roles=json:["a",1]' exp=+300`
\set t_tenantnum `:signer token k1 sub=a tenant=json:42 roles=x exp=+300`
\set t_expstr `:signer token k1 sub=a tenant=t roles=x 'exp=json:"9999999999"'`
\set t_long `:signer token k1 sub=a tenant=t roles=x exp=+7200`
\set t_iatlong `:signer token k1 sub=a tenant=t roles=x exp=+60 iat=-7200`
\set t_ctrl `:signer token k1 'sub=json:"a\u001fb"' tenant=t roles=x exp=+300`
SELECT name, regress_ctx_try(format('SELECT phi_set_context(%L)', tok), tok) AS result
  FROM (VALUES ('expired', :'t_expired'), ('not yet valid', :'t_nbf'),
               ('tampered payload', :'t_tamper'), ('signed by another key', :'t_otherkey'),
               ('unknown kid', :'t_unknown'), ('no kid', :'t_nokid'),
               ('alg none', :'t_none'), ('alg HS256', :'t_hs256'), ('crit header', :'t_crit'),
               ('no exp', :'t_noexp'), ('no sub', :'t_nosub'), ('no tenant', :'t_notenant'),
               ('no roles', :'t_noroles'), ('roles a string', :'t_rolesstr'),
               ('roles with a number', :'t_rolesnum'), ('tenant a number', :'t_tenantnum'),
               ('exp a string', :'t_expstr'), ('lives 2 h', :'t_long'),
               ('issued 2 h before exp', :'t_iatlong'), ('control character in sub', :'t_ctrl'),
               ('empty', ''), ('garbage', 'not.a.token'), ('four parts', 'a.b.c.d'),
               ('oversize', repeat('A', 9000) || '.' || repeat('B', 10) || '.' || repeat('C', 86)),
               ('signature cut', left(:'t_expired', -1))) AS t(name, tok);
SELECT regress_try('SELECT phi_set_context(NULL)') AS null_token, phi_tenant_id() IS NULL AS none;

-- a failed call drops the context it replaces
BEGIN;
SELECT phi_set_context(:'tok');
SAVEPOINT s;
SELECT regress_try(format('SELECT phi_set_context(%L)', :'t_expired'));
SELECT phi_tenant_id() AS after_failed_replace;
COMMIT;

-- leeway (30 s by default) and the lifetime limit are superuser settings
\set t_late `:signer token k1 sub=a tenant=t roles=x exp=-10`
SELECT regress_try(format('SELECT phi_set_context(%L)', :'t_late')) AS within_leeway;
SELECT regress_try('SET phi_guard.context_leeway = 300') AS app_sets_leeway;
SELECT regress_try('SET phi_guard.context_max_lifetime = 0') AS app_sets_lifetime;
RESET ROLE;
SET phi_guard.context_leeway = 0;
SELECT regress_try(format('SELECT phi_set_context(%L)', :'t_late')) AS no_leeway;
RESET phi_guard.context_leeway;
SET phi_guard.context_max_lifetime = 0;
SELECT regress_try(format('SELECT phi_set_context(%L)', :'t_long')) AS no_lifetime_limit;
RESET phi_guard.context_max_lifetime;

-- no setting feeds the context: custom phi_guard.* names are reserved, and
-- RESET ALL, SET ROLE and DISCARD leave it (and only it) alone
SET ROLE regress_ctx_app;
SELECT regress_try($$SELECT set_config('phi_guard.tenant', 'clinic-b', false)$$) AS set_config;
SELECT regress_try($$SET phi_guard.tenant = 'clinic-b'$$) AS set_tenant;
SELECT regress_try($$SET phi_guard.user_id = 'mallory'$$) AS set_user;
BEGIN;
SELECT phi_set_context(:'tok');
RESET ALL;
SET ROLE regress_ctx_app;
SELECT phi_guard.phi_user_id(), phi_guard.phi_tenant_id() AS after_reset_all;
RESET ROLE;
SELECT phi_guard.phi_tenant_id() AS after_reset_role;
DISCARD PLANS;
SELECT phi_guard.phi_tenant_id() AS after_discard_plans;
COMMIT;
SET search_path = public, phi_guard;
SET ROLE regress_ctx_app;

-- permissions: the built-in map, overrides by key admins, read at
-- phi_set_context
\set tbill `:signer token k1 sub=carol tenant=clinic-a roles=billing,auditor exp=+300`
BEGIN;
SELECT phi_set_context(:'tbill');
SELECT phi_has_permission('audit.read') AS audit, phi_has_permission('billing.read') AS billing,
       phi_has_permission('break_glass') AS glass, phi_has_permission('') AS empty;
COMMIT;
SELECT regress_try($$SELECT phi_permission_grant('billing', 'billing.read')$$) AS app_grants;
SET ROLE regress_ctx_admin;
SELECT phi_permission_grant('billing', 'billing.read');
SELECT phi_permission_revoke('auditor', 'audit.read');
SELECT role, permission, builtin FROM phi_guard.permissions ORDER BY 1, 2;
SET ROLE regress_ctx_app;
BEGIN;
SELECT phi_set_context(:'tbill');
SELECT phi_has_permission('audit.read') AS audit, phi_has_permission('billing.read') AS billing;
COMMIT;
SET ROLE regress_ctx_admin;
SELECT phi_permission_grant('auditor', 'audit.read');
SELECT phi_permission_revoke('billing', 'billing.read');
SELECT role, permission, builtin FROM phi_guard.permissions ORDER BY 1, 2;

-- a revoked key stops verifying at once; revoking twice says false
SELECT phi_context_key_revoke('k3');
SELECT phi_context_key_revoke('k3') AS again, phi_context_key_revoke('nope') AS unknown;
\set t_k3 `:signer token k3 sub=a tenant=t roles=x exp=+300`
SET ROLE regress_ctx_app;
SELECT regress_try(format('SELECT phi_set_context(%L)', :'t_k3')) AS revoked;
-- a role without USAGE on schema phi_guard cannot reach any of it
SET ROLE regress_ctx_nobody;
SELECT regress_try(format('SELECT phi_guard.phi_set_context(%L)', :'tok')) AS no_usage;
RESET ROLE;

-- rejections and key changes are audited (rejections survive the abort)
SELECT phi_audit_seal() >= 0 AS sealed;
SELECT kind, detail->>'reason' AS reason, detail->>'kid' AS kid,
       sum(coalesce((detail->>'count')::int, 1)) AS count
  FROM phi_guard.audit_log, LATERAL (SELECT record::jsonb->>'kind' AS kind, record::jsonb->'detail' AS detail) r
 WHERE kind IN ('context_rejected', 'context_key_add', 'context_key_revoke', 'permission_grant', 'permission_revoke')
 GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;

-- roles are cluster-wide, and make installcheck's server outlives the test
DROP ROLE regress_ctx_admin, regress_ctx_app, regress_ctx_nobody;
