// app/audit/AccessTable.tsx: a table of audit entries (who, what, when, why).
import type { AccessEntry } from '@/lib/clinic';

export default function AccessTable({ entries, testId }: { entries: AccessEntry[]; testId: string }) {
  return (
    <table data-testid={testId}>
      <thead>
        <tr><th>When (UTC)</th><th>What</th><th>User</th><th>Database role</th><th>Purpose</th><th>Key / table</th><th>Reason</th></tr>
      </thead>
      <tbody>
        {entries.map((e, i) => (
          <tr key={i} data-kind={e.kind}>
            <td className="mono">{e.ts.replace('T', ' ').slice(0, 19)}</td>
            <td>{e.kind}{e.count !== null ? ` ×${e.count}` : ''}</td>
            <td>{e.appUser ?? '—'}</td>
            <td>{e.dbUser ?? '—'}</td>
            <td>{e.purpose ?? '—'}</td>
            <td className="mono">{e.what ?? '—'}</td>
            <td>{e.reason ?? ''}</td>
          </tr>
        ))}
        {entries.length === 0 && <tr><td colSpan={7} className="muted">No entries.</td></tr>}
      </tbody>
    </table>
  );
}
