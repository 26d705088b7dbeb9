// src/index.ts: the phi-guard package — a TypeScript client for the
// phi_guard PostgreSQL extension. Node-postgres helpers, context signing,
// typed errors and the alert listener; the Drizzle helpers are in
// 'phi-guard/drizzle' and the edge-only signer in 'phi-guard/signer'.
// No module of the package imports a Node.js built-in or native code.

export * from './signer.js';
export * from './context.js';
export * from './sql.js';
export * from './errors.js';
export * from './keys.js';
export * from './alerts.js';
