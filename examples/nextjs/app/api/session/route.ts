// app/api/session/route.ts: POST sign-in (the form of /signin). Sets the
// encrypted session cookie and sends the user to the home page; a wrong
// name or password goes back to the form, which says only that.
import { cookies } from 'next/headers';
import { NO_STORE, sameOrigin, seeOther, textResponse } from '@/lib/http';
import { SESSION_COOKIE, SESSION_COOKIE_OPTIONS, newSessionValue } from '@/lib/session';
import { authenticate } from '@/lib/users';

export const dynamic = 'force-dynamic';

export async function POST(request: Request): Promise<Response> {
  if (!sameOrigin(request)) return textResponse(403, 'cross-site request refused');
  const form = await request.formData().catch(() => null);
  const name = form?.get('username');
  const password = form?.get('password');
  const user = typeof name === 'string' && typeof password === 'string' ? await authenticate(name, password) : null;
  if (!user) return seeOther('/signin?failed=1');
  const { value, maxAge } = await newSessionValue(user);
  (await cookies()).set(SESSION_COOKIE, value, { ...SESSION_COOKIE_OPTIONS, maxAge });
  return seeOther('/');
}

export function GET(): Response {
  return new Response(null, { status: 405, headers: { Allow: 'POST', ...NO_STORE } });
}
