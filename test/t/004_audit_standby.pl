# 004_audit_standby.pl — SPEC §5 and §6 on a streaming hot standby: context
# tokens verify, readers, protected tables and blind indexes work; the audit log
# and its blocks replicate, so the standby decrypts (same master key file)
# and phi_audit_verify() is ok there with the primary's chain; a standby
# cannot write, so phi_audit_seal() fails with a clear read-only error and
# each decrypt is recorded as a 'phi_guard access entry (standby)' line in
# the standby's server log instead, or refused with PH006 when
# phi_guard.standby_access is 'refuse'.  Once promoted, the standby seals on
# without a gap: its first block starts at the xid_hi of the last block
# sealed by the old primary and takes in the entries the old primary left
# unsealed.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use PhiGuardTest;

# the worker would seal at random moments; here only phi_audit_seal() does
my ($primary) = phi_guard_node(
	'audit_primary',
	init => [ allows_streaming => 1 ],
	conf => [ "phi_guard.audit_seal_interval = '1h'" ]);
$primary->backup('b1');

# the standby's postgresql.conf is the primary's, copied by the backup
my $standby = PostgreSQL::Test::Cluster->new('audit_standby');
$standby->init_from_backup($primary, 'b1', has_streaming => 1);
$standby->start;

my $plain_sql = q{'standby-secret-' || md5('004')};
my $plaintext = $primary->safe_psql('postgres', "SELECT $plain_sql");

$primary->safe_psql('postgres', <<"EOS");
CREATE EXTENSION phi_guard;
SELECT phi_guard.phi_key_create('sb_key');
CREATE TABLE sb_pat (id int PRIMARY KEY, ssn phi_guard.phi_ciphertext);
SELECT phi_guard.phi_audit_enable('sb_pat');
INSERT INTO sb_pat SELECT g, phi_guard.phi_encrypt($plain_sql, 'sb_key') FROM generate_series(1, 3) g;
UPDATE sb_pat SET ssn = phi_guard.phi_encrypt($plain_sql, 'sb_key') WHERE id = 3;
EOS

# context, protected table and blind index, for the standby checks below
my $pem = `python3 test/context/sign_context.py pem sbk`;
my $tok_a = `python3 test/context/sign_context.py token sbk sub=ann tenant=t-a roles=clinician exp=+600`;
my $tok_bad = `python3 test/context/sign_context.py token sbk sub=ann tenant=t-a roles=clinician exp=-600`;
$primary->safe_psql('postgres', <<"EOS");
SET client_min_messages = error;
SELECT phi_guard.phi_context_key_add('sbk', '$pem');
CREATE ROLE sb_app IN ROLE phi_app;
CREATE TABLE sb_pt (id int PRIMARY KEY, tenant text NOT NULL, mrn_bidx int8);
GRANT SELECT ON sb_pt TO sb_app;
SELECT phi_guard.phi_protect_table('sb_pt', 'tenant');
INSERT INTO sb_pt VALUES (1, 't-a', phi_guard.phi_blind_index('MRN-1', 'sb_key')),
  (2, 't-b', phi_guard.phi_blind_index('MRN-2', 'sb_key'));
EOS
cmp_ok(audit_seal_quiet($primary), '>=', 5, 'primary: sealed the enable, insert and update entries');
my $primary_digest =
  $primary->safe_psql('postgres', 'SELECT phi_guard.phi_audit_digest()');
$primary->wait_for_catchup($standby);

# ---------------------------------------------------------------------
# on the standby
# ---------------------------------------------------------------------
is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'),
	't', 'the standby is in recovery');
is($standby->safe_psql('postgres', 'SHOW shared_preload_libraries'),
	'phi_guard', 'the standby preloads phi_guard');

my $log_offset = -s $standby->logfile;
is( $standby->safe_psql(
		'postgres',
		'SELECT string_agg(phi_guard.phi_decrypt(ssn), \',\' ORDER BY id) FROM sb_pat'),
	join(',', ($plaintext) x 3),
	'standby: phi_decrypt works with the same master key file');

is( $standby->safe_psql(
		'postgres',
		'SELECT ok, blocks, entries = (SELECT count(*) FROM phi_guard.audit_log), problem FROM phi_guard.phi_audit_verify()'
	),
	't|1|t|',
	'standby: phi_audit_verify() ok over the replicated block');
is( $standby->safe_psql('postgres', 'SELECT phi_guard.phi_audit_digest()'),
	$primary_digest, 'standby: the digest equals the primary\'s');
my ($rc, $out, $err) = verify_audit_py($standby, 'postgres');
is($rc, 0, 'standby: verify_audit.py exits 0') or diag($out . $err);

# the context, protected reads and blind indexes work on the standby
is( $standby->safe_psql(
		'postgres', qq{SET ROLE sb_app;
BEGIN;
SELECT phi_guard.phi_set_context('$tok_a');
SELECT phi_guard.phi_user_id() || '/' || phi_guard.phi_tenant_id() || '/'
       || phi_guard.phi_has_permission('break_glass') || '/' || phi_guard.phi_break_glass_active()
       || '/' || (SELECT string_agg(id::text, ',') FROM sb_pt);
COMMIT;
SELECT count(*) FROM sb_pt;}),
	"\nann/t-a/true/false/1\n0",
	'standby: phi_set_context, the readers and a protected table work; no context, no rows');
is( $standby->safe_psql(
		'postgres', q{SELECT id FROM sb_pt WHERE mrn_bidx = phi_guard.phi_blind_index('MRN-2', 'sb_key')}),
	'2', 'standby: phi_blind_index finds the row the primary indexed');
($rc, $out, $err) = $standby->psql('postgres',
	"SELECT phi_guard.phi_set_context('$tok_bad')");
like($err, qr/context token rejected: token expired/, 'standby: an expired token is rejected');
unlike($err, qr/\Q$tok_bad\E/, 'standby: the rejection does not show the token');

my ($stdout, $stderr) = ('', '');
$rc = $standby->psql(
	'postgres',
	"\\set VERBOSITY verbose\nSELECT phi_guard.phi_audit_seal()",
	stdout => \$stdout,
	stderr => \$stderr);
isnt($rc, 0, 'standby: phi_audit_seal() fails');
like(
	$stderr,
	qr/ERROR:\s+25006: cannot seal the audit log on a standby/,
	'standby: the error is read-only (25006) and says why');
like($stderr, qr/HINT:\s+The primary seals/, 'standby: the hint names the primary');

# the access entry of the decrypt above reaches the standby's server log
my $line;
my $deadline = time + 10;
while (time < $deadline)
{
	my $log = slurp_file($standby->logfile, $log_offset);
	if ($log =~ /^(.*phi_guard access entry \(standby\).*)$/m)
	{
		$line = $1;
		last;
	}
	usleep(100_000);
}
ok(defined $line, 'standby: a "phi_guard access entry (standby)" line is logged');
$line //= '';
like($line, qr/"kind":"decrypt"/,       'the logged entry is a decrypt');
like($line, qr/"key":"sb_key"/,         'it names the key');
like($line, qr/"count":3\b/,            'it counts the three decryptions');
unlike(slurp_file($standby->logfile, $log_offset),
	qr/\Q$plaintext\E/, 'the standby log does not contain the plaintext');
is( $standby->safe_psql('postgres',
		q{SELECT count(*) FROM phi_guard.audit_log WHERE record::jsonb->>'kind' = 'decrypt'}),
	'0',
	'the standby wrote no entry into the replicated table');

# phi_guard.standby_access = 'refuse': no disclosure on the standby (SPEC §7)
($stdout, $stderr) = ('', '');
$standby->psql(
	'postgres',
	"\\set VERBOSITY verbose\nSET phi_guard.standby_access = 'refuse';\n"
	  . "SELECT phi_guard.phi_decrypt(ssn) FROM sb_pat WHERE ssn IS NOT NULL LIMIT 1",
	stdout => \$stdout,
	stderr => \$stderr);
like($stderr, qr/ERROR:\s+PH006:.*\n.*DETAIL:\s+This server is a hot standby/,
	'standby_access = refuse: a decrypt on the standby is refused with PH006');
is($stdout, '', 'standby_access = refuse: and returns no value');

# ---------------------------------------------------------------------
# entries the primary writes but does not seal, then a failover
# ---------------------------------------------------------------------
$primary->safe_psql('postgres',
	'INSERT INTO sb_pat SELECT g, NULL FROM generate_series(10, 14) g');
$primary->wait_for_catchup($standby);
my ($last_no, $last_hi) = split /\|/, $standby->safe_psql('postgres',
	'SELECT block_no, xid_hi FROM phi_guard.audit_block ORDER BY block_no DESC LIMIT 1');
my $unsealed = $standby->safe_psql('postgres',
	"SELECT count(*) FROM phi_guard.audit_log WHERE xid >= '$last_hi'::xid8");
is($unsealed, '5', 'the standby holds the 5 entries the primary left unsealed');

$primary->stop;
$standby->promote;
is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'),
	'f', 'the standby is promoted');

# ---------------------------------------------------------------------
# the promoted standby seals on
# ---------------------------------------------------------------------
$standby->safe_psql('postgres', <<"EOS");
INSERT INTO sb_pat SELECT g, phi_guard.phi_encrypt($plain_sql, 'sb_key') FROM generate_series(20, 23) g;
DELETE FROM sb_pat WHERE id = 10;
SELECT count(phi_guard.phi_decrypt(ssn)) FROM sb_pat;
EOS
my $sealed = audit_seal_quiet($standby);
cmp_ok($sealed, '>', 0, 'promoted: phi_audit_seal() seals');
is($sealed, 5 + 4 + 1 + 2,
	'it sealed the 5 unsealed entries, 4 inserts, 1 delete and 1 decrypt (its intent and final entries)');
is( $standby->safe_psql(
		'postgres',
		"SELECT block_no = $last_no + 1, xid_lo = '$last_hi'::xid8 FROM phi_guard.audit_block ORDER BY block_no DESC LIMIT 1"
	),
	't|t',
	'the new block follows the old primary\'s last one: xid_lo = its xid_hi');
is( $standby->safe_psql(
		'postgres',
		'SELECT ok, blocks, entries = (SELECT count(*) FROM phi_guard.audit_log), problem FROM phi_guard.phi_audit_verify()'
	),
	't|' . ($last_no + 1) . '|t|',
	'promoted: phi_audit_verify() ok, every entry sealed');
is( $standby->safe_psql(
		'postgres',
		"SELECT ok FROM phi_guard.phi_audit_verify('$primary_digest'::jsonb)"),
	't',
	'promoted: the chain still reaches the old primary\'s digest');
($rc, $out, $err) = verify_audit_py($standby, 'postgres');
is($rc, 0, 'promoted: verify_audit.py exits 0') or diag($out . $err);

$standby->stop;
done_testing();
