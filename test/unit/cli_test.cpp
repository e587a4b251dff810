/*
 * cli_test.cpp — the command-line program's parts that need no database:
 * the scan (verification, trees, resuming from a checkpoint), bundles and
 * proof files (round trips, and refusal of anything altered or not in the
 * canonical form), and the core's ChainVerifier::resume_chain.
 */
#include "core/cpp_only.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <unistd.h>
#include <vector>

#include "cli/files.hpp"
#include "cli/scan.hpp"
#include "core/merkle.hpp"
#include "core/sa_core.h"

using namespace sa_cli;
using sensitive_audit::Digest;

namespace
{

/* One stored context and entries that point to it, hashed with the core. */
struct Log
{
	std::string ctx[kContextFields] = {"UPDATE", "public", "t", "secret", "primary key", "text",
		"alice", "alice", "psql", "192.0.2.10"};
	struct Row
	{
		uint32_t	chain;
		uint64_t	seq;
		std::string row_key, old_value, new_value;
		Digest		prev{}, hash{};
	};
	std::vector<Row> rows;

	Digest		hash_of(const Row &r) const
	{
		auto		b = [](const std::string &s) { return sa_bytes{s.data(), s.size(), 0}; };
		sa_entry	e{};

		e.format = 1;
		e.chain = r.chain;
		e.seq = r.seq;
		e.txid = 1000 + r.seq;
		e.event_time = 1704164645123456 + static_cast<int64_t>(r.seq);
		e.operation = b(ctx[0]);
		e.table_schema = b(ctx[1]);
		e.table_name = b(ctx[2]);
		e.column_name = b(ctx[3]);
		e.row_key = b(r.row_key);
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

	void		append(uint32_t chain, int n)
	{
		Digest		prev{};
		uint64_t	seq = 0;

		for (const auto &r : rows)
			if (r.chain == chain)
			{
				prev = r.hash;
				seq = r.seq;
			}
		for (int i = 0; i < n; i++)
		{
			Row			r{chain, ++seq, "{\"id\": \"" + std::to_string(seq) + "\"}", "old", "new " + std::to_string(seq)};

			r.prev = prev;
			r.hash = hash_of(r);
			prev = r.hash;
			rows.push_back(r);
		}
	}

	static Field f(const std::string &s) { return Field{s.data(), s.size(), false}; }

	EntryRow	entry(const Row &r) const
	{
		EntryRow	e;

		e.chain = r.chain;
		e.seq = r.seq;
		e.txid = 1000 + r.seq;
		e.event_time = 1704164645123456 + static_cast<int64_t>(r.seq);
		e.context = 7;
		e.format = 1;
		e.row_key = f(r.row_key);
		e.old_value = f(r.old_value);
		e.new_value = f(r.new_value);
		e.backend_pid = 4242;
		e.prev_hash = Field{reinterpret_cast<const char *>(r.prev.data()), 32, false};
		e.hash = Field{reinterpret_cast<const char *>(r.hash.data()), 32, false};
		return e;
	}

	void		contexts(LogScanner &s) const
	{
		Field		fields[kContextFields];

		for (int i = 0; i < kContextFields; i++)
			fields[i] = f(ctx[i]);
		s.add_context(7, fields);
	}

	Digest		root(uint32_t chain, uint64_t size) const
	{
		std::vector<Digest> leaves;

		for (const auto &r : rows)
			if (r.chain == chain && r.seq <= size)
			{
				Digest		l;

				sensitive_audit::hash_entry_leaf(r.hash.data(), l);
				leaves.push_back(l);
			}
		Digest		out;

		sensitive_audit::tree_root(leaves.data(), leaves.size(), out);
		return out;
	}
};

std::string
temp_path(const char *name)
{
	return std::string("/tmp/sa_cli_test_") + std::to_string(::getpid()) + "_" + name;
}

}								/* namespace */

TEST(CliScan, CleanLogVerifiesAndRebuildsEveryTree)
{
	Log			log;

	log.append(0, 10);
	log.append(2, 5);
	LogScanner	s;

	log.contexts(s);
	s.want_root(0, 6);
	for (const auto &r : log.rows)
		s.feed(log.entry(r));
	s.finish();
	ASSERT_EQ(s.chains().size(), 2u);
	EXPECT_EQ(s.entries_verified(), 15u);
	const ChainOutcome *c0 = s.chain(0);

	ASSERT_NE(c0, nullptr);
	EXPECT_TRUE(c0->ok);
	EXPECT_EQ(c0->good_size, 10u);
	EXPECT_EQ(c0->root, log.root(0, 10));
	ASSERT_EQ(c0->roots.count(6), 1u);
	EXPECT_EQ(c0->roots.at(6), log.root(0, 6));
	EXPECT_EQ(s.chain(2)->root, log.root(2, 5));
}

TEST(CliScan, EditedEntryFailsAndStopsTheTree)
{
	Log			log;

	log.append(1, 8);
	log.rows[4].new_value = "tampered";
	LogScanner	s;

	log.contexts(s);
	for (const auto &r : log.rows)
		s.feed(log.entry(r));
	s.finish();
	const ChainOutcome *c = s.chain(1);

	ASSERT_NE(c, nullptr);
	EXPECT_FALSE(c->ok);
	EXPECT_EQ(c->first_bad_seq, 5u);
	EXPECT_EQ(c->problem.rfind("content changed", 0), 0u) << c->problem;
	EXPECT_EQ(c->good_size, 4u);
	EXPECT_EQ(c->entries, 8u);
	EXPECT_EQ(c->root, log.root(1, 4));
}

TEST(CliScan, DuplicatedContextIdFailsItsEntries)
{
	Log			log;

	log.append(0, 3);
	LogScanner	s;

	log.contexts(s);
	log.contexts(s);			/* the same id stored twice */
	for (const auto &r : log.rows)
		s.feed(log.entry(r));
	s.finish();
	EXPECT_FALSE(s.chain(0)->ok);
	EXPECT_EQ(s.chain(0)->first_bad_seq, 1u);
}

/* A scan resumed from a checkpoint's saved tree reaches the same root. */
TEST(CliScan, ResumeFromCheckpointMatchesFullScan)
{
	Log			log;

	log.append(0, 13);
	LogScanner	first;

	log.contexts(first);
	for (const auto &r : log.rows)
		if (r.seq <= 6)
			first.feed(log.entry(r));
	first.finish();
	const ChainOutcome at6 = *first.chain(0);

	ASSERT_TRUE(at6.ok);
	ChainResume resume{0, 6, at6.last_hash, at6.subtrees};

	LogScanner	again;

	log.contexts(again);
	again.resume(resume);
	for (const auto &r : log.rows)
		if (r.seq >= 6)
			again.feed(log.entry(r));
	again.finish();
	EXPECT_TRUE(again.chain(0)->ok) << again.chain(0)->problem;
	EXPECT_EQ(again.chain(0)->good_size, 13u);
	EXPECT_EQ(again.chain(0)->root, log.root(0, 13));
	EXPECT_EQ(again.entries_verified(), 7u);	/* only the new entries re-hashed */

	/* The entry at the resume point rewritten (hash recomputed): refused. */
	Log			forged = log;

	forged.rows[5].new_value = "forged";
	forged.rows[5].hash = forged.hash_of(forged.rows[5]);
	LogScanner	f;

	forged.contexts(f);
	f.resume(resume);
	for (const auto &r : forged.rows)
		if (r.seq >= 6)
			f.feed(forged.entry(r));
	f.finish();
	EXPECT_FALSE(f.chain(0)->ok);
	EXPECT_EQ(f.chain(0)->first_bad_seq, 6u);
	EXPECT_EQ(f.chain(0)->problem.rfind("rewritten", 0), 0u) << f.chain(0)->problem;

	/* The tail cut below the resume point: refused. */
	LogScanner	cut;

	log.contexts(cut);
	cut.resume(resume);
	cut.finish();
	EXPECT_FALSE(cut.chain(0)->ok);
	EXPECT_EQ(cut.chain(0)->problem.rfind("cut", 0), 0u) << cut.chain(0)->problem;

	/* An entry after the resume point edited: the core's checks apply. */
	Log			edited = log;

	edited.rows[8].old_value = "x";
	LogScanner	e;

	edited.contexts(e);
	e.resume(resume);
	for (const auto &r : edited.rows)
		if (r.seq >= 6)
			e.feed(edited.entry(r));
	e.finish();
	EXPECT_FALSE(e.chain(0)->ok);
	EXPECT_EQ(e.chain(0)->first_bad_seq, 9u);
}

TEST(CliCore, ResumeChainContinuesTheLink)
{
	Log			log;

	log.append(3, 4);
	sensitive_audit::ChainVerifier v;

	v.resume_chain(3, 2, log.rows[1].hash.data());
	for (size_t i = 2; i < 4; i++)
	{
		EntryRow	r = log.entry(log.rows[i]);
		auto		b = [](const Field &f) { return sa_bytes{f.data, f.len, 0}; };
		sa_entry	e{};

		e.format = 1;
		e.chain = 3;
		e.seq = r.seq;
		e.txid = r.txid;
		e.event_time = r.event_time;
		e.operation = sa_bytes{log.ctx[0].data(), log.ctx[0].size(), 0};
		e.table_schema = sa_bytes{log.ctx[1].data(), log.ctx[1].size(), 0};
		e.table_name = sa_bytes{log.ctx[2].data(), log.ctx[2].size(), 0};
		e.column_name = sa_bytes{log.ctx[3].data(), log.ctx[3].size(), 0};
		e.row_key = b(r.row_key);
		e.row_key_source = sa_bytes{log.ctx[4].data(), log.ctx[4].size(), 0};
		e.old_value = b(r.old_value);
		e.new_value = b(r.new_value);
		e.value_type = sa_bytes{log.ctx[5].data(), log.ctx[5].size(), 0};
		e.session_role = sa_bytes{log.ctx[6].data(), log.ctx[6].size(), 0};
		e.effective_role = sa_bytes{log.ctx[7].data(), log.ctx[7].size(), 0};
		e.application_name = sa_bytes{log.ctx[8].data(), log.ctx[8].size(), 0};
		e.client_addr = sa_bytes{log.ctx[9].data(), log.ctx[9].size(), 0};
		e.backend_pid = 4242;
		std::memcpy(e.prev_hash, log.rows[i].prev.data(), 32);
		v.feed(e, log.rows[i].hash.data(), 32);
		EXPECT_TRUE(v.last_passed()) << "seq " << r.seq;
	}
	v.finish();
	EXPECT_EQ(v.result(0).ok, 1);
	EXPECT_EQ(v.result(0).entries, 2u);
}

TEST(CliBundle, RoundTripAndEveryByteMatters)
{
	Log			log;

	log.append(0, 3);
	const std::string path = temp_path("bundle");

	std::remove(path.c_str());
	{
		BundleWriter w(path, "3f0c8a52-7b1e-4d6a-9c2f-81e4b7d05a63");
		Field		fields[kContextFields];

		for (int i = 0; i < kContextFields; i++)
			fields[i] = Log::f(log.ctx[i]);
		fields[9] = Field{};		/* client_addr NULL */
		w.checkpoint(StoredCheckpoint{1, "note\n"});
		w.context(7, fields);
		for (const auto &r : log.rows)
			w.entry(log.entry(r));
		w.finish();
	}
	EXPECT_THROW(BundleWriter(path, "x"), Failure);	/* never overwrites */

	auto		read = [&](const std::string &p, std::vector<std::string> &seen) {
		BundleSink	s;

		s.header = [&](const std::string &id) { seen.push_back("header " + id); };
		s.checkpoint = [&](const StoredCheckpoint &c) { seen.push_back("checkpoint " + c.note); };
		s.context = [&](int64_t id, const Field (&f)[kContextFields]) {
			seen.push_back("context " + std::to_string(id) + (f[9].null ? " null" : " addr"));
		};
		s.contexts_done = [&]() { seen.push_back("done"); };
		s.entry = [&](const EntryRow &e) {
			seen.push_back("entry " + std::to_string(e.seq) + " " + std::string(e.new_value.data, e.new_value.len) +
						   " " + to_hex(reinterpret_cast<const uint8_t *>(e.hash.data), e.hash.len));
		};
		read_bundle(p, s);
	};
	std::vector<std::string> seen;

	read(path, seen);
	ASSERT_EQ(seen.size(), 7u);
	EXPECT_EQ(seen[0], "header 3f0c8a52-7b1e-4d6a-9c2f-81e4b7d05a63");
	EXPECT_EQ(seen[1], "checkpoint note\n");
	EXPECT_EQ(seen[2], "context 7 null");
	EXPECT_EQ(seen[3], "done");
	EXPECT_EQ(seen[6], "entry 3 new 3 " + to_hex(log.rows[2].hash.data(), 32));

	std::ifstream in(path, std::ios::binary);
	std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
	const std::string edited = temp_path("edited");

	/* Every single byte changed makes the bundle unreadable (exit status 2). */
	for (size_t pos = 0; pos < data.size(); pos++)
	{
		std::string d = data;

		d[pos] = d[pos] == 'x' ? 'y' : 'x';
		{
			std::ofstream out(edited, std::ios::binary | std::ios::trunc);

			out << d;
		}
		std::vector<std::string> ignored;

		try
		{
			read(edited, ignored);
			ADD_FAILURE() << "byte " << pos << " changed, bundle still read";
		}
		catch (const Failure &f)
		{
			EXPECT_EQ(f.status(), kExitCannotVerify);
		}
	}
	/* Cut short anywhere: unreadable. */
	for (size_t keep : {size_t{0}, data.size() / 3, data.size() - 1})
	{
		{
			std::ofstream out(edited, std::ios::binary | std::ios::trunc);

			out << data.substr(0, keep);
		}
		std::vector<std::string> ignored;

		EXPECT_THROW(read(edited, ignored), Failure) << "kept " << keep;
	}
	std::remove(edited.c_str());
	std::remove(path.c_str());
}

/* FORMAT.md section 7, vector 1, through the proof file's entry. */
TEST(CliProof, EntryHashIsFormatVectorOne)
{
	ProofEntry	e;

	e.format = 1;
	e.chain = 3;
	e.seq = 1;
	e.txid = 748;
	e.event_time = 1704164645123456;
	e.texts = {std::string("INSERT"), std::string("public"), std::string("patients"), std::string("ssn"),
		std::string("{\"id\": \"5\"}"), std::string("primary key"), std::nullopt, std::string("123-45-6789"),
		std::string("text"), std::string("alice"), std::string("alice"), std::string("psql"),
		std::string("192.0.2.10")};
	e.backend_pid = 4242;
	Digest		h = proof_entry_hash(e);

	EXPECT_EQ(to_hex(h.data(), 32), "7aaeec14c91dc012352e5aa5ef579fc5176a9dd79bebcc1f25b891478a5b5763");
}

TEST(CliProof, RoundTripAndCanonicalFormOnly)
{
	Proof		p;

	p.log_id = "3f0c8a52-7b1e-4d6a-9c2f-81e4b7d05a63";
	p.entry.chain = 3;
	p.entry.seq = 2;
	p.entry.txid = 9;
	p.entry.event_time = -5;
	p.entry.texts.assign(13, std::nullopt);
	p.entry.texts[0] = "UPDATE";
	p.entry.texts[7] = "line\nbreak \"quoted\" K\xc3\xb6ln";
	p.entry.backend_pid = -1;
	p.leaf_index = 1;
	p.tree_size = 3;
	p.path = {Digest{}, Digest{}};
	p.checkpoint = "body\n\n\xe2\x80\x94 key sig\n";
	p.record_index = 0;
	p.record_count = 1;
	const std::string text = encode_proof(p);
	Proof		q = parse_proof(text);

	EXPECT_EQ(encode_proof(q), text);
	EXPECT_EQ(q.entry.texts[7], p.entry.texts[7]);
	EXPECT_EQ(q.entry.event_time, -5);
	EXPECT_EQ(q.entry.backend_pid, -1);

	auto		rejected = [](const std::string &t) {
		try
		{
			parse_proof(t);
		}
		catch (const Failure &f)
		{
			return f.status() == kExitCannotVerify;
		}
		return false;
	};
	EXPECT_TRUE(rejected(""));
	EXPECT_TRUE(rejected(text.substr(0, text.size() - 1)));	/* no final line feed */
	EXPECT_TRUE(rejected(" " + text));	/* whitespace */
	std::string lead = text;

	lead.replace(lead.find("\"leaf_index\":\"1\""), 16, "\"leaf_index\":\"01\"");
	EXPECT_TRUE(rejected(lead));	/* leading zero */
	std::string ver = text;

	ver.replace(ver.find("\"version\":\"1\""), 13, "\"version\":\"2\"");
	EXPECT_TRUE(rejected(ver));	/* unknown version */
	std::string num = text;

	num.replace(num.find("\"tree_size\":\"3\""), 15, "\"tree_size\":3");
	EXPECT_TRUE(rejected(num));	/* a JSON number */
}
