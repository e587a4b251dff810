/*
 * protect_test.cpp — protected values (format 2, docs/FORMAT.md §11):
 * fingerprints, salted commitments, sealing to an X25519 key and opening,
 * the syntax check of the three forms, and format 2 entries in the
 * encoder and the verifier.
 *
 * The expected values were computed by test/pyverify/protect_vectors.py,
 * an independent implementation in Python (python3-cryptography's X25519,
 * HKDF and AESGCM, hashlib, hmac); they are the vectors of FORMAT.md §11.6
 * and are fixed: if a test against them fails, the C++ code is wrong.
 */
#include "core/cpp_only.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "core/checkpoint.hpp"
#include "core/protect.hpp"
#include "test_support.hpp"

using namespace sa_test;
using namespace sensitive_audit;

namespace
{

/* ---- The vectors (test/pyverify/protect_vectors.py) ----------------------- */

std::vector<uint8_t>
range_bytes(uint8_t first, size_t n)
{
	std::vector<uint8_t> v(n);

	for (size_t i = 0; i < n; i++)
		v[i] = static_cast<uint8_t>(first + i);
	return v;
}

const std::vector<uint8_t> kFingerprintKey = range_bytes(0x00, 32);
const std::vector<uint8_t> kSalt = range_bytes(0x20, 32);
const std::vector<uint8_t> kEphemeralPrivate = range_bytes(0x60, 32);
const std::vector<uint8_t> kNonce = range_bytes(0xa0, 12);
const std::string kValue = "123-45-6789";
const std::string kValue2 = "Gr\xC3\xBC\xC3\x9F" "e";	/* Grüße */

const char kFingerprint[] =
	"hmac-sha256:c36200a49b51d6ab68039265bc674b1d0c688fd833eaf123936d026ed25fb4b1";
const char kFingerprintEmpty[] =
	"hmac-sha256:d38b42096d80f45f826b44a9d5607de72496a415d3f4a1a8c88e3bb9da8dc1cb";
const char kCommitment[] =
	"sha256-salted:9c6396403d815632f7a217f7cbdb37e00e8e14eb36768a8acadd53340b474946";
const char kCommitmentEmpty[] =
	"sha256-salted:6cef34adadd0316209536b8b9921e74916ddc05c759056381fdf3fd4444040a5";

/* The recipient: private key 0x40..0x5f. */
const char kRecipientPrivatePem[] =
	"-----BEGIN PRIVATE KEY-----\n"
	"MC4CAQAwBQYDK2VuBCIEIEBBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5f\n"
	"-----END PRIVATE KEY-----\n";
const char kRecipientPublicPem[] =
	"-----BEGIN PUBLIC KEY-----\n"
	"MCowBQYDK2VuAyEAeaYx7t4b+cmPEgMs3q3Q56B5OY/HhriMyEbsia+FpRo=\n"
	"-----END PUBLIC KEY-----\n";
const char kRecipientPublicHex[] = "79a631eede1bf9c98f12032cdeadd0e7a079398fc786b88cc846ec89af85a51a";
const char kKeyIdHex[] = "67ca2ffd6fe9efab";

const char kSealed[] =
	"x25519-aes256gcm:Z8ov/W/p76tnXdV07XeJMQs9LnaB83kLRmx3OxUh/s82V3lYNx6lL6ChoqOkpaanqKmqq9WOIdAyGx48YD2nEgduOvqTbETvZ6ziMC2FNQ==";
const char kSealed2[] =
	"x25519-aes256gcm:Z8ov/W/p76tnXdV07XeJMQs9LnaB83kLRmx3OxUh/s82V3lYNx6lL6ChoqOkpaanqKmqrAGJ5G2nxz7z3XrJJhBdW2HNUKgMJsJp";
const char kSealedEmpty[] =
	"x25519-aes256gcm:Z8ov/W/p76tnXdV07XeJMQs9LnaB83kLRmx3OxUh/s82V3lYNx6lL6ChoqOkpaanqKmqrQPybhSMnJ5kT7aRH02S6aM=";

/* Another X25519 key (openssl genpkey -algorithm X25519), and an Ed25519 public key. */
const char kOtherPrivatePem[] =
	"-----BEGIN PRIVATE KEY-----\n"
	"MC4CAQAwBQYDK2VuBCIEIECTB0c03tQTnn3cRA/8gvpHEQqPNwlMsgT4/X1bt7FR\n"
	"-----END PRIVATE KEY-----\n";
const char kEd25519PublicPem[] =
	"-----BEGIN PUBLIC KEY-----\n"
	"MCowBQYDK2VwAyEAMv48ukn4BLqCqUVgp+h4NKynELlZvLk06sbO08jI28A=\n"
	"-----END PUBLIC KEY-----\n";

/* Two format 2 entries starting chain 3: vector 1's fields with protected values. */
const char kEntry1Hex[] =
	"73656e7369746976655f617564697420656e74727900000200000003000000000000000100000000000002ec00060dedc04fb580"
	"0100000006494e5345525401000000067075626c6963010000000870617469656e7473010000000373736e010000000b7b226964"
	"223a202235227d010000000b7072696d617279206b657900010000007d7832353531392d61657332353667636d3a5a386f762f57"
	"2f703736746e586456303758654a4d5173394c6e614238336b4c526d78334f7855682f73383256336c594e78366c4c3643686f71"
	"4f6b7061616e714b6d717139574f49644179477834385944326e456764754f767154624554765a367a694d4332464e513d3d0100"
	"000004746578740100000005616c6963650100000005616c69636501000000047073716c010000000a3139322e302e322e313000"
	"0010920000000000000000000000000000000000000000000000000000000000000000";
const char kEntry1Hash[] = "b47951aad3706e789f15e7dc10bc959bb52ef8021ef3c31cb5d77773b18b069c";
const char kEntry2Hex[] =
	"73656e7369746976655f617564697420656e74727900000200000003000000000000000200000000000002ed00060dedc05d1580"
	"010000000655504441544501000000067075626c6963010000000870617469656e7473010000000373736e010000000b7b226964"
	"223a202235227d010000000b7072696d617279206b6579010000004c686d61632d7368613235363a633336323030613439623531"
	"64366162363830333932363562633637346231643063363838666438333365616631323339333664303236656432356662346231"
	"010000004e7368613235362d73616c7465643a3963363339363430336438313536333266376132313766376362646233376530"
	"30653865313465623336373638613861636164643533333430623437343934360100000004746578740100000005616c696365"
	"0100000005616c69636501000000047073716c010000000a3139322e302e322e313000001092b47951aad3706e789f15e7dc10bc"
	"959bb52ef8021ef3c31cb5d77773b18b069c";
const char kEntry2Hash[] = "cb08175be92f8f5b232ea4072a30c91909c241b3f09d0c49bc0d2a7f769f94ed";

std::vector<uint8_t>
recipient_public()
{
	return from_hex(kRecipientPublicHex);
}

std::string
seal(sa_sealer *s, const std::string &v)
{
	std::string out(sa_sealed_text_len(v.size()) + 1, '\0');
	size_t		n = 0;

	EXPECT_EQ(sa_seal_text(s, v.data(), v.size(), out.data(), out.size(), &n), SA_OK);
	EXPECT_EQ(n, sa_sealed_text_len(v.size()));
	EXPECT_EQ(out[n], '\0');
	out.resize(n);
	return out;
}

/* The sealed text with one byte of its decoded form changed. */
std::string
flip_byte(const std::string &sealed, size_t at)
{
	const size_t prefix = std::strlen(SA_SEALED_PREFIX);
	std::vector<uint8_t> raw;
	std::string b64;

	EXPECT_EQ(base64_decode(sealed.substr(prefix), raw), SA_OK);
	raw.at(at) ^= 0x01;
	EXPECT_EQ(base64_encode(raw.data(), raw.size(), b64), SA_OK);
	return sealed.substr(0, prefix) + b64;
}

TestEntry
protected_entry1()
{
	TestEntry	t;

	t.format = SA_FORMAT_PROTECTED;
	t.chain = 3;
	t.seq = 1;
	t.txid = 748;
	t.event_time = 1704164645123456;
	t.text[kOperation] = "INSERT";
	t.text[kTableSchema] = "public";
	t.text[kTableName] = "patients";
	t.text[kColumnName] = "ssn";
	t.text[kRowKey] = "{\"id\": \"5\"}";
	t.text[kRowKeySource] = "primary key";
	t.text[kOldValue] = std::nullopt;
	t.text[kNewValue] = std::string(kSealed);
	t.text[kValueType] = "text";
	t.text[kSessionRole] = "alice";
	t.text[kEffectiveRole] = "alice";
	t.text[kApplicationName] = "psql";
	t.text[kClientAddr] = "192.0.2.10";
	t.backend_pid = 4242;
	return t;
}

TestEntry
protected_entry2(const Digest &prev)
{
	TestEntry	t = protected_entry1();

	t.seq = 2;
	t.txid = 749;
	t.event_time = 1704164646000000;
	t.text[kOperation] = "UPDATE";
	t.text[kOldValue] = std::string(kFingerprint);
	t.text[kNewValue] = std::string(kCommitment);
	t.prev_hash = prev;
	return t;
}

/* Verifies entries of one chain, returning the problem ("" when it passes). */
std::string
verify_problem(const std::vector<TestEntry> &entries, uint64_t *first_bad = nullptr)
{
	Hasher		h;
	sa_verifier *v = sa_verifier_create();
	std::string problem;

	for (const auto &t : entries)
	{
		sa_entry	e = t.view();
		Digest		d = h.hash(t);

		EXPECT_EQ(sa_verifier_feed(v, &e, d.data(), d.size()), SA_OK);
	}
	EXPECT_EQ(sa_verifier_finish(v), SA_OK);
	EXPECT_EQ(sa_verifier_nchains(v), 1u);
	sa_chain_result r;

	EXPECT_EQ(sa_verifier_result(v, 0, &r), SA_OK);
	if (!r.ok)
	{
		problem = r.problem;
		if (first_bad != nullptr)
			*first_bad = r.first_bad_seq;
	}
	sa_verifier_destroy(v);
	return problem;
}

/* A chain of protected entries with the given new_value each, linked. */
std::vector<TestEntry>
chain_with_values(const std::vector<std::optional<std::string>> &values)
{
	Hasher		h;
	std::vector<TestEntry> out;
	Digest		prev{};
	uint64_t	seq = 1;

	for (const auto &v : values)
	{
		TestEntry	t = protected_entry1();

		t.seq = seq++;
		t.text[kNewValue] = v;
		t.prev_hash = prev;
		prev = h.hash(t);
		out.push_back(t);
	}
	return out;
}

}								/* namespace */

/* ---- Fingerprints and commitments ------------------------------------------ */

TEST(Protect, FingerprintVector)
{
	char		out[SA_FINGERPRINT_TEXT_LEN + 1];

	ASSERT_EQ(sa_fingerprint_text(kFingerprintKey.data(), kValue.data(), kValue.size(), out), SA_OK);
	EXPECT_STREQ(out, kFingerprint);
	ASSERT_EQ(sa_fingerprint_text(kFingerprintKey.data(), nullptr, 0, out), SA_OK);
	EXPECT_STREQ(out, kFingerprintEmpty);
	EXPECT_EQ(std::strlen(kFingerprint), static_cast<size_t>(SA_FINGERPRINT_TEXT_LEN));

	/* Another key gives another fingerprint. */
	std::vector<uint8_t> k2 = kFingerprintKey;

	k2[0] ^= 1;
	ASSERT_EQ(sa_fingerprint_text(k2.data(), kValue.data(), kValue.size(), out), SA_OK);
	EXPECT_STRNE(out, kFingerprint);
	EXPECT_EQ(sa_fingerprint_text(nullptr, "x", 1, out), SA_ERR_INTERNAL);
	EXPECT_EQ(sa_fingerprint_text(kFingerprintKey.data(), nullptr, 1, out), SA_ERR_INTERNAL);
}

/* python3: hmac.new(bytes(range(32)), b"sensitive_audit fingerprint column\0" + bytes(range(0xa0, 0xb0)), sha256) */
TEST(Protect, ColumnKeyVector)
{
	const std::vector<uint8_t> column_salt = range_bytes(0xa0, SA_COLUMN_SALT_LEN);
	uint8_t		key[SA_PROTECT_KEY_LEN];

	ASSERT_EQ(sa_fingerprint_column_key(kFingerprintKey.data(), column_salt.data(), key), SA_OK);
	EXPECT_EQ(to_hex(key, sizeof(key)), "fee23566628a5870bd0e40e52b73e11b3f4567eefd0302775b48f67e36dd0862");

	/* another column, another key */
	const std::vector<uint8_t> other = range_bytes(0xa1, SA_COLUMN_SALT_LEN);
	uint8_t		key2[SA_PROTECT_KEY_LEN];

	ASSERT_EQ(sa_fingerprint_column_key(kFingerprintKey.data(), other.data(), key2), SA_OK);
	EXPECT_NE(to_hex(key, sizeof(key)), to_hex(key2, sizeof(key2)));
}

TEST(Protect, CommitmentVector)
{
	char		out[SA_COMMITMENT_TEXT_LEN + 1];

	ASSERT_EQ(sa_commitment_text(kSalt.data(), kValue.data(), kValue.size(), out), SA_OK);
	EXPECT_STREQ(out, kCommitment);
	ASSERT_EQ(sa_commitment_text(kSalt.data(), "", 0, out), SA_OK);
	EXPECT_STREQ(out, kCommitmentEmpty);
	EXPECT_EQ(std::strlen(kCommitment), static_cast<size_t>(SA_COMMITMENT_TEXT_LEN));
	EXPECT_EQ(sa_commitment_text(nullptr, "x", 1, out), SA_ERR_INTERNAL);
}

TEST(Protect, RandomBytes)
{
	uint8_t		a[32] = {0}, b[32] = {0};

	ASSERT_EQ(sa_random_bytes(a, sizeof(a)), SA_OK);
	ASSERT_EQ(sa_random_bytes(b, sizeof(b)), SA_OK);
	EXPECT_NE(std::memcmp(a, b, sizeof(a)), 0);
	EXPECT_EQ(sa_random_bytes(nullptr, 0), SA_OK);
	EXPECT_EQ(sa_random_bytes(nullptr, 1), SA_ERR_INTERNAL);
}

/* ---- Public keys -------------------------------------------------------------- */

TEST(Protect, PublicKeyFromPem)
{
	uint8_t		pub[SA_PROTECT_KEY_LEN];
	char		id[2 * SA_KEY_ID_LEN + 1];
	std::string pem = kRecipientPublicPem;

	ASSERT_EQ(sa_x25519_public_from_pem(pem.data(), pem.size(), pub, id), SA_OK);
	EXPECT_EQ(to_hex(pub, sizeof(pub)), kRecipientPublicHex);
	EXPECT_STREQ(id, kKeyIdHex);

	/* Surrounding whitespace (and no final newline) is fine. */
	std::string padded = "\n  " + pem.substr(0, pem.size() - 1) + " \r\n";

	EXPECT_EQ(sa_x25519_public_from_pem(padded.data(), padded.size(), pub, id), SA_OK);
}

TEST(Protect, PublicKeyFromPemRefusesEverythingElse)
{
	uint8_t		pub[SA_PROTECT_KEY_LEN];
	char		id[2 * SA_KEY_ID_LEN + 1];
	const std::string pem = kRecipientPublicPem;
	const std::string bad[] = {
		"",
		"not a key",
		kRecipientPrivatePem,			/* the private key must never be accepted here */
		kEd25519PublicPem,				/* another algorithm */
		"junk\n" + pem,					/* text around the block */
		pem + "junk\n",
		pem + pem,						/* two blocks */
		pem.substr(0, 40) + pem.substr(41),	/* one base64 character lost */
		std::string(pem.data(), 30) + std::string(1, '\0') + pem.substr(30),
	};

	for (const auto &b : bad)
		EXPECT_EQ(sa_x25519_public_from_pem(b.data(), b.size(), pub, id), SA_ERR_KEY) << b;
	EXPECT_EQ(sa_x25519_public_from_pem(nullptr, 0, pub, id), SA_ERR_INTERNAL);
	EXPECT_STRNE(sa_strerror(SA_ERR_KEY), sa_strerror(SA_ERR_DECRYPT));
	EXPECT_NE(std::string(sa_strerror(SA_ERR_KEY)).find("key"), std::string::npos);
	EXPECT_NE(std::string(sa_strerror(SA_ERR_DECRYPT)).find("authenticate"), std::string::npos);
}

/* ---- Sealing -------------------------------------------------------------------- */

TEST(Protect, SealedTextLength)
{
	/* prefix + base64 of 68 + len bytes */
	EXPECT_EQ(sa_sealed_text_len(0), 17u + 92u);
	EXPECT_EQ(sa_sealed_text_len(1), 17u + 92u);
	EXPECT_EQ(sa_sealed_text_len(2), 17u + 96u);
	EXPECT_EQ(sa_sealed_text_len(11), std::strlen(kSealed));
}

TEST(Protect, FixedSealerVectors)
{
	std::vector<uint8_t> pub = recipient_public();
	sa_sealer  *s = sa_sealer_create_fixed(pub.data(), kEphemeralPrivate.data(), kNonce.data());

	ASSERT_NE(s, nullptr);
	EXPECT_EQ(seal(s, kValue), kSealed);
	EXPECT_EQ(seal(s, kValue2), kSealed2);	/* the nonce counts up */
	EXPECT_EQ(seal(s, ""), kSealedEmpty);

	char		small[40];
	size_t		n = 0;

	EXPECT_EQ(sa_seal_text(s, "x", 1, small, sizeof(small), &n), SA_ERR_SPACE);
	sa_sealer_destroy(s);

	EXPECT_EQ(sa_sealer_create_fixed(pub.data(), nullptr, kNonce.data()), nullptr);
	EXPECT_EQ(sa_sealer_create(nullptr), nullptr);
	sa_sealer_destroy(nullptr);
}

TEST(Protect, LowOrderRecipientIsRefused)
{
	/* The all-zero point: X25519 with it gives zero, a key anyone can compute. */
	uint8_t		zero[SA_PROTECT_KEY_LEN] = {0};

	EXPECT_EQ(sa_sealer_create(zero), nullptr);
}

TEST(Protect, OpenerOpensTheVectors)
{
	X25519Opener o;

	ASSERT_EQ(o.load_private_pem(kRecipientPrivatePem), SA_OK);
	EXPECT_EQ(to_hex(o.public_key().data(), o.public_key().size()), kRecipientPublicHex);
	EXPECT_EQ(key_id_hex(o.key_id()), kKeyIdHex);

	std::string clear;

	EXPECT_EQ(o.open(kSealed, clear), OpenResult::kOpened);
	EXPECT_EQ(clear, kValue);
	EXPECT_EQ(o.open(kSealed2, clear), OpenResult::kOpened);
	EXPECT_EQ(clear, kValue2);
	EXPECT_EQ(o.open(kSealedEmpty, clear), OpenResult::kOpened);
	EXPECT_EQ(clear, "");

	KeyId		id;

	ASSERT_TRUE(sealed_key_id(kSealed, id));
	EXPECT_EQ(key_id_hex(id), kKeyIdHex);
}

TEST(Protect, TamperingIsNotAuthentic)
{
	X25519Opener o;
	std::string clear = "unchanged";
	const std::string sealed = kSealed;
	const size_t len = 68 + kValue.size();

	ASSERT_EQ(o.load_private_pem(kRecipientPrivatePem), SA_OK);
	/* Every byte after the key id: ephemeral key, nonce, ciphertext, tag. */
	for (size_t at = SA_KEY_ID_LEN; at < len; at++)
	{
		EXPECT_EQ(o.open(flip_byte(sealed, at), clear), OpenResult::kNotAuthentic) << "byte " << at;
		EXPECT_EQ(clear, "unchanged");
	}
	/* A changed key id names another key: told apart from tampering with the rest. */
	KeyId		other{};

	EXPECT_EQ(o.open(flip_byte(sealed, 0), clear, &other), OpenResult::kOtherKey);
	EXPECT_NE(key_id_hex(other), kKeyIdHex);

	/* Cut short, or not a sealed text at all. */
	EXPECT_EQ(o.open(sealed.substr(0, sealed.size() - 4), clear), OpenResult::kNotAuthentic);
	EXPECT_EQ(o.open("x25519-aes256gcm:AAAA", clear), OpenResult::kMalformed);
	EXPECT_EQ(o.open(kFingerprint, clear), OpenResult::kMalformed);
	EXPECT_EQ(o.open("123-45-6789", clear), OpenResult::kMalformed);
}

TEST(Protect, WrongKeyIsOtherKey)
{
	X25519Opener o;
	std::string clear;
	KeyId		other{};

	ASSERT_EQ(o.load_private_pem(kOtherPrivatePem), SA_OK);
	EXPECT_NE(key_id_hex(o.key_id()), kKeyIdHex);
	EXPECT_EQ(o.open(kSealed, clear, &other), OpenResult::kOtherKey);
	EXPECT_EQ(key_id_hex(other), kKeyIdHex);
}

TEST(Protect, WrongKeyWithForgedKeyIdIsNotAuthentic)
{
	/* A value whose key id was rewritten to the other key's id still does not open. */
	X25519Opener o;

	ASSERT_EQ(o.load_private_pem(kOtherPrivatePem), SA_OK);
	const size_t prefix = std::strlen(SA_SEALED_PREFIX);
	std::vector<uint8_t> raw;
	std::string b64, clear;

	ASSERT_EQ(base64_decode(std::string(kSealed).substr(prefix), raw), SA_OK);
	std::memcpy(raw.data(), o.key_id().data(), SA_KEY_ID_LEN);
	ASSERT_EQ(base64_encode(raw.data(), raw.size(), b64), SA_OK);
	EXPECT_EQ(o.open(SA_SEALED_PREFIX + b64, clear), OpenResult::kNotAuthentic);
}

TEST(Protect, OpenerRefusesBadKeys)
{
	X25519Opener o;
	std::string clear;
	const std::string priv = kRecipientPrivatePem;

	EXPECT_EQ(o.open(kSealed, clear), OpenResult::kError);	/* no key loaded */
	for (const std::string &bad : {std::string(kRecipientPublicPem), std::string(""), std::string("x"),
			 "junk\n" + priv, priv + priv,
			 std::string("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n")})
	{
		EXPECT_EQ(o.load_private_pem(bad), SA_ERR_KEY) << bad;
		EXPECT_FALSE(o.loaded());
	}
	/* An Ed25519 private key in PKCS#8 is another algorithm. */
	const char ed[] =
		"-----BEGIN PRIVATE KEY-----\n"
		"MC4CAQAwBQYDK2VwBCIEIEBBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5f\n"
		"-----END PRIVATE KEY-----\n";

	EXPECT_EQ(o.load_private_pem(ed), SA_ERR_KEY);
}

TEST(Protect, RandomSealerRoundTrip)
{
	std::vector<uint8_t> pub = recipient_public();
	sa_sealer  *s = sa_sealer_create(pub.data());
	X25519Opener o;

	ASSERT_NE(s, nullptr);
	ASSERT_EQ(o.load_private_pem(kRecipientPrivatePem), SA_OK);

	std::string a = seal(s, kValue), b = seal(s, kValue), big(100000, 'z');
	std::string c = seal(s, big), clear;

	/* The same value seals differently (a fresh nonce), under one ephemeral key. */
	EXPECT_NE(a, b);
	EXPECT_EQ(a.substr(0, 17 + 52), b.substr(0, 17 + 52));	/* key id and ephemeral key: 40 bytes */
	EXPECT_NE(a.substr(0, 17 + 52), std::string(kSealed).substr(0, 17 + 52));
	EXPECT_EQ(protected_form(a), ProtectedForm::kSealed);
	EXPECT_EQ(o.open(a, clear), OpenResult::kOpened);
	EXPECT_EQ(clear, kValue);
	EXPECT_EQ(o.open(b, clear), OpenResult::kOpened);
	EXPECT_EQ(clear, kValue);
	EXPECT_EQ(o.open(c, clear), OpenResult::kOpened);
	EXPECT_EQ(clear, big);
	sa_sealer_destroy(s);
}

TEST(Protect, SealerRenewsItsEphemeralKey)
{
	std::vector<uint8_t> pub = recipient_public();
	sa_sealer  *s = sa_sealer_create(pub.data());
	X25519Opener o;
	char		out[256];
	size_t		n = 0;
	std::string first, last, clear;

	ASSERT_NE(s, nullptr);
	ASSERT_EQ(o.load_private_pem(kRecipientPrivatePem), SA_OK);
	for (uint32_t i = 0; i < (1u << 20); i++)
	{
		ASSERT_EQ(sa_seal_text(s, "v", 1, out, sizeof(out), &n), SA_OK);
		if (i == 0)
			first.assign(out, n);
	}
	last.assign(out, n);
	EXPECT_EQ(first.substr(0, 69), last.substr(0, 69));	/* 2^20 values under one key */
	ASSERT_EQ(sa_seal_text(s, "w", 1, out, sizeof(out), &n), SA_OK);
	std::string renewed(out, n);

	EXPECT_NE(first.substr(17, 52), renewed.substr(17, 52));
	EXPECT_EQ(first.substr(0, 17 + 8), renewed.substr(0, 17 + 8));	/* the same recipient's key id */
	EXPECT_EQ(o.open(renewed, clear), OpenResult::kOpened);
	EXPECT_EQ(clear, "w");
	EXPECT_EQ(o.open(last, clear), OpenResult::kOpened);
	EXPECT_EQ(clear, "v");
	sa_sealer_destroy(s);
}

/* ---- The syntax of the three forms ---------------------------------------------- */

TEST(Protect, ProtectedForms)
{
	EXPECT_EQ(protected_form(kFingerprint), ProtectedForm::kFingerprint);
	EXPECT_EQ(protected_form(kCommitment), ProtectedForm::kCommitment);
	EXPECT_EQ(protected_form(kSealed), ProtectedForm::kSealed);
	EXPECT_EQ(protected_form(kSealed2), ProtectedForm::kSealed);
	EXPECT_EQ(protected_form(kSealedEmpty), ProtectedForm::kSealed);

	std::string fp = kFingerprint, cm = kCommitment, sl = kSealed;
	std::string upper = fp;

	upper[20] = 'A';
	const std::string bad[] = {
		"", "123-45-6789", "hmac-sha256:", fp.substr(0, fp.size() - 1), fp + "0", upper,
		"HMAC-SHA256:" + fp.substr(12), cm.substr(0, cm.size() - 2), cm + " ",
		"sha256-salted:" + fp.substr(12, 63) + "g",
		"x25519-aes256gcm:", sl.substr(0, sl.size() - 1),	/* not a multiple of 4 */
		sl.substr(0, sl.size() - 3) + "R==",	/* nonzero spare bits ("NQ==" is canonical) */
		sl.substr(0, 17) + "====",
		"x25519-aes256gcm:" + std::string(88, 'A'),	/* 66 bytes: shorter than 68 */
		"x25519-aes256gcm:" + sl.substr(17, 20) + "*" + sl.substr(38),
		"x25519-aes256gcm:" + sl.substr(17) + "\n",
	};

	for (const auto &b : bad)
		EXPECT_EQ(protected_form(b), ProtectedForm::kMalformed) << b;
	EXPECT_EQ(protected_form("x25519-aes256gcm:" + std::string(92, 'A')), ProtectedForm::kSealed);
}

/* ---- Format 2 entries ------------------------------------------------------------- */

TEST(Protect, Format2EntryVectors)
{
	Hasher		h;
	TestEntry	e1 = protected_entry1();

	EXPECT_EQ(h.encode_hex(e1), kEntry1Hex);
	Digest		d1 = h.hash(e1);

	EXPECT_EQ(to_hex(d1), kEntry1Hash);
	TestEntry	e2 = protected_entry2(d1);

	EXPECT_EQ(h.encode_hex(e2), kEntry2Hex);
	EXPECT_EQ(to_hex(h.hash(e2)), kEntry2Hash);

	/* Format 1 with the same fields hashes differently: the version is in the hash. */
	TestEntry	e1v1 = e1;

	e1v1.format = SA_FORMAT_VERSION;
	EXPECT_NE(to_hex(h.hash(e1v1)), kEntry1Hash);

	EXPECT_EQ(verify_problem({e1, e2}), "");
}

TEST(Protect, VerifierChecksFormat2Values)
{
	uint64_t	bad = 0;

	EXPECT_EQ(verify_problem(chain_with_values({std::string(kSealed), std::nullopt,
		std::string(kFingerprint), std::string(kCommitment)})), "");
	EXPECT_EQ(verify_problem(chain_with_values({std::string(kSealed), std::string("123-45-6789"),
		std::string(kFingerprint)}), &bad),
			  "malformed protected value: the new_value of a format 2 entry is not an "
			  "hmac-sha256:, sha256-salted: or x25519-aes256gcm: text");
	EXPECT_EQ(bad, 2u);

	/* old_value too; and an empty string is no protected form either. */
	std::vector<TestEntry> c = chain_with_values({std::nullopt});

	c[0].text[kOldValue] = "";
	EXPECT_EQ(verify_problem(c, &bad),
			  "malformed protected value: the old_value of a format 2 entry is not an "
			  "hmac-sha256:, sha256-salted: or x25519-aes256gcm: text");
	EXPECT_EQ(bad, 1u);

	/* Format 1 values are free text, whatever they look like. */
	std::vector<TestEntry> v1 = chain_with_values({std::string("123-45-6789")});

	v1[0].format = SA_FORMAT_VERSION;
	EXPECT_EQ(verify_problem(v1), "");
}
