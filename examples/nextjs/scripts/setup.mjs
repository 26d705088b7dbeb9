// scripts/setup.mjs: creates the clinic database of the example, as a
// superuser, in the cluster named by the PG* environment variables (for
// `make demo`'s: PGHOST=/tmp/phi_guard_demo PGPORT=5499 PGUSER=postgres).
//
//   npm run setup                 # database clinic_web (CLINIC_DB to change it)
//
// It DROPS and recreates that database, creates the two login roles if they
// are missing, generates the context signing key pair (private key in
// keys/, mode 0600; public key registered in the database), and writes the
// server's settings to .env.local (mode 0600): database, key id and file, a
// fresh session secret. setupClinic() is also what the browser tests use.

import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pg from 'pg';
import { generateContextKeyPair, phiBlindIndex, phiEncrypt, sql } from 'phi-guard';

// Synthetic patients of two clinics, each assigned to one clinician.
export const PATIENTS = [
  { id: 1, clinic: 'north', clinician: 'alice', name: 'Ada Lovelace', dob: '1985-12-10', ssn: '123-45-6789', mrn: 'MRN-1001', balanceCents: 12000 },
  { id: 2, clinic: 'north', clinician: 'bob', name: 'Grace Hopper', dob: '1956-12-09', ssn: '234-56-7890', mrn: 'MRN-1002', balanceCents: 4550 },
  { id: 3, clinic: 'north', clinician: 'alice', name: 'Edsger Dijkstra', dob: '1970-05-11', ssn: '345-67-8901', mrn: 'MRN-1003', balanceCents: 0 },
  { id: 4, clinic: 'south', clinician: 'carol', name: 'Barbara Liskov', dob: '1979-11-07', ssn: '456-78-9012', mrn: 'MRN-2001', balanceCents: 30000 },
  { id: 5, clinic: 'south', clinician: 'carol', name: 'Donald Knuth', dob: '1968-01-10', ssn: '567-89-0123', mrn: 'MRN-2002', balanceCents: 999 },
];

// Encrypted columns: key name and the mask a billing context gets.
const PHI_COLUMNS = [
  ['name', 'patient_name', 'name'],
  ['dob', 'patient_dob', 'dob'],
  ['ssn', 'patient_ssn', 'ssn'],
  ['mrn', 'patient_mrn', null], // no mask kind fits an MRN: billing gets ****
];

// setupClinic(admin, { appRole, auditorRole, kid, publicKeyPem }): admin is
// a superuser pg.Client connected to an empty database.
export async function setupClinic(admin, { appRole, auditorRole, kid, publicKeyPem }) {
  const app = admin.escapeIdentifier(appRole);
  const auditor = admin.escapeIdentifier(auditorRole);
  await admin.query('CREATE EXTENSION IF NOT EXISTS phi_guard');
  for (const role of [appRole, auditorRole]) {
    const { rowCount } = await admin.query('SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1', [role]);
    if (rowCount === 0) await admin.query(`CREATE ROLE ${admin.escapeIdentifier(role)} LOGIN`);
  }
  // the application: set contexts, encrypt, decrypt (as its contexts allow);
  // the auditors: read the audit log and verify the chain, nothing else
  await admin.query(`GRANT phi_app, phi_encryptor, phi_decryptor TO ${app}`);
  await admin.query(`GRANT phi_auditor TO ${auditor}`);
  await admin.query('SELECT phi_guard.phi_context_key_add($1, $2)', [kid, publicKeyPem]);

  // Keys, and who may read them: clinicians (patient.read, built in) in
  // clear, billing (billing.read) only the bound mask, nobody else anything.
  for (const [, key, mask] of PHI_COLUMNS) {
    await admin.query('SELECT phi_guard.phi_key_create($1)', [key]);
    await admin.query("SELECT phi_guard.phi_key_access($1, 'patient.read', 'billing.read')", [key]);
    if (mask) await admin.query('SELECT phi_guard.phi_mask_bind($1, $2)', [key, mask]);
  }
  await admin.query("SELECT phi_guard.phi_key_create('mrn_index')");
  await admin.query("SELECT phi_guard.phi_permission_grant('billing', 'billing.read')");

  await admin.query(`
    CREATE TABLE public.patients (
      id            int4 PRIMARY KEY,
      clinic        text NOT NULL,
      clinician     text NOT NULL,
      name          phi_guard.phi_ciphertext NOT NULL,
      dob           phi_guard.phi_ciphertext NOT NULL,
      ssn           phi_guard.phi_ciphertext NOT NULL,
      mrn           phi_guard.phi_ciphertext NOT NULL,
      mrn_bidx      int8 NOT NULL,
      balance_cents int4 NOT NULL DEFAULT 0
    )`);
  await admin.query('CREATE INDEX patients_mrn_bidx ON public.patients (mrn_bidx)');
  await admin.query('CREATE INDEX patients_clinic ON public.patients (clinic)');
  // the clinic wall (restrictive) and break-glass; then, instead of
  // phi_guard's "whole clinic" policy: clinicians see their own patients,
  // billing and auditors the clinic's rows (billing masked, auditors no PHI
  // column at all: they may select only id and clinic)
  await admin.query("SELECT phi_guard.phi_protect_table('public.patients', 'clinic')");
  await admin.query('DROP POLICY phi_guard_tenant_access ON public.patients');
  await admin.query(`
    CREATE POLICY care_team ON public.patients FOR SELECT
      USING (clinician OPERATOR(pg_catalog.=) (SELECT phi_guard.phi_user_id()))`);
  await admin.query(`
    CREATE POLICY billing ON public.patients FOR SELECT
      USING ((SELECT phi_guard.phi_has_permission('billing.read')))`);
  await admin.query(`
    CREATE POLICY auditors ON public.patients FOR SELECT
      USING ((SELECT phi_guard.phi_has_permission('audit.read')))`);
  await admin.query(`GRANT SELECT ON public.patients TO ${app}`);
  await admin.query(`GRANT SELECT (id, clinic) ON public.patients TO ${auditor}`);
  await admin.query("SELECT phi_guard.phi_audit_enable('public.patients')");

  // seed rows, as the superuser (row security does not apply to it); each
  // value bound to its row with the aad 'patients.<column>:<id>' that
  // lib/clinic.ts decrypts with and the auditor page asks phi_disclosures for
  for (const p of PATIENTS) {
    const enc = (column, key) => phiEncrypt(p[column], key, `patients.${column}:${p.id}`);
    await admin.query(sql`
      INSERT INTO public.patients (id, clinic, clinician, name, dob, ssn, mrn, mrn_bidx, balance_cents)
      VALUES (${p.id}, ${p.clinic}, ${p.clinician}, ${enc('name', 'patient_name')}, ${enc('dob', 'patient_dob')},
              ${enc('ssn', 'patient_ssn')}, ${enc('mrn', 'patient_mrn')}, ${phiBlindIndex(p.mrn, 'mrn_index')},
              ${p.balanceCents})`);
  }
}

async function main() {
  const here = join(dirname(fileURLToPath(import.meta.url)), '..');
  const database = process.env.CLINIC_DB ?? 'clinic_web';
  const appRole = process.env.PHI_APP_DB_USER ?? 'clinic_web_app';
  const auditorRole = process.env.PHI_AUDITOR_DB_USER ?? 'clinic_web_auditor';
  const keys = await generateContextKeyPair({ kid: process.env.CONTEXT_KID });

  const maint = new pg.Client();
  await maint.connect();
  try {
    await maint.query(`DROP DATABASE IF EXISTS ${maint.escapeIdentifier(database)} WITH (FORCE)`);
    await maint.query(`CREATE DATABASE ${maint.escapeIdentifier(database)}`);
  } finally {
    await maint.end();
  }
  const admin = new pg.Client({ database });
  await admin.connect();
  try {
    await setupClinic(admin, { appRole, auditorRole, kid: keys.kid, publicKeyPem: keys.publicKeyPem });
  } finally {
    await admin.end();
  }

  const keyDir = join(here, 'keys');
  const keyFile = join(keyDir, 'context-ed25519.pem');
  await mkdir(keyDir, { recursive: true, mode: 0o700 });
  await writeFile(keyFile, keys.privateKeyPem, { mode: 0o600 });
  const settings = {
    PGHOST: process.env.PGHOST ?? '',
    PGPORT: process.env.PGPORT ?? '5432',
    PGDATABASE: database,
    PHI_APP_DB_USER: appRole,
    PHI_AUDITOR_DB_USER: auditorRole,
    CONTEXT_KID: keys.kid,
    CONTEXT_PRIVATE_KEY_FILE: keyFile,
    SESSION_SECRET: randomBytes(32).toString('base64url'),
  };
  await writeFile(join(here, '.env.local'),
    `# written by npm run setup; secrets: keep it out of version control\n${
      Object.entries(settings).map(([k, v]) => `${k}=${v}`).join('\n')}\n`, { mode: 0o600 });
  console.log(`database ${database} ready: roles ${appRole} and ${auditorRole}, context key ${keys.kid}`);
  console.log('settings written to .env.local; now: npm run build && npm start');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err) => {
    console.error(`setup failed: ${err.message}`);
    process.exit(1);
  });
}
