# phi_guard on a Citus cluster (coordinator + 2 workers): keys, context
# keys, permissions and the token vault reach every node
# (phi_citus_setup); encrypt, decrypt, blind index and tokens on a
# distributed table run on the workers; key lifecycle calls made on the
# coordinator take effect on every node; phi_check_config finds a worker
# with another master key.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use PhiGuardTest;
use PhiGuardCitus;
use Test::More;

my ($coord, $workers, $key_hex) = citus_cluster();
my ($w1, $w2) = @$workers;

# --- set-up -------------------------------------------------------------
for my $w (@$workers)
{
	is($w->safe_psql('postgres', "SELECT extversion FROM pg_extension WHERE extname = 'phi_guard'"),
		'0.3.0', 'Citus created phi_guard on worker ' . $w->name);
}
is($coord->safe_psql('postgres',
		'SET client_min_messages = warning; SELECT string_agg(t::text, \',\' ORDER BY t::text) FROM phi_guard.phi_citus_setup() t'),
	'phi_guard.break_glass,phi_guard.context_keys,phi_guard.index_keys,phi_guard.key_access,phi_guard.keys,'
	  . 'phi_guard.permission_defaults,phi_guard.permission_overrides,phi_guard.token_domains,phi_guard.token_vault',
	'phi_citus_setup makes the shared tables reference tables');
is($coord->safe_psql('postgres', 'SELECT count(*) FROM phi_guard.phi_citus_setup()'),
	'0', 'phi_citus_setup a second time distributes nothing');
is($coord->safe_psql('postgres',
		"SELECT count(*) FROM pg_dist_partition WHERE logicalrelid::text LIKE 'phi_guard.%' AND partmethod = 'n'"),
	'9', 'nine reference tables');
fails_with($w1, 'postgres', 'SELECT phi_guard.phi_citus_setup()', '55000',
	'phi_citus_setup on a worker');
# the built-in permissions reached the workers' copies
is($w2->safe_psql('postgres', 'SELECT count(*) FROM phi_guard.permissions'),
	$coord->safe_psql('postgres', 'SELECT count(*) FROM phi_guard.permissions'),
	'a worker reads the same permissions as the coordinator');

$coord->safe_psql('postgres', <<'EOS');
SELECT phi_guard.phi_key_create('pii');
CREATE TABLE pat (tenant text, id int, ssn phi_guard.phi_ciphertext, ssn_bidx int8, tok text,
                  PRIMARY KEY (tenant, id));
SELECT create_distributed_table('pat', 'tenant');
SELECT phi_guard.phi_token_domain_create('mrn', 'pii');
-- as an application inserts: one row per INSERT ... VALUES, whose
-- functions Citus runs on the coordinator (README: phi_tokenize in
-- INSERT ... SELECT into a distributed table is not supported)
DO $$
BEGIN
  FOR i IN 1..200 LOOP
    INSERT INTO pat VALUES ('t' || (i % 4), i, phi_guard.phi_encrypt('ssn-' || i, 'pii', 'pat.ssn:' || i),
                            phi_guard.phi_blind_index('ssn-' || i, 'pii'), phi_guard.phi_tokenize('mrn-' || i, 'mrn'));
  END LOOP;
END
$$;
EOS

# --- decrypt, blind index and tokens on the workers ---------------------
is($coord->safe_psql('postgres',
		"SELECT count(*) FROM pat WHERE phi_guard.phi_decrypt(ssn, 'pat.ssn:' || id) = 'ssn-' || id"),
	'200', 'every value decrypts, on the workers');
my $plan = $coord->safe_psql('postgres',
	"EXPLAIN (VERBOSE, COSTS OFF) SELECT phi_guard.phi_decrypt(ssn, 'pat.ssn:' || id) FROM pat");
like($plan, qr/Task Count: 32/, 'the decrypting query goes to every shard');
like($plan, qr/Query: SELECT phi_guard\.phi_decrypt\(ssn, .*FROM public\.pat_\d+ pat/,
	'phi_decrypt runs in the shard query, on the worker (no ciphertext pulled to the coordinator)');
for my $w (@$workers)
{
	cmp_ok($w->safe_psql('postgres',
			"SELECT count(*) FROM phi_guard.audit_log WHERE record::jsonb->>'kind' = 'decrypt'"),
		'>', 0, 'the worker ' . $w->name . ' itself decrypted (its own access entries)');
}

my $route = $coord->safe_psql('postgres',
	"EXPLAIN (COSTS OFF) SELECT id FROM pat WHERE tenant = 't1' AND ssn_bidx = phi_guard.phi_blind_index('ssn-5', 'pii')");
like($route, qr/Task Count: 1\b/, 'a blind-index lookup within a tenant goes to one shard');
is($coord->safe_psql('postgres',
		"SELECT id FROM pat WHERE tenant = 't1' AND ssn_bidx = phi_guard.phi_blind_index('ssn-5', 'pii')"),
	'5', 'and finds its row');
is($coord->safe_psql('postgres', <<'EOS'),
SELECT count(*) FROM pat WHERE phi_guard.phi_detokenize(tok, 'mrn') = 'mrn-' || id
EOS
	'200', 'tokens made on the coordinator detokenize on the workers');
like($coord->safe_psql('postgres',
		"EXPLAIN (VERBOSE, COSTS OFF) SELECT phi_guard.phi_detokenize(tok, 'mrn') FROM pat"),
	qr/Query: SELECT phi_guard\.phi_detokenize\(tok/, 'detokenize runs in the shard query');
is($w1->safe_psql('postgres', 'SELECT count(*) FROM phi_guard.token_vault'),
	'200', 'every worker holds the vault');
is($coord->safe_psql('postgres',
		"SELECT count(*) FROM (SELECT phi_guard.phi_tokenize('mrn-' || i, 'mrn') t FROM generate_series(1, 200) i) s
		  WHERE t IN (SELECT tok FROM pat)"),
	'200', 'a known value gets its token back');

# --- key lifecycle from the coordinator reaches every node --------------
$coord->safe_psql('postgres', "SELECT phi_guard.phi_key_rotate('pii')");
$coord->safe_psql('postgres', <<'EOS');
INSERT INTO pat VALUES ('t1', 1001, phi_guard.phi_encrypt('new', 'pii', 'pat.ssn:1001'), 0, NULL);
EOS
is($coord->safe_psql('postgres',
		"SELECT phi_guard.phi_ciphertext_key_id(ssn) = (SELECT id FROM phi_guard.keys WHERE name = 'pii' AND version = 2)
		   FROM pat WHERE tenant = 't1' AND id = 1001"),
	't', 'a rotation on the coordinator: new values use version 2');
is($coord->safe_psql('postgres',
		"SELECT phi_guard.phi_decrypt(ssn, 'pat.ssn:' || id) FROM pat WHERE tenant = 't1' AND id = 1001"),
	'new', 'the new version decrypts on its worker');
# every worker connection has version 1 cached now; destroying it on the
# coordinator must reach those caches
is($coord->safe_psql('postgres',
		"SELECT count(*) FROM pat WHERE id <= 200 AND phi_guard.phi_decrypt(ssn, 'pat.ssn:' || id) IS NOT NULL"),
	'200', 'version 1 still decrypts before it is destroyed');
$coord->safe_psql('postgres', "SELECT phi_guard.phi_key_destroy('pii', 1)");
my ($state, $err) = PhiGuardTest::sql_error($coord, 'postgres',
	"SELECT phi_guard.phi_decrypt(ssn, 'pat.ssn:' || id) FROM pat WHERE tenant = 't2' AND id = 2");
isnt($state, '', 'a value of the destroyed version no longer decrypts on the workers');
unlike($err, qr/ssn-2/, 'and its error shows no plaintext');
for my $n ($coord, @$workers)
{
	is($n->safe_psql('postgres',
			"SELECT count(*) FILTER (WHERE wrapped_key IS NOT NULL) || '/' || count(*)
			   FROM phi_guard.keys WHERE name = 'pii' AND version = 1"),
		'0/1', 'the destroyed key is gone from the copy on ' . $n->name);
	is($n->safe_psql('postgres', "SELECT pg_relation_size('phi_guard.keys')"),
		'0', 'and nothing was ever left in the table itself on ' . $n->name);
}
is($coord->safe_psql('postgres',
		"SELECT phi_guard.phi_decrypt(ssn, 'pat.ssn:' || id) FROM pat WHERE tenant = 't1' AND id = 1001"),
	'new', 'version 2 still decrypts');

# --- one master key everywhere: phi_check_config checks it --------------
is($coord->safe_psql('postgres',
		"SELECT count(*) FROM phi_guard.phi_check_config() WHERE value LIKE 'node %'"),
	'0', 'phi_check_config: every worker holds the coordinator\'s master key');
my $other = write_key_file(PostgreSQL::Test::Utils::tempdir, 'other.key', random_hex() . "\n", 0600);
restart_with($w2, preload => 'citus,phi_guard', file => $other);
my $w2name = '127.0.0.1:' . $w2->port;
is($coord->safe_psql('postgres',
		"SELECT value || ' / ' || risk FROM phi_guard.phi_check_config() WHERE value LIKE 'node %'"),
	"node $w2name: a different master key / high",
	'phi_check_config names the worker whose master key differs');
($state) = PhiGuardTest::sql_error($w2, 'postgres',
	"SELECT phi_guard.phi_encrypt('x', 'pii')");
isnt($state, '', 'that worker cannot open the keys (it fails, it writes nothing wrong)');
my $own_key = write_key_file(PostgreSQL::Test::Utils::tempdir, 'same.key', "$key_hex\n", 0600);
restart_with($w2, preload => 'citus,phi_guard', file => $own_key);
is($coord->safe_psql('postgres',
		"SELECT count(*) FROM phi_guard.phi_check_config() WHERE value LIKE 'node %'"),
	'0', 'with the same key again, no finding');

$_->stop for ($coord, @$workers);
done_testing();
