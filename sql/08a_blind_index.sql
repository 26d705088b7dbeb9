-- Rule (SPEC §4): phi_blind_index is the first `bits` (8..63) bits of a
-- keyed HMAC, the same in every session and across rotation, unrelated
-- between keys, and lets a btree index find encrypted rows.  Its index key
-- belongs to the key name: a rotation keeps it (blind indexes and
-- deterministic tokens stay the same), destroying the key name destroys it.
SET search_path = public, phi_guard;

SELECT phi_key_create('regress_bidx') > 0 AS created, phi_key_create('regress_bidx2') > 0 AS created2;

------------------------------------------------------------------------
-- Blind index
------------------------------------------------------------------------
-- deterministic, NULL in NULL out, any text (empty, multi-byte)
SELECT phi_blind_index('MRN-000042', 'regress_bidx') = phi_blind_index('MRN-000042', 'regress_bidx') AS same_twice,
       phi_blind_index('MRN-000042', 'regress_bidx') <> phi_blind_index('MRN-000043', 'regress_bidx') AS differs,
       phi_blind_index(NULL, 'regress_bidx') IS NULL AS null_in_null_out,
       phi_blind_index('', 'regress_bidx') IS NOT NULL AS empty_ok,
       phi_blind_index('Zoë 患者', 'regress_bidx') = phi_blind_index('Zoë 患者', 'regress_bidx') AS multibyte_ok;
SELECT phi_blind_index('MRN-000042', 'regress_bidx') AS bi_before_reconnect,
       phi_blind_index('MRN-000042', 'regress_bidx', 63) AS bi63_before_reconnect \gset

-- bits: 8..63 only
SELECT b AS bits, regress_try(format($$SELECT phi_guard.phi_blind_index('x', 'regress_bidx', %s)$$, b)) AS result
  FROM unnest(ARRAY[-1, 0, 7, 8, 63, 64, 2147483647]) b;
-- results lie in 0 .. 2^bits - 1 and use the whole range
SELECT count(*) AS bit_widths,
       bool_and(lo >= 0 AND hi <= (2::numeric ^ b) - 1) AS within_range,
       bool_and(hi >= 2::numeric ^ (b - 1)) AS top_bit_used
  FROM (SELECT b, min(phi_blind_index('v' || g, 'regress_bidx', b)) AS lo,
               max(phi_blind_index('v' || g, 'regress_bidx', b)) AS hi
          FROM generate_series(8, 63) b, generate_series(1, 2000) g GROUP BY b) s;
SELECT count(DISTINCT x) AS distinct_8bit, min(x) AS lo, max(x) AS hi
  FROM (SELECT phi_blind_index('v' || g, 'regress_bidx', 8) AS x FROM generate_series(1, 10000) g) s;
-- "first bits bits": a narrower index is a prefix of a wider one
SELECT count(*) FILTER (WHERE phi_blind_index(v, 'regress_bidx', 8)  <> phi_blind_index(v, 'regress_bidx', 63) >> 55
                           OR phi_blind_index(v, 'regress_bidx', 16) <> phi_blind_index(v, 'regress_bidx', 63) >> 47
                           OR phi_blind_index(v, 'regress_bidx')     <> phi_blind_index(v, 'regress_bidx', 63) >> 31
                           OR phi_blind_index(v, 'regress_bidx', 62) <> phi_blind_index(v, 'regress_bidx', 63) >> 1)
         AS not_a_prefix
  FROM (SELECT 'v' || g AS v FROM generate_series(1, 1000) g) s;

-- different keys give unrelated results: never equal at 63 bits, and equal
-- only by chance (~1/256, about 39 of 10,000) at 8 bits
SELECT count(*) FILTER (WHERE phi_blind_index(v, 'regress_bidx', 63) = phi_blind_index(v, 'regress_bidx2', 63)) AS equal_63,
       count(*) FILTER (WHERE phi_blind_index(v, 'regress_bidx', 8) = phi_blind_index(v, 'regress_bidx2', 8)) BETWEEN 10 AND 100 AS equal_8_at_chance
  FROM (SELECT 'v' || g AS v FROM generate_series(1, 10000) g) s;

-- errors
SELECT regress_try($$SELECT phi_guard.phi_blind_index('x', NULL)$$) AS null_key,
       regress_try($$SELECT phi_guard.phi_blind_index('x', '')$$) AS empty_key,
       regress_try($$SELECT phi_guard.phi_blind_index('x', 'regress_no_such_key')$$) AS unknown_key;

-- equality search on an encrypted column through a btree index
CREATE TABLE regress_bi (id int PRIMARY KEY, mrn phi_ciphertext, mrn_bidx int8);
INSERT INTO regress_bi
  SELECT g, phi_encrypt(v, 'regress_bidx', 'regress_bi.mrn:' || g), phi_blind_index(v, 'regress_bidx')
    FROM generate_series(1, 10000) g, LATERAL (SELECT 'MRN-' || lpad(g::text, 6, '0') AS v) s;
CREATE INDEX regress_bi_mrn_bidx ON regress_bi (mrn_bidx);
ANALYZE regress_bi;
EXPLAIN (COSTS OFF)
SELECT id FROM regress_bi WHERE mrn_bidx = phi_blind_index('MRN-000042', 'regress_bidx');
-- the README pattern: candidates by blind index, false positives removed by
-- decrypting (with the row's aad)
SELECT id, phi_decrypt(mrn, 'regress_bi.mrn:' || id) AS mrn
  FROM regress_bi
 WHERE mrn_bidx = phi_blind_index('MRN-000042', 'regress_bidx')
   AND phi_decrypt(mrn, 'regress_bi.mrn:' || id) = 'MRN-000042';
-- with 8 bits there are many candidates, and the pattern still finds one row
UPDATE regress_bi SET mrn_bidx = phi_blind_index(phi_decrypt(mrn, 'regress_bi.mrn:' || id), 'regress_bidx', 8);
SELECT count(*) > 1 AS several_candidates
  FROM regress_bi WHERE mrn_bidx = phi_blind_index('MRN-000042', 'regress_bidx', 8);
SELECT id, phi_decrypt(mrn, 'regress_bi.mrn:' || id) AS mrn
  FROM regress_bi
 WHERE mrn_bidx = phi_blind_index('MRN-000042', 'regress_bidx', 8)
   AND phi_decrypt(mrn, 'regress_bi.mrn:' || id) = 'MRN-000042';
DROP TABLE regress_bi;

-- the same in a new session (nothing cached)
\c -
SET search_path = public, phi_guard;
SELECT phi_blind_index('MRN-000042', 'regress_bidx') = :bi_before_reconnect AS blind_index_same,
       phi_blind_index('MRN-000042', 'regress_bidx', 63) = :bi63_before_reconnect AS blind_index63_same;

------------------------------------------------------------------------
-- Rotation: blind indexes and deterministic tokens stay the same
------------------------------------------------------------------------
SELECT phi_key_create('regress_tok_rot') AS rot_v1 \gset
SELECT phi_token_domain_create('regress_rot', 'regress_tok_rot');
SELECT phi_token_domain_create('regress_rot_ssn', 'regress_tok_rot', 'ssn');
CREATE TABLE regress_rot AS
  SELECT v, phi_blind_index(v, 'regress_tok_rot') AS bi, phi_blind_index(v, 'regress_tok_rot', 63) AS bi63,
         phi_tokenize(v, 'regress_rot') AS t, phi_tokenize(s, 'regress_rot_ssn') AS ts, s
    FROM generate_series(1, 100) g,
         LATERAL (SELECT 'rot ' || g AS v, '123-45-' || lpad(g::text, 4, '0') AS s) x;
SELECT phi_key_rotate('regress_tok_rot') AS rot_v2 \gset
SELECT count(*) AS values,
       count(*) FILTER (WHERE phi_blind_index(v, 'regress_tok_rot') = bi
                          AND phi_blind_index(v, 'regress_tok_rot', 63) = bi63) AS blind_index_same,
       count(*) FILTER (WHERE phi_tokenize(v, 'regress_rot') = t) AS token_same,
       count(*) FILTER (WHERE phi_tokenize(s, 'regress_rot_ssn') = ts) AS ssn_token_same,
       count(*) FILTER (WHERE phi_detokenize(t, 'regress_rot') = v) AS detokenize_ok
  FROM regress_rot;
SELECT count(*) AS vault_rows FROM phi_guard.token_vault WHERE domain = 'regress_rot';
-- a value first tokenized after the rotation is stored under version 2
SELECT phi_tokenize('rot new', 'regress_rot') AS rot_new \gset
SELECT phi_detokenize(:'rot_new', 'regress_rot') AS new_value,
       substring(value::bytea from 5 for 4) = int4send(:rot_v2) AS under_v2
  FROM phi_guard.token_vault WHERE domain = 'regress_rot' AND token = :'rot_new';
-- destroying version 1 shreds the values stored under it, not the index key
SELECT phi_key_destroy('regress_tok_rot', 1) AS destroyed_v1;
SELECT count(*) FILTER (WHERE phi_blind_index(v, 'regress_tok_rot') = bi) AS blind_index_same
  FROM regress_rot;
SELECT regexp_replace(regress_try_secrets(format('SELECT phi_guard.phi_detokenize(%L, %L)', t, 'regress_rot'), ARRAY[t, v]),
                      'key id [0-9]+', 'key id N') AS old_token,
       phi_detokenize(:'rot_new', 'regress_rot') AS new_token
  FROM regress_rot WHERE v = 'rot 1';
DROP TABLE regress_rot;

------------------------------------------------------------------------
-- Destroying a key name destroys its index key
------------------------------------------------------------------------
SELECT phi_key_create('regress_tok_gone') > 0 AS created;
SELECT phi_token_domain_create('regress_gone', 'regress_tok_gone');
CREATE TABLE regress_gone AS
  SELECT v, phi_blind_index(v, 'regress_tok_gone', 63) AS bi, phi_tokenize(v, 'regress_gone') AS t
    FROM (SELECT 'gone ' || g AS v FROM generate_series(1, 1000) g) s;
SELECT count(*) AS index_keys FROM phi_guard.index_keys WHERE name = 'regress_tok_gone';
SELECT phi_key_destroy('regress_tok_gone') AS destroyed;
SELECT count(*) AS index_keys FROM phi_guard.index_keys WHERE name = 'regress_tok_gone';
-- (this session had the index key cached)
SELECT regress_try_secrets($$SELECT phi_guard.phi_blind_index('gone 1', 'regress_tok_gone')$$) AS blind_index,
       regress_try_secrets($$SELECT phi_guard.phi_tokenize('gone 1', 'regress_gone')$$) AS tokenize;
SELECT regexp_replace(regress_try_secrets(format('SELECT phi_guard.phi_detokenize(%L, %L)', t, 'regress_gone'), ARRAY[t, v]),
                      'key id [0-9]+', 'key id N') AS detokenize
  FROM regress_gone WHERE v = 'gone 1';
-- a new version brings a new index key: unrelated blind indexes and tokens
SELECT phi_key_rotate('regress_tok_gone') > 0 AS rotated;
SELECT count(*) AS values,
       count(*) FILTER (WHERE phi_blind_index(v, 'regress_tok_gone', 63) = bi) AS same_blind_index,
       count(*) FILTER (WHERE phi_tokenize(v, 'regress_gone') = t) AS same_token
  FROM regress_gone;
DROP TABLE regress_gone;
