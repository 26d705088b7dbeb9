-- On a Citus cluster (README, "Scaling out with Citus"): phi_citus_setup
-- makes the tables every node must read (keys, index keys, key access
-- rules, context keys, permissions, break-glass grants, token domains and
-- vault) Citus reference tables, so that each node holds them and a key
-- lifecycle call on the coordinator changes every node in one distributed
-- transaction.  The audit log, its blocks and checkpoints stay local: each
-- node keeps its own chain (SPEC §10).

CREATE FUNCTION phi_guard.phi_citus_setup() RETURNS SETOF pg_catalog.regclass
  LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
  SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  t pg_catalog.regclass;
BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'citus') THEN
    RAISE EXCEPTION 'citus is not installed in this database'
      USING ERRCODE = '55000', HINT = 'Run CREATE EXTENSION citus first, on a Citus coordinator.';
  END IF;
  IF (SELECT groupid FROM pg_catalog.pg_dist_local_group) OPERATOR(pg_catalog.<>) 0 THEN
    RAISE EXCEPTION 'phi_citus_setup must run on the coordinator'
      USING ERRCODE = '55000', HINT = 'Connect to the coordinator and run it there.';
  END IF;
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_dist_node WHERE groupid OPERATOR(pg_catalog.=) 0) THEN
    RAISE EXCEPTION 'the coordinator is not registered in pg_dist_node'
      USING ERRCODE = '55000',
            DETAIL = 'The coordinator must hold a copy of the reference tables phi_guard reads without SQL.',
            HINT = 'Run SELECT citus_set_coordinator_host(''<host>'', <port>) first.';
  END IF;
  -- the tables carry phi_guard's own triggers (the key cache's coherence),
  -- which must follow the rows to every node's copy
  PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', 'on', true);
  -- a local table may not reference a reference table: the vault's key to
  -- its domains is dropped here and comes back on this shell once both are
  -- reference tables (the workers' shells never lost it; the shards check
  -- domains in phi_tokenize, not by key)
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_dist_partition
                  WHERE logicalrelid OPERATOR(pg_catalog.=) 'phi_guard.token_vault'::pg_catalog.regclass) THEN
    ALTER TABLE phi_guard.token_vault DROP CONSTRAINT token_vault_domain_fkey;
  END IF;
  FOREACH t IN ARRAY ARRAY['phi_guard.keys', 'phi_guard.index_keys', 'phi_guard.key_access',
                           'phi_guard.context_keys', 'phi_guard.permission_defaults',
                           'phi_guard.permission_overrides', 'phi_guard.break_glass',
                           'phi_guard.token_domains', 'phi_guard.token_vault']::pg_catalog.regclass[]
  LOOP
    CONTINUE WHEN EXISTS (SELECT FROM pg_catalog.pg_dist_partition
                           WHERE logicalrelid OPERATOR(pg_catalog.=) t);
    PERFORM pg_catalog.create_reference_table(t);
    -- the rows now live in every node's shard; none may stay behind in the
    -- shell (a destroyed key must be gone everywhere)
    PERFORM pg_catalog.truncate_local_data_after_distributing_table(t);
    RETURN NEXT t;
    IF t OPERATOR(pg_catalog.=) 'phi_guard.token_vault'::pg_catalog.regclass THEN
      PERFORM pg_catalog.set_config('citus.enable_ddl_propagation', 'off', true);
      ALTER TABLE phi_guard.token_vault ADD CONSTRAINT token_vault_domain_fkey
        FOREIGN KEY (domain) REFERENCES phi_guard.token_domains (name);
      PERFORM pg_catalog.set_config('citus.enable_ddl_propagation', 'on', true);
    END IF;
  END LOOP;
END
$fn$;
REVOKE ALL ON FUNCTION phi_guard.phi_citus_setup() FROM PUBLIC;
COMMENT ON FUNCTION phi_guard.phi_citus_setup() IS
  'on a Citus coordinator: make phi_guard''s keys, context keys, permissions, break-glass grants and token vault reference tables held by every node; returns the tables it distributed';

-- The workers of a coordinator that phi_audit_digest and phi_audit_verify
-- reach (SPEC §10): every primary other than the coordinator, disabled ones
-- too (a node is never left out silently: one that does not answer is an
-- error), in node-id order; none on a worker or without Citus.
CREATE FUNCTION phi_guard.cluster_workers(OUT nodeid pg_catalog.int4, OUT node pg_catalog.text,
                                          OUT host pg_catalog.text, OUT port pg_catalog.int4)
  RETURNS SETOF record
  LANGUAGE plpgsql STABLE PARALLEL UNSAFE
  SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
  IF pg_catalog.to_regclass('pg_catalog.pg_dist_local_group') IS NULL THEN
    RETURN;
  END IF;
  IF (SELECT g.groupid FROM pg_catalog.pg_dist_local_group g) OPERATOR(pg_catalog.<>) 0 THEN
    RETURN;
  END IF;
  RETURN QUERY
    SELECT n.nodeid, pg_catalog.format('%s:%s', n.nodename, n.nodeport), n.nodename::pg_catalog.text, n.nodeport
      FROM pg_catalog.pg_dist_node n
     WHERE n.groupid OPERATOR(pg_catalog.<>) 0 AND n.noderole OPERATOR(pg_catalog.=) 'primary'
     ORDER BY n.nodeid;
END
$fn$;
REVOKE ALL ON FUNCTION phi_guard.cluster_workers() FROM PUBLIC;
COMMENT ON FUNCTION phi_guard.cluster_workers() IS
  'internal: on a Citus coordinator, the workers whose chains phi_audit_digest and phi_audit_verify cover';

-- Run a query on every worker of cluster_workers(), in parallel, in
-- node-id order: format(command, the text of args' value under the
-- worker's "host:port", or NULL), so that each may get its own argument
-- (%L).  One row per worker: whether it answered and its result (the first
-- column of the first row, as text), or the error text.  With what given,
-- a worker that did not answer is an error (08006) "could not <what> of
-- node <host:port>" instead of a row.
CREATE FUNCTION phi_guard.cluster_run(command pg_catalog.text, args pg_catalog.jsonb,
                                      what pg_catalog.text,
                                      OUT node pg_catalog.text, OUT success pg_catalog.bool,
                                      OUT result pg_catalog.text)
  RETURNS SETOF record
  LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
  SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  r record;
BEGIN
  -- plpgsql: master_run_on_worker exists only where Citus is installed
  FOR r IN
    WITH w AS (SELECT * FROM phi_guard.cluster_workers())
    SELECT w.node, m.success, m.result
      FROM w
      JOIN pg_catalog.master_run_on_worker(
             ARRAY(SELECT x.host FROM w x ORDER BY x.nodeid),
             ARRAY(SELECT x.port FROM w x ORDER BY x.nodeid),
             ARRAY(SELECT pg_catalog.format(command, args OPERATOR(pg_catalog.->>) x.node)
                     FROM w x ORDER BY x.nodeid),
             true) m
        ON m.node_name OPERATOR(pg_catalog.=) w.host AND m.node_port OPERATOR(pg_catalog.=) w.port
     ORDER BY w.nodeid
  LOOP
    IF NOT r.success AND what IS NOT NULL THEN
      RAISE EXCEPTION 'could not % of node %', what, r.node
        USING ERRCODE = '08006', DETAIL = r.result,
              HINT = 'Every worker must be reachable and have phi_guard installed; retry when it is.';
    END IF;
    node := r.node;
    success := r.success;
    result := r.result;
    RETURN NEXT;
  END LOOP;
END
$fn$;
REVOKE ALL ON FUNCTION phi_guard.cluster_run(pg_catalog.text, pg_catalog.jsonb, pg_catalog.text) FROM PUBLIC;
COMMENT ON FUNCTION phi_guard.cluster_run(pg_catalog.text, pg_catalog.jsonb, pg_catalog.text) IS
  'internal: run a query on every Citus worker, each with its own argument; one row per worker';

-- SHA-256 of the block hashes of the coordinator's digest and then of each
-- worker's, in the order given (SPEC §10's cluster_hash).
CREATE FUNCTION phi_guard.cluster_hash(coordinator pg_catalog.jsonb, nodes pg_catalog.jsonb)
  RETURNS pg_catalog.text
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  SET search_path = pg_catalog, pg_temp
RETURN pg_catalog.encode(pg_catalog.sha256(pg_catalog.decode(
  (coordinator OPERATOR(pg_catalog.->>) 'block_hash') OPERATOR(pg_catalog.||)
  COALESCE((SELECT pg_catalog.string_agg(n.value OPERATOR(pg_catalog.->) 'digest' OPERATOR(pg_catalog.->>) 'block_hash',
                                         '' ORDER BY n.ordinality)
              FROM pg_catalog.jsonb_array_elements(nodes) WITH ORDINALITY n), ''),
  'hex')), 'hex');
REVOKE ALL ON FUNCTION phi_guard.cluster_hash(pg_catalog.jsonb, pg_catalog.jsonb) FROM PUBLIC;
COMMENT ON FUNCTION phi_guard.cluster_hash(pg_catalog.jsonb, pg_catalog.jsonb) IS
  'internal: SHA-256 of the coordinator''s and then each node''s block_hash (SPEC §10)';

-- phi_audit_digest on a coordinator: its own digest plus every worker's and
-- the cluster hash; a worker that does not answer is an error (an auditor
-- must not keep a digest that silently leaves a node out).
CREATE FUNCTION phi_guard.cluster_digest(local pg_catalog.jsonb) RETURNS pg_catalog.jsonb
  LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
  SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  nodes pg_catalog.jsonb := '[]';
  r record;
BEGIN
  IF NOT EXISTS (SELECT FROM phi_guard.cluster_workers()) THEN
    RETURN local;
  END IF;
  FOR r IN SELECT * FROM phi_guard.cluster_run('SELECT phi_guard.phi_audit_digest()', NULL,
                                                'read the audit digest')
  LOOP
    nodes := nodes OPERATOR(pg_catalog.||)
             pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object('node', r.node, 'digest', r.result::pg_catalog.jsonb));
  END LOOP;
  RETURN local OPERATOR(pg_catalog.||)
         pg_catalog.jsonb_build_object('nodes', nodes, 'cluster_hash', phi_guard.cluster_hash(local, nodes));
END
$fn$;
REVOKE ALL ON FUNCTION phi_guard.cluster_digest(pg_catalog.jsonb) FROM PUBLIC;
COMMENT ON FUNCTION phi_guard.cluster_digest(pg_catalog.jsonb) IS
  'internal: phi_audit_digest on a Citus coordinator, with every worker''s digest and the cluster hash (SPEC §10)';

-- phi_audit_verify on a coordinator: the coordinator's verdict (given)
-- combined with every worker's, each checked against its part of the
-- digest when one is given; the first problem found names its node.
CREATE FUNCTION phi_guard.cluster_verify(digest pg_catalog.jsonb, INOUT ok pg_catalog.bool,
                                         INOUT blocks pg_catalog.int8, INOUT entries pg_catalog.int8,
                                         INOUT first_bad_block pg_catalog.int8, INOUT problem pg_catalog.text)
  LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
  SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  r record;
  v pg_catalog.jsonb;
  node_digest pg_catalog.jsonb;
  missing pg_catalog.text;
BEGIN
  IF NOT EXISTS (SELECT FROM phi_guard.cluster_workers()) THEN
    RETURN;
  END IF;
  IF NOT ok THEN
    problem := 'coordinator: ' OPERATOR(pg_catalog.||) problem;
  END IF;
  IF digest OPERATOR(pg_catalog.?) 'nodes' THEN
    IF ok AND NOT COALESCE(phi_guard.cluster_hash(digest, digest OPERATOR(pg_catalog.->) 'nodes')
                           OPERATOR(pg_catalog.=) (digest OPERATOR(pg_catalog.->>) 'cluster_hash'), false) THEN
      ok := false;
      problem := 'cluster_hash of the digest does not match its nodes'' digests';
    END IF;
    SELECT n.value OPERATOR(pg_catalog.->>) 'node' INTO missing
      FROM pg_catalog.jsonb_array_elements(digest OPERATOR(pg_catalog.->) 'nodes') n
     WHERE NOT EXISTS (SELECT FROM phi_guard.cluster_workers() w
                        WHERE w.node OPERATOR(pg_catalog.=) (n.value OPERATOR(pg_catalog.->>) 'node'))
     LIMIT 1;
    IF missing IS NOT NULL AND ok THEN
      ok := false;
      problem := pg_catalog.format('node %s of the digest is not a worker of this cluster', missing);
    END IF;
    SELECT w.node INTO missing FROM phi_guard.cluster_workers() w
     WHERE NOT EXISTS (SELECT FROM pg_catalog.jsonb_array_elements(digest OPERATOR(pg_catalog.->) 'nodes') n
                        WHERE (n.value OPERATOR(pg_catalog.->>) 'node') OPERATOR(pg_catalog.=) w.node)
     LIMIT 1;
    IF missing IS NOT NULL AND ok THEN
      ok := false;
      problem := pg_catalog.format('worker %s is not in the digest', missing);
    END IF;
  END IF;
  FOR r IN SELECT * FROM phi_guard.cluster_run(
             'SELECT pg_catalog.row_to_json(v) FROM phi_guard.phi_audit_verify(%L::pg_catalog.jsonb) v',
             (SELECT pg_catalog.jsonb_object_agg(n.value OPERATOR(pg_catalog.->>) 'node',
                                                 n.value OPERATOR(pg_catalog.->) 'digest')
                FROM pg_catalog.jsonb_array_elements(digest OPERATOR(pg_catalog.->) 'nodes') n),
             'verify the audit chain')
  LOOP
    v := r.result::pg_catalog.jsonb;
    blocks := blocks OPERATOR(pg_catalog.+) (v OPERATOR(pg_catalog.->>) 'blocks')::pg_catalog.int8;
    entries := entries OPERATOR(pg_catalog.+) (v OPERATOR(pg_catalog.->>) 'entries')::pg_catalog.int8;
    IF ok AND NOT (v OPERATOR(pg_catalog.->>) 'ok')::pg_catalog.bool THEN
      ok := false;
      first_bad_block := (v OPERATOR(pg_catalog.->>) 'first_bad_block')::pg_catalog.int8;
      problem := pg_catalog.format('node %s: %s', r.node, v OPERATOR(pg_catalog.->>) 'problem');
    END IF;
  END LOOP;
END
$fn$;
REVOKE ALL ON FUNCTION phi_guard.cluster_verify(pg_catalog.jsonb, pg_catalog.bool, pg_catalog.int8,
  pg_catalog.int8, pg_catalog.int8, pg_catalog.text) FROM PUBLIC;
COMMENT ON FUNCTION phi_guard.cluster_verify(pg_catalog.jsonb, pg_catalog.bool, pg_catalog.int8,
  pg_catalog.int8, pg_catalog.int8, pg_catalog.text) IS
  'internal: phi_audit_verify on a Citus coordinator, every worker''s chain included (SPEC §10)';

-- phi_check_config on a Citus coordinator: the workers whose current
-- master key is not the coordinator's (compared by the secret-free
-- fingerprint of phi_master_key_status), or that did not answer.
CREATE FUNCTION phi_guard.cluster_master_key_mismatches(OUT node pg_catalog.text, OUT answer pg_catalog.text)
  RETURNS SETOF record
  LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
  SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  mine pg_catalog.text := (SELECT s.fingerprint FROM phi_guard.phi_master_key_status() s WHERE s.current);
BEGIN
  IF NOT EXISTS (SELECT FROM phi_guard.cluster_workers()) THEN
    RETURN;
  END IF;
  RETURN QUERY
    SELECT r.node, CASE WHEN r.success THEN 'a different master key' ELSE 'no answer' END
      FROM phi_guard.cluster_run('SELECT fingerprint FROM phi_guard.phi_master_key_status() WHERE current',
                                 NULL, NULL) r
     WHERE NOT r.success OR NOT COALESCE(r.result OPERATOR(pg_catalog.=) mine, false);
END
$fn$;
REVOKE ALL ON FUNCTION phi_guard.cluster_master_key_mismatches() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION phi_guard.cluster_master_key_mismatches() TO phi_key_admin, phi_audit_admin;
COMMENT ON FUNCTION phi_guard.cluster_master_key_mismatches() IS
  'internal, for phi_check_config on a Citus coordinator: the workers whose current master key differs from the coordinator''s, or that did not answer';
