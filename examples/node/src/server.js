// src/server.js: starts the example service on 127.0.0.1.
//
//   PGHOST=... PGDATABASE=clinic node src/server.js
//   curl -H 'X-User: alice' http://127.0.0.1:3000/patients
//
// Connects as APP_ROLE (default clinic_app, created by src/setup.js) and
// signs context tokens with keys/context-ed25519.pem under CONTEXT_KID.

import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { createContextSigner } from 'phi-guard';
import { createApp } from './app.js';

const here = dirname(fileURLToPath(import.meta.url));
const keyFile = process.env.CONTEXT_KEY_FILE ?? join(here, '..', 'keys', 'context-ed25519.pem');
const signer = await createContextSigner({
  kid: process.env.CONTEXT_KID ?? 'node-example-1',
  privateKey: await readFile(keyFile, 'utf8'),
});
const pool = new pg.Pool({ user: process.env.APP_ROLE ?? 'clinic_app', max: 5 });
const port = Number(process.env.PORT ?? 3000);

const server = createApp({ pool, signer });
server.listen(port, '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});

const stop = () => server.close(() => pool.end());
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
