// test/tenant.test.js: tenant isolation by phi_guard's default policies
// (phi_protect_table: every context of a tenant sees that tenant's rows).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { phiEncrypt, sql, withPhiContext } from 'phi-guard';
import { createApp } from '../src/app.js';
import { ssnAad } from '../src/setup.js';
import { claimsOf, freshDatabase, rejectsWith, visibleIds } from './support.js';

let env;
before(async () => { env = await freshDatabase('tenant'); });
after(async () => { await env?.close(); });

const as = async (user, fn, overrides) =>
  withPhiContext(env.pool, await env.signer.sign(claimsOf(user, overrides)), fn);

test("tenant north's context sees only north's rows, south's only south's", async () => {
  assert.deepEqual(await as('alice', visibleIds), [1, 2, 3]);
  assert.deepEqual(await as('dave', visibleIds), [1, 2, 3]);
  assert.deepEqual(await as('carol', visibleIds), [4, 5]);
  // a WHERE clause naming the other tenant does not get around it
  const { rows } = await as('alice', (db) =>
    db.query("SELECT count(*)::int AS n FROM public.patients WHERE tenant = 'south'"));
  assert.equal(rows[0].n, 0);
});

test('the readers return the verified claims', async () => {
  const { rows } = await as('alice', (db) => db.query(`
    SELECT phi_guard.phi_user_id() AS user, phi_guard.phi_tenant_id() AS tenant,
           phi_guard.phi_roles() AS roles, phi_guard.phi_purpose() AS purpose,
           phi_guard.phi_has_role('clinician') AS clinician,
           phi_guard.phi_has_role('billing') AS billing,
           phi_guard.phi_has_permission('patient.read') AS can_read`));
  assert.deepEqual(rows[0], {
    user: 'alice', tenant: 'north', roles: ['clinician'], purpose: 'treatment',
    clinician: true, billing: false, can_read: true,
  });
});

test('without a context: no rows, NULL readers, and INSERT is refused', async () => {
  const { rows } = await env.pool.query(`
    SELECT (SELECT count(*)::int FROM public.patients) AS n,
           phi_guard.phi_tenant_id() AS tenant, phi_guard.phi_user_id() AS user,
           phi_guard.phi_has_permission('patient.read') AS can_read`);
  assert.deepEqual(rows[0], { n: 0, tenant: null, user: null, can_read: false });
  await rejectsWith(
    env.pool.query("INSERT INTO public.patients (id, tenant, name) VALUES (90, 'north', 'Nobody')"),
    '42501', /row-level security/);
});

test("inserting a row for another tenant is refused, for one's own tenant accepted", async () => {
  await rejectsWith(as('alice', (db) => db.query(
    "INSERT INTO public.patients (id, tenant, name) VALUES (20, 'south', 'Mallory')")),
  '42501', /new row violates row-level security policy/);

  await as('alice', (db) => db.query(sql`
    INSERT INTO public.patients (id, tenant, name, assigned_user, ssn)
    VALUES (21, 'north', 'Alan Turing', 'alice', ${phiEncrypt('678-90-1234', 'patients', ssnAad(21))})`));
  assert.deepEqual(await as('alice', visibleIds), [1, 2, 3, 21]);
  assert.deepEqual(await as('carol', visibleIds), [4, 5]);
  const { rows } = await env.admin.query('SELECT tenant FROM public.patients WHERE id IN (20, 21) ORDER BY id');
  assert.deepEqual(rows, [{ tenant: 'north' }]);
});

test("another tenant's rows can be neither updated nor deleted, nor a row moved there", async () => {
  const upd = await as('alice', (db) => db.query("UPDATE public.patients SET name = 'x' WHERE id = 4"));
  assert.equal(upd.rowCount, 0);
  const del = await as('alice', (db) => db.query('DELETE FROM public.patients WHERE id = 5'));
  assert.equal(del.rowCount, 0);
  await rejectsWith(as('alice', (db) => db.query("UPDATE public.patients SET tenant = 'south' WHERE id = 1")),
    '42501', /row-level security/);
  const { rows } = await env.admin.query('SELECT id, tenant, name FROM public.patients WHERE id IN (1, 4, 5) ORDER BY id');
  assert.deepEqual(rows, [
    { id: 1, tenant: 'north', name: 'Ada Lovelace' },
    { id: 4, tenant: 'south', name: 'Barbara Liskov' },
    { id: 5, tenant: 'south', name: 'Donald Knuth' },
  ]);
});

test('the SSN decrypts for the tenant that owns the row', async () => {
  const { rows } = await as('alice', (db) => db.query(
    'SELECT phi_guard.phi_decrypt(ssn, $1) AS ssn FROM public.patients WHERE id = 1', [ssnAad(1)]));
  assert.deepEqual(rows, [{ ssn: '123-45-6789' }]);
});

test('through the service, billing sees its tenant\'s names but no SSN', async () => {
  const server = createApp({ pool: env.pool, signer: env.signer, log: { error() {} } });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const get = async (user) => {
      const res = await fetch(`http://127.0.0.1:${server.address().port}/patients`, { headers: { 'x-user': user } });
      assert.equal(res.status, 200);
      return (await res.json()).patients;
    };
    const dave = await get('dave');
    assert.deepEqual(dave.map((p) => p.id), await as('alice', visibleIds)); // north's rows
    assert.ok(dave.length >= 3 && dave.every((p) => p.ssn === null), 'no SSN without patient.read');
    assert.equal(dave[0].name, 'Ada Lovelace');
    const carol = await get('carol');
    assert.deepEqual(carol.map((p) => [p.id, p.ssn]), [[4, '456-78-9012'], [5, '567-89-0123']]);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
});
