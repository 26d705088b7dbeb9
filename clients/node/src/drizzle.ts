// src/drizzle.ts: phi_guard for Drizzle ORM (import from 'phi-guard/drizzle').
//
// A column type for phi_ciphertext and SQL expressions that call phi_guard's
// functions with bind parameters. Values stay parameters; the blind-index
// lookup keeps the column bare on the left so a btree index on it serves
// the query. Use them inside withPhiContext, with the transaction's client:
//
//   await withPhiContext(pool, ctx, async (client) => {
//     const db = drizzle(client);
//     return db.select({ ssn: phiDecrypt(patients.ssn, sql`'patients.ssn:' || ${patients.id}`) })
//              .from(patients).where(blindIndexEquals(patients.mrnBidx, mrn, 'mrn_index'));
//   });

import { sql, type SQL, type SQLWrapper } from 'drizzle-orm';
import { customType } from 'drizzle-orm/pg-core';

/**
 * A `phi_guard.phi_ciphertext` column. Its value in JavaScript is the
 * ciphertext's text form (`phi1:...`), opaque to the application: write it
 * with `phiEncrypt(...)`, read the plaintext with `phiDecrypt(column, aad)`.
 */
export const phiCiphertext = customType<{ data: string; driverData: string }>({
  dataType() {
    return 'phi_guard.phi_ciphertext';
  },
});

/** A value (sent as a parameter) or an SQL expression (a column, `sql\`...\``). */
export type DrizzleArg<T> = T | SQLWrapper;

function isWrapper(value: unknown): value is SQLWrapper {
  return typeof value === 'object' && value !== null && typeof (value as SQLWrapper).getSQL === 'function';
}

// A parameter with a cast, or the expression as given.
function arg(value: unknown, cast: string): SQL {
  return isWrapper(value) ? sql`${value}` : sql`${value}::${sql.raw(cast)}`;
}

/** `phi_guard.phi_encrypt(plaintext, key_name [, aad])`, for inserts and updates. */
export function phiEncrypt(plaintext: DrizzleArg<string | Uint8Array | null>, keyName: DrizzleArg<string>,
                           aad?: DrizzleArg<string | null>): SQL<string> {
  const value = arg(plaintext, plaintext instanceof Uint8Array ? 'bytea' : 'text');
  return aad === undefined
    ? sql<string>`phi_guard.phi_encrypt(${value}, ${arg(keyName, 'text')})`
    : sql<string>`phi_guard.phi_encrypt(${value}, ${arg(keyName, 'text')}, ${arg(aad, 'text')})`;
}

/** `phi_guard.phi_decrypt(ciphertext [, aad])`. */
export function phiDecrypt(ciphertext: DrizzleArg<string | null>, aad?: DrizzleArg<string | null>): SQL<string | null> {
  const ct = arg(ciphertext, 'phi_guard.phi_ciphertext');
  return aad === undefined
    ? sql<string | null>`phi_guard.phi_decrypt(${ct})`
    : sql<string | null>`phi_guard.phi_decrypt(${ct}, ${arg(aad, 'text')})`;
}

/** `phi_guard.phi_decrypt_masked(ciphertext, aad, kind)`. */
export function phiDecryptMasked(ciphertext: DrizzleArg<string | null>, aad: DrizzleArg<string | null>,
                                 kind: DrizzleArg<string>): SQL<string | null> {
  return sql<string | null>`phi_guard.phi_decrypt_masked(${arg(ciphertext, 'phi_guard.phi_ciphertext')}, ${arg(aad, 'text')}, ${arg(kind, 'text')})`;
}

/** `phi_guard.phi_blind_index(value, key_name [, bits])`, for filling a blind-index column. */
export function phiBlindIndex(value: DrizzleArg<string | null>, keyName: DrizzleArg<string>,
                              bits?: DrizzleArg<number>): SQL<string | null> {
  return bits === undefined
    ? sql<string | null>`phi_guard.phi_blind_index(${arg(value, 'text')}, ${arg(keyName, 'text')})`
    : sql<string | null>`phi_guard.phi_blind_index(${arg(value, 'text')}, ${arg(keyName, 'text')}, ${arg(bits, 'int4')})`;
}

/** `phi_guard.phi_mask(value, kind)`. */
export function phiMask(value: DrizzleArg<string | null>, kind: DrizzleArg<string>): SQL<string | null> {
  return sql<string | null>`phi_guard.phi_mask(${arg(value, 'text')}, ${arg(kind, 'text')})`;
}

/**
 * `column = phi_guard.phi_blind_index(value, key_name [, bits])` for
 * `.where()`: the column bare on the left, so a btree index on it is used.
 */
export function blindIndexEquals(column: SQLWrapper, value: DrizzleArg<string | null>, keyName: DrizzleArg<string>,
                                 bits?: DrizzleArg<number>): SQL {
  return sql`${column} OPERATOR(pg_catalog.=) ${phiBlindIndex(value, keyName, bits)}`;
}
