// app/api/patients/route.ts: GET the signed-in clinician's patients as JSON
// (what a mobile client would call). Without a valid session: 401, and no
// query reaches the database.
import { clinicianView } from '@/lib/clinic';
import { NO_STORE } from '@/lib/http';
import { currentUser } from '@/lib/session';

export const dynamic = 'force-dynamic';

export async function GET(): Promise<Response> {
  const user = await currentUser();
  if (!user) return Response.json({ error: 'not signed in' }, { status: 401, headers: NO_STORE });
  if (!user.roles.includes('clinician')) return Response.json({ error: 'clinicians only' }, { status: 403, headers: NO_STORE });
  const { patients } = await clinicianView(user);
  return Response.json({ patients }, { headers: NO_STORE });
}
