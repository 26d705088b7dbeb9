'use server';
// app/search/actions.ts: the search, a Server Action — the MRN travels in a
// POST body, never in a URL, and the answer only to the page that asked.
import { searchByMrn, type SearchHit } from '@/lib/clinic';
import { currentUser } from '@/lib/session';

export interface SearchState {
  hits: SearchHit[] | null;
  error: string | null;
}

export async function searchPatients(_previous: SearchState, form: FormData): Promise<SearchState> {
  const user = await currentUser();
  if (!user || !user.roles.includes('clinician')) return { hits: null, error: 'Sign in as a clinician to search.' };
  const mrn = form.get('mrn');
  if (typeof mrn !== 'string' || mrn.trim() === '' || mrn.length > 64) return { hits: null, error: 'Enter an MRN.' };
  return { hits: await searchByMrn(user, mrn), error: null };
}
