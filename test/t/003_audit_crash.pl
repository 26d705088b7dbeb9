# 003_audit_crash.pl — SPEC §6, the audit log survives a crash: entries are
# written in the writer's own transaction, so after an immediate shutdown
# in the middle of 16 concurrent writers every row that committed has
# exactly one insert entry, and no entry is visible for a row whose
# transaction did not commit (even when those entries had reached the disk
# before the crash); the aborted transaction leaves no hole in the chain.
# The blocks sealed before the crash survive and verify (phi_audit_verify()
# and the independent tools/verify_audit.py agree), and the restarted
# server's background worker keeps sealing by itself.  A superuser's change
# of an entry is detected without a digest; removing the newest block is
# only detected with a digest taken before.

use strict;
use warnings;

use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use PhiGuardTest;

my $json    = JSON::PP->new->utf8;
my ($node) = phi_guard_node(
	'audit_crash',
	conf => [
		"phi_guard.audit_seal_interval = '100ms'",
		'max_connections = 40',
		# the statements of 16 pgbench clients would only bloat the log
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

my $log_kind =
  q{record::jsonb->>'kind' = 'insert' AND record::jsonb->>'table' = 'public.crash_t'};

# per committed row: how many rows lack exactly one insert entry, and how
# many insert entries name a key that is not in the table
my $row_check = <<"EOS";
WITH e AS (
  SELECT record::jsonb->'row_key'->>'id' AS k, count(*) AS n
    FROM phi_guard.audit_log WHERE $log_kind GROUP BY 1)
SELECT (SELECT count(*) FROM crash_t),
       (SELECT count(*) FROM crash_t t LEFT JOIN e ON e.k = t.id::text
         WHERE e.n IS DISTINCT FROM 1),
       (SELECT coalesce(sum(e.n), 0) FROM e LEFT JOIN crash_t t ON e.k = t.id::text
         WHERE t.id IS NULL)
EOS

# entries below the end of the chain that lie in no block
my $outside_sql = <<'EOS';
SELECT count(*) FROM phi_guard.audit_log l
 WHERE l.xid < (SELECT max(xid_hi) FROM phi_guard.audit_block)
   AND NOT EXISTS (SELECT FROM phi_guard.audit_block b
                    WHERE l.xid >= b.xid_lo AND l.xid < b.xid_hi)
EOS

query(<<'EOS');
CREATE EXTENSION phi_guard;
CREATE SEQUENCE crash_seq;
CREATE TABLE crash_t (id int8 PRIMARY KEY DEFAULT nextval('crash_seq'), payload text);
SELECT phi_guard.phi_audit_enable('crash_t');
EOS

# ---------------------------------------------------------------------
# 16 writers, then an immediate shutdown while they run
# ---------------------------------------------------------------------
my $script = $node->basedir . '/insert.sql';
PostgreSQL::Test::Utils::append_to_file($script,
	"INSERT INTO crash_t (payload) VALUES ('row written by pgbench');\n");
my ($pgb_out, $pgb_err) = ('', '');
my $pgbench = IPC::Run::start(
	[
		'pgbench', '-n', '-c', '16', '-j', '4', '-T', '60',
		'-f', $script, '-h', $node->host, '-p', $node->port, 'postgres'
	],
	'<', \undef, '>', \$pgb_out, '2>', \$pgb_err,
	IPC::Run::timeout(120));

# let the load run until the worker has sealed some of it (a few seconds)
ok( wait_true(
		q{SELECT (SELECT count(*) FROM crash_t) >= 2000
		     AND (SELECT count(*) FROM phi_guard.audit_block) >= 3}, 30),
	'under load: rows written and blocks sealed by the worker');
sleep(1);

# one more writer whose audit entries certainly reach the disk but whose
# transaction never commits: its inserts are followed by a CHECKPOINT
my $open = $node->background_psql('postgres');
my ($open_xid, $open_entries) = split /\|/, $open->query_safe(<<'EOS');
BEGIN;
INSERT INTO crash_t (id, payload)
  SELECT 2000000000 + g, 'never committed' FROM generate_series(1, 50) g;
SELECT pg_current_xact_id(), count(*) FROM phi_guard.audit_log WHERE xid = pg_current_xact_id();
EOS
is($open_entries, '50', 'the uncommitted writer has written its 50 entries');
query('CHECKPOINT');

my ($blocks_before, $hash_before) = split /\|/,
  query('SELECT block_no, block_hash FROM phi_guard.audit_block ORDER BY block_no DESC LIMIT 1');
my $rows_before = query('SELECT count(*) FROM crash_t');
$node->stop('immediate');
$pgbench->finish;
eval { $open->quit; };
like(
	$pgb_err,
	qr/immediate shutdown|server closed the connection|connection to server/i,
	'pgbench was still writing when the server went down');
note('pgbench stderr: ' . join(' / ', (split /\n/, $pgb_err)[0 .. 2]));
my ($acked) = $pgb_out =~ /number of transactions actually processed: (\d+)/;

$node->start;

# ---------------------------------------------------------------------
# after the crash: exactly one entry per committed row, none for the rest
# ---------------------------------------------------------------------
my ($rows, $rows_not_once, $orphans) = split /\|/, query($row_check);
cmp_ok($rows, '>=', $rows_before, "all $rows_before rows seen before the crash are there ($rows)");
SKIP:
{
	skip 'pgbench printed no count of processed transactions', 1 unless defined $acked;
	cmp_ok($rows, '>=', $acked, "every insert pgbench saw commit ($acked) is there");
}
is($rows_not_once, '0', 'after the crash every row has exactly one insert entry');
is($orphans, '0', 'no insert entry for a row whose transaction did not commit');
is( query(
		"SELECT count(*) FROM phi_guard.audit_log WHERE xid = '$open_xid'::xid8 OR $log_kind AND (record::jsonb->'row_key'->>'id')::int8 > 2000000000"
	),
	'0',
	'none of the uncommitted writer\'s entries is visible after the crash');
is( query("SELECT count(*) = max(block_no) FROM phi_guard.audit_block WHERE block_no <= $blocks_before")
	  . '|'
	  . query("SELECT block_hash FROM phi_guard.audit_block WHERE block_no = $blocks_before"),
	"t|$hash_before",
	"the $blocks_before blocks sealed before the crash are there, the last with the same hash");
is(query('SELECT ok FROM phi_guard.phi_audit_verify()'),
	't', 'the chain sealed before the crash verifies');

# ---------------------------------------------------------------------
# the restarted server keeps sealing by itself (no phi_audit_seal() call
# since the restart): the worker seals newly written rows
# ---------------------------------------------------------------------
my $xid = query(<<'EOS');
BEGIN;
INSERT INTO crash_t (id, payload)
  SELECT 1000000000 + g, 'after the restart' FROM generate_series(1, 100) g;
SELECT pg_current_xact_id();
COMMIT;
EOS
like($xid, qr/^\d+$/, 'rows written after the restart');
ok( wait_true(
		"SELECT coalesce(max(xid_hi) > '$xid'::xid8, false) FROM phi_guard.audit_block",
		10),
	'the worker sealed the new rows within 10 s without phi_audit_seal()');
is( query(
		"SELECT count(*) FROM phi_guard.audit_log WHERE xid = '$xid'::xid8 AND $log_kind"),
	'100',
	'the new rows have their 100 entries');
is(query($outside_sql), '0', 'no entry below the end of the chain lies outside a block');

# then an explicit seal; the whole chain verifies, in the extension and
# independently
cmp_ok(query('SELECT phi_guard.phi_audit_seal()'), '>=', 0, 'phi_audit_seal() works');
my ($ok, $blocks, $problem) = split /\|/,
  query('SELECT ok, blocks, problem FROM phi_guard.phi_audit_verify()');
is($ok, 't', 'phi_audit_verify() ok after the crash and restart')
  or diag("problem: $problem");
cmp_ok($blocks, '>', $blocks_before, 'new blocks were added after the restart');
is(query($outside_sql), '0', 'still no entry outside a block');
is( query(
		"SELECT count(*) FROM phi_guard.audit_block WHERE '$open_xid'::xid8 >= xid_lo AND '$open_xid'::xid8 < xid_hi"
	),
	'1',
	'the uncommitted writer\'s xid lies inside a sealed block: no hole');
($rows, $rows_not_once, $orphans) = split /\|/, query($row_check);
is("$rows_not_once/$orphans", '0/0', 'still one entry per row and none for absent rows');
my ($rc, $out, $err) = verify_audit_py($node, 'postgres');
is($rc, 0, 'verify_audit.py exits 0 after the crash') or diag($out . $err);

# ---------------------------------------------------------------------
# from here on the worker does not seal (the interval becomes 1 h; the
# restart ends the running worker), so the chain holds still
# ---------------------------------------------------------------------
$node->append_conf('postgresql.conf', "phi_guard.audit_seal_interval = '1h'");
$node->restart;

# both verifiers agree on the whole chain, which covers every entry
my ($entries, $below_end);
($ok, $blocks, $entries, $below_end) = split /\|/, query(<<'EOS');
SELECT ok, blocks, entries,
       (SELECT count(*) FROM phi_guard.audit_log
         WHERE xid < (SELECT max(xid_hi) FROM phi_guard.audit_block))
  FROM phi_guard.phi_audit_verify()
EOS
is("$ok/$entries", "t/$below_end",
	'phi_audit_verify() checked every entry below the end of the chain');
($rc, $out, $err) = verify_audit_py($node, 'postgres', '--json');
is($rc, 0, 'verify_audit.py --json exits 0') or diag($err);
my $res = eval { $json->decode($out) } // {};
is($res->{blocks} . '/' . $res->{entries}, "$blocks/$entries",
	'verify_audit.py read the same blocks and sealed entries');

# ---------------------------------------------------------------------
# a superuser's tampering
# ---------------------------------------------------------------------
my $last = query('SELECT max(block_no) FROM phi_guard.audit_block');
my $digest = query('SELECT phi_guard.phi_audit_digest()');
my $digest_file = PostgreSQL::Test::Utils::tempdir . "/digest.json";
PostgreSQL::Test::Utils::append_to_file($digest_file, $digest);
is(query("SELECT ok FROM phi_guard.phi_audit_verify('$digest'::jsonb)"),
	't', 'the intact chain verifies against the digest');
($rc, $out, $err) = verify_audit_py($node, 'postgres', '--digest', $digest_file);
is($rc, 0, 'so does verify_audit.py --digest') or diag($out . $err);

# change one sealed entry of the last block (the append-only triggers do
# not fire for session_replication_role = replica)
query(<<"EOS");
CREATE TABLE stash AS
  SELECT l.xid, l.id, l.record FROM phi_guard.audit_log l, phi_guard.audit_block b
   WHERE b.block_no = $last AND l.xid >= b.xid_lo AND l.xid < b.xid_hi
   ORDER BY l.xid, l.id LIMIT 1;
SET session_replication_role = replica;
UPDATE phi_guard.audit_log l SET record = replace(l.record, '"kind":', '"note":"edited","kind":')
  FROM stash s WHERE l.xid = s.xid AND l.id = s.id;
EOS
is(query('SELECT count(*) FROM stash'), '1', 'one entry of the last block changed');
($ok, my $bad, $problem) = split /\|/,
  query('SELECT ok, first_bad_block, problem FROM phi_guard.phi_audit_verify()');
is($ok,  'f',   'phi_audit_verify() reports the changed entry');
is($bad, $last, 'first_bad_block is the block holding it');
like($problem, qr/entry_hash does not match record/, 'the problem names the entry hash');
($rc, $out, $err) = verify_audit_py($node, 'postgres', '--json');
is($rc, 1, 'verify_audit.py exits 1 for the changed entry');
$res = eval { $json->decode($out) } // {};
is($res->{first_bad_block}, $last, 'verify_audit.py names the same block');

# put it back: the chain verifies again
query(<<'EOS');
SET session_replication_role = replica;
UPDATE phi_guard.audit_log l SET record = s.record FROM stash s WHERE l.xid = s.xid AND l.id = s.id;
EOS
is(query('SELECT ok FROM phi_guard.phi_audit_verify()'),
	't', 'with the entry restored, the chain verifies again');

# remove the newest block: consistent without a digest, caught with one
query(<<"EOS");
SET session_replication_role = replica;
DELETE FROM phi_guard.audit_block WHERE block_no = $last;
EOS
($ok, $blocks) = split /\|/, query('SELECT ok, blocks FROM phi_guard.phi_audit_verify()');
is("$ok/$blocks", 't/' . ($last - 1),
	'without a digest, the shortened chain verifies');
($rc, $out, $err) = verify_audit_py($node, 'postgres');
is($rc, 0, 'so does verify_audit.py without a digest') or diag($out . $err);
($ok, $bad, $problem) = split /\|/, query(
	"SELECT ok, first_bad_block, problem FROM phi_guard.phi_audit_verify('$digest'::jsonb)");
is($ok, 'f', 'phi_audit_verify(digest) reports the removed block');
like($problem, qr/digest names block $last/, 'the problem says the chain ends before the digest block');
($rc, $out, $err) = verify_audit_py($node, 'postgres', '--digest', $digest_file);
is($rc, 1, 'verify_audit.py --digest exits 1') or diag($out . $err);

$node->stop;
done_testing();
