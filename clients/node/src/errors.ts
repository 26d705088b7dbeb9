// src/errors.ts: typed errors for the SQLSTATEs phi_guard raises.
//
// Each PhiGuardError has a stable `code` to branch on and the `sqlstate` it
// came from. Its message is a fixed summary followed by the server's primary
// message, which for these SQLSTATEs names keys, claims, roles or tables and
// never a value (phi_guard's contract, README "Errors"). The server's
// DETAIL and CONTEXT lines, and the original error, are NOT kept: a CONTEXT
// line can quote the SQL statement, and a statement can hold PHI literals.

/** The stable codes of PhiGuardError, one per class. */
export type PhiGuardErrorCode =
  | 'decrypt_failed'
  | 'key_destroyed'
  | 'master_key_unavailable'
  | 'key_unwrap_failed'
  | 'no_active_key'
  | 'access_not_recorded'
  | 'context_rejected'
  | 'access_denied'
  | 'transaction_rolled_back';

/** Any error this package raises on behalf of phi_guard. */
export class PhiGuardError extends Error {
  /** Stable code for programs; never changes between versions. */
  readonly code: PhiGuardErrorCode;
  /** The SQLSTATE the server raised, or null for an error the client detected. */
  readonly sqlstate: string | null;
  /** The server's hint: a full sentence saying what to do, when it gave one. */
  readonly hint: string | undefined;

  constructor(code: PhiGuardErrorCode, sqlstate: string | null, message: string, hint?: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.sqlstate = sqlstate;
    this.hint = hint;
  }
}

/** PH001: the value was altered, encrypted under another key, or the aad differs. */
export class DecryptError extends PhiGuardError {}
/** PH002: the value's key version was destroyed (crypto-shredded). */
export class KeyDestroyedError extends PhiGuardError {}
/** PH003: the server has no master key (phi_guard not preloaded, or the key did not load). */
export class MasterKeyUnavailableError extends PhiGuardError {}
/** PH004: a data key cannot be unwrapped with the server's master key. */
export class KeyUnwrapError extends PhiGuardError {}
/** PH005: the key name has no active version. */
export class NoActiveKeyError extends PhiGuardError {}
/** PH006: the access could not be recorded in the audit log, so it was refused. */
export class AccessNotRecordedError extends PhiGuardError {}
/** 28000: the context token was refused (expired, unknown or revoked key, bad signature, ...). */
export class ContextRejectedError extends PhiGuardError {}
/** 42501: a privilege, a key's access rule, break-glass or a row-level security policy refused. */
export class AccessDeniedError extends PhiGuardError {}
/** The transaction of `withPhiContext` was aborted and rolled back although no error reached it. */
export class TransactionRolledBackError extends PhiGuardError {}

type PhiGuardErrorClass = new (code: PhiGuardErrorCode, sqlstate: string | null, message: string, hint?: string) => PhiGuardError;

const BY_SQLSTATE: Record<string, [PhiGuardErrorClass, PhiGuardErrorCode, string]> = {
  PH001: [DecryptError, 'decrypt_failed', 'cannot decrypt'],
  PH002: [KeyDestroyedError, 'key_destroyed', 'key destroyed'],
  PH003: [MasterKeyUnavailableError, 'master_key_unavailable', 'no master key'],
  PH004: [KeyUnwrapError, 'key_unwrap_failed', 'cannot unwrap data key'],
  PH005: [NoActiveKeyError, 'no_active_key', 'no active key version'],
  PH006: [AccessNotRecordedError, 'access_not_recorded', 'access not recorded'],
  '28000': [ContextRejectedError, 'context_rejected', 'context rejected'],
  '42501': [AccessDeniedError, 'access_denied', 'access denied'],
};

/** The SQLSTATEs mapped to typed errors. */
export const MAPPED_SQLSTATES: readonly string[] = Object.freeze(Object.keys(BY_SQLSTATE));

/**
 * Maps a node-postgres error whose SQLSTATE is one of MAPPED_SQLSTATES to its
 * PhiGuardError subclass; returns any other value unchanged. An error that
 * wraps a database error in `cause` (Drizzle's DrizzleQueryError, whose
 * message repeats the query's parameters) is mapped by that cause.
 */
export function toPhiGuardError(err: unknown): unknown {
  for (let e: unknown = err, depth = 0; depth < 4 && typeof e === 'object' && e !== null; depth++) {
    if (e instanceof PhiGuardError) return e;
    const { code, message, hint, cause } = e as { code?: unknown; message?: unknown; hint?: unknown; cause?: unknown };
    if (typeof code === 'string' && Object.hasOwn(BY_SQLSTATE, code)) {
      const [Class, stable, summary] = BY_SQLSTATE[code]!;
      const reason = typeof message === 'string' && message !== '' ? `: ${message}` : '';
      return new Class(stable, code, `${summary} (SQLSTATE ${code})${reason}`, typeof hint === 'string' ? hint : undefined);
    }
    e = cause;
  }
  return err;
}

/** True for the errors of this package. */
export function isPhiGuardError(err: unknown): err is PhiGuardError {
  return err instanceof PhiGuardError;
}
