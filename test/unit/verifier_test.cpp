/*
 * verifier_test.cpp — the streaming chain verifier (sa_verifier_*).
 *
 * Each test builds valid chains the way the extension writes them, applies
 * one kind of tampering to the stored rows, feeds the rows ordered by
 * (chain, seq) as verify() does, and checks the reported chain, entry
 * count, first bad seq and problem text.  The problem texts are matched in
 * full here; SQL tests and users match their leading words.
 */
#include "core/cpp_only.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "test_support.hpp"

using namespace sa_test;

namespace
{

/* One row of the log as stored: the entry and its hash column. */
struct StoredEntry
{
	TestEntry	entry;
	std::optional<std::vector<uint8_t>> hash;	/* nullopt: hash IS NULL */
};

using Log = std::vector<StoredEntry>;

/* A result with the problem copied out, comparable after the verifier is gone. */
struct Result
{
	uint32_t	chain;
	uint64_t	entries;
	bool		ok;
	uint64_t	first_bad_seq;
	std::string problem;
};


std::vector<uint8_t>
as_bytes(const Digest &d)
{
	return std::vector<uint8_t>(d.begin(), d.end());
}

/* A valid chain of n entries, seq 1..n, each linked to the one before. */
Log
make_chain(uint32_t chain, uint64_t n)
{
	Hasher		h;
	Log			log;
	Digest		prev{};

	for (uint64_t seq = 1; seq <= n; seq++)
	{
		StoredEntry s{make_entry(chain, seq), std::nullopt};

		s.entry.prev_hash = prev;
		prev = h.hash(s.entry);
		s.hash = as_bytes(prev);
		log.push_back(std::move(s));
	}
	return log;
}

/* Recompute an entry's stored hash, as someone with write access would. */
void
rehash(StoredEntry &s)
{
	s.hash = as_bytes(Hasher().hash(s.entry));
}

std::vector<Result>
verify(const Log &log, bool interleaved = false)
{
	sa_verifier *v = sa_verifier_create();
	std::vector<Result> out;

	if (v == nullptr)
	{
		ADD_FAILURE() << "sa_verifier_create failed";
		return out;
	}
	if (interleaved)
	{
		EXPECT_EQ(sa_verifier_allow_interleaved(v), SA_OK);
	}
	for (const auto &s : log)
	{
		sa_entry	e = s.entry.view();
		const uint8_t *hash = s.hash ? s.hash->data() : nullptr;
		size_t		hash_len = s.hash ? s.hash->size() : 0;

		EXPECT_EQ(sa_verifier_feed(v, &e, hash, hash_len), SA_OK);
	}
	EXPECT_EQ(sa_verifier_finish(v), SA_OK);
	for (size_t i = 0; i < sa_verifier_nchains(v); i++)
	{
		sa_chain_result r;

		EXPECT_EQ(sa_verifier_result(v, i, &r), SA_OK);
		EXPECT_EQ(r.ok != 0, r.problem == nullptr);
		out.push_back(Result{r.chain, r.entries, r.ok != 0,
							 r.ok ? 0 : r.first_bad_seq,
							 r.problem ? r.problem : ""});
	}
	sa_verifier_destroy(v);
	return out;
}

/* Verifies a log holding one chain and returns its single result. */
Result
verify_one(const Log &log)
{
	std::vector<Result> r = verify(log);

	if (r.size() != 1)
	{
		ADD_FAILURE() << "expected one chain, got " << r.size();
		return Result{0, 0, false, 0, "<no result>"};
	}
	return r[0];
}

void
expect_ok(const Result &r, uint32_t chain, uint64_t entries)
{
	EXPECT_EQ(r.chain, chain);
	EXPECT_EQ(r.entries, entries);
	EXPECT_TRUE(r.ok) << r.problem;
	EXPECT_EQ(r.problem, "");
}

void
expect_bad(const Result &r, uint64_t entries, uint64_t first_bad_seq,
		   const std::string &problem)
{
	EXPECT_EQ(r.entries, entries);
	EXPECT_FALSE(r.ok);
	EXPECT_EQ(r.first_bad_seq, first_bad_seq);
	EXPECT_EQ(r.problem, problem);
}

/* ---- Intact logs ---------------------------------------------------------- */

TEST(Verifier, EmptyInputHasNoChains)
{
	EXPECT_TRUE(verify(Log{}).empty());
}

TEST(Verifier, ValidChainPasses)
{
	expect_ok(verify_one(make_chain(0, 10)), 0, 10);
}

TEST(Verifier, SingleEntryChainPasses)
{
	expect_ok(verify_one(make_chain(31, 1)), 31, 1);
}

TEST(Verifier, TwoChainsFedInChainOrder)
{
	Log			log = make_chain(1, 5);
	Log			c2 = make_chain(2, 7);

	log.insert(log.end(), c2.begin(), c2.end());

	std::vector<Result> r = verify(log);

	ASSERT_EQ(r.size(), 2u);
	expect_ok(r[0], 1, 5);
	expect_ok(r[1], 2, 7);
}

/* Chain numbers need not be consecutive; a gap in chain numbers is fine. */
TEST(Verifier, SparseChainNumbers)
{
	Log			log;

	for (uint32_t c : {0u, 7u, 31u, 4000000000u})
	{
		Log			chain = make_chain(c, 3);

		log.insert(log.end(), chain.begin(), chain.end());
	}

	std::vector<Result> r = verify(log);

	ASSERT_EQ(r.size(), 4u);
	expect_ok(r[0], 0, 3);
	expect_ok(r[1], 7, 3);
	expect_ok(r[2], 31, 3);
	expect_ok(r[3], 4000000000u, 3);
}

/* The same content in another chain is another entry: chain is hashed. */
TEST(Verifier, EntryCopiedIntoAnotherChainFails)
{
	Log			c1 = make_chain(1, 3);
	Log			c2 = make_chain(2, 3);

	c2[1] = c1[1];
	c2[1].entry.chain = 2;		/* the row now claims chain 2 */

	std::vector<Result> r = verify([&] {
		Log			log = c1;

		log.insert(log.end(), c2.begin(), c2.end());
		return log;
	}());

	ASSERT_EQ(r.size(), 2u);
	expect_ok(r[0], 1, 3);
	expect_bad(r[1], 3, 2, "forged: entry hash and link both fail");
}

/* ---- One kind of tampering per test --------------------------------------- */

TEST(Verifier, EditedValueIsContentChanged)
{
	Log			log = make_chain(0, 10);

	log[4].entry.text[kNewValue] = "999-99-9999";
	expect_bad(verify_one(log), 10, 5, "content changed: entry does not match its hash");
}

TEST(Verifier, ValueMadeNullIsContentChanged)
{
	Log			log = make_chain(0, 10);

	log[2].entry.text[kClientAddr] = std::nullopt;
	expect_bad(verify_one(log), 10, 3, "content changed: entry does not match its hash");
}

TEST(Verifier, EditedStoredHashIsContentChanged)
{
	Log			log = make_chain(0, 10);

	(*log[6].hash)[0] ^= 1;
	expect_bad(verify_one(log), 10, 7, "content changed: entry does not match its hash");
}

/* An edited entry whose hash is recomputed breaks the next entry's link. */
TEST(Verifier, EditedAndRehashedIsLinkBrokenAtNext)
{
	Log			log = make_chain(0, 10);

	log[4].entry.text[kNewValue] = "999-99-9999";
	rehash(log[4]);
	expect_bad(verify_one(log), 10, 6, "link broken: previous hash does not match entry 5");
}

TEST(Verifier, DeletedMiddleEntryIsGap)
{
	Log			log = make_chain(0, 10);

	log.erase(log.begin() + 4);
	expect_bad(verify_one(log), 9, 6, "gap: entries 5..5 are missing");
}

TEST(Verifier, DeletedRunIsGap)
{
	Log			log = make_chain(0, 10);

	log.erase(log.begin() + 3, log.begin() + 6);	/* seq 4, 5, 6 */
	expect_bad(verify_one(log), 7, 7, "gap: entries 4..6 are missing");
}

TEST(Verifier, DeletedFirstEntryIsGap)
{
	Log			log = make_chain(0, 10);

	log.erase(log.begin());
	expect_bad(verify_one(log), 9, 2, "gap: entries 1..1 are missing");
}

TEST(Verifier, ChainStartingLateIsGap)
{
	Log			log = make_chain(0, 10);

	log.erase(log.begin(), log.begin() + 4);
	expect_bad(verify_one(log), 6, 5, "gap: entries 1..4 are missing");
}

TEST(Verifier, DuplicatedEntryIsDuplicate)
{
	Log			log = make_chain(0, 10);

	log.insert(log.begin() + 5, log[4]);	/* seq 5 twice */
	expect_bad(verify_one(log), 11, 5, "duplicate: seq 5 appears more than once");
}

TEST(Verifier, DuplicatedFirstEntryIsDuplicate)
{
	Log			log = make_chain(0, 3);

	log.insert(log.begin() + 1, log[0]);
	expect_bad(verify_one(log), 4, 1, "duplicate: seq 1 appears more than once");
}

/*
 * Rows fed out of seq order: a seq above the expected one is a gap; a seq
 * at or below the last good one has been seen already, so it is a duplicate.
 */
TEST(Verifier, RowsFedOutOfSeqOrder)
{
	Log			log = make_chain(0, 10);

	std::swap(log[3], log[6]);	/* feed order 1 2 3 7 5 6 4 8 9 10 */
	expect_bad(verify_one(log), 10, 7, "gap: entries 4..6 are missing");

	log = make_chain(0, 10);
	log.insert(log.begin() + 8, log[2]);	/* ... 7 8 3 9 10 */
	expect_bad(verify_one(log), 11, 3, "duplicate: seq 3 appears more than once");
}

TEST(Verifier, SwappedSeqIsReordered)
{
	Log			log = make_chain(0, 10);

	/* Entries written as 4 and 5 exchange their seq column, then are read in seq order. */
	std::swap(log[3].entry.seq, log[4].entry.seq);
	std::swap(log[3], log[4]);
	expect_bad(verify_one(log), 10, 4, "reordered: entry stored at seq 4 was written as seq 5");
}

TEST(Verifier, MovedFarWithinWindowIsReordered)
{
	Log			log = make_chain(0, 20);

	/* The entry written as seq 3 now sits at seq 19, 16 places later. */
	log[18] = log[2];
	log[18].entry.seq = 19;
	expect_bad(verify_one(log), 20, 19, "reordered: entry stored at seq 19 was written as seq 3");
}

TEST(Verifier, MovedBeyondWindowIsNotReordered)
{
	Log			log = make_chain(0, 21);

	/* 17 places: outside the window; its link is wrong for seq 20 too. */
	log[19] = log[2];
	log[19].entry.seq = 20;
	expect_bad(verify_one(log), 21, 20, "forged: entry hash and link both fail");
}

TEST(Verifier, AppendedEntryWithMadeUpHashIsForged)
{
	Log			log = make_chain(0, 10);
	StoredEntry extra{make_entry(0, 11), std::vector<uint8_t>(SA_DIGEST_LEN, 0xab)};

	extra.entry.prev_hash.fill(0xcd);
	log.push_back(extra);
	expect_bad(verify_one(log), 11, 11, "forged: entry hash and link both fail");
}

/* Correct link, made-up hash: classified by the hash alone. */
TEST(Verifier, AppendedEntryWithCorrectLinkButMadeUpHash)
{
	Log			log = make_chain(0, 10);
	StoredEntry extra{make_entry(0, 11), std::vector<uint8_t>(SA_DIGEST_LEN, 0xab)};

	std::copy(log[9].hash->begin(), log[9].hash->end(), extra.entry.prev_hash.begin());
	log.push_back(extra);
	expect_bad(verify_one(log), 11, 11, "content changed: entry does not match its hash");
}

TEST(Verifier, BrokenLinkIsLinkBroken)
{
	Log			log = make_chain(0, 10);

	log[5].entry.prev_hash[7] ^= 0x40;
	rehash(log[5]);
	expect_bad(verify_one(log), 10, 6, "link broken: previous hash does not match entry 5");
}

TEST(Verifier, FirstEntryNotFromZeroHashIsLinkBroken)
{
	Log			log = make_chain(0, 10);

	log[0].entry.prev_hash[31] = 1;
	rehash(log[0]);
	expect_bad(verify_one(log), 10, 1, "link broken: first entry does not start from the zero hash");
}

TEST(Verifier, MissingHashIsMalformed)
{
	Log			log = make_chain(0, 10);

	log[2].hash = std::nullopt;
	expect_bad(verify_one(log), 10, 3, "hash missing or malformed");
}

TEST(Verifier, ShortOrLongHashIsMalformed)
{
	for (size_t len : {0, 31, 33, 64})
	{
		Log			log = make_chain(0, 10);

		log[2].hash->resize(len);
		expect_bad(verify_one(log), 10, 3, "hash missing or malformed");
	}
}

TEST(Verifier, UnsupportedFormatIsReported)
{
	Log			log = make_chain(0, 10);

	log[3].entry.format = 3;
	expect_bad(verify_one(log), 10, 4, "unsupported format 3");
}

TEST(Verifier, SeqZeroIsForged)
{
	Log			log = make_chain(0, 3);
	StoredEntry zero{make_entry(0, 0), std::nullopt};

	rehash(zero);
	log.insert(log.begin(), zero);
	expect_bad(verify_one(log), 4, 0, "forged: seq 0 is not a valid sequence number");
}

/* ---- Several chains, ordering and counting -------------------------------- */

/* A failure in one chain neither stops counting nor spills into the next. */
TEST(Verifier, FailureIsPerChainAndCountingContinues)
{
	Log			c1 = make_chain(1, 10);
	Log			c2 = make_chain(2, 10);
	Log			c3 = make_chain(3, 4);
	Log			log;

	c1.erase(c1.begin() + 2);				/* gap at 3 */
	c1[5].entry.text[kOldValue] = "x";		/* later damage is not reported */
	c2[8].entry.text[kOldValue] = "x";
	log.insert(log.end(), c1.begin(), c1.end());
	log.insert(log.end(), c2.begin(), c2.end());
	log.insert(log.end(), c3.begin(), c3.end());

	std::vector<Result> r = verify(log);

	ASSERT_EQ(r.size(), 3u);
	EXPECT_EQ(r[0].chain, 1u);
	expect_bad(r[0], 9, 4, "gap: entries 3..3 are missing");
	EXPECT_EQ(r[1].chain, 2u);
	expect_bad(r[1], 10, 9, "content changed: entry does not match its hash");
	expect_ok(r[2], 3, 4);
}

/* Chains not fed in ascending order: the late chain is reported, results stay sorted. */
TEST(Verifier, ChainArrivingLateIsReordered)
{
	Log			c1 = make_chain(1, 3);
	Log			c2 = make_chain(2, 4);
	Log			log = c2;

	log.insert(log.end(), c1.begin(), c1.end());

	std::vector<Result> r = verify(log);

	ASSERT_EQ(r.size(), 2u);
	EXPECT_EQ(r[0].chain, 1u);
	expect_bad(r[0], 3, 1,
			   "reordered: entry seq 1 of chain 1 arrived after entries of chain 2 "
			   "(input must be ordered by chain, seq)");
	expect_ok(r[1], 2, 4);
}

/* Chains interleaved entry by entry: the lower chain fails once it falls behind. */
TEST(Verifier, InterleavedChainsAreReordered)
{
	Log			c1 = make_chain(1, 3);
	Log			c2 = make_chain(2, 3);
	Log			log;

	for (size_t i = 0; i < 3; i++)
	{
		log.push_back(c1[i]);
		log.push_back(c2[i]);
	}

	std::vector<Result> r = verify(log);

	ASSERT_EQ(r.size(), 2u);
	EXPECT_EQ(r[0].chain, 1u);
	expect_bad(r[0], 3, 2,
			   "reordered: entry seq 2 of chain 1 arrived after entries of chain 2 "
			   "(input must be ordered by chain, seq)");
	expect_ok(r[1], 2, 3);
}

/* Allowed to interleave, chains are judged each on its own entries. */
TEST(Verifier, InterleavedChainsWhenAllowed)
{
	Log			c1 = make_chain(1, 3);
	Log			c2 = make_chain(2, 4);
	Log			log;

	log.push_back(c2[0]);
	for (size_t i = 0; i < 3; i++)
	{
		log.push_back(c1[i]);
		log.push_back(c2[i + 1]);
	}

	std::vector<Result> r = verify(log, true);

	ASSERT_EQ(r.size(), 2u);
	expect_ok(r[0], 1, 3);
	expect_ok(r[1], 2, 4);

	/* and a damaged entry is still found in its own chain */
	log[2].entry.text[kNewValue] = "tampered";	/* chain 2, seq 2 */
	r = verify(log, true);
	ASSERT_EQ(r.size(), 2u);
	expect_ok(r[0], 1, 3);
	EXPECT_FALSE(r[1].ok);
	EXPECT_EQ(r[1].first_bad_seq, 2u);
	EXPECT_EQ(r[1].problem.rfind("content changed", 0), 0u) << r[1].problem;
}

/* Problem strings stay valid until destroy, however many chains fail. */
TEST(Verifier, ProblemTextsLiveUntilDestroy)
{
	sa_verifier *v = sa_verifier_create();
	std::vector<Log> logs;

	ASSERT_NE(v, nullptr);
	for (uint32_t c = 0; c < 200; c++)
	{
		logs.push_back(make_chain(c, 3));
		logs.back().erase(logs.back().begin() + 1);
		for (const auto &s : logs.back())
		{
			sa_entry	e = s.entry.view();

			ASSERT_EQ(sa_verifier_feed(v, &e, s.hash->data(), s.hash->size()), SA_OK);
		}
	}
	ASSERT_EQ(sa_verifier_finish(v), SA_OK);
	ASSERT_EQ(sa_verifier_nchains(v), 200u);

	std::vector<const char *> problems;

	for (size_t i = 0; i < 200; i++)
	{
		sa_chain_result r;

		ASSERT_EQ(sa_verifier_result(v, i, &r), SA_OK);
		problems.push_back(r.problem);
	}
	for (size_t i = 0; i < 200; i++)
	{
		ASSERT_NE(problems[i], nullptr);
		EXPECT_STREQ(problems[i], "gap: entries 2..2 are missing");
	}
	sa_verifier_destroy(v);
}

/* ---- Misuse of the C API --------------------------------------------------- */

TEST(VerifierApi, MisuseIsReportedNotCrashed)
{
	sa_verifier *v = sa_verifier_create();
	Log			log = make_chain(0, 2);
	sa_entry	e = log[0].entry.view();
	sa_chain_result r;

	ASSERT_NE(v, nullptr);
	EXPECT_EQ(sa_verifier_feed(nullptr, &e, log[0].hash->data(), SA_DIGEST_LEN), SA_ERR_INTERNAL);
	EXPECT_EQ(sa_verifier_feed(v, nullptr, log[0].hash->data(), SA_DIGEST_LEN), SA_ERR_INTERNAL);
	EXPECT_EQ(sa_verifier_feed(v, &e, log[0].hash->data(), SA_DIGEST_LEN), SA_OK);
	EXPECT_EQ(sa_verifier_result(v, 1, &r), SA_ERR_INTERNAL);
	EXPECT_EQ(sa_verifier_result(v, 0, nullptr), SA_ERR_INTERNAL);
	EXPECT_EQ(sa_verifier_finish(v), SA_OK);

	/* nothing may be fed after finish */
	e = log[1].entry.view();
	EXPECT_EQ(sa_verifier_feed(v, &e, log[1].hash->data(), SA_DIGEST_LEN), SA_ERR_INTERNAL);
	ASSERT_EQ(sa_verifier_result(v, 0, &r), SA_OK);
	EXPECT_EQ(r.entries, 1u);
	EXPECT_TRUE(r.ok);

	EXPECT_EQ(sa_verifier_nchains(nullptr), 0u);
	EXPECT_EQ(sa_verifier_finish(nullptr), SA_ERR_INTERNAL);
	sa_verifier_destroy(v);
	sa_verifier_destroy(nullptr);
}

/* An entry the encoder cannot take is an error of the caller, not a verdict. */
TEST(VerifierApi, UnencodableEntryIsAnError)
{
	sa_verifier *v = sa_verifier_create();
	Log			log = make_chain(0, 1);
	sa_entry	e = log[0].entry.view();

	ASSERT_NE(v, nullptr);
	e.old_value.data = nullptr;	/* present, length > 0, no data */
	EXPECT_EQ(sa_verifier_feed(v, &e, log[0].hash->data(), SA_DIGEST_LEN), SA_ERR_INTERNAL);
	sa_verifier_destroy(v);
}

}								/* namespace */
