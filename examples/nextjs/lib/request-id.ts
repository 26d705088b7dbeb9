// lib/request-id.ts: each HTTP request's id. middleware.ts gives every
// request a fresh random one (replacing any header the client sent) and
// returns it as X-Request-Id; asUser (lib/db.ts) signs it into the
// request's context tokens as `jti`, so every audit entry the request
// causes carries it as `request_id` (phi_disclosures lists it). Imported by
// the middleware too, so it holds no server-only code.

/** The request header that carries the request's id, set by middleware.ts only. */
export const REQUEST_ID_HEADER = 'x-request-id';
