/*
 * scan.cpp — the verifying pass over a log's rows (see scan.hpp).
 *
 * Per entry: its context is looked up (the previous one is kept, as
 * consecutive entries mostly share it), the entry is handed to the core's
 * ChainVerifier, and if it passed, its stored hash becomes the next leaf of
 * the chain's tree.  A chain's tree therefore always covers exactly the
 * verified prefix of the chain, and a root captured at size s is the root
 * of entries 1..s only if all of them verified.
 */
#include "core/cpp_only.hpp"

#include "scan.hpp"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "core/sa_core.h"

namespace sa_cli
{

using namespace sensitive_audit;

#define SA_NAME_(name, NAME, sqltype) #name,
const char *const kContextFieldNames[kContextFields] = {SA_CONTEXT_TEXT_FIELDS(SA_NAME_)};
#undef SA_NAME_

struct LogScanner::Work
{
	uint32_t	chain = 0;
	std::unique_ptr<MerkleBuilder> tree;
	std::vector<uint64_t> wanted;	/* ascending, unique */
	size_t		next_wanted = 0;
	ChainOutcome out;
	bool		failed = false;
	/* resumed chains: the entry at the resume point must be met first */
	bool		need_anchor = false;
	Digest		anchor_hash{};
};

LogScanner::LogScanner() = default;
LogScanner::~LogScanner() = default;

namespace
{

sa_bytes
as_bytes(const Field &f)
{
	sa_bytes	b;

	b.data = f.null ? nullptr : (f.data ? f.data : "");
	b.len = f.null ? 0 : f.len;
	b.is_null = f.null ? 1 : 0;
	return b;
}

sa_bytes
as_bytes(const ContextInfo *c, int i)
{
	sa_bytes	b{nullptr, 0, 1};

	if (c != nullptr && !c->null[i])
	{
		b.data = c->value[i].data();
		b.len = c->value[i].size();
		b.is_null = 0;
	}
	return b;
}

std::string
text(const char *fmt, uint64_t a, uint64_t b = 0)
{
	char		buf[256];

	std::snprintf(buf, sizeof(buf), fmt, a, b);
	return buf;
}

}								/* namespace */

void
LogScanner::add_context(int64_t id, const Field (&fields)[kContextFields])
{
	if (++context_count_[id] > 1)
	{
		/* Stored twice: which one the entries were written with is unknown. */
		contexts_.erase(id);
		return;
	}
	ContextInfo c;

	for (int i = 0; i < kContextFields; i++)
	{
		c.null[i] = fields[i].null;
		if (!fields[i].null)
			c.value[i].assign(fields[i].data ? fields[i].data : "", fields[i].len);
	}
	contexts_.emplace(id, std::move(c));
}

LogScanner::Work &
LogScanner::work_for(uint32_t chain)
{
	if (!work_.empty() && work_.back()->chain == chain)
		return *work_.back();

	auto		it = std::lower_bound(work_.begin(), work_.end(), chain,
									  [](const std::unique_ptr<Work> &w, uint32_t c) {
										  return w->chain < c;
									  });

	if (it != work_.end() && (*it)->chain == chain)
		return **it;

	auto		w = std::make_unique<Work>();

	w->chain = chain;
	w->out.chain = chain;
	w->tree = MerkleBuilder::create();
	if (!w->tree)
		throw std::runtime_error("out of memory or SHA-256 unavailable");
	return **work_.insert(it, std::move(w));
}

void
LogScanner::resume(const ChainResume &r)
{
	Work	   &w = work_for(r.chain);

	if (r.size == 0 || w.out.resumed || w.out.entries != 0)
		throw std::runtime_error("invalid resume point");
	if (w.tree->resume(r.size, r.subtrees.data(), r.subtrees.size()) != SA_OK)
		throw std::runtime_error("the saved tree state does not match its size");
	verifier_.resume_chain(r.chain, r.size, r.last_hash.data());
	w.out.resumed = true;
	w.out.resumed_from = r.size;
	w.out.good_size = r.size;
	w.out.last_hash = r.last_hash;
	w.need_anchor = true;
	w.anchor_hash = r.last_hash;
}

void
LogScanner::want_root(uint32_t chain, uint64_t size)
{
	Work	   &w = work_for(chain);

	w.wanted.push_back(size);
}

void
LogScanner::fail(Work &w, uint64_t seq, std::string problem)
{
	if (w.failed)
		return;
	w.failed = true;
	w.out.ok = false;
	w.out.first_bad_seq = seq;
	w.out.problem = std::move(problem);
}

void
LogScanner::feed(const EntryRow &row)
{
	if (finished_)
		throw std::logic_error("feed after finish");
	nread_++;

	Work	   &w = work_for(row.chain);

	if (w.need_anchor || w.out.resumed)
	{
		/*
		 * A resumed chain: entries up to the resume point were verified by
		 * an earlier run; the one at the resume point must still be there
		 * with the hash that run recorded, else the history it checkpointed
		 * was cut or rewritten.
		 */
		if (row.seq < w.out.resumed_from)
			return;
		if (row.seq == w.out.resumed_from)
		{
			if (!w.need_anchor)
			{
				fail(w, row.seq, text("duplicate: seq %" PRIu64 " appears more than once", row.seq));
				return;
			}
			w.need_anchor = false;
			if (row.hash.null || row.hash.len != SA_DIGEST_LEN ||
				std::memcmp(row.hash.data, w.anchor_hash.data(), SA_DIGEST_LEN) != 0)
				fail(w, row.seq,
					 text("rewritten: entry seq %" PRIu64
						  " no longer has the hash the latest checkpoint recorded",
						  row.seq));
			return;
		}
		if (w.need_anchor)
		{
			w.need_anchor = false;
			fail(w, row.seq,
				 text("cut: entry seq %" PRIu64 ", the last the latest checkpoint covered, is missing",
					  w.out.resumed_from));
		}
	}

	w.out.entries++;
	if (keep_times_)
		times_[row.context].push_back(row.event_time);

	/* Counted, but nothing after a chain's first failure can be judged. */
	if (w.failed)
		return;

	const ContextInfo *ctx;

	if (last_context_ != nullptr && last_context_id_ == row.context)
		ctx = last_context_;
	else
	{
		auto		it = contexts_.find(row.context);

		ctx = it == contexts_.end() ? nullptr : &it->second;
		last_context_ = ctx;
		last_context_id_ = row.context;
	}

	sa_entry	e;

	e.format = row.format;
	e.chain = row.chain;
	e.seq = row.seq;
	e.txid = row.txid;
	e.event_time = row.event_time;
#define SA_FROM_ROW_(name, NAME, sqltype) e.name = as_bytes(row.name);
#define SA_FROM_CONTEXT_(name, NAME, sqltype) e.name = as_bytes(ctx, SA_CTX_##NAME);
	SA_ENTRY_FIELDS(SA_FIELD_NONE, SA_FROM_ROW_, SA_FROM_CONTEXT_)
#undef SA_FROM_ROW_
#undef SA_FROM_CONTEXT_
	e.backend_pid = row.backend_pid;
	std::memset(e.prev_hash, 0, SA_DIGEST_LEN);
	if (!row.prev_hash.null && row.prev_hash.len == SA_DIGEST_LEN)
		std::memcpy(e.prev_hash, row.prev_hash.data, SA_DIGEST_LEN);
	else
	{
		/* Not 32 bytes: cannot be what was hashed; make sure it cannot link. */
		std::memset(e.prev_hash, 0xff, SA_DIGEST_LEN);
		e.prev_hash[0] ^= static_cast<uint8_t>(row.prev_hash.len);
	}

	verifier_.feed(e, row.hash.null ? nullptr : reinterpret_cast<const uint8_t *>(row.hash.data),
				   row.hash.null ? 0 : row.hash.len);
	if (!verifier_.last_passed())
	{
		/* The core's verdict, taken from its result for this chain. */
		for (size_t i = 0; i < verifier_.nchains(); i++)
		{
			sa_chain_result r = verifier_.result(i);

			if (r.chain == row.chain && !r.ok)
			{
				fail(w, r.first_bad_seq, r.problem ? r.problem : "failed");
				break;
			}
		}
		fail(w, row.seq, "failed");
		return;
	}

	nverified_++;
	if (w.tree->append_entry(reinterpret_cast<const uint8_t *>(row.hash.data)) != SA_OK)
		throw std::runtime_error("SHA-256 failed");
	w.out.good_size = w.tree->size();
	std::memcpy(w.out.last_hash.data(), row.hash.data, SA_DIGEST_LEN);
	while (w.next_wanted < w.wanted.size() && w.wanted[w.next_wanted] <= w.out.good_size)
	{
		if (w.wanted[w.next_wanted] == w.out.good_size)
		{
			Digest		root;

			if (w.tree->root(root) != SA_OK)
				throw std::runtime_error("SHA-256 failed");
			w.out.roots[w.out.good_size] = root;
		}
		w.next_wanted++;
	}
}

void
LogScanner::finish()
{
	if (finished_)
		return;
	finished_ = true;
	verifier_.finish();
	out_.clear();
	for (auto &wp : work_)
	{
		Work	   &w = *wp;

		if (w.need_anchor)
		{
			w.need_anchor = false;
			fail(w, w.out.resumed_from,
				 text("cut: the chain has fewer than %" PRIu64
					  " entries, the size the latest checkpoint covered",
					  w.out.resumed_from));
		}
		if (w.tree->root(w.out.root) != SA_OK)
			throw std::runtime_error("SHA-256 failed");
		w.out.subtrees.clear();
		for (size_t i = 0; i < w.tree->stack_count(); i++)
			w.out.subtrees.push_back(w.tree->stack_hash(i));
		out_.push_back(w.out);
	}
}

const ChainOutcome *
LogScanner::chain(uint32_t c) const
{
	for (const auto &o : out_)
		if (o.chain == c)
			return &o;
	return nullptr;
}

std::string
to_hex(const uint8_t *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	std::string s(n * 2, '0');

	for (size_t i = 0; i < n; i++)
	{
		s[2 * i] = digits[p[i] >> 4];
		s[2 * i + 1] = digits[p[i] & 15];
	}
	return s;
}

bool
from_hex(const std::string &s, std::vector<uint8_t> &out)
{
	auto		nibble = [](char c) -> int {
		if (c >= '0' && c <= '9')
			return c - '0';
		if (c >= 'a' && c <= 'f')
			return c - 'a' + 10;
		return -1;				/* lower case only: one spelling */
	};

	if (s.size() % 2 != 0)
		return false;
	out.resize(s.size() / 2);
	for (size_t i = 0; i < out.size(); i++)
	{
		int			h = nibble(s[2 * i]);
		int			l = nibble(s[2 * i + 1]);

		if (h < 0 || l < 0)
			return false;
		out[i] = static_cast<uint8_t>(h << 4 | l);
	}
	return true;
}

bool
digest_from_hex(const std::string &s, Digest &out)
{
	std::vector<uint8_t> v;

	if (s.size() != 2 * SA_DIGEST_LEN || !from_hex(s, v))
		return false;
	std::memcpy(out.data(), v.data(), SA_DIGEST_LEN);
	return true;
}

}								/* namespace sa_cli */
