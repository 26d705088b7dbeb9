# 008_upgrade.pl — ALTER EXTENSION phi_guard UPDATE with data in place.
#
# A database created with phi_guard 0.1.0 and used (keys rotated and one
# version destroyed, encrypted text and bytea with aad, a blind index,
# tokens, an audited table with sealed blocks and an unsealed entry) is
# updated to the default version: the ciphertext is untouched and still
# decrypts, tokens detokenize, the blind index finds rows, the audit chain
# verifies (also against the digest taken before) and sealing goes on; the
# update writes no audit entry; the 0.2.0 functions work on the old data
# (a registered context key, phi_protect_table on the pre-existing table).
# A fresh CREATE EXTENSION in another database gives the very same objects
# as the updated one: extension members, functions with their definitions,
# settings, security and privileges, relations and columns, triggers,
# policies, event triggers, dumped configuration tables and the built-in
# rows.  pg_extension_update_paths shows the path 0.1.0 -> 0.2.0.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PhiGuardTest;

my $keydir   = PostgreSQL::Test::Utils::tempdir;
my $key_file = write_key_file($keydir, 'master.key', random_hex() . "\n", 0600);

my $node = PostgreSQL::Test::Cluster->new('upgrade');
$node->init(extra => [ '--encoding=UTF8', '--locale=C' ]);
$node->append_conf('postgresql.conf',
	phi_guard_conf($key_file, "phi_guard.audit_seal_interval = '1h'"));
$node->start;

sub sql_error
{
	my ($db, $sql) = @_;
	my ($out, $err) = ('', '');
	$node->psql($db, "\\set VERBOSITY verbose\n$sql", stdout => \$out, stderr => \$err);
	my ($state) = $err =~ /ERROR:\s+([0-9A-Z]{5}):/;
	return $state // '';
}

my $default_version = $node->safe_psql('postgres',
	"SELECT default_version FROM pg_available_extensions WHERE name = 'phi_guard'");
is($default_version, '0.2.0', 'the default version is 0.2.0');
is( $node->safe_psql(
		'postgres', q{SELECT string_agg(source || '>' || target || '=' || coalesce(path, '-'), ',' ORDER BY source, target)
  FROM pg_extension_update_paths('phi_guard')}),
	'0.1.0>0.2.0=0.1.0--0.2.0,0.2.0>0.1.0=-',
	'pg_extension_update_paths: 0.1.0 -> 0.2.0, and no way back');

# ---------------------------------------------------------------------
# 0.1.0 with data
# ---------------------------------------------------------------------

$node->safe_psql('postgres', <<'EOS');
CREATE ROLE regress_owner LOGIN;
CREATE ROLE regress_app LOGIN;
CREATE DATABASE upg;
CREATE DATABASE fresh;
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
	$default_version, 'ALTER EXTENSION UPDATE reaches the default version');
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
# a fresh install has the same objects as the updated one
# ---------------------------------------------------------------------

$node->safe_psql('fresh', 'CREATE EXTENSION phi_guard');
is($node->safe_psql('fresh', "SELECT extversion FROM pg_extension WHERE extname = 'phi_guard'"),
	$default_version, 'a fresh install is at the default version');

my %catalog_q = (
	'extension members' => q{SELECT pg_describe_object(classid, objid, objsubid) FROM pg_depend
	  WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
	    AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'phi_guard') ORDER BY 1},
	'functions' => q{SELECT p.oid::regprocedure || ' ' || p.prokind::text || p.provolatile::text || p.proparallel::text
	    || ' strict=' || p.proisstrict || ' secdef=' || p.prosecdef || ' leakproof=' || p.proleakproof
	    || ' returns ' || p.prorettype::regtype || coalesce(' args ' || pg_get_function_arguments(p.oid), '')
	    || ' lang ' || l.lanname || ' config ' || coalesce(p.proconfig::text, '-')
	    || ' acl ' || coalesce(p.proacl::text, '-') || ' src ' || md5(p.prosrc) || ' bin ' || coalesce(p.probin, '-')
	    || ' cost ' || p.procost || ' rows ' || p.prorows
	  FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
	  WHERE p.pronamespace = 'phi_guard'::regnamespace ORDER BY 1},
	'function comments' => q{SELECT p.oid::regprocedure || ': ' || coalesce(obj_description(p.oid, 'pg_proc'), '-')
	  FROM pg_proc p WHERE p.pronamespace = 'phi_guard'::regnamespace ORDER BY 1},
	'relations' => q{SELECT c.relname || ' ' || c.relkind::text || ' rls=' || c.relrowsecurity || c.relforcerowsecurity
	    || ' acl ' || coalesce(c.relacl::text, '-') || ' opts ' || coalesce(c.reloptions::text, '-')
	    || ' comment ' || coalesce(obj_description(c.oid, 'pg_class'), '-')
	  FROM pg_class c WHERE c.relnamespace = 'phi_guard'::regnamespace ORDER BY 1},
	'columns' => q{SELECT c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
	    || ' notnull=' || a.attnotnull || ' identity=' || a.attidentity::text || ' collation=' || a.attcollation::regcollation
	    || ' default ' || coalesce(pg_get_expr(d.adbin, d.adrelid), '-') || ' acl ' || coalesce(a.attacl::text, '-')
	  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
	  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
	  WHERE c.relnamespace = 'phi_guard'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped ORDER BY 1},
	'constraints and indexes' => q{SELECT conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
	  FROM pg_constraint WHERE connamespace = 'phi_guard'::regnamespace
	  UNION ALL SELECT pg_get_indexdef(indexrelid) FROM pg_index
	  WHERE indrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'phi_guard'::regnamespace) ORDER BY 1},
	'views' => q{SELECT c.relname || ': ' || pg_get_viewdef(c.oid) FROM pg_class c
	  WHERE c.relnamespace = 'phi_guard'::regnamespace AND c.relkind::text = 'v' ORDER BY 1},
	'triggers' => q{SELECT t.tgrelid::regclass || ' ' || t.tgname || ' ' || t.tgenabled::text || ' ' || pg_get_triggerdef(t.oid)
	  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
	  WHERE c.relnamespace = 'phi_guard'::regnamespace AND NOT t.tgisinternal ORDER BY 1},
	'policies' => q{SELECT p.polrelid::regclass || ' ' || p.polname FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
	  WHERE c.relnamespace = 'phi_guard'::regnamespace ORDER BY 1},
	'event triggers' => q{SELECT e.evtname || ' ' || e.evtevent || ' ' || e.evtfoid::regprocedure || ' ' || e.evtenabled::text
	    || ' ' || coalesce(e.evttags::text, '-') FROM pg_event_trigger e ORDER BY 1},
	'types and casts' => q{SELECT t.typname || ' ' || t.typtype::text || t.typstorage::text || ' ' || t.typinput::regproc || ' ' || t.typoutput::regproc
	  FROM pg_type t WHERE t.typnamespace = 'phi_guard'::regnamespace AND t.typtype <> 'c'
	  UNION ALL SELECT 'cast ' || castsource::regtype || ' -> ' || casttarget::regtype || ' ' || castcontext::text || castmethod::text
	  FROM pg_cast WHERE castsource IN (SELECT oid FROM pg_type WHERE typnamespace = 'phi_guard'::regnamespace)
	     OR casttarget IN (SELECT oid FROM pg_type WHERE typnamespace = 'phi_guard'::regnamespace) ORDER BY 1},
	'operator classes' => q{SELECT opcname || ' ' || opcmethod::regclass FROM pg_opclass
	  WHERE opcnamespace = 'phi_guard'::regnamespace
	  UNION ALL SELECT opfname FROM pg_opfamily WHERE opfnamespace = 'phi_guard'::regnamespace ORDER BY 1},
	'schema' => q{SELECT nspname || ' ' || nspacl::text FROM pg_namespace WHERE nspname = 'phi_guard'},
	'dumped configuration' => q{SELECT c::regclass || ' ' || coalesce(e.extcondition[i], '-')
	  FROM pg_extension e, unnest(e.extconfig) WITH ORDINALITY AS u(c, i)
	  WHERE e.extname = 'phi_guard' ORDER BY 1},
	'built-in rows' => q{SELECT role || ' ' || permission FROM phi_guard.permission_defaults ORDER BY 1});

for my $k (sort keys %catalog_q)
{
	my $upg   = $node->safe_psql('upg',   $catalog_q{$k});
	my $fresh = $node->safe_psql('fresh', $catalog_q{$k});
	isnt($fresh, '', "fresh install: $k are listed") unless $k eq 'policies';
	my @u = split /\n/, $upg;
	my @f = split /\n/, $fresh;
	my %in_f = map { $_ => 1 } @f;
	my %in_u = map { $_ => 1 } @u;
	is_deeply(\@u, \@f, "updated and fresh install: the same $k")
	  or diag("only after the update:\n  " . join("\n  ", grep { !$in_f{$_} } @u)
		  . "\nonly in the fresh install:\n  " . join("\n  ", grep { !$in_u{$_} } @f));
}

# pg_dump of the schema agrees too (the extension's members are not dumped,
# so compare what is: the extension, its configuration and its privileges)
my @dumps = map {
	my $d = `pg_dump -h @{[ $node->host ]} -p @{[ $node->port ]} --schema-only --schema=phi_guard $_`;
	$d =~ s/^(?:--|\\restrict |\\unrestrict ).*\n//mg;
	$d
} ('upg', 'fresh');
is($dumps[0], $dumps[1], 'pg_dump --schema-only of schema phi_guard is the same for both');

done_testing();
