'use server';
// app/audit/actions.ts: one patient's report — who saw the patient's PHI and
// what the log ties to the row — a Server Action (the patient is chosen in a
// POST body, not a URL).
import { patientReport, type PatientReport } from '@/lib/clinic';
import { currentUser } from '@/lib/session';

export interface ReportState {
  patientId: number | null;
  report: PatientReport | null;
  error: string | null;
}

export async function accessReport(_previous: ReportState, form: FormData): Promise<ReportState> {
  const user = await currentUser();
  if (!user || !user.roles.includes('auditor')) return { patientId: null, report: null, error: 'Sign in as an auditor.' };
  const patientId = Number(form.get('patient'));
  if (!Number.isInteger(patientId) || patientId < 1) return { patientId: null, report: null, error: 'Choose a patient.' };
  const report = await patientReport(user, patientId);
  if (report === null) return { patientId, report: null, error: 'No such patient in your clinic.' };
  return { patientId, report, error: null };
}
