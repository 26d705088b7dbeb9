// lib/users.ts: the demo's user directory and password check.
//
// A stand-in for the identity provider a real deployment uses (OIDC, SAML):
// what matters to phi_guard is what comes after authentication — the user's
// id, clinic (the tenant) and roles, which the server signs into each
// request's context. The demo passwords are in README.md; only their scrypt
// hashes are here.
import 'server-only';
import { scrypt, timingSafeEqual } from 'node:crypto';

export type Role = 'clinician' | 'billing' | 'auditor';

export interface User {
  id: string;
  displayName: string;
  /** The clinic: phi_guard's tenant. */
  clinic: string;
  roles: Role[];
}

interface Account extends User {
  /** scrypt$N$r$p$salt$hash, base64url. */
  passwordHash: string;
}

const ACCOUNTS: readonly Account[] = [
  { id: 'alice', displayName: 'Dr. Alice Moreau', clinic: 'north', roles: ['clinician'],
    passwordHash: 'scrypt$16384$8$1$a2gktmyX53bf3u8xCpnpTg$6T7387YK7bz0f69HnNOIq8H4crUDAeaxqZQDidQoB-E' },
  { id: 'bob', displayName: 'Dr. Bob Lindqvist', clinic: 'north', roles: ['clinician'],
    passwordHash: 'scrypt$16384$8$1$79sIG4yQQftiW7RysXibEg$7f0EduxdqFhzvcFsfu2tylENCv1pOvHTlG4yqvho6nI' },
  { id: 'carol', displayName: 'Dr. Carol Osei', clinic: 'south', roles: ['clinician'],
    passwordHash: 'scrypt$16384$8$1$E0LrvIsHd6p7UY4cYbfj3Q$-lYCJSwq0gOCB7FFDiloskTKo_fwK6gC0AlgP3KT9Gc' },
  { id: 'dave', displayName: 'Dave Kim (billing)', clinic: 'north', roles: ['billing'],
    passwordHash: 'scrypt$16384$8$1$B76pADisdTQCYPHK-62cEw$u1olqE6DQWZCvDHm6hDGbftTcdxWXcWtBs6we-lGywM' },
  { id: 'erin', displayName: 'Erin Park (privacy officer)', clinic: 'north', roles: ['auditor'],
    passwordHash: 'scrypt$16384$8$1$eD_xb_PJz_HPf7_OZrnacw$NZula4RpobrLo2MKfJvMYfJGKW2_xt9gikcfZBXKsso' },
];

const BY_ID = new Map(ACCOUNTS.map((a) => [a.id, a]));

// A hash to compare against for unknown user names, so that a wrong name
// costs the same time as a wrong password.
const DECOY = ACCOUNTS[0]!.passwordHash;

function publicPart({ id, displayName, clinic, roles }: Account): User {
  return { id, displayName, clinic, roles: [...roles] };
}

function scryptHash(password: string, salt: Buffer, n: number, r: number, p: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, 32, { N: n, r, p, maxmem: 64 * 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

async function passwordMatches(password: string, stored: string): Promise<boolean> {
  const [scheme, n, r, p, salt, hash] = stored.split('$');
  if (scheme !== 'scrypt' || !salt || !hash) return false;
  const expected = Buffer.from(hash, 'base64url');
  const actual = await scryptHash(password, Buffer.from(salt, 'base64url'), Number(n), Number(r), Number(p));
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

/** The user whose name and password these are, or null. */
export async function authenticate(name: string, password: string): Promise<User | null> {
  const account = BY_ID.get(name);
  const ok = await passwordMatches(password.slice(0, 256), account?.passwordHash ?? DECOY);
  return ok && account ? publicPart(account) : null;
}

/** The user with this id (from a verified session), or null. */
export function userById(id: string): User | null {
  const account = BY_ID.get(id);
  return account ? publicPart(account) : null;
}
