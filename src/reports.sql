-- src/reports.sql: reports for people that read more than one capability.
--
-- Owns: key_status (key versions with their vault values, index key and
-- tenant),
-- phi_stats and the stats view (counters in shared memory), and
-- phi_check_config (settings that put PHI at risk).  References every piece
-- before it, so it comes last.

-- key_status: every key version and the values known to use it, with the
-- tenant the key belongs to (NULL: shared) last, so that readers of the
-- 0.2.0 columns keep working.  Runs with the view owner's rights (it counts
-- token vault values, which phi_key_admin cannot read) and shows no key
-- material.
CREATE VIEW phi_guard.key_status AS
  SELECT k.name::pg_catalog.text AS name, k.version, k.id, k.state, k.created_at,
         COALESCE(v.n, 0) AS vault_values, i.id AS index_key_id, k.tenant::pg_catalog.text AS tenant
    FROM phi_guard.keys k
    LEFT JOIN (SELECT phi_guard.phi_ciphertext_key_id(t.value) AS key_id, pg_catalog.count(*) AS n
                 FROM phi_guard.token_vault t GROUP BY 1) v
           ON v.key_id OPERATOR(pg_catalog.=) k.id
    LEFT JOIN phi_guard.index_keys i
           ON i.name OPERATOR(pg_catalog.=) k.name AND i.tenant IS NOT DISTINCT FROM k.tenant
   ORDER BY k.name, k.tenant NULLS FIRST, k.version;
COMMENT ON VIEW phi_guard.key_status IS
  'key versions with the token vault values under each, the index key of their name and their tenant (NULL: shared); for phi_key_admin';

-- stats: counters since the server started (shared memory; PH003 when
-- phi_guard is not preloaded).
CREATE FUNCTION phi_guard.phi_stats(
    OUT encrypt pg_catalog.int8, OUT decrypt pg_catalog.int8, OUT decrypt_failed pg_catalog.int8,
    OUT tokenize pg_catalog.int8, OUT detokenize pg_catalog.int8, OUT detokenize_failed pg_catalog.int8,
    OUT blind_index pg_catalog.int8, OUT denied pg_catalog.int8,
    OUT key_cache_hits pg_catalog.int8, OUT key_cache_misses pg_catalog.int8,
    OUT since pg_catalog.timestamptz)
  RETURNS record
  AS 'MODULE_PATHNAME', 'phi_guard_stats'
  LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION phi_guard.phi_stats() IS
  'counts of encryptions, decryptions, tokens, blind indexes, refusals and key cache use since the server started; requires phi_key_admin, phi_auditor or phi_audit_admin';

CREATE VIEW phi_guard.stats WITH (security_invoker = true) AS
  SELECT s.encrypt, s.decrypt, s.decrypt_failed, s.tokenize, s.detokenize,
         s.detokenize_failed, s.blind_index, s.denied, s.key_cache_hits, s.key_cache_misses,
         CASE WHEN s.key_cache_hits OPERATOR(pg_catalog.+) s.key_cache_misses OPERATOR(pg_catalog.>) 0
              THEN s.key_cache_hits::pg_catalog.float8 OPERATOR(pg_catalog./)
                   (s.key_cache_hits OPERATOR(pg_catalog.+) s.key_cache_misses)::pg_catalog.float8
         END AS key_cache_hit_rate,
         s.since
    FROM phi_guard.phi_stats() s;
COMMENT ON VIEW phi_guard.stats IS
  'phi_stats() with the key cache hit rate; for phi_key_admin, phi_auditor, phi_audit_admin';

-- One row per risky setting; nothing for a setting that is fine.  SECURITY
-- INVOKER on purpose: it reads only what the caller may read (pg_settings
-- hides superuser-only settings from roles without pg_read_all_settings,
-- pg_hba_file_rules is superuser-only in PostgreSQL 15) and reports what it
-- could not check as a row of its own instead of passing silently.
-- The checks, and why:
--   log_statement all/mod (high), ddl (low): statement text, with its
--     literals (PHI, passwords), is written to the server log.
--   log_min_duration_statement 0 (high), > 0 (medium); log_min_duration_sample
--     with log_statement_sample_rate > 0, log_transaction_sample_rate > 0
--     (medium): the same, for all, slow or sampled statements.
--   log_parameter_max_length <> 0 while statements are logged (medium),
--     log_parameter_max_length_on_error <> 0 (medium): bind parameter values
--     are logged next to the statement.
--   log_min_error_statement warning or more verbose (medium), error, the
--     default (low): the text of a statement that fails is logged.
--   debug_print_parse/rewritten/plan on (high): query trees, constants
--     included, are logged.
--   auto_explain.log_min_duration 0 (high), > 0 (medium), when auto_explain
--     is loaded: plans show the constants of their conditions.
--   pg_stat_statements.track_utility on, when pg_stat_statements is loaded
--     (medium): utility statements (CALL, DO, COPY, EXPLAIN, ...) are stored
--     with their literals, not normalised.
--   ssl off while listening on TCP (high), ssl_min_protocol_version below
--     TLSv1.2 (medium).
--   password_encryption other than scram-sha-256 (medium).
--   pg_hba.conf: trust (high) or password (high; medium on hostssl) for a
--     TCP connection, ident over TCP (medium), md5 (low), trust for local
--     sockets (medium), a line with an error (medium).
--   phi_guard not in shared_preload_libraries (high): no master key, no
--     audit sealing.
--   phi_guard.master_key_file and _command both empty or both set (high),
--     the key file inside the data directory (high: every copy or base
--     backup of the data directory carries the key next to the ciphertext).
--   keys without an access rule (phi_key_access) while context signing
--     keys are registered (medium): every context, and an SQL injection
--     through the application's role without a context, reads them in
--     clear.
-- Not reported, because not a PHI risk: log_connections, wal_level,
-- track_activity_query_size (query text in pg_stat_activity is visible only
-- to the same role and to pg_read_all_stats).
CREATE FUNCTION phi_guard.phi_check_config()
  RETURNS TABLE (setting pg_catalog.text, value pg_catalog.text,
                 risk pg_catalog.text, advice pg_catalog.text)
  LANGUAGE plpgsql VOLATILE PARALLEL RESTRICTED
  SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
  cfg pg_catalog.jsonb;
  can_read_all pg_catalog.bool;
  v pg_catalog.text;
  n pg_catalog.int8;
  stmt_logged pg_catalog.bool := false;
  key_file pg_catalog.text;
  key_cmd pg_catalog.text;
  data_dir pg_catalog.text;
  r record;
  hba_line pg_catalog.text;
  tcp pg_catalog.bool;
BEGIN
  -- every setting this role may read, raw (base units, no unit suffix);
  -- placeholders of libraries that are not loaded are not in pg_settings
  SELECT pg_catalog.jsonb_object_agg(s.name, s.setting) INTO cfg
    FROM pg_catalog.pg_settings s;
  can_read_all := pg_catalog.pg_has_role('pg_read_all_settings', 'USAGE');

  -- statement text in the log
  v := cfg OPERATOR(pg_catalog.->>) 'log_statement';
  IF v OPERATOR(pg_catalog.=) ANY (ARRAY['all', 'mod']) THEN
    stmt_logged := true;
    setting := 'log_statement'; value := v; risk := 'high';
    advice := 'Statements are logged with their literals, so PHI written as constants reaches the server log. Set log_statement = ''none'' (or ''ddl'').';
    RETURN NEXT;
  ELSIF v OPERATOR(pg_catalog.=) 'ddl' THEN
    stmt_logged := true;
    setting := 'log_statement'; value := v; risk := 'low';
    advice := 'DDL is logged with its literals (column defaults, CREATE ROLE ... PASSWORD). Prefer log_statement = ''none'' and keep DDL in reviewed migrations.';
    RETURN NEXT;
  END IF;

  n := (cfg OPERATOR(pg_catalog.->>) 'log_min_duration_statement')::pg_catalog.int8;
  IF n OPERATOR(pg_catalog.>=) 0 THEN
    stmt_logged := true;
    setting := 'log_min_duration_statement';
    value := (cfg OPERATOR(pg_catalog.->>) 'log_min_duration_statement') OPERATOR(pg_catalog.||) 'ms';
    risk := CASE WHEN n OPERATOR(pg_catalog.=) 0 THEN 'high' ELSE 'medium' END;
    advice := 'Statements that run at least this long are logged with their literals. Set it to -1, or log durations only (log_duration) without statement text.';
    RETURN NEXT;
  END IF;

  IF (cfg OPERATOR(pg_catalog.->>) 'log_min_duration_sample')::pg_catalog.int8 OPERATOR(pg_catalog.>=) 0
     AND (cfg OPERATOR(pg_catalog.->>) 'log_statement_sample_rate')::pg_catalog.float8 OPERATOR(pg_catalog.>) 0 THEN
    stmt_logged := true;
    setting := 'log_min_duration_sample';
    value := (cfg OPERATOR(pg_catalog.->>) 'log_min_duration_sample') OPERATOR(pg_catalog.||) 'ms';
    risk := 'medium';
    advice := 'A sample of the statements that run at least this long is logged with their literals. Set it to -1.';
    RETURN NEXT;
  END IF;

  IF (cfg OPERATOR(pg_catalog.->>) 'log_transaction_sample_rate')::pg_catalog.float8 OPERATOR(pg_catalog.>) 0 THEN
    stmt_logged := true;
    setting := 'log_transaction_sample_rate';
    value := cfg OPERATOR(pg_catalog.->>) 'log_transaction_sample_rate';
    risk := 'medium';
    advice := 'Every statement of the sampled transactions is logged with its literals. Set it to 0.';
    RETURN NEXT;
  END IF;

  IF stmt_logged
     AND (cfg OPERATOR(pg_catalog.->>) 'log_parameter_max_length')::pg_catalog.int4 OPERATOR(pg_catalog.<>) 0 THEN
    setting := 'log_parameter_max_length';
    value := cfg OPERATOR(pg_catalog.->>) 'log_parameter_max_length';
    risk := 'medium';
    advice := 'Bind parameter values (PHI sent as parameters) are logged next to each logged statement. Set it to 0, and stop logging statements.';
    RETURN NEXT;
  END IF;

  v := cfg OPERATOR(pg_catalog.->>) 'log_parameter_max_length_on_error';
  IF v::pg_catalog.int4 OPERATOR(pg_catalog.<>) 0 THEN
    setting := 'log_parameter_max_length_on_error'; value := v; risk := 'medium';
    advice := 'Bind parameter values of a failing statement are logged. Set it to 0.';
    RETURN NEXT;
  END IF;

  v := cfg OPERATOR(pg_catalog.->>) 'log_min_error_statement';
  IF v OPERATOR(pg_catalog.=) ANY (ARRAY['debug5', 'debug4', 'debug3', 'debug2', 'debug1',
                                        'info', 'notice', 'warning']) THEN
    setting := 'log_min_error_statement'; value := v; risk := 'medium';
    advice := 'The text of every statement that raises a message at this level or above (not only errors) is logged with its literals. Set it to ''error'' or, better, ''panic''.';
    RETURN NEXT;
  ELSIF v OPERATOR(pg_catalog.=) 'error' THEN
    setting := 'log_min_error_statement'; value := v; risk := 'low';
    advice := 'The text of a failing statement is logged with its literals (the default). Set it to ''panic'' to keep statements of failed queries out of the log.';
    RETURN NEXT;
  END IF;

  FOREACH v IN ARRAY ARRAY['debug_print_parse', 'debug_print_rewritten', 'debug_print_plan'] LOOP
    IF cfg OPERATOR(pg_catalog.->>) v OPERATOR(pg_catalog.=) 'on' THEN
      setting := v; value := 'on'; risk := 'high';
      advice := 'Query trees are logged, constants included. Turn it off.';
      RETURN NEXT;
    END IF;
  END LOOP;

  -- extensions that write query text or plans
  n := (cfg OPERATOR(pg_catalog.->>) 'auto_explain.log_min_duration')::pg_catalog.int8;
  IF n OPERATOR(pg_catalog.>=) 0 THEN
    setting := 'auto_explain.log_min_duration';
    value := (cfg OPERATOR(pg_catalog.->>) 'auto_explain.log_min_duration') OPERATOR(pg_catalog.||) 'ms';
    risk := CASE WHEN n OPERATOR(pg_catalog.=) 0 THEN 'high' ELSE 'medium' END;
    advice := 'auto_explain logs plans, which show the constants of their conditions (Filter: ssn = ''...''). Set it to -1 or unload auto_explain.';
    RETURN NEXT;
  END IF;

  IF cfg OPERATOR(pg_catalog.->>) 'pg_stat_statements.track_utility' OPERATOR(pg_catalog.=) 'on'
     AND cfg OPERATOR(pg_catalog.->>) 'pg_stat_statements.track' OPERATOR(pg_catalog.<>) 'none' THEN
    setting := 'pg_stat_statements.track_utility'; value := 'on'; risk := 'medium';
    advice := 'pg_stat_statements replaces constants by $n in planned queries only: utility statements (CALL, DO, COPY, EXPLAIN, PREPARE) are stored with their literals and readable by pg_read_all_stats. Set it to off.';
    RETURN NEXT;
  END IF;

  -- transport and passwords
  IF cfg OPERATOR(pg_catalog.->>) 'ssl' OPERATOR(pg_catalog.=) 'off'
     AND cfg OPERATOR(pg_catalog.->>) 'listen_addresses' OPERATOR(pg_catalog.<>) '' THEN
    setting := 'ssl'; value := 'off'; risk := 'high';
    advice := 'The server listens on TCP without TLS: PHI and passwords cross the network in clear. Set ssl = on with a certificate, and use hostssl lines in pg_hba.conf.';
    RETURN NEXT;
  ELSIF cfg OPERATOR(pg_catalog.->>) 'ssl' OPERATOR(pg_catalog.=) 'on'
        AND cfg OPERATOR(pg_catalog.->>) 'ssl_min_protocol_version' OPERATOR(pg_catalog.=) ANY (ARRAY['TLSv1', 'TLSv1.1']) THEN
    setting := 'ssl_min_protocol_version';
    value := cfg OPERATOR(pg_catalog.->>) 'ssl_min_protocol_version'; risk := 'medium';
    advice := 'TLS versions before 1.2 are deprecated. Set ssl_min_protocol_version = ''TLSv1.2''.';
    RETURN NEXT;
  END IF;

  v := cfg OPERATOR(pg_catalog.->>) 'password_encryption';
  IF v OPERATOR(pg_catalog.<>) 'scram-sha-256' THEN
    setting := 'password_encryption'; value := v; risk := 'medium';
    advice := 'New passwords are stored as MD5 hashes, which are weak and enough to log in with. Set password_encryption = ''scram-sha-256'' and reset the passwords.';
    RETURN NEXT;
  END IF;

  -- authentication rules (the file as it is on disk now)
  IF pg_catalog.has_function_privilege('pg_catalog.pg_hba_file_rules()', 'EXECUTE') THEN
    FOR r IN SELECT h.line_number, h.type, h.database, h.user_name, h.address,
                    h.netmask, h.auth_method, h.error
               FROM pg_catalog.pg_hba_file_rules() h
              ORDER BY h.line_number LOOP
      setting := 'pg_hba.conf line ' OPERATOR(pg_catalog.||) r.line_number;
      hba_line := pg_catalog.concat_ws(' ', r.type,
                    pg_catalog.array_to_string(r.database, ','),
                    pg_catalog.array_to_string(r.user_name, ','),
                    r.address, r.netmask, r.auth_method);
      tcp := r.type OPERATOR(pg_catalog.<>) 'local';
      risk := NULL;
      IF r.error IS NOT NULL THEN
        value := r.error; risk := 'medium';
        advice := 'This line has an error: a reload keeps the old rules and a restart fails. Fix the line.';
      ELSIF r.auth_method OPERATOR(pg_catalog.=) 'trust' AND tcp THEN
        risk := 'high';
        advice := 'Anyone who can reach this address connects as any of these roles without a password. Use scram-sha-256 (or cert) over hostssl.';
      ELSIF r.auth_method OPERATOR(pg_catalog.=) 'password' AND tcp THEN
        risk := CASE WHEN r.type OPERATOR(pg_catalog.=) 'hostssl' THEN 'medium' ELSE 'high' END;
        advice := 'The password is sent in clear text. Use scram-sha-256.';
      ELSIF r.auth_method OPERATOR(pg_catalog.=) 'ident' AND tcp THEN
        risk := 'medium';
        advice := 'ident over TCP trusts whatever the client host''s ident server answers. Use scram-sha-256 or cert.';
      ELSIF r.auth_method OPERATOR(pg_catalog.=) 'md5' THEN
        risk := 'low';
        advice := 'md5 accepts MD5-hashed passwords, which are weak. Use scram-sha-256 once every password is stored as SCRAM.';
      ELSIF r.auth_method OPERATOR(pg_catalog.=) 'trust' THEN
        risk := 'medium';
        advice := 'Every local operating-system user connects as any of these roles, superusers included, without a password. Use peer or scram-sha-256.';
      END IF;
      IF risk IS NOT NULL THEN
        IF r.error IS NULL THEN
          value := hba_line;
        END IF;
        RETURN NEXT;
      END IF;
    END LOOP;
  ELSE
    setting := 'pg_hba.conf'; value := 'not checked'; risk := 'low';
    advice := 'This role may not read pg_hba_file_rules (superusers only), so authentication rules were not checked. Run phi_check_config() as a superuser.';
    RETURN NEXT;
  END IF;

  -- phi_guard itself: audit_seal_interval exists only when preloaded
  IF NOT cfg OPERATOR(pg_catalog.?) 'phi_guard.audit_seal_interval' THEN
    setting := 'shared_preload_libraries';
    value := COALESCE(cfg OPERATOR(pg_catalog.->>) 'shared_preload_libraries', 'phi_guard not loaded');
    risk := 'high';
    advice := 'phi_guard is not preloaded: no master key is loaded, so encryption, tokens and audit sealing fail. Add phi_guard to shared_preload_libraries and restart.';
    RETURN NEXT;
  ELSIF NOT can_read_all THEN
    setting := 'phi_guard.master_key_file'; value := 'not checked'; risk := 'low';
    advice := 'The master key settings are readable only by superusers and pg_read_all_settings, so they were not checked. Run phi_check_config() as one of them.';
    RETURN NEXT;
  ELSE
    key_file := cfg OPERATOR(pg_catalog.->>) 'phi_guard.master_key_file';
    key_cmd := cfg OPERATOR(pg_catalog.->>) 'phi_guard.master_key_command';
    data_dir := pg_catalog.rtrim(cfg OPERATOR(pg_catalog.->>) 'data_directory', '/');
    IF key_file OPERATOR(pg_catalog.=) '' AND key_cmd OPERATOR(pg_catalog.=) '' THEN
      setting := 'phi_guard.master_key_file'; value := ''; risk := 'high';
      advice := 'Neither phi_guard.master_key_file nor phi_guard.master_key_command is set: no master key is loaded. Set one of them and restart.';
      RETURN NEXT;
    ELSIF key_file OPERATOR(pg_catalog.<>) '' AND key_cmd OPERATOR(pg_catalog.<>) '' THEN
      setting := 'phi_guard.master_key_command'; value := 'set'; risk := 'high';
      advice := 'Both phi_guard.master_key_file and phi_guard.master_key_command are set, so no master key is loaded. Keep one and restart.';
      RETURN NEXT;
    ELSIF key_file OPERATOR(pg_catalog.<>) ''
          AND (key_file OPERATOR(pg_catalog.!~~) '/%'
               OR pg_catalog.starts_with(key_file, data_dir OPERATOR(pg_catalog.||) '/')) THEN
      setting := 'phi_guard.master_key_file'; value := key_file; risk := 'high';
      advice := 'The key file is inside the data directory, so every copy or base backup of the data directory carries the key next to the ciphertext. Move it outside the data directory.';
      RETURN NEXT;
    END IF;
  END IF;

  -- keys that every context, and an SQL injection through the
  -- application's role without any context, decrypt in clear while signed
  -- contexts are in use (README "Decryption obeys the context")
  IF pg_catalog.has_table_privilege('phi_guard.key_access', 'SELECT')
     AND pg_catalog.has_column_privilege('phi_guard.keys', 'state', 'SELECT')
     AND pg_catalog.has_function_privilege('phi_guard.phi_context_keys()', 'EXECUTE') THEN
    IF EXISTS (SELECT FROM phi_guard.phi_context_keys() c WHERE c.revoked_at IS NULL) THEN
      SELECT pg_catalog.string_agg(k.name, ', ' ORDER BY k.name) INTO v
        FROM (SELECT DISTINCT k.name FROM phi_guard.keys k
               WHERE k.state OPERATOR(pg_catalog.<>) 'destroyed'
                 AND NOT EXISTS (SELECT FROM phi_guard.key_access a
                                  WHERE a.name OPERATOR(pg_catalog.=) k.name
                                    AND a.permission IS NOT NULL)) k;
      IF v IS NOT NULL THEN
        setting := 'phi_key_access'; value := 'keys without a rule'; risk := 'medium';
        advice := 'Signed contexts are in use, but every context decrypts the values of keys '
                  OPERATOR(pg_catalog.||) v OPERATOR(pg_catalog.||)
                  ' in clear, and so does an SQL injection through the application''s role without any context. Give each an access rule with phi_key_access().';
        RETURN NEXT;
      END IF;
    END IF;
  ELSE
    setting := 'phi_key_access'; value := 'not checked'; risk := 'low';
    advice := 'This role may not read the key access rules, so keys without one were not checked. Run phi_check_config() as a member of phi_key_admin.';
    RETURN NEXT;
  END IF;

  -- an audit chain restored from a cluster further ahead in transaction ids
  -- cannot be sealed on (README "Backup and restore")
  IF pg_catalog.has_table_privilege('phi_guard.audit_block', 'SELECT') THEN
    IF (SELECT pg_catalog.max(b.xid_hi) FROM phi_guard.audit_block b)
       OPERATOR(pg_catalog.>) pg_catalog.pg_snapshot_xmax(pg_catalog.pg_current_snapshot()) THEN
      setting := 'phi_guard.audit_block'; value := 'horizon ahead of this cluster'; risk := 'high';
      advice := 'The audit chain ends above this cluster''s transaction ids (it was restored from another cluster), so nothing new is sealed. Restore into a cluster started with pg_resetwal -e above the source''s epoch.';
      RETURN NEXT;
    END IF;
  ELSE
    setting := 'phi_guard.audit_block'; value := 'not checked'; risk := 'low';
    advice := 'This role may not read phi_guard.audit_block, so the audit chain''s horizon was not checked. Run phi_check_config() as a member of phi_auditor.';
    RETURN NEXT;
  END IF;

  -- on a Citus coordinator every worker must hold the same master key, or
  -- the keys it unwraps are not the coordinator's (README, "Scaling out
  -- with Citus")
  FOR r IN SELECT * FROM phi_guard.cluster_master_key_mismatches() LOOP
    setting := 'phi_guard.master_key_file'; risk := 'high';
    value := pg_catalog.format('node %s: %s', r.node, r.answer);
    advice := 'Every node of a Citus cluster must load the same master key (file or command): a worker with another key cannot open the keys the coordinator made. Give it the coordinator''s key and restart it.';
    RETURN NEXT;
  END LOOP;
  RETURN;
END
$$;
COMMENT ON FUNCTION phi_guard.phi_check_config() IS
  'risky settings for a PHI database (statement logging, TLS, passwords, pg_hba.conf, master key, keys without an access rule), one row each; requires phi_key_admin or phi_audit_admin';
REVOKE ALL ON FUNCTION phi_guard.phi_check_config() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION phi_guard.phi_check_config() TO phi_key_admin, phi_audit_admin;


REVOKE ALL ON phi_guard.key_status, phi_guard.stats FROM PUBLIC;
REVOKE ALL ON FUNCTION phi_guard.phi_stats() FROM PUBLIC;
GRANT SELECT ON phi_guard.key_status TO phi_key_admin;
GRANT SELECT ON phi_guard.stats TO phi_key_admin, phi_auditor, phi_audit_admin;
GRANT EXECUTE ON FUNCTION phi_guard.phi_stats() TO phi_key_admin, phi_auditor, phi_audit_admin;
