// lib/session.ts: the sign-in session, an encrypted cookie.
//
// The cookie holds a JWE (dir + A256GCM, key SESSION_SECRET) of {sub, iat,
// exp}: the browser can neither read nor forge it, and a cookie that does
// not decrypt, has expired or names an unknown user is no session at all.
// It is __Host- prefixed, HttpOnly, Secure and SameSite=Strict, so scripts
// cannot read it, it never travels in clear or with a cross-site request,
// and no subdomain can set it. Who the user is (clinic, roles) is looked up
// on the server, never taken from the cookie.
import 'server-only';
import { EncryptJWT, jwtDecrypt } from 'jose';
import { cookies } from 'next/headers';
import { redirect } from 'next/navigation';
import { sessionKey } from './config';
import { userById, type Role, type User } from './users';

export const SESSION_COOKIE = '__Host-phi_session';
const SESSION_SECONDS = 8 * 3600;

/** The Set-Cookie attributes of the session cookie. */
export const SESSION_COOKIE_OPTIONS = {
  httpOnly: true,
  secure: true,
  sameSite: 'strict',
  path: '/',
} as const;

/** A new session cookie value for `user`. */
export async function newSessionValue(user: User): Promise<{ value: string; maxAge: number }> {
  const value = await new EncryptJWT({})
    .setProtectedHeader({ alg: 'dir', enc: 'A256GCM' })
    .setSubject(user.id)
    .setIssuedAt()
    .setExpirationTime(`${SESSION_SECONDS}s`)
    .encrypt(sessionKey());
  return { value, maxAge: SESSION_SECONDS };
}

/** The user of a session cookie value, or null when it is missing, forged or expired. */
export async function userOfSession(value: string | undefined): Promise<User | null> {
  if (!value) return null;
  try {
    const { payload } = await jwtDecrypt(value, sessionKey(), {
      keyManagementAlgorithms: ['dir'],
      contentEncryptionAlgorithms: ['A256GCM'],
      requiredClaims: ['sub', 'exp', 'iat'],
    });
    return typeof payload.sub === 'string' ? userById(payload.sub) : null;
  } catch {
    return null;
  }
}

/** The signed-in user of this request, or null. */
export async function currentUser(): Promise<User | null> {
  return userOfSession((await cookies()).get(SESSION_COOKIE)?.value);
}

/**
 * The signed-in user, for pages: sends a visitor without a valid session to
 * the sign-in page. With `role`, a user without it gets the forbidden page.
 */
export async function requireUser(role?: Role): Promise<User> {
  const user = await currentUser();
  if (!user) redirect('/signin');
  if (role && !user.roles.includes(role)) redirect('/forbidden');
  return user;
}
