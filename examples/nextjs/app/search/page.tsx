// app/search/page.tsx: patient search by MRN through the blind index
// (lib/clinic.ts searchByMrn): an exact match on an ordinary btree index of
// phi_blind_index values, without decrypting the table.
import { requireUser } from '@/lib/session';
import SearchForm from './SearchForm';

export default async function Search() {
  await requireUser('clinician');
  return (
    <>
      <h1>Find a patient</h1>
      <SearchForm />
    </>
  );
}
