# 012_guard_upgrade.pl — ALTER EXTENSION phi_guard UPDATE brings what 0.2.0
# protected and audited under the guard of 0.3.0 (src/guard, issue 11).
#
# 0.2.0 protected and audited a partitioned table's parent only, kept no
# registry of protected tables, and let the owner loosen the tenant wall or
# disable an audit trigger.  After the update: the partitioned table's
# partitions are protected and audited too, every protected table is in
# phi_guard.protected_tables, a loosened wall and a disabled audit trigger
# are restored (each named in a WARNING), and from then on the guard
# refuses to weaken any of them.  A table the update cannot bring under the
# guard (a protected partition of a table that is not protected, a wall
# loosened until it names no column) is named in a WARNING and left as
# 0.2.0 made it; the update does not fail.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PhiGuardTest;

my ($node) = phi_guard_node('guard_upgrade', conf => ["phi_guard.audit_seal_interval = '1h'"]);

$node->safe_psql('postgres', <<'EOS');
SET client_min_messages = error;
CREATE EXTENSION phi_guard VERSION '0.2.0';
-- a partitioned table, protected and audited by 0.2.0: the parent only
CREATE TABLE visits (id int, tenant text NOT NULL, PRIMARY KEY (tenant, id)) PARTITION BY LIST (tenant);
CREATE TABLE visits_a PARTITION OF visits FOR VALUES IN ('clinic-a');
CREATE TABLE visits_b PARTITION OF visits FOR VALUES IN ('clinic-b');
SELECT phi_guard.phi_protect_table('visits', 'tenant');
SELECT phi_guard.phi_audit_enable('visits');
-- a protected, audited table whose owner weakened both under 0.2.0
CREATE TABLE notes (id int PRIMARY KEY, tenant text NOT NULL);
SELECT phi_guard.phi_protect_table('notes', 'tenant');
SELECT phi_guard.phi_audit_enable('notes');
ALTER POLICY phi_guard_tenant ON notes USING (true);
-- (the 0.3.0 library already guards the audit triggers of a 0.2.0 schema,
-- whose registry of audited tables it knows: out of it for a moment, as
-- with the 0.2.0 library)
DELETE FROM phi_guard.audited_tables WHERE relid = 'notes'::regclass;
ALTER TABLE notes DISABLE TRIGGER phi_guard_audit_del;
INSERT INTO phi_guard.audited_tables (relid) VALUES ('notes');
-- a wall loosened so far that it names no tenant column any more
CREATE TABLE gone (id int PRIMARY KEY, tenant text NOT NULL);
SELECT phi_guard.phi_protect_table('gone', 'tenant');
ALTER POLICY phi_guard_tenant ON gone USING (true) WITH CHECK (true);
-- a protected partition of a table that is not protected
CREATE TABLE lone (id int, tenant text NOT NULL) PARTITION BY LIST (tenant);
CREATE TABLE lone_a PARTITION OF lone FOR VALUES IN ('clinic-a');
SELECT phi_guard.phi_protect_table('lone_a', 'tenant');
EOS

my ($out, $err) = ('', '');
my $rc = $node->psql('postgres', 'ALTER EXTENSION phi_guard UPDATE', stdout => \$out, stderr => \$err);
is($rc, 0, 'the update succeeds') or diag($err);
like($err, qr/WARNING:  the protection of public\.notes had been weakened; restored: the tenant policy's rule or roles/,
	'the update names and restores the loosened wall');
like($err, qr/WARNING:  the audit triggers of public\.notes had been removed or disabled; restored/,
	'the update names and restores the disabled audit trigger');
like($err, qr/WARNING:  protection of public\.lone_a left as it was: cannot protect public\.lone_a alone/,
	'the update names the partition it cannot guard');
like($err, qr/WARNING:  protection of public\.gone left as it was: its tenant policy does not read one column/,
	'the update names the table whose tenant column it cannot tell');

is( $node->safe_psql('postgres',
		q{SELECT string_agg(relid::text || ':' || tenant_column, ',' ORDER BY relid::text) FROM phi_guard.protected_tables}),
	'notes:tenant,visits:tenant,visits_a:tenant,visits_b:tenant',
	'protected tables and their partitions are registered, on their tenant column');
is( $node->safe_psql('postgres',
		q{SELECT string_agg(relid::text, ',' ORDER BY relid::text) FROM phi_guard.audited_tables}),
	'notes,visits,visits_a,visits_b',
	'the audited table\'s partitions are audited');
is( $node->safe_psql('postgres', q{
SELECT string_agg(c.relname || ':' || c.relrowsecurity || '/' || c.relforcerowsecurity
         || '/' || (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid)
         || '/' || (SELECT count(*) FROM pg_trigger t WHERE t.tgrelid = c.oid
                       AND t.tgfoid = 'phi_guard.audit_trigger()'::regprocedure AND t.tgenabled = 'O'),
       ',' ORDER BY c.relname)
  FROM pg_class c WHERE c.relname IN ('visits_a', 'visits_b', 'notes', 'lone_a')}),
	'lone_a:true/true/3/0,notes:true/true/3/4,visits_a:true/true/3/4,visits_b:true/true/3/4',
	'partitions have row security, forced, phi_guard\'s policies and enabled audit triggers');
like( $node->safe_psql('postgres',
		q{SELECT pg_get_expr(polqual, polrelid) FROM pg_policy WHERE polrelid = 'notes'::regclass AND polname = 'phi_guard_tenant'}),
	qr/^\(tenant = \( SELECT phi_guard\.phi_tenant_id\(\) AS phi_tenant_id\)\)$/,
	'the loosened wall has its rule again');

# from now on the guard holds them
fails_with($node, 'postgres', 'ALTER TABLE visits_a DISABLE ROW LEVEL SECURITY', '42501',
	'switching off row security of a partition');
fails_with($node, 'postgres', 'ALTER TABLE notes DISABLE TRIGGER phi_guard_audit_del', '42501',
	'disabling the restored audit trigger');
fails_with($node, 'postgres', 'DROP POLICY phi_guard_tenant ON visits_b', '42501',
	'dropping the wall of a partition');
# and the partition it could not guard is as 0.2.0 left it
is($node->safe_psql('postgres',
		q{ALTER TABLE lone_a NO FORCE ROW LEVEL SECURITY; SELECT relforcerowsecurity FROM pg_class WHERE relname = 'lone_a'}),
	'f', 'the partition named in the WARNING is not guarded');

done_testing();
