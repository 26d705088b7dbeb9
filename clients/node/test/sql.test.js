// test/sql.test.js: the SQL fragments — how they render, and that they do
// what they say on a real server (encrypt, decrypt, masks, and a blind-index
// lookup that an index serves).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  SqlFragment, blindIndexEquals, phiBlindIndex, phiDecrypt, phiDecryptBytea, phiDecryptMasked, phiEncrypt, phiMask,
  sql, withPhiContext,
} from '../dist/index.js';
import { claims, freshDatabase } from './support.js';

test('sql: values become numbered parameters, fragments are spliced in and renumbered', () => {
  const inner = sql`lower(${'A'}) = ${'b'}`;
  const q = sql`SELECT ${1} WHERE ${inner} AND x = ${null}`;
  assert.deepEqual(q.render(), { text: 'SELECT $1 WHERE lower($2) = $3 AND x = $4', values: [1, 'A', 'b', null] });
  assert.deepEqual(q.render(5), { text: 'SELECT $5 WHERE lower($6) = $7 AND x = $8', values: [1, 'A', 'b', null] });
  assert.equal(q.text, 'SELECT $1 WHERE lower($2) = $3 AND x = $4');
  assert.deepEqual(q.values, [1, 'A', 'b', null]);
  assert.throws(() => q.render(0), RangeError);
  assert.throws(() => new SqlFragment(['a'], [1]), RangeError);
});

test('sql.ident quotes, sql.raw is verbatim, sql.join separates', () => {
  assert.equal(sql.ident('public', 'we"ird').text, '"public"."we""ird"');
  assert.throws(() => sql.ident(), TypeError);
  assert.throws(() => sql.ident(''), TypeError);
  assert.equal(sql.raw('now()').text, 'now()');
  const j = sql.join([sql`a = ${1}`, sql`b = ${2}`, sql.raw('c')], ' AND ');
  assert.deepEqual(j.render(), { text: 'a = $1 AND b = $2 AND c', values: [1, 2] });
  assert.deepEqual(sql.join([]).render(), { text: '', values: [] });
});

test('the phi_* fragments: qualified calls, values as typed parameters', () => {
  const col = sql.ident('ssn');
  assert.deepEqual(phiEncrypt('123-45-6789', 'ssn_key', 'patients.ssn:1').render(),
    { text: 'phi_guard.phi_encrypt($1::text, $2::text, $3::text)', values: ['123-45-6789', 'ssn_key', 'patients.ssn:1'] });
  assert.deepEqual(phiEncrypt(Buffer.from('x'), 'k').render(),
    { text: 'phi_guard.phi_encrypt($1::bytea, $2::text)', values: [Buffer.from('x'), 'k'] });
  assert.deepEqual(phiDecrypt(col, sql`'patients.ssn:' || id`).render(),
    { text: `phi_guard.phi_decrypt("ssn", 'patients.ssn:' || id)`, values: [] });
  assert.deepEqual(phiDecrypt('phi1:AAAA').render(),
    { text: 'phi_guard.phi_decrypt($1::phi_guard.phi_ciphertext)', values: ['phi1:AAAA'] });
  assert.deepEqual(phiDecryptBytea(col, 'a').render(),
    { text: 'phi_guard.phi_decrypt_bytea("ssn", $1::text)', values: ['a'] });
  assert.deepEqual(phiDecryptMasked(col, null, 'ssn').render(),
    { text: 'phi_guard.phi_decrypt_masked("ssn", $1::text, $2::text)', values: [null, 'ssn'] });
  assert.deepEqual(phiBlindIndex('MRN-1', 'idx', 40).render(3),
    { text: 'phi_guard.phi_blind_index($3::text, $4::text, $5::int4)', values: ['MRN-1', 'idx', 40] });
  assert.deepEqual(phiMask(col, 'ssn').render(), { text: 'phi_guard.phi_mask("ssn", $1::text)', values: ['ssn'] });
  assert.deepEqual(blindIndexEquals(sql.ident('mrn_bidx'), 'MRN-1', 'idx').render(2), {
    text: '"mrn_bidx" OPERATOR(pg_catalog.=) phi_guard.phi_blind_index($2::text, $3::text)',
    values: ['MRN-1', 'idx'],
  });
});

let env;
before(async () => {
  env = await freshDatabase('sql');
  await env.admin.query(`
    SELECT phi_guard.phi_key_create('ssn_key'), phi_guard.phi_key_create('mrn_index');
    CREATE TABLE public.patients (
      id int4 PRIMARY KEY, tenant text NOT NULL,
      ssn phi_guard.phi_ciphertext, mrn phi_guard.phi_ciphertext, mrn_bidx int8);
    CREATE INDEX patients_mrn_bidx ON public.patients (mrn_bidx);
    SELECT phi_guard.phi_protect_table('public.patients', 'tenant');
    GRANT SELECT, INSERT ON public.patients TO ${env.appRole};`);
});
after(async () => { await env?.close(); });

const as = (user, tenant, fn, roles = ['clinician']) =>
  withPhiContext(env.pool, { signer: env.signer, claims: claims(user, tenant, roles) }, fn);
const row = (db, fragment) => db.query(fragment).then((r) => r.rows[0]);

test('insert with phiEncrypt and phiBlindIndex, read back with phiDecrypt', async () => {
  await as('alice', 'north', async (db) => {
    for (let id = 1; id <= 300; id++) {
      const ssn = `123-45-${String(id).padStart(4, '0')}`;
      const mrn = `MRN-${id}`;
      await db.query(sql`INSERT INTO public.patients (id, tenant, ssn, mrn, mrn_bidx)
        VALUES (${id}, 'north', ${phiEncrypt(ssn, 'ssn_key', `patients.ssn:${id}`)},
                ${phiEncrypt(mrn, 'ssn_key', `patients.mrn:${id}`)}, ${phiBlindIndex(mrn, 'mrn_index')})`);
    }
  });
  const r = await as('alice', 'north', (db) => row(db, sql`
    SELECT ${phiDecrypt(sql.ident('ssn'), sql`'patients.ssn:' || id`)} AS ssn, ssn::text AS stored
      FROM public.patients WHERE id = ${7}`));
  assert.equal(r.ssn, '123-45-0007');
  assert.match(r.stored, /^phi1:/);
  assert.ok(!r.stored.includes('0007'));
  // a ciphertext passed as a value
  const again = await as('alice', 'north', (db) => row(db, sql`SELECT ${phiDecrypt(r.stored, 'patients.ssn:7')} AS v`));
  assert.equal(again.v, '123-45-0007');
  const bytes = await as('alice', 'north', (db) => row(db,
    sql`SELECT ${phiDecryptBytea(phiEncrypt(Buffer.from([0, 1, 255]), 'ssn_key'))} AS v`));
  assert.deepEqual(bytes.v, Buffer.from([0, 1, 255]));
});

test('blindIndexEquals finds the row through the index', async () => {
  await env.admin.query('ANALYZE public.patients');
  const lookup = blindIndexEquals(sql.ident('mrn_bidx'), 'MRN-42', 'mrn_index');
  const found = await as('alice', 'north', (db) => db.query(sql`
    SELECT id, ${phiDecrypt(sql.ident('mrn'), sql`'patients.mrn:' || id`)} AS mrn
      FROM public.patients WHERE ${lookup}`));
  assert.deepEqual(found.rows, [{ id: 42, mrn: 'MRN-42' }]);
  const plan = await as('alice', 'north', async (db) => {
    await db.query('SET LOCAL enable_seqscan = off');
    const { rows } = await db.query(sql`EXPLAIN (FORMAT JSON) SELECT id FROM public.patients WHERE ${lookup}`);
    return JSON.stringify(rows[0]['QUERY PLAN']);
  });
  assert.match(plan, /"Index Name":"patients_mrn_bidx"/);
  assert.match(plan, /"Index Cond":"\(mrn_bidx = phi_guard\.phi_blind_index\(/);
  // another tenant's context does not find it
  const other = await as('carol', 'south', (db) => db.query(sql`SELECT id FROM public.patients WHERE ${lookup}`));
  assert.equal(other.rowCount, 0);
});

test('phiMask and phiDecryptMasked give masks', async () => {
  const r = await as('alice', 'north', (db) => row(db, sql`SELECT ${phiMask('123-45-6789', 'ssn')} AS m`));
  assert.equal(r.m, '***-**-6789');
  await env.admin.query(`
    SELECT phi_guard.phi_key_access('ssn_key', 'patient.read', 'billing.read');
    SELECT phi_guard.phi_mask_bind('ssn_key', 'ssn');
    SELECT phi_guard.phi_permission_grant('billing', 'billing.read');`);
  const masked = sql`SELECT ${phiDecryptMasked(sql.ident('ssn'), sql`'patients.ssn:' || id`, 'ssn')} AS v
                       FROM public.patients WHERE id = ${9}`;
  assert.equal((await as('dave', 'north', (db) => row(db, masked), ['billing'])).v, '***-**-0009');
  assert.equal((await as('alice', 'north', (db) => row(db, masked))).v, '123-45-0009');
});
