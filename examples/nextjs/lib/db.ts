// lib/db.ts: the two connection pools and the context signer, one of each
// per server process.
//
// The application's pool logs in as clinic_web_app (phi_app, phi_encryptor,
// phi_decryptor); the auditors' as clinic_web_auditor (phi_auditor only).
// Neither is a superuser, bypasses row security or owns the tables. Every
// query that touches PHI runs through asUser(), i.e. inside phi-guard's
// withPhiContext: one transaction whose first statement sets the user's
// signed context, so the database — row security, access rules, masks,
// audit — knows who is asking, and its `jti` is the HTTP request's id, so
// every audit entry names the request that caused it (request_id).
import 'server-only';
import { headers } from 'next/headers';
import pg from 'pg';
import { createContextSigner, withPhiContext, type ContextSigner } from 'phi-guard';
import { contextKey, databaseRoles } from './config';
import { REQUEST_ID_HEADER } from './request-id';
import type { User } from './users';

type Pools = { app: pg.Pool; auditor: pg.Pool; signer: Promise<ContextSigner> };

const globalForPools = globalThis as unknown as { phiGuardPools?: Pools };

function pools(): Pools {
  if (!globalForPools.phiGuardPools) {
    const roles = databaseRoles();
    const { kid, privateKeyPem } = contextKey();
    globalForPools.phiGuardPools = {
      app: new pg.Pool({ user: roles.app, max: 5, application_name: 'clinic_web' }),
      auditor: new pg.Pool({ user: roles.auditor, max: 2, application_name: 'clinic_web_audit' }),
      signer: createContextSigner({ kid, privateKey: privateKeyPem }),
    };
  }
  return globalForPools.phiGuardPools;
}

/** Purpose of use per role, as the audit log records it. */
function purposeOf(user: User): string {
  if (user.roles.includes('clinician')) return 'treatment';
  if (user.roles.includes('billing')) return 'payment';
  return 'operations';
}

/**
 * Runs fn(client) in one transaction under `user`'s signed context, on the
 * application's pool or, with pool 'auditor', the auditors'. The context's
 * `jti` is the request's id (middleware.ts sets it on every request; were
 * it missing, the signer would draw a random one).
 */
export async function asUser<T>(user: User, fn: (client: pg.PoolClient) => Promise<T>,
                                pool: 'app' | 'auditor' = 'app'): Promise<T> {
  const p = pools();
  const jti = (await headers()).get(REQUEST_ID_HEADER) ?? undefined;
  return withPhiContext(p[pool], {
    signer: await p.signer,
    claims: { sub: user.id, tenant: user.clinic, roles: user.roles, purpose: purposeOf(user), jti },
  }, fn);
}
