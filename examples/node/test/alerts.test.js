// test/alerts.test.js: src/alerts.js prints the alerts phi_guard raises
// (SPEC §8): an opened break-glass and repeated refusals through the
// service's pool reach a listener on its own connection, one line each,
// with who and where and without the break-glass reason.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { withPhiContext } from 'phi-guard';
import { formatAlert, printAlerts } from '../src/alerts.js';
import { claimsOf, freshDatabase, rejectsWith } from './support.js';

let env;
let listener;
let sub;
const lines = [];
before(async () => {
  env = await freshDatabase('alerts');
  listener = new pg.Client({ database: env.database });
  await listener.connect();
  sub = await printAlerts(listener, (line) => lines.push(line));
});
after(async () => {
  await sub?.stop();
  await listener?.end();
  await env?.close();
});

const REASON = 'patient unconscious in the emergency room';
const as = async (user, fn) => withPhiContext(env.pool, await env.signer.sign(claimsOf(user)), fn);

// seals (the worker would within a second) and waits for a line matching re
async function lineMatching(re, seconds = 20) {
  await env.admin.query('SELECT phi_guard.phi_audit_seal()');
  for (let i = 0; i < seconds * 10; i++) {
    const found = lines.find((l) => re.test(l));
    if (found) return found;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`no alert line matching ${re} (got: ${lines.join(' | ')})`);
}

test('formatAlert writes when, what, who, where and the detail', () => {
  assert.equal(
    formatAlert({ kind: 'off_hours', ts: '2026-01-01T02:00:00.000000Z', db_user: 'app', app_user: 'alice',
      tenant: 'north', detail: { key: 'ssn' } }),
    '2026-01-01T02:00:00.000000Z off_hours by app/alice tenant=north {"key":"ssn"}');
  assert.equal(
    formatAlert({ kind: 'safeguard_changed', ts: 't', db_user: 'admin', app_user: null, tenant: null, detail: {} }),
    't safeguard_changed by admin {}');
});

test('an opened break-glass is printed, without its reason', async () => {
  await as('alice', (db) => db.query('SELECT phi_guard.phi_break_glass($1, 15)', [REASON]));
  const line = await lineMatching(/ break_glass_open by /);
  assert.match(line, new RegExp(`break_glass_open by ${env.appRole}/alice tenant=north`));
  assert.match(line, /"minutes":15/);
  assert.ok(!line.includes(REASON), 'the free-text reason stays in the audit log');
});

test('more than 5 refusals within 5 minutes are printed once', async () => {
  for (let i = 0; i < 6; i++) {
    await rejectsWith(as('dave', (db) => db.query('SELECT phi_guard.phi_break_glass($1, 15)', [REASON])), '42501');
  }
  const line = await lineMatching(/ repeated_denials by /);
  assert.match(line, new RegExp(`repeated_denials by ${env.appRole}/dave tenant=north`));
  assert.match(line, /"denials":6/);
  assert.equal(lines.filter((l) => l.includes(' repeated_denials ')).length, 1);
});
