// app/audit/page.tsx: the privacy officer's page — is the audit chain
// intact (phi_audit_verify recomputes every hash), who read PHI or used
// emergency access in the clinic, and, for one patient of the clinic, who
// saw that patient's PHI and the row's access report. Runs on the auditors'
// own database role (phi_auditor), under the auditor's signed context.
//
// The patient's report (lib/clinic.ts patientReport, through ReportForm's
// Server Action) is phi_disclosures of each protected column's row
// reference — the aad 'patients.<column>:<id>' the app binds every value
// to — listing each read with its user, database role, purpose, request id
// (the context's jti) and key; then phi_access_report of the row. The page
// shows patient ids, names of keys and columns and who-fields, never a value.
import { auditOverview } from '@/lib/clinic';
import { requireUser } from '@/lib/session';
import AccessTable from './AccessTable';
import ReportForm from './ReportForm';

export default async function Audit() {
  const user = await requireUser('auditor');
  const { chain, patientIds, recent } = await auditOverview(user);
  return (
    <>
      <h1>Audit — clinic {user.clinic}</h1>
      {chain.ok ? (
        <p className="banner ok" role="status" data-testid="chain-status">
          Audit chain verified: {chain.blocks} sealed blocks, {chain.entries} entries, every hash recomputed.
        </p>
      ) : (
        <p className="banner error" role="alert" data-testid="chain-status">
          Audit chain BROKEN at block {chain.firstBadBlock ?? '?'}: {chain.problem}
        </p>
      )}
      <h2>Who read PHI or used emergency access</h2>
      <p className="muted">Newest first. Entries reach the log within the audit worker&apos;s seal interval.</p>
      <AccessTable entries={recent} testId="recent-access" />
      <h2>One patient</h2>
      <ReportForm patientIds={patientIds} />
    </>
  );
}
