/*
 * verify.hpp — the judgement over one scan: every checkpoint (stored in
 * the log, and the state directory's latest) has its signature checked with
 * the auditor's key and is held against the chains as they were rebuilt,
 * and the outcome is one Report that report.cpp prints as text, JSON or
 * HTML.  The same code judges a database and a bundle.
 */
#pragma once

#include "core/cpp_only.hpp"

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/checkpoint.hpp"
#include "files.hpp"
#include "scan.hpp"

namespace sa_cli
{

struct CheckpointCheck
{
	std::string label;			/* "stored checkpoint #3", "state checkpoint-000002" */
	bool		from_state = false;
	bool		ok = true;
	std::vector<std::string> problems;
	bool		parsed = false;	/* signature verified and body valid */
	sensitive_audit::LogCheckpoint body;
	std::vector<uint32_t> failed_chains;	/* chains of body the log does not extend */
};

struct Report
{
	std::string source;			/* "database", "bundle FILE" */
	std::string log_id;
	int			status = kExitCannotVerify;
	std::string verdict;		/* one line */
	std::vector<std::string> problems;	/* every failed check, with chain and seq */
	std::vector<ChainOutcome> chains;
	std::vector<CheckpointCheck> checkpoints;
	uint64_t	entries_read = 0;
	uint64_t	entries_verified = 0;
	double		seconds = 0;
};

class Verification
{
public:
	Verification(const sensitive_audit::VerifierKey &key, bool keep_times);

	/*
	 * Optionally first: the chains split into parts, each scanned by its own
	 * LogScanner (in its own thread); chains in no part go to part 0.
	 */
	void		partition(const std::vector<std::vector<uint32_t>> &parts);
	/* Then, in this order: the log id, checkpoints, then the scan's rows. */
	void		set_log_id(const std::string &log_id) { log_id_ = log_id; }
	void		add_stored(const StoredCheckpoint &cp);
	void		add_state(const StateCheckpoint &sc);
	void		add_context(int64_t id, const Field (&fields)[kContextFields]);
	size_t		parts() const { return scanners_.size(); }
	LogScanner &scanner(size_t part = 0) { return *scanners_.at(part); }

	Report		finish(const std::string &source);
	std::vector<const LogScanner *> scanners() const;

private:
	void		want(CheckpointCheck &c);
	LogScanner &scanner_for(uint32_t chain);
	const ChainOutcome *outcome(uint32_t chain) const;

	sensitive_audit::VerifierKey key_;
	bool		keep_times_;
	std::string log_id_;
	std::vector<std::unique_ptr<LogScanner>> scanners_;
	std::map<uint32_t, size_t> route_;
	std::vector<CheckpointCheck> checks_;
};

/* Where the chain stands against the checkpoints that passed: last covering one. */
const CheckpointCheck *covering_checkpoint(const Report &r, uint32_t chain, uint64_t *size);

}								/* namespace sa_cli */
