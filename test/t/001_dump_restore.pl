# 001_dump_restore.pl — the audit history survives every way of dumping and
# restoring a database, with no setting at all: pg_dump to plain SQL loaded
# by psql, pg_dump -Fc and pg_restore, pg_dump -Fd and a parallel
# pg_restore --jobs=2, pg_restore --single-transaction, and pg_dumpall loaded
# into a fresh cluster by psql.  Each restore lands in a database whose
# session settings differ from the writer's, brings every entry with every
# field unchanged, verifies there, is itself recorded by one RESTORE entry
# that says how many entries it loaded, records nothing for the table rows
# it loads, leaves the capture triggers of the table, the partitioned table
# and its partitions in place, and capture carries on in canonical form
# (DESIGN invariants 3 and 6).
#
# Also: a log that already holds entries refuses a restore into it unless a
# superuser sets sensitive_audit.restoring, and once restored the log is
# insert-only again; a dump whose log data was edited restores, and
# verify() then reports the edited entry.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(usleep);

# No restore below may rely on a setting passed by the environment.
delete $ENV{PGOPTIONS};

# ---------------------------------------------------------------------------
# Source cluster: a table with columns of many types, some tagged, and a
# history written under one session's (unusual) settings.
my $src = PostgreSQL::Test::Cluster->new('source');
$src->init;
# Reads of the log are recorded by default (READ entries); the comparisons
# below read both sides many times, so they run with it off, and section (f)
# dumps and restores with it on.
$src->append_conf('postgresql.conf', "sensitive_audit.chains = 4\nsensitive_audit.log_reads = off\n");
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
  FROM sensitive_audit.log WHERE operation IS DISTINCT FROM 'RESTORE' ORDER BY chain, seq};
my $tagged_rows = q{
SELECT table_schema, table_name, column_name, column_type, partitioned,
	   extract(epoch FROM tagged_at), tagged_by
  FROM sensitive_audit.tagged_columns ORDER BY 1, 2, 3};
my $src_log = $src->safe_psql('app', $log_rows);
my $hash_rows = q{
SELECT chain, seq, encode(hash, 'hex') FROM sensitive_audit.log
 WHERE operation IS DISTINCT FROM 'RESTORE' ORDER BY 1, 2};
my $src_hashes = $src->safe_psql('app', $hash_rows);
my $src_tagged = $src->safe_psql('app', $tagged_rows);
# The shared fields live once per context in log_contexts; entries point to
# them by id, so the ids must come through too.
my $context_rows = q{
SELECT id, operation, table_schema, table_name, column_name, row_key_source, value_type,
	   session_role, effective_role, application_name, format('%s', client_addr)
  FROM sensitive_audit.log_contexts WHERE operation IS DISTINCT FROM 'RESTORE' ORDER BY id};
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
my $table_rows = $fixed_settings . q{
SELECT * FROM items ORDER BY id;
SELECT tableoid::regclass, * FROM events ORDER BY id};
my $src_tables = $src->safe_psql('app', $table_rows);
my $trigger_rows = q{
SELECT tgrelid::regclass::text, tgname, tgenabled::text, tgparentid <> 0, pg_get_triggerdef(oid)
  FROM pg_trigger WHERE tgname LIKE 'sensitive_audit%' ORDER BY 1, 2};
my $src_triggers = $src->safe_psql('app', $trigger_rows);
# Three triggers on each of items, events and both partitions of events:
# the capture of INSERT and DELETE, the capture of UPDATE and the TRUNCATE
# trigger, all ENABLE ALWAYS.
my $trigger_summary = q{
SELECT c.relname || ' ' || string_agg(t.tgname || ':' || t.tgenabled::text, ',' ORDER BY t.tgname)
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
 WHERE t.tgname LIKE 'sensitive_audit%'
 GROUP BY c.relname ORDER BY c.relname};
my $expected_triggers = join("\n",
	map { "$_ sensitive_audit_capture:A,sensitive_audit_capture_update:A,sensitive_audit_truncate:A" }
	  qw(events events_eu events_us items));
is($src->safe_psql('app', $trigger_summary), $expected_triggers,
	'source: the three capture triggers on the table, the parent and both partitions, all ENABLE ALWAYS');

is($src->safe_psql('app', q{SELECT count(*) FROM sensitive_audit.log WHERE operation = 'RESTORE'}),
	'0', 'source: no RESTORE entry (so the comparisons below leave out only the restores\' own)');
my $src_inserts = $src->safe_psql('app', q{SELECT count(*) FROM sensitive_audit.log WHERE operation = 'INSERT'});
my $src_chain_list = $src->safe_psql('app',
	q{SELECT string_agg(DISTINCT chain::text, ',') FROM sensitive_audit.log});
my $superuser = $src->safe_psql('app', 'SELECT current_user');

# ---------------------------------------------------------------------------
# The dumps, one per format.
my $dumps = $PostgreSQL::Test::Utils::tmp_check;
my %dump = (
	plain => "$dumps/app.sql",
	custom => "$dumps/app.dump",
	directory => "$dumps/app.dir",
	all => "$dumps/all.sql");
$src->command_ok([ 'pg_dump', '-f', $dump{plain}, '-d', $src->connstr('app') ],
	'pg_dump of the audited database to plain SQL');
$src->command_ok([ 'pg_dump', '-Fc', '-f', $dump{custom}, '-d', $src->connstr('app') ],
	'pg_dump -Fc of the audited database');
$src->command_ok([ 'pg_dump', '-Fd', '-f', $dump{directory}, '-d', $src->connstr('app') ],
	'pg_dump -Fd of the audited database');
$src->command_ok([ 'pg_dumpall', '-f', $dump{all}, '-d', $src->connstr('postgres') ],
	'pg_dumpall of the source cluster');

# Runs a client program; returns its exit status, stdout and stderr.  It
# runs under its own application_name (psql, pg_restore), as restores
# outside the test harness do, so that the RESTORE entry's is known.
sub run_client
{
	my @cmd = @_;
	my ($out, $err) = ('', '');
	local $ENV{PGAPPNAME};
	delete $ENV{PGAPPNAME};
	IPC::Run::run(\@cmd, '<', \undef, '>', \$out, '2>', \$err);
	my $rc = $? >> 8;
	note join(' ', @cmd) . " exited with $rc" . ($err ne '' ? ", stderr:\n$err" : '');
	return ($rc, $out, $err);
}

# ---------------------------------------------------------------------------
# Target cluster, preloading the library (chain heads in shared memory,
# which restores must leave consistent), with another number of chains, and
# databases whose settings differ from the source's in everything the
# canonical form must not depend on.
my $dst = PostgreSQL::Test::Cluster->new('target');
$dst->init;
$dst->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'sensitive_audit'
sensitive_audit.chains = 7
sensitive_audit.log_reads = off
});
$dst->start;

sub create_database
{
	my ($node, $db) = @_;
	$node->safe_psql(
		'postgres', qq{
CREATE DATABASE $db;
ALTER DATABASE $db SET TimeZone = 'Pacific/Chatham';
ALTER DATABASE $db SET DateStyle = 'SQL, DMY';
ALTER DATABASE $db SET IntervalStyle = 'sql_standard';
ALTER DATABASE $db SET extra_float_digits = -3;
ALTER DATABASE $db SET bytea_output = 'escape';
});
}

create_database($dst, $_) for qw(plain custom parallel single occupied tampered);
is($dst->safe_psql('custom', 'SHOW TimeZone') . ' ' . $dst->safe_psql('custom', 'SHOW DateStyle'),
	'Pacific/Chatham SQL, DMY', 'target databases run under different settings');

# A query's output, or why it failed: a restore that went wrong must fail
# the checks below, not end the test.
sub query
{
	my ($node, $db, $sql) = @_;
	my ($out, $err) = ('', '');
	my $rc = $node->psql($db, $sql, stdout => \$out, stderr => \$err, on_error_stop => 1);
	return $rc == 0 ? $out : "query failed: $err";
}

# What every restore must have brought, and how capture carries on after it.
# $how names the restore in test names; $client and $role are the
# application_name and the role the RESTORE entry records (by default the
# superuser the test runs as).
sub check_restored
{
	my ($node, $db, $how, $client, $role) = @_;
	$role //= $superuser;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $total = $src_total + 1;

	is(query($node, $db, 'SELECT count(*) FROM sensitive_audit.log'),
		$total, "$how: the source's $src_total entries and one more");
	is( query(
			$node, $db, q{
SELECT string_agg(concat_ws(' ', table_schema, table_name, column_name, row_key, old_value, new_value,
							session_role, effective_role, application_name), E'\n')
  FROM sensitive_audit.log WHERE operation = 'RESTORE'}),
		"sensitive_audit log_entries $src_total entries $role $role $client",
		"$how: one RESTORE entry, saying how many entries were loaded and who loaded them");
	is(query($node, $db, $hash_rows), $src_hashes, "$how: same (chain, seq, hash) as the source");
	is(query($node, $db, $log_rows), $src_log, "$how: every field of every entry as in the source");
	is(query($node, $db, $context_rows), $src_contexts,
		"$how: the shared contexts as in the source, under the same ids");
	is(query($node, $db, q{SELECT count(*) FROM sensitive_audit.log WHERE operation = 'INSERT'}),
		$src_inserts, "$how: loading the tables' rows recorded no INSERT entry");
	my $chains = query($node, $db, 'SELECT count(DISTINCT chain) FROM sensitive_audit.log');
	is(query($node, $db,
			q{SELECT count(*) FILTER (WHERE ok) || '/' || count(*) || '/' || sum(entries) FROM sensitive_audit.verify()}),
		"$chains/$chains/$total", "$how: every chain verifies, over all $total entries");
	is(query($node, $db, $tagged_rows), $src_tagged, "$how: tagged_columns as in the source");
	is(query($node, $db, $trigger_summary), $expected_triggers,
		"$how: the three capture triggers, ENABLE ALWAYS, on the table, the partitioned table and each partition");
	is(query($node, $db, $trigger_rows), $src_triggers, "$how: the same trigger definitions as in the source");
	is(query($node, $db, $table_rows), $src_tables, "$how: table data restored");

	# Capture carries on: a tagged column of the table and one of a partition.
	query(
		$node, $db, qq{
UPDATE items SET label = 'ALPHA $how' WHERE id = 1;
UPDATE events SET payload = 'p2 $how' WHERE id = 2;
});
	is( query(
			$node, $db, qq{
SELECT string_agg(table_name || '.' || column_name || ' ' || old_value || ' -> ' || new_value, E'\n'
				  ORDER BY table_name)
  FROM sensitive_audit.log WHERE operation = 'UPDATE' AND new_value LIKE '% $how'}),
		"events_us.payload p2 -> p2 $how\nitems.label ALPHA -> ALPHA $how",
		"$how: UPDATEs of a tagged column and of a partition's after the restore are captured");
	is( query(
			$node, $db, q{
SELECT (SELECT bool_and(ok) FROM sensitive_audit.verify())
	   AND (SELECT sum(entries) FROM sensitive_audit.verify()) = (SELECT count(*) FROM sensitive_audit.log)
	   AND NOT EXISTS (SELECT FROM sensitive_audit.log GROUP BY chain
					   HAVING count(*) <> max(seq) OR min(seq) <> 1)}),
		't', "$how: after them every chain still verifies, every entry, and runs 1..n without gaps");
}

# ---------------------------------------------------------------------------
# (a) Plain SQL, loaded by psql the way a dump is meant to be: stop at the
# first error.
{
	my ($rc, $out, $err) = run_client('psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', $dump{plain},
		'-d', $dst->connstr('plain'));
	is($rc, 0, 'plain: psql -v ON_ERROR_STOP=1 loads the dump, exit status 0');
	unlike($err, qr/ERROR/, 'plain: ... without any error');
	check_restored($dst, 'plain', 'plain', 'psql');
}

# (b) Custom format, pg_restore.
{
	my ($rc, $out, $err) = run_client('pg_restore', '-d', $dst->connstr('custom'), $dump{custom});
	is($rc, 0, 'custom: pg_restore of the -Fc dump, exit status 0');
	check_restored($dst, 'custom', 'custom', 'pg_restore');
}

# (c) Directory format, parallel pg_restore: the log's two tables may load
# in two sessions at once, in either order.
{
	my ($rc, $out, $err) = run_client('pg_restore', '--jobs=2', '-d', $dst->connstr('parallel'), $dump{directory});
	is($rc, 0, 'parallel: pg_restore --jobs=2 of the -Fd dump, exit status 0');
	check_restored($dst, 'parallel', 'parallel', 'pg_restore');
}

# (d) The whole restore in one transaction.
{
	my ($rc, $out, $err) =
	  run_client('pg_restore', '--single-transaction', '-d', $dst->connstr('single'), $dump{custom});
	is($rc, 0, 'single: pg_restore --single-transaction, exit status 0');
	check_restored($dst, 'single', 'single', 'pg_restore');
}

# ---------------------------------------------------------------------------
# More on one restored database: values, partitions, the guards.

# Runs statements in one transaction; returns its txid, by which the
# entries it recorded are found.  (Not "the latest txid": restored entries
# keep the txids of the cluster that wrote them, which may be above the
# target cluster's.)
sub change
{
	my ($node, $db, $sql) = @_;
	return $node->safe_psql($db, "BEGIN; $sql; SELECT pg_current_xact_id(); COMMIT;");
}

# Capture continues in canonical form whatever the database's settings.
my $before = $dst->safe_psql('custom', 'SELECT count(*) FROM sensitive_audit.log');
my $txid = change(
	$dst, 'custom', q{
UPDATE items SET seen_at = '2024-01-02 03:04:05+00', ratio = 0.1::float8 + 0.2::float8,
				 span = '1 day 02:00:00', blob = '\xff00', marks = ARRAY[NULL, 1e100]::float8[],
				 untracked = 'u'
 WHERE id = 3});
is( $dst->safe_psql(
		'custom', qq{
SELECT column_name || '|' || old_value || '|' || new_value
  FROM sensitive_audit.log WHERE txid = '$txid' ORDER BY column_name}),
	join("\n",
		'blob|\x|\xff00',
		'marks|{}|{NULL,1e+100}',
		'seen_at|2000-02-29T06:30:00+00:00|2024-01-02T03:04:05+00:00',
		'span|PT1H30M|P1DT2H'),
	'custom: new UPDATE captured with canonical old and new values');
# ratio did not change (0.1 + 0.2 again), so it must not have an entry.
is($dst->safe_psql('custom', 'SELECT count(*) FROM sensitive_audit.log') - $before,
	4, 'custom: only the four columns that really changed have entries');

# Partitions of the restored tagged parent are captured, also in replica
# mode (triggers ENABLE ALWAYS) and on TRUNCATE of a single partition.
$txid = change(
	$dst, 'custom', q{
SET LOCAL session_replication_role = replica;
UPDATE events SET payload = 'p1 replica' WHERE id = 1;
SET LOCAL session_replication_role = origin;
UPDATE events SET region = 'us' WHERE id = 1;
TRUNCATE events_us});
is( $dst->safe_psql(
		'custom', qq{
SELECT string_agg(operation || ' ' || row_key::text || ' ' || coalesce(old_value, '<null>') || ' -> '
				  || coalesce(new_value, '<null>'), E'\n' ORDER BY operation, row_key::text)
  FROM sensitive_audit.log WHERE txid = '$txid'}),
	join("\n",
		'DELETE {"id": "1", "region": "eu"} p1 replica -> <null>',
		'INSERT {"id": "1", "region": "us"} <null> -> p1 replica',
		'TRUNCATE {"id": "1", "region": "us"} p1 replica -> <null>',
		'TRUNCATE {"id": "2", "region": "us"} p2 custom -> <null>',
		'TRUNCATE {"id": "3", "region": "us"} p3 -> <null>',
		'UPDATE {"id": "1", "region": "eu"} p1 -> p1 replica'),
	'custom: partitions captured after restore (replica mode, row movement, TRUNCATE of a partition)');
my $dst_total = $dst->safe_psql('custom', 'SELECT count(*) FROM sensitive_audit.log');
is($dst->safe_psql('custom', 'SELECT sensitive_audit.verify_or_raise()'),
	$dst_total, 'custom: verify_or_raise() counts every entry after the changes');

# The restored history also verifies in a session with yet other settings.
is($dst->safe_psql('custom',
		q{SET TimeZone = 'Asia/Kathmandu'; SET DateStyle = 'Postgres, MDY';
		  SET IntervalStyle = 'iso_8601'; SET extra_float_digits = 3; SET bytea_output = 'hex';
		  SET search_path = pg_catalog;
		  SELECT count(*) FILTER (WHERE NOT ok) || '/' || sum(entries) FROM sensitive_audit.verify()}),
	"0/$dst_total", 'custom: verifies under other session settings too');

# Once the log holds entries it is insert-only again, for its owner too.
for my $insert (
	q{INSERT INTO sensitive_audit.log_contexts (id, operation, session_role, effective_role)
		VALUES (1, 'INSERT', 'x', 'x')},
	q{INSERT INTO sensitive_audit.log_entries (chain, backend_pid, seq, txid, event_time, context,
											   format, prev_hash, hash)
		VALUES (0, 1, 1000, '1', now(), 1, 1, '\x00', '\x00')},
	q{INSERT INTO sensitive_audit.log (chain, seq, txid, event_time, operation, session_role,
									   effective_role, backend_pid, prev_hash, hash, format)
		VALUES (0, 1000, '1', now(), 'INSERT', 'x', 'x', 1, '\x00', '\x00', 1)})
{
	my ($out, $err);
	my $rel = $insert =~ /INTO (\S+)/ ? $1 : '?';
	$dst->psql('custom', $insert, stdout => \$out, stderr => \$err);
	like($err, qr/insert-only: INSERT on \Q$rel\E is not allowed/,
		"custom: after the restore a plain INSERT into $rel is refused");
}
is($dst->safe_psql('custom', 'SELECT count(*) FROM sensitive_audit.log'),
	$dst_total, 'custom: ... and the log is unchanged');

# ---------------------------------------------------------------------------
# A restored database dumped and restored again (in parallel): its RESTORE
# entry comes through like any other, and the second restore's RESTORE
# entry shares the context of the first (same operation, client and roles).
{
	my $again_dump = "$dumps/custom.dir";
	$dst->command_ok([ 'pg_dump', '-Fd', '-f', $again_dump, '-d', $dst->connstr('custom') ],
		'again: pg_dump -Fd of a restored database');
	my $custom_hashes = $dst->safe_psql('custom', q{SELECT chain, seq, encode(hash, 'hex') FROM sensitive_audit.log ORDER BY 1, 2});
	create_database($dst, 'again');
	my ($rc, $out, $err) = run_client('pg_restore', '--jobs=2', '-d', $dst->connstr('again'), $again_dump);
	is($rc, 0, 'again: pg_restore --jobs=2 of it, exit status 0');
	is( $dst->safe_psql(
			'again', q{
SELECT string_agg(new_value, ',' ORDER BY new_value DESC) || ' ' || count(DISTINCT context)
  FROM sensitive_audit.log WHERE operation = 'RESTORE'}),
		"$dst_total entries,$src_total entries 1",
		'again: two RESTORE entries, the first restore\'s and its own, sharing one context');
	is( $dst->safe_psql(
			'again', q{
SELECT chain, seq, encode(hash, 'hex') FROM sensitive_audit.log
 WHERE operation IS DISTINCT FROM 'RESTORE' OR new_value <> '} . $dst_total . q{ entries' ORDER BY 1, 2}),
		$custom_hashes, 'again: every entry of the restored database, unchanged');
	is($dst->safe_psql('again',
			q{SELECT count(*) FILTER (WHERE NOT ok) || '/' || sum(entries) FROM sensitive_audit.verify()}),
		'0/' . ($dst_total + 1), 'again: every chain verifies');

	# The race a parallel restore of it can run into, ordered by hand: the
	# load of log_entries commits slowly, its RESTORE entry's context (the
	# one the dump holds too, from the first restore) stored but not yet
	# committed, when the load of log_contexts starts.  That load waits for
	# it and then skips its copy of the context, rather than fail on the key.
	create_database($dst, 'again2');
	my ($prc) = run_client('pg_restore', '--section=pre-data', '-d', $dst->connstr('again2'), $again_dump);
	is($prc, 0, 'again, by hand: the schema restored');
	my %part;
	for my $t (qw(log_entries log_contexts))
	{
		$part{$t} = "$dumps/again2.$t.sql";
		my ($rc) = run_client('pg_restore', '--data-only', '-t', $t, '-f', $part{$t}, $again_dump);
		is($rc, 0, "again, by hand: the data of $t extracted");
	}
	my ($a_out, $a_err) = ('', '');
	my $slow = IPC::Run::start(
		[ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-c', 'SET sensitive_audit.test_link_delay = 3000',
			'-f', $part{log_entries}, '-d', $dst->connstr('again2') . ' application_name=pg_restore' ],
		'<', \undef, '>', \$a_out, '2>', \$a_err);
	# until it sleeps in its commit, the context stored
	$dst->poll_query_until('postgres',
		q{SELECT count(*) = 1 FROM pg_stat_activity WHERE datname = 'again2' AND wait_event_type = 'Extension'})
	  or diag 'the load of log_entries never reached its commit';
	my ($brc, $b_out, $b_err) = run_client('psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', $part{log_contexts},
		'-d', $dst->connstr('again2') . ' application_name=pg_restore');
	my $slow_ok = $slow->finish;
	note "the load of log_entries: $a_err";
	ok($slow_ok, 'again, by hand: the load of log_entries commits');
	is($brc, 0, 'again, by hand: the load of log_contexts meanwhile succeeds');
	unlike($b_err, qr/ERROR/, 'again, by hand: ... without a duplicate key');
	is($dst->safe_psql('again2',
			q{SELECT count(*) FILTER (WHERE NOT ok) || '/' || sum(entries) FROM sensitive_audit.verify()}),
		'0/' . ($dst_total + 1), 'again, by hand: every chain verifies');
}

# ---------------------------------------------------------------------------
# A log that already holds entries refuses a restore into it, unless a
# superuser sets sensitive_audit.restoring.  The database's own entry is
# written in a chain the source does not use, so that the restored chains
# cannot collide with it once the restore is allowed.
$dst->safe_psql(
	'occupied', q{
CREATE EXTENSION sensitive_audit;
CREATE TABLE local_only (id integer PRIMARY KEY, secret text);
});
{
	my ($own, $tries) = (0, 0);
	while ($own == 0 && $tries++ < 100)
	{
		$own = $dst->safe_psql(
			'occupied', qq{
DO \$\$ BEGIN
	IF pg_backend_pid() % 7 NOT IN ($src_chain_list) THEN
		PERFORM sensitive_audit.tag('local_only', 'secret');
	END IF;
END \$\$;
SELECT count(*) FROM sensitive_audit.log});
	}
	is($own, 1, "occupied: the log holds an entry of its own (after $tries sessions)");
	my $own_entry = $dst->safe_psql('occupied', q{SELECT chain, seq, encode(hash, 'hex') FROM sensitive_audit.log});
	ok(!grep({ $_ == (split /\|/, $own_entry)[0] } split /,/, $src_chain_list),
		"occupied: ... in a chain the source does not use ($own_entry; source: $src_chain_list)");

	my @restore_log = ('pg_restore', '--data-only', '-t', 'log_contexts', '-t', 'log_entries',
		'-d', $dst->connstr('occupied'), $dump{custom});
	my ($rc, $out, $err) = run_client(@restore_log);
	isnt($rc, 0, 'occupied: pg_restore of the log into a log that holds entries fails');
	like($err, qr/the audit log is insert-only: INSERT on sensitive_audit\.log_entries is not allowed/,
		'occupied: ... log_entries refuses its data');
	like($err, qr/the audit log is insert-only: INSERT on sensitive_audit\.log_contexts is not allowed/,
		'occupied: ... and so does log_contexts');
	like($err, qr/sensitive_audit\.restoring = on/, 'occupied: ... saying which setting allows it');
	is($dst->safe_psql('occupied',
			q{SELECT (SELECT count(*) FROM sensitive_audit.log_entries) || '/'
				  || (SELECT count(*) FROM sensitive_audit.log_contexts)}),
		'1/1', 'occupied: ... and the log still holds only its own entry and context');

	{
		local $ENV{PGOPTIONS} = '-c sensitive_audit.restoring=on';
		($rc, $out, $err) = run_client(@restore_log);
	}
	is($rc, 0, 'occupied: with sensitive_audit.restoring = on the same restore succeeds');
	is($dst->safe_psql('occupied', 'SELECT count(*) FROM sensitive_audit.log'),
		$src_total + 2, 'occupied: its own entry, the source\'s and a RESTORE entry');
	is($dst->safe_psql('occupied',
			q{SELECT new_value || ' ' || application_name FROM sensitive_audit.log WHERE operation = 'RESTORE'}),
		"$src_total entries pg_restore", 'occupied: the restore is recorded');
	is( join("\n", grep { $_ ne $own_entry } split /\n/, $dst->safe_psql('occupied', $hash_rows)),
		$src_hashes, 'occupied: the source\'s entries came through unchanged, next to its own');
	my $n = $dst->safe_psql('occupied', 'SELECT count(DISTINCT chain) FROM sensitive_audit.log');
	is($dst->safe_psql('occupied',
			q{SELECT count(*) FILTER (WHERE ok) || '/' || count(*) || '/' || sum(entries) FROM sensitive_audit.verify()}),
		"$n/$n/" . ($src_total + 2), 'occupied: every chain verifies');
}

# ---------------------------------------------------------------------------
# A dump whose log data was edited (one recorded value) still loads: the
# load is not where tampering is caught, verify() is, at the edited entry.
{
	my ($chain, $seq) = split /\|/, $src->safe_psql('app',
		q{SELECT chain, seq FROM sensitive_audit.log WHERE operation = 'INSERT' AND new_value = 'gamma'});
	my @lines = split /\n/, slurp_file($dump{plain}), -1;
	my ($column, $edited);
	for my $line (@lines)
	{
		if ($line =~ /^COPY sensitive_audit\.log_entries \(([^)]*)\) FROM stdin;$/)
		{
			my @cols = split /, /, $1;
			($column) = grep { $cols[$_] eq 'new_value' } 0 .. $#cols;
			next;
		}
		if (defined $column && $line eq '\.')
		{
			undef $column;
			next;
		}
		next unless defined $column;
		my @f = split /\t/, $line, -1;
		next unless $f[$column] eq 'gamma';
		$f[$column] = 'gamma, edited';
		$line = join("\t", @f);
		$edited++;
	}
	is($edited, 1, 'tampered: one new_value edited in the COPY data of log_entries of the plain dump');
	my $tampered = "$dumps/tampered.sql";
	open my $fh, '>', $tampered or die "could not write $tampered: $!";
	print $fh join("\n", @lines);
	close $fh;

	my ($rc, $out, $err) =
	  run_client('psql', '-X', '-q', '-f', $tampered, '-d', $dst->connstr('tampered'));
	is($dst->safe_psql('tampered',
			q{SELECT count(*) FROM sensitive_audit.log WHERE operation = 'INSERT' AND new_value = 'gamma, edited'}),
		'1', 'tampered: the edited dump loads, edited value included');
	is( $dst->safe_psql(
			'tampered', q{
SELECT chain || '|' || first_bad_seq || '|' || problem FROM sensitive_audit.verify() WHERE NOT ok}),
		"$chain|$seq|content changed: entry does not match its hash",
		"tampered: verify() reports chain $chain, and only it, not ok: content changed at the edited entry (seq $seq)");
	is( $dst->safe_psql(
			'tampered', qq{
SELECT (SELECT coalesce(string_agg(chain::text, ',' ORDER BY chain::text), '')
		  FROM sensitive_audit.verify() WHERE ok)
	   = (SELECT coalesce(string_agg(DISTINCT chain::text, ',' ORDER BY chain::text), '')
			FROM sensitive_audit.log WHERE chain <> $chain)}),
		't', 'tampered: every other chain verifies');
	my $raised = '';
	$dst->psql('tampered', 'SELECT sensitive_audit.verify_or_raise()', stderr => \$raised);
	like($raised, qr/ERROR:.*\n.*content changed: entry does not match its hash/,
		'tampered: verify_or_raise() raises, naming the problem');
}

# ---------------------------------------------------------------------------
# (e) pg_dumpall of the source cluster, loaded by psql into a fresh cluster
# (library not preloaded there) whose server defaults differ from the
# source's session settings.  Its bootstrap superuser is another role, so
# that the dump's roles (the source's superuser) are all new there and the
# load runs without a single error; the RESTORE entry then names that role.
my $fresh = PostgreSQL::Test::Cluster->new('fresh');
$fresh->init(extra => [ '-U', 'boot' ]);
$fresh->append_conf(
	'postgresql.conf', q{
sensitive_audit.chains = 2
sensitive_audit.log_reads = off
timezone = 'Asia/Kathmandu'
datestyle = 'Postgres, MDY'
intervalstyle = 'iso_8601'
extra_float_digits = 3
bytea_output = 'escape'
});
$fresh->start;
{
	my ($rc, $out, $err) = run_client('psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', $dump{all},
		'-U', 'boot', '-d', $fresh->connstr('postgres'));
	is($rc, 0, 'dumpall: psql -v ON_ERROR_STOP=1 loads the pg_dumpall output into a fresh cluster, exit status 0');
	unlike($err, qr/ERROR/, 'dumpall: ... without any error');
	is($fresh->safe_psql('app', 'SHOW TimeZone'), 'Asia/Kathmandu', 'dumpall: the fresh cluster runs under other settings');
	check_restored($fresh, 'app', 'dumpall', 'psql', 'boot');
}

# ---------------------------------------------------------------------------
# (f) Reads recorded, as by default: pg_dump's reads of the log are READ
# entries of the database it dumps, and a restore records none of its own
# loading (the lookups of the log's own triggers and of PostgreSQL's checks
# while rows are loaded into the log are nobody's reads).
$dst->safe_psql('postgres', 'ALTER SYSTEM SET sensitive_audit.log_reads = on');
$dst->reload;
$dst->safe_psql('postgres', 'CREATE DATABASE readsrc');
$dst->safe_psql('postgres', 'CREATE DATABASE readdst');
$dst->safe_psql(
	'readsrc', q{
CREATE EXTENSION sensitive_audit;
CREATE TABLE public.accounts (id int PRIMARY KEY, iban text);
SELECT sensitive_audit.tag('public.accounts', 'iban');
INSERT INTO public.accounts SELECT g, 'DE' || g FROM generate_series(1, 40) g;
UPDATE public.accounts SET iban = iban || 'x' WHERE id <= 10;
});
# the READ entries of the log's relations by a session, once the worker has written them
my $reads_sql = q{SET sensitive_audit.log_reads = off;
	SELECT string_agg(DISTINCT e.table_name, ',' ORDER BY e.table_name)
	  FROM sensitive_audit.log e
	 WHERE e.operation = 'READ' AND e.table_schema = 'sensitive_audit' AND e.application_name = };
my $entries_before = $dst->safe_psql('readsrc',
	"SET sensitive_audit.log_reads = off; SELECT count(*) FROM sensitive_audit.log_entries");
my $readdump = $dst->basedir . '/reads.dump';
{
	my ($rc, $out, $err) = run_client('pg_dump', '-Fc', '-f', $readdump, '-d', $dst->connstr('readsrc'));
	is($rc, 0, 'reads on: pg_dump -Fc succeeds');
}
my $dumped = '';
for (1 .. 100)
{
	$dumped = $dst->safe_psql('readsrc', $reads_sql . q{'pg_dump'});
	last if $dumped eq 'erasable_values,log_contexts,log_entries';
	usleep(100_000);
}
is($dumped, 'erasable_values,log_contexts,log_entries',
	"reads on: pg_dump's COPY of each of the log's tables is a READ entry of the dumped database");
{
	my ($rc, $out, $err) = run_client('pg_restore', '-d', $dst->connstr('readdst'), $readdump);
	is($rc, 0, 'reads on: pg_restore into an empty database succeeds');
	unlike($err, qr/ERROR/, 'reads on: ... without any error');
}
sleep 2;	# time for the worker to write anything the restore queued
is($dst->safe_psql('readdst', $reads_sql . q{'pg_restore'}), '',
	'reads on: the restore recorded no reads of its own loading');
is( $dst->safe_psql(
		'readdst', q{SET sensitive_audit.log_reads = off;
	SELECT count(*) FILTER (WHERE operation <> 'RESTORE') || '/' || count(*) FILTER (WHERE operation = 'RESTORE')
	  FROM sensitive_audit.log}),
	"$entries_before/1",
	'reads on: the restored log holds the entries dumped and one RESTORE entry');
is($dst->safe_psql('readdst', 'SELECT bool_and(ok) FROM sensitive_audit.verify()'),
	't', 'reads on: the restored log verifies');

$src->stop;
$dst->stop;
$fresh->stop;
done_testing();
