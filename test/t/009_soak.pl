# 009_soak.pl — soak test (issue 6 item 9): 32 pgbench clients over the
# Unix socket for PHI_GUARD_SOAK_SECONDS (default 120) seconds, mixing
# audited encrypting writes to a protected table under signed contexts,
# protected reads with decryption, tokenization, blind-index lookups and
# expected errors (test/soak/*.sql), while one long-lived session runs the
# same mix in a loop.  Afterwards: pgbench exited 0 with no client aborted
# (every property the scripts check held: a violated one raises an error,
# which aborts the client), the server log shows no crash, no PANIC, FATAL,
# unexpected ERROR or WARNING, every expected error kind occurred, the
# long-lived backend's private memory stayed flat, every committed row has
# exactly one insert entry and no rolled-back row has one, and the audit
# chain seals and verifies (in the extension and with tools/verify_audit.py).

use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use PhiGuardTest;

my $secs = $ENV{PHI_GUARD_SOAK_SECONDS} // 120;
die "PHI_GUARD_SOAK_SECONDS must be a positive integer\n" unless $secs =~ /^[1-9]\d*$/;
my $clients = 32;
# growth allowed for the long-lived backend's memory: generous, so noise
# (caches filling up) passes and a leak per call or per batch does not
my $mem_bound_kb = 20 * 1024;

my ($node) = phi_guard_node(
	'soak',
	conf => [
		'max_connections = 50',
		# the worker seals while the writers write
		"phi_guard.audit_seal_interval = '1s'",
		# the test tokens have a far expiry
		'phi_guard.context_max_lifetime = 0',
		# the statements of 32 clients would only bloat the log
		'log_statement = none' ]);

sub query { return $node->safe_psql('postgres', $_[0]); }


my $pem = sign_context('pem', 'k1');
my %tokens = map {
	$_ => sign_context('token', 'k1', "sub=user-$_", "tenant=tenant-$_", 'roles=clinician',
		'exp=4102444800')
} 1 .. 4;
# expected to fail: expired; signed with a key other than the kid's
$tokens{0} = sign_context('token', 'k1', 'sub=user-0', 'tenant=tenant-1', 'roles=clinician',
	'exp=1000000000');
$tokens{-1} = sign_context('token', 'k1', 'sub=user-9', 'tenant=tenant-1', 'roles=clinician',
	'exp=4102444800', '--sign-with=k2');
my $token_rows = join(",\n", map { "($_, '$tokens{$_}')" } sort { $a <=> $b } keys %tokens);

query(<<"EOS");
CREATE EXTENSION phi_guard;
SELECT phi_guard.phi_context_key_add('k1', \$pem\$$pem\$pem\$);
SELECT phi_guard.phi_key_create('patients');
SELECT phi_guard.phi_token_domain_create('mrn', 'patients', 'opaque', true);
SELECT phi_guard.phi_token_domain_create('visit', 'patients', 'opaque', false);
CREATE ROLE regress_soak_app LOGIN IN ROLE phi_app, phi_encryptor, phi_decryptor, phi_detokenizer;
CREATE TABLE patients (
  id bigserial PRIMARY KEY,
  tenant text NOT NULL,
  name_ct phi_guard.phi_ciphertext,
  mrn_ct phi_guard.phi_ciphertext,
  mrn_bidx int8,
  mrn_token text);
CREATE INDEX ON patients (tenant, id);
CREATE INDEX ON patients (mrn_bidx);
SELECT phi_guard.phi_audit_enable('patients');
SELECT phi_guard.phi_protect_table('patients', 'tenant');
GRANT SELECT, INSERT ON patients TO regress_soak_app;
GRANT USAGE ON SEQUENCE patients_id_seq TO regress_soak_app;
CREATE TABLE soak_tokens (n int PRIMARY KEY, token text NOT NULL);
INSERT INTO soak_tokens VALUES $token_rows;
GRANT SELECT ON soak_tokens TO regress_soak_app;
CREATE TABLE soak_expected (kind text NOT NULL);
GRANT INSERT ON soak_expected TO regress_soak_app;
CREATE FUNCTION soak_assert(ok bool, what text) RETURNS void LANGUAGE plpgsql AS \$\$
BEGIN
  IF ok IS NOT TRUE THEN
    RAISE EXCEPTION 'soak check failed: %', what;
  END IF;
END
\$\$;
EOS

# 100 rows per tenant to start with, written by the application role
for my $t (1 .. 4)
{
	query(<<"EOS");
SET ROLE regress_soak_app;
BEGIN;
SELECT phi_guard.phi_set_context(token) FROM soak_tokens WHERE n = $t;
INSERT INTO patients (id, tenant, name_ct, mrn_ct, mrn_bidx, mrn_token)
SELECT i.id, phi_guard.phi_tenant_id(),
       phi_guard.phi_encrypt('Patient ' || i.v, 'patients', 'patients.name:' || i.id),
       phi_guard.phi_encrypt('MRN-' || i.v, 'patients', 'patients.mrn:' || i.id),
       phi_guard.phi_blind_index('MRN-' || i.v, 'patients', 48),
       phi_guard.phi_tokenize('MRN-' || i.v, 'mrn')
  FROM (SELECT nextval('patients_id_seq') AS id, g * 4 + $t AS v
          FROM generate_series(0, 99) g) i;
COMMIT;
EOS
}
is(query('SELECT count(*) FROM patients'), '400', 'set-up: 400 rows, 100 per tenant');

# ---------------------------------------------------------------------
# the long-lived session and its batch: 1000 encrypt/decrypt, 1000
# tokenize/detokenize and 1000 blind indexes under a context, 10 audited
# inserts and a protected read of 100 rows, then 20 rounds of caught
# expected errors (error paths are where leaks hide)
# ---------------------------------------------------------------------
my $mem = $node->background_psql('postgres');
$mem->set_query_timer_restart;
my $mem_pid = $mem->query_safe('SELECT pg_backend_pid()');
like($mem_pid, qr/^\d+$/, 'long-lived session started');

sub mem_batch
{
	my ($i) = @_;
	my $t = $i % 4 + 1;
	my $off = ($i * 1000) % 6000;
	$mem->query_safe(<<"EOS");
SET ROLE regress_soak_app;
BEGIN;
SELECT phi_guard.phi_set_context(token) FROM soak_tokens WHERE n = $t;
SELECT soak_assert(count(*) = 1000 AND bool_and(
         phi_guard.phi_decrypt(phi_guard.phi_encrypt('value ' || g, 'patients', 'mem:' || g), 'mem:' || g)
           = 'value ' || g), 'session: encrypt and decrypt')
  FROM generate_series(1, 1000) g;
SELECT soak_assert(count(*) = 1000 AND bool_and(
         phi_guard.phi_detokenize(phi_guard.phi_tokenize('MRN-' || ($off + g), 'mrn'), 'mrn')
           = 'MRN-' || ($off + g)), 'session: tokenize and detokenize')
  FROM generate_series(1, 1000) g;
SELECT soak_assert(count(DISTINCT phi_guard.phi_blind_index('MRN-' || g, 'patients', 48)) = 1000,
                   'session: blind index')
  FROM generate_series(1, 1000) g;
INSERT INTO patients (id, tenant, name_ct, mrn_ct, mrn_bidx, mrn_token)
SELECT i.id, phi_guard.phi_tenant_id(),
       phi_guard.phi_encrypt('Patient ' || i.v, 'patients', 'patients.name:' || i.id),
       phi_guard.phi_encrypt('MRN-' || i.v, 'patients', 'patients.mrn:' || i.id),
       phi_guard.phi_blind_index('MRN-' || i.v, 'patients', 48),
       phi_guard.phi_tokenize('MRN-' || i.v, 'mrn')
  FROM (SELECT nextval('patients_id_seq') AS id, $off + g AS v FROM generate_series(1, 10) g) i;
SELECT soak_assert(count(*) = 100 AND bool_and(tenant = 'tenant-$t')
                   AND bool_and(phi_guard.phi_decrypt(name_ct, 'patients.name:' || id) LIKE 'Patient %'),
                   'session: protected read')
  FROM (SELECT * FROM patients ORDER BY id DESC LIMIT 100) p;
COMMIT;
BEGIN;
DO \$\$
DECLARE
  ct phi_guard.phi_ciphertext := phi_guard.phi_encrypt('x', 'patients', 'right');
BEGIN
  FOR r IN 1..20 LOOP
    BEGIN
      PERFORM phi_guard.phi_decrypt(ct, 'wrong');
      RAISE EXCEPTION 'decrypt with the wrong aad succeeded';
    EXCEPTION WHEN SQLSTATE 'PH001' THEN NULL;
    END;
    BEGIN
      PERFORM phi_guard.phi_set_context(token) FROM soak_tokens WHERE n = 0;
      RAISE EXCEPTION 'an expired token was accepted';
    EXCEPTION WHEN invalid_authorization_specification THEN NULL;
    END;
    BEGIN
      PERFORM phi_guard.phi_detokenize('tok-never-issued', 'mrn');
      RAISE EXCEPTION 'a token never issued detokenized';
    EXCEPTION WHEN no_data_found THEN NULL;
    END;
  END LOOP;
END
\$\$;
COMMIT;
RESET ROLE;
EOS
}

# the backend's memory: VmRSS (all resident pages, including the shared
# buffers it has touched so far, which grow with the table), RssAnon (its
# private heap: where a leak shows) in kB, and the bytes held by its
# memory contexts
sub mem_now
{
	my %m;
	open my $fh, '<', "/proc/$mem_pid/status" or die "/proc/$mem_pid/status: $!";
	while (<$fh>) { $m{$1} = $2 if /^(VmRSS|RssAnon):\s+(\d+) kB/; }
	close $fh;
	$m{ctx} = $mem->query_safe(
		'SELECT sum(total_bytes) FROM pg_catalog.pg_backend_memory_contexts');
	return \%m;
}

my $batches = 0;
mem_batch($batches++) for 1 .. 3;    # warm-up: caches, keys, plans
my $m0 = mem_now();
note("long-lived backend $mem_pid after warm-up: VmRSS $m0->{VmRSS} kB, "
	  . "RssAnon $m0->{RssAnon} kB, memory contexts $m0->{ctx} bytes");

# ---------------------------------------------------------------------
# the soak: 32 clients, the session looping beside them
# ---------------------------------------------------------------------
my $log_offset = -s $node->logfile;
my @scripts = map { "test/soak/$_.sql\@5" } qw(write read token bidx errors);
my ($pgb_out, $pgb_err) = ('', '');
my $pgbench = IPC::Run::start(
	[
		'pgbench', '-n', '-c', $clients, '-j', '2', '-T', $secs,
		(map { ('-f', $_) } @scripts),
		'-h', $node->host, '-p', $node->port, '-U', 'regress_soak_app', 'postgres'
	],
	'<', \undef, '>', \$pgb_out, '2>', \$pgb_err,
	IPC::Run::timeout($secs + 300));

my $t0 = time;
my $m_max = $m0->{RssAnon};
while (time < $t0 + $secs)
{
	mem_batch($batches++);
	# pump_nb dies once pgbench has ended (early, when its clients aborted)
	last unless eval { $pgbench->pump_nb; 1 } and $pgbench->pumpable;
	open my $fh, '<', "/proc/$mem_pid/status" or die "/proc/$mem_pid/status: $!";
	while (<$fh>) { $m_max = $1 if /^RssAnon:\s+(\d+) kB/ && $1 > $m_max; }
	close $fh;
	usleep(500_000);
}
my $pgb_ok = $pgbench->finish;
my $pgb_rc = $pgbench->result(0);
note("pgbench output:\n$pgb_out");
mem_batch($batches++);
my $m1 = mem_now();

# ---------------------------------------------------------------------
# pgbench: every client ran to the end, no error
# ---------------------------------------------------------------------
is($pgb_rc, 0, "pgbench exited 0 after $secs s") or diag("pgbench stderr:\n$pgb_err");
unlike($pgb_err, qr/client \d+ aborted|error|Run was aborted/i,
	'no pgbench client aborted and no error was reported');
my ($xacts) = $pgb_out =~ /number of transactions actually processed: (\d+)/;
my ($failed) = $pgb_out =~ /number of failed transactions: (\d+)/;
my ($tps) = $pgb_out =~ /tps = ([\d.]+) \(without initial connection time\)/;
ok(defined $xacts && $xacts > 0, 'pgbench processed transactions') or diag($pgb_out);
is($failed // 'none', '0', 'pgbench reports 0 failed transactions');
my %per_script =
  $pgb_out =~ /SQL script \d+: test\/soak\/(\w+)\.sql\n(?: - weight:[^\n]*\n)? - (\d+) transactions/g;
is(join(',', map { ($per_script{$_} // 0) > 0 ? $_ : "$_=0" } qw(write read token bidx errors)),
	'write,read,token,bidx,errors', 'each of the five scripts ran');

# ---------------------------------------------------------------------
# the server log of the soak: no crash, nothing unexpected
# ---------------------------------------------------------------------
my $log = PostgreSQL::Test::Utils::slurp_file($node->logfile, $log_offset);
my @crash = grep { /terminated by signal|was terminated|exited with exit code|reinitializing|PANIC|TRAP:/ }
  split /\n/, $log;
is(scalar @crash, 0, 'no backend crashed or exited abnormally') or diag(join("\n", @crash));
my @bad = grep { /\b(FATAL|ERROR|WARNING):/ && !/canceling autovacuum task/ } split /\n/, $log;
is(scalar @bad, 0, 'no FATAL, ERROR or WARNING in the server log during the soak')
  or diag(join("\n", @bad[0 .. ($#bad < 19 ? $#bad : 19)]));
is($mem->query_safe('SELECT pg_backend_pid()'), $mem_pid,
	'the long-lived session is still connected to the same backend');

# ---------------------------------------------------------------------
# expected errors: every kind occurred
# ---------------------------------------------------------------------
my %expected = split /[|\n]/,
  query('SELECT kind, count(*) FROM soak_expected GROUP BY kind ORDER BY kind');
my $expected_total = 0;
$expected_total += $_ for values %expected;
is( join(',', map { ($expected{$_} // 0) > 0 ? $_ : "$_=0" }
		  qw(bad_signature expired_token other_tenant unknown_token wrong_aad)),
	'bad_signature,expired_token,other_tenant,unknown_token,wrong_aad',
	"every kind of expected error occurred and was caught ($expected_total in all)");
# pgbench counts the transactions that ended before -T ran out: a client
# whose COMMIT the server had done when time ran out is not counted, so the
# server may hold up to one more per client than pgbench reports
my $caught = $expected{wrong_aad} // 0;
ok($caught >= $per_script{errors} && $caught <= $per_script{errors} + $clients,
	'one caught error of each kind per transaction of the error script')
  or diag("caught $caught, pgbench counted $per_script{errors} error-script transactions");

# ---------------------------------------------------------------------
# memory of the long-lived backend
# ---------------------------------------------------------------------
my $summary_mem = "VmRSS $m0->{VmRSS} -> $m1->{VmRSS} kB, RssAnon $m0->{RssAnon} -> "
  . "$m1->{RssAnon} kB (max $m_max), memory contexts $m0->{ctx} -> $m1->{ctx} bytes, "
  . "$batches batches";
note("long-lived backend $mem_pid: $summary_mem");
diag("long-lived backend: $summary_mem");
cmp_ok($m1->{RssAnon}, '<=', $m0->{RssAnon} + $mem_bound_kb,
	'the private memory (RssAnon) of the long-lived backend stayed flat');
cmp_ok($m1->{ctx}, '<=', $m0->{ctx} + $mem_bound_kb * 1024,
	'so did the memory held by its memory contexts');
$mem->quit;

# ---------------------------------------------------------------------
# the audit log: one insert entry per committed row, none for the rolled
# back writes of the error script; the chain seals and verifies
# ---------------------------------------------------------------------
my ($rows, $not_once, $orphans, $rolled_back) = split /\|/, query(<<'EOS');
WITH e AS (
  SELECT record::jsonb->'row_key'->>'id' AS k, count(*) AS n
    FROM phi_guard.audit_log
   WHERE record::jsonb->>'kind' = 'insert' AND record::jsonb->>'table' = 'public.patients'
   GROUP BY 1)
SELECT (SELECT count(*) FROM patients),
       (SELECT count(*) FROM patients t LEFT JOIN e ON e.k = t.id::text
         WHERE e.n IS DISTINCT FROM 1),
       (SELECT coalesce(sum(e.n), 0) FROM e LEFT JOIN patients t ON e.k = t.id::text
         WHERE t.id IS NULL),
       (SELECT count(*) FROM patients WHERE name_ct IS NULL OR mrn_ct IS NULL)
EOS
my $written = ($per_script{write} // 0) + 400 + 10 * $batches;
# (up to one more per client: a COMMIT done when -T ran out, see above)
ok($rows >= $written && $rows <= $written + $clients,
	"every committed write is there ($written rows counted by pgbench)")
  or diag("$rows rows in the table");
is($not_once, '0', 'every committed row has exactly one insert entry');
is($orphans, '0', 'no insert entry for a row that was rolled back');
is($rolled_back, '0', 'no row of the rejected writes for another tenant is there');

cmp_ok(audit_seal_quiet($node), '>=', 0, 'phi_audit_seal() after the soak');
my ($ok, $blocks, $entries, $problem) = split /\|/,
  query('SELECT ok, blocks, entries, problem FROM phi_guard.phi_audit_verify()');
is($ok, 't', "phi_audit_verify() ok: $blocks blocks, $entries entries")
  or diag("problem: $problem");
is( query(<<'EOS'),
SELECT count(*) FROM phi_guard.audit_log l
 WHERE l.xid < (SELECT max(xid_hi) FROM phi_guard.audit_block)
   AND NOT EXISTS (SELECT FROM phi_guard.audit_block b
                    WHERE l.xid >= b.xid_lo AND l.xid < b.xid_hi)
EOS
	'0', 'no entry below the end of the chain lies outside a block');
my ($rc, $out, $err) = verify_audit_py($node, 'postgres');
is($rc, 0, 'tools/verify_audit.py agrees') or diag($out . $err);

diag(sprintf('soak summary: %d s, %d clients, %s transactions, %s tps, '
	  . '%d expected errors caught, %s rows, %s audit entries; long-lived backend RSS '
	  . '%s -> %s kB (RssAnon %s -> %s kB)',
	$secs, $clients, $xacts // '?', $tps // '?', $expected_total, $rows, $entries,
	$m0->{VmRSS}, $m1->{VmRSS}, $m0->{RssAnon}, $m1->{RssAnon}));

$node->stop;
done_testing();
