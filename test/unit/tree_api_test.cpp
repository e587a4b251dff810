/*
 * tree_api_test.cpp — the extern "C" tree, proof and checkpoint functions
 * of sa_core.h (src/core/tree_api.cpp) and the verifier's expectations
 * (sa_verifier_expect_root, sa_verifier_expect_node).
 *
 * The C functions are thin wrappers over merkle.hpp and checkpoint.hpp, so
 * the C++ API is the reference: a plan is served from a MemoryTree, the
 * computed root or path must equal what the C++ functions return, and the
 * independent verifiers (verify_inclusion, verify_consistency) must accept
 * it.  The checkpoint body is also checked against the two-chain vector of
 * docs/FORMAT.md, section 9 (the one checkpoint_test.cpp uses).
 */
#include "core/cpp_only.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "core/checkpoint.hpp"
#include "core/merkle.hpp"
#include "test_support.hpp"
#include "vectors.hpp"

using namespace sensitive_audit;
using sa_test::digest_from_hex;
using sa_test::from_hex;
using sa_test::to_hex;

namespace
{

/* ---- Fixed inputs -------------------------------------------------------- */

/* docs/FORMAT.md, section 9: the two-chain log and its signature. */
const char kLogId[] = "3f0c8a52-7b1e-4d6a-9c2f-81e4b7d05a63";
const char kKeyName[] = "sensitive_audit/3f0c8a52-7b1e-4d6a-9c2f-81e4b7d05a63";
const char kChain3Root[] = "8e00eb0267b2e98719dfad9f996a87b5ee839aa9cd449f07c64ad37352ea50eb";
const char kTwoChainBody[] =
	"sensitive_audit/3f0c8a52-7b1e-4d6a-9c2f-81e4b7d05a63\n"
	"1003\n"
	"hzCHpapt9AR2nlVER0U+6WGnowXlrjDF4tTOcow/z3s=\n"
	"chain 0 1000 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"
	"chain 3 3 jgDrAmey6YcZ362fmWqHte6DmqnNRJ8HxkrTc1LqUOs=\n";
const char kTwoChainSignature[] =
	"\u2014 sensitive_audit/3f0c8a52-7b1e-4d6a-9c2f-81e4b7d05a63 "
	"545xnQnRtzcbrbF9/DxkgiavT8Mgm95JXsWze25d+gvLTkLsdhjx5tspdPYXuTZNh1t1Qr3TRC5BLwxQMDtlM9yv2wM=\n";

/* RFC 8032 section 7.1, TEST 1: the fixed Ed25519 signing key. */
const char kRfc8032Secret[] = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";

/* The leaf of vector 1 of docs/FORMAT.md (chain 3, seq 1). */
const char kVector1Leaf[] = "55cbd1d799bc567333014816bb630227e28b1699abb2b3a07bb1119358e72dbb";

std::array<uint8_t, kEd25519KeyLen>
secret_key()
{
	const std::vector<uint8_t> v = from_hex(kRfc8032Secret);
	std::array<uint8_t, kEd25519KeyLen> k{};

	std::memcpy(k.data(), v.data(), k.size());
	return k;
}

/* The C form of the two chains of the vector: chain 0 and chain 3. */
std::vector<sa_chain_head>
two_chain_heads()
{
	sa_chain_head c0;
	sa_chain_head c3;

	c0.chain = 0;
	c0.size = 1000;
	for (size_t i = 0; i < SA_DIGEST_LEN; i++)
		c0.root[i] = static_cast<uint8_t>(i);
	c3.chain = 3;
	c3.size = 3;

	const Digest r3 = digest_from_hex(kChain3Root);

	std::memcpy(c3.root, r3.data(), SA_DIGEST_LEN);
	return {c0, c3};
}

std::vector<ChainHead>
as_cpp(const std::vector<sa_chain_head> &heads)
{
	std::vector<ChainHead> out(heads.size());

	for (size_t i = 0; i < heads.size(); i++)
	{
		out[i].chain = heads[i].chain;
		out[i].size = heads[i].size;
		std::memcpy(out[i].root.data(), heads[i].root, SA_DIGEST_LEN);
	}
	return out;
}

/* n leaf hashes of pseudo-random entry hashes, the same for a given seed. */
std::vector<Digest>
make_leaves(size_t n, uint32_t seed)
{
	std::mt19937 rng(seed);
	std::vector<Digest> out(n);

	for (Digest &d : out)
	{
		Digest		entry;

		for (uint8_t &b : entry)
			b = static_cast<uint8_t>(rng());
		if (hash_entry_leaf(entry.data(), d) != SA_OK)
			throw std::runtime_error("hash_entry_leaf failed");
	}
	return out;
}

struct Tree
{
	std::vector<Digest> leaves;
	MemoryTree	mem;

	explicit Tree(std::vector<Digest> l) : leaves(std::move(l))
	{
		if (mem.build(leaves.data(), leaves.size()) != SA_OK)
			throw std::runtime_error("MemoryTree::build failed");
	}

	Digest
	root(uint64_t size) const
	{
		Digest		d;

		if (tree_root(leaves.data(), size, d) != SA_OK)
			throw std::runtime_error("tree_root failed");
		return d;
	}

	Digest
	node(uint32_t level, uint64_t index) const
	{
		const SubtreeReader r = mem.reader();
		Digest		d;

		if (r.read(r.ctx, Subtree{level, index}, d.data()) != SA_OK)
			throw std::runtime_error("MemoryTree read failed");
		return d;
	}
};

/* What sa_tree_plan returns, through a first call that asks for the count. */
struct Plan
{
	int			rc = -1;
	std::vector<sa_subtree> nodes;
};

Plan
plan(int what, uint64_t a, uint64_t b)
{
	Plan		p;
	size_t		n = 12345;

	p.rc = sa_tree_plan(what, a, b, nullptr, 0, &n);
	if (p.rc == SA_ERR_SPACE)
	{
		p.nodes.resize(n);
		p.rc = sa_tree_plan(what, a, b, p.nodes.data(), p.nodes.size(), &n);
		EXPECT_EQ(n, p.nodes.size());
	}
	else if (p.rc == SA_OK)
	{
		EXPECT_EQ(n, 0u);
	}
	return p;
}

/* The hashes of nodes, 32 bytes each, in the same order, from the tree. */
std::vector<uint8_t>
hashes_of(const Tree &t, const std::vector<sa_subtree> &nodes)
{
	std::vector<uint8_t> out;

	for (const sa_subtree &s : nodes)
	{
		const Digest d = t.node(s.level, s.index);

		out.insert(out.end(), d.begin(), d.end());
	}
	return out;
}

struct Computed
{
	int			rc = -1;
	std::vector<Digest> out;
};

/* sa_tree_compute with room for 64 hashes, given these nodes. */
Computed
compute(int what, uint64_t a, uint64_t b, const std::vector<sa_subtree> &nodes,
		const std::vector<uint8_t> &hashes)
{
	Computed	c;
	std::vector<uint8_t> buf(64 * SA_DIGEST_LEN, 0xAA);
	size_t		n = 12345;

	c.rc = sa_tree_compute(what, a, b, nodes.data(), hashes.data(), nodes.size(),
						   buf.data(), 64, &n);
	if (c.rc == SA_OK)
	{
		EXPECT_LE(n, 64u);
		for (size_t i = 0; i < n && i < 64; i++)
		{
			Digest		d;

			std::memcpy(d.data(), buf.data() + i * SA_DIGEST_LEN, SA_DIGEST_LEN);
			c.out.push_back(d);
		}
	}
	return c;
}

/* Plan, then compute from exactly the planned nodes served by t. */
Computed
plan_and_compute(const Tree &t, int what, uint64_t a, uint64_t b)
{
	const Plan	p = plan(what, a, b);

	if (p.rc != SA_OK)
	{
		ADD_FAILURE() << "sa_tree_plan(" << what << ", " << a << ", " << b << ") = " << p.rc;
		return Computed{};
	}
	return compute(what, a, b, p.nodes, hashes_of(t, p.nodes));
}

bool
same_plan(const std::vector<sa_subtree> &c, const std::vector<Subtree> &cpp)
{
	if (c.size() != cpp.size())
		return false;
	for (size_t i = 0; i < c.size(); i++)
		if (c[i].level != cpp[i].level || c[i].index != cpp[i].index)
			return false;
	return true;
}

/* Inclusion of leaf i in size n: C API == C++ API, and it verifies. */
void
check_inclusion(const Tree &t, uint64_t i, uint64_t n)
{
	SCOPED_TRACE("inclusion of leaf " + std::to_string(i) + " in size " + std::to_string(n));

	std::vector<Subtree> cpp_plan;

	ASSERT_EQ(inclusion_proof_plan(i, n, cpp_plan), SA_OK);
	const Plan	p = plan(SA_TREE_INCLUSION, i, n);

	ASSERT_EQ(p.rc, SA_OK);
	EXPECT_TRUE(same_plan(p.nodes, cpp_plan));

	const Computed c = compute(SA_TREE_INCLUSION, i, n, p.nodes, hashes_of(t, p.nodes));
	std::vector<Digest> expected;

	ASSERT_EQ(c.rc, SA_OK);
	ASSERT_EQ(inclusion_proof(i, n, t.mem.reader(), expected), SA_OK);
	EXPECT_EQ(c.out, expected);
	EXPECT_EQ(verify_inclusion(i, n, t.leaves[i], c.out.data(), c.out.size(), t.root(n)), SA_OK);
}

/* Consistency from m to n: C API == C++ API, and it verifies. */
void
check_consistency(const Tree &t, uint64_t m, uint64_t n)
{
	SCOPED_TRACE("consistency " + std::to_string(m) + " -> " + std::to_string(n));

	std::vector<Subtree> cpp_plan;

	ASSERT_EQ(consistency_proof_plan(m, n, cpp_plan), SA_OK);
	const Plan	p = plan(SA_TREE_CONSISTENCY, m, n);

	ASSERT_EQ(p.rc, SA_OK);
	EXPECT_TRUE(same_plan(p.nodes, cpp_plan));

	const Computed c = compute(SA_TREE_CONSISTENCY, m, n, p.nodes, hashes_of(t, p.nodes));
	std::vector<Digest> expected;

	ASSERT_EQ(c.rc, SA_OK);
	ASSERT_EQ(consistency_proof(m, n, t.mem.reader(), expected), SA_OK);
	EXPECT_EQ(c.out, expected);
	EXPECT_EQ(verify_consistency(m, n, t.root(m), t.root(n), c.out.data(), c.out.size()),
			  SA_OK);
}

/* ---- Plans and proofs --------------------------------------------------- */

TEST(TreeApiProofs, EveryInclusionAndConsistencyOfSmallSizes)
{
	const Tree	t(make_leaves(17, 1));

	for (uint64_t n : {1, 2, 3, 7, 8, 9, 17})
	{
		for (uint64_t i = 0; i < n; i++)
			check_inclusion(t, i, n);
		for (uint64_t m = 0; m <= n; m++)
			check_consistency(t, m, n);
	}
}

TEST(TreeApiProofs, EveryConsistencyPairUpToSeventeen)
{
	const Tree	t(make_leaves(17, 2));

	for (uint64_t n = 1; n <= 17; n++)
		for (uint64_t m = 0; m <= n; m++)
			check_consistency(t, m, n);
}

TEST(TreeApiProofs, SampledProofsOfALargeTree)
{
	const uint64_t size = 1000;
	const Tree	t(make_leaves(size, 3));
	std::mt19937_64 rng(1000);

	/* every leaf in the full tree, and sampled leaves of sampled sizes */
	for (uint64_t i = 0; i < size; i++)
		check_inclusion(t, i, size);
	for (int k = 0; k < 300; k++)
	{
		const uint64_t n = 1 + rng() % size;

		check_inclusion(t, rng() % n, n);
	}
	/* sampled (old, new) pairs, and the edges */
	for (int k = 0; k < 500; k++)
	{
		const uint64_t n = 1 + rng() % size;

		check_consistency(t, rng() % (n + 1), n);
	}
	for (uint64_t m : {0, 1, 511, 512, 513, 999, 1000})
		check_consistency(t, m, size);
}

TEST(TreeApiProofs, ProofLengthsOfAKnownTree)
{
	/* RFC 6962 2.1.3's example tree of 7 leaves: PROOF(3, D[7]) = [c, d, g, l]. */
	const Tree	t(make_leaves(7, 4));
	const Computed inc = plan_and_compute(t, SA_TREE_INCLUSION, 6, 7);
	const Computed con = plan_and_compute(t, SA_TREE_CONSISTENCY, 3, 7);

	/* leaf 6 of 7: its sibling [4, 6), then [0, 4) */
	ASSERT_EQ(inc.rc, SA_OK);
	ASSERT_EQ(inc.out.size(), 2u);
	EXPECT_EQ(inc.out[0], t.node(1, 2));
	EXPECT_EQ(inc.out[1], t.node(2, 0));
	ASSERT_EQ(con.rc, SA_OK);
	EXPECT_EQ(con.out.size(), 4u);

	const Computed same = plan_and_compute(t, SA_TREE_CONSISTENCY, 7, 7);
	const Computed from0 = plan_and_compute(t, SA_TREE_CONSISTENCY, 0, 7);

	EXPECT_EQ(same.rc, SA_OK);
	EXPECT_TRUE(same.out.empty());
	EXPECT_EQ(from0.rc, SA_OK);
	EXPECT_TRUE(from0.out.empty());
}

TEST(TreeApiProofs, RootOfEverySizeUpToSeventy)
{
	const Tree	t(make_leaves(70, 5));

	for (uint64_t n = 0; n <= 70; n++)
	{
		SCOPED_TRACE("size " + std::to_string(n));

		std::vector<Subtree> cpp_plan;

		ASSERT_EQ(range_root_plan(0, n, cpp_plan), SA_OK);
		const Plan	p = plan(SA_TREE_ROOT, n, 0);

		ASSERT_EQ(p.rc, SA_OK);
		EXPECT_TRUE(same_plan(p.nodes, cpp_plan));

		const Computed c = compute(SA_TREE_ROOT, n, 0, p.nodes, hashes_of(t, p.nodes));

		ASSERT_EQ(c.rc, SA_OK);
		ASSERT_EQ(c.out.size(), 1u);
		EXPECT_EQ(c.out[0], t.root(n));
		if (n == 0)
		{
			EXPECT_EQ(c.out[0], kEmptyTreeRoot);
		}

		/* b is unused for a root */
		const Computed c2 = compute(SA_TREE_ROOT, n, 99999, p.nodes, hashes_of(t, p.nodes));

		ASSERT_EQ(c2.rc, SA_OK);
		ASSERT_EQ(c2.out.size(), 1u);
		EXPECT_EQ(c2.out[0], t.root(n));
	}
}

TEST(TreeApiProofs, ExtraAndUnorderedNodesAreAccepted)
{
	const Tree	t(make_leaves(17, 6));
	const Plan	p = plan(SA_TREE_INCLUSION, 5, 17);

	ASSERT_EQ(p.rc, SA_OK);

	/* every level-0..4 node of the tree, in reverse order */
	std::vector<sa_subtree> all;

	for (uint32_t level = 0; level <= 4; level++)
		for (uint64_t i = 0; ((i + 1) << level) <= 17; i++)
			all.push_back(sa_subtree{level, i});
	std::reverse(all.begin(), all.end());

	const Computed c = compute(SA_TREE_INCLUSION, 5, 17, all, hashes_of(t, all));
	std::vector<Digest> expected;

	ASSERT_EQ(c.rc, SA_OK);
	ASSERT_EQ(inclusion_proof(5, 17, t.mem.reader(), expected), SA_OK);
	EXPECT_EQ(c.out, expected);
}

TEST(TreeApiProofs, PlanTooSmallReportsTheCountNeeded)
{
	std::vector<Subtree> cpp_plan;

	ASSERT_EQ(inclusion_proof_plan(5, 17, cpp_plan), SA_OK);
	ASSERT_GE(cpp_plan.size(), 2u);

	std::vector<sa_subtree> out(cpp_plan.size() - 1, sa_subtree{77, 77});
	size_t		n = 0;

	EXPECT_EQ(sa_tree_plan(SA_TREE_INCLUSION, 5, 17, out.data(), out.size(), &n), SA_ERR_SPACE);
	EXPECT_EQ(n, cpp_plan.size());
	n = 0;
	EXPECT_EQ(sa_tree_plan(SA_TREE_INCLUSION, 5, 17, nullptr, 0, &n), SA_ERR_SPACE);
	EXPECT_EQ(n, cpp_plan.size());

	/* exactly enough */
	out.resize(cpp_plan.size());
	n = 0;
	EXPECT_EQ(sa_tree_plan(SA_TREE_INCLUSION, 5, 17, out.data(), out.size(), &n), SA_OK);
	EXPECT_EQ(n, cpp_plan.size());
	EXPECT_TRUE(same_plan(out, cpp_plan));

	/* consistency and root too */
	ASSERT_EQ(consistency_proof_plan(3, 17, cpp_plan), SA_OK);
	n = 0;
	EXPECT_EQ(sa_tree_plan(SA_TREE_CONSISTENCY, 3, 17, nullptr, 0, &n), SA_ERR_SPACE);
	EXPECT_EQ(n, cpp_plan.size());
	ASSERT_EQ(range_root_plan(0, 7, cpp_plan), SA_OK);
	ASSERT_EQ(cpp_plan.size(), 3u);	/* 4 + 2 + 1 */
	n = 0;
	EXPECT_EQ(sa_tree_plan(SA_TREE_ROOT, 7, 0, nullptr, 0, &n), SA_ERR_SPACE);
	EXPECT_EQ(n, 3u);

	/* an empty plan fits in nothing */
	n = 99;
	EXPECT_EQ(sa_tree_plan(SA_TREE_ROOT, 0, 0, nullptr, 0, &n), SA_OK);
	EXPECT_EQ(n, 0u);
	n = 99;
	EXPECT_EQ(sa_tree_plan(SA_TREE_CONSISTENCY, 9, 9, nullptr, 0, &n), SA_OK);
	EXPECT_EQ(n, 0u);
}

TEST(TreeApiProofs, ComputeTooSmallReportsTheCountNeeded)
{
	const Tree	t(make_leaves(17, 7));
	const Plan	p = plan(SA_TREE_INCLUSION, 5, 17);

	ASSERT_EQ(p.rc, SA_OK);
	const std::vector<uint8_t> hashes = hashes_of(t, p.nodes);
	std::vector<Digest> expected;

	ASSERT_EQ(inclusion_proof(5, 17, t.mem.reader(), expected), SA_OK);
	ASSERT_EQ(expected.size(), 5u);	/* ceil(log2(17)) */

	std::vector<uint8_t> out(expected.size() * SA_DIGEST_LEN);
	size_t		n = 0;

	EXPECT_EQ(sa_tree_compute(SA_TREE_INCLUSION, 5, 17, p.nodes.data(), hashes.data(),
							  p.nodes.size(), out.data(), expected.size() - 1, &n),
			  SA_ERR_SPACE);
	EXPECT_EQ(n, expected.size());
	n = 0;
	EXPECT_EQ(sa_tree_compute(SA_TREE_INCLUSION, 5, 17, p.nodes.data(), hashes.data(),
							  p.nodes.size(), nullptr, 0, &n),
			  SA_ERR_SPACE);
	EXPECT_EQ(n, expected.size());
	n = 0;
	EXPECT_EQ(sa_tree_compute(SA_TREE_INCLUSION, 5, 17, p.nodes.data(), hashes.data(),
							  p.nodes.size(), out.data(), expected.size(), &n),
			  SA_OK);
	EXPECT_EQ(n, expected.size());
	for (size_t i = 0; i < expected.size(); i++)
		EXPECT_EQ(to_hex(out.data() + i * SA_DIGEST_LEN, SA_DIGEST_LEN), to_hex(expected[i]));

	/* a root needs room for one hash */
	const Plan	rp = plan(SA_TREE_ROOT, 17, 0);

	ASSERT_EQ(rp.rc, SA_OK);
	const std::vector<uint8_t> rhashes = hashes_of(t, rp.nodes);

	n = 0;
	EXPECT_EQ(sa_tree_compute(SA_TREE_ROOT, 17, 0, rp.nodes.data(), rhashes.data(),
							  rp.nodes.size(), nullptr, 0, &n),
			  SA_ERR_SPACE);
	EXPECT_EQ(n, 1u);
}

TEST(TreeApiProofs, OutOfRangeArguments)
{
	const Tree	t(make_leaves(9, 8));
	std::vector<sa_subtree> out(64);
	size_t		n = 0;
	uint8_t		buf[64 * SA_DIGEST_LEN];

	/* index >= size */
	for (auto [i, size] : std::vector<std::pair<uint64_t, uint64_t>>{{9, 9}, {10, 9}, {0, 0}})
	{
		SCOPED_TRACE("inclusion " + std::to_string(i) + " of " + std::to_string(size));
		EXPECT_EQ(sa_tree_plan(SA_TREE_INCLUSION, i, size, out.data(), out.size(), &n),
				  SA_ERR_RANGE);
		EXPECT_EQ(sa_tree_compute(SA_TREE_INCLUSION, i, size, nullptr, nullptr, 0, buf, 64, &n),
				  SA_ERR_RANGE);
	}
	/* old > new */
	for (auto [m, size] : std::vector<std::pair<uint64_t, uint64_t>>{{10, 9}, {1, 0}})
	{
		SCOPED_TRACE("consistency " + std::to_string(m) + " -> " + std::to_string(size));
		EXPECT_EQ(sa_tree_plan(SA_TREE_CONSISTENCY, m, size, out.data(), out.size(), &n),
				  SA_ERR_RANGE);
		EXPECT_EQ(sa_tree_compute(SA_TREE_CONSISTENCY, m, size, nullptr, nullptr, 0, buf, 64, &n),
				  SA_ERR_RANGE);
	}
	/* range errors come before space errors */
	EXPECT_EQ(sa_tree_plan(SA_TREE_INCLUSION, 9, 9, nullptr, 0, &n), SA_ERR_RANGE);
	EXPECT_EQ(sa_tree_compute(SA_TREE_CONSISTENCY, 10, 9, nullptr, nullptr, 0, nullptr, 0, &n),
			  SA_ERR_RANGE);
}

TEST(TreeApiProofs, MisuseIsInternal)
{
	size_t		n = 0;
	sa_subtree	s[4];
	uint8_t		h[4 * SA_DIGEST_LEN] = {0};
	uint8_t		buf[4 * SA_DIGEST_LEN];

	EXPECT_EQ(sa_tree_plan(3, 1, 2, s, 4, &n), SA_ERR_INTERNAL);	/* unknown kind */
	EXPECT_EQ(sa_tree_plan(SA_TREE_ROOT, 1, 0, s, 4, nullptr), SA_ERR_INTERNAL);
	EXPECT_EQ(sa_tree_plan(SA_TREE_ROOT, 1, 0, nullptr, 4, &n), SA_ERR_INTERNAL);
	EXPECT_EQ(sa_tree_compute(3, 1, 2, s, h, 0, buf, 4, &n), SA_ERR_INTERNAL);
	EXPECT_EQ(sa_tree_compute(SA_TREE_ROOT, 1, 0, s, h, 1, buf, 4, nullptr), SA_ERR_INTERNAL);
	EXPECT_EQ(sa_tree_compute(SA_TREE_ROOT, 1, 0, nullptr, h, 1, buf, 4, &n), SA_ERR_INTERNAL);
	EXPECT_EQ(sa_tree_compute(SA_TREE_ROOT, 1, 0, s, nullptr, 1, buf, 4, &n), SA_ERR_INTERNAL);
	EXPECT_EQ(sa_tree_compute(SA_TREE_ROOT, 1, 0, s, h, 1, nullptr, 4, &n), SA_ERR_INTERNAL);
}

TEST(TreeApiProofs, MissingPlannedNodeIsInternal)
{
	const Tree	t(make_leaves(17, 9));
	struct Case
	{
		int			what;
		uint64_t	a;
		uint64_t	b;
	};

	for (const Case &k : {Case{SA_TREE_ROOT, 17, 0}, Case{SA_TREE_ROOT, 7, 0},
						  Case{SA_TREE_INCLUSION, 5, 17}, Case{SA_TREE_INCLUSION, 16, 17},
						  Case{SA_TREE_CONSISTENCY, 3, 17}, Case{SA_TREE_CONSISTENCY, 7, 9}})
	{
		const Plan	p = plan(k.what, k.a, k.b);

		ASSERT_EQ(p.rc, SA_OK);
		ASSERT_FALSE(p.nodes.empty());

		/* with each planned node taken out (every copy of it) */
		for (size_t drop = 0; drop < p.nodes.size(); drop++)
		{
			SCOPED_TRACE("kind " + std::to_string(k.what) + " (" + std::to_string(k.a) + ", "
						 + std::to_string(k.b) + ") without node " + std::to_string(drop));

			const sa_subtree gone = p.nodes[drop];
			std::vector<sa_subtree> rest;

			for (const sa_subtree &s : p.nodes)
				if (s.level != gone.level || s.index != gone.index)
					rest.push_back(s);

			const Computed c = compute(k.what, k.a, k.b, rest, hashes_of(t, rest));

			EXPECT_EQ(c.rc, SA_ERR_INTERNAL);
		}

		/* with none at all */
		uint8_t		buf[64 * SA_DIGEST_LEN];
		size_t		n = 0;

		EXPECT_EQ(sa_tree_compute(k.what, k.a, k.b, nullptr, nullptr, 0, buf, 64, &n),
				  SA_ERR_INTERNAL);
	}
}

/* ---- Leaves and perfect roots ------------------------------------------- */

TEST(TreeApiHashing, MerkleLeafEqualsHashEntryLeaf)
{
	sa_test::Hasher h;
	const Digest e1 = h.hash(sa_test::vector1());
	uint8_t		out[SA_DIGEST_LEN];
	Digest		expected;

	ASSERT_EQ(sa_merkle_leaf(e1.data(), out), SA_OK);
	EXPECT_EQ(to_hex(out, SA_DIGEST_LEN), kVector1Leaf);

	std::mt19937 rng(11);

	for (int k = 0; k < 50; k++)
	{
		Digest		entry;

		for (uint8_t &b : entry)
			b = static_cast<uint8_t>(rng());
		ASSERT_EQ(sa_merkle_leaf(entry.data(), out), SA_OK);
		ASSERT_EQ(hash_entry_leaf(entry.data(), expected), SA_OK);
		EXPECT_EQ(to_hex(out, SA_DIGEST_LEN), to_hex(expected));
		EXPECT_NE(to_hex(out, SA_DIGEST_LEN), to_hex(entry));
	}
	EXPECT_EQ(sa_merkle_leaf(nullptr, out), SA_ERR_INTERNAL);
	EXPECT_EQ(sa_merkle_leaf(e1.data(), nullptr), SA_ERR_INTERNAL);
}

std::vector<uint8_t>
flat(const Digest *d, size_t n)
{
	std::vector<uint8_t> out;

	for (size_t i = 0; i < n; i++)
		out.insert(out.end(), d[i].begin(), d[i].end());
	return out;
}

TEST(TreeApiHashing, PerfectRootEqualsTreeRoot)
{
	const std::vector<Digest> leaves = make_leaves(256, 12);

	for (size_t n : {1, 2, 4, 256})
	{
		SCOPED_TRACE("n = " + std::to_string(n));

		const std::vector<uint8_t> in = flat(leaves.data(), n);
		uint8_t		out[SA_DIGEST_LEN];
		Digest		expected;

		ASSERT_EQ(sa_merkle_perfect_root(in.data(), n, out), SA_OK);
		ASSERT_EQ(tree_root(leaves.data(), n, expected), SA_OK);
		EXPECT_EQ(to_hex(out, SA_DIGEST_LEN), to_hex(expected));
	}

	/* n = 1 is the node itself; n = 2 is one node hash */
	uint8_t		out[SA_DIGEST_LEN];
	Digest		node;

	ASSERT_EQ(sa_merkle_perfect_root(leaves[7].data(), 1, out), SA_OK);
	EXPECT_EQ(to_hex(out, SA_DIGEST_LEN), to_hex(leaves[7]));
	ASSERT_EQ(sa_merkle_perfect_root(flat(&leaves[2], 2).data(), 2, out), SA_OK);
	ASSERT_EQ(hash_node(leaves[2], leaves[3], node), SA_OK);
	EXPECT_EQ(to_hex(out, SA_DIGEST_LEN), to_hex(node));
}

TEST(TreeApiHashing, PerfectRootCombinesTwoLevels)
{
	/* 65536 leaves: 256 level-8 nodes, whose perfect root is the tree root */
	const Tree	t(make_leaves(65536, 13));
	std::vector<Digest> level8;

	for (uint64_t i = 0; i < 256; i++)
		level8.push_back(t.node(8, i));

	/* each level-8 node is itself the perfect root of its 256 leaves */
	for (uint64_t i : {0, 1, 200, 255})
	{
		uint8_t		out[SA_DIGEST_LEN];

		ASSERT_EQ(sa_merkle_perfect_root(flat(&t.leaves[i * 256], 256).data(), 256, out), SA_OK);
		EXPECT_EQ(to_hex(out, SA_DIGEST_LEN), to_hex(level8[i])) << "node " << i;
	}

	uint8_t		out[SA_DIGEST_LEN];

	ASSERT_EQ(sa_merkle_perfect_root(flat(level8.data(), 256).data(), 256, out), SA_OK);
	EXPECT_EQ(to_hex(out, SA_DIGEST_LEN), to_hex(t.root(65536)));
}

TEST(TreeApiHashing, PerfectRootRefusesOtherCounts)
{
	const std::vector<Digest> leaves = make_leaves(8, 14);
	const std::vector<uint8_t> in = flat(leaves.data(), 8);
	uint8_t		out[SA_DIGEST_LEN] = {0};

	for (size_t n : {0, 3, 5, 6, 7})
		EXPECT_EQ(sa_merkle_perfect_root(in.data(), n, out), SA_ERR_INTERNAL) << "n = " << n;
	EXPECT_EQ(sa_merkle_perfect_root(nullptr, 2, out), SA_ERR_INTERNAL);
	EXPECT_EQ(sa_merkle_perfect_root(in.data(), 2, nullptr), SA_ERR_INTERNAL);
}

/* ---- Checkpoint bodies ---------------------------------------------------- */

TEST(TreeApiCheckpoint, BodyEqualsTheCppEncodingAndTheVector)
{
	const std::vector<sa_chain_head> heads = two_chain_heads();
	const std::vector<ChainHead> cpp = as_cpp(heads);
	std::string expected;
	char		out[1024];
	size_t		len = 0;

	ASSERT_EQ(encode_log_checkpoint(kLogId, cpp.data(), cpp.size(), expected), SA_OK);
	ASSERT_EQ(sa_checkpoint_body(kLogId, heads.data(), heads.size(), out, sizeof(out), &len),
			  SA_OK);
	EXPECT_EQ(len, expected.size());
	EXPECT_EQ(std::strlen(out), len);
	EXPECT_EQ(std::string(out, len), expected);
	EXPECT_EQ(std::string(out, len), kTwoChainBody);

	/* an empty chain is left out: the same body */
	std::vector<sa_chain_head> with_empty = heads;
	sa_chain_head empty{};

	empty.chain = 2;
	empty.size = 0;
	with_empty.insert(with_empty.begin() + 1, empty);
	len = 0;
	ASSERT_EQ(sa_checkpoint_body(kLogId, with_empty.data(), with_empty.size(), out, sizeof(out),
								 &len),
			  SA_OK);
	EXPECT_EQ(std::string(out, len), kTwoChainBody);

	/* the empty log */
	len = 0;
	ASSERT_EQ(sa_checkpoint_body(kLogId, nullptr, 0, out, sizeof(out), &len), SA_OK);
	EXPECT_EQ(std::string(out, len),
			  "sensitive_audit/3f0c8a52-7b1e-4d6a-9c2f-81e4b7d05a63\n"
			  "0\n"
			  "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n");
}

TEST(TreeApiCheckpoint, BodyNeedsRoomForTheTerminator)
{
	const std::vector<sa_chain_head> heads = two_chain_heads();
	const size_t need = std::strlen(kTwoChainBody);
	std::vector<char> out(need + 1, 'x');
	size_t		len = 0;

	EXPECT_EQ(sa_checkpoint_body(kLogId, heads.data(), heads.size(), out.data(), need, &len),
			  SA_ERR_SPACE);
	EXPECT_EQ(len, need);
	len = 0;
	EXPECT_EQ(sa_checkpoint_body(kLogId, heads.data(), heads.size(), nullptr, 0, &len),
			  SA_ERR_SPACE);
	EXPECT_EQ(len, need);
	len = 0;
	EXPECT_EQ(sa_checkpoint_body(kLogId, heads.data(), heads.size(), out.data(), need + 1, &len),
			  SA_OK);
	EXPECT_EQ(len, need);
	EXPECT_EQ(out[need], '\0');
	EXPECT_EQ(std::string(out.data()), kTwoChainBody);
}

TEST(TreeApiCheckpoint, BodyRejections)
{
	std::vector<sa_chain_head> heads = two_chain_heads();
	char		out[1024];
	size_t		len = 0;

	EXPECT_EQ(sa_checkpoint_body("bad id", heads.data(), heads.size(), out, sizeof(out), &len),
			  SA_ERR_SYNTAX);
	EXPECT_EQ(sa_checkpoint_body("", heads.data(), heads.size(), out, sizeof(out), &len),
			  SA_ERR_SYNTAX);
	std::swap(heads[0], heads[1]);	/* descending */
	EXPECT_EQ(sa_checkpoint_body(kLogId, heads.data(), heads.size(), out, sizeof(out), &len),
			  SA_ERR_RANGE);
	EXPECT_EQ(sa_checkpoint_body(nullptr, heads.data(), heads.size(), out, sizeof(out), &len),
			  SA_ERR_INTERNAL);
	EXPECT_EQ(sa_checkpoint_body(kLogId, nullptr, 2, out, sizeof(out), &len), SA_ERR_INTERNAL);
	EXPECT_EQ(sa_checkpoint_body(kLogId, heads.data(), heads.size(), out, sizeof(out), nullptr),
			  SA_ERR_INTERNAL);
}

/* The body of the vector signed with the RFC 8032 key. */
std::string
signed_note(const std::string &body)
{
	const auto	secret = secret_key();
	std::string note;

	if (sign_note(body, kKeyName, secret.data(), note) != SA_OK)
		throw std::runtime_error("sign_note failed");
	return note;
}

struct Parsed
{
	int			rc = -1;
	std::string log_id;
	uint64_t	total = 0;
	size_t		nchains = 0;
	std::vector<sa_chain_head> chains;
};

Parsed
parse(const std::string &note, size_t cap = 8)
{
	Parsed		p;
	char		log_id[SA_MAX_LOG_ID_LEN + 1];
	std::vector<sa_chain_head> chains(cap);

	std::memset(log_id, 0, sizeof(log_id));
	p.nchains = 12345;
	p.rc = sa_checkpoint_parse(note.data(), note.size(), log_id, &p.total,
							   cap ? chains.data() : nullptr, cap, &p.nchains);
	p.log_id = log_id;
	if (p.rc == SA_OK)
		p.chains.assign(chains.begin(), chains.begin() + std::min(p.nchains, cap));
	return p;
}

TEST(TreeApiCheckpoint, ParseRoundTripsASignedNote)
{
	const std::string note = signed_note(kTwoChainBody);

	ASSERT_EQ(note, std::string(kTwoChainBody) + "\n" + kTwoChainSignature);

	const Parsed p = parse(note);
	const std::vector<sa_chain_head> heads = two_chain_heads();

	ASSERT_EQ(p.rc, SA_OK);
	EXPECT_EQ(p.log_id, kLogId);
	EXPECT_EQ(p.total, 1003u);
	ASSERT_EQ(p.nchains, 2u);
	ASSERT_EQ(p.chains.size(), 2u);
	for (size_t i = 0; i < 2; i++)
	{
		EXPECT_EQ(p.chains[i].chain, heads[i].chain);
		EXPECT_EQ(p.chains[i].size, heads[i].size);
		EXPECT_EQ(to_hex(p.chains[i].root, SA_DIGEST_LEN), to_hex(heads[i].root, SA_DIGEST_LEN));
	}

	/* the body written by sa_checkpoint_body, signed, parses to its input */
	std::vector<sa_chain_head> three = heads;
	sa_chain_head c9{};

	c9.chain = 9;
	c9.size = 65536;
	std::memset(c9.root, 0x5a, SA_DIGEST_LEN);
	three.push_back(c9);

	char		body[2048];
	size_t		len = 0;

	ASSERT_EQ(sa_checkpoint_body("log.id_2-x", three.data(), three.size(), body, sizeof(body),
								 &len),
			  SA_OK);

	const Parsed q = parse(signed_note(std::string(body, len)));

	ASSERT_EQ(q.rc, SA_OK);
	EXPECT_EQ(q.log_id, "log.id_2-x");
	EXPECT_EQ(q.total, 1000u + 3u + 65536u);
	ASSERT_EQ(q.chains.size(), 3u);
	EXPECT_EQ(q.chains[2].chain, 9u);
	EXPECT_EQ(q.chains[2].size, 65536u);
	std::string all5a;

	for (int i = 0; i < SA_DIGEST_LEN; i++)
		all5a += "5a";
	EXPECT_EQ(to_hex(q.chains[2].root, SA_DIGEST_LEN), all5a);

	/* a second signature line is fine; signatures are not checked */
	const std::string twice = note + "\u2014 other AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==\n";
	const Parsed r = parse(twice);

	EXPECT_EQ(r.rc, SA_OK);
	EXPECT_EQ(r.total, 1003u);
}

TEST(TreeApiCheckpoint, ParseRequiresASignatureLine)
{
	/* the body alone, and the body with the blank line but no signature */
	EXPECT_EQ(parse(kTwoChainBody).rc, SA_ERR_SYNTAX);
	EXPECT_EQ(parse(std::string(kTwoChainBody) + "\n").rc, SA_ERR_SYNTAX);
}

TEST(TreeApiCheckpoint, ParseRejectsASizeThatIsNotTheSum)
{
	std::string body = kTwoChainBody;

	body.replace(body.find("\n1003\n"), 6, "\n1004\n");

	const Parsed p = parse(signed_note(body));

	EXPECT_EQ(p.rc, SA_ERR_VERIFY);

	/* and a chain size changed under the same total and root */
	std::string body2 = kTwoChainBody;

	body2.replace(body2.find("chain 3 3 "), 10, "chain 3 4 ");
	EXPECT_EQ(parse(signed_note(body2)).rc, SA_ERR_VERIFY);

	/* and a root that is not the root of the chain records */
	std::string body3 = kTwoChainBody;

	body3.replace(body3.find("hzCH"), 4, "hzCI");
	EXPECT_EQ(parse(signed_note(body3)).rc, SA_ERR_VERIFY);
}

TEST(TreeApiCheckpoint, ParseRejectsGarbage)
{
	for (const std::string &g : std::vector<std::string>{
			 "", "garbage", "garbage\n", "\n\n", std::string("\0\0\0\0", 4),
			 "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"})
	{
		const int	rc = parse(g).rc;

		EXPECT_TRUE(rc == SA_ERR_SYNTAX || rc == SA_ERR_VERIFY) << "rc " << rc << " for " << g;
	}
	/* a well-signed note whose text is not a sensitive_audit checkpoint */
	EXPECT_EQ(parse(signed_note("hello\n")).rc, SA_ERR_SYNTAX);
	EXPECT_EQ(parse(signed_note("example.com/behind-the-sofa\n20852163\n"
								"CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"))
				  .rc,
			  SA_ERR_SYNTAX);
	/* a truncated note */
	const std::string note = signed_note(kTwoChainBody);

	EXPECT_EQ(parse(note.substr(0, note.size() - 1)).rc, SA_ERR_SYNTAX);
	EXPECT_EQ(parse(note.substr(0, 40)).rc, SA_ERR_SYNTAX);
}

TEST(TreeApiCheckpoint, ParseTooFewChainsReportsTheCount)
{
	const std::string note = signed_note(kTwoChainBody);
	const Parsed p = parse(note, 1);

	EXPECT_EQ(p.rc, SA_ERR_SPACE);
	EXPECT_EQ(p.nchains, 2u);
	const Parsed q = parse(note, 0);

	EXPECT_EQ(q.rc, SA_ERR_SPACE);
	EXPECT_EQ(q.nchains, 2u);
	const Parsed r = parse(note, 2);

	EXPECT_EQ(r.rc, SA_OK);
	EXPECT_EQ(r.nchains, 2u);

	/* the empty log has no chain lines and fits in nothing */
	char		body[256];
	size_t		len = 0;

	ASSERT_EQ(sa_checkpoint_body(kLogId, nullptr, 0, body, sizeof(body), &len), SA_OK);
	const Parsed e = parse(signed_note(std::string(body, len)), 0);

	EXPECT_EQ(e.rc, SA_OK);
	EXPECT_EQ(e.nchains, 0u);
	EXPECT_EQ(e.total, 0u);
	EXPECT_EQ(e.log_id, kLogId);
}

/* ---- The verifier held to roots and nodes -------------------------------- */

struct StoredEntry
{
	sa_test::TestEntry entry;
	Digest		hash;
};

using Log = std::vector<StoredEntry>;

/* A valid chain of n entries, seq 1..n, each linked to the one before. */
Log
make_chain(uint32_t chain, uint64_t n)
{
	sa_test::Hasher h;
	Log			log;
	Digest		prev{};

	for (uint64_t seq = 1; seq <= n; seq++)
	{
		StoredEntry s{sa_test::make_entry(chain, seq), Digest{}};

		s.entry.prev_hash = prev;
		s.hash = h.hash(s.entry);
		prev = s.hash;
		log.push_back(std::move(s));
	}
	return log;
}

/* The chain's Merkle tree, leaf i being entry seq i + 1. */
Tree
tree_of(const Log &log)
{
	std::vector<Digest> leaves;

	for (const StoredEntry &s : log)
	{
		Digest		d;

		if (hash_entry_leaf(s.hash.data(), d) != SA_OK)
			throw std::runtime_error("hash_entry_leaf failed");
		leaves.push_back(d);
	}
	return Tree(std::move(leaves));
}

struct Result
{
	uint32_t	chain;
	uint64_t	entries;
	bool		ok;
	uint64_t	first_bad_seq;
	std::string problem;
};

/*
 * Owns a verifier: expectations are registered through it, then the log is
 * fed and the results read.
 */
class Verifier
{
public:
	Verifier() : v_(sa_verifier_create())
	{
		if (v_ == nullptr)
			throw std::runtime_error("sa_verifier_create failed");
	}
	~Verifier() { sa_verifier_destroy(v_); }
	Verifier(const Verifier &) = delete;
	Verifier &operator=(const Verifier &) = delete;

	sa_verifier *get() { return v_; }

	int
	expect_root(uint32_t chain, uint64_t size, const Digest &root, const char *label)
	{
		return sa_verifier_expect_root(v_, chain, size, root.data(), label);
	}

	int
	expect_node(uint32_t chain, uint32_t level, uint64_t index, const Digest &hash)
	{
		return sa_verifier_expect_node(v_, chain, level, index, hash.data());
	}

	std::vector<Result>
	run(const Log &log)
	{
		for (const StoredEntry &s : log)
		{
			sa_entry	e = s.entry.view();

			EXPECT_EQ(sa_verifier_feed(v_, &e, s.hash.data(), s.hash.size()), SA_OK);
		}
		EXPECT_EQ(sa_verifier_finish(v_), SA_OK);

		std::vector<Result> out;

		for (size_t i = 0; i < sa_verifier_nchains(v_); i++)
		{
			sa_chain_result r;

			EXPECT_EQ(sa_verifier_result(v_, i, &r), SA_OK);
			EXPECT_EQ(r.ok != 0, r.problem == nullptr);
			out.push_back(Result{r.chain, r.entries, r.ok != 0, r.ok ? 0 : r.first_bad_seq,
								 r.problem ? r.problem : ""});
		}
		return out;
	}

private:
	sa_verifier *v_;
};

void
expect_ok(const Result &r, uint32_t chain, uint64_t entries)
{
	EXPECT_EQ(r.chain, chain);
	EXPECT_EQ(r.entries, entries);
	EXPECT_TRUE(r.ok) << r.problem;
	EXPECT_EQ(r.problem, "");
}

void
expect_bad(const Result &r, uint32_t chain, uint64_t entries, uint64_t first_bad_seq,
		   const std::string &problem)
{
	EXPECT_EQ(r.chain, chain);
	EXPECT_EQ(r.entries, entries);
	EXPECT_FALSE(r.ok);
	EXPECT_EQ(r.first_bad_seq, first_bad_seq);
	EXPECT_EQ(r.problem, problem);
}

Digest
flipped(Digest d)
{
	d[0] ^= 1;
	return d;
}

TEST(TreeApiVerifier, CorrectRootsPass)
{
	const Log	log = make_chain(4, 12);
	const Tree	t = tree_of(log);
	Verifier	v;

	ASSERT_EQ(v.expect_root(4, 1, t.root(1), "checkpoint 1"), SA_OK);
	ASSERT_EQ(v.expect_root(4, 5, t.root(5), "checkpoint 2"), SA_OK);
	ASSERT_EQ(v.expect_root(4, 12, t.root(12), "checkpoint 3"), SA_OK);

	const std::vector<Result> r = v.run(log);

	ASSERT_EQ(r.size(), 1u);
	expect_ok(r[0], 4, 12);
}

TEST(TreeApiVerifier, CorrectRootsRegisteredOutOfOrderAndTwicePass)
{
	const Log	log = make_chain(4, 12);
	const Tree	t = tree_of(log);
	Verifier	v;

	ASSERT_EQ(v.expect_root(4, 12, t.root(12), "checkpoint 3"), SA_OK);
	ASSERT_EQ(v.expect_root(4, 1, t.root(1), "checkpoint 1"), SA_OK);
	ASSERT_EQ(v.expect_root(4, 5, t.root(5), "checkpoint 2"), SA_OK);
	ASSERT_EQ(v.expect_root(4, 5, t.root(5), "checkpoint 4"), SA_OK);

	const std::vector<Result> r = v.run(log);

	ASSERT_EQ(r.size(), 1u);
	expect_ok(r[0], 4, 12);
}

TEST(TreeApiVerifier, WrongRootIsRewritten)
{
	const Log	log = make_chain(4, 12);
	const Tree	t = tree_of(log);

	for (uint64_t size : {1, 5, 12})
	{
		SCOPED_TRACE("wrong root at size " + std::to_string(size));

		Verifier	v;

		for (uint64_t s : {1, 5, 12})
			ASSERT_EQ(v.expect_root(4, s, s == size ? flipped(t.root(s)) : t.root(s),
									s == size ? "checkpoint 7" : "checkpoint 1"),
					  SA_OK);

		const std::vector<Result> r = v.run(log);

		ASSERT_EQ(r.size(), 1u);
		expect_bad(r[0], 4, 12, size,
				   "rewritten: entries 1.." + std::to_string(size)
				   + " do not have the root checkpoint 7 recorded");
	}

	/* the root of another size is not accepted either */
	Verifier	v;

	ASSERT_EQ(v.expect_root(4, 5, t.root(6), "checkpoint 7"), SA_OK);
	const std::vector<Result> r = v.run(log);

	ASSERT_EQ(r.size(), 1u);
	expect_bad(r[0], 4, 12, 5, "rewritten: entries 1..5 do not have the root checkpoint 7 recorded");
}

TEST(TreeApiVerifier, RootBeyondTheChainIsCut)
{
	const Log	log = make_chain(4, 12);
	const Tree	t = tree_of(log);
	Verifier	v;

	ASSERT_EQ(v.expect_root(4, 5, t.root(5), "checkpoint 1"), SA_OK);
	ASSERT_EQ(v.expect_root(4, 13, t.root(12), "checkpoint 9"), SA_OK);

	const std::vector<Result> r = v.run(log);

	ASSERT_EQ(r.size(), 1u);
	expect_bad(r[0], 4, 12, 13, "cut: checkpoint 9 recorded 13 entries, the chain has 12");
}

TEST(TreeApiVerifier, ExpectationOnAChainWithoutEntriesIsMissing)
{
	Log			log;

	for (uint32_t c : {1, 2, 3})
		for (StoredEntry &s : make_chain(c, 4))
			log.push_back(std::move(s));

	const Tree	t5 = tree_of(make_chain(5, 3));
	Verifier	v;

	ASSERT_EQ(v.expect_root(5, 3, t5.root(3), "checkpoint 7"), SA_OK);

	const std::vector<Result> r = v.run(log);

	/* chains 1..3 fed in order after chain 5 was registered: not reordered */
	ASSERT_EQ(r.size(), 4u);
	expect_ok(r[0], 1, 4);
	expect_ok(r[1], 2, 4);
	expect_ok(r[2], 3, 4);
	expect_bad(r[3], 5, 0, 1, "missing: checkpoint 7 recorded 3 entries, the chain has none");
	EXPECT_EQ(r[3].problem.rfind("missing:", 0), 0u);
}

TEST(TreeApiVerifier, ExpectationsOnAHigherChainDoNotMakeLowerOnesReordered)
{
	/* chain 5 registered first, with chain 2 held to its roots as well */
	Log			log;

	for (uint32_t c : {1, 2, 3})
		for (StoredEntry &s : make_chain(c, 6))
			log.push_back(std::move(s));

	const Log	five = make_chain(5, 6);
	const Tree	t5 = tree_of(five);
	const Tree	t2 = tree_of(make_chain(2, 6));
	Verifier	v;

	ASSERT_EQ(v.expect_root(5, 6, t5.root(6), "checkpoint 1"), SA_OK);
	ASSERT_EQ(v.expect_node(5, 1, 0, t5.node(1, 0)), SA_OK);
	ASSERT_EQ(v.expect_root(2, 6, t2.root(6), "checkpoint 1"), SA_OK);
	for (const StoredEntry &s : five)
		log.push_back(s);

	const std::vector<Result> r = v.run(log);

	ASSERT_EQ(r.size(), 4u);
	expect_ok(r[0], 1, 6);
	expect_ok(r[1], 2, 6);
	expect_ok(r[2], 3, 6);
	expect_ok(r[3], 5, 6);
}

TEST(TreeApiVerifier, CorrectNodesPass)
{
	const Log	log = make_chain(7, 600);
	const Tree	t = tree_of(log);
	Verifier	v;

	ASSERT_EQ(v.expect_node(7, 8, 0, t.node(8, 0)), SA_OK);
	ASSERT_EQ(v.expect_node(7, 8, 1, t.node(8, 1)), SA_OK);
	ASSERT_EQ(v.expect_node(7, 0, 599, t.node(0, 599)), SA_OK);
	ASSERT_EQ(v.expect_node(7, 3, 74, t.node(3, 74)), SA_OK);	/* leaves 592..599 */
	ASSERT_EQ(v.expect_root(7, 600, t.root(600), "checkpoint 2"), SA_OK);

	const std::vector<Result> r = v.run(log);

	ASSERT_EQ(r.size(), 1u);
	expect_ok(r[0], 7, 600);
}

TEST(TreeApiVerifier, WrongNodeIsRewritten)
{
	const Log	log = make_chain(7, 600);
	const Tree	t = tree_of(log);

	{
		Verifier	v;

		ASSERT_EQ(v.expect_node(7, 8, 0, t.node(8, 0)), SA_OK);
		ASSERT_EQ(v.expect_node(7, 8, 1, flipped(t.node(8, 1))), SA_OK);

		const std::vector<Result> r = v.run(log);

		ASSERT_EQ(r.size(), 1u);
		expect_bad(r[0], 7, 600, 257,
				   "rewritten: entries 257..512 do not have the root stored for them "
				   "(tree node level 8, index 1)");
	}
	{
		Verifier	v;

		ASSERT_EQ(v.expect_node(7, 8, 0, flipped(t.node(8, 0))), SA_OK);

		const std::vector<Result> r = v.run(log);

		ASSERT_EQ(r.size(), 1u);
		expect_bad(r[0], 7, 600, 1,
				   "rewritten: entries 1..256 do not have the root stored for them "
				   "(tree node level 8, index 0)");
	}
	{
		/* the level-8 node at index 1 given in place of index 0 */
		Verifier	v;

		ASSERT_EQ(v.expect_node(7, 8, 0, t.node(8, 1)), SA_OK);

		const std::vector<Result> r = v.run(log);

		ASSERT_EQ(r.size(), 1u);
		expect_bad(r[0], 7, 600, 1,
				   "rewritten: entries 1..256 do not have the root stored for them "
				   "(tree node level 8, index 0)");
	}
}

TEST(TreeApiVerifier, NodeBeyondTheChainIsCut)
{
	const Log	log = make_chain(7, 600);
	const Tree	t = tree_of(log);
	Verifier	v;

	ASSERT_EQ(v.expect_node(7, 8, 0, t.node(8, 0)), SA_OK);
	ASSERT_EQ(v.expect_node(7, 8, 2, t.node(8, 1)), SA_OK);	/* would cover 513..768 */

	const std::vector<Result> r = v.run(log);

	ASSERT_EQ(r.size(), 1u);
	expect_bad(r[0], 7, 600, 601, "cut: the stored tree covers 768 entries, the chain has 600");
}

TEST(TreeApiVerifier, ExpectationsAfterFeedingAreRefused)
{
	const Log	log = make_chain(1, 3);
	const Tree	t = tree_of(log);
	Verifier	v;
	sa_entry	e = log[0].entry.view();
	const Digest root = t.root(1);

	ASSERT_EQ(sa_verifier_feed(v.get(), &e, log[0].hash.data(), SA_DIGEST_LEN), SA_OK);
	EXPECT_EQ(v.expect_root(1, 3, t.root(3), "checkpoint 1"), SA_ERR_INTERNAL);
	EXPECT_EQ(v.expect_node(1, 0, 0, t.node(0, 0)), SA_ERR_INTERNAL);
	/* a chain not yet fed may still be held */
	EXPECT_EQ(v.expect_root(2, 3, root, "checkpoint 1"), SA_OK);
	/* size 0, null arguments, an impossible node */
	EXPECT_EQ(v.expect_root(3, 0, root, "checkpoint 1"), SA_ERR_INTERNAL);
	EXPECT_EQ(sa_verifier_expect_root(v.get(), 3, 1, nullptr, "checkpoint 1"), SA_ERR_INTERNAL);
	EXPECT_EQ(sa_verifier_expect_root(v.get(), 3, 1, root.data(), nullptr), SA_ERR_INTERNAL);
	EXPECT_EQ(sa_verifier_expect_root(nullptr, 3, 1, root.data(), "x"), SA_ERR_INTERNAL);
	EXPECT_EQ(sa_verifier_expect_node(v.get(), 3, 0, 0, nullptr), SA_ERR_INTERNAL);
	EXPECT_EQ(v.expect_node(3, 64, 0, root), SA_ERR_INTERNAL);
	EXPECT_EQ(sa_verifier_finish(v.get()), SA_OK);
	EXPECT_EQ(v.expect_root(4, 1, root, "checkpoint 1"), SA_ERR_INTERNAL);
	EXPECT_EQ(v.expect_node(4, 0, 0, root), SA_ERR_INTERNAL);
}

}								/* namespace */
