// test/keys.test.js: rotating the context signing key with a key ring and
// syncContextKeys, against the server's verdict on the tokens.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  ContextRejectedError, createContextKeyRing, generateContextKeyPair, listContextKeys, syncContextKeys, withPhiContext,
} from '../dist/index.js';
import { claims, freshDatabase, rejectsAs } from './support.js';

let env;
before(async () => { env = await freshDatabase('keys'); });
after(async () => { await env?.close(); });

const user = (signer) => withPhiContext(env.pool, { signer, claims: claims('alice') },
  (db) => db.query('SELECT phi_guard.phi_user_id() AS u').then((r) => r.rows[0].u));

test('rotation: register the new key, sign with it, revoke the old one', async () => {
  const k1 = await generateContextKeyPair({ kid: 'rot-1' });
  const k2 = await generateContextKeyPair({ kid: 'rot-2' });
  const ring1 = await createContextKeyRing([{ kid: k1.kid, privateKey: k1.privateKeyPem }]);
  assert.deepEqual(await syncContextKeys(env.admin, ring1), { added: ['rot-1'], revoked: [] });
  assert.deepEqual(await syncContextKeys(env.admin, ring1), { added: [], revoked: [] }, 'idempotent');
  assert.equal(await user(ring1), 'alice');

  // step 1: both keys in the ring, the new one signs
  const ring2 = await createContextKeyRing([
    { kid: k1.kid, privateKey: k1.privateKeyPem },
    { kid: k2.kid, privateKey: k2.privateKey, publicKeyPem: k2.publicKeyPem },
  ]);
  assert.deepEqual(await syncContextKeys(env.admin, ring2), { added: ['rot-2'], revoked: [] });
  assert.equal(await user(ring2), 'alice');
  assert.equal(await user(ring1), 'alice', 'tokens of the old key still work during the rotation');

  // step 2: the old key leaves the ring and is revoked (so is the test's own key)
  const ring3 = await createContextKeyRing([{ kid: k2.kid, privateKey: k2.privateKey, publicKeyPem: k2.publicKeyPem }]);
  const sync = await syncContextKeys(env.admin, ring3, { revokeOthers: true });
  assert.deepEqual(sync.added, []);
  assert.deepEqual(sync.revoked.sort(), [env.kid, 'rot-1'].sort());
  assert.equal(await user(ring3), 'alice');
  await rejectsAs(user(ring1), ContextRejectedError);

  const listed = await listContextKeys(env.admin);
  const byKid = Object.fromEntries(listed.map((k) => [k.kid, k]));
  assert.ok(byKid['rot-1'].revokedAt instanceof Date);
  assert.equal(byKid['rot-2'].revokedAt, null);
  assert.ok(byKid['rot-2'].createdAt instanceof Date);

  // a revoked kid is never reused
  await assert.rejects(syncContextKeys(env.admin, ring1), /revoked/);
});

test('syncContextKeys needs phi_key_admin: the application role is refused', async () => {
  const k = await generateContextKeyPair();
  const ring = await createContextKeyRing([{ kid: k.kid, privateKey: k.privateKey }]);
  await assert.rejects(syncContextKeys(env.pool, ring), { code: '42501' });
});
