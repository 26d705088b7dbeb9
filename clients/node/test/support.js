// test/support.js: shared set-up for the tests (not a test file itself).
//
// The tests run against a real cluster with phi_guard preloaded, named by
// the PG* environment variables (PGHOST, PGPORT, PGUSER = a superuser,
// PGDATABASE = a maintenance database); test/node-example.sh at the
// repository root starts one. Each test file gets a database and a login
// role of its own, so the files can run in parallel.

import assert from 'node:assert/strict';
import pg from 'pg';
import { createContextSigner, generateContextKeyPair } from '../dist/index.js';

// freshDatabase(name): database phi_client_<name> with phi_guard, a login
// role client_<name> (phi_app, phi_encryptor, phi_decryptor: what an
// application's pooled role holds) and a registered context signing key.
// Returns { admin, pool, signer, keys, kid, database, appRole, newPool(opts), close() };
// admin is a superuser Client on the database, pool a Pool of the app role.
export async function freshDatabase(name) {
  const database = `phi_client_${name}`;
  const appRole = `client_${name}`;
  const maint = new pg.Client();
  await maint.connect();
  try {
    await maint.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await maint.query(`DROP ROLE IF EXISTS ${appRole}`);
    await maint.query(`CREATE DATABASE ${database}`);
    await maint.query(`CREATE ROLE ${appRole} LOGIN`);
  } finally {
    await maint.end();
  }
  const admin = new pg.Client({ database });
  await admin.connect();
  const keys = await generateContextKeyPair({ kid: `kid-${name}` });
  try {
    await admin.query('CREATE EXTENSION phi_guard');
    await admin.query(`GRANT phi_app, phi_encryptor, phi_decryptor TO ${appRole}`);
    await admin.query('SELECT phi_guard.phi_context_key_add($1, $2)', [keys.kid, keys.publicKeyPem]);
  } catch (err) {
    await admin.end();
    throw err;
  }
  const signer = await createContextSigner({ kid: keys.kid, privateKey: keys.privateKey });
  const pools = [];
  const newPool = (opts = {}) => {
    const p = new pg.Pool({ database, user: appRole, max: 4, ...opts });
    pools.push(p);
    return p;
  };
  return {
    admin, pool: newPool(), signer, keys, kid: keys.kid, database, appRole, newPool,
    async close() {
      await Promise.all(pools.map((p) => p.end()));
      await admin.end();
    },
  };
}

// The claims of a user of tenant `tenant` with `roles`.
export const claims = (sub, tenant = 'north', roles = ['clinician'], extra = {}) =>
  ({ sub, tenant, roles, purpose: 'treatment', ...extra });

// Awaits promise, asserts that it rejects with an instance of Class whose
// code is `code`, and returns the error.
export async function rejectsAs(promise, Class, code) {
  let caught;
  await assert.rejects(promise, (err) => { caught = err; return true; });
  assert.ok(caught instanceof Class, `expected ${Class.name}, got ${caught?.constructor?.name}: ${caught?.message}`);
  if (code) assert.equal(caught.code, code);
  return caught;
}
