// test/support.js: what the browser tests share (not a test file itself) —
// a fresh clinic database, `next start` on 127.0.0.1, headless Chromium.
//
// The cluster is named by the PG* environment variables (PGHOST, PGPORT,
// PGUSER = a superuser, PGDATABASE = a maintenance database); the
// repository's test/node-example.sh starts one. The app must be built
// (`npm run build`). Chromium is Debian's (/usr/bin/chromium, or CHROMIUM),
// driven by playwright-core; no browser is downloaded.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { generateContextKeyPair } from 'phi-guard';
import { chromium } from 'playwright-core';
import { setupClinic } from '../scripts/setup.mjs';

export const APP_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');
export const OUTPUT_DIR = process.env.PHI_GUARD_NEXT_OUTPUT ?? join(APP_DIR, 'test-output');
const DATABASE = 'phi_next_browser';
const ROLES = { appRole: 'clinic_web_app', auditorRole: 'clinic_web_auditor' };

// A free TCP port on 127.0.0.1.
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// A fresh database with the clinic's schema and rows; returns the context
// signing key's id and PEM, and a superuser client on it.
async function freshClinic() {
  const maint = new pg.Client();
  await maint.connect();
  try {
    await maint.query(`DROP DATABASE IF EXISTS ${DATABASE} WITH (FORCE)`);
    await maint.query(`CREATE DATABASE ${DATABASE}`);
  } finally {
    await maint.end();
  }
  const admin = new pg.Client({ database: DATABASE });
  await admin.connect();
  const keys = await generateContextKeyPair({ kid: 'nextjs-browser-test' });
  try {
    await setupClinic(admin, { ...ROLES, kid: keys.kid, publicKeyPem: keys.publicKeyPem });
  } catch (err) {
    await admin.end();
    throw err;
  }
  return { admin, keys };
}

// Waits until the server answers GET /signin, or it exits, or 60 s pass.
async function waitReady(base, child, log) {
  const deadline = Date.now() + 60000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`next start exited (${child.exitCode}):\n${log.join('')}`);
    try {
      const res = await fetch(`${base}/signin`);
      if (res.status === 200) return;
    } catch { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`next start did not answer within 60 s:\n${log.join('')}`);
}

// Everything a browser test needs: { base, admin, browser, secret,
// screenshot(page, name), close() }. `secret` is the server's session key
// (so a test can show that a cookie encrypted under another key fails).
export async function startEverything() {
  const { admin, keys } = await freshClinic();
  const work = await mkdtemp(join(tmpdir(), 'phi-next-'));
  const keyFile = join(work, 'context-ed25519.pem');
  await writeFile(keyFile, keys.privateKeyPem, { mode: 0o600 });
  const secret = randomBytes(32).toString('base64url');
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const log = [];
  const child = spawn(process.execPath, [join(APP_DIR, 'node_modules', 'next', 'dist', 'bin', 'next'), 'start',
    '--hostname', '127.0.0.1', '--port', String(port)], {
    cwd: APP_DIR,
    env: {
      ...process.env, NODE_ENV: 'production', NEXT_TELEMETRY_DISABLED: '1',
      PGDATABASE: DATABASE, PHI_APP_DB_USER: ROLES.appRole, PHI_AUDITOR_DB_USER: ROLES.auditorRole,
      CONTEXT_KID: keys.kid, CONTEXT_PRIVATE_KEY_FILE: keyFile, SESSION_SECRET: secret,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.on('data', (d) => log.push(String(d)));
  child.stderr.on('data', (d) => log.push(String(d)));
  let browser;
  try {
    await waitReady(base, child, log);
    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
      headless: true,
      // playwright gives every launch a fresh, temporary --user-data-dir
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  } catch (err) {
    child.kill('SIGTERM');
    await admin.end();
    throw err;
  }
  await mkdir(join(OUTPUT_DIR, 'screenshots'), { recursive: true });
  return {
    base, admin, browser, secret, serverLog: log,
    screenshot: (page, name) => page.screenshot({ path: join(OUTPUT_DIR, 'screenshots', `${name}.png`), fullPage: true }),
    async close() {
      await browser?.close();
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      await admin.end();
      await rm(work, { recursive: true, force: true });
    },
  };
}
