# 013_online_migration.pl — phi_encrypt_column on a large table while
# pgbench writers run (issue 15, SPEC §9).
#
# A table of PHI_GUARD_MIGRATION_ROWS rows (default 1,000,000, about 80 s
# on two cores; fewer for a quick run) with plaintext
# SSNs, audited, is migrated by CALL phi_encrypt_column in batches of
# 10,000 while four pgbench clients keep reading it, updating other columns
# and writing SSNs (plaintext before the swap, phi_encrypt after it: the
# application checks the column's type under a lock that the swap waits
# for).  The migration's backend is killed (pg_terminate_backend) half-way
# through the backfill and the CALL is made again: it resumes.  Then the
# key is rotated and phi_rewrap_column moves the column while the writers
# go on.  Afterwards: no writer failed, no writer transaction took 1 s or
# more (pgbench's per-transaction log) and no lock wait of 1 s or more was
# logged (log_lock_waits); every value decrypts to its row's original
# under its row's aad; phi_key_usage shows the old key version unused; the
# audit chain verifies, with one column_migration entry per batch and no
# per-row entry of the migration's own updates.
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use PhiGuardTest;

my $rows = $ENV{PHI_GUARD_MIGRATION_ROWS} // 1000000;
die "PHI_GUARD_MIGRATION_ROWS must be a positive integer\n" unless $rows =~ /^[1-9]\d*$/;
my $batch = 10000;
my $clients = 4;

my ($node) = phi_guard_node(
	'migration',
	conf => [
		'max_connections = 30',
		"phi_guard.audit_seal_interval = '1s'",
		# a lock wait of a second or more is logged: the test looks for none
		'log_lock_waits = on',
		"deadlock_timeout = '1s'",
		'log_statement = none' ]);
my $dir = PostgreSQL::Test::Utils::tempdir;

sub query { return $node->safe_psql('postgres', $_[0]); }

my $t0 = time;
query(<<"EOS");
SET client_min_messages = warning;
CREATE EXTENSION phi_guard;
SELECT phi_guard.phi_key_create('ssn');
CREATE ROLE mig_owner LOGIN IN ROLE phi_encryptor, phi_decryptor, phi_key_admin;
CREATE ROLE mig_app LOGIN IN ROLE phi_app, phi_encryptor;
GRANT CREATE ON SCHEMA public TO mig_owner;
SET ROLE mig_owner;
CREATE TABLE t (id int PRIMARY KEY, ssn text NOT NULL, visits int NOT NULL DEFAULT 0);
INSERT INTO t SELECT g, 'ssn-' || g, 0 FROM generate_series(1, $rows) g;
-- the application writes an SSN as the column's type asks: the lock it
-- takes first is one the swap must wait for, so the type cannot change
-- between the check and the write
CREATE FUNCTION app_write_ssn(i int) RETURNS void LANGUAGE plpgsql AS \$\$
DECLARE
  encrypted bool;
BEGIN
  LOCK TABLE t IN ROW EXCLUSIVE MODE;
  SELECT a.atttypid = 'phi_guard.phi_ciphertext'::regtype INTO encrypted
    FROM pg_attribute a WHERE a.attrelid = 't'::regclass AND a.attname = 'ssn';
  IF encrypted THEN
    INSERT INTO t (id, ssn) VALUES (i, phi_guard.phi_encrypt('ssn-' || i, 'ssn', 't.ssn:' || i))
      ON CONFLICT (id) DO UPDATE SET ssn = EXCLUDED.ssn;
  ELSE
    INSERT INTO t (id, ssn) VALUES (i, 'ssn-' || i)
      ON CONFLICT (id) DO UPDATE SET ssn = EXCLUDED.ssn;
  END IF;
END
\$\$;
GRANT SELECT, INSERT, UPDATE ON t TO mig_app;
RESET ROLE;
SELECT phi_guard.phi_audit_enable('t');
VACUUM ANALYZE t;
EOS
note(sprintf('set-up: %d rows in %.1f s', $rows, time - $t0));

# ---------------------------------------------------------------------
# the writers: pgbench runs of 5 s, one after the other until told to
# stop, each logging every transaction's latency
# ---------------------------------------------------------------------
my %scripts = (
	'update.sql' => "\\set id random(1, $rows)\nUPDATE t SET visits = visits + 1 WHERE id = :id;\n",
	'ssn.sql' => "\\set id random(1, " . (2 * $rows) . ")\nSELECT app_write_ssn(:id);\n",
	'read.sql' => "\\set id random(1, $rows)\nSELECT visits FROM t WHERE id = :id;\n");
for my $f (keys %scripts)
{
	open my $fh, '>', "$dir/$f" or die "could not write $dir/$f: $!";
	print $fh $scripts{$f};
	close $fh;
}
my $stop = "$dir/stop";
my $connstr = $node->connstr('postgres') . ' user=mig_app';
my $loop = <<"EOS";
n=0
while [ ! -e '$stop' ]; do
  n=\$((n + 1))
  pgbench -n -c $clients -j 2 -T 5 -L 1000 -l --log-prefix='$dir/lat.\$n' \\
    -f '$dir/update.sql\@6' -f '$dir/ssn.sql\@3' -f '$dir/read.sql\@1' '$connstr' \\
    >> '$dir/pgbench.out' 2>> '$dir/pgbench.err' || echo "run \$n exited \$?" >> '$dir/failures'
done
EOS
my $writers = IPC::Run::start([ 'bash', '-c', $loop ], '<', \undef, '>', \my $wout, '2>', \my $werr);
sleep 2;

# ---------------------------------------------------------------------
# the migration, killed half-way through the backfill
# ---------------------------------------------------------------------
my $call = "CALL phi_guard.phi_encrypt_column('t', 'ssn', 'ssn', \$\$'t.ssn:' || id\$\$, $batch)";
my $owner_connstr = $node->connstr('postgres') . ' user=mig_owner';
my ($out1, $err1) = ('', '');
my $started = time;
my $first = IPC::Run::start([ 'psql', '-X', '-v', 'ON_ERROR_STOP=1', '-d', $owner_connstr, '-c', $call ],
	'<', \undef, '>', \$out1, '2>', \$err1);
my $done = 0;
for (1 .. 6000)
{
	$done = query(q{SELECT coalesce(max(rows_done) FILTER (WHERE state = 'backfill'), 0)
  FROM phi_guard.column_migrations});
	last if $done >= $rows / 2;
	usleep(50_000);
}
cmp_ok($done, '>=', $rows / 2, 'the backfill reached half of the rows');
is( query(q{SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
 WHERE query LIKE 'CALL phi_guard.phi_encrypt_column%' AND pid <> pg_backend_pid()}),
	'1', 'the migration\'s backend is killed');
$first->finish;
like($err1, qr/terminating connection due to administrator command/, 'the first CALL was killed');
my ($state, $done_killed, $filled) = split /\|/, query(
	q{SELECT m.state, m.rows_done, (SELECT count(*) FROM t WHERE phi_guard_new_2 IS NOT NULL)
  FROM phi_guard.column_migrations m});
is($state, 'backfill', 'killed during the backfill');
cmp_ok($done_killed, '<', $rows, 'rows were left to do');
cmp_ok($filled, '>=', $done_killed, 'every committed batch is done (and the writers\' rows with it)');

# resumed: the same CALL again
my ($out2, $err2) = ('', '');
my $second = IPC::Run::start([ 'psql', '-X', '-v', 'ON_ERROR_STOP=1', '-d', $owner_connstr, '-c', $call ],
	'<', \undef, '>', \$out2, '2>', \$err2);
$second->finish;
my $encrypt_secs = time - $started;
is($second->result(0), 0, 'the second CALL ends') or diag($err2);
like($err2, qr/resuming in state backfill/, 'it resumed where the first stopped');
my ($lock_ms) = $err2 =~ /held the table's lock for ([0-9.]+) ms/;
ok(defined $lock_ms && $lock_ms < 1000, 'the swap held the table\'s lock briefly')
  and note("longest lock (the swap): $lock_ms ms");
is( query(qq{SELECT state || '/' || (finished IS NOT NULL) || '/' || (rows_total >= $rows)
  FROM phi_guard.column_migrations WHERE operation = 'encrypt'}),
	'done/true/true', 'the migration is done (rows_total: the table\'s rows when it began)');
note(sprintf('phi_encrypt_column of %d rows, killed and resumed, with %d writers: %.1f s',
		$rows, $clients, $encrypt_secs));

# ---------------------------------------------------------------------
# rotation at scale, writers still running
# ---------------------------------------------------------------------
query(q{SELECT phi_guard.phi_key_rotate('ssn')});
my $rewrap_started = time;
my ($out3, $err3) = ('', '');
my $rc = IPC::Run::run([ 'psql', '-X', '-v', 'ON_ERROR_STOP=1', '-d', $owner_connstr,
	'-c', "CALL phi_guard.phi_rewrap_column('t', 'ssn', $batch)" ],
	'<', \undef, '>', \$out3, '2>', \$err3);
ok($rc, 'phi_rewrap_column ends') or diag($err3);
note(sprintf('phi_rewrap_column of the column with %d writers: %.1f s', $clients, time - $rewrap_started));

# the writers stop
open my $sfh, '>', $stop or die "could not create $stop: $!";
close $sfh;
$writers->finish;

# ---------------------------------------------------------------------
# the writers
# ---------------------------------------------------------------------
my $failures = -e "$dir/failures" ? slurp_file("$dir/failures") : '';
my $pgerr = -e "$dir/pgbench.err" ? slurp_file("$dir/pgbench.err") : '';
is($failures, '', 'every pgbench run exited 0');
unlike($pgerr, qr/aborted|ERROR|error/, 'no writer error') or diag($pgerr);
my ($txns, $max_us, $late, %per_script) = (0, 0, 0);
for my $log (glob "$dir/lat.*")
{
	open my $fh, '<', $log or die "could not read $log: $!";
	while (<$fh>)
	{
		# client_id transaction_no time script_no time_epoch time_us
		my ($client, $no, $us, $script) = split;
		next unless defined $script && $us =~ /^\d+$/;
		$txns++;
		$per_script{$script}++;
		$max_us = $us if $us > $max_us;
		$late++ if $us >= 1_000_000;
	}
	close $fh;
}
cmp_ok($txns, '>', 100, 'the writers ran throughout')
  and note("writer transactions: $txns; slowest: " . sprintf('%.1f ms', $max_us / 1000));
is($late, 0, 'no writer transaction took 1 s or more');
my $log = slurp_file($node->logfile);
my @waits = $log =~ /(still waiting for [^\n]*)/g;
is(scalar @waits, 0, 'no lock wait of 1 s or more was logged') or diag(join("\n", @waits[0 .. 4]));

# ---------------------------------------------------------------------
# the values, the keys, the audit log
# ---------------------------------------------------------------------
is( query(q{SELECT format_type(atttypid, atttypmod) || '/' || attnotnull FROM pg_attribute
 WHERE attrelid = 't'::regclass AND attname = 'ssn'}),
	'phi_guard.phi_ciphertext/true', 'the column is phi_ciphertext and still NOT NULL');
my ($n, $good) = split /\|/, query(q{SET ROLE mig_owner;
SELECT count(*), count(*) FILTER (WHERE phi_guard.phi_decrypt(ssn, 't.ssn:' || id) = 'ssn-' || id) FROM t});
cmp_ok($n, '>=', $rows, 'the table has every row and the writers\'');
is($good, $n, 'every value decrypts to its row\'s original under its row\'s aad');
is( query(q{SET ROLE mig_owner;
SELECT string_agg(version || ':' || state || ':' || (value_count > 0), ',' ORDER BY version)
  FROM phi_guard.phi_key_usage('t', 'ssn')}),
	'1:retired:false,2:active:true', 'phi_key_usage: the old version is unused, safe to destroy');
like(query(q{SELECT skipped FROM phi_guard.column_migrations WHERE operation = 'rewrap'}),
	qr/^0$/, 'the rewrap left no value behind');

query('SELECT phi_guard.phi_audit_seal()');
is(query(q{SELECT ok || '/' || coalesce(problem, '') FROM phi_guard.phi_audit_verify()}),
	'true/', 'the audit chain verifies');
my ($batches, $batch_rows, $updates) = split /\|/, query(q{
SELECT count(*) FILTER (WHERE r->>'kind' = 'column_migration'),
       coalesce(sum((r->'detail'->>'rows')::int) FILTER (WHERE r->'detail'->>'phase' = 'backfill'), 0),
       count(*) FILTER (WHERE r->>'kind' = 'update')
  FROM phi_guard.audit_log, LATERAL (SELECT record::jsonb AS r) j
 WHERE r->>'table' = 'public.t'});
cmp_ok($batches, '>=', 3 * int($rows / $batch), 'one column_migration entry per batch (backfill, scrub, rewrap)');
cmp_ok($batch_rows, '>=', $rows, 'the backfill entries count every row');
my $writer_updates = ($per_script{0} // 0) + ($per_script{1} // 0);
cmp_ok($updates, '<=', $writer_updates, 'update entries are the writers\' only, not one per migrated row')
  and note("update entries: $updates, writer transactions that may update: $writer_updates");

done_testing();
