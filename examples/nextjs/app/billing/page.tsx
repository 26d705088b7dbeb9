// app/billing/page.tsx: the billing view. Names, dates of birth, SSNs and
// MRNs come from phi_decrypt_masked: under a billing context (permission
// billing.read, the masked permission of the keys) the database returns
// only the keys' bound masks, so the clear values never leave it — not in
// this HTML, not in any payload.
import { billingView } from '@/lib/clinic';
import { requireUser } from '@/lib/session';

export default async function Billing() {
  const user = await requireUser('billing');
  const rows = await billingView(user);
  return (
    <>
      <h1>Billing</h1>
      <table data-testid="billing">
        <thead>
          <tr><th>#</th><th>Name</th><th>Date of birth</th><th>SSN</th><th>MRN</th><th>Balance</th></tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={r.id} data-patient={r.id}>
              <td>{r.id}</td>
              <td>{r.name}</td>
              <td className="mono">{r.dob}</td>
              <td className="mono">{r.ssn}</td>
              <td className="mono">{r.mrn}</td>
              <td className="mono">{r.balance}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}
