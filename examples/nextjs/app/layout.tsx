// app/layout.tsx: the frame of every page — who is signed in, what they may
// open, sign-out. Every page is rendered per request (dynamic): nothing
// with PHI is ever prerendered or cached, and each response gets its own
// CSP nonce from middleware.ts.
import type { Metadata } from 'next';
import type { ReactNode } from 'react';
import { currentUser } from '@/lib/session';
import './globals.css';

export const dynamic = 'force-dynamic';

export const metadata: Metadata = {
  title: 'Clinic — phi_guard demo',
  robots: { index: false, follow: false },
  referrer: 'same-origin',
};

export default async function RootLayout({ children }: { children: ReactNode }) {
  const user = await currentUser();
  const has = (role: string) => user?.roles.includes(role as never) ?? false;
  return (
    <html lang="en">
      <body>
        <header>
          <span className="brand">Clinic</span>
          <nav>
            {has('clinician') && <a href="/patients">My patients</a>}
            {has('clinician') && <a href="/search">Search</a>}
            {has('clinician') && <a href="/break-glass">Emergency access</a>}
            {has('billing') && <a href="/billing">Billing</a>}
            {has('auditor') && <a href="/audit">Audit</a>}
          </nav>
          {user && (
            <>
              <span className="who" data-testid="who">{user.displayName} · clinic {user.clinic}</span>
              <form action="/api/signout" method="post">
                <button className="link" type="submit">Sign out</button>
              </form>
            </>
          )}
        </header>
        <main>{children}</main>
      </body>
    </html>
  );
}
