// src/keys.ts: the database side of context key rotation — register the
// public keys of a key ring with phi_guard and revoke the ones it dropped.
// Runs as a role holding phi_key_admin (a deployment or migration step, not
// the application's pooled role).

import type { Queryable } from './context.js';
import type { ContextKeyRing } from './signer.js';

/** A registered context key, as `phi_guard.phi_context_keys()` lists it. */
export interface RegisteredContextKey {
  kid: string;
  createdAt: Date;
  revokedAt: Date | null;
}

/** What `syncContextKeys` changed. */
export interface ContextKeySync {
  /** Key ids registered now. */
  added: string[];
  /** Key ids revoked now. */
  revoked: string[];
}

/** The registered context keys, oldest first (`phi_guard.phi_context_keys()`). */
export async function listContextKeys(db: Queryable): Promise<RegisteredContextKey[]> {
  const { rows } = await db.query('SELECT kid, created_at, revoked_at FROM phi_guard.phi_context_keys()');
  return rows.map((r) => ({ kid: r.kid, createdAt: r.created_at, revokedAt: r.revoked_at }));
}

/**
 * Registers every key of `ring` that the database does not know yet
 * (`phi_context_key_add`) and, with `revokeOthers`, revokes every active key
 * that is not in the ring (`phi_context_key_revoke`). A kid of the ring
 * that was revoked before is an error: phi_guard never reuses a kid.
 * Run it in a transaction to make it all-or-nothing.
 */
export async function syncContextKeys(db: Queryable, ring: ContextKeyRing,
                                      { revokeOthers = false }: { revokeOthers?: boolean } = {}): Promise<ContextKeySync> {
  const registered = new Map((await listContextKeys(db)).map((k) => [k.kid, k]));
  const result: ContextKeySync = { added: [], revoked: [] };
  for (const { kid, publicKeyPem } of await ring.publicKeys()) {
    const known = registered.get(kid);
    if (known?.revokedAt) throw new Error(`context key "${kid}" was revoked; a revoked kid is never reused`);
    if (!known) {
      await db.query('SELECT phi_guard.phi_context_key_add($1, $2)', [kid, publicKeyPem]);
      result.added.push(kid);
    }
  }
  if (revokeOthers) {
    const keep = new Set(ring.kids);
    for (const k of registered.values()) {
      if (k.revokedAt === null && !keep.has(k.kid)) {
        await db.query('SELECT phi_guard.phi_context_key_revoke($1)', [k.kid]);
        result.revoked.push(k.kid);
      }
    }
  }
  return result;
}
