// test/errors.test.js: SQLSTATEs PH001–PH006, 28000 and 42501 become typed
// errors with stable codes, and no PHI travels with them.
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { after, before, test } from 'node:test';
import {
  AccessDeniedError, AccessNotRecordedError, ContextRejectedError, DecryptError, KeyDestroyedError, KeyUnwrapError,
  MAPPED_SQLSTATES, MasterKeyUnavailableError, NoActiveKeyError, PhiGuardError, isPhiGuardError, phiDecrypt,
  phiEncrypt, sql, toPhiGuardError, withPhiContext,
} from '../dist/index.js';
import { claims, freshDatabase, rejectsAs } from './support.js';

const TABLE = [
  ['PH001', DecryptError, 'decrypt_failed'],
  ['PH002', KeyDestroyedError, 'key_destroyed'],
  ['PH003', MasterKeyUnavailableError, 'master_key_unavailable'],
  ['PH004', KeyUnwrapError, 'key_unwrap_failed'],
  ['PH005', NoActiveKeyError, 'no_active_key'],
  ['PH006', AccessNotRecordedError, 'access_not_recorded'],
  ['28000', ContextRejectedError, 'context_rejected'],
  ['42501', AccessDeniedError, 'access_denied'],
];

test('each mapped SQLSTATE has its class and stable code; detail and where are dropped', () => {
  assert.deepEqual([...MAPPED_SQLSTATES].sort(), TABLE.map(([s]) => s).sort());
  for (const [sqlstate, Class, code] of TABLE) {
    const pgError = Object.assign(new Error('server says why'), {
      code: sqlstate, detail: 'Failing row contains (123-45-6789).', where: "SQL statement \"SELECT '123-45-6789'\"",
      hint: 'Do this.',
    });
    const err = toPhiGuardError(pgError);
    assert.ok(err instanceof Class && err instanceof PhiGuardError && isPhiGuardError(err), sqlstate);
    assert.equal(err.code, code);
    assert.equal(err.sqlstate, sqlstate);
    assert.equal(err.name, Class.name);
    assert.equal(err.hint, 'Do this.');
    assert.match(err.message, new RegExp(`\\(SQLSTATE ${sqlstate}\\): server says why$`));
    assert.ok(!inspect(err).includes('123-45-6789'), `${sqlstate}: no PHI from detail or where`);
    assert.equal(toPhiGuardError(err), err, 'mapping twice changes nothing');
  }
});

test('other errors and values pass through unchanged', () => {
  const unique = Object.assign(new Error('duplicate key'), { code: '23505' });
  assert.equal(toPhiGuardError(unique), unique);
  assert.equal(toPhiGuardError(null), null);
  assert.equal(toPhiGuardError('text'), 'text');
  assert.equal(isPhiGuardError(unique), false);
  const noCode = new Error('x');
  assert.equal(toPhiGuardError(noCode), noCode);
  const proto = Object.assign(new Error('x'), { code: 'toString' });
  assert.equal(toPhiGuardError(proto), proto);
});

let env;
before(async () => {
  env = await freshDatabase('errors');
  await env.admin.query(`
    SELECT phi_guard.phi_key_create('ssn_key'), phi_guard.phi_key_create('gone');
    SELECT phi_guard.phi_key_access('ssn_key', 'patient.read', 'billing.read');`);
});
after(async () => { await env?.close(); });

const SSN = '987-65-4321';
const AAD = 'patients.ssn:77';
const as = (roles, fn) => withPhiContext(env.pool, { signer: env.signer, claims: claims('alice', 'north', roles) }, fn);
const noPhi = (err) => {
  const text = inspect(err) + JSON.stringify(err);
  assert.ok(!text.includes(SSN), 'no plaintext in the error');
  assert.ok(!text.includes(AAD), 'no aad in the error');
  assert.ok(!text.includes('phi1:'), 'no ciphertext in the error');
};

test('PH001: a wrong aad, from the live server', async () => {
  const err = await rejectsAs(as(['clinician'], (db) => db.query(
    sql`SELECT ${phiDecrypt(phiEncrypt(SSN, 'ssn_key', AAD), 'patients.ssn:78')}`)), DecryptError, 'decrypt_failed');
  assert.equal(err.sqlstate, 'PH001');
  noPhi(err);
});

test('PH001 with literals in the statement text: still no PHI in the error', async () => {
  const err = await rejectsAs(as(['clinician'], (db) => db.query(
    `SELECT phi_guard.phi_decrypt(phi_guard.phi_encrypt('${SSN}', 'ssn_key', '${AAD}'), 'x')`)), DecryptError);
  noPhi(err);
});

test('PH002: a destroyed key', async () => {
  const { rows } = await as(['clinician'], (db) => db.query(sql`SELECT ${phiEncrypt(SSN, 'gone', AAD)}::text AS ct`));
  await env.admin.query("SELECT phi_guard.phi_key_destroy('gone')");
  const err = await rejectsAs(as(['clinician'], (db) => db.query(sql`SELECT ${phiDecrypt(rows[0].ct, AAD)}`)),
    KeyDestroyedError, 'key_destroyed');
  noPhi(err);
});

test('PH005: a key name whose every version was destroyed', async () => {
  const err = await rejectsAs(as(['clinician'], (db) => db.query(sql`SELECT ${phiEncrypt(SSN, 'gone', AAD)}`)),
    NoActiveKeyError, 'no_active_key');
  noPhi(err);
});

test('42501: a context with only the masked permission, and no context at all', async () => {
  await env.admin.query("SELECT phi_guard.phi_permission_grant('billing', 'billing.read')");
  const { rows } = await as(['clinician'], (db) => db.query(sql`SELECT ${phiEncrypt(SSN, 'ssn_key', AAD)}::text AS ct`));
  const err = await rejectsAs(as(['billing'], (db) => db.query(sql`SELECT ${phiDecrypt(rows[0].ct, AAD)}`)),
    AccessDeniedError, 'access_denied');
  assert.match(err.message, /masked only/);
  noPhi(err);
  // outside withPhiContext the caller maps errors itself
  const raw = await env.pool.query(sql`SELECT ${phiDecrypt(rows[0].ct, AAD)}`).catch((e) => e);
  assert.ok(toPhiGuardError(raw) instanceof AccessDeniedError);
});

test('28000: a token the server refuses', async () => {
  const err = await rejectsAs(withPhiContext(env.pool, 'not-a-token', () => 1), ContextRejectedError, 'context_rejected');
  assert.equal(err.sqlstate, '28000');
});

test('an error wrapping a database error in cause (Drizzle) is mapped by its cause, without the wrapper\'s text', () => {
  const pgError = Object.assign(new Error('values of key "ssn_key" are masked only'), { code: '42501' });
  const wrapped = new Error(`Failed query: select ...\nparams: ${SSN}`, { cause: pgError });
  const err = toPhiGuardError(wrapped);
  assert.ok(err instanceof AccessDeniedError);
  assert.ok(!inspect(err).includes(SSN));
  const plain = new Error('wrapper', { cause: new Error('inner') });
  assert.equal(toPhiGuardError(plain), plain);
});
