// lib/http.ts: what the Route Handlers share — the same-origin check for
// state-changing requests, and responses that are never cached.
import 'server-only';

/** Headers of every Route Handler response: never stored by a cache. */
export const NO_STORE = { 'Cache-Control': 'no-store' } as const;

/**
 * True when a POST comes from this site's own pages: its Origin names the
 * host it was sent to. With the SameSite=Strict session cookie this keeps
 * other sites from submitting forms on a user's behalf.
 */
export function sameOrigin(request: Request): boolean {
  const origin = request.headers.get('origin');
  const host = request.headers.get('host');
  if (!origin || !host) return false;
  try {
    return new URL(origin).host === host;
  } catch {
    return false;
  }
}

/** 303 See Other to a path of this site (after a POST, the browser GETs it). */
export function seeOther(path: string): Response {
  return new Response(null, { status: 303, headers: { Location: path, ...NO_STORE } });
}

/** A plain-text error page. */
export function textResponse(status: number, text: string): Response {
  return new Response(text, { status, headers: { 'Content-Type': 'text/plain; charset=utf-8', ...NO_STORE } });
}
