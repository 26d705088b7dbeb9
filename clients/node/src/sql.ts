// src/sql.ts: SQL fragments for node-postgres that call phi_guard's
// functions with bind parameters.
//
// A fragment is text with placeholders plus the values they stand for. It
// renders to node-postgres's { text, values } with $n numbered from any
// start, so it can be spliced into a query that already has parameters, and
// fragments nest: `sql` interpolates a fragment as SQL and anything else as
// a parameter. Values (plaintext, aad, search terms) are therefore never
// part of the statement text, which the server may log.
//
//   const q = sql`SELECT ${phiDecrypt(sql.ident('ssn'), sql`'patients.ssn:' || id`)} AS ssn
//                   FROM patients WHERE ${blindIndexEquals(sql.ident('mrn_bidx'), mrn, 'mrn_index')}`;
//   await client.query(q);          // or q.render(3) to start at $3

/** node-postgres's query config: statement text and its parameters. */
export interface RenderedSql {
  text: string;
  values: unknown[];
}

/** A piece of SQL with parameters; pass it to `client.query()` as is or `render()` it. */
export class SqlFragment {
  /** Text pieces around the parameters. */
  readonly chunks: readonly string[];
  /** Parameter values, one between each pair of chunks. */
  readonly params: readonly unknown[];

  /** Prefer `sql`, `sql.raw` and `sql.ident`; `chunks.length` must be `params.length + 1`. */
  constructor(chunks: readonly string[], params: readonly unknown[]) {
    if (chunks.length !== params.length + 1) throw new RangeError('a fragment needs one more text chunk than parameters');
    this.chunks = chunks;
    this.params = params;
  }

  /** The text with `$firstIndex`, `$firstIndex+1`, ... and the values they stand for. */
  render(firstIndex = 1): RenderedSql {
    if (!Number.isInteger(firstIndex) || firstIndex < 1) throw new RangeError('firstIndex must be a positive integer');
    let text = this.chunks[0]!;
    for (let i = 0; i < this.params.length; i++) text += `$${firstIndex + i}${this.chunks[i + 1]}`;
    return { text, values: [...this.params] };
  }

  /** The text, numbered from $1 (node-postgres reads this). */
  get text(): string {
    return this.render().text;
  }

  /** The values of $1, $2, ... (node-postgres reads this). */
  get values(): unknown[] {
    return [...this.params];
  }
}

// Builds a fragment from template pieces: a SqlFragment argument is spliced
// in, any other argument becomes a parameter.
function compose(strings: readonly string[], args: readonly unknown[]): SqlFragment {
  const chunks: string[] = [strings[0]!];
  const params: unknown[] = [];
  args.forEach((arg, i) => {
    if (arg instanceof SqlFragment) {
      chunks[chunks.length - 1] += arg.chunks[0];
      for (let j = 0; j < arg.params.length; j++) {
        params.push(arg.params[j]);
        chunks.push(arg.chunks[j + 1]!);
      }
      chunks[chunks.length - 1] += strings[i + 1];
    } else {
      params.push(arg);
      chunks.push(strings[i + 1]!);
    }
  });
  return new SqlFragment(chunks, params);
}

/**
 * Tagged template: `sql\`... ${value} ...\`` makes `value` a parameter, a
 * SqlFragment is spliced in. Also: `sql.raw(text)` (SQL taken as is, never
 * user input), `sql.ident(...names)` (a quoted, dot-joined identifier),
 * `sql.join(fragments, separator = ', ')`.
 */
export function sql(strings: TemplateStringsArray, ...args: unknown[]): SqlFragment {
  return compose(strings, args);
}

/** SQL text taken as is. Never pass it input from a user. */
sql.raw = (text: string): SqlFragment => new SqlFragment([text], []);

/** A quoted identifier, e.g. `sql.ident('public', 'patients')` → `"public"."patients"`. */
sql.ident = (...names: string[]): SqlFragment => {
  if (names.length === 0 || names.some((n) => typeof n !== 'string' || n === '' || n.includes('\u0000'))) {
    throw new TypeError('sql.ident needs non-empty names');
  }
  return new SqlFragment([names.map((n) => `"${n.replace(/"/g, '""')}"`).join('.')], []);
};

/** Fragments joined by a separator (default `, `). */
sql.join = (fragments: readonly SqlFragment[], separator = ', '): SqlFragment => {
  const strings = fragments.length === 0 ? [''] : ['', ...fragments.slice(1).map(() => separator), ''];
  return compose(strings, fragments);
};

/** A value or a SQL expression (a column, a cast, a concatenation, ...). */
export type SqlArg<T> = T | SqlFragment;

// A parameter with a cast, or the fragment as given.
function arg(value: unknown, cast: string): SqlFragment {
  return value instanceof SqlFragment ? value : compose(['', `::${cast}`], [value]);
}

function isBytes(value: unknown): boolean {
  return value instanceof Uint8Array;
}

/**
 * `phi_guard.phi_encrypt(plaintext, key_name [, aad])`: a `phi_ciphertext`.
 * A string is encrypted as text, a Uint8Array (Buffer) as bytea.
 */
export function phiEncrypt(plaintext: SqlArg<string | Uint8Array | null>, keyName: SqlArg<string>,
                           aad?: SqlArg<string | null>): SqlFragment {
  const value = arg(plaintext, isBytes(plaintext) ? 'bytea' : 'text');
  return aad === undefined
    ? sql`phi_guard.phi_encrypt(${value}, ${arg(keyName, 'text')})`
    : sql`phi_guard.phi_encrypt(${value}, ${arg(keyName, 'text')}, ${arg(aad, 'text')})`;
}

/** `phi_guard.phi_decrypt(ciphertext [, aad])`: the text. `ciphertext` is usually a column (`sql.ident`). */
export function phiDecrypt(ciphertext: SqlArg<string | null>, aad?: SqlArg<string | null>): SqlFragment {
  const ct = arg(ciphertext, 'phi_guard.phi_ciphertext');
  return aad === undefined ? sql`phi_guard.phi_decrypt(${ct})` : sql`phi_guard.phi_decrypt(${ct}, ${arg(aad, 'text')})`;
}

/** `phi_guard.phi_decrypt_bytea(ciphertext [, aad])`: the bytes (a Buffer in node-postgres). */
export function phiDecryptBytea(ciphertext: SqlArg<string | null>, aad?: SqlArg<string | null>): SqlFragment {
  const ct = arg(ciphertext, 'phi_guard.phi_ciphertext');
  return aad === undefined
    ? sql`phi_guard.phi_decrypt_bytea(${ct})`
    : sql`phi_guard.phi_decrypt_bytea(${ct}, ${arg(aad, 'text')})`;
}

/**
 * `phi_guard.phi_decrypt_masked(ciphertext, aad, kind)`: the value for a
 * context that may read it in clear, the key's bound mask for one that may
 * read it masked.
 */
export function phiDecryptMasked(ciphertext: SqlArg<string | null>, aad: SqlArg<string | null>,
                                 kind: SqlArg<string>): SqlFragment {
  return sql`phi_guard.phi_decrypt_masked(${arg(ciphertext, 'phi_guard.phi_ciphertext')}, ${arg(aad, 'text')}, ${arg(kind, 'text')})`;
}

/** `phi_guard.phi_blind_index(value, key_name [, bits])`: an int8 for equality search. */
export function phiBlindIndex(value: SqlArg<string | null>, keyName: SqlArg<string>, bits?: SqlArg<number>): SqlFragment {
  return bits === undefined
    ? sql`phi_guard.phi_blind_index(${arg(value, 'text')}, ${arg(keyName, 'text')})`
    : sql`phi_guard.phi_blind_index(${arg(value, 'text')}, ${arg(keyName, 'text')}, ${arg(bits, 'int4')})`;
}

/** `phi_guard.phi_mask(value, kind)`: kinds ssn, email, phone, name, dob, zip. */
export function phiMask(value: SqlArg<string | null>, kind: SqlArg<string>): SqlFragment {
  return sql`phi_guard.phi_mask(${arg(value, 'text')}, ${arg(kind, 'text')})`;
}

/**
 * `column = phi_guard.phi_blind_index(value, key_name [, bits])`: the
 * blind-index lookup in the form a btree index on `column` serves (the
 * column bare on the left, the stable function of parameters on the right).
 * `bits` must be the one the column was filled with. A blind index matches
 * equal values and, rarely, others: compare the decrypted value too when a
 * false match matters.
 */
export function blindIndexEquals(column: SqlFragment, value: SqlArg<string | null>, keyName: SqlArg<string>,
                                 bits?: SqlArg<number>): SqlFragment {
  return sql`${column} OPERATOR(pg_catalog.=) ${phiBlindIndex(value, keyName, bits)}`;
}
