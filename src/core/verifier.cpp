/*
 * verifier.cpp — the per-entry checks of the streaming chain verifier.
 *
 * The order of the checks decides which problem is reported when several
 * apply, and is part of the contract (docs/FORMAT.md, "Verification"):
 *
 *   1. format is not 1 or 2                 unsupported format N
 *   2. chain arrives after a higher chain   reordered: ...
 *   3. stored hash NULL or not 32 bytes     hash missing or malformed
 *   4. seq 0                                forged: ...
 *   5. seq not above the previous one       duplicate: ...
 *   6. seq above the expected one           gap: ...
 *   7. recomputed hash differs              reordered / forged / content changed
 *   8. prev_hash is not the previous hash   link broken: ...
 *   8a. format 2, a non-NULL old_value or   malformed protected value: ...
 *      new_value not a protected form
 *
 * The "previous hash" an entry must link to is the stored hash of the last
 * entry of its chain that passed every check (32 zero bytes before the
 * first).  Once a chain has failed, nothing after it in that chain can be
 * judged against a trustworthy predecessor, so later entries are only
 * counted.
 */
#include "cpp_only.hpp"

#include "verifier.hpp"

#include <algorithm>
#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <limits>
#include <utility>

#include "core_error.hpp"
#include "encoding.hpp"
#include "protect.hpp"

namespace sensitive_audit
{

namespace
{

std::string
format_text(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

std::string
format_text(const char *fmt, ...)
{
	char		text[256];
	va_list		args;

	va_start(args, fmt);
	int			n = std::vsnprintf(text, sizeof(text), fmt, args);

	va_end(args);
	if (n < 0)
		throw CoreError(SA_ERR_INTERNAL);
	return std::string(text);
}

inline bool
same_digest(const uint8_t *a, const uint8_t *b)
{
	return std::memcmp(a, b, SA_DIGEST_LEN) == 0;
}

}								/* namespace */

void
ChainVerifier::entry_hash(const sa_entry &e, uint8_t out[SA_DIGEST_LEN])
{
	const size_t len = encode_entry(e, buf_);

	sha_.digest(buf_.data(), len, out);
}

ChainVerifier::ChainState &
ChainVerifier::state_for(uint32_t chain)
{
	/* Input is ordered by chain, so nearly every entry takes this branch. */
	if (!chains_.empty() && chains_.back().chain == chain)
		return chains_.back();

	auto		it = std::lower_bound(chains_.begin(), chains_.end(), chain,
									  [](const ChainState &s, uint32_t c) {
										  return s.chain < c;
									  });

	if (it != chains_.end() && it->chain == chain)
		return *it;

	ChainState	st;

	st.chain = chain;
	return *chains_.insert(it, std::move(st));
}

void
ChainVerifier::fail(ChainState &st, uint64_t seq, std::string text)
{
	problems_.push_back(std::move(text));
	st.failed = true;
	st.first_bad_seq = seq;
	st.problem = problems_.back().c_str();
}

void
ChainVerifier::feed(const sa_entry &e, const uint8_t *stored_hash,
					size_t stored_hash_len)
{
	if (finished_)
		throw CoreError(SA_ERR_INTERNAL);
	last_passed_ = false;

	/*
	 * The highest chain seen so far is always the last one kept.  An entry
	 * of a lower chain means the input is not ordered by chain: its chain
	 * would be judged from a partial run of entries, so it is reported
	 * rather than silently merged.
	 */
	const bool	behind = !interleaved_ && fed_ && e.chain < highest_fed_;
	const uint32_t highest = behind ? highest_fed_ : e.chain;
	ChainState &st = state_for(e.chain);

	if (!behind)
	{
		fed_ = true;
		highest_fed_ = e.chain;
	}

	st.entries++;
	if (st.failed)
		return;

	if (e.format != SA_FORMAT_VERSION && e.format != SA_FORMAT_PROTECTED)
	{
		fail(st, e.seq, format_text("unsupported format %u",
									static_cast<unsigned>(e.format)));
		return;
	}
	if (behind)
	{
		fail(st, e.seq,
			 format_text("reordered: entry seq %" PRIu64 " of chain %" PRIu32
						 " arrived after entries of chain %" PRIu32
						 " (input must be ordered by chain, seq)",
						 e.seq, e.chain, highest));
		return;
	}
	check(st, e, stored_hash, stored_hash_len);
}

void
ChainVerifier::check(ChainState &st, const sa_entry &e,
					 const uint8_t *stored_hash, size_t stored_hash_len)
{
	if (stored_hash == nullptr || stored_hash_len != SA_DIGEST_LEN)
	{
		fail(st, e.seq, "hash missing or malformed");
		return;
	}

	/* The extension numbers entries from 1; seq 0 was never written by it. */
	if (e.seq == 0)
	{
		fail(st, e.seq, "forged: seq 0 is not a valid sequence number");
		return;
	}

	/*
	 * Every seq from 1 to last_seq has been seen exactly once (otherwise the
	 * chain would have failed already), so any seq at or below last_seq is
	 * one of them again.
	 */
	if (e.seq <= st.last_seq)
	{
		fail(st, e.seq,
			 format_text("duplicate: seq %" PRIu64 " appears more than once", e.seq));
		return;
	}

	const uint64_t expected = st.last_seq + 1;

	if (e.seq > expected)
	{
		fail(st, e.seq,
			 format_text("gap: entries %" PRIu64 "..%" PRIu64 " are missing",
						 expected, e.seq - 1));
		return;
	}

	uint8_t		computed[SA_DIGEST_LEN];

	entry_hash(e, computed);

	if (!same_digest(computed, stored_hash))
	{
		/*
		 * Before calling the content changed, see whether this is an intact
		 * entry that was moved: an entry's seq is inside its hash, so one
		 * that hashes correctly under a nearby seq was written there.  The
		 * nearest positions are tried first.  This runs only on the first
		 * failure of a chain, so its cost does not matter.
		 */
		sa_entry	moved = e;

		for (uint64_t d = 1; d <= kReorderWindow; d++)
		{
			const uint64_t candidates[2] = {e.seq - d, e.seq + d};
			const bool	valid[2] = {
				e.seq > d,		/* seq - d >= 1 */
				e.seq <= std::numeric_limits<uint64_t>::max() - d,
			};

			for (int k = 0; k < 2; k++)
			{
				if (!valid[k])
					continue;
				moved.seq = candidates[k];
				entry_hash(moved, computed);
				if (same_digest(computed, stored_hash))
				{
					fail(st, e.seq,
						 format_text("reordered: entry stored at seq %" PRIu64
									 " was written as seq %" PRIu64,
									 e.seq, candidates[k]));
					return;
				}
			}
		}

		if (!same_digest(e.prev_hash, st.last_hash))
			fail(st, e.seq, "forged: entry hash and link both fail");
		else
			fail(st, e.seq, "content changed: entry does not match its hash");
		return;
	}

	if (!same_digest(e.prev_hash, st.last_hash))
	{
		if (st.last_seq == 0)
			fail(st, e.seq, "link broken: first entry does not start from the zero hash");
		else
			fail(st, e.seq,
				 format_text("link broken: previous hash does not match entry %" PRIu64,
							 st.last_seq));
		return;
	}

	/*
	 * A format 2 entry that hashes and links correctly but holds a value in
	 * none of the protected forms was written wrongly (or forged with its
	 * hash recomputed): in either case its values cannot be read as
	 * FORMAT.md §11 says.
	 */
	if (e.format == SA_FORMAT_PROTECTED)
	{
		const char *bad = nullptr;

		if (!e.old_value.is_null &&
			protected_form(std::string_view(e.old_value.data, e.old_value.len)) == ProtectedForm::kMalformed)
			bad = "old_value";
		else if (!e.new_value.is_null &&
				 protected_form(std::string_view(e.new_value.data, e.new_value.len)) == ProtectedForm::kMalformed)
			bad = "new_value";
		if (bad != nullptr)
		{
			fail(st, e.seq,
				 format_text("malformed protected value: the %s of a format 2 entry is not an "
							 "hmac-sha256:, sha256-salted: or x25519-aes256gcm: text", bad));
			return;
		}
	}

	st.last_seq = e.seq;
	std::memcpy(st.last_hash, stored_hash, SA_DIGEST_LEN);
	if (st.tree)
		grow_tree(st, stored_hash);
	last_passed_ = !st.failed;
}

void
ChainVerifier::resume_chain(uint32_t chain, uint64_t last_seq,
							const uint8_t last_hash[SA_DIGEST_LEN])
{
	if (finished_)
		throw CoreError(SA_ERR_INTERNAL);

	ChainState &st = state_for(chain);

	/* Before any entry of the chain, and not with a tree to grow. */
	if (st.entries != 0 || st.last_seq != 0 || st.tree)
		throw CoreError(SA_ERR_INTERNAL);
	st.last_seq = last_seq;
	std::memcpy(st.last_hash, last_hash, SA_DIGEST_LEN);
}

void
ChainVerifier::need_tree(ChainState &st)
{
	if (st.tree)
		return;
	if (st.entries != 0)
		throw CoreError(SA_ERR_INTERNAL);	/* expectations come before entries */
	st.tree = MerkleBuilder::create();
	if (!st.tree)
		throw CoreError(SA_ERR_NOMEM);
}

void
ChainVerifier::expect_root(uint32_t chain, uint64_t size, const Digest &root, std::string label)
{
	if (finished_ || size == 0)
		throw CoreError(SA_ERR_INTERNAL);
	ChainState &st = state_for(chain);

	need_tree(st);
	ChainState::Target t{size, root, std::move(label)};
	auto		at = std::upper_bound(st.targets.begin(), st.targets.end(), size,
									  [](uint64_t sz, const ChainState::Target &x) {
										  return sz < x.size;
									  });

	st.targets.insert(at, std::move(t));
}

void
ChainVerifier::expect_node(uint32_t chain, Subtree node, const Digest &hash)
{
	if (finished_ || node.level >= 64 || node.index >= (uint64_t{1} << 56))
		throw CoreError(SA_ERR_INTERNAL);
	ChainState &st = state_for(chain);

	need_tree(st);
	st.nodes[node_key(node)] = hash;
}

/*
 * The entry at seq passed every check: extend the chain's tree, compare the
 * nodes it completed with the stored ones, and the root with every target
 * of this size.
 */
void
ChainVerifier::grow_tree(ChainState &st, const uint8_t entry_hash[SA_DIGEST_LEN])
{
	if (st.tree->append_entry(entry_hash) != SA_OK)
		throw CoreError(SA_ERR_CRYPTO);
	if (!st.nodes.empty())
	{
		for (size_t i = 0; i < st.tree->completed_count(); i++)
		{
			const Subtree node = st.tree->completed(i);
			auto		it = st.nodes.find(node_key(node));

			if (it == st.nodes.end())
				continue;
			const bool	same = it->second == st.tree->completed_hash(i);

			st.nodes.erase(it);
			if (!same)
			{
				fail(st, node.first_leaf() + 1,
					 format_text("rewritten: entries %" PRIu64 "..%" PRIu64
								 " do not have the root stored for them (tree node level %u, index %" PRIu64 ")",
								 node.first_leaf() + 1, node.first_leaf() + node.leaf_count(),
								 node.level, node.index));
				return;
			}
		}
	}
	while (st.next_target < st.targets.size()
		   && st.targets[st.next_target].size == st.last_seq)
	{
		const ChainState::Target &t = st.targets[st.next_target++];
		Digest		root;

		if (st.tree->root(root) != SA_OK)
			throw CoreError(SA_ERR_CRYPTO);
		if (root != t.root)
		{
			fail(st, t.size,
				 format_text("rewritten: entries 1..%" PRIu64 " do not have the root %s recorded",
							 t.size, t.label.c_str()));
			return;
		}
	}
}

void
ChainVerifier::finish()
{
	if (finished_)
		return;
	finished_ = true;
	for (ChainState &st : chains_)
	{
		if (st.failed)
			continue;
		if (st.next_target < st.targets.size())
		{
			const ChainState::Target &t = st.targets.back();

			if (st.last_seq == 0)
				fail(st, 1, format_text("missing: %s recorded %" PRIu64 " entries, the chain has none",
										t.label.c_str(), t.size));
			else
				fail(st, st.last_seq + 1,
					 format_text("cut: %s recorded %" PRIu64 " entries, the chain has %" PRIu64,
								 t.label.c_str(), t.size, st.last_seq));
			continue;
		}
		if (!st.nodes.empty())
		{
			/* the stored node reaching furthest */
			uint64_t	end = 0;

			for (const auto &kv : st.nodes)
			{
				const Subtree node{static_cast<unsigned>(kv.first >> 56),
					kv.first & ((uint64_t{1} << 56) - 1)};

				end = std::max(end, node.first_leaf() + node.leaf_count());
			}
			if (end > st.last_seq)
				fail(st, st.last_seq + 1,
					 format_text("cut: the stored tree covers %" PRIu64 " entries, the chain has %" PRIu64,
								 end, st.last_seq));
		}
	}
}

sa_chain_result
ChainVerifier::result(size_t i) const
{
	if (i >= chains_.size())
		throw CoreError(SA_ERR_INTERNAL);

	const ChainState &st = chains_[i];
	sa_chain_result r;

	r.chain = st.chain;
	r.entries = st.entries;
	r.ok = st.failed ? 0 : 1;
	r.first_bad_seq = st.failed ? st.first_bad_seq : 0;
	r.problem = st.failed ? st.problem : nullptr;
	return r;
}

}								/* namespace sensitive_audit */
