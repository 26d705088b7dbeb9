-- Rule: phi_check_config() returns one row (setting, value, risk, advice) per
-- setting that puts PHI at risk and none for a setting that is fine; what the
-- caller may not read is reported as "not checked", never passed silently.
-- Only phi_key_admin, phi_audit_admin and superusers may call it.
\set VERBOSITY terse
-- The test instance logs every statement with debug messages (see
-- test/phi_guard_test.conf): those rows, besides pg_hba.conf, as a superuser.
SELECT setting, value, risk FROM phi_guard.phi_check_config()
 WHERE setting NOT LIKE 'pg_hba.conf%' ORDER BY setting;
-- pg_regress's temporary instance trusts every connection: trust over TCP
-- is high, trust on the local socket medium (line numbers left out)
SELECT regexp_replace(setting, '[0-9]+$', 'N') AS setting, value, risk
  FROM phi_guard.phi_check_config()
 WHERE setting LIKE 'pg_hba.conf line %' ORDER BY value;
-- every row has a known risk level and advice that is a sentence
SELECT count(*) AS rows,
       count(*) FILTER (WHERE risk IN ('high', 'medium', 'low')) AS known_risk,
       count(*) FILTER (WHERE advice ~ '^[A-Za-z].*\.$') AS advised
  FROM phi_guard.phi_check_config();

-- Rows appear and disappear with the settings.
SET log_statement = 'ddl';
SELECT setting, value, risk FROM phi_guard.phi_check_config() WHERE setting = 'log_statement';
SET log_statement = 'mod';
SELECT setting, value, risk FROM phi_guard.phi_check_config() WHERE setting = 'log_statement';
SET log_statement = 'none';
SELECT count(*) AS log_statement_rows FROM phi_guard.phi_check_config() WHERE setting = 'log_statement';
-- with no statement logged, logging bind parameters does no harm
SELECT count(*) AS parameter_rows FROM phi_guard.phi_check_config() WHERE setting = 'log_parameter_max_length';
SET log_min_duration_statement = 0;
SELECT setting, value, risk FROM phi_guard.phi_check_config() WHERE setting LIKE 'log_%duration%' OR setting = 'log_parameter_max_length' ORDER BY 1;
SET log_min_duration_statement = '250ms';
SELECT setting, value, risk FROM phi_guard.phi_check_config() WHERE setting LIKE 'log_%duration%';
SET log_parameter_max_length = 0;
SELECT count(*) AS parameter_rows FROM phi_guard.phi_check_config() WHERE setting = 'log_parameter_max_length';
RESET log_min_duration_statement;
RESET log_parameter_max_length;
SELECT count(*) AS duration_rows FROM phi_guard.phi_check_config() WHERE setting LIKE 'log_%duration%';
SET log_min_duration_sample = 0;
SET log_statement_sample_rate = 0;
SELECT count(*) AS sample_rows_rate_0 FROM phi_guard.phi_check_config() WHERE setting = 'log_min_duration_sample';
SET log_statement_sample_rate = 0.5;
SELECT setting, value, risk FROM phi_guard.phi_check_config() WHERE setting = 'log_min_duration_sample';
RESET log_min_duration_sample;
RESET log_statement_sample_rate;
SET log_transaction_sample_rate = 0.01;
SELECT setting, value, risk FROM phi_guard.phi_check_config() WHERE setting = 'log_transaction_sample_rate';
RESET log_transaction_sample_rate;
SET log_min_error_statement = 'error';
SELECT setting, value, risk FROM phi_guard.phi_check_config() WHERE setting = 'log_min_error_statement';
SET log_min_error_statement = 'panic';
SELECT count(*) AS error_statement_rows FROM phi_guard.phi_check_config() WHERE setting = 'log_min_error_statement';
-- settings any role may change for its own session
SET password_encryption = 'md5';
SELECT setting, value, risk FROM phi_guard.phi_check_config() WHERE setting = 'password_encryption';
RESET password_encryption;
SELECT count(*) AS password_rows FROM phi_guard.phi_check_config() WHERE setting = 'password_encryption';
SET log_parameter_max_length_on_error = -1;
SELECT setting, value, risk FROM phi_guard.phi_check_config() WHERE setting = 'log_parameter_max_length_on_error';
RESET log_parameter_max_length_on_error;
SELECT count(*) AS on_error_rows FROM phi_guard.phi_check_config() WHERE setting = 'log_parameter_max_length_on_error';
SET debug_print_rewritten = on;
SELECT setting, value, risk FROM phi_guard.phi_check_config() WHERE setting LIKE 'debug_print%';
RESET debug_print_rewritten;
SELECT count(*) AS debug_print_rows FROM phi_guard.phi_check_config() WHERE setting LIKE 'debug_print%';
-- auto_explain is checked once it is loaded
SELECT count(*) AS auto_explain_rows FROM phi_guard.phi_check_config() WHERE setting LIKE 'auto_explain%';
LOAD 'auto_explain';
SELECT count(*) AS auto_explain_rows FROM phi_guard.phi_check_config() WHERE setting LIKE 'auto_explain%';
SET auto_explain.log_min_duration = 0;
SELECT setting, value, risk FROM phi_guard.phi_check_config() WHERE setting LIKE 'auto_explain%';
SET auto_explain.log_min_duration = '1s';
SELECT setting, value, risk FROM phi_guard.phi_check_config() WHERE setting LIKE 'auto_explain%';
RESET auto_explain.log_min_duration;
SELECT count(*) AS auto_explain_rows FROM phi_guard.phi_check_config() WHERE setting LIKE 'auto_explain%';
RESET log_statement;
RESET log_min_error_statement;

-- Privileges: granted to phi_key_admin and phi_audit_admin only.
SELECT has_function_privilege('public', 'phi_guard.phi_check_config()', 'EXECUTE') AS public_may_call;
CREATE ROLE regress_cfg_encryptor IN ROLE phi_encryptor;
CREATE ROLE regress_cfg_key_admin IN ROLE phi_key_admin;
CREATE ROLE regress_cfg_audit_admin IN ROLE phi_audit_admin, pg_read_all_settings;
SET ROLE regress_cfg_encryptor;
SELECT regress_try($$SELECT * FROM phi_guard.phi_check_config()$$) AS encryptor_calls;
RESET ROLE;
-- a key admin sees the statement-logging rows, and is told what it could
-- not check: pg_hba.conf (superusers only) and the master key settings
-- (superusers and pg_read_all_settings only)
SET ROLE regress_cfg_key_admin;
SELECT setting, value, risk FROM phi_guard.phi_check_config() ORDER BY setting;
RESET ROLE;
-- with pg_read_all_settings the master key settings are checked (and fine)
SET ROLE regress_cfg_audit_admin;
SELECT setting, value, risk FROM phi_guard.phi_check_config() ORDER BY setting;
RESET ROLE;
DROP ROLE regress_cfg_encryptor, regress_cfg_key_admin, regress_cfg_audit_admin;
