/*
 * scan.hpp — one pass over a log's rows: every entry re-hashed and linked
 * (src/core's ChainVerifier), every chain's Merkle tree rebuilt from the
 * entries that passed (src/core's MerkleBuilder), and the roots the
 * checkpoints to be checked need captured on the way.
 *
 * The rows come from the database (COPY over libpq) or from a bundle file;
 * this file knows neither.  It sees the log as it is stored: entries that
 * name their shared fields by context id, and the contexts themselves.  A
 * context id stored twice cannot be trusted to be the one an entry was
 * written with, so its entries are checked with those fields NULL (and
 * fail), as docs/FORMAT.md section 6 says verify() does.
 *
 * A scan may resume a chain from a checkpoint the caller verified before
 * (the size, the stored hash of the entry at that size, and the tree's
 * perfect subtrees): then only later entries are re-hashed, and the entry
 * at that size must still carry the recorded hash.
 */
#pragma once

#include "core/cpp_only.hpp"

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/merkle.hpp"
#include "core/verifier.hpp"

namespace sa_cli
{

using sensitive_audit::Digest;

/* A possibly-NULL byte string, borrowed. */
struct Field
{
	const char *data = nullptr;
	size_t		len = 0;
	bool		null = true;
};

/*
 * The shared fields of log_contexts, in this order (SA_CTX_<NAME>, from
 * src/core/entry_fields.h), and their names.
 */
inline constexpr int kContextFields = SA_CONTEXT_NFIELDS;
extern const char *const kContextFieldNames[kContextFields];

/* One row of log_entries, fields borrowed for the duration of feed(). */
struct EntryRow
{
	uint32_t	chain = 0;
	uint64_t	seq = 0;
	uint64_t	txid = 0;
	int64_t		event_time = 0;	/* microseconds since 1970-01-01 UTC */
	int64_t		context = 0;
	uint16_t	format = 0;
	/* the text fields stored in log_entries: row_key (jsonb's text), old_value, new_value */
#define SA_ENTRY_ROW_MEMBER_(name, NAME, sqltype) Field name;
	SA_ENTRY_TEXT_FIELDS(SA_ENTRY_ROW_MEMBER_)
#undef SA_ENTRY_ROW_MEMBER_
	int32_t		backend_pid = 0;
	Field		prev_hash;
	Field		hash;
};

/* Where a chain was resumed from. */
struct ChainResume
{
	uint32_t	chain = 0;
	uint64_t	size = 0;		/* >= 1 */
	Digest		last_hash{};	/* stored hash of the entry at seq = size */
	std::vector<Digest> subtrees;	/* perfect_subtrees(size) order */
};

/* What the scan found for one chain. */
struct ChainOutcome
{
	uint32_t	chain = 0;
	uint64_t	entries = 0;	/* entries read (after the resume point) */
	bool		ok = true;
	uint64_t	first_bad_seq = 0;
	std::string problem;
	uint64_t	good_size = 0;	/* leaves in the tree: entries 1..good_size verified */
	Digest		root{};			/* tree root at good_size */
	Digest		last_hash{};	/* stored hash of entry good_size */
	std::vector<Digest> subtrees;	/* perfect subtrees at good_size */
	std::map<uint64_t, Digest> roots;	/* captured roots at wanted sizes */
	bool		resumed = false;
	uint64_t	resumed_from = 0;
};

/* Entries per operation per context (for the report's pictures). */
struct ContextInfo
{
	std::array<std::string, kContextFields> value;
	std::array<bool, kContextFields> null{};
};

class LogScanner
{
public:
	LogScanner();
	~LogScanner();

	/* Before feeding entries. */
	void		add_context(int64_t id, const Field (&fields)[kContextFields]);
	void		resume(const ChainResume &r);
	void		want_root(uint32_t chain, uint64_t size);
	void		keep_times(bool on) { keep_times_ = on; }

	void		feed(const EntryRow &row);
	void		finish();

	/* After finish(): ascending by chain; chains resumed but never met included. */
	const std::vector<ChainOutcome> &chains() const { return out_; }
	const ChainOutcome *chain(uint32_t c) const;
	uint64_t	entries_read() const { return nread_; }
	uint64_t	entries_verified() const { return nverified_; }

	/* Contexts and, with keep_times, each context's entries' event times. */
	const std::unordered_map<int64_t, ContextInfo> &contexts() const { return contexts_; }
	const std::unordered_map<int64_t, std::vector<int64_t>> &times() const { return times_; }

private:
	struct Work;
	Work	   &work_for(uint32_t chain);
	void		fail(Work &w, uint64_t seq, std::string problem);

	sensitive_audit::ChainVerifier verifier_;
	std::vector<std::unique_ptr<Work>> work_;	/* ascending by chain */
	std::unordered_map<int64_t, ContextInfo> contexts_;
	std::unordered_map<int64_t, int> context_count_;
	std::unordered_map<int64_t, std::vector<int64_t>> times_;
	std::vector<ChainOutcome> out_;
	bool		keep_times_ = false;
	bool		finished_ = false;
	uint64_t	nread_ = 0;
	uint64_t	nverified_ = 0;
	int64_t		last_context_id_ = 0;
	const ContextInfo *last_context_ = nullptr;
};

/* Hex of 32 bytes, lower case; and back (false unless exactly 64 hex digits). */
std::string to_hex(const uint8_t *p, size_t n);
bool		from_hex(const std::string &s, std::vector<uint8_t> &out);
bool		digest_from_hex(const std::string &s, Digest &out);

}								/* namespace sa_cli */
