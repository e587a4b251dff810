/*
 * verify.hpp — the judgement over one scan: every checkpoint (stored in
 * the log, and the state directory's latest) has its signature checked with
 * the auditor's key and is held against the chains as they were rebuilt,
 * and the outcome is one Report that report.cpp prints as text, JSON or
 * HTML.  The same code judges a database and a bundle.
 */
#pragma once

#include "core/cpp_only.hpp"

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

	/* In this order: the log id, checkpoints, then the scan's rows. */
	void		set_log_id(const std::string &log_id) { log_id_ = log_id; }
	void		add_stored(const StoredCheckpoint &cp);
	void		add_state(const StateCheckpoint &sc);
	LogScanner &scanner() { return scanner_; }

	Report		finish(const std::string &source);

private:
	void		want(CheckpointCheck &c);

	sensitive_audit::VerifierKey key_;
	std::string log_id_;
	LogScanner	scanner_;
	std::vector<CheckpointCheck> checks_;
};

/* Where the chain stands against the checkpoints that passed: last covering one. */
const CheckpointCheck *covering_checkpoint(const Report &r, uint32_t chain, uint64_t *size);

}								/* namespace sa_cli */
