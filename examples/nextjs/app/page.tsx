// app/page.tsx: the home page sends each user to the view of their role.
import { redirect } from 'next/navigation';
import { requireUser } from '@/lib/session';

export default async function Home() {
  const user = await requireUser();
  if (user.roles.includes('clinician')) redirect('/patients');
  if (user.roles.includes('billing')) redirect('/billing');
  if (user.roles.includes('auditor')) redirect('/audit');
  redirect('/forbidden');
}
