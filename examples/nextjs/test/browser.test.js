// test/browser.test.js: the clinic app in headless Chromium against a real
// cluster — what each user sees, what the HTML carries, the cookie, the
// headers, break-glass and the auditor page. One screenshot per page goes
// to test-output/screenshots (PHI_GUARD_NEXT_OUTPUT to change it).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { EncryptJWT } from 'jose';
import { PATIENTS } from '../scripts/setup.mjs';
import { startEverything } from './support.js';

let env;
before(async () => { env = await startEverything(); });
after(async () => { await env?.close(); });

const COOKIE = '__Host-phi_session';
const BREAK_GLASS_REASON = 'Patient collapsed in the waiting room, not on my list';
const violations = []; // CSP reports and page errors, from every page of every test

// Every clear PHI value of the seed rows.
const clearValues = (p) => [p.name, p.dob, p.ssn, p.mrn];
const ALL_CLEAR = PATIENTS.flatMap(clearValues);

// A random UUID, as middleware.ts gives every request.
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

// A browser context (its own cookie jar) signed in as `user`, or anonymous;
// its CSP reports go to `violations` unless `report` is another list.
async function session(user, report = violations) {
  const context = await env.browser.newContext({ baseURL: env.base });
  const page = await context.newPage();
  page.on('console', (msg) => {
    if (msg.type() === 'error' && /Content Security Policy|Refused to/i.test(msg.text())) report.push(msg.text());
  });
  page.on('pageerror', (err) => violations.push(`page error: ${err.message}`));
  if (user) {
    await page.goto('/signin');
    await page.fill('#username', user);
    await page.fill('#password', `${user}-demo-password`);
    await Promise.all([page.waitForURL((url) => url.pathname !== '/signin'), page.click('main button[type=submit]')]);
  }
  return { context, page };
}

// The patient ids of the rows of table `testId` on the page.
const rowIds = (page, testId) =>
  page.locator(`[data-testid="${testId}"] tbody tr[data-patient]`).evaluateAll((rows) => rows.map((r) => Number(r.dataset.patient)));

// The raw HTML of a page as the server sends it to `context`'s cookies.
async function rawHtml(context, path) {
  const res = await context.request.get(path, { maxRedirects: 0 });
  return { status: res.status(), headers: res.headers(), body: await res.text() };
}

test('the sign-in page: a CSP whose nonce is on every script, no-store, and the other security headers', async () => {
  const res = await fetch(`${env.base}/signin`);
  assert.equal(res.status, 200);
  const csp = res.headers.get('content-security-policy');
  const nonce = /'nonce-([A-Za-z0-9+/=]+)'/.exec(csp)?.[1];
  assert.ok(nonce, `a nonce in ${csp}`);
  for (const directive of ["default-src 'self'", `script-src 'self' 'nonce-${nonce}' 'strict-dynamic'`,
    "style-src 'self'", "object-src 'none'", "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'"]) {
    assert.ok(csp.includes(directive), `CSP has ${directive}`);
  }
  assert.ok(!csp.includes('unsafe-inline') && !csp.includes('unsafe-eval'));
  assert.match(res.headers.get('cache-control'), /no-store/);
  assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(res.headers.get('x-frame-options'), 'DENY');
  assert.equal(res.headers.get('referrer-policy'), 'same-origin');
  assert.equal(res.headers.get('x-powered-by'), null);
  const html = await res.text();
  const scripts = [...html.matchAll(/<script\b[^>]*>/g)].map((m) => m[0]);
  assert.ok(scripts.length > 0);
  for (const tag of scripts) assert.ok(tag.includes(`nonce="${nonce}"`), `script without the nonce: ${tag}`);
  const second = await fetch(`${env.base}/signin`);
  assert.notEqual(/'nonce-([^']+)'/.exec(second.headers.get('content-security-policy'))[1], nonce, 'a fresh nonce per response');
  assert.match(res.headers.get('x-request-id'), UUID, 'the request\'s id');
  assert.notEqual(second.headers.get('x-request-id'), res.headers.get('x-request-id'), 'a fresh id per request');

  const { context, page } = await session(null);
  await page.goto('/signin');
  await env.screenshot(page, '01-signin');
  await context.close();
});

test('sign-in: an HttpOnly, Secure, SameSite=Strict session cookie; a wrong password gets none', async () => {
  const { context, page } = await session(null);
  await page.goto('/signin');
  await page.fill('#username', 'alice');
  await page.fill('#password', 'wrong password');
  await Promise.all([page.waitForURL(/failed=1/), page.click('main button[type=submit]')]);
  assert.deepEqual(await context.cookies(), []);
  await page.getByText('Wrong user name or password.').waitFor();
  await env.screenshot(page, '02-signin-failed');
  await context.close();

  const alice = await session('alice');
  const [cookie, ...others] = await alice.context.cookies();
  assert.deepEqual(others, []);
  assert.equal(cookie.name, COOKIE);
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.secure, true);
  assert.equal(cookie.sameSite, 'Strict');
  assert.equal(cookie.path, '/');
  assert.ok(!cookie.value.includes('alice'), 'the cookie is encrypted');
  assert.equal(await alice.page.evaluate(() => document.cookie), '', 'scripts cannot read it');
  await alice.context.close();
});

test('two clinicians of two clinics see only their own patients, decrypted', async () => {
  const expected = { alice: [1, 3], bob: [2], carol: [4, 5] };
  for (const [user, ids] of Object.entries(expected)) {
    const { context, page } = await session(user);
    assert.equal(new URL(page.url()).pathname, '/patients');
    assert.deepEqual(await rowIds(page, 'patients'), ids);
    const text = await page.locator('[data-testid="patients"]').innerText();
    for (const p of PATIENTS) {
      for (const value of clearValues(p)) {
        assert.equal(text.includes(value), ids.includes(p.id), `${user} ${ids.includes(p.id) ? 'sees' : 'does not see'} ${value}`);
      }
    }
    const html = await rawHtml(context, '/patients');
    assert.match(html.headers['cache-control'], /no-store/);
    for (const p of PATIENTS.filter((x) => !ids.includes(x.id))) {
      for (const value of clearValues(p)) assert.ok(!html.body.includes(value), `${user}'s HTML holds no ${value}`);
    }
    const api = await context.request.get('/api/patients');
    assert.equal(api.status(), 200);
    assert.match(api.headers()['cache-control'], /no-store/);
    assert.deepEqual((await api.json()).patients.map((p) => p.id), ids);
    await env.screenshot(page, `03-patients-${user}`);
    await context.close();
  }
});

test('billing sees masks, and the HTML sent for the masked view never holds a clear value', async () => {
  const { context, page } = await session('dave');
  assert.equal(new URL(page.url()).pathname, '/billing');
  assert.deepEqual(await rowIds(page, 'billing'), [1, 2, 3]);
  const row1 = await page.locator('[data-testid="billing"] tr[data-patient="1"]').innerText();
  assert.match(row1, /\*\*\*-\*\*-6789/);
  assert.match(row1, /A\*\*\* L\*\*\*/);
  assert.match(row1, /1985/);
  assert.match(row1, /120\.00/);
  const html = await rawHtml(context, '/billing');
  assert.equal(html.status, 200);
  assert.match(html.headers['cache-control'], /no-store/);
  assert.ok(html.body.includes('***-**-6789'), 'the mask is in the HTML');
  for (const value of ALL_CLEAR) assert.ok(!html.body.includes(value), `the billing HTML holds no ${value}`);
  // nor the RSC payload of a client-side navigation to it
  const rsc = await context.request.get('/billing', { headers: { RSC: '1' } });
  const payload = await rsc.text();
  assert.ok(payload.includes('***-**-6789'));
  for (const value of ALL_CLEAR) assert.ok(!payload.includes(value), `the billing RSC payload holds no ${value}`);
  await env.screenshot(page, '04-billing-dave');

  // billing opens neither the clinician view nor its API, nor break-glass
  await page.goto('/patients');
  assert.equal(new URL(page.url()).pathname, '/forbidden');
  assert.equal((await context.request.get('/api/patients')).status(), 403);
  const bg = await context.request.post('/api/break-glass', {
    form: { reason: BREAK_GLASS_REASON, minutes: '10' }, headers: { Origin: env.base }, maxRedirects: 0,
  });
  assert.equal(bg.status(), 303);
  assert.equal(bg.headers().location, '/break-glass?refused=role');
  await context.close();
});

test('a forged, tampered or foreign session cookie gets nothing', async () => {
  const alice = await session('alice');
  const [genuine] = await alice.context.cookies();
  await alice.context.close();
  const otherKey = new Uint8Array(32).fill(7);
  const foreign = await new EncryptJWT({}).setProtectedHeader({ alg: 'dir', enc: 'A256GCM' })
    .setSubject('alice').setIssuedAt().setExpirationTime('1h').encrypt(otherKey);
  const rightKeyUnknownUser = await new EncryptJWT({}).setProtectedHeader({ alg: 'dir', enc: 'A256GCM' })
    .setSubject('mallory').setIssuedAt().setExpirationTime('1h').encrypt(Buffer.from(env.secret, 'base64url'));
  const expired = await new EncryptJWT({}).setProtectedHeader({ alg: 'dir', enc: 'A256GCM' })
    .setSubject('alice').setIssuedAt(1000).setExpirationTime(2000).encrypt(Buffer.from(env.secret, 'base64url'));
  const flip = (s, i) => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
  const forgeries = {
    garbage: 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.',
    foreign, rightKeyUnknownUser, expired,
    tampered: flip(genuine.value, genuine.value.length - 30),
  };
  for (const [what, value] of Object.entries(forgeries)) {
    const { context, page } = await session(null);
    await context.addCookies([{ name: COOKIE, value, domain: '127.0.0.1', path: '/', secure: true, httpOnly: true, sameSite: 'Strict' }]);
    await page.goto('/patients');
    assert.equal(new URL(page.url()).pathname, '/signin', `${what}: sent to sign in`);
    const html = await rawHtml(context, '/patients');
    assert.equal(html.status, 307, `${what}: redirected`);
    for (const v of ALL_CLEAR) assert.ok(!html.body.includes(v), `${what}: no PHI`);
    const api = await context.request.get('/api/patients');
    assert.equal(api.status(), 401, `${what}: the API refuses`);
    assert.equal((await context.request.get('/billing', { maxRedirects: 0 })).status(), 307);
    if (what === 'foreign') await env.screenshot(page, '05-forged-cookie');
    await context.close();
  }
  // the control case: the genuine cookie in a fresh browser context works
  const { context } = await session(null);
  await context.addCookies([{ name: COOKIE, value: genuine.value, domain: '127.0.0.1', path: '/', secure: true, httpOnly: true, sameSite: 'Strict' }]);
  assert.equal((await context.request.get('/api/patients')).status(), 200);
  await context.close();
});

test('search by MRN: a POST through the blind index, only the clinician\'s own patients', async () => {
  const { context, page } = await session('alice');
  await page.goto('/search');
  const requests = [];
  page.on('request', (r) => requests.push({ method: r.method(), url: r.url(), body: r.postData() ?? '' }));
  const search = async (mrn) => {
    await page.fill('#mrn', mrn);
    const done = page.waitForResponse((r) => r.request().method() === 'POST');
    await page.click('main button[type=submit]');
    await done;
    // the button is disabled until React has rendered the action's result
    await page.locator('main button[type=submit]:enabled').waitFor();
    await page.locator('[data-testid="search-results"]').waitFor();
    return page.locator('[data-testid="search-results"]').innerText();
  };
  const found = await search('MRN-1001');
  assert.match(found, /Ada Lovelace/);
  assert.deepEqual(await rowIds(page, 'search-results'), [1]);
  await env.screenshot(page, '06-search-alice');
  assert.deepEqual(await rowIds(page, 'search-results').then(() => search('mrn-1003')).then(() => rowIds(page, 'search-results')), [3]);
  const others = await search('MRN-1002'); // bob's patient
  assert.match(others, /No patient of yours/);
  assert.deepEqual(await rowIds(page, 'search-results'), []);
  assert.equal((await search('MRN-2001')).includes('Barbara'), false); // another clinic's

  const posts = requests.filter((r) => r.method === 'POST');
  assert.ok(posts.length >= 4);
  for (const r of requests) assert.ok(!/mrn-|MRN-/i.test(r.url), `no MRN in a URL: ${r.url}`);
  assert.ok(posts.some((r) => r.body.includes('MRN-1001')), 'the MRN travels in a POST body');
  assert.ok(!/MRN/i.test(page.url()));
  await context.close();
});

test('break-glass: refused without a reason, recorded with one, opens the clinic, and ends', async () => {
  const { context, page } = await session('bob');
  assert.deepEqual(await rowIds(page, 'patients'), [2]);
  await page.goto('/break-glass');
  await env.screenshot(page, '07-break-glass-form');

  // the browser's own check stops an empty reason
  await page.click('main button[type=submit]');
  assert.equal(new URL(page.url()).pathname, '/break-glass');
  assert.equal(await page.locator('#reason').evaluate((el) => el.validity.valueMissing), true);

  // without the browser's check, the server refuses: no reason, then a reason the database finds too short
  await page.locator('#reason').evaluate((el) => { el.removeAttribute('required'); el.removeAttribute('minlength'); });
  await Promise.all([page.waitForURL(/refused=reason/), page.click('main button[type=submit]')]);
  assert.match(await page.getByTestId('refused').innerText(), /reason is required/);
  await env.screenshot(page, '08-break-glass-refused');
  await page.locator('#reason').evaluate((el) => { el.removeAttribute('required'); el.removeAttribute('minlength'); });
  await page.fill('#reason', 'urgent');
  await Promise.all([page.waitForURL(/refused=checked/), page.click('main button[type=submit]')]);
  assert.match(await page.getByTestId('refused').innerText(), /Refused by the database/);
  const none = await env.admin.query(
    "SELECT count(*)::int AS n FROM phi_guard.audit_log WHERE record::jsonb->>'kind' = 'break_glass_open'");
  assert.equal(none.rows[0].n, 0, 'nothing was opened');
  // a cross-site POST is refused outright
  const crossSite = await context.request.post('/api/break-glass', {
    form: { reason: BREAK_GLASS_REASON, minutes: '10' }, headers: { Origin: 'https://evil.example' }, maxRedirects: 0,
  });
  assert.equal(crossSite.status(), 403);

  await page.fill('#reason', BREAK_GLASS_REASON);
  await page.fill('#minutes', '10');
  await Promise.all([page.waitForURL((u) => u.pathname === '/patients'), page.click('main button[type=submit]')]);
  await page.getByTestId('break-glass-active').waitFor();
  assert.deepEqual(await rowIds(page, 'patients'), [1, 2, 3], 'the whole clinic, not the other one');
  assert.match(await page.locator('tr[data-patient="1"]').innerText(), /Ada Lovelace[\s\S]*emergency access/);
  assert.doesNotMatch(await page.locator('tr[data-patient="2"]').innerText(), /emergency access/);
  await env.screenshot(page, '09-patients-bob-break-glass');

  const { rows } = await env.admin.query(`
    SELECT record::jsonb AS r FROM phi_guard.audit_log
     WHERE record::jsonb->>'kind' = 'break_glass_open' ORDER BY xid, id`);
  assert.equal(rows.length, 1);
  assert.equal(rows[0].r.app_user, 'bob');
  assert.equal(rows[0].r.tenant, 'north');
  assert.equal(rows[0].r.detail.reason, BREAK_GLASS_REASON);
  assert.equal(rows[0].r.detail.minutes, 10);

  // carol, of the other clinic, is not affected
  const carol = await session('carol');
  assert.deepEqual(await rowIds(carol.page, 'patients'), [4, 5]);
  await carol.context.close();

  await Promise.all([page.waitForURL((u) => u.pathname === '/patients'),
    page.getByRole('button', { name: 'End emergency access' }).click()]);
  assert.equal(await page.getByTestId('break-glass-active').count(), 0);
  assert.deepEqual(await rowIds(page, 'patients'), [2]);
  await context.close();
});

// The rows of the auditor page's disclosures table.
const disclosureRows = (page) =>
  page.locator('[data-testid="disclosures"] tbody tr[data-kind]').evaluateAll((rows) => rows.map((r) => {
    const [ts, kind, user, dbUser, purpose, requestId, key, column] = [...r.cells].map((c) => c.textContent);
    return { ts, kind, user, dbUser, purpose, requestId, key, column };
  }));

test('the auditor page: the chain verified, who read PHI and who opened break-glass, who saw a patient\'s PHI', async () => {
  // alice reads her patients once more, with a request id of her choosing:
  // the server replaces it by its own, which the audit log must name
  const alice = await session('alice');
  const read = await alice.context.request.get('/api/patients', { headers: { 'X-Request-Id': 'chosen-by-the-client' } });
  assert.equal(read.status(), 200);
  assert.deepEqual((await read.json()).patients.map((p) => p.id), [1, 3]);
  const aliceRequest = read.headers()['x-request-id'];
  assert.match(aliceRequest, UUID, 'the response names its request');
  await alice.page.goto('/audit');
  assert.equal(new URL(alice.page.url()).pathname, '/forbidden', 'a clinician cannot open the auditor page');
  await alice.context.close();

  const { context, page } = await session('erin');
  assert.equal(new URL(page.url()).pathname, '/audit');
  assert.match(await page.getByTestId('chain-status').innerText(), /Audit chain verified: \d+ sealed blocks/);
  // access entries reach the log through the audit worker: wake it (a seal
  // makes it write what is queued) and reload until they are there
  let recent = '';
  for (let i = 0; i < 60; i++) {
    recent = await page.locator('[data-testid="recent-access"]').innerText();
    if (/break_glass_open/.test(recent) && /decrypt[\s\S]*alice/.test(recent)) break;
    await env.admin.query('SELECT phi_guard.phi_audit_seal()');
    await new Promise((r) => setTimeout(r, 500));
    await page.reload();
  }
  assert.match(recent, /break_glass_open\s+bob\s+clinic_web_app\s+treatment/);
  assert.ok(recent.includes(BREAK_GLASS_REASON), 'the reason is shown');
  assert.match(recent, /decrypt ×\d+\s+alice\s+clinic_web_app\s+treatment\s+patient_(name|ssn|dob|mrn)/);
  // billing's phi_decrypt_masked calls, recorded as access entries of its user and purpose
  assert.match(recent, /decrypt\S* ×\d+\s+dave\s+clinic_web_app\s+payment/);
  assert.doesNotMatch(recent, /carol/, 'the other clinic\'s reads are not listed');
  for (const value of ALL_CLEAR) assert.ok(!recent.includes(value), `no PHI on the audit page: ${value}`);

  const options = await page.locator('#patient option').evaluateAll((o) => o.map((x) => x.value));
  assert.deepEqual(options, ['1', '2', '3'], 'only the auditor\'s clinic');
  // one patient's report, a Server Action (a POST to /audit): its responses
  // are kept, read on their way to the page, to look for PHI in
  const responses = [];
  await page.route((url) => url.pathname === '/audit', async (route) => {
    if (route.request().method() !== 'POST') return route.continue();
    const response = await route.fetch();
    responses.push(await response.text());
    return route.fulfill({ response });
  });
  const showReport = async (id) => {
    await page.selectOption('#patient', id);
    const done = page.waitForResponse((r) => r.request().method() === 'POST');
    await page.click('main button[type=submit]');
    await done;
    await page.locator('main button[type=submit]:enabled').waitFor();
  };
  // the disclosures of patient `id`, asked again (the worker woken) until `ready(rows)`
  const disclosuresOf = async (id, ready) => {
    let rows = [];
    for (let i = 0; i < 60; i++) {
      await showReport(id);
      await page.locator('[data-testid="disclosures"]').waitFor();
      rows = await disclosureRows(page);
      if (ready(rows)) break;
      await env.admin.query('SELECT phi_guard.phi_audit_seal()');
      await new Promise((r) => setTimeout(r, 500));
    }
    return rows;
  };

  const COLUMNS = ['dob', 'mrn', 'name', 'ssn'];
  const columnsOf = (rows) => [...new Set(rows.map((d) => d.column))].sort();
  const one = await disclosuresOf('1', (rows) =>
    rows.filter((d) => d.requestId === aliceRequest).length === 4 && rows.some((d) => d.user === 'dave'));
  // alice's API request: one decrypt of each column of patient 1, under its request id
  const byRequest = one.filter((d) => d.requestId === aliceRequest);
  assert.deepEqual(byRequest.map((d) => d.column).sort(), COLUMNS, 'each column of patient 1 read in alice\'s request');
  for (const d of byRequest) {
    assert.deepEqual([d.kind, d.user, d.dbUser, d.purpose, d.key], ['decrypt', 'alice', 'clinic_web_app', 'treatment', `patient_${d.column}`]);
  }
  // every read came with a request id of the server's, each page load its own
  for (const d of one) assert.match(d.requestId, UUID, `a request id for ${d.user}'s ${d.kind} of ${d.column}`);
  const aliceReads = one.filter((d) => d.user === 'alice' && d.kind === 'decrypt');
  assert.ok(new Set(aliceReads.map((d) => d.requestId)).size >= 3, 'alice\'s page loads and API calls are separate requests');
  // billing's masked reads, and bob's while break-glass was open
  const dave = one.filter((d) => d.user === 'dave');
  assert.deepEqual(columnsOf(dave), COLUMNS, 'billing read every column of patient 1 for a mask');
  for (const d of dave) assert.deepEqual([d.kind, d.dbUser, d.purpose], ['decrypt_masked', 'clinic_web_app', 'payment']);
  assert.deepEqual(columnsOf(one.filter((d) => d.user === 'bob' && d.kind === 'decrypt' && d.purpose === 'treatment')), COLUMNS,
    'bob\'s emergency read of patient 1');
  assert.deepEqual([...new Set(one.map((d) => d.user))].sort(), ['alice', 'bob', 'dave'], 'nobody else saw patient 1');
  assert.ok(one.every((d, i) => i === 0 || one[i - 1].ts <= d.ts), 'oldest first');
  assert.ok(!responses.join('').includes('chosen-by-the-client'), 'the client\'s own request id is not used');
  const report = await page.locator('[data-testid="access-report"]').innerText();
  assert.match(report, /insert\s+—\s+postgres/, 'the row\'s creation is in its report');
  await env.screenshot(page, '10-audit-erin');

  // patient 2 (bob's): bob and billing, never alice
  const two = await disclosuresOf('2', (rows) => rows.some((d) => d.user === 'bob') && rows.some((d) => d.user === 'dave'));
  assert.deepEqual([...new Set(two.map((d) => d.user))].sort(), ['bob', 'dave']);
  assert.deepEqual(columnsOf(two.filter((d) => d.user === 'bob')), COLUMNS);

  // a patient of the other clinic (read by carol) cannot be chosen, not even
  // by a request the page would not send
  await page.locator('#patient').evaluate((el) => el.add(new Option('Patient #4', '4')));
  await showReport('4');
  assert.equal(await page.locator('main [role=alert]').innerText(), 'No such patient in your clinic.');
  assert.equal(await page.locator('[data-testid="disclosures"]').count(), 0);
  assert.ok(!responses.at(-1).includes('carol'), 'nothing of patient 4 is sent');
  const carol = await env.admin.query(
    "SELECT count(*)::int AS n FROM phi_guard.phi_disclosures('patients.ssn:4') WHERE app_user = 'carol'");
  assert.ok(carol.rows[0].n > 0, 'carol\'s reads of patient 4 are in the log, to be kept from the page');

  // no PHI on the page nor in any report sent to it
  const html = await page.content();
  for (const value of ALL_CLEAR) {
    assert.ok(!html.includes(value), `no PHI on the audit page: ${value}`);
    assert.ok(!responses.some((r) => r.includes(value)), `no PHI in a report: ${value}`);
  }
  await context.close();
});

test('the browser enforces the CSP: an injected inline event handler does not run', async () => {
  const refused = [];
  const { context, page } = await session(null, refused);
  await page.goto('/signin');
  // what injected markup would carry: an inline handler (no nonce can cover it)
  const injected = await page.evaluate(async () => {
    const b = document.createElement('button');
    b.setAttribute('onclick', 'window.injected = true');
    document.body.appendChild(b);
    b.click();
    return window.injected === true;
  });
  assert.equal(injected, false);
  await page.waitForTimeout(200);
  assert.ok(refused.some((m) => /Content Security Policy/.test(m)), 'the browser reported the refusal');
  await context.close();
});

test('no page broke its CSP or threw', () => {
  assert.deepEqual(violations, []);
});
