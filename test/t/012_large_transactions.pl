# 012_large_transactions.pl — a transaction's pending entries stay within
# sensitive_audit.pending_memory, spilling to a temporary file:
#  - one transaction of three million entries under a 1MB budget: the
#    backend's peak memory (VmHWM) stays within the budget plus what the same
#    statement costs on an unaudited copy of the table that has an AFTER ROW
#    trigger too (PostgreSQL's own after-trigger queue), every entry lands
#    and the log verifies;
#  - a commit cancelled while it links its entries (pg_cancel_backend, for a
#    COMMIT and for a single statement) leaves nothing behind, the chain
#    intact, and the next committer on that chain unaffected;
#  - ROLLBACK TO SAVEPOINT after entries have spilled: none of the rolled-back
#    entries is logged (nor a context only they used), all the others are;
#    and PREPARE TRANSACTION of spilled entries.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('large');
$node->init;
# Small shared buffers: the pages of shared memory a backend touches count in
# its resident set, and should not blur the comparison.  One chain, so that
# the committer after a cancelled one links onto the same chain.
# reads of the log are recorded by default; this test counts entries, and reads are 013's subject
$node->append_conf(
	'postgresql.conf', q{
sensitive_audit.log_reads = off
shared_preload_libraries = 'sensitive_audit'
shared_buffers = 16MB
max_prepared_transactions = 10
sensitive_audit.chains = 1
log_temp_files = 0
});
$node->start;

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION sensitive_audit;
CREATE TABLE big_sa (id integer PRIMARY KEY, a text, b text, c integer);
CREATE TABLE big_plain (LIKE big_sa INCLUDING ALL);
CREATE FUNCTION noop() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NULL; END$$;
CREATE TRIGGER noop AFTER INSERT ON big_plain FOR EACH ROW EXECUTE FUNCTION noop();
SELECT sensitive_audit.tag('big_sa', 'a', 'b');
CREATE TABLE small (id integer PRIMARY KEY, secret text);
SELECT sensitive_audit.tag('small', 'secret');
});

sub chains_intact
{
	return $node->safe_psql(
		'postgres', q{
SELECT (SELECT bool_and(ok) FROM sensitive_audit.verify())
   AND NOT EXISTS (SELECT FROM sensitive_audit.log GROUP BY chain
                    HAVING count(*) <> max(seq) OR min(seq) <> 1)});
}

# --- memory: three million entries under a 1MB budget ------------------------
my $rows = 1_500_000;

# One session per measurement: VmHWM is the backend's high-water mark.  The
# rows come from a set-returning function in the select list, which streams
# (in FROM it would be stored, and spill, first).
sub peak_kb
{
	my ($table) = @_;
	my $out = $node->safe_psql(
		'postgres', qq{
SET sensitive_audit.pending_memory = '1MB';
BEGIN;
INSERT INTO $table SELECT g, 'a' || g, 'b' || g, g FROM (SELECT generate_series(1, $rows) AS g) s;
COMMIT;
SELECT substring(pg_read_file('/proc/self/status') from 'VmHWM:\\s*(\\d+)');
});
	return $out + 0;
}

my $plain_kb = peak_kb('big_plain');
my $log_offset = -s $node->logfile;
my $sa_kb = peak_kb('big_sa');
my $slack_kb = 8 * 1024;    # the log's own buffers, WAL, caches
note("peak memory: unaudited $plain_kb kB, audited $sa_kb kB");
cmp_ok($sa_kb, '<=', $plain_kb + 1024 + $slack_kb,
	'peak backend memory stays within the budget plus what the unaudited statement takes');
is( $node->safe_psql(
		'postgres', q{SELECT count(*) FROM sensitive_audit.log WHERE table_name = 'big_sa' AND operation = 'INSERT'}),
	2 * $rows, 'every entry lands');
ok($node->log_contains(qr/temporary file: path/, $log_offset), 'the entries spilled to a temporary file');
is(chains_intact(), 't', 'the log verifies');
$node->safe_psql('postgres', 'TRUNCATE big_plain');

# --- a commit cancelled while it links -----------------------------------------

# The pid of the backend once it links (in COMMIT, or the commit of a
# single statement, holding the chain's lock and sleeping per batch); undef
# after 30 s.
sub linking_commit
{
	my ($query) = @_;
	for (1 .. 300)
	{
		my $pid = $node->safe_psql(
			'postgres', qq{
SELECT a.pid FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid
 WHERE a.query LIKE '$query%' AND a.state = 'active' AND a.wait_event_type = 'Extension'
   AND l.locktype = 'advisory' AND l.objsubid = 21313 AND l.granted});
		return $pid if $pid ne '';
		usleep(100_000);
	}
	return undef;
}

my $before = $node->safe_psql('postgres', 'SELECT count(*) FROM sensitive_audit.log');
my $bg = $node->background_psql('postgres', on_error_stop => 0);
$bg->query_until(qr/inserted/, q{
SET sensitive_audit.pending_memory = '64kB';
SET sensitive_audit.test_link_delay = '100ms';
BEGIN;
INSERT INTO small SELECT g, 'cancelled ' || g FROM generate_series(1, 20000) g;
\echo inserted
COMMIT;
});
my $pid = linking_commit('COMMIT');
ok(defined $pid, 'COMMIT is linking its entries');
usleep(500_000);    # a few batches are in
$node->safe_psql('postgres', "SELECT pg_cancel_backend($pid)");
$bg->quit;
like($bg->{stderr}, qr/canceling statement due to user request/, 'the linking COMMIT is cancelled');
is($node->safe_psql('postgres', 'SELECT count(*) FROM small'), '0', 'its transaction rolled back');
is($node->safe_psql('postgres', 'SELECT count(*) FROM sensitive_audit.log'), $before, 'it left no entry');

# The same for a single statement, which commits as it ends.
$bg = $node->background_psql('postgres', on_error_stop => 0);
$bg->query_until(qr/set/, q{
SET sensitive_audit.test_link_delay = '100ms';
\echo set
INSERT INTO small SELECT g, 'cancelled too ' || g FROM generate_series(1, 20000) g;
});
$pid = linking_commit('INSERT INTO small');
ok(defined $pid, 'a single INSERT is linking its entries as it commits');
usleep(500_000);
$node->safe_psql('postgres', "SELECT pg_cancel_backend($pid)");
$bg->quit;
like($bg->{stderr}, qr/canceling statement due to user request/, 'its commit is cancelled');
is($node->safe_psql('postgres', 'SELECT count(*) FROM small'), '0', 'the INSERT rolled back');
is($node->safe_psql('postgres', 'SELECT count(*) FROM sensitive_audit.log'), $before, 'it left no entry either');

# statement_timeout: PostgreSQL stops its timer before a transaction's commit
# processing, where entries are linked, so the link step holds itself to it.
my $t0 = time;
my ($ret, $stdout, $stderr) = $node->psql('postgres', q{
SET sensitive_audit.pending_memory = '64kB';
SET sensitive_audit.test_link_delay = '100ms';
SET statement_timeout = '1500ms';
BEGIN;
INSERT INTO small SELECT g, 'timed out ' || g FROM generate_series(1, 20000) g;
COMMIT;
});
like($stderr, qr/canceling statement due to statement timeout/, 'a COMMIT linking past statement_timeout is cancelled');
like($stderr, qr/linking its audit entries/, '... and says it was linking');
ok(time - $t0 < 20, '... within the timeout, not after linking everything');
is($node->safe_psql('postgres', 'SELECT count(*) FROM small'), '0', 'its transaction rolled back');
is($node->safe_psql('postgres', 'SELECT count(*) FROM sensitive_audit.log'), $before, 'it left no entry');
($ret, $stdout, $stderr) = $node->psql('postgres', q{
SET sensitive_audit.test_link_delay = '100ms';
SET statement_timeout = '1500ms';
INSERT INTO small SELECT g, 'timed out too ' || g FROM generate_series(1, 20000) g;
});
like($stderr, qr/canceling statement due to statement timeout/, 'a single INSERT linking past statement_timeout too');
is($node->safe_psql('postgres', 'SELECT count(*) FROM small'), '0', 'the INSERT rolled back');

$node->safe_psql('postgres', q{INSERT INTO small VALUES (1, 'next')});
is($node->safe_psql('postgres', q{SELECT seq FROM sensitive_audit.log WHERE new_value = 'next'}),
	$before + 1, 'the next committer links onto the chain right after its last entry');
is(chains_intact(), 't', 'the chain verifies, 1..n without gaps');

# --- savepoints and PREPARE with spilled entries --------------------------------
$before = $node->safe_psql('postgres', 'SELECT count(*) FROM sensitive_audit.log');
$log_offset = -s $node->logfile;
$node->safe_psql(
	'postgres', q{
SET sensitive_audit.pending_memory = '64kB';
BEGIN;
SAVEPOINT first;                       -- before any entry: an abort cuts to nothing
INSERT INTO small SELECT g, 'gone ' || g FROM generate_series(100, 3099) g;
ROLLBACK TO first;
INSERT INTO small SELECT g, 'kept-' || g FROM generate_series(100, 3099) g;
SAVEPOINT s;                           -- after the spill: cuts into the file
SET LOCAL application_name = 'rolled back application';
INSERT INTO small SELECT g, 'gone ' || g FROM generate_series(5000, 9999) g;
UPDATE small SET secret = 'gone' WHERE id BETWEEN 100 AND 199;
SAVEPOINT inner_one;
INSERT INTO small SELECT g, 'gone ' || g FROM generate_series(10000, 10999) g;
RELEASE inner_one;
ROLLBACK TO s;
INSERT INTO small SELECT g, 'kept-' || g FROM generate_series(20000, 22999) g;
SAVEPOINT t;
UPDATE small SET secret = 'kept updated' WHERE id BETWEEN 100 AND 149;
RELEASE t;
COMMIT;
});
is( $node->safe_psql(
		'postgres', q{SELECT count(*) FILTER (WHERE new_value LIKE 'gone%'),
                            count(*) FILTER (WHERE new_value LIKE 'kept-%'),
                            count(*) FILTER (WHERE new_value = 'kept updated')
                       FROM sensitive_audit.log WHERE table_name = 'small'}),
	'0|6000|50', 'after ROLLBACK TO SAVEPOINT of spilled entries, none of them is logged and all others are');
is($node->safe_psql('postgres', 'SELECT count(*) FROM sensitive_audit.log'), $before + 6050,
	'nothing else was logged');
ok($node->log_contains(qr/temporary file: path/, $log_offset), 'those entries had spilled');
is( $node->safe_psql(
		'postgres',
		q{SELECT count(*) FROM sensitive_audit.log_contexts WHERE application_name = 'rolled back application'}),
	'0', 'no context is stored for what only the rolled-back entries used');

$node->safe_psql(
	'postgres', q{
SET sensitive_audit.pending_memory = '64kB';
BEGIN;
UPDATE small SET secret = 'prepared ' || id WHERE id >= 20000;
PREPARE TRANSACTION 'spilled';
});
$node->safe_psql('postgres', q{COMMIT PREPARED 'spilled'});
is($node->safe_psql('postgres', q{SELECT count(*) FROM sensitive_audit.log WHERE new_value LIKE 'prepared %'}),
	'3000', 'PREPARE TRANSACTION links spilled entries; COMMIT PREPARED keeps them');
is(chains_intact(), 't', 'the log verifies');
ok(!$node->log_contains(qr/temporary file leak|WARNING/), 'no temporary file is left to the resource owner');

$node->stop;
done_testing();
