// test/context.test.js: the context token itself, without a database.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeProtectedHeader, importSPKI, jwtVerify } from 'jose';
import { TOKEN_TTL_SECONDS, createContextSigner, generateContextKeyPair } from '../src/context.js';

const keys = await generateContextKeyPair();
const signer = await createContextSigner({ kid: 'test-kid', privateKeyPem: keys.privateKeyPem });
const claims = { sub: 'alice', tenant: 'north', roles: ['clinician'], purpose: 'treatment' };

test('key pair is PKCS#8 / SPKI PEM of an Ed25519 key', () => {
  assert.match(keys.privateKeyPem, /^-----BEGIN PRIVATE KEY-----\n/);
  assert.match(keys.publicKeyPem, /^-----BEGIN PUBLIC KEY-----\n/);
  const der = Buffer.from(keys.publicKeyPem.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64');
  // SPKI of Ed25519: 12 bytes of algorithm prefix (OID 1.3.101.112) + 32-byte key
  assert.equal(der.length, 44);
  assert.equal(der.subarray(0, 12).toString('hex'), '302a300506032b6570032100');
});

test('token header is exactly {alg: EdDSA, kid}', async () => {
  const token = await signer.sign(claims);
  assert.equal(token.split('.').length, 3);
  assert.deepEqual(decodeProtectedHeader(token), { alg: 'EdDSA', kid: 'test-kid' });
});

test('token verifies with the public key and carries the claims', async () => {
  const token = await signer.sign(claims);
  const pub = await importSPKI(keys.publicKeyPem, 'EdDSA');
  const { payload } = await jwtVerify(token, pub, { algorithms: ['EdDSA'] });
  assert.equal(payload.sub, 'alice');
  assert.equal(payload.tenant, 'north');
  assert.deepEqual(payload.roles, ['clinician']);
  assert.equal(payload.purpose, 'treatment');
  assert.equal(payload.exp - payload.iat, TOKEN_TTL_SECONDS);
  assert.equal(TOKEN_TTL_SECONDS, 60);
  assert.ok(Math.abs(payload.iat - Date.now() / 1000) < 300, 'iat is the current time');
  assert.deepEqual(Object.keys(payload).sort(), ['exp', 'iat', 'purpose', 'roles', 'sub', 'tenant']);
});

test('token does not verify with another key', async () => {
  const other = await generateContextKeyPair();
  const pub = await importSPKI(other.publicKeyPem, 'EdDSA');
  await assert.rejects(jwtVerify(await signer.sign(claims), pub), { code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' });
});

test('purpose is optional; now and ttlSeconds set iat and exp', async () => {
  const token = await signer.sign({ sub: 'bob', tenant: 'north', roles: [] }, { now: 1000, ttlSeconds: 30 });
  const payload = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'));
  assert.deepEqual(payload, { tenant: 'north', roles: [], sub: 'bob', iat: 1000, exp: 1030 });
});

test('sign refuses claims of the wrong shape', async () => {
  await assert.rejects(signer.sign({ sub: 'alice', tenant: 'north', roles: 'clinician' }), TypeError);
  await assert.rejects(signer.sign({ sub: 'alice', roles: [] }), TypeError);
});
