// test/context.test.js: withPhiContext against a real server — the context
// is the transaction's first statement, ends with it, and never rides a
// pooled connection into the next request.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  ContextRejectedError, SET_CONTEXT_SQL, TransactionRolledBackError, createContextSigner,
  generateContextKeyPair, withPhiContext,
} from '../dist/index.js';
import { claims, freshDatabase, rejectsAs } from './support.js';

let env;
before(async () => {
  env = await freshDatabase('context');
  await env.admin.query(`
    CREATE TABLE public.notes (id int4 PRIMARY KEY, tenant text NOT NULL, body text NOT NULL);
    SELECT phi_guard.phi_protect_table('public.notes', 'tenant');
    GRANT SELECT, INSERT ON public.notes TO ${env.appRole};
    INSERT INTO public.notes VALUES (1, 'north', 'n1'), (2, 'north', 'n2'), (3, 'south', 's1');`);
});
after(async () => { await env?.close(); });

const who = (db) => db.query(`
  SELECT phi_guard.phi_user_id() AS user, phi_guard.phi_tenant_id() AS tenant,
         (SELECT pg_catalog.array_agg(id ORDER BY id) FROM public.notes) AS ids,
         pg_catalog.pg_backend_pid() AS pid`).then((r) => r.rows[0]);

// What the pool's next borrower of a connection sees, without setting a context.
async function bare(pool) {
  const client = await pool.connect();
  try {
    return await who(client);
  } finally {
    client.release();
  }
}

test('a signed token: the database sees its user and tenant', async () => {
  const token = await env.signer.sign(claims('alice'));
  const row = await withPhiContext(env.pool, token, who);
  assert.deepEqual({ ...row, pid: undefined }, { user: 'alice', tenant: 'north', ids: [1, 2], pid: undefined });
});

test('claims and a signer instead of a token', async () => {
  const row = await withPhiContext(env.pool, { signer: env.signer, claims: claims('carol', 'south') }, who);
  assert.equal(row.user, 'carol');
  assert.deepEqual(row.ids, [3]);
});

test('the context is the first statement, after BEGIN, with the token as a bind parameter', async () => {
  const seen = [];
  const client = {
    async query(text, values) { seen.push([text, values]); return { rows: [], command: text === 'COMMIT' ? 'COMMIT' : 'SELECT' }; },
    release(destroy) { seen.push(['release', destroy]); },
  };
  const pool = { connect: async () => client };
  const result = await withPhiContext(pool, 'the-token', async (db) => { await db.query('SELECT 1'); return 7; },
    { readOnly: true, isolationLevel: 'repeatable read' });
  assert.equal(result, 7);
  assert.equal(SET_CONTEXT_SQL, 'SELECT phi_guard.phi_set_context($1)');
  assert.deepEqual(seen, [
    ['BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY', undefined],
    ['SELECT phi_guard.phi_set_context($1)', ['the-token']],
    ['SELECT 1', undefined],
    ['COMMIT', undefined],
    ['release', false],
  ]);
  await assert.rejects(withPhiContext(pool, 't', () => 1, { isolationLevel: 'chaos' }), TypeError);
});

test('on one pooled connection, the next borrower has no context after COMMIT', async () => {
  const pool = env.newPool({ max: 1 });
  const first = await withPhiContext(pool, await env.signer.sign(claims('alice')), who);
  const next = await bare(pool);
  assert.equal(next.pid, first.pid, 'the same backend was reused');
  assert.deepEqual({ user: next.user, tenant: next.tenant, ids: next.ids }, { user: null, tenant: null, ids: null });
});

test('an error in the callback rolls back, rethrows, and leaves no context behind', async () => {
  const pool = env.newPool({ max: 1 });
  let pid;
  await assert.rejects(withPhiContext(pool, await env.signer.sign(claims('alice')), async (db) => {
    ({ pid } = await who(db));
    await db.query("INSERT INTO public.notes VALUES (10, 'north', 'rolled back')");
    throw new Error('request failed');
  }), /request failed/);
  const next = await bare(pool);
  assert.equal(next.pid, pid);
  assert.equal(next.user, null);
  const { rows } = await env.admin.query('SELECT count(*)::int AS n FROM public.notes WHERE id = 10');
  assert.equal(rows[0].n, 0, 'the insert was rolled back');
});

test('a refused token is a ContextRejectedError; the callback never runs', async () => {
  const rogue = await generateContextKeyPair();
  const signer = await createContextSigner({ kid: env.kid, privateKey: rogue.privateKey });
  let ran = false;
  const token = await signer.sign(claims('alice'));
  const err = await rejectsAs(withPhiContext(env.pool, token, () => { ran = true; }), ContextRejectedError, 'context_rejected');
  assert.equal(err.sqlstate, '28000');
  assert.equal(ran, false);
  assert.ok(!err.message.includes(token.split('.')[2]), 'no signature in the message');
  const expired = await env.signer.sign(claims('alice', 'north', ['clinician'], { now: Math.floor(Date.now() / 1000) - 600 }));
  await rejectsAs(withPhiContext(env.pool, expired, who), ContextRejectedError);
});

test('an error the callback swallowed still ends in TransactionRolledBackError, not a silent commit', async () => {
  const err = await rejectsAs(withPhiContext(env.pool, await env.signer.sign(claims('alice')), async (db) => {
    await db.query("INSERT INTO public.notes VALUES (11, 'north', 'lost')");
    await db.query('SELECT 1/0').catch(() => {}); // aborts the transaction
    return 'looks fine';
  }), TransactionRolledBackError, 'transaction_rolled_back');
  assert.equal(err.sqlstate, null);
  const { rows } = await env.admin.query('SELECT count(*)::int AS n FROM public.notes WHERE id = 11');
  assert.equal(rows[0].n, 0);
});

test('a connection whose transaction cannot be ended is destroyed, not pooled', async () => {
  const pool = env.newPool({ max: 1 });
  const { pid } = await withPhiContext(pool, await env.signer.sign(claims('alice')), who);
  await assert.rejects(withPhiContext(pool, await env.signer.sign(claims('alice')), async (db) => {
    await env.admin.query('SELECT pg_catalog.pg_terminate_backend($1)', [pid]);
    await db.query('SELECT 1');
  }));
  const next = await withPhiContext(pool, await env.signer.sign(claims('carol', 'south')), who);
  assert.notEqual(next.pid, pid, 'a new connection');
  assert.deepEqual(next.ids, [3]);
  assert.equal(pool.totalCount, 1);
});

test('a signing error happens before a connection is borrowed', async () => {
  const pool = env.newPool({ max: 1 });
  await assert.rejects(withPhiContext(pool, { signer: env.signer, claims: { sub: 'x' } }, who), TypeError);
  assert.equal(pool.totalCount, 0);
});

test('requests of two tenants alternating on one connection never see each other', async () => {
  const pool = env.newPool({ max: 1 });
  for (const [user, tenant, ids] of [['alice', 'north', [1, 2]], ['carol', 'south', [3]], ['bob', 'north', [1, 2]], ['carol', 'south', [3]]]) {
    const row = await withPhiContext(pool, { signer: env.signer, claims: claims(user, tenant) }, who);
    assert.deepEqual([row.user, row.ids], [user, ids]);
  }
});
