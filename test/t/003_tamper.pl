# 003_tamper.pl — what a superuser can still force on the log, with the
# guards switched off, is caught by verify() and verify_or_raise(), each
# kind of tampering reported as such at the right entry; and the guards
# themselves refuse every SQL path that would change history or switch
# capture off (DESIGN invariant 3, verify() contract).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('tamper');
$node->init;
$node->append_conf('postgresql.conf', "sensitive_audit.chains = 3\n");
$node->start;

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION sensitive_audit;
CREATE TABLE t (id integer PRIMARY KEY, secret text, note text);
INSERT INTO t SELECT g, 's' || g, 'n' FROM generate_series(1, 10) g;
SELECT sensitive_audit.tag('t', 'secret');
});

# A committer starts at chain (its backend's pid % 3), so a series of fresh
# connections soon puts entries in several chains (consecutive backends'
# pids tend to differ by 2, hence 3 chains rather than 2).  Each transaction
# changes two rows.
my $round = 0;
my $filled = 0;
while ($round < 100 && !$filled)
{
	$round++;
	my $a = 1 + ($round % 10);
	my $b = 1 + (($round + 5) % 10);
	$filled = $node->safe_psql(
		'postgres', qq{
UPDATE t SET secret = secret || '.$round' WHERE id IN ($a, $b);
SELECT count(*) FILTER (WHERE n >= 8) >= 2 AND sum(n) >= 20
  FROM (SELECT chain, count(*) AS n FROM sensitive_audit.log GROUP BY chain) c});
	$filled = $filled eq 't';
}
ok($filled, "log has at least two chains of at least 8 entries each (after $round transactions)");

my %chain_len = map { split /\|/ } split /\n/,
  $node->safe_psql('postgres', 'SELECT chain, count(*) FROM sensitive_audit.log GROUP BY chain ORDER BY chain');
my @chains = sort { $a <=> $b } keys %chain_len;
# Tamper with the longest chain ($c); the others must keep verifying.  $other
# is the second longest, for the case of two chains tampered at once.
my ($c, $other) = sort { $chain_len{$b} <=> $chain_len{$a} || $a <=> $b } @chains;
my @others = grep { $_ != $c } @chains;
my $n = $chain_len{$c};
my $k = 4;    # a middle entry: 1 < k < k+1 < n
my $total = 0;
$total += $_ for values %chain_len;
note "tampering with chain $c; entries per chain: " . join(', ', map { "$_: $chain_len{$_}" } @chains);

# The entry at k must be an UPDATE with both values (it is: the TAG entry
# and the updates are all there is, and seq 1 is at most the TAG entry).
is($node->safe_psql('postgres',
		"SELECT operation FROM sensitive_audit.log WHERE chain = $c AND seq = $k"),
	'UPDATE', "entry $k of chain $c is an UPDATE");

# Keep a pristine copy to put back between cases.
$node->safe_psql('postgres', 'CREATE TABLE public.log_orig AS SELECT * FROM sensitive_audit.log');
my $orig_hashes = $node->safe_psql('postgres',
	q{SELECT chain, seq, encode(hash, 'hex') FROM sensitive_audit.log ORDER BY 1, 2});

my $guards_off = q{
ALTER EVENT TRIGGER sensitive_audit_guard_ddl DISABLE;
ALTER TABLE sensitive_audit.log DISABLE TRIGGER USER;
};
my $guards_on = q{
ALTER TABLE sensitive_audit.log ENABLE ALWAYS TRIGGER log_guard;
ALTER TABLE sensitive_audit.log ENABLE ALWAYS TRIGGER log_guard_truncate;
ALTER EVENT TRIGGER sensitive_audit_guard_ddl ENABLE ALWAYS;
};

sub force
{
	my ($sql) = @_;
	$node->safe_psql('postgres', "BEGIN; $guards_off $sql; $guards_on COMMIT;");
}

sub restore_log
{
	force(q{DELETE FROM sensitive_audit.log; INSERT INTO sensitive_audit.log SELECT * FROM public.log_orig});
}

sub verify_rows
{
	return $node->safe_psql('postgres',
		q{SELECT chain, entries, ok, coalesce(first_bad_seq::text, '-'), coalesce(problem, '-')
			FROM sensitive_audit.verify() ORDER BY chain});
}

# Expectation for one tampering case: verify() reports the tampered chain
# bad at $bad_seq with a problem matching $problem, counting $entries
# entries, and the other chain intact; verify_or_raise() raises XX001.
sub expect_caught
{
	my ($name, $bad_seq, $problem, $entries) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;

	my %rows;
	for my $line (split /\n/, verify_rows())
	{
		my @f = split /\|/, $line, 5;
		$rows{ $f[0] } = \@f;
	}
	is(join(',', sort { $a <=> $b } keys %rows), join(',', @chains), "$name: verify() returns one row per chain");
	my $r = $rows{$c} // [];
	is($r->[1], $entries, "$name: verify() counts every entry of the tampered chain");
	is($r->[2], 'f', "$name: tampered chain reported not ok");
	is($r->[3], $bad_seq, "$name: first_bad_seq is $bad_seq");
	like($r->[4], $problem, "$name: problem is reported as $problem");
	is( join(',', map { join('|', @{ $rows{$_} // [] }) } @others),
		join(',', map { "$_|$chain_len{$_}|t|-|-" } @others),
		"$name: the other chains still verify");

	my ($out, $err) = ('', '');
	my $rc = $node->psql(
		'postgres',
		"\\set VERBOSITY verbose\nSELECT sensitive_audit.verify_or_raise()",
		stdout => \$out,
		stderr => \$err);
	isnt($rc, 0, "$name: verify_or_raise() fails");
	like(
		$err,
		qr/ERROR:  XX001: audit log chain $c is corrupted at seq $bad_seq\b/,
		"$name: verify_or_raise() raises data_corrupted (XX001) naming chain and seq");
}

sub expect_restored
{
	my ($name) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	is( $node->safe_psql('postgres',
			q{SELECT chain, seq, encode(hash, 'hex') FROM sensitive_audit.log ORDER BY 1, 2}),
		$orig_hashes,
		"$name: original log put back");
	is($node->safe_psql('postgres', 'SELECT sensitive_audit.verify_or_raise()'),
		$total, "$name: original log verifies again");
}

# ---------------------------------------------------------------------------
# The untouched log verifies.
is( verify_rows(),
	join("\n", map { "$_|$chain_len{$_}|t|-|-" } @chains),
	'untouched log: every chain ok');
is($node->safe_psql('postgres', 'SELECT sensitive_audit.verify_or_raise()'),
	$total, 'untouched log: verify_or_raise() returns the number of entries');

# An independent implementation of the format 1 encoding, in SQL: it must
# agree with the stored hash of every entry.  Used below to forge entries
# whose own hash is right.
$node->safe_psql(
	'postgres', q{
CREATE FUNCTION public.tf(v text) RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN v IS NULL THEN '\x00'::bytea
			  ELSE '\x01'::bytea || int4send(octet_length(convert_to(v, getdatabaseencoding())))
				   || convert_to(v, getdatabaseencoding()) END $$;
CREATE FUNCTION public.entry_hash(l sensitive_audit.log) RETURNS bytea LANGUAGE sql STABLE AS $$
  SELECT sha256(
	convert_to('sensitive_audit entry', 'SQL_ASCII') || '\x00'::bytea
	|| int2send(l.format) || int4send(l.chain) || int8send(l.seq) || xid8send(l.txid)
	|| int8send((extract(epoch FROM l.event_time) * 1000000)::bigint)
	|| tf(l.operation) || tf(l.table_schema) || tf(l.table_name) || tf(l.column_name)
	|| tf(l.row_key::text) || tf(l.row_key_source) || tf(l.old_value) || tf(l.new_value)
	|| tf(l.value_type) || tf(l.session_role) || tf(l.effective_role) || tf(l.application_name)
	|| tf(CASE WHEN l.client_addr IS NOT NULL THEN format('%s', l.client_addr) END)
	|| int4send(l.backend_pid) || l.prev_hash) $$;
});
is( $node->safe_psql('postgres',
		q{SELECT count(*) FILTER (WHERE public.entry_hash(l) = l.hash) || '/' || count(*) FROM sensitive_audit.log l}),
	"$total/$total",
	'an independent SQL implementation of format 1 reproduces every stored hash');
is( $node->safe_psql('postgres', q{
SELECT count(*) FROM sensitive_audit.log l
  LEFT JOIN sensitive_audit.log p ON p.chain = l.chain AND p.seq = l.seq - 1
 WHERE l.prev_hash <> coalesce(p.hash, '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea)}),
	'0',
	'every entry links to its predecessor (the first to 32 zero bytes)');

# ---------------------------------------------------------------------------
# 1. Content edits: every hashed field is covered.
my @edits = (
	[ 'new_value edited',       q{new_value = 'tampered'} ],
	[ 'old_value edited',       q{old_value = old_value || 'x'} ],
	[ 'new_value set to NULL',  q{new_value = NULL} ],
	[ 'column_name edited',     q{column_name = 'note'} ],
	[ 'table_name edited',      q{table_name = 't2'} ],
	[ 'row_key edited',         q{row_key = '{"id": "99"}'} ],
	[ 'event_time moved 1us',   q{event_time = event_time + interval '1 microsecond'} ],
	[ 'txid edited',            q{txid = (txid::text::bigint + 1)::text::xid8} ],
	[ 'session_role edited',    q{session_role = 'mallory'} ],
	[ 'effective_role edited',  q{effective_role = 'mallory'} ],
	[ 'application_name edited', q{application_name = coalesce(application_name, '') || 'x'} ],
	[ 'client_addr edited',     q{client_addr = '10.1.2.3'} ],
	[ 'backend_pid edited',     q{backend_pid = backend_pid + 1} ],
	[ 'value_type edited',      q{value_type = 'bytea'} ],
	[ 'operation edited',       q{operation = 'INSERT'} ],
	[ 'stored hash replaced',   q{hash = sha256('x')} ],
);
for my $edit (@edits)
{
	my ($name, $set) = @$edit;
	force("UPDATE sensitive_audit.log SET $set WHERE chain = $c AND seq = $k");
	expect_caught($name, $k, qr/^content changed/, $n);
	restore_log();
}
expect_restored('after content edits');

# Format and malformed hash.
force("UPDATE sensitive_audit.log SET format = 2 WHERE chain = $c AND seq = $k");
expect_caught('format changed', $k, qr/^unsupported format 2/, $n);
restore_log();
force("UPDATE sensitive_audit.log SET hash = substr(hash, 1, 31) WHERE chain = $c AND seq = $k");
expect_caught('hash truncated', $k, qr/^hash missing or malformed/, $n);
restore_log();

# 2. A middle entry deleted: the next one reports the gap.
force("DELETE FROM sensitive_audit.log WHERE chain = $c AND seq = $k");
expect_caught('middle entry deleted', $k + 1, qr/^gap: entries $k\.\.$k are missing/, $n - 1);
restore_log();

# The first entry deleted.
force("DELETE FROM sensitive_audit.log WHERE chain = $c AND seq = 1");
expect_caught('first entry deleted', 2, qr/^gap/, $n - 1);
restore_log();

# Several entries deleted.
force("DELETE FROM sensitive_audit.log WHERE chain = $c AND seq BETWEEN $k AND $k + 2");
expect_caught('three entries deleted', $k + 3, qr/^gap: entries $k\.\.@{[$k + 2]} are missing/, $n - 3);
restore_log();

# 3. Two neighbours swapped (through a temporary seq).
force(qq{
UPDATE sensitive_audit.log SET seq = -1 WHERE chain = $c AND seq = $k;
UPDATE sensitive_audit.log SET seq = $k WHERE chain = $c AND seq = $k + 1;
UPDATE sensitive_audit.log SET seq = $k + 1 WHERE chain = $c AND seq = -1});
expect_caught('two entries swapped', $k, qr/^reordered/, $n);
restore_log();

# 4. A forged entry appended, with a made-up hash and link.
my $forge = qq{
INSERT INTO sensitive_audit.log
SELECT chain, seq + 1, txid, event_time, operation, table_schema, table_name, column_name,
	   row_key, row_key_source, old_value, 'forged value', value_type, session_role,
	   effective_role, application_name, client_addr, backend_pid,
	   decode(repeat('ab', 32), 'hex'), decode(repeat('cd', 32), 'hex'), format
  FROM sensitive_audit.log WHERE chain = $c AND seq = $n};
force($forge);
expect_caught('forged entry appended', $n + 1, qr/^forged/, $n + 1);
restore_log();

# A forged entry at seq 0.
force(qq{
INSERT INTO sensitive_audit.log
SELECT chain, 0, txid, event_time, operation, table_schema, table_name, column_name,
	   row_key, row_key_source, old_value, new_value, value_type, session_role,
	   effective_role, application_name, client_addr, backend_pid, prev_hash, hash, format
  FROM sensitive_audit.log WHERE chain = $c AND seq = 1});
expect_caught('forged entry at seq 0', 0, qr/^forged/, $n + 1);
restore_log();

# 5. prev_hash of entry k pointed elsewhere, nothing recomputed.  prev_hash
# is itself hashed, so both the entry's hash and its link fail.
force(qq{UPDATE sensitive_audit.log SET prev_hash = decode(repeat('00', 32), 'hex')
		  WHERE chain = $c AND seq = $k});
expect_caught('prev_hash changed', $k, qr/^(link broken|content changed|forged)/, $n);
{
	my $problem = $node->safe_psql('postgres',
		"SELECT problem FROM sensitive_audit.verify() WHERE chain = $c");
	note "prev_hash changed is reported as: $problem";
}
restore_log();

# 6. An edit whose entry hash is recomputed correctly (as someone who knows
# the format would do): the entry itself now checks out, so the break shows
# at the next entry's link.
force(qq{
UPDATE sensitive_audit.log SET new_value = 'rewritten' WHERE chain = $c AND seq = $k;
UPDATE sensitive_audit.log l SET hash = public.entry_hash(l) WHERE chain = $c AND seq = $k});
is($node->safe_psql('postgres',
		"SELECT public.entry_hash(l) = l.hash FROM sensitive_audit.log l WHERE chain = $c AND seq = $k"),
	't', 'rewritten entry carries a correct hash of its new content');
expect_caught('entry rewritten with recomputed hash', $k + 1,
	qr/^link broken: previous hash does not match entry $k\b/, $n);
restore_log();

# The same, with the entry deleted and the next one relinked correctly: the
# entry after the hole links fine, but the hole is a gap.
force(qq{
DELETE FROM sensitive_audit.log WHERE chain = $c AND seq = $k;
UPDATE sensitive_audit.log SET prev_hash = (SELECT hash FROM sensitive_audit.log WHERE chain = $c AND seq = $k - 1)
 WHERE chain = $c AND seq = $k + 1;
UPDATE sensitive_audit.log l SET hash = public.entry_hash(l) WHERE chain = $c AND seq = $k + 1});
expect_caught('entry deleted and successor relinked', $k + 1, qr/^gap/, $n - 1);
restore_log();

# Two chains tampered at once: both are reported, each at its own entry.
force(qq{
UPDATE sensitive_audit.log SET new_value = 'x' WHERE chain = $c AND seq = $k;
DELETE FROM sensitive_audit.log WHERE chain = $other AND seq = 2});
is( $node->safe_psql('postgres',
		q{SELECT string_agg(chain || ':' || ok || ':' || coalesce(first_bad_seq::text, '') || ':' || coalesce(split_part(problem, ':', 1), ''), ',' ORDER BY chain)
			FROM sensitive_audit.verify()}),
	join(',', map { $_ == $c ? "$c:false:$k:content changed" : $_ == $other ? "$other:false:3:gap" : "$_:true::" } @chains),
	'two chains tampered: verify() reports each chain\'s own first failure');
restore_log();
expect_restored('after all tampering');

# ---------------------------------------------------------------------------
# The guards.  Everything below runs as the superuser with the guards on.
sub expect_refused
{
	my ($name, $sql, $pattern) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my ($out, $err) = ('', '');
	my $rc = $node->psql('postgres', $sql, stdout => \$out, stderr => \$err);
	isnt($rc, 0, "$name: refused");
	like($err, $pattern, "$name: with the expected error");
}

my $insert_only = qr/ERROR:  the audit log is insert-only/;
expect_refused('UPDATE of the log', "UPDATE sensitive_audit.log SET new_value = 'x' WHERE chain = $c AND seq = $k",
	qr/ERROR:  the audit log is insert-only: UPDATE on sensitive_audit\.log is not allowed/);
expect_refused('UPDATE of the log matching no row', 'UPDATE sensitive_audit.log SET new_value = NULL WHERE false',
	$insert_only);
expect_refused('DELETE from the log', "DELETE FROM sensitive_audit.log WHERE chain = $c AND seq = $n",
	qr/ERROR:  the audit log is insert-only: DELETE on sensitive_audit\.log is not allowed/);
expect_refused('TRUNCATE of the log', 'TRUNCATE sensitive_audit.log',
	qr/ERROR:  the audit log is insert-only: TRUNCATE on sensitive_audit\.log is not allowed/);
expect_refused('INSERT into the log', $forge,
	qr/ERROR:  the audit log is insert-only: INSERT on sensitive_audit\.log is not allowed/);
expect_refused('COPY into the log', 'COPY sensitive_audit.log FROM STDIN',
	$insert_only);
expect_refused('ALTER TABLE on the log (add column)', 'ALTER TABLE sensitive_audit.log ADD COLUMN x integer',
	qr/ERROR:  the audit log cannot be altered/);
expect_refused('ALTER TABLE on the log (disable its guard)', 'ALTER TABLE sensitive_audit.log DISABLE TRIGGER log_guard',
	qr/ERROR:  the audit log cannot be altered/);
expect_refused('ALTER TABLE on the log (disable all user triggers)', 'ALTER TABLE sensitive_audit.log DISABLE TRIGGER USER',
	qr/ERROR:  the audit log cannot be altered/);
expect_refused('ALTER TABLE on the log (rename a column)', 'ALTER TABLE sensitive_audit.log RENAME COLUMN new_value TO nv',
	qr/ERROR:  the audit log cannot be altered/);
expect_refused('DROP TABLE of the log', 'DROP TABLE sensitive_audit.log',
	qr/ERROR:  .*(cannot be dropped|extension sensitive_audit requires it)/);
expect_refused('capture disabled on an audited table',
	'ALTER TABLE t DISABLE TRIGGER sensitive_audit_capture',
	qr/ERROR:  capture cannot be disabled on audited table/);
expect_refused('capture disabled with DISABLE TRIGGER USER', 'ALTER TABLE t DISABLE TRIGGER USER',
	qr/ERROR:  capture cannot be disabled on audited table/);
expect_refused('capture set to ENABLE REPLICA', 'ALTER TABLE t ENABLE REPLICA TRIGGER sensitive_audit_capture',
	qr/ERROR:  capture cannot be disabled on audited table/);
expect_refused('capture trigger dropped', 'DROP TRIGGER sensitive_audit_capture ON t',
	qr/ERROR:  capture trigger of an audited table cannot be dropped/);
expect_refused('DROP EXTENSION while the log has entries', 'DROP EXTENSION sensitive_audit CASCADE',
	qr/ERROR:  cannot drop extension sensitive_audit while the audit log holds entries/);
expect_refused('DROP SCHEMA of the extension', 'DROP SCHEMA sensitive_audit CASCADE',
	qr/ERROR:  cannot drop .*sensitive_audit/);

# The owner of an audited table, not a superuser, is refused just the same.
$node->safe_psql(
	'postgres', q{
CREATE ROLE alice LOGIN;
GRANT CREATE ON SCHEMA public TO alice;
SET ROLE alice;
CREATE TABLE public.owned (id integer PRIMARY KEY, secret text);
RESET ROLE;
SELECT sensitive_audit.tag('public.owned', 'secret');
});
expect_refused('table owner disables capture',
	'SET ROLE alice; ALTER TABLE owned DISABLE TRIGGER sensitive_audit_capture',
	qr/ERROR:  capture cannot be disabled on audited table/);
expect_refused('table owner sets capture to ENABLE REPLICA',
	'SET ROLE alice; ALTER TABLE owned ENABLE REPLICA TRIGGER sensitive_audit_capture',
	qr/ERROR:  capture cannot be disabled on audited table/);
expect_refused('table owner drops the capture trigger',
	'SET ROLE alice; DROP TRIGGER sensitive_audit_capture ON owned',
	qr/ERROR:  capture trigger of an audited table cannot be dropped/);
expect_refused('table owner deletes from the log',
	'SET ROLE alice; DELETE FROM sensitive_audit.log',
	qr/ERROR:  (permission denied|the audit log is insert-only)/);
is($node->safe_psql('postgres',
		q{SELECT string_agg(tgname || ':' || tgenabled::text, ',' ORDER BY tgname) FROM pg_trigger WHERE tgrelid = 'owned'::regclass}),
	'sensitive_audit_capture:A,sensitive_audit_truncate:A',
	'capture triggers of the owner\'s table intact');
$node->safe_psql('postgres', q{SET ROLE alice; INSERT INTO owned VALUES (1, 'by alice')});
is($node->safe_psql('postgres',
		q{SELECT session_role || '/' || effective_role || '/' || operation || '/' || new_value
			FROM sensitive_audit.log WHERE table_name = 'owned' AND operation = 'INSERT'}),
	$node->safe_psql('postgres', 'SELECT session_user') . '/alice/INSERT/by alice',
	'the owner\'s insert is captured, with session and effective role');
$total = $node->safe_psql('postgres', 'SELECT count(*) FROM sensitive_audit.log');
is($node->safe_psql('postgres', q{SELECT count(*) FILTER (WHERE NOT ok) FROM sensitive_audit.verify()}),
	'0', 'log verifies after the owner\'s attempts');

is($node->safe_psql('postgres',
		q{SELECT string_agg(tgname || ':' || tgenabled::text, ',' ORDER BY tgname) FROM pg_trigger WHERE tgrelid = 't'::regclass}),
	'sensitive_audit_capture:A,sensitive_audit_truncate:A',
	'capture triggers still there and ENABLE ALWAYS');
is( $node->safe_psql('postgres',
		q{SELECT count(*) FROM sensitive_audit.log l JOIN public.log_orig o USING (chain, seq)
		   WHERE l.hash = o.hash}),
	$node->safe_psql('postgres', 'SELECT count(*) FROM public.log_orig'),
	'after refused writes and DDL: every original entry still there, unchanged');

# Capture still works after all that.
$node->safe_psql('postgres', q{UPDATE t SET secret = 'after guards' WHERE id = 1});
is($node->safe_psql('postgres',
		q{SELECT count(*) FROM sensitive_audit.log WHERE new_value = 'after guards'}),
	'1', 'capture still records changes');
is($node->safe_psql('postgres', q{SELECT count(*) FILTER (WHERE NOT ok) FROM sensitive_audit.verify()}),
	'0', 'and the log verifies');

# With allow_drop, a superuser can drop the extension (and its history).
$node->safe_psql('postgres', 'DROP FUNCTION public.entry_hash(sensitive_audit.log)');
$node->safe_psql('postgres', 'DROP TABLE public.log_orig');
my ($out, $err) = ('', '');
my $rc = $node->psql('postgres', 'SET sensitive_audit.allow_drop = on; DROP EXTENSION sensitive_audit CASCADE',
	stdout => \$out, stderr => \$err);
is($rc, 0, 'DROP EXTENSION allowed with sensitive_audit.allow_drop = on');
# (CREATE EXTENSION made the schema named in the control file; like any
# schema it makes that way, it is not a member and stays behind, empty.)
is($node->safe_psql('postgres',
		q{SELECT (SELECT count(*) FROM pg_extension WHERE extname = 'sensitive_audit') || '/'
			  || (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
				   WHERE n.nspname = 'sensitive_audit') || '/'
			  || (SELECT count(*) FROM pg_event_trigger WHERE evtname LIKE 'sensitive_audit%') || '/'
			  || (SELECT count(*) FROM pg_trigger WHERE tgrelid = 't'::regclass) || '/'
			  || (SELECT count(*) FROM t)}),
	'0/0/0/0/10', 'extension, log, guards and capture triggers gone; the audited table kept');

# And it can be installed again, starting from an empty history.
$node->safe_psql('postgres', 'CREATE EXTENSION sensitive_audit');
is($node->safe_psql('postgres',
		q{SELECT (SELECT count(*) FROM sensitive_audit.log) || '/' || (SELECT count(*) FROM sensitive_audit.verify())
			  || '/' || sensitive_audit.verify_or_raise()}),
	'0/0/0', 'reinstalled extension starts with an empty, verifying log');

$node->stop;
done_testing();
