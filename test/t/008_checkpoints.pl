# 008_checkpoints.pl — stored tree nodes, signed checkpoints and proofs
# (extension version 1.2; DESIGN.md, "Beyond a chain"; docs/FORMAT.md,
# section 9), checked from outside the database.
#
#  - Several chains, one of more than 600 entries, so that checkpoint_body()
#    stores level-8 tree nodes.  Its body is recomputed in Python from the
#    stored entry hashes alone, signed for real with Ed25519 (a fixed key of
#    this test) and stored with add_checkpoint(); verify() holds to it.
#  - Inclusion and consistency proofs are checked by an independent Python
#    implementation of RFC 9162 sections 2.1.3.2 and 2.1.4.2 (hashlib only),
#    against roots recomputed from the entry hashes and the checkpoint's.
#  - A superuser with the guards off cuts a chain, deletes one, rewrites a
#    suffix with correct hashes and links, or edits a stored tree node:
#    verify() reports each against the checkpoint or the node.
#  - Dump and restore keep the log id, the nodes and the checkpoints, and
#    the restored log still extends the signed checkpoint.
#  - Privileges, the insert-only guards of the new tables, the log id kept
#    once a checkpoint names it; read-only sessions compute missing nodes in
#    memory, and one read-write statement that needs a missing node twice
#    stores it once.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use JSON::PP;
use MIME::Base64 qw(decode_base64);

my $nchains = 3;
my $node = PostgreSQL::Test::Cluster->new('checkpoints');
$node->init(extra => [ '--encoding=UTF8', '--locale=C' ]);
# reads of the log are recorded by default; this test counts entries, and reads are 013's subject
$node->append_conf(
	'postgresql.conf', qq{
sensitive_audit.log_reads = off
shared_preload_libraries = 'sensitive_audit'
sensitive_audit.chains = $nchains
});
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE app');

# ---------------------------------------------------------------------------
# The outside checker, in Python: hashlib for the trees and proofs, written
# from RFC 6962 section 2.1 and RFC 9162 sections 2.1.3.2 and 2.1.4.2; the
# Ed25519 signer of python3-cryptography for the signed note.  Each command
# reads one JSON object on stdin and writes one on stdout; hashes travel in
# base64.  It computes, the Perl side compares.
my $checker = "$PostgreSQL::Test::Utils::tmp_check/008_checker.py";
open my $pyfh, '>', $checker or die "could not write $checker: $!";
print $pyfh <<'PYTHON';
import base64, hashlib, json, struct, sys

def sha(b): return hashlib.sha256(b).digest()
def b64d(s): return base64.b64decode(s, validate=True)
def b64e(b): return base64.b64encode(b).decode()
def leaf(data): return sha(b"\x00" + data)
def node(left, right): return sha(b"\x01" + left + right)

def mth(leaves):
    """RFC 6962 section 2.1: the Merkle tree hash of a list of leaf data."""
    n = len(leaves)
    if n == 0:
        return sha(b"")
    if n == 1:
        return leaf(leaves[0])
    k = 1
    while k * 2 < n:
        k *= 2
    return node(mth(leaves[:k]), mth(leaves[k:]))

def inclusion_root(index, size, leaf_hash, path):
    """RFC 9162 section 2.1.3.2: the root an audit path leads to."""
    if index >= size:
        raise ValueError("leaf index out of range")
    fn, sn, r = index, size - 1, leaf_hash
    for p in path:
        if sn == 0:
            raise ValueError("path too long")
        if fn & 1 or fn == sn:
            r = node(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ValueError("path too short")
    return r

def consistency_ok(first, second, first_hash, second_hash, path):
    """RFC 9162 section 2.1.4.2 (m = n: empty path, equal roots)."""
    if first < 1 or first > second:
        return False
    if first == second:
        return not path and first_hash == second_hash
    if not path:
        return False
    if first & (first - 1) == 0:
        path = [first_hash] + path
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node(c, fr)
            sr = node(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_hash and sr == second_hash and sn == 0

def flipped(h):
    return bytes([h[0] ^ 1]) + h[1:]

def cmd_body(req):
    # chains: [[chain, [entry hash, ...]], ...], each chain's entries in seq order
    chains = sorted((c, [b64d(h) for h in hs]) for c, hs in req["chains"] if hs)
    records = [b"sensitive_audit chain\x00" + struct.pack(">IQ", c, len(hs)) + mth(hs)
               for c, hs in chains]
    lines = ["sensitive_audit/" + req["log_id"], str(sum(len(hs) for _, hs in chains)),
             b64e(mth(records))]
    lines += ["chain %d %d %s" % (c, len(hs), b64e(mth(hs))) for c, hs in chains]
    return {"body": "".join(line + "\n" for line in lines)}

def cmd_mth(req):
    return {"roots": [b64e(mth([b64d(h) for h in hs])) for hs in req["lists"]]}

def cmd_sign(req):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(req["key"]))
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    name = req["name"]
    key_id = sha(name.encode() + b"\n\x01" + public)[:4]
    body = req["body"].encode()
    signature = key.sign(body)
    key.public_key().verify(signature, body)
    note = body + "\n\u2014 ".encode() + name.encode() + b" " + base64.b64encode(key_id + signature) + b"\n"
    return {"note": b64e(note), "key_id": key_id.hex()}

def cmd_inclusion(req):
    out = []
    for item in req["items"]:
        p = item["proof"]
        entries = [b64d(h) for h in item["entries"]]
        path = [b64d(h) for h in p["path"]]
        lh = leaf(b64d(p["entry_hash"]))
        r = {"leaf": b64e(lh), "mth": b64e(mth(entries[:p["tree_size"]])),
             "path_len": len(path)}
        try:
            r["root"] = b64e(inclusion_root(p["leaf_index"], p["tree_size"], lh, path))
        except ValueError as e:
            r["root"] = "error: " + str(e)
        # the same path with one hash changed must lead elsewhere
        if path:
            try:
                r["tampered_root"] = b64e(inclusion_root(p["leaf_index"], p["tree_size"], lh,
                                                         [flipped(path[0])] + path[1:]))
            except ValueError as e:
                r["tampered_root"] = "error: " + str(e)
        out.append(r)
    return {"results": out}

def cmd_consistency(req):
    out = []
    for item in req["items"]:
        p = item["proof"]
        entries = [b64d(h) for h in item["entries"]]
        path = [b64d(h) for h in p["path"]]
        old, new = p["old_size"], p["new_size"]
        old_root, new_root = b64d(p["old_root"]), b64d(p["new_root"])
        r = {"ok": consistency_ok(old, new, old_root, new_root, path),
             "old_mth": b64e(mth(entries[:old])), "new_mth": b64e(mth(entries[:new])),
             "path_len": len(path)}
        if path:
            r["tampered_ok"] = consistency_ok(old, new, old_root, new_root,
                                              path[:-1] + [flipped(path[-1])])
        r["wrong_old_ok"] = consistency_ok(old, new, flipped(old_root), new_root, path)
        out.append(r)
    return {"results": out}

req = json.load(sys.stdin)
json.dump({"body": cmd_body, "mth": cmd_mth, "sign": cmd_sign, "inclusion": cmd_inclusion,
           "consistency": cmd_consistency}[sys.argv[1]](req), sys.stdout)
PYTHON
close $pyfh;

my $json = JSON::PP->new->canonical->allow_nonref;

sub py
{
	my ($cmd, $req) = @_;
	my $in = $json->encode($req);
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'python3', $checker, $cmd ], '<', \$in, '>', \$out, '2>', \$err)
	  or die "python3 $checker $cmd failed: $err";
	return $json->decode($out);
}

# The fixed Ed25519 private key of this test (not the published RFC 8032
# one); it signs nothing but this test's checkpoints.
my $signing_key = '4c0a7e5d3b9f1e2d6a8c0b4f7e3d2a1908f6e5d4c3b2a1908f7e6d5c4b3a2918';

# ---------------------------------------------------------------------------
# Functions used below.

sub query
{
	my ($db, $sql) = @_;
	return $node->safe_psql($db, $sql);
}

# Runs $sql in a fresh session whose transactions start at chain $chain (a
# committer starts at its backend's pid modulo the number of chains and
# nothing else runs, so its entries go to that chain); returns the number of
# sessions it took.
sub in_chain
{
	my ($db, $chain, $sql) = @_;
	for my $try (1 .. 300)
	{
		my $out = $node->safe_psql(
			$db, qq{
SELECT pg_backend_pid() % $nchains = $chain AS hit \\gset
\\if :hit
$sql;
\\endif
SELECT :'hit';
});
		return $try if (split /\n/, $out)[-1] eq 't';
	}
	die "no session landed on chain $chain";
}

# Every chain's entry hashes (base64), in seq order: { chain => [ ... ] }.
sub entries_of
{
	my ($db) = @_;
	my %h;
	for my $line (split /\n/,
		query($db, q{SELECT chain, encode(hash, 'base64') FROM sensitive_audit.log_entries ORDER BY chain, seq}))
	{
		my ($c, $hash) = split /\|/, $line;
		push @{ $h{$c} }, $hash;
	}
	return \%h;
}

# A checkpoint body's chain lines: { chain => [ size, root ] }.
sub body_chains
{
	my ($body) = @_;
	my %c;
	for my $line (split /\n/, $body)
	{
		$c{$1} = [ $2, $3 ] if $line =~ /^chain (\d+) (\d+) (\S+)$/;
	}
	return \%c;
}

# checkpoint_body(), exactly (through JSON: the text ends in a line feed).
sub body_of
{
	my ($db) = @_;
	return $json->decode(query($db, 'SELECT to_json(sensitive_audit.checkpoint_body())'));
}

sub verify_rows
{
	my ($db) = @_;
	return query($db,
		q{SELECT chain, entries, ok, coalesce(first_bad_seq::text, '-'), coalesce(problem, '-')
			FROM sensitive_audit.verify() ORDER BY chain});
}

sub all_ok
{
	my ($sizes) = @_;
	return join("\n", map { "$_|$sizes->{$_}|t|-|-" } sort { $a <=> $b } keys %$sizes);
}

# ---------------------------------------------------------------------------
# Chains with entries, written by several sessions.
query(
	'app', q{
CREATE EXTENSION sensitive_audit;
CREATE TABLE public.t (id integer PRIMARY KEY, secret text);
SELECT sensitive_audit.tag('public.t', 'secret');
});
is(query('app', q{SELECT extversion FROM pg_extension WHERE extname = 'sensitive_audit'}),
	'1.3', 'extension version 1.3');
is(query('app', 'SELECT count(*) FROM sensitive_audit.tree_nodes'), '0', 'no tree node stored yet');

my $big = 1;    # the chain of more than 600 entries
my $sessions = 0;
$sessions += in_chain('app', $big, q{INSERT INTO public.t SELECT g, 's' || g FROM generate_series(1, 700) g});
$sessions += in_chain('app', 0, q{UPDATE public.t SET secret = secret || '.a' WHERE id <= 12});
$sessions += in_chain('app', 2, q{UPDATE public.t SET secret = secret || '.b' WHERE id BETWEEN 20 AND 28});
$sessions += in_chain('app', 0, q{UPDATE public.t SET secret = secret || '.c' WHERE id <= 3});
$sessions += in_chain('app', 2, q{DELETE FROM public.t WHERE id = 700});
note "entries written by $sessions sessions";

my %size = map { split /\|/ } split /\n/,
  query('app', 'SELECT chain, count(*) FROM sensitive_audit.log GROUP BY chain ORDER BY chain');
my @chains = sort { $a <=> $b } keys %size;
is(join(',', @chains), '0,1,2', 'entries in chains 0, 1 and 2');
cmp_ok($size{$big}, '>', 600, "chain $big has more than 600 entries ($size{$big})");
cmp_ok($size{$big}, '<', 768, "... and fewer than 768 (two complete level-8 subtrees)");
cmp_ok($size{0}, '>=', 15, 'chain 0 has at least 15 entries');
cmp_ok($size{2}, '>=', 10, 'chain 2 has at least 10 entries');
my $total = 0;
$total += $_ for values %size;
is(verify_rows('app'), all_ok(\%size), 'before any checkpoint every chain verifies');

my $log_id = query('app', 'SELECT log_id FROM sensitive_audit.log_info');
like($log_id, qr/^[A-Za-z0-9._-]{1,128}$/, 'one log id, of the allowed characters');

# The body, and the nodes it stored.  Chains are numbered from 0 (chain 0
# is in use here): every one must be covered.
{
	my ($out, $err) = ('', '');
	my $rc = $node->psql('app', 'SELECT sensitive_audit.checkpoint_body()', stdout => \$out, stderr => \$err);
	is("$rc|$err", '0|', 'checkpoint_body() succeeds on a log whose chains include chain 0');
}
my $body = body_of('app');
my @body_lines = split /\n/, $body;
is($body_lines[0], "sensitive_audit/$log_id", 'body line 1: the origin names the log id');
is($body_lines[1], $total, 'body line 2: the total number of entries');
is(scalar @body_lines, 3 + @chains, 'body: three lines and one line per chain');
my $cp = body_chains($body);
is(join(',', map { "$_:$cp->{$_}[0]" } sort { $a <=> $b } keys %$cp),
	join(',', map { "$_:$size{$_}" } @chains), 'body: one chain line per chain with its size');
my $sum = 0;
$sum += $_->[0] for values %$cp;
is($sum, $body_lines[1], 'body: the total is the sum of the chain sizes');

my $expected_nodes = join("\n",
	map { my $c = $_; map { "$c|8|$_" } 0 .. int($size{$c} / 256) - 1 } grep { $size{$_} >= 256 } @chains);
is($expected_nodes, "$big|8|0\n$big|8|1", 'two complete level-8 subtrees expected, both in the big chain');
is(query('app', 'SELECT chain, level, idx FROM sensitive_audit.tree_nodes ORDER BY 1, 2, 3'),
	$expected_nodes, 'checkpoint_body() stored the level-8 nodes of every complete 256-entry subtree');

# The body recomputed outside the database from the entry hashes alone.
my $entries = entries_of('app');
is(join(',', map { scalar @{ $entries->{$_} } } @chains), join(',', map { $size{$_} } @chains),
	'entry hashes read for every entry');
my $py_body = py('body', { log_id => $log_id, chains => [ map { [ $_ + 0, $entries->{$_} ] } @chains ] })->{body};
is($body, $py_body,
	'checkpoint body equals the one computed in Python (records tree root, chain roots, total)');
is( py('body', { log_id => $log_id, chains => [ map { [ $_ + 0, [ @{ $entries->{$_} }[ 0 .. $#{ $entries->{$_} } - 1 ] ] ] } @chains ] })
	  ->{body} eq $body ? 'same' : 'differs',
	'differs', 'the Python body of one entry fewer per chain differs (the comparison can fail)');

# Each stored node is the root of its 256 leaves.
for my $line (split /\n/,
	query('app', q{SELECT chain, idx, encode(hash, 'base64') FROM sensitive_audit.tree_nodes ORDER BY 1, 2}))
{
	my ($c, $i, $h) = split /\|/, $line;
	my $root = py('mth', { lists => [ [ @{ $entries->{$c} }[ 256 * $i .. 256 * $i + 255 ] ] ] })->{roots}[0];
	is($h, $root, "stored node chain $c level 8 index $i is the root of entries " . (256 * $i + 1) . '..' . (256 * $i + 256));
}

# Signed for real, stored.
my $key_name = "sensitive_audit/$log_id";
my $signed = py('sign', { body => $body, name => $key_name, key => $signing_key });
my $note = decode_base64($signed->{note});
like($note, qr/\A\Q$body\E\n\xe2\x80\x94 \Q$key_name\E [A-Za-z0-9+\/]{91}=\n\z/,
	'the signed note: body, blank line, one signature line');
my $cp_id = query('app', "SELECT sensitive_audit.add_checkpoint(\$note\$$note\$note\$)");
is($cp_id, '1', 'add_checkpoint() stores the signed note as checkpoint 1');
is(query('app', "SELECT sensitive_audit.add_checkpoint(\$note\$$note\$note\$)"), '1',
	'the same note again gives the same id');
is(unpack('H8', substr(decode_base64((split / /, (split /\n/, $note)[-1])[-1]), 0, 4)), $signed->{key_id},
	'the signature line starts with the key ID, SHA-256(name || 0A || 01 || public key)[0..3]');
is( query('app', q{SELECT id || '|' || log_id || '|' || total || '|' || (added_by = current_user) FROM sensitive_audit.checkpoints}),
	"1|$log_id|$total|true", 'one checkpoint row: id, log id, total, added by the caller');
is(query('app', "SELECT note = \$note\$$note\$note\$ FROM sensitive_audit.checkpoints WHERE id = 1"), 't',
	'the note is stored exactly as signed');
is(verify_rows('app'), all_ok(\%size), 'verify(): every chain ok, held to checkpoint 1');
is(query('app', 'SELECT sensitive_audit.verify_or_raise()'), $total, 'verify_or_raise() counts every entry');

# A correctly signed note of a state the log never had is refused.
{
	my @forged = @{ $entries->{0} };
	$forged[1] = $forged[2];
	my $fbody = py('body', { log_id => $log_id, chains => [ map { [ $_ + 0, $_ == 0 ? \@forged : $entries->{$_} ] } @chains ] })->{body};
	my $fnote = decode_base64(py('sign', { body => $fbody, name => $key_name, key => $signing_key })->{note});
	my ($out, $err) = ('', '');
	$node->psql('app', "SELECT sensitive_audit.add_checkpoint(\$note\$$fnote\$note\$)", stdout => \$out, stderr => \$err);
	like($err, qr/ERROR:  the checkpoint does not match chain 0: its first @{[$size{0}]} entries have another root/,
		'a signed note with another root for chain 0 is refused, naming the chain');
	($out, $err) = ('', '');
	my $other = $note =~ s/\Q$log_id\E/0123-other-log/gr;
	$node->psql('app', "SELECT sensitive_audit.add_checkpoint(\$note\$$other\$note\$)", stdout => \$out, stderr => \$err);
	like($err, qr/ERROR:  the checkpoint is for log 0123-other-log, this is log \Q$log_id\E/,
		'a note of another log id is refused');
	is(query('app', 'SELECT count(*) FROM sensitive_audit.checkpoints'), '1', '... and nothing was stored');
}

# ---------------------------------------------------------------------------
# Proofs, checked in Python.
my $n = $size{$big};
my @incl = (
	[ $big, 1, 1 ], [ $big, 1, 255 ], [ $big, 255, 255 ], [ $big, 128, 256 ], [ $big, 256, 256 ],
	[ $big, 1, 257 ], [ $big, 257, 257 ], [ $big, 256, 257 ], [ $big, 300, 512 ], [ $big, 512, 512 ],
	[ $big, 513, 600 ], [ $big, 1, $n ], [ $big, 256, $n ], [ $big, 257, $n ], [ $big, 600, $n ],
	[ $big, $n, $n ], [ $big, $n - 1, undef ], [ 0, 1, undef ], [ 0, $size{0}, undef ], [ 0, 5, 8 ],
	[ 2, 1, 1 ], [ 2, $size{2}, $size{2} ], [ 2, 3, undef ]);
my (@incl_proofs, @incl_items);
for my $case (@incl)
{
	my ($c, $seq, $ts) = @$case;
	my $p = $json->decode(query('app',
			"SELECT sensitive_audit.inclusion_proof($c, $seq" . (defined $ts ? ", $ts" : '') . ')'));
	push @incl_proofs, $p;
	push @incl_items, { proof => $p, entries => $entries->{$c} };
}
my $incl_results = py('inclusion', { items => \@incl_items })->{results};
for my $i (0 .. $#incl)
{
	my ($c, $seq, $ts) = @{ $incl[$i] };
	my $p = $incl_proofs[$i];
	my $r = $incl_results->[$i];
	my $size_at = $ts // $size{$c};
	my $name = "inclusion of chain $c seq $seq at size " . ($ts // "default ($size_at)");
	is("$p->{chain}|$p->{seq}|$p->{leaf_index}|$p->{tree_size}", "$c|$seq|" . ($seq - 1) . "|$size_at",
		"$name: chain, seq, leaf index and tree size");
	is($p->{entry_hash}, $entries->{$c}[ $seq - 1 ], "$name: entry_hash is the stored hash of the entry");
	is($p->{leaf_hash}, $r->{leaf}, "$name: leaf_hash = SHA-256(00 || entry hash)");
	is($r->{root}, $p->{root}, "$name: the path leads from the leaf to the root (RFC 9162 2.1.3.2)");
	is($p->{root}, $r->{mth}, "$name: the root is the tree hash of the first $size_at entries");
	is($p->{root}, $cp->{$c}[1], "$name: the root is the checkpoint's root for chain $c")
	  if $size_at == $cp->{$c}[0];
	isnt($r->{tampered_root}, $p->{root}, "$name: a changed path hash leads elsewhere")
	  if $r->{path_len} > 0;
}
is(scalar(grep { $_->{path_len} == 0 } @$incl_results), 2, 'exactly the two proofs at size 1 have empty paths');

my @cons = (
	[ $big, 1, 2 ], [ $big, 1, $n ], [ $big, 255, 256 ], [ $big, 256, 257 ], [ $big, 255, $n ],
	[ $big, 256, $n ], [ $big, 257, $n ], [ $big, 256, 512 ], [ $big, 512, $n ], [ $big, 100, 600 ],
	[ $big, 3, 7 ], [ $big, $n - 1, undef ], [ $big, $n, $n ], [ 0, 1, undef ], [ 0, 4, undef ],
	[ 2, 2, $size{2} ], [ 2, 1, 1 ]);
my (@cons_proofs, @cons_items);
for my $case (@cons)
{
	my ($c, $old, $new) = @$case;
	my $p = $json->decode(query('app',
			"SELECT sensitive_audit.consistency_proof($c, $old" . (defined $new ? ", $new" : '') . ')'));
	push @cons_proofs, $p;
	push @cons_items, { proof => $p, entries => $entries->{$c} };
}
my $cons_results = py('consistency', { items => \@cons_items })->{results};
for my $i (0 .. $#cons)
{
	my ($c, $old, $new) = @{ $cons[$i] };
	my $p = $cons_proofs[$i];
	my $r = $cons_results->[$i];
	my $new_at = $new // $size{$c};
	my $name = "consistency of chain $c from $old to " . ($new // "default ($new_at)");
	is("$p->{chain}|$p->{old_size}|$p->{new_size}", "$c|$old|$new_at", "$name: chain and sizes");
	ok($r->{ok}, "$name: verifies between old_root and new_root (RFC 9162 2.1.4.2)");
	is($p->{old_root}, $r->{old_mth}, "$name: old_root is the tree hash of the first $old entries");
	is($p->{new_root}, $r->{new_mth}, "$name: new_root is the tree hash of the first $new_at entries");
	my $incl_root = $json->decode(query('app', "SELECT sensitive_audit.inclusion_proof($c, 1, $old)"))->{root};
	is($p->{old_root}, $incl_root, "$name: old_root is the root of an inclusion proof at tree_size $old");
	is($p->{new_root}, $cp->{$c}[1], "$name: new_root is the checkpoint's root for chain $c")
	  if $new_at == $cp->{$c}[0];
	ok(!$r->{wrong_old_ok}, "$name: does not verify against another old root");
	ok(!$r->{tampered_ok}, "$name: a changed path hash does not verify") if $r->{path_len} > 0;
}
is( join(',', map { $cons_results->[$_]{path_len} } grep { $cons[$_][1] == ($cons[$_][2] // $size{ $cons[$_][0] }) } 0 .. $#cons),
	'0,0', 'proofs between equal sizes are empty');

# Out-of-range requests are refused.
for my $bad (
	[ "inclusion_proof($big, 0)",         qr/has no entry at seq 0/ ],
	[ "inclusion_proof($big, 10, 9)",     qr/tree size 9 is out of range for seq 10/ ],
	[ "inclusion_proof($big, 1, @{[$n + 1]})", qr/tree size @{[$n + 1]} is out of range/ ],
	[ "consistency_proof($big, 10, 9)",   qr/old size 10 is out of range/ ],
	[ "consistency_proof($big, 1, @{[$n + 1]})", qr/new size @{[$n + 1]} is out of range/ ],
	[ 'inclusion_proof(7, 1)',            qr/audit log chain 7 has no entries/ ])
{
	my ($out, $err) = ('', '');
	$node->psql('app', "SELECT sensitive_audit.$bad->[0]", stdout => \$out, stderr => \$err);
	like($err, $bad->[1], "$bad->[0] is refused");
}

# ---------------------------------------------------------------------------
# Tampering after the checkpoint, each case in a transaction rolled back.

# The entry hash in SQL (format 1, as in 003_tamper.pl), to forge entries
# whose hashes and links are all correct.
query(
	'app', q{
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
my $chain_sound = q{
SELECT (SELECT count(*) FILTER (WHERE public.entry_hash(l) <> l.hash) FROM sensitive_audit.log l)
	   || '/' ||
	   (SELECT count(*) FROM sensitive_audit.log l
		  LEFT JOIN sensitive_audit.log p ON p.chain = l.chain AND p.seq = l.seq - 1
		 WHERE l.prev_hash <> coalesce(p.hash, decode(repeat('00', 32), 'hex')))};
is(query('app', $chain_sound), '0/0',
	'the SQL entry hash reproduces every stored hash, and every entry links to its predecessor');

my $guards_off = q{
ALTER EVENT TRIGGER sensitive_audit_enforce_ddl DISABLE;
ALTER EVENT TRIGGER sensitive_audit_enforce_drop DISABLE;
ALTER TABLE sensitive_audit.log_entries DISABLE TRIGGER USER;
ALTER TABLE sensitive_audit.log_contexts DISABLE TRIGGER USER;
ALTER TABLE sensitive_audit.tree_nodes DISABLE TRIGGER USER;
ALTER TABLE sensitive_audit.checkpoints DISABLE TRIGGER USER;
};

my $orig_hashes = query('app', q{SELECT chain, seq, encode(hash, 'hex') FROM sensitive_audit.log ORDER BY 1, 2});
my $orig_nodes = query('app', q{SELECT chain, level, idx, encode(hash, 'hex') FROM sensitive_audit.tree_nodes ORDER BY 1, 2, 3});

# Runs the tampering $sql in one transaction with the guards off, then the
# statements of @checks, each in a savepoint (a check may fail, like
# verify_or_raise()), and rolls back.  Returns the output of each check
# (a reference to a list) and stderr.
sub tampered
{
	my ($sql, @checks) = @_;
	my $script = "\\set VERBOSITY verbose\nBEGIN;\n$guards_off\n$sql;\n";
	for my $i (0 .. $#checks)
	{
		$script .= "SAVEPOINT c;\n\\echo <$i>\n$checks[$i];\n\\echo </$i>\nROLLBACK TO c;\n";
	}
	$script .= "ROLLBACK;\n";
	my ($out, $err) = ('', '');
	$node->psql('app', $script, stdout => \$out, stderr => \$err, on_error_stop => 0);
	note "tampering stderr:\n$err" if $err ne '';
	my @got = map { $out =~ /^<$_>\n(.*?)^<\/$_>$/ms ? $1 : '(no output)' } 0 .. $#checks;
	chomp @got;
	return (\@got, $err);
}

my $verify_q = q{SELECT chain || '|' || entries || '|' || CASE WHEN ok THEN 't' ELSE 'f' END || '|' || coalesce(first_bad_seq::text, '-') || '|'
	|| coalesce(problem, '-') AS r FROM sensitive_audit.verify() ORDER BY chain};
my $raise_q = 'SELECT sensitive_audit.verify_or_raise() AS r';
my $readd_q = "SELECT sensitive_audit.add_checkpoint(\$note\$$note\$note\$) AS r";

sub others_ok
{
	my ($rows, $except, $name) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my @other = grep { !/^$except\|/ } split /\n/, $rows;
	is(join("\n", @other), join("\n", map { "$_|$size{$_}|t|-|-" } grep { $_ != $except } @chains),
		"$name: the other chains verify");
}

# (a) The tail of the big chain cut off.
{
	my $m = $n - 5;
	my ($got, $err) = tampered("DELETE FROM sensitive_audit.log_entries WHERE chain = $big AND seq > $m",
		$verify_q, $raise_q, $readd_q);
	my ($row) = grep { /^$big\|/ } split /\n/, $got->[0];
	is($row, "$big|$m|f|" . ($m + 1) . "|cut: checkpoint 1 recorded $n entries, the chain has $m",
		"cut: chain $big reported at seq " . ($m + 1) . ', naming checkpoint 1');
	others_ok($got->[0], $big, 'cut');
	like($err, qr/ERROR:  XX001: audit log chain $big is corrupted at seq @{[$m + 1]}\b/,
		'cut: verify_or_raise() raises data_corrupted (XX001) naming the chain and seq');
	like($err, qr/ERROR:  XX001: the checkpoint does not match chain $big: it records $n entries, the chain has $m/,
		'cut: add_checkpoint() of the same note is refused, naming the chain');
	is($got->[1] . $got->[2], '', 'cut: neither returned a value');
}

# (b) A whole chain deleted.
{
	my ($got, $err) = tampered('DELETE FROM sensitive_audit.log_entries WHERE chain = 2', $verify_q, $raise_q);
	my ($row) = grep { /^2\|/ } split /\n/, $got->[0];
	is($row, "2|0|f|1|missing: checkpoint 1 recorded $size{2} entries, the chain has none",
		'missing: chain 2 reported, naming checkpoint 1');
	others_ok($got->[0], 2, 'missing');
	like($err, qr/ERROR:  XX001: audit log chain 2 is corrupted at seq 1\b/, 'missing: verify_or_raise() raises XX001');
}

# (c) A suffix of the big chain rewritten, with every hash recomputed and
# every link right again: past the stored nodes (which cover 1..512), only
# the checkpoint shows it.
{
	my $k = 600;
	my $rewrite = qq{
DO \$\$
DECLARE s bigint;
BEGIN
	FOR s IN SELECT seq FROM sensitive_audit.log_entries WHERE chain = $big AND seq >= $k ORDER BY seq LOOP
		UPDATE sensitive_audit.log_entries
		   SET new_value = coalesce(new_value, '') || ' (rewritten)',
			   prev_hash = (SELECT hash FROM sensitive_audit.log_entries WHERE chain = $big AND seq = s - 1)
		 WHERE chain = $big AND seq = s;
		UPDATE sensitive_audit.log_entries e SET hash = public.entry_hash(l)
		  FROM sensitive_audit.log l
		 WHERE l.chain = e.chain AND l.seq = e.seq AND e.chain = $big AND e.seq = s;
	END LOOP;
END \$\$};
	my ($got, $err) = tampered(
		$rewrite,
		q{SELECT count(*) AS r FROM sensitive_audit.log WHERE new_value LIKE '% (rewritten)'},
		$chain_sound,
		$verify_q,
		"DELETE FROM sensitive_audit.checkpoints;\n$verify_q",
		$raise_q);
	is($got->[0], $n - $k + 1, "rewritten: entries $k..$n of chain $big rewritten");
	is($got->[1], '0/0', 'rewritten: every entry hash and every link is correct again');
	my ($row) = grep { /^$big\|/ } split /\n/, $got->[2];
	is($row, "$big|$n|f|$n|rewritten: entries 1..$n do not have the root checkpoint 1 recorded",
		"rewritten: chain $big reported, naming checkpoint 1");
	others_ok($got->[2], $big, 'rewritten');
	is($got->[3], all_ok(\%size), 'rewritten: without the checkpoint the chain alone verifies');
	like($err, qr/ERROR:  XX001: audit log chain $big is corrupted at seq $n\b/, 'rewritten: verify_or_raise() raises XX001');
}

# (d) A stored tree node edited, with the checkpoint stored and without.
{
	my $edit = "UPDATE sensitive_audit.tree_nodes SET hash = sha256(hash) WHERE chain = $big AND level = 8 AND idx = 1";
	my $expect = "$big|$n|f|257|rewritten: entries 257..512 do not have the root stored for them (tree node level 8, index 1)";
	my ($got, $err) = tampered($edit, $verify_q, $raise_q);
	my ($row) = grep { /^$big\|/ } split /\n/, $got->[0];
	is($row, $expect, 'tree node edited (checkpoint stored): verify() reports the node');
	others_ok($got->[0], $big, 'tree node edited');
	like($err, qr/ERROR:  XX001: audit log chain $big is corrupted at seq 257\b/,
		'tree node edited: verify_or_raise() raises XX001');

	($got, $err) = tampered("DELETE FROM sensitive_audit.checkpoints; $edit", $verify_q);
	($row) = grep { /^$big\|/ } split /\n/, $got->[0];
	is($row, $expect, 'tree node edited (no checkpoint stored): verify() reports the node');

	($got, $err) = tampered("UPDATE sensitive_audit.tree_nodes SET hash = sha256(hash) WHERE chain = $big AND idx = 0",
		$verify_q);
	($row) = grep { /^$big\|/ } split /\n/, $got->[0];
	like($row, qr/^$big\|$n\|f\|1\|rewritten: entries 1\.\.256 do not have the root stored for them \(tree node level 8, index 0\)$/,
		'tree node 0 edited: reported at seq 1');
}

is(query('app', q{SELECT chain, seq, encode(hash, 'hex') FROM sensitive_audit.log ORDER BY 1, 2}), $orig_hashes,
	'after the cases: the log is untouched');
is(query('app', q{SELECT chain, level, idx, encode(hash, 'hex') FROM sensitive_audit.tree_nodes ORDER BY 1, 2, 3}),
	$orig_nodes, 'after the cases: the tree nodes are untouched');
is(verify_rows('app'), all_ok(\%size), 'after the cases: every chain verifies');

# ---------------------------------------------------------------------------
# Privileges and guards.
query('app', 'CREATE ROLE reader LOGIN');
my @calls = (
	[ 'checkpoint_body()',                                 'checkpoint_body()' ],
	[ "add_checkpoint(\$note\$$note\$note\$)",            'add_checkpoint(text)' ],
	[ "inclusion_proof($big, 1)",                          'inclusion_proof(integer, bigint, bigint)' ],
	[ "consistency_proof($big, 1)",                        'consistency_proof(integer, bigint, bigint)' ]);
sub as_reader
{
	my ($sql) = @_;
	my ($out, $err) = ('', '');
	my $rc = $node->psql('app', "SET ROLE reader;\n$sql", stdout => \$out, stderr => \$err, on_error_stop => 1);
	return ($rc, $out, $err);
}
for my $call (@calls)
{
	my ($rc, $out, $err) = as_reader("SELECT sensitive_audit.$call->[0]");
	my $fname = $call->[0] =~ s/\(.*//sr;
	isnt($rc, 0, "no grants: $fname() fails");
	like($err, qr/ERROR:  permission denied for schema sensitive_audit/, "no grants: $fname(): permission denied");
}
query('app', 'GRANT USAGE ON SCHEMA sensitive_audit TO reader');
for my $call (@calls)
{
	my ($rc, $out, $err) = as_reader("SELECT sensitive_audit.$call->[0]");
	my $fname = $call->[0] =~ s/\(.*//sr;
	like($err, qr/ERROR:  permission denied for function $fname\b/,
		"USAGE on the schema only: $fname(): permission denied for the function");
}
query('app', join('', map { "GRANT EXECUTE ON FUNCTION sensitive_audit.$_->[1] TO reader;\n" } @calls));
{
	# (What the superuser gets now: the grants above may be audited too.)
	my $now_body = body_of('app');
	my $now_root = query('app', "SELECT sensitive_audit.inclusion_proof($big, 300)->>'root'");
	my ($rc, $out, $err) = as_reader('SELECT to_json(sensitive_audit.checkpoint_body())');
	is($rc . $err, '0', 'with EXECUTE: checkpoint_body() works');
	is($rc == 0 ? $json->decode($out) : '', $now_body, '... and gives the same body as for the superuser');
	($rc, $out, $err) = as_reader("SELECT sensitive_audit.add_checkpoint(\$note\$$note\$note\$)");
	is("$rc|$out", '0|1', 'with EXECUTE: add_checkpoint() of the stored note gives its id');
	($rc, $out, $err) = as_reader("SELECT sensitive_audit.inclusion_proof($big, 300)->>'root'");
	is("$rc|$out", "0|$now_root", 'with EXECUTE: inclusion_proof() works, same root');
	($rc, $out, $err) = as_reader("SELECT sensitive_audit.consistency_proof($big, 300)->>'new_root'");
	is("$rc|$out", "0|$now_root", 'with EXECUTE: consistency_proof() works');
	for my $rel (qw(checkpoints tree_nodes log_info))
	{
		($rc, $out, $err) = as_reader("SELECT count(*) FROM sensitive_audit.$rel");
		like($err, qr/ERROR:  permission denied for table $rel/, "with EXECUTE: the table $rel is still not readable");
	}
}

# The guards, for the superuser.
sub refused
{
	my ($name, $sql, $pattern) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my ($out, $err) = ('', '');
	my $rc = $node->psql('app', $sql, stdout => \$out, stderr => \$err);
	isnt($rc, 0, "$name: refused");
	like($err, $pattern, "$name: with the expected error");
}
my $cp_rows = query('app', 'SELECT c::text FROM sensitive_audit.checkpoints c ORDER BY id');
for my $rel (qw(checkpoints tree_nodes))
{
	my $set = $rel eq 'checkpoints' ? q{note = note || 'x'} : q{hash = sha256(hash)};
	refused("UPDATE of $rel", "UPDATE sensitive_audit.$rel SET $set",
		qr/ERROR:  the audit log is insert-only: UPDATE on sensitive_audit\.$rel is not allowed/);
	refused("DELETE from $rel", "DELETE FROM sensitive_audit.$rel",
		qr/ERROR:  the audit log is insert-only: DELETE on sensitive_audit\.$rel is not allowed/);
	refused("TRUNCATE of $rel", "TRUNCATE sensitive_audit.$rel",
		qr/ERROR:  the audit log is insert-only: TRUNCATE on sensitive_audit\.$rel is not allowed/);
	refused("INSERT into $rel", "INSERT INTO sensitive_audit.$rel SELECT * FROM sensitive_audit.$rel LIMIT 1",
		qr/ERROR:  the audit log is insert-only: INSERT on sensitive_audit\.$rel is not allowed/);
}
is(query('app', 'SELECT c::text FROM sensitive_audit.checkpoints c ORDER BY id'), $cp_rows, 'checkpoints unchanged');
is(query('app', q{SELECT chain, level, idx, encode(hash, 'hex') FROM sensitive_audit.tree_nodes ORDER BY 1, 2, 3}),
	$orig_nodes, 'tree nodes unchanged');
refused('INSERT of another log id while a checkpoint names the current one',
	q{INSERT INTO sensitive_audit.log_info (log_id, created_at) VALUES ('another-log-id', now())},
	qr/ERROR:  the log id \Q$log_id\E is named by stored checkpoints and cannot be replaced/);
refused('UPDATE of log_info', q{UPDATE sensitive_audit.log_info SET log_id = 'another-log-id'},
	qr/ERROR:  the audit log is insert-only: UPDATE on sensitive_audit\.log_info is not allowed/);
is(query('app', 'SELECT count(*) || log_id FROM sensitive_audit.log_info GROUP BY log_id'), "1$log_id",
	'log_info still holds the one log id');

# ---------------------------------------------------------------------------
# Read-only sessions: nodes computed in memory, none stored.
my $before2 = query('app', 'SELECT count(*) FROM sensitive_audit.log WHERE chain = 2');
in_chain('app', 2, q{UPDATE public.t SET secret = secret || '.d' WHERE id BETWEEN 100 AND 399});
my %size2 = map { split /\|/ } split /\n/,
  query('app', 'SELECT chain, count(*) FROM sensitive_audit.log GROUP BY chain ORDER BY chain');
is($size2{2}, $before2 + 300, 'chain 2 grew by 300 entries, past a complete 256-entry subtree');
my $entries2 = entries_of('app');
my $body2_py = py('body', { log_id => $log_id, chains => [ map { [ $_ + 0, $entries2->{$_} ] } @chains ] })->{body};
{
	local $ENV{PGOPTIONS} = '-c default_transaction_read_only=on';
	my $ro = query(
		'app', q{
SHOW transaction_read_only;
SELECT to_json(sensitive_audit.checkpoint_body());
SELECT sensitive_audit.inclusion_proof(2, 1);
SELECT sensitive_audit.consistency_proof(2, 10);
SELECT count(*) FROM sensitive_audit.tree_nodes});
	my ($ro_on, $ro_body, $ro_incl, $ro_cons, $ro_nodes) = split /\n/, $ro;
	is($ro_on, 'on', 'read-only: the session is read-only');
	is($json->decode($ro_body), $body2_py, 'read-only: checkpoint_body() is right (checked in Python)');
	my $p = $json->decode($ro_incl);
	my $r = py('inclusion', { items => [ { proof => $p, entries => $entries2->{2} } ] })->{results}[0];
	is("$p->{tree_size}|$r->{root}|$r->{mth}", "$size2{2}|$p->{root}|$p->{root}",
		'read-only: inclusion_proof() is right (checked in Python)');
	ok(py('consistency', { items => [ { proof => $json->decode($ro_cons), entries => $entries2->{2} } ] })->{results}[0]{ok},
		'read-only: consistency_proof() verifies (checked in Python)');
	is($ro_nodes, 2, 'read-only: tree_nodes did not grow within the session');
}
is(query('app', 'SELECT count(*) FROM sensitive_audit.tree_nodes'), '2', 'read-only: tree_nodes did not grow');
# Read-write, one statement that needs the missing node twice: the first
# call stores it, the second must find it rather than store it again.
{
	my ($out, $err) = ('', '');
	my $rc = $node->psql(
		'app', q{
SELECT json_build_object('body', sensitive_audit.checkpoint_body(),
						 'inclusion', sensitive_audit.inclusion_proof(2, 1))},
		stdout => \$out, stderr => \$err);
	is("$rc|$err", '0|', 'read-write: checkpoint_body() and inclusion_proof() in one statement, node missing');
	my $got = $rc == 0 ? $json->decode($out) : {};
	is($got->{body}, $body2_py, 'read-write: ... the same body');
}
is(body_of('app'), $body2_py, 'read-write: the same body');
is(query('app', 'SELECT chain, level, idx FROM sensitive_audit.tree_nodes ORDER BY 1, 2, 3'),
	"$big|8|0\n$big|8|1\n2|8|0", 'read-write: the new complete subtree of chain 2 is stored');
is(verify_rows('app'), all_ok(\%size2), 'every chain verifies, extending checkpoint 1');

# ---------------------------------------------------------------------------
# Dump and restore.
my $dump = "$PostgreSQL::Test::Utils::tmp_check/008_app.dump";
$node->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('app') ], 'pg_dump -Fc of the database');
$node->safe_psql('postgres', 'CREATE DATABASE copy');
{
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'pg_restore', '-d', $node->connstr('copy'), $dump ], '<', \undef, '>', \$out, '2>', \$err);
	is($? >> 8, 0, 'pg_restore into a new database, exit status 0');
	note "pg_restore stderr: $err" if $err ne '';
}
my $nodes_q = q{SELECT chain, level, idx, encode(hash, 'hex') FROM sensitive_audit.tree_nodes ORDER BY 1, 2, 3};
my $cps_q = q{SELECT id, added_at, added_by, log_id, total, note FROM sensitive_audit.checkpoints ORDER BY id};
is(query('copy', 'SELECT log_id FROM sensitive_audit.log_info'), $log_id, 'restored: the same log id, one row');
is(query('copy', $nodes_q), query('app', $nodes_q), 'restored: the same tree_nodes rows');
is(query('copy', $cps_q), query('app', $cps_q), 'restored: the same checkpoints rows');
my $restore_chain = query('copy', q{SELECT chain FROM sensitive_audit.log WHERE operation = 'RESTORE'});
like($restore_chain, qr/^\d+$/, "restored: one RESTORE entry (chain $restore_chain)");
# The restore adds to the log: its RESTORE entry, and the privileges it grants
# (GRANT entries of the authorization changes it makes); nothing else.
my %size3 = map { split /\|/ } split /\n/,
  query('copy', q{SELECT chain || '|' || max(seq) FROM sensitive_audit.log_entries GROUP BY chain});
my $since = join(', ', map { "($_, " . ($size2{$_} // 0) . ")" } sort { $a <=> $b } keys %size3);
is( query('copy', qq{SELECT string_agg(DISTINCT l.operation, ',' ORDER BY l.operation)
  FROM sensitive_audit.log l JOIN (VALUES $since) s(chain, size) ON s.chain = l.chain WHERE l.seq > s.size}),
	query('copy', q{SELECT string_agg(DISTINCT operation, ',' ORDER BY operation) FROM sensitive_audit.log
					 WHERE operation IN ('RESTORE', 'GRANT', 'REVOKE')}),
	'restored: what the restore added is its RESTORE entry and the grants it made');
is(verify_rows('copy'), all_ok(\%size3), 'restored: verify() ok, every chain');
is(query('copy', "SELECT sensitive_audit.add_checkpoint(\$note\$$note\$note\$)"), '1',
	'restored: the original signed note gives the existing checkpoint\'s id');
is(query('copy', 'SELECT count(*) FROM sensitive_audit.checkpoints'), '1', 'restored: still one checkpoint');
{
	my $entries3 = entries_of('copy');
	my $old = $cp->{$restore_chain}[0];
	my $p = $json->decode(query('copy', "SELECT sensitive_audit.consistency_proof($restore_chain, $old)"));
	my $r = py('consistency', { items => [ { proof => $p, entries => $entries3->{$restore_chain} } ] })->{results}[0];
	is("$p->{old_size}|$p->{new_size}", "$old|$size3{$restore_chain}",
		"restored: consistency proof of chain $restore_chain from the checkpoint's size to the new size");
	ok($r->{ok}, 'restored: ... verifies in Python');
	is("$p->{old_root}|$p->{new_root}", "$cp->{$restore_chain}[1]|$r->{new_mth}",
		'restored: ... from the checkpoint\'s root to the root of every entry now');
	ok(!$r->{wrong_old_ok}, 'restored: ... and not from another root');
}

$node->stop;
done_testing();
