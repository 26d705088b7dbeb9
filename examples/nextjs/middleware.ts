// middleware.ts: security headers on every response, with a fresh CSP nonce
// per request, and the request's id (lib/request-id.ts): a random UUID,
// passed on to the server as X-Request-Id (any the client sent is
// replaced) and returned to the client as X-Request-Id.
//
// The CSP allows scripts only from this origin carrying this response's
// nonce ('strict-dynamic' lets them load Next.js's chunks), styles only from
// this origin, no plugins, no framing, forms posting only to this origin.
// Next.js reads the nonce from the request's Content-Security-Policy header
// and puts it on the scripts it renders. Runs in the edge runtime: WebCrypto
// only.
import { NextResponse, type NextRequest } from 'next/server';
import { REQUEST_ID_HEADER } from '@/lib/request-id';

export function middleware(request: NextRequest) {
  const nonce = btoa(crypto.randomUUID());
  const requestId = crypto.randomUUID();
  const csp = [
    "default-src 'self'",
    `script-src 'self' 'nonce-${nonce}' 'strict-dynamic'`,
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');

  const requestHeaders = new Headers(request.headers);
  requestHeaders.set('Content-Security-Policy', csp);
  requestHeaders.set(REQUEST_ID_HEADER, requestId);
  const response = NextResponse.next({ request: { headers: requestHeaders } });
  response.headers.set('Content-Security-Policy', csp);
  response.headers.set(REQUEST_ID_HEADER, requestId);
  response.headers.set('Cache-Control', 'no-store');
  response.headers.set('X-Content-Type-Options', 'nosniff');
  response.headers.set('X-Frame-Options', 'DENY');
  // same-origin, not no-referrer: with no-referrer browsers send "Origin: null"
  // on form posts, and the same-origin checks (ours, Server Actions') need it
  response.headers.set('Referrer-Policy', 'same-origin');
  response.headers.set('Cross-Origin-Opener-Policy', 'same-origin');
  response.headers.set('Permissions-Policy', 'camera=(), microphone=(), geolocation=(), payment=()');
  return response;
}

export const config = {
  // every page and route handler; not the immutable build assets
  matcher: [{ source: '/((?!_next/static|_next/image|favicon.ico).*)' }],
};
