// app/audit/DisclosureTable.tsx: who saw a patient's protected values
// (phi_disclosures), one line per access: when, how (decrypt, or read for a
// mask), who, for what, in which request, with which key, of which column.
// No value: the log holds none.
import type { Disclosure } from '@/lib/clinic';

export default function DisclosureTable({ disclosures }: { disclosures: Disclosure[] }) {
  return (
    <table data-testid="disclosures">
      <thead>
        <tr><th>When (UTC)</th><th>What</th><th>User</th><th>Database role</th><th>Purpose</th><th>Request id</th><th>Key</th><th>Column</th></tr>
      </thead>
      <tbody>
        {disclosures.map((d, i) => (
          <tr key={i} data-kind={d.kind}>
            <td className="mono">{d.ts.replace('T', ' ').slice(0, 19)}</td>
            <td>{d.kind}</td>
            <td>{d.appUser ?? '—'}</td>
            <td>{d.dbUser}</td>
            <td>{d.purpose ?? '—'}</td>
            <td className="mono">{d.requestId ?? '—'}</td>
            <td className="mono">{d.key}</td>
            <td>{d.column}</td>
          </tr>
        ))}
        {disclosures.length === 0 && <tr><td colSpan={8} className="muted">Nobody has seen this patient&apos;s PHI.</td></tr>}
      </tbody>
    </table>
  );
}
