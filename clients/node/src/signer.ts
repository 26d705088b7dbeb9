// src/signer.ts: the signed request context that phi_guard.phi_set_context()
// verifies (SPEC §5): key pairs, a signer, and a key ring for rotation.
//
// A context token is a compact JWS signed with Ed25519:
//   header  {"alg":"EdDSA","kid":"<kid registered with phi_context_key_add>"}
//   claims  {"sub","tenant","roles","purpose"?,"jti","iat","exp"}
// The private key stays with the application; the database holds only the
// public key. This module uses jose and WebCrypto only — no Node.js built-in,
// no native code — so it runs in Node.js and in edge runtimes alike.

import {
  SignJWT,
  exportJWK,
  exportPKCS8,
  exportSPKI,
  generateKeyPair,
  importJWK,
  importPKCS8,
  type CryptoKey,
  type JWK,
} from 'jose';

/** Lifetime of a token when `ttlSeconds` is not given: one request's worth. */
export const DEFAULT_TTL_SECONDS = 60;

/**
 * An Ed25519 private key: a WebCrypto `CryptoKey`, a PKCS#8 PEM
 * (`-----BEGIN PRIVATE KEY-----`) or an OKP JWK with `d`.
 */
export type ContextPrivateKey = CryptoKey | string | JWK;

/** What one request's token says about its end user. */
export interface ContextClaims {
  /** The end user's id (1–255 bytes). */
  sub: string;
  /** The tenant, e.g. the clinic, whose rows the request may see. */
  tenant: string;
  /** The end user's application roles (at most 32), e.g. `['clinician']`. */
  roles: readonly string[];
  /** Purpose of use, e.g. `treatment`, `payment`, `emergency`. */
  purpose?: string;
  /** Request id, recorded as `request_id` in audit entries. Default: a random UUID. */
  jti?: string;
  /** Lifetime in seconds (default 60). phi_guard refuses more than `phi_guard.context_max_lifetime`. */
  ttlSeconds?: number;
  /** Issue time in seconds since the epoch (default: the clock); for tests. */
  now?: number;
}

/** Signs context tokens with one key. */
export interface ContextSigner {
  /** The key id written into every token's header. */
  readonly kid: string;
  /** Returns a compact JWS for `claims`. Throws `TypeError` for claims of the wrong shape. */
  sign(claims: ContextClaims): Promise<string>;
}

/** A freshly generated signing key. */
export interface ContextKeyPair {
  /** The key id to register it under. */
  kid: string;
  /** The private key, for `createContextSigner`. */
  privateKey: CryptoKey;
  /** The private key as PKCS#8 PEM, for a secret store. */
  privateKeyPem: string;
  /** The public key as SPKI PEM, for `phi_guard.phi_context_key_add(kid, pem)`. */
  publicKeyPem: string;
}

/** A registered key's id and public half. */
export interface ContextPublicKey {
  kid: string;
  publicKeyPem: string;
}

/** One key of a ring: its id, its private key and, optionally, its public key. */
export interface ContextKeyEntry {
  kid: string;
  privateKey: ContextPrivateKey;
  /** Needed only when `privateKey` is a non-extractable `CryptoKey`. */
  publicKeyPem?: string;
}

/**
 * Signing keys during a rotation: signs with the newest key (the last
 * entry) and lists every key's public half for registration.
 */
export interface ContextKeyRing extends ContextSigner {
  /** Every key id, oldest first; `kid` is the last. */
  readonly kids: readonly string[];
  /** The public keys to register (`syncContextKeys`), oldest first. */
  publicKeys(): Promise<ContextPublicKey[]>;
}

const ALG = 'EdDSA';
const encoder = new TextEncoder();

// The runtime's WebCrypto (Node.js 20 and every edge runtime have it global).
const webCrypto = (globalThis as unknown as { crypto: { randomUUID(): string } }).crypto;

function isCryptoKey(key: ContextPrivateKey): key is CryptoKey {
  return typeof key === 'object' && key !== null && 'algorithm' in key && 'type' in key;
}

// A string claim as phi_set_context accepts it: 1–255 bytes, no control
// characters. Refusals name the claim, never its value.
function checkText(name: string, value: unknown): void {
  if (typeof value !== 'string' || value.length === 0 || encoder.encode(value).length > 255
      || /[\u0000-\u001f\u007f]/.test(value)) {
    throw new TypeError(`context claim "${name}" must be a string of 1 to 255 bytes without control characters`);
  }
}

function checkClaims(claims: ContextClaims): void {
  if (typeof claims !== 'object' || claims === null) throw new TypeError('context claims must be an object');
  checkText('sub', claims.sub);
  checkText('tenant', claims.tenant);
  if (!Array.isArray(claims.roles) || claims.roles.length > 32) {
    throw new TypeError('context claim "roles" must be an array of at most 32 strings');
  }
  claims.roles.forEach((role) => checkText('roles', role));
  if (claims.purpose !== undefined) checkText('purpose', claims.purpose);
  if (claims.jti !== undefined) checkText('jti', claims.jti);
  if (claims.ttlSeconds !== undefined && !(Number.isInteger(claims.ttlSeconds) && claims.ttlSeconds > 0)) {
    throw new TypeError('ttlSeconds must be a positive integer');
  }
  if (claims.now !== undefined && !Number.isInteger(claims.now)) throw new TypeError('now must be an integer');
}

async function importPrivateKey(key: ContextPrivateKey, extractable: boolean): Promise<CryptoKey> {
  if (isCryptoKey(key)) return key;
  if (typeof key === 'string') return importPKCS8(key, ALG, { extractable });
  const imported = await importJWK(key, ALG, { extractable });
  if (imported instanceof Uint8Array || (imported as CryptoKey).type !== 'private') {
    throw new TypeError('the context signing key must be an Ed25519 private key');
  }
  return imported as CryptoKey;
}

/**
 * The SPKI PEM of the public half of an Ed25519 private key, derived from
 * the key itself. A non-extractable `CryptoKey` cannot be derived from:
 * keep its public PEM from `generateContextKeyPair` instead.
 */
export async function publicKeyPemOf(privateKey: ContextPrivateKey): Promise<string> {
  const key = await importPrivateKey(privateKey, true);
  if (!key.extractable) {
    throw new TypeError('the public key of a non-extractable CryptoKey cannot be derived; pass publicKeyPem');
  }
  const { kty, crv, x } = await exportJWK(key);
  if (kty !== 'OKP' || crv !== 'Ed25519' || !x) throw new TypeError('the context signing key must be Ed25519');
  const publicKey = await importJWK({ kty, crv, x }, ALG, { extractable: true });
  return exportSPKI(publicKey as CryptoKey);
}

/**
 * Generates an Ed25519 signing key. `kid` defaults to `ctx-<yyyymmdd>-<random>`,
 * unique enough to never be reused (phi_guard never accepts a kid twice).
 */
export async function generateContextKeyPair(options: { kid?: string } = {}): Promise<ContextKeyPair> {
  const kid = options.kid ?? `ctx-${new Date().toISOString().slice(0, 10).replace(/-/g, '')}-${webCrypto.randomUUID().slice(0, 8)}`;
  checkText('kid', kid);
  const { publicKey, privateKey } = await generateKeyPair(ALG, { crv: 'Ed25519', extractable: true });
  return {
    kid,
    privateKey,
    privateKeyPem: await exportPKCS8(privateKey),
    publicKeyPem: await exportSPKI(publicKey),
  };
}

/**
 * A signer for key `kid`. `sign(claims)` returns a token with header
 * `{"alg":"EdDSA","kid"}` and claims `sub`, `tenant`, `roles`, `purpose`
 * (when given), `jti` (a random UUID unless given), `iat` and
 * `exp = iat + ttlSeconds` (60 by default).
 */
export async function createContextSigner({ kid, privateKey }: { kid: string; privateKey: ContextPrivateKey }): Promise<ContextSigner> {
  checkText('kid', kid);
  const key = await importPrivateKey(privateKey, false);
  if (key.type !== 'private' || key.algorithm.name !== 'Ed25519') {
    throw new TypeError('the context signing key must be an Ed25519 private key');
  }

  async function sign(claims: ContextClaims): Promise<string> {
    checkClaims(claims);
    const now = claims.now ?? Math.floor(Date.now() / 1000);
    const payload: Record<string, unknown> = { tenant: claims.tenant, roles: [...claims.roles] };
    if (claims.purpose !== undefined) payload.purpose = claims.purpose;
    return new SignJWT(payload)
      .setProtectedHeader({ alg: ALG, kid })
      .setSubject(claims.sub)
      .setJti(claims.jti ?? webCrypto.randomUUID())
      .setIssuedAt(now)
      .setExpirationTime(now + (claims.ttlSeconds ?? DEFAULT_TTL_SECONDS))
      .sign(key);
  }

  return Object.freeze({ kid, sign });
}

/**
 * A key ring for rotation: sign with the newest key while the older ones
 * are still registered, then revoke them. Rotation: generate a key, append
 * it, `syncContextKeys` (registers it), deploy; later drop the old entry and
 * `syncContextKeys(db, ring, { revokeOthers: true })`.
 */
export async function createContextKeyRing(entries: readonly ContextKeyEntry[]): Promise<ContextKeyRing> {
  if (!Array.isArray(entries) || entries.length === 0) throw new TypeError('a key ring needs at least one key');
  const kids = entries.map((e) => e.kid);
  if (new Set(kids).size !== kids.length) throw new TypeError('the key ids of a key ring must be distinct');
  const newest = entries[entries.length - 1]!;
  const signer = await createContextSigner({ kid: newest.kid, privateKey: newest.privateKey });

  async function publicKeys(): Promise<ContextPublicKey[]> {
    return Promise.all(entries.map(async (e) => ({
      kid: e.kid,
      publicKeyPem: e.publicKeyPem ?? await publicKeyPemOf(e.privateKey),
    })));
  }

  return Object.freeze({ kid: signer.kid, kids: Object.freeze([...kids]), sign: signer.sign, publicKeys });
}
