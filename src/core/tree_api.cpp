/*
 * tree_api.cpp — the extern "C" functions of sa_core.h for Merkle trees,
 * proofs and checkpoints, over merkle.hpp and checkpoint.hpp.
 *
 * The backend stores complete subtrees and reads them itself (in the
 * PostgreSQL regime); what crosses here is plain arrays: a plan of the
 * subtrees a computation needs, then their hashes, from which the root or
 * path is computed.  As in core_api.cpp, nothing thrown leaves a function.
 */
#include "cpp_only.hpp"

#include "sa_core.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "checkpoint.hpp"
#include "core_error.hpp"
#include "merkle.hpp"

using sensitive_audit::ChainHead;
using sensitive_audit::CoreError;
using sensitive_audit::Digest;
using sensitive_audit::guarded;
using sensitive_audit::Subtree;

namespace
{

void
check(int rc)
{
	if (rc != SA_OK)
		throw CoreError(rc);
}

int
plan_of(int what, uint64_t a, uint64_t b, std::vector<Subtree> &plan)
{
	switch (what)
	{
		case SA_TREE_ROOT:
			return sensitive_audit::range_root_plan(0, a, plan);
		case SA_TREE_INCLUSION:
			return sensitive_audit::inclusion_proof_plan(a, b, plan);
		case SA_TREE_CONSISTENCY:
			return sensitive_audit::consistency_proof_plan(a, b, plan);
		default:
			return SA_ERR_INTERNAL;
	}
}

/* Serves subtrees from the caller's arrays, sorted once for lookup. */
struct ArrayReader
{
	struct Node
	{
		uint32_t	level;
		uint64_t	index;
		const uint8_t *hash;

		bool		operator<(const Node &o) const
		{
			return level != o.level ? level < o.level : index < o.index;
		}
	};
	std::vector<Node> nodes;

	int			operator() (Subtree s, uint8_t out[SA_DIGEST_LEN]) const
	{
		const Node	key{s.level, s.index, nullptr};
		auto		it = std::lower_bound(nodes.begin(), nodes.end(), key);

		if (it == nodes.end() || it->level != s.level || it->index != s.index)
			return SA_ERR_INTERNAL; /* the caller did not supply a planned node */
		std::memcpy(out, it->hash, SA_DIGEST_LEN);
		return SA_OK;
	}
};

}								/* namespace */

extern "C" {

int
sa_merkle_leaf(const uint8_t entry_hash[SA_DIGEST_LEN], uint8_t out[SA_DIGEST_LEN])
{
	if (entry_hash == nullptr || out == nullptr)
		return SA_ERR_INTERNAL;
	Digest		d;
	int			rc = sensitive_audit::hash_entry_leaf(entry_hash, d);

	if (rc == SA_OK)
		std::memcpy(out, d.data(), SA_DIGEST_LEN);
	return rc;
}

int
sa_merkle_perfect_root(const uint8_t *hashes, size_t n, uint8_t out[SA_DIGEST_LEN])
{
	if (hashes == nullptr || out == nullptr || n == 0 || (n & (n - 1)) != 0)
		return SA_ERR_INTERNAL;
	return guarded([&] {
		/*
		 * For a power of two, the RFC's split halves the range exactly, so
		 * the root over n equal-level nodes is the tree root with those
		 * nodes taken as leaf hashes.
		 */
		std::vector<Digest> level(n);

		for (size_t i = 0; i < n; i++)
			std::memcpy(level[i].data(), hashes + i * SA_DIGEST_LEN, SA_DIGEST_LEN);
		Digest		root;

		check(sensitive_audit::tree_root(level.data(), n, root));
		std::memcpy(out, root.data(), SA_DIGEST_LEN);
	});
}

int
sa_tree_plan(int what, uint64_t a, uint64_t b, sa_subtree *out, size_t cap, size_t *n)
{
	if (n == nullptr || (out == nullptr && cap != 0))
		return SA_ERR_INTERNAL;
	return guarded([&] {
		std::vector<Subtree> plan;

		check(plan_of(what, a, b, plan));
		*n = plan.size();
		if (plan.size() > cap)
			throw CoreError(SA_ERR_SPACE);
		for (size_t i = 0; i < plan.size(); i++)
		{
			out[i].level = plan[i].level;
			out[i].index = plan[i].index;
		}
	});
}

int
sa_tree_compute(int what, uint64_t a, uint64_t b,
				const sa_subtree *nodes, const uint8_t *hashes, size_t nnodes,
				uint8_t *out, size_t cap, size_t *n)
{
	if (n == nullptr || (nnodes != 0 && (nodes == nullptr || hashes == nullptr))
		|| (out == nullptr && cap != 0))
		return SA_ERR_INTERNAL;
	return guarded([&] {
		ArrayReader reader;

		reader.nodes.reserve(nnodes);
		for (size_t i = 0; i < nnodes; i++)
			reader.nodes.push_back({nodes[i].level, nodes[i].index, hashes + i * SA_DIGEST_LEN});
		std::sort(reader.nodes.begin(), reader.nodes.end());

		std::vector<Digest> result;

		switch (what)
		{
			case SA_TREE_ROOT:
				{
					Digest		root;

					check(sensitive_audit::range_root(0, a, sensitive_audit::make_reader(reader), root));
					result.push_back(root);
					break;
				}
			case SA_TREE_INCLUSION:
				check(sensitive_audit::inclusion_proof(a, b, sensitive_audit::make_reader(reader), result));
				break;
			case SA_TREE_CONSISTENCY:
				check(sensitive_audit::consistency_proof(a, b, sensitive_audit::make_reader(reader), result));
				break;
			default:
				throw CoreError(SA_ERR_INTERNAL);
		}
		*n = result.size();
		if (result.size() > cap)
			throw CoreError(SA_ERR_SPACE);
		for (size_t i = 0; i < result.size(); i++)
			std::memcpy(out + i * SA_DIGEST_LEN, result[i].data(), SA_DIGEST_LEN);
	});
}

int
sa_checkpoint_body(const char *log_id, const sa_chain_head *chains, size_t n,
				   char *out, size_t cap, size_t *len)
{
	if (log_id == nullptr || len == nullptr || (n != 0 && chains == nullptr)
		|| (out == nullptr && cap != 0))
		return SA_ERR_INTERNAL;
	return guarded([&] {
		std::vector<ChainHead> heads(n);

		for (size_t i = 0; i < n; i++)
		{
			heads[i].chain = chains[i].chain;
			heads[i].size = chains[i].size;
			std::memcpy(heads[i].root.data(), chains[i].root, SA_DIGEST_LEN);
		}

		std::string body;

		check(sensitive_audit::encode_log_checkpoint(log_id, heads.data(), n, body));
		*len = body.size();
		if (body.size() + 1 > cap)
			throw CoreError(SA_ERR_SPACE);
		std::memcpy(out, body.c_str(), body.size() + 1);
	});
}

int
sa_checkpoint_parse(const char *note, size_t len, char *log_id, uint64_t *total,
					sa_chain_head *chains, size_t cap, size_t *nchains)
{
	if (note == nullptr || log_id == nullptr || total == nullptr || nchains == nullptr
		|| (chains == nullptr && cap != 0))
		return SA_ERR_INTERNAL;
	return guarded([&] {
		sensitive_audit::SignedNote parsed;

		check(sensitive_audit::parse_note(std::string_view(note, len), parsed));
		if (parsed.signatures.empty())
			throw CoreError(SA_ERR_SYNTAX);

		sensitive_audit::LogCheckpoint cp;

		check(sensitive_audit::parse_log_checkpoint(parsed.text, cp));
		if (cp.log_id.size() > SA_MAX_LOG_ID_LEN)
			throw CoreError(SA_ERR_SYNTAX);
		std::memcpy(log_id, cp.log_id.c_str(), cp.log_id.size() + 1);
		*total = cp.total;
		*nchains = cp.chains.size();
		if (cp.chains.size() > cap)
			throw CoreError(SA_ERR_SPACE);
		for (size_t i = 0; i < cp.chains.size(); i++)
		{
			chains[i].chain = cp.chains[i].chain;
			chains[i].size = cp.chains[i].size;
			std::memcpy(chains[i].root, cp.chains[i].root.data(), SA_DIGEST_LEN);
		}
	});
}

}								/* extern "C" */
