// test/tokens.test.js: phi_set_context refuses every token it cannot trust,
// with SQLSTATE 28000 (phi-guard's ContextRejectedError) and a message that
// does not repeat the token.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { SignJWT, importPKCS8 } from 'jose';
import { createContextSigner, generateContextKeyPair, withPhiContext } from 'phi-guard';
import { claimsOf, freshDatabase, rejectsWith, visibleIds } from './support.js';

let env;
before(async () => { env = await freshDatabase('tokens'); });
after(async () => { await env?.close(); });

const b64 = (obj) => Buffer.from(JSON.stringify(obj)).toString('base64url');

// Asserts that token is refused with 28000 and that no part of it shows up
// in the error's message, detail or hint. Returns the error.
async function refused(token, re) {
  const err = await rejectsWith(withPhiContext(env.pool, token, visibleIds), '28000', re);
  const text = [err.message, err.detail, err.hint, err.where].filter(Boolean).join('\n');
  const [, payload, signature] = token.split('.');
  assert.ok(!text.includes(token), 'error text contains the token');
  if (payload && payload.length > 8) assert.ok(!text.includes(payload), 'error text contains the payload');
  if (signature && signature.length > 8) assert.ok(!text.includes(signature), 'error text contains the signature');
  return err;
}

test('a valid token is accepted (the control case)', async () => {
  assert.deepEqual(await withPhiContext(env.pool, await env.signer.sign(claimsOf('alice')), visibleIds), [1, 2, 3]);
});

test('a token signed by an unregistered key is refused', async () => {
  const rogue = await generateContextKeyPair();
  const signer = await createContextSigner({ kid: 'rogue', privateKey: rogue.privateKey });
  await refused(await signer.sign(claimsOf('alice')));
});

test("a token carrying a registered kid but signed by another key is refused", async () => {
  const rogue = await generateContextKeyPair();
  const signer = await createContextSigner({ kid: env.kid, privateKey: rogue.privateKey });
  await refused(await signer.sign(claimsOf('alice')));
});

test('an expired token is refused', async () => {
  const now = Math.floor(Date.now() / 1000);
  await refused(await env.signer.sign(claimsOf('alice', { now: now - 600, ttlSeconds: 60 })), /expired/);
});

test('a tampered token (tenant changed after signing) is refused', async () => {
  const token = await env.signer.sign(claimsOf('alice'));
  const [header, payload, signature] = token.split('.');
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  assert.equal(claims.tenant, 'north');
  claims.tenant = 'south';
  await refused(`${header}.${b64(claims)}.${signature}`);
});

test('an unsigned token (alg none) and garbage are refused', async () => {
  const now = Math.floor(Date.now() / 1000);
  await refused(`${b64({ alg: 'none', kid: env.kid })}.${b64({ ...claimsOf('alice'), iat: now, exp: now + 60 })}.`);
  await refused('not-a-token');
});

test('a token living longer than phi_guard.context_max_lifetime is refused', async () => {
  await refused(await env.signer.sign(claimsOf('alice', { ttlSeconds: 2 * 3600 })));
});

test('a token signed by a revoked key is refused', async () => {
  const k = await generateContextKeyPair();
  await env.admin.query('SELECT phi_guard.phi_context_key_add($1, $2)', ['kid-revoked', k.publicKeyPem]);
  const signer = await createContextSigner({ kid: 'kid-revoked', privateKey: k.privateKey });
  assert.deepEqual(await withPhiContext(env.pool, await signer.sign(claimsOf('carol')), visibleIds), [4, 5]);
  const { rows } = await env.admin.query("SELECT phi_guard.phi_context_key_revoke('kid-revoked') AS r");
  assert.equal(rows[0].r, true);
  await refused(await signer.sign(claimsOf('carol')));
});

test('a token without the required roles claim is refused', async () => {
  const key = await importPKCS8(env.keys.privateKeyPem, 'EdDSA');
  const token = await new SignJWT({ tenant: 'north' })
    .setProtectedHeader({ alg: 'EdDSA', kid: env.kid })
    .setSubject('alice').setIssuedAt().setExpirationTime('60s').sign(key);
  await refused(token);
});
