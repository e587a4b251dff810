# 016_event_restart.pl — the event queue across server restarts: events
# still waiting at a clean shutdown are saved and written after the next
# start (a smaller queue then counts what does not fit as LOST); a saved
# queue from another build, or a file no clean shutdown wrote, is refused
# with a LOG line and nothing of it is loaded; a crash or an immediate
# shutdown, which keep nothing, leave a LOST entry of unknown count in every
# database with the extension, and in no other; a server starting as a
# standby discards the file.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $wrong = 'Wrong-Pw-5127';

my $node = PostgreSQL::Test::Cluster->new('event_restart');
$node->init(allows_streaming => 1);    # wal_level replica: it starts as a standby once
# reads of the log are recorded by default, through the queue; this test counts what the
# queue holds, and reads are 013's subject
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'sensitive_audit'
sensitive_audit.log_reads = off
sensitive_audit.event_queue_size = 8
password_encryption = 'scram-sha-256'
restart_after_crash = on
max_prepared_transactions = 2
});
open my $hba, '>', $node->data_dir . '/pg_hba.conf' or die "pg_hba.conf: $!";
print $hba "local all regress_pw scram-sha-256\n";
print $hba "local all all trust\n";
close $hba;
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE appdb');
$node->safe_psql('postgres', 'CREATE DATABASE noext');
$node->safe_psql('postgres', 'CREATE EXTENSION sensitive_audit');
$node->safe_psql('appdb', 'CREATE EXTENSION sensitive_audit');
$node->safe_psql('postgres', q{CREATE ROLE regress_pw LOGIN PASSWORD 'Right-Pw-5127'});

my $queue_file = $node->data_dir . '/pg_stat/sensitive_audit_events.queue';

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

sub count_op
{
	my ($db, $op) = @_;
	return $node->safe_psql($db, "SELECT count(*) FROM sensitive_audit.log WHERE operation = '$op'");
}

# LOST entries of unknown count, for a reason
sub count_unknown
{
	my ($db, $reason) = @_;
	return $node->safe_psql(
		$db, qq{
SELECT count(*) FROM sensitive_audit.log
 WHERE operation = 'LOST' AND new_value::jsonb->'count' = 'null'::jsonb
   AND new_value::jsonb->>'reason' = '$reason'});
}

# Hold appdb's worker still: it cannot write while a prepared transaction
# holds the log's lock, which outlives a shutdown (a session holding it
# would be terminated with the worker, and might let it commit first).
sub hold_worker
{
	$node->safe_psql('appdb', q{BEGIN; LOCK TABLE sensitive_audit.log_entries IN ACCESS EXCLUSIVE MODE;
PREPARE TRANSACTION 'hold_log'});
	return;
}

sub release_worker
{
	$node->safe_psql('appdb', q{ROLLBACK PREPARED 'hold_log'});
	return;
}

sub worker_waits
{
	return $node->poll_query_until(
		'postgres', q{
SELECT count(*) > 0 FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid
 WHERE a.backend_type = 'sensitive_audit event worker' AND NOT l.granted});
}

ok($node->poll_query_until('postgres',
		q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'sensitive_audit event launcher'}),
	'the launcher runs');
fail_login('appdb');
ok($node->poll_query_until('appdb',
		q{SELECT count(*) = 1 FROM sensitive_audit.log WHERE operation = 'LOGIN FAILED'}),
	'a failed login is written as usual');

# --- (a) a clean shutdown keeps what waits ----------------------------------
hold_worker();
fail_login('appdb', 3);
ok(worker_waits(), "appdb's worker waits for the log's lock");
my $log_start = -s $node->logfile;
$node->stop('fast');
ok(-f $queue_file, 'a fast shutdown saves the waiting events');
ok($node->log_contains(qr/sensitive_audit: 3 queued events saved/, $log_start),
	'and says so in the server log');
$log_start = -s $node->logfile;
$node->start;
ok(!-e $queue_file, 'the file is removed once loaded');
ok($node->log_contains(qr/sensitive_audit: 3 events restored/, $log_start),
	'the start says how many were restored');
release_worker();
ok($node->poll_query_until('appdb',
		q{SELECT count(*) = 4 FROM sensitive_audit.log WHERE operation = 'LOGIN FAILED'}),
	'the events waiting at the shutdown are in the chain after the start');
is( $node->safe_psql(
		'appdb', q{
SELECT string_agg(DISTINCT session_role || ' ' || (new_value::jsonb->>'database'), ',')
  FROM sensitive_audit.log WHERE operation = 'LOGIN FAILED'}),
	'regress_pw appdb', 'with the role claimed and the database asked for');
is(count_op('appdb', 'LOST'), '0', 'nothing recorded as lost');
is($node->safe_psql('appdb', 'SELECT bool_and(ok) FROM sensitive_audit.verify()'),
	't', 'the chain verifies');

# --- (d) a smaller queue at the next start: the rest is counted as LOST -----
hold_worker();
fail_login('appdb', 6);
ok(worker_waits(), "appdb's worker waits again");
$node->stop('fast');
$node->append_conf('postgresql.conf', 'sensitive_audit.event_queue_size = 4');
$log_start = -s $node->logfile;
$node->start;
release_worker();
ok($node->poll_query_until('appdb',
		q{SELECT count(*) = 1 FROM sensitive_audit.log WHERE operation = 'LOST'}),
	'what a queue of 4 cannot take is recorded as LOST');
is($node->safe_psql('appdb', q{SELECT new_value FROM sensitive_audit.log WHERE operation = 'LOST'}),
	'2', 'with the count of the 2 saved events that did not fit');
ok($node->poll_query_until('appdb',
		q{SELECT count(*) = 8 FROM sensitive_audit.log WHERE operation = 'LOGIN FAILED'}),
	'the 4 that fit are written');
ok($node->log_contains(qr/2 saved events do not fit into sensitive_audit.event_queue_size = 4/, $log_start),
	'the server log says why');
$node->append_conf('postgresql.conf', 'sensitive_audit.event_queue_size = 8');

# --- (b) a file from another build is refused --------------------------------
my $refusals = 0;
for my $case (
	[ 'XXXX' x 64, qr/refused: it is not a sensitive_audit event queue file/, 'a file that is not a queue' ],
	[ pack('LL', 0x53414551, 999) . ("\0" x 200), qr/refused: its layout \(version 999/, 'a file of another layout' ])
{
	my ($bytes, $expect, $what) = @$case;
	$node->stop('fast');
	ok(!-e $queue_file, 'no file when nothing waits');
	$refusals++;
	open my $fh, '>:raw', $queue_file or die "$queue_file: $!";
	print $fh $bytes;
	close $fh;
	unlink "$queue_file.refused";
	$log_start = -s $node->logfile;
	$node->start;
	ok($node->log_contains($expect, $log_start), "$what is refused with a LOG line");
	ok(!-e $queue_file && -f "$queue_file.refused", 'and kept aside, not loaded again');
	ok($node->poll_query_until('appdb', qq{SELECT count(*) = $refusals FROM sensitive_audit.log
  WHERE operation = 'LOST' AND new_value::jsonb->>'reason' = 'saved queue refused'}),
		'a refused file is a LOST entry of unknown count');
	# the databases without the extension drop theirs (so the queue is empty again)
	for my $db ('noext', 'template1')
	{
		ok($node->wait_for_log(qr/events for database "$db" dropped: the extension is not installed there/,
				$log_start),
			"$db drops its own");
	}
}
is(count_unknown('postgres', 'saved queue refused'), '2', 'postgres has one per refusal too');

# a file written while the server runs (any role that may write server
# files can) is never loaded: a clean shutdown with nothing queued removes it
$node->safe_psql('postgres', qq{COPY (SELECT 'forged') TO '$queue_file'});
ok(-f $queue_file, 'a file written by the server while it runs');
$node->stop('fast');
ok(!-e $queue_file, 'is removed by a clean shutdown that has nothing to save');
$node->start;
is(count_op('appdb', 'LOGIN FAILED'), '8', 'nothing of either file was loaded');

# --- (c) a crash loses the queue, never silently -------------------------------
# events_database set: a database without the extension must not send its
# crash LOST there (postgres gets its own only)
$node->append_conf('postgresql.conf', "sensitive_audit.events_database = 'postgres'");
$node->reload;
my $victim = $node->background_psql('postgres');
my $pid = $victim->query_safe('SELECT pg_backend_pid()');
$log_start = -s $node->logfile;
kill 'KILL', $pid;
eval { $victim->quit; };
ok($node->wait_for_log(qr/all server processes terminated; reinitializing/, $log_start),
	'a backend killed: the postmaster reinitializes');
ok($node->poll_query_until('appdb', q{SELECT count(*) = 1 FROM sensitive_audit.log
  WHERE operation = 'LOST' AND new_value::jsonb->>'reason' = 'crash restart'}),
	'after the crash restart, appdb has a LOST entry');
is( $node->safe_psql(
		'appdb', q{
SELECT new_value::jsonb->'count' = 'null'::jsonb, event_time > now() - interval '5 min'
  FROM sensitive_audit.log WHERE operation = 'LOST' AND new_value::jsonb->>'reason' = 'crash restart'}),
	't|t', 'its count is unknown (null) and its time is the restart');
ok($node->poll_query_until('postgres', q{SELECT count(*) = 1 FROM sensitive_audit.log
  WHERE operation = 'LOST' AND new_value::jsonb->>'reason' = 'crash restart'}),
	'and so has postgres');
ok($node->wait_for_log(qr/LOST event for database "noext" dropped: the extension is not installed there/, $log_start),
	'a database without the extension drops its own with a LOG line');
ok($node->wait_for_log(qr/LOST event for database "template1" dropped/, $log_start), 'template1 too');
ok(!$node->log_contains(qr/LOST event for database "template0"/, $log_start), 'template0 gets none');
is(count_unknown('postgres', 'crash restart'), '1', 'nothing of noext was sent on to events_database');

# an immediate shutdown is no clean one: what waits is not saved, and the
# next start records the loss
hold_worker();
fail_login('appdb', 2);
ok(worker_waits(), "appdb's worker waits once more");
$log_start = -s $node->logfile;
$node->stop('immediate');
ok(!-e $queue_file, 'an immediate shutdown saves nothing');
ok($node->log_contains(qr/2 queued events are not saved: the server did not shut down cleanly/, $log_start),
	'and says so');
# and after a run that did not end cleanly, a file found is not the shutdown's
open my $forged, '>:raw', $queue_file or die "$queue_file: $!";
print $forged 'forged';
close $forged;
$node->start;
ok($node->log_contains(qr/refused: the server's last run did not end in a clean shutdown/, $log_start),
	'a file found after a run that did not end cleanly is refused');
release_worker();
ok($node->poll_query_until('appdb', q{SELECT count(*) = 2 FROM sensitive_audit.log
  WHERE operation = 'LOST' AND new_value::jsonb->>'reason' = 'crash restart'}),
	'an immediate shutdown is recorded as a crash too');
is(count_op('appdb', 'LOGIN FAILED'), '8', 'the 2 events it lost are not written');
fail_login('appdb');
ok($node->poll_query_until('appdb',
		q{SELECT count(*) = 9 FROM sensitive_audit.log WHERE operation = 'LOGIN FAILED'}),
	'and events are written as before');
is(count_unknown('postgres', 'crash restart'), '2', 'postgres has one per crash');

# --- a standby does not replay the events saved by its primary --------------
hold_worker();
fail_login('appdb', 2);
ok(worker_waits(), "appdb's worker waits before the last shutdown");
$node->stop('fast');
ok(-f $queue_file, 'the waiting events are saved');
open my $signal, '>', $node->data_dir . '/standby.signal' or die "standby.signal: $!";
close $signal;
$log_start = -s $node->logfile;
$node->start;
ok($node->log_contains(qr/event queue file ".*" discarded: this server starts as a standby/, $log_start),
	'a server starting as a standby discards the file with a LOG line');
ok(!-e $queue_file, 'the file is gone');
$node->stop('fast');
unlink $node->data_dir . '/standby.signal' or die "standby.signal: $!";
$node->start;
release_worker();
fail_login('appdb');
ok($node->poll_query_until('appdb',
		q{SELECT count(*) = 10 FROM sensitive_audit.log WHERE operation = 'LOGIN FAILED'}),
	'started as a primary again, only the new event is written');

for my $db ('appdb', 'postgres')
{
	is($node->safe_psql($db, 'SELECT bool_and(ok) FROM sensitive_audit.verify()'),
		't', "every chain of $db verifies");
}

$node->stop;
done_testing();
