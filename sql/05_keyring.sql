-- Rule: keys have versions; rotate adds an active version and retires the
-- old one (which still decrypts); rewrap moves values to the active version
-- without exposing plaintext; destroy crypto-shreds (decryption then fails
-- with PH002); ids are never reused; the cache never serves a stale key.
SET search_path = public, phi_guard;

SELECT phi_key_create('regress_k') AS k1 \gset
SELECT regress_try($$SELECT phi_guard.phi_key_create('regress_k')$$) AS duplicate;
SELECT name, regress_try(format('SELECT phi_guard.phi_key_create(%L)', name)) AS result
  FROM (VALUES (''), (repeat('n', 64)), (E'tab\there')) AS t(name);
SELECT regress_try($$SELECT phi_guard.phi_key_create(repeat('n', 63))$$) AS name_of_63_bytes;
SELECT name, version, state, octet_length(wrapped_key) AS wrapped_len, id = :k1 AS is_k1
  FROM phi_guard.keys WHERE name = 'regress_k';

CREATE TABLE regress_vault (label text, ct phi_ciphertext, bin phi_ciphertext);
INSERT INTO regress_vault VALUES
  ('v1', phi_encrypt('written under v1', 'regress_k', 'row:v1'), phi_encrypt('\xdeadbeef'::bytea, 'regress_k'));

-- rotate: a new id and version, v1 retired, new values under v2
SELECT phi_key_rotate('regress_k') AS k2 \gset
SELECT :k2 > :k1 AS new_id;
SELECT version, state, wrapped_key IS NOT NULL AS has_key FROM phi_guard.keys
 WHERE name = 'regress_k' ORDER BY version;
INSERT INTO regress_vault VALUES
  ('v2', phi_encrypt('written under v2', 'regress_k', 'row:v2'), NULL);
SELECT label, substring(ct::bytea from 5 for 4) = int4send(:k1) AS under_k1,
       substring(ct::bytea from 5 for 4) = int4send(:k2) AS under_k2,
       phi_decrypt(ct, 'row:' || label) AS plaintext
  FROM regress_vault ORDER BY label;
SELECT regress_try($$SELECT phi_guard.phi_key_rotate('no_such_key')$$) AS rotate_unknown;

-- rewrap: moves to v2, keeps aad and the bytea flag, needs the right aad
SELECT regress_try($$SELECT phi_guard.phi_rewrap(ct, 'wrong') FROM regress_vault WHERE label = 'v1'$$) AS rewrap_wrong_aad;
UPDATE regress_vault SET ct = phi_rewrap(ct, 'row:' || label), bin = phi_rewrap(bin) WHERE label = 'v1';
SELECT label, substring(ct::bytea from 5 for 4) = int4send(:k2) AS now_under_k2,
       get_byte(ct::bytea, 2) AS ct_flags, get_byte(bin::bytea, 2) AS bin_flags,
       phi_decrypt(ct, 'row:' || label) AS plaintext, phi_decrypt_bytea(bin) AS bin_plain
  FROM regress_vault WHERE label = 'v1';

-- destroy one version: its values fail with PH002, others still work
INSERT INTO regress_vault VALUES ('old', phi_encrypt('x', 'regress_k'), NULL);
SELECT phi_key_rotate('regress_k') AS k3 \gset
SELECT phi_key_destroy('regress_k', 2) AS destroyed_v2;
SELECT version, state, wrapped_key IS NULL AS shredded FROM phi_guard.keys
 WHERE name = 'regress_k' ORDER BY version;
SELECT regress_try($$SELECT phi_guard.phi_decrypt(ct, 'row:v2') FROM regress_vault WHERE label = 'v2'$$) AS after_destroy;
SELECT phi_key_destroy('regress_k', 2) AS destroy_again;
SELECT regress_try($$SELECT phi_guard.phi_key_destroy('regress_k', 99)$$) AS no_such_version;
SELECT regress_try($$SELECT phi_guard.phi_key_destroy('no_such_key')$$) AS no_such_key;
SELECT regress_try($$SELECT phi_guard.phi_rewrap(ct, 'row:v2') FROM regress_vault WHERE label = 'v2'$$) AS rewrap_destroyed;

-- destroy every version: nothing under the name decrypts or encrypts
SELECT phi_key_destroy('regress_k') AS destroyed_rest;
SELECT regress_try($$SELECT phi_guard.phi_encrypt('x', 'regress_k')$$) AS encrypt_no_active;
SELECT regress_try($$SELECT phi_guard.phi_decrypt(ct, 'row:v1') FROM regress_vault WHERE label = 'v1'$$) AS v1_after_all;
-- a name whose versions are all destroyed can be given a fresh one
SELECT phi_key_rotate('regress_k') AS k4 \gset
SELECT :k4 > :k3 AS ids_never_reused,
       (SELECT max(version) FROM phi_guard.keys WHERE name = 'regress_k') AS latest_version;
SELECT phi_decrypt(phi_encrypt('fresh', 'regress_k')) AS fresh_version_works;

-- the wrap binds the key id: a wrapped key copied onto another row does not
-- unwrap (PH004), even by a superuser editing the table directly, and the
-- edit reaches the cache at once
SELECT phi_key_create('regress_a') AS ka \gset
SELECT phi_key_create('regress_b') AS kb \gset
SELECT phi_encrypt('under b', 'regress_b') AS ct_b \gset
SELECT phi_decrypt(:'ct_b') AS before_edit;
UPDATE phi_guard.keys SET wrapped_key = (SELECT wrapped_key FROM phi_guard.keys WHERE id = :ka)
 WHERE id = :kb;
SELECT regexp_replace(regress_try(format('SELECT phi_guard.phi_decrypt(%L)', :'ct_b')),
                      'key [0-9]+', 'key N') AS swapped_wrapped_key;
DROP TABLE regress_vault;
