# 007_chain_wait.pl — a committer that finds every chain busy (here: held by
# prepared transactions, which keep their chain until COMMIT or ROLLBACK
# PREPARED) waits without blocking anyone else, can be cancelled while it
# waits, leaving nothing behind and every chain intact, and takes whichever
# chain is freed first rather than queueing behind one.  When prepared
# transactions keep it waiting longer than
# sensitive_audit.prepared_wait_warning, it says so (WARNING).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('wait');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
max_prepared_transactions = 10
sensitive_audit.chains = 2
shared_preload_libraries = 'sensitive_audit'
});
$node->start;

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION sensitive_audit;
CREATE TABLE acct (id integer PRIMARY KEY, secret text);
INSERT INTO acct SELECT g, 's' || g FROM generate_series(1, 10) g;
SELECT sensitive_audit.tag('acct', 'secret');
});

# Both chains held by prepared transactions.
sub hold_both_chains
{
	for my $i (1, 2)
	{
		$node->safe_psql('postgres',
			"BEGIN; UPDATE acct SET secret = 'prepared $i' WHERE id = $i; PREPARE TRANSACTION 'hold$i';");
	}
	return;
}

# The backend's pid once it sits in COMMIT, waiting; or undef after 30 s.
sub waiting_commit
{
	for (1 .. 300)
	{
		my $pid = $node->safe_psql('postgres',
			q{SELECT pid FROM pg_stat_activity WHERE query = 'COMMIT;' AND state = 'active'});
		return $pid if $pid ne '';
		usleep(100_000);
	}
	return undef;
}

hold_both_chains();

# --- a waiting committer can be cancelled -----------------------------------
my $log_offset = -s $node->logfile;
my $bg = $node->background_psql('postgres', on_error_stop => 0);
$bg->query_until(qr/updated/, q{
SET sensitive_audit.prepared_wait_warning = '200ms';
BEGIN;
UPDATE acct SET secret = 'cancelled' WHERE id = 3;
\echo updated
COMMIT;
});
my $pid = waiting_commit();
ok(defined $pid, 'with both chains held by prepared transactions, COMMIT waits');
$node->wait_for_log(
	qr/WARNING:  commit has waited more than 200 ms for an audit chain, 2 of 2 chains being held by prepared transactions/,
	$log_offset);
pass('a commit kept waiting by prepared transactions is reported with a WARNING in the server log');

# others are not blocked by the waiter: an unaudited transaction commits
$node->safe_psql('postgres', 'CREATE TABLE other (v int); INSERT INTO other VALUES (1)');
is($node->safe_psql('postgres', 'SELECT count(*) FROM other'), '1',
	'an unaudited commit does not wait behind it');

$node->safe_psql('postgres', "SELECT pg_cancel_backend($pid)");
$bg->quit;
like($bg->{stderr}, qr/canceling statement due to user request/, 'the waiting COMMIT is cancelled');
like($bg->{stderr}, qr/WARNING:  commit has waited more than 200 ms.*\n.*DETAIL:  A prepared transaction keeps/,
	'... and to the waiting client');
is($node->safe_psql('postgres', q{SELECT secret FROM acct WHERE id = 3}), 's3',
	'the cancelled transaction rolled back');
is($node->safe_psql('postgres', q{SELECT count(*) FROM sensitive_audit.log WHERE new_value = 'cancelled'}),
	'0', 'it left no entry');

# --- a waiter takes whichever chain is freed --------------------------------
$bg = $node->background_psql('postgres', on_error_stop => 0);
$bg->query_until(qr/updated/, q{
BEGIN;
UPDATE acct SET secret = 'after wait' WHERE id = 4;
\echo updated
COMMIT;
});
$pid = waiting_commit();
ok(defined $pid, 'a second committer waits too');
# Free the chain it does not start from (its pid % chains): a committer
# queued behind its first choice would wait on.  Which prepared transaction
# holds which chain: the chain locks are advisory-lock tags (objid the chain,
# objsubid 0x5341), held under the prepared transaction's virtual xid.
my $start_chain = $pid % 2;
my $free_first = $node->safe_psql(
	'postgres', qq{
SELECT p.gid FROM pg_locks a
  JOIN pg_locks x ON x.virtualtransaction = a.virtualtransaction AND x.locktype = 'transactionid'
  JOIN pg_prepared_xacts p ON p.transaction = x.transactionid
 WHERE a.locktype = 'advisory' AND a.objsubid = 21313 AND a.objid <> $start_chain});
like($free_first, qr/^hold[12]$/, 'the prepared transaction holding the other chain is found');
$node->safe_psql('postgres', "COMMIT PREPARED '$free_first'");
my $freed_chain_of = 1 - $start_chain;
my $done = 0;
for (1 .. 300)
{
	if ($node->safe_psql('postgres', q{SELECT count(*) FROM sensitive_audit.log WHERE new_value = 'after wait'}) eq '1')
	{
		$done = 1;
		last;
	}
	usleep(100_000);
}
ok($done, 'the waiter commits as soon as one chain is freed, whichever it is');
is($node->safe_psql('postgres', q{SELECT chain FROM sensitive_audit.log WHERE new_value = 'after wait'}),
	$freed_chain_of, '... on the chain that was freed, not the one it started from');
$bg->quit;

$node->safe_psql('postgres', "ROLLBACK PREPARED '" . ($free_first eq 'hold1' ? 'hold2' : 'hold1') . "'");
is( $node->safe_psql('postgres',
		q{SELECT (SELECT bool_and(ok) FROM sensitive_audit.verify())
			 AND NOT EXISTS (SELECT FROM sensitive_audit.log GROUP BY chain
							  HAVING count(*) <> max(seq) OR min(seq) <> 1)}),
	't', 'every chain verifies and runs 1..n without gaps');
$node->safe_psql('postgres', q{UPDATE acct SET secret = 'later' WHERE id = 5});
is($node->safe_psql('postgres', q{SELECT count(*) FROM sensitive_audit.log WHERE new_value = 'later'}),
	'1', 'and capture carries on');

$node->stop;
done_testing();
