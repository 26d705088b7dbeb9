# 015_who_fields.pl — issue 11, who-fields kept whole (SPEC §6): the
# context's user, tenant and purpose are recorded byte for byte up to the
# 255 bytes a claim may have, in access entries (which travel through
# shared memory) and in row entries (written in the writer's transaction).
# Two users whose names share their first 63 bytes stay two users; a
# multibyte character across byte 63 is not cut, so every record is valid
# UTF-8; a longer claim is refused by phi_set_context (28000).  What is
# shortened (an application_name over 63 bytes) is cut at a character
# boundary.  Both verifiers accept the chain.

use strict;
use warnings;

use Encode qw(decode encode);
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PhiGuardTest;

my ($node) = phi_guard_node(
	'who_fields',
	utf8 => 1,
	conf => [ 'log_statement = none' ]);

sub query { return $node->safe_psql('postgres', $_[0]); }


# a JSON string claim for sign_context.py, non-ASCII as \u escapes
sub claim
{
	my ($name, $text) = @_;
	my $json = join '', map { ord($_) < 128 ? $_ : sprintf('\\u%04x', ord($_)) } split //, $text;
	return "$name=json:\"$json\"";
}

# users that share their first 63 bytes; a tenant and a purpose of 255
# bytes whose byte 63 falls inside a two-byte character
my $sub_x   = ('u' x 63) . 'x';
my $sub_y   = ('u' x 63) . 'y';
my $tenant  = (chr(0xE9) x 127) . 't';
my $purpose = 'p' . (chr(0xFC) x 127);
is(length(encode('UTF-8', $tenant)) . '/' . length(encode('UTF-8', $purpose)),
	'255/255', 'tenant and purpose claims have the most bytes allowed');

my $pem = sign_context('pem', 'who');
query(<<"EOS");
SET client_min_messages = warning;
CREATE EXTENSION phi_guard;
SELECT phi_guard.phi_context_key_add('who', '$pem');
SELECT phi_guard.phi_key_create('who_key');
CREATE TABLE who_t (id int PRIMARY KEY, ssn phi_guard.phi_ciphertext);
SELECT phi_guard.phi_audit_enable('who_t');
INSERT INTO who_t SELECT g, phi_guard.phi_encrypt('secret-' || g, 'who_key') FROM generate_series(1, 3) g;
EOS

my $id = 100;
for my $sub ($sub_x, $sub_y)
{
	my $tok = sign_context('token', 'who', "sub=$sub", claim('tenant', $tenant),
		claim('purpose', $purpose), 'roles=clinician', 'exp=+600');
	$id++;
	query(<<"EOS");
BEGIN;
SELECT phi_guard.phi_set_context('$tok');
SELECT count(phi_guard.phi_decrypt(ssn)) FROM who_t WHERE id <= 3;
INSERT INTO who_t VALUES ($id, NULL);
COMMIT;
EOS
}

my $long = sign_context('token', 'who', 'sub=' . ('u' x 256), 'tenant=t', 'roles=clinician', 'exp=+600');
fails_with($node, 'postgres', "SELECT phi_guard.phi_set_context('$long')", '28000',
	'a 256-byte claim');

# an application_name of 100 bytes
query(q{SET application_name = '} . ('a' x 100) . q{'; SELECT count(phi_guard.phi_decrypt(ssn)) FROM who_t WHERE id = 1});

audit_seal_quiet($node);

my @rows = split /\n/, query(<<'EOS');
SELECT kind || coalesce('/' || (detail->>'phase'), '') || '|' || app_user || '|' || tenant || '|' || purpose
  FROM phi_guard.audit_events
 WHERE app_user IS NOT NULL AND kind IN ('decrypt', 'insert')
 ORDER BY xid, id
EOS
my @want = map {
	my $sub = $_;
	# durable access (the default): an intent entry before the first value,
	# the final one with every reference after the statement; both whole
	map { encode('UTF-8', "$_|$sub|$tenant|$purpose") } ('decrypt/intent', 'decrypt/final', 'insert')
} ($sub_x, $sub_y);
# the final decrypt entry is written by the worker, later than the insert: compare as sets
is_deeply([ sort @rows ], [ sort @want ],
	'access and row entries hold the whole user, tenant and purpose of both contexts');
is(query(q{SELECT count(DISTINCT app_user) FROM phi_guard.audit_events WHERE app_user IS NOT NULL}),
	'2', 'users sharing a 63-byte prefix stay two users');

my $invalid = 0;
for my $record (split /\n/, query('SELECT record FROM phi_guard.audit_log'))
{
	$invalid++ unless eval { decode('UTF-8', $record, Encode::FB_CROAK); 1 };
}
is($invalid, 0, 'every record is valid UTF-8');

is( query(<<'EOS'),
SELECT application_name FROM phi_guard.audit_events
 WHERE kind = 'decrypt' AND app_user IS NULL AND application_name LIKE 'aaa%'
 GROUP BY application_name
EOS
	'a' x 63,
	'an application_name over 63 bytes is kept to its first 63, as PostgreSQL shows it');

is(query('SELECT ok FROM phi_guard.phi_audit_verify()'), 't', 'phi_audit_verify() is ok');
my ($rc, $out, $err) = verify_audit_py($node, 'postgres');
is($rc, 0, 'verify_audit.py is ok') or diag($out . $err);

$node->stop;
done_testing();
