/*
 * decrypt_test.cpp — `sensitive-audit decrypt` without a database: format
 * 2 logs made with the core (values sealed to the test vectors' key and to
 * another, fingerprints, NULLs), written as a bundle with BundleWriter,
 * read back with read_bundle and fed to Decryption, as the program does
 * with --bundle.  The output lines, the summary and the exit status are
 * checked for an intact log, a wrong key, a sealed value that does not
 * authenticate, a chain that fails, and an empty log.
 */
#include "core/cpp_only.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <unistd.h>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/decrypt.hpp"
#include "cli/files.hpp"
#include "core/protect.hpp"
#include "core/sa_core.h"
#include "test_support.hpp"

using namespace sa_cli;
using sensitive_audit::Digest;
using sensitive_audit::X25519Opener;

namespace
{

const char kRecipientPrivatePem[] =
	"-----BEGIN PRIVATE KEY-----\n"
	"MC4CAQAwBQYDK2VuBCIEIEBBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5f\n"
	"-----END PRIVATE KEY-----\n";
const char kRecipientPublicHex[] = "79a631eede1bf9c98f12032cdeadd0e7a079398fc786b88cc846ec89af85a51a";
const char kKeyIdHex[] = "67ca2ffd6fe9efab";
const char kOtherPrivatePem[] =
	"-----BEGIN PRIVATE KEY-----\n"
	"MC4CAQAwBQYDK2VuBCIEIECTB0c03tQTnn3cRA/8gvpHEQqPNwlMsgT4/X1bt7FR\n"
	"-----END PRIVATE KEY-----\n";

std::string
seal_to(const std::vector<uint8_t> &pub, const std::string &v)
{
	sa_sealer  *s = sa_sealer_create(pub.data());
	std::string out(sa_sealed_text_len(v.size()) + 1, '\0');
	size_t		n = 0;

	EXPECT_NE(s, nullptr);
	EXPECT_EQ(sa_seal_text(s, v.data(), v.size(), out.data(), out.size(), &n), SA_OK);
	sa_sealer_destroy(s);
	out.resize(n);
	return out;
}

std::vector<uint8_t>
other_public()
{
	X25519Opener o;

	EXPECT_EQ(o.load_private_pem(kOtherPrivatePem), SA_OK);
	return std::vector<uint8_t>(o.public_key().begin(), o.public_key().end());
}

/* A log of one chain of format 2 entries, hashed and linked with the core. */
struct Log
{
	std::string ctx[kContextFields] = {"UPDATE", "public", "patients", "ssn", "primary key", "text",
		"alice", "alice", "psql", "192.0.2.10"};
	struct Row
	{
		uint64_t	seq;
		std::optional<std::string> old_value, new_value;
		Digest		prev{}, hash{};
		uint16_t	format = SA_FORMAT_PROTECTED;
	};
	std::vector<Row> rows;

	static sa_bytes b(const std::optional<std::string> &s)
	{
		return s ? sa_bytes{s->data(), s->size(), 0} : sa_bytes{nullptr, 0, 1};
	}
	static sa_bytes b(const std::string &s) { return sa_bytes{s.data(), s.size(), 0}; }

	Digest		hash_of(const Row &r) const
	{
		sa_entry	e{};
		const std::string rk = "{\"id\": \"" + std::to_string(r.seq) + "\"}";

		e.format = r.format;
		e.chain = 5;
		e.seq = r.seq;
		e.txid = 1000 + r.seq;
		e.event_time = 1704164645123456 + static_cast<int64_t>(r.seq);
		e.operation = b(ctx[0]);
		e.table_schema = b(ctx[1]);
		e.table_name = b(ctx[2]);
		e.column_name = b(ctx[3]);
		e.row_key = b(rk);
		e.row_key_source = b(ctx[4]);
		e.old_value = b(r.old_value);
		e.new_value = b(r.new_value);
		e.value_type = b(ctx[5]);
		e.session_role = b(ctx[6]);
		e.effective_role = b(ctx[7]);
		e.application_name = b(ctx[8]);
		e.client_addr = b(ctx[9]);
		e.backend_pid = 4242;
		std::memcpy(e.prev_hash, r.prev.data(), 32);
		sa_hasher  *h = sa_hasher_create();
		Digest		d;

		EXPECT_EQ(sa_entry_hash(h, &e, d.data()), SA_OK);
		sa_hasher_destroy(h);
		return d;
	}

	void		add(std::optional<std::string> old_value, std::optional<std::string> new_value,
					uint16_t format = SA_FORMAT_PROTECTED)
	{
		Row			r{rows.size() + 1, std::move(old_value), std::move(new_value)};

		r.format = format;
		if (!rows.empty())
			r.prev = rows.back().hash;
		r.hash = hash_of(r);
		rows.push_back(r);
	}

	/* Writes the log as a bundle at path. */
	void		write(const std::string &path) const
	{
		BundleWriter w(path, "3f0c8a52-7b1e-4d6a-9c2f-81e4b7d05a63");
		Field		fields[kContextFields];

		for (int i = 0; i < kContextFields; i++)
			fields[i] = Field{ctx[i].data(), ctx[i].size(), false};
		w.context(7, fields);
		for (const auto &r : rows)
		{
			EntryRow	e;
			const std::string rk = "{\"id\": \"" + std::to_string(r.seq) + "\"}";
			auto		f = [](const std::optional<std::string> &s) {
				return s ? Field{s->data(), s->size(), false} : Field{};
			};

			e.chain = 5;
			e.seq = r.seq;
			e.txid = 1000 + r.seq;
			e.event_time = 1704164645123456 + static_cast<int64_t>(r.seq);
			e.context = 7;
			e.format = r.format;
			e.row_key = Field{rk.data(), rk.size(), false};
			e.old_value = f(r.old_value);
			e.new_value = f(r.new_value);
			e.backend_pid = 4242;
			e.prev_hash = Field{reinterpret_cast<const char *>(r.prev.data()), 32, false};
			e.hash = Field{reinterpret_cast<const char *>(r.hash.data()), 32, false};
			w.entry(e);
		}
		w.finish();
	}
};

struct Outcome
{
	int			status = -1;
	std::vector<std::string> lines;
	std::string summary;
};

/* decrypt --bundle, with the key given as PEM text. */
Outcome
decrypt_bundle(const Log &log, const char *pem, bool as_json)
{
	const std::string path = "/tmp/sa_decrypt_test_" + std::to_string(::getpid()) + ".bundle";
	Outcome		o;
	X25519Opener key;

	::unlink(path.c_str());
	log.write(path);
	EXPECT_EQ(key.load_private_pem(pem), SA_OK);

	Decryption	d(key, as_json, [&](const std::string &l) { o.lines.push_back(l); });
	BundleSink	sink;

	sink.header = [](const std::string &) {};
	sink.checkpoint = [](const StoredCheckpoint &) {};
	sink.context = [&](int64_t id, const Field (&f)[kContextFields]) { d.add_context(id, f); };
	sink.contexts_done = []() {};
	sink.entry = [&](const EntryRow &r) { d.feed(r); };
	read_bundle(path, sink);
	o.status = d.finish(o.summary);
	::unlink(path.c_str());
	return o;
}

bool
contains(const std::string &s, const std::string &part)
{
	return s.find(part) != std::string::npos;
}

Log
mixed_log()
{
	std::vector<uint8_t> me = sa_test::from_hex(kRecipientPublicHex);
	char		fp[SA_FINGERPRINT_TEXT_LEN + 1];
	uint8_t		fkey[32] = {1};
	Log			log;

	sa_fingerprint_text(fkey, "x", 1, fp);
	log.add(std::nullopt, seal_to(me, "123-45-6789"));
	log.add(seal_to(me, "123-45-6789"), seal_to(me, "Gr\xC3\xBC\xC3\x9F" "e \"quoted\"\n"));
	log.add(std::string(fp), std::nullopt);
	log.add(seal_to(other_public(), "rotated away"), seal_to(me, ""));
	log.add(std::string("plain, format 1"), std::string("x25519-aes256gcm:not really"), SA_FORMAT_VERSION);
	return log;
}

}								/* namespace */

TEST(Decrypt, JsonLinesCarryTheClearValues)
{
	Outcome		o = decrypt_bundle(mixed_log(), kRecipientPrivatePem, true);

	EXPECT_EQ(o.status, kExitOk) << o.summary;
	ASSERT_EQ(o.lines.size(), 5u);

	std::vector<nlohmann::json> j;

	for (const auto &l : o.lines)
	{
		ASSERT_EQ(l.back(), '\n');
		j.push_back(nlohmann::json::parse(l));
		EXPECT_EQ(j.back().dump() + "\n", l);	/* canonical */
		EXPECT_EQ(j.back()["verified"], "true");
		EXPECT_EQ(j.back()["type"], "entry");
		EXPECT_EQ(j.back()["column_name"], "ssn");
	}
	EXPECT_TRUE(j[0]["old_clear"].is_null());
	EXPECT_EQ(j[0]["new_clear"], "123-45-6789");
	EXPECT_EQ(j[0]["format"], "2");
	EXPECT_EQ(j[0]["seq"], "1");
	EXPECT_EQ(j[1]["old_clear"], "123-45-6789");
	EXPECT_EQ(j[1]["new_clear"], "Gr\xC3\xBC\xC3\x9F" "e \"quoted\"\n");
	EXPECT_TRUE(j[2]["old_clear"].is_null());	/* a fingerprint is shown as stored */
	EXPECT_EQ(j[2]["old_value"].get<std::string>().rfind("hmac-sha256:", 0), 0u);
	EXPECT_TRUE(j[3]["old_clear"].is_null());	/* sealed to another key */
	EXPECT_EQ(j[3]["new_clear"], "");
	EXPECT_TRUE(j[4]["new_clear"].is_null());	/* format 1: clear text already */
	EXPECT_EQ(j[4]["old_value"], "plain, format 1");

	EXPECT_TRUE(contains(o.summary, "read 5 entries in 1 chains, every hash and link verified; "
						 "decrypted 4 values sealed to key " + std::string(kKeyIdHex))) << o.summary;
	X25519Opener other;

	ASSERT_EQ(other.load_private_pem(kOtherPrivatePem), SA_OK);
	EXPECT_TRUE(contains(o.summary, "1 values sealed to other keys are shown as stored: " +
						 sensitive_audit::key_id_hex(other.key_id()) + " (1)")) << o.summary;
}

TEST(Decrypt, TextLines)
{
	Outcome		o = decrypt_bundle(mixed_log(), kRecipientPrivatePem, false);

	EXPECT_EQ(o.status, kExitOk) << o.summary;
	ASSERT_EQ(o.lines.size(), 5u);
	EXPECT_EQ(o.lines[0], "chain 5 seq 1  2024-01-02T03:04:05Z  UPDATE public.patients.ssn  row {\"id\": \"1\"}"
			  "  old: NULL  new: \"123-45-6789\"\n");
	EXPECT_TRUE(contains(o.lines[1], "old: \"123-45-6789\"  new: \"Gr\xC3\xBC\xC3\x9F" "e \\\"quoted\\\"\\n\"\n"))
		<< o.lines[1];
	EXPECT_TRUE(contains(o.lines[3], "old: [sealed to key ")) << o.lines[3];
	EXPECT_TRUE(contains(o.lines[3], "new: \"\"\n")) << o.lines[3];
}

TEST(Decrypt, WrongKeyIsExitTwoAndNamesTheKeys)
{
	std::vector<uint8_t> me = sa_test::from_hex(kRecipientPublicHex);
	Log			log;

	log.add(std::nullopt, seal_to(me, "123-45-6789"));
	log.add(seal_to(me, "123-45-6789"), std::nullopt);

	Outcome		o = decrypt_bundle(log, kOtherPrivatePem, true);
	X25519Opener other;

	ASSERT_EQ(other.load_private_pem(kOtherPrivatePem), SA_OK);
	EXPECT_EQ(o.status, kExitCannotVerify);
	EXPECT_TRUE(contains(o.summary, "no value is sealed to the key given (key id " +
						 sensitive_audit::key_id_hex(other.key_id()) + "); the log's 2 sealed values are "
						 "sealed to key id " + kKeyIdHex + " (2)")) << o.summary;
	for (const auto &l : o.lines)
		EXPECT_FALSE(contains(l, "123-45-6789")) << l;
}

TEST(Decrypt, ValueThatDoesNotAuthenticateIsExitOne)
{
	std::vector<uint8_t> me = sa_test::from_hex(kRecipientPublicHex);
	std::string sealed = seal_to(me, "123-45-6789");

	/* A changed last base64 group (in the tag), hashed into the chain as if written so. */
	sealed[sealed.size() - 6] = sealed[sealed.size() - 6] == 'A' ? 'B' : 'A';
	Log			log;

	log.add(std::nullopt, seal_to(me, "fine"));
	log.add(std::nullopt, sealed);

	Outcome		o = decrypt_bundle(log, kRecipientPrivatePem, false);

	EXPECT_EQ(o.status, kExitTampered);
	ASSERT_EQ(o.lines.size(), 2u);
	EXPECT_TRUE(contains(o.lines[0], "new: \"fine\""));
	EXPECT_TRUE(contains(o.lines[1], "new: [NOT AUTHENTIC")) << o.lines[1];
	EXPECT_TRUE(contains(o.summary, "FAILED: 1 values sealed to key " + std::string(kKeyIdHex) +
						 " do not authenticate (altered), the first at chain 5 seq 2 new_value")) << o.summary;
}

TEST(Decrypt, ChainThatFailsIsExitOneAndShowsNothingDecrypted)
{
	std::vector<uint8_t> me = sa_test::from_hex(kRecipientPublicHex);
	Log			log;

	log.add(std::nullopt, seal_to(me, "one"));
	log.add(std::nullopt, seal_to(me, "two"));
	log.add(std::nullopt, seal_to(me, "three"));
	/* Entry 2's value replaced by another sealed value, its hash left alone. */
	log.rows[1].new_value = seal_to(me, "forged");

	Outcome		o = decrypt_bundle(log, kRecipientPrivatePem, true);

	EXPECT_EQ(o.status, kExitTampered);
	ASSERT_EQ(o.lines.size(), 3u);
	EXPECT_TRUE(contains(o.lines[0], "\"new_clear\":\"one\""));
	EXPECT_TRUE(contains(o.lines[0], "\"verified\":\"true\""));
	for (int i : {1, 2})
	{
		EXPECT_TRUE(contains(o.lines[i], "\"new_clear\":null")) << o.lines[i];
		EXPECT_TRUE(contains(o.lines[i], "\"verified\":\"false\"")) << o.lines[i];
		EXPECT_FALSE(contains(o.lines[i], "forged"));
		EXPECT_FALSE(contains(o.lines[i], "three"));
	}
	EXPECT_TRUE(contains(o.summary, "FAILED: chain 5: first bad entry seq 2: content changed")) << o.summary;
	EXPECT_TRUE(contains(o.summary, "FAILED: 2 of 3 entries could not be verified")) << o.summary;

	Outcome		t = decrypt_bundle(log, kRecipientPrivatePem, false);

	EXPECT_EQ(t.status, kExitTampered);
	EXPECT_EQ(t.lines[1].rfind("UNVERIFIED chain 5 seq 2 ", 0), 0u) << t.lines[1];
	EXPECT_TRUE(contains(t.lines[1], "new: \"x25519-aes256gcm:")) << t.lines[1];
}

TEST(Decrypt, EmptyLogIsExitTwo)
{
	Outcome		o = decrypt_bundle(Log(), kRecipientPrivatePem, false);

	EXPECT_EQ(o.status, kExitCannotVerify);
	EXPECT_TRUE(o.lines.empty());
	EXPECT_TRUE(contains(o.summary, "the log holds no entry")) << o.summary;
}

TEST(Decrypt, LogWithoutSealedValuesIsExitZero)
{
	Log			log;

	log.add(std::string("a"), std::string("b"), SA_FORMAT_VERSION);
	Outcome		o = decrypt_bundle(log, kRecipientPrivatePem, false);

	EXPECT_EQ(o.status, kExitOk) << o.summary;
	EXPECT_TRUE(contains(o.lines.at(0), "old: \"a\"  new: \"b\""));
}

TEST(Decrypt, KeyFileMustBeAnX25519PrivateKey)
{
	const std::string path = "/tmp/sa_decrypt_test_key_" + std::to_string(::getpid());
	X25519Opener o;

	for (const char *text : {"-----BEGIN PUBLIC KEY-----\n"
			 "MCowBQYDK2VuAyEAeaYx7t4b+cmPEgMs3q3Q56B5OY/HhriMyEbsia+FpRo=\n"
			 "-----END PUBLIC KEY-----\n", "garbage\n"})
	{
		::unlink(path.c_str());
		write_new_file(path, text, 0600);
		try
		{
			load_x25519_private_key(path, o);
			ADD_FAILURE() << "accepted " << text;
		}
		catch (const Failure &f)
		{
			EXPECT_EQ(f.status(), kExitCannotVerify);
			EXPECT_TRUE(contains(f.what(), "not an unencrypted X25519 private key")) << f.what();
			EXPECT_FALSE(contains(f.what(), "MCow"));	/* never echoes key material */
		}
	}
	::unlink(path.c_str());
	EXPECT_THROW(load_x25519_private_key(path, o), Failure);	/* missing */
	write_new_file(path, kRecipientPrivatePem, 0600);
	EXPECT_NO_THROW(load_x25519_private_key(path, o));
	EXPECT_EQ(sensitive_audit::key_id_hex(o.key_id()), kKeyIdHex);
	::unlink(path.c_str());
}

TEST(CliProofFormat2, EntryHashIsTheFormat2VectorAndOtherFormatsAreRefused)
{
	Proof		p;

	p.log_id = "3f0c8a52-7b1e-4d6a-9c2f-81e4b7d05a63";
	p.entry.format = SA_FORMAT_PROTECTED;
	p.entry.chain = 3;
	p.entry.seq = 1;
	p.entry.txid = 748;
	p.entry.event_time = 1704164645123456;
	p.entry.texts = {std::string("INSERT"), std::string("public"), std::string("patients"), std::string("ssn"),
		std::string("{\"id\": \"5\"}"), std::string("primary key"), std::nullopt,
		std::string("x25519-aes256gcm:Z8ov/W/p76tnXdV07XeJMQs9LnaB83kLRmx3OxUh/s82V3lYNx6lL6ChoqOkpaanqKmqq9WOIdAyGx48YD2nEgduOvqTbETvZ6ziMC2FNQ=="),
		std::string("text"), std::string("alice"), std::string("alice"), std::string("psql"),
		std::string("192.0.2.10")};
	p.entry.backend_pid = 4242;
	/* FORMAT.md 11.6, entry 1 */
	EXPECT_EQ(sa_test::to_hex(proof_entry_hash(p.entry)),
			  "b47951aad3706e789f15e7dc10bc959bb52ef8021ef3c31cb5d77773b18b069c");

	p.entry_hash = proof_entry_hash(p.entry);
	p.tree_size = 1;
	p.checkpoint = "body\n\n\xe2\x80\x94 key sig\n";
	p.record_count = 1;
	const std::string text = encode_proof(p);
	Proof		q = parse_proof(text);

	EXPECT_EQ(q.entry.format, SA_FORMAT_PROTECTED);
	EXPECT_EQ(encode_proof(q), text);

	std::string v3 = text;

	v3.replace(v3.find("\"format\":\"2\""), 12, "\"format\":\"3\"");
	EXPECT_THROW(parse_proof(v3), Failure);
}
