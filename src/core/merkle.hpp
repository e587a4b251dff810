/*
 * merkle.hpp — RFC 6962 / RFC 9162 Merkle trees over a chain's entries:
 * roots, an incremental builder, inclusion and consistency proofs.
 *
 * Each chain of the log is the leaf sequence of one tree, in seq order
 * (leaf index = seq - 1).  A leaf's data is the entry's 32-byte hash; the
 * hashing is exactly the RFC's, with SHA-256:
 *
 *   leaf hash  = SHA-256(0x00 || data)
 *   node hash  = SHA-256(0x01 || left || right)
 *   empty tree = SHA-256("")
 *
 * and a tree of n > 1 leaves splits at k, the largest power of two
 * strictly less than n.  Because that split never pads or duplicates a
 * node, two different leaf sequences cannot share a root the way they can
 * in trees that copy an odd last node upwards (CVE-2012-2459).
 *
 * Proofs are generated from a SubtreeReader, a callback that returns the
 * hash of one complete subtree: the level-k node at index i, covering
 * leaves [i * 2^k, (i + 1) * 2^k).  Those are exactly the nodes that never
 * change once their last leaf exists, so a caller can store them as
 * entries accumulate (MerkleBuilder reports each one as it completes) and
 * later answer any proof by reading O(log n) of them.
 *
 * docs/FORMAT.md, section 9, specifies the trees and proofs for third
 * parties.
 *
 * Error handling follows sa_core.h: every public function is noexcept and
 * returns an SA_* result code (SA_OK on success); internally the code
 * throws CoreError and converts at this boundary (the codes are sa_core.h's).
 */
#pragma once

#include "cpp_only.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "sa_core.h"

namespace sensitive_audit
{

using Digest = std::array<uint8_t, SA_DIGEST_LEN>;

/* Text for any result code (sa_strerror does the same). */
const char *core_strerror(int code) noexcept;

/* SHA-256 of the empty string, the root of a tree of size 0 (RFC 6962 2.1). */
inline constexpr Digest kEmptyTreeRoot = {
	0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
	0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
};

/*
 * The level-k node at index i: the complete subtree over leaves
 * [i * 2^k, (i + 1) * 2^k).  Level 0 nodes are the leaves themselves.
 */
struct Subtree
{
	unsigned	level = 0;
	uint64_t	index = 0;

	uint64_t	first_leaf() const noexcept { return index << level; }
	uint64_t	leaf_count() const noexcept { return uint64_t{1} << level; }
};

/*
 * Supplies the hash of a complete subtree, e.g. from stored nodes.  read
 * writes 32 bytes to out and returns SA_OK, or returns any other code,
 * which the proof function then returns unchanged.  It must not throw and,
 * inside a backend, must not raise a PostgreSQL error (that would longjmp
 * over this code's destructors): fetch the nodes first, using the *_plan
 * functions below, and serve them from memory.
 */
struct SubtreeReader
{
	int			(*read) (void *ctx, Subtree node, uint8_t out[SA_DIGEST_LEN]) = nullptr;
	void	   *ctx = nullptr;
};

/* A SubtreeReader calling f(Subtree, uint8_t *out) -> int; f must outlive it. */
template <typename F>
SubtreeReader
make_reader(F &f) noexcept
{
	SubtreeReader r;

	r.read = [](void *ctx, Subtree node, uint8_t out[SA_DIGEST_LEN]) -> int {
		return (*static_cast<F *>(ctx))(node, out);
	};
	r.ctx = &f;
	return r;
}

/* ---- Hashing ------------------------------------------------------------ */

/* out = SHA-256(0x00 || data[0..len)). */
int			hash_leaf(const void *data, size_t len, Digest &out) noexcept;

/* out = SHA-256(0x00 || entry_hash): the leaf of one entry of a chain. */
int			hash_entry_leaf(const uint8_t entry_hash[SA_DIGEST_LEN], Digest &out) noexcept;

/* out = SHA-256(0x01 || left || right). */
int			hash_node(const Digest &left, const Digest &right, Digest &out) noexcept;

/* The leaf hashes of arbitrary byte strings, in order (replaces out). */
int			hash_leaves(const std::string_view *leaves, size_t n,
						std::vector<Digest> &out) noexcept;

/*
 * The root of the tree over n leaf hashes, by the RFC's recursive
 * definition (kEmptyTreeRoot for n = 0).
 */
int			tree_root(const Digest *leaf_hashes, size_t n, Digest &out) noexcept;

/*
 * The complete subtrees that make up a tree of the given size, left to
 * right: one per bit set in size, largest first (at most 64).  Writes them
 * to out and returns how many there are.  This is the compact form a
 * MerkleBuilder keeps, and what it needs to resume at that size.
 */
size_t		perfect_subtrees(uint64_t size, Subtree out[64]) noexcept;

/* ---- Incremental building ----------------------------------------------- */

/*
 * Folds leaves, in order, into the roots of the perfect subtrees of the
 * current size (at most 64 digests, no allocation after create()), so the
 * root is available at every size.  Each append also reports the nodes it
 * completed, for a caller that stores them to answer proofs later.
 *
 * Create with create(); it owns an OpenSSL digest context (see digest.hpp
 * for what that means inside a backend).
 */
class Sha256;

class MerkleBuilder
{
public:
	/* nullptr when memory or OpenSSL's SHA-256 is not available. */
	static std::unique_ptr<MerkleBuilder> create() noexcept;
	~MerkleBuilder();

	MerkleBuilder(const MerkleBuilder &) = delete;
	MerkleBuilder &operator=(const MerkleBuilder &) = delete;

	/* Appends a leaf given its data, its entry hash, or its leaf hash. */
	int			append_data(const void *data, size_t len) noexcept;
	int			append_entry(const uint8_t entry_hash[SA_DIGEST_LEN]) noexcept;
	int			append_leaf_hash(const Digest &leaf_hash) noexcept;

	/* Number of leaves appended (or resumed from). */
	uint64_t	size() const noexcept { return size_; }

	/* Root of the tree at the current size. */
	int			root(Digest &out) noexcept;

	/*
	 * The nodes the last append completed, bottom up: the new leaf (level
	 * 0), then every node whose last leaf it was.  Empty after resume.
	 */
	size_t		completed_count() const noexcept { return ncompleted_; }
	Subtree		completed(size_t i) const noexcept;
	const Digest &completed_hash(size_t i) const noexcept;

	/* The perfect subtrees of the current size, as perfect_subtrees() lists them. */
	size_t		stack_count() const noexcept { return depth_; }
	Subtree		stack_node(size_t i) const noexcept;
	const Digest &stack_hash(size_t i) const noexcept { return stack_[i]; }

	/*
	 * Continues a tree of the given size, given the hashes of its perfect
	 * subtrees in perfect_subtrees() order (or read through reader).
	 * SA_ERR_RANGE when n does not match the size.
	 */
	int			resume(uint64_t size, const Digest *roots, size_t n) noexcept;
	int			resume(uint64_t size, SubtreeReader reader) noexcept;

private:
	MerkleBuilder() = default;
	void		push(Digest node);

	std::unique_ptr<Sha256> sha_;
	uint64_t	size_ = 0;
	size_t		depth_ = 0;
	Digest		stack_[64] = {};
	size_t		ncompleted_ = 0;
	Subtree		completed_[65] = {};
	Digest		completed_hash_[65] = {};
};

/*
 * All complete nodes of a tree held in memory (about 64 bytes per leaf),
 * for a caller that has every leaf at hand, such as the command-line
 * verifier or the tests.  reader() serves proofs from it.
 */
class MemoryTree
{
public:
	/* Replaces the contents with the tree over these leaf hashes. */
	int			build(const Digest *leaf_hashes, size_t n) noexcept;
	uint64_t	size() const noexcept { return levels_.empty() ? 0 : levels_[0].size(); }
	/* Valid while this MemoryTree lives and is not rebuilt. */
	SubtreeReader reader() const noexcept;

private:
	static int	read_node(void *ctx, Subtree node, uint8_t out[SA_DIGEST_LEN]);

	std::vector<std::vector<Digest>> levels_;	/* levels_[k][i]: level-k node i */
};

/* ---- Roots and proofs from stored subtrees ------------------------------ */

/*
 * The root of the tree over leaves [begin, end), the RFC's MTH(D[begin:end]),
 * computed from complete subtrees: one read when the range is one aligned
 * complete subtree, else split at the largest power of two below its
 * length.  For the ranges a tree is made of (begin a multiple of the
 * smallest power of two >= end - begin, which includes begin = 0: the root
 * at any size) that takes O(log n) reads; other ranges may take more.
 * begin = end gives kEmptyTreeRoot; begin > end is SA_ERR_RANGE.
 */
int			range_root(uint64_t begin, uint64_t end, SubtreeReader reader,
					   Digest &out) noexcept;

/*
 * The audit path of leaf `index` in the tree of `size` leaves (RFC 9162
 * section 2.1.3.1), from the leaf's sibling up to the root's child.
 * SA_ERR_RANGE unless index < size.
 */
int			inclusion_proof(uint64_t index, uint64_t size, SubtreeReader reader,
							std::vector<Digest> &proof) noexcept;

/*
 * The consistency proof from size old_size to size new_size (RFC 9162
 * section 2.1.4.1); empty when old_size is 0 or equals new_size.
 * SA_ERR_RANGE unless old_size <= new_size.
 */
int			consistency_proof(uint64_t old_size, uint64_t new_size, SubtreeReader reader,
							  std::vector<Digest> &proof) noexcept;

/*
 * The complete subtrees the functions above read, in the order they read
 * them (the order is deterministic), so that a caller can fetch them all
 * at once before generating the proof.
 */
int			range_root_plan(uint64_t begin, uint64_t end, std::vector<Subtree> &out) noexcept;
int			inclusion_proof_plan(uint64_t index, uint64_t size,
								 std::vector<Subtree> &out) noexcept;
int			consistency_proof_plan(uint64_t old_size, uint64_t new_size,
								   std::vector<Subtree> &out) noexcept;

/* ---- Verification (no stored nodes needed) ------------------------------ */

/*
 * The root that an inclusion proof leads to (RFC 9162 section 2.1.3.2).
 * SA_ERR_RANGE unless index < size; SA_ERR_VERIFY when the proof has the
 * wrong number of nodes for that index and size.
 */
int			root_from_inclusion_proof(uint64_t index, uint64_t size, const Digest &leaf_hash,
									  const Digest *proof, size_t proof_len,
									  Digest &root) noexcept;

/* SA_OK when the proof leads from leaf_hash to root, else SA_ERR_VERIFY (or RANGE). */
int			verify_inclusion(uint64_t index, uint64_t size, const Digest &leaf_hash,
							 const Digest *proof, size_t proof_len,
							 const Digest &root) noexcept;

/*
 * SA_OK when the tree of new_size leaves with new_root extends the tree of
 * old_size leaves with old_root (RFC 9162 section 2.1.4.2), else
 * SA_ERR_VERIFY; SA_ERR_RANGE when old_size > new_size.  Equal sizes need
 * an empty proof and equal roots; old_size 0 needs an empty proof and
 * old_root = kEmptyTreeRoot.
 */
int			verify_consistency(uint64_t old_size, uint64_t new_size,
							   const Digest &old_root, const Digest &new_root,
							   const Digest *proof, size_t proof_len) noexcept;

}								/* namespace sensitive_audit */
