# 001_dump_restore.pl — the audit history survives pg_dump -Fc / pg_restore
# into another cluster whose database runs under very different session
# settings, verifies there entry for entry, and capture carries on there in
# canonical form (DESIGN invariants 3 and 6).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# ---------------------------------------------------------------------------
# Source cluster: a table with columns of many types, some tagged, and a
# history written under one session's (unusual) settings.
my $src = PostgreSQL::Test::Cluster->new('source');
$src->init;
$src->append_conf('postgresql.conf', "sensitive_audit.chains = 4\n");
$src->start;

$src->safe_psql('postgres', 'CREATE DATABASE app');
$src->safe_psql(
	'app', q{
CREATE EXTENSION sensitive_audit;
CREATE TABLE public.items (
	id      integer PRIMARY KEY,
	label   text,
	amount  numeric(12,3),
	ratio   float8,
	seen_at timestamptz,
	span    interval,
	blob    bytea,
	doc     jsonb,
	marks   float8[],
	untracked text
);
SELECT sensitive_audit.tag('public.items', 'label', 'amount', 'ratio', 'seen_at',
						   'span', 'blob', 'doc', 'marks');
-- A partitioned table, tagged on the parent: partitions carry cloned row
-- triggers and TRUNCATE triggers of their own, all of which must survive.
CREATE TABLE public.events (id integer, region text, payload text, PRIMARY KEY (id, region))
	PARTITION BY LIST (region);
CREATE TABLE public.events_eu PARTITION OF public.events FOR VALUES IN ('eu');
SELECT sensitive_audit.tag('public.events', 'payload');
CREATE TABLE public.events_us PARTITION OF public.events FOR VALUES IN ('us');
INSERT INTO public.events VALUES (1, 'eu', 'p1'), (2, 'us', 'p2'), (3, 'us', 'p3');
});
is($src->safe_psql('app',
		q{SELECT count(*) FROM sensitive_audit.log WHERE table_name LIKE 'events%' AND operation = 'INSERT'}),
	'3', 'source: inserts into both partitions, including one created after tagging, captured');

# Every change is made under settings that make the default text output of
# each type look different from the canonical form.
my $weird_session = q{
SET TimeZone = 'America/St_Johns';
SET DateStyle = 'German, DMY';
SET IntervalStyle = 'postgres_verbose';
SET extra_float_digits = -2;
SET bytea_output = 'escape';
SET application_name = 'dump_restore_test';
};

$src->safe_psql(
	'app', $weird_session . q{
INSERT INTO items VALUES
  (1, 'alpha', 12.5, '-0', '2024-01-02 03:04:05+00', '1 year 2 months 3 days 04:05:06',
   '\xdeadbeef', '{"b": [1, 2], "a": null}', '{1.5,NULL,-0}', 'x'),
  (2, 'beta', NULL, 'Infinity', '1999-12-31 23:59:59.999999+00', '-1 day', '\x00',
   '{}', '{NULL,NULL}', 'y'),
  (3, 'gamma', 0.001, 0.1, '2000-02-29 12:00:00+05:30', '0', '', 'null', '{}', 'z');
BEGIN;
UPDATE items SET ratio = 0.1::float8 + 0.2::float8, span = '90 minutes' WHERE id = 3;
UPDATE items SET ratio = '-Infinity', seen_at = '2024-06-30 23:00:00+00' WHERE id = 1;
UPDATE items SET untracked = 'not audited' WHERE id = 2;
COMMIT;
DELETE FROM items WHERE id = 2;
UPDATE items SET label = 'ALPHA', blob = '\x0102' WHERE id = 1;
});

# The history as read back under the default settings of the test harness:
# 8 INSERT entries per row (24), 6 changed columns in UPDATEs (the UPDATE of
# an untagged column records nothing), 8 DELETE entries; TAG entries aside.
my $n_changes = $src->safe_psql('app',
	q{SELECT count(*) FROM sensitive_audit.log WHERE operation IN ('INSERT','UPDATE','DELETE') AND table_name = 'items'});
is($n_changes, 24 + 6 + 8, 'source: one entry per changed tagged column');

# Canonical values do not depend on the writer's session settings.
my $values = $src->safe_psql(
	'app', q{
SELECT column_name || '|' || coalesce(old_value, '<null>') || '|' || coalesce(new_value, '<null>')
  FROM sensitive_audit.log
 WHERE operation = 'INSERT' AND row_key = '{"id": "1"}'
 ORDER BY column_name});
is( $values,
	join("\n",
		'amount|<null>|12.500',
		'blob|<null>|\xdeadbeef',
		'doc|<null>|{"a": null, "b": [1, 2]}',
		'label|<null>|alpha',
		'marks|<null>|{1.5,NULL,-0}',
		'ratio|<null>|-0',
		'seen_at|<null>|2024-01-02T03:04:05+00:00',
		'span|<null>|P1Y2M3DT4H5M6S'),
	'source: INSERT values in canonical text, whatever the session settings');

$values = $src->safe_psql(
	'app', q{
SELECT row_key::text || '|' || column_name || '|' || coalesce(old_value, '<null>') || '|' || coalesce(new_value, '<null>')
  FROM sensitive_audit.log
 WHERE operation = 'UPDATE'
 ORDER BY txid, chain, seq});
is( $values,
	join("\n",
		'{"id": "3"}|ratio|0.1|0.30000000000000004',
		'{"id": "3"}|span|PT0S|PT1H30M',
		'{"id": "1"}|ratio|-0|-Infinity',
		'{"id": "1"}|seen_at|2024-01-02T03:04:05+00:00|2024-06-30T23:00:00+00:00',
		'{"id": "1"}|label|alpha|ALPHA',
		'{"id": "1"}|blob|\xdeadbeef|\x0102'),
	'source: UPDATE entries hold old and new canonical values of changed columns only');

$values = $src->safe_psql(
	'app', q{
SELECT column_name || '|' || coalesce(old_value, '<null>') || '|' || coalesce(new_value, '<null>')
  FROM sensitive_audit.log
 WHERE operation = 'DELETE' ORDER BY column_name});
is( $values,
	join("\n",
		'amount|<null>|<null>',
		'blob|\x00|<null>',
		'doc|{}|<null>',
		'label|beta|<null>',
		'marks|{NULL,NULL}|<null>',
		'ratio|Infinity|<null>',
		'seen_at|1999-12-31T23:59:59.999999+00:00|<null>',
		'span|P-1D|<null>'),
	'source: DELETE entries hold the old canonical values');

my $src_verify = $src->safe_psql('app',
	q{SELECT count(*) FILTER (WHERE ok) || '/' || count(*) || '/' || sum(entries) FROM sensitive_audit.verify()});
my $src_total = $src->safe_psql('app', 'SELECT count(*) FROM sensitive_audit.log');
my $src_chains = $src->safe_psql('app', 'SELECT count(DISTINCT chain) FROM sensitive_audit.log');
is($src_verify, "$src_chains/$src_chains/$src_total", 'source: every chain verifies');

# What must come through the dump unchanged: every hashed field, compared in
# a session-independent rendering.
my $log_rows = q{
SELECT chain, seq, txid, extract(epoch FROM event_time), operation, table_schema, table_name,
	   column_name, row_key::text, row_key_source, old_value, new_value, value_type,
	   session_role, effective_role, application_name, format('%s', client_addr),
	   backend_pid, encode(prev_hash, 'hex'), encode(hash, 'hex'), format
  FROM sensitive_audit.log ORDER BY chain, seq};
my $tagged_rows = q{
SELECT table_schema, table_name, column_name, column_type, partitioned,
	   extract(epoch FROM tagged_at), tagged_by
  FROM sensitive_audit.tagged_columns ORDER BY 1, 2, 3};
my $src_log = $src->safe_psql('app', $log_rows);
my $src_hashes = $src->safe_psql('app',
	q{SELECT chain, seq, encode(hash, 'hex') FROM sensitive_audit.log ORDER BY 1, 2});
my $src_tagged = $src->safe_psql('app', $tagged_rows);
# The shared fields live once per context in log_contexts; entries point to
# them by id, so the ids must come through too.
my $context_rows = q{
SELECT id, operation, table_schema, table_name, column_name, row_key_source, value_type,
	   session_role, effective_role, application_name, format('%s', client_addr)
  FROM sensitive_audit.log_contexts ORDER BY id};
my $src_contexts = $src->safe_psql('app', $context_rows);
cmp_ok($src->safe_psql('app', 'SELECT count(*) FROM sensitive_audit.log_contexts'),
	'<', $src_total, 'source: fewer contexts than entries (they are shared)');
is($src->safe_psql('app',
		q{SELECT string_agg(table_name || '.' || column_name, ',' ORDER BY table_name, column_name)
			FROM sensitive_audit.tagged_columns}),
	'events.payload,items.amount,items.blob,items.doc,items.label,items.marks,items.ratio,items.seen_at,items.span',
	'source: eight tagged columns of items, one of events (listed once, for the parent)');
my $fixed_settings = q{SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres';
SET extra_float_digits = 1; SET bytea_output = 'hex';
};
my $src_items = $src->safe_psql('app', $fixed_settings . 'SELECT * FROM items ORDER BY id');
my $trigger_rows = q{
SELECT tgrelid::regclass::text, tgname, tgenabled::text, tgtype
  FROM pg_trigger WHERE tgname LIKE 'sensitive_audit%' ORDER BY 1, 2};
my $src_triggers = $src->safe_psql('app', $trigger_rows);
is($src->safe_psql('app',
		q{SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'sensitive_audit%' AND tgenabled = 'A'}),
	'8', 'source: capture and TRUNCATE triggers on the table, the parent and both partitions, all ENABLE ALWAYS');

my $dump = $PostgreSQL::Test::Utils::tmp_check . '/app.dump';
$src->command_ok(
	[ 'pg_dump', '-Fc', '-f', $dump, '-d', $src->connstr('app') ],
	'pg_dump -Fc of the audited database');

# ---------------------------------------------------------------------------
# Target cluster, with databases whose settings differ from the source's in
# everything the canonical form must not depend on.
my $dst = PostgreSQL::Test::Cluster->new('target');
$dst->init;
$dst->append_conf('postgresql.conf', "sensitive_audit.chains = 3\n");
$dst->start;

for my $db ('restored', 'unguarded')
{
	$dst->safe_psql(
		'postgres', qq{
CREATE DATABASE $db;
ALTER DATABASE $db SET TimeZone = 'Pacific/Chatham';
ALTER DATABASE $db SET DateStyle = 'SQL, DMY';
ALTER DATABASE $db SET IntervalStyle = 'sql_standard';
ALTER DATABASE $db SET extra_float_digits = -3;
ALTER DATABASE $db SET bytea_output = 'escape';
});
}
is($dst->safe_psql('restored', 'SHOW TimeZone') . ' ' . $dst->safe_psql('restored', 'SHOW DateStyle'),
	'Pacific/Chatham SQL, DMY', 'target database runs under different settings');

# Without sensitive_audit.restoring the guards of the log's two tables
# (log_entries and log_contexts, behind the view sensitive_audit.log) refuse
# their data.
{
	my ($stdout, $stderr);
	my $rc = IPC::Run::run(
		[ 'pg_restore', '-d', $dst->connstr('unguarded'), $dump ],
		'>', \$stdout, '2>', \$stderr);
	ok(!$rc, 'pg_restore without sensitive_audit.restoring reports errors');
	like(
		$stderr,
		qr/the audit log is insert-only: INSERT on sensitive_audit\.log_entries is not allowed/,
		'... because log_entries refuses the INSERT of its data');
	like(
		$stderr,
		qr/the audit log is insert-only: INSERT on sensitive_audit\.log_contexts is not allowed/,
		'... and so does log_contexts');
	is($dst->safe_psql('unguarded',
			q{SELECT (SELECT count(*) FROM sensitive_audit.log) || '/'
				  || (SELECT count(*) FROM sensitive_audit.log_entries) || '/'
				  || (SELECT count(*) FROM sensitive_audit.log_contexts)}),
		'0/0/0', '... and the log there stays empty');
	for my $insert (
		q{INSERT INTO sensitive_audit.log_contexts (id, operation, session_role, effective_role)
			VALUES (1, 'INSERT', 'x', 'x')},
		q{INSERT INTO sensitive_audit.log_entries (chain, backend_pid, seq, txid, event_time, context,
												   format, prev_hash, hash)
			VALUES (0, 1, 1, '1', now(), 1, 1, '\x00', '\x00')},
		q{INSERT INTO sensitive_audit.log (chain, seq, txid, event_time, operation, session_role,
										   effective_role, backend_pid, prev_hash, hash, format)
			VALUES (0, 1, '1', now(), 'INSERT', 'x', 'x', 1, '\x00', '\x00', 1)})
	{
		my ($out, $err);
		my $rel = $insert =~ /INTO (\S+)/ ? $1 : '?';
		$dst->psql('unguarded', $insert, stdout => \$out, stderr => \$err);
		like($err, qr/insert-only: INSERT on \Q$rel\E is not allowed/, "a plain INSERT into $rel is refused");
	}
}

# With it, the restore goes through.
{
	local $ENV{PGOPTIONS} = '-c sensitive_audit.restoring=on';
	$dst->command_ok(
		[ 'pg_restore', '-d', $dst->connstr('restored'), $dump ],
		'pg_restore with sensitive_audit.restoring=on succeeds');
}

is($dst->safe_psql('restored', 'SELECT count(*) FROM sensitive_audit.log'),
	$src_total, 'target: as many log entries as the source');
is($dst->safe_psql('restored', $context_rows), $src_contexts,
	'target: the shared contexts as in the source, under the same ids');
is($dst->safe_psql('restored',
		q{SELECT chain, seq, encode(hash, 'hex') FROM sensitive_audit.log ORDER BY 1, 2}),
	$src_hashes, 'target: same (chain, seq, hash) as the source');
is($dst->safe_psql('restored', $log_rows), $src_log, 'target: every field of every entry as in the source');
is($dst->safe_psql('restored',
		q{SELECT count(*) FILTER (WHERE ok) || '/' || count(*) || '/' || sum(entries) FROM sensitive_audit.verify()}),
	"$src_chains/$src_chains/$src_total",
	'target: every chain verifies under the target database settings');
is($dst->safe_psql('restored', 'SELECT sensitive_audit.verify_or_raise()'),
	$src_total, 'target: verify_or_raise() counts every entry');
is($dst->safe_psql('restored', $tagged_rows), $src_tagged, 'target: tagged_columns as in the source');
is($dst->safe_psql('restored', $fixed_settings . 'SELECT * FROM items ORDER BY id'),
	$src_items, 'target: table data restored');
is($dst->safe_psql('restored',
		q{SELECT string_agg(tgname || ':' || tgenabled::text, ',' ORDER BY tgname) FROM pg_trigger WHERE tgrelid = 'public.items'::regclass}),
	'sensitive_audit_capture:A,sensitive_audit_truncate:A',
	'target: capture triggers restored, ENABLE ALWAYS');
is($dst->safe_psql('restored', $trigger_rows), $src_triggers,
	'target: the same capture and TRUNCATE triggers, in the same state, on every table and partition');

# Capture continues in the restored database, in canonical form whatever
# the database's settings.
$dst->safe_psql(
	'restored', q{
UPDATE items SET seen_at = '2024-01-02 03:04:05+00', ratio = 0.1::float8 + 0.2::float8,
				 span = '1 day 02:00:00', blob = '\xff00', marks = ARRAY[NULL, 1e100]::float8[],
				 untracked = 'u'
 WHERE id = 3;
});
my $new_rows = $dst->safe_psql(
	'restored', q{
SELECT column_name || '|' || old_value || '|' || new_value
  FROM sensitive_audit.log
 WHERE txid = (SELECT max(txid) FROM sensitive_audit.log) ORDER BY column_name});
is( $new_rows,
	join("\n",
		'blob|\x|\xff00',
		'marks|{}|{NULL,1e+100}',
		'seen_at|2000-02-29T06:30:00+00:00|2024-01-02T03:04:05+00:00',
		'span|PT1H30M|P1DT2H'),
	'target: new UPDATE captured with canonical old and new values');
# ratio did not change (0.1 + 0.2 again), so it must not have an entry.
is($dst->safe_psql('restored',
		q{SELECT count(*) FROM sensitive_audit.log WHERE txid = (SELECT max(txid) FROM sensitive_audit.log)}),
	'4', 'target: only the four columns that really changed have entries');

my $dst_total = $dst->safe_psql('restored', 'SELECT count(*) FROM sensitive_audit.log');
is($dst_total, $src_total + 4, 'target: four new entries');
my $dst_chains = $dst->safe_psql('restored', 'SELECT count(DISTINCT chain) FROM sensitive_audit.log');
is($dst->safe_psql('restored',
		q{SELECT count(*) FILTER (WHERE ok) || '/' || count(*) || '/' || sum(entries) FROM sensitive_audit.verify()}),
	"$dst_chains/$dst_chains/$dst_total",
	'target: every chain still verifies after new entries');
is($dst->safe_psql('restored',
		q{SELECT count(*) FROM (SELECT chain FROM sensitive_audit.log GROUP BY chain
			HAVING count(*) <> max(seq) OR min(seq) <> 1) gaps}),
	'0', 'target: every chain runs 1..n without gaps');

# Partitions of the restored tagged parent are captured, also in replica
# mode (triggers ENABLE ALWAYS) and on TRUNCATE of a single partition.
$dst->safe_psql(
	'restored', q{
SET session_replication_role = replica;
UPDATE events SET payload = 'p1 replica' WHERE id = 1;
RESET session_replication_role;
UPDATE events SET region = 'us' WHERE id = 1;
TRUNCATE events_us;
});
is( $dst->safe_psql(
		'restored', q{
SELECT string_agg(operation || ' ' || row_key::text || ' ' || coalesce(old_value, '<null>') || ' -> '
				  || coalesce(new_value, '<null>'), E'\n' ORDER BY operation, row_key::text)
  FROM sensitive_audit.log
 WHERE table_name LIKE 'events%' AND txid > (SELECT max(txid) FROM sensitive_audit.log WHERE table_name = 'items')}),
	join("\n",
		'DELETE {"id": "1", "region": "eu"} p1 replica -> <null>',
		'INSERT {"id": "1", "region": "us"} <null> -> p1 replica',
		'TRUNCATE {"id": "1", "region": "us"} p1 replica -> <null>',
		'TRUNCATE {"id": "2", "region": "us"} p2 -> <null>',
		'TRUNCATE {"id": "3", "region": "us"} p3 -> <null>',
		'UPDATE {"id": "1", "region": "eu"} p1 -> p1 replica'),
	'target: partitions captured after restore (replica mode, row movement, TRUNCATE of a partition)');
$dst_total = $dst->safe_psql('restored', 'SELECT count(*) FROM sensitive_audit.log');
is($dst->safe_psql('restored', 'SELECT sensitive_audit.verify_or_raise()'),
	$dst_total, 'target: verify_or_raise() after partition changes');

# The restored history also verifies in a session with yet other settings.
is($dst->safe_psql('restored',
		q{SET TimeZone = 'Asia/Kathmandu'; SET DateStyle = 'Postgres, MDY';
		  SET IntervalStyle = 'iso_8601'; SET extra_float_digits = 3; SET bytea_output = 'hex';
		  SET search_path = pg_catalog;
		  SELECT count(*) FILTER (WHERE NOT ok) FROM sensitive_audit.verify()}),
	'0', 'target: verifies under other session settings too');

$src->stop;
$dst->stop;
done_testing();
