# 002_interop.pl — SPEC §2-§3 are a complete public contract: with the master
# key and the phi_guard.keys rows, an independent implementation
# (test/interop/spec_crypto.py, written from the SPEC alone) decrypts what
# phi_guard wrote, and phi_guard decrypts what that implementation wrote —
# honouring the aad binding (PH001 on a wrong aad), the bytea flag, text as
# UTF-8 (also from a LATIN1 database), and key destruction (PH002).

use strict;
use warnings;

# PostgreSQL::Test::Utils creates $TESTDIR/tmp_check but not $TESTDIR itself.

use Digest::MD5 qw(md5_hex);
use Encode      qw(encode);
use IPC::Run;
use JSON::PP;
use MIME::Base64 qw(decode_base64 encode_base64);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PhiGuardTest;

my $python  = '/usr/bin/python3';
my $checker = 'test/interop/spec_crypto.py';    # cwd is the tree root
my $json    = JSON::PP->new->utf8->canonical;

my $master_hex = random_hex();
my ($node) = phi_guard_node('interop', key_hex => $master_hex, utf8 => 1);

# ---------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------

sub utf8_bytes
{
	my ($s) = @_;
	return encode('UTF-8', $s, Encode::FB_CROAK | Encode::LEAVE_SRC);
}

# SQL expression for a text value given as a Perl character string, passed
# as UTF-8 hex so that no client encoding is involved.
sub sql_text
{
	my ($s) = @_;
	return 'NULL::text' unless defined $s;
	return
		"convert_from('\\x"
	  . unpack('H*', utf8_bytes($s))
	  . "'::bytea, 'UTF8')";
}

sub sql_bytea { return "'\\x" . unpack('H*', $_[0]) . "'::bytea"; }

# Run the independent implementation; returns (exit code, result, stderr).
sub run_checker
{
	my ($request) = @_;
	my $in = $json->encode($request);
	my ($out, $err) = ('', '');
	IPC::Run::run([ $python, $checker ], '<', \$in, '>', \$out, '2>', \$err);
	my $rc     = $? >> 8;
	my $result = $rc == 0 ? $json->decode($out) : undef;
	return ($rc, $result, $err);
}

# id => wrapped key hex for every live key version of a database
sub wrapped_keys
{
	my ($db) = @_;
	my %w = map { split /\|/ } split /\n/,
	  $node->safe_psql($db,
			"SELECT id, encode(wrapped_key, 'hex') FROM phi_guard.keys "
		  . 'WHERE wrapped_key IS NOT NULL ORDER BY id');
	return \%w;
}

sub keys_json
{
	my ($w) = @_;
	return [
		map  { +{ id => $_ + 0, wrapped_key_hex => $w->{$_} } }
		sort { $a <=> $b } keys %$w ];
}

# Server-side decryption of a value, returned as hex of its (UTF-8) bytes.
sub server_plain_hex
{
	my ($db, $ct, $aad, $bytea) = @_;
	my $call =
	  $bytea ? 'phi_guard.phi_decrypt_bytea' : 'phi_guard.phi_decrypt';
	my $expr =
	  "$call('$ct'::phi_guard.phi_ciphertext, " . sql_text($aad) . ')';
	$expr = "convert_to($expr, 'UTF8')" unless $bytea;
	return $node->safe_psql($db, "SELECT encode($expr, 'hex')");
}

# ---------------------------------------------------------------------
# phi_guard encrypts, the independent implementation decrypts
# ---------------------------------------------------------------------

$node->safe_psql('postgres', <<'EOS');
CREATE EXTENSION phi_guard;
CREATE TABLE vals (name text PRIMARY KEY, ct phi_guard.phi_ciphertext NOT NULL);
EOS

my %key_id;
$key_id{alpha1} =
  $node->safe_psql('postgres', "SELECT phi_guard.phi_key_create('alpha')");

my $utf8_text = "Zo\x{eb} \x{60a3}\x{8005} \x{1fa7a}";     # Zoë 患者 🩺
my $big_text  = join '', map { md5_hex($_) } 1 .. 3125;    # 100 000 chars

# name => [key, is_bytea, plaintext (text: characters, bytea: bytes), aad]
my %cases = (
	a1_ascii => [ 'alpha1', 0, 'Jane Doe, MRN 000123', undef ],
	a1_aad   => [ 'alpha1', 0, 'SSN 123-45-6789', 'clinic.patients.ssn:42' ],
	ascii       => [ 'alpha2', 0, 'Jane Doe, MRN 000123',     undef ],
	empty       => [ 'alpha2', 0, '',                         undef ],
	utf8        => [ 'alpha2', 0, $utf8_text,                 undef ],
	big         => [ 'alpha2', 0, $big_text,                  undef ],
	bytea_zeros => [ 'alpha2', 1, "\x00\x01\x00\xff\x00\x00", undef ],
	bytea_empty => [ 'alpha2', 1, '',                         undef ],
	aad_text  => [ 'alpha2', 0, 'diagnosis J45.909', 'clinic.patients.dx:7' ],
	aad_empty => [ 'alpha2', 0, 'bound to the empty aad', '' ],
	aad_utf8  => [ 'alpha2', 0, $utf8_text, "clinic.patients.name:Zo\x{eb}" ],
	b_text    => [ 'beta1',  0, 'beta key text',    'row:1' ],
	b_bytea   => [ 'beta1',  1, "\x00" x 17,        'row:2' ],
	b_noaad   => [ 'beta1',  1, "\xde\xad\xbe\xef", undef ],);

sub encrypt_cases_sql
{
	my ($keyname) = @_;
	my @rows;
	for my $name (sort keys %cases)
	{
		my ($key, $is_bytea, $pt, $aad) = @{ $cases{$name} };
		next unless $key eq $keyname;
		(my $sqlkey = $key) =~ s/\d+$//;
		my $ptsql = $is_bytea ? sql_bytea($pt) : sql_text($pt);
		push @rows,
		  "('$name', phi_guard.phi_encrypt($ptsql, '$sqlkey', "
		  . sql_text($aad) . '))';
	}
	return 'INSERT INTO vals VALUES ' . join(",\n", @rows) . ';';
}

$node->safe_psql('postgres', encrypt_cases_sql('alpha1'));
$key_id{alpha2} =
  $node->safe_psql('postgres', "SELECT phi_guard.phi_key_rotate('alpha')");
$key_id{beta1} =
  $node->safe_psql('postgres', "SELECT phi_guard.phi_key_create('beta')");
$node->safe_psql('postgres', encrypt_cases_sql($_)) for qw(alpha2 beta1);

is( $node->safe_psql(
		'postgres',
"SELECT string_agg(name || ':' || version || ':' || state, ',' ORDER BY id) FROM phi_guard.keys"
	),
	'alpha:1:retired,alpha:2:active,beta:1:active',
	'keyring holds a rotated and a fresh key');

my %ct = map { split /\|/ } split /\n/,
  $node->safe_psql('postgres', 'SELECT name, ct FROM vals ORDER BY name');
is_deeply([ sort keys %ct ], [ sort keys %cases ], 'every case was stored');

my $wrapped = wrapped_keys('postgres');
my @names   = sort keys %cases;
my ($rc, $res, $err) = run_checker(
	{   master_key_hex => $master_hex,
		keys           => keys_json($wrapped),
		decrypt        =>
		  [ map { +{ ct => $ct{$_}, aad => $cases{$_}[3] } } @names ],
		encrypt => [], });
is($rc, 0, 'independent implementation decrypts every value')
  or diag("stderr: $err");

for my $i (0 .. $#names)
{
	my $name = $names[$i];
	my ($key, $is_bytea, $pt, $aad) = @{ $cases{$name} };
	my $got      = $res ? $res->{decrypted}[$i] : {};
	my $want_hex = unpack('H*', $is_bytea ? $pt : utf8_bytes($pt));
	ok(defined $got->{plaintext_hex} && $got->{plaintext_hex} eq $want_hex,
		"$name: plaintext bytes match");
	is($got->{bytea} ? 1 : 0, $is_bytea, "$name: bytea flag");
	is($got->{aad_flag} ? 1 : 0, defined $aad ? 1 : 0, "$name: aad flag");
	is($got->{key_id}, $key_id{$key}, "$name: header names key $key");
}

is( $node->safe_psql(
		'postgres',
		"SELECT octet_length(ct::bytea) FROM vals WHERE name = 'big'"),
	100_036,
	'100 kB value has exactly 36 bytes of overhead');

# The checker must be able to say no, without echoing secrets.
{
	my $raw = decode_base64(substr($ct{aad_text}, 5));
	substr($raw, 25, 1) = chr(ord(substr($raw, 25, 1)) ^ 0x01);
	my $tampered = 'phi1:' . encode_base64($raw, '');
	my @bad      = (
		[   'tampered value',
			{ ct => $tampered, aad => $cases{aad_text}[3] }, $master_hex ],
		[   'wrong aad',
			{ ct => $ct{aad_text}, aad => 'clinic.patients.dx:8' },
			$master_hex ],
		[   'aad missing', { ct => $ct{aad_empty}, aad => undef },
			$master_hex ],
		[   'wrong master key',
			{ ct => $ct{ascii}, aad => undef },
			random_hex() ],);
	for my $case (@bad)
	{
		my ($what, $item, $mk)   = @$case;
		my ($brc,  undef, $berr) = run_checker(
			{   master_key_hex => $mk,
				keys           => keys_json($wrapped),
				decrypt        => [$item], });
		isnt($brc, 0, "checker rejects: $what");
		ok( $berr ne ''
			  && index(lc $berr, $master_hex) < 0
			  && index($berr,    $cases{aad_text}[2]) < 0
			  && index($berr,    $cases{ascii}[2]) < 0
			  && $berr !~ /phi1:/,
			"checker error for $what names no key, plaintext or ciphertext"
		) or diag("stderr: $berr");
	}
}

# ---------------------------------------------------------------------
# the independent implementation encrypts, phi_guard decrypts
# ---------------------------------------------------------------------

# [key, is_bytea, plaintext, aad]
my @py = (
	[ 'alpha2', 0, 'written by Python',              undef ],
	[ 'alpha2', 0, $utf8_text,                       'ctx:1' ],
	[ 'alpha2', 0, '',                               undef ],
	[ 'beta1',  1, "\x00\xff\x00",                   undef ],
	[ 'beta1',  0, 'with the empty aad',             '' ],
	[ 'beta1',  1, "\x00" x 1000,                    "enc:Zo\x{eb}" ],
	[ 'alpha1', 0, 'retired versions still decrypt', 'r' ],);

sub py_request
{
	my ($w, @items) = @_;
	return {
		master_key_hex => $master_hex,
		keys           => keys_json($w),
		decrypt        => [],
		encrypt        => [
			map {
				+{  key_id => $key_id{ $_->[0] } + 0,
					bytea  => $_->[1] ? JSON::PP::true : JSON::PP::false,
					plaintext_hex =>
					  unpack('H*', $_->[1] ? $_->[2] : utf8_bytes($_->[2])),
					aad => $_->[3], }
			} @items ], };
}

($rc, $res, $err) = run_checker(py_request($wrapped, @py));
is($rc, 0, 'independent implementation encrypts') or diag("stderr: $err");
my @pyct = $res ? @{ $res->{encrypted} } : ();
is(scalar @pyct, scalar @py, 'one ciphertext per request');

for my $i (0 .. $#py)
{
	my ($key, $is_bytea, $pt, $aad) = @{ $py[$i] };
	my $want_hex = unpack('H*', $is_bytea ? $pt : utf8_bytes($pt));
	is(server_plain_hex('postgres', $pyct[$i] // '', $aad, $is_bytea),
		$want_hex, "python value $i (key $key) decrypts in phi_guard");
}

my $q = "'$pyct[1]'::phi_guard.phi_ciphertext";
fails_with($node, 'postgres',
	"SELECT phi_guard.phi_decrypt($q, 'ctx:2')",
	'PH001', 'python value with a wrong aad');
fails_with($node, 'postgres',
	"SELECT phi_guard.phi_decrypt($q)",
	'PH001', 'python value with its aad left out');
fails_with($node, 'postgres',
"SELECT phi_guard.phi_decrypt('$pyct[0]'::phi_guard.phi_ciphertext, 'ctx:1')",
	'PH001',
	'python value without aad, decrypted with one');
fails_with($node, 'postgres',
	"SELECT phi_guard.phi_decrypt('$pyct[4]'::phi_guard.phi_ciphertext)",
	'PH001',
	'python value with the empty aad, decrypted without aad');
fails_with($node, 'postgres',
	"SELECT phi_guard.phi_decrypt('$pyct[3]'::phi_guard.phi_ciphertext)",
	'42804', 'python bytea value through phi_decrypt (text)');

# ---------------------------------------------------------------------
# destruction: a destroyed version refuses even freshly written values
# ---------------------------------------------------------------------

is( $node->safe_psql(
		'postgres', "SELECT phi_guard.phi_key_destroy('alpha', 1)"),
	'1',
	'alpha version 1 destroyed');
fails_with($node, 'postgres',
"SELECT phi_guard.phi_decrypt(ct, 'clinic.patients.ssn:42') FROM vals WHERE name = 'a1_aad'",
	'PH002',
	'phi_guard value under the destroyed version');

# $wrapped still holds the data key as it was before destruction
($rc, $res, $err) =
  run_checker(
	py_request($wrapped, [ 'alpha1', 0, 'after destruction', undef ]));
is($rc, 0, 'independent implementation encrypts under the old data key')
  or diag("stderr: $err");
my $late = $res ? $res->{encrypted}[0] : '';
$err =
  fails_with($node, 'postgres',
	"SELECT phi_guard.phi_decrypt('$late'::phi_guard.phi_ciphertext)",
	'PH002', 'python value under the destroyed version');
like($err, qr/was destroyed/, 'error says the key was destroyed');
is( server_plain_hex('postgres', $pyct[0], undef, 0),
	unpack('H*', $py[0][2]),
	'the active version still decrypts');

# ---------------------------------------------------------------------
# a LATIN1 database: text and aad are still UTF-8 on the wire
# ---------------------------------------------------------------------

$node->safe_psql('postgres',
"CREATE DATABASE latin1 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
);
my $latin_text = "Zo\x{eb} M\x{fc}ller, n\x{e9}e \x{c5}berg";
my $latin_aad  = "patient:Bj\x{f6}rk";
my $latin_ct   = $node->safe_psql('latin1', <<"EOS");
CREATE EXTENSION phi_guard;
SELECT phi_guard.phi_key_create('latin') \\g /dev/null
SELECT phi_guard.phi_encrypt(@{[ sql_text($latin_text) ]}, 'latin', @{[ sql_text($latin_aad) ]});
EOS
my $latin_keys = wrapped_keys('latin1');
my ($latin_id) = keys %$latin_keys;
$key_id{latin} = $latin_id;
($rc, $res, $err) = run_checker(
	{   master_key_hex => $master_hex,
		keys           => keys_json($latin_keys),
		decrypt        => [ { ct => $latin_ct, aad => $latin_aad } ],
		encrypt        => [
			{   key_id        => $latin_id + 0,
				plaintext_hex => unpack('H*', utf8_bytes($latin_text)),
				aad           => $latin_aad,
				bytea         => JSON::PP::false, } ], });
is($rc, 0, 'LATIN1 database: independent implementation runs')
  or diag("stderr: $err");
is( $res ? $res->{decrypted}[0]{plaintext_hex} : undef,
	unpack('H*', utf8_bytes($latin_text)),
	'LATIN1 database: phi_guard wrote the text as UTF-8');
is( server_plain_hex(
		'latin1',   $res ? $res->{encrypted}[0] : '',
		$latin_aad, 0),
	unpack('H*', utf8_bytes($latin_text)),
	'LATIN1 database: python value with a UTF-8 aad decrypts in phi_guard');

# Text that LATIN1 cannot hold cannot be returned there; the error must still
# carry no PHI (SPEC §3), not even as a byte sequence.
my $cjk = "\x{60a3}\x{8005}";    # 患者
($rc, $res, $err) =
  run_checker(py_request($latin_keys, [ 'latin', 0, $cjk, undef ]));
is($rc, 0, 'LATIN1 database: python encrypts non-Latin-1 text')
  or diag("stderr: $err");
{
	my ($out, $perr) = ('', '');
	my $prc = $node->psql(
		'latin1',
		"\\set VERBOSITY verbose\nSELECT phi_guard.phi_decrypt('"
		  . ($res ? $res->{encrypted}[0] : '')
		  . "'::phi_guard.phi_ciphertext)",
		stdout => \$out,
		stderr => \$perr);
	my $bytes = join ' ',
	  map { sprintf '0x%02x', ord } split //, utf8_bytes($cjk);
	isnt($prc, 0,
		'LATIN1 database: non-Latin-1 text cannot be returned as text');
	ok(index($perr, substr($bytes, 0, 14)) < 0,
		'LATIN1 database: that error does not quote the plaintext bytes')
	  or diag("stderr: $perr");
	like($perr, qr/22P05|cannot represent/,
		'LATIN1 database: the error names the encoding problem');
}

$node->stop;
done_testing();
