// next.config.mjs: no "X-Powered-By", node-postgres loaded by Node.js at run
// time rather than bundled. Security headers and the CSP are set per request
// by middleware.ts (the CSP needs a fresh nonce for every response).

/** @type {import('next').NextConfig} */
const nextConfig = {
  poweredByHeader: false,
  reactStrictMode: true,
  serverExternalPackages: ['pg'],
  // the repository lints with its own tools; `next build` type-checks
  eslint: { ignoreDuringBuilds: true },
};

export default nextConfig;
