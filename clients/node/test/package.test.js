// test/package.test.js: the package as a consumer gets it — every entry
// point has its declarations, nothing imports a Node.js built-in or native
// code, the only runtime dependency is jose, and the README's API reference
// is the one the types give.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFile, readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8'));
const dist = join(root, 'dist');

test('every export path has a module and its declarations', async () => {
  assert.equal(pkg.name, 'phi-guard');
  assert.equal(pkg.type, 'module');
  for (const [path, target] of Object.entries(pkg.exports)) {
    if (path === './package.json') continue;
    const js = join(root, target.default);
    const dts = join(root, target.types);
    assert.equal(target.types, target.default.replace(/\.js$/, '.d.ts'), path);
    await readFile(js);
    await readFile(dts);
  }
});

test('every runtime export is declared in the types', async () => {
  for (const name of ['index', 'signer', 'drizzle']) {
    const mod = await import(join(dist, `${name}.js`));
    const dts = (await Promise.all((await readdir(dist)).filter((f) => f.endsWith('.d.ts'))
      .map((f) => readFile(join(dist, f), 'utf8')))).join('\n');
    for (const key of Object.keys(mod)) {
      assert.match(dts, new RegExp(`export declare (function|class|const|namespace) ${key}\\b`), `${name}: ${key}`);
    }
    assert.ok(Object.keys(mod).length > 0);
  }
});

test('no module imports a Node.js built-in: the package runs in edge runtimes', async () => {
  const allowed = /^(\.\/[a-z]+\.js|jose|drizzle-orm|drizzle-orm\/pg-core)$/;
  const files = (await readdir(dist)).filter((f) => f.endsWith('.js'));
  assert.ok(files.length >= 7);
  for (const file of files) {
    // the code without its comments (which may name Buffer and the like)
    const text = (await readFile(join(dist, file), 'utf8')).replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|\s)\/\/.*$/gm, '');
    const specifiers = [...text.matchAll(/^\s*(?:import|export)\b[^'"]*?from\s+['"]([^'"]+)['"]/gm)].map((m) => m[1]);
    for (const s of specifiers) assert.match(s, allowed, `${file} imports ${s}`);
    assert.ok(!/\brequire\(|process\.|Buffer\b|import\(/.test(text), `${file} uses a Node.js global or dynamic import`);
  }
  const signer = await readFile(join(dist, 'signer.js'), 'utf8');
  assert.deepEqual([...signer.matchAll(/from\s+['"]([^'"]+)['"]/g)].map((m) => m[1]), ['jose'], 'the signer needs jose only');
});

test('the runtime dependencies are jose alone, with no install script', async () => {
  assert.deepEqual(Object.keys(pkg.dependencies), ['jose']);
  const lock = JSON.parse(await readFile(join(root, 'package-lock.json'), 'utf8'));
  const runtime = Object.entries(lock.packages).filter(([path, p]) => path !== '' && !p.dev && !p.optional && !p.peer);
  assert.deepEqual(runtime.map(([path]) => path), ['node_modules/jose']);
  assert.ok(runtime.every(([, p]) => !p.hasInstallScript && !p.gypfile));
  assert.deepEqual(Object.keys(lock.packages['node_modules/jose'].dependencies ?? {}), []);
});

test("README's API reference is generated from the current types", () => {
  execFileSync(process.execPath, [join(root, 'scripts', 'api-reference.mjs'), '--check'], { stdio: 'pipe' });
});
