// src/app.js: a tiny HTTP service (node:http only) whose every request runs
// its queries in a transaction that carries the end user's signed context.
//
// Who the user is comes from the X-User header, looked up in DEMO_USERS.
// That is a stand-in: a real service takes the user from its session or an
// OIDC access token it has verified, and never from a header a client can
// set. What matters here is the step after authentication: the service
// signs {sub, tenant, roles, purpose} and the database, not the service's
// SQL, enforces which rows that user may see.
//
// Routes:
//   GET    /me           the context as the database sees it
//   GET    /patients     the patients the context may see (SSN in clear only
//                        for roles with the patient.read permission)
//   POST   /break-glass  {"reason": "...", "minutes": 15} opens emergency
//                        access to every patient of the user's tenant
//   DELETE /break-glass  ends it early

import http from 'node:http';
import { AccessDeniedError, ContextRejectedError, phiDecrypt, sql, withPhiContext } from 'phi-guard';

// The example's user directory: user id -> tenant and application roles.
export const DEMO_USERS = {
  alice: { tenant: 'north', roles: ['clinician'] },
  bob: { tenant: 'north', roles: ['clinician'] },
  carol: { tenant: 'south', roles: ['clinician'] },
  dave: { tenant: 'north', roles: ['billing'] },
};

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

const MAX_BODY_BYTES = 16 * 1024;

async function readJson(req) {
  let size = 0;
  const chunks = [];
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, 'request body too large');
    chunks.push(chunk);
  }
  if (size === 0) return {};
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'request body is not valid JSON');
  }
}

function send(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(text);
}

// Maps an error to an HTTP status. withPhiContext turns phi_guard's
// SQLSTATEs into typed errors: ContextRejectedError (28000) a rejected
// context token, AccessDeniedError (42501) a refused privilege, access rule
// or row-level security check; class 22 is bad input (for example a too
// short break-glass reason). Anything else is a 500 without details.
function toResponse(err) {
  if (err instanceof HttpError) return [err.status, { error: err.message }];
  if (err instanceof ContextRejectedError) return [401, { error: 'context rejected', sqlstate: err.sqlstate }];
  if (err instanceof AccessDeniedError) return [403, { error: err.message, sqlstate: err.sqlstate }];
  if (typeof err.code === 'string' && err.code.startsWith('22')) {
    return [400, { error: err.message, sqlstate: err.code }];
  }
  return [500, { error: 'internal error' }];
}

// createApp({ pool, signer, users }): an http.Server (not yet listening).
// pool is a pg.Pool logged in as the service's role, signer comes from
// phi-guard's createContextSigner().
export function createApp({ pool, signer, users = DEMO_USERS, log = console }) {
  // The "authenticated" user of a request, as context claims.
  function claimsFor(req) {
    const sub = req.headers['x-user'];
    const user = typeof sub === 'string' ? users[sub] : undefined;
    if (!user || !Object.hasOwn(users, sub)) throw new HttpError(401, 'unknown user');
    const purpose = req.headers['x-purpose'] ?? 'treatment';
    return { sub, tenant: user.tenant, roles: user.roles, purpose };
  }

  // Runs fn(client) in a transaction whose first statement sets the
  // request user's signed context (phi-guard's withPhiContext).
  function asUser(req, fn) {
    return withPhiContext(pool, { signer, claims: claimsFor(req) }, fn);
  }

  const routes = {
    'GET /me': (req) =>
      asUser(req, async (db) => {
        const { rows } = await db.query(`
          SELECT phi_guard.phi_user_id() AS user, phi_guard.phi_tenant_id() AS tenant,
                 phi_guard.phi_roles() AS roles, phi_guard.phi_purpose() AS purpose,
                 phi_guard.phi_break_glass_active() AS break_glass`);
        return rows[0];
      }),

    'GET /patients': (req) =>
      asUser(req, async (db) => {
        // No WHERE tenant = ...: row-level security adds it. CASE evaluates
        // phi_decrypt only for contexts allowed to read the SSN.
        const ssn = phiDecrypt(sql.ident('ssn'), sql`'patients.ssn:' OPERATOR(pg_catalog.||) id::text`);
        const { rows } = await db.query(sql`
          SELECT id, name, assigned_user,
                 CASE WHEN phi_guard.phi_has_permission('patient.read') THEN ${ssn} END AS ssn
            FROM public.patients
           ORDER BY id`);
        return { patients: rows };
      }),

    'POST /break-glass': async (req) => {
      const { reason, minutes = 15 } = await readJson(req);
      if (typeof reason !== 'string') throw new HttpError(400, 'reason is required');
      if (!Number.isInteger(minutes)) throw new HttpError(400, 'minutes must be an integer');
      return asUser(req, async (db) => {
        const { rows } = await db.query(
          'SELECT phi_guard.phi_break_glass($1, $2) AS expires_at', [reason, minutes]);
        return { expires_at: rows[0].expires_at };
      });
    },

    'DELETE /break-glass': (req) =>
      asUser(req, async (db) => {
        const { rows } = await db.query('SELECT phi_guard.phi_break_glass_end() AS ended');
        return { ended: rows[0].ended };
      }),
  };

  return http.createServer(async (req, res) => {
    const path = new URL(req.url, 'http://localhost').pathname;
    const route = routes[`${req.method} ${path}`];
    try {
      if (!route) throw new HttpError(404, 'not found');
      send(res, 200, await route(req));
    } catch (err) {
      const [status, body] = toResponse(err);
      if (status === 500) log.error(`request failed: ${err.code ?? ''} ${err.message}`);
      send(res, status, body);
    }
  });
}
