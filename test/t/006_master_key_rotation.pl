# 006_master_key_rotation.pl — master-key rotation: the key file or command
# output may list several master keys, one per line ("<64 hex>" or
# "<name>:<64 hex>"); the first is current and wraps every new key, the
# others only unwrap.  phi_master_key_rewrap() moves every data and index
# key to the current master key without touching any ciphertext, blind
# index or token; phi_master_key_status() shows which master key opens how
# many keys.  Malformed multi-key text loads no key at all (PH003); a
# master key that opens nothing gives PH004; no key reaches the log.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PhiGuardTest;

my $keydir = PostgreSQL::Test::Utils::tempdir;

my $a_hex = random_hex();
my $b_hex = random_hex();
my @extra = map { random_hex() } 1 .. 8;
my $bad_line = 'zz' . substr(random_hex(), 2);    # 64 characters, not hex
isnt($a_hex, $b_hex, 'the two master keys differ');

my $a_file  = write_key_file($keydir, 'a.key', "$a_hex\n", 0600);
my $b_file  = write_key_file($keydir, 'b.key', "  \U$b_hex\E  \n", 0600);
my $ba_file = write_key_file($keydir, 'ba.key',
	"new:$b_hex\n\n  old : \U$a_hex\E \r\n", 0600);
my $ba_plain = write_key_file($keydir, 'ba_plain.key', "$b_hex\n$a_hex\n", 0600);
my $eight_file = write_key_file($keydir, 'eight.key',
	join('', map { "$_\n" } $b_hex, $a_hex, @extra[0 .. 5]), 0600);
my %bad = (
	'bad hex on line 2' => [ "$b_hex\n$bad_line\n",
		qr/line 2 did not yield exactly 64 hexadecimal characters/ ],
	'nine keys' => [ join('', map { "$_\n" } $b_hex, $a_hex, @extra[0 .. 6]),
		qr/holds more than 8 master keys/ ],
	'duplicate key' => [ "$b_hex\n$a_hex\n\U$b_hex\E\n",
		qr/line 3 repeats the master key of line 1/ ],
	'duplicate name' => [ "x:$b_hex\nx:$a_hex\n",
		qr/line 2 repeats the key name of line 1/ ],
	'invalid name' => [ "bad name:$b_hex\n",
		qr/line 1 has an invalid key name/ ],
	'empty name' => [ "$b_hex\n:$a_hex\n",
		qr/line 2 has an invalid key name/ ],);

my $node = PostgreSQL::Test::Cluster->new('master_key_rotation');
$node->init;
$node->append_conf('postgresql.conf', <<'EOC');
log_min_messages = debug1
log_statement = all
EOC

sub sql { return $node->safe_psql('postgres', $_[0]); }

# Run SQL in database postgres that must fail with the given SQLSTATE;
# returns stderr.
sub fails
{
	my ($sql, $sqlstate, $name) = @_;
	return fails_with($node, 'postgres', $sql, $sqlstate, $name);
}

# Everything readable: plaintexts, blind index recomputed equal, tokens.
my $check_all = <<'EOS';
SELECT string_agg(phi_guard.phi_decrypt(ct, 'row' || id) || '/'
                  || phi_guard.phi_decrypt(ct2)
                  || '/' || (bi OPERATOR(pg_catalog.=) phi_guard.phi_blind_index(pt, 'k1', 40))::text
                  || '/' || phi_guard.phi_detokenize(tok, 'dom'), ',' ORDER BY id)
  FROM stored
EOS
my $expect_all = join(',',
	map { "pt$_/second$_/true/tok$_" } 1 .. 4);
my $ct_md5 = <<'EOS';
SELECT md5(string_agg(ct::bytea || ct2::bytea || bi::text::bytea || tok::bytea, '' ORDER BY id))
       || '/' || (SELECT md5(string_agg(value::bytea, '' ORDER BY domain, token)) FROM phi_guard.token_vault)
  FROM stored
EOS
my $status =
  "SELECT string_agg(concat_ws(':', coalesce(slot::text, 'none'), coalesce(name, '-'), "
  . "current, data_keys, index_keys), ' ' ORDER BY slot NULLS LAST) "
  . "FROM phi_guard.phi_master_key_status()";
my $wrapped_count =
  "SELECT (SELECT count(*) FROM phi_guard.keys WHERE wrapped_key IS NOT NULL) "
  . "+ (SELECT count(*) FROM phi_guard.index_keys)";

# ---------------------------------------------------------------------
# (a) keyring under master key A alone: data, blind index, tokens
# ---------------------------------------------------------------------
my $off = restart_with($node, file => $a_file);
sql(<<'EOS');
CREATE EXTENSION phi_guard;
CREATE ROLE regress_admin LOGIN IN ROLE phi_key_admin;
CREATE ROLE regress_nobody LOGIN;
SELECT phi_guard.phi_key_create('k1');
SELECT phi_guard.phi_key_create('k2');
SELECT phi_guard.phi_key_create('k3');
SELECT phi_guard.phi_token_domain_create('dom', 'k2');
CREATE TABLE stored (id int PRIMARY KEY, pt text, ct phi_guard.phi_ciphertext,
                     ct2 phi_guard.phi_ciphertext, bi int8, tok text);
-- rows 1-2 under k1 version 1, rows 3-4 under version 2 (v1 retired)
INSERT INTO stored SELECT i, 'pt' || i, phi_guard.phi_encrypt('pt' || i, 'k1', 'row' || i),
  phi_guard.phi_encrypt('second' || i, 'k2'), phi_guard.phi_blind_index('pt' || i, 'k1', 40),
  phi_guard.phi_tokenize('tok' || i, 'dom') FROM generate_series(1, 2) i;
SELECT phi_guard.phi_key_rotate('k1');
INSERT INTO stored SELECT i, 'pt' || i, phi_guard.phi_encrypt('pt' || i, 'k1', 'row' || i),
  phi_guard.phi_encrypt('second' || i, 'k2'), phi_guard.phi_blind_index('pt' || i, 'k1', 40),
  phi_guard.phi_tokenize('tok' || i, 'dom') FROM generate_series(3, 4) i;
-- a destroyed version has no wrapped key and must stay untouched
SELECT phi_guard.phi_key_rotate('k3');
SELECT phi_guard.phi_key_destroy('k3', 1);
EOS
is(sql($check_all), $expect_all, '(a) everything decrypts under A');
my $md5_before = sql($ct_md5);
my $n_old = sql($wrapped_count);
is($n_old, '7', '(a) 4 wrapped data keys (k3 v1 destroyed) and 3 index keys');
is(sql($status), "1:-:t:4:3", '(a) status: one slot, current, opens 4 data and 3 index keys');
is(sql('SELECT phi_guard.phi_master_key_rewrap()'),
	'0', '(a) rewrap with a single key rewraps nothing');
sql('CREATE TABLE wrapped_a AS SELECT id, wrapped_key FROM phi_guard.keys '
	  . 'UNION ALL SELECT id, wrapped_key FROM phi_guard.index_keys');
unlike(
	slurp_file($node->logfile, $off),
	qr/loaded \d+ master keys/,
	'(a) one key: no multi-key log line');

# ---------------------------------------------------------------------
# (b) command printing B then A (no names): old data readable, new keys
#     are wrapped under B
# ---------------------------------------------------------------------
$off = restart_with($node, command => "cat $ba_plain");
is(sql($check_all), $expect_all, '(b) command B,A: everything decrypts');
like(
	slurp_file($node->logfile, $off),
	qr/LOG:\s+phi_guard: loaded 2 master keys; the current one has fingerprint [0-9a-f]{8}/,
	'(b) server log says two master keys were loaded');
is(sql($status), "1:-:t:0:0 2:-:f:4:3",
	'(b) status: B current opens nothing yet, A opens every key');
my @fp = split /\n/,
  sql('SELECT fingerprint FROM phi_guard.phi_master_key_status() ORDER BY slot');
ok(@fp == 2 && $fp[0] =~ /^[0-9a-f]{8}$/ && $fp[1] =~ /^[0-9a-f]{8}$/
	  && $fp[0] ne $fp[1],
	'(b) two distinct 8-hex-digit fingerprints');
sql(<<'EOS');
SELECT phi_guard.phi_key_create('k4');
INSERT INTO stored VALUES (5, 'pt5', phi_guard.phi_encrypt('pt5', 'k1', 'row5'),
  phi_guard.phi_encrypt('second5', 'k4'), phi_guard.phi_blind_index('pt5', 'k1', 40),
  phi_guard.phi_tokenize('tok5', 'dom'));
EOS
is(sql($status), "1:-:t:1:1 2:-:f:4:3",
	'(b) a key created now is wrapped under the current key B');
$expect_all .= ',pt5/second5/true/tok5';
is(sql($check_all), $expect_all, '(b) the new row reads back');
$md5_before = sql($ct_md5);

# ---------------------------------------------------------------------
# (c) file "new:B" then "old:A"; rewrap while another session is open
# ---------------------------------------------------------------------
restart_with($node, file => $ba_file);
is(sql($status), "1:new:t:1:1 2:old:f:4:3",
	'(c) file B,A with names: status shows both slots and their names');
is($node->safe_psql('postgres', "SELECT fingerprint FROM phi_guard.phi_master_key_status() WHERE slot = 2"),
	$fp[1], '(c) fingerprint of A is stable across restarts and formats');

my $open = $node->background_psql('postgres');
is($open->query_safe(
		"SELECT phi_guard.phi_decrypt(ct, 'row1') FROM stored WHERE id = 1"),
	'pt1', '(c) open session decrypts before the rewrap (keys now cached)');

my ($rc, $out, $err) = $node->psql('postgres',
	'SELECT phi_guard.phi_master_key_rewrap()',
	extra_params => [ '-U', 'regress_nobody' ]);
ok($rc != 0 && $err =~ /permission denied/,
	'(c) a role without phi_key_admin cannot rewrap');
is( $node->safe_psql(
		'postgres', 'SELECT phi_guard.phi_master_key_rewrap()',
		extra_params => [ '-U', 'regress_admin' ]),
	$n_old,
	'(c) rewrap as phi_key_admin returns the number of keys under A');
is(sql($status), "1:new:t:5:4 2:old:f:0:0",
	'(c) status: nothing is left under A');
is( sql(
		'SELECT count(*) FROM wrapped_a w JOIN ('
		  . 'SELECT id, wrapped_key FROM phi_guard.keys UNION ALL '
		  . 'SELECT id, wrapped_key FROM phi_guard.index_keys) n USING (id) '
		  . 'WHERE n.wrapped_key IS DISTINCT FROM w.wrapped_key'),
	$n_old,
	'(c) every key wrapped under A has a new wrapped form');
is(sql('SELECT count(*) FROM phi_guard.keys WHERE wrapped_key IS NULL'),
	'1', '(c) the destroyed version stays destroyed');
is(sql($ct_md5), $md5_before, '(c) ciphertext, blind index and token bytes unchanged');
is(sql('SELECT phi_guard.phi_master_key_rewrap()'),
	'0', '(c) a second rewrap has nothing to do');
is( sql(
"SELECT string_agg((record::jsonb->'detail')::text, ' ' ORDER BY xid, id) FROM phi_guard.audit_log "
		  . "WHERE record::jsonb->>'kind' = 'master_key_rewrap' "
		  . "AND record::jsonb->'detail'->>'master_key' = '$fp[0]'"),
	'{"data_keys": 4, "index_keys": 3, "master_key": "' . $fp[0] . '"} '
	  . '{"data_keys": 0, "index_keys": 0, "master_key": "' . $fp[0] . '"}',
	'(c) each rewrap is audited with its counts and the current fingerprint');
is( $open->query_safe(
		"SELECT string_agg(phi_guard.phi_decrypt(ct, 'row' || id) || '/' || phi_guard.phi_decrypt(ct2)"
		  . " || '/' || phi_guard.phi_detokenize(tok, 'dom'), ',' ORDER BY id) FROM stored"),
	'pt1/second1/tok1,pt2/second2/tok2,pt3/second3/tok3,pt4/second4/tok4,pt5/second5/tok5',
	'(c) the open session still decrypts and detokenizes after the rewrap');
is( $open->query_safe(
"SELECT phi_guard.phi_decrypt(phi_guard.phi_encrypt('fresh', 'k2'))"),
	'fresh', '(c) the open session still encrypts');
$open->quit;

# ---------------------------------------------------------------------
# (d) B alone: the old master key is no longer needed
# ---------------------------------------------------------------------
restart_with($node, file => $b_file);
is(sql($check_all), $expect_all,
	'(d) B alone: everything decrypts, blind indexes match, tokens detokenize');
is(sql($ct_md5), $md5_before, '(d) ciphertext bytes still unchanged');
is(sql("SELECT phi_guard.phi_tokenize('tok2', 'dom') = tok FROM stored WHERE id = 2"),
	't', '(d) deterministic tokenization gives the same token');
is(sql($status), "1:-:t:5:4", '(d) status: one slot opening every key');

# ---------------------------------------------------------------------
# (e) A alone cannot unwrap the rewrapped keys
# ---------------------------------------------------------------------
restart_with($node, file => $a_file);
$err = fails("SELECT phi_guard.phi_decrypt(ct, 'row1') FROM stored WHERE id = 1",
	'PH004', '(e) A alone, decrypt');
like($err, qr/cannot be unwrapped with the configured master key/,
	'(e) error says the data key cannot be unwrapped');
fails("SELECT phi_guard.phi_blind_index('pt1', 'k1')",
	'PH004', '(e) A alone, blind index');
fails('SELECT phi_guard.phi_master_key_rewrap()',
	'PH004', '(e) A alone, rewrap refuses keys no loaded master key opens');
is(sql($status), "1:-:t:0:0 none:-:f:5:4",
	'(e) status counts the keys no loaded master key opens');

# ---------------------------------------------------------------------
# (f) eight keys is the limit and works
# ---------------------------------------------------------------------
restart_with($node, file => $eight_file);
is(sql($check_all), $expect_all, '(f) eight keys: everything decrypts');
is(sql('SELECT count(*) FROM phi_guard.phi_master_key_status()'),
	'8', '(f) status shows eight slots');

# ---------------------------------------------------------------------
# (g) malformed multi-key text loads no key at all
# ---------------------------------------------------------------------
my $i = 0;
foreach my $case (sort keys %bad)
{
	my ($text, $re) = @{ $bad{$case} };
	my $f = write_key_file($keydir, 'bad' . $i++ . '.key', $text, 0600);
	$off = restart_with($node, file => $f);
	$err = fails("SELECT phi_guard.phi_decrypt(ct, 'row1') FROM stored WHERE id = 1",
		'PH003', "(g) $case, decrypt");
	like($err, qr/^DETAIL:.*$re/m, "(g) $case: error says why");
	fails('SELECT * FROM phi_guard.phi_master_key_status()',
		'PH003', "(g) $case, status");
	like(
		slurp_file($node->logfile, $off),
		qr/WARNING:\s+phi_guard: no master key loaded: phi_guard\.master_key_file $re/,
		"(g) $case: start-up warning in the server log");
}
my $bad_cmd = write_key_file($keydir, 'badcmd.key', $bad{'duplicate key'}[0], 0600);
$off = restart_with($node, command => "cat $bad_cmd");
$err = fails("SELECT phi_guard.phi_encrypt('x', 'k1')",
	'PH003', '(g) command with a repeated key');
like($err, qr/^DETAIL:.*master_key_command line 3 repeats the master key of line 1/m,
	'(g) command: error says which line repeats');

# ---------------------------------------------------------------------
# (h) no key text in the server log, across every start above
# ---------------------------------------------------------------------
$node->stop;
my $log = slurp_file($node->logfile);
like($log, qr/phi_master_key_rewrap/,
	'(h) sanity: the log records statements');
foreach my $k ($a_hex, $b_hex, @extra, $bad_line)
{
	unlike($log, qr/\Q$k\E/i, '(h) log does not contain key text '
		  . substr(md5_of($k), 0, 6));
}

sub md5_of
{
	require Digest::MD5;
	return Digest::MD5::md5_hex($_[0]);
}

done_testing();
