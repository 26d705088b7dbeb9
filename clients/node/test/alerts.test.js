// test/alerts.test.js: the listener for phi_guard_alert notifications. The
// alerts themselves come from the server's audit worker; here the test sends
// its own NOTIFY with the same payload shape.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { ALERT_CHANNEL, AlertPayloadError, listenPhiAlerts, parseAlert } from '../dist/index.js';

let listener;
let sender;
before(async () => {
  listener = new pg.Client();
  sender = new pg.Client();
  await listener.connect();
  await sender.connect();
});
after(async () => {
  await listener?.end();
  await sender?.end();
});

const ALERT = {
  kind: 'break_glass_open', ts: '2026-01-02T03:04:05.000006Z', db_user: 'clinic_app', app_user: 'alice',
  tenant: 'north', detail: { grant: 7, minutes: 15 },
};
const notify = (channel, payload) => sender.query('SELECT pg_catalog.pg_notify($1, $2)', [channel, payload]);

// Waits until `list` has n items (notifications arrive asynchronously).
async function until(list, n) {
  for (let i = 0; i < 200 && list.length < n; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(list.length, n, `expected ${n} items`);
}

test('parseAlert: the fields, with nulls and an empty detail for what is missing', () => {
  assert.deepEqual(parseAlert(JSON.stringify(ALERT)), ALERT);
  assert.deepEqual(parseAlert('{"kind":"off_hours","detail":[1]}'),
    { kind: 'off_hours', ts: null, db_user: null, app_user: null, tenant: null, detail: {} });
  for (const bad of ['not json {secret}', '[1]', '"x"', 'null', '{"kind":""}', '{"ts":"x"}', undefined]) {
    assert.throws(() => parseAlert(bad), (err) => {
      assert.ok(err instanceof AlertPayloadError);
      assert.ok(!err.message.includes('secret'));
      return true;
    });
  }
});

test('LISTEN phi_guard_alert: alerts arrive parsed, in order; bad payloads go to onError; other channels are ignored', async () => {
  const alerts = [];
  const errors = [];
  const sub = await listenPhiAlerts(listener, { onAlert: (a) => alerts.push(a), onError: (e) => errors.push(e) });
  assert.equal(sub.channel, ALERT_CHANNEL);
  assert.equal(ALERT_CHANNEL, 'phi_guard_alert');
  const { rows } = await listener.query('SELECT pg_catalog.pg_listening_channels() AS c');
  assert.deepEqual(rows.map((r) => r.c), ['phi_guard_alert']);

  await notify('phi_guard_alert', JSON.stringify(ALERT));
  await notify('phi_guard_alert', 'garbage');
  await notify('something_else', JSON.stringify({ ...ALERT, kind: 'other' }));
  await notify('phi_guard_alert', JSON.stringify({ ...ALERT, kind: 'bulk_disclosure', detail: { rows: 5000 } }));
  await until(alerts, 2);
  assert.deepEqual(alerts.map((a) => a.kind), ['break_glass_open', 'bulk_disclosure']);
  assert.deepEqual(alerts[0], ALERT);
  assert.equal(alerts[1].detail.rows, 5000);
  await until(errors, 1);
  assert.ok(errors[0] instanceof AlertPayloadError);

  await sub.stop();
  await sub.stop(); // idempotent
  const after = await listener.query('SELECT pg_catalog.pg_listening_channels() AS c');
  assert.equal(after.rowCount, 0);
  await notify('phi_guard_alert', JSON.stringify(ALERT));
  await listener.query('SELECT 1'); // let a stray notification arrive
  assert.equal(alerts.length, 2, 'nothing after stop()');
});

test('a custom channel is quoted; a listener that cannot LISTEN leaves no handler behind', async () => {
  const got = [];
  const sub = await listenPhiAlerts(listener, { channel: 'Alerts "2"', onAlert: (a) => got.push(a) });
  await notify('Alerts "2"', JSON.stringify(ALERT));
  await until(got, 1);
  await sub.stop();
  const before = listener.listenerCount('notification');
  const broken = { on: listener.on.bind(listener), removeListener: listener.removeListener.bind(listener),
    query: async () => { throw new Error('connection lost'); } };
  await assert.rejects(listenPhiAlerts(broken, { onAlert() {} }), /connection lost/);
  assert.equal(listener.listenerCount('notification'), before);
  await assert.rejects(listenPhiAlerts(listener, { channel: '', onAlert() {} }), TypeError);
});
