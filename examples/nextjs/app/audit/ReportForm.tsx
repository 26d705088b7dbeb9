'use client';
// app/audit/ReportForm.tsx: choose a patient (by id: auditors read no PHI)
// and show what the audit log says about that patient's row.
import { useActionState } from 'react';
import { accessReport, type ReportState } from './actions';
import AccessTable from './AccessTable';

const INITIAL: ReportState = { patientId: null, entries: null, error: null };

export default function ReportForm({ patientIds }: { patientIds: number[] }) {
  const [state, action, pending] = useActionState(accessReport, INITIAL);
  return (
    <>
      <form className="card" action={action}>
        <label htmlFor="patient">Patient</label>
        <select id="patient" name="patient" defaultValue={patientIds[0]}>
          {patientIds.map((id) => <option key={id} value={id}>Patient #{id}</option>)}
        </select>
        <button type="submit" disabled={pending}>Show access report</button>
      </form>
      {state.error && <p className="banner error" role="alert">{state.error}</p>}
      {state.entries && (
        <>
          <h2>Access report for patient #{state.patientId}</h2>
          <AccessTable entries={state.entries} testId="access-report" />
        </>
      )}
    </>
  );
}
