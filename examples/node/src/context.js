// src/context.js: signs the per-request context token that
// phi_guard.phi_set_context() verifies.
//
// The token is a compact JWS (a JWT) signed with Ed25519:
//   header  {"alg":"EdDSA","kid":"<kid registered with phi_context_key_add>"}
//   claims  {"sub","tenant","roles","purpose","iat","exp"}
// It lives 60 seconds: long enough for one request, short enough that a
// token leaked from a log is useless soon after. The private key never
// leaves the application; the database only holds the public key.

import { SignJWT, exportPKCS8, exportSPKI, generateKeyPair, importPKCS8 } from 'jose';

export const TOKEN_TTL_SECONDS = 60;

// Generates a fresh Ed25519 key pair and returns both halves as PEM:
// privateKeyPem (PKCS#8, "PRIVATE KEY") for the application, publicKeyPem
// (SPKI, "PUBLIC KEY") for phi_guard.phi_context_key_add().
export async function generateContextKeyPair() {
  const { publicKey, privateKey } = await generateKeyPair('EdDSA', {
    crv: 'Ed25519',
    extractable: true,
  });
  return {
    privateKeyPem: await exportPKCS8(privateKey),
    publicKeyPem: await exportSPKI(publicKey),
  };
}

// Returns a signer: { kid, sign(claims, options) -> Promise<string> }.
// claims = { sub, tenant, roles, purpose }; options.now (seconds since the
// epoch, default: the clock) and options.ttlSeconds exist for tests that need
// an expired or too long-lived token.
export async function createContextSigner({ kid, privateKeyPem }) {
  if (!kid) throw new Error('createContextSigner: kid is required');
  const key = await importPKCS8(privateKeyPem, 'EdDSA');

  async function sign({ sub, tenant, roles, purpose }, options = {}) {
    if (typeof sub !== 'string' || typeof tenant !== 'string' || !Array.isArray(roles)) {
      throw new TypeError('sign: sub and tenant must be strings, roles an array of strings');
    }
    const now = options.now ?? Math.floor(Date.now() / 1000);
    const ttl = options.ttlSeconds ?? TOKEN_TTL_SECONDS;
    const payload = { tenant, roles };
    if (purpose !== undefined && purpose !== null) payload.purpose = purpose;
    return new SignJWT(payload)
      .setProtectedHeader({ alg: 'EdDSA', kid })
      .setSubject(sub)
      .setIssuedAt(now)
      .setExpirationTime(now + ttl)
      .sign(key);
  }

  return { kid, sign };
}
