// app/break-glass/page.tsx: the emergency access form. Posts to
// /api/break-glass; the reason is required (here, in the route handler and,
// for its length, by phi_break_glass itself) and goes into the audit log.
import { requireUser } from '@/lib/session';

const REFUSALS: Record<string, string> = {
  reason: 'A reason is required for emergency access.',
  checked: 'Refused by the database: the reason must be at least 10 characters and the duration 1 to 60 minutes.',
  minutes: 'The duration must be a whole number of minutes.',
  role: 'Your role may not open emergency access.',
};

export default async function BreakGlass({ searchParams }: { searchParams: Promise<{ refused?: string }> }) {
  await requireUser('clinician');
  const { refused } = await searchParams;
  const message = refused ? REFUSALS[refused] : undefined;
  return (
    <>
      <h1>Emergency access (break-glass)</h1>
      <p>
        Opens every patient of your clinic to you for a limited time. Use it only when a patient needs care and is not
        on your list. Opening, each read and ending are recorded with your reason.
      </p>
      {message && <p className="banner error" role="alert" data-testid="refused">{message}</p>}
      <form className="card" action="/api/break-glass" method="post">
        <label htmlFor="reason">Reason</label>
        <textarea id="reason" name="reason" required minLength={10} maxLength={500} />
        <label htmlFor="minutes">Minutes</label>
        <input id="minutes" name="minutes" type="number" min={1} max={60} defaultValue={15} required />
        <button type="submit">Open emergency access</button>
      </form>
    </>
  );
}
