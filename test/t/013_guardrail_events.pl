# 013_guardrail_events.pl — what a guardrail sends to a session listening
# on sensitive_audit_alerts: an ALERT when the alerted transaction commits,
# and a DENIED, written by the event worker, for a refused statement whose
# own transaction (and its NOTIFY) rolled back; and READ entries from a
# read-only transaction and from a statement that fails, written by the
# worker too.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('guardrails');
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'sensitive_audit'\n");
$node->start;

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION sensitive_audit;
CREATE ROLE clerk;
CREATE ROLE payroll_admin;
CREATE TABLE payroll (id int PRIMARY KEY, salary numeric, iban text);
INSERT INTO payroll SELECT g, 1000 + g, 'DE' || g FROM generate_series(1, 50) g;
SELECT sensitive_audit.tag('payroll', 'salary', 'iban');
GRANT SELECT, UPDATE ON payroll TO clerk;
SELECT sensitive_audit.set_policy('payroll', 'salary', allowed_roles => ARRAY['payroll_admin']);
SELECT sensitive_audit.set_policy('payroll', 'iban', max_rows_per_statement => 5, action => 'alert');
});

# A listening session; psql shows a notification after the next command it runs.
my $listener = $node->background_psql('postgres', on_error_stop => 0);
$listener->query_safe('LISTEN sensitive_audit_alerts');

# Poll the log until a query returns something, for up to 30 s.
sub wait_for
{
	my ($sql) = @_;
	for (1 .. 300)
	{
		my $out = $node->safe_psql('postgres', $sql);
		return $out if $out ne '';
		usleep(100_000);
	}
	return '';
}

# the refused change: its transaction rolls back, its entry comes from the worker
my ($ret, $stdout, $stderr) = $node->psql('postgres',
	q{SET ROLE clerk; UPDATE payroll SET salary = 0 WHERE id = 1});
like($stderr, qr/ERROR:  role "clerk" may not change column "salary" of "public.payroll"/,
	'a role outside allowed_roles is refused');
is( wait_for(q{SELECT effective_role || ' ' || column_name || ' ' || (new_value::jsonb ->> 'rule')
  FROM sensitive_audit.log WHERE operation = 'DENIED'}),
	'clerk salary allowed_roles', 'the refused attempt is kept as a DENIED entry, written by the worker');
is($node->safe_psql('postgres', q{SELECT salary FROM payroll WHERE id = 1}), '1001', 'the change itself did not happen');

my $out = $listener->query_safe('SELECT 1');
like($listener->{stdout} . $out,
	qr/Asynchronous notification "sensitive_audit_alerts" with payload "\{"event": "DENIED".*"role": "clerk".*"rule": "allowed_roles"/,
	'the listening session receives the DENIED payload');

# the alert: the change goes ahead, the payload arrives when it commits
$node->safe_psql('postgres', q{UPDATE payroll SET iban = iban || 'x' WHERE id <= 8});
$out = $listener->query_safe('SELECT 2');
like($listener->{stdout} . $out,
	qr/Asynchronous notification "sensitive_audit_alerts" with payload "\{"event": "ALERT".*"column_name": "iban".*"rows": 6/,
	'the listening session receives the ALERT payload');
is($node->safe_psql('postgres', q{SELECT count(*) FROM sensitive_audit.log WHERE operation = 'ALERT'}), '1',
	'one ALERT entry for the statement');
is($node->safe_psql('postgres', q{SELECT count(*) FROM sensitive_audit.log WHERE operation = 'UPDATE' AND column_name = 'iban'}),
	'8', 'the alerted change went ahead and was captured');
$listener->quit;

# READ entries from a read-only transaction and from a failing statement
$node->safe_psql('postgres', q{ALTER SYSTEM SET sensitive_audit.log_reads = on; SELECT pg_reload_conf();});
$node->psql('postgres', q{SET ROLE clerk; BEGIN READ ONLY; SELECT count(*) FROM sensitive_audit.log; COMMIT;});
$node->safe_psql('postgres', q{GRANT USAGE ON SCHEMA sensitive_audit TO clerk; GRANT SELECT ON sensitive_audit.log TO clerk});
($ret, $stdout, $stderr) = $node->psql('postgres',
	q{SET ROLE clerk; BEGIN READ ONLY; SELECT count(*) FROM sensitive_audit.log; COMMIT;});
like($stdout, qr/^\d+$/, 'a read-only transaction reads the log');
($ret, $stdout, $stderr) = $node->psql('postgres',
	q{SET ROLE clerk; SELECT new_value::int FROM sensitive_audit.log WHERE column_name = 'iban' AND operation = 'UPDATE'});
like($stderr, qr/invalid input syntax for type integer/, 'a read that fails after reading');
is( wait_for(q{SELECT string_agg(effective_role || ' ' || table_name || ' ' || coalesce(new_value::jsonb ->> 'rows', 'null')
						|| coalesce(' failed ' || (new_value::jsonb ->> 'failed'), ''), ', ' ORDER BY event_time)
  FROM sensitive_audit.log WHERE operation = 'READ' AND effective_role = 'clerk' HAVING count(*) >= 2}),
	'clerk log 1, clerk log null failed true',
	'both reads are READ entries, written by the worker: rows returned, or failed');
# the first statement of the clerk (no grant yet) failed before reading anything
is($node->safe_psql('postgres', q{SELECT count(*) FROM sensitive_audit.log WHERE operation = 'READ' AND effective_role = 'clerk'}),
	'2', 'a statement refused for privileges before it read is not a read');

is($node->safe_psql('postgres', q{SELECT count(*) FILTER (WHERE NOT ok) FROM sensitive_audit.verify()}), '0',
	'every chain verifies');

# On a hot standby nothing can be written: a read of the log is a structured
# line in the standby's server log.
$node->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($node, 'base', has_streaming => 1);
$standby->start;
$node->wait_for_catchup($standby);
my $offset = -s $standby->logfile;
($ret, $stdout, $stderr) = $standby->psql('postgres',
	q{SET ROLE clerk; SELECT count(*) FROM sensitive_audit.log WHERE operation = 'DENIED'});
is($stdout, '1', 'the standby holds the DENIED entry and lets the clerk read the log');
$standby->wait_for_log(
	qr/LOG:  sensitive_audit: READ \{"table_schema": "sensitive_audit", "table_name": "log", "role": "clerk", "read": \{"columns": \["operation"\], "rows": 1,/,
	$offset);
pass('a read of the log on the standby is a READ line in its server log');
$standby->stop;

$node->stop;
done_testing();
