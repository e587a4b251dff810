/*
 * alloc_test.cpp — the core allocates nothing per entry once warm.
 *
 * Verification is meant to stream millions of entries a second, so the
 * common path (a valid entry of the current chain) must not touch the C++
 * heap.  This file replaces the global operator new for the whole test
 * binary with one that counts calls, and checks that hashing and verifying
 * a run of well-formed entries makes none.  (OpenSSL's own allocations go
 * through malloc and are not counted; see src/core/digest.cpp.)
 */
#include "core/cpp_only.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <vector>

#include "test_support.hpp"
#include "vectors.hpp"

namespace
{

std::atomic<long> new_calls{0};

}								/* namespace */

/*
 * Every other form of operator new ends up here in libstdc++.  The matching
 * deletes are kept out of line: inlined into a `delete` next to a `new`,
 * free() would trip GCC's -Wmismatched-new-delete, which cannot see that
 * this operator new is malloc.
 */
void *
operator new(std::size_t size)
{
	new_calls.fetch_add(1, std::memory_order_relaxed);
	if (void *p = std::malloc(size ? size : 1))
		return p;
	throw std::bad_alloc();
}

__attribute__((noinline)) void
operator delete(void *p) noexcept
{
	std::free(p);
}

__attribute__((noinline)) void
operator delete(void *p, std::size_t) noexcept
{
	std::free(p);
}

using namespace sa_test;

namespace
{

TEST(Allocation, HashingAndVerifyingAllocateNothingPerEntry)
{
	const int	n = 1000;
	Hasher		h;
	std::vector<TestEntry> entries;
	std::vector<sa_entry> views;
	std::vector<Digest> hashes;
	Digest		prev{};

	for (int i = 0; i < n; i++)
	{
		TestEntry	t = vector1();

		t.seq = static_cast<uint64_t>(i + 1);
		t.prev_hash = prev;
		prev = h.hash(t);
		entries.push_back(t);
		hashes.push_back(prev);
	}
	for (const auto &t : entries)
		views.push_back(t.view());

	long		at_create = new_calls.load();
	sa_verifier *v = sa_verifier_create();
	uint8_t		out[SA_DIGEST_LEN];

	ASSERT_NE(v, nullptr);
	/* the counting operator new is really the one in use */
	ASSERT_GT(new_calls.load() - at_create, 0);
	/* warm up: the first entry creates the chain and sizes the buffer */
	ASSERT_EQ(sa_verifier_feed(v, &views[0], hashes[0].data(), SA_DIGEST_LEN), SA_OK);
	ASSERT_EQ(sa_entry_hash(h.get(), &views[0], out), SA_OK);

	long		before = new_calls.load();

	for (int i = 1; i < n; i++)
	{
		ASSERT_EQ(sa_entry_hash(h.get(), &views[i], out), SA_OK);
		ASSERT_EQ(sa_verifier_feed(v, &views[i], hashes[i].data(), SA_DIGEST_LEN), SA_OK);
	}
	EXPECT_EQ(new_calls.load() - before, 0);

	ASSERT_EQ(sa_verifier_finish(v), SA_OK);

	sa_chain_result r;

	ASSERT_EQ(sa_verifier_result(v, 0, &r), SA_OK);
	EXPECT_TRUE(r.ok);
	EXPECT_EQ(r.entries, static_cast<uint64_t>(n));
	sa_verifier_destroy(v);
}

}								/* namespace */
