// app/forbidden/page.tsx: where a user lands who opened a view their role does not allow.
export default function Forbidden() {
  return (
    <>
      <h1>Not available</h1>
      <p className="banner error" role="alert">Your role does not give access to this view.</p>
    </>
  );
}
