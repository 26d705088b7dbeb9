'use client';
// app/search/SearchForm.tsx: the search form and its results. What this
// component receives is exactly what it shows: the matching patients the
// user's context may see.
import { useActionState } from 'react';
import { searchPatients, type SearchState } from './actions';

const INITIAL: SearchState = { hits: null, error: null };

export default function SearchForm() {
  const [state, action, pending] = useActionState(searchPatients, INITIAL);
  return (
    <>
      <form className="card" action={action}>
        <label htmlFor="mrn">Medical record number</label>
        <input id="mrn" name="mrn" autoComplete="off" placeholder="MRN-1001" required />
        <button type="submit" disabled={pending}>Search</button>
      </form>
      {state.error && <p className="banner error" role="alert">{state.error}</p>}
      {state.hits && (
        <table data-testid="search-results">
          <thead><tr><th>#</th><th>Name</th><th>Date of birth</th><th>MRN</th></tr></thead>
          <tbody>
            {state.hits.map((h) => (
              <tr key={h.id} data-patient={h.id}><td>{h.id}</td><td>{h.name}</td><td className="mono">{h.dob}</td><td className="mono">{h.mrn}</td></tr>
            ))}
            {state.hits.length === 0 && <tr><td colSpan={4} className="muted">No patient of yours has this MRN.</td></tr>}
          </tbody>
        </table>
      )}
    </>
  );
}
