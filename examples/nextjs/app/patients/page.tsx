// app/patients/page.tsx: the clinician view. The database decrypts the
// values (phi_decrypt) because the signed context carries the clinician
// role; its care-team policy returns only the clinician's own patients,
// or the whole clinic while her break-glass grant is open.
import { clinicianView } from '@/lib/clinic';
import { requireUser } from '@/lib/session';

export default async function Patients() {
  const user = await requireUser('clinician');
  const { patients, breakGlass } = await clinicianView(user);
  return (
    <>
      <h1>My patients</h1>
      {breakGlass && (
        <div className="banner warn" role="status" data-testid="break-glass-active">
          Emergency access is open: you see every patient of clinic {user.clinic}. Every read is recorded.
          <form action="/api/break-glass/end" method="post">
            <button type="submit">End emergency access</button>
          </form>
        </div>
      )}
      <table data-testid="patients">
        <thead>
          <tr><th>#</th><th>Name</th><th>Date of birth</th><th>SSN</th><th>MRN</th><th></th></tr>
        </thead>
        <tbody>
          {patients.map((p) => (
            <tr key={p.id} data-patient={p.id}>
              <td>{p.id}</td>
              <td>{p.name}</td>
              <td className="mono">{p.dob}</td>
              <td className="mono">{p.ssn}</td>
              <td className="mono">{p.mrn}</td>
              <td>{p.ownPatient ? '' : <span className="tag">emergency access</span>}</td>
            </tr>
          ))}
          {patients.length === 0 && (
            <tr><td colSpan={6} className="muted">No patients are assigned to you.</td></tr>
          )}
        </tbody>
      </table>
    </>
  );
}
