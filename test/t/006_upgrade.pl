# 006_upgrade.pl — a database audited under release 1.0 updates to 1.1 and
# on to 1.2 and 1.3 with one ALTER EXTENSION sensitive_audit UPDATE: its history comes through entry
# for entry and verifies, what is tagged stays tagged (tag_info, the
# tagged_columns view), every tagged table and partition gets 1.1's three
# capture triggers, and capture carries on under them, including the
# changes 1.0 could not see (a BEFORE trigger changing a tagged column in
# an UPDATE that does not name it).  The updated extension is the one
# CREATE EXTENSION installs.
#
# The 1.0 database is test/fixtures/sensitive_audit-1.0.sql, a plain pg_dump
# made by release 1.0: patients (ssn, diagnosis tagged) and the partitioned
# visits (note tagged; partitions visits_eu and visits_us), 13 entries in one
# chain.  It is loaded by psql into a database where the extension was
# created at version 1.0, as a 1.0 installation would have been restored.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

my $fixture = ($ENV{TESTDIR} // '.') . '/test/fixtures/sensitive_audit-1.0.sql';
ok(-f $fixture, "the 1.0 dump is there ($fixture)");

my $node = PostgreSQL::Test::Cluster->new('upgrade');
$node->init;
# reads of the log are recorded by default; this test counts entries, and reads are 013's subject
$node->append_conf(
	'postgresql.conf', q{
sensitive_audit.log_reads = off
shared_preload_libraries = 'sensitive_audit'
sensitive_audit.chains = 4
});
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE legacy');
$node->safe_psql('legacy', q{CREATE EXTENSION sensitive_audit VERSION '1.0'});
is($node->safe_psql('legacy', q{SELECT extversion FROM pg_extension WHERE extname = 'sensitive_audit'}),
	'1.0', 'CREATE EXTENSION ... VERSION 1.0 installs 1.0');

# The dump's CREATE EXTENSION IF NOT EXISTS is skipped; its CREATE SCHEMA
# fails (the extension made the schema) and must be its only error.
{
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'psql', '-X', '-q', '-f', $fixture, '-d', $node->connstr('legacy') ],
		'<', \undef, '>', \$out, '2>', \$err);
	note "psql loading the fixture exited with " . ($? >> 8) . ", stderr:\n$err";
	my @errors = map { s/^psql:[^:]*:\d+: //r } grep { /ERROR/ } split /\n/, $err;
	is( join("\n", @errors),
		'ERROR:  schema "sensitive_audit" already exists',
		'the 1.0 dump loads; its only error is the CREATE SCHEMA the extension already did');
}

# The log read in a session-independent rendering, every field.
my $log_rows = q{
SELECT chain, seq, txid, extract(epoch FROM event_time), operation, table_schema, table_name,
	   column_name, row_key::text, row_key_source, old_value, new_value, value_type,
	   session_role, effective_role, application_name, format('%s', client_addr),
	   backend_pid, encode(prev_hash, 'hex'), encode(hash, 'hex'), format
  FROM sensitive_audit.log ORDER BY chain, seq};
my $verify = q{
SELECT string_agg(chain || ':' || entries || ':' || ok || ':' || coalesce(problem, '-'), ' ' ORDER BY chain)
  FROM sensitive_audit.verify()};
my $tagged = q{
SELECT string_agg(table_schema || '.' || table_name || '.' || column_name || ' by ' || tagged_by, ','
				  ORDER BY table_name, column_name)
  FROM sensitive_audit.tagged_columns};

is($node->safe_psql('legacy', q{SELECT extversion FROM pg_extension WHERE extname = 'sensitive_audit'}),
	'1.0', '1.0: still version 1.0 after loading the dump');
is($node->safe_psql('legacy', 'SELECT count(*) FROM sensitive_audit.log'), '13', '1.0: the 13 entries of the dump');
is($node->safe_psql('legacy', $verify), '22:13:true:-', '1.0: its one chain verifies');
is($node->safe_psql('legacy', q{SELECT string_agg(nspname || '.' || relname, ',' ORDER BY relname)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	   WHERE relname IN ('patients', 'visits', 'visits_eu', 'visits_us')}),
	'public.patients,public.visits,public.visits_eu,public.visits_us', '1.0: the dump\'s tables are there');
my $log_before = $node->safe_psql('legacy', $log_rows);
# made in another database, so that legacy's log does not record it
$node->safe_psql('postgres', 'CREATE ROLE reader');
is($node->safe_psql('legacy', q{SELECT has_schema_privilege('reader', 'sensitive_audit', 'USAGE')}),
	't', '1.0: every role may use the schema sensitive_audit');

# ---------------------------------------------------------------------------
# The update.
$node->safe_psql('legacy', 'ALTER EXTENSION sensitive_audit UPDATE');
is($node->safe_psql('legacy', q{SELECT extversion FROM pg_extension WHERE extname = 'sensitive_audit'}),
	'1.3', 'ALTER EXTENSION sensitive_audit UPDATE brings it to 1.3, through 1.1 and 1.2');

# The 13 entries of 1.0, unchanged, and one more: the update itself.
is($node->safe_psql('legacy', 'SELECT count(*) FROM sensitive_audit.log'), '16',
	'1.1: the 13 entries of 1.0 and one for each update');
is( $node->safe_psql(
		'legacy', q{
SELECT operation || ' ' || table_schema || ' ' || new_value || ' ' || (session_role = current_user)
  FROM sensitive_audit.log WHERE operation NOT IN ('TAG', 'INSERT', 'UPDATE', 'DELETE') ORDER BY seq}),
	"EXTENSION UPDATE sensitive_audit 1.0 -> 1.1 true\nEXTENSION UPDATE sensitive_audit 1.1 -> 1.2 true\n"
	  . "EXTENSION UPDATE sensitive_audit 1.2 -> 1.3 true",
	'1.1: the updates are recorded, by whom');
(my $log_rows_1_0 = $log_rows) =~ s/ ORDER BY/ WHERE operation <> 'EXTENSION UPDATE' ORDER BY/;
is($node->safe_psql('legacy', $log_rows_1_0), $log_before, '1.1: every field of every 1.0 entry unchanged');
is($node->safe_psql('legacy', q{SELECT count(*) FILTER (WHERE NOT ok) || ':' || sum(entries) FROM sensitive_audit.verify()}),
	'0:16', '1.1: every chain verifies');
is($node->safe_psql('legacy', 'SELECT sensitive_audit.verify_or_raise()'), '16',
	'1.1: verify_or_raise() counts the 16 entries');

is($node->safe_psql('legacy', $tagged),
	'public.patients.diagnosis by postgres,public.patients.ssn by postgres,public.visits.note by postgres',
	'1.1: tagged_columns lists patients.ssn, patients.diagnosis and visits.note, tagged by whom 1.0 said');
is( $node->safe_psql(
		'legacy', q{
SELECT string_agg(tbl::text || '.' || column_name, ',' ORDER BY tbl::text, column_name)
  FROM sensitive_audit.tag_info}),
	'patients.diagnosis,patients.ssn,visits.note', '1.1: tag_info names the same columns');

is( $node->safe_psql(
		'legacy', q{
SELECT c.relname || ' ' || string_agg(t.tgname || ':' || t.tgenabled::text, ',' ORDER BY t.tgname)
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
 WHERE t.tgfoid IN ('sensitive_audit.capture()'::regprocedure, 'sensitive_audit.capture_truncate()'::regprocedure)
	OR t.tgname LIKE 'sensitive_audit%'
 GROUP BY c.relname ORDER BY c.relname}),
	join("\n",
		map { "$_ sensitive_audit_capture:A,sensitive_audit_capture_update:A,sensitive_audit_truncate:A" }
		  qw(patients visits visits_eu visits_us)),
	'1.1: the three capture triggers, ENABLE ALWAYS, on patients, visits and both partitions, and no other');
is( $node->safe_psql(
		'legacy', q{
SELECT string_agg(c.relname || ' ' || (t.tgqual IS NOT NULL) || ' ' || (cardinality(t.tgattr::int2[]) = 0), ','
				  ORDER BY c.relname)
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
 WHERE t.tgname = 'sensitive_audit_capture_update'}),
	'patients false false,visits false false,visits_eu false false,visits_us false false',
	'1.1: with no BEFORE UPDATE trigger, UPDATEs are captured by a trigger of their own with a column list');
is( $node->safe_psql(
		'legacy', q{
SELECT string_agg(c.relname || ' ' || (SELECT string_agg(a.attname, ',' ORDER BY a.attname)
										  FROM unnest(t.tgattr::int2[]) k JOIN pg_attribute a
											ON a.attrelid = t.tgrelid AND a.attnum = k), ' ' ORDER BY c.relname)
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
 WHERE t.tgname = 'sensitive_audit_capture_update'}),
	'patients diagnosis,id,ssn visits id,note,region visits_eu id,note,region visits_us id,note,region',
	'1.1: ... which lists the tagged columns and the row key');
is($node->safe_psql('legacy', q{SELECT has_schema_privilege('reader', 'sensitive_audit', 'USAGE')}),
	'f', '1.1: PUBLIC no longer has USAGE on the schema sensitive_audit');

# ---------------------------------------------------------------------------
# Capture under 1.1.  change() runs statements in one transaction and
# returns the entries that transaction recorded.  (Entries are found by
# their txid: the restored entries keep the txids of the cluster that wrote
# them, which may be above this cluster's, so "the latest txid" would not
# do.)
sub change
{
	my ($sql) = @_;
	my $txid = $node->safe_psql('legacy', "BEGIN; $sql; SELECT pg_current_xact_id(); COMMIT;");
	return $node->safe_psql(
		'legacy', qq{
SELECT string_agg(operation || ' ' || table_name || '.' || column_name || ' ' || row_key::text || ' '
				  || coalesce(old_value, '<null>') || ' -> ' || coalesce(new_value, '<null>'),
				  E'\n' ORDER BY column_name, row_key::text)
  FROM sensitive_audit.log WHERE txid = '$txid'});
}

is(change(q{UPDATE patients SET ssn = '111-11-1111' WHERE id = 1}),
	'UPDATE patients.ssn {"id": "1"} 123-45-6789 -> 111-11-1111',
	'1.1: an UPDATE of patients.ssn is captured');

is(change(q{UPDATE visits SET note = 'a2' WHERE id = 1}),
	'UPDATE visits_eu.note {"id": "1", "region": "eu"} a -> a2',
	'1.1: an UPDATE of visits.note in a row of partition visits_eu is captured');

is(change(q{INSERT INTO visits VALUES (3, 'eu', 'd')}),
	'INSERT visits_eu.note {"id": "3", "region": "eu"} <null> -> d',
	'1.1: an INSERT into visits, routed to partition visits_eu, is captured');
is(change('TRUNCATE visits_eu'),
	join("\n",
		'TRUNCATE visits_eu.note {"id": "1", "region": "eu"} a2 -> <null>',
		'TRUNCATE visits_eu.note {"id": "3", "region": "eu"} d -> <null>'),
	'1.1: TRUNCATE of partition visits_eu records a TRUNCATE entry per row');

# A BEFORE trigger that changes ssn when only name is updated: 1.0's trigger
# (UPDATE OF ssn, diagnosis) never fired for it; 1.1 compares the final row.
$node->safe_psql(
	'legacy', q{
CREATE FUNCTION public.rewrite_ssn() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	NEW.ssn := 'rewritten';
	RETURN NEW;
END $$;
CREATE TRIGGER rewrite_ssn BEFORE UPDATE OF name ON patients FOR EACH ROW EXECUTE FUNCTION public.rewrite_ssn();
});
is( $node->safe_psql(
		'legacy', q{
SELECT (t.tgqual IS NOT NULL) || ' ' || (cardinality(t.tgattr::int2[]) = 0)
  FROM pg_trigger t WHERE t.tgname = 'sensitive_audit_capture_update' AND t.tgrelid = 'patients'::regclass}),
	'true true', '1.1: with a BEFORE UPDATE trigger on the table, the UPDATE trigger compares the final row instead');
my $entries = change(q{UPDATE patients SET name = 'anne' WHERE id = 1});
is($node->safe_psql('legacy', q{SELECT name || ' ' || ssn FROM patients WHERE id = 1}),
	'anne rewritten', '1.1: the BEFORE trigger did change ssn');
is($entries,
	'UPDATE patients.ssn {"id": "1"} 111-11-1111 -> rewritten',
	'1.1: the change a BEFORE trigger made to ssn in an UPDATE of name only is captured');

is( $node->safe_psql(
		'legacy', q{
SELECT (SELECT bool_and(ok) FROM sensitive_audit.verify())
	   AND (SELECT sum(entries) FROM sensitive_audit.verify()) = (SELECT count(*) FROM sensitive_audit.log)
	   AND NOT EXISTS (SELECT FROM sensitive_audit.log GROUP BY chain
					   HAVING count(*) <> max(seq) OR min(seq) <> 1)
	   AND (SELECT count(*) FROM sensitive_audit.log) = 13 + 3 + 1 + 1 + 1 + 2 + 1}),
	't', '1.1: after the changes every chain verifies, runs 1..n without gaps, over 16 + 6 entries');

# 1.2: a log id, and checkpoints over the history 1.0 wrote
is($node->safe_psql('legacy', q{SELECT count(*) || ' ' || bool_and(log_id ~ '^[0-9a-f-]{36}$') FROM sensitive_audit.log_info}),
	'1 true', '1.2: the updated database has a log id');
my $body = $node->safe_psql('legacy', 'SELECT sensitive_audit.checkpoint_body()');
like($body, qr{^sensitive_audit/[0-9a-f-]{36}\n22\n[A-Za-z0-9+/]{43}=\n(chain \d+ \d+ [A-Za-z0-9+/]{43}=\n)+$},
	'1.2: checkpoint_body() covers the 22 entries, 1.0\'s included');
is($node->safe_psql('legacy', q{SELECT string_agg(chain || ' ' || max, ',' ORDER BY chain)
  FROM (SELECT chain, max(seq) FROM sensitive_audit.log_entries GROUP BY chain) c}),
	join(',', map { /^chain (\d+) (\d+) / ? "$1 $2" : () } split /\n/, $body),
	'1.2: one chain line per chain, with its size');
my $note = $body . "\n\x{2014} upgrade-test " . ('A' x 91) . "=\n";
utf8::encode($note);
$node->safe_psql('legacy', "SELECT sensitive_audit.add_checkpoint(\$n\$$note\$n\$)");
is($node->safe_psql('legacy', q{SELECT count(*) FILTER (WHERE NOT ok) || ':' || sum(entries) FROM sensitive_audit.verify()}),
	'0:22', '1.2: with a checkpoint stored, every chain verifies');

# 1.3: a column of 1.0's history protected from now on; format 1 and 2 side by side
$node->safe_psql('legacy', q{SELECT sensitive_audit.protect('patients', 'diagnosis', 'fingerprint')});
is(change(q{UPDATE patients SET diagnosis = 'healthy' WHERE id = 1}) =~ /^UPDATE patients\.diagnosis \{"id": "1"\} \S+ -> hmac-sha256:[0-9a-f]{64}$/ ? 1 : 0,
	1, '1.3: an UPDATE of a fingerprinted column of a 1.0 table is captured as a fingerprint');
is($node->safe_psql('legacy', q{SELECT string_agg(format::text || ':' || n, ',' ORDER BY format) FROM
  (SELECT format, count(*) AS n FROM sensitive_audit.log_entries GROUP BY format) f}),
	'1:24,2:1', '1.3: format 1 entries (1.0\'s among them, and the FINGERPRINT KEY entry) and a format 2 entry in one log');
is($node->safe_psql('legacy', q{SELECT count(*) FILTER (WHERE NOT ok) || ':' || sum(entries) FROM sensitive_audit.verify()}),
	'0:25', '1.3: every chain verifies, held to the checkpoint taken under 1.2');

# ---------------------------------------------------------------------------
# Both versions are available, and a new installation is 1.1 directly, the
# same extension as the updated one.
is( $node->safe_psql(
		'legacy', q{
SELECT string_agg(version || ':' || installed, ',' ORDER BY version)
  FROM pg_available_extension_versions WHERE name = 'sensitive_audit'}),
	'1.0:false,1.1:false,1.2:false,1.3:true', 'pg_available_extension_versions lists 1.0 to 1.3 (1.3 installed here)');

$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('fresh', 'CREATE EXTENSION sensitive_audit');
is($node->safe_psql('fresh', q{SELECT extversion FROM pg_extension WHERE extname = 'sensitive_audit'}),
	'1.3', 'CREATE EXTENSION sensitive_audit in another database installs 1.3');

my $members = q{
SELECT pg_describe_object(classid, objid, objsubid) FROM pg_depend
 WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'sensitive_audit')
 ORDER BY 1};
my $fresh_members = $node->safe_psql('fresh', $members);
like($fresh_members, qr/function sensitive_audit\.changed\("any"\)/, 'fresh: has 1.1\'s functions');
is($node->safe_psql('legacy', $members), $fresh_members, 'updated: the same member objects as a fresh 1.1');
my $guards = q{
SELECT tgrelid::regclass || ' ' || tgname || ' ' || tgenabled::text || ' ' || tgtype FROM pg_trigger
 WHERE tgrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'sensitive_audit'::regnamespace)
UNION ALL
SELECT 'event ' || evtname || ' ' || evtevent || ' ' || evtenabled::text || ' ' || coalesce(evttags::text, '')
  FROM pg_event_trigger
 ORDER BY 1};
is($node->safe_psql('legacy', $guards), $node->safe_psql('fresh', $guards),
	'updated: the same guards on the log and event triggers as a fresh 1.1');
is($node->safe_psql('fresh', q{SELECT has_schema_privilege('reader', 'sensitive_audit', 'USAGE')}),
	'f', 'fresh: PUBLIC has no USAGE on the schema sensitive_audit either');

$node->stop;
done_testing();
