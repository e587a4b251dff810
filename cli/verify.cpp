/*
 * verify.cpp — checkpoints held against the rebuilt chains (verify.hpp).
 *
 * A checkpoint passes when its signature verifies with the auditor's key,
 * its body is a well-formed checkpoint of this log (same log id), and for
 * every chain it lists, the chain's first `size` entries all verified and
 * their tree has the root it signed.  Anything else is evidence: a chain
 * shorter than a signed size was cut, a missing chain was deleted, another
 * root means the history was rewritten.
 */
#include "core/cpp_only.hpp"

#include "verify.hpp"

#include <algorithm>
#include <cinttypes>
#include <cstdarg>
#include <cstdio>

#include "core/sa_core.h"

namespace sa_cli
{

using namespace sensitive_audit;

namespace
{

std::string
fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));

std::string
fmt(const char *f, ...)
{
	char		buf[1024];
	va_list		ap;

	va_start(ap, f);
	std::vsnprintf(buf, sizeof(buf), f, ap);
	va_end(ap);
	return buf;
}

}								/* namespace */

Verification::Verification(const VerifierKey &key, bool keep_times)
	: key_(key), keep_times_(keep_times)
{
	scanners_.push_back(std::make_unique<LogScanner>());
	scanners_.back()->keep_times(keep_times);
}

void
Verification::partition(const std::vector<std::vector<uint32_t>> &parts)
{
	scanners_.clear();
	route_.clear();
	for (size_t i = 0; i < std::max<size_t>(parts.size(), 1); i++)
	{
		scanners_.push_back(std::make_unique<LogScanner>());
		scanners_.back()->keep_times(keep_times_);
	}
	for (size_t i = 0; i < parts.size(); i++)
		for (uint32_t c : parts[i])
			route_[c] = i;
}

LogScanner &
Verification::scanner_for(uint32_t chain)
{
	auto		it = route_.find(chain);

	return *scanners_[it == route_.end() ? 0 : it->second];
}

const ChainOutcome *
Verification::outcome(uint32_t chain) const
{
	auto		it = route_.find(chain);

	return scanners_[it == route_.end() ? 0 : it->second]->chain(chain);
}

void
Verification::add_context(int64_t id, const Field (&fields)[kContextFields])
{
	for (auto &s : scanners_)
		s->add_context(id, fields);
}

std::vector<const LogScanner *>
Verification::scanners() const
{
	std::vector<const LogScanner *> v;

	for (const auto &s : scanners_)
		v.push_back(s.get());
	return v;
}

void
Verification::want(CheckpointCheck &c)
{
	if (c.body.log_id != log_id_)
	{
		c.ok = false;
		c.problems.push_back(c.label + " is for log " + c.body.log_id + ", but this log is " +
							 (log_id_.empty() ? std::string("without an id") : log_id_) +
							 " (a different log, or the log was dropped and rebuilt)");
		return;
	}
	for (const auto &h : c.body.chains)
		scanner_for(h.chain).want_root(h.chain, h.size);
}

void
Verification::add_stored(const StoredCheckpoint &cp)
{
	CheckpointCheck c;
	std::string text;

	c.label = "stored checkpoint #" + std::to_string(cp.id);
	int			rc = verify_note(cp.note, &key_, 1, &text, nullptr);

	if (rc != SA_OK)
	{
		c.ok = false;
		c.problems.push_back(c.label + ": " +
							 (rc == SA_ERR_SYNTAX ? std::string("not a well-formed signed note")
							  : "no valid signature by the key " + key_.name +
							  " (forged, altered, or signed by another key)"));
		checks_.push_back(std::move(c));
		return;
	}
	if (parse_log_checkpoint(text, c.body) != SA_OK)
	{
		c.ok = false;
		c.problems.push_back(c.label + ": signed, but not a valid sensitive_audit checkpoint body");
		checks_.push_back(std::move(c));
		return;
	}
	c.parsed = true;
	want(c);
	checks_.push_back(std::move(c));
}

void
Verification::add_state(const StateCheckpoint &sc)
{
	CheckpointCheck c;

	c.label = "the state directory's latest checkpoint (" + sc.name + ")";
	c.from_state = true;
	c.body = sc.body;
	c.parsed = true;
	want(c);
	checks_.push_back(std::move(c));
}

Report
Verification::finish(const std::string &source)
{
	Report		r;

	r.source = source;
	r.log_id = log_id_;
	for (auto &s : scanners_)
	{
		s->finish();
		r.chains.insert(r.chains.end(), s->chains().begin(), s->chains().end());
		r.entries_read += s->entries_read();
		r.entries_verified += s->entries_verified();
	}
	std::sort(r.chains.begin(), r.chains.end(),
			  [](const ChainOutcome &a, const ChainOutcome &b) { return a.chain < b.chain; });

	for (const auto &c : r.chains)
		if (!c.ok)
			r.problems.push_back(fmt("chain %" PRIu32 ": first bad entry seq %" PRIu64 ": %s",
									 c.chain, c.first_bad_seq, c.problem.c_str()));

	for (auto &c : checks_)
	{
		if (c.ok && c.parsed)
		{
			for (const auto &h : c.body.chains)
			{
				const ChainOutcome *o = outcome(h.chain);
				const size_t before = c.problems.size();

				if (o == nullptr || (o->entries == 0 && !o->resumed))
					c.problems.push_back(fmt("chain %" PRIu32 ": missing from the log, but %s covers %" PRIu64
											 " entries of it (chain deleted)",
											 h.chain, c.label.c_str(), h.size));
				else if (o->good_size < h.size)
				{
					if (!o->ok && o->first_bad_seq <= h.size)
						c.problems.push_back(fmt("chain %" PRIu32 ": entry seq %" PRIu64
												 " fails inside the %" PRIu64 " entries %s covers",
												 h.chain, o->first_bad_seq, h.size, c.label.c_str()));
					else
						c.problems.push_back(fmt("chain %" PRIu32 ": the log holds %" PRIu64
												 " entries, but %s covers %" PRIu64
												 " (entries cut off the end)",
												 h.chain, o->good_size, c.label.c_str(), h.size));
				}
				else
				{
					auto		it = o->roots.find(h.size);

					if (o->resumed && o->resumed_from == h.size)
					{
						/* incremental: the anchor entry was checked by the scan */
					}
					else if (it == o->roots.end() || it->second != h.root)
						c.problems.push_back(fmt("chain %" PRIu32 ": entries 1..%" PRIu64
												 " no longer have the root %s signed (history rewritten)",
												 h.chain, h.size, c.label.c_str()));
				}
				if (c.problems.size() != before)
					c.failed_chains.push_back(h.chain);
			}
			if (!c.problems.empty())
				c.ok = false;
		}
		for (const auto &p : c.problems)
			r.problems.push_back(p);
	}
	r.checkpoints = checks_;

	if (!r.problems.empty())
	{
		r.status = kExitTampered;
		r.verdict = fmt("FAILED: %zu problem%s found in %s (%" PRIu64 " entries read)",
						r.problems.size(), r.problems.size() == 1 ? "" : "s", source.c_str(),
						r.entries_read);
	}
	else if (r.entries_verified == 0)
	{
		r.status = kExitCannotVerify;
		r.verdict = "NOT VERIFIED: " + source + " holds no entry to verify";
		r.problems.push_back("no entry was verified");
	}
	else
	{
		size_t		nstored = 0;

		for (const auto &c : r.checkpoints)
			nstored += c.from_state ? 0 : 1;
		r.status = kExitOk;
		r.verdict = fmt("VERIFIED: %" PRIu64 " entries in %zu chain%s of %s, %zu stored checkpoint%s%s",
						r.entries_verified, r.chains.size(), r.chains.size() == 1 ? "" : "s",
						source.c_str(), nstored, nstored == 1 ? "" : "s",
						r.checkpoints.size() > nstored ? ", the state directory's latest checkpoint" : "");
	}
	return r;
}

const CheckpointCheck *
covering_checkpoint(const Report &r, uint32_t chain, uint64_t *size)
{
	const CheckpointCheck *best = nullptr;

	for (const auto &c : r.checkpoints)
	{
		/* A checkpoint of this log with a good signature covers the chains the log extends. */
		if (!c.parsed || c.body.log_id != r.log_id)
			continue;
		for (const auto &h : c.body.chains)
			if (h.chain == chain && (best == nullptr || h.size >= *size) &&
				std::find(c.failed_chains.begin(), c.failed_chains.end(), chain) == c.failed_chains.end())
			{
				best = &c;
				*size = h.size;
			}
	}
	return best;
}

}								/* namespace sa_cli */
