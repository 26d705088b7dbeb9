-- src/adopt/adopt.sql: bringing existing columns under phi_guard (SPEC §9).
--
-- Owns: the state of column migrations (column_migration, one row per run,
-- and the view column_migrations), the procedures phi_encrypt_column and
-- phi_rewrap_column, the trigger a migration installs on its table for its
-- time, and the per-row functions of the rewrap batches.  References the
-- roles (src/common/schema.sql), audited_tables (src/audit/audit.sql), the
-- keyring (src/keys/keys.sql) and the type phi_ciphertext
-- (src/crypto/crypto.sql).

-- One row per migration run; the running one has no finished time (at most
-- one per column and operation).  pg_dump keeps the rows: the aad
-- expression recorded here is what phi_rewrap_column uses by default (the
-- table is recorded as a regclass, which a dump writes by name).
CREATE SEQUENCE phi_guard.column_migration_id_seq AS pg_catalog.int8 MINVALUE 1 NO CYCLE;
CREATE TABLE phi_guard.column_migration (
  id            pg_catalog.int8 NOT NULL DEFAULT pg_catalog.nextval('phi_guard.column_migration_id_seq'::pg_catalog.regclass),
  tbl           pg_catalog.regclass NOT NULL,
  column_name   pg_catalog.name NOT NULL,
  operation     pg_catalog.text NOT NULL,
  key_name      pg_catalog.text,
  aad           pg_catalog.text,
  tenant_column pg_catalog.name,
  new_column    pg_catalog.name,
  batch_size    pg_catalog.int4 NOT NULL,
  state         pg_catalog.text NOT NULL,
  last_key      pg_catalog.text[],
  rows_done     pg_catalog.int8 NOT NULL DEFAULT 0,
  rows_total    pg_catalog.int8,
  skipped       pg_catalog.int8 NOT NULL DEFAULT 0,
  lock_ms       pg_catalog.float8,
  started       pg_catalog.timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
  finished      pg_catalog.timestamptz,
  CONSTRAINT column_migration_pkey PRIMARY KEY (id),
  CONSTRAINT column_migration_operation_check
    CHECK (operation OPERATOR(pg_catalog.=) ANY (ARRAY['encrypt', 'rewrap']::pg_catalog.text[])),
  CONSTRAINT column_migration_state_check
    CHECK (state OPERATOR(pg_catalog.=) ANY (ARRAY['prepare', 'backfill', 'validate', 'swap', 'scrub',
                                                   'rewrap', 'done']::pg_catalog.text[])),
  CONSTRAINT column_migration_finished_check
    CHECK ((state OPERATOR(pg_catalog.=) 'done') OPERATOR(pg_catalog.=) (finished IS NOT NULL))
);
CREATE UNIQUE INDEX column_migration_running ON phi_guard.column_migration (tbl, column_name, operation)
  WHERE finished IS NULL;
ALTER SEQUENCE phi_guard.column_migration_id_seq OWNED BY phi_guard.column_migration.id;
COMMENT ON TABLE phi_guard.column_migration IS
  'column migrations (phi_encrypt_column, phi_rewrap_column): arguments, state, progress; the running one has no finished time';
SELECT pg_catalog.pg_extension_config_dump('phi_guard.column_migration', '');
SELECT pg_catalog.pg_extension_config_dump('phi_guard.column_migration_id_seq', '');

-- Progress for people: rows_done counts the rows of the current state
-- (backfill, then scrub, for an encryption), rows_total the table's rows
-- when the migration began; swap_lock_ms is how long the swap held the
-- table's ACCESS EXCLUSIVE lock.  Runs with the view owner's rights.
CREATE VIEW phi_guard.column_migrations AS
  SELECT m.tbl AS table_name, m.column_name, m.rows_done, m.rows_total, m.state, m.started,
         m.finished, m.operation, m.key_name, m.aad, m.tenant_column, m.skipped,
         m.lock_ms AS swap_lock_ms
    FROM phi_guard.column_migration m
   ORDER BY m.started, m.id;
COMMENT ON VIEW phi_guard.column_migrations IS
  'progress of phi_encrypt_column and phi_rewrap_column: table, column, rows done and total, state, start and end; for phi_encryptor and phi_key_admin';

CREATE FUNCTION phi_guard.column_migration_sync() RETURNS trigger
  AS 'MODULE_PATHNAME', 'phi_guard_column_migration_sync'
  LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION phi_guard.column_migration_sync() IS
  'internal, trigger of a running phi_encrypt_column: every written row gets the encryption of its plaintext column in the new column';

CREATE FUNCTION phi_guard.column_rewrap(ct phi_guard.phi_ciphertext, r pg_catalog.record,
                                        aad pg_catalog.text)
  RETURNS phi_guard.phi_ciphertext
  AS 'MODULE_PATHNAME', 'phi_guard_column_rewrap'
  LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION phi_guard.column_rewrap(phi_guard.phi_ciphertext, pg_catalog.record, pg_catalog.text) IS
  'internal, phi_rewrap_column''s batches only: the value under its key''s active version, bound to the aad expression over row r, or unchanged when it cannot be opened';

CREATE FUNCTION phi_guard.column_rewrap_due(ct phi_guard.phi_ciphertext)
  RETURNS pg_catalog.bool
  AS 'MODULE_PATHNAME', 'phi_guard_column_rewrap_due'
  LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION phi_guard.column_rewrap_due(phi_guard.phi_ciphertext) IS
  'internal, phi_rewrap_column''s batches only: whether the value is under a version that is not its key''s active one';

-- Procedures: they commit after each batch, so they are CALLed on their
-- own (not in a transaction block) and are not SECURITY DEFINER; they check
-- that the caller owns the table.
CREATE PROCEDURE phi_guard.phi_encrypt_column(tbl pg_catalog.regclass, col pg_catalog.name,
    key pg_catalog.text, aad pg_catalog.text DEFAULT NULL, batch pg_catalog.int4 DEFAULT 10000,
    tenant_column pg_catalog.name DEFAULT NULL)
  AS 'MODULE_PATHNAME', 'phi_guard_encrypt_column'
  LANGUAGE C;
COMMENT ON PROCEDURE phi_guard.phi_encrypt_column(pg_catalog.regclass, pg_catalog.name, pg_catalog.text, pg_catalog.text, pg_catalog.int4, pg_catalog.name) IS
  'turns a plaintext column into phi_ciphertext online, in committed batches, bound to the aad expression, under each row''s tenant key with tenant_column; resumes when called again; for the table''s owner holding phi_encryptor';

CREATE PROCEDURE phi_guard.phi_rewrap_column(tbl pg_catalog.regclass, col pg_catalog.name,
    batch pg_catalog.int4 DEFAULT 10000, aad pg_catalog.text DEFAULT NULL)
  AS 'MODULE_PATHNAME', 'phi_guard_rewrap_column'
  LANGUAGE C;
COMMENT ON PROCEDURE phi_guard.phi_rewrap_column(pg_catalog.regclass, pg_catalog.name, pg_catalog.int4, pg_catalog.text) IS
  'moves every value of a phi_ciphertext column onto its key''s active version in committed batches (aad: the expression phi_encrypt_column recorded when NULL); resumes when called again; for the table''s owner holding phi_encryptor or phi_key_admin';

-- Privileges
REVOKE ALL ON phi_guard.column_migration, phi_guard.column_migrations FROM PUBLIC;
REVOKE ALL ON SEQUENCE phi_guard.column_migration_id_seq FROM PUBLIC;
REVOKE ALL ON FUNCTION
  phi_guard.column_migration_sync(),
  phi_guard.column_rewrap(phi_guard.phi_ciphertext, pg_catalog.record, pg_catalog.text),
  phi_guard.column_rewrap_due(phi_guard.phi_ciphertext)
  FROM PUBLIC;
REVOKE ALL ON PROCEDURE
  phi_guard.phi_encrypt_column(pg_catalog.regclass, pg_catalog.name, pg_catalog.text, pg_catalog.text, pg_catalog.int4, pg_catalog.name),
  phi_guard.phi_rewrap_column(pg_catalog.regclass, pg_catalog.name, pg_catalog.int4, pg_catalog.text)
  FROM PUBLIC;
GRANT SELECT ON phi_guard.column_migrations TO phi_encryptor, phi_key_admin;
-- the table owner creates the trigger (EXECUTE needed); writers fire it
-- without any privilege
GRANT EXECUTE ON FUNCTION phi_guard.column_migration_sync() TO phi_encryptor;
GRANT EXECUTE ON FUNCTION
  phi_guard.column_rewrap(phi_guard.phi_ciphertext, pg_catalog.record, pg_catalog.text),
  phi_guard.column_rewrap_due(phi_guard.phi_ciphertext)
  TO phi_encryptor, phi_key_admin;
GRANT EXECUTE ON PROCEDURE
  phi_guard.phi_encrypt_column(pg_catalog.regclass, pg_catalog.name, pg_catalog.text, pg_catalog.text, pg_catalog.int4, pg_catalog.name)
  TO phi_encryptor;
GRANT EXECUTE ON PROCEDURE
  phi_guard.phi_rewrap_column(pg_catalog.regclass, pg_catalog.name, pg_catalog.int4, pg_catalog.text)
  TO phi_encryptor, phi_key_admin;
