/*
 * files.hpp — the files the program reads and writes, none of which needs a
 * database: key files, the state directory (the witness's memory), bundles
 * (an export of the whole log) and proof files.  Their formats are
 * specified byte by byte in docs/FORMAT.md, section 10.
 *
 * Reading is strict and fails closed: anything that is not exactly the one
 * form this program writes raises Failure with exit status 2 (could not
 * verify); problems that are evidence of tampering are reported by the
 * verifying code, with exit status 1.
 */
#pragma once

#include "core/cpp_only.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "core/checkpoint.hpp"
#include "scan.hpp"

namespace sa_cli
{

/* Exit statuses (DESIGN.md). */
inline constexpr int kExitOk = 0;
inline constexpr int kExitTampered = 1;
inline constexpr int kExitCannotVerify = 2;

/* A failure that ends the program with the given exit status. */
class Failure : public std::runtime_error
{
public:
	Failure(int status, const std::string &what) : std::runtime_error(what), status_(status) {}
	int			status() const noexcept { return status_; }

private:
	int			status_;
};

/* Whole file; Failure(2) when unreadable or empty. */
std::string read_file(const std::string &path, const char *what);
/* Creates path (mode) and writes text; refuses an existing file. */
void		write_new_file(const std::string &path, const std::string &text, unsigned mode);
/* Writes text to path through a temporary file and rename (replaces a report). */
void		write_replace_file(const std::string &path, const std::string &text, unsigned mode);

/* Keys: the public key file is one verifier-key line. */
sensitive_audit::VerifierKey load_verifier_key(const std::string &path);
sensitive_audit::SignerKey load_signer_key(const std::string &path);

/* A checkpoint as stored in the database (or a bundle). */
struct StoredCheckpoint
{
	int64_t		id = 0;
	std::string note;
};

/* ---- The state directory -------------------------------------------------- */

struct StateCheckpoint
{
	std::string name;			/* "checkpoint-000001" */
	std::string note;			/* the signed note */
	sensitive_audit::LogCheckpoint body;	/* parsed, its signature verified */
	std::vector<ChainResume> chains;	/* the saved tree state, one per chain line */
};

class StateDir
{
public:
	/*
	 * Opens (with create, makes it, mode 0700) and takes its lock: an
	 * exclusive flock for a writer, a shared one for a reader.
	 */
	StateDir(const std::string &dir, bool writer);
	~StateDir();

	/* The latest checkpoint, its signature checked with key; none if empty. */
	std::optional<StateCheckpoint> latest(const sensitive_audit::VerifierKey &key) const;
	/* Appends a checkpoint (a new file; never rewrites one) and points latest at it. */
	std::string append(const std::string &note, const std::string &log_id,
					   const std::vector<ChainResume> &chains);

private:
	std::string dir_;
	int			lock_fd_ = -1;
};

/* ---- Bundles --------------------------------------------------------------- */

class BundleWriter
{
public:
	BundleWriter(const std::string &path, const std::string &log_id);
	~BundleWriter();
	void		checkpoint(const StoredCheckpoint &cp);
	void		context(int64_t id, const Field (&fields)[kContextFields]);
	void		entry(const EntryRow &row);
	/* Writes the end line and closes the file (renamed into place). */
	void		finish();

private:
	void		line(const std::string &text);
	struct Impl;
	std::unique_ptr<Impl> impl_;
};

/*
 * The canonical JSON of an entry as a bundle's entry line holds it (no
 * line feed), with extra members (string or null) added, as decrypt
 * --json writes it.  Failure(2) for text that is not UTF-8.
 */
std::string entry_line(const EntryRow &r,
					   const std::vector<std::pair<std::string, std::optional<std::string>>> &extra = {});
/* A JSON string literal of s, for reading (bytes that are not UTF-8 become U+FFFD). */
std::string json_text(const std::string &s);

/* What a bundle reader hands over, in file order. */
struct BundleSink
{
	std::function<void(const std::string &log_id)> header;
	std::function<void(const StoredCheckpoint &)> checkpoint;
	std::function<void(int64_t id, const Field (&)[kContextFields])> context;
	/* Called once, after the last context and before the first entry. */
	std::function<void()> contexts_done;
	std::function<void(const EntryRow &)> entry;
};

/* Reads a whole bundle; Failure(2) for anything malformed, truncated or altered. */
void		read_bundle(const std::string &path, const BundleSink &sink);

/* ---- Proof files ----------------------------------------------------------- */

struct ProofEntry
{
	uint16_t	format = 1;
	int64_t		chain = 0;
	int64_t		seq = 0;
	uint64_t	txid = 0;
	int64_t		event_time = 0;
	/* the text fields of FORMAT.md section 1 (kEntryTextNames), in order; nullopt = NULL */
	std::vector<std::optional<std::string>> texts;
	int32_t		backend_pid = 0;
	Digest		prev_hash{};
};

/* The names of the text fields (src/core/entry_fields.h), in encoding order. */
extern const char *const kEntryTextNames[SA_TEXT_NFIELDS];

struct Proof
{
	std::string log_id;
	ProofEntry	entry;
	Digest		entry_hash{};
	uint64_t	leaf_index = 0;
	uint64_t	tree_size = 0;
	std::vector<Digest> path;
	std::string checkpoint;		/* the signed note */
	uint64_t	record_index = 0;
	uint64_t	record_count = 0;
	std::vector<Digest> record_path;
};

std::string encode_proof(const Proof &p);
Proof		parse_proof(const std::string &text);	/* Failure(2) when malformed */

/* SHA-256 of the entry's canonical encoding (FORMAT.md sections 2, 3). */
Digest		proof_entry_hash(const ProofEntry &e);

}								/* namespace sa_cli */
