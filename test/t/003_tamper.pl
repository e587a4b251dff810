# 003_tamper.pl — what a superuser can still force on the log, with the
# guards switched off, is caught by verify() and verify_or_raise(), each
# kind of tampering reported as such at the right entry; and the guards
# themselves refuse every SQL path that would change history or switch
# capture off (DESIGN invariant 3, verify() contract).
#
# The log is read through the view sensitive_audit.log; it is stored in two
# tables, log_entries and log_contexts (the fields entries share), and both
# are tampered with here: an entry's own fields, the context one entry
# points to, and a context row shared by many entries.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('tamper');
$node->init;
# reads of the log are recorded by default; this test counts entries, and reads are 013's subject
$node->append_conf('postgresql.conf', "sensitive_audit.chains = 3\nsensitive_audit.log_reads = off\n");
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

# The log is stored in two tables behind the view sensitive_audit.log:
# log_entries, one row per entry, and log_contexts, the fields that repeat
# from entry to entry (operation, table, column, roles, client), stored once
# and pointed to by log_entries.context.  Tampering therefore means writing
# to those two tables; the view only reads them.
my @ctx_cols = qw(operation table_schema table_name column_name row_key_source value_type
  session_role effective_role application_name client_addr);
my $ctx_list = join(', ', @ctx_cols);
my $entry_cols =
  'chain, backend_pid, seq, txid, event_time, context, format, row_key, old_value, new_value, prev_hash, hash';

# The context of entry k, and the entries that share it.  Rewriting that one
# row in place changes every one of them, so the cases below need it shared
# (else "rewritten in place" and "one entry re-pointed" would be the same).
my $ctx_k = $node->safe_psql('postgres',
	"SELECT context FROM sensitive_audit.log_entries WHERE chain = $c AND seq = $k");
like($ctx_k, qr/^-?\d+$/, "entry $k of chain $c points to a context");
is( $node->safe_psql('postgres',
		q{SELECT count(*) FILTER (WHERE c.id IS NULL) || '/' || count(DISTINCT e.context) || '<' || count(*)
			FROM sensitive_audit.log_entries e LEFT JOIN sensitive_audit.log_contexts c ON c.id = e.context}),
	'0/' . $node->safe_psql('postgres', 'SELECT count(DISTINCT context) FROM sensitive_audit.log_entries')
	  . "<$total",
	'every entry has its context, and contexts are shared by several entries');
cmp_ok($node->safe_psql('postgres', "SELECT count(*) FROM sensitive_audit.log_entries WHERE context = $ctx_k"),
	'>', 1, "the context of entry $k is shared with other entries");
is( $node->safe_psql('postgres',
		q{SELECT count(*) FROM sensitive_audit.log_contexts GROUP BY id HAVING count(*) > 1}),
	'', 'context ids are unique');

# Keep a pristine copy of both tables to put back between cases.
$node->safe_psql(
	'postgres', q{
CREATE TABLE public.entries_orig AS SELECT * FROM sensitive_audit.log_entries;
CREATE TABLE public.contexts_orig AS SELECT * FROM sensitive_audit.log_contexts;
});
my $orig_hashes = $node->safe_psql('postgres',
	q{SELECT chain, seq, encode(hash, 'hex') FROM sensitive_audit.log ORDER BY 1, 2});
my $orig_view = $node->safe_psql('postgres',
	q{SELECT l::text FROM sensitive_audit.log l ORDER BY chain, seq});

# A superuser can switch the guards off: the DDL and drop event triggers, and the
# statement-level guard triggers of both tables (and the trigger that records
# a restore, so that forced rows are only what the test puts there).
my $guards_off = q{
ALTER EVENT TRIGGER sensitive_audit_enforce_ddl DISABLE;
ALTER EVENT TRIGGER sensitive_audit_enforce_drop DISABLE;
ALTER TABLE sensitive_audit.log_entries DISABLE TRIGGER USER;
ALTER TABLE sensitive_audit.log_contexts DISABLE TRIGGER USER;
};
my $guards_on = q{
ALTER TABLE sensitive_audit.log_entries ENABLE ALWAYS TRIGGER log_guard;
ALTER TABLE sensitive_audit.log_entries ENABLE ALWAYS TRIGGER log_guard_truncate;
ALTER TABLE sensitive_audit.log_contexts ENABLE ALWAYS TRIGGER log_guard;
ALTER TABLE sensitive_audit.log_contexts ENABLE ALWAYS TRIGGER log_guard_truncate;
ALTER TABLE sensitive_audit.log_entries ENABLE ALWAYS TRIGGER log_restored;
ALTER TABLE sensitive_audit.log_contexts ENABLE ALWAYS TRIGGER log_contexts_restore;
ALTER EVENT TRIGGER sensitive_audit_enforce_drop ENABLE ALWAYS;
ALTER EVENT TRIGGER sensitive_audit_enforce_ddl ENABLE ALWAYS;
};

sub force
{
	my ($sql) = @_;
	$node->safe_psql('postgres', "BEGIN; $guards_off $sql; $guards_on COMMIT;");
}

# Puts both tables back as they were (and the primary key of log_contexts,
# which one case drops).
sub restore_log
{
	force(q{
DELETE FROM sensitive_audit.log_entries;
DELETE FROM sensitive_audit.log_contexts;
INSERT INTO sensitive_audit.log_contexts SELECT * FROM public.contexts_orig;
INSERT INTO sensitive_audit.log_entries SELECT * FROM public.entries_orig;
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'log_contexts_pkey'
				   AND conrelid = 'sensitive_audit.log_contexts'::regclass) THEN
	ALTER TABLE sensitive_audit.log_contexts ADD CONSTRAINT log_contexts_pkey PRIMARY KEY (id);
  END IF;
END $$});
}

sub verify_rows
{
	return $node->safe_psql('postgres',
		q{SELECT chain, entries, ok, coalesce(first_bad_seq::text, '-'), coalesce(problem, '-')
			FROM sensitive_audit.verify() ORDER BY chain});
}

sub verify_table
{
	my %rows;
	for my $line (split /\n/, verify_rows())
	{
		my @f = split /\|/, $line, 5;
		$rows{ $f[0] } = \@f;
	}
	return %rows;
}

# verify_or_raise() must fail with data_corrupted naming $chain and $seq.
sub expect_raise
{
	my ($name, $chain, $seq, $detail) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;

	my ($out, $err) = ('', '');
	my $rc = $node->psql(
		'postgres',
		"\\set VERBOSITY verbose\nSELECT sensitive_audit.verify_or_raise()",
		stdout => \$out,
		stderr => \$err);
	isnt($rc, 0, "$name: verify_or_raise() fails");
	like(
		$err,
		qr/ERROR:  XX001: audit log chain $chain is corrupted at seq $seq\b/,
		"$name: verify_or_raise() raises data_corrupted (XX001) naming chain and seq");
	like($err, $detail, "$name: verify_or_raise() details the problem") if defined $detail;
}

# Expectation for one tampering case: verify() reports the tampered chain
# bad at $bad_seq with a problem matching $problem, counting $entries
# entries, and the other chains intact; verify_or_raise() raises XX001.
sub expect_caught
{
	my ($name, $bad_seq, $problem, $entries) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;

	my %rows = verify_table();
	is(join(',', sort { $a <=> $b } keys %rows), join(',', @chains), "$name: verify() returns one row per chain");
	my $r = $rows{$c} // [];
	is($r->[1], $entries, "$name: verify() counts every entry of the tampered chain");
	is($r->[2], 'f', "$name: tampered chain reported not ok");
	is($r->[3], $bad_seq, "$name: first_bad_seq is $bad_seq");
	like($r->[4], $problem, "$name: problem is reported as $problem");
	is( join(',', map { join('|', @{ $rows{$_} // [] }) } @others),
		join(',', map { "$_|$chain_len{$_}|t|-|-" } @others),
		"$name: the other chains still verify");
	expect_raise($name, $c, $bad_seq);
}

# Expectation when the content of context $ctx changed for every entry that
# points to it (rewritten in place, deleted, duplicated): in each chain, the
# first entry pointing to it (the lowest seq) is reported "content changed";
# chains with no such entry verify.  verify_or_raise() names the lowest
# affected chain.  The entries themselves are untouched, so the counts stay.
sub expect_caught_shared
{
	my ($name, $ctx) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;

	my %first = map { split /\|/ } split /\n/,
	  $node->safe_psql('postgres',
		"SELECT chain, min(seq) FROM sensitive_audit.log_entries WHERE context = $ctx GROUP BY chain");
	ok(exists $first{$c}, "$name: chain $c has entries with context $ctx");
	my @hit = sort { $a <=> $b } keys %first;
	note "$name: context $ctx first used at " . join(', ', map { "chain $_ seq $first{$_}" } @hit);

	my %rows = verify_table();
	is(join(',', sort { $a <=> $b } keys %rows), join(',', @chains), "$name: verify() returns one row per chain");
	is( join(',', map { join('|', @{ $rows{$_} // [] }[ 0 .. 3 ]) } @chains),
		join(',', map { exists $first{$_} ? "$_|$chain_len{$_}|f|$first{$_}" : "$_|$chain_len{$_}|t|-" } @chains),
		"$name: each chain using the context fails at its first entry using it, the others verify");
	is( join(',', map { $rows{$_}[4] =~ /^content changed/ ? 'content changed' : $rows{$_}[4] } @hit),
		join(',', map { 'content changed' } @hit),
		"$name: reported as content changed in every affected chain");
	expect_raise($name, $hit[0], $first{ $hit[0] },
		qr/DETAIL:  content changed[^\n]*; @{[scalar @hit]} of @{[scalar @chains]} chains fail verification/);
}

sub expect_restored
{
	my ($name) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	is( $node->safe_psql('postgres',
			q{SELECT chain, seq, encode(hash, 'hex') FROM sensitive_audit.log ORDER BY 1, 2}),
		$orig_hashes,
		"$name: original log put back");
	is($node->safe_psql('postgres', q{SELECT l::text FROM sensitive_audit.log l ORDER BY chain, seq}),
		$orig_view, "$name: the view shows the original entries again");
	is($node->safe_psql('postgres', 'SELECT sensitive_audit.verify_or_raise()'),
		$total, "$name: original log verifies again");
	is( $node->safe_psql('postgres',
			q{SELECT string_agg(tgrelid::regclass::text || '.' || tgname || ':' || tgenabled::text, ','
								ORDER BY tgrelid::regclass::text, tgname)
				FROM pg_trigger
			   WHERE tgrelid IN ('sensitive_audit.log_entries'::regclass, 'sensitive_audit.log_contexts'::regclass)
				 AND NOT tgisinternal}),
		join(',',
			map { "sensitive_audit.$_:A" }
			  qw(log_contexts.log_contexts_restore log_contexts.log_guard log_contexts.log_guard_truncate
			  log_entries.log_guard log_entries.log_guard_truncate log_entries.log_restored)),
		"$name: the guards of both tables are back, ENABLE ALWAYS");
	is( $node->safe_psql('postgres',
			q{SELECT string_agg(conrelid::regclass::text || '.' || conname, ',' ORDER BY conrelid::regclass::text)
				FROM pg_constraint
			   WHERE conrelid IN ('sensitive_audit.log_entries'::regclass, 'sensitive_audit.log_contexts'::regclass)
				 AND contype = 'p'}),
		'sensitive_audit.log_contexts.log_contexts_pkey,sensitive_audit.log_entries.log_entries_pkey',
		"$name: both primary keys in place");
}

# ---------------------------------------------------------------------------
# The untouched log verifies.
is( verify_rows(),
	join("\n", map { "$_|$chain_len{$_}|t|-|-" } @chains),
	'untouched log: every chain ok');
is($node->safe_psql('postgres', 'SELECT sensitive_audit.verify_or_raise()'),
	$total, 'untouched log: verify_or_raise() returns the number of entries');

# An independent implementation of the format 1 encoding, in SQL: it must
# agree with the stored hash of every entry, as read through the view (so
# the view joins each entry to the context it was hashed with).  Used below
# to forge entries whose own hash is right.
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
# 1. Content edits of an entry's own fields: every hashed field is covered.
my @edits = (
	[ 'new_value edited',       q{new_value = 'tampered'} ],
	[ 'old_value edited',       q{old_value = old_value || 'x'} ],
	[ 'new_value set to NULL',  q{new_value = NULL} ],
	[ 'row_key edited',         q{row_key = '{"id": "99"}'} ],
	[ 'event_time moved 1us',   q{event_time = event_time + interval '1 microsecond'} ],
	[ 'txid edited',            q{txid = (txid::text::bigint + 1)::text::xid8} ],
	[ 'backend_pid edited',     q{backend_pid = backend_pid + 1} ],
	[ 'stored hash replaced',   q{hash = sha256('x')} ],
	# Pointed at another genuine context (one whose fields differ).
	[ 'context re-pointed to another existing context',
	  qq{context = (SELECT min(o.id) FROM sensitive_audit.log_contexts o, sensitive_audit.log_contexts m
					 WHERE m.id = $ctx_k AND ROW(@{[ join(', ', map { "o.$_" } @ctx_cols) ]})
											 IS DISTINCT FROM ROW(@{[ join(', ', map { "m.$_" } @ctx_cols) ]}))} ],
	# Pointed at no context at all.
	[ 'context re-pointed to a missing context',
	  q{context = (SELECT max(id) + 1000 FROM sensitive_audit.log_contexts)} ],
);
for my $edit (@edits)
{
	my ($name, $set) = @$edit;
	force("UPDATE sensitive_audit.log_entries SET $set WHERE chain = $c AND seq = $k");
	expect_caught($name, $k, qr/^content changed/, $n);
	restore_log();
}
expect_restored('after entry content edits');

# 2. Content edits of the shared fields, kept in log_contexts.  Every one is
# covered twice:
#  (a) entry k alone is re-pointed to a forged copy of its context (a new
#      context row differing in that one field): caught at entry k exactly;
#  (b) the shared context row is rewritten in place: that changes every
#      entry pointing to it, each chain is caught at its first such entry.
my @ctx_edits = (
	[ 'operation',        q{'INSERT'} ],
	[ 'table_schema',     q{'elsewhere'} ],
	[ 'table_name',       q{'t2'} ],
	[ 'column_name',      q{'note'} ],
	[ 'row_key_source',   q{coalesce(row_key_source, '') || 'x'} ],
	[ 'value_type',       q{'bytea'} ],
	[ 'session_role',     q{'mallory'} ],
	[ 'effective_role',   q{'mallory'} ],
	[ 'application_name', q{coalesce(application_name, '') || 'x'} ],
	[ 'client_addr',      q{'10.1.2.3'::inet} ],
);
is(join(' ', sort map { $_->[0] } @ctx_edits), join(' ', sort @ctx_cols), 'every context field has a case');
for my $edit (@ctx_edits)
{
	my ($col, $expr) = @$edit;
	my $sel = join(', ', map { $_ eq $col ? $expr : $_ } @ctx_cols);

	# (a) One entry re-pointed to a forged context.
	force(qq{
INSERT INTO sensitive_audit.log_contexts (id, $ctx_list)
SELECT (SELECT max(id) + 1 FROM sensitive_audit.log_contexts), $sel
  FROM sensitive_audit.log_contexts WHERE id = $ctx_k;
UPDATE sensitive_audit.log_entries SET context = (SELECT max(id) FROM sensitive_audit.log_contexts)
 WHERE chain = $c AND seq = $k});
	is( $node->safe_psql('postgres',
			qq{SELECT (l.$col IS DISTINCT FROM o.$col) || '/' || (SELECT count(*) FROM sensitive_audit.log_contexts c
																 WHERE c.id = l.context)
				 FROM sensitive_audit.log l, public.contexts_orig o
				WHERE l.chain = $c AND l.seq = $k AND o.id = $ctx_k}),
		'true/1', "$col: entry $k now shows a forged $col through the view");
	expect_caught("$col forged for one entry", $k, qr/^content changed/, $n);
	restore_log();

	# (b) The shared context row rewritten in place.
	force("UPDATE sensitive_audit.log_contexts SET $col = $expr WHERE id = $ctx_k");
	expect_caught_shared("$col rewritten in the shared context", $ctx_k);
	restore_log();
}
expect_restored('after context edits');

# The shared context row deleted: every entry pointing to it has lost part
# of its content.
force("DELETE FROM sensitive_audit.log_contexts WHERE id = $ctx_k");
is($node->safe_psql('postgres',
		"SELECT count(*) FROM sensitive_audit.log WHERE chain = $c AND seq = $k AND operation IS NULL"),
	'1', "context deleted: entry $k shows no context fields through the view");
expect_caught_shared('shared context deleted', $ctx_k);
restore_log();

# A second context row with the same id and forged content, next to the
# genuine one (the primary key must be dropped first, which the DDL guard
# refuses while it is on): which of the two is the real one cannot be told,
# so every entry pointing to that id is caught.
force(qq{
ALTER TABLE sensitive_audit.log_contexts DROP CONSTRAINT log_contexts_pkey;
INSERT INTO sensitive_audit.log_contexts (id, $ctx_list)
SELECT id, @{[ join(', ', map { $_ eq 'session_role' ? q{'mallory'} : $_ } @ctx_cols) ]}
  FROM sensitive_audit.log_contexts WHERE id = $ctx_k});
is($node->safe_psql('postgres', "SELECT count(*) FROM sensitive_audit.log_contexts WHERE id = $ctx_k"),
	'2', 'context id duplicated with forged content');
expect_caught_shared('context id duplicated', $ctx_k);
restore_log();

# The same with an exact copy: the content is the same, but the id is no
# longer unique, so an entry's context cannot be trusted to be the one it
# was written with.
force(qq{
ALTER TABLE sensitive_audit.log_contexts DROP CONSTRAINT log_contexts_pkey;
INSERT INTO sensitive_audit.log_contexts SELECT * FROM sensitive_audit.log_contexts WHERE id = $ctx_k});
expect_caught_shared('context id duplicated (exact copy)', $ctx_k);
restore_log();
expect_restored('after context deletion and duplication');

# An entry re-pointed to a forged context and its hash recomputed (as
# someone who knows the format would do): the entry checks out, so the break
# shows at the next entry's link.  The shared fields are under the hash.
force(qq{
INSERT INTO sensitive_audit.log_contexts (id, $ctx_list)
SELECT (SELECT max(id) + 1 FROM sensitive_audit.log_contexts),
	   @{[ join(', ', map { $_ eq 'effective_role' ? q{'mallory'} : $_ } @ctx_cols) ]}
  FROM sensitive_audit.log_contexts WHERE id = $ctx_k;
UPDATE sensitive_audit.log_entries SET context = (SELECT max(id) FROM sensitive_audit.log_contexts)
 WHERE chain = $c AND seq = $k;
UPDATE sensitive_audit.log_entries e SET hash = public.entry_hash(l)
  FROM sensitive_audit.log l WHERE l.chain = e.chain AND l.seq = e.seq AND e.chain = $c AND e.seq = $k});
is($node->safe_psql('postgres',
		"SELECT effective_role || '/' || (public.entry_hash(l) = l.hash) FROM sensitive_audit.log l WHERE chain = $c AND seq = $k"),
	'mallory/true', 'entry re-pointed to a forged context carries a correct hash of its new content');
expect_caught('entry re-pointed to a forged context, hash recomputed', $k + 1,
	qr/^link broken: previous hash does not match entry $k\b/, $n);
restore_log();

# Format and malformed hash.
force("UPDATE sensitive_audit.log_entries SET format = 3 WHERE chain = $c AND seq = $k");
expect_caught('format changed', $k, qr/^unsupported format 3/, $n);
restore_log();
force("UPDATE sensitive_audit.log_entries SET format = 2 WHERE chain = $c AND seq = $k");
expect_caught('format 1 entry relabelled format 2', $k, qr/^content changed/, $n);
restore_log();
force("UPDATE sensitive_audit.log_entries SET hash = substr(hash, 1, 31) WHERE chain = $c AND seq = $k");
expect_caught('hash truncated', $k, qr/^hash missing or malformed/, $n);
restore_log();

# 3. A middle entry deleted: the next one reports the gap.
force("DELETE FROM sensitive_audit.log_entries WHERE chain = $c AND seq = $k");
expect_caught('middle entry deleted', $k + 1, qr/^gap: entries $k\.\.$k are missing/, $n - 1);
restore_log();

# The first entry deleted.
force("DELETE FROM sensitive_audit.log_entries WHERE chain = $c AND seq = 1");
expect_caught('first entry deleted', 2, qr/^gap/, $n - 1);
restore_log();

# Several entries deleted.
force("DELETE FROM sensitive_audit.log_entries WHERE chain = $c AND seq BETWEEN $k AND $k + 2");
expect_caught('three entries deleted', $k + 3, qr/^gap: entries $k\.\.@{[$k + 2]} are missing/, $n - 3);
restore_log();

# 4. Two neighbours swapped (through a temporary seq).
force(qq{
UPDATE sensitive_audit.log_entries SET seq = -1 WHERE chain = $c AND seq = $k;
UPDATE sensitive_audit.log_entries SET seq = $k WHERE chain = $c AND seq = $k + 1;
UPDATE sensitive_audit.log_entries SET seq = $k + 1 WHERE chain = $c AND seq = -1});
expect_caught('two entries swapped', $k, qr/^reordered/, $n);
restore_log();

# 5. A forged entry appended, with a made-up hash and link.
force(qq{
INSERT INTO sensitive_audit.log_entries ($entry_cols)
SELECT chain, backend_pid, seq + 1, txid, event_time, context, format, row_key, old_value,
	   'forged value', decode(repeat('ab', 32), 'hex'), decode(repeat('cd', 32), 'hex')
  FROM sensitive_audit.log_entries WHERE chain = $c AND seq = $n});
expect_caught('forged entry appended', $n + 1, qr/^forged/, $n + 1);
restore_log();

# A forged entry at seq 0.
force(qq{
INSERT INTO sensitive_audit.log_entries ($entry_cols)
SELECT chain, backend_pid, 0, txid, event_time, context, format, row_key, old_value, new_value,
	   prev_hash, hash
  FROM sensitive_audit.log_entries WHERE chain = $c AND seq = 1});
expect_caught('forged entry at seq 0', 0, qr/^forged/, $n + 1);
restore_log();

# 6. prev_hash of entry k pointed elsewhere, nothing recomputed.  prev_hash
# is itself hashed, so both the entry's hash and its link fail.
force(qq{UPDATE sensitive_audit.log_entries SET prev_hash = decode(repeat('00', 32), 'hex')
		  WHERE chain = $c AND seq = $k});
expect_caught('prev_hash changed', $k, qr/^(link broken|content changed|forged)/, $n);
{
	my $problem = $node->safe_psql('postgres',
		"SELECT problem FROM sensitive_audit.verify() WHERE chain = $c");
	note "prev_hash changed is reported as: $problem";
}
restore_log();

# 7. An edit whose entry hash is recomputed correctly (as someone who knows
# the format would do): the entry itself now checks out, so the break shows
# at the next entry's link.
force(qq{
UPDATE sensitive_audit.log_entries SET new_value = 'rewritten' WHERE chain = $c AND seq = $k;
UPDATE sensitive_audit.log_entries e SET hash = public.entry_hash(l)
  FROM sensitive_audit.log l WHERE l.chain = e.chain AND l.seq = e.seq AND e.chain = $c AND e.seq = $k});
is($node->safe_psql('postgres',
		"SELECT new_value || '/' || (public.entry_hash(l) = l.hash) FROM sensitive_audit.log l WHERE chain = $c AND seq = $k"),
	'rewritten/true', 'rewritten entry carries a correct hash of its new content');
expect_caught('entry rewritten with recomputed hash', $k + 1,
	qr/^link broken: previous hash does not match entry $k\b/, $n);
restore_log();

# The same, with the entry deleted and the next one relinked correctly: the
# entry after the hole links fine, but the hole is a gap.
force(qq{
DELETE FROM sensitive_audit.log_entries WHERE chain = $c AND seq = $k;
UPDATE sensitive_audit.log_entries SET prev_hash = (SELECT hash FROM sensitive_audit.log_entries WHERE chain = $c AND seq = $k - 1)
 WHERE chain = $c AND seq = $k + 1;
UPDATE sensitive_audit.log_entries e SET hash = public.entry_hash(l)
  FROM sensitive_audit.log l WHERE l.chain = e.chain AND l.seq = e.seq AND e.chain = $c AND e.seq = $k + 1});
expect_caught('entry deleted and successor relinked', $k + 1, qr/^gap/, $n - 1);
restore_log();

# Two chains tampered at once: both are reported, each at its own entry.
force(qq{
UPDATE sensitive_audit.log_entries SET new_value = 'x' WHERE chain = $c AND seq = $k;
DELETE FROM sensitive_audit.log_entries WHERE chain = $other AND seq = 2});
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

sub insert_only
{
	my ($what, $rel) = @_;
	return qr/ERROR:  the audit log is insert-only: $what on sensitive_audit\.$rel is not allowed/;
}

# The view: each row written through it meets its INSTEAD OF guard.
expect_refused('UPDATE of the log view', "UPDATE sensitive_audit.log SET new_value = 'x' WHERE chain = $c AND seq = $k",
	insert_only('UPDATE', 'log'));
expect_refused('DELETE from the log view', "DELETE FROM sensitive_audit.log WHERE chain = $c AND seq = $n",
	insert_only('DELETE', 'log'));
expect_refused('INSERT into the log view',
	"INSERT INTO sensitive_audit.log SELECT * FROM sensitive_audit.log WHERE chain = $c AND seq = $n",
	insert_only('INSERT', 'log'));
expect_refused('COPY into the log view', "COPY sensitive_audit.log (chain, seq) FROM STDIN;\n$c\t@{[$n + 1]}\n\\.\n",
	insert_only('INSERT', 'log'));
expect_refused('TRUNCATE of the log view', 'TRUNCATE sensitive_audit.log',
	qr/ERROR:  "log" is not a table/);
# Row triggers: a write through the view that matches no row does nothing,
# so there is nothing to refuse.
{
	my ($out, $err) = ('', '');
	my $rc = $node->psql('postgres',
		"UPDATE sensitive_audit.log SET new_value = NULL WHERE false;\nDELETE FROM sensitive_audit.log WHERE false",
		stdout => \$out, stderr => \$err);
	is($rc . $err, '0', 'UPDATE and DELETE of the log view matching no row: nothing done, nothing raised');
}
# In replica mode (as logical replication's apply worker runs) the view's
# INSTEAD OF guard does not fire: PostgreSQL cannot make a view's trigger
# ENABLE ALWAYS.  A write through the view must then still change nothing.
{
	my $before = $node->safe_psql('postgres', q{SELECT l::text FROM sensitive_audit.log l ORDER BY chain, seq});
	my ($out, $err) = ('', '');
	$node->psql('postgres',
		"SET session_replication_role = replica;\n"
		  . "UPDATE sensitive_audit.log SET new_value = 'x' WHERE chain = $c AND seq = $k;\n"
		  . "DELETE FROM sensitive_audit.log WHERE chain = $c;\n"
		  . "INSERT INTO sensitive_audit.log SELECT * FROM sensitive_audit.log WHERE chain = $c AND seq = $n",
		stdout => \$out, stderr => \$err);
	is($node->safe_psql('postgres', q{SELECT l::text FROM sensitive_audit.log l ORDER BY chain, seq}),
		$before, 'writes through the log view in replica mode change nothing');
}
expect_refused('ALTER VIEW on the log (rename a column)', 'ALTER VIEW sensitive_audit.log RENAME COLUMN new_value TO nv',
	qr/ERROR:  the audit log cannot be altered/);
expect_refused('ALTER TABLE on the log view (rename a column)', 'ALTER TABLE sensitive_audit.log RENAME COLUMN new_value TO nv',
	qr/ERROR:  the audit log cannot be altered/);
# (PostgreSQL does not disable triggers of a view at all.)
expect_refused('ALTER TABLE on the log view (disable its guard)', 'ALTER TABLE sensitive_audit.log DISABLE TRIGGER log_guard_view',
	qr/ERROR:  ALTER action DISABLE TRIGGER cannot be performed on relation "log"/);
# Redefining the view to hide an entry.
my $view_def = $node->safe_psql('postgres', q{SELECT pg_get_viewdef('sensitive_audit.log'::regclass)});
$view_def =~ s/;\s*$//;
my $hide_entry = "CREATE OR REPLACE VIEW sensitive_audit.log AS SELECT * FROM ($view_def) v WHERE NOT (chain = $c AND seq = $k)";
expect_refused('CREATE OR REPLACE VIEW of the log (hiding an entry)', $hide_entry,
	qr/ERROR:  the audit log cannot be altered/);
expect_refused('DROP VIEW of the log', 'DROP VIEW sensitive_audit.log',
	qr/ERROR:  .*(cannot be dropped|extension sensitive_audit requires it)/);

# The two tables: their statement-level guards refuse every write, even one
# that matches no row, and every ALTER.
for my $t ([ 'log_entries', 'new_value', "chain = $c AND seq = $k" ],
	[ 'log_contexts', 'application_name', "id = $ctx_k" ])
{
	my ($tbl, $col, $where) = @$t;
	expect_refused("UPDATE of $tbl", "UPDATE sensitive_audit.$tbl SET $col = 'x' WHERE $where",
		insert_only('UPDATE', $tbl));
	expect_refused("UPDATE of $tbl matching no row", "UPDATE sensitive_audit.$tbl SET $col = NULL WHERE false",
		insert_only('UPDATE', $tbl));
	expect_refused("DELETE from $tbl", "DELETE FROM sensitive_audit.$tbl WHERE $where",
		insert_only('DELETE', $tbl));
	expect_refused("DELETE from $tbl matching no row", "DELETE FROM sensitive_audit.$tbl WHERE false",
		insert_only('DELETE', $tbl));
	# The tables' guards are ENABLE ALWAYS: replica mode does not switch them off.
	expect_refused("UPDATE of $tbl in replica mode",
		"SET session_replication_role = replica; UPDATE sensitive_audit.$tbl SET $col = 'x' WHERE $where",
		insert_only('UPDATE', $tbl));
	expect_refused("DELETE from $tbl in replica mode",
		"SET session_replication_role = replica; DELETE FROM sensitive_audit.$tbl WHERE $where",
		insert_only('DELETE', $tbl));
	expect_refused("TRUNCATE of $tbl", "TRUNCATE sensitive_audit.$tbl",
		insert_only('TRUNCATE', $tbl));
	expect_refused("INSERT into $tbl", "INSERT INTO sensitive_audit.$tbl SELECT * FROM sensitive_audit.$tbl WHERE false",
		insert_only('INSERT', $tbl));
	expect_refused("COPY into $tbl", "COPY sensitive_audit.$tbl FROM STDIN",
		insert_only('INSERT', $tbl));
	expect_refused("ALTER TABLE on $tbl (add column)", "ALTER TABLE sensitive_audit.$tbl ADD COLUMN x integer",
		qr/ERROR:  the audit log cannot be altered/);
	expect_refused("ALTER TABLE on $tbl (disable its guard)", "ALTER TABLE sensitive_audit.$tbl DISABLE TRIGGER log_guard",
		qr/ERROR:  the audit log cannot be altered/);
	expect_refused("ALTER TABLE on $tbl (disable all user triggers)", "ALTER TABLE sensitive_audit.$tbl DISABLE TRIGGER USER",
		qr/ERROR:  the audit log cannot be altered/);
	expect_refused("ALTER TABLE on $tbl (rename a column)", "ALTER TABLE sensitive_audit.$tbl RENAME COLUMN $col TO c2",
		qr/ERROR:  the audit log cannot be altered/);
	expect_refused("ALTER TABLE on $tbl (drop its primary key)", "ALTER TABLE sensitive_audit.$tbl DROP CONSTRAINT ${tbl}_pkey",
		qr/ERROR:  the audit log cannot be (altered|dropped)/);
	expect_refused("DROP TABLE of $tbl", "DROP TABLE sensitive_audit.$tbl",
		qr/ERROR:  .*(cannot be dropped|extension sensitive_audit requires it)/);
}
expect_refused('ALTER TABLE on tag_info', 'ALTER TABLE sensitive_audit.tag_info ADD COLUMN x integer',
	qr/ERROR:  the audit log cannot be altered/);
expect_refused('capture disabled on an audited table',
	'ALTER TABLE t DISABLE TRIGGER sensitive_audit_capture',
	qr/ERROR:  capture of audited table "\w+" cannot be changed or disabled/);
expect_refused('capture disabled with DISABLE TRIGGER USER', 'ALTER TABLE t DISABLE TRIGGER USER',
	qr/ERROR:  capture of audited table "\w+" cannot be changed or disabled/);
expect_refused('capture set to ENABLE REPLICA', 'ALTER TABLE t ENABLE REPLICA TRIGGER sensitive_audit_capture',
	qr/ERROR:  capture of audited table "\w+" cannot be changed or disabled/);
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
	qr/ERROR:  capture of audited table "\w+" cannot be changed or disabled/);
expect_refused('table owner sets capture to ENABLE REPLICA',
	'SET ROLE alice; ALTER TABLE owned ENABLE REPLICA TRIGGER sensitive_audit_capture',
	qr/ERROR:  capture of audited table "\w+" cannot be changed or disabled/);
expect_refused('table owner drops the capture trigger',
	'SET ROLE alice; DROP TRIGGER sensitive_audit_capture ON owned',
	qr/ERROR:  capture trigger of an audited table cannot be dropped/);
for my $rel ('log', 'log_entries', 'log_contexts')
{
	expect_refused("table owner deletes from $rel",
		"SET ROLE alice; DELETE FROM sensitive_audit.$rel",
		qr/ERROR:  (permission denied|the audit log is insert-only)/);
}
expect_refused('table owner redefines the log view',
	"SET ROLE alice; $hide_entry",
	qr/ERROR:  (permission denied|must be owner|the audit log cannot be altered)/);
is($node->safe_psql('postgres',
		q{SELECT string_agg(tgname || ':' || tgenabled::text, ',' ORDER BY tgname) FROM pg_trigger WHERE tgrelid = 'owned'::regclass}),
	'sensitive_audit_capture:A,sensitive_audit_capture_update:A,sensitive_audit_truncate:A',
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
	'sensitive_audit_capture:A,sensitive_audit_capture_update:A,sensitive_audit_truncate:A',
	'capture triggers still there and ENABLE ALWAYS');
is( $node->safe_psql('postgres',
		q{SELECT count(*) FROM sensitive_audit.log_entries l JOIN public.entries_orig o USING (chain, seq)
		   WHERE l.hash = o.hash AND l.context = o.context}),
	$node->safe_psql('postgres', 'SELECT count(*) FROM public.entries_orig'),
	'after refused writes and DDL: every original entry still there, unchanged');
is( $node->safe_psql('postgres',
		q{SELECT count(*) FROM (SELECT * FROM public.contexts_orig EXCEPT SELECT * FROM sensitive_audit.log_contexts) gone}),
	'0', 'after refused writes and DDL: every original context still there, unchanged');
is( $node->safe_psql('postgres',
		q{SELECT count(*) FROM sensitive_audit.log l JOIN public.entries_orig o USING (chain, seq)}),
	$node->safe_psql('postgres', 'SELECT count(*) FROM public.entries_orig'),
	'after refused writes and DDL: the view still shows every original entry');

# Capture still works after all that.
$node->safe_psql('postgres', q{UPDATE t SET secret = 'after guards' WHERE id = 1});
is($node->safe_psql('postgres',
		q{SELECT count(*) FROM sensitive_audit.log WHERE new_value = 'after guards'}),
	'1', 'capture still records changes');
is($node->safe_psql('postgres', q{SELECT count(*) FILTER (WHERE NOT ok) FROM sensitive_audit.verify()}),
	'0', 'and the log verifies');

# With allow_drop, a superuser can drop the extension (and its history).
$node->safe_psql('postgres', 'DROP FUNCTION public.entry_hash(sensitive_audit.log)');
$node->safe_psql('postgres', 'DROP TABLE public.entries_orig, public.contexts_orig');
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
