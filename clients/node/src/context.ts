// src/context.ts: runs a request's queries in one transaction that starts by
// handing phi_guard the request's signed context.
//
// Invariant: a connection goes back to the pool only after its transaction
// ended (COMMIT or ROLLBACK), and phi_guard ends the context with the
// transaction, so the next borrower of the connection starts without one.
// A connection whose transaction cannot be ended is destroyed, not pooled.
// The token travels as a bind parameter, never in the statement text (which
// the server may log).

import { TransactionRolledBackError, toPhiGuardError } from './errors.js';
import type { ContextClaims, ContextSigner } from './signer.js';

/** The result of a query, as much of it as this package reads. */
export interface QueryResultLike {
  rows: any[];
  command?: string;
}

/** Anything that runs a query with bind parameters: a node-postgres Client, PoolClient or Pool. */
export interface Queryable {
  query(text: string, values?: any[]): Promise<QueryResultLike>;
}

/** A connection borrowed from a pool (node-postgres `PoolClient`). */
export interface PoolClientLike extends Queryable {
  release(destroy?: Error | boolean): void;
  on?(event: 'error', listener: (err: Error) => void): unknown;
  removeListener?(event: 'error', listener: (err: Error) => void): unknown;
}

/** A connection pool (node-postgres `Pool`). */
export interface PoolLike<C extends PoolClientLike = PoolClientLike> {
  connect(): Promise<C>;
}

/** A token already signed, or the claims and the signer to sign them with. */
export type PhiContextSource = string | { signer: ContextSigner; claims: ContextClaims };

/** Options of the transaction `withPhiContext` opens. */
export interface PhiContextOptions {
  /** `BEGIN READ ONLY`. */
  readOnly?: boolean;
  /** The isolation level (default: the server's, normally read committed). */
  isolationLevel?: 'read committed' | 'repeatable read' | 'serializable';
}

/** The statement that sets the context; `$1` is the token. */
export const SET_CONTEXT_SQL = 'SELECT phi_guard.phi_set_context($1)';

const ISOLATION_LEVELS = new Set(['read committed', 'repeatable read', 'serializable']);

function beginStatement(options: PhiContextOptions): string {
  let text = 'BEGIN';
  if (options.isolationLevel !== undefined) {
    if (!ISOLATION_LEVELS.has(options.isolationLevel)) throw new TypeError('unknown isolation level');
    text += ` ISOLATION LEVEL ${options.isolationLevel.toUpperCase()}`;
  }
  if (options.readOnly) text += ' READ ONLY';
  return text;
}

/**
 * Borrows a connection from `pool`, runs `BEGIN`, then
 * `SELECT phi_guard.phi_set_context($1)` with the token as its first
 * statement, then `fn(client)`, then `COMMIT`, and returns what `fn`
 * returned. On any error the transaction is rolled back and the error
 * rethrown — mapped by `toPhiGuardError` (a refused token is a
 * `ContextRejectedError`). A transaction that ends rolled back without an
 * error reaching this function (an error `fn` caught) raises
 * `TransactionRolledBackError`. The connection is released in every case,
 * and destroyed when its transaction could not be ended or the connection
 * reported an error. `fn` must not
 * release the client nor keep it after it returns.
 */
export async function withPhiContext<C extends PoolClientLike, T>(
  pool: PoolLike<C>,
  context: PhiContextSource,
  fn: (client: C) => Promise<T> | T,
  options: PhiContextOptions = {},
): Promise<T> {
  const begin = beginStatement(options);
  // sign before borrowing: a signing error holds no connection
  const token = typeof context === 'string' ? context : await context.signer.sign(context.claims);
  const client = await pool.connect();
  let destroy = false;
  // A connection lost between two queries emits 'error' on the borrowed
  // client, which would otherwise be an uncaught exception; the next query
  // fails anyway, and the connection must not be pooled again.
  const onError = (): void => { destroy = true; };
  client.on?.('error', onError);
  try {
    await client.query(begin);
    await client.query(SET_CONTEXT_SQL, [token]);
    const result = await fn(client);
    const commit = await client.query('COMMIT');
    if (commit.command !== undefined && commit.command !== 'COMMIT') {
      throw new TransactionRolledBackError('transaction_rolled_back', null,
        'the transaction was aborted by an error the callback caught, and rolled back');
    }
    return result;
  } catch (err) {
    try {
      await client.query('ROLLBACK');
    } catch {
      destroy = true; // the transaction may still be open: never pool this connection
    }
    throw toPhiGuardError(err);
  } finally {
    client.removeListener?.('error', onError);
    client.release(destroy);
  }
}
