'use server';
// app/audit/actions.ts: one patient's access report, a Server Action (the
// patient is chosen in a POST body, not a URL).
import { patientAccessReport, type AccessEntry } from '@/lib/clinic';
import { currentUser } from '@/lib/session';

export interface ReportState {
  patientId: number | null;
  entries: AccessEntry[] | null;
  error: string | null;
}

export async function accessReport(_previous: ReportState, form: FormData): Promise<ReportState> {
  const user = await currentUser();
  if (!user || !user.roles.includes('auditor')) return { patientId: null, entries: null, error: 'Sign in as an auditor.' };
  const patientId = Number(form.get('patient'));
  if (!Number.isInteger(patientId) || patientId < 1) return { patientId: null, entries: null, error: 'Choose a patient.' };
  const entries = await patientAccessReport(user, patientId);
  if (entries === null) return { patientId, entries: null, error: 'No such patient in your clinic.' };
  return { patientId, entries, error: null };
}
