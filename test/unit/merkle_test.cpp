/*
 * merkle_test.cpp — RFC 6962 / RFC 9162 trees, proofs and the builder
 * (src/core/merkle.hpp).
 *
 * First the published vectors every RFC 6962 implementation is checked
 * against: the eight leaves of Certificate Transparency's tests, the roots
 * at sizes 1 to 8 and a set of inclusion and consistency proofs, as given
 * in transparency-dev/merkle, proof/verify_test.go (which took them from
 * certificate-transparency), and the hasher vectors of
 * transparency-dev/merkle, rfc6962/rfc6962_test.go.  Then properties over
 * many sizes: every proof generated verifies and every tampered one fails
 * (the generator and the verifier are written independently, so each
 * checks the other), the builder agrees with the recursive definition at
 * every size, and proofs served from the nodes the builder reports, read
 * through the plan functions, are the same as from a full tree.
 */
#include "core/cpp_only.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <cstring>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "core/merkle.hpp"
#include "test_support.hpp"

using namespace sensitive_audit;
using sa_test::digest_from_hex;
using sa_test::to_hex;

namespace
{

/* ---- An independent reference: the RFC's definitions, written plainly -- */

Digest
sha256(const std::string &bytes)
{
	Digest		d{};
	unsigned int n = 0;

	if (EVP_Digest(bytes.data(), bytes.size(), d.data(), &n, EVP_sha256(), nullptr) != 1)
		throw std::runtime_error("EVP_Digest failed");
	return d;
}

std::string
as_string(const Digest &d)
{
	return std::string(reinterpret_cast<const char *>(d.data()), d.size());
}

Digest
ref_leaf(const std::string &data)
{
	return sha256(std::string(1, '\0') + data);
}

Digest
ref_node(const Digest &l, const Digest &r)
{
	return sha256(std::string(1, '\1') + as_string(l) + as_string(r));
}

/* MTH(D[b:e]) over leaf hashes, exactly as RFC 6962 section 2.1 reads. */
Digest
ref_mth(const std::vector<Digest> &leaves, size_t b, size_t e)
{
	const size_t n = e - b;

	if (n == 0)
		return sha256("");
	if (n == 1)
		return leaves[b];

	size_t		k = 1;

	while (k * 2 < n)
		k *= 2;
	return ref_node(ref_mth(leaves, b, b + k), ref_mth(leaves, b + k, e));
}

Digest
ref_root(const std::vector<Digest> &leaves, size_t n)
{
	return ref_mth(leaves, 0, n);
}

/* ---- Helpers ------------------------------------------------------------ */

/* The leaves of the CT / transparency-dev test tree. */
const std::vector<std::string> kRfcLeaves = {
	std::string(),
	std::string("\x00", 1),
	std::string("\x10"),
	std::string("\x20\x21"),
	std::string("\x30\x31"),
	std::string("\x40\x41\x42\x43"),
	std::string("\x50\x51\x52\x53\x54\x55\x56\x57"),
	std::string("\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f"),
};

/* Their roots at sizes 1..8 (verify_test.go, `roots`). */
const char *const kRfcRoots[] = {
	"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
	"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
	"aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
	"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
	"4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
	"76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
	"ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
	"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

std::vector<Digest>
rfc_leaf_hashes()
{
	std::vector<std::string_view> views(kRfcLeaves.begin(), kRfcLeaves.end());
	std::vector<Digest> out;

	if (hash_leaves(views.data(), views.size(), out) != SA_OK)
		throw std::runtime_error("hash_leaves failed");
	return out;
}

std::vector<Digest>
hexes(std::initializer_list<const char *> list)
{
	std::vector<Digest> out;

	for (const char *h : list)
		out.push_back(digest_from_hex(h));
	return out;
}

/* n random leaf hashes from a fixed seed, so failures reproduce. */
std::vector<Digest>
random_leaves(size_t n, uint64_t seed)
{
	std::mt19937_64 rng(seed);
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
};

std::vector<Digest>
inclusion(const Tree &t, uint64_t index, uint64_t size)
{
	std::vector<Digest> proof;

	EXPECT_EQ(inclusion_proof(index, size, t.mem.reader(), proof), SA_OK);
	return proof;
}

std::vector<Digest>
consistency(const Tree &t, uint64_t m, uint64_t n)
{
	std::vector<Digest> proof;

	EXPECT_EQ(consistency_proof(m, n, t.mem.reader(), proof), SA_OK);
	return proof;
}

int
verify_inc(uint64_t index, uint64_t size, const Digest &leaf, const std::vector<Digest> &proof,
		   const Digest &root)
{
	return verify_inclusion(index, size, leaf, proof.data(), proof.size(), root);
}

int
verify_con(uint64_t m, uint64_t n, const Digest &r1, const Digest &r2,
		   const std::vector<Digest> &proof)
{
	return verify_consistency(m, n, r1, r2, proof.data(), proof.size());
}

Digest
flip(Digest d, unsigned bit)
{
	d[bit / 8 % SA_DIGEST_LEN] ^= static_cast<uint8_t>(1u << (bit % 8));
	return d;
}

/* A digest that is no node of any tree here: the "abacaba" of verify_test.go. */
const Digest kSomeHash =
	digest_from_hex("abacaba000000000000000000000000000000000000000000060061e00123456");

/*
 * The tampered variants transparency-dev's corruptInclusionProof tries
 * (proof/verify_test.go), none of which may verify.
 */
void
expect_inclusion_tampering_fails(uint64_t index, uint64_t size, const Digest &leaf,
								 const std::vector<Digest> &proof, const Digest &root)
{
	auto		fails = [&](uint64_t i, uint64_t s, const Digest &l,
							const std::vector<Digest> &p, const Digest &r, const char *what) {
		EXPECT_NE(verify_inc(i, s, l, p, r), SA_OK)
			<< what << " (index " << index << ", size " << size << ")";
	};
	std::vector<Digest> p;

	fails(index - 1, size, leaf, proof, root, "index - 1");
	fails(index + 1, size, leaf, proof, root, "index + 1");
	if ((index ^ 2) != index)
		fails(index ^ 2, size, leaf, proof, root, "index ^ 2");
	fails(index, size * 2, leaf, proof, root, "size * 2");
	fails(index, size / 2, leaf, proof, root, "size / 2");
	fails(index, size, kSomeHash, proof, root, "wrong leaf");
	fails(index, size, leaf, proof, kEmptyTreeRoot, "empty root");
	fails(index, size, leaf, proof, kSomeHash, "random root");
	p = proof;
	p.push_back(Digest{});
	fails(index, size, leaf, p, root, "trailing garbage");
	p = proof;
	p.push_back(root);
	fails(index, size, leaf, p, root, "trailing root");
	p = proof;
	p.insert(p.begin(), Digest{});
	fails(index, size, leaf, p, root, "preceding garbage");
	p = proof;
	p.insert(p.begin(), root);
	fails(index, size, leaf, p, root, "preceding root");
	for (size_t i = 0; i < proof.size(); i++)
	{
		p = proof;
		p[i] = flip(p[i], 3);
		fails(index, size, leaf, p, root, "modified proof element");
	}
	if (!proof.empty())
	{
		p = proof;
		p.pop_back();
		fails(index, size, leaf, p, root, "removed component");
	}
	if (proof.size() > 1)
	{
		p = proof;
		p.insert(p.begin() + 1, kSomeHash);
		fails(index, size, leaf, p, root, "inserted component");
	}
}

/* Likewise corruptConsistencyProof, for a proof with at least one node. */
void
expect_consistency_tampering_fails(uint64_t m, uint64_t n, const Digest &r1, const Digest &r2,
								   const std::vector<Digest> &proof)
{
	auto		fails = [&](uint64_t a, uint64_t b, const Digest &x, const Digest &y,
							const std::vector<Digest> &p, const char *what) {
		EXPECT_NE(verify_con(a, b, x, y, p), SA_OK)
			<< what << " (sizes " << m << " -> " << n << ")";
	};
	std::vector<Digest> p;

	fails(m - 1, n, r1, r2, proof, "m - 1");
	fails(m + 1, n, r1, r2, proof, "m + 1");
	if ((m ^ 2) != m)
		fails(m ^ 2, n, r1, r2, proof, "m ^ 2");
	fails(m, n * 2, r1, r2, proof, "n * 2");
	fails(m, n / 2, r1, r2, proof, "n / 2");
	fails(m, n, kSomeHash, r2, proof, "wrong old root");
	fails(m, n, r1, kSomeHash, proof, "wrong new root");
	fails(m, n, r2, r1, proof, "swapped roots");
	fails(m, n, r1, r2, {}, "empty proof");
	for (const Digest &extra : {Digest{}, r1, r2})
	{
		p = proof;
		p.push_back(extra);
		fails(m, n, r1, r2, p, "trailing node");
		p = proof;
		p.insert(p.begin(), extra);
		fails(m, n, r1, r2, p, "preceding node");
	}
	p = proof;
	p.insert(p.begin(), proof[0]);
	fails(m, n, r1, r2, p, "preceding proof[0]");
	p = proof;
	p.pop_back();
	fails(m, n, r1, r2, p, "truncated proof");
	for (size_t i = 0; i < proof.size(); i++)
	{
		p = proof;
		p[i] = flip(p[i], 4);
		fails(m, n, r1, r2, p, "modified proof element");
	}
}

/* ---- Published vectors -------------------------------------------------- */

TEST(MerkleVectors, HasherMatchesRfc6962Vectors)
{
	/* transparency-dev/merkle rfc6962/rfc6962_test.go */
	Digest		d;

	EXPECT_EQ(to_hex(kEmptyTreeRoot),
			  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	ASSERT_EQ(hash_leaf(nullptr, 0, d), SA_OK);
	EXPECT_EQ(to_hex(d), "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
	ASSERT_EQ(hash_leaf("L123456", 7, d), SA_OK);
	EXPECT_EQ(to_hex(d), "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56");
	EXPECT_NE(d, kEmptyTreeRoot);

	ASSERT_EQ(tree_root(nullptr, 0, d), SA_OK);
	EXPECT_EQ(d, kEmptyTreeRoot);
}

TEST(MerkleVectors, NodeHashIsPrefixedConcatenation)
{
	const Digest l = sha256("left");
	const Digest r = sha256("right");
	Digest		d;

	ASSERT_EQ(hash_node(l, r, d), SA_OK);
	EXPECT_EQ(d, ref_node(l, r));
	EXPECT_NE(d, ref_leaf(as_string(l) + as_string(r)));	/* second preimage */
	ASSERT_EQ(hash_node(r, l, d), SA_OK);
	EXPECT_NE(d, ref_node(l, r));
}

TEST(MerkleVectors, LongLeafDataIsHashedWhole)
{
	const std::string data(1000, 'x');
	Digest		d;

	ASSERT_EQ(hash_leaf(data.data(), data.size(), d), SA_OK);
	EXPECT_EQ(d, ref_leaf(data));
}

TEST(MerkleVectors, RootsOfTheEightLeafTree)
{
	const std::vector<Digest> leaves = rfc_leaf_hashes();
	Tree		t(leaves);

	for (size_t n = 1; n <= 8; n++)
	{
		Digest		d;

		ASSERT_EQ(tree_root(leaves.data(), n, d), SA_OK);
		EXPECT_EQ(to_hex(d), kRfcRoots[n - 1]) << "size " << n;
		EXPECT_EQ(d, ref_root(leaves, n));
		ASSERT_EQ(range_root(0, n, t.mem.reader(), d), SA_OK);
		EXPECT_EQ(to_hex(d), kRfcRoots[n - 1]) << "size " << n;
	}
}

TEST(MerkleVectors, InclusionProofsOfTheEightLeafTree)
{
	/* verify_test.go `inclusionProofs`, whose leaf numbers count from 1. */
	struct Vector
	{
		uint64_t	index;
		uint64_t	size;
		std::vector<Digest> proof;
	};
	const std::vector<Vector> vectors = {
		{0, 1, {}},
		{0, 8, hexes({"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
					  "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
					  "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"})},
		{5, 8, hexes({"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
					  "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
					  "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"})},
		{2, 3, hexes({"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"})},
		{1, 5, hexes({"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
					  "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
					  "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"})},
	};
	const std::vector<Digest> leaves = rfc_leaf_hashes();
	Tree		t(leaves);

	for (const Vector &v : vectors)
	{
		const Digest root = digest_from_hex(kRfcRoots[v.size - 1]);
		const std::vector<Digest> proof = inclusion(t, v.index, v.size);
		Digest		computed;

		EXPECT_EQ(proof, v.proof) << "leaf " << v.index << " of " << v.size;
		EXPECT_EQ(verify_inc(v.index, v.size, leaves[v.index], v.proof, root), SA_OK);
		ASSERT_EQ(root_from_inclusion_proof(v.index, v.size, leaves[v.index], v.proof.data(),
											v.proof.size(), computed),
				  SA_OK);
		EXPECT_EQ(computed, root);
		if (v.size > 1)
			expect_inclusion_tampering_fails(v.index, v.size, leaves[v.index], v.proof, root);
	}
}

TEST(MerkleVectors, ConsistencyProofsOfTheEightLeafTree)
{
	/* verify_test.go `consistencyProofs`. */
	struct Vector
	{
		uint64_t	m;
		uint64_t	n;
		std::vector<Digest> proof;
	};
	const std::vector<Vector> vectors = {
		{1, 1, {}},
		{1, 8, hexes({"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
					  "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
					  "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"})},
		{6, 8, hexes({"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
					  "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
					  "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"})},
		{2, 5, hexes({"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
					  "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"})},
		{6, 7, hexes({"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
					  "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
					  "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"})},
	};
	Tree		t(rfc_leaf_hashes());

	for (const Vector &v : vectors)
	{
		const Digest r1 = digest_from_hex(kRfcRoots[v.m - 1]);
		const Digest r2 = digest_from_hex(kRfcRoots[v.n - 1]);

		EXPECT_EQ(consistency(t, v.m, v.n), v.proof) << v.m << " -> " << v.n;
		EXPECT_EQ(verify_con(v.m, v.n, r1, r2, v.proof), SA_OK) << v.m << " -> " << v.n;
		if (!v.proof.empty())
			expect_consistency_tampering_fails(v.m, v.n, r1, r2, v.proof);
	}
}

TEST(MerkleVectors, ConsistencyEdgeCasesOfVerifyTest)
{
	/* verify_test.go TestVerifyConsistency, with this API's stricter size 0. */
	const Digest r1 = sha256("don't care 1");
	const Digest r2 = sha256("don't care 2");
	const std::vector<Digest> none;
	const std::vector<Digest> one = {kEmptyTreeRoot};

	EXPECT_NE(verify_con(0, 0, r1, r2, none), SA_OK);
	EXPECT_NE(verify_con(1, 1, r1, r2, none), SA_OK);
	EXPECT_EQ(verify_con(0, 0, kEmptyTreeRoot, kEmptyTreeRoot, none), SA_OK);
	EXPECT_EQ(verify_con(0, 1, kEmptyTreeRoot, r2, none), SA_OK);
	EXPECT_NE(verify_con(0, 1, r1, r2, none), SA_OK);	/* old root of size 0 is fixed */
	EXPECT_EQ(verify_con(1, 1, r2, r2, none), SA_OK);
	EXPECT_EQ(verify_con(1, 0, r1, r2, none), SA_ERR_RANGE);
	EXPECT_EQ(verify_con(2, 1, r1, r2, none), SA_ERR_RANGE);
	EXPECT_EQ(verify_con(1, 2, r1, r2, none), SA_ERR_VERIFY);
	EXPECT_NE(verify_con(0, 0, kEmptyTreeRoot, kEmptyTreeRoot, one), SA_OK);
	EXPECT_NE(verify_con(0, 1, kEmptyTreeRoot, kEmptyTreeRoot, one), SA_OK);
	EXPECT_NE(verify_con(1, 1, kEmptyTreeRoot, kEmptyTreeRoot, one), SA_OK);
}

TEST(MerkleVectors, InclusionEdgeCasesOfVerifyTest)
{
	/* verify_test.go TestVerifyInclusion: no (index, size) below is valid. */
	const std::vector<Digest> none;

	for (auto [index, size] : {std::pair<uint64_t, uint64_t>{0, 0}, {1, 0}, {2, 1}})
	{
		EXPECT_EQ(verify_inc(index, size, kSomeHash, none, kEmptyTreeRoot), SA_ERR_RANGE);
		EXPECT_EQ(verify_inc(index, size, kSomeHash, none, kSomeHash), SA_ERR_RANGE);
	}
	EXPECT_EQ(verify_inc(0, 1, kSomeHash, none, kEmptyTreeRoot), SA_ERR_VERIFY);

	/* TestVerifyInclusionSingleEntry: in a tree of one, root = leaf hash. */
	Digest		leaf;

	ASSERT_EQ(hash_leaf("data", 4, leaf), SA_OK);
	EXPECT_EQ(verify_inc(0, 1, leaf, none, leaf), SA_OK);
	EXPECT_EQ(verify_inc(0, 1, leaf, none, kSomeHash), SA_ERR_VERIFY);
	EXPECT_EQ(verify_inc(0, 1, kSomeHash, none, leaf), SA_ERR_VERIFY);
}

/* ---- Properties over many sizes ----------------------------------------- */

TEST(MerkleProofs, EveryInclusionProofVerifiesAndTamperingFails)
{
	for (size_t n : {1, 2, 3, 7, 8, 9, 1000})
	{
		Tree		t(random_leaves(n, 0x5eed0000 + n));
		const Digest root = ref_root(t.leaves, n);

		for (uint64_t i = 0; i < n; i++)
		{
			const std::vector<Digest> proof = inclusion(t, i, n);

			ASSERT_EQ(verify_inc(i, n, t.leaves[i], proof, root), SA_OK)
				<< "leaf " << i << " of " << n;
			/* The full list of tamperings for the small trees, a sample of the large. */
			if (n < 1000 || i % 97 == 0 || i == n - 1)
			{
				expect_inclusion_tampering_fails(i, n, t.leaves[i], proof, root);
			}
			else if (!proof.empty())
			{
				EXPECT_EQ(verify_inc(i, n, t.leaves[i], {proof.begin() + 1, proof.end()}, root),
						  SA_ERR_VERIFY);
			}
			EXPECT_EQ(verify_inc(i, n, flip(t.leaves[i], 0), proof, root), SA_ERR_VERIFY);
		}
	}
}

TEST(MerkleProofs, ProofLengthsAreLogarithmic)
{
	Tree		t(random_leaves(1000, 7));

	for (uint64_t i = 0; i < 1000; i++)
		EXPECT_LE(inclusion(t, i, 1000).size(), 10u);	/* ceil(log2(1000)) */
	for (uint64_t m = 1; m < 1000; m += 37)
		EXPECT_LE(consistency(t, m, 1000).size(), 20u);
}

TEST(MerkleProofs, EveryConsistencyProofVerifiesAndTamperingFails)
{
	const size_t kMax = 40;
	Tree		t(random_leaves(kMax, 1234));
	std::vector<Digest> roots;

	for (size_t n = 0; n <= kMax; n++)
		roots.push_back(ref_root(t.leaves, n));
	for (uint64_t n = 0; n <= kMax; n++)
	{
		for (uint64_t m = 0; m <= n; m++)
		{
			const std::vector<Digest> proof = consistency(t, m, n);

			ASSERT_EQ(verify_con(m, n, roots[m], roots[n], proof), SA_OK) << m << " -> " << n;
			if (m == 0 || m == n)
			{
				EXPECT_TRUE(proof.empty());
				if (n > 0)
				{
					EXPECT_EQ(verify_con(m, n, roots[m], roots[n], {roots[n]}), SA_ERR_VERIFY);
				}
				continue;
			}
			expect_consistency_tampering_fails(m, n, roots[m], roots[n], proof);
			/* The proof is for these two trees only: no other old tree passes. */
			for (uint64_t other = 1; other < n; other++)
			{
				if (other != m)
				{
					EXPECT_NE(verify_con(other, n, roots[other], roots[n], proof), SA_OK)
						<< m << " -> " << n << " used for " << other;
				}
			}
		}
	}
}

TEST(MerkleProofs, RangeRootOfAnyRangeIsItsOwnTreeRoot)
{
	Tree		t(random_leaves(21, 99));

	for (uint64_t b = 0; b <= 21; b++)
	{
		for (uint64_t e = b; e <= 21; e++)
		{
			Digest		d;

			ASSERT_EQ(range_root(b, e, t.mem.reader(), d), SA_OK);
			EXPECT_EQ(d, ref_mth(t.leaves, b, e)) << "[" << b << ", " << e << ")";
		}
	}
}

TEST(MerkleProofs, DuplicatedLastLeafChangesTheRoot)
{
	/* CVE-2012-2459: [a, b, c] and [a, b, c, c] must not share a root. */
	std::vector<Digest> leaves = random_leaves(3, 5);
	Digest		r3,
				r4;

	ASSERT_EQ(tree_root(leaves.data(), 3, r3), SA_OK);
	leaves.push_back(leaves[2]);
	ASSERT_EQ(tree_root(leaves.data(), 4, r4), SA_OK);
	EXPECT_NE(r3, r4);

	/* and an inner node cannot stand in for a leaf */
	Digest		inner;

	ASSERT_EQ(tree_root(leaves.data(), 2, inner), SA_OK);
	EXPECT_NE(verify_inc(0, 1, inner, {}, r4), SA_OK);
	EXPECT_NE(verify_inc(0, 3, inner, {leaves[2]}, r3), SA_OK);
}

/* ---- Builder ------------------------------------------------------------ */

TEST(MerkleBuilderTest, RootAtEverySizeEqualsRecursiveRoot)
{
	const size_t kMax = 300;
	const std::vector<Digest> leaves = random_leaves(kMax, 42);
	std::unique_ptr<MerkleBuilder> b = MerkleBuilder::create();
	Digest		d;

	ASSERT_TRUE(b);
	ASSERT_EQ(b->root(d), SA_OK);
	EXPECT_EQ(d, kEmptyTreeRoot);
	for (size_t n = 1; n <= kMax; n++)
	{
		ASSERT_EQ(b->append_leaf_hash(leaves[n - 1]), SA_OK);
		ASSERT_EQ(b->size(), n);
		ASSERT_EQ(b->root(d), SA_OK);
		ASSERT_EQ(d, ref_root(leaves, n)) << "size " << n;

		Digest		rec;

		ASSERT_EQ(tree_root(leaves.data(), n, rec), SA_OK);
		ASSERT_EQ(rec, d);
	}
}

TEST(MerkleBuilderTest, RfcLeavesByData)
{
	std::unique_ptr<MerkleBuilder> b = MerkleBuilder::create();

	ASSERT_TRUE(b);
	for (size_t n = 1; n <= 8; n++)
	{
		Digest		d;

		ASSERT_EQ(b->append_data(kRfcLeaves[n - 1].data(), kRfcLeaves[n - 1].size()), SA_OK);
		ASSERT_EQ(b->root(d), SA_OK);
		EXPECT_EQ(to_hex(d), kRfcRoots[n - 1]);
	}
}

TEST(MerkleBuilderTest, AppendEntryHashesTheEntryAsLeafData)
{
	std::unique_ptr<MerkleBuilder> b = MerkleBuilder::create();
	const Digest entry = sha256("an entry");
	Digest		d;

	ASSERT_TRUE(b);
	ASSERT_EQ(b->append_entry(entry.data()), SA_OK);
	ASSERT_EQ(b->root(d), SA_OK);
	EXPECT_EQ(d, ref_leaf(as_string(entry)));
}

TEST(MerkleBuilderTest, ReportsEveryCompletedNodeOnce)
{
	const size_t kMax = 100;
	Tree		t(random_leaves(kMax, 17));
	std::unique_ptr<MerkleBuilder> b = MerkleBuilder::create();
	std::map<std::pair<unsigned, uint64_t>, Digest> stored;

	ASSERT_TRUE(b);
	for (size_t n = 1; n <= kMax; n++)
	{
		ASSERT_EQ(b->append_leaf_hash(t.leaves[n - 1]), SA_OK);
		ASSERT_GE(b->completed_count(), 1u);
		EXPECT_EQ(b->completed(0).level, 0u);
		EXPECT_EQ(b->completed(0).index, n - 1);
		for (size_t j = 0; j < b->completed_count(); j++)
		{
			const Subtree s = b->completed(j);

			EXPECT_EQ(s.level, j);
			/* A node is complete exactly when its last leaf is the one just added. */
			EXPECT_EQ(s.first_leaf() + s.leaf_count(), n);
			EXPECT_EQ(b->completed_hash(j), ref_mth(t.leaves, s.first_leaf(), n));
			EXPECT_TRUE(stored.emplace(std::make_pair(s.level, s.index), b->completed_hash(j))
							.second);
		}

		Subtree		expect[64];
		const size_t k = perfect_subtrees(n, expect);

		ASSERT_EQ(b->stack_count(), k);
		for (size_t j = 0; j < k; j++)
		{
			EXPECT_EQ(b->stack_node(j).level, expect[j].level);
			EXPECT_EQ(b->stack_node(j).index, expect[j].index);
			EXPECT_EQ(b->stack_hash(j), stored.at({expect[j].level, expect[j].index}));
		}
	}
	/* n leaves have n + n/2 + n/4 + ... complete nodes: 2n - popcount(n). */
	EXPECT_EQ(stored.size(), 2 * kMax - static_cast<size_t>(__builtin_popcountll(kMax)));
}

TEST(MerkleBuilderTest, ResumeContinuesTheSameTree)
{
	const std::vector<Digest> leaves = random_leaves(77, 3);
	Tree		t(leaves);

	for (uint64_t at : {0, 1, 2, 5, 32, 63, 64, 70})
	{
		std::unique_ptr<MerkleBuilder> first = MerkleBuilder::create();
		std::unique_ptr<MerkleBuilder> again = MerkleBuilder::create();
		std::unique_ptr<MerkleBuilder> viareader = MerkleBuilder::create();
		std::vector<Digest> stack;

		ASSERT_TRUE(first && again && viareader);
		for (uint64_t i = 0; i < at; i++)
			ASSERT_EQ(first->append_leaf_hash(leaves[i]), SA_OK);
		for (size_t j = 0; j < first->stack_count(); j++)
			stack.push_back(first->stack_hash(j));
		ASSERT_EQ(again->resume(at, stack.data(), stack.size()), SA_OK);
		ASSERT_EQ(viareader->resume(at, t.mem.reader()), SA_OK);
		EXPECT_EQ(again->completed_count(), 0u);
		for (uint64_t i = at; i < leaves.size(); i++)
		{
			Digest		a,
						c;

			ASSERT_EQ(again->append_leaf_hash(leaves[i]), SA_OK);
			ASSERT_EQ(viareader->append_leaf_hash(leaves[i]), SA_OK);
			ASSERT_EQ(again->root(a), SA_OK);
			ASSERT_EQ(viareader->root(c), SA_OK);
			EXPECT_EQ(a, ref_root(leaves, i + 1));
			EXPECT_EQ(c, a);
		}
	}
}

TEST(MerkleBuilderTest, ResumeRejectsWrongCount)
{
	std::unique_ptr<MerkleBuilder> b = MerkleBuilder::create();
	const std::vector<Digest> two = random_leaves(2, 1);

	ASSERT_TRUE(b);
	EXPECT_EQ(b->resume(3, two.data(), 1), SA_ERR_RANGE);	/* 3 = 2 + 1: two subtrees */
	EXPECT_EQ(b->resume(4, two.data(), 2), SA_ERR_RANGE);
	EXPECT_EQ(b->size(), 0u);
	EXPECT_EQ(b->resume(3, two.data(), 2), SA_OK);
	EXPECT_EQ(b->size(), 3u);
}

TEST(MerkleBuilderTest, PerfectSubtreesOfASize)
{
	Subtree		s[64];

	EXPECT_EQ(perfect_subtrees(0, s), 0u);
	ASSERT_EQ(perfect_subtrees(13, s), 3u);	/* 8 + 4 + 1 */
	EXPECT_EQ(s[0].level, 3u);
	EXPECT_EQ(s[0].index, 0u);
	EXPECT_EQ(s[1].level, 2u);
	EXPECT_EQ(s[1].index, 2u);	/* leaves 8..11 */
	EXPECT_EQ(s[2].level, 0u);
	EXPECT_EQ(s[2].index, 12u);
	EXPECT_EQ(perfect_subtrees(~uint64_t{0}, s), 64u);
	EXPECT_EQ(s[63].index, ~uint64_t{0} - 1);
}

/* ---- Serving proofs from stored nodes ----------------------------------- */

TEST(MerkleStorage, ProofsFromStoredNodesMatchAndReadFew)
{
	const size_t kMax = 1000;
	Tree		t(random_leaves(kMax, 2024));
	std::unique_ptr<MerkleBuilder> b = MerkleBuilder::create();
	std::map<std::pair<unsigned, uint64_t>, Digest> stored;

	ASSERT_TRUE(b);
	for (const Digest &leaf : t.leaves)
	{
		ASSERT_EQ(b->append_leaf_hash(leaf), SA_OK);
		for (size_t j = 0; j < b->completed_count(); j++)
			stored[{b->completed(j).level, b->completed(j).index}] = b->completed_hash(j);
	}

	size_t		reads = 0;
	auto		from_storage = [&](Subtree s, uint8_t *out) -> int {
		auto		it = stored.find({s.level, s.index});

		reads++;
		if (it == stored.end())
			return SA_ERR_RANGE;
		std::memcpy(out, it->second.data(), SA_DIGEST_LEN);
		return SA_OK;
	};
	const SubtreeReader reader = make_reader(from_storage);

	for (uint64_t size : {1, 2, 3, 100, 513, 999, 1000})
	{
		Digest		root;

		reads = 0;
		ASSERT_EQ(range_root(0, size, reader, root), SA_OK);
		EXPECT_EQ(root, ref_root(t.leaves, size));
		EXPECT_EQ(reads, static_cast<size_t>(__builtin_popcountll(size)));

		for (uint64_t i = 0; i < size; i += 7)
		{
			std::vector<Digest> proof;
			std::vector<Subtree> plan;

			reads = 0;
			ASSERT_EQ(inclusion_proof(i, size, reader, proof), SA_OK);
			EXPECT_EQ(proof, inclusion(t, i, size));
			ASSERT_EQ(inclusion_proof_plan(i, size, plan), SA_OK);
			EXPECT_EQ(plan.size(), reads);
			EXPECT_LE(reads, 2u * 10u);
		}
		for (uint64_t m = 0; m <= size; m += 11)
		{
			std::vector<Digest> proof;
			std::vector<Subtree> plan;

			reads = 0;
			ASSERT_EQ(consistency_proof(m, size, reader, proof), SA_OK);
			EXPECT_EQ(proof, consistency(t, m, size));
			ASSERT_EQ(consistency_proof_plan(m, size, plan), SA_OK);
			EXPECT_EQ(plan.size(), reads);
			EXPECT_LE(reads, 3u * 10u);
		}
	}
}

TEST(MerkleStorage, PlanListsExactlyWhatTheProofReads)
{
	Tree		t(random_leaves(50, 8));
	const SubtreeReader inner = t.mem.reader();
	std::vector<std::pair<unsigned, uint64_t>> asked;
	auto		recording = [&](Subtree s, uint8_t *out) -> int {
		asked.emplace_back(s.level, s.index);
		return inner.read(inner.ctx, s, out);
	};
	auto		as_pairs = [](const std::vector<Subtree> &plan) {
		std::vector<std::pair<unsigned, uint64_t>> out;

		for (const Subtree &s : plan)
			out.emplace_back(s.level, s.index);
		return out;
	};
	std::vector<Subtree> plan;
	std::vector<Digest> proof;
	Digest		d;

	ASSERT_EQ(inclusion_proof_plan(13, 50, plan), SA_OK);
	ASSERT_EQ(inclusion_proof(13, 50, make_reader(recording), proof), SA_OK);
	EXPECT_EQ(as_pairs(plan), asked);
	EXPECT_EQ(plan.size(), proof.size() + 1);	/* the right part [32, 50) takes 2 reads */

	asked.clear();
	ASSERT_EQ(consistency_proof_plan(21, 50, plan), SA_OK);
	ASSERT_EQ(consistency_proof(21, 50, make_reader(recording), proof), SA_OK);
	EXPECT_EQ(as_pairs(plan), asked);

	asked.clear();
	ASSERT_EQ(range_root_plan(0, 50, plan), SA_OK);
	ASSERT_EQ(range_root(0, 50, make_reader(recording), d), SA_OK);
	EXPECT_EQ(as_pairs(plan), asked);
	/* 50 = 32 + 16 + 2 */
	EXPECT_EQ(as_pairs(plan), (std::vector<std::pair<unsigned, uint64_t>>{{5, 0}, {4, 2}, {1, 24}}));
}

/* ---- Error codes -------------------------------------------------------- */

TEST(MerkleErrors, OutOfRangeArguments)
{
	Tree		t(random_leaves(8, 1));
	std::vector<Digest> proof;
	std::vector<Subtree> plan;
	Digest		d;

	EXPECT_EQ(inclusion_proof(8, 8, t.mem.reader(), proof), SA_ERR_RANGE);
	EXPECT_EQ(inclusion_proof(0, 0, t.mem.reader(), proof), SA_ERR_RANGE);
	EXPECT_EQ(consistency_proof(9, 8, t.mem.reader(), proof), SA_ERR_RANGE);
	EXPECT_EQ(range_root(5, 4, t.mem.reader(), d), SA_ERR_RANGE);
	EXPECT_EQ(inclusion_proof_plan(3, 3, plan), SA_ERR_RANGE);
	EXPECT_EQ(consistency_proof_plan(4, 3, plan), SA_ERR_RANGE);
	EXPECT_EQ(range_root_plan(4, 3, plan), SA_ERR_RANGE);
	/* A tree of 8 leaves has no node for leaf 8. */
	EXPECT_EQ(inclusion_proof(0, 9, t.mem.reader(), proof), SA_ERR_RANGE);
	EXPECT_EQ(range_root(3, 3, t.mem.reader(), d), SA_OK);
	EXPECT_EQ(d, kEmptyTreeRoot);
	EXPECT_STREQ(core_strerror(SA_ERR_RANGE), "leaf index or tree size out of range");
	EXPECT_STREQ(core_strerror(SA_ERR_NOMEM), "out of memory");
}

TEST(MerkleErrors, ReaderFailuresArePassedOnAndNothingThrows)
{
	std::vector<Digest> proof;
	Digest		d;
	auto		failing = [](Subtree, uint8_t *) -> int { return SA_ERR_CRYPTO; };
	auto		throwing = [](Subtree, uint8_t *) -> int { throw std::runtime_error("boom"); };
	auto		custom = [](Subtree, uint8_t *) -> int { return 4711; };

	EXPECT_EQ(inclusion_proof(1, 5, make_reader(failing), proof), SA_ERR_CRYPTO);
	EXPECT_EQ(consistency_proof(2, 5, make_reader(throwing), proof), SA_ERR_INTERNAL);
	EXPECT_EQ(range_root(0, 5, make_reader(custom), d), 4711);
	EXPECT_EQ(inclusion_proof(0, 5, SubtreeReader{}, proof), SA_ERR_INTERNAL);

	std::unique_ptr<MerkleBuilder> b = MerkleBuilder::create();

	ASSERT_TRUE(b);
	EXPECT_EQ(b->resume(3, make_reader(failing)), SA_ERR_CRYPTO);
	EXPECT_EQ(b->resume(3, make_reader(throwing)), SA_ERR_INTERNAL);
	EXPECT_EQ(b->size(), 0u);
}

TEST(MerkleErrors, NullArguments)
{
	Digest		d;
	std::vector<Digest> v;

	EXPECT_EQ(hash_leaf(nullptr, 1, d), SA_ERR_INTERNAL);
	EXPECT_EQ(hash_entry_leaf(nullptr, d), SA_ERR_INTERNAL);
	EXPECT_EQ(tree_root(nullptr, 1, d), SA_ERR_INTERNAL);
	EXPECT_EQ(hash_leaves(nullptr, 1, v), SA_ERR_INTERNAL);
	EXPECT_EQ(verify_inclusion(0, 2, d, nullptr, 1, d), SA_ERR_INTERNAL);
	EXPECT_EQ(verify_consistency(1, 2, d, d, nullptr, 1), SA_ERR_INTERNAL);
}

}								/* namespace */
