// test/pool.test.js: the context ends with its transaction, so a pooled
// connection handed to the next request carries nothing over.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { withPhiContext } from 'phi-guard';
import { claimsOf, freshDatabase, visibleIds } from './support.js';

let env;
let pool;
before(async () => {
  env = await freshDatabase('pool');
  pool = env.newPool({ max: 1 }); // one connection: every request reuses it
});
after(async () => { await env?.close(); });

const sign = (user) => env.signer.sign(claimsOf(user));
const pid = async (db) => (await db.query('SELECT pg_catalog.pg_backend_pid() AS pid')).rows[0].pid;

// A transaction without phi_set_context on the pool's one connection.
async function bare() {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const { rows } = await client.query(`
      SELECT (SELECT count(*)::int FROM public.patients) AS n, phi_guard.phi_tenant_id() AS tenant,
             phi_guard.phi_user_id() AS user, pg_catalog.pg_backend_pid() AS pid`);
    await client.query('COMMIT');
    return rows[0];
  } finally {
    client.release();
  }
}

test('after COMMIT the next transaction on the same connection has no context', async () => {
  const first = await withPhiContext(pool, await sign('alice'), async (db) => ({ ids: await visibleIds(db), pid: await pid(db) }));
  assert.deepEqual(first.ids, [1, 2, 3]);
  const second = await bare();
  assert.equal(second.pid, first.pid, 'same backend');
  assert.deepEqual({ n: second.n, tenant: second.tenant, user: second.user }, { n: 0, tenant: null, user: null });
});

test('after ROLLBACK (a failed request) the context is gone too', async () => {
  await assert.rejects(withPhiContext(pool, await sign('carol'), async (db) => {
    assert.deepEqual(await visibleIds(db), [4, 5]);
    throw new Error('request failed');
  }), /request failed/);
  const next = await bare();
  assert.equal(next.n, 0);
  assert.equal(next.tenant, null);
});

test('requests of different tenants alternate on one connection without leaking', async () => {
  for (const [user, ids] of [['alice', [1, 2, 3]], ['carol', [4, 5]], ['alice', [1, 2, 3]]]) {
    assert.deepEqual(await withPhiContext(pool, await sign(user), visibleIds), ids);
  }
});

test('phi_set_context outside BEGIN lasts only for its own statement', async () => {
  const client = await pool.connect();
  try {
    await client.query('SELECT phi_guard.phi_set_context($1)', [await sign('alice')]);
    assert.deepEqual(await visibleIds(client), []);
  } finally {
    client.release();
  }
});

test('phi_clear_context ends the context inside the transaction', async () => {
  const ids = await withPhiContext(pool, await sign('alice'), async (db) => {
    await db.query('SELECT phi_guard.phi_clear_context()');
    return visibleIds(db);
  });
  assert.deepEqual(ids, []);
});
