/*
 * throughput_test.cpp — prints how fast the core hashes and verifies.
 *
 * Nothing here asserts on time: timings depend on the machine and its load,
 * and a timed assertion would make the suite flaky.  The numbers are for
 * people (the design targets at least 1,000,000 verified entries per second
 * on one core).  Entries are shaped like a typical single-column UPDATE
 * entry, about 250 bytes encoded.  SA_THROUGHPUT_ENTRIES overrides the
 * number of entries (default 200000).
 */
#include "core/cpp_only.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "test_support.hpp"

using namespace sa_test;

namespace
{

size_t
entry_count()
{
	const char *env = std::getenv("SA_THROUGHPUT_ENTRIES");

	if (env != nullptr && std::atol(env) > 0)
		return static_cast<size_t>(std::atol(env));
	return 200000;
}

TestEntry
typical_entry(uint64_t seq)
{
	TestEntry	t = make_entry(0, seq);
	char		ssn[16];

	std::snprintf(ssn, sizeof(ssn), "%03u-%02u-%04u",
				  static_cast<unsigned>(seq % 1000),
				  static_cast<unsigned>(seq % 100),
				  static_cast<unsigned>(seq % 10000));
	t.txid = 100000 + seq;
	t.event_time = 1704164645000000 + static_cast<int64_t>(seq);
	t.text[kOldValue] = ssn;
	t.text[kNewValue] = std::string(ssn) + "x";
	t.text[kApplicationName] = "pgbench";
	return t;
}

TEST(Throughput, PrintsEntriesPerSecond)
{
	const size_t n = entry_count();
	std::vector<TestEntry> entries;
	std::vector<sa_entry> views;
	std::vector<Digest> hashes(n);
	Hasher		h;
	size_t		encoded_bytes = 0;

	entries.reserve(n);
	for (size_t i = 0; i < n; i++)
		entries.push_back(typical_entry(i + 1));

	/* capture side: hash and link, as the backend does at commit */
	auto		t0 = std::chrono::steady_clock::now();
	Digest		prev{};

	for (size_t i = 0; i < n; i++)
	{
		entries[i].prev_hash = prev;
		hashes[i] = h.hash(entries[i]);
		prev = hashes[i];
	}
	auto		t1 = std::chrono::steady_clock::now();

	views.reserve(n);
	for (const auto &t : entries)
		views.push_back(t.view());
	{
		const uint8_t *p;

		ASSERT_EQ(sa_entry_encode(h.get(), &views[0], &p, &encoded_bytes), SA_OK);
	}

	/* verification side: the streaming verifier over prepared rows */
	sa_verifier *v = sa_verifier_create();

	ASSERT_NE(v, nullptr);
	auto		t2 = std::chrono::steady_clock::now();

	for (size_t i = 0; i < n; i++)
		ASSERT_EQ(sa_verifier_feed(v, &views[i], hashes[i].data(), SA_DIGEST_LEN), SA_OK);
	ASSERT_EQ(sa_verifier_finish(v), SA_OK);
	auto		t3 = std::chrono::steady_clock::now();

	sa_chain_result r;

	ASSERT_EQ(sa_verifier_result(v, 0, &r), SA_OK);
	EXPECT_TRUE(r.ok);
	EXPECT_EQ(r.entries, n);
	sa_verifier_destroy(v);

	auto		rate = [n](auto a, auto b) {
		return n / std::chrono::duration<double>(b - a).count();
	};

	std::printf("[ THROUGHPUT ] %zu entries of %zu encoded bytes: "
				"hash+link %.0f entries/s, verify %.0f entries/s\n",
				n, encoded_bytes, rate(t0, t1), rate(t2, t3));
}

}								/* namespace */
