/*
 * encoding_test.cpp — the canonical encoding and entry hash (format 1).
 *
 * First the published test vectors (also in docs/FORMAT.md): their exact
 * bytes and SHA-256 digests are hard-coded here, so any change to the
 * encoder that would change a stored hash fails the build's tests.  Then
 * properties that make the encoding unambiguous (NULL is not '', bytes
 * cannot slide between fields, every field is covered), a comparison with
 * a second, deliberately naive encoder over many random entries, and the
 * error codes of the C API.
 */
#include "core/cpp_only.hpp"

#include <gtest/gtest.h>
#include <openssl/err.h>

#include <random>
#include <set>

#include "test_support.hpp"
#include "vectors.hpp"

using namespace sa_test;

namespace
{

/* ---- Published test vectors -------------------------------------------- */

const char kVector1Encoding[] =
	"73656e7369746976655f617564697420656e74727900"	/* domain "sensitive_audit entry" NUL */
	"0001"	/* format */
	"00000003"	/* chain */
	"0000000000000001"	/* seq */
	"00000000000002ec"	/* txid */
	"00060dedc04fb580"	/* event_time */
	"0100000006494e53455254"	/* operation */
	"01000000067075626c6963"	/* table_schema */
	"010000000870617469656e7473"	/* table_name */
	"010000000373736e"	/* column_name */
	"010000000b7b226964223a202235227d"	/* row_key */
	"010000000b7072696d617279206b6579"	/* row_key_source */
	"00"	/* old_value NULL */
	"010000000b3132332d34352d36373839"	/* new_value */
	"010000000474657874"	/* value_type */
	"0100000005616c696365"	/* session_role */
	"0100000005616c696365"	/* effective_role */
	"01000000047073716c"	/* application_name */
	"010000000a3139322e302e322e3130"	/* client_addr */
	"00001092"	/* backend_pid */
	"0000000000000000000000000000000000000000000000000000000000000000"	/* prev_hash */
	;
const char kVector1Hash[] =
	"7aaeec14c91dc012352e5aa5ef579fc5176a9dd79bebcc1f25b891478a5b5763";

const char kVector2Encoding[] =
	"73656e7369746976655f617564697420656e74727900"	/* domain "sensitive_audit entry" NUL */
	"0001"	/* format */
	"00000003"	/* chain */
	"0000000000000002"	/* seq */
	"00000000000002ed"	/* txid */
	"00060dedc05d1580"	/* event_time */
	"0100000006555044415445"	/* operation */
	"01000000067075626c6963"	/* table_schema */
	"010000000870617469656e7473"	/* table_name */
	"01000000046e6f7465"	/* column_name */
	"010000000b7b226964223a202235227d"	/* row_key */
	"010000000b7072696d617279206b6579"	/* row_key_source */
	"0100000000"	/* old_value empty */
	"00"	/* new_value NULL */
	"010000000474657874"	/* value_type */
	"0100000005616c696365"	/* session_role */
	"010000000c636c696e69635f6f776e6572"	/* effective_role */
	"0100000000"	/* application_name empty */
	"00"	/* client_addr NULL */
	"00001093"	/* backend_pid */
	"7aaeec14c91dc012352e5aa5ef579fc5176a9dd79bebcc1f25b891478a5b5763"	/* prev_hash */
	;
const char kVector2Hash[] =
	"8706a6589db61db6ac0f36ae02438abc4f8ae8e6f89c5b39cd1a63ca3d67af97";

const char kVector3Encoding[] =
	"73656e7369746976655f617564697420656e74727900"	/* domain "sensitive_audit entry" NUL */
	"0001"	/* format */
	"00000003"	/* chain */
	"0000000000000003"	/* seq */
	"00000000000002ee"	/* txid */
	"ffffffffffffffff"	/* event_time */
	"010000000644454c455445"	/* operation */
	"01000000066b6c696e696b"	/* table_schema */
	"0100000006c3a4727a7465"	/* table_name */
	"010000000962656d65726b756e67"	/* column_name */
	"010000001b7b226e72223a202237222c20226f7274223a20224bc3b66c6e227d"	/* row_key */
	"010000000b7072696d617279206b6579"	/* row_key_source */
	"01000000164772c3bcc39f6500e697a5e69cace8aa9e20f09f9982"	/* old_value */
	"00"	/* new_value NULL */
	"010000000474657874"	/* value_type */
	"010000000a64725f6dc3bc6c6c6572"	/* session_role */
	"010000000a64725f6dc3bc6c6c6572"	/* effective_role */
	"010000000ac3a4727a74652d617070"	/* application_name */
	"010000000b323030313a6462383a3a31"	/* client_addr */
	"0000004d"	/* backend_pid */
	"8706a6589db61db6ac0f36ae02438abc4f8ae8e6f89c5b39cd1a63ca3d67af97"	/* prev_hash */
	;
const char kVector3Hash[] =
	"6aad26830faaea85b2c2ea957fa2714243cf4fa4578d4f297bf72177d26291a2";

TEST(Vectors, Vector1InsertWithNullOldValue)
{
	Hasher		h;
	TestEntry	v1 = vector1();

	EXPECT_EQ(h.encode_hex(v1), kVector1Encoding);
	EXPECT_EQ(to_hex(h.hash(v1)), kVector1Hash);
	EXPECT_EQ(from_hex(kVector1Encoding).size(), 233u);
}

TEST(Vectors, Vector2EmptyStringsAndNulls)
{
	Hasher		h;
	TestEntry	v2 = vector2(digest_from_hex(kVector1Hash));

	EXPECT_EQ(h.encode_hex(v2), kVector2Encoding);
	EXPECT_EQ(to_hex(h.hash(v2)), kVector2Hash);
	EXPECT_EQ(from_hex(kVector2Encoding).size(), 212u);
}

TEST(Vectors, Vector3Utf8ZeroByteNegativeTime)
{
	Hasher		h;
	TestEntry	v3 = vector3(digest_from_hex(kVector2Hash));

	EXPECT_EQ(h.encode_hex(v3), kVector3Encoding);
	EXPECT_EQ(to_hex(h.hash(v3)), kVector3Hash);
	EXPECT_EQ(from_hex(kVector3Encoding).size(), 281u);
	/* the zero byte inside old_value is kept, not treated as an end */
	EXPECT_EQ(v3.text[kOldValue]->size(), 22u);
}

/* The three vectors are a valid chain: each links to the previous hash. */
TEST(Vectors, VectorsFormAChain)
{
	Hasher		h;
	Digest		d1 = h.hash(vector1());
	Digest		d2 = h.hash(vector2(d1));
	Digest		d3 = h.hash(vector3(d2));
	sa_verifier *v = sa_verifier_create();

	ASSERT_NE(v, nullptr);

	TestEntry	entries[3] = {vector1(), vector2(d1), vector3(d2)};
	const Digest *hashes[3] = {&d1, &d2, &d3};

	for (int i = 0; i < 3; i++)
	{
		sa_entry	e = entries[i].view();

		ASSERT_EQ(sa_verifier_feed(v, &e, hashes[i]->data(), SA_DIGEST_LEN), SA_OK);
	}
	ASSERT_EQ(sa_verifier_finish(v), SA_OK);
	ASSERT_EQ(sa_verifier_nchains(v), 1u);

	sa_chain_result r;

	ASSERT_EQ(sa_verifier_result(v, 0, &r), SA_OK);
	EXPECT_EQ(r.chain, 3u);
	EXPECT_EQ(r.entries, 3u);
	EXPECT_TRUE(r.ok);
	EXPECT_EQ(r.problem, nullptr);
	sa_verifier_destroy(v);
}

/* ---- A second, naive encoder, written from docs/FORMAT.md ---------------- */

void
append_be(std::string &out, uint64_t v, int bytes)
{
	for (int i = bytes - 1; i >= 0; i--)
		out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::string
reference_encoding(const TestEntry &t)
{
	std::string out("sensitive_audit entry", 21);

	out.push_back('\0');
	append_be(out, t.format, 2);
	append_be(out, t.chain, 4);
	append_be(out, t.seq, 8);
	append_be(out, t.txid, 8);
	append_be(out, static_cast<uint64_t>(t.event_time), 8);
	for (const auto &f : t.text)
	{
		if (!f)
			out.push_back('\0');
		else
		{
			out.push_back('\1');
			append_be(out, f->size(), 4);
			out += *f;
		}
	}
	append_be(out, static_cast<uint32_t>(t.backend_pid), 4);
	out.append(reinterpret_cast<const char *>(t.prev_hash.data()), SA_DIGEST_LEN);
	return to_hex(reinterpret_cast<const uint8_t *>(out.data()), out.size());
}

TestEntry
random_entry(std::mt19937_64 &rng)
{
	TestEntry	t;
	std::uniform_int_distribution<int> small(0, 40);

	t.chain = static_cast<uint32_t>(rng());
	t.seq = rng();
	t.txid = rng();
	t.event_time = static_cast<int64_t>(rng());
	for (auto &f : t.text)
	{
		int			n = small(rng);

		if (n == 0)
			f = std::nullopt;
		else
		{
			/* n == 1 gives an empty string; bytes cover all 256 values */
			f = std::string();
			for (int i = 1; i < n; i++)
				f->push_back(static_cast<char>(rng() & 0xff));
		}
	}
	t.backend_pid = static_cast<int32_t>(rng());
	for (auto &b : t.prev_hash)
		b = static_cast<uint8_t>(rng());
	return t;
}

TEST(Encoding, MatchesReferenceEncoderOnRandomEntries)
{
	Hasher		h;
	std::mt19937_64 rng(20240102);

	for (int i = 0; i < 2000; i++)
	{
		TestEntry	t = random_entry(rng);

		ASSERT_EQ(h.encode_hex(t), reference_encoding(t)) << "entry " << i;
	}
}

TEST(Encoding, ReferenceEncoderAgreesWithVectors)
{
	EXPECT_EQ(reference_encoding(vector1()), kVector1Encoding);
	EXPECT_EQ(reference_encoding(vector2(digest_from_hex(kVector1Hash))), kVector2Encoding);
	EXPECT_EQ(reference_encoding(vector3(digest_from_hex(kVector2Hash))), kVector3Encoding);
}

/* Reusing one hasher for a long entry and then a short one must not leak
 * stale bytes of the first into the second. */
TEST(Encoding, BufferReuseDoesNotLeakOldBytes)
{
	Hasher		h;
	TestEntry	big = vector1();
	TestEntry	small = vector1();

	big.text[kNewValue] = std::string(100000, 'x');
	Digest		fresh = Hasher().hash(small);

	h.hash(big);
	EXPECT_EQ(h.hash(small), fresh);
	EXPECT_EQ(h.encode_hex(small), kVector1Encoding);
}

TEST(Encoding, FixedWidthIntegersAreBigEndian)
{
	Hasher		h;
	TestEntry	t = vector1();

	t.chain = 0x01020304;
	t.seq = 0x1112131415161718ULL;
	t.txid = 0x2122232425262728ULL;
	t.event_time = INT64_MIN;
	t.backend_pid = -2;

	std::string hex = h.encode_hex(t);
	const size_t prefix = 2 * 22;

	EXPECT_EQ(hex.substr(prefix, 4), "0001");
	EXPECT_EQ(hex.substr(prefix + 4, 8), "01020304");
	EXPECT_EQ(hex.substr(prefix + 12, 16), "1112131415161718");
	EXPECT_EQ(hex.substr(prefix + 28, 16), "2122232425262728");
	EXPECT_EQ(hex.substr(prefix + 44, 16), "8000000000000000");
	/* backend_pid sits just before the 32-byte prev_hash */
	EXPECT_EQ(hex.substr(hex.size() - 2 * SA_DIGEST_LEN - 8, 8), "fffffffe");
}

/* ---- Properties that make the encoding unambiguous ----------------------- */

TEST(Properties, NullAndEmptyDifferInEveryField)
{
	Hasher		h;

	for (int f = 0; f < kNumTextFields; f++)
	{
		TestEntry	a = vector1();
		TestEntry	b = vector1();

		a.text[f] = std::nullopt;
		b.text[f] = "";
		EXPECT_NE(h.encode_hex(a), h.encode_hex(b)) << kTextFieldNames[f];
		EXPECT_NE(h.hash(a), h.hash(b)) << kTextFieldNames[f];
	}
}

/* An empty non-NULL value may come with a null data pointer. */
TEST(Properties, EmptyValueWithNullPointerIsEmpty)
{
	Hasher		h;
	TestEntry	t = vector2(digest_from_hex(kVector1Hash));
	sa_entry	e = t.view();
	uint8_t		out[SA_DIGEST_LEN];

	ASSERT_EQ(e.old_value.len, 0u);
	e.old_value.data = nullptr;
	ASSERT_EQ(sa_entry_hash(h.get(), &e, out), SA_OK);
	EXPECT_EQ(to_hex(out, SA_DIGEST_LEN), kVector2Hash);
}

/* A NULL field's data and len are ignored. */
TEST(Properties, NullFieldIgnoresDataAndLength)
{
	Hasher		h;
	TestEntry	t = vector1();
	sa_entry	e = t.view();
	uint8_t		out[SA_DIGEST_LEN];

	e.old_value.data = "garbage";
	e.old_value.len = 7;
	e.old_value.is_null = 1;
	ASSERT_EQ(sa_entry_hash(h.get(), &e, out), SA_OK);
	EXPECT_EQ(to_hex(out, SA_DIGEST_LEN), kVector1Hash);
}

TEST(Properties, MovingBytesBetweenAdjacentFieldsChangesHash)
{
	Hasher		h;

	for (int f = 0; f + 1 < kNumTextFields; f++)
	{
		/* "ab" | "c"  versus  "a" | "bc"  versus  "abc" | ""  versus  "" | "abc" */
		const char *splits[][2] = {{"ab", "c"}, {"a", "bc"}, {"abc", ""}, {"", "abc"}};
		std::set<Digest> seen;

		for (auto &s : splits)
		{
			TestEntry	t = vector1();

			t.text[f] = s[0];
			t.text[f + 1] = s[1];
			seen.insert(h.hash(t));
		}
		EXPECT_EQ(seen.size(), 4u) << kTextFieldNames[f] << " / " << kTextFieldNames[f + 1];
	}
}

/* The length prefix, not a terminator, delimits a value: text that looks
 * like an encoded field boundary stays inside its field. */
TEST(Properties, EmbeddedFieldSyntaxCannotForgeABoundary)
{
	Hasher		h;
	TestEntry	a = vector1();
	TestEntry	b = vector1();

	/* a: table_schema "p", table_name "x"
	 * b: table_schema "p" + <encoding of a present 1-byte field "x"> + table_name dropped to NULL */
	a.text[kTableSchema] = "p";
	a.text[kTableName] = "x";
	b.text[kTableSchema] = std::string("p\x01\x00\x00\x00\x01x", 7);
	b.text[kTableName] = std::nullopt;
	EXPECT_NE(h.hash(a), h.hash(b));
}

TEST(Properties, EveryFieldChangeChangesHash)
{
	Hasher		h;
	const TestEntry base = vector3(digest_from_hex(kVector2Hash));
	const Digest base_hash = h.hash(base);
	std::vector<TestEntry> variants;
	auto		vary = [&](auto change) {
		TestEntry	t = base;

		change(t);
		variants.push_back(t);
	};

	/* fixed-width fields: off by one, and a single high bit */
	vary([](TestEntry &t) { t.chain += 1; });
	vary([](TestEntry &t) { t.chain ^= 0x80000000u; });
	vary([](TestEntry &t) { t.seq += 1; });
	vary([](TestEntry &t) { t.seq ^= 1ULL << 63; });
	vary([](TestEntry &t) { t.txid += 1; });
	vary([](TestEntry &t) { t.txid ^= 1ULL << 63; });
	vary([](TestEntry &t) { t.event_time += 1; });
	vary([](TestEntry &t) { t.event_time = INT64_MAX; });
	vary([](TestEntry &t) { t.backend_pid += 1; });
	vary([](TestEntry &t) { t.backend_pid = INT32_MIN; });
	/* every bit of prev_hash */
	for (int bit = 0; bit < 8 * SA_DIGEST_LEN; bit++)
	{
		TestEntry	t = base;

		t.prev_hash[bit / 8] ^= static_cast<uint8_t>(1 << (bit % 8));
		variants.push_back(t);
	}
	/* every text field: NULL <-> value, one byte changed, one byte added */
	for (int f = 0; f < kNumTextFields; f++)
	{
		TestEntry	t = base;

		t.text[f] = base.text[f] ? std::nullopt : std::optional<std::string>("v");
		variants.push_back(t);
		if (base.text[f] && !base.text[f]->empty())
		{
			t = base;
			(*t.text[f])[0] ^= 1;
			variants.push_back(t);
			t = base;
			t.text[f]->push_back(' ');
			variants.push_back(t);
		}
	}

	std::set<Digest> seen{base_hash};

	for (const auto &t : variants)
		seen.insert(h.hash(t));
	/* every variant differs from the base and from every other variant */
	EXPECT_EQ(seen.size(), variants.size() + 1);
}

/* ---- Errors from the C API ----------------------------------------------- */

TEST(Errors, UnsupportedFormatIsRejected)
{
	Hasher		h;

	for (uint16_t format : {0, 3, 0xffff})
	{
		TestEntry	t = vector1();
		sa_entry	e;
		uint8_t		out[SA_DIGEST_LEN];
		const uint8_t *p = nullptr;
		size_t		n = 0;

		t.format = format;
		e = t.view();
		EXPECT_EQ(sa_entry_hash(h.get(), &e, out), SA_ERR_FORMAT);
		EXPECT_EQ(sa_entry_encode(h.get(), &e, &p, &n), SA_ERR_FORMAT);
	}
}

TEST(Errors, BadArgumentsAreReportedNotCrashed)
{
	Hasher		h;
	TestEntry	t = vector1();
	sa_entry	e = t.view();
	uint8_t		out[SA_DIGEST_LEN];
	const uint8_t *p = nullptr;
	size_t		n = 0;

	EXPECT_EQ(sa_entry_hash(nullptr, &e, out), SA_ERR_INTERNAL);
	EXPECT_EQ(sa_entry_hash(h.get(), nullptr, out), SA_ERR_INTERNAL);
	EXPECT_EQ(sa_entry_hash(h.get(), &e, nullptr), SA_ERR_INTERNAL);
	EXPECT_EQ(sa_entry_encode(h.get(), &e, nullptr, &n), SA_ERR_INTERNAL);
	EXPECT_EQ(sa_entry_encode(h.get(), &e, &p, nullptr), SA_ERR_INTERNAL);

	/* present, non-empty, but no data */
	e.new_value.data = nullptr;
	EXPECT_EQ(sa_entry_hash(h.get(), &e, out), SA_ERR_INTERNAL);

	/* the hasher is still usable after an error */
	e = t.view();
	ASSERT_EQ(sa_entry_hash(h.get(), &e, out), SA_OK);
	EXPECT_EQ(to_hex(out, SA_DIGEST_LEN), kVector1Hash);

	sa_hasher_destroy(nullptr);	/* allowed, like free(NULL) */
}

/* A stale error left by other code in the backend does not survive a hash. */
TEST(Errors, HashingClearsTheOpenSslErrorQueue)
{
	Hasher		h;
	TestEntry	t = vector1();
	sa_entry	e = t.view();
	uint8_t		out[SA_DIGEST_LEN];

	ERR_raise(ERR_LIB_EVP, ERR_R_PASSED_NULL_PARAMETER);
	ASSERT_NE(ERR_peek_error(), 0u);
	ASSERT_EQ(sa_entry_hash(h.get(), &e, out), SA_OK);
	EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(Errors, StrerrorCoversEveryCode)
{
	for (int code : {SA_OK, SA_ERR_NOMEM, SA_ERR_CRYPTO, SA_ERR_FORMAT, SA_ERR_INTERNAL, 999})
	{
		ASSERT_NE(sa_strerror(code), nullptr);
		EXPECT_GT(std::string(sa_strerror(code)).size(), 0u);
	}
	EXPECT_STRNE(sa_strerror(SA_ERR_FORMAT), sa_strerror(999));
}

}								/* namespace */
