// lib/clinic.ts: what the pages read and do, each inside the user's signed
// context (asUser). The functions return only the fields their page shows.
//
// Values are bound to their row with aad 'patients.<column>:<id>', so a
// ciphertext copied into another row does not decrypt there; the aad names
// the row and holds no PHI. Which rows a user sees is decided by the
// database's policies (clinic wall, care team, billing, auditors,
// break-glass), not by WHERE clauses here.
import 'server-only';
import type { PoolClient } from 'pg';
import {
  blindIndexEquals, phiDecrypt, phiDecryptMasked, sql, type SqlFragment,
} from 'phi-guard';
import { asUser } from './db';
import type { User } from './users';

/** The encrypted columns of public.patients. */
export const PHI_COLUMNS = ['name', 'dob', 'ssn', 'mrn'] as const;
export type PhiColumn = (typeof PHI_COLUMNS)[number];

// The aad of a value of `column` is rowRefPrefix(column) || the row's id: the
// row reference the audit log records for each value it reveals.
const rowRefPrefix = (column: PhiColumn): string => `patients.${column}:`;
const aad = (column: PhiColumn): SqlFragment => sql`${rowRefPrefix(column)}::text OPERATOR(pg_catalog.||) p.id::text`;
const col = (column: string): SqlFragment => sql.ident('p', column);
const decrypted = (column: PhiColumn): SqlFragment => phiDecrypt(col(column), aad(column));
// clear for a context that may read the key, the key's bound mask for one
// that may read it masked (phi_key_access / phi_mask_bind in scripts/setup.mjs)
const masked = (column: PhiColumn, kind: string): SqlFragment => phiDecryptMasked(col(column), aad(column), kind);

export interface PatientRow {
  id: number;
  name: string;
  dob: string;
  ssn: string;
  mrn: string;
  /** false when the row is visible only through the user's break-glass grant */
  ownPatient: boolean;
}

export interface ClinicianView {
  patients: PatientRow[];
  breakGlass: boolean;
}

/** The clinician's patients, decrypted; with break-glass open, the whole clinic's. */
export function clinicianView(user: User): Promise<ClinicianView> {
  return asUser(user, async (db) => {
    const { rows } = await db.query(sql`
      SELECT p.id, ${decrypted('name')} AS name, ${decrypted('dob')} AS dob,
             ${decrypted('ssn')} AS ssn, ${decrypted('mrn')} AS mrn,
             p.clinician OPERATOR(pg_catalog.=) phi_guard.phi_user_id() AS "ownPatient"
        FROM public.patients p
       ORDER BY p.id`);
    const bg = await db.query('SELECT phi_guard.phi_break_glass_active() AS active');
    return { patients: rows, breakGlass: bg.rows[0].active === true };
  });
}

export interface BillingRow {
  id: number;
  name: string;
  dob: string;
  ssn: string;
  mrn: string;
  balance: string;
}

/** The clinic's patients for billing: masks from the database, and the balance. */
export function billingView(user: User): Promise<BillingRow[]> {
  return asUser(user, async (db) => {
    const { rows } = await db.query(sql`
      SELECT p.id, ${masked('name', 'name')} AS name, ${masked('dob', 'dob')} AS dob,
             ${masked('ssn', 'ssn')} AS ssn, ${masked('mrn', 'zip')} AS mrn,
             pg_catalog.to_char(p.balance_cents / 100.0, 'FM999G990D00') AS balance
        FROM public.patients p
       ORDER BY p.id`);
    return rows;
  });
}

export interface SearchHit {
  id: number;
  name: string;
  dob: string;
  mrn: string;
}

/**
 * Patients whose MRN is `mrn`, found through the blind index (mrn_bidx, an
 * ordinary btree index) without decrypting any other row; shown decrypted
 * or masked as the user's context allows. Only rows the user may see match.
 */
export function searchByMrn(user: User, mrn: string): Promise<SearchHit[]> {
  return asUser(user, async (db) => {
    const { rows } = await db.query(sql`
      SELECT p.id, ${masked('name', 'name')} AS name, ${masked('dob', 'dob')} AS dob, ${masked('mrn', 'zip')} AS mrn
        FROM public.patients p
       WHERE ${blindIndexEquals(col('mrn_bidx'), mrn.trim().toUpperCase(), 'mrn_index')}
       ORDER BY p.id`);
    return rows;
  });
}

/** Opens break-glass for `minutes`; returns when it expires. The database checks the reason and the role. */
export function openBreakGlass(user: User, reason: string, minutes: number): Promise<Date> {
  return asUser(user, async (db) => {
    const { rows } = await db.query('SELECT phi_guard.phi_break_glass($1, $2) AS expires_at', [reason, minutes]);
    return rows[0].expires_at as Date;
  });
}

/** Ends the user's break-glass grant; false when none was open. */
export function endBreakGlass(user: User): Promise<boolean> {
  return asUser(user, async (db) => {
    const { rows } = await db.query('SELECT phi_guard.phi_break_glass_end() AS ended');
    return rows[0].ended === true;
  });
}

export interface ChainStatus {
  ok: boolean;
  blocks: string;
  entries: string;
  firstBadBlock: string | null;
  problem: string | null;
}

export interface AccessEntry {
  ts: string;
  kind: string;
  appUser: string | null;
  dbUser: string | null;
  purpose: string | null;
  what: string | null;
  reason: string | null;
  count: number | null;
}

export interface AuditView {
  chain: ChainStatus;
  /** Patient ids of the auditor's clinic (ids only: auditors read no PHI). */
  patientIds: number[];
  /** Disclosures and emergency access in the auditor's clinic, newest first. */
  recent: AccessEntry[];
}

// audit_events / phi_access_report rows as AccessEntry: `what`, `reason`
// and `count` as columns, or else from the entry's detail
function entryOf(r: Record<string, any>): AccessEntry {
  const count = r.count ?? r.detail?.count;
  return {
    ts: new Date(r.ts).toISOString(),
    kind: r.kind,
    appUser: r.app_user ?? null,
    dbUser: r.db_user ?? null,
    purpose: r.purpose ?? null,
    what: r.what ?? r.detail?.key ?? r.table_name ?? null,
    reason: r.reason ?? r.detail?.reason ?? null,
    count: count === null || count === undefined ? null : Number(count),
  };
}

// Runs fn on the auditors' pool under the auditor's context, after checking
// that the context has the audit.read permission.
function asAuditor<T>(user: User, fn: (db: PoolClient) => Promise<T>): Promise<T> {
  return asUser(user, async (db) => {
    const allowed = await db.query("SELECT phi_guard.phi_has_permission('audit.read') AS ok");
    if (allowed.rows[0].ok !== true) throw new Error('audit.read permission missing');
    return fn(db);
  }, 'auditor');
}

/**
 * The auditor page: the chain's verification (phi_audit_verify recomputes
 * every hash), the clinic's patient ids, and its recent access entries.
 */
export function auditOverview(user: User): Promise<AuditView> {
  return asAuditor(user, async (db) => {
    const v = await db.query('SELECT ok, blocks, entries, first_bad_block, problem FROM phi_guard.phi_audit_verify()');
    const chain: ChainStatus = {
      ok: v.rows[0].ok, blocks: String(v.rows[0].blocks), entries: String(v.rows[0].entries),
      firstBadBlock: v.rows[0].first_bad_block, problem: v.rows[0].problem,
    };
    const ids = await db.query('SELECT p.id FROM public.patients p ORDER BY p.id');
    // one line per user, kind, key and purpose: the last time and how many values
    const recent = await db.query(`
      SELECT pg_catalog.max(e.ts) AS ts, e.kind, e.app_user, e.db_user, e.purpose,
             COALESCE(e.detail->>'key', e.table_name) AS what, e.detail->>'reason' AS reason,
             pg_catalog.sum((e.detail->>'count')::int8)::int8 AS count
        FROM phi_guard.audit_events e
       WHERE e.tenant OPERATOR(pg_catalog.=) phi_guard.phi_tenant_id()
         AND e.kind OPERATOR(pg_catalog.=) ANY (ARRAY['decrypt', 'decrypt_masked', 'detokenize',
               'break_glass_open', 'break_glass_use', 'break_glass_end'])
       GROUP BY e.kind, e.app_user, e.db_user, e.purpose, what, reason
       ORDER BY pg_catalog.max(e.ts) DESC
       LIMIT 100`);
    return { chain, patientIds: ids.rows.map((r) => r.id as number), recent: recent.rows.map(entryOf) };
  });
}

export interface Disclosure {
  ts: string;
  /** decrypt, decrypt_masked (the value was read for a mask), … */
  kind: string;
  appUser: string | null;
  dbUser: string;
  purpose: string | null;
  /** The context token's jti: the HTTP request that read the value. */
  requestId: string | null;
  key: string;
  column: PhiColumn;
}

export interface PatientReport {
  /** Who saw the patient's protected values (phi_disclosures), oldest first. */
  disclosures: Disclosure[];
  /** Everything the log ties to the patient's row (phi_access_report), oldest first. */
  entries: AccessEntry[];
}

/**
 * One patient's accounting: phi_disclosures of each protected column's row
 * reference ('patients.<column>:<id>', the aad its value is bound to), and
 * phi_access_report of the row (its insert and changes, and the reads whose
 * reference ends in ':<id>'). Null when the patient is not one of the
 * auditor's clinic (the auditors' policy shows only those rows). Neither
 * holds a value: references, key names and who-fields only.
 */
export function patientReport(user: User, patientId: number): Promise<PatientReport | null> {
  return asAuditor(user, async (db) => {
    const own = await db.query('SELECT 1 FROM public.patients p WHERE p.id = $1', [patientId]);
    if (own.rowCount === 0) return null;
    const d = await db.query(`
      SELECT c.col AS "column", d.ts, d.kind, d.app_user, d.db_user, d.purpose, d.request_id, d.key
        FROM ROWS FROM (pg_catalog.unnest($1::text[]), pg_catalog.unnest($2::text[])) AS c(col, ref)
       CROSS JOIN LATERAL phi_guard.phi_disclosures(c.ref) d
       ORDER BY d.ts, c.col`,
      [PHI_COLUMNS, PHI_COLUMNS.map((column) => `${rowRefPrefix(column)}${patientId}`)]);
    const r = await db.query(`
      SELECT ts, kind, table_name, db_user, app_user, purpose, detail
        FROM phi_guard.phi_access_report($1)`, [String(patientId)]);
    return {
      disclosures: d.rows.map((x) => ({
        ts: new Date(x.ts).toISOString(), kind: x.kind, appUser: x.app_user, dbUser: x.db_user,
        purpose: x.purpose, requestId: x.request_id, key: x.key, column: x.column,
      })),
      entries: r.rows.map(entryOf),
    };
  });
}
