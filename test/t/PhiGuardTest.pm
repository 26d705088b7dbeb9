# PhiGuardTest - the set-up and helpers shared by phi_guard's TAP tests
# (test/t/*.pl): a cluster with phi_guard preloaded and a master key of its
# own, its phi_guard settings rewritten between restarts, the expected
# failure of a statement, and the independent audit verifier.  The tests
# run from the root of the tree (make installcheck and test/run-tests.sh
# put this folder on prove's include path).
package PhiGuardTest;

use strict;
use warnings;
use Exporter 'import';
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

our @EXPORT = qw(random_hex write_key_file phi_guard_conf phi_guard_node
  restart_with fails_with verify_audit_py audit_seal_quiet sign_context);
# on request (use PhiGuardTest qw(:DEFAULT sql_error)): a test may have its
# own sql_error
our @EXPORT_OK = qw(sql_error);

# test/context/sign_context.py with these arguments ('pem', kid or
# 'token', kid, claims...): its output without the final newline.
sub sign_context
{
	my @args = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'python3', 'test/context/sign_context.py', @args ],
		'<', \undef, '>', \$out, '2>', \$err)
	  or die "sign_context.py @args[0..1] failed: $err";
	chomp $out;
	return $out;
}

# 32 random bytes as 64 hexadecimal characters: a master key's text form.
sub random_hex
{
	open my $fh, '<:raw', '/dev/urandom' or die "/dev/urandom: $!";
	read($fh, my $bytes, 32) == 32 or die "short read from /dev/urandom";
	close $fh;
	return unpack('H*', $bytes);
}

# Write $text to "$dir/$name" with the given mode; return the path.
sub write_key_file
{
	my ($dir, $name, $text, $mode) = @_;
	my $path = "$dir/$name";
	open my $fh, '>', $path or die "could not write $path: $!";
	print $fh $text;
	close $fh;
	chmod($mode, $path) or die "could not chmod $path: $!";
	return $path;
}

# A postgresql.conf string literal.
sub quote_conf
{
	my ($v) = @_;
	$v =~ s/'/''/g;
	return "'$v'";
}

# postgresql.conf lines that preload phi_guard with the given master key
# file, followed by any extra lines.
sub phi_guard_conf
{
	my ($key_file, @extra) = @_;
	return join("\n",
		"shared_preload_libraries = 'phi_guard'",
		'phi_guard.master_key_file = ' . quote_conf($key_file), @extra)
	  . "\n";
}

# A new cluster $name that preloads phi_guard with a master key file of its
# own (mode 0600, in a fresh temporary folder), started unless start => 0.
# Options: key_hex (the master key; default a random one), utf8 => 1
# (initdb with UTF8 encoding and the C locale), init (more arguments of
# init, such as allows_streaming => 1), conf (a list of more
# postgresql.conf lines).  Returns ($node, $key_file).
sub phi_guard_node
{
	my ($name, %opt) = @_;
	my $key_file = write_key_file(PostgreSQL::Test::Utils::tempdir,
		'master.key', ($opt{key_hex} // random_hex()) . "\n", 0600);
	my $node = PostgreSQL::Test::Cluster->new($name);
	my @init = @{ $opt{init} // [] };
	push @init, extra => [ '--encoding=UTF8', '--locale=C' ] if $opt{utf8};
	$node->init(@init);
	$node->append_conf('postgresql.conf',
		phi_guard_conf($key_file, @{ $opt{conf} // [] }));
	$node->start if $opt{start} // 1;
	return ($node, $key_file);
}

# (Re)start $node with these phi_guard settings, which replace the previous
# ones: preload (shared_preload_libraries, default 'phi_guard'), file
# (phi_guard.master_key_file) and command (phi_guard.master_key_command),
# each empty when not given.  They are written to phi_guard_test.conf in
# the data directory, which postgresql.conf includes (the include is added
# on the first call).  Returns the log offset before the (re)start, so the
# caller can read this start's messages.
sub restart_with
{
	my ($node, %s) = @_;
	my $conf = $node->data_dir . '/phi_guard_test.conf';
	$node->append_conf('postgresql.conf', "include = 'phi_guard_test.conf'")
	  unless -e $conf;
	open my $fh, '>', $conf or die "could not write $conf: $!";
	print $fh 'shared_preload_libraries = '
	  . quote_conf($s{preload} // 'phi_guard') . "\n";
	print $fh 'phi_guard.master_key_file = ' . quote_conf($s{file} // '') . "\n";
	print $fh 'phi_guard.master_key_command = '
	  . quote_conf($s{command} // '') . "\n";
	close $fh;
	my $offset = -e $node->logfile ? -s $node->logfile : 0;
	if   ($node->{_pid}) { $node->restart; }
	else                 { $node->start; }
	return $offset;
}

# One test: $sql in database $db of $node fails with SQLSTATE $sqlstate
# (VERBOSITY verbose shows it); returns psql's stderr.
sub fails_with
{
	my ($node, $db, $sql, $sqlstate, $name) = @_;
	my ($out, $err) = ('', '');
	my $rc = $node->psql(
		$db, "\\set VERBOSITY verbose\n$sql",
		stdout => \$out,
		stderr => \$err);
	ok($rc != 0 && $err =~ /^(?:psql:\S+ )?ERROR:\s+\Q$sqlstate\E:/m,
		"$name: fails with SQLSTATE $sqlstate")
	  or diag("psql exit code $rc, stdout: $out, stderr: $err");
	return $err;
}

# Run $sql, which should fail, in database $db of $node; returns (its
# SQLSTATE, or '' when it did not fail with one, and psql's stderr).
sub sql_error
{
	my ($node, $db, $sql) = @_;
	my ($out, $err) = ('', '');
	$node->psql($db, "\\set VERBOSITY verbose\n$sql",
		stdout => \$out, stderr => \$err);
	my ($state) = $err =~ /ERROR:\s+([0-9A-Z]{5}):/;
	return ($state // '', $err);
}

# Run the independent verifier tools/verify_audit.py (cwd: the tree root)
# against database $dbname (default postgres) of $node, with extra
# arguments such as --json or --digest FILE; returns (exit code, stdout,
# stderr).
sub verify_audit_py
{
	my ($node, $dbname, @args) = @_;
	my $dsn =
	  'host=' . $node->host . ' port=' . $node->port . ' dbname=' . ($dbname // 'postgres');
	my ($out, $err) = ('', '');
	IPC::Run::run([ '/usr/bin/python3', 'tools/verify_audit.py', '--dsn', $dsn, @args ],
		'<', \undef, '>', \$out, '2>', \$err);
	return ($? >> 8, $out, $err);
}

# phi_audit_seal() on $node, once no backend other than client sessions
# (autovacuum's ANALYZE, the audit worker) holds an xid: such a transaction
# holds the sealing horizon back and would make the count sealed vary.
# One that starts after the check gets a newer xid than every entry so far.
# Returns the number of entries sealed.
sub audit_seal_quiet
{
	my ($node, $dbname) = @_;
	return $node->safe_psql($dbname // 'postgres', <<'EOS');
DO $$
BEGIN
  FOR i IN 1..1000 LOOP
    PERFORM pg_stat_clear_snapshot();
    EXIT WHEN NOT EXISTS (SELECT FROM pg_stat_activity
                           WHERE backend_xid IS NOT NULL AND backend_type <> 'client backend');
    PERFORM pg_sleep(0.01);
  END LOOP;
END
$$;
SELECT phi_guard.phi_audit_seal();
EOS
}

1;
