// test/support.js: shared set-up for the tests (not a test file itself).
//
// Each test file gets its own database and application role in the cluster
// named by the PG* environment variables (PGHOST, PGPORT, PGUSER = a
// superuser, PGDATABASE = a maintenance database), so the files can run in
// parallel and a file that changes policies does not disturb the others.

import assert from 'node:assert/strict';
import pg from 'pg';
import { createContextSigner, generateContextKeyPair } from 'phi-guard';
import { DEMO_USERS } from '../src/app.js';
import { setupDatabase } from '../src/setup.js';

// freshDatabase(name, { careTeam }): creates database phi_node_<name> and role
// app_<name>, runs setupDatabase() in it and returns
//   { admin, pool, signer, kid, keys, database, appRole, newPool(opts), close() }
// admin is a superuser pg.Client on the new database, pool a pg.Pool logged
// in as the application role.
export async function freshDatabase(name, { careTeam = false, poolSize = 4 } = {}) {
  const database = `phi_node_${name}`;
  const appRole = `app_${name}`;
  const maint = new pg.Client();
  await maint.connect();
  try {
    await maint.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await maint.query(`DROP ROLE IF EXISTS ${appRole}`);
    await maint.query(`CREATE DATABASE ${database}`);
  } finally {
    await maint.end();
  }

  const admin = new pg.Client({ database });
  await admin.connect();
  const kid = `kid-${name}`;
  const keys = await generateContextKeyPair({ kid });
  try {
    await setupDatabase(admin, { appRole, kid, publicKeyPem: keys.publicKeyPem, careTeam });
  } catch (err) {
    await admin.end(); // an open connection would keep the test file running
    throw err;
  }
  const signer = await createContextSigner({ kid, privateKey: keys.privateKey });

  const pools = [];
  const newPool = (opts = {}) => {
    const p = new pg.Pool({ database, user: appRole, max: poolSize, ...opts });
    pools.push(p);
    return p;
  };
  const pool = newPool();
  return {
    admin, pool, signer, kid, keys, database, appRole, newPool,
    async close() {
      await Promise.all(pools.map((p) => p.end()));
      await admin.end();
    },
  };
}

// The claims of one of the example's users; overrides replace fields.
export function claimsOf(user, overrides = {}) {
  const u = DEMO_USERS[user];
  assert.ok(u, `no demo user ${user}`);
  return { sub: user, tenant: u.tenant, roles: u.roles, purpose: 'treatment', ...overrides };
}

// Ids of the rows of public.patients a query returns, in id order.
export async function visibleIds(db) {
  const { rows } = await db.query('SELECT id FROM public.patients ORDER BY id');
  return rows.map((r) => r.id);
}

// Awaits promise and asserts that it rejects with a PostgreSQL error of
// SQLSTATE code (and a message matching re, when given): a pg error, or the
// typed error phi-guard's withPhiContext made of it. Returns the error.
export async function rejectsWith(promise, code, re) {
  let caught;
  await assert.rejects(promise, (err) => {
    caught = err;
    return true;
  });
  const sqlstate = caught.sqlstate ?? caught.code;
  assert.equal(sqlstate, code, `expected SQLSTATE ${code}, got ${sqlstate}: ${caught.message}`);
  if (re) assert.match(caught.message, re);
  return caught;
}
