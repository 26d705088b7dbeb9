# Helpers shared by phi_guard's TAP tests.
package PhiGuardTest;

use strict;
use warnings;
use Exporter 'import';
use IPC::Run;

our @EXPORT =
  qw(random_hex write_key_file phi_guard_conf verify_audit_py audit_seal_quiet);

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

# postgresql.conf lines that preload phi_guard with the given master key
# file, followed by any extra lines.
sub phi_guard_conf
{
	my ($key_file, @extra) = @_;
	(my $quoted = $key_file) =~ s/'/''/g;
	return join("\n",
		"shared_preload_libraries = 'phi_guard'",
		"phi_guard.master_key_file = '$quoted'", @extra)
	  . "\n";
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
