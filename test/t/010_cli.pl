# 010_cli.pl — the command-line program sensitive-audit against a real log:
# keygen, checkpoint (incremental, refusals, concurrent runs), verify over
# libpq with and without the state directory, export and verify --bundle,
# prove and verify-proof, the HTML report in headless Chromium, and the
# Python checker of test/pyverify agreeing with the program on bundles and
# proofs, clean and tampered.
#
# Every tampering case runs in its own database copied from the audited one
# (CREATE DATABASE ... TEMPLATE keeps the log id), with the guards switched
# off as a superuser can, so the cases do not disturb each other.
use strict;
use warnings;

use Digest::SHA;
use File::Copy;
use File::Path qw(make_path);
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('cli');
$node->init;
$node->append_conf('postgresql.conf', "sensitive_audit.chains = 3\n");
$node->start;

my $tmp = PostgreSQL::Test::Utils::tempdir;
my $pyverify = "$ENV{TESTDIR}/test/pyverify/verify.py";

# Runs the program; returns (exit status, stdout, stderr).
sub sa
{
	my @args = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'sensitive-audit', @args ], '<', \undef, '>', \$out, '2>', \$err);
	return ($? >> 8, $out, $err);
}

sub py
{
	my @args = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'python3', $pyverify, @args ], '<', \undef, '>', \$out, '2>', \$err);
	return ($? >> 8, $out . $err);
}

# Expects an exit status and, optionally, text on stdout or stderr.
sub sa_is
{
	my ($want, $name, $re, @args) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my ($rc, $out, $err) = sa(@args);
	note("sensitive-audit @args[0 .. 0]: exit $rc\n$out$err");
	is($rc, $want, "$name: exit status $want") or diag("stdout: $out\nstderr: $err");
	like($out . $err, $re, "$name: says what was checked and what failed") if defined $re;
	return ($rc, $out, $err);
}

sub db { return $node->connstr($_[0]); }

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION sensitive_audit;
CREATE TABLE t (id integer PRIMARY KEY, secret text, note text);
CREATE TABLE u (id integer PRIMARY KEY, secret text);
INSERT INTO t SELECT g, 's' || g, 'n' FROM generate_series(1, 10) g;
INSERT INTO u SELECT g, 'u' || g FROM generate_series(1, 5) g;
SELECT sensitive_audit.tag('t', 'secret');
SELECT sensitive_audit.tag('u', 'secret');
});

# Fresh connections spread commits over the chains (a committer starts at
# its pid % 3).  Each round changes two rows of t and deletes or inserts in u.
my $round = 0;
sub changes
{
	my ($rounds) = @_;
	for (1 .. $rounds)
	{
		$round++;
		my $a = 1 + ($round % 10);
		my $b = 1 + (($round + 5) % 10);
		$node->safe_psql('postgres',
			"UPDATE t SET secret = secret || '.$round' WHERE id IN ($a, $b); "
			  . "INSERT INTO u VALUES (100 + $round, 'x$round') ON CONFLICT DO NOTHING; "
			  . "DELETE FROM u WHERE id = 100 + $round - 3");
	}
}

sub chain_sizes
{
	return map { split /\|/ } split /\n/,
	  $node->safe_psql('postgres', 'SELECT chain, max(seq) FROM sensitive_audit.log_entries GROUP BY chain');
}

changes(20);
my $old_dump = "$tmp/old.dump";
$node->command_ok([ 'pg_dump', '-Fc', '-f', $old_dump, '-d', db('postgres') ], 'an old dump, before the checkpoint');
changes(25);

# ---------------------------------------------------------------------------
# keygen
my ($key, $pub) = ("$tmp/signer.key", "$tmp/signer.pub");
my ($rc, $out, $err) = sa_is(0, 'keygen', qr/public key/, 'keygen', '--name', 'auditor', '--private', $key,
	'--public', $pub);
is((stat $key)[2] & 07777, 0600, 'the private key file is mode 0600');
like(slurp_file($pub), qr/^auditor\+[0-9a-f]{8}\+[A-Za-z0-9+\/]+=*\n\z/, 'the public key file is a signed-note verifier key');
unlike($out . $err, qr/PRIVATE/, 'keygen never prints the private key');
sa_is(2, 'keygen over an existing file', qr/exists/, 'keygen', '--name', 'auditor', '--private', $key,
	'--public', "$tmp/other.pub");
ok(!-e "$tmp/other.pub", 'keygen refusing writes nothing');
my ($key2, $pub2) = ("$tmp/other.key", "$tmp/other2.pub");
sa_is(0, 'a second key pair', undef, 'keygen', '--name', 'auditor', '--private', $key2, '--public', $pub2);

# ---------------------------------------------------------------------------
# checkpoint, then more changes after it
my $state = "$tmp/state";
sa_is(0, 'first checkpoint', qr/signed checkpoint-000001/, 'checkpoint', '--db', db('postgres'), '--key', $key,
	'--state', $state);
ok(-f "$state/checkpoint-000001.note" && -f "$state/checkpoint-000001.tree", 'the state directory holds the checkpoint');
is(slurp_file("$state/latest"), "checkpoint-000001\n", 'latest points at it');
is($node->safe_psql('postgres', 'SELECT count(*) FROM sensitive_audit.checkpoints'),
	'1', 'the checkpoint is stored in the database');
{
	my $note = slurp_file("$state/checkpoint-000001.note");
	my $stored = $node->safe_psql('postgres', "SELECT encode(convert_to(note, 'UTF8'), 'hex') FROM sensitive_audit.checkpoints");
	is($stored, unpack('H*', $note), 'the stored note is byte for byte the one in the state directory');
}
my %at_checkpoint = chain_sizes();
sa_is(0, 'checkpoint again without changes', qr/unchanged/, 'checkpoint', '--db', db('postgres'), '--key', $key,
	'--state', $state);
ok(!-e "$state/checkpoint-000002.note", 'no new checkpoint for an unchanged log');

# Grow the longest chain by at least 4 entries after the checkpoint.
my ($c) = sort { $at_checkpoint{$b} <=> $at_checkpoint{$a} || $a <=> $b } keys %at_checkpoint;
my $n0 = $at_checkpoint{$c};
my %now;
for (1 .. 60)
{
	changes(3);
	%now = chain_sizes();
	last if $now{$c} >= $n0 + 4;
}
my $n1 = $now{$c};
cmp_ok($n1, '>=', $n0 + 4, "chain $c grew from $n0 to $n1 entries after the checkpoint");
cmp_ok(scalar(keys %now), '>=', 2, 'the log has several chains');

sa_is(0, 'verify --db --state on the intact log', qr/^VERIFIED: \d+ entries/, 'verify', '--db', db('postgres'),
	'--pubkey', $pub, '--state', $state);
my ($jrc, $json) = sa('verify', '--db', db('postgres'), '--pubkey', $pub, '--json');
is($jrc, 0, 'verify --json: exit status 0');
like($json, qr/"verdict": "verified"/, 'verify --json reports the verdict');

# ---------------------------------------------------------------------------
# Tampering, each case in its own copy of the database.
my $case_no = 0;
my $guards_only = q{
DO $$ DECLARE r record; BEGIN
  FOR r IN SELECT evtname FROM pg_event_trigger LOOP
	EXECUTE format('ALTER EVENT TRIGGER %I DISABLE', r.evtname);
  END LOOP;
END $$;
ALTER TABLE sensitive_audit.log_entries DISABLE TRIGGER USER;
ALTER TABLE sensitive_audit.log_contexts DISABLE TRIGGER USER;
ALTER TABLE sensitive_audit.checkpoints DISABLE TRIGGER USER;
ALTER TABLE sensitive_audit.tree_nodes DISABLE TRIGGER USER;
ALTER TABLE sensitive_audit.log_info DISABLE TRIGGER USER;
};
my $guards_off = $guards_only . q{
CREATE FUNCTION public.tf(v text) RETURNS bytea LANGUAGE sql IMMUTABLE AS $f$
  SELECT CASE WHEN v IS NULL THEN '\x00'::bytea
			  ELSE '\x01'::bytea || int4send(octet_length(convert_to(v, getdatabaseencoding())))
				   || convert_to(v, getdatabaseencoding()) END $f$;
CREATE FUNCTION public.entry_hash(l sensitive_audit.log) RETURNS bytea LANGUAGE sql STABLE AS $f$
  SELECT sha256(
	convert_to('sensitive_audit entry', 'SQL_ASCII') || '\x00'::bytea
	|| int2send(l.format) || int4send(l.chain) || int8send(l.seq) || xid8send(l.txid)
	|| int8send((extract(epoch FROM l.event_time) * 1000000)::bigint)
	|| tf(l.operation) || tf(l.table_schema) || tf(l.table_name) || tf(l.column_name)
	|| tf(l.row_key::text) || tf(l.row_key_source) || tf(l.old_value) || tf(l.new_value)
	|| tf(l.value_type) || tf(l.session_role) || tf(l.effective_role) || tf(l.application_name)
	|| tf(CASE WHEN l.client_addr IS NOT NULL THEN format('%s', l.client_addr) END)
	|| int4send(l.backend_pid) || l.prev_hash) $f$;
};

sub new_case
{
	my $db = 'case' . (++$case_no);
	$node->safe_psql('postgres', "CREATE DATABASE $db TEMPLATE postgres");
	$node->safe_psql($db, $guards_off);
	return $db;
}

sub copy_state
{
	my ($dir) = @_;
	make_path($dir);
	copy("$state/$_", "$dir/$_") or die "copy $_: $!"
	  for grep { !/^\./ } map { s{.*/}{}r } glob("$state/*");
	chmod 0700, $dir;
	return $dir;
}

my $entry_cols =
  'chain, backend_pid, seq, txid, event_time, context, format, row_key, old_value, new_value, prev_hash, hash';
my $k_new = $n0 + 2;    # an entry after the checkpoint, not the last
my $k_old = 3;          # an entry the checkpoint covers

my @cases = (
	{
		name => 'value edited after the checkpoint',
		sql => "UPDATE sensitive_audit.log_entries SET new_value = 'tampered' WHERE chain = $c AND seq = $k_new",
		problem => qr/chain $c: first bad entry seq $k_new: content changed/,
		plain => 1,
	},
	{
		name => 'value edited inside the checkpoint',
		sql => "UPDATE sensitive_audit.log_entries SET new_value = 'tampered' WHERE chain = $c AND seq = $k_old",
		problem => qr/chain $c: first bad entry seq $k_old: content changed/,
		full => 1,
		plain => 1,
	},
	{
		name => 'middle entry deleted',
		sql => "DELETE FROM sensitive_audit.log_entries WHERE chain = $c AND seq = $k_new",
		problem => qr/chain $c: first bad entry seq @{[$k_new + 1]}: gap/,
		plain => 1,
	},
	{
		name => 'middle entry deleted inside the checkpoint',
		sql => "DELETE FROM sensitive_audit.log_entries WHERE chain = $c AND seq = $k_old",
		problem => qr/chain $c: first bad entry seq @{[$k_old + 1]}: gap/,
		full => 1,
		plain => 1,
	},
	{
		name => 'two entries swapped',
		sql => qq{
UPDATE sensitive_audit.log_entries SET seq = -1 WHERE chain = $c AND seq = $k_new;
UPDATE sensitive_audit.log_entries SET seq = $k_new WHERE chain = $c AND seq = $k_new + 1;
UPDATE sensitive_audit.log_entries SET seq = $k_new + 1 WHERE chain = $c AND seq = -1},
		problem => qr/chain $c: first bad entry seq $k_new: reordered/,
		plain => 1,
	},
	{
		name => 'forged entry appended, its hash recomputed',
		sql => qq{
INSERT INTO sensitive_audit.log_entries ($entry_cols)
SELECT chain, backend_pid, seq + 1, txid, event_time, context, format, row_key, old_value,
	   'forged value', decode(repeat('ab', 32), 'hex'), hash
  FROM sensitive_audit.log_entries WHERE chain = $c AND seq = $n1;
UPDATE sensitive_audit.log_entries e SET hash = public.entry_hash(l)
  FROM sensitive_audit.log l WHERE l.chain = e.chain AND l.seq = e.seq AND e.chain = $c AND e.seq = $n1 + 1},
		problem => qr/chain $c: first bad entry seq @{[$n1 + 1]}: link broken/,
		plain => 1,
	},
	{
		name => 'tail replaced by a forged entry with correct hash and link',
		sql => qq{
DELETE FROM sensitive_audit.log_entries WHERE chain = $c AND seq > $n0;
UPDATE sensitive_audit.log_entries SET new_value = 'forged value' WHERE chain = $c AND seq = $n0;
UPDATE sensitive_audit.log_entries e SET hash = public.entry_hash(l)
  FROM sensitive_audit.log l WHERE l.chain = e.chain AND l.seq = e.seq AND e.chain = $c AND e.seq = $n0},
		problem => qr/chain $c: .*(no longer have the root|rewritten)/,
	},
	{
		name => 'tail cut',
		sql => "DELETE FROM sensitive_audit.log_entries WHERE chain = $c AND seq >= $n0 - 1",
		problem => qr/chain $c: the log holds @{[$n0 - 2]} entries, but .* covers $n0 \(entries cut off the end\)/,
	},
	{
		name => 'whole chain deleted',
		sql => "DELETE FROM sensitive_audit.log_entries WHERE chain = $c",
		problem => qr/chain $c: missing from the log/,
	},
	{
		name => 'stored checkpoint edited',
		sql => "UPDATE sensitive_audit.checkpoints SET note = replace(note, E'\\nchain ', E'\\nchain  ')",
		problem => qr/stored checkpoint #1: (no valid signature|not a well-formed)/,
		no_checkpoint_refusal => 1,
	},
	{
		name => 'log dropped and rebuilt with the same rows',
		sql => q{
CREATE TABLE public.e_copy AS SELECT * FROM sensitive_audit.log_entries;
CREATE TABLE public.c_copy AS SELECT * FROM sensitive_audit.log_contexts;
DROP FUNCTION public.entry_hash(sensitive_audit.log);
DROP EXTENSION sensitive_audit CASCADE;
CREATE EXTENSION sensitive_audit;
} . $guards_only . q{
DELETE FROM sensitive_audit.log_entries;
DELETE FROM sensitive_audit.log_contexts;
INSERT INTO sensitive_audit.log_contexts SELECT * FROM public.c_copy;
INSERT INTO sensitive_audit.log_entries SELECT * FROM public.e_copy},
		problem => qr/is for log .* but this log is|another database, or the log was dropped and rebuilt/,
	},
	{
		name => 'verify() replaced by one that always says ok, and a value edited',
		sql => qq{
UPDATE sensitive_audit.log_entries SET new_value = 'tampered' WHERE chain = $c AND seq = $k_new;
CREATE OR REPLACE FUNCTION sensitive_audit.verify()
RETURNS TABLE (chain integer, entries bigint, ok boolean, first_bad_seq bigint, problem text)
LANGUAGE sql AS \$f\$ SELECT 0, 1::bigint, true, NULL::bigint, NULL::text \$f\$},
		check => q{SELECT bool_and(ok) FROM sensitive_audit.verify()},
		problem => qr/chain $c: first bad entry seq $k_new: content changed/,
	},
);

my %bundle_of;
for my $case (@cases)
{
	my $name = $case->{name};
	my $db = new_case();
	$node->safe_psql($db, "BEGIN; $case->{sql}; COMMIT;");
	if ($case->{check})
	{
		is($node->safe_psql($db, $case->{check}), 't', "$name: the database's own verify() now says ok");
	}
	sa_is(1, "$name: verify --db --state", $case->{problem}, 'verify', '--db', db($db), '--pubkey', $pub,
		'--state', $state);
	sa_is(1, "$name: verify --db (stored checkpoints only)", undef, 'verify', '--db', db($db), '--pubkey', $pub)
	  if $case->{plain};

	unless ($case->{no_checkpoint_refusal})
	{
		my $st = copy_state("$tmp/state_$db");
		my @full = $case->{full} ? ('--full') : ();
		sa_is(1, "$name: checkpoint @full refuses", qr/refusing|refused/, 'checkpoint', '--db', db($db), '--key',
			$key, '--state', $st, @full);
		is(slurp_file("$st/latest"), "checkpoint-000001\n", "$name: nothing was appended to the state directory");
		ok(!-e "$st/checkpoint-000002.note", "$name: no checkpoint signed");
	}

	# The same log exported: both implementations find the tampering offline.
	if ($case->{plain})
	{
		my $bundle = "$tmp/$db.bundle";
		sa_is(0, "$name: export", undef, 'export', '--db', db($db), '--out', $bundle);
		sa_is(1, "$name: verify --bundle", $case->{problem}, 'verify', '--bundle', $bundle, '--pubkey', $pub);
		my ($prc, $pout) = py('bundle', $bundle, '--pubkey', $pub);
		is($prc, 1, "$name: the Python checker agrees on the bundle") or diag($pout);
	}
	$node->safe_psql('postgres', "DROP DATABASE $db");
}

# An old dump restored in place of the current database.
{
	my $db = 'restored_old';
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->command_ok([ 'pg_restore', '-d', db($db), $old_dump ], 'the old dump restored into a new database');
	is($node->safe_psql($db, 'SELECT log_id FROM sensitive_audit.log_info'),
		$node->safe_psql('postgres', 'SELECT log_id FROM sensitive_audit.log_info'), 'the old dump keeps the log id');
	sa_is(1, 'old dump restored: verify --db --state', qr/cut off the end|fewer|missing/, 'verify', '--db', db($db),
		'--pubkey', $pub, '--state', $state);
	my $st = copy_state("$tmp/state_$db");
	sa_is(1, 'old dump restored: checkpoint refuses', qr/refusing/, 'checkpoint', '--db', db($db), '--key', $key,
		'--state', $st);
	ok(!-e "$st/checkpoint-000002.note", 'old dump restored: no checkpoint signed');
	$node->safe_psql('postgres', "DROP DATABASE $db");
}

# A wrong public key.
sa_is(1, 'wrong public key (stored checkpoints)', qr/no valid signature by the key/, 'verify', '--db',
	db('postgres'), '--pubkey', $pub2);
sa_is(1, 'wrong public key (state directory)', qr/no valid signature by the key/, 'verify', '--db', db('postgres'),
	'--pubkey', $pub2, '--state', $state);

# The JSON report of a tampered log names the chain, the seq and the problem.
{
	my $db = new_case();
	$node->safe_psql($db,
		"UPDATE sensitive_audit.log_entries SET new_value = 'tampered' WHERE chain = $c AND seq = $k_new");
	my ($rc, $out) = sa('verify', '--db', db($db), '--pubkey', $pub, '--state', $state, '--json');
	is($rc, 1, 'verify --json of a tampered log: exit status 1');
	my $report = JSON::PP::decode_json($out);
	is($report->{verdict}, 'failed', 'verify --json: the verdict is "failed"');
	my ($bad) = grep { $_->{chain} == $c } @{ $report->{chains} };
	ok($bad && !$bad->{ok} && $bad->{first_bad_seq} == $k_new && $bad->{problem} =~ /^content changed/,
		"verify --json: chain $c fails at seq $k_new, content changed");
	ok(!grep({ $_->{chain} != $c && !$_->{ok} } @{ $report->{chains} }), 'verify --json: the other chains are ok');
	$node->safe_psql('postgres', "DROP DATABASE $db");
}

# ---------------------------------------------------------------------------
# Bundles: clean, then edited by one byte at several places.
my $bundle = "$tmp/clean.bundle";
sa_is(0, 'export of the intact log', qr/exported \d+ entries/, 'export', '--db', db('postgres'), '--out', $bundle);
sa_is(2, 'export refuses to overwrite', qr/exists/, 'export', '--db', db('postgres'), '--out', $bundle);
sa_is(0, 'verify --bundle', qr/^VERIFIED/, 'verify', '--bundle', $bundle, '--pubkey', $pub);
sa_is(0, 'verify --bundle --state', qr/^VERIFIED/, 'verify', '--bundle', $bundle, '--pubkey', $pub, '--state', $state);
{
	my ($prc, $pout) = py('bundle', $bundle, '--pubkey', $pub);
	is($prc, 0, 'the Python checker verifies the intact bundle') or diag($pout);
}
sa_is(1, 'verify --bundle with the wrong key', qr/no valid signature/, 'verify', '--bundle', $bundle, '--pubkey',
	$pub2);
{
	my ($prc) = py('bundle', $bundle, '--pubkey', $pub2);
	is($prc, 1, 'the Python checker rejects the wrong key too');
}

# One byte changed: a digit to another digit, a letter to another letter,
# anything else to 'x'.
sub edit_byte
{
	my ($data, $pos) = @_;
	my $ch = substr($data, $pos, 1);
	my $new =
		$ch =~ /[0-8]/ ? chr(ord($ch) + 1)
	  : $ch eq '9' ? '0'
	  : $ch =~ /[a-y]/i ? chr(ord($ch) + 1)
	  : $ch =~ /[zZ]/ ? 'a'
	  : 'x';
	substr($data, $pos, 1) = $new;
	return $data;
}

sub byte_edits
{
	my ($what, $file, $kind, $verify_args) = @_;
	my $data = slurp_file($file);
	my $len = length $data;
	my @positions = (5, 30, int($len * 0.1), int($len * 0.25), int($len * 0.5), int($len * 0.75),
		int($len * 0.9), $len - 70, $len - 20, $len - 2);
	# inside a hash, a signature, a value: found by pattern
	for my $re (qr/"hash":"/, qr/"prev_hash":"/, qr/"new_value":"/, qr/\x{e2}\x{80}\x{94} /, qr/"path":\["/,
		qr/"record_path":\["/, qr/"seq":"/)
	{
		push @positions, $+[0] + 3 if $data =~ $re;
	}
	my %seen;
	for my $pos (grep { $_ >= 0 && $_ < $len && !$seen{$_}++ } @positions)
	{
		my $edited = "$tmp/edited";
		open my $fh, '>:raw', $edited or die;
		print $fh edit_byte($data, $pos);
		close $fh;
		my ($rc, $out, $err) = sa(@$verify_args, $edited, '--pubkey', $pub);
		ok($rc == 1 || $rc == 2, "$what edited at byte $pos: rejected (exit $rc)") or diag("$out$err");
		my ($prc, $pout) = py($kind, $edited, '--pubkey', $pub);
		is($prc, $rc, "$what edited at byte $pos: the Python checker agrees") or diag("$out$err\n$pout");
		unlink $edited;
	}
	# cut short
	for my $keep (int($len / 2), $len - 1)
	{
		my $cut = "$tmp/cut";
		open my $fh, '>:raw', $cut or die;
		print $fh substr($data, 0, $keep);
		close $fh;
		my ($rc) = sa(@$verify_args, $cut, '--pubkey', $pub);
		is($rc, 2, "$what truncated to $keep bytes: cannot be verified");
		my ($prc) = py($kind, $cut, '--pubkey', $pub);
		is($prc, 2, "$what truncated to $keep bytes: the Python checker agrees");
	}
}
byte_edits('bundle', $bundle, 'bundle', [ 'verify', '--bundle' ]);

# A bundle of an unknown version (its digest made to match): exit status 2.
{
	my $data = slurp_file($bundle);
	$data =~ s/"version":"1"/"version":"2"/ or die 'no version in the header';
	my @lines = split /(?<=\n)/, $data;
	my $end = pop @lines;
	my $sha = Digest::SHA::sha256_hex(join('', @lines));
	$end =~ s/"sha256":"[0-9a-f]{64}"/"sha256":"$sha"/ or die 'no digest in the end line';
	my $v2 = "$tmp/v2.bundle";
	open my $fh, '>:raw', $v2 or die;
	print $fh join('', @lines), $end;
	close $fh;
	sa_is(2, 'bundle of an unknown version', qr/unknown bundle version "2"/, 'verify', '--bundle', $v2, '--pubkey',
		$pub);
	my ($prc, $pout) = py('bundle', $v2, '--pubkey', $pub);
	is($prc, 2, 'the Python checker refuses the unknown version too') or diag($pout);
}

# ---------------------------------------------------------------------------
# Proofs
my $proof = "$tmp/entry.proof";
sa_is(0, 'prove an entry the checkpoint covers', qr/wrote the proof of chain $c seq 2/, 'prove', '--db',
	db('postgres'), '--chain', $c, '--seq', 2, '--out', $proof);
sa_is(0, 'verify-proof', qr/^VERIFIED: proof .* chain $c seq 2/, 'verify-proof', $proof, '--pubkey', $pub);
{
	my ($prc, $pout) = py('proof', $proof, '--pubkey', $pub);
	is($prc, 0, 'the Python checker verifies the proof') or diag($pout);
	($prc) = py('proof', $proof, '--pubkey', $pub2);
	is($prc, 1, 'the Python checker rejects the proof with the wrong key');
}
sa_is(1, 'verify-proof with the wrong key', qr/no valid signature/, 'verify-proof', $proof, '--pubkey', $pub2);
sa_is(2, 'prove an entry no checkpoint covers yet', qr/no stored checkpoint covers/, 'prove', '--db', db('postgres'),
	'--chain', $c, '--seq', $n1, '--out', "$tmp/none.proof");
byte_edits('proof', $proof, 'proof', ['verify-proof']);
{
	my $db = new_case();
	$node->safe_psql($db,
		"UPDATE sensitive_audit.log_entries SET new_value = 'tampered' WHERE chain = $c AND seq = 2");
	sa_is(1, 'prove refuses a tampered entry', qr/refusing/, 'prove', '--db', db($db), '--chain', $c, '--seq', 2,
		'--out', "$tmp/tampered.proof");
	ok(!-e "$tmp/tampered.proof", 'no proof written for a tampered entry');
	$node->safe_psql('postgres', "DROP DATABASE $db");
}

# ---------------------------------------------------------------------------
# Empty and missing inputs, bad usage: exit status 2.
my $empty = "$tmp/empty";
open my $efh, '>', $empty or die;
close $efh;
sa_is(2, 'empty bundle', qr/empty/, 'verify', '--bundle', $empty, '--pubkey', $pub);
sa_is(2, 'missing bundle', qr/cannot read/, 'verify', '--bundle', "$tmp/nope", '--pubkey', $pub);
sa_is(2, 'empty proof', qr/empty/, 'verify-proof', $empty, '--pubkey', $pub);
sa_is(2, 'missing proof', qr/cannot read/, 'verify-proof', "$tmp/nope", '--pubkey', $pub);
sa_is(2, 'empty public key', qr/empty/, 'verify', '--db', db('postgres'), '--pubkey', $empty);
sa_is(2, 'missing public key', qr/cannot read/, 'verify', '--db', db('postgres'), '--pubkey', "$tmp/nope");
sa_is(2, 'empty private key', qr/empty|mode 0600/, 'checkpoint', '--db', db('postgres'), '--key', $empty, '--state',
	"$tmp/state_x");
make_path("$tmp/empty_state");
sa_is(2, 'empty state directory', qr/holds no checkpoint/, 'verify', '--db', db('postgres'), '--pubkey', $pub,
	'--state', "$tmp/empty_state");
sa_is(2, 'no command', undef);
sa_is(2, 'unknown command', undef, 'frobnicate');
sa_is(2, 'verify without --pubkey', undef, 'verify', '--db', db('postgres'));
sa_is(2, 'verify with both --db and --bundle', undef, 'verify', '--db', db('postgres'), '--bundle', $bundle,
	'--pubkey', $pub);
{
	my ($prc) = py('bundle', $empty, '--pubkey', $pub);
	is($prc, 2, 'the Python checker: empty bundle');
	($prc) = py('proof', "$tmp/nope", '--pubkey', $pub);
	is($prc, 2, 'the Python checker: missing proof');
}
{
	$node->safe_psql('postgres', 'CREATE DATABASE no_entries');
	$node->safe_psql('no_entries', 'CREATE EXTENSION sensitive_audit');
	sa_is(2, 'a log without entries cannot be verified', qr/no entry/, 'verify', '--db', db('no_entries'),
		'--pubkey', $pub);
	sa_is(2, 'a database without the extension', qr/not installed/, 'verify', '--db', db('template1'), '--pubkey',
		$pub);
}

# ---------------------------------------------------------------------------
# Concurrent checkpoint runs on one state directory are serialised: one
# signs, the other finds the log unchanged.
changes(3);
{
	my @runs;
	for my $i (0, 1)
	{
		my ($o, $e) = ('', '');
		my $h = IPC::Run::start(
			[ 'sensitive-audit', 'checkpoint', '--db', db('postgres'), '--key', $key, '--state', $state ],
			'<', \undef, '>', \$o, '2>', \$e);
		push @runs, [ $h, \$o, \$e ];
	}
	my @rcs = map { $_->[0]->finish; $? >> 8 } @runs;
	is("@rcs", '0 0', 'two concurrent checkpoint runs both succeed');
	my $outs = join('', map { ${ $_->[1] } . ${ $_->[2] } } @runs);
	like($outs, qr/signed checkpoint-000002/, 'one of them signs checkpoint-000002');
	like($outs, qr/unchanged since checkpoint-000002/, 'the other finds the log unchanged');
	ok(!-e "$state/checkpoint-000003.note", 'no third checkpoint');
	is($node->safe_psql('postgres', 'SELECT count(*) FROM sensitive_audit.checkpoints'), '2',
		'two checkpoints stored in the database');
	changes(2);
	sa_is(0, 'incremental checkpoint after more changes',
		qr/signed checkpoint-000003: .* verified in this run, from checkpoint-000002/,
		'checkpoint', '--db', db('postgres'), '--key', $key, '--state', $state);
	sa_is(0, 'verify --state after three checkpoints', qr/^VERIFIED/, 'verify', '--db', db('postgres'), '--pubkey',
		$pub, '--state', $state);
}

# ---------------------------------------------------------------------------
# The HTML report in headless Chromium.
my $html = "$tmp/report.html";
sa_is(0, 'verify --html', undef, 'verify', '--db', db('postgres'), '--pubkey', $pub, '--state', $state, '--html',
	$html);
my $page = slurp_file($html);
unlike($page, qr/<script|https?:\/\/(?!www\.w3\.org\/2000\/svg)|\@import|url\(/i, 'the report loads nothing and runs no script');
like($page, qr/<svg/, 'the report has inline pictures');
like($page, qr/public\.t.*public\.u/s, 'the report has a picture per audited table');
like($page, qr/entries 1\.\.\d+ covered by the state directory&#39;s latest checkpoint \(checkpoint-000003\)/,
	'the report says which checkpoint covers each chain');
my $chromium = `command -v chromium 2>/dev/null`;
chomp $chromium;
SKIP:
{
	skip 'chromium is not installed', 4 unless $chromium;
	my @flags = ('--headless', '--no-sandbox', '--disable-gpu', "--user-data-dir=$tmp/chromium",
		'--window-size=1000,1400');
	my ($o, $e) = ('', '');
	IPC::Run::run([ 'timeout', '120', $chromium, @flags, "--screenshot=$tmp/report.png", "file://$html" ],
		'<', \undef, '>', \$o, '2>', \$e);
	ok(-s "$tmp/report.png", 'chromium renders the report to a screenshot');
	# Not blank: the decoded pixels take many values.
	my ($po, $pe) = ('', '');
	IPC::Run::run(
		[
			'python3', '-c', q{
import sys, zlib
d = open(sys.argv[1], 'rb').read()
i, idat = 8, b''
while i < len(d):
    n = int.from_bytes(d[i:i+4], 'big'); t = d[i+4:i+8]
    if t == b'IDAT': idat += d[i+8:i+8+n]
    i += 12 + n
print(len(set(zlib.decompress(idat))))
}, "$tmp/report.png"
		],
		'>', \$po, '2>', \$pe);
	chomp $po;
	cmp_ok($po || 0, '>', 16, "the screenshot is not blank ($po distinct byte values)");
	my ($dom, $de) = ('', '');
	IPC::Run::run([ 'timeout', '120', $chromium, @flags, '--dump-dom', "file://$html" ], '<', \undef, '>', \$dom,
		'2>', \$de);
	like($dom, qr/id="verdict">VERIFIED: \d+ entries/, 'the page text has the verdict');

	my $db = new_case();
	$node->safe_psql($db,
		"UPDATE sensitive_audit.log_entries SET new_value = 'tampered' WHERE chain = $c AND seq = $k_new");
	sa_is(1, 'verify --html of a tampered log', undef, 'verify', '--db', db($db), '--pubkey', $pub, '--html',
		"$tmp/bad.html");
	IPC::Run::run([ 'timeout', '120', $chromium, @flags, '--dump-dom', "file://$tmp/bad.html" ], '<', \undef, '>',
		\$dom, '2>', \$de);
	like($dom, qr/id="verdict">FAILED: .*chain $c: first bad entry seq $k_new: content changed/s,
		'the page of a tampered log says FAILED, with chain and seq');
	$node->safe_psql('postgres', "DROP DATABASE $db");
}

$node->stop;
done_testing();
