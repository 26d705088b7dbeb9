// app/api/signout/route.ts: POST sign-out: the session cookie is deleted.
import { cookies } from 'next/headers';
import { sameOrigin, seeOther, textResponse } from '@/lib/http';
import { SESSION_COOKIE, SESSION_COOKIE_OPTIONS } from '@/lib/session';

export const dynamic = 'force-dynamic';

export async function POST(request: Request): Promise<Response> {
  if (!sameOrigin(request)) return textResponse(403, 'cross-site request refused');
  (await cookies()).set(SESSION_COOKIE, '', { ...SESSION_COOKIE_OPTIONS, maxAge: 0 });
  return seeOther('/signin');
}
