# 017_alerts.pl — issue 14, alerts (SPEC §8): a client that LISTENs on
# phi_guard_alert receives each of the five kinds, raised by the audit
# worker's seals, as a JSON payload with exactly the keys kind, ts,
# db_user, app_user, tenant and detail (an object), and the view
# phi_guard.alerts holds the same alerts.
#
# - safeguard_changed: a context key registered;
# - bulk_disclosure: 6 values of one key in one statement with
#   alert_bulk_rows = 5 (4 values: none);
# - off_hours: a read outside alert_hours raises one alert per user and
#   hour however many reads follow; with alert_hours empty, none;
# - repeated_denials: 4 rejected context tokens with alert_denials = 3 (3:
#   none), counted although every one rolled its transaction back;
# - break_glass_open: under a clinician's context, without its reason.

use strict;
use warnings;

use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use PhiGuardTest;

# working hours that exclude the next two hours (UTC)
my @now = gmtime(time);
my $hours = sprintf('%02d:00-%02d:00', ($now[2] + 2) % 24, ($now[2] + 3) % 24);

my ($node) = phi_guard_node(
	'alerts',
	conf => [
		"phi_guard.audit_seal_interval = '200ms'",
		'phi_guard.alert_bulk_rows = 5',
		'phi_guard.alert_denials = 3',
		"phi_guard.alert_hours = '$hours'",
		"phi_guard.alert_timezone = 'UTC'",
		'log_statement = none' ]);

sub query { return $node->safe_psql('postgres', $_[0]); }


query('CREATE EXTENSION phi_guard');

my $listener = $node->background_psql('postgres');
$listener->query_safe('LISTEN phi_guard_alert');
my @got;	# every payload received so far, decoded

# Poll the listener until $done->() is true or $secs pass: psql prints
# the notifications that arrived before each query's result.
sub listen_until
{
	my ($done, $secs) = @_;
	for (my $i = 0; $i < $secs * 10; $i++)
	{
		my $out = $listener->query_safe('SELECT 1');
		while ($out =~ /Asynchronous notification "phi_guard_alert" with payload "(.*)" received from server process/g)
		{
			push @got, decode_json($1);
		}
		return 1 if $done->();
		usleep(100_000);
	}
	return 0;
}

sub of_kind { my ($k) = @_; return grep { $_->{kind} eq $k } @got; }

# wait for an alert of kind $k; returns it
sub expect_alert
{
	my ($k, $name) = @_;
	my $before = () = of_kind($k);
	ok(listen_until(sub { scalar(of_kind($k)) > $before }, 30), "$name: a $k alert arrives")
	  or return undef;
	return (of_kind($k))[-1];
}

# seal now (the worker may have already), then read what arrived
sub settle
{
	query('SELECT phi_guard.phi_audit_seal()');
	listen_until(sub { 0 }, 1);
}

sub well_formed
{
	my ($a, $name) = @_;
	is(join(',', sort keys %$a), 'app_user,db_user,detail,kind,tenant,ts',
		"$name: the payload has exactly the six keys");
	like($a->{ts}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/, "$name: ts is UTC ISO-8601");
	is(ref $a->{detail}, 'HASH', "$name: detail is an object");
	is(query("SELECT count(*) FROM phi_guard.alerts WHERE kind = '$a->{kind}' AND ts = '$a->{ts}'"),
		'1', "$name: the view holds it");
}

# ---- safeguard_changed: a context key added (the worker seals)
my $pem = sign_context('pem', 'al');
query("SELECT phi_guard.phi_context_key_add('al', '$pem')");
my $a = expect_alert('safeguard_changed', 'context key added');
well_formed($a, 'safeguard_changed');
is($a->{detail}{change} . '/' . $a->{detail}{kid}, 'context_key_add/al', 'it names the change and the kid');

# ---- bulk_disclosure (and the first off_hours of this role)
query(<<'EOS');
SELECT phi_guard.phi_key_create('al_key');
CREATE TABLE al_t (id int PRIMARY KEY, v phi_guard.phi_ciphertext);
INSERT INTO al_t SELECT g, phi_guard.phi_encrypt('value ' || g, 'al_key') FROM generate_series(1, 6) g;
EOS
query('SELECT count(phi_guard.phi_decrypt(v)) FROM al_t WHERE id <= 4');
settle();
is(scalar(of_kind('bulk_disclosure')), 0, 'bulk: 4 values, no alert');
query('SELECT count(phi_guard.phi_decrypt(v)) FROM al_t');
$a = expect_alert('bulk_disclosure', 'bulk');
well_formed($a, 'bulk_disclosure');
is($a->{detail}{values} . '/' . $a->{detail}{key}, '6/al_key', 'bulk: 6 values of al_key');

# ---- off_hours: one per user and hour
settle();
my @off = of_kind('off_hours');
is(scalar(@off), 1, 'off_hours: the reads of this hour made one alert');
well_formed($off[0], 'off_hours');
is($off[0]{app_user}, undef, 'off_hours: no app user (no context)');
my $yan = sign_context('token', 'al', 'sub=yan', 'tenant=t1', 'roles=clinician', 'exp=+600');
for (1 .. 2)
{
	query("BEGIN; SELECT phi_guard.phi_set_context('$yan'); SELECT phi_guard.phi_decrypt(v) IS NOT NULL FROM al_t WHERE id = 1; COMMIT");
}
settle();
@off = of_kind('off_hours');
is(join(',', map { $_->{app_user} // '-' } @off), '-,yan', 'off_hours: one more, for yan, after two reads');
is($off[1]{tenant}, 't1', 'off_hours: with the tenant');

$node->append_conf('postgresql.conf', "phi_guard.alert_hours = ''");
$node->reload;
usleep(500_000);
my $zoe = sign_context('token', 'al', 'sub=zoe', 'tenant=t1', 'roles=clinician', 'exp=+600');
query("BEGIN; SELECT phi_guard.phi_set_context('$zoe'); SELECT phi_guard.phi_decrypt(v) IS NOT NULL FROM al_t WHERE id = 1; COMMIT");
settle();
is(scalar(of_kind('off_hours')), 2, 'off_hours: none with alert_hours empty');

# ---- repeated_denials: rejected tokens, each in a transaction that fails
for (1 .. 3)
{
	my ($state) = PhiGuardTest::sql_error($node, 'postgres', "SELECT phi_guard.phi_set_context('bad.token.$_')");
	is($state, '28000', "bad token $_ refused");
}
settle();
is(scalar(of_kind('repeated_denials')), 0, 'denials: 3 refusals, no alert');
PhiGuardTest::sql_error($node, 'postgres', "SELECT phi_guard.phi_set_context('bad.token.4')");
$a = expect_alert('repeated_denials', 'denials');
well_formed($a, 'repeated_denials');
is($a->{detail}{denials} . '/' . $a->{detail}{last}, '4/context_rejected', 'denials: 4, the last a rejected token');

# ---- break_glass_open
my $cli = sign_context('token', 'al', 'sub=kim', 'tenant=t2', 'roles=clinician', 'exp=+600');
query("BEGIN; SELECT phi_guard.phi_set_context('$cli'); SELECT phi_guard.phi_break_glass('patient unconscious in the ER', 10); COMMIT");
$a = expect_alert('break_glass_open', 'break-glass');
well_formed($a, 'break_glass_open');
is("$a->{app_user}/$a->{tenant}/$a->{detail}{minutes}", 'kim/t2/10', 'break-glass: who, where, how long');
ok(!exists $a->{detail}{reason}, 'break-glass: the free-text reason stays out of the payload');

# every notification is a row of the view, and no more
is(query('SELECT count(*) FROM phi_guard.alerts'), scalar(@got), 'the view holds as many alerts as were sent');

$listener->quit;
$node->stop;
done_testing();
