'use client';
// app/audit/ReportForm.tsx: choose a patient (by id: auditors read no PHI)
// and show who saw that patient's PHI and what the audit log ties to the row.
import { useActionState } from 'react';
import { accessReport, type ReportState } from './actions';
import AccessTable from './AccessTable';
import DisclosureTable from './DisclosureTable';

const INITIAL: ReportState = { patientId: null, report: null, error: null };

export default function ReportForm({ patientIds }: { patientIds: number[] }) {
  const [state, action, pending] = useActionState(accessReport, INITIAL);
  return (
    <>
      <form className="card" action={action}>
        <label htmlFor="patient">Patient</label>
        <select id="patient" name="patient" defaultValue={patientIds[0]}>
          {patientIds.map((id) => <option key={id} value={id}>Patient #{id}</option>)}
        </select>
        <button type="submit" disabled={pending}>Show who saw this patient&apos;s PHI</button>
      </form>
      {state.error && <p className="banner error" role="alert">{state.error}</p>}
      {state.report && (
        <>
          <h2>Who saw patient #{state.patientId}&apos;s PHI</h2>
          <p className="muted">Every read of the patient&apos;s name, date of birth, SSN or MRN, oldest first.</p>
          <DisclosureTable disclosures={state.report.disclosures} />
          <h2>Access report for patient #{state.patientId}</h2>
          <p className="muted">The row&apos;s creation and changes, and its reads per statement and key.</p>
          <AccessTable entries={state.report.entries} testId="access-report" />
        </>
      )}
    </>
  );
}
