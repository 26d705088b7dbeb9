// lib/config.ts: the server's settings, from the environment (`npm run
// setup` writes them to .env.local). A missing setting is an error at first
// use: the app fails closed rather than run without a key.
import 'server-only';
import { readFileSync } from 'node:fs';

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`setting ${name} is missing (run npm run setup, see README.md)`);
  return value;
}

let cachedSessionKey: Uint8Array | undefined;

/** The 32-byte key of the session cookie (SESSION_SECRET, base64url). */
export function sessionKey(): Uint8Array {
  if (!cachedSessionKey) {
    const key = Buffer.from(required('SESSION_SECRET'), 'base64url');
    if (key.length !== 32) throw new Error('SESSION_SECRET must be 32 bytes, base64url');
    cachedSessionKey = new Uint8Array(key);
  }
  return cachedSessionKey;
}

/** The context signing key: its kid and its PKCS#8 PEM (CONTEXT_KID, CONTEXT_PRIVATE_KEY_FILE). */
export function contextKey(): { kid: string; privateKeyPem: string } {
  return { kid: required('CONTEXT_KID'), privateKeyPem: readFileSync(required('CONTEXT_PRIVATE_KEY_FILE'), 'utf8') };
}

/** The database login roles: the application's and the auditors'. */
export function databaseRoles(): { app: string; auditor: string } {
  return { app: process.env.PHI_APP_DB_USER ?? 'clinic_web_app', auditor: process.env.PHI_AUDITOR_DB_USER ?? 'clinic_web_auditor' };
}
