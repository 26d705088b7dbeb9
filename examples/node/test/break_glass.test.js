// test/break_glass.test.js: a care-team policy instead of phi_guard's
// tenant-wide one, and break-glass to see beyond it in an emergency.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { withPhiContext } from 'phi-guard';
import { claimsOf, freshDatabase, rejectsWith, visibleIds } from './support.js';

let env;
// setupDatabase({careTeam: true}) dropped policy phi_guard_tenant_access and
// added care_team: assigned_user = phi_guard.phi_user_id().
before(async () => { env = await freshDatabase('break_glass', { careTeam: true }); });
after(async () => { await env?.close(); });

const REASON = 'patient unconscious in the emergency room';
const as = async (user, fn, overrides) =>
  withPhiContext(env.pool, await env.signer.sign(claimsOf(user, overrides)), fn);
const active = (db) => db.query('SELECT phi_guard.phi_break_glass_active() AS a').then((r) => r.rows[0].a);

test('the policies are phi_guard_tenant, phi_guard_break_glass and care_team', async () => {
  const { rows } = await env.admin.query(
    "SELECT policyname FROM pg_catalog.pg_policies WHERE tablename = 'patients' ORDER BY policyname");
  assert.deepEqual(rows.map((r) => r.policyname), ['care_team', 'phi_guard_break_glass', 'phi_guard_tenant']);
});

test('a clinician sees only the patients assigned to her', async () => {
  assert.deepEqual(await as('alice', visibleIds), [1, 3]);
  assert.deepEqual(await as('bob', visibleIds), [2]);
  assert.deepEqual(await as('carol', visibleIds), [4, 5]);
  assert.deepEqual(await as('dave', visibleIds), []);
  assert.equal(await as('alice', active), false);
});

test("a role without the break_glass permission ('billing') is refused", async () => {
  await rejectsWith(as('dave', (db) => db.query('SELECT phi_guard.phi_break_glass($1, 15)', [REASON])), '42501');
  assert.deepEqual(await as('dave', visibleIds), []);
});

test('break-glass needs a reason of at least 10 characters and bounded minutes', async () => {
  await assert.rejects(as('alice', (db) => db.query("SELECT phi_guard.phi_break_glass('urgent', 15)")),
    (err) => typeof err.code === 'string' && err.code.startsWith('22'));
  await assert.rejects(as('alice', (db) => db.query('SELECT phi_guard.phi_break_glass($1, 0)', [REASON])),
    (err) => typeof err.code === 'string' && err.code.startsWith('22'));
  await assert.rejects(as('alice', (db) => db.query('SELECT phi_guard.phi_break_glass($1, 100000)', [REASON])),
    (err) => typeof err.code === 'string' && err.code.startsWith('22'));
  assert.equal(await as('alice', active), false);
});

test('break-glass opens the whole tenant, not the other tenant, and ends', async () => {
  const { rows } = await as('alice', (db) => db.query(`
    SELECT phi_guard.phi_break_glass($1, 15) AS expires_at, pg_catalog.now() AS now`, [REASON]));
  const minutes = (rows[0].expires_at - rows[0].now) / 60000;
  assert.ok(minutes > 14 && minutes <= 15.5, `expires in 15 minutes (got ${minutes})`);

  // The grant is stored: a later transaction, on any connection, sees it.
  const other = env.newPool({ max: 1 });
  assert.deepEqual(await withPhiContext(other, await env.signer.sign(claimsOf('alice')), visibleIds), [1, 2, 3]);
  assert.equal(await as('alice', active), true);
  // only alice's grant, only in her tenant
  assert.deepEqual(await as('bob', visibleIds), [2]);
  assert.deepEqual(await as('alice', visibleIds, { tenant: 'south' }), []);
  assert.deepEqual(await as('carol', visibleIds), [4, 5]);
  // break-glass reads, it does not write
  const upd = await as('alice', (db) => db.query("UPDATE public.patients SET name = 'x' WHERE id = 2"));
  assert.equal(upd.rowCount, 0);

  const ended = await as('alice', (db) => db.query('SELECT phi_guard.phi_break_glass_end() AS e'));
  assert.equal(ended.rows[0].e, true);
  assert.deepEqual(await as('alice', visibleIds), [1, 3]);
  assert.equal(await as('alice', active), false);
  const again = await as('alice', (db) => db.query('SELECT phi_guard.phi_break_glass_end() AS e'));
  assert.equal(again.rows[0].e, false);
});

test('opening, using and ending are in the audit log with the context', async () => {
  // break_glass_use is an access entry, queued in shared memory for the
  // audit worker; phi_audit_seal() writes the queue out first.
  await env.admin.query('SELECT phi_guard.phi_audit_seal()');
  const { rows } = await env.admin.query(`
    SELECT record::jsonb AS r FROM phi_guard.audit_log
     WHERE record::jsonb->>'kind' LIKE 'break\\_glass\\_%' ORDER BY xid, id`);
  const kinds = rows.map((x) => x.r.kind);
  for (const kind of ['break_glass_open', 'break_glass_use', 'break_glass_end']) {
    assert.ok(kinds.includes(kind), `audit_log has ${kind} (has ${kinds.join(', ')})`);
  }
  assert.ok(kinds.indexOf('break_glass_open') < kinds.lastIndexOf('break_glass_end'));
  for (const { r } of rows) {
    assert.equal(r.app_user, 'alice');
    assert.equal(r.tenant, 'north');
  }
  const open = rows.find((x) => x.r.kind === 'break_glass_open').r;
  assert.equal(open.detail.reason, REASON);
  assert.equal(open.detail.minutes, 15);
  const use = rows.find((x) => x.r.kind === 'break_glass_use').r;
  assert.equal(use.table, 'public.patients');
  assert.equal(use.detail.grant, open.detail.grant);
});
