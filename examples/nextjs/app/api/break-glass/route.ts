// app/api/break-glass/route.ts: POST opens emergency access (the form of
// /break-glass). The reason is required here and checked again by the
// database (phi_break_glass: at least phi_guard.break_glass_min_reason
// characters, minutes within the ceiling, a role with the break_glass
// permission); a refusal sends the user back to the form with its cause
// (never the reason text).
import { AccessDeniedError } from 'phi-guard';
import { openBreakGlass } from '@/lib/clinic';
import { sameOrigin, seeOther, textResponse } from '@/lib/http';
import { currentUser } from '@/lib/session';

export const dynamic = 'force-dynamic';

export async function POST(request: Request): Promise<Response> {
  if (!sameOrigin(request)) return textResponse(403, 'cross-site request refused');
  const user = await currentUser();
  if (!user) return textResponse(401, 'sign in first');
  const form = await request.formData().catch(() => null);
  const reason = form?.get('reason');
  const minutes = Number(form?.get('minutes') ?? 15);
  if (typeof reason !== 'string' || reason.trim() === '') return seeOther('/break-glass?refused=reason');
  if (!Number.isInteger(minutes)) return seeOther('/break-glass?refused=minutes');
  try {
    await openBreakGlass(user, reason.trim(), minutes);
  } catch (err) {
    if (err instanceof AccessDeniedError) return seeOther('/break-glass?refused=role');
    // 22023: the database found the reason too short or the minutes out of range
    if ((err as { code?: string }).code === '22023') return seeOther('/break-glass?refused=checked');
    throw err;
  }
  return seeOther('/patients');
}
