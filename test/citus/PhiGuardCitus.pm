# PhiGuardCitus - the Citus cluster of phi_guard's Citus suite
# (test/citus/*.pl, run by test/run-tests.sh and make test-citus): a
# coordinator and workers that preload citus and phi_guard with one master
# key, listen on 127.0.0.1 (Citus connects between nodes over TCP) and a
# Unix socket, and are registered with each other; phi_guard is created on
# the coordinator (Citus creates it on the workers) and phi_citus_setup()
# makes its shared tables reference tables.
package PhiGuardCitus;

use strict;
use warnings;
use Exporter 'import';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use PhiGuardTest;
use Test::More;

our @EXPORT = qw(citus_cluster worker_of_shard app_psql);

# A started cluster: returns ($coordinator, [$worker1, ...], $key_hex).
# Options: workers (default 2), key_hex (the master key; default random).
sub citus_cluster
{
	my (%opt) = @_;
	my $key_hex = $opt{key_hex} // random_hex();
	my @nodes;
	for my $name ('coord', map { "worker$_" } 1 .. ($opt{workers} // 2))
	{
		my ($node) = phi_guard_node(
			$name,
			key_hex => $key_hex,
			start => 0,
			conf => [
				"shared_preload_libraries = 'citus,phi_guard'",
				"listen_addresses = '127.0.0.1'",
				'wal_level = logical',
				'max_prepared_transactions = 100',
				'max_connections = 100',
				"citus.local_hostname = '127.0.0.1'",
				'phi_guard.audit_seal_interval = 200',
			]);
		$node->append_conf('pg_hba.conf', "host all all 127.0.0.1/32 trust\n");
		$node->start;
		$node->safe_psql('postgres', 'CREATE EXTENSION citus');
		push @nodes, $node;
	}
	my ($coord, @workers) = @nodes;
	$coord->safe_psql('postgres',
		"SELECT citus_set_coordinator_host('127.0.0.1', " . $coord->port . ')');
	$coord->safe_psql('postgres',
		"SELECT citus_add_node('127.0.0.1', " . $_->port . ')')
	  for @workers;
	$coord->safe_psql('postgres', 'CREATE EXTENSION phi_guard');
	return ($coord, \@workers, $key_hex);
}

# The worker (from $workers) holding the shard of $table for $value of its
# distribution column.
sub worker_of_shard
{
	my ($coord, $workers, $table, $value) = @_;
	my $port = $coord->safe_psql('postgres',
		"SELECT nodeport FROM citus_shards WHERE shardid = "
		  . "get_shard_id_for_distribution_column('$table', '$value')");
	my ($w) = grep { $_->port == $port } @$workers;
	return $w;
}

# psql of $sql as role $role on $node; returns (exit code, stdout,
# stderr).
sub app_psql
{
	my ($node, $role, $sql) = @_;
	my ($out, $err) = ('', '');
	my $rc = $node->psql('postgres', $sql,
		stdout => \$out, stderr => \$err,
		extra_params => [ '-U', $role ]);
	return ($rc, $out, $err);
}

1;
