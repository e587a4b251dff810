# 004_replication.pl — the audit history on replicas.
#
# Physical streaming: a hot standby holds the very same entries as the
# primary and verifies them (DESIGN invariant 6).
# Logical replication: changes applied by a subscription's apply worker to a
# tagged table are captured on the subscriber, because the capture triggers
# are ENABLE ALWAYS (DESIGN invariant 2), and the subscriber's own log
# verifies.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 'logical');
$primary->append_conf('postgresql.conf', "sensitive_audit.chains = 4\n");
$primary->start;

$primary->safe_psql(
	'postgres', q{
CREATE EXTENSION sensitive_audit;
CREATE TABLE public.patients (id integer PRIMARY KEY, ssn text, seen timestamptz, weight float8, memo text);
SELECT sensitive_audit.tag('public.patients', 'ssn', 'seen', 'weight');
INSERT INTO patients VALUES
  (1, '111-11-1111', '2024-01-02 03:04:05+00', 70.5, 'a'),
  (2, '222-22-2222', NULL, 'NaN', 'b');
});

# Physical standby from a backup taken now.
$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->append_conf('postgresql.conf', "sensitive_audit.chains = 4\n");
$standby->start;

# Logical subscriber: the extension, the same table, tagged the same way.
my $sub = PostgreSQL::Test::Cluster->new('subscriber');
$sub->init;
$sub->append_conf('postgresql.conf', "sensitive_audit.chains = 4\n");
$sub->start;
$sub->safe_psql(
	'postgres', q{
CREATE EXTENSION sensitive_audit;
CREATE TABLE public.patients (id integer PRIMARY KEY, ssn text, seen timestamptz, weight float8, memo text);
SELECT sensitive_audit.tag('public.patients', 'ssn', 'seen', 'weight');
});
$primary->safe_psql('postgres', 'CREATE PUBLICATION pub FOR TABLE public.patients');
my $primary_connstr = $primary->connstr . ' dbname=postgres';
$sub->safe_psql('postgres',
	"CREATE SUBSCRIPTION sub CONNECTION '$primary_connstr' PUBLICATION pub");
$sub->wait_for_subscription_sync($primary, 'sub');

# The initial table copy is applied through the capture triggers too.
is( $sub->safe_psql(
		'postgres', q{
SELECT string_agg(row_key::text || ' ' || column_name || '=' || coalesce(new_value, '<null>'), ', '
				  ORDER BY row_key::text, column_name)
  FROM sensitive_audit.log WHERE operation = 'INSERT'}),
	'{"id": "1"} seen=2024-01-02T03:04:05+00:00, {"id": "1"} ssn=111-11-1111, {"id": "1"} weight=70.5, '
	  . '{"id": "2"} seen=<null>, {"id": "2"} ssn=222-22-2222, {"id": "2"} weight=NaN',
	'subscriber: initial sync of existing rows captured as INSERT entries');

# Changes on the primary, from several sessions so several chains are used.
$primary->safe_psql(
	'postgres', q{
SET TimeZone = 'Asia/Kolkata'; SET extra_float_digits = -1;
UPDATE patients SET ssn = '111-11-0000', weight = 71.25 WHERE id = 1;
INSERT INTO patients VALUES (3, '333-33-3333', '2030-05-06 07:08:09.123456+02', '-0', 'c');
});
$primary->safe_psql('postgres', q{UPDATE patients SET memo = 'untagged only' WHERE id = 2});
$primary->safe_psql('postgres', q{DELETE FROM patients WHERE id = 2});
$primary->safe_psql(
	'postgres', q{
BEGIN;
UPDATE patients SET seen = '2025-01-01 00:00:00+00' WHERE id = 3;
SAVEPOINT s;
UPDATE patients SET ssn = 'rolled back' WHERE id = 3;
ROLLBACK TO SAVEPOINT s;
COMMIT;
});
$primary->safe_psql('postgres', q{BEGIN; UPDATE patients SET ssn = 'aborted' WHERE id = 1; ROLLBACK;});

$primary->wait_for_catchup($standby);
$primary->wait_for_catchup('sub');

# ---------------------------------------------------------------------------
# Physical standby: same entries, verifying.
my $all_rows = q{
SELECT chain, seq, txid, extract(epoch FROM event_time), operation, table_name, column_name,
	   row_key::text, old_value, new_value, encode(prev_hash, 'hex'), encode(hash, 'hex')
  FROM sensitive_audit.log ORDER BY chain, seq};
my $primary_log = $primary->safe_psql('postgres', $all_rows);
my $primary_total = $primary->safe_psql('postgres', 'SELECT count(*) FROM sensitive_audit.log');
my $primary_chains = $primary->safe_psql('postgres', 'SELECT count(DISTINCT chain) FROM sensitive_audit.log');

# 3 TAG-or-setup entries aside: 6 + 2 + 3 + 3 + 1 change entries.
is( $primary->safe_psql(
		'postgres',
		q{SELECT count(*) FROM sensitive_audit.log WHERE operation IN ('INSERT', 'UPDATE', 'DELETE')}),
	'15', 'primary: one entry per changed tagged column, none for rolled-back work');
is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 't', 'standby is in recovery');
is($standby->safe_psql('postgres', $all_rows), $primary_log, 'standby: the same entries as the primary');
is( $standby->safe_psql(
		'postgres',
		q{SELECT count(*) FILTER (WHERE ok) || '/' || count(*) || '/' || sum(entries) FROM sensitive_audit.verify()}),
	"$primary_chains/$primary_chains/$primary_total",
	'standby: verify() reports every chain ok');
is($standby->safe_psql('postgres', 'SELECT sensitive_audit.verify_or_raise()'),
	$primary_total, 'standby: verify_or_raise() counts every entry');
is( $standby->safe_psql(
		'postgres', q{SET TimeZone = 'Pacific/Chatham'; SET DateStyle = 'SQL, DMY';
					  SET extra_float_digits = -3; SET bytea_output = 'escape';
					  SELECT count(*) FILTER (WHERE NOT ok) FROM sensitive_audit.verify()}),
	'0', 'standby: verifies under other session settings');

# ---------------------------------------------------------------------------
# Logical subscriber: the applied changes are captured there, with the same
# canonical values as on the primary.
my $changes = q{
SELECT operation || ' ' || row_key::text || ' ' || column_name || ' '
	   || coalesce(old_value, '<null>') || ' -> ' || coalesce(new_value, '<null>')
  FROM sensitive_audit.log
 WHERE operation IN ('INSERT', 'UPDATE', 'DELETE') AND NOT (operation = 'INSERT' AND row_key->>'id' IN ('1', '2'))
 ORDER BY 1};
my $primary_changes = $primary->safe_psql('postgres', $changes);
is( $primary_changes,
	join("\n",
		'DELETE {"id": "2"} seen <null> -> <null>',
		'DELETE {"id": "2"} ssn 222-22-2222 -> <null>',
		'DELETE {"id": "2"} weight NaN -> <null>',
		'INSERT {"id": "3"} seen <null> -> 2030-05-06T05:08:09.123456+00:00',
		'INSERT {"id": "3"} ssn <null> -> 333-33-3333',
		'INSERT {"id": "3"} weight <null> -> -0',
		'UPDATE {"id": "1"} ssn 111-11-1111 -> 111-11-0000',
		'UPDATE {"id": "1"} weight 70.5 -> 71.25',
		'UPDATE {"id": "3"} seen 2030-05-06T05:08:09.123456+00:00 -> 2025-01-01T00:00:00+00:00'),
	'primary: the expected change entries');
is($sub->safe_psql('postgres', $changes), $primary_changes,
	'subscriber: replicated changes captured with the same canonical values');
is( $sub->safe_psql(
		'postgres',
		q{SELECT count(*) FROM sensitive_audit.log WHERE operation IN ('INSERT', 'UPDATE', 'DELETE')}),
	'15', 'subscriber: as many change entries as the primary (initial copy included)');
is($sub->safe_psql('postgres', q{SELECT count(*) FROM sensitive_audit.log WHERE new_value IN ('rolled back', 'aborted')}),
	'0', 'subscriber: nothing of the rolled-back work');
my $sub_total = $sub->safe_psql('postgres', 'SELECT count(*) FROM sensitive_audit.log');
my $sub_chains = $sub->safe_psql('postgres', 'SELECT count(DISTINCT chain) FROM sensitive_audit.log');
is( $sub->safe_psql(
		'postgres',
		q{SELECT count(*) FILTER (WHERE ok) || '/' || count(*) || '/' || sum(entries) FROM sensitive_audit.verify()}),
	"$sub_chains/$sub_chains/$sub_total",
	'subscriber: verify() reports every chain ok');
is( $sub->safe_psql(
		'postgres',
		q{SELECT count(*) FROM (SELECT chain FROM sensitive_audit.log GROUP BY chain
								HAVING count(*) <> max(seq) OR min(seq) <> 1) gaps}),
	'0', 'subscriber: every chain runs 1..n without gaps');
is($sub->safe_psql('postgres', 'SELECT * FROM patients ORDER BY id'),
	$primary->safe_psql('postgres', 'SELECT * FROM patients ORDER BY id'),
	'subscriber: table contents match the primary');

# A burst of replicated changes keeps chains linear on the subscriber.
$primary->safe_psql('postgres',
	q{INSERT INTO patients SELECT g, 'ssn' || g, NULL, g, 'm' FROM generate_series(10, 209) g});
$primary->safe_psql('postgres', q{UPDATE patients SET weight = weight + 0.5 WHERE id BETWEEN 10 AND 109});
$primary->wait_for_catchup('sub');
$primary->wait_for_catchup($standby);
is( $sub->safe_psql(
		'postgres',
		q{SELECT count(*) FILTER (WHERE operation = 'INSERT' AND (row_key->>'id')::int >= 10) || '/'
			  || count(*) FILTER (WHERE operation = 'UPDATE' AND (row_key->>'id')::int >= 10)
			FROM sensitive_audit.log}),
	'600/100', 'subscriber: bulk changes captured (200 rows x 3 columns, 100 updates)');
$sub_total = $sub->safe_psql('postgres', 'SELECT count(*) FROM sensitive_audit.log');
is($sub->safe_psql('postgres', 'SELECT sensitive_audit.verify_or_raise()'),
	$sub_total, 'subscriber: verify_or_raise() after the burst');
$primary_total = $primary->safe_psql('postgres', 'SELECT count(*) FROM sensitive_audit.log');
is($standby->safe_psql('postgres', 'SELECT sensitive_audit.verify_or_raise()'),
	$primary_total, 'standby: verify_or_raise() after the burst');
is($standby->safe_psql('postgres', $all_rows), $primary->safe_psql('postgres', $all_rows),
	'standby: still the same entries as the primary');

$sub->stop;
$standby->stop;
$primary->stop;
done_testing();
