# 002_crash_restart.pl — chains stay linear and complete across a crash in
# the middle of concurrent audited commits, and across prepared transactions
# that outlive a restart (DESIGN invariants 1 and 4).
#
# Every audited transaction also inserts its own xid into an unaudited
# ledger table, so after the crash the ledger says exactly which
# transactions committed; the log must hold an entry for each of them and
# for nothing else.  The library is preloaded, so chain heads are kept in
# shared memory (the other TAP tests run without): a crash must leave the
# chains continuing from the log, not from anything remembered.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('crash');
$node->init;
# reads of the log are recorded by default; this test counts entries, and reads are 013's subject
$node->append_conf(
	'postgresql.conf', q{
sensitive_audit.log_reads = off
max_prepared_transactions = 10
sensitive_audit.chains = 8
restart_after_crash = on
shared_preload_libraries = 'sensitive_audit'

});
$node->start;

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION sensitive_audit;
CREATE TABLE acct (id integer PRIMARY KEY, balance integer NOT NULL, note text);
INSERT INTO acct SELECT g, 0, 'n' FROM generate_series(1, 120) g;
SELECT sensitive_audit.tag('acct', 'balance');
CREATE TABLE ledger (txid xid8 NOT NULL DEFAULT pg_current_xact_id(), id integer NOT NULL, label text);
});

# Invariant checks shared by every phase, in one round trip.  $what names
# the phase.
sub check_chains
{
	my ($what) = @_;

	my ($verify, $total, $gaps, $mismatch, $n_update, $n_ledger, $split, $bad_values, $state) =
	  split /\|/, $node->safe_psql(
		'postgres', q{
SELECT (SELECT count(*) FILTER (WHERE ok) || '/' || count(*) || '/' || sum(entries)
		  FROM sensitive_audit.verify()),
	   (SELECT count(DISTINCT chain) || '/' || count(DISTINCT chain) || '/' || count(*)
		  FROM sensitive_audit.log),
	   (SELECT count(*) FROM (SELECT chain FROM sensitive_audit.log GROUP BY chain
							   HAVING count(*) <> max(seq) OR min(seq) <> 1) bad),
	   (SELECT count(*) FROM
		  (SELECT txid, count(*) AS n FROM sensitive_audit.log WHERE operation = 'UPDATE' GROUP BY txid) l
		  FULL JOIN (SELECT txid, count(*) AS n FROM ledger GROUP BY txid) g USING (txid)
		 WHERE l.n IS DISTINCT FROM g.n),
	   (SELECT count(*) FROM sensitive_audit.log WHERE operation = 'UPDATE'),
	   (SELECT count(*) FROM ledger),
	   (SELECT count(*) FROM (SELECT txid FROM sensitive_audit.log GROUP BY txid
							   HAVING count(DISTINCT chain) > 1
								   OR max(seq) - min(seq) + 1 <> count(*)) split),
	   (SELECT count(*) FROM sensitive_audit.log
		 WHERE CASE WHEN operation = 'UPDATE' THEN new_value::integer <> old_value::integer + 1 END),
	   (SELECT sum(balance) FROM acct) = (SELECT count(*) FROM ledger)});

	is($verify, $total, "$what: verify() reports every chain ok and counts every entry");
	is($gaps, '0', "$what: every chain's seq runs 1..n with no gap or duplicate");
	is($mismatch, '0',
		"$what: entries exist for exactly the committed transactions (same multiset of txids as the ledger)");
	is($n_update, $n_ledger, "$what: as many UPDATE entries as ledger rows");
	is($split, '0', "$what: each transaction's entries are consecutive in a single chain");
	is($bad_values, '0', "$what: every UPDATE entry records old and new value of one increment");
	is($state, 't', "$what: table state agrees with the ledger");
	return $n_ledger;
}

# The chain whose lock a prepared transaction holds (the chain lock is an
# advisory-type lock: 0x53415544, chain number, 0x5341).  Before a restart
# it is listed under the preparing backend's virtual xid, after one under
# the prepared transaction's dummy -1/xid.
sub prepared_chain
{
	my ($gid) = @_;
	return $node->safe_psql(
		'postgres', qq{
SELECT DISTINCT l.objid FROM pg_locks l, pg_prepared_xacts p
 WHERE p.gid = '$gid' AND l.locktype = 'advisory' AND l.classid = 1396790596 AND l.objsubid = 21313
   AND (l.virtualtransaction = '-1/' || p.transaction::text
		OR l.virtualtransaction IN (SELECT x.virtualtransaction FROM pg_locks x
									 WHERE x.locktype = 'transactionid' AND x.transactionid = p.transaction))
   AND l.mode = 'ExclusiveLock' AND l.granted});
}

# ---------------------------------------------------------------------------
# Prepared transactions that hold audited changes across a restart.  They
# touch rows 101..120, which the concurrent writers below never touch.
$node->safe_psql(
	'postgres', q{
BEGIN;
UPDATE acct SET balance = balance + 1 WHERE id BETWEEN 101 AND 103;
INSERT INTO ledger (id, label) SELECT g, 'p_commit' FROM generate_series(101, 103) g;
PREPARE TRANSACTION 'p_commit';
BEGIN;
UPDATE acct SET balance = balance + 1 WHERE id BETWEEN 111 AND 112;
INSERT INTO ledger (id, label) SELECT g, 'p_rollback' FROM generate_series(111, 112) g;
PREPARE TRANSACTION 'p_rollback';
});
my %prepared_xid = map { split /\|/ } split /\n/,
  $node->safe_psql('postgres', 'SELECT gid, transaction FROM pg_prepared_xacts');
is(scalar(keys %prepared_xid), 2, 'two prepared transactions');
my $commit_chain = prepared_chain('p_commit');
my $rollback_chain = prepared_chain('p_rollback');
like($commit_chain, qr/^\d+$/, 'prepared: p_commit holds a chain lock');
like($rollback_chain, qr/^\d+$/, 'prepared: p_rollback holds a chain lock');
isnt($commit_chain, $rollback_chain, 'prepared: the two hold different chains');

# While they are pending their entries are invisible and everything verifies.
is($node->safe_psql('postgres', q{SELECT count(*) FROM sensitive_audit.log WHERE operation = 'UPDATE'}),
	'0', 'prepared: no visible UPDATE entry before COMMIT PREPARED');
is($node->safe_psql('postgres', q{SELECT count(*) FILTER (WHERE NOT ok) FROM sensitive_audit.verify()}),
	'0', 'prepared: log verifies while prepared transactions are pending');

# ---------------------------------------------------------------------------
# Concurrent committed single-row UPDATEs of the tagged column, then a crash.
my $script = $PostgreSQL::Test::Utils::tmp_check . '/update.sql';
PostgreSQL::Test::Utils::append_to_file(
	$script, q{\set id random(1, 100)
BEGIN;
UPDATE acct SET balance = balance + 1 WHERE id = :id;
INSERT INTO ledger (id, label) VALUES (:id, 'bench');
COMMIT;
});

my ($bench_out, $bench_err) = ('', '');
my $bench = IPC::Run::start(
	[
		'pgbench', '--no-vacuum', '--client=4', '--jobs=2', '--time=60',
		'--file=' . $script, '--host=' . $node->host, '--port=' . $node->port,
		'postgres'
	],
	'>', \$bench_out, '2>', \$bench_err);

# Let the writers commit a good number of transactions first.
my $committed = 0;
for (my $i = 0; $i < 300; $i++)
{
	$committed = $node->safe_psql('postgres', 'SELECT count(*) FROM ledger');
	last if $committed >= 1000;
	usleep(100_000);
}
cmp_ok($committed, '>=', 1000, 'writers committed transactions before the crash');

my $postmaster = $node->{_pid};
$node->kill9;
$bench->finish;    # pgbench fails: its connections were cut
# Wait for the killed postmaster to be gone (it may linger as a zombie for a
# moment) and for its backends to notice and exit, then start again.
for (my $i = 0; $i < 300 && kill(0, $postmaster); $i++)
{
	usleep(100_000);
}
my $started = 0;
for (my $i = 0; $i < 30 && !$started; $i++)
{
	$started = $node->start(fail_ok => 1);
	usleep(500_000) unless $started;
}
ok($started, 'restarted after kill -9 of the postmaster');

my $after = $node->safe_psql('postgres', q{SELECT count(*) FROM ledger WHERE label = 'bench'});
cmp_ok($after, '>=', $committed, 'the committed transactions survived the crash');
note "pgbench committed $after transactions before the crash";
is($node->safe_psql('postgres', 'SELECT gid FROM pg_prepared_xacts ORDER BY gid'),
	"p_commit\np_rollback", 'prepared transactions survived the crash');
is(prepared_chain('p_commit') . '/' . prepared_chain('p_rollback'),
	"$commit_chain/$rollback_chain", 'prepared transactions still hold their chain locks after the crash');

# the event queue did not survive: one LOST entry of unknown count says so
# (waited for, so that the checks below do not race with its writing)
ok($node->poll_query_until('postgres', q{SELECT count(*) = 1 FROM sensitive_audit.log
  WHERE operation = 'LOST' AND new_value::jsonb->>'reason' = 'crash restart'}),
	'the crash is recorded as a LOST entry of unknown count');
check_chains('after crash');

# ---------------------------------------------------------------------------
# Resolve the prepared transactions after the restart.  Before rolling
# p_rollback back, fill every other chain with blocking prepared
# transactions, so that the next committer can only take the chain
# p_rollback had linked into: that chain must carry on from its last
# committed entry, as if p_rollback had never been.
my $nchains = 8;
my @blockers = map { "blocker_$_" } 1 .. $nchains - 2;
for my $i (0 .. $#blockers)
{
	my $id = 104 + $i;
	$node->safe_psql(
		'postgres', qq{
BEGIN;
UPDATE acct SET balance = balance + 1 WHERE id = $id;
INSERT INTO ledger (id, label) VALUES ($id, 'blocker');
PREPARE TRANSACTION '$blockers[$i]';});
}
is( $node->safe_psql(
		'postgres', q{
SELECT count(DISTINCT l.objid) FROM pg_locks l
 WHERE l.locktype = 'advisory' AND l.classid = 1396790596 AND l.objsubid = 21313 AND l.granted}),
	$nchains, 'every chain is now held by a prepared transaction');

my $head_before = $node->safe_psql('postgres',
	"SELECT coalesce(max(seq), 0) FROM sensitive_audit.log WHERE chain = $rollback_chain");
$node->safe_psql('postgres', q{ROLLBACK PREPARED 'p_rollback'});
is( $node->safe_psql(
		'postgres', qq{
SELECT count(*) FROM sensitive_audit.log WHERE txid::text::bigint % 4294967296 = $prepared_xid{p_rollback}}),
	'0',
	'ROLLBACK PREPARED after restart: no entries');

# The only free chain now is the one p_rollback held.
$node->safe_psql(
	'postgres', q{
BEGIN;
UPDATE acct SET balance = balance + 1 WHERE id = 115;
INSERT INTO ledger (id, label) VALUES (115, 'probe');
COMMIT;});
is( $node->safe_psql(
		'postgres', q{
SELECT chain || '/' || seq FROM sensitive_audit.log WHERE row_key = '{"id": "115"}' AND operation = 'UPDATE'}),
	"$rollback_chain/" . ($head_before + 1),
	'next commit in the rolled-back transaction\'s chain continues right after its last committed entry');

$node->safe_psql('postgres', q{COMMIT PREPARED 'p_commit'});
$node->safe_psql('postgres', "ROLLBACK PREPARED '$_'") for @blockers;
is( $node->safe_psql(
		'postgres', qq{
SELECT count(*) || '/' || min(chain) || '/' || max(chain) || '/' || string_agg(row_key::text, ',' ORDER BY seq)
  FROM sensitive_audit.log WHERE txid::text::bigint % 4294967296 = $prepared_xid{p_commit}}),
	qq{3/$commit_chain/$commit_chain/{"id": "101"},{"id": "102"},{"id": "103"}},
	'COMMIT PREPARED after restart: its three entries are in the chain it held');
is($node->safe_psql('postgres', q{SELECT count(*) FROM sensitive_audit.log WHERE (row_key->>'id')::int BETWEEN 104 AND 112}),
	'0', 'rolled-back blockers left no entries');
is($node->safe_psql('postgres', q{SELECT string_agg(balance::text, ',' ORDER BY id) FROM acct WHERE id IN (101, 104, 111, 115)}),
	"1,0,0,1", 'prepared changes committed and rolled back as asked');
is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_prepared_xacts'), '0', 'no prepared transaction left');

check_chains('after resolving prepared transactions');

# More concurrent work after the restart.
$node->pgbench(
	'--no-vacuum --client=4 --jobs=2 --transactions=50',
	0,
	[qr{processed: 200/200}],
	[qr{^$}],
	'more audited commits after the restart',
	{ 'update_again' => q{\set id random(1, 100)
BEGIN;
UPDATE acct SET balance = balance + 1 WHERE id = :id;
INSERT INTO ledger (id, label) VALUES (:id, 'again');
COMMIT;
} });

check_chains('after more commits');

# A second crash, with no load, right after commits: still consistent.
my $before_stop = $node->safe_psql('postgres', 'SELECT count(*) FROM ledger');
$node->stop('immediate');
$node->start;
ok($node->poll_query_until('postgres', q{SELECT count(*) = 2 FROM sensitive_audit.log
  WHERE operation = 'LOST' AND new_value::jsonb->>'reason' = 'crash restart'}),
	'and so is the immediate stop');
is(check_chains('after immediate stop'), $before_stop, 'after immediate stop: nothing lost');

$node->stop;
done_testing();
