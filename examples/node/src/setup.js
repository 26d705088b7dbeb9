// src/setup.js: prepares a database for the example service. Run it once as
// a superuser (or the database owner holding phi_key_admin):
//
//   PGHOST=... PGDATABASE=clinic PGUSER=postgres node src/setup.js
//
// It generates the context signing key pair into keys/ (the private key
// stays with the application, the public key is registered in the
// database), creates the application's login role, a tenant-scoped
// "patients" table protected by phi_guard's row-level security, and sample
// rows for two clinics. The same function is used by the tests.

import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pg from 'pg';
import { generateContextKeyPair, phiEncrypt, sql } from 'phi-guard';

// Two clinics (tenants); each patient is assigned to one clinician.
export const SAMPLE_PATIENTS = [
  { id: 1, tenant: 'north', name: 'Ada Lovelace', assignedUser: 'alice', ssn: '123-45-6789' },
  { id: 2, tenant: 'north', name: 'Grace Hopper', assignedUser: 'bob', ssn: '234-56-7890' },
  { id: 3, tenant: 'north', name: 'Edsger Dijkstra', assignedUser: 'alice', ssn: '345-67-8901' },
  { id: 4, tenant: 'south', name: 'Barbara Liskov', assignedUser: 'carol', ssn: '456-78-9012' },
  { id: 5, tenant: 'south', name: 'Donald Knuth', assignedUser: 'carol', ssn: '567-89-0123' },
];

// The additional authenticated data bound to a patient's encrypted SSN: a
// ciphertext copied into another row does not decrypt there.
export const ssnAad = (id) => `patients.ssn:${id}`;

// setupDatabase(admin, options): admin is a connected pg.Client (superuser)
// on the target database. options:
//   appRole       login role of the service (created if missing)
//   kid           key id of the context signing key
//   publicKeyPem  its SPKI PEM ("PUBLIC KEY")
//   careTeam      when true, replace phi_guard's tenant-wide policy by a
//                 care-team policy: a clinician sees only the patients
//                 assigned to her (unless she opens break-glass).
export async function setupDatabase(admin, { appRole, kid, publicKeyPem, careTeam = false }) {
  const role = admin.escapeIdentifier(appRole);
  await admin.query('CREATE EXTENSION IF NOT EXISTS phi_guard');

  const { rowCount } = await admin.query('SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1', [appRole]);
  if (rowCount === 0) await admin.query(`CREATE ROLE ${role} LOGIN`);
  // phi_app: set context, readers, break-glass; phi_encryptor/phi_decryptor:
  // phi_encrypt/phi_decrypt for the SSN column.
  await admin.query(`GRANT phi_app, phi_encryptor, phi_decryptor TO ${role}`);

  await admin.query('SELECT phi_guard.phi_context_key_add($1, $2)', [kid, publicKeyPem]);
  await admin.query("SELECT phi_guard.phi_key_create('patients')");

  await admin.query(`
    CREATE TABLE public.patients (
      id            int4 PRIMARY KEY,
      tenant        text NOT NULL,
      name          text NOT NULL,
      assigned_user text,
      ssn           phi_guard.phi_ciphertext
    )`);
  // ENABLE + FORCE row level security with phi_guard's policies: only rows
  // whose tenant is the context's tenant, nothing without a context.
  await admin.query("SELECT phi_guard.phi_protect_table('public.patients', 'tenant')");
  if (careTeam) {
    await admin.query('DROP POLICY phi_guard_tenant_access ON public.patients');
    await admin.query(`
      CREATE POLICY care_team ON public.patients
        USING (assigned_user OPERATOR(pg_catalog.=) phi_guard.phi_user_id())`);
  }
  await admin.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON public.patients TO ${role}`);

  // A superuser bypasses row-level security, so the seed rows of both
  // tenants can be inserted here without a context.
  for (const p of SAMPLE_PATIENTS) {
    await admin.query(sql`
      INSERT INTO public.patients (id, tenant, name, assigned_user, ssn)
      VALUES (${p.id}, ${p.tenant}, ${p.name}, ${p.assignedUser}, ${phiEncrypt(p.ssn, 'patients', ssnAad(p.id))})`);
  }
}

// Command line: generate keys/context-ed25519.pem (+ .pub.pem) and set up
// the database named by the PG* environment variables.
async function main() {
  const here = dirname(fileURLToPath(import.meta.url));
  const keyDir = join(here, '..', 'keys');
  const kid = process.env.CONTEXT_KID ?? 'node-example-1';
  const appRole = process.env.APP_ROLE ?? 'clinic_app';
  const careTeam = !process.argv.includes('--tenant-wide');

  const { privateKeyPem, publicKeyPem } = await generateContextKeyPair({ kid });
  await mkdir(keyDir, { recursive: true, mode: 0o700 });
  await writeFile(join(keyDir, 'context-ed25519.pem'), privateKeyPem, { mode: 0o600 });
  await writeFile(join(keyDir, 'context-ed25519.pub.pem'), publicKeyPem);

  const admin = new pg.Client();
  await admin.connect();
  try {
    await setupDatabase(admin, { appRole, kid, publicKeyPem, careTeam });
  } finally {
    await admin.end();
  }
  console.log(`set up: role ${appRole}, context key ${kid}, table public.patients` +
    (careTeam ? ' (care-team policy)' : ' (tenant-wide policy)'));
  console.log(`private key: ${join(keyDir, 'context-ed25519.pem')}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err) => {
    console.error(`setup failed: ${err.message}`);
    process.exit(1);
  });
}
