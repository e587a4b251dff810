# 014_protect.pl — protected values end to end: fingerprint, encrypt and
# erasable columns written by ordinary sessions; the chain verified in SQL,
# by the command-line program and by the independent Python checker;
# `sensitive-audit decrypt` with the right key (clear values), with a key of
# another rotation (only its own values), and with a wrong key (refused);
# erase() of one data subject, after which every chain still verifies and
# nothing that remains (the database, a new dump) lets a dictionary of the
# erased value match its commitment; and pg_dump / pg_restore of every mode
# (keys, kept values and erasures carried; fingerprints stable across the
# restore and different in another database).
use strict;
use warnings;

use Digest::SHA qw(sha256 sha256_hex);
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('protect');
$node->init;
$node->start;

my $tmp = PostgreSQL::Test::Utils::tempdir;
my $pyverify = "$ENV{TESTDIR}/test/pyverify/verify.py";

sub sa
{
	my @args = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'sensitive-audit', @args ], '<', \undef, '>', \$out, '2>', \$err);
	return ($? >> 8, $out, $err);
}

sub db { return $node->connstr($_[0]); }
sub query { my ($db, $sql) = @_; return $node->safe_psql($db, $sql); }

# Key pairs made the way the README says, with openssl.
sub x25519_pair
{
	my ($name) = @_;
	my ($priv, $pub) = ("$tmp/$name.pem", "$tmp/$name.pub.pem");
	system('openssl', 'genpkey', '-algorithm', 'X25519', '-out', $priv) == 0 or die "openssl genpkey failed";
	system('openssl', 'pkey', '-in', $priv, '-pubout', '-out', $pub) == 0 or die "openssl pkey failed";
	chmod 0600, $priv;
	return ($priv, slurp_file($pub));
}
my ($priv1, $pub1) = x25519_pair('k1');
my ($priv2, $pub2) = x25519_pair('k2');
my ($wrong, undef) = x25519_pair('wrong');

# Values distinctive enough to grep a dump for.
my %v = (
	ssn1 => '123456789', ssn2 => '987654321',
	card1 => '4111111111111111', card2 => '5500000000000004', card3 => '340000000000009',
	diag1 => 'diagnosis-of-subject-one', diag1b => 'second-diagnosis-of-subject-one',
	diag2 => 'diagnosis-of-subject-two');

query('postgres', q{CREATE DATABASE app});
query('app', qq{
CREATE EXTENSION sensitive_audit;
CREATE TABLE patients (id int PRIMARY KEY, name text, ssn text, card text, diagnosis text, nid text);
SELECT sensitive_audit.tag('patients', 'name', 'ssn', 'card', 'diagnosis', 'nid');
SELECT sensitive_audit.set_encryption_key('$pub1');
SELECT sensitive_audit.protect('patients', 'ssn', 'fingerprint');
SELECT sensitive_audit.protect('patients', 'card', 'encrypt');
SELECT sensitive_audit.protect('patients', 'diagnosis', 'erasable');
SELECT sensitive_audit.protect('patients', 'nid', 'erasable');
CREATE ROLE clerk LOGIN;
GRANT SELECT, INSERT, UPDATE, DELETE ON patients TO clerk;
CREATE ROLE dpo LOGIN;
GRANT USAGE ON SCHEMA sensitive_audit TO dpo;
GRANT EXECUTE ON FUNCTION sensitive_audit.erase(regclass, jsonb) TO dpo;
});

# An ordinary session writes: the clerk has no right on the audit schema.
sub as_clerk
{
	my ($sql) = @_;
	my ($out, $err) = ('', '');
	my $rc = $node->psql('app', "SET ROLE clerk; $sql", stdout => \$out, stderr => \$err);
	is($rc, 0, "clerk: $sql") or diag($err);
}
as_clerk("INSERT INTO patients VALUES (1, 'Ann', '$v{ssn1}', '$v{card1}', '$v{diag1}', '$v{ssn1}')");
as_clerk("INSERT INTO patients VALUES (2, 'Bob', '$v{ssn2}', '$v{card2}', '$v{diag2}', '$v{ssn2}')");
as_clerk("UPDATE patients SET diagnosis = '$v{diag1b}' WHERE id = 1");

# Key rotation: new values go to the new key; old entries stay as they are.
my $kid1 = query('app', q{SELECT key_id FROM sensitive_audit.encryption_keys});
my $kid2 = query('app', qq{SELECT sensitive_audit.set_encryption_key('$pub2')});
isnt($kid2, $kid1, 'a second key has another key id');
as_clerk("UPDATE patients SET card = '$v{card3}' WHERE id = 2");

is(query('app', q{SELECT count(*) FROM sensitive_audit.log_entries WHERE format = 2}),
	'10', '10 format 2 entries: 4 for each inserted row, one for each UPDATE of a protected column');
my $clear_in_log = query('app', qq{
SELECT count(*) FROM sensitive_audit.log_entries
 WHERE old_value IN ('$v{ssn1}', '$v{ssn2}', '$v{card1}', '$v{card2}', '$v{card3}')
	OR new_value IN ('$v{ssn1}', '$v{ssn2}', '$v{card1}', '$v{card2}', '$v{card3}')});
is($clear_in_log, '0', 'no fingerprinted or encrypted value is in the log in clear');
is(query('app', q{SELECT bool_and(ok) FROM sensitive_audit.verify()}), 't', 'verify(): every chain verifies');

# ---------------------------------------------------------------------------
# The program: verify, decrypt with each key, a wrong key, a bundle.
my ($sign, $signpub) = ("$tmp/signer.key", "$tmp/signer.pub");
my ($rc, $out, $err) = sa('keygen', '--name', 'witness', '--private', $sign, '--public', $signpub);
is($rc, 0, 'keygen') or diag($err);
($rc, $out, $err) = sa('checkpoint', '--db', db('app'), '--key', $sign, '--state', "$tmp/state");
is($rc, 0, 'checkpoint of a log with format 2 entries') or diag($out . $err);
($rc, $out, $err) = sa('verify', '--db', db('app'), '--pubkey', $signpub, '--state', "$tmp/state");
is($rc, 0, 'sensitive-audit verify: format 2 entries verify') or diag($out . $err);

($rc, $out, $err) = sa('decrypt', '--key', $priv1, '--db', db('app'));
is($rc, 0, 'decrypt with the first key: exit status 0') or diag($out . $err);
like($out, qr/\Q$v{card1}\E/, 'decrypt with the first key shows the first card in clear');
like($out, qr/\Q$v{card2}\E/, '... and the second card, sealed to the same key');
unlike($out, qr/\Q$v{card3}\E/, '... but not the card sealed to the second key');
unlike($out . $err, qr/PRIVATE KEY/, 'decrypt never prints the private key');

($rc, $out, $err) = sa('decrypt', '--key', $priv2, '--db', db('app'));
is($rc, 0, 'decrypt with the second key: exit status 0') or diag($out . $err);
like($out, qr/\Q$v{card3}\E/, 'the second key opens the value sealed after the rotation');
unlike($out, qr/\Q$v{card1}\E/, '... and not those sealed before it');

($rc, $out, $err) = sa('decrypt', '--key', $wrong, '--db', db('app'));
is($rc, 2, 'decrypt with a key no value is sealed to: exit status 2');
like($out . $err, qr/\Q$kid1\E/, 'the refusal names the key ids the values are sealed to');
unlike($out, qr/\Q$v{card1}\E|\Q$v{card3}\E/, 'a wrong key shows no clear value');

my $bundle = "$tmp/app.bundle";
($rc, $out, $err) = sa('export', '--db', db('app'), '--out', $bundle);
is($rc, 0, 'export') or diag($err);
($rc, $out, $err) = sa('decrypt', '--key', $priv1, '--bundle', $bundle);
is($rc, 0, 'decrypt --bundle') or diag($out . $err);
like($out, qr/\Q$v{card1}\E/, 'decrypt --bundle shows the clear value');
{
	my ($pout, $perr) = ('', '');
	IPC::Run::run([ 'python3', $pyverify, 'bundle', $bundle, '--pubkey', $signpub ], '<', \undef, '>', \$pout, '2>', \$perr);
	is($? >> 8, 0, 'the Python checker verifies the bundle with format 2 entries') or diag($pout . $perr);
}

# A sealed value rewritten by a superuser: the chain catches it, and decrypt says so.
query('postgres', q{CREATE DATABASE tampered TEMPLATE app});
query('tampered', q{
DO $$ DECLARE r record; BEGIN
  FOR r IN SELECT evtname FROM pg_event_trigger LOOP
	EXECUTE format('ALTER EVENT TRIGGER %I DISABLE', r.evtname);
  END LOOP;
END $$;
ALTER TABLE sensitive_audit.log_entries DISABLE TRIGGER USER;
UPDATE sensitive_audit.log_entries
   SET new_value = 'x25519-aes256gcm:' || translate(substr(new_value, 18), 'AB', 'BA')
 WHERE new_value LIKE 'x25519-aes256gcm:%' AND seq = (SELECT min(seq) FROM sensitive_audit.log_entries
													WHERE new_value LIKE 'x25519-aes256gcm:%');
});
($rc, $out, $err) = sa('decrypt', '--key', $priv1, '--db', db('tampered'));
is($rc, 1, 'decrypt of a log whose sealed value was rewritten: exit status 1') or diag($out . $err);
is(query('tampered', q{SELECT bool_and(ok) FROM sensitive_audit.verify()}), 'f', 'verify() finds the rewrite too');

# ---------------------------------------------------------------------------
# Dump and restore, before any erasure: keys, kept values, modes carried.
my $dump = "$tmp/app.dump";
$node->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', db('app') ], 'pg_dump -Fc');
query('postgres', q{CREATE DATABASE restored});
$node->command_ok([ 'pg_restore', '-d', db('restored'), $dump ], 'pg_restore');
is(query('restored', q{SELECT bool_and(ok) FROM sensitive_audit.verify()}), 't', 'restored: every chain verifies');
is(query('restored', q{SELECT string_agg(column_name || '=' || protection, ',' ORDER BY column_name)
						  FROM sensitive_audit.tagged_columns}),
	'card=encrypt,diagnosis=erasable,name=plain,nid=erasable,ssn=fingerprint', 'restored: every column keeps its mode');
is(query('restored', q{SELECT count(*) FROM sensitive_audit.erasable_values WHERE salt IS NOT NULL}),
	'6', 'restored: the kept salts and values came along');
my $fp_app = query('app', qq{SELECT sensitive_audit.fingerprint('patients', 'ssn', '$v{ssn1}')});
is(query('restored', qq{SELECT sensitive_audit.fingerprint('patients', 'ssn', '$v{ssn1}')}), $fp_app,
	'restored: the fingerprint key came along (same fingerprint)');
query('restored', qq{INSERT INTO patients VALUES (3, 'Cy', '$v{ssn1}', '$v{card1}', 'x', NULL)});
is(query('restored', q{SELECT new_value FROM sensitive_audit.log WHERE column_name = 'ssn' AND row_key = '{"id": "3"}'}),
	$fp_app, 'restored: a new entry fingerprints the value as the original database did');
($rc, $out, $err) = sa('decrypt', '--key', $priv2, '--db', db('restored'));
is($rc, 0, 'restored: decrypt') or diag($out . $err);
like($out, qr/\Q$v{card1}\E/, 'restored: a value sealed after the restore opens with the key in use');

query('postgres', q{CREATE DATABASE other});
query('other', q{
CREATE EXTENSION sensitive_audit;
CREATE TABLE patients (id int PRIMARY KEY, ssn text);
SELECT sensitive_audit.tag('patients', 'ssn');
SELECT sensitive_audit.protect('patients', 'ssn', 'fingerprint');
});
isnt(query('other', qq{SELECT sensitive_audit.fingerprint('patients', 'ssn', '$v{ssn1}')}), $fp_app,
	'another database fingerprints the same value differently');

# ---------------------------------------------------------------------------
# Erasure of subject 1: the row goes first (a DELETE, whose old values are
# kept as erasable too), then what the log keeps of it.
as_clerk("DELETE FROM patients WHERE id = 1");
my $commit_sql = q{SELECT encode(commitment, 'hex') || ' ' || encode(salt, 'hex') || ' ' || value
					  FROM sensitive_audit.erasable_values WHERE row_key = '{"id": "1"}' AND value = '%s'};
my ($c_nid) = split / /, query('app', sprintf($commit_sql, $v{ssn1}));
{
	# Before: the kept salt matches the commitment, as it must.
	my (undef, $salt) = split / /, query('app', sprintf($commit_sql, $v{ssn1}));
	is(sha256_hex("sensitive_audit erasable\0" . pack('H*', $salt) . $v{ssn1}), $c_nid,
		'before erase: SHA-256(domain, salt, value) is the commitment');
}
my ($eout, $eerr) = ('', '');
$node->psql('app', q{SET ROLE dpo; SELECT sensitive_audit.erase('patients', '{"id": "1"}')},
	stdout => \$eout, stderr => \$eerr);
is($eout, '6', 'erase() as the granted dpo: 6 values (4 diagnosis values, 2 national ids, in 5 entries)')
  or diag($eerr);
is(query('app', q{SELECT effective_role || ' ' || new_value FROM sensitive_audit.log WHERE operation = 'ERASE'}),
	'dpo 6', 'an ERASE entry: who and how many');
is(query('app', q{SELECT bool_and(ok) FROM sensitive_audit.verify()}), 't', 'after erase: verify() in SQL');
($rc, $out, $err) = sa('verify', '--db', db('app'), '--pubkey', $signpub, '--state', "$tmp/state");
is($rc, 0, 'after erase: sensitive-audit verify, held to the checkpoint taken before') or diag($out . $err);
sa('export', '--db', db('app'), '--out', "$tmp/erased.bundle");
{
	my ($pout, $perr) = ('', '');
	IPC::Run::run([ 'python3', $pyverify, 'bundle', "$tmp/erased.bundle", '--pubkey', $signpub ], '<', \undef, '>', \$pout, '2>', \$perr);
	is($? >> 8, 0, 'after erase: the Python checker verifies the exported log') or diag($pout . $perr);
}

# What remains: the database, and a new plain dump of it.
my $after = "$tmp/after.sql";
$node->command_ok([ 'pg_dump', '-f', $after, '-d', db('app') ], 'pg_dump after erase');
my $text = slurp_file($after);
for my $k (qw(diag1 diag1b))
{
	unlike($text, qr/\Q$v{$k}\E/, "after erase: the dump holds no '$v{$k}'");
}
like($text, qr/\Q$v{diag2}\E/, 'the other subject\'s kept value is still in the dump');
like($text, qr/\Q$c_nid\E/, 'the commitment to the erased national id is still in the dump');
is(query('app', q{SELECT count(*) FROM sensitive_audit.log WHERE 'diagnosis-of-subject-one' IN (old_value, new_value)
					  OR 'second-diagnosis-of-subject-one' IN (old_value, new_value)}), '0',
	'after erase: the log shows the erased values nowhere');
is(query('app', q{SELECT count(*) FROM sensitive_audit.log WHERE row_key = '{"id": "1"}' AND protection = 'erased'}),
	'5', 'the five erasable entries of subject 1 read as erased');

# A dictionary attack on the 9-digit national id: the true value itself,
# tried with every salt that remains anywhere in the dump and with none,
# does not give the commitment (so no dictionary of 10^9 values can).
{
	my @salts = ($text =~ /\\\\x([0-9a-f]{64})/g);
	my %seen;
	@salts = grep { !$seen{$_}++ } @salts;
	ok(@salts >= 2, 'the dump still holds other subjects\' salts (' . scalar(@salts) . ' 32-byte hex strings)');
	my $matches = grep { sha256_hex("sensitive_audit erasable\0" . pack('H*', $_) . $v{ssn1}) eq $c_nid } @salts;
	is($matches, 0, 'no remaining salt with the true value matches the erased commitment');
	isnt(sha256_hex($v{ssn1}), $c_nid, 'nor does the unsalted hash of the true value');
	isnt(sha256_hex("sensitive_audit erasable\0" . $v{ssn1}), $c_nid, 'nor the hash with an empty salt');
}

# Erasing again, or an unknown subject.
($eout, $eerr) = ('', '');
$node->psql('app', q{SET ROLE dpo; SELECT sensitive_audit.erase('patients', '{"id": "1"}')},
	stdout => \$eout, stderr => \$eerr);
is($eout, '0', 'erasing the same subject again: 0');
like($eerr, qr/already erased/, '... with a notice that says so');
($eout, $eerr) = ('', '');
$node->psql('app', q{SET ROLE dpo; SELECT sensitive_audit.erase('patients', '{"id": "42"}')},
	stdout => \$eout, stderr => \$eerr);
like($eerr, qr/no erasable values under row key/, 'an unknown row key is refused');
($eout, $eerr) = ('', '');
$node->psql('app', q{SET ROLE clerk; SELECT sensitive_audit.erase('patients', '{"id": "2"}')},
	stdout => \$eout, stderr => \$eerr);
like($eerr, qr/permission denied/, 'a role without the grant cannot erase');

# The erasure survives a dump and restore.
my $dump2 = "$tmp/app2.dump";
$node->command_ok([ 'pg_dump', '-Fc', '-f', $dump2, '-d', db('app') ], 'pg_dump -Fc after erase');
query('postgres', q{CREATE DATABASE restored2});
$node->command_ok([ 'pg_restore', '-d', db('restored2'), $dump2 ], 'pg_restore after erase');
is(query('restored2', q{SELECT bool_and(ok) FROM sensitive_audit.verify()}), 't', 'restored after erase: verifies');
is(query('restored2', q{SELECT count(*) FILTER (WHERE salt IS NULL) || ' ' || count(*) FILTER (WHERE salt IS NOT NULL)
						   FROM sensitive_audit.erasable_values}),
	'6 2', 'restored after erase: 6 erased, 2 kept');

done_testing();
