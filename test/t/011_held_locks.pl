# 011_held_locks.pl — issue 11, "the access path never depends on the
# seal" and "refuse rather than lose" (SPEC §6, §7), written as the attacks.
#
# - A phi_auditor runs BEGIN; SELECT phi_audit_seal(); and waits, holding
#   the seal's lock.  8 clients keep decrypting: no statement stalls beyond
#   a bound, the worker keeps writing their access entries while the lock
#   is held (it skips its seals instead of waiting), and once the auditor
#   commits the worker seals them all without being asked.  Another
#   phi_audit_seal() waits for the first (here: until its lock_timeout).
# - A phi_auditor may lock audit_log only in ACCESS SHARE mode, which
#   writers do not wait for; but an ACCESS EXCLUSIVE request queued behind
#   it (a superuser's) would make every writer wait: decrypting clients do
#   not, the entries are written once the locks are gone.
# - With a small queue (phi_guard.access_queue_size = 16, so 8 events for
#   one database) and a superuser's lock that keeps the worker from
#   writing, the ninth access is refused with PH006 after a bounded wait,
#   before any row is sent (a plain SELECT and a cursor's FETCH), and
#   nothing goes to the server log instead; the 8 accepted entries reach
#   the chain once the lock is gone.
# - With no worker process free for an audit worker (max_worker_processes
#   = 1, taken by the launcher), accesses are refused with PH006; what was
#   accepted before reaches the server log at shutdown, with a WARNING.
# The last three run with phi_guard.access_audit = 'async', whose queue
# they are about; in durable mode a worker kept from committing refuses
# every access (test/t/014_durable_disclosure.pl).

use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use PhiGuardTest qw(:DEFAULT sql_error);

# the longest a decrypting statement may take while locks are held (ms)
my $bound_ms = 1000;

my ($node) = phi_guard_node(
	'held_locks',
	conf => [
		"phi_guard.audit_seal_interval = '100ms'",
		'max_connections = 40',
		'log_statement = none' ]);

sub query { return $node->safe_psql('postgres', $_[0]); }

# Poll $sql until it returns 't', for at most $secs seconds.
sub wait_true
{
	my ($sql, $secs) = @_;
	my $deadline = time + $secs;
	while (1)
	{
		return 1 if query($sql) eq 't';
		return 0 if time > $deadline;
		usleep(100_000);
	}
}

query(<<'EOS');
CREATE EXTENSION phi_guard;
CREATE ROLE hl_auditor LOGIN IN ROLE phi_auditor;
SELECT phi_guard.phi_key_create('hl_key');
CREATE TABLE hl_pat (id int PRIMARY KEY, ssn phi_guard.phi_ciphertext);
INSERT INTO hl_pat SELECT g, phi_guard.phi_encrypt('ssn-' || g, 'hl_key', 'hl_pat:' || g)
  FROM generate_series(1, 100) g;
EOS

# the decryptions of hl_key that the log holds, and how many of those
# entries are not sealed yet
my $decrypted_sql = <<'EOS';
SELECT coalesce(sum((detail->>'count')::int8), 0) FROM phi_guard.audit_events
 WHERE kind = 'decrypt' AND detail->>'key' = 'hl_key'
EOS
my $unsealed_sql = <<'EOS';
SELECT count(*) FROM phi_guard.audit_events
 WHERE kind = 'decrypt' AND detail->>'key' = 'hl_key' AND NOT sealed
EOS

# 8 clients decrypt one row per statement with pgbench (@limit: -T or -t);
# returns (exit code, statements, statements over $bound_ms, the slowest
# in ms, output)
my $bench = 0;
sub decrypt_clients
{
	my @limit = @_;
	my $dir = PostgreSQL::Test::Utils::tempdir;
	my $script = "$dir/decrypt.sql";
	append_to_file($script, <<'EOS');
\set id random(1, 100)
SELECT phi_guard.phi_decrypt(ssn, 'hl_pat:' || :id) FROM hl_pat WHERE id = :id;
EOS
	my ($out, $err) = ('', '');
	IPC::Run::run(
		[
			'pgbench', '-n', '-c', '8', '-j', '2', @limit,
			'-L', $bound_ms, '-l', '--log-prefix', "$dir/lat" . $bench++,
			'-f', $script, '-h', $node->host, '-p', $node->port, 'postgres'
		],
		'<', \undef, '>', \$out, '2>', \$err,
		IPC::Run::timeout(120));
	my $rc = $? >> 8;
	my ($n) = $out =~ /number of transactions actually processed: (\d+)/;
	my ($late) = $out =~ /above the [\d.]+ ms latency limit: (\d+)/;
	my $max_us = 0;
	for my $f (glob("$dir/lat*"))
	{
		open my $fh, '<', $f or die "$f: $!";
		while (<$fh>)
		{
			my @col = split ' ';
			$max_us = $col[2] if @col > 2 && $col[2] > $max_us;
		}
		close $fh;
	}
	return ($rc, $n // 0, $late // -1, $max_us / 1000, $out . $err);
}

# ---------------------------------------------------------------------
# a phi_auditor holds the seal's lock in an open transaction
# ---------------------------------------------------------------------
my $auditor = $node->background_psql('postgres');
$auditor->query_safe('SET ROLE hl_auditor');
my $auditor_pid = $auditor->query_safe('SELECT pg_backend_pid()');
$auditor->query_safe('BEGIN');
$auditor->query_safe('SELECT phi_guard.phi_audit_seal()');
my $holds_seal_lock = <<"EOS";
SELECT count(*) FROM pg_locks
 WHERE pid = $auditor_pid AND relation = 'phi_guard.audit_block'::regclass
   AND mode = 'ExclusiveLock' AND granted
EOS
is(query($holds_seal_lock), '1', 'the auditor\'s open transaction holds the seal\'s lock');

my ($rc, $n, $late, $max_ms, $out) = decrypt_clients('-T', '4');
is($rc, 0, '8 clients decrypted for 4 s while the auditor held the lock') or diag($out);
cmp_ok($n, '>', 0, "they ran $n statements");
is($late, 0, "none took longer than $bound_ms ms") or diag($out);
note("slowest decrypting statement while the seal's lock was held: $max_ms ms over $n statements");
diag("measured stall bound (seal lock held): slowest of $n statements $max_ms ms");

ok(wait_true("SELECT ($decrypted_sql) = $n", 10),
	'the worker wrote every access entry while the lock was still held');
is(query($holds_seal_lock), '1', '(the auditor still holds it)');
cmp_ok(query($unsealed_sql), '>', 0, 'those entries wait unsealed: the worker skipped its seals');
like(slurp_file($node->logfile),
	qr/WARNING:  phi_guard has not sealed the audit log of database "postgres" for \d+ s/,
	'the worker says in the server log that its seals are held back');

# another auditor's phi_audit_seal() waits for the first one
my ($state, $err) = sql_error($node, 'postgres', <<'EOS');
SET ROLE hl_auditor;
SET lock_timeout = '300ms';
SELECT phi_guard.phi_audit_seal();
EOS
is($state, '55P03', 'a second phi_audit_seal() waits for the first (here until its lock_timeout)');

$auditor->query_safe('COMMIT');
ok(wait_true("SELECT ($unsealed_sql) = 0", 10),
	'once the auditor committed, the worker sealed every entry by itself');
is(query('SELECT ok FROM phi_guard.phi_audit_verify()'), 't', 'the chain verifies');

# ---------------------------------------------------------------------
# a reader's lock with an ACCESS EXCLUSIVE request queued behind it
# ---------------------------------------------------------------------
# From here on the queue's own behaviour, in async mode: in durable mode
# (the default) a lock that keeps the worker from committing refuses each
# access at once instead (test/t/014_durable_disclosure.pl).
query(q{ALTER SYSTEM SET phi_guard.access_audit = 'async'});
query('SELECT pg_reload_conf()');
($state, $err) = sql_error($node, 'postgres', <<'EOS');
SET ROLE hl_auditor;
BEGIN;
LOCK TABLE phi_guard.audit_log IN SHARE MODE;
EOS
is($state, '42501', 'a phi_auditor cannot lock audit_log against writers');

# (reading the log waits behind the queued request too: count before)
my $before = query($decrypted_sql);
$auditor->query_safe('BEGIN');
$auditor->query_safe('LOCK TABLE phi_guard.audit_log IN ACCESS SHARE MODE');
my $su = $node->background_psql('postgres');
my $su_pid = $su->query_safe('SELECT pg_backend_pid()');
$su->query_until(qr/locking/, "\\echo locking\nBEGIN;\nLOCK TABLE phi_guard.audit_log IN ACCESS EXCLUSIVE MODE;\n");
ok( wait_true(
		"SELECT EXISTS (SELECT FROM pg_locks WHERE pid = $su_pid AND NOT granted AND mode = 'AccessExclusiveLock')",
		10),
	'a superuser\'s ACCESS EXCLUSIVE request waits behind the auditor\'s lock');

($rc, $n, $late, $max_ms, $out) = decrypt_clients('-t', '50');
is("$rc/$n", '0/400', '8 clients ran 400 decrypting statements meanwhile') or diag($out);
is($late, 0, "none took longer than $bound_ms ms") or diag($out);
diag("measured stall bound (ACCESS EXCLUSIVE queued): slowest of $n statements $max_ms ms");

# their entries wait in the queue; the worker tries, without waiting
my $worker_waits = <<'EOS';
SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
 WHERE a.backend_type = 'phi_guard audit worker' AND NOT l.granted
EOS
my $worker_runs =
  q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'phi_guard audit worker'};
my ($runs, $waits) = (0, 0);
for (1 .. 10)
{
	$runs  += query($worker_runs);
	$waits += query($worker_waits);
	usleep(100_000);
}
cmp_ok($runs, '>', 0, 'the worker is there, with entries to write');
is($waits, 0, 'and never waits for a lock on audit_log');

$auditor->query_safe('ROLLBACK');
$su->query_until(qr/locked/, "\\echo locked\n");
$su->query_safe('COMMIT');
ok(wait_true("SELECT ($decrypted_sql) = $before + 400 AND ($unsealed_sql) = 0", 10),
	'once the locks are gone, all 400 are written and sealed');
$su->quit;
$auditor->quit;

# ---------------------------------------------------------------------
# a full queue: the access is refused, not logged elsewhere
# ---------------------------------------------------------------------
$node->append_conf('postgresql.conf', 'phi_guard.access_queue_size = 16');
$node->restart;
my $log_offset = -s $node->logfile;
$su = $node->background_psql('postgres');
$su->query_safe('BEGIN');
$su->query_safe('LOCK TABLE phi_guard.audit_log IN SHARE MODE');

$before = query($decrypted_sql);
my $accepted = 0;
for (1 .. 8)
{
	$accepted++
	  if query("SELECT phi_guard.phi_decrypt(ssn, 'hl_pat:1') FROM hl_pat WHERE id = 1") eq 'ssn-1';
}
is($accepted, 8, 'with the worker kept from writing, 8 accesses fit (half the queue of 16)');

my ($stdout, $stderr) = ('', '');
my $t0 = time;
$node->psql(
	'postgres',
	"\\set VERBOSITY verbose\nSELECT phi_guard.phi_decrypt(ssn, 'hl_pat:2') FROM hl_pat WHERE id = 2",
	stdout => \$stdout,
	stderr => \$stderr);
my $waited = time - $t0;
like($stderr, qr/ERROR:\s+PH006: access refused: it cannot be recorded in the audit log/,
	'the ninth is refused with PH006');
like($stderr, qr/HINT:.*phi_guard\.access_queue_size/, 'the hint names phi_guard.access_queue_size');
unlike($stdout, qr/ssn-2/, 'the refused statement returned no value');
cmp_ok($waited, '<', 5, sprintf('refused after a bounded wait (%.1f s)', $waited));

$stdout = $stderr = '';
$node->psql(
	'postgres', <<'EOS',
\set VERBOSITY verbose
BEGIN;
DECLARE c CURSOR FOR SELECT id, phi_guard.phi_decrypt(ssn, 'hl_pat:' || id) FROM hl_pat ORDER BY id;
FETCH 3 FROM c;
EOS
	stdout => \$stdout,
	stderr => \$stderr);
like($stderr, qr/ERROR:\s+PH006:/, 'a cursor\'s fetch is refused with PH006 too');
unlike($stdout, qr/ssn-/, 'before any row was sent');

$su->query_safe('COMMIT');
$su->quit;
ok(wait_true("SELECT ($decrypted_sql) = $before + 8 AND ($unsealed_sql) = 0", 10),
	'the 8 accepted accesses reached the chain once the lock was gone, and no more');
unlike(slurp_file($node->logfile, $log_offset), qr/phi_guard access entry/,
	'no access entry went to the server log instead');

# ---------------------------------------------------------------------
# no worker process for the audit: refused
# ---------------------------------------------------------------------
$node->append_conf('postgresql.conf', <<'EOS');
phi_guard.access_queue_size = 4096
max_worker_processes = 1
max_logical_replication_workers = 0
EOS
$node->restart;
is(query(q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'phi_guard audit launcher'}),
	'1', 'the launcher took the only worker process');
$accepted = 0;
$state = '';
my $deadline = time + 10;
while ($state eq '' && time < $deadline)
{
	($stdout, $stderr) = ('', '');
	$node->psql(
		'postgres',
		"\\set VERBOSITY verbose\nSELECT phi_guard.phi_decrypt(ssn, 'hl_pat:3') FROM hl_pat WHERE id = 3",
		stdout => \$stdout,
		stderr => \$stderr);
	($state) = $stderr =~ /ERROR:\s+([0-9A-Z]{5}):/;
	$state //= '';
	$accepted++ if $stdout eq 'ssn-3';
}
is($state, 'PH006', 'with no process for an audit worker, accesses are refused with PH006');
like($stderr, qr/DETAIL:\s+No phi_guard audit worker could be started/, 'the detail says why');
like($stderr, qr/HINT:.*max_worker_processes/, 'the hint names max_worker_processes');
unlike($stdout, qr/ssn-3/, 'the refused statement returned no value');

# what was accepted before is not dropped silently
$log_offset = -s $node->logfile;
$node->stop;
my $log = slurp_file($node->logfile, $log_offset);
my $logged = () = $log =~ /phi_guard access entry \(not written before shutdown\): .*"hl_key"/g;
is($logged, $accepted, "the $accepted access(es) accepted before reached the server log at shutdown");
if ($accepted > 0)
{
	like($log, qr/WARNING:\s+phi_guard wrote $accepted access entries to the server log at shutdown/,
		'with a WARNING');
}
unlike($log, qr/ssn-3/, 'the server log holds no plaintext');

done_testing();
