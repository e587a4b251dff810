/*
 * db.hpp — what the program reads from and writes to the database, over
 * libpq.  Everything is read in one REPEATABLE READ, READ ONLY transaction,
 * so entries, contexts, checkpoints and the log id are one committed state;
 * the bulk of it comes through COPY ... TO STDOUT (FORMAT binary), whose
 * values do not depend on any session setting.  Nothing the extension
 * computes is trusted: only stored rows are read.
 */
#pragma once

#include "core/cpp_only.hpp"

#include <functional>
#include <string>
#include <vector>

#include "files.hpp"
#include "scan.hpp"

typedef struct pg_conn PGconn;

namespace sa_cli
{

class Database
{
public:
	/* Failure(2) when the connection fails (the message never echoes conninfo). */
	explicit Database(const std::string &conninfo);
	~Database();

	/* BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY, and the log's identity. */
	void		begin_snapshot();
	/* The snapshot's id, for other connections to read the same state. */
	std::string export_snapshot();
	/* A transaction on another connection that sees exactly that snapshot. */
	void		import_snapshot(const std::string &id);
	/* Entries per chain (a count over the whole table). */
	std::vector<std::pair<uint32_t, uint64_t>> chain_counts();
	void		commit();

	/* The extension's version, and the log id ("" for a version without one). */
	const std::string &ext_version() const { return ext_version_; }
	const std::string &log_id() const { return log_id_; }
	bool		has_checkpoints() const { return has_checkpoints_; }

	std::vector<StoredCheckpoint> checkpoints();
	void		contexts(const std::function<void(int64_t, const Field (&)[kContextFields])> &f);
	/*
	 * Entries ordered by (chain, seq).  from: per chain, the first seq
	 * wanted (chains not listed: all); only_chain >= 0 reads one chain, up
	 * to max_seq when that is positive.
	 */
	void		entries(const std::function<void(const EntryRow &)> &f,
						const std::vector<std::pair<uint32_t, uint64_t>> &from = {},
						int64_t only_chain = -1, int64_t max_seq = 0,
						const std::vector<uint32_t> *chains = nullptr);

	/* SELECT sensitive_audit.add_checkpoint($1), outside the snapshot. */
	int64_t		add_checkpoint(const std::string &note);

private:
	void		exec(const char *sql);
	void		copy(const std::string &sql, const std::function<void(const Field *, int)> &row);

	PGconn	   *conn_ = nullptr;
	std::string ext_version_;
	std::string log_id_;
	bool		has_checkpoints_ = false;
};

}								/* namespace sa_cli */
