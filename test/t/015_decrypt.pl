# 015_decrypt.pl — sensitive-audit decrypt --bundle on bundles of format 2
# entries made by test/pyverify/protect_vectors.py (an implementation of
# FORMAT.md section 11 that shares no code with the program), with keys made
# by openssl genpkey: the clear values to the right key, the key ids to a
# wrong one, tampering caught; and verify --bundle and the Python checker
# agreeing that format 2 entries verify.  No database is needed.
use strict;
use warnings;

use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Utils;
use Test::More;

my $tmp = PostgreSQL::Test::Utils::tempdir;
my $pydir = "$ENV{TESTDIR}/test/pyverify";

sub run_cmd
{
	my @cmd = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([@cmd], '<', \undef, '>', \$out, '2>', \$err);
	return ($? >> 8, $out, $err);
}

sub sa { return run_cmd('sensitive-audit', @_); }

sub ok_run
{
	my ($name, @cmd) = @_;
	my ($rc, $out, $err) = run_cmd(@cmd);
	is($rc, 0, $name) or diag("$out$err");
}

# Keys: the recipient's, another one, and an Ed25519 key for verify --pubkey.
ok_run('recipient key', 'openssl', 'genpkey', '-algorithm', 'X25519', '-out', "$tmp/key.pem");
ok_run('its public key', 'openssl', 'pkey', '-in', "$tmp/key.pem", '-pubout', '-out', "$tmp/key.pub");
ok_run('another key', 'openssl', 'genpkey', '-algorithm', 'X25519', '-out', "$tmp/other.pem");
my ($rc, $out, $err) = sa('keygen', '--name', 'sensitive_audit/test', '--private', "$tmp/sig",
	'--public', "$tmp/sig.pub");
is($rc, 0, 'signing key for verify');

for my $kind ('', 'tamper-value', 'tamper-entry', 'plain-value')
{
	my $file = "$tmp/log" . ($kind ? "-$kind" : '') . '.bundle';
	ok_run("bundle $kind", 'python3', "$pydir/protect_vectors.py", 'bundle', $file, "$tmp/key.pub",
		($kind ? ("--$kind") : ()));
}

# The right key: every value in clear, exit 0.
($rc, $out, $err) = sa('decrypt', '--key', "$tmp/key.pem", '--bundle', "$tmp/log.bundle");
is($rc, 0, 'decrypt: exit 0') or diag("$out$err");
my @lines = split /\n/, $out;
is(scalar @lines, 4, 'one line per entry');
like($lines[0], qr/^chain 0 seq 1  \S+Z  UPDATE public\.patients\.ssn  row \{"id": "1"\}  old: NULL  new: "123-45-6789"$/,
	'text line: entry and clear value');
like($lines[1], qr/old: "123-45-6789"  new: "987-65-4321"$/, 'old and new values in clear');
like($lines[2], qr/old: "hmac-sha256:[0-9a-f]{64}"  new: "sha256-salted:[0-9a-f]{64}"$/,
	'fingerprints and commitments as stored');
like($err, qr/read 4 entries in 1 chains, every hash and link verified; decrypted 4 values sealed to key [0-9a-f]{16}/,
	'summary on stderr');

($rc, $out, $err) = sa('decrypt', '--key', "$tmp/key.pem", '--bundle', "$tmp/log.bundle", '--json');
is($rc, 0, 'decrypt --json: exit 0');
my @json = map { JSON::PP->new->utf8->decode($_) } split /\n/, $out;
is(scalar @json, 4, 'one JSON object per entry');
is($json[1]{old_clear}, '123-45-6789', 'old_clear');
is($json[1]{new_clear}, '987-65-4321', 'new_clear');
like($json[1]{new_value}, qr/^x25519-aes256gcm:/, 'new_value as stored');
is($json[1]{verified}, 'true', 'verified');
is($json[3]{old_clear}, "Gr\x{fc}\x{df}e", 'non-ASCII clear text');
ok(!defined $json[2]{old_clear}, 'no clear text for a fingerprint');

# A wrong key: exit 2, the key ids named, no clear value shown.
($rc, $out, $err) = sa('decrypt', '--key', "$tmp/other.pem", '--bundle', "$tmp/log.bundle");
is($rc, 2, 'wrong key: exit 2');
like($err, qr/no value is sealed to the key given \(key id [0-9a-f]{16}\); the log's 4 sealed values are sealed to key id [0-9a-f]{16} \(4\)/,
	'wrong key: names the key ids');
unlike($out, qr/123-45-6789/, 'wrong key: no clear value');
unlike($err, qr/BEGIN|PRIVATE/, 'no key material in messages');

# A public key, or no such file, is not a private key: exit 2.
($rc, $out, $err) = sa('decrypt', '--key', "$tmp/key.pub", '--bundle', "$tmp/log.bundle");
is($rc, 2, 'public key given: exit 2');
like($err, qr/not an unencrypted X25519 private key/, 'public key given: says so');
($rc, $out, $err) = sa('decrypt', '--key', "$tmp/none.pem", '--bundle', "$tmp/log.bundle");
is($rc, 2, 'missing key file: exit 2');
($rc, $out, $err) = sa('decrypt', '--key', "$tmp/key.pem");
is($rc, 2, 'neither --db nor --bundle: exit 2');

# A sealed value that does not authenticate: exit 1, said where.
($rc, $out, $err) = sa('decrypt', '--key', "$tmp/key.pem", '--bundle', "$tmp/log-tamper-value.bundle");
is($rc, 1, 'altered sealed value: exit 1');
like($out, qr/seq 2 .*new: \[NOT AUTHENTIC/, 'altered sealed value: marked');
like($err, qr/FAILED: 1 values sealed to key [0-9a-f]{16} do not authenticate \(altered\), the first at chain 0 seq 2 new_value/,
	'altered sealed value: reported');

# A stored value changed after hashing: exit 1, nothing decrypted from there on.
($rc, $out, $err) = sa('decrypt', '--key', "$tmp/key.pem", '--bundle', "$tmp/log-tamper-entry.bundle");
is($rc, 1, 'changed entry: exit 1');
like($out, qr/^UNVERIFIED chain 0 seq 2 /m, 'changed entry: marked UNVERIFIED');
# (As quoted clear text: the stored base64 may hold any letters.)
unlike($out, qr/"(?:987-65-4321|tampered|Gr\xc3\xbc)/, 'changed entry: nothing after it decrypted');
like($err, qr/FAILED: chain 0: first bad entry seq 2: content changed/, 'changed entry: reported');

# verify --bundle and the Python checker: format 2 verifies, a clear value in it does not.
($rc, $out, $err) = sa('verify', '--bundle', "$tmp/log.bundle", '--pubkey', "$tmp/sig.pub");
is($rc, 0, 'verify --bundle accepts format 2') or diag("$out$err");
($rc, $out, $err) = run_cmd('python3', "$pydir/verify.py", 'bundle', "$tmp/log.bundle", '--pubkey', "$tmp/sig.pub");
is($rc, 0, 'verify.py accepts format 2') or diag("$out$err");
($rc, $out, $err) = sa('verify', '--bundle', "$tmp/log-plain-value.bundle", '--pubkey', "$tmp/sig.pub");
is($rc, 1, 'verify --bundle: a clear value in a format 2 entry fails');
like($out, qr/seq 4: malformed protected value: the new_value of a format 2 entry/, 'and says why');
($rc, $out, $err) = run_cmd('python3', "$pydir/verify.py", 'bundle', "$tmp/log-plain-value.bundle", '--pubkey', "$tmp/sig.pub");
is($rc, 1, 'verify.py agrees');
($rc, $out, $err) = sa('verify', '--bundle', "$tmp/log-tamper-entry.bundle", '--pubkey', "$tmp/sig.pub");
is($rc, 1, 'verify --bundle: the changed entry fails');

# The vectors of FORMAT.md 11.6 are what the reference generator computes.
($rc, $out, $err) = run_cmd('python3', "$pydir/protect_vectors.py");
is($rc, 0, 'vector generator runs');
like($out, qr/^sealed value      x25519-aes256gcm:Z8ov\/W\/p76tnXdV07XeJMQs9LnaB83kLRmx3OxUh\/s82V3lYNx6lL6ChoqOkpaanqKmqq9WOIdAyGx48YD2nEgduOvqTbETvZ6ziMC2FNQ==$/m,
	'sealed vector');
like($out, qr/^entry 2 hash      cb08175be92f8f5b232ea4072a30c91909c241b3f09d0c49bc0d2a7f769f94ed$/m,
	'format 2 entry vector');

done_testing();
