# 007_dump_restore.pl — a database that uses every phi_guard feature
# survives pg_dump and restore into a fresh cluster with the same master key:
# custom format (pg_dump -Fc | pg_restore) and plain format (pg_dump | psql).
#
# The source database has data keys (one rotated, one version destroyed),
# encrypted text and bytea columns bound to their rows by aad, a blind-index
# column, two token domains and their vault, a protected table
# (phi_protect_table) with a registered context key, permission overrides,
# a break-glass grant, and an audited table whose entries are sealed into
# blocks, plus entries not sealed yet when the dump is taken.
#
# The runbook restore (README "Backup and restore"): a target cluster whose
# transaction ids are ahead of the source's (pg_resetwal -e before its first
# start), the globals first, then pg_restore / psql with
# session_replication_role = replica.  On each restored database: the
# ciphertext is byte for byte the dumped ciphertext (nothing re-encrypted),
# everything decrypts, detokenizes and is found by its blind index, the table
# is still protected (row security on and forced, the three policies, a
# non-owner sees nothing without a context and only its tenant with one),
# context tokens signed with the registered key verify, the permission
# overrides and the break-glass grant hold, and the restored audit chain
# verifies, also against the digest taken before the dump.  The restore adds
# no audit entry (no row re-audited, no DDL entry), and new entries after it
# are sealed and verify.
#
# A naive restore (a fresh cluster, triggers on) re-audits no row, but
# writes DDL entries with transaction ids below the restored chain's
# horizon: phi_audit_verify() reports them, phi_audit_seal() refuses with
# 55000 naming pg_resetwal -e, and phi_check_config() flags the horizon.
#
# Restored with another master key, the database loads and every
# key-needing call fails with PH004, without key material in the message.

use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PhiGuardTest qw(:DEFAULT sql_error);

my $master_hex = random_hex();
my $other_hex  = random_hex();
my $dumpdir    = PostgreSQL::Test::Utils::tempdir;

# A cluster whose master key is $hex; only phi_audit_seal() seals, so
# block numbers and counts are stable; $epoch: the transaction-id epoch to
# give the new cluster (pg_resetwal -e)
sub new_node
{
	my ($name, $hex, $epoch) = @_;
	my ($node) = phi_guard_node(
		$name,
		key_hex => $hex,
		utf8    => 1,
		conf    => [ "phi_guard.audit_seal_interval = '1h'" ],
		start   => 0);
	command_ok([ 'pg_resetwal', '-e', $epoch, $node->data_dir ],
		"$name: pg_resetwal -e $epoch") if defined $epoch;
	$node->start;
	return $node;
}

sub token
{
	my (@claims) = @_;
	my $t = `python3 test/context/sign_context.py token @claims`;
	die "sign_context.py failed" if $? != 0 || $t eq '';
	return $t;
}


my $src = new_node('dump_src', $master_hex);
my $pem = `python3 test/context/sign_context.py pem k1`;
die "sign_context.py pem failed" if $? != 0;

# ---------------------------------------------------------------------
# the source database
# ---------------------------------------------------------------------

$src->safe_psql('postgres', <<'EOS');
CREATE ROLE regress_owner LOGIN;
CREATE ROLE regress_app LOGIN;
CREATE DATABASE clinic;
EOS
# a source that has run for a while: its transaction ids are far ahead of a
# fresh cluster's (production ones are millions ahead)
$src->safe_psql('postgres',
	'DO $$ BEGIN FOR i IN 1..3000 LOOP PERFORM pg_current_xact_id(); COMMIT; END LOOP; END $$');

my $scan_hex = '00ff00' . unpack('H*', 'scan') . '0000017f80';
$src->safe_psql('clinic', <<"EOS");
SET client_min_messages = warning;
CREATE EXTENSION phi_guard;
GRANT phi_app TO regress_owner, regress_app;
GRANT phi_decryptor, phi_detokenizer TO regress_app;

-- keys: 'pat' rotated (rows under v1 and v2), 'shred' v1 destroyed
SELECT phi_guard.phi_key_create('pat');
SELECT phi_guard.phi_key_create('shred');
SELECT phi_guard.phi_token_domain_create('ssn', 'pat', 'ssn');
SELECT phi_guard.phi_token_domain_create('note', 'pat', 'opaque', false);

CREATE TABLE public.patients (
  id int PRIMARY KEY,
  tenant text NOT NULL,
  name phi_guard.phi_ciphertext NOT NULL,   -- text, aad 'patients.name:<id>'
  scan phi_guard.phi_ciphertext,            -- bytea, aad 'patients.scan:<id>'
  mrn_bidx int8 NOT NULL,
  ssn_tok text NOT NULL,
  note_tok text NOT NULL,
  visits int NOT NULL DEFAULT 0
);
CREATE INDEX patients_mrn_bidx ON public.patients (mrn_bidx);
ALTER TABLE public.patients OWNER TO regress_owner;
GRANT SELECT ON public.patients TO regress_app;
SELECT phi_guard.phi_audit_enable('public.patients');

CREATE FUNCTION pg_temp.add(i int, t text, n text, mrn text, ssn text, note text) RETURNS void
LANGUAGE sql AS \$\$
  INSERT INTO public.patients (id, tenant, name, scan, mrn_bidx, ssn_tok, note_tok)
  VALUES (i, t, phi_guard.phi_encrypt(n, 'pat', 'patients.name:' || i),
          phi_guard.phi_encrypt('\\x$scan_hex'::bytea || convert_to(i::text, 'UTF8'), 'pat', 'patients.scan:' || i),
          phi_guard.phi_blind_index(mrn, 'pat', 16),
          phi_guard.phi_tokenize(ssn, 'ssn'), phi_guard.phi_tokenize(note, 'note'))
\$\$;
SELECT pg_temp.add(1, 'clinic-a', 'Ada Lovelace', 'MRN-0001', '123-45-6789', 'allergic to penicillin');
SELECT pg_temp.add(2, 'clinic-a', 'Zoë Ünal', 'MRN-0002', '234-56-7890', 'asthma');
SELECT phi_guard.phi_key_rotate('pat');
SELECT pg_temp.add(3, 'clinic-b', 'Grace Hopper', 'MRN-0003', '345-67-8901', 'diabetes type 2');
SELECT pg_temp.add(4, 'clinic-b', 'Alan Turing', 'MRN-0004', '456-78-9012', 'none');
UPDATE public.patients SET visits = 1 WHERE id = 3;

-- crypto-shredded values stay in their table
CREATE TABLE public.archive (id int PRIMARY KEY, ct phi_guard.phi_ciphertext);
INSERT INTO public.archive VALUES (1, phi_guard.phi_encrypt('gone forever', 'shred'));
SELECT phi_guard.phi_key_rotate('shred');
INSERT INTO public.archive VALUES (2, phi_guard.phi_encrypt('still here', 'shred'));
SELECT phi_guard.phi_key_destroy('shred', 1);

-- context, protection, permissions
SELECT phi_guard.phi_context_key_add('k1', '$pem');
SET ROLE regress_owner;
SELECT phi_guard.phi_protect_table('public.patients', 'tenant');
RESET ROLE;
SELECT phi_guard.phi_permission_grant('nurse', 'patient.read');
SELECT phi_guard.phi_permission_revoke('clinician', 'patient.write');
EOS

my $tok_alice = token('k1', 'sub=alice', 'tenant=clinic-a', 'roles=clinician', 'exp=+3000');
my $tok_bob   = token('k1', 'sub=bob',   'tenant=clinic-b', 'roles=nurse',     'exp=+3000');
my $tok_carol = token('k1', 'sub=carol', 'tenant=clinic-b', 'roles=clinician', 'exp=+3000');

is( $src->safe_psql(
		'clinic', qq{SET ROLE regress_app;
BEGIN;
SELECT phi_guard.phi_set_context('$tok_alice');
SELECT phi_guard.phi_break_glass('restore drill: patient unconscious', 60) > now();
COMMIT;}),
	"\nt",
	'source: a break-glass grant is open');

# What must come back: plaintexts, tokens, and the permission map.
my $plain_q = q{SELECT string_agg(id || ':' || phi_guard.phi_decrypt(name, 'patients.name:' || id)
       || ':' || encode(phi_guard.phi_decrypt_bytea(scan, 'patients.scan:' || id), 'hex')
       || ':' || phi_guard.phi_detokenize(ssn_tok, 'ssn')
       || ':' || phi_guard.phi_detokenize(note_tok, 'note'), '|' ORDER BY id)
  FROM public.patients};
my $plain_before = $src->safe_psql('clinic', $plain_q);
like($plain_before, qr/^1:Ada Lovelace:00ff00.*:123-45-6789:allergic to penicillin\|2:/,
	'source: the values decrypt and detokenize');
my $perm_q = q{SELECT string_agg(role || '/' || permission || '/' || builtin, ',' ORDER BY role, permission)
  FROM phi_guard.permissions};
my $perms_before = $src->safe_psql('clinic', $perm_q);
like($perms_before, qr{nurse/patient\.read/false}, 'source: the granted permission is in the map');
unlike($perms_before, qr{clinician/patient\.write}, 'source: the revoked permission is not');

# seal everything so far (the decryptions' access entries included) ...
cmp_ok(audit_seal_quiet($src, 'clinic'), '>', 10, 'source: entries sealed into a block');
is(audit_seal_quiet($src, 'clinic'), '0', 'source: a second seal finds nothing new');
# ... then leave one entry unsealed, as a dump between two seals does
$src->safe_psql('clinic', 'UPDATE public.patients SET visits = visits + 1 WHERE id = 4');

my $digest = $src->safe_psql('clinic', 'SELECT phi_guard.phi_audit_digest()');
like($digest, qr/"block": 1\b/, 'source: the digest names block 1');
is($src->safe_psql('clinic', 'SELECT ok FROM phi_guard.phi_audit_verify()'),
	't', 'source: the chain verifies');

# Fingerprints of what the restore must copy unchanged.
my %fp_q = (
	ciphertext => q{SELECT md5(string_agg(id || ':' || encode(name::bytea, 'hex') || ':'
	                   || encode(scan::bytea, 'hex') || ':' || mrn_bidx || ':' || ssn_tok || ':'
	                   || note_tok || ':' || tenant || ':' || visits, ',' ORDER BY id)) FROM public.patients},
	archive  => q{SELECT md5(string_agg(id || ':' || encode(ct::bytea, 'hex'), ',' ORDER BY id)) FROM public.archive},
	keys     => q{SELECT md5(string_agg(id || ':' || name || ':' || version || ':' || state || ':'
	                   || coalesce(encode(wrapped_key, 'hex'), '-'), ',' ORDER BY id)) FROM phi_guard.keys},
	index_keys => q{SELECT md5(string_agg(name || ':' || id || ':' || encode(wrapped_key, 'hex'), ',' ORDER BY name))
	                  FROM phi_guard.index_keys},
	vault    => q{SELECT md5(string_agg(domain || ':' || token || ':' || coalesce(encode(fingerprint, 'hex'), '-')
	                   || ':' || encode(value::bytea, 'hex'), ',' ORDER BY domain, token)) FROM phi_guard.token_vault},
	context_keys => q{SELECT md5(string_agg(kid || ':' || encode(public_key, 'hex') || ':' || (revoked_at IS NULL),
	                   ',' ORDER BY kid)) FROM phi_guard.context_keys},
	break_glass => q{SELECT md5(string_agg(id || ':' || user_id || ':' || tenant || ':' || reason || ':'
	                   || expires_at, ',' ORDER BY id)) FROM phi_guard.break_glass},
	audit_log => q{SELECT md5(string_agg(xid || ':' || id || ':' || record || ':' || encode(entry_hash, 'hex'),
	                   ',' ORDER BY xid, id)) FROM phi_guard.audit_log},
	audit_block => q{SELECT md5(string_agg(block_no || ':' || xid_lo || ':' || xid_hi || ':' || entries || ':'
	                   || encode(prev_hash, 'hex') || ':' || encode(block_hash, 'hex'), ',' ORDER BY block_no))
	                   FROM phi_guard.audit_block},
	audited  => q{SELECT string_agg(relid::text, ',' ORDER BY relid::text) FROM phi_guard.audited_tables},
	key_seq  => q{SELECT last_value FROM phi_guard.keys_id_seq});
my %fp_before = map { $_ => $src->safe_psql('clinic', $fp_q{$_}) } keys %fp_q;
my $entries_before = $src->safe_psql('clinic', 'SELECT count(*) FROM phi_guard.audit_log');
my $blocks_before  = $src->safe_psql('clinic', 'SELECT count(*) FROM phi_guard.audit_block');
is($src->safe_psql('clinic', 'SELECT count(*) FROM phi_guard.break_glass'), '1',
	'source: one break-glass grant');

# ---------------------------------------------------------------------
# dumps
# ---------------------------------------------------------------------

my @conn = ('-h', $src->host, '-p', $src->port);
command_ok([ 'pg_dump', @conn, '-Fc', '-f', "$dumpdir/clinic.dump", 'clinic' ],
	'pg_dump -Fc');
command_ok([ 'pg_dump', @conn, '-Fp', '-f', "$dumpdir/clinic.sql", 'clinic' ],
	'pg_dump plain');
command_ok([ 'pg_dumpall', @conn, '--globals-only', '-f', "$dumpdir/globals.sql" ],
	'pg_dumpall --globals-only');
is($src->safe_psql('clinic', 'SELECT count(*) FROM phi_guard.audit_log'),
	$entries_before, 'pg_dump writes no audit entry');

my $plain_dump = slurp_file("$dumpdir/clinic.sql");
like($plain_dump, qr/^CREATE EXTENSION IF NOT EXISTS phi_guard WITH SCHEMA phi_guard;$/m,
	'the dump creates the extension');
my ($copy_log) = $plain_dump =~ /^COPY phi_guard\.audit_log .*?FROM stdin;\n(.*?)^\\\.$/ms;
is(scalar(() = ($copy_log // '') =~ /\n/g), $entries_before,
	'the dump holds every audit entry');
unlike($plain_dump, qr/\Q$master_hex\E/i, 'the dump does not contain the master key');

# ---------------------------------------------------------------------
# restores into a fresh cluster with the same master key
# ---------------------------------------------------------------------

# Restore $format ('custom' or 'plain') into database $db of $node (created
# here); $replica: with session_replication_role = replica, so that neither
# phi_guard's DDL event triggers nor row triggers fire during the restore.
# Returns (exit code, stderr).
sub restore
{
	my ($node, $db, $format, $replica, @opts) = @_;
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	local $ENV{PGOPTIONS} = $replica ? '-c session_replication_role=replica' : '';
	my @conn = ('-h', $node->host, '-p', $node->port, '-d', $db);
	my @cmd = $format eq 'custom'
	  ? ('pg_restore', '--exit-on-error', @opts, @conn, "$dumpdir/clinic.dump")
	  : ('psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', @conn, '-f', "$dumpdir/clinic.sql");
	my ($out, $err) = ('', '');
	IPC::Run::run(\@cmd, '<', \undef, '>', \$out, '2>', \$err);
	return ($? >> 8, $err);
}

# roles are global: the globals dump first (the phi_* roles with it; the
# extension script reuses existing ones), ignoring "role postgres exists"
sub load_globals
{
	my ($node) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'psql', '-X', '-h', $node->host, '-p', $node->port, '-d', 'postgres',
		'-f', "$dumpdir/globals.sql" ], '<', \undef, '>', \$out, '2>', \$err);
	my @errors = grep { /ERROR/ } split /\n/, $err;
	is_deeply([ grep { !/role "postgres" already exists/ } @errors ], [],
		$node->name . ': the globals load (only "role postgres already exists" fails)');
}

# The runbook: a target whose transaction ids are ahead of the source's
# (epoch 1 > the source's epoch 0), globals first, restore with
# session_replication_role = replica.
my $dst = new_node('dump_dst', $master_hex, 1);
load_globals($dst);
my ($rc, $err) = restore($dst, 'clinic_fc', 'custom', 1);
is($rc, 0, 'pg_restore of the custom dump succeeds') or diag($err);
is($err, '', 'pg_restore prints nothing on stderr');
($rc, $err) = restore($dst, 'clinic_plain', 'plain', 1);
is($rc, 0, 'psql of the plain dump succeeds') or diag($err);
is($err, '', 'the plain restore prints nothing on stderr');

sub check_restored
{
	my ($node, $db) = @_;

	# the restore itself: no new audit entry, nothing re-encrypted
	my $entries = $node->safe_psql($db, 'SELECT count(*) FROM phi_guard.audit_log');
	is($entries, $entries_before, "$db: the audit log has exactly the dumped entries")
	  or diag($node->safe_psql($db,
		"SELECT string_agg(xid || ' ' || record, E'\\n' ORDER BY xid, id) FROM phi_guard.audit_log"
		. " WHERE xid >= (SELECT max(xid_hi) FROM phi_guard.audit_block)"));
	for my $k (sort keys %fp_q)
	{
		is($node->safe_psql($db, $fp_q{$k}), $fp_before{$k}, "$db: $k unchanged");
	}

	# everything decrypts, detokenizes, is found by its blind index
	is($node->safe_psql($db, $plain_q), $plain_before,
		"$db: every value decrypts and detokenizes as before");
	is( $node->safe_psql(
			$db, q{SELECT string_agg(id::text, ',' ORDER BY id) FROM public.patients
 WHERE mrn_bidx = phi_guard.phi_blind_index('MRN-0003', 'pat', 16)
   AND phi_guard.phi_decrypt(name, 'patients.name:' || id) = 'Grace Hopper'}),
		'3', "$db: the blind index finds the row");
	is( $node->safe_psql($db, q{SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM public.patients WHERE mrn_bidx = 42}) =~ /patients_mrn_bidx/ ? 1 : 0,
		1, "$db: the blind index is indexed");
	is($node->safe_psql($db, q{SELECT phi_guard.phi_tokenize('123-45-6789', 'ssn') =
	                              (SELECT ssn_tok FROM public.patients WHERE id = 1)}),
		't', "$db: deterministic tokenization gives the dumped token");
	is($node->safe_psql($db, q{SELECT phi_guard.phi_decrypt(ct) FROM public.archive WHERE id = 2}),
		'still here', "$db: the surviving key version decrypts");
	my ($state) = sql_error($node, $db, 'SELECT phi_guard.phi_decrypt(ct) FROM public.archive WHERE id = 1');
	is($state, 'PH002', "$db: the destroyed version stays destroyed (PH002)");
	($state) = sql_error($node, $db,
		q{SELECT phi_guard.phi_decrypt(name, 'patients.name:2') FROM public.patients WHERE id = 1});
	is($state, 'PH001', "$db: aad binding still holds (PH001 on another row's aad)");

	# the table stays protected
	is( $node->safe_psql(
			$db, q{SELECT relrowsecurity || '/' || relforcerowsecurity || '/'
  || (SELECT string_agg(polname || ':' || polpermissive || ':' || polcmd::text, ',' ORDER BY polname)
        FROM pg_policy WHERE polrelid = 'public.patients'::regclass)
  FROM pg_class WHERE oid = 'public.patients'::regclass}),
		'true/true/phi_guard_break_glass:true:r,phi_guard_tenant:false:*,phi_guard_tenant_access:true:*',
		"$db: row security on and forced, the three policies");
	is( $node->safe_psql(
			$db, qq{SET ROLE regress_app;
SELECT count(*) FROM public.patients;
BEGIN;
SELECT phi_guard.phi_set_context('$tok_bob');
SELECT string_agg(id || ':' || tenant, ',' ORDER BY id) FROM public.patients;
SELECT phi_guard.phi_has_permission('patient.read');
COMMIT;
BEGIN;
SELECT phi_guard.phi_set_context('$tok_alice');
SELECT string_agg(id || ':' || tenant, ',' ORDER BY id) FROM public.patients;
SELECT phi_guard.phi_has_permission('patient.write') || '/' || phi_guard.phi_break_glass_active();
COMMIT;
SELECT count(*) FROM public.patients;}),
		"0\n\n3:clinic-b,4:clinic-b\nt\n\n1:clinic-a,2:clinic-a\nfalse/true\n0",
		"$db: a non-owner sees nothing without a context and only its tenant with one; "
		  . 'the permission overrides and the break-glass grant hold');
	($state, my $err) = sql_error($node, $db,
		"SELECT phi_guard.phi_set_context('" . token('k1', '--sign-with=k2', 'sub=eve',
			'tenant=clinic-a', 'roles=clinician', 'exp=+600') . "')");
	is($state, '28000', "$db: a token not signed with the registered key is refused");

	# a new break-glass grant and a new key version after the restore
	{
		my ($out, $err) = ('', '');
		$node->psql($db, qq{SET ROLE regress_app;
BEGIN;
SELECT phi_guard.phi_set_context('$tok_carol');
SELECT phi_guard.phi_break_glass('restore drill: second emergency', 5) > now();
SELECT phi_guard.phi_break_glass_end();
COMMIT;}, stdout => \$out, stderr => \$err);
		is($out, "\nt\nt", "$db: a new break-glass grant opens and ends after the restore")
		  or diag($err);
	}
	is( $node->safe_psql($db, "SELECT phi_guard.phi_key_rotate('pat') > $fp_before{key_seq}"),
		't', "$db: a new key version gets an id the dumped keyring never used");

	# the restored audit chain
	is( $node->safe_psql($db, 'SELECT ok || \'/\' || blocks || \'/\' || coalesce(problem, \'\') FROM phi_guard.phi_audit_verify()'),
		"true/$blocks_before/", "$db: the restored chain verifies");
	is( $node->safe_psql($db,
			"SELECT ok || '/' || coalesce(problem, '') FROM phi_guard.phi_audit_verify('$digest'::jsonb)"),
		'true/', "$db: the digest taken before the dump verifies on the restored side");

	# auditing goes on: the unsealed dumped entry and new ones are sealed
	$node->safe_psql($db, 'UPDATE public.patients SET visits = visits + 1 WHERE id = 1');
	my $sealed = audit_seal_quiet($node, $db);
	cmp_ok($sealed, '>=', 3, "$db: sealing continues after the restore");
	is( $node->safe_psql($db, q{SELECT ok || '/' || coalesce(problem, '') || '/'
	      || (entries = (SELECT count(*) FROM phi_guard.audit_log)) FROM phi_guard.phi_audit_verify()}),
		'true//true', "$db: every entry, old and new, is sealed and verifies");
	is( $node->safe_psql($db,
			"SELECT ok || '/' || coalesce(problem, '') FROM phi_guard.phi_audit_verify('$digest'::jsonb)"),
		'true/', "$db: the old digest still verifies after new blocks");
}

check_restored($dst, 'clinic_fc');
check_restored($dst, 'clinic_plain');

# ---------------------------------------------------------------------
# a plain restore into a plain fresh cluster (no epoch step, triggers on)
# ---------------------------------------------------------------------

my $naive = new_node('dump_naive', $master_hex);
load_globals($naive);
($rc, $err) = restore($naive, 'clinic', 'custom', 0);
is($rc, 0, 'naive: pg_restore succeeds') or diag($err);
is($naive->safe_psql('clinic', $plain_q), $plain_before, 'naive: every value decrypts and detokenizes');
my $dumped_max_xid = $src->safe_psql('clinic', 'SELECT max(xid) FROM phi_guard.audit_log');
# (the decrypts of the check above are this test's access entries, not the
# restore's: durable access entries reach the log at once)
my @extra = split /\n/, $naive->safe_psql('clinic',
	"SELECT record FROM phi_guard.audit_log WHERE (xid > '$dumped_max_xid' OR xid < (SELECT min(xid_lo) FROM phi_guard.audit_block))
	   AND record::jsonb->>'kind' NOT IN ('decrypt', 'detokenize') ORDER BY xid, id");
is_deeply([ grep { !/"kind":"ddl","table":"public\.patients"/ } @extra ], [],
	'naive: the restore re-audits no row: its only entries are DDL entries of the audited table');
# what a naive restore does to the chain is detected, not hidden: its own
# DDL entries lie below the restored blocks, verification says so, and
# sealing refuses loudly (55000) instead of silently sealing nothing
cmp_ok(scalar @extra, '>', 0, 'naive: without session_replication_role = replica the restore writes DDL entries');
like($naive->safe_psql('clinic', q{SELECT ok || '/' || coalesce(problem, '') FROM phi_guard.phi_audit_verify()}),
	qr{^false/.*outside every block}, 'naive: phi_audit_verify() reports the entries below the restored chain');
my ($nrc, $nout, $nerr) = $naive->psql('clinic', "\\set VERBOSITY verbose\nSELECT phi_guard.phi_audit_seal()");
like($nerr, qr/ERROR:\s+55000: the audit chain's horizon is ahead of this cluster's transaction ids/,
	'naive: phi_audit_seal() refuses with 55000 and says why');
like($nerr, qr/HINT:.*pg_resetwal -e/, 'naive: the hint names pg_resetwal -e');
is($naive->safe_psql('clinic', q{SELECT risk FROM phi_guard.phi_check_config() WHERE setting = 'phi_guard.audit_block'}),
	'high', 'naive: phi_check_config() reports the horizon');

# ---------------------------------------------------------------------
# another master key: the dump loads, nothing decrypts
# ---------------------------------------------------------------------

my $wrong = new_node('dump_wrongkey', $other_hex);
$wrong->safe_psql('postgres', 'CREATE ROLE regress_owner LOGIN; CREATE ROLE regress_app LOGIN;');
($rc, $err) = restore($wrong, 'clinic', 'custom', 1, '--no-owner', '--no-privileges');
is($rc, 0, 'another master key: pg_restore succeeds') or diag($err);
is($wrong->safe_psql('clinic', $fp_q{ciphertext}), $fp_before{ciphertext},
	'another master key: the ciphertext is restored as it was');
for my $call (
	[ 'phi_decrypt', q{SELECT phi_guard.phi_decrypt(name, 'patients.name:1') FROM public.patients WHERE id = 1} ],
	[ 'phi_decrypt_bytea', q{SELECT phi_guard.phi_decrypt_bytea(scan, 'patients.scan:1') FROM public.patients WHERE id = 1} ],
	[ 'phi_detokenize', q{SELECT phi_guard.phi_detokenize(ssn_tok, 'ssn') FROM public.patients WHERE id = 1} ],
	[ 'phi_blind_index', q{SELECT phi_guard.phi_blind_index('MRN-0001', 'pat', 16)} ],
	[ 'phi_encrypt', q{SELECT phi_guard.phi_encrypt('x', 'pat')} ])
{
	my ($state, $err) = sql_error($wrong, 'clinic', $call->[1]);
	is($state, 'PH004', "another master key: $call->[0] fails with PH004") or diag($err);
	my @leaks = grep { $err =~ /\Q$_\E/i } ($master_hex, $other_hex,
		split /\n/, $wrong->safe_psql('clinic',
			q{SELECT encode(wrapped_key, 'hex') FROM phi_guard.keys WHERE wrapped_key IS NOT NULL
			  UNION ALL SELECT encode(wrapped_key, 'hex') FROM phi_guard.index_keys}));
	is(scalar @leaks, 0, "another master key: the $call->[0] error shows no key material");
}
(undef, $err) = sql_error($wrong, 'clinic', 'SELECT phi_guard.phi_decrypt(name) FROM public.patients');
like($err, qr/ERROR:\s+PH004: .*unwrap/i, 'another master key: the message says the data key cannot be unwrapped')
	or diag($err);
is($wrong->safe_psql('clinic', 'SELECT ok FROM phi_guard.phi_audit_verify()'),
	't', 'another master key: the audit chain still verifies (it needs no key)');

done_testing();
