/*
 * checkpoint_test.cpp — checkpoint bodies, signed notes, Ed25519 and the
 * sensitive_audit checkpoint (src/core/checkpoint.hpp).
 *
 * The external vectors, so that this code is checked against other
 * implementations and not only against itself:
 *  - Ed25519: RFC 8032 section 7.1, TEST 1 (secret key 9d61b1..., empty
 *    message).
 *  - Signed notes: golang.org/x/mod/sumdb/note, note_test.go (the
 *    PeterNeumann and EnochRoot keys, the note Go's Sign writes, and the
 *    malformed notes Go's Open refuses); the reference implementation of
 *    c2sp.org/signed-note.
 *  - Checkpoint body: the example of c2sp.org/tlog-checkpoint.
 *  - The product's own vectors (docs/FORMAT.md, section 9): the chain
 *    record, the body of a two-chain log and its signature were computed
 *    with an independent Python implementation (hashlib and the
 *    python3-cryptography Ed25519 signer), not with this code.
 */
#include "core/cpp_only.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "core/checkpoint.hpp"
#include "test_support.hpp"
#include "vectors.hpp"

using namespace sensitive_audit;
using sa_test::digest_from_hex;
using sa_test::from_hex;
using sa_test::to_hex;

namespace
{

/* ---- External vectors --------------------------------------------------- */

/* RFC 8032 section 7.1, TEST 1. */
const char kRfc8032Secret[] = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const char kRfc8032Public[] = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
const char kRfc8032Signature[] =
	"e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";

/* golang.org/x/mod/sumdb/note, note_test.go. */
const char kPeterVkey[] = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const char kPeterSkey[] =
	"PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const char kEnochVkey[] = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
const std::string kGoText =
	"If you think cryptography is the answer to your problem,\n"
	"then you don't know what your problem is.\n";
const std::string kPeterSig =
	"\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
const std::string kEnochSig =
	"\u2014 EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

/* c2sp.org/tlog-checkpoint, the example's note text. */
const char kC2spBody[] =
	"example.com/behind-the-sofa\n"
	"20852163\n"
	"CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";

/* ---- The product's vectors (docs/FORMAT.md, section 9) ----------------- */

const char kLogId[] = "3f0c8a52-7b1e-4d6a-9c2f-81e4b7d05a63";
const char kKeyName[] = "sensitive_audit/3f0c8a52-7b1e-4d6a-9c2f-81e4b7d05a63";
const char kChain3Root[] = "8e00eb0267b2e98719dfad9f996a87b5ee839aa9cd449f07c64ad37352ea50eb";
const char kChain3Record[] =
	"73656e7369746976655f617564697420636861696e00"	/* "sensitive_audit chain" NUL */
	"00000003"	/* chain */
	"0000000000000003"	/* size */
	"8e00eb0267b2e98719dfad9f996a87b5ee839aa9cd449f07c64ad37352ea50eb";	/* root */
const char kChain0Record[] =
	"73656e7369746976655f617564697420636861696e00"
	"00000000"
	"00000000000003e8"
	"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const char kTwoChainBody[] =
	"sensitive_audit/3f0c8a52-7b1e-4d6a-9c2f-81e4b7d05a63\n"
	"1003\n"
	"hzCHpapt9AR2nlVER0U+6WGnowXlrjDF4tTOcow/z3s=\n"
	"chain 0 1000 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"
	"chain 3 3 jgDrAmey6YcZ362fmWqHte6DmqnNRJ8HxkrTc1LqUOs=\n";
const char kTwoChainSignature[] =
	"\u2014 sensitive_audit/3f0c8a52-7b1e-4d6a-9c2f-81e4b7d05a63 "
	"545xnQnRtzcbrbF9/DxkgiavT8Mgm95JXsWze25d+gvLTkLsdhjx5tspdPYXuTZNh1t1Qr3TRC5BLwxQMDtlM9yv2wM=\n";
const char kTestVkey[] =
	"sensitive_audit/3f0c8a52-7b1e-4d6a-9c2f-81e4b7d05a63+e78e719d+AddamAGCsQq31Uv+08lkBzoO4XLz2qYjJa8CGmj3B1Ea";
const char kEmptyLogBody[] =
	"sensitive_audit/3f0c8a52-7b1e-4d6a-9c2f-81e4b7d05a63\n"
	"0\n"
	"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n";

/* ---- Helpers ------------------------------------------------------------ */

std::array<uint8_t, kEd25519KeyLen>
key_from_hex(const char *hex)
{
	const std::vector<uint8_t> v = from_hex(hex);
	std::array<uint8_t, kEd25519KeyLen> k{};

	if (v.size() != k.size())
		throw std::invalid_argument("key must be 32 bytes");
	std::memcpy(k.data(), v.data(), k.size());
	return k;
}

VerifierKey
vkey(const char *text)
{
	VerifierKey k;

	if (parse_verifier_key(text, k) != SA_OK)
		throw std::runtime_error(std::string("bad verifier key ") + text);
	return k;
}

/* The two chains of the product vector: chain 0 (arbitrary root) and chain 3. */
std::vector<ChainHead>
two_chains()
{
	ChainHead	c0;
	ChainHead	c3;

	c0.chain = 0;
	c0.size = 1000;
	for (size_t i = 0; i < c0.root.size(); i++)
		c0.root[i] = static_cast<uint8_t>(i);
	c3.chain = 3;
	c3.size = 3;
	c3.root = digest_from_hex(kChain3Root);
	return {c0, c3};
}

std::string
replace_all(std::string s, const std::string &from, const std::string &to)
{
	for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size()))
		s.replace(p, from.size(), to);
	return s;
}

/* ---- Base64 --------------------------------------------------------------- */

TEST(Base64, Rfc4648Vectors)
{
	/* RFC 4648 section 10 */
	const std::pair<const char *, const char *> vectors[] = {
		{"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"},
		{"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
	};

	for (const auto &[plain, encoded] : vectors)
	{
		std::string e;
		std::vector<uint8_t> d;

		ASSERT_EQ(base64_encode(plain, std::strlen(plain), e), SA_OK);
		EXPECT_EQ(e, encoded);
		ASSERT_EQ(base64_decode(encoded, d), SA_OK);
		EXPECT_EQ(std::string(d.begin(), d.end()), plain);
	}
}

TEST(Base64, EveryByteRoundTrips)
{
	std::vector<uint8_t> all(256);

	for (size_t i = 0; i < all.size(); i++)
		all[i] = static_cast<uint8_t>(i);
	for (size_t n = 0; n <= all.size(); n += 17)
	{
		std::string e;
		std::vector<uint8_t> d;

		ASSERT_EQ(base64_encode(all.data(), n, e), SA_OK);
		ASSERT_EQ(base64_decode(e, d), SA_OK);
		EXPECT_EQ(d, std::vector<uint8_t>(all.begin(), all.begin() + static_cast<long>(n)));
	}
}

TEST(Base64, OnlyTheCanonicalFormIsAccepted)
{
	std::vector<uint8_t> d;

	for (const char *bad : {"Zg", "Zg=", "Zg===", "Z===", "====", "Zh==", "Zm9=", "Zg==Zg==",
							"Zm9v\n", "Zm 9v", "Zm9-", "Zm9_", "Zm9v=", "=Zm9"})
		EXPECT_EQ(base64_decode(bad, d), SA_ERR_SYNTAX) << bad;
}

/* ---- C2SP tlog-checkpoint ------------------------------------------------ */

TEST(CheckpointBody, ParsesTheC2spExample)
{
	Checkpoint	cp;
	std::string again;

	ASSERT_EQ(parse_checkpoint(kC2spBody, cp), SA_OK);
	EXPECT_EQ(cp.origin, "example.com/behind-the-sofa");
	EXPECT_EQ(cp.size, 20852163u);
	EXPECT_EQ(to_hex(cp.root), "0ac5186a91863e8e1d90c808014aa89bf5da8e3ee1d9f07630f0378f68f1ab62");
	EXPECT_TRUE(cp.extensions.empty());
	ASSERT_EQ(encode_checkpoint(cp, again), SA_OK);
	EXPECT_EQ(again, kC2spBody);
}

TEST(CheckpointBody, RoundTripWithExtensions)
{
	Checkpoint	cp;
	Checkpoint	back;
	std::string text;

	cp.origin = "example.org/log";
	cp.size = 18446744073709551615u;
	cp.root = digest_from_hex(kChain3Root);
	cp.extensions = {"first extension", "zweite Erweiterung: Grüße"};
	ASSERT_EQ(encode_checkpoint(cp, text), SA_OK);
	EXPECT_EQ(text, "example.org/log\n18446744073709551615\njgDrAmey6YcZ362fmWqHte6DmqnNRJ8HxkrTc1LqUOs=\n"
			  "first extension\nzweite Erweiterung: Grüße\n");
	ASSERT_EQ(parse_checkpoint(text, back), SA_OK);
	EXPECT_EQ(back.origin, cp.origin);
	EXPECT_EQ(back.size, cp.size);
	EXPECT_EQ(back.root, cp.root);
	EXPECT_EQ(back.extensions, cp.extensions);

	cp.size = 0;
	cp.extensions.clear();
	ASSERT_EQ(encode_checkpoint(cp, text), SA_OK);
	ASSERT_EQ(parse_checkpoint(text, back), SA_OK);
	EXPECT_EQ(back.size, 0u);
}

TEST(CheckpointBody, Rejections)
{
	const std::string root = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=";
	const std::string good = "o\n5\n" + root + "\n";
	const std::vector<std::pair<std::string, const char *>> bad = {
		{"o\n5\n" + root, "missing final newline"},
		{"o\n5\n" + root + "\next", "extension without newline"},
		{"o\n5\n", "two lines"},
		{"", "empty"},
		{"\n5\n" + root + "\n", "empty origin"},
		{"o\n\n" + root + "\n", "empty size"},
		{"o\n5\n" + root + "\n\n", "empty extension line"},
		{"o\n5\n" + root + "\na\n\nb\n", "blank line among extensions"},
		{"o\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I\n", "root without padding"},
		{"o\n5\nCsUYapGGPo4dkMgIAUqom_Xajj7h2fB2MPA3j2jxq2I=\n", "root in URL alphabet"},
		{"o\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=\n", "root with spare bits set"},
		{"o\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jx\n", "root of 30 bytes"},
		{"o\n5\n" + root.substr(0, 40) + "AAAAAAAA\n", "root of 35 bytes"},
		{"o\n5a\n" + root + "\n", "non-decimal size"},
		{"o\n0x5\n" + root + "\n", "hexadecimal size"},
		{"o\n-5\n" + root + "\n", "negative size"},
		{"o\n+5\n" + root + "\n", "signed size"},
		{"o\n 5\n" + root + "\n", "space before size"},
		{"o\n5 \n" + root + "\n", "space after size"},
		{"o\n05\n" + root + "\n", "leading zero"},
		{"o\n00\n" + root + "\n", "two zeros"},
		{"o\n18446744073709551616\n" + root + "\n", "size above 2^64 - 1"},
		{"o\r\n5\r\n" + root + "\r\n", "CRLF line ends"},
		{"o\t1\n5\n" + root + "\n", "control character"},
		{"o\xff\n5\n" + root + "\n", "invalid UTF-8"},
		{"o\xc0\xaf\n5\n" + root + "\n", "overlong UTF-8"},
		{"o\xed\xa0\x80\n5\n" + root + "\n", "UTF-8 surrogate"},
		{std::string("o\0\n5\n", 5) + root + "\n", "zero byte"},
	};
	Checkpoint	cp;

	ASSERT_EQ(parse_checkpoint(good, cp), SA_OK);
	for (const auto &[text, why] : bad)
		EXPECT_EQ(parse_checkpoint(text, cp), SA_ERR_SYNTAX) << why;
}

TEST(CheckpointBody, TooManyLines)
{
	std::string text = std::string(kC2spBody);
	Checkpoint	cp;

	for (size_t i = 0; i < kMaxCheckpointExtensions; i++)
		text += "x\n";
	ASSERT_EQ(parse_checkpoint(text, cp), SA_OK);
	EXPECT_EQ(cp.extensions.size(), kMaxCheckpointExtensions);
	text += "x\n";
	EXPECT_EQ(parse_checkpoint(text, cp), SA_ERR_SYNTAX);

	std::string out;

	cp.extensions.push_back("x");
	EXPECT_EQ(encode_checkpoint(cp, out), SA_ERR_SYNTAX);
	EXPECT_EQ(parse_checkpoint(std::string(kMaxNoteSize, 'a') + "\n1\n", cp), SA_ERR_SYNTAX);
}

TEST(CheckpointBody, EncodeRefusesWhatCouldNotBeReadBack)
{
	Checkpoint	cp;
	std::string out;

	cp.root = digest_from_hex(kChain3Root);
	for (const char *origin : {"", "two\nlines", "tab\there", "bad\xff"})
	{
		cp.origin = origin;
		EXPECT_EQ(encode_checkpoint(cp, out), SA_ERR_SYNTAX) << origin;
	}
	cp.origin = "fine";
	for (const char *ext : {"", "a\nb", "cr\r"})
	{
		cp.extensions = {ext};
		EXPECT_EQ(encode_checkpoint(cp, out), SA_ERR_SYNTAX) << ext;
	}
}

/* ---- Ed25519 ------------------------------------------------------------ */

TEST(Ed25519, Rfc8032Test1)
{
	const auto	secret = key_from_hex(kRfc8032Secret);
	uint8_t		pub[kEd25519KeyLen];
	uint8_t		sig[kEd25519SignatureLen];

	ASSERT_EQ(ed25519_public_key(secret.data(), pub), SA_OK);
	EXPECT_EQ(to_hex(pub, sizeof(pub)), kRfc8032Public);
	ASSERT_EQ(ed25519_sign(secret.data(), "", 0, sig), SA_OK);
	EXPECT_EQ(to_hex(sig, sizeof(sig)), kRfc8032Signature);
	EXPECT_EQ(ed25519_verify(pub, "", 0, sig, sizeof(sig)), SA_OK);
	EXPECT_EQ(ed25519_verify(pub, "x", 1, sig, sizeof(sig)), SA_ERR_VERIFY);
	EXPECT_EQ(ed25519_verify(pub, "", 0, sig, sizeof(sig) - 1), SA_ERR_VERIFY);
	sig[10] ^= 1;
	EXPECT_EQ(ed25519_verify(pub, "", 0, sig, sizeof(sig)), SA_ERR_VERIFY);
	sig[10] ^= 1;
	pub[0] ^= 1;
	EXPECT_EQ(ed25519_verify(pub, "", 0, sig, sizeof(sig)), SA_ERR_VERIFY);
}

/* ---- Keys --------------------------------------------------------------- */

TEST(NoteKeys, GoVerifierKeyAndItsManglings)
{
	VerifierKey k;
	std::string again;

	ASSERT_EQ(parse_verifier_key(kPeterVkey, k), SA_OK);
	EXPECT_EQ(k.name, "PeterNeumann");
	EXPECT_EQ(k.key_id, 0xc74f20a3u);
	ASSERT_EQ(encode_verifier_key(k, again), SA_OK);
	EXPECT_EQ(again, kPeterVkey);

	/* note_test.go TestNewVerifier: every substring and every byte + 1 fails. */
	std::string b = kPeterVkey;

	for (size_t i = 0; i <= b.size(); i++)
	{
		for (size_t j = i + 1; j <= b.size(); j++)
		{
			if (i != 0 || j != b.size())
			{
				EXPECT_NE(parse_verifier_key(b.substr(i, j - i), k), SA_OK) << b.substr(i, j - i);
			}
		}
	}
	for (size_t i = 0; i < b.size(); i++)
	{
		b[i]++;
		EXPECT_NE(parse_verifier_key(b, k), SA_OK) << b;
		b[i]--;
	}
	/* wrong key length and unknown algorithm, each with a matching key hash */
	EXPECT_NE(parse_verifier_key("PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==", k), SA_OK);
	EXPECT_NE(parse_verifier_key("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", k), SA_OK);
	/* upper-case key ID */
	EXPECT_NE(parse_verifier_key("PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", k), SA_OK);
}

TEST(NoteKeys, GoSignerKeyAndItsManglings)
{
	SignerKey	k;
	std::string again;
	VerifierKey v;
	uint8_t		pub[kEd25519KeyLen];

	ASSERT_EQ(parse_signer_key(kPeterSkey, k), SA_OK);
	EXPECT_EQ(k.name, "PeterNeumann");
	EXPECT_EQ(k.key_id, 0xc74f20a3u);
	ASSERT_EQ(encode_signer_key(k, again), SA_OK);
	EXPECT_EQ(again, kPeterSkey);

	/* the signer key's public half is the verifier key */
	ASSERT_EQ(ed25519_public_key(k.private_key.data(), pub), SA_OK);
	ASSERT_EQ(make_verifier_key(k.name, pub, v), SA_OK);
	ASSERT_EQ(encode_verifier_key(v, again), SA_OK);
	EXPECT_EQ(again, kPeterVkey);

	/* note_test.go TestNewSigner */
	std::string b = kPeterSkey;

	for (size_t i = 0; i <= b.size(); i++)
	{
		for (size_t j = i + 1; j <= b.size(); j++)
		{
			if (i != 0 || j != b.size())
			{
				EXPECT_NE(parse_signer_key(b.substr(i, j - i), k), SA_OK) << b.substr(i, j - i);
			}
		}
	}
	for (size_t i = 0; i < b.size(); i++)
	{
		b[i]++;
		EXPECT_NE(parse_signer_key(b, k), SA_OK) << b;
		b[i]--;
	}
	/* a verifier key is no signer key */
	EXPECT_EQ(parse_signer_key(kPeterVkey, k), SA_ERR_SYNTAX);
}

TEST(NoteKeys, KeyIdAndNames)
{
	const VerifierKey peter = vkey(kPeterVkey);
	uint32_t	id = 0;

	ASSERT_EQ(ed25519_key_id("PeterNeumann", peter.public_key.data(), id), SA_OK);
	EXPECT_EQ(id, 0xc74f20a3u);
	ASSERT_EQ(ed25519_key_id("PeterNeumanN", peter.public_key.data(), id), SA_OK);
	EXPECT_NE(id, 0xc74f20a3u);

	EXPECT_TRUE(valid_key_name("example.com/log42"));
	EXPECT_TRUE(valid_key_name("quasimodo.example/salvatore"));
	EXPECT_TRUE(valid_key_name("Grüße"));
	for (const char *bad : {"", "a b", "a+b", "tab\t", "nbsp\u00a0", "ideographic\u3000",
							"en\u2002space", "bad\xff"})
		EXPECT_FALSE(valid_key_name(bad)) << bad;

	VerifierKey k;

	EXPECT_EQ(make_verifier_key("a b", peter.public_key.data(), k), SA_ERR_SYNTAX);
}

/* ---- Signed notes ------------------------------------------------------- */

TEST(SignedNotes, GoSignatureIsReproducedByteForByte)
{
	SignerKey	k;
	std::string note;

	ASSERT_EQ(parse_signer_key(kPeterSkey, k), SA_OK);
	ASSERT_EQ(sign_note(kGoText, k.name, k.private_key.data(), note), SA_OK);
	EXPECT_EQ(note, kGoText + "\n" + kPeterSig);
}

TEST(SignedNotes, GoOpenCases)
{
	const VerifierKey peter = vkey(kPeterVkey);
	const VerifierKey enoch = vkey(kEnochVkey);
	const std::string both = kGoText + "\n" + kPeterSig + kEnochSig;
	std::string text;
	size_t		n = 0;

	/* one key known, one signature ignored */
	ASSERT_EQ(verify_note(both, &peter, 1, &text, &n), SA_OK);
	EXPECT_EQ(text, kGoText);
	EXPECT_EQ(n, 1u);

	/* both known */
	const VerifierKey keys[] = {peter, enoch};

	ASSERT_EQ(verify_note(both, keys, 2, nullptr, &n), SA_OK);
	EXPECT_EQ(n, 2u);

	/* none known */
	EXPECT_EQ(verify_note(both, nullptr, 0, &text, &n), SA_ERR_NO_KEY);

	/* the same key twice in the list is no ambiguity */
	const VerifierKey twice[] = {peter, peter};

	EXPECT_EQ(verify_note(both, twice, 2, nullptr, &n), SA_OK);

	/* parsed signatures */
	SignedNote	parsed;

	ASSERT_EQ(parse_note(both, parsed), SA_OK);
	EXPECT_EQ(parsed.text, kGoText);
	ASSERT_EQ(parsed.signatures.size(), 2u);
	EXPECT_EQ(parsed.signatures[0].name, "PeterNeumann");
	EXPECT_EQ(parsed.signatures[0].key_id, 0xc74f20a3u);
	EXPECT_EQ(parsed.signatures[0].signature.size(), kEd25519SignatureLen);
	EXPECT_EQ(parsed.signatures[1].name, "EnochRoot");
	EXPECT_EQ(parsed.signatures[1].key_id, 0xaf0cfe78u);

	std::string again;

	ASSERT_EQ(encode_note(parsed, again), SA_OK);
	EXPECT_EQ(again, both);

	/* too many signatures (Go's limit, 100) */
	std::string many = kGoText + "\n";

	for (size_t i = 0; i < kMaxNoteSignatures; i++)
		many += kPeterSig;
	EXPECT_EQ(verify_note(many, &peter, 1, nullptr, &n), SA_OK);
	EXPECT_EQ(n, kMaxNoteSignatures);
	EXPECT_EQ(verify_note(many + kPeterSig, &peter, 1, nullptr, nullptr), SA_ERR_SYNTAX);

	/* a known key's signature that does not verify rejects the note */
	const std::string mangled = kGoText + "\n" + kPeterSig.substr(0, 60) + "ABCD" +
		kPeterSig.substr(60);

	EXPECT_EQ(verify_note(mangled, &peter, 1, nullptr, nullptr), SA_ERR_VERIFY);
	EXPECT_EQ(verify_note(kGoText + "\n" + kEnochSig + kPeterSig.substr(0, 60) + "ABCD" +
						  kPeterSig.substr(60), keys, 2, nullptr, nullptr),
			  SA_ERR_VERIFY);
}

TEST(SignedNotes, GoMalformedNotes)
{
	/* note_test.go TestOpen, badMsgs */
	const VerifierKey peter = vkey(kPeterVkey);
	const std::vector<std::string> bad = {
		kGoText,
		kGoText + "\n",
		kGoText + "\n" + kPeterSig.substr(0, kPeterSig.size() - 1),
		"\x01" + kGoText + "\n" + kPeterSig,
		"\xff" + kGoText + "\n" + kPeterSig,
		kGoText + "\n" + "\u2014 Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=",
		kGoText + "\n" + kPeterSig + "Unexpected line.\n",
		/* and some of this implementation's own */
		kGoText + "\n" + "- PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n",
		kGoText + "\n" + "\u2014 PeterNeumann  x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n",
		kGoText + "\n" + "\u2014 PeterNeumann x08g\n",	/* key ID only */
		kGoText + "\n" + "\u2014 Peter+Neumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n",
		kGoText + "\n" + kPeterSig + "\n",
		replace_all(kGoText + "\n" + kPeterSig, "\n", "\r\n"),
	};
	SignedNote	parsed;

	for (const std::string &msg : bad)
	{
		EXPECT_EQ(verify_note(msg, &peter, 1, nullptr, nullptr), SA_ERR_SYNTAX) << msg;
		EXPECT_EQ(parse_note(msg, parsed), SA_ERR_SYNTAX) << msg;
	}
}

TEST(SignedNotes, SignAndVerify)
{
	const auto	secret = key_from_hex(kRfc8032Secret);
	const VerifierKey key = vkey(kTestVkey);
	const std::string text = "some text\n\nwith an empty line\n";
	std::string note;
	std::string opened;
	size_t		n = 0;

	ASSERT_EQ(sign_note(text, kKeyName, secret.data(), note), SA_OK);
	ASSERT_EQ(verify_note(note, &key, 1, &opened, &n), SA_OK);
	EXPECT_EQ(opened, text);
	EXPECT_EQ(n, 1u);

	/* modified text */
	std::string changed = note;

	changed[0] = 'S';
	EXPECT_EQ(verify_note(changed, &key, 1, nullptr, nullptr), SA_ERR_VERIFY);

	/* wrong key: a different key of the same name has a different key ID */
	const VerifierKey peter = vkey(kPeterVkey);
	VerifierKey other;

	ASSERT_EQ(make_verifier_key(kKeyName, peter.public_key.data(), other), SA_OK);
	EXPECT_NE(other.key_id, key.key_id);
	EXPECT_EQ(verify_note(note, &other, 1, nullptr, nullptr), SA_ERR_NO_KEY);

	/* a key claiming the signer's name and ID but holding another key */
	VerifierKey impostor = key;

	impostor.public_key = peter.public_key;
	EXPECT_EQ(verify_note(note, &impostor, 1, nullptr, nullptr), SA_ERR_VERIFY);

	/* an unknown key name, even with the right ID and key */
	VerifierKey renamed = key;

	renamed.name = "someone-else";
	EXPECT_EQ(verify_note(note, &renamed, 1, nullptr, nullptr), SA_ERR_NO_KEY);

	/* two different keys under one name and ID cannot both be trusted */
	const VerifierKey ambiguous[] = {key, impostor};

	EXPECT_EQ(verify_note(note, ambiguous, 2, nullptr, nullptr), SA_ERR_INTERNAL);
}

TEST(SignedNotes, SignRefusesInvalidTextAndNames)
{
	const auto	secret = key_from_hex(kRfc8032Secret);
	std::string note;

	for (const char *text : {"", "no newline", "tab\there\n", "cr\r\n", "bad\xff\n"})
		EXPECT_EQ(sign_note(text, "name", secret.data(), note), SA_ERR_SYNTAX) << text;
	for (const char *name : {"", "a b", "a+b"})
		EXPECT_EQ(sign_note("text\n", name, secret.data(), note), SA_ERR_SYNTAX) << name;
	EXPECT_EQ(sign_note("text\n", "name", nullptr, note), SA_ERR_INTERNAL);
}

/* ---- The sensitive_audit checkpoint ------------------------------------ */

TEST(LogCheckpoint, ChainRootOfThePublishedEntries)
{
	/* Chain 3 of docs/FORMAT.md section 7: its three entries' Merkle root. */
	sa_test::Hasher h;
	std::unique_ptr<MerkleBuilder> b = MerkleBuilder::create();
	Digest		root;

	ASSERT_TRUE(b);

	const Digest e1 = h.hash(sa_test::vector1());
	const Digest e2 = h.hash(sa_test::vector2(e1));
	const Digest e3 = h.hash(sa_test::vector3(e2));

	const char *const leaf_hex[] = {
		"55cbd1d799bc567333014816bb630227e28b1699abb2b3a07bb1119358e72dbb",
		"e5705be785991411ccc741abb553e8d3832966abbecf8ef563570691a2b2b57e",
		"b247d3c1e84fd704c4d3702634b5cef9bf8fa3f610baa064c50c1b5db08ea0dd",
	};
	const char *const root_hex[] = {
		"55cbd1d799bc567333014816bb630227e28b1699abb2b3a07bb1119358e72dbb",
		"affb9ec7b636ffd5e6f8e740f2f64f29619c09221493ef337b9eb2b216667865",
		kChain3Root,
	};
	std::vector<Digest> leaves;

	for (const Digest &e : {e1, e2, e3})
	{
		ASSERT_EQ(b->append_entry(e.data()), SA_OK);
		EXPECT_EQ(to_hex(b->completed_hash(0)), leaf_hex[leaves.size()]);
		leaves.push_back(b->completed_hash(0));
		ASSERT_EQ(b->root(root), SA_OK);
		EXPECT_EQ(to_hex(root), root_hex[leaves.size() - 1]);
	}

	/* The proofs docs/FORMAT.md gives for this chain. */
	MemoryTree	t;
	std::vector<Digest> proof;

	ASSERT_EQ(t.build(leaves.data(), leaves.size()), SA_OK);
	ASSERT_EQ(inclusion_proof(1, 3, t.reader(), proof), SA_OK);	/* seq 2 */
	ASSERT_EQ(proof.size(), 2u);
	EXPECT_EQ(to_hex(proof[0]), leaf_hex[0]);
	EXPECT_EQ(to_hex(proof[1]), leaf_hex[2]);
	EXPECT_EQ(verify_inclusion(1, 3, leaves[1], proof.data(), proof.size(), root), SA_OK);
	ASSERT_EQ(consistency_proof(1, 3, t.reader(), proof), SA_OK);
	ASSERT_EQ(proof.size(), 2u);
	EXPECT_EQ(to_hex(proof[0]), leaf_hex[1]);
	EXPECT_EQ(to_hex(proof[1]), leaf_hex[2]);
	EXPECT_EQ(verify_consistency(1, 3, digest_from_hex(root_hex[0]), root, proof.data(),
								 proof.size()),
			  SA_OK);
	ASSERT_EQ(consistency_proof(2, 3, t.reader(), proof), SA_OK);
	ASSERT_EQ(proof.size(), 1u);
	EXPECT_EQ(to_hex(proof[0]), leaf_hex[2]);
	EXPECT_EQ(verify_consistency(2, 3, digest_from_hex(root_hex[1]), root, proof.data(),
								 proof.size()),
			  SA_OK);
}

TEST(LogCheckpoint, ChainRecordVector)
{
	const std::vector<ChainHead> chains = two_chains();
	uint8_t		record[kChainRecordLen];

	EXPECT_EQ(kChainRecordLen, 66u);
	encode_chain_record(chains[1], record);
	EXPECT_EQ(to_hex(record, sizeof(record)), kChain3Record);
	encode_chain_record(chains[0], record);
	EXPECT_EQ(to_hex(record, sizeof(record)), kChain0Record);
}

TEST(LogCheckpoint, TwoChainBodyAndSignatureVector)
{
	const std::vector<ChainHead> chains = two_chains();
	const auto	secret = key_from_hex(kRfc8032Secret);
	std::string body;
	std::string note;
	uint8_t		pub[kEd25519KeyLen];
	VerifierKey key;
	std::string key_text;

	ASSERT_EQ(encode_log_checkpoint(kLogId, chains.data(), chains.size(), body), SA_OK);
	EXPECT_EQ(body, kTwoChainBody);

	/* Ed25519 is deterministic, so the whole signed note is a fixed vector. */
	ASSERT_EQ(sign_note(body, kKeyName, secret.data(), note), SA_OK);
	EXPECT_EQ(note, std::string(kTwoChainBody) + "\n" + kTwoChainSignature);

	ASSERT_EQ(ed25519_public_key(secret.data(), pub), SA_OK);
	ASSERT_EQ(make_verifier_key(kKeyName, pub, key), SA_OK);
	ASSERT_EQ(encode_verifier_key(key, key_text), SA_OK);
	EXPECT_EQ(key_text, kTestVkey);

	std::string text;

	ASSERT_EQ(verify_note(note, &key, 1, &text, nullptr), SA_OK);

	LogCheckpoint cp;

	ASSERT_EQ(parse_log_checkpoint(text, cp), SA_OK);
	EXPECT_EQ(cp.log_id, kLogId);
	EXPECT_EQ(cp.total, 1003u);
	ASSERT_EQ(cp.chains.size(), 2u);
	EXPECT_EQ(cp.chains[0].chain, 0u);
	EXPECT_EQ(cp.chains[0].size, 1000u);
	EXPECT_EQ(cp.chains[0].root, chains[0].root);
	EXPECT_EQ(cp.chains[1].chain, 3u);
	EXPECT_EQ(cp.chains[1].size, 3u);
	EXPECT_EQ(cp.chains[1].root, chains[1].root);

	Digest		root;

	ASSERT_EQ(chain_records_root(chains.data(), chains.size(), root), SA_OK);
	EXPECT_EQ(root, cp.root);
	EXPECT_EQ(to_hex(root), "873087a5aa6df404769e554447453ee961a7a305e5ae30c5e2d4ce728c3fcf7b");
}

TEST(LogCheckpoint, EmptyChainsAreLeftOut)
{
	std::vector<ChainHead> chains = two_chains();
	std::string body;
	ChainHead	empty;
	LogCheckpoint cp;

	empty.chain = 1;
	chains.insert(chains.begin() + 1, empty);
	empty.chain = 9;
	chains.push_back(empty);
	ASSERT_EQ(encode_log_checkpoint(kLogId, chains.data(), chains.size(), body), SA_OK);
	EXPECT_EQ(body, kTwoChainBody);

	ASSERT_EQ(encode_log_checkpoint(kLogId, nullptr, 0, body), SA_OK);
	EXPECT_EQ(body, kEmptyLogBody);
	ASSERT_EQ(parse_log_checkpoint(body, cp), SA_OK);
	EXPECT_EQ(cp.total, 0u);
	EXPECT_TRUE(cp.chains.empty());
	EXPECT_EQ(cp.root, kEmptyTreeRoot);
}

TEST(LogCheckpoint, EncodeRejections)
{
	std::vector<ChainHead> chains = two_chains();
	std::string body;

	for (const char *id : {"", "has space", "has+plus", "slash/inside", "ümlaut"})
		EXPECT_EQ(encode_log_checkpoint(id, chains.data(), chains.size(), body), SA_ERR_SYNTAX)
			<< id;
	EXPECT_EQ(encode_log_checkpoint(std::string(kMaxLogIdLen + 1, 'a'), chains.data(),
									chains.size(), body),
			  SA_ERR_SYNTAX);
	EXPECT_EQ(encode_log_checkpoint(std::string(kMaxLogIdLen, 'a'), chains.data(),
									chains.size(), body),
			  SA_OK);

	std::swap(chains[0], chains[1]);
	EXPECT_EQ(encode_log_checkpoint(kLogId, chains.data(), chains.size(), body), SA_ERR_RANGE);
	chains[1] = chains[0];
	EXPECT_EQ(encode_log_checkpoint(kLogId, chains.data(), chains.size(), body), SA_ERR_RANGE);

	chains = two_chains();
	chains[0].size = ~uint64_t{0};
	EXPECT_EQ(encode_log_checkpoint(kLogId, chains.data(), chains.size(), body), SA_ERR_RANGE);
}

TEST(LogCheckpoint, ParseRejections)
{
	const std::string good = kTwoChainBody;
	const std::string l0 = "chain 0 1000 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n";
	const std::string l3 = "chain 3 3 jgDrAmey6YcZ362fmWqHte6DmqnNRJ8HxkrTc1LqUOs=\n";
	const std::string head = "sensitive_audit/3f0c8a52-7b1e-4d6a-9c2f-81e4b7d05a63\n1003\n"
		"hzCHpapt9AR2nlVER0U+6WGnowXlrjDF4tTOcow/z3s=\n";
	LogCheckpoint cp;

	ASSERT_EQ(good, head + l0 + l3);
	ASSERT_EQ(parse_log_checkpoint(good, cp), SA_OK);

	const std::vector<std::pair<std::string, const char *>> syntax = {
		{replace_all(good, "sensitive_audit/", "other/"), "foreign origin"},
		{replace_all(good, "sensitive_audit/", "sensitive_audit"), "no slash"},
		{replace_all(good, "sensitive_audit/3f0c", "sensitive_audit/3f c"), "space in log id"},
		{replace_all(good, "sensitive_audit/3f0c8a52-7b1e-4d6a-9c2f-81e4b7d05a63", "sensitive_audit/"),
		 "empty log id"},
		{head + l3 + l0, "chains out of order"},
		{head + l0 + l0 + l3, "chain twice"},
		{head + l0 + replace_all(l3, "chain 3", "chain 03"), "leading zero in chain"},
		{head + l0 + replace_all(l3, "chain 3 3", "chain 3 03"), "leading zero in size"},
		{head + l0 + replace_all(l3, "chain 3 3", "chain 3 0"), "empty chain listed"},
		{head + l0 + replace_all(l3, "chain 3", "chain 4294967296"), "chain above u32"},
		{head + l0 + replace_all(l3, "chain 3 3 ", "chain 3 3  "), "two spaces"},
		{head + l0 + replace_all(l3, "chain ", "Chain "), "capital C"},
		{head + l0 + replace_all(l3, "=\n", "\n"), "chain root without padding"},
		{head + l0 + replace_all(l3, "chain 3 3", "chain 3"), "no size"},
		{head + l0 + l3 + "note: hello\n", "unknown extension line"},
		{good.substr(0, good.size() - 1), "missing final newline"},
	};

	for (const auto &[text, why] : syntax)
		EXPECT_EQ(parse_log_checkpoint(text, cp), SA_ERR_SYNTAX) << why;

	const std::vector<std::pair<std::string, const char *>> verify = {
		{replace_all(good, "\n1003\n", "\n1002\n"), "total below the sum"},
		{replace_all(good, "\n1003\n", "\n1004\n"), "total above the sum"},
		{head + l0, "a chain left out"},
		{head + l0 + replace_all(l3, "chain 3 3", "chain 3 4"), "a chain's size changed"},
		{head + l0 + replace_all(l3, "jgDr", "jgDs"), "a chain's root changed"},
		{replace_all(good, "hzCH", "hzCI"), "the records root changed"},
	};

	for (const auto &[text, why] : verify)
		EXPECT_EQ(parse_log_checkpoint(text, cp), SA_ERR_VERIFY) << why;
}

TEST(LogCheckpoint, ChainRecordsRootSkipsEmptyAndChecksOrder)
{
	std::vector<ChainHead> chains = two_chains();
	Digest		with;
	Digest		without;
	ChainHead	empty;

	ASSERT_EQ(chain_records_root(chains.data(), chains.size(), without), SA_OK);
	empty.chain = 7;
	chains.push_back(empty);
	ASSERT_EQ(chain_records_root(chains.data(), chains.size(), with), SA_OK);
	EXPECT_EQ(with, without);
	chains[2].size = 1;
	ASSERT_EQ(chain_records_root(chains.data(), chains.size(), with), SA_OK);
	EXPECT_NE(with, without);
	chains[2].chain = 3;
	EXPECT_EQ(chain_records_root(chains.data(), chains.size(), with), SA_ERR_RANGE);
	ASSERT_EQ(chain_records_root(nullptr, 0, with), SA_OK);
	EXPECT_EQ(with, kEmptyTreeRoot);
}

}								/* namespace */
