# phi_guard on a Citus cluster (coordinator + 2 workers): a signed context
# set on the coordinator governs row security on every shard (router and
# multi-shard queries, and a worker queried directly); every committed
# change of an audited distributed table and every disclosure is one entry
# of the chain of the node where it happened; the coordinator's
# phi_audit_digest binds every node's digest (SPEC §10) and
# phi_audit_verify covers every node, naming a tampered one; a shard move
# keeps all of it.
use strict;
use warnings;
use Digest::SHA qw(sha256_hex);
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use PhiGuardTest;
use PhiGuardCitus;
use Test::More;

my ($coord, $workers) = citus_cluster();
my ($w1, $w2) = @$workers;
my @nodes = ($coord, @$workers);
my $pem = sign_context('pem', 'k1');

$coord->safe_psql('postgres', <<"EOS");
SET client_min_messages = warning;
SELECT count(*) FROM phi_guard.phi_citus_setup();
SELECT phi_guard.phi_key_create('pii');
SELECT phi_guard.phi_context_key_add('k1', \$pem\$$pem\$pem\$);
CREATE TABLE pat (tenant text, id int, ssn phi_guard.phi_ciphertext, PRIMARY KEY (tenant, id));
SELECT create_distributed_table('pat', 'tenant');
INSERT INTO pat SELECT 't' || (i % 4), i, phi_guard.phi_encrypt('ssn-' || i, 'pii', 'pat.ssn:' || i)
  FROM generate_series(1, 200) i;
SELECT phi_guard.phi_protect_table('pat', 'tenant');
SELECT phi_guard.phi_audit_enable('pat');
CREATE ROLE app LOGIN;
GRANT USAGE ON SCHEMA phi_guard TO app;
GRANT SELECT, INSERT, UPDATE, DELETE ON pat TO app;
GRANT phi_decryptor, phi_encryptor TO app;
EOS
# the tenant wall reached every shard, permissive as Citus gives it
is($w1->safe_psql('postgres',
		"SET citus.override_table_visibility = off;
		 SELECT count(DISTINCT c.oid) FROM pg_class c JOIN pg_policy p ON p.polrelid = c.oid
		  WHERE c.relname ~ '^pat_[0-9]+\$' AND c.relrowsecurity AND c.relforcerowsecurity"),
	$coord->safe_psql('postgres',
		"SELECT count(*) FROM citus_shards WHERE table_name = 'pat'::regclass AND nodeport = " . $w1->port),
	'every shard of worker1 has row security forced and the wall');

# the owner cannot widen the wall from the coordinator: on Citus it is the
# table's only policy, so no other may join it, and it is not altered or
# dropped
fails_with($coord, 'postgres', 'CREATE POLICY open ON pat USING (true)', '42501',
	'a second policy on a protected distributed table');
fails_with($coord, 'postgres', 'ALTER POLICY phi_guard_tenant ON pat USING (true)', '42501',
	'altering its tenant wall');
fails_with($coord, 'postgres', 'DROP POLICY phi_guard_tenant ON pat', '42501',
	'dropping its tenant wall');
is($w2->safe_psql('postgres',
		"SET citus.override_table_visibility = off;
		 SELECT count(*) FROM pg_policy WHERE polrelid::regclass::text ~ '^pat_[0-9]+\$' AND polname <> 'phi_guard_tenant'"),
	'0', 'no other policy reached a shard');

# nor through the shards: run_command_on_shards reaches them on the
# workers, where the guard knows them by their table
for my $ddl ('ALTER TABLE %s NO FORCE ROW LEVEL SECURITY', 'ALTER TABLE %s DISABLE TRIGGER USER',
	'CREATE POLICY open ON %s USING (true)', 'DROP POLICY phi_guard_tenant ON %s')
{
	is($coord->safe_psql('postgres',
			"SELECT count(*) FILTER (WHERE success) || '/' || count(*) FROM run_command_on_shards('pat', \$\$$ddl\$\$)"),
		'0/32', "'$ddl' on every shard is refused on the workers");
}
for my $ddl ('TRUNCATE %s', 'DROP TABLE %s')
{
	my $by_hand = "DO \$x\$ BEGIN PERFORM set_config(''citus.enable_manual_changes_to_shards'', ''on'', true); "
	  . "$ddl; END \$x\$";
	is($coord->safe_psql('postgres',
			"SELECT count(*) FILTER (WHERE result ~ 'by hand') || '/' || count(*)
			   FROM run_command_on_shards('pat', '$by_hand')"),
		'32/32', "'$ddl' of single shards by hand is refused");
}
is($coord->safe_psql('postgres', 'SELECT count(*) FROM pat'), '200', 'every row is still there');
fails_with($w1, 'postgres',
	"SET citus.override_table_visibility = off;
	 DO \$\$ BEGIN EXECUTE format('ALTER TABLE %s NO FORCE ROW LEVEL SECURITY',
	   (SELECT relname FROM pg_class WHERE relname ~ '^pat_[0-9]+\$' LIMIT 1)); END \$\$",
	'42501', 'NO FORCE on a shard, on a worker directly');

my $t1 = sign_context('token', 'k1', 'sub=alice', 'tenant=t1', 'roles=clinician', 'exp=+600', 'jti=req-alice');
my $t2 = sign_context('token', 'k1', 'sub=bob', 'tenant=t2', 'roles=clinician', 'exp=+600', 'jti=req-bob');

# --- the context reaches the shards -------------------------------------
my ($rc, $out, $err) = app_psql($coord, 'app', <<"EOS");
BEGIN;
SELECT phi_guard.phi_set_context('$t1');
SELECT 'multi:' || string_agg(DISTINCT tenant, ',') || ':' || count(*) FROM pat;
SELECT 'router:' || count(*) FROM pat WHERE tenant = 't1' AND id = 5;
SELECT 'other:' || count(*) FROM pat WHERE tenant = 't2';
SELECT 'decrypt:' || phi_guard.phi_decrypt(ssn, 'pat.ssn:' || id) FROM pat WHERE tenant = 't1' AND id = 5;
SELECT phi_guard.phi_set_context('$t2');
SELECT 'switched:' || string_agg(DISTINCT tenant, ',') || ':' || count(*) FROM pat;
SELECT phi_guard.phi_clear_context();
SELECT 'cleared:' || count(*) || ':' || coalesce(phi_guard.phi_tenant_id(), 'none') FROM pat;
SELECT phi_guard.phi_set_context('$t1');
SELECT phi_guard.phi_set_context(NULL);
SELECT 'nulled:' || count(*) || ':' || coalesce(phi_guard.phi_tenant_id(), 'none') FROM pat;
COMMIT;
SELECT 'none:' || count(*) FROM pat;
EOS
is($rc, 0, 'the application\'s transaction runs') or diag($err);
like($out, qr/^multi:t1:50$/m, 'multi-shard query under tenant t1: only t1\'s 50 rows');
like($out, qr/^router:1$/m, 'router query: its row');
like($out, qr/^other:0$/m, 'router query to another tenant\'s shard: nothing');
like($out, qr/^decrypt:ssn-5$/m, 'decrypt under the context on the worker');
like($out, qr/^switched:t2:50$/m, 'a new context in the same transaction reaches the shards');
like($out, qr/^cleared:0:none$/m, 'phi_clear_context clears the context on the shards too');
like($out, qr/^nulled:0:none$/m, 'and so does phi_set_context(NULL)');
like($out, qr/^none:0$/m, 'no context after the transaction: no rows on any shard');

($rc, $out, $err) = app_psql($coord, 'app', <<"EOS");
BEGIN;
SELECT phi_guard.phi_set_context('$t1');
INSERT INTO pat VALUES ('t2', 9999, NULL);
EOS
like($err, qr/row-level security/, 'writing into another tenant is refused on the shard');

# a worker queried directly
for my $w (@$workers)
{
	($rc, $out, $err) = app_psql($w, 'app', 'SELECT count(*) FROM pat');
	is($out, '0', 'worker ' . $w->name . ' queried directly without a context: no rows');
}
($rc, $out, $err) = app_psql($w1, 'app', <<"EOS");
BEGIN;
SELECT phi_guard.phi_set_context('$t1');
SELECT string_agg(DISTINCT tenant, ',') || ':' || count(*) FROM pat;
COMMIT;
EOS
like($out, qr/^t1:50$/m, 'a worker queried directly with a signed context: only its tenant');
($rc, $out, $err) = app_psql($w1, 'app', <<"EOS");
BEGIN;
SET LOCAL phi_guard.context_token = 'eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIn0.e30.AAAA';
SELECT count(*) FROM pat;
EOS
like($err, qr/context token rejected/, 'a forged token handed to a worker is rejected, as by phi_set_context');
($rc, $out, $err) = app_psql($w1, 'app', <<"EOS");
SET phi_guard.context_token = '$t1';
SELECT 'later:' || count(*) FROM pat;
EOS
like($out, qr/^later:0$/m, 'a token set for the session counts only in the transaction that set it');
unlike($err . $out, qr/\Q$t1\E/, 'the token is never echoed');
fails_with($coord, 'postgres', "ALTER ROLE app SET phi_guard.context_token = '$t1'", '22023',
	'a token as a role default is refused');
my $expired = sign_context('token', 'k1', 'sub=bob', 'tenant=t2', 'roles=clinician', 'exp=-600');
$coord->psql('postgres', <<"EOS", stdout => \$out, stderr => \$err, on_error_stop => 0, extra_params => [ '-U', 'app' ]);
BEGIN;
SELECT phi_guard.phi_set_context('$t1');
SAVEPOINT s;
SELECT phi_guard.phi_set_context('$expired');
ROLLBACK TO s;
SELECT 'after-rollback:' || string_agg(DISTINCT tenant, ',') || ':' || coalesce(phi_guard.phi_user_id(), 'none') FROM pat;
COMMIT;
EOS
like($out, qr/^after-rollback:t1:alice$/m,
	'ROLLBACK TO after a refused token: the savepoint\'s context, alike on the coordinator and the shards');

# --- writes to the reference tables work on Citus ---------------------------
$coord->safe_psql('postgres', <<'EOS');
SELECT phi_guard.phi_key_access('pii', 'patient.read');
SELECT phi_guard.phi_mask_bind('pii', 'ssn');
SELECT phi_guard.phi_permission_revoke('clinician', 'break_glass');
SELECT phi_guard.phi_permission_grant('clinician', 'break_glass');
EOS
is($w2->safe_psql('postgres', "SELECT permission || '/' || mask_kind FROM phi_guard.key_access WHERE name = 'pii'"),
	'patient.read/ssn', 'a key access rule and a mask binding made on the coordinator reach the workers');
($rc, $out, $err) = app_psql($coord, 'app', <<"EOS");
BEGIN;
SELECT phi_guard.phi_set_context('$t1');
SELECT phi_guard.phi_break_glass('a patient in the emergency room needs it now', 5);
SELECT 'ended:' || phi_guard.phi_break_glass_end();
COMMIT;
EOS
like($out, qr/^ended:true$/m, 'break-glass opens and ends on Citus') or diag($err);

# --- audit: every change once, on the node that holds the row -----------
($rc, $out, $err) = app_psql($coord, 'app', <<"EOS");
BEGIN;
SELECT phi_guard.phi_set_context('$t1');
INSERT INTO pat VALUES ('t1', 1001, phi_guard.phi_encrypt('new', 'pii', 'pat.ssn:1001'));
-- Citus runs no volatile function in an UPDATE of a distributed table:
-- the ciphertext is made first and passed as a value (README)
SELECT phi_guard.phi_encrypt('newer', 'pii', 'pat.ssn:1001') AS ct \\gset
UPDATE pat SET ssn = :'ct'::phi_guard.phi_ciphertext WHERE tenant = 't1' AND id = 1001;
DELETE FROM pat WHERE tenant = 't1' AND id = 9;
SELECT count(phi_guard.phi_decrypt(ssn, 'pat.ssn:' || id)) FROM pat;
COMMIT;
EOS
is($rc, 0, 'audited changes and reads under a context') or diag($err);
# a change that rolls back leaves no entry
app_psql($coord, 'app', <<"EOS");
BEGIN;
SELECT phi_guard.phi_set_context('$t1');
INSERT INTO pat VALUES ('t1', 1002, NULL);
ROLLBACK;
EOS

my $changes_sql = <<'EOS';
SELECT count(*) FILTER (WHERE record::jsonb->>'kind' IN ('insert', 'update', 'delete')) || '/' ||
       count(*) FILTER (WHERE record::jsonb->>'kind' IN ('insert', 'update', 'delete')
                          AND record::jsonb->>'table' = 'public.pat'
                          AND record::jsonb->>'request_id' = 'req-alice'
                          AND record::jsonb->>'app_user' = 'alice')
  FROM phi_guard.audit_log
EOS
my $holder = worker_of_shard($coord, $workers, 'pat', 't1');
my ($other) = grep { $_ != $holder } @$workers;
is($holder->safe_psql('postgres', $changes_sql), '3/3',
	'the worker holding t1 has one entry per change, naming public.pat, the user and the jti');
is($other->safe_psql('postgres', $changes_sql), '0/0', 'the other worker has none');
is($coord->safe_psql('postgres', $changes_sql), '0/0', 'the coordinator has none');
my $reads = $holder->safe_psql('postgres', <<'EOS');
SELECT count(*) FROM phi_guard.audit_log
 WHERE record::jsonb->>'kind' = 'decrypt' AND record::jsonb->>'request_id' = 'req-alice'
   AND record::jsonb->'detail'->'rows' ? 'pat.ssn:5'
EOS
cmp_ok($reads, '>', 0, 'the disclosure of t1\'s rows is in the holder\'s chain, row by row (pat.ssn:5)');

# --- sealing, the cluster digest and verification ------------------------
audit_seal_quiet($_) for @nodes;
my $digest_text = $coord->safe_psql('postgres', 'SELECT phi_guard.phi_audit_digest()');
my $digest = decode_json($digest_text);
is(scalar @{ $digest->{nodes} }, 2, 'the coordinator\'s digest has both workers');
is_deeply([ map { $_->{node} } @{ $digest->{nodes} } ],
	[ map { '127.0.0.1:' . $_->port } @$workers ], 'in node-id order, named host:port');
for my $i (0, 1)
{
	my $own = decode_json($workers->[$i]->safe_psql('postgres', 'SELECT phi_guard.phi_audit_digest()'));
	is($digest->{nodes}[$i]{digest}{block_hash}, $own->{block_hash},
		"node $i's part is that worker's own digest");
	ok(!exists $own->{nodes}, "a worker's own digest has no nodes");
}
my $expect = sha256_hex(pack('H*',
	join('', $digest->{block_hash}, map { $_->{digest}{block_hash} } @{ $digest->{nodes} })));
is($digest->{cluster_hash}, $expect, 'cluster_hash = SHA-256 of the block hashes, coordinator first');
is($coord->safe_psql('postgres', 'SELECT ok FROM phi_guard.phi_audit_verify()'), 't',
	'phi_audit_verify on the coordinator: every chain verifies');
my $sum = 0;
$sum += $_->safe_psql('postgres', 'SELECT entries FROM phi_guard.phi_audit_verify()') for @$workers;
cmp_ok($sum, '>', 0, 'the workers sealed entries of their own');
cmp_ok($coord->safe_psql('postgres', 'SELECT entries FROM phi_guard.phi_audit_verify()'), '>', $sum,
	'the coordinator\'s verification counts every worker\'s entries and its own');

my $forged = $digest_text;
$forged =~ s/"cluster_hash": "([0-9a-f])/'"cluster_hash": "' . ($1 eq '0' ? '1' : '0')/e;
is($coord->safe_psql('postgres', "SELECT problem FROM phi_guard.phi_audit_verify('$forged')"),
	"cluster_hash of the digest does not match its nodes' digests",
	'a digest whose cluster_hash was changed is refused');

my $partial = encode_json({ %$digest, nodes => [ $digest->{nodes}[0] ],
	cluster_hash => sha256_hex(pack('H*', $digest->{block_hash} . $digest->{nodes}[0]{digest}{block_hash})) });
like($coord->safe_psql('postgres', "SELECT problem FROM phi_guard.phi_audit_verify('$partial')"),
	qr/^worker 127\.0\.0\.1:\d+ is not in the digest$/, 'a digest that leaves a worker out is refused');

# a superuser on a worker rewrites one of its sealed entries
$other->safe_psql('postgres', <<'EOS');
ALTER TABLE phi_guard.audit_log DISABLE TRIGGER USER;
UPDATE phi_guard.audit_log SET record = replace(record, '"postgres"', '"mallory"')
 WHERE (xid, id) = (SELECT xid, id FROM phi_guard.audit_log ORDER BY xid, id LIMIT 1);
ALTER TABLE phi_guard.audit_log ENABLE TRIGGER USER;
EOS
my $other_name = '127.0.0.1:' . $other->port;
my $verdict = $coord->safe_psql('postgres',
	"SELECT ok || ' ' || problem FROM phi_guard.phi_audit_verify('$digest_text')");
like($verdict, qr/^false node \Q$other_name\E: entry \(xid \d+, id \d+\): entry_hash does not match record$/,
	'the coordinator\'s verification finds the tampered entry and names the worker');
unlike($verdict, qr/mallory|postgres/, 'the problem quotes no record');

# --- a shard move keeps the guarantees -----------------------------------
my $shard = $coord->safe_psql('postgres',
	"SELECT get_shard_id_for_distribution_column('pat', 't1')");
$coord->safe_psql('postgres',
	"SELECT citus_move_shard_placement($shard, '127.0.0.1', " . $holder->port
	  . ", '127.0.0.1', " . $other->port . ", 'block_writes')");
is(worker_of_shard($coord, $workers, 'pat', 't1'), $other, 't1\'s shard moved');
is($holder->safe_psql('postgres', $changes_sql), '3/3', 'the old holder keeps its entries');
is($other->safe_psql('postgres', $changes_sql), '0/0', 'the move itself wrote no change entry');
($rc, $out, $err) = app_psql($coord, 'app', <<"EOS");
BEGIN;
SELECT phi_guard.phi_set_context('$t1');
INSERT INTO pat VALUES ('t1', 1003, phi_guard.phi_encrypt('moved', 'pii', 'pat.ssn:1003'));
SELECT 'after:' || string_agg(DISTINCT tenant, ',') || ':' || count(*) FROM pat;
SELECT 'value:' || phi_guard.phi_decrypt(ssn, 'pat.ssn:' || id) FROM pat WHERE tenant = 't1' AND id = 1003;
COMMIT;
EOS
like($out, qr/^after:t1:51$/m, 'after the move: the context still confines the reads');
like($out, qr/^value:moved$/m, 'and values still decrypt on the new node');
is($other->safe_psql('postgres', $changes_sql), '1/1', 'the new holder audits the next change');
is($holder->safe_psql('postgres', 'SELECT ok FROM phi_guard.phi_audit_verify()'), 't',
	'the old holder\'s chain still verifies');

# a worker that does not answer: no digest, no verdict (never one that
# silently leaves a node out)
$holder->stop;
fails_with($coord, 'postgres', 'SELECT phi_guard.phi_audit_digest()', '08006',
	'phi_audit_digest with a worker down');
fails_with($coord, 'postgres', 'SELECT * FROM phi_guard.phi_audit_verify()', '08006',
	'phi_audit_verify with a worker down');
$holder->start;

$_->stop for @nodes;
done_testing();
