// test/drizzle.test.js: the Drizzle column type and expressions, with
// Drizzle's node-postgres driver on withPhiContext's connection.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { eq, sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import { bigint, integer, pgTable, text } from 'drizzle-orm/pg-core';
import { AccessDeniedError, withPhiContext } from '../dist/index.js';
import {
  blindIndexEquals, phiBlindIndex, phiCiphertext, phiDecrypt, phiDecryptMasked, phiEncrypt, phiMask,
} from '../dist/drizzle.js';
import { claims, freshDatabase, rejectsAs } from './support.js';

const patients = pgTable('patients', {
  id: integer('id').primaryKey(),
  tenant: text('tenant').notNull(),
  ssn: phiCiphertext('ssn'),
  mrnBidx: bigint('mrn_bidx', { mode: 'bigint' }),
});
const ssnAad = sql`'patients.ssn:' || ${patients.id}`;

let env;
before(async () => {
  env = await freshDatabase('drizzle');
  await env.admin.query(`
    SELECT phi_guard.phi_key_create('ssn_key'), phi_guard.phi_key_create('mrn_index');
    SELECT phi_guard.phi_key_access('ssn_key', 'patient.read', 'billing.read');
    SELECT phi_guard.phi_mask_bind('ssn_key', 'ssn');
    SELECT phi_guard.phi_permission_grant('billing', 'billing.read');
    CREATE TABLE public.patients (id int4 PRIMARY KEY, tenant text NOT NULL,
                                  ssn phi_guard.phi_ciphertext, mrn_bidx int8);
    CREATE INDEX patients_mrn_bidx ON public.patients (mrn_bidx);
    SELECT phi_guard.phi_protect_table('public.patients', 'tenant');
    GRANT SELECT, INSERT ON public.patients TO ${env.appRole};`);
});
after(async () => { await env?.close(); });

const as = (roles, tenant, fn) =>
  withPhiContext(env.pool, { signer: env.signer, claims: claims('alice', tenant, roles) }, (client) => fn(drizzle(client)));

test('phiCiphertext is a phi_guard.phi_ciphertext column', () => {
  assert.equal(patients.ssn.getSQLType(), 'phi_guard.phi_ciphertext');
});

test('insert with phiEncrypt / phiBlindIndex, select with phiDecrypt', async () => {
  await as(['clinician'], 'north', (db) => db.insert(patients).values(
    Array.from({ length: 200 }, (_, i) => ({
      id: i + 1, tenant: 'north',
      ssn: phiEncrypt(`555-01-${String(i + 1).padStart(4, '0')}`, 'ssn_key', `patients.ssn:${i + 1}`),
      mrnBidx: phiBlindIndex(`MRN-${i + 1}`, 'mrn_index'),
    }))));
  const rows = await as(['clinician'], 'north', (db) =>
    db.select({ id: patients.id, ssn: phiDecrypt(patients.ssn, ssnAad), stored: patients.ssn })
      .from(patients).where(eq(patients.id, 12)));
  assert.equal(rows.length, 1);
  assert.equal(rows[0].ssn, '555-01-0012');
  assert.match(rows[0].stored, /^phi1:/);
});

test('blindIndexEquals: the lookup finds the row, through the index', async () => {
  const where = blindIndexEquals(patients.mrnBidx, 'MRN-77', 'mrn_index');
  const rows = await as(['clinician'], 'north', (db) =>
    db.select({ id: patients.id, ssn: phiDecrypt(patients.ssn, ssnAad) }).from(patients).where(where));
  assert.deepEqual(rows, [{ id: 77, ssn: '555-01-0077' }]);
  const query = drizzle(env.pool).select({ id: patients.id }).from(patients).where(where).toSQL();
  assert.equal(query.sql,
    'select "id" from "patients" where "patients"."mrn_bidx" OPERATOR(pg_catalog.=) phi_guard.phi_blind_index($1::text, $2::text)');
  assert.deepEqual(query.params, ['MRN-77', 'mrn_index']);
  await env.admin.query('ANALYZE public.patients');
  const plan = await as(['clinician'], 'north', async (db) => {
    await db.execute(sql`SET LOCAL enable_seqscan = off`);
    const r = await db.execute(sql`EXPLAIN (FORMAT JSON) ${drizzle(env.pool).select({ id: patients.id }).from(patients).where(where)}`);
    return JSON.stringify(r.rows[0]['QUERY PLAN']);
  });
  assert.match(plan, /"Index Name":"patients_mrn_bidx"/);
});

test('billing reads masks through phiDecryptMasked and is refused phiDecrypt', async () => {
  const masked = await as(['billing'], 'north', (db) =>
    db.select({ v: phiDecryptMasked(patients.ssn, ssnAad, 'ssn') }).from(patients).where(eq(patients.id, 3)));
  assert.deepEqual(masked, [{ v: '***-**-0003' }]);
  await rejectsAs(as(['billing'], 'north', (db) =>
    db.select({ v: phiDecrypt(patients.ssn, ssnAad) }).from(patients).where(eq(patients.id, 3))), AccessDeniedError);
  const m = await as(['billing'], 'north', (db) => db.execute(sql`SELECT ${phiMask('jane@example.org', 'email')} AS m`));
  assert.notEqual(m.rows[0].m, 'jane@example.org');
});

test('another tenant sees none of it', async () => {
  const rows = await as(['clinician'], 'south', (db) => db.select({ id: patients.id }).from(patients));
  assert.deepEqual(rows, []);
});
