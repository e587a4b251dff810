/*
 * verifier.hpp — the streaming chain verifier behind sa_verifier_*.
 *
 * The log is read once, ordered by (chain, seq), and each entry is checked
 * against the one before it in its chain.  Verification never stops at the
 * first failure: for every chain it remembers the first entry that fails
 * and a one-line classification of the problem, and it goes on counting
 * entries, so one damaged chain does not hide the state of the others.
 * docs/FORMAT.md ("Verification") lists the checks and their wording; SQL
 * tests match the leading words of the problem texts, so keep them.
 *
 * Besides growing the encode buffer to the largest entry seen, only the
 * first entry of a new chain and the first failure of a chain allocate; a
 * well-formed log streams through with no allocation here.
 */
#pragma once

#include "cpp_only.hpp"

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "digest.hpp"
#include "merkle.hpp"
#include "sa_core.h"

namespace sensitive_audit
{

/* How many positions either side of its stored seq an entry is tried at. */
constexpr uint64_t kReorderWindow = 16;

class ChainVerifier
{
public:
	ChainVerifier() = default;

	/*
	 * Checks one entry (stored_hash may be null when stored_hash_len is 0).
	 * Problems found in the data are recorded, not thrown; this throws
	 * CoreError only when it cannot check at all (the entry cannot be
	 * encoded, OpenSSL fails, or feed is called after finish).
	 */
	void		feed(const sa_entry &e, const uint8_t *stored_hash,
					 size_t stored_hash_len);
	void		finish();
	/* See sa_verifier_expect_root and sa_verifier_expect_node (sa_core.h). */
	void		expect_root(uint32_t chain, uint64_t size, const Digest &root,
							std::string label);
	void		expect_node(uint32_t chain, Subtree node, const Digest &hash);
	/* Entries of different chains may come interleaved (see sa_core.h). */
	void		allow_interleaved() { interleaved_ = true; }

	/*
	 * Continues a chain already verified up to last_seq, whose entry there
	 * has the stored hash last_hash (an incremental run starting from a
	 * checkpoint).  Call before feeding that chain's entries; its entry
	 * count then counts only the entries fed.
	 */
	void		resume_chain(uint32_t chain, uint64_t last_seq,
							 const uint8_t last_hash[SA_DIGEST_LEN]);
	/* Whether the entry fed last passed every check. */
	bool		last_passed() const { return last_passed_; }

	size_t		nchains() const { return chains_.size(); }
	/* Chains are kept in ascending chain order; i < nchains(). */
	sa_chain_result result(size_t i) const;

private:
	struct ChainState
	{
		uint32_t	chain = 0;
		uint64_t	entries = 0;
		/* seq and stored hash of the last entry that passed every check */
		uint64_t	last_seq = 0;	/* 0: none yet */
		uint8_t		last_hash[SA_DIGEST_LEN] = {0};	/* zeros before the first */
		bool		failed = false;
		uint64_t	first_bad_seq = 0;
		const char *problem = nullptr;

		/*
		 * Built over the entries that passed when the chain is held to
		 * checkpoints or stored nodes; targets sorted by size, the next one
		 * to reach at targets[next_target].
		 */
		struct Target
		{
			uint64_t	size;
			Digest		root;
			std::string label;
		};
		std::unique_ptr<MerkleBuilder> tree;
		std::vector<Target> targets;
		size_t		next_target = 0;
		std::unordered_map<uint64_t, Digest> nodes;	/* by node_key() */
	};

	static uint64_t node_key(Subtree s) { return (uint64_t{s.level} << 56) | s.index; }
	void		need_tree(ChainState &st);
	void		grow_tree(ChainState &st, const uint8_t entry_hash[SA_DIGEST_LEN]);

	/* SHA-256 of the canonical encoding of e, with the verifier's buffers. */
	void		entry_hash(const sa_entry &e, uint8_t out[SA_DIGEST_LEN]);
	ChainState &state_for(uint32_t chain);
	void		fail(ChainState &st, uint64_t seq, std::string text);
	void		check(ChainState &st, const sa_entry &e,
					  const uint8_t *stored_hash, size_t stored_hash_len);

	Sha256		sha_;
	std::vector<uint8_t> buf_;
	std::vector<ChainState> chains_;	/* ascending by chain; the last is
										 * the highest chain seen */
	bool		finished_ = false;
	bool		interleaved_ = false;
	bool		fed_ = false;		/* any entry fed yet */
	uint32_t	highest_fed_ = 0;	/* the highest chain fed so far */
	bool		last_passed_ = false;	/* the entry fed last passed */

	/*
	 * Problem texts handed out through sa_chain_result.  A deque never moves
	 * its elements on push_back, so the pointers stay valid until the
	 * verifier is destroyed.
	 */
	std::deque<std::string> problems_;
};

}								/* namespace sensitive_audit */
