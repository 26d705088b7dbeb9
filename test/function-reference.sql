-- The README's function reference, from the catalog of an installed
-- phi_guard (so it cannot drift from what CREATE EXTENSION makes):
--   psql -X -q -At -d DB -f test/function-reference.sql
-- One markdown row per user-facing function (named phi_*): signature,
-- result, volatility, who may call it, and its COMMENT.
SELECT '| function | returns | volatility | who may call it | what it does |';
SELECT '|---|---|---|---|---|';
SELECT pg_catalog.format('| `%s(%s)` | `%s` | %s | %s | %s |',
         p.proname, pg_catalog.pg_get_function_arguments(p.oid),
         coalesce(pg_catalog.pg_get_function_result(p.oid), 'procedure: CALL'),
         CASE WHEN p.prokind = 'p' THEN '-'
              WHEN p.provolatile = 'i' THEN 'immutable' WHEN p.provolatile = 's' THEN 'stable'
              ELSE 'volatile' END,
         CASE WHEN pg_catalog.has_function_privilege('public', p.oid, 'EXECUTE')
              THEN 'any role with USAGE on the schema'
              ELSE coalesce((SELECT pg_catalog.string_agg(DISTINCT '`' || r.rolname || '`', ', ')
                               FROM pg_catalog.aclexplode(p.proacl) a
                               JOIN pg_catalog.pg_roles r ON r.oid = a.grantee
                              WHERE a.privilege_type = 'EXECUTE' AND NOT r.rolsuper),
                            'superuser') END,
         replace(coalesce(pg_catalog.obj_description(p.oid, 'pg_proc'), ''), '|', '\|'))
  FROM pg_catalog.pg_proc p
 WHERE p.pronamespace = 'phi_guard'::pg_catalog.regnamespace AND p.proname LIKE 'phi\_%'
   AND p.proname NOT LIKE 'phi\_ciphertext\_%'   -- the type's I/O functions
 ORDER BY p.proname, pg_catalog.pg_get_function_arguments(p.oid);
