// src/db.js: runs a request's queries inside one transaction that starts by
// handing phi_guard the request's signed context token.
//
// phi_set_context() verifies the token and sets the context (user, tenant,
// roles, purpose) for the rest of the transaction only: COMMIT or ROLLBACK
// clears it, so the next request that borrows the same pooled connection
// starts without one and sees no rows until it sets its own.

// withContext(pool, token, fn): BEGIN; SELECT phi_guard.phi_set_context(token);
// result = await fn(client); COMMIT; returns result. On any error the
// transaction is rolled back and the error is rethrown (a rejected token
// raises SQLSTATE 28000). The client goes back to the pool in every case;
// a client whose ROLLBACK failed is discarded instead.
export async function withContext(pool, token, fn) {
  const client = await pool.connect();
  let broken = false;
  try {
    await client.query('BEGIN');
    await client.query('SELECT phi_guard.phi_set_context($1)', [token]);
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    try {
      await client.query('ROLLBACK');
    } catch {
      broken = true; // the connection is unusable: do not pool it again
    }
    throw err;
  } finally {
    client.release(broken);
  }
}
