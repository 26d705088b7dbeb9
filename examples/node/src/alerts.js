// src/alerts.js: prints phi_guard's alerts as they happen.
//
//   PGHOST=... PGDATABASE=clinic PGUSER=clinic_auditor node src/alerts.js
//
// phi_guard's audit worker raises an alert when it seals audit entries
// that show a bulk disclosure, repeated denials, an opened break-glass, a
// safeguard switched off or a read outside working hours, and sends it as
// NOTIFY phi_guard_alert (a JSON payload); the same alerts stay in the
// view phi_guard.alerts for phi_auditor. The listener needs a session of
// its own: a dedicated pg.Client, never a connection borrowed from a
// transaction-mode pooler.

import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { listenPhiAlerts } from 'phi-guard';

// One line per alert: when, what, who (database role and end user), where
// (tenant), and the alert's detail as JSON. Alerts carry no PHI values.
export function formatAlert(alert) {
  const who = alert.app_user ? `${alert.db_user}/${alert.app_user}` : `${alert.db_user}`;
  const where = alert.tenant ? ` tenant=${alert.tenant}` : '';
  return `${alert.ts} ${alert.kind} by ${who}${where} ${JSON.stringify(alert.detail)}`;
}

// printAlerts(client, write): LISTENs on client and writes each alert as a
// line through write (default: standard output); returns the subscription
// (stop() ends it). A notification that is not an alert is reported on
// standard error without its payload.
export function printAlerts(client, write = (line) => process.stdout.write(`${line}\n`)) {
  return listenPhiAlerts(client, {
    onAlert: (alert) => write(formatAlert(alert)),
    onError: (err) => process.stderr.write(`ignored a notification: ${err.message}\n`),
  });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const client = new pg.Client();
  await client.connect();
  const sub = await printAlerts(client);
  console.error(`listening on ${sub.channel}; Ctrl-C to stop`);
  const stop = async () => {
    await sub.stop();
    await client.end();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
