/*
 * db.cpp — libpq access: one read-only snapshot, binary COPY of the log's
 * two tables, the checkpoints table, and add_checkpoint().
 *
 * Binary COPY is read as a byte stream (a tuple may in principle span
 * CopyData messages), and each tuple is handed on with its fields pointing
 * into libpq's buffer, so a row is never copied.  The client encoding is
 * set to the server's: text is then sent exactly as stored, which is what
 * was hashed.
 */
#include "core/cpp_only.hpp"

#include "db.hpp"

#include <cstring>
#include <map>
#include <string>

#include <libpq-fe.h>

namespace sa_cli
{

namespace
{

/* Seconds between 1970-01-01 and 2000-01-01, PostgreSQL's epoch, in µs. */
constexpr int64_t kPgEpochOffsetUs = INT64_C(946684800) * 1000000;

uint64_t
be(const char *p, int n)
{
	uint64_t	v = 0;

	for (int i = 0; i < n; i++)
		v = v << 8 | static_cast<uint8_t>(p[i]);
	return v;
}

/* jsonb's binary form: a version byte (1), then its text. */
Field
jsonb_text(Field f, const char *column)
{
	if (f.null)
		return f;
	if (f.len < 1 || f.data[0] != 1)
		throw Failure(kExitCannotVerify, std::string("unknown jsonb binary version in ") + column);
	f.data++;
	f.len--;
	return f;
}

std::string
one_line(const char *msg)
{
	std::string s = msg ? msg : "";

	while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
		s.pop_back();
	return s;
}

struct Result
{
	PGresult   *r;
	explicit Result(PGresult *res) : r(res) {}
	~Result() { PQclear(r); }
	Result(const Result &) = delete;
	Result &operator=(const Result &) = delete;
};

}								/* namespace */

Database::Database(const std::string &conninfo)
{
	conn_ = PQconnectdb(conninfo.c_str());
	if (conn_ == nullptr || PQstatus(conn_) != CONNECTION_OK)
		throw Failure(kExitCannotVerify, "cannot connect to the database: " +
					  one_line(conn_ ? PQerrorMessage(conn_) : "out of memory"));
	const char *enc = PQparameterStatus(conn_, "server_encoding");

	if (enc == nullptr || PQsetClientEncoding(conn_, enc) != 0)
		throw Failure(kExitCannotVerify, "cannot set the client encoding to the server's");
	exec("SET application_name = 'sensitive-audit'");
}

Database::~Database()
{
	PQfinish(conn_);
}

void
Database::exec(const char *sql)
{
	Result		r(PQexec(conn_, sql));

	if (PQresultStatus(r.r) != PGRES_COMMAND_OK && PQresultStatus(r.r) != PGRES_TUPLES_OK)
		throw Failure(kExitCannotVerify, std::string("the database refused \"") + sql + "\": " +
					  one_line(PQerrorMessage(conn_)));
}

void
Database::begin_snapshot()
{
	exec("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY");

	Result		v(PQexec(conn_,
						 "SELECT e.extversion, pg_catalog.to_regclass('sensitive_audit.log_info') IS NOT NULL,"
						 " pg_catalog.to_regclass('sensitive_audit.checkpoints') IS NOT NULL"
						 " FROM pg_catalog.pg_extension e WHERE e.extname = 'sensitive_audit'"));

	if (PQresultStatus(v.r) != PGRES_TUPLES_OK)
		throw Failure(kExitCannotVerify, "cannot read pg_extension: " + one_line(PQerrorMessage(conn_)));
	if (PQntuples(v.r) != 1)
		throw Failure(kExitCannotVerify, "the extension sensitive_audit is not installed in this database");
	ext_version_ = PQgetvalue(v.r, 0, 0);

	const bool	has_info = PQgetvalue(v.r, 0, 1)[0] == 't';
	int			major = 0, minor = 0;

	std::sscanf(ext_version_.c_str(), "%d.%d", &major, &minor);
	const bool	v12 = major > 1 || (major == 1 && minor >= 2);

	has_checkpoints_ = PQgetvalue(v.r, 0, 2)[0] == 't';
	if (!v12)
		return;					/* before 1.2 a log has no id and no checkpoints */
	if (!has_info || !has_checkpoints_)
		throw Failure(kExitTampered, "extension version " + ext_version_ +
					  " but sensitive_audit.log_info or sensitive_audit.checkpoints is missing");

	Result		id(PQexec(conn_, "SELECT log_id FROM sensitive_audit.log_info"));

	if (PQresultStatus(id.r) != PGRES_TUPLES_OK)
		throw Failure(kExitCannotVerify, "cannot read sensitive_audit.log_info: " +
					  one_line(PQerrorMessage(conn_)));
	if (PQntuples(id.r) != 1 || PQgetisnull(id.r, 0, 0))
		throw Failure(kExitTampered, "sensitive_audit.log_info holds " + std::to_string(PQntuples(id.r)) +
					  " rows, not exactly one log id");
	log_id_ = PQgetvalue(id.r, 0, 0);
}

std::string
Database::export_snapshot()
{
	Result		r(PQexec(conn_, "SELECT pg_catalog.pg_export_snapshot()"));

	if (PQresultStatus(r.r) != PGRES_TUPLES_OK || PQntuples(r.r) != 1)
		throw Failure(kExitCannotVerify, "cannot export the snapshot: " + one_line(PQerrorMessage(conn_)));
	return PQgetvalue(r.r, 0, 0);
}

void
Database::import_snapshot(const std::string &id)
{
	exec("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY");

	/* SET TRANSACTION SNAPSHOT takes no parameter: quote the id. */
	char	   *lit = PQescapeLiteral(conn_, id.c_str(), id.size());

	if (lit == nullptr)
		throw Failure(kExitCannotVerify, "cannot quote the snapshot id");
	std::string sql = std::string("SET TRANSACTION SNAPSHOT ") + lit;

	PQfreemem(lit);
	exec(sql.c_str());
}

std::vector<std::pair<uint32_t, uint64_t>>
Database::chain_counts()
{
	std::vector<std::pair<uint32_t, uint64_t>> out;
	Result		r(PQexec(conn_, "SELECT chain, count(*) FROM sensitive_audit.log_entries GROUP BY chain ORDER BY chain"));

	if (PQresultStatus(r.r) != PGRES_TUPLES_OK)
		throw Failure(kExitCannotVerify, "cannot count the log's entries: " + one_line(PQerrorMessage(conn_)));
	for (int i = 0; i < PQntuples(r.r); i++)
		out.emplace_back(static_cast<uint32_t>(std::strtol(PQgetvalue(r.r, i, 0), nullptr, 10)),
						 std::strtoull(PQgetvalue(r.r, i, 1), nullptr, 10));
	return out;
}

void
Database::commit()
{
	exec("COMMIT");
}

std::vector<StoredCheckpoint>
Database::checkpoints()
{
	std::vector<StoredCheckpoint> out;

	if (!has_checkpoints_)
		return out;
	copy("COPY (SELECT id, note FROM sensitive_audit.checkpoints ORDER BY id) TO STDOUT (FORMAT binary)",
		 [&](const Field *v, int n) {
			 if (n != 2 || v[0].null || v[0].len != 8)
				 throw Failure(kExitCannotVerify, "unexpected row shape in sensitive_audit.checkpoints");
			 StoredCheckpoint cp;

			 cp.id = static_cast<int64_t>(be(v[0].data, 8));
			 if (!v[1].null)
				 cp.note.assign(v[1].data, v[1].len);
			 out.push_back(std::move(cp));
		 });
	return out;
}

void
Database::copy(const std::string &sql, const std::function<void(const Field *, int)> &row)
{
	Result		start(PQexec(conn_, sql.c_str()));

	if (PQresultStatus(start.r) != PGRES_COPY_OUT)
		throw Failure(kExitCannotVerify, "cannot read the log: " + one_line(PQerrorMessage(conn_)));

	static const char kSignature[11] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', '\377', '\r', '\n', '\0'};
	std::string pending;
	bool		header = false;
	bool		trailer = false;
	Field		fields[32];

	/*
	 * Parses complete tuples from [p, p + n); returns the bytes consumed.
	 */
	auto		parse = [&](const char *p, size_t n) -> size_t {
		size_t		off = 0;

		if (!header)
		{
			if (n < 19)
				return 0;
			if (std::memcmp(p, kSignature, 11) != 0)
				throw Failure(kExitCannotVerify, "unexpected binary COPY header");
			uint64_t	ext = be(p + 15, 4);

			if (n < 19 + ext)
				return 0;
			off = 19 + ext;
			header = true;
		}
		while (off + 2 <= n)
		{
			if (trailer)
				throw Failure(kExitCannotVerify, "data after the binary COPY trailer");
			int16_t		nf = static_cast<int16_t>(be(p + off, 2));

			if (nf == -1)
			{
				trailer = true;
				off += 2;
				continue;
			}
			if (nf < 0 || nf > 32)
				throw Failure(kExitCannotVerify, "unexpected binary COPY tuple");
			size_t		q = off + 2;

			for (int i = 0; i < nf; i++)
			{
				if (q + 4 > n)
					return off;
				int32_t		len = static_cast<int32_t>(be(p + q, 4));

				q += 4;
				if (len < 0)
				{
					fields[i] = Field{nullptr, 0, true};
					continue;
				}
				if (q + static_cast<size_t>(len) > n)
					return off;
				fields[i] = Field{p + q, static_cast<size_t>(len), false};
				q += static_cast<size_t>(len);
			}
			row(fields, nf);
			off = q;
		}
		return off;
	};

	for (;;)
	{
		char	   *buf = nullptr;
		int			n = PQgetCopyData(conn_, &buf, 0);

		if (n == -1)
			break;
		if (n < 0)
			throw Failure(kExitCannotVerify, "reading the log failed: " + one_line(PQerrorMessage(conn_)));
		std::unique_ptr<char, void (*)(void *)> guard(buf, PQfreemem);

		if (pending.empty())
		{
			size_t		used = parse(buf, static_cast<size_t>(n));

			pending.assign(buf + used, static_cast<size_t>(n) - used);
		}
		else
		{
			pending.append(buf, static_cast<size_t>(n));
			size_t		used = parse(pending.data(), pending.size());

			pending.erase(0, used);
		}
	}
	Result		end(PQgetResult(conn_));

	if (PQresultStatus(end.r) != PGRES_COMMAND_OK)
		throw Failure(kExitCannotVerify, "reading the log failed: " + one_line(PQerrorMessage(conn_)));
	while (PGresult *more = PQgetResult(conn_))
		PQclear(more);
	if (!pending.empty() || !trailer)
		throw Failure(kExitCannotVerify, "the binary COPY stream ended early");
}

void
Database::contexts(const std::function<void(int64_t, const Field (&)[kContextFields])> &f)
{
	/* each column as the text the hash covers: inet's in its text form */
#define SA_COPY_text(name) #name
#define SA_COPY_inet(name) "CASE WHEN " #name " IS NULL THEN NULL ELSE pg_catalog.format('%s', " #name ") END"
#define SA_COPY_COLUMN_(name, NAME, sqltype) ", " SA_COPY_##sqltype(name)
	copy("COPY (SELECT id" SA_CONTEXT_TEXT_FIELDS(SA_COPY_COLUMN_)
		 " FROM sensitive_audit.log_contexts) TO STDOUT (FORMAT binary)",
#undef SA_COPY_COLUMN_
#undef SA_COPY_inet
#undef SA_COPY_text
		 [&](const Field *v, int n) {
			 if (n != 1 + kContextFields || v[0].null || v[0].len != 8)
				 throw Failure(kExitCannotVerify, "unexpected row shape in sensitive_audit.log_contexts");
			 Field		fields[kContextFields];

			 for (int i = 0; i < kContextFields; i++)
				 fields[i] = v[i + 1];
			 f(static_cast<int64_t>(be(v[0].data, 8)), fields);
		 });
}

void
Database::entries(const std::function<void(const EntryRow &)> &f,
				  const std::vector<std::pair<uint32_t, uint64_t>> &from, int64_t only_chain,
				  int64_t max_seq, const std::vector<uint32_t> *chains)
{
	/* the fixed columns, then the texts of log_entries (row_key, old_value, new_value) */
#define SA_COPY_COLUMN_(name, NAME, sqltype) ", e." #name
	static const char cols[] =
		"e.chain, e.seq, e.txid, e.event_time, e.context, e.format, e.backend_pid, e.prev_hash,"
		" e.hash" SA_ENTRY_TEXT_FIELDS(SA_COPY_COLUMN_);
#undef SA_COPY_COLUMN_
	constexpr int kFixedCols = 9;
	std::string sql = std::string("COPY (SELECT ") + cols + " FROM sensitive_audit.log_entries e";

	if (!from.empty())
	{
		/*
		 * Incremental: per chain, only the entries from its resume point on,
		 * each range read through the primary key, so the cost follows the
		 * new entries rather than the log's size.  The chains are found by a
		 * skip scan of the same index (one probe per chain).
		 */
		std::map<uint32_t, uint64_t> start;

		for (const auto &f : from)
			start[f.first] = f.second;
		Result		cr(PQexec(conn_,
							  "WITH RECURSIVE c(chain) AS ("
							  " SELECT min(chain) FROM sensitive_audit.log_entries"
							  " UNION ALL SELECT (SELECT min(e.chain) FROM sensitive_audit.log_entries e"
							  " WHERE e.chain > c.chain) FROM c WHERE c.chain IS NOT NULL)"
							  " SELECT chain FROM c WHERE chain IS NOT NULL"));

		if (PQresultStatus(cr.r) != PGRES_TUPLES_OK)
			throw Failure(kExitCannotVerify, "cannot list the log's chains: " + one_line(PQerrorMessage(conn_)));
		std::map<int32_t, std::string> lower;	/* by chain as SQL orders it */

		for (int i = 0; i < PQntuples(cr.r); i++)
		{
			int32_t		c = static_cast<int32_t>(std::strtol(PQgetvalue(cr.r, i, 0), nullptr, 10));

			lower[c] = "-9223372036854775808";
		}
		for (const auto &kv : start)
			lower[static_cast<int32_t>(kv.first)] = std::to_string(kv.second);
		std::string body;

		for (const auto &kv : lower)
			body += std::string(body.empty() ? "" : " UNION ALL ") + "(SELECT " + cols +
				" FROM sensitive_audit.log_entries e WHERE e.chain = " + std::to_string(kv.first) +
				" AND e.seq >= " + kv.second + " ORDER BY e.seq)";
		if (body.empty())
			body = std::string("SELECT ") + cols + " FROM sensitive_audit.log_entries e WHERE false";
		sql = "COPY (" + body + ") TO STDOUT (FORMAT binary)";
	}
	else if (chains != nullptr)
	{
		sql += " WHERE e.chain IN (";
		for (size_t i = 0; i < chains->size(); i++)
			sql += (i ? ", " : "") + std::to_string(static_cast<int32_t>((*chains)[i]));
		sql += ")";
	}
	else if (only_chain >= 0)
	{
		sql += " WHERE e.chain = " + std::to_string(only_chain);
		if (max_seq > 0)
			sql += " AND e.seq <= " + std::to_string(max_seq);
	}
	if (from.empty())
		sql += " ORDER BY e.chain, e.seq) TO STDOUT (FORMAT binary)";

	EntryRow	r;

	copy(sql, [&](const Field *v, int n) {
		if (n != kFixedCols + SA_ENTRY_TEXT_NFIELDS || v[0].null || v[0].len != 4 ||
			v[1].null || v[1].len != 8 || v[2].null || v[2].len != 8 || v[3].null || v[3].len != 8 ||
			v[4].null || v[4].len != 8 || v[5].null || v[5].len != 2 || v[6].null || v[6].len != 4)
			throw Failure(kExitCannotVerify, "unexpected row shape in sensitive_audit.log_entries");
		r.chain = static_cast<uint32_t>(be(v[0].data, 4));
		r.seq = be(v[1].data, 8);
		r.txid = be(v[2].data, 8);
		r.event_time = static_cast<int64_t>(be(v[3].data, 8)) + kPgEpochOffsetUs;
		r.context = static_cast<int64_t>(be(v[4].data, 8));
		r.format = static_cast<uint16_t>(be(v[5].data, 2));
		r.backend_pid = static_cast<int32_t>(be(v[6].data, 4));
		r.prev_hash = v[7];
		r.hash = v[8];

		int			col = kFixedCols;

#define SA_ROW_text(name) r.name = v[col++];
#define SA_ROW_jsonb(name) r.name = jsonb_text(v[col++], #name);
#define SA_ROW_TEXT_(name, NAME, sqltype) SA_ROW_##sqltype(name)
		SA_ENTRY_TEXT_FIELDS(SA_ROW_TEXT_)
#undef SA_ROW_TEXT_
#undef SA_ROW_jsonb
#undef SA_ROW_text
		f(r);
	});
}

int64_t
Database::add_checkpoint(const std::string &note)
{
	const char *params[1] = {note.c_str()};
	Result		r(PQexecParams(conn_, "SELECT sensitive_audit.add_checkpoint($1)", 1, nullptr, params,
							   nullptr, nullptr, 0));

	if (PQresultStatus(r.r) != PGRES_TUPLES_OK || PQntuples(r.r) != 1)
		throw Failure(kExitTampered, "the database refused the checkpoint: " +
					  one_line(PQerrorMessage(conn_)));
	return std::strtoll(PQgetvalue(r.r, 0, 0), nullptr, 10);
}

}								/* namespace sa_cli */
