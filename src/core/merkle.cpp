/*
 * merkle.cpp — RFC 6962 / RFC 9162 tree hashing, building and proofs (see
 * merkle.hpp for the model and the API).
 *
 * Proof generation follows the RFC's recursive definitions (PATH and
 * SUBPROOF, RFC 9162 sections 2.1.3.1 and 2.1.4.1) over leaf ranges, with
 * every MTH() of a range taken from complete subtrees through the caller's
 * reader.  Verification follows the RFC's iterative algorithms (sections
 * 2.1.3.2 and 2.1.4.2), which work on the bits of the leaf index and size
 * and need no tree at all.  Having the two written so differently is
 * deliberate: the tests check every proof one produces against the other.
 *
 * Inside, failures are thrown as CoreError; each public function is a
 * noexcept wrapper that returns the code.  The recursion is at most 64
 * deep (one level per bit of a 64-bit size).
 */
#include "cpp_only.hpp"

#include "merkle.hpp"

#include <cstring>
#include <limits>
#include <new>

#include "core_error.hpp"
#include "digest.hpp"

namespace sensitive_audit
{

namespace
{

constexpr uint8_t kLeafPrefix = 0x00;
constexpr uint8_t kNodePrefix = 0x01;

inline bool
is_power_of_two(uint64_t n)
{
	return n != 0 && (n & (n - 1)) == 0;
}

/* floor(log2(n)) for n > 0. */
inline unsigned
log2_floor(uint64_t n)
{
	return 63 - static_cast<unsigned>(__builtin_clzll(n));
}

/* The RFC's split point: the largest power of two strictly less than n (n >= 2). */
inline uint64_t
split_point(uint64_t n)
{
	return uint64_t{1} << log2_floor(n - 1);
}

void
leaf_into(Sha256 &sha, const void *data, size_t len, Digest &out)
{
	/*
	 * The entries' own leaves (32 bytes) and the checkpoint's chain records
	 * fit on the stack; only arbitrary caller data may need the heap.
	 */
	uint8_t		small[1 + 128];

	if (len <= sizeof(small) - 1)
	{
		small[0] = kLeafPrefix;
		if (len > 0)
			std::memcpy(small + 1, data, len);
		sha.digest(small, 1 + len, out.data());
		return;
	}

	std::vector<uint8_t> buf(1 + len);

	buf[0] = kLeafPrefix;
	std::memcpy(buf.data() + 1, data, len);
	sha.digest(buf.data(), buf.size(), out.data());
}

Digest
node_of(Sha256 &sha, const Digest &left, const Digest &right)
{
	uint8_t		buf[1 + 2 * SA_DIGEST_LEN];
	Digest		out;

	buf[0] = kNodePrefix;
	std::memcpy(buf + 1, left.data(), SA_DIGEST_LEN);
	std::memcpy(buf + 1 + SA_DIGEST_LEN, right.data(), SA_DIGEST_LEN);
	sha.digest(buf, sizeof(buf), out.data());
	return out;
}

/* MTH over leaf_hashes[0..n), recursively as RFC 6962 section 2.1 defines it. */
Digest
mth(Sha256 &sha, const Digest *leaf_hashes, size_t n)
{
	if (n == 1)
		return leaf_hashes[0];

	const uint64_t k = split_point(n);

	return node_of(sha, mth(sha, leaf_hashes, k), mth(sha, leaf_hashes + k, n - k));
}

/*
 * Range roots and proofs over a reader.  A Walker either hashes (the proof
 * functions) or only records which subtrees it reads, in order (the plan
 * functions); both run the same code, so a plan is exactly what the proof
 * will ask for.
 */
class Walker
{
public:
	Walker(SubtreeReader reader, std::vector<Subtree> *plan) :
		reader_(reader), plan_(plan)
	{
		if (plan_ == nullptr)
		{
			if (reader_.read == nullptr)
				throw CoreError(SA_ERR_INTERNAL);
			sha_.reset(new Sha256());
		}
	}

	/* MTH(D[begin:end]) for end > begin. */
	Digest
	range(uint64_t begin, uint64_t end)
	{
		const uint64_t len = end - begin;

		/*
		 * A power-of-two range aligned to its own length is one stored
		 * node; a single leaf always is.
		 */
		if (is_power_of_two(len) && (begin & (len - 1)) == 0)
		{
			Subtree		node;

			node.level = log2_floor(len);
			node.index = begin >> node.level;
			return read(node);
		}

		const uint64_t k = split_point(len);
		Digest		left = range(begin, begin + k);
		Digest		right = range(begin + k, end);

		return combine(left, right);
	}

	/* PATH(m, D[lo:hi]), appended bottom-up to proof. */
	void
	path(uint64_t m, uint64_t lo, uint64_t hi, std::vector<Digest> &proof)
	{
		if (hi - lo == 1)
			return;

		const uint64_t k = split_point(hi - lo);

		if (m < lo + k)
		{
			path(m, lo, lo + k, proof);
			proof.push_back(range(lo + k, hi));
		}
		else
		{
			path(m, lo + k, hi, proof);
			proof.push_back(range(lo, lo + k));
		}
	}

	/*
	 * SUBPROOF(m, D[lo:hi], b), with m the old size counted from leaf 0
	 * (lo < m <= hi).  whole_old_tree is the RFC's b: true while D[lo:m]
	 * is the entire old tree, whose root the verifier already has.
	 */
	void
	subproof(uint64_t m, uint64_t lo, uint64_t hi, bool whole_old_tree,
			 std::vector<Digest> &proof)
	{
		if (m == hi)
		{
			if (!whole_old_tree)
				proof.push_back(range(lo, hi));
			return;
		}

		const uint64_t k = split_point(hi - lo);

		if (m <= lo + k)
		{
			subproof(m, lo, lo + k, whole_old_tree, proof);
			proof.push_back(range(lo + k, hi));
		}
		else
		{
			subproof(m, lo + k, hi, false, proof);
			proof.push_back(range(lo, lo + k));
		}
	}

private:
	Digest
	read(Subtree node)
	{
		Digest		out{};

		if (plan_ != nullptr)
		{
			plan_->push_back(node);
			return out;
		}

		const int	rc = reader_.read(reader_.ctx, node, out.data());

		if (rc != SA_OK)
			throw CoreError(rc);
		return out;
	}

	Digest
	combine(const Digest &left, const Digest &right)
	{
		if (plan_ != nullptr)
			return Digest{};
		return node_of(*sha_, left, right);
	}

	SubtreeReader reader_;
	std::vector<Subtree> *plan_;
	std::unique_ptr<Sha256> sha_;
};

void
check_range(uint64_t begin, uint64_t end)
{
	if (begin > end)
		throw CoreError(SA_ERR_RANGE);
}

void
check_inclusion_args(uint64_t index, uint64_t size)
{
	if (index >= size)
		throw CoreError(SA_ERR_RANGE);
}

void
check_consistency_args(uint64_t old_size, uint64_t new_size)
{
	if (old_size > new_size)
		throw CoreError(SA_ERR_RANGE);
}

void
do_range_root(Walker &w, uint64_t begin, uint64_t end, Digest &out)
{
	check_range(begin, end);
	out = begin == end ? kEmptyTreeRoot : w.range(begin, end);
}

void
do_inclusion_proof(Walker &w, uint64_t index, uint64_t size, std::vector<Digest> &proof)
{
	check_inclusion_args(index, size);
	proof.clear();
	w.path(index, 0, size, proof);
}

void
do_consistency_proof(Walker &w, uint64_t old_size, uint64_t new_size,
					 std::vector<Digest> &proof)
{
	check_consistency_args(old_size, new_size);
	proof.clear();
	/* Nothing proves anything about the empty tree, and a tree extends itself. */
	if (old_size == 0 || old_size == new_size)
		return;
	w.subproof(old_size, 0, new_size, true, proof);
}

/* Shifts fn and sn right together until fn's lowest bit is set or fn is 0. */
inline void
shift_while_even(uint64_t &fn, uint64_t &sn)
{
	while (fn != 0 && (fn & 1) == 0)
	{
		fn >>= 1;
		sn >>= 1;
	}
}

/*
 * RFC 9162 section 2.1.3.2, returning the computed root.  fn is the node's
 * index at the current level and sn the last index at that level; a node
 * is a right child when fn is odd, and the last node of an incomplete
 * level (fn == sn, even) has no sibling there, so the climb skips levels
 * until it does.
 */
Digest
climb_inclusion(Sha256 &sha, uint64_t index, uint64_t size, const Digest &leaf_hash,
				const Digest *proof, size_t proof_len)
{
	check_inclusion_args(index, size);

	uint64_t	fn = index;
	uint64_t	sn = size - 1;
	Digest		r = leaf_hash;

	for (size_t i = 0; i < proof_len; i++)
	{
		if (sn == 0)
			throw CoreError(SA_ERR_VERIFY);	/* proof too long */
		if ((fn & 1) != 0 || fn == sn)
		{
			r = node_of(sha, proof[i], r);
			shift_while_even(fn, sn);
		}
		else
			r = node_of(sha, r, proof[i]);
		fn >>= 1;
		sn >>= 1;
	}
	if (sn != 0)
		throw CoreError(SA_ERR_VERIFY);	/* proof too short */
	return r;
}

bool
same(const Digest &a, const Digest &b)
{
	return std::memcmp(a.data(), b.data(), SA_DIGEST_LEN) == 0;
}

/* RFC 9162 section 2.1.4.2; throws SA_ERR_VERIFY on any mismatch. */
void
check_consistency(Sha256 &sha, uint64_t old_size, uint64_t new_size,
				  const Digest &old_root, const Digest &new_root,
				  const Digest *proof, size_t proof_len)
{
	check_consistency_args(old_size, new_size);

	if (old_size == new_size)
	{
		if (proof_len != 0 || !same(old_root, new_root) ||
			(old_size == 0 && !same(old_root, kEmptyTreeRoot)))
			throw CoreError(SA_ERR_VERIFY);
		return;
	}
	if (old_size == 0)
	{
		/* The empty tree is a prefix of every tree; its root is fixed. */
		if (proof_len != 0 || !same(old_root, kEmptyTreeRoot))
			throw CoreError(SA_ERR_VERIFY);
		return;
	}
	if (proof_len == 0)
		throw CoreError(SA_ERR_VERIFY);

	/*
	 * When the old tree is a complete subtree of the new one, the proof
	 * leaves out its root (the verifier has it): put it back in front.
	 */
	const bool	prepend = is_power_of_two(old_size);
	const size_t n = proof_len + (prepend ? 1 : 0);
	auto		node = [&](size_t i) -> const Digest & {
		return prepend ? (i == 0 ? old_root : proof[i - 1]) : proof[i];
	};

	uint64_t	fn = old_size - 1;
	uint64_t	sn = new_size - 1;

	/* Climb past the levels where the old tree's last node is a right child. */
	while ((fn & 1) != 0)
	{
		fn >>= 1;
		sn >>= 1;
	}

	Digest		fr = node(0);
	Digest		sr = node(0);

	for (size_t i = 1; i < n; i++)
	{
		const Digest &c = node(i);

		if (sn == 0)
			throw CoreError(SA_ERR_VERIFY);
		if ((fn & 1) != 0 || fn == sn)
		{
			fr = node_of(sha, c, fr);
			sr = node_of(sha, c, sr);
			shift_while_even(fn, sn);
		}
		else
			sr = node_of(sha, sr, c);
		fn >>= 1;
		sn >>= 1;
	}
	if (sn != 0 || !same(fr, old_root) || !same(sr, new_root))
		throw CoreError(SA_ERR_VERIFY);
}

}								/* namespace */

const char *
core_strerror(int code) noexcept
{
	switch (code)
	{
		case SA_ERR_RANGE:
			return "leaf index or tree size out of range";
		case SA_ERR_VERIFY:
			return "proof, root or signature does not verify";
		case SA_ERR_SYNTAX:
			return "malformed checkpoint, signed note, key or base64 text";
		case SA_ERR_NO_KEY:
			return "the note has no signature by a known key";
		default:
			return sa_strerror(code);
	}
}

/* ---- Hashing ------------------------------------------------------------ */

int
hash_leaf(const void *data, size_t len, Digest &out) noexcept
{
	if (data == nullptr && len != 0)
		return SA_ERR_INTERNAL;
	return guarded([&] {
		Sha256		sha;

		leaf_into(sha, data, len, out);
	});
}

int
hash_entry_leaf(const uint8_t entry_hash[SA_DIGEST_LEN], Digest &out) noexcept
{
	if (entry_hash == nullptr)
		return SA_ERR_INTERNAL;
	return hash_leaf(entry_hash, SA_DIGEST_LEN, out);
}

int
hash_node(const Digest &left, const Digest &right, Digest &out) noexcept
{
	return guarded([&] {
		Sha256		sha;

		out = node_of(sha, left, right);
	});
}

int
hash_leaves(const std::string_view *leaves, size_t n, std::vector<Digest> &out) noexcept
{
	if (leaves == nullptr && n != 0)
		return SA_ERR_INTERNAL;
	return guarded([&] {
		Sha256		sha;
		std::vector<Digest> hashes(n);

		for (size_t i = 0; i < n; i++)
			leaf_into(sha, leaves[i].data(), leaves[i].size(), hashes[i]);
		out.swap(hashes);
	});
}

int
tree_root(const Digest *leaf_hashes, size_t n, Digest &out) noexcept
{
	if (leaf_hashes == nullptr && n != 0)
		return SA_ERR_INTERNAL;
	if (n == 0)
	{
		out = kEmptyTreeRoot;
		return SA_OK;
	}
	return guarded([&] {
		Sha256		sha;

		out = mth(sha, leaf_hashes, n);
	});
}

size_t
perfect_subtrees(uint64_t size, Subtree out[64]) noexcept
{
	size_t		n = 0;
	uint64_t	start = 0;

	for (int level = 63; level >= 0; level--)
	{
		const uint64_t width = uint64_t{1} << level;

		if ((size & width) == 0)
			continue;
		out[n].level = static_cast<unsigned>(level);
		out[n].index = start >> level;
		start += width;
		n++;
	}
	return n;
}

/* ---- MerkleBuilder ------------------------------------------------------ */

std::unique_ptr<MerkleBuilder>
MerkleBuilder::create() noexcept
{
	try
	{
		std::unique_ptr<MerkleBuilder> b(new MerkleBuilder());

		b->sha_.reset(new Sha256());
		return b;
	}
	catch (...)
	{
		return nullptr;
	}
}

MerkleBuilder::~MerkleBuilder() = default;

int
MerkleBuilder::append_data(const void *data, size_t len) noexcept
{
	if (data == nullptr && len != 0)
		return SA_ERR_INTERNAL;

	Digest		leaf;
	int			rc = guarded([&] {
		leaf_into(*sha_, data, len, leaf);
	});

	return rc == SA_OK ? append_leaf_hash(leaf) : rc;
}

int
MerkleBuilder::append_entry(const uint8_t entry_hash[SA_DIGEST_LEN]) noexcept
{
	if (entry_hash == nullptr)
		return SA_ERR_INTERNAL;
	return append_data(entry_hash, SA_DIGEST_LEN);
}

int
MerkleBuilder::append_leaf_hash(const Digest &leaf_hash) noexcept
{
	if (size_ == std::numeric_limits<uint64_t>::max())
		return SA_ERR_RANGE;

	return guarded([&] {
		/*
		 * Leaf i completes one node on each level where i is the last
		 * leaf of a node: as many levels as i has trailing one bits.  Each
		 * such node is the stack's top merged with the node just made.
		 * Everything is computed before the stack changes, so a failure
		 * leaves the builder as it was.
		 */
		const uint64_t i = size_;
		const unsigned merges = static_cast<unsigned>(__builtin_ctzll(~i));
		Subtree		nodes[65];
		Digest		hashes[65];

		nodes[0].level = 0;
		nodes[0].index = i;
		hashes[0] = leaf_hash;
		for (unsigned j = 1; j <= merges; j++)
		{
			nodes[j].level = j;
			nodes[j].index = i >> j;
			hashes[j] = node_of(*sha_, stack_[depth_ - j], hashes[j - 1]);
		}

		depth_ -= merges;
		stack_[depth_++] = hashes[merges];
		size_ = i + 1;
		for (unsigned j = 0; j <= merges; j++)
		{
			completed_[j] = nodes[j];
			completed_hash_[j] = hashes[j];
		}
		ncompleted_ = merges + 1;
	});
}

int
MerkleBuilder::root(Digest &out) noexcept
{
	if (depth_ == 0)
	{
		out = kEmptyTreeRoot;
		return SA_OK;
	}
	return guarded([&] {
		/* The RFC's split puts the largest subtree left of everything else. */
		Digest		r = stack_[depth_ - 1];

		for (size_t j = depth_ - 1; j-- > 0;)
			r = node_of(*sha_, stack_[j], r);
		out = r;
	});
}

Subtree
MerkleBuilder::completed(size_t i) const noexcept
{
	return i < ncompleted_ ? completed_[i] : Subtree{};
}

const Digest &
MerkleBuilder::completed_hash(size_t i) const noexcept
{
	return completed_hash_[i < ncompleted_ ? i : 0];
}

Subtree
MerkleBuilder::stack_node(size_t i) const noexcept
{
	Subtree		nodes[64];
	const size_t n = perfect_subtrees(size_, nodes);

	return i < n ? nodes[i] : Subtree{};
}

int
MerkleBuilder::resume(uint64_t size, const Digest *roots, size_t n) noexcept
{
	Subtree		nodes[64];

	if (n != perfect_subtrees(size, nodes))
		return SA_ERR_RANGE;
	if (roots == nullptr && n != 0)
		return SA_ERR_INTERNAL;
	for (size_t j = 0; j < n; j++)
		stack_[j] = roots[j];
	depth_ = n;
	size_ = size;
	ncompleted_ = 0;
	return SA_OK;
}

int
MerkleBuilder::resume(uint64_t size, SubtreeReader reader) noexcept
{
	if (reader.read == nullptr)
		return SA_ERR_INTERNAL;

	Subtree		nodes[64];
	Digest		roots[64];
	const size_t n = perfect_subtrees(size, nodes);

	for (size_t j = 0; j < n; j++)
	{
		int			rc;

		try
		{
			rc = reader.read(reader.ctx, nodes[j], roots[j].data());
		}
		catch (...)
		{
			rc = SA_ERR_INTERNAL;
		}
		if (rc != SA_OK)
			return rc;
	}
	return resume(size, roots, n);
}

/* ---- MemoryTree --------------------------------------------------------- */

int
MemoryTree::build(const Digest *leaf_hashes, size_t n) noexcept
{
	if (leaf_hashes == nullptr && n != 0)
		return SA_ERR_INTERNAL;
	return guarded([&] {
		Sha256		sha;
		std::vector<std::vector<Digest>> levels;

		if (n > 0)
			levels.emplace_back(leaf_hashes, leaf_hashes + n);
		while (!levels.empty() && levels.back().size() >= 2)
		{
			const std::vector<Digest> &below = levels.back();
			std::vector<Digest> up(below.size() / 2);

			for (size_t i = 0; i < up.size(); i++)
				up[i] = node_of(sha, below[2 * i], below[2 * i + 1]);
			levels.push_back(std::move(up));
		}
		levels_.swap(levels);
	});
}

int
MemoryTree::read_node(void *ctx, Subtree node, uint8_t out[SA_DIGEST_LEN])
{
	const MemoryTree *t = static_cast<const MemoryTree *>(ctx);

	if (node.level >= t->levels_.size() || node.index >= t->levels_[node.level].size())
		return SA_ERR_RANGE;
	std::memcpy(out, t->levels_[node.level][node.index].data(), SA_DIGEST_LEN);
	return SA_OK;
}

SubtreeReader
MemoryTree::reader() const noexcept
{
	SubtreeReader r;

	r.read = &MemoryTree::read_node;
	r.ctx = const_cast<MemoryTree *>(this);
	return r;
}

/* ---- Roots and proofs from stored subtrees ------------------------------ */

int
range_root(uint64_t begin, uint64_t end, SubtreeReader reader, Digest &out) noexcept
{
	return guarded([&] {
		Walker		w(reader, nullptr);

		do_range_root(w, begin, end, out);
	});
}

int
inclusion_proof(uint64_t index, uint64_t size, SubtreeReader reader,
				std::vector<Digest> &proof) noexcept
{
	return guarded([&] {
		Walker		w(reader, nullptr);

		do_inclusion_proof(w, index, size, proof);
	});
}

int
consistency_proof(uint64_t old_size, uint64_t new_size, SubtreeReader reader,
				  std::vector<Digest> &proof) noexcept
{
	return guarded([&] {
		Walker		w(reader, nullptr);

		do_consistency_proof(w, old_size, new_size, proof);
	});
}

int
range_root_plan(uint64_t begin, uint64_t end, std::vector<Subtree> &out) noexcept
{
	return guarded([&] {
		std::vector<Subtree> plan;
		Walker		w(SubtreeReader{}, &plan);
		Digest		ignored;

		do_range_root(w, begin, end, ignored);
		out.swap(plan);
	});
}

int
inclusion_proof_plan(uint64_t index, uint64_t size, std::vector<Subtree> &out) noexcept
{
	return guarded([&] {
		std::vector<Subtree> plan;
		Walker		w(SubtreeReader{}, &plan);
		std::vector<Digest> ignored;

		do_inclusion_proof(w, index, size, ignored);
		out.swap(plan);
	});
}

int
consistency_proof_plan(uint64_t old_size, uint64_t new_size,
					   std::vector<Subtree> &out) noexcept
{
	return guarded([&] {
		std::vector<Subtree> plan;
		Walker		w(SubtreeReader{}, &plan);
		std::vector<Digest> ignored;

		do_consistency_proof(w, old_size, new_size, ignored);
		out.swap(plan);
	});
}

/* ---- Verification ------------------------------------------------------- */

int
root_from_inclusion_proof(uint64_t index, uint64_t size, const Digest &leaf_hash,
						  const Digest *proof, size_t proof_len, Digest &root) noexcept
{
	if (proof == nullptr && proof_len != 0)
		return SA_ERR_INTERNAL;
	return guarded([&] {
		Sha256		sha;

		root = climb_inclusion(sha, index, size, leaf_hash, proof, proof_len);
	});
}

int
verify_inclusion(uint64_t index, uint64_t size, const Digest &leaf_hash,
				 const Digest *proof, size_t proof_len, const Digest &root) noexcept
{
	Digest		computed;
	const int	rc = root_from_inclusion_proof(index, size, leaf_hash, proof, proof_len,
											   computed);

	if (rc != SA_OK)
		return rc;
	return same(computed, root) ? SA_OK : SA_ERR_VERIFY;
}

int
verify_consistency(uint64_t old_size, uint64_t new_size,
				   const Digest &old_root, const Digest &new_root,
				   const Digest *proof, size_t proof_len) noexcept
{
	if (proof == nullptr && proof_len != 0)
		return SA_ERR_INTERNAL;
	return guarded([&] {
		Sha256		sha;

		check_consistency(sha, old_size, new_size, old_root, new_root, proof, proof_len);
	});
}

}								/* namespace sensitive_audit */
