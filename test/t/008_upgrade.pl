# 008_upgrade.pl — ALTER EXTENSION phi_guard UPDATE with data in place, and
# a fresh install of the current version that gives the very same database.
#
# Scripts.  A fresh CREATE EXTENSION runs exactly one script, the current
# version's install script (phi_guard--0.3.0.sql, which make generates from
# the SQL pieces in src/); an update from 0.1.0 runs the update to 0.2.0,
# then the update to 0.3.0; 0.2.0, which has no install script, is
# installed by 0.1.0's and the update.  How it is seen: while a script
# runs, pg_extension shows the version that script installs (an install
# script's version, an update's target), so an event trigger that records
# that version for every command the scripts run records which scripts
# ran, in order.
#
# Data.  A database created with phi_guard 0.1.0 and used (keys rotated and
# one version destroyed, encrypted text and bytea with aad, a blind index,
# tokens, an audited table with sealed blocks and an unsealed entry) is
# updated to the default version: the ciphertext is untouched and still
# decrypts, tokens detokenize, the blind index finds rows, the audit chain
# verifies (also against the digest taken before) and sealing goes on; the
# update writes no audit entry; the 0.2.0 functions work on the old data (a
# registered context key, phi_protect_table on the pre-existing table).
#
# Same database.  The updated database is compared with a fresh install in
# a second cluster (roles are cluster-wide: there, the fresh install's own
# script creates them): the roles, the extension and its members, every
# function (arguments and defaults, result, volatility, parallel safety,
# strictness, security, settings, language, source), relations, columns
# and their defaults, constraints, indexes, sequences, views, triggers,
# policies, event triggers, types, casts, operator classes, comments,
# privileges and the extension's initial privileges (pg_init_privs), the
# dependencies between the objects, the configuration tables pg_dump keeps,
# the built-in rows, and pg_dump --schema-only of schema phi_guard.  Every
# difference is reported with the name of the object.

use strict;
use warnings;

use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PhiGuardTest;

my $current = '0.3.0';

my $keydir   = PostgreSQL::Test::Utils::tempdir;
my $key_file = write_key_file($keydir, 'master.key', random_hex() . "\n", 0600);

sub new_node
{
	my ($name) = @_;
	my $n = PostgreSQL::Test::Cluster->new($name);
	$n->init(extra => [ '--encoding=UTF8', '--locale=C' ]);
	$n->append_conf('postgresql.conf',
		phi_guard_conf($key_file, "phi_guard.audit_seal_interval = '1h'"));
	$n->start;
	return $n;
}
my $node  = new_node('upgrade');
my $fresh = new_node('fresh');

sub sql_error
{
	my ($db, $sql) = @_;
	my ($out, $err) = ('', '');
	$node->psql($db, "\\set VERBOSITY verbose\n$sql", stdout => \$out, stderr => \$err);
	my ($state) = $err =~ /ERROR:\s+([0-9A-Z]{5}):/;
	return $state // '';
}

# ---------------------------------------------------------------------
# versions and scripts
# ---------------------------------------------------------------------

is( $node->safe_psql(
		'postgres', "SELECT default_version FROM pg_available_extensions WHERE name = 'phi_guard'"),
	$current,
	"the default version is $current");
is( $node->safe_psql(
		'postgres', q{SELECT string_agg(version, ',' ORDER BY version)
  FROM pg_available_extension_versions WHERE name = 'phi_guard'}),
	'0.1.0,0.2.0,0.3.0',
	'0.1.0, 0.2.0 and 0.3.0 can be installed');
is( $node->safe_psql(
		'postgres', q{SELECT string_agg(source || '>' || target || '=' || coalesce(path, '-'), ',' ORDER BY source, target)
  FROM pg_extension_update_paths('phi_guard')}),
	'0.1.0>0.2.0=0.1.0--0.2.0,0.1.0>0.3.0=0.1.0--0.2.0--0.3.0,0.2.0>0.1.0=-,'
	  . '0.2.0>0.3.0=0.2.0--0.3.0,0.3.0>0.1.0=-,0.3.0>0.2.0=-',
	'pg_extension_update_paths: 0.1.0 -> 0.2.0 -> 0.3.0, and no way back');

# The probe: for each command a script runs, the version pg_extension shows
# at that moment, which is the version the running script installs.
my $probe = <<'EOS';
CREATE TABLE public.script_probe (n int GENERATED ALWAYS AS IDENTITY, version text);
CREATE FUNCTION public.script_probe() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO public.script_probe (version)
  SELECT (SELECT e.extversion FROM pg_extension e WHERE e.extname = 'phi_guard')
    FROM pg_event_trigger_ddl_commands() c WHERE c.in_extension;
END
$$;
CREATE EVENT TRIGGER script_probe ON ddl_command_end EXECUTE FUNCTION public.script_probe();
EOS

# Run $sql in database $db of $n under the probe; returns the scripts that
# ran, as the versions they install in order ("0.2.0>0.3.0"), and how many
# commands they ran.
sub scripts_run
{
	my ($n, $db, $sql) = @_;
	$n->safe_psql($db, "SET client_min_messages = warning;\nTRUNCATE public.script_probe;\n$sql");
	my ($versions, $commands) = split /\|/, $n->safe_psql(
		$db, q{SELECT coalesce(string_agg(v.version, '>' ORDER BY v.first), '-') || '|'
       || (SELECT count(*) FROM public.script_probe)
  FROM (SELECT coalesce(p.version, '?') AS version, min(p.n) AS first
          FROM public.script_probe p GROUP BY 1) v});
	return ($versions, $commands);
}

# In the second cluster, the fresh install: its script creates the roles.
$fresh->safe_psql('postgres', "CREATE DATABASE fresh;\nCREATE DATABASE probe;");
$fresh->safe_psql('fresh', "SET client_min_messages = warning;\nCREATE EXTENSION phi_guard");
is($fresh->safe_psql('fresh', "SELECT extversion FROM pg_extension WHERE extname = 'phi_guard'"),
	$current, 'a fresh install is at the default version');
is( $fresh->safe_psql(
		'fresh', q{SELECT coalesce(string_agg(p.oid::regprocedure::text, ', ' ORDER BY p.oid::regprocedure::text), '')
  FROM pg_proc p WHERE p.pronamespace = 'phi_guard'::regnamespace AND obj_description(p.oid, 'pg_proc') IS NULL}),
	'', 'fresh install: every function has a comment');

$fresh->safe_psql('probe', $probe);
my ($ran, $commands) = scripts_run($fresh, 'probe', 'CREATE EXTENSION phi_guard');
is($ran, $current, "a fresh CREATE EXTENSION runs one script: the $current install script");
cmp_ok($commands, '>', 100, 'the probe saw the install script\'s commands');

# without an install script of its own, 0.2.0 is installed by a chain: the
# probe sees it
$node->safe_psql('postgres', "CREATE DATABASE chain;\nCREATE DATABASE probe;");
$node->safe_psql('chain', $probe);
($ran, $commands) = scripts_run($node, 'chain', "CREATE EXTENSION phi_guard VERSION '0.2.0'");
is($ran, '0.1.0>0.2.0',
	'CREATE EXTENSION VERSION \'0.2.0\' runs the 0.1.0 install script, then the update to 0.2.0');

$node->safe_psql('probe', $probe);
($ran, $commands) = scripts_run($node, 'probe', "CREATE EXTENSION phi_guard VERSION '0.1.0'");
is($ran, '0.1.0', 'CREATE EXTENSION VERSION \'0.1.0\' runs the 0.1.0 install script');
($ran, $commands) = scripts_run($node, 'probe', 'ALTER EXTENSION phi_guard UPDATE');
is($ran, "0.2.0>$current",
	"ALTER EXTENSION UPDATE from 0.1.0 runs the update to 0.2.0, then the update to $current");

# ---------------------------------------------------------------------
# 0.1.0 with data
# ---------------------------------------------------------------------

$node->safe_psql('postgres', <<'EOS');
CREATE ROLE regress_owner LOGIN;
CREATE ROLE regress_app LOGIN;
CREATE DATABASE upg;
EOS

$node->safe_psql('upg', <<'EOS');
SET client_min_messages = warning;
CREATE EXTENSION phi_guard VERSION '0.1.0';
SELECT phi_guard.phi_key_create('pat');
SELECT phi_guard.phi_key_create('shred');
SELECT phi_guard.phi_token_domain_create('ssn', 'pat', 'ssn');
SELECT phi_guard.phi_token_domain_create('note', 'pat', 'opaque', false);

CREATE TABLE public.patients (
  id int PRIMARY KEY,
  tenant text NOT NULL,
  name phi_guard.phi_ciphertext NOT NULL,
  scan phi_guard.phi_ciphertext,
  mrn_bidx int8 NOT NULL,
  ssn_tok text NOT NULL,
  note_tok text NOT NULL,
  visits int NOT NULL DEFAULT 0
);
ALTER TABLE public.patients OWNER TO regress_owner;
SELECT phi_guard.phi_audit_enable('public.patients');

CREATE FUNCTION pg_temp.add(i int, t text, n text, mrn text, ssn text, note text) RETURNS void
LANGUAGE sql AS $$
  INSERT INTO public.patients (id, tenant, name, scan, mrn_bidx, ssn_tok, note_tok)
  VALUES (i, t, phi_guard.phi_encrypt(n, 'pat', 'patients.name:' || i),
          phi_guard.phi_encrypt('\x00ff00'::bytea || convert_to(n, 'UTF8'), 'pat', 'patients.scan:' || i),
          phi_guard.phi_blind_index(mrn, 'pat', 16),
          phi_guard.phi_tokenize(ssn, 'ssn'), phi_guard.phi_tokenize(note, 'note'))
$$;
SELECT pg_temp.add(1, 'clinic-a', 'Ada Lovelace', 'MRN-0001', '123-45-6789', 'allergic to penicillin');
SELECT pg_temp.add(2, 'clinic-b', 'Zoë Ünal', 'MRN-0002', '234-56-7890', 'asthma');
SELECT phi_guard.phi_key_rotate('pat');
SELECT pg_temp.add(3, 'clinic-a', 'Grace Hopper', 'MRN-0003', '345-67-8901', 'diabetes type 2');
UPDATE public.patients SET visits = 1 WHERE id = 3;

CREATE TABLE public.archive (id int PRIMARY KEY, ct phi_guard.phi_ciphertext);
INSERT INTO public.archive VALUES (1, phi_guard.phi_encrypt('gone forever', 'shred'));
SELECT phi_guard.phi_key_rotate('shred');
INSERT INTO public.archive VALUES (2, phi_guard.phi_encrypt('still here', 'shred'));
SELECT phi_guard.phi_key_destroy('shred', 1);
EOS

is($node->safe_psql('upg', "SELECT extversion FROM pg_extension WHERE extname = 'phi_guard'"),
	'0.1.0', 'installed as 0.1.0');
is($node->safe_psql('upg', q{SELECT to_regprocedure('phi_guard.phi_set_context(text)') IS NULL}),
	't', '0.1.0 has no phi_set_context');

my $plain_q = q{SELECT string_agg(id || ':' || phi_guard.phi_decrypt(name, 'patients.name:' || id)
       || ':' || encode(phi_guard.phi_decrypt_bytea(scan, 'patients.scan:' || id), 'hex')
       || ':' || phi_guard.phi_detokenize(ssn_tok, 'ssn')
       || ':' || phi_guard.phi_detokenize(note_tok, 'note'), '|' ORDER BY id)
  FROM public.patients};
my $plain_before = $node->safe_psql('upg', $plain_q);
like($plain_before, qr/^1:Ada Lovelace:00ff00416461.*:123-45-6789:allergic to penicillin\|2:/,
	'0.1.0: the values decrypt and detokenize');

cmp_ok(audit_seal_quiet($node, 'upg'), '>', 8, '0.1.0: entries sealed into a block');
$node->safe_psql('upg', 'UPDATE public.patients SET visits = visits + 1 WHERE id = 2');
my $digest = $node->safe_psql('upg', 'SELECT phi_guard.phi_audit_digest()');

my %fp_q = (
	ciphertext => q{SELECT md5(string_agg(id || ':' || encode(name::bytea, 'hex') || ':'
	                   || encode(scan::bytea, 'hex') || ':' || mrn_bidx || ':' || ssn_tok || ':'
	                   || note_tok, ',' ORDER BY id)) FROM public.patients},
	archive  => q{SELECT md5(string_agg(id || ':' || encode(ct::bytea, 'hex'), ',' ORDER BY id)) FROM public.archive},
	keys     => q{SELECT md5(string_agg(id || ':' || name || ':' || version || ':' || state || ':'
	                   || coalesce(encode(wrapped_key, 'hex'), '-'), ',' ORDER BY id)) FROM phi_guard.keys},
	vault    => q{SELECT md5(string_agg(domain || ':' || token || ':' || encode(value::bytea, 'hex'),
	                   ',' ORDER BY domain, token)) FROM phi_guard.token_vault},
	audit_log => q{SELECT count(*) || ':' || md5(string_agg(xid || ':' || id || ':' || record, ',' ORDER BY xid, id))
	                 FROM phi_guard.audit_log},
	audit_block => q{SELECT md5(string_agg(block_no || ':' || xid_hi || ':' || encode(block_hash, 'hex'),
	                   ',' ORDER BY block_no)) FROM phi_guard.audit_block});
my %fp_before = map { $_ => $node->safe_psql('upg', $fp_q{$_}) } keys %fp_q;

# ---------------------------------------------------------------------
# the update
# ---------------------------------------------------------------------

$node->safe_psql('upg', 'ALTER EXTENSION phi_guard UPDATE');
is($node->safe_psql('upg', "SELECT extversion FROM pg_extension WHERE extname = 'phi_guard'"),
	$current, 'ALTER EXTENSION UPDATE reaches the default version');
for my $k (sort keys %fp_q)
{
	is($node->safe_psql('upg', $fp_q{$k}), $fp_before{$k}, "after the update: $k unchanged");
}
is($node->safe_psql('upg', $plain_q), $plain_before,
	'after the update: every value decrypts and detokenizes as before');
is( $node->safe_psql(
		'upg', q{SELECT string_agg(id::text, ',') FROM public.patients
 WHERE mrn_bidx = phi_guard.phi_blind_index('MRN-0003', 'pat', 16)}),
	'3', 'after the update: the blind index finds the row');
is($node->safe_psql('upg', q{SELECT phi_guard.phi_tokenize('123-45-6789', 'ssn') =
                               (SELECT ssn_tok FROM public.patients WHERE id = 1)}),
	't', 'after the update: deterministic tokenization gives the same token');
is($node->safe_psql('upg', 'SELECT phi_guard.phi_decrypt(ct) FROM public.archive WHERE id = 2'),
	'still here', 'after the update: the surviving version decrypts');
is(sql_error('upg', 'SELECT phi_guard.phi_decrypt(ct) FROM public.archive WHERE id = 1'),
	'PH002', 'after the update: the destroyed version stays destroyed');
is(sql_error('upg', q{SELECT phi_guard.phi_decrypt(name, 'patients.name:2') FROM public.patients WHERE id = 1}),
	'PH001', 'after the update: the aad binding holds');

# the chain
is($node->safe_psql('upg', q{SELECT ok || '/' || blocks || '/' || coalesce(problem, '') FROM phi_guard.phi_audit_verify()}),
	'true/1/', 'after the update: the chain verifies');
is($node->safe_psql('upg', "SELECT ok || '/' || coalesce(problem, '') FROM phi_guard.phi_audit_verify('$digest'::jsonb)"),
	'true/', 'after the update: the digest taken before verifies');

# 0.2.0 on the old data: a context key, the old table protected
my $pem = `python3 test/context/sign_context.py pem k1`;
my $tok_a = `python3 test/context/sign_context.py token k1 sub=alice tenant=clinic-a roles=clinician exp=+1800`;
die 'sign_context.py failed' if $pem eq '' || $tok_a eq '';
$node->safe_psql('upg', <<"EOS");
SET client_min_messages = warning;
SELECT phi_guard.phi_context_key_add('k1', '$pem');
GRANT phi_app TO regress_owner, regress_app;
GRANT phi_decryptor TO regress_app;
GRANT SELECT ON public.patients TO regress_app;
SET ROLE regress_owner;
SELECT phi_guard.phi_protect_table('public.patients', 'tenant');
EOS
is( $node->safe_psql(
		'upg', q{SELECT relrowsecurity || '/' || relforcerowsecurity || '/'
  || (SELECT string_agg(polname, ',' ORDER BY polname) FROM pg_policy WHERE polrelid = 'public.patients'::regclass)
  FROM pg_class WHERE oid = 'public.patients'::regclass}),
	'true/true/phi_guard_break_glass,phi_guard_tenant,phi_guard_tenant_access',
	'after the update: phi_protect_table protects the pre-existing table');
is( $node->safe_psql(
		'upg', qq{SET ROLE regress_app;
SELECT count(*) FROM public.patients;
BEGIN;
SELECT phi_guard.phi_set_context('$tok_a');
SELECT phi_guard.phi_user_id() || '/' || phi_guard.phi_tenant_id() || '/' || phi_guard.phi_has_permission('patient.read');
SELECT string_agg(id || ':' || phi_guard.phi_decrypt(name, 'patients.name:' || id), ',' ORDER BY id) FROM public.patients;
COMMIT;}),
	"0\n\nalice/clinic-a/true\n1:Ada Lovelace,3:Grace Hopper",
	'after the update: a signed context shows its tenant\'s pre-existing rows, none without one');

# auditing goes on: the unsealed entry, the new ones
$node->safe_psql('upg', 'UPDATE public.patients SET visits = visits + 1 WHERE id = 1');
cmp_ok(audit_seal_quiet($node, 'upg'), '>=', 3, 'after the update: sealing continues');
is( $node->safe_psql('upg', q{SELECT ok || '/' || blocks || '/' || coalesce(problem, '') || '/'
      || (entries = (SELECT count(*) FROM phi_guard.audit_log)) FROM phi_guard.phi_audit_verify()}),
	'true/2//true', 'after the update: every entry is sealed and the chain verifies');
is( $node->safe_psql('upg', q{SELECT string_agg(e, ',' ORDER BY e) FROM (
  SELECT r->>'kind' || coalesce(' ' || (r->'detail'->>'command'), '')
      || coalesce(' ' || (r->'detail'->>'policy'), '') AS e
    FROM (SELECT xid, record::jsonb AS r FROM phi_guard.audit_log) l
   WHERE xid >= (SELECT min(xid) FROM phi_guard.audit_log WHERE record LIKE '%"kind":"context_key_add"%')
     AND r->>'kind' IN ('context_key_add', 'ddl')) x}),
	'context_key_add,ddl ALTER TABLE,ddl CREATE POLICY phi_guard_break_glass,'
	  . 'ddl CREATE POLICY phi_guard_tenant,ddl CREATE POLICY phi_guard_tenant_access',
	'after the update: the 0.2.0 entries are written (context key, row security and policies on an audited table)');

# ---------------------------------------------------------------------
# the updated database and the fresh install are the same
# ---------------------------------------------------------------------

# SQL: is object ($c, $o, $s) (class, oid, sub-id) phi_guard's - in schema
# phi_guard, a member of the extension, the schema or the extension itself?
sub ours
{
	my ($c, $o, $s) = @_;
	return qq{($o >= 16384 AND (pg_describe_object($c, $o, $s) ~ '\\mphi_guard\\.'
    OR ($c, $o) IN (SELECT d.classid, d.objid FROM pg_depend d
                     WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype::text = 'e'
                       AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'phi_guard'))
    OR ($c = 'pg_namespace'::regclass AND $o = 'phi_guard'::regnamespace)
    OR ($c = 'pg_extension'::regclass
        AND $o = (SELECT oid FROM pg_extension WHERE extname = 'phi_guard'))))};
}

# SQL: an ACL as text, its items sorted (their order carries no meaning);
# "default" for NULL (the built-in privileges).
sub acl
{
	my ($expr) = @_;
	return qq{CASE WHEN $expr IS NULL THEN 'default'
  ELSE coalesce((SELECT string_agg(a::text, ' ' ORDER BY a::text) FROM unnest($expr) a), 'none') END};
}

my $in_schema = q{'phi_guard'::regnamespace};

# name => [ query of (name, definition) pairs, may the list be empty ].
# Left out because they name objects by oid or vary by themselves: the
# internal triggers of foreign keys (RI_ConstraintTrigger_<oid>; the
# constraints are compared), and the pg_attver=<n> entry this server build
# writes into the attoptions of every new column.
my %catalog = (
	'roles' => [
		q{SELECT r.rolname, concat_ws(' ', 'super ' || r.rolsuper, 'inherit ' || r.rolinherit,
    'createrole ' || r.rolcreaterole, 'createdb ' || r.rolcreatedb, 'login ' || r.rolcanlogin,
    'replication ' || r.rolreplication, 'bypassrls ' || r.rolbypassrls,
    'connection limit ' || r.rolconnlimit, 'valid until ' || coalesce(r.rolvaliduntil::text, '-'),
    'settings ' || coalesce((SELECT s.setconfig::text FROM pg_db_role_setting s
                              WHERE s.setrole = r.oid AND s.setdatabase = 0), '-'),
    'member of ' || coalesce((SELECT string_agg(g.rolname || CASE WHEN m.admin_option THEN ' (admin)' ELSE '' END,
                                                ',' ORDER BY g.rolname)
                                FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
                               WHERE m.member = r.oid AND g.rolname LIKE 'phi\_%'), '-'),
    'comment ' || coalesce(shobj_description(r.oid, 'pg_authid'), '-'))
  FROM pg_roles r WHERE r.rolname LIKE 'phi\_%'}, 0 ],
	'extension' => [
		q{SELECT e.extname, concat_ws(' ', 'version ' || e.extversion, 'relocatable ' || e.extrelocatable,
    'schema ' || e.extnamespace::regnamespace, 'owner ' || e.extowner::regrole)
  FROM pg_extension e WHERE e.extname = 'phi_guard'}, 0 ],
	'extension members' => [
		q{SELECT pg_describe_object(d.classid, d.objid, d.objsubid), d.deptype::text FROM pg_depend d
  WHERE d.refclassid = 'pg_extension'::regclass
    AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'phi_guard')}, 0 ],
	'functions' => [
		qq{SELECT p.oid::regprocedure::text, concat_ws(E'\\n', 'kind ' || p.prokind::text, 'language ' || l.lanname,
    'arguments ' || pg_get_function_arguments(p.oid), 'result ' || pg_get_function_result(p.oid),
    'volatility ' || p.provolatile::text, 'parallel ' || p.proparallel::text, 'strict ' || p.proisstrict,
    'security definer ' || p.prosecdef, 'leakproof ' || p.proleakproof, 'cost ' || p.procost,
    'rows ' || p.prorows, 'support ' || p.prosupport::regproc, 'config ' || coalesce(p.proconfig::text, '-'),
    'owner ' || p.proowner::regrole, 'bin ' || coalesce(p.probin, '-'),
    'sql body ' || coalesce(pg_get_function_sqlbody(p.oid), '-'), 'source:', p.prosrc)
  FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang WHERE p.pronamespace = $in_schema}, 0 ],
	'relations' => [
		qq{SELECT c.oid::regclass::text, concat_ws(' ', 'kind ' || c.relkind::text, 'persistence ' || c.relpersistence::text,
    'access method ' || coalesce(am.amname, '-'), 'row security ' || c.relrowsecurity,
    'forced ' || c.relforcerowsecurity, 'replica identity ' || c.relreplident::text,
    'options ' || coalesce(c.reloptions::text, '-'), 'owner ' || c.relowner::regrole)
  FROM pg_class c LEFT JOIN pg_am am ON am.oid = c.relam WHERE c.relnamespace = $in_schema}, 0 ],
	'columns' => [
		qq{SELECT c.oid::regclass || '.' || a.attname, concat_ws(' ',
    'position ' || row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum),
    format_type(a.atttypid, a.atttypmod), 'not null ' || a.attnotnull,
    'default ' || coalesce(pg_get_expr(d.adbin, d.adrelid), '-'), 'identity ' || a.attidentity::text,
    'generated ' || a.attgenerated::text, 'collation ' || coalesce(a.attcollation::regcollation::text, '-'),
    'storage ' || a.attstorage::text, 'compression ' || a.attcompression::text, 'statistics ' || a.attstattarget,
    'options ' || coalesce((SELECT string_agg(o, ',' ORDER BY o) FROM unnest(a.attoptions) o
                             WHERE o NOT LIKE 'pg\\_attver=%'), '-'))
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
  WHERE c.relnamespace = $in_schema AND a.attnum > 0 AND NOT a.attisdropped}, 0 ],
	'constraints' => [
		qq{SELECT CASE WHEN c.conrelid <> 0 THEN c.conrelid::regclass::text ELSE c.contypid::regtype::text END
         || ' ' || c.conname,
    concat_ws(' ', 'type ' || c.contype::text, pg_get_constraintdef(c.oid), 'deferrable ' || c.condeferrable,
      'deferred ' || c.condeferred, 'validated ' || c.convalidated, 'no inherit ' || c.connoinherit)
  FROM pg_constraint c WHERE c.connamespace = $in_schema}, 0 ],
	'indexes' => [
		qq{SELECT i.indexrelid::regclass::text, concat_ws(' ', pg_get_indexdef(i.indexrelid),
    'primary ' || i.indisprimary, 'unique ' || i.indisunique, 'clustered ' || i.indisclustered,
    'replica identity ' || i.indisreplident, 'valid ' || i.indisvalid)
  FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid WHERE c.relnamespace = $in_schema}, 0 ],
	'sequences' => [
		qq{SELECT s.seqrelid::regclass::text, concat_ws(' ', format_type(s.seqtypid, NULL),
    'start ' || s.seqstart, 'increment ' || s.seqincrement, 'min ' || s.seqmin, 'max ' || s.seqmax,
    'cache ' || s.seqcache, 'cycle ' || s.seqcycle,
    'owned by ' || coalesce((SELECT d.refobjid::regclass || '.' || a.attname || ' (' || d.deptype::text || ')'
                               FROM pg_depend d
                               JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                              WHERE d.classid = 'pg_class'::regclass AND d.objid = s.seqrelid
                                AND d.refclassid = 'pg_class'::regclass AND d.refobjsubid > 0), '-'))
  FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid WHERE c.relnamespace = $in_schema}, 0 ],
	'views' => [
		qq{SELECT c.oid::regclass::text, pg_get_viewdef(c.oid, true) FROM pg_class c
  WHERE c.relnamespace = $in_schema AND c.relkind::text IN ('v', 'm')}, 0 ],
	'triggers' => [
		qq{SELECT t.tgrelid::regclass || ' ' || t.tgname, pg_get_triggerdef(t.oid) || ' enabled ' || t.tgenabled::text
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
  WHERE c.relnamespace = $in_schema AND NOT t.tgisinternal}, 0 ],
	'policies' => [
		q{SELECT p.tablename || ' ' || p.policyname, concat_ws(' ', p.permissive, p.roles::text, p.cmd,
    'using ' || coalesce(p.qual, '-'), 'check ' || coalesce(p.with_check, '-'))
  FROM pg_policies p WHERE p.schemaname = 'phi_guard'}, 1 ],
	'event triggers' => [
		q{SELECT e.evtname::text, concat_ws(' ', e.evtevent, e.evtfoid::regprocedure, 'enabled ' || e.evtenabled::text,
    'tags ' || coalesce(e.evttags::text, '-'), 'owner ' || e.evtowner::regrole)
  FROM pg_event_trigger e}, 0 ],
	'types' => [
		qq{SELECT t.oid::regtype::text, concat_ws(' ', 'type ' || t.typtype::text, 'length ' || t.typlen,
    'by value ' || t.typbyval, 'category ' || t.typcategory::text, 'preferred ' || t.typispreferred,
    'delimiter ' || t.typdelim::text, 'relation ' || t.typrelid::regclass, 'element ' || t.typelem::regtype,
    'array ' || t.typarray::regtype, 'input ' || t.typinput::oid::regprocedure,
    'output ' || t.typoutput::oid::regprocedure, 'receive ' || t.typreceive::oid::regprocedure,
    'send ' || t.typsend::oid::regprocedure, 'typmod in ' || t.typmodin::oid::regprocedure,
    'typmod out ' || t.typmodout::oid::regprocedure, 'analyze ' || t.typanalyze::oid::regprocedure,
    'subscript ' || t.typsubscript::oid::regprocedure, 'align ' || t.typalign::text,
    'storage ' || t.typstorage::text, 'not null ' || t.typnotnull, 'base ' || t.typbasetype::regtype,
    'typmod ' || t.typtypmod, 'collation ' || t.typcollation, 'default ' || coalesce(t.typdefault, '-'),
    'owner ' || t.typowner::regrole)
  FROM pg_type t WHERE t.typnamespace = $in_schema}, 0 ],
	'casts' => [
		qq{SELECT c.castsource::regtype || ' -> ' || c.casttarget::regtype,
    concat_ws(' ', 'function ' || c.castfunc::regprocedure, 'context ' || c.castcontext::text,
      'method ' || c.castmethod::text)
  FROM pg_cast c
  WHERE c.castsource IN (SELECT oid FROM pg_type WHERE typnamespace = $in_schema)
     OR c.casttarget IN (SELECT oid FROM pg_type WHERE typnamespace = $in_schema)}, 0 ],
	'operator classes and families' => [
		qq{SELECT 'class ' || c.opcname || ' for ' || am.amname,
    concat_ws(' ', 'type ' || c.opcintype::regtype, 'default ' || c.opcdefault,
      'family ' || f.opfname, 'storage ' || c.opckeytype::regtype)
  FROM pg_opclass c JOIN pg_am am ON am.oid = c.opcmethod JOIN pg_opfamily f ON f.oid = c.opcfamily
  WHERE c.opcnamespace = $in_schema
  UNION ALL
  SELECT 'family ' || f.opfname || ' for ' || am.amname,
    'operators ' || coalesce((SELECT string_agg(o.amopstrategy || ' ' || o.amopopr::regoperator || ' '
                                                || o.amoppurpose::text, ', '
                                                ORDER BY o.amopstrategy, o.amoplefttype, o.amoprighttype)
                                FROM pg_amop o WHERE o.amopfamily = f.oid), '-')
    || ' functions ' || coalesce((SELECT string_agg(p.amprocnum || ' ' || p.amproc::oid::regprocedure, ', '
                                                    ORDER BY p.amprocnum, p.amproclefttype, p.amprocrighttype)
                                    FROM pg_amproc p WHERE p.amprocfamily = f.oid), '-')
  FROM pg_opfamily f JOIN pg_am am ON am.oid = f.opfmethod WHERE f.opfnamespace = $in_schema}, 0 ],
	'comments' => [
		q{SELECT pg_describe_object(d.classoid, d.objoid, d.objsubid), d.description FROM pg_description d
  WHERE } . ours('d.classoid', 'd.objoid', 'd.objsubid'), 0 ],
	'privileges' => [
		q{SELECT 'schema phi_guard', } . acl('n.nspacl') . q{ FROM pg_namespace n WHERE n.nspname = 'phi_guard'
  UNION ALL
  SELECT pg_describe_object('pg_class'::regclass, c.oid, 0), } . acl('c.relacl') . qq{
    FROM pg_class c WHERE c.relnamespace = $in_schema
  UNION ALL
  SELECT pg_describe_object('pg_class'::regclass, a.attrelid, a.attnum), } . acl('a.attacl') . qq{
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
   WHERE c.relnamespace = $in_schema AND a.attnum > 0 AND NOT a.attisdropped AND a.attacl IS NOT NULL
  UNION ALL
  SELECT pg_describe_object('pg_proc'::regclass, p.oid, 0), } . acl('p.proacl') . qq{
    FROM pg_proc p WHERE p.pronamespace = $in_schema
  UNION ALL
  SELECT pg_describe_object('pg_type'::regclass, t.oid, 0), } . acl('t.typacl') . qq{
    FROM pg_type t WHERE t.typnamespace = $in_schema
  UNION ALL
  SELECT 'default privileges of ' || d.defaclrole::regrole || ' in '
         || coalesce(d.defaclnamespace::regnamespace::text, 'every schema') || ' on ' || d.defaclobjtype::text, }
		  . acl('d.defaclacl') . q{
    FROM pg_default_acl d}, 0 ],
	'initial privileges' => [
		q{SELECT pg_describe_object(i.classoid, i.objoid, i.objsubid), i.privtype::text || ' ' || }
		  . acl('i.initprivs') . q{ FROM pg_init_privs i WHERE }
		  . ours('i.classoid', 'i.objoid', 'i.objsubid'), 0 ],
	'dependencies' => [
		q{SELECT pg_describe_object(d.classid, d.objid, d.objsubid) || ' -> '
         || pg_describe_object(d.refclassid, d.refobjid, d.refobjsubid) || ' (' || d.deptype::text || ')',
         count(*)::text
  FROM pg_depend d WHERE } . ours('d.classid', 'd.objid', 'd.objsubid') . q{
    AND NOT EXISTS (SELECT FROM pg_trigger t WHERE d.classid = 'pg_trigger'::regclass
                       AND t.oid = d.objid AND t.tgisinternal)
  GROUP BY 1}, 0 ],
	'dumped configuration' => [
		q{SELECT u.c::regclass::text, coalesce(e.extcondition[u.i], '-')
  FROM pg_extension e, unnest(e.extconfig) WITH ORDINALITY AS u(c, i)
  WHERE e.extname = 'phi_guard'}, 0 ],
	'built-in rows' => [
		q{SELECT 'permission_defaults ' || d.role || ' ' || d.permission, 'row'
  FROM phi_guard.permission_defaults d}, 0 ]);

# name => definition from one of the catalog queries
sub catalog_map
{
	my ($n, $db, $sql) = @_;
	my $json = $n->safe_psql($db,
		"SELECT coalesce(json_agg(json_build_array(q.k, q.v) ORDER BY q.k), '[]') FROM ($sql) q(k, v)");
	my %m;
	for my $pair (@{ JSON::PP->new->decode($json) })
	{
		my ($k, $v) = @$pair;
		die "catalog query: an object without a name\n$sql" unless defined $k;
		die "catalog query: \"$k\" twice\n$sql" if exists $m{$k};
		$m{$k} = $v // '(null)';
	}
	return \%m;
}

# Each difference between the updated ($u) and the fresh ($f) map, by name;
# for a differing definition, its first differing line on both sides.
sub differences
{
	my ($u, $f) = @_;
	my %names = map { $_ => 1 } keys %$u, keys %$f;
	my @diffs;
	for my $k (sort keys %names)
	{
		if (!exists $f->{$k})
		{
			push @diffs, "only after the update: $k";
		}
		elsif (!exists $u->{$k})
		{
			push @diffs, "only in the fresh install: $k";
		}
		elsif ($u->{$k} ne $f->{$k})
		{
			my @ul = split /\n/, $u->{$k}, -1;
			my @fl = split /\n/, $f->{$k}, -1;
			my $i = 0;
			$i++ while $i < @ul && $i < @fl && $ul[$i] eq $fl[$i];
			push @diffs,
			  "differs: $k (line " . ($i + 1) . ")\n"
			  . '      updated: ' . ($ul[$i] // '(end)') . "\n"
			  . '      fresh:   ' . ($fl[$i] // '(end)');
		}
	}
	return @diffs;
}

for my $what (sort keys %catalog)
{
	my ($sql, $may_be_empty) = @{ $catalog{$what} };
	my $upg_map   = catalog_map($node,  'upg',   $sql);
	my $fresh_map = catalog_map($fresh, 'fresh', $sql);
	cmp_ok(scalar(keys %$fresh_map), '>', 0, "fresh install: the $what query finds something")
	  unless $may_be_empty;
	my @diffs = differences($upg_map, $fresh_map);
	ok(!@diffs, "updated and fresh install: the same $what")
	  or diag(join("\n", map { "  $_" } @diffs));
}

# pg_dump of the schema agrees too (the extension's members are not dumped:
# this is the schema itself and what pg_dump adds around it)
my @dumps;
for my $target ([ $node, 'upg' ], [ $fresh, 'fresh' ])
{
	my ($n, $db) = @$target;
	my ($out, $err) = run_command(
		[ 'pg_dump', '-h', $n->host, '-p', $n->port, '--schema-only', '--schema=phi_guard', $db ]);
	is($err, '', "pg_dump --schema-only of $db writes no error");
	$out =~ s/^(?:--|\\restrict |\\unrestrict ).*\n//mg;
	push @dumps, $out;
}
like($dumps[1], qr/^CREATE SCHEMA phi_guard;$/m, 'pg_dump --schema-only of the fresh install has the schema');
my @diffs = differences({ 'pg_dump --schema-only --schema=phi_guard' => $dumps[0] },
	{ 'pg_dump --schema-only --schema=phi_guard' => $dumps[1] });
ok(!@diffs, 'pg_dump --schema-only of schema phi_guard is the same for both')
  or diag(join("\n", @diffs));

done_testing();
