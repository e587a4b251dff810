# 011_verify_memory.pl — verify() keeps its memory within
# maintenance_work_mem whatever the number of stored contexts: past the
# budget it reads each context through the primary key when an entry needs
# it, into a cache it empties when full, with the same verdicts, tampered
# contexts included.
#
# Memory is the growth of the backend's peak resident size (VmHWM, read
# from /proc/self/status by the backend itself) over a second verify() in
# the same session, the peak reset in between (/proc/self/clear_refs), so
# that the shared buffers the first one touched do not count; compared
# between a session with a budget of 1MB and one with 1GB over the same
# log of 60,000 contexts (one application_name per entry, about 30MB of
# contexts).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

plan skip_all => 'needs /proc/self/status' unless -r '/proc/self/status';

my $node = PostgreSQL::Test::Cluster->new('verify_memory');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'sensitive_audit'\n");
$node->start;

my $contexts = 60000;
$node->safe_psql(
	'postgres', qq{
CREATE EXTENSION sensitive_audit;
CREATE TABLE subjects (id integer PRIMARY KEY, secret text);
SELECT sensitive_audit.tag('subjects', 'secret');
DO \$\$
BEGIN
	FOR i IN 1..$contexts LOOP
		PERFORM set_config('application_name', 'client ' || i || ' ' || repeat('x', 40), true);
		INSERT INTO subjects VALUES (i, 'secret ' || i);
	END LOOP;
END;
\$\$;
});
is($node->safe_psql('postgres', 'SELECT count(*) FROM sensitive_audit.log_contexts') >= $contexts,
	1, "at least $contexts contexts stored");

# Peak memory (kB) of a fresh backend that verifies under a budget, and its verdict.
sub verify_with
{
	my ($budget) = @_;
	my $out = $node->safe_psql(
		'postgres', qq{
SET maintenance_work_mem = '$budget';
SELECT count(*) FROM sensitive_audit.verify() \\g /dev/null
COPY (SELECT 5) TO '/proc/self/clear_refs';
SELECT (regexp_match(pg_read_file('/proc/self/status'), 'VmHWM:\\s+(\\d+)'))[1];
SELECT string_agg(chain || ':' || entries || ':' || ok || ':' || coalesce(problem, '-'), ',' ORDER BY chain)
  FROM sensitive_audit.verify();
SELECT (regexp_match(pg_read_file('/proc/self/status'), 'VmHWM:\\s+(\\d+)'))[1];
});
	my ($before, $verdict, $after) = split /\n/, $out;
	return ($after - $before, $verdict);
}

my ($small_growth, $small_verdict) = verify_with('1MB');
my ($large_growth, $large_verdict) = verify_with('1GB');
note("peak growth: ${small_growth} kB with 1MB, ${large_growth} kB with 1GB");
is($small_verdict, $large_verdict, 'the same verdict within 1MB as with all contexts in memory');
unlike($small_verdict, qr/:false:/, 'every chain verifies');
cmp_ok($large_growth, '>', 10_000, 'with a large budget, the contexts are all read into memory (> 10MB)');
cmp_ok($small_growth, '<', 6_000, 'within 1MB, verify() grows the backend by less than 6MB');

# Tampered contexts are caught the same way when read on demand: a
# context stored twice (one copy forged), and a context gone.
sub force
{
	my ($sql) = @_;
	return $node->safe_psql(
		'postgres', qq{
BEGIN;
ALTER EVENT TRIGGER sensitive_audit_enforce_ddl DISABLE;
ALTER EVENT TRIGGER sensitive_audit_enforce_drop DISABLE;
ALTER TABLE sensitive_audit.log_contexts DISABLE TRIGGER USER;
$sql;
SET maintenance_work_mem = '1MB';
SELECT string_agg(ok || ':' || coalesce(first_bad_seq::text, '-') || ':' || coalesce(problem, '-'), ',')
  FROM sensitive_audit.verify() WHERE NOT ok;
ROLLBACK;
});
}
my $seq = $node->safe_psql('postgres',
	q{SELECT seq FROM sensitive_audit.log WHERE table_name = 'subjects' AND new_value = 'secret 30000'});
my $ctx = qq{(SELECT e.context FROM sensitive_audit.log_entries e
				JOIN sensitive_audit.log l USING (chain, seq)
			   WHERE l.table_name = 'subjects' AND l.new_value = 'secret 30000')};
like(
	force(qq{
ALTER TABLE sensitive_audit.log_contexts DROP CONSTRAINT log_contexts_pkey;
CREATE INDEX log_contexts_pkey ON sensitive_audit.log_contexts (id);
INSERT INTO sensitive_audit.log_contexts
SELECT c.id, c.operation, c.table_schema, c.table_name, c.column_name, c.row_key_source, c.value_type,
	   'mallory', c.effective_role, c.application_name, c.client_addr
  FROM sensitive_audit.log_contexts c WHERE c.id = $ctx}),
	qr/^false:$seq:content changed/,
	'within 1MB: a context stored twice, one copy forged, fails the entry that uses it');
like(force("DELETE FROM sensitive_audit.log_contexts WHERE id = $ctx"),
	qr/^false:$seq:content changed/, 'within 1MB: an entry whose context is gone fails');

$node->stop;
done_testing();
