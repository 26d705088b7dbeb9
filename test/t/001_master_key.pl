# 001_master_key.pl — SPEC §1, the master key: read once at server start from
# phi_guard.master_key_file (mode 0600 only) or phi_guard.master_key_command
# (never both); a bad or missing key leaves the server up but makes every
# key function fail with PH003 and the reason; a different key cannot unwrap
# existing data keys (PH004); without shared_preload_libraries the functions
# fail with a hint; and neither key nor plaintext ever reaches the server log.

use strict;
use warnings;

# PostgreSQL::Test::Utils creates $TESTDIR/tmp_check but not $TESTDIR itself.

use Digest::MD5 qw(md5_hex);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PhiGuardTest;

my $keydir = PostgreSQL::Test::Utils::tempdir;

my $good_hex  = random_hex();
my $wrong_hex = random_hex();
my $short_hex = substr(random_hex(), 0, 63);
isnt($good_hex, $wrong_hex, 'the two master keys differ');

# uppercase with surrounding white space: SPEC allows both
my $good_file  = write_key_file($keydir, 'good.key',  "  \U$good_hex\E\n", 0600);
my $wrong_file = write_key_file($keydir, 'wrong.key', "$wrong_hex\n",      0600);
my $short_file = write_key_file($keydir, 'short.key', "$short_hex\n",      0600);

# The plaintext is computed in the server, so log_statement = all does not
# put it into the log by itself; only a leak by phi_guard could.
my $seed      = 'phi_guard 001 plaintext seed';
my $plaintext = 'PHI-' . md5_hex($seed);
my $pt_sql    = "'PHI-' || md5('$seed')";

my $node = PostgreSQL::Test::Cluster->new('master_key');
$node->init;
$node->append_conf('postgresql.conf', <<'EOC');
log_min_messages = debug1
log_min_error_statement = debug1
EOC

sub log_since
{
	my ($offset) = @_;
	return slurp_file($node->logfile, $offset);
}

# Run SQL in database postgres that must fail with the given SQLSTATE;
# returns stderr.
sub fails
{
	my ($sql, $sqlstate, $name) = @_;
	return fails_with($node, 'postgres', $sql, $sqlstate, $name);
}

my $decrypt_stored =
  'SELECT phi_guard.phi_decrypt(ct) FROM stored WHERE id = 1';

# ---------------------------------------------------------------------
# (a) a 0600 key file works
# ---------------------------------------------------------------------
my $off = restart_with($node, file => $good_file);
$node->safe_psql('postgres', <<"EOS");
CREATE EXTENSION phi_guard;
SELECT phi_guard.phi_key_create('k1');
CREATE TABLE stored (id int PRIMARY KEY, ct phi_guard.phi_ciphertext);
INSERT INTO stored VALUES (1, phi_guard.phi_encrypt($pt_sql, 'k1'));
EOS
is($node->safe_psql('postgres', $decrypt_stored),
	$plaintext, '(a) key file 0600: stored value decrypts to the plaintext');
is( $node->safe_psql(
		'postgres',
"SELECT phi_guard.phi_decrypt(phi_guard.phi_encrypt($pt_sql, 'k1', 'ctx'), 'ctx')"
	),
	$plaintext,
	'(a) key file 0600: encrypt/decrypt round trip with aad');
is( $node->safe_psql(
		'postgres',
		"SELECT octet_length(ct::bytea) - octet_length($pt_sql) FROM stored"),
	'36',
	'(a) stored value has 36 bytes of overhead');
unlike(
	log_since($off),
	qr/no master key loaded/,
	'(a) no master-key warning when the key loaded');

# ---------------------------------------------------------------------
# (b) the same file with group read access is refused
# ---------------------------------------------------------------------
chmod(0640, $good_file) or die "chmod: $!";
$off = restart_with($node, file => $good_file);
my $err = fails($decrypt_stored, 'PH003', '(b) 0640 key file, decrypt');
like(
	$err,
	qr/^DETAIL:.*group or world access/m,
	'(b) error says the file has group or world access');
fails(
	"SELECT phi_guard.phi_encrypt('x', 'k1')",
	'PH003',
	'(b) 0640 key file, encrypt');
fails(
	"SELECT phi_guard.phi_key_create('k2')",
	'PH003',
	'(b) 0640 key file, key create');
like(
	log_since($off),
qr/WARNING:\s+phi_guard: no master key loaded: phi_guard\.master_key_file has group or world access/,
	'(b) server log has the startup warning');
is($node->safe_psql('postgres', 'SELECT count(*) FROM stored'),
	'1', '(b) the server is up and serves queries without the key');
chmod(0600, $good_file) or die "chmod: $!";

# ---------------------------------------------------------------------
# (c) a different, well-formed master key cannot unwrap the data keys
# ---------------------------------------------------------------------
restart_with($node, file => $wrong_file);
$err = fails($decrypt_stored, 'PH004', '(c) wrong master key, decrypt');
like(
	$err,
	qr/cannot be unwrapped with the configured master key/,
	'(c) error says the data key cannot be unwrapped');
fails(
	"SELECT phi_guard.phi_encrypt('x', 'k1')",
	'PH004',
	'(c) wrong master key, encrypt under the existing key');

# ---------------------------------------------------------------------
# (d) master_key_command yielding the original key
# ---------------------------------------------------------------------
restart_with($node, command => "cat $good_file");
is($node->safe_psql('postgres', $decrypt_stored),
	$plaintext, '(d) key from master_key_command: stored value decrypts');

# ---------------------------------------------------------------------
# (e) a command that prints the key but exits 1 is refused
# ---------------------------------------------------------------------
restart_with($node, command => "cat $good_file; exit 1");
$err = fails($decrypt_stored, 'PH003', '(e) failing command');
like(
	$err,
	qr/^DETAIL:.*master_key_command failed/m,
	'(e) error says the command failed');

# ---------------------------------------------------------------------
# (f) both settings at once is an error even when each would work
# ---------------------------------------------------------------------
restart_with($node, file => $good_file, command => "cat $good_file");
$err = fails($decrypt_stored, 'PH003', '(f) both settings');
like(
	$err,
qr/^DETAIL:.*master_key_file and phi_guard\.master_key_command are both set/m,
	'(f) error says both are set');

# ---------------------------------------------------------------------
# (g) neither setting
# ---------------------------------------------------------------------
restart_with($node);
$err = fails("SELECT phi_guard.phi_encrypt('x', 'k1')",
	'PH003', '(g) no setting');
like(
	$err,
	qr/^(?:psql:\S+ )?ERROR:.*phi_guard has no master key/m,
	'(g) error says there is no master key');
like($err, qr/^DETAIL:.*both empty/m, '(g) error says both are empty');

# ---------------------------------------------------------------------
# (h) 63 hex characters
# ---------------------------------------------------------------------
restart_with($node, file => $short_file);
$err = fails($decrypt_stored, 'PH003', '(h) 63-character key');
like(
	$err,
	qr/^DETAIL:.*64 hexadecimal characters/m,
	'(h) error mentions 64 hexadecimal characters');

# ---------------------------------------------------------------------
# (i) not in shared_preload_libraries (the key file itself is fine)
# ---------------------------------------------------------------------
restart_with($node, preload => '', file => $good_file);
$err = fails(
	"SELECT phi_guard.phi_encrypt('x', 'k1')",
	'PH003',
	'(i) not preloaded, encrypt');
like(
	$err,
	qr/^(?:psql:\S+ )?ERROR:.*not loaded through shared_preload_libraries/m,
	'(i) error says phi_guard is not preloaded');
like(
	$err,
	qr/^HINT:.*shared_preload_libraries/m,
	'(i) hint names shared_preload_libraries');
fails($decrypt_stored, 'PH003', '(i) not preloaded, decrypt');

# ---------------------------------------------------------------------
# (j) no secret in the server log, across every start above
# ---------------------------------------------------------------------
$node->stop;
my $log = slurp_file($node->logfile);
like($log, qr/\Q$seed\E/,
	'(j) sanity: the log records statements (log_statement = all)');
unlike($log, qr/\Q$good_hex\E/i, '(j) log does not contain the master key');
unlike($log, qr/\Q$wrong_hex\E/i,
	'(j) log does not contain the wrong master key');
unlike($log, qr/\Q$short_hex\E/i,
	'(j) log does not contain the malformed key text');
unlike($log, qr/\Q$plaintext\E/, '(j) log does not contain the plaintext');

done_testing();
