# Helpers shared by phi_guard's TAP tests.
package PhiGuardTest;

use strict;
use warnings;
use Exporter 'import';

our @EXPORT = qw(random_hex write_key_file);

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

1;
