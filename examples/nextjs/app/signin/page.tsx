// app/signin/page.tsx: the sign-in form. It posts to /api/session; the
// password never appears in a URL.
export default async function SignIn({ searchParams }: { searchParams: Promise<{ failed?: string }> }) {
  const { failed } = await searchParams;
  return (
    <>
      <h1>Sign in</h1>
      {failed && <p className="banner error" role="alert">Wrong user name or password.</p>}
      <form className="card" action="/api/session" method="post">
        <label htmlFor="username">User name</label>
        <input id="username" name="username" autoComplete="username" required />
        <label htmlFor="password">Password</label>
        <input id="password" name="password" type="password" autoComplete="current-password" required />
        <button type="submit">Sign in</button>
      </form>
      <p className="muted">Demo users and passwords: see examples/nextjs/README.md.</p>
    </>
  );
}
