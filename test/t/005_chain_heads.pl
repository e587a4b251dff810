# 005_chain_heads.pl — chain heads kept in shared memory (the library in
# shared_preload_libraries) are only a cache of the log: every way the log
# can move without the committing backend knowing leaves the chains linear
# (DESIGN invariant 4), and with the cache the commit path stops reading
# the chain's head from the log's primary key.
#
# One chain (sensitive_audit.chains = 1) makes every step's seq predictable.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('heads');
$node->init;
# reads of the log are recorded by default; this test counts entries, and reads are 013's subject
$node->append_conf(
	'postgresql.conf', q{
sensitive_audit.log_reads = off
shared_preload_libraries = 'sensitive_audit'
sensitive_audit.chains = 1
max_prepared_transactions = 5
autovacuum = off
});
$node->start;

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION sensitive_audit;
CREATE TABLE acct (id integer PRIMARY KEY, secret text);
INSERT INTO acct SELECT g, 's' || g FROM generate_series(1, 10) g;
SELECT sensitive_audit.tag('acct', 'secret');
});

# Every chain verifies, and its seqs are exactly 1..n.
sub chains_sound
{
	my ($name) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	is( $node->safe_psql(
			'postgres', q{
SELECT (SELECT bool_and(ok) FROM sensitive_audit.verify())
	   AND (SELECT bool_and(lo = 1 AND hi = n)
			  FROM (SELECT min(seq) AS lo, max(seq) AS hi, count(*) AS n
					  FROM sensitive_audit.log GROUP BY chain) c)}),
		't', "$name: every chain verifies and is numbered 1..n");
}

# A superuser's forced change to the log, guards switched off around it.
sub force
{
	my ($sql) = @_;
	$node->safe_psql(
		'postgres', qq{
BEGIN;
ALTER EVENT TRIGGER sensitive_audit_enforce_ddl DISABLE;
ALTER TABLE sensitive_audit.log_entries DISABLE TRIGGER log_guard;
$sql;
ALTER TABLE sensitive_audit.log_entries ENABLE ALWAYS TRIGGER log_guard;
ALTER EVENT TRIGGER sensitive_audit_enforce_ddl ENABLE ALWAYS;
COMMIT;
});
}

sub max_seq
{
	return $node->safe_psql('postgres', 'SELECT max(seq) FROM sensitive_audit.log_entries');
}

# Index scans of the log's primary key made by n single-entry commits in
# one session (the statistics are flushed before they are read).
sub pkey_scans_for_commits
{
	my ($n, $label) = @_;
	my $sql = q{SELECT pg_stat_force_next_flush();};
	$sql .= "UPDATE acct SET secret = '$label.$_' WHERE id = 1 + $_ % 10;" for 1 .. $n;
	my $scans = q{SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = 'log_entries_pkey'};
	my $before = $node->safe_psql('postgres', "SET stats_fetch_consistency = none; $scans");
	# the backend flushes when it goes idle after the request, before the
	# next statement is answered
	$node->safe_psql('postgres', "$sql SELECT pg_stat_force_next_flush(); SELECT 1;");
	my $after = $node->safe_psql('postgres', "SET stats_fetch_consistency = none; $scans");
	return $after - $before;
}

# --- the cache is used ------------------------------------------------------
my $scans = pkey_scans_for_commits(20, 'warm');
cmp_ok($scans, '<=', 1, "20 commits read the chain head from the primary key at most once ($scans scans)");
chains_sound('after 20 commits');

# --- a superuser forces a row onto the head of the chain -------------------
# Without the cache being forgotten, the next commit would collide with the
# forced row on the primary key.
my $head = max_seq();
force(qq{INSERT INTO sensitive_audit.log_entries
  SELECT chain, backend_pid, seq + 1, txid, event_time, context, format, row_key, old_value,
		 'forged', hash, hash
	FROM sensitive_audit.log_entries WHERE seq = $head});
my ($rc, $out, $err) = $node->psql('postgres', q{UPDATE acct SET secret = 'after forced row' WHERE id = 1});
is($rc, 0, 'a commit after a forced row succeeds') or diag $err;
# the forced INSERT is recorded as a RESTORE entry, then the commit links after both
is( $node->safe_psql('postgres', q{SELECT operation || ' ' || new_value FROM sensitive_audit.log WHERE seq = } . ($head + 2)),
	'RESTORE 1 entries', 'the forced row is recorded as a restore');
is( $node->safe_psql('postgres', q{SELECT seq FROM sensitive_audit.log WHERE new_value = 'after forced row'}),
	$head + 3, 'it links after the forced row');
is( $node->safe_psql('postgres',
		q{SELECT ok || ' ' || first_bad_seq || ' ' || (problem LIKE '%content changed%') FROM sensitive_audit.verify()}),
	'false ' . ($head + 1) . ' true', 'verify() reports the forced row, nothing else');

# Put the log back as it was: the forced row and the later entry removed.
force(qq{DELETE FROM sensitive_audit.log_entries WHERE seq > $head});
chains_sound('after the forced rows are removed');

# --- a superuser cuts the tail ---------------------------------------------
# The forcing transaction invalidates the log, so the cache is forgotten and
# the next commit reads the head from the log: it takes the freed seq.  (A
# head kept across the cut would link to the deleted entry instead.)
$node->safe_psql('postgres', q{UPDATE acct SET secret = 'before cut' WHERE id = 2});
$head = max_seq();
force(qq{DELETE FROM sensitive_audit.log_entries WHERE seq = $head});
$node->safe_psql('postgres', q{UPDATE acct SET secret = 'after cut' WHERE id = 2});
is($node->safe_psql('postgres', q{SELECT seq FROM sensitive_audit.log WHERE new_value = 'after cut'}),
	$head, 'after a cut tail, the next entry takes the freed seq');
chains_sound('after a cut tail');

# --- a restore into the live log --------------------------------------------
# Rows inserted under sensitive_audit.restoring alone (no DDL, so no
# invalidation) extend the chain behind the cached head: the guard forgets
# the heads.  Here the "restored" row is a copy of the head one seq on.
$node->safe_psql('postgres', q{UPDATE acct SET secret = 'warm again' WHERE id = 3});
$head = max_seq();
$node->safe_psql(
	'postgres', qq{
SET sensitive_audit.restoring = on;
INSERT INTO sensitive_audit.log_entries
  SELECT chain, backend_pid, seq + 1, txid, event_time, context, format, row_key, old_value,
		 'restored', hash, hash
	FROM sensitive_audit.log_entries WHERE seq = $head;
});
($rc, $out, $err) = $node->psql('postgres', q{UPDATE acct SET secret = 'after restore' WHERE id = 3});
is($rc, 0, 'a commit after a restore into the live log succeeds') or diag $err;
is( $node->safe_psql('postgres', q{SELECT operation || ' ' || new_value FROM sensitive_audit.log WHERE seq = } . ($head + 2)),
	'RESTORE 1 entries', 'the restore is recorded');
is($node->safe_psql('postgres', q{SELECT seq FROM sensitive_audit.log WHERE new_value = 'after restore'}),
	$head + 3, 'it links after the restored row');
force(qq{DELETE FROM sensitive_audit.log_entries WHERE seq > $head});
chains_sound('after the restored rows are removed');

# --- prepared transactions ---------------------------------------------------
# The prepared transaction links at PREPARE and commits in another session.
$node->safe_psql('postgres',
	q{BEGIN; UPDATE acct SET secret = 'prepared' WHERE id = 4; PREPARE TRANSACTION 'p1';});
$node->safe_psql('postgres', q{COMMIT PREPARED 'p1'});
$node->safe_psql('postgres', q{UPDATE acct SET secret = 'after prepared' WHERE id = 4});
is( $node->safe_psql('postgres',
		q{SELECT string_agg(new_value, ',' ORDER BY seq) FROM sensitive_audit.log
		   WHERE new_value IN ('prepared', 'after prepared')}),
	'prepared,after prepared', 'prepared then later entries, in commit order');
$node->safe_psql('postgres',
	q{BEGIN; UPDATE acct SET secret = 'rolled back' WHERE id = 5; PREPARE TRANSACTION 'p2';});
$node->safe_psql('postgres', q{ROLLBACK PREPARED 'p2'});
$node->safe_psql('postgres', q{UPDATE acct SET secret = 'after rollback prepared' WHERE id = 5});
is($node->safe_psql('postgres', q{SELECT count(*) FROM sensitive_audit.log WHERE new_value = 'rolled back'}),
	0, 'a rolled-back prepared transaction leaves nothing');
chains_sound('after prepared transactions');

# --- a commit that fails after linking ---------------------------------------
$node->safe_psql('postgres', q{UPDATE acct SET secret = 'warm' WHERE id = 6});
($rc, $out, $err) = $node->psql('postgres',
	q{CREATE TEMP TABLE t (x int); BEGIN; INSERT INTO t VALUES (1);
	  UPDATE acct SET secret = 'failed' WHERE id = 6; PREPARE TRANSACTION 'p3';});
like($err, qr/temporary objects/, 'a PREPARE fails after its entries were linked');
$node->safe_psql('postgres', q{UPDATE acct SET secret = 'after failure' WHERE id = 6});
is($node->safe_psql('postgres', q{SELECT count(*) FROM sensitive_audit.log WHERE new_value = 'failed'}),
	0, 'the failed transaction left nothing');
chains_sound('after a failed commit');

# --- restart: shared memory starts empty --------------------------------------
$head = max_seq();
$node->restart;
$node->safe_psql('postgres', q{UPDATE acct SET secret = 'after restart' WHERE id = 7});
is($node->safe_psql('postgres', q{SELECT seq FROM sensitive_audit.log WHERE new_value = 'after restart'}),
	$head + 1, 'after a restart the chain continues from the log');
chains_sound('after a restart');

# --- the extension reinstalled: a new log starts at seq 1 --------------------
$node->safe_psql('postgres', q{UPDATE acct SET secret = 'old log' WHERE id = 8});
$node->safe_psql(
	'postgres', q{
SET sensitive_audit.allow_drop = on;
DROP EXTENSION sensitive_audit CASCADE;
CREATE EXTENSION sensitive_audit;
SELECT sensitive_audit.tag('acct', 'secret');
UPDATE acct SET secret = 'new log' WHERE id = 8;
});
is( $node->safe_psql('postgres',
		q{SELECT string_agg(operation || ':' || seq, ',' ORDER BY seq) FROM sensitive_audit.log}),
	'TAG:1,UPDATE:2', 'the new log starts its chain at seq 1');
chains_sound('after the extension was reinstalled');

# --- for comparison: the same commits without the library preloaded ----------
$node->append_conf('postgresql.conf', "shared_preload_libraries = ''\n");
$node->restart;
$scans = pkey_scans_for_commits(20, 'cold');
cmp_ok($scans, '>=', 20, "without preloading, each of 20 commits reads the head from the primary key ($scans scans)");
chains_sound('without preloading');

$node->stop;
done_testing();
