// app/api/break-glass/end/route.ts: POST ends the user's emergency access.
import { endBreakGlass } from '@/lib/clinic';
import { sameOrigin, seeOther, textResponse } from '@/lib/http';
import { currentUser } from '@/lib/session';

export const dynamic = 'force-dynamic';

export async function POST(request: Request): Promise<Response> {
  if (!sameOrigin(request)) return textResponse(403, 'cross-site request refused');
  const user = await currentUser();
  if (!user) return textResponse(401, 'sign in first');
  await endBreakGlass(user);
  return seeOther('/patients');
}
