# 005_recover.pl — the data is never locked in: with the master key and
# SPEC §2-§3 alone, tools/recover.py gets every phi_guard value back, from
# the live database (--dsn) and from a plain pg_dump file (--dump, with the
# server stopped): text and bytea, with and without aad (filled from the
# row by a template), under a retired and an active key version, and the
# token vault of two domains.  Values under a destroyed key, a value moved
# to another row and a wrong master key fail clearly, naming no secret.

use strict;
use warnings;

use Encode qw(decode encode);
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PhiGuardTest;

my $python = '/usr/bin/python3';
my $tool   = 'tools/recover.py';    # cwd is the tree root

my $master_hex = random_hex();
my ($node, $key_file) = phi_guard_node('recover', key_hex => $master_hex, utf8 => 1);
my $wrong_hex  = random_hex();
my $wrong_file =
  write_key_file(PostgreSQL::Test::Utils::tempdir, 'wrong.key', "$wrong_hex\n", 0600);
my $dsn = 'host=' . $node->host . ' port=' . $node->port . ' dbname=postgres';

# ---------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------

# SQL expression for a Perl character string (passed as UTF-8 hex, so no
# quoting or client encoding is involved), or NULL.
sub sql_text
{
	my ($s) = @_;
	return 'NULL::text' unless defined $s;
	return "convert_from('\\x" . unpack('H*', encode('UTF-8', $s)) . "'::bytea, 'UTF8')";
}

sub sql_bytea
{
	my ($b) = @_;
	return 'NULL::bytea' unless defined $b;
	return "'\\x" . unpack('H*', $b) . "'::bytea";
}

# Run recover.py; returns (exit code, stdout as characters, stderr).
sub recover
{
	my ($stdin, @args) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ $python, $tool, @args ],
		'<', \$stdin, '>', \$out, '2>', \$err);
	return ($? >> 8, decode('UTF-8', $out), $err);
}

# PostgreSQL-style CSV -> array of rows; an unquoted empty field is undef.
sub parse_csv
{
	my ($text) = @_;
	my (@rows, @row);
	my $pos = 0;
	my $len = length $text;
	while ($pos < $len)
	{
		my $field;
		pos($text) = $pos;
		if (substr($text, $pos, 1) eq '"')
		{
			$text =~ /\G"((?:[^"]|"")*)"/gc
			  or die "unterminated quoted CSV field";
			($field = $1) =~ s/""/"/g;
		}
		else
		{
			$text =~ /\G([^,\n]*)/gc;
			$field = $1 eq '' ? undef : $1;
		}
		push @row, $field;
		$pos = pos($text);
		my $sep = substr($text, $pos, 1);
		$pos++;
		if ($sep ne ',')
		{
			push @rows, [@row];
			@row = ();
		}
	}
	return \@rows;
}

# CSV with the key in the first column -> { key => [other fields] }, and
# the header.
sub csv_by_key
{
	my ($text) = @_;
	my @rows   = @{ parse_csv($text) };
	my $header = shift @rows;
	my %by     = map { my @r = @$_; my $k = shift @r; ($k => \@r) } @rows;
	return (\%by, $header);
}

sub no_secrets
{
	my ($err, $what, @plain) = @_;
	my @leaks = grep { index($err, $_) >= 0 }
	  (lc $master_hex, uc $master_hex, 'phi1:', grep { defined && length >= 3 } @plain);
	ok(!@leaks, "$what: stderr names no key, plaintext or ciphertext")
	  or diag("leaked into stderr: @leaks\nstderr: $err");
}

# ---------------------------------------------------------------------
# data: keys under rotation and destruction, text and bytea, aad, tokens
# ---------------------------------------------------------------------

$node->safe_psql('postgres', <<'EOS');
CREATE EXTENSION phi_guard;
CREATE SCHEMA clinic;
CREATE TABLE clinic.patients (
  id    int PRIMARY KEY,
  mrn   text,
  name  phi_guard.phi_ciphertext,           -- text, no aad
  ssn   phi_guard.phi_ciphertext,           -- text, aad 'clinic.patients.ssn:' || id
  photo phi_guard.phi_ciphertext            -- bytea, aad 'clinic.patients.photo:' || mrn
);
CREATE TABLE clinic."Visit Notes" (
  "Visit ID" int PRIMARY KEY,
  note       phi_guard.phi_ciphertext       -- aad 'visit:' || "Visit ID"
);
EOS

my %key_id;
$key_id{alpha1} = $node->safe_psql('postgres', "SELECT phi_guard.phi_key_create('alpha')");
$key_id{gamma1} = $node->safe_psql('postgres', "SELECT phi_guard.phi_key_create('gamma')");
$key_id{beta1}  = $node->safe_psql('postgres', "SELECT phi_guard.phi_key_create('beta')");

my $tricky = "tab\there, newline\nthere, \\backslash\\, \"quote\", comma,";
# id => [key, mrn, name, ssn, photo bytes]
my %pat = (
	1 => [ 'alpha', 'MRN-001',           'Jane Doe',  '123-45-6789', "\x00\x01\x02\xff" ],
	2 => [ 'alpha', "M\\RN\t002,\"x\"",   $tricky,     '987-65-4321', "\\N\t\n" ],
	3 => [ 'alpha', undef,               "Zo\x{eb} \x{60a3}\x{8005} \x{1fa7a}", '', '' ],
	4 => [ 'alpha', 'MRN-004',           '',          '555-00-1234', 'plain ascii bytes' ],
	5 => [ 'alpha', 'MRN-005',           undef,       undef,         undef ],
	6 => [ 'alpha', "\\.",               "\\.",       "\\N",         "\x00" x 300 ],
	7 => [ 'gamma', 'MRN-007',           'shredded one', '777-77-7777', "\x07" ],
	8 => [ 'gamma', 'MRN-008',           'shredded two', '888-88-8888', "\x08" ],
	9 => [ 'alpha', 'MRN-009',           'moved ssn', undef,          "\x09" ],);

sub insert_patients
{
	my @ids = @_;
	my @rows;
	for my $id (@ids)
	{
		my ($key, $mrn, $name, $ssn, $photo) = @{ $pat{$id} };
		my $mrn_sql = sql_text($mrn);
		push @rows,
		    "($id, $mrn_sql, phi_guard.phi_encrypt("
		  . sql_text($name)
		  . ", '$key'), phi_guard.phi_encrypt("
		  . sql_text($ssn)
		  . ", '$key', 'clinic.patients.ssn:' || $id), phi_guard.phi_encrypt("
		  . sql_bytea($photo)
		  . ", '$key', 'clinic.patients.photo:' || $mrn_sql))";
	}
	$node->safe_psql('postgres',
		'INSERT INTO clinic.patients VALUES ' . join(",\n", @rows));
}

# tokens: [domain, value]; tokenized before and after the rotation
my @tok_before = ([ 'ssn', '123-45-6789' ], [ 'ssn', '987-65-4321' ], [ 'mrn', 'MRN-001' ]);
my @tok_after  = ([ 'ssn', '555-00-1234' ], [ 'mrn', "MRN-\x{e9}\t2" ], [ 'mrn', 'MRN-001' ]);
my %tokens;    # domain => { token => value }

sub tokenize
{
	my @out;
	for my $t (@_)
	{
		my ($domain, $value) = @$t;
		my $token = decode('UTF-8',
			$node->safe_psql('postgres',
				"SELECT phi_guard.phi_tokenize(" . sql_text($value) . ", '$domain')"));
		$tokens{$domain}{$token} = $value;
		push @out, $token;
	}
	return @out;
}

$node->safe_psql('postgres', <<'EOS');
SELECT phi_guard.phi_token_domain_create('ssn', 'alpha', 'ssn');
SELECT phi_guard.phi_token_domain_create('mrn', 'beta', 'opaque', false);
EOS

insert_patients(1 .. 3, 7, 8);
my @before = tokenize(@tok_before);
$key_id{alpha2} = $node->safe_psql('postgres', "SELECT phi_guard.phi_key_rotate('alpha')");
$key_id{beta2}  = $node->safe_psql('postgres', "SELECT phi_guard.phi_key_rotate('beta')");
insert_patients(4 .. 6, 9);
my @after = tokenize(@tok_after);
is(scalar(keys %{ $tokens{mrn} }), 3, 'non-deterministic domain: three tokens for three calls');

# row 9's ssn is row 1's ciphertext: its aad names row 1, so it must fail
$node->safe_psql('postgres',
	'UPDATE clinic.patients SET ssn = (SELECT ssn FROM clinic.patients WHERE id = 1) WHERE id = 9');

$node->safe_psql('postgres', <<'EOS');
INSERT INTO clinic."Visit Notes"
  SELECT g, phi_guard.phi_encrypt('note ' || g || E'\n(line 2)', 'beta', 'visit:' || g)
  FROM generate_series(1, 3) g;
EOS

# forget one token of each domain (each key version keeps vault entries)
for ([ 'ssn', $before[1] ], [ 'mrn', $after[2] ])
{
	is($node->safe_psql('postgres', "SELECT phi_guard.phi_token_forget('$_->[0]', '$_->[1]')"),
		't', "token of domain $_->[0] forgotten");
	delete $tokens{ $_->[0] }{ $_->[1] };
}

is($node->safe_psql('postgres', "SELECT phi_guard.phi_key_destroy('gamma')"), '1',
	'key gamma destroyed');
is( $node->safe_psql(
		'postgres',
		"SELECT string_agg(name || ':' || version || ':' || state, ',' ORDER BY id) FROM phi_guard.keys"),
	'alpha:1:retired,gamma:1:destroyed,beta:1:retired,alpha:2:active,beta:2:active',
	'keyring: two rotated keys and a destroyed one');
is( $node->safe_psql(
		'postgres',
		"SELECT string_agg(DISTINCT get_byte(ct::bytea, 7)::text, ',') FROM "
		  . "(SELECT name AS ct FROM clinic.patients UNION ALL SELECT value FROM phi_guard.token_vault) s"),
	join(',', sort { $a cmp $b } map { $key_id{$_} } qw(alpha1 gamma1 beta1 alpha2 beta2)),
	'values and vault entries exist under every key version');

my $fingerprint = $node->safe_psql('postgres',
	'SELECT fingerprint FROM phi_guard.phi_master_key_status() WHERE slot = 1');

# the ciphertexts as a client sees them, for the decrypt subcommand (psql
# prints NULL as an empty line)
my $names_stdin =
  $node->safe_psql('postgres', 'SELECT name FROM clinic.patients WHERE id <= 6 ORDER BY id') . "\n";
my $ssn4 = $node->safe_psql('postgres', 'SELECT ssn FROM clinic.patients WHERE id = 4');

# ---------------------------------------------------------------------
# expected results
# ---------------------------------------------------------------------

my $gamma = $key_id{gamma1};
my %want_name  = map { $_ => $pat{$_}[2] } keys %pat;
my %want_ssn   = map { $_ => $pat{$_}[3] } keys %pat;
my %want_photo = map {
	$_ => defined $pat{$_}[4] ? '\\x' . unpack('H*', $pat{$_}[4]) : undef
} keys %pat;
$want_ssn{9} = undef;    # moved: authentication fails
for my $w (\%want_name, \%want_ssn, \%want_photo) { $w->{$_} = undef for 7, 8; }

my @plain = (
	(map { @{$_}[ 2, 3 ] } values %pat),
	(map { values %$_ } values %tokens),
	'note 1');

sub check_column
{
	my ($label, $want, $n_destroyed, $n_auth, @args) = @_;
	my ($rc, $out, $err) = recover('', 'column', @args);
	my $fails = $n_destroyed + $n_auth;
	is($rc, $fails ? 1 : 0, "$label: exit status");
	my ($got, $header) = csv_by_key($out);
	is_deeply({ map { $_ => $got->{$_}[-1] } keys %$got }, $want,
		"$label: every value recovered exactly");
	my @destroyed = $err =~ /^recover\.py: row \d+: key id \Q$gamma\E was destroyed \(key "gamma" version 1\)/mg;
	is(scalar @destroyed, $n_destroyed, "$label: destroyed key named per value");
	my @auth = $err =~ /^recover\.py: row \d+: authentication failed/mg;
	is(scalar @auth, $n_auth, "$label: authentication failures reported");
	no_secrets($err, $label, @plain);
	return ($out, $header, $got);
}

sub check_vault
{
	my ($label, @args) = @_;
	my ($rc, $out, $err) = recover('', 'vault', @args);
	is($rc, 0, "$label: exit status") or diag($err);
	my @rows = @{ parse_csv($out) };
	is_deeply(shift @rows, [ 'domain', 'token', 'value' ], "$label: header");
	my %got;
	$got{ $_->[0] }{ $_->[1] } = $_->[2] for @rows;
	no_secrets($err, $label, @plain);
	return \%got;
}

my @ssn_args   = ('--table', 'clinic.patients', '--column', 'ssn',
	'--aad-template', 'clinic.patients.ssn:{id}');
my @photo_args = ('--table', 'clinic.patients', '--column', 'photo',
	'--aad-template', 'clinic.patients.photo:{mrn}', '--key-columns', 'id,mrn');
my @visit_args = ('--table', 'clinic."Visit Notes"', '--column', 'note',
	'--aad-template', 'visit:{"Visit ID"}');
my %want_visit = map { $_ => "note $_\n(line 2)" } 1 .. 3;

# one pass of every check against one source (--dsn or --dump)
sub check_source
{
	my ($src, @source) = @_;
	my @mk = ('--master-key-file', $key_file);

	my ($rc, $out, $err) = recover('', 'keys', @source, @mk);
	is($rc, 0, "$src keys: every live key unwraps") or diag($err);
	my $keys = parse_csv($out);
	my @data = grep { $_->[0] eq 'data' } @$keys[ 1 .. $#$keys ];
	is_deeply(
		[ map { join ':', map { $_ // 'NULL' } @$_ } @data ],
		[   "data:$key_id{alpha1}:alpha:1:retired:yes:$fingerprint",
			"data:$key_id{gamma1}:gamma:1:destroyed:NULL:NULL",
			"data:$key_id{beta1}:beta:1:retired:yes:$fingerprint",
			"data:$key_id{alpha2}:alpha:2:active:yes:$fingerprint",
			"data:$key_id{beta2}:beta:2:active:yes:$fingerprint" ],
		"$src keys: the keyring, with the server's master-key fingerprint");
	is_deeply([ sort map { "$_->[2]:$_->[5]" } grep { $_->[0] eq 'index' } @$keys ],
		[ 'alpha:yes', 'beta:yes' ], "$src keys: index keys unwrap too");

	my ($name_csv) = check_column("$src name (text, no aad)", \%want_name, 2, 0,
		@source, @mk, '--table', 'clinic.patients', '--column', 'name');
	like($name_csv, qr/\Aid,name\n/, "$src name: header of key column and column");
	check_column("$src ssn (text, aad from id)", \%want_ssn, 2, 1, @source, @mk, @ssn_args);
	my (undef, $header, $got) =
	  check_column("$src photo (bytea, aad from a text column)", \%want_photo, 2, 0,
		@source, @mk, @photo_args);
	is_deeply($header, [ 'id', 'mrn', 'photo' ], "$src photo: header");
	is_deeply({ map { $_ => $got->{$_}[0] } keys %$got },
		{ map { $_ => $pat{$_}[1] } keys %pat }, "$src photo: the mrn key column exactly");
	check_column("$src quoted table and column", \%want_visit, 0, 0, @source, @mk, @visit_args);

	# the aad binds: without the template, or with another, nothing decrypts
	($rc, $out, $err) = recover('', 'column', @source, @mk,
		'--table', 'clinic.patients', '--column', 'ssn');
	is($rc, 1, "$src ssn without its aad: fails");
	my @no_aad = $err =~ /encrypted with an aad, but none was given/g;
	is(scalar @no_aad, 6, "$src ssn without its aad: each value says so");

	my $vault = check_vault("$src vault (all domains)", @source, @mk);
	is_deeply($vault, \%tokens, "$src vault: every token -> value pair, forgotten ones gone");
	$vault = check_vault("$src vault --domain ssn", @source, @mk, '--domain', 'ssn');
	is_deeply($vault, { ssn => $tokens{ssn} }, "$src vault --domain ssn: that domain only");

	# decrypt: values piped in (an empty line is NULL), one aad for all
	($rc, $out, $err) = recover($names_stdin, 'decrypt', @source, @mk);
	is($rc, 0, "$src decrypt from stdin: exit status") or diag($err);
	is_deeply([ map { $_->[0] } @{ parse_csv($out) } ], [ map { $pat{$_}[2] } 1 .. 6 ],
		"$src decrypt from stdin: every value, NULL as NULL");
	($rc, $out, $err) = recover('', 'decrypt', @source, @mk,
		'--aad', 'clinic.patients.ssn:4', $ssn4);
	is($rc, 0, "$src decrypt with --aad: exit status") or diag($err);
	is($out, "555-00-1234\n", "$src decrypt with --aad: the value");
	($rc, $out, $err) = recover('', 'decrypt', @source, @mk,
		'--aad', 'clinic.patients.ssn:5', $ssn4);
	is($rc, 1, "$src decrypt with another row's aad: fails");
	like($err, qr/value 1: authentication failed/, "$src decrypt with another row's aad: says so");

	# the master key from a command, as for a KMS
	is_deeply(
		check_vault("$src --master-key-command", @source,
			'--master-key-command', "cat '$key_file'", '--domain', 'ssn'),
		{ ssn => $tokens{ssn} },
		"$src --master-key-command: the key from a command");

	# a wrong master key refuses clearly, for every subcommand
	for my $cmd ([ 'keys' ], [ 'vault' ], [ 'column', @ssn_args ], [ 'decrypt', $ssn4 ])
	{
		($rc, $out, $err) = recover('', $cmd->[0], @source, '--master-key-file', $wrong_file,
			@$cmd[ 1 .. $#$cmd ]);
		is($rc, 2, "$src $cmd->[0] with a wrong master key: exit status 2");
		like($err, qr/error: wrong master key: .*unwraps none of the 4 live data keys/,
			"$src $cmd->[0] with a wrong master key: says so");
		ok(index($err, $wrong_hex) < 0 && index($err, $master_hex) < 0,
			"$src $cmd->[0] with a wrong master key: names neither key");
		is($out, '', "$src $cmd->[0] with a wrong master key: no values out")
		  unless $cmd->[0] eq 'keys';
	}
}

# ---------------------------------------------------------------------
# live database
# ---------------------------------------------------------------------

check_source('dsn', '--dsn', $dsn);

# ---------------------------------------------------------------------
# plain pg_dump, read with the server stopped
# ---------------------------------------------------------------------

my $dump = PostgreSQL::Test::Utils::tempdir . "/clinic.sql";
ok($node->run_log([ 'pg_dump', '--format=plain', '--file', $dump, 'postgres' ]), 'pg_dump');
$node->stop;

check_source('dump', '--dump', $dump);

done_testing();
