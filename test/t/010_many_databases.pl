# 010_many_databases.pl — issue 11, "any number of databases": one
# launcher starts an audit worker for each database that has work, and
# with the default max_worker_processes (8) the databases take turns.
#
# - 30 databases with phi_guard each write audited rows, decrypt inside
#   and outside rolled-back transactions, all at once: in every one of
#   them every insert and every decryption reaches its own audit log (none
#   goes to the server log), every entry is sealed without phi_audit_seal()
#   and the chain verifies; afterwards no audit worker stays connected.
# - Slots are reused: with phi_guard.max_active_databases = 1, a database
#   whose statement holds the only slot makes another database's access
#   wait and be refused (PH006, naming the setting); once the first
#   database is dropped, what it still held goes to the server log and the
#   other database gets the slot, and its entries reach its log.

use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use PhiGuardTest qw(:DEFAULT sql_error);

my $ndb = 30;
my @dbs = map { sprintf('md%02d', $_) } 1 .. $ndb;

my ($node) = phi_guard_node(
	'many_dbs',
	conf => [
		"phi_guard.audit_seal_interval = '200ms'",
		'max_connections = 60',
		'log_statement = none' ]);
is($node->safe_psql('postgres', 'SHOW max_worker_processes'),
	'8', 'the default max_worker_processes');

# the databases are copies of a template with phi_guard, a key and an
# audited table; a template must have no connection when it is copied: its
# worker seals the template's entries and leaves
my $t0 = time;
$node->safe_psql('postgres', 'CREATE DATABASE md_tmpl');
$node->safe_psql('md_tmpl', <<'EOS');
SET client_min_messages = warning;
CREATE EXTENSION phi_guard;
SELECT phi_guard.phi_key_create('md_key');
CREATE TABLE md_t (id int PRIMARY KEY, ssn phi_guard.phi_ciphertext);
SELECT phi_guard.phi_audit_enable('md_t');
EOS
$node->poll_query_until('md_tmpl',
	'SELECT count(*) = 0 FROM phi_guard.audit_events WHERE NOT sealed')
  or die 'the template was not sealed';
$node->poll_query_until('postgres',
	q{SELECT count(*) = 0 FROM pg_stat_activity WHERE datname = 'md_tmpl'})
  or die 'the template keeps a connection';
$node->safe_psql('postgres', "CREATE DATABASE $_ TEMPLATE md_tmpl") for @dbs;
note(sprintf('%d databases created in %.1f s', $ndb, time - $t0));
my $log_offset = -s $node->logfile;

# ---------------------------------------------------------------------
# every database works at once
# ---------------------------------------------------------------------
# per database: 40 audited inserts; 10 statements decrypting 10 rows each
# and one decrypting all 40 in a transaction that rolls back (psql -f: one
# statement at a time)
my $work = PostgreSQL::Test::Utils::tempdir . '/work.sql';
append_to_file($work, <<'EOS');
INSERT INTO md_t SELECT g, phi_guard.phi_encrypt('value-' || g, 'md_key', 'md_t:' || g)
  FROM generate_series(1, 40) g;
EOS
append_to_file($work,
	"SELECT count(phi_guard.phi_decrypt(ssn, 'md_t:' || id)) FROM md_t WHERE id <= 10;\n" x 10);
append_to_file($work, <<'EOS');
BEGIN;
SELECT count(phi_guard.phi_decrypt(ssn, 'md_t:' || id)) FROM md_t;
ROLLBACK;
EOS

$t0 = time;
my @runs;
for my $db (@dbs)
{
	my %r = (db => $db, out => '', err => '');
	$r{h} = IPC::Run::start(
		[
			'psql', '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1',
			'-h', $node->host, '-p', $node->port, '-d', $db, '-f', $work
		],
		'<', \undef, '>', \$r{out}, '2>', \$r{err},
		IPC::Run::timeout(120));
	push @runs, \%r;
}
my $failed = 0;
for my $r (@runs)
{
	$r->{h}->finish;
	if ($? != 0 || $r->{err} ne '')
	{
		$failed++;
		diag("$r->{db}: $r->{err}");
	}
}
is($failed, 0, "the $ndb databases' work ran at once without an error");

# each database's log: inserts, decryptions, entries not sealed yet
my $state_sql = <<'EOS';
SELECT count(*) FILTER (WHERE kind = 'insert') || '/'
       || coalesce(sum((detail->>'count')::int8) FILTER (WHERE kind = 'decrypt'), 0) || '/'
       || count(*) FILTER (WHERE NOT sealed)
  FROM phi_guard.audit_events
EOS
my %state;
my $deadline = time + 90;
while (1)
{
	my $done = 1;
	for my $db (@dbs)
	{
		next if ($state{$db} // '') eq '40/140/0';
		$state{$db} = $node->safe_psql($db, $state_sql);
		$done = 0 if $state{$db} ne '40/140/0';
	}
	last if $done || time > $deadline;
	usleep(200_000);
}
my @behind = grep { $state{$_} ne '40/140/0' } @dbs;
is(scalar(@behind), 0,
	"in all $ndb databases: 40 insert entries, 140 decryptions counted, every entry sealed")
  or diag(join(', ', map { "$_: $state{$_}" } @behind));
note(sprintf('work and sealing of %d databases: %.1f s', $ndb, time - $t0));

my @bad = grep {
	$node->safe_psql($_,
		'SELECT ok AND entries = (SELECT count(*) FROM phi_guard.audit_log) FROM phi_guard.phi_audit_verify()'
	) ne 't'
} @dbs;
is(scalar(@bad), 0, "every database's chain verifies and covers all its entries")
  or diag(join(', ', @bad));
unlike(slurp_file($node->logfile, $log_offset), qr/phi_guard access entry|PH006/,
	'no access entry went to the server log, no access was refused');

my $idle_sql = q{SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'phi_guard audit worker'};
my $idle = 0;
$deadline = time + 20;
until ($idle || time > $deadline)
{
	$idle = $node->safe_psql('postgres', $idle_sql) eq 't';
	usleep(200_000) unless $idle;
}
ok($idle, 'once all is sealed, no audit worker stays connected');

# ---------------------------------------------------------------------
# one slot: a dropped database's slot goes to another one
# ---------------------------------------------------------------------
# (in async mode: in durable mode md01's worker writes its entries into
# md01's own log before the drop, and nothing is left for the server log)
$node->append_conf('postgresql.conf', 'phi_guard.max_active_databases = 1');
$node->append_conf('postgresql.conf', "phi_guard.access_audit = 'async'");
$node->restart;
$log_offset = -s $node->logfile;

# md01's statement reserves its access entry, then sleeps: it holds the
# only slot (retried while the launcher's start-up sweep holds it)
my $holder;
my $holding = 0;
for (1 .. 10)
{
	$holder = $node->background_psql('md01', on_error_stop => 0);
	$holder->query_until(qr/started/, <<'EOS');
\echo started
SELECT phi_guard.phi_decrypt(ssn, 'md_t:1'), pg_sleep(60) FROM md_t WHERE id = 1;
EOS
	$deadline = time + 5;
	while (time < $deadline)
	{
		$holding = $node->safe_psql('postgres',
			q{SELECT count(*) FROM pg_stat_activity WHERE datname = 'md01' AND wait_event = 'PgSleep'}) eq '1';
		last if $holding;
		usleep(50_000);
	}
	last if $holding;
	$holder->quit;
}
ok($holding, 'a statement of md01 holds the only slot');

my $decrypt_md02 = "\\set VERBOSITY verbose\nSELECT phi_guard.phi_decrypt(ssn, 'md_t:2') FROM md_t WHERE id = 2";
my ($state, $err) = sql_error($node, 'md02', $decrypt_md02);
is($state, 'PH006', 'md02 finds no free slot: its access is refused');
like($err, qr/phi_guard\.max_active_databases/, 'the refusal names phi_guard.max_active_databases');

$node->safe_psql('postgres', 'DROP DATABASE md01 WITH (FORCE)');
eval { $holder->quit; };
my $got = '';
$deadline = time + 15;
while (time < $deadline)
{
	my ($out, $e) = ('', '');
	$node->psql('md02', $decrypt_md02, stdout => \$out, stderr => \$e);
	$got = $out;
	last if $got eq 'value-2';
	usleep(200_000);
}
is($got, 'value-2', 'once md01 is dropped, md02 gets the slot and decrypts');
like(slurp_file($node->logfile, $log_offset),
	qr/phi_guard access entry \(database dropped\): .*"md_key"/,
	'the entry md01 still held went to the server log, not nowhere');
ok( $node->poll_query_until('md02',
		q{SELECT count(*) > 0 FROM phi_guard.audit_events
		   WHERE kind = 'decrypt' AND sealed AND ts > now() - interval '1 minute'}),
	'md02\'s new access entry reached its chain');

$node->stop;
done_testing();
