# 014_durable_disclosure.pl — issue 13, "durable before disclosure" (SPEC §7).
#
# With phi_guard.access_audit = 'durable' (the default), once a client has
# received a revealed value, an entry naming the statement's role, key and
# first row reference survives an immediate shutdown (a crash) of the
# server.  For each access kind — decrypt, decrypt_masked, detokenize,
# tokenize — a client reads a value, the test checks that it has it, stops
# the server at once (pg_ctl stop -m immediate), starts it again and finds
# the intent (or final) entry.  The seal interval is an hour, so nothing
# but the intent path can have written it before the crash; the control:
# in 'async' mode the same crash loses the entry.
#
# Refuse rather than lose: when the intent cannot be made durable — a
# superuser's lock keeps the audit worker off audit_log, or no worker
# process is free (max_worker_processes = 1, taken by the launcher) — the
# access fails with PH006 and the client receives no value.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use PhiGuardTest qw(:DEFAULT sql_error);

my ($node) = phi_guard_node(
	'durable',
	conf => [ "phi_guard.audit_seal_interval = '1h'", 'log_statement = none' ]);

sub query { return $node->safe_psql('postgres', $_[0]); }

# $sql as role $role; returns (exit code, stdout, stderr)
sub as_role
{
	my ($role, $sql) = @_;
	my ($out, $err) = ('', '');
	my $rc = $node->psql('postgres', "\\set VERBOSITY verbose\n$sql",
		stdout => \$out, stderr => \$err, extra_params => [ '-U', $role ]);
	return ($rc, $out, $err);
}

query(<<'EOS');
CREATE EXTENSION phi_guard;
SELECT phi_guard.phi_key_create('dd_ssn');
SELECT phi_guard.phi_token_domain_create('dd_tok', 'dd_ssn', 'ssn');
CREATE ROLE dd_reader LOGIN IN ROLE phi_decryptor, phi_detokenizer, phi_encryptor;
CREATE ROLE dd_masked LOGIN IN ROLE phi_masked_reader;
CREATE ROLE dd_async LOGIN IN ROLE phi_decryptor;
ALTER ROLE dd_async SET phi_guard.access_audit = 'async';
GRANT USAGE ON SCHEMA phi_guard TO dd_reader, dd_masked, dd_async;
CREATE TABLE dd_pat (id int PRIMARY KEY, ssn phi_guard.phi_ciphertext);
INSERT INTO dd_pat SELECT g, phi_guard.phi_encrypt(lpad(g::text, 9, '0'), 'dd_ssn', 'dd_pat.ssn:' || g)
  FROM generate_series(1, 10) g;
GRANT SELECT ON dd_pat TO dd_reader, dd_masked, dd_async;
EOS
# a token issued before the crashes, for detokenize
my $token = query(q{SELECT phi_guard.phi_tokenize('123-45-6789', 'dd_tok')});
like($token, qr/^\d{3}-\d{2}-\d{4}$/, 'a token of the ssn domain');

# Entries of kind $kind by role $role whose key (domain for token kinds)
# is $key and whose rows hold $ref, as "phase,count" lines.
sub entries
{
	my ($kind, $role, $key, $ref) = @_;
	return query(<<"EOS");
SELECT string_agg((r #>> '{detail,phase}') || ',' || (r #>> '{detail,count}'), ' ' ORDER BY xid, id)
  FROM (SELECT xid, id, record::jsonb AS r FROM phi_guard.audit_log) l
 WHERE r ->> 'kind' = '$kind' AND r ->> 'role' = '$role'
   AND coalesce(r #>> '{detail,domain}', r #>> '{detail,key}') = '$key'
   AND r #> '{detail,rows}' ? '$ref'
EOS
}

# Read as $role, check the client got $value_re, crash, restart; returns
# the entries naming the access afterwards.
sub read_crash_find
{
	my ($name, $role, $sql, $value_re, $kind, $key, $ref) = @_;
	my ($rc, $out, $err) = as_role($role, $sql);
	ok($rc == 0 && $out =~ $value_re, "$name: the client received the value")
	  or diag("exit $rc, stdout: $out, stderr: $err");
	$node->stop('immediate');
	$node->start;
	return entries($kind, $role, $key, $ref);
}

# durable (the default): the intent survives
my $found = read_crash_find('decrypt', 'dd_reader',
	q{SELECT phi_guard.phi_decrypt(ssn, 'dd_pat.ssn:' || id) FROM dd_pat WHERE id IN (3, 4) ORDER BY id},
	qr/^000000003\n000000004$/, 'decrypt', 'dd_ssn', 'dd_pat.ssn:3');
like($found, qr/\bintent,0\b/, 'decrypt: the intent entry naming role, key and first row survived the crash');

$found = read_crash_find('decrypt_masked', 'dd_masked',
	q{SELECT phi_guard.phi_decrypt_masked(ssn, 'dd_pat.ssn:' || id, 'ssn') FROM dd_pat WHERE id = 5},
	qr/^\*+$/, 'decrypt_masked', 'dd_ssn', 'dd_pat.ssn:5');
like($found, qr/\bintent,0\b/, 'decrypt_masked: the intent entry survived the crash');

$found = read_crash_find('detokenize', 'dd_reader',
	qq{SELECT phi_guard.phi_detokenize('$token', 'dd_tok')},
	qr/^123-45-6789$/, 'detokenize', 'dd_tok', "tok:dd_tok:$token");
like($found, qr/\bintent,0\b/, 'detokenize: the intent entry survived the crash');

my ($rc, $new_token, $err) = as_role('dd_reader', q{SELECT phi_guard.phi_tokenize('987-65-4321', 'dd_tok')});
ok($rc == 0 && $new_token =~ /^\d{3}-\d{2}-\d{4}$/, 'tokenize: the client received the token')
  or diag("exit $rc, stderr: $err");
$node->stop('immediate');
$node->start;
like(entries('tokenize', 'dd_reader', 'dd_tok', "tok:dd_tok:$new_token"),
	qr/\bintent,0\b/, 'tokenize: the intent entry naming the token survived the crash');

# the control: async entries wait in shared memory, and a crash loses them
$found = read_crash_find('async decrypt', 'dd_async',
	q{SELECT phi_guard.phi_decrypt(ssn, 'dd_pat.ssn:' || id) FROM dd_pat WHERE id = 6},
	qr/^000000006$/, 'decrypt', 'dd_ssn', 'dd_pat.ssn:6');
is($found, '', 'async: the same crash lost the entry (what durable mode prevents)');

# a final entry reaches the log too: seal (which waits for the queue)
query('SELECT phi_guard.phi_audit_seal()');
($rc, my $out) = as_role('dd_reader', <<'EOS');
SELECT count(phi_guard.phi_decrypt(p.ssn, 'dd_pat.ssn:' || p.id))
  FROM (SELECT p.* FROM unnest(ARRAY[7, 8, 7]) WITH ORDINALITY u(id, n)
          JOIN dd_pat p USING (id) ORDER BY u.n OFFSET 0) p
EOS
is($out, '3', 'three values decrypted, two rows');
query('SELECT phi_guard.phi_audit_seal()');
is(entries('decrypt', 'dd_reader', 'dd_ssn', 'dd_pat.ssn:8'), 'final,3',
	'the final entry names every row and counts every call');
like(entries('decrypt', 'dd_reader', 'dd_ssn', 'dd_pat.ssn:7'), qr/^intent,0 final,3$/,
	'its intent names the first row only');
my $ok = query('SELECT (phi_guard.phi_audit_verify()).ok');
is($ok, 't', 'the chain verifies after the crashes');

# refuse rather than lose: a lock keeps the worker from committing the intent
my $locker = $node->background_psql('postgres');
$locker->query_safe('BEGIN; LOCK TABLE phi_guard.audit_log IN ACCESS EXCLUSIVE MODE;');
my $t0 = time;
($rc, $out, $err) = as_role('dd_reader',
	q{SELECT phi_guard.phi_decrypt(ssn, 'dd_pat.ssn:' || id) FROM dd_pat WHERE id = 9});
my $waited = time - $t0;
ok($rc != 0 && $err =~ /ERROR:\s+PH006:/, 'locked out worker: the access is refused with PH006')
  or diag("exit $rc, stderr: $err");
is($out, '', 'locked out worker: the client received no value');
like($err, qr/HINT:/, 'locked out worker: the refusal has a hint');
cmp_ok($waited, '<', 30, 'locked out worker: the refusal came after a bounded wait');
$locker->query_safe('COMMIT;');
$locker->quit;

# no worker process at all
$node->append_conf('postgresql.conf', 'max_worker_processes = 1');
$node->restart;
($rc, $out, $err) = as_role('dd_reader',
	q{SELECT phi_guard.phi_decrypt(ssn, 'dd_pat.ssn:' || id) FROM dd_pat WHERE id = 10});
ok($rc != 0 && $err =~ /ERROR:\s+PH006:/, 'no worker: the access is refused with PH006')
  or diag("exit $rc, stderr: $err");
is($out, '', 'no worker: the client received no value');

$node->stop;
done_testing();
