# 016_anchor.pl — issue 14, external anchoring (SPEC §8):
# phi_guard.audit_anchor_command runs after each seal with the new
# phi_audit_digest() on its standard input.
#
# - The command appends its standard input to a file: after audited
#   INSERTs the file holds digests, one JSON object per line, whose block
#   numbers increase, the newest equal to phi_audit_digest(), and
#   tools/verify_audit.py --anchors checks the chain against every one (a
#   tampered line fails).  %b is the block number.
# - A command that fails (exit 1 for its first two runs, a counter file)
#   is logged as a WARNING with its exit status (never the digest) and
#   retried with backoff; the newest digest is anchored in the end.
# - While the command hangs (sleep 30), audited INSERTs and phi_decrypt in
#   durable mode complete in under 2 s each, and the command still runs;
#   once phi_guard.audit_anchor_timeout is lowered it is killed (with its
#   process group) and retried.
# - After a restart the newest block is anchored again (at least once);
#   the file still verifies.
# - Only superusers see the setting.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use PhiGuardTest qw(:DEFAULT sql_error);

my $dir = PostgreSQL::Test::Utils::tempdir;
my $anchors = "$dir/anchors";

# The anchor command: hangs while $dir/hang exists, fails while
# $dir/fail_left counts down, else appends the digest to $anchors.
my $script = "$dir/anchor.sh";
open my $fh, '>', $script or die "could not write $script: $!";
print $fh <<"EOS";
#!/bin/sh
echo "\$1 \$PHI_GUARD_DATABASE" >> '$dir/calls'
if [ -f '$dir/hang' ]; then
  sleep 30 &
  echo \$! > '$dir/sleep_pid'
  wait
fi
n=\$(cat '$dir/fail_left' 2>/dev/null || echo 0)
if [ "\$n" -gt 0 ]; then
  echo \$((n - 1)) > '$dir/fail_left'
  exit 1
fi
cat >> '$anchors'
EOS
close $fh;
chmod 0755, $script;

my ($node) = phi_guard_node(
	'anchor',
	conf => [
		"phi_guard.audit_seal_interval = '200ms'",
		"phi_guard.audit_anchor_command = '$script %b'",
		'log_statement = none' ]);

sub query { return $node->safe_psql('postgres', $_[0]); }

# Poll $check (a sub) until it returns true, for at most $secs seconds.
sub wait_for
{
	my ($check, $secs) = @_;
	my $deadline = time + $secs;
	while (1)
	{
		return 1 if $check->();
		return 0 if time > $deadline;
		usleep(100_000);
	}
}

# The anchored digests, as [block, line text].
sub anchored
{
	return () unless -e $anchors;
	return map { /"block": (\d+)/ ? [ $1, $_ ] : [ -1, $_ ] }
	  grep { $_ ne '' } split /\n/, slurp_file($anchors);
}

sub newest_block { return query('SELECT coalesce(max(block_no), 0) FROM phi_guard.audit_block'); }

# Wait until a block after block $after is sealed and the newest sealed
# block is anchored: the file's last line is phi_audit_digest(), as text.
# Returns whether it happened within $secs seconds.
sub wait_anchored
{
	my ($after, $secs) = @_;
	return wait_for(
		sub {
			my @a = anchored();
			return @a && $a[-1][0] > $after
			  && $a[-1][1] eq query('SELECT phi_guard.phi_audit_digest()::text');
		},
		$secs);
}

query(<<'EOS');
CREATE EXTENSION phi_guard;
SELECT phi_guard.phi_key_create('an_key');
CREATE TABLE an_t (id int PRIMARY KEY, note text);
SELECT phi_guard.phi_audit_enable('an_t');
CREATE TABLE an_pat (id int PRIMARY KEY, ssn phi_guard.phi_ciphertext);
INSERT INTO an_pat VALUES (1, phi_guard.phi_encrypt('123456789', 'an_key', 'an_pat.ssn:1'));
CREATE ROLE an_nobody LOGIN;
EOS

# ---- every seal is anchored, in order, and verifies

for my $i (1 .. 3)
{
	my $before = newest_block();
	query("INSERT INTO an_t VALUES ($i, 'n$i')");
	ok(wait_anchored($before, 20),
		"seal $i: the newest block is anchored with its phi_audit_digest()");
}
my @a = anchored();
ok(@a >= 3, 'the file holds a digest per seal') or diag(slurp_file($anchors));
my @blocks = map { $_->[0] } @a;
is_deeply(\@blocks, [ sort { $a <=> $b } @blocks ], 'their block numbers increase');
ok(!(grep { $blocks[$_] <= $blocks[ $_ - 1 ] } 1 .. $#blocks), 'no block is anchored twice');
like(slurp_file("$dir/calls"), qr/^$blocks[-1] postgres$/m,
	'%b is the block number, PHI_GUARD_DATABASE the database');

my ($rc, $out, $err) = verify_audit_py($node, 'postgres', '--anchors', $anchors, '--json');
is($rc, 0, 'verify_audit.py --anchors: the chain matches every anchor') or diag($out . $err);
like($out, qr/"checked": (?:[3-9]|\d\d+), "skipped": 0, "mismatches": \[\]/,
	'every anchor was checked');

# a tampered anchor line fails, naming its block
my $tampered = "$dir/tampered";
my @lines = map { $_->[1] } @a;
$lines[1] =~ s/"block_hash": "(.)/'"block_hash": "' . ($1 eq '0' ? '1' : '0')/e;
open $fh, '>', $tampered or die;
print $fh join("\n", @lines), "\n";
close $fh;
($rc, $out, $err) = verify_audit_py($node, 'postgres', '--anchors', $tampered, '--json');
is($rc, 1, 'a tampered anchor line fails');
like($out, qr/"first_bad_block": $a[1][0]\b/, 'its block is reported') or diag($out);

# ---- failures are logged and retried; the newest digest is anchored

my $offset = -s $node->logfile;
open $fh, '>', "$dir/fail_left" or die;
print $fh "2\n";
close $fh;
my $before = newest_block();
query(q{INSERT INTO an_t VALUES (10, 'fail')});
ok(wait_anchored($before, 30), 'after two failures the newest block is anchored');
my $log = slurp_file($node->logfile, $offset);
my @failed = $log =~ /WARNING:  phi_guard audit anchor command failed for block \d+ of database "postgres"/g;
is(scalar @failed, 2, 'each failure is a WARNING');
like($log, qr/DETAIL:  The child process exited with exit code 1\./, 'with the exit status');
like($log, qr/succeeded for block \d+ of database "postgres" after 2 failed attempts/,
	'the success after them is logged');
my $hash = query(q{SELECT encode(block_hash, 'hex') FROM phi_guard.audit_block ORDER BY block_no DESC LIMIT 1});
unlike($log, qr/\Q$hash\E/, 'no digest in the log');

# ---- a hanging command blocks neither writers nor disclosures

open $fh, '>', "$dir/hang" or die;
close $fh;
unlink "$dir/sleep_pid";
query(q{INSERT INTO an_t VALUES (20, 'hang')});
ok(wait_for(sub { -s "$dir/sleep_pid" }, 20), 'the anchor command hangs');
my $sleep_pid = slurp_file("$dir/sleep_pid");
chomp $sleep_pid;
my $slowest = 0;
for my $i (1 .. 5)
{
	my $t0 = time;
	query("INSERT INTO an_t VALUES (" . (20 + $i) . ", 'during')");
	my $t1 = time;
	is(query(q{SELECT phi_guard.phi_decrypt(ssn, 'an_pat.ssn:1') FROM an_pat WHERE id = 1}),
		'123456789', "decrypt $i while the command hangs");
	my $t2 = time;
	$slowest = $t1 - $t0 if $t1 - $t0 > $slowest;
	$slowest = $t2 - $t1 if $t2 - $t1 > $slowest;
}
cmp_ok($slowest, '<', 2, 'audited INSERTs and durable decrypts stay fast');
cmp_ok(query(q{SELECT count(DISTINCT record::jsonb #>> '{detail,access_id}') FROM phi_guard.audit_log
                WHERE record::jsonb ->> 'kind' = 'decrypt'}),
	'>=', 5, 'their access entries were written meanwhile');
ok(kill(0, $sleep_pid), 'the command was still running');

# lowering the timeout kills it (its whole process group); the retry succeeds
$offset = -s $node->logfile;
$before = (anchored())[-1][0];
unlink "$dir/hang";
query(q{ALTER SYSTEM SET phi_guard.audit_anchor_timeout = '1s'});
query('SELECT pg_reload_conf()');
ok(wait_for(sub { !kill(0, $sleep_pid) }, 20), 'the timed-out command was killed with its children');
ok(wait_anchored($before, 30), 'the retry anchors the newest block');
$log = slurp_file($node->logfile, $offset);
like($log,
	qr/WARNING:  phi_guard audit anchor command timed out for block \d+ of database "postgres"/,
	'the timeout is a WARNING');
like($log, qr/after 1 failed attempt\n/, 'and the retry succeeded');

# ---- after a restart the newest block is anchored again

my $count = scalar(anchored());
my $newest = newest_block();
$node->restart;
ok(wait_for(sub { scalar(anchored()) > $count }, 30), 'after a restart a digest is anchored again');
is((anchored())[-1][0], $newest, 'the newest block, once more');
($rc, $out, $err) = verify_audit_py($node, 'postgres', '--anchors', $anchors);
is($rc, 0, 'the whole file still verifies') or diag($out . $err);

# ---- superusers only

my ($state) = sql_error($node, 'postgres',
	"SET ROLE an_nobody; SHOW phi_guard.audit_anchor_command;");
is($state, '42501', 'other roles cannot read the anchor command');

$node->stop;
done_testing();
