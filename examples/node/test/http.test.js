// test/http.test.js: the service end to end, over HTTP on 127.0.0.1.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createApp } from '../src/app.js';
import { freshDatabase } from './support.js';

let env;
let server;
let base;
before(async () => {
  env = await freshDatabase('http', { careTeam: true });
  server = createApp({ pool: env.pool, signer: env.signer, log: { error() {} } });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${server.address().port}`;
});
after(async () => {
  if (server) await new Promise((resolve) => server.close(resolve));
  await env?.close();
});

async function call(method, path, user, body) {
  const headers = {};
  if (user) headers['x-user'] = user;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}
const ids = async (user) => {
  const r = await call('GET', '/patients', user);
  assert.equal(r.status, 200);
  return r.body.patients.map((p) => p.id);
};

test('the server listens on 127.0.0.1 only', () => {
  assert.equal(server.address().address, '127.0.0.1');
});

test('GET /me shows the context the database verified', async () => {
  const r = await call('GET', '/me', 'alice');
  assert.equal(r.status, 200);
  assert.deepEqual(r.body, { user: 'alice', tenant: 'north', roles: ['clinician'], purpose: 'treatment', break_glass: false });
});

test('GET /patients: each user sees her own patients; SSN only with patient.read', async () => {
  const alice = await call('GET', '/patients', 'alice');
  assert.deepEqual(alice.body.patients, [
    { id: 1, name: 'Ada Lovelace', assigned_user: 'alice', ssn: '123-45-6789' },
    { id: 3, name: 'Edsger Dijkstra', assigned_user: 'alice', ssn: '345-67-8901' },
  ]);
  assert.deepEqual(await ids('carol'), [4, 5]);
  assert.deepEqual(await ids('dave'), []);
});

test('unknown users and routes', async () => {
  assert.equal((await call('GET', '/patients')).status, 401);
  assert.equal((await call('GET', '/patients', 'mallory')).status, 401);
  assert.equal((await call('GET', '/patients', '__proto__')).status, 401);
  assert.equal((await call('GET', '/nothing', 'alice')).status, 404);
});

test('POST /break-glass: refused for billing, then the whole tenant for alice until DELETE', async () => {
  const reason = 'patient unconscious in the emergency room';
  const dave = await call('POST', '/break-glass', 'dave', { reason, minutes: 10 });
  assert.equal(dave.status, 403);
  assert.equal(dave.body.sqlstate, '42501');
  assert.equal((await call('POST', '/break-glass', 'alice', { reason: 'short', minutes: 10 })).status, 400);
  assert.equal((await call('POST', '/break-glass', 'alice', {})).status, 400);

  const open = await call('POST', '/break-glass', 'alice', { reason, minutes: 10 });
  assert.equal(open.status, 200);
  assert.ok(new Date(open.body.expires_at) > new Date(Date.now() - 60000));
  assert.deepEqual(await ids('alice'), [1, 2, 3]);
  assert.equal((await call('GET', '/me', 'alice')).body.break_glass, true);
  assert.deepEqual(await ids('carol'), [4, 5]);
  assert.deepEqual(await ids('bob'), [2]);

  const end = await call('DELETE', '/break-glass', 'alice');
  assert.deepEqual(end, { status: 200, body: { ended: true } });
  assert.deepEqual(await ids('alice'), [1, 3]);
});
