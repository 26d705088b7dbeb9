// test/signer.test.js: context tokens, key pairs and the key ring, without a
// database (the database's verdict on them is in context.test.js).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeProtectedHeader, importSPKI, jwtVerify } from 'jose';
import {
  DEFAULT_TTL_SECONDS, createContextKeyRing, createContextSigner, generateContextKeyPair, publicKeyPemOf,
} from '../dist/index.js';

const keys = await generateContextKeyPair({ kid: 'test-kid' });
const signer = await createContextSigner({ kid: keys.kid, privateKey: keys.privateKey });
const claims = { sub: 'alice', tenant: 'north', roles: ['clinician'], purpose: 'treatment' };
const payloadOf = (token) => JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'));

test('generateContextKeyPair: Ed25519 SPKI / PKCS#8 PEM and a fresh kid', async () => {
  assert.match(keys.privateKeyPem, /^-----BEGIN PRIVATE KEY-----\n/);
  assert.match(keys.publicKeyPem, /^-----BEGIN PUBLIC KEY-----\n/);
  const der = Buffer.from(keys.publicKeyPem.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64');
  assert.equal(der.length, 44); // SPKI of Ed25519: 12-byte prefix (OID 1.3.101.112) + 32-byte key
  assert.equal(der.subarray(0, 12).toString('hex'), '302a300506032b6570032100');
  assert.equal(keys.privateKey.type, 'private');
  assert.equal(keys.privateKey.algorithm.name, 'Ed25519');
  const a = await generateContextKeyPair();
  const b = await generateContextKeyPair();
  assert.match(a.kid, /^ctx-\d{8}-[0-9a-f]{8}$/);
  assert.notEqual(a.kid, b.kid);
  assert.notEqual(a.publicKeyPem, b.publicKeyPem);
});

test('a token: header {alg: EdDSA, kid}, the claims, jti, iat and exp = iat + 60', async () => {
  const token = await signer.sign(claims);
  assert.deepEqual(decodeProtectedHeader(token), { alg: 'EdDSA', kid: 'test-kid' });
  const { payload } = await jwtVerify(token, await importSPKI(keys.publicKeyPem, 'EdDSA'), { algorithms: ['EdDSA'] });
  assert.deepEqual(Object.keys(payload).sort(), ['exp', 'iat', 'jti', 'purpose', 'roles', 'sub', 'tenant']);
  assert.equal(payload.sub, 'alice');
  assert.equal(payload.tenant, 'north');
  assert.deepEqual(payload.roles, ['clinician']);
  assert.equal(payload.purpose, 'treatment');
  assert.match(payload.jti, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(DEFAULT_TTL_SECONDS, 60);
  assert.equal(payload.exp - payload.iat, 60);
  assert.ok(Math.abs(payload.iat - Date.now() / 1000) < 300);
  assert.notEqual(payloadOf(await signer.sign(claims)).jti, payload.jti, 'a fresh jti per token');
});

test('jti, ttlSeconds and now are taken as given; purpose is optional', async () => {
  const token = await signer.sign({ sub: 'bob', tenant: 'north', roles: [], jti: 'req-42', ttlSeconds: 30, now: 1000 });
  assert.deepEqual(payloadOf(token), { tenant: 'north', roles: [], sub: 'bob', jti: 'req-42', iat: 1000, exp: 1030 });
});

test('a token does not verify with another key', async () => {
  const other = await generateContextKeyPair();
  await assert.rejects(jwtVerify(await signer.sign(claims), await importSPKI(other.publicKeyPem, 'EdDSA')),
    { code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' });
});

test('sign refuses claims of the wrong shape, without repeating them', async () => {
  const bad = [
    { ...claims, roles: 'clinician' },
    { ...claims, sub: '' },
    { ...claims, tenant: undefined },
    { ...claims, tenant: 'a\u0001b' },
    { ...claims, sub: 'x'.repeat(256) },
    { ...claims, roles: Array.from({ length: 33 }, (_, i) => `r${i}`) },
    { ...claims, roles: ['ok', 7] },
    { ...claims, purpose: 12 },
    { ...claims, ttlSeconds: 0 },
    { ...claims, ttlSeconds: 1.5 },
    { ...claims, jti: '' },
  ];
  for (const c of bad) {
    await assert.rejects(signer.sign(c), (err) => {
      assert.ok(err instanceof TypeError, String(err));
      assert.ok(!err.message.includes('a\u0001b') && !err.message.includes('xxxxxxxx'), 'the value is not in the message');
      return true;
    });
  }
  await assert.rejects(signer.sign(null), TypeError);
});

test('the signer takes a PEM, a JWK or a non-extractable WebCrypto key', async () => {
  const fromPem = await createContextSigner({ kid: 'pem', privateKey: keys.privateKeyPem });
  const jwk = await crypto.subtle.exportKey('jwk', keys.privateKey);
  const fromJwk = await createContextSigner({ kid: 'jwk', privateKey: jwk });
  const pair = await crypto.subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify']);
  const fromWebCrypto = await createContextSigner({ kid: 'webcrypto', privateKey: pair.privateKey });
  const pub = await importSPKI(keys.publicKeyPem, 'EdDSA');
  await jwtVerify(await fromPem.sign(claims), pub);
  await jwtVerify(await fromJwk.sign(claims), pub);
  await jwtVerify(await fromWebCrypto.sign(claims), pair.publicKey);
  await assert.rejects(createContextSigner({ kid: 'pub', privateKey: keys.publicKeyPem }));
  const rsa = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
  await assert.rejects(createContextSigner({ kid: 'ec', privateKey: rsa.privateKey }), TypeError);
  await assert.rejects(createContextSigner({ kid: '', privateKey: keys.privateKey }), TypeError);
});

test('publicKeyPemOf derives the public key; not from a non-extractable key', async () => {
  assert.equal(await publicKeyPemOf(keys.privateKey), keys.publicKeyPem);
  assert.equal(await publicKeyPemOf(keys.privateKeyPem), keys.publicKeyPem);
  const pair = await crypto.subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify']);
  await assert.rejects(publicKeyPemOf(pair.privateKey), /non-extractable/);
});

test('a key ring signs with its newest key and lists every public key', async () => {
  const old = await generateContextKeyPair({ kid: 'ring-1' });
  const next = await generateContextKeyPair({ kid: 'ring-2' });
  const ring = await createContextKeyRing([
    { kid: old.kid, privateKey: old.privateKeyPem },
    { kid: next.kid, privateKey: next.privateKey },
  ]);
  assert.equal(ring.kid, 'ring-2');
  assert.deepEqual(ring.kids, ['ring-1', 'ring-2']);
  const token = await ring.sign(claims);
  assert.equal(decodeProtectedHeader(token).kid, 'ring-2');
  await jwtVerify(token, await importSPKI(next.publicKeyPem, 'EdDSA'));
  assert.deepEqual(await ring.publicKeys(), [
    { kid: 'ring-1', publicKeyPem: old.publicKeyPem },
    { kid: 'ring-2', publicKeyPem: next.publicKeyPem },
  ]);
  await assert.rejects(createContextKeyRing([]), TypeError);
  await assert.rejects(createContextKeyRing([{ kid: 'a', privateKey: old.privateKey }, { kid: 'a', privateKey: next.privateKey }]), TypeError);
});
