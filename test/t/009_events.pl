# 009_events.pl — events no transaction can write, linked by the background
# workers: a failed password login becomes a LOGIN FAILED entry in the
# database the client asked for (or in sensitive_audit.events_database, or
# is dropped with a LOG line), never with the password; the launcher comes
# back after it is killed and events still arrive; a full queue loses events
# only with a WARNING and a LOST entry that counts them; every chain
# verifies.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $password = 'Right-Pw-4471';
my $wrong = 'Wrong-Pw-9923';

my $node = PostgreSQL::Test::Cluster->new('events');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'sensitive_audit'
sensitive_audit.event_queue_size = 8
password_encryption = 'scram-sha-256'
});
# the test role logs in with a password; everyone else as the cluster is set up
open my $hba, '>', $node->data_dir . '/pg_hba.conf' or die "pg_hba.conf: $!";
print $hba "local all regress_rejected reject\n";
print $hba "local all regress_pw,regress_pw_ghost,regress_pw_none scram-sha-256\n";
print $hba "local noext all scram-sha-256\n";
print $hba "local all all trust\n";
close $hba;
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE appdb');
$node->safe_psql('postgres', 'CREATE DATABASE noext');
$node->safe_psql('postgres', 'CREATE EXTENSION sensitive_audit');
$node->safe_psql('appdb', 'CREATE EXTENSION sensitive_audit');
$node->safe_psql('postgres', "CREATE ROLE regress_pw LOGIN PASSWORD '$password'");

sub fail_login
{
	my ($db, $count) = @_;
	for (1 .. ($count // 1))
	{
		$node->connect_fails(
			"dbname=$db user=regress_pw password=$wrong",
			"wrong password for $db is refused",
			expected_stderr => qr/password authentication failed/);
	}
	return;
}

sub count_failed
{
	my ($db) = @_;
	return $node->safe_psql($db,
		"SELECT count(*) FROM sensitive_audit.log WHERE operation = 'LOGIN FAILED'");
}

sub worker_pids
{
	my $pids = $node->safe_psql('postgres',
		q{SELECT string_agg(pid::text, ' ') FROM pg_stat_activity WHERE backend_type LIKE 'sensitive_audit event %'});
	return split / /, $pids;
}

# --- a failed login: the right role, database and method --------------------
ok($node->poll_query_until('postgres',
		q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'sensitive_audit event launcher'}),
	'the launcher runs');
my $log_start = -s $node->logfile;
fail_login('appdb');
ok($node->poll_query_until('appdb',
		q{SELECT count(*) = 1 FROM sensitive_audit.log WHERE operation = 'LOGIN FAILED'}),
	'the failed login is in the chain within seconds');
is( $node->safe_psql(
		'appdb', q{
SELECT session_role, effective_role, table_schema IS NULL AND table_name IS NULL AS no_object,
       new_value::jsonb->>'method', new_value::jsonb->>'reason', new_value::jsonb->>'database',
       client_addr IS NULL AS unix_socket, backend_pid > 0 AS pid
  FROM sensitive_audit.log WHERE operation = 'LOGIN FAILED'}),
	'regress_pw|regress_pw|t|scram-sha-256|authentication failed|appdb|t|t',
	'LOGIN FAILED names the role claimed, the database, the method and why');
is(count_failed('postgres'), '0', 'and it went into the database asked for only');

# why, as a class: a role that does not exist, a role without a password
$node->safe_psql('postgres', 'CREATE ROLE regress_pw_none LOGIN');
for my $role ('regress_pw_ghost', 'regress_pw_none')
{
	$node->connect_fails("dbname=appdb user=$role password=$wrong", "$role is refused",
		expected_stderr => qr/password authentication failed/);
}
ok($node->poll_query_until('appdb',
		q{SELECT count(*) = 3 FROM sensitive_audit.log WHERE operation = 'LOGIN FAILED'}),
	'both refusals are in the chain');
is( $node->safe_psql(
		'appdb', q{
SELECT string_agg(session_role || ':' || (new_value::jsonb->>'reason'), ',' ORDER BY session_role)
  FROM sensitive_audit.log WHERE operation = 'LOGIN FAILED' AND session_role <> 'regress_pw'}),
	'regress_pw_ghost:role does not exist,regress_pw_none:no password set',
	'each with the class of its reason');

# a right password is no event
$node->connect_ok("dbname=appdb user=regress_pw password=$password", 'the right password logs in');

# --- a database without the extension: dropped with a LOG line, or routed -----
fail_login('noext');
ok($node->wait_for_log(qr/LOGIN FAILED event|events for database "noext" dropped/, $log_start),
	'a database without the extension drops its events with a LOG line');
$node->append_conf('postgresql.conf', "sensitive_audit.events_database = 'postgres'");
$node->reload;
usleep(300_000);
fail_login('noext');
fail_login('no_such_db');
ok($node->poll_query_until('postgres',
		q{SELECT count(*) = 2 FROM sensitive_audit.log WHERE operation = 'LOGIN FAILED'}),
	'with sensitive_audit.events_database set, they go there');
is( $node->safe_psql(
		'postgres',
		q{SELECT string_agg(new_value::jsonb->>'database', ',' ORDER BY event_time)
		    FROM sensitive_audit.log WHERE operation = 'LOGIN FAILED'}),
	'noext,no_such_db',
	'each names the database the client asked for');

# a client names its role with any bytes it likes: they must not poison the log
# (text invalid in the database's encoding would break every read and dump of it)
$node->connect_fails("dbname=noext user=regress_\xff\xfe password=$wrong",
	'a role named with bytes that are not UTF-8 is refused',
	expected_stderr => qr/password authentication failed/);
ok($node->poll_query_until('postgres',
		q{SELECT count(*) = 3 FROM sensitive_audit.log WHERE operation = 'LOGIN FAILED'}),
	'that refusal is recorded too');
is( $node->safe_psql(
		'postgres', q{
SELECT session_role, new_value::jsonb->>'reason' FROM sensitive_audit.log
 WHERE operation = 'LOGIN FAILED' ORDER BY event_time DESC LIMIT 1}),
	'regress_\xff\xfe|role does not exist',
	'with the bytes outside ASCII written as \xNN');

# --- the launcher is killed, comes back, and events still arrive -------------
my $launcher = $node->safe_psql('postgres',
	q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'sensitive_audit event launcher'});
$node->safe_psql('postgres', "SELECT pg_terminate_backend($launcher)");
ok($node->poll_query_until('postgres',
		qq{SELECT count(*) = 1 FROM pg_stat_activity
		    WHERE backend_type = 'sensitive_audit event launcher' AND pid <> $launcher}),
	'the launcher is restarted after it was killed');
# and a database worker killed while it waits
for my $pid (worker_pids())
{
	next if $pid == $launcher;
	$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
}
fail_login('appdb', 2);
ok($node->poll_query_until('appdb',
		q{SELECT count(*) = 5 FROM sensitive_audit.log WHERE operation = 'LOGIN FAILED'}),
	'events arrive after the restart');

# --- a full queue: a WARNING, and a LOST entry with the count ---------------
# Hold every event process still, so that nothing drains the queue of 8.
usleep(300_000);
my @held = worker_pids();
kill 'STOP', @held;
my $full_start = -s $node->logfile;
fail_login('appdb', 20);
kill 'CONT', @held;
ok($node->poll_query_until('appdb',
		q{SELECT count(*) = 1 FROM sensitive_audit.log WHERE operation = 'LOST'}),
	'the lost events are recorded once there is room');
is($node->safe_psql('appdb', q{SELECT new_value FROM sensitive_audit.log WHERE operation = 'LOST'}),
	'12', 'LOST counts the 12 events the queue of 8 could not take');
is(count_failed('appdb'), '13', 'the 8 it took are all there');
ok($node->log_contains(qr/WARNING:  sensitive_audit event queue is full/, $full_start),
	'the overflow is a WARNING in the server log');
# room again: the next event is written as usual
fail_login('appdb');
ok($node->poll_query_until('appdb',
		q{SELECT count(*) = 14 FROM sensitive_audit.log WHERE operation = 'LOGIN FAILED'}),
	'and events are written again');

# a connection pg_hba.conf rejects never reaches an authentication method
$node->safe_psql('postgres', 'CREATE ROLE regress_rejected LOGIN');
$node->connect_fails('dbname=appdb user=regress_rejected', 'pg_hba.conf rejects regress_rejected',
	expected_stderr => qr/pg_hba.conf rejects connection/);
ok($node->poll_query_until('appdb',
		q{SELECT count(*) = 15 FROM sensitive_audit.log WHERE operation = 'LOGIN FAILED'}),
	'a connection pg_hba.conf rejects is a LOGIN FAILED entry too');
is( $node->safe_psql(
		'appdb', q{
SELECT session_role || ' ' || (new_value::jsonb->>'method') || ' ' || (new_value::jsonb->>'reason')
  FROM sensitive_audit.log WHERE operation = 'LOGIN FAILED' ORDER BY event_time DESC LIMIT 1}),
	'regress_rejected reject rejected by pg_hba.conf', 'with the role claimed, the method and why');

# --- no password anywhere; every chain intact --------------------------------
# (statements are logged here, so read the server log before the queries below)
my $server_log = slurp_file($node->logfile);
unlike($server_log, qr/\Q$wrong\E/, 'the wrong password is not in the server log');
for my $db ('appdb', 'postgres')
{
	is( $node->safe_psql(
			$db,
			"SELECT count(*) FROM sensitive_audit.log l
			  WHERE strpos(l::text, '$wrong') > 0 OR strpos(l::text, '$password') > 0"),
		'0',
		"no password in the log of $db");
	is($node->safe_psql($db, 'SELECT bool_and(ok) FROM sensitive_audit.verify()'),
		't', "every chain of $db verifies");
}

$node->stop;
done_testing();
