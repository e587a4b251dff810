/*
 * policy.cpp — guardrails on tagged columns (DESIGN.md, "Events no
 * transaction can write, authorization, guardrails, reads").
 *
 * sensitive_audit.policy_info holds at most one policy per tagged column:
 * the roles allowed to change it (membership counts), how many rows one
 * statement may change, how many rows one role may change per hour across
 * sessions, and what a violation does: `block` refuses the statement,
 * `alert` lets it through.  Either way the violation is recorded and a JSON
 * payload is sent with NOTIFY on channel sensitive_audit_alerts.
 *
 * The checks run where the change is captured (capture.cpp), once per
 * changed tagged column of each row, against the policy the relation's
 * info carries for that column, so a column without a policy costs one
 * pointer test.  Rows per statement are counted per top-level statement
 * (a function's statements count together); rows per hour in shared
 * memory, per database, table, column and role, as the sum of the current
 * clock hour and the part of the previous one still inside the last 60
 * minutes.  Counts are of rows changed, whether or not their transaction
 * commits.
 *
 * set_policy() and drop_policy() replace a column's whole policy, are
 * recorded as POLICY entries (old and new policy as JSON) and invalidate
 * the relation infos of the table and its partitions.
 */
#include "sensitive_audit.hpp"

extern "C" {
#include "commands/async.h"
#include "commands/dbcommands.h"
#include "storage/proc.h"
#include "storage/spin.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
}

namespace {

/* Columns of sensitive_audit.policy_info (attnum - 1). */
enum PolicyAttr
{
	PA_TBL,
	PA_COLUMN,
	PA_ALLOWED_ROLES,
	PA_MAX_STMT,
	PA_MAX_HOUR,
	PA_ACTION,
	PA_SET_AT,
	PA_SET_BY,
	PA_NATTS
};

/* ---- Rows per hour, in shared memory ------------------------------------ */

int			rate_counters = 4096;	/* sensitive_audit.rate_counters */

using RateKey = SaRateKey;

struct RateCounter
{
	RateKey		key;
	slock_t		mutex;			/* guards the counts; the entry itself is under rates_lock */
	int64		hour;			/* the clock hour `current` counts */
	int64		current;
	int64		previous;		/* rows of the hour before */
};

HTAB	   *rates = nullptr;
LWLock	   *rates_lock = nullptr;
shmem_request_hook_type prev_shmem_request_hook = nullptr;
shmem_startup_hook_type prev_shmem_startup_hook = nullptr;

void
policy_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(hash_estimate_size(rate_counters, sizeof(RateCounter)));
	RequestNamedLWLockTranche("sensitive_audit policies", 1);
}

void
policy_shmem_startup(void)
{
	HASHCTL		info;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(RateKey);
	info.entrysize = sizeof(RateCounter);
	rates = ShmemInitHash("sensitive_audit rows per hour", rate_counters, rate_counters,
						  &info, HASH_ELEM | HASH_BLOBS);
	rates_lock = &(GetNamedLWLockTranche("sensitive_audit policies"))->lock;
	LWLockRelease(AddinShmemInitLock);
}

/*
 * Count n more rows for key; returns the rows of the last 60 minutes, or -1
 * when no counter is free (every one counted rows within the last two
 * hours).
 */
int64
count_rows_per_hour(const RateKey *key, uint32 hash, int64 n)
{
	TimestampTz now = GetCurrentTimestamp();
	int64		hour = now / USECS_PER_HOUR;
	double		into = (double) (now % USECS_PER_HOUR) / (double) USECS_PER_HOUR;
	bool		found;
	int64		result;

	/* the common case: the counter exists, and only its own spinlock is taken exclusively */
	LWLockAcquire(rates_lock, LW_SHARED);

	RateCounter *c = (RateCounter *) hash_search_with_hash_value(rates, key, hash, HASH_FIND, nullptr);

	if (c == nullptr)
	{
		LWLockRelease(rates_lock);
		LWLockAcquire(rates_lock, LW_EXCLUSIVE);
		c = (RateCounter *) hash_search_with_hash_value(rates, key, hash, HASH_ENTER_NULL, &found);
		if (c == nullptr)
		{
			/* make room: counters idle for two hours count nothing any more */
			HASH_SEQ_STATUS status;
			RateCounter *old;

			hash_seq_init(&status, rates);
			while ((old = (RateCounter *) hash_seq_search(&status)) != nullptr)
				if (old->hour < hour - 1)
					hash_search(rates, &old->key, HASH_REMOVE, nullptr);
			c = (RateCounter *) hash_search_with_hash_value(rates, key, hash, HASH_ENTER_NULL, &found);
			if (c == nullptr)
			{
				LWLockRelease(rates_lock);
				return -1;
			}
		}
		if (!found)
		{
			SpinLockInit(&c->mutex);
			c->hour = hour;
			c->current = 0;
			c->previous = 0;
		}
	}
	SpinLockAcquire(&c->mutex);
	if (c->hour != hour)
	{
		c->previous = c->hour == hour - 1 ? c->current : 0;
		c->current = 0;
		c->hour = hour;
	}
	c->current += n;
	result = c->current + (int64) ((double) c->previous * (1.0 - into));
	SpinLockRelease(&c->mutex);
	LWLockRelease(rates_lock);
	return result;
}

/* ---- Rows per statement, in the backend ---------------------------------- */

struct StatementKey
{
	Oid			tbl;
	NameData	column;
};

struct StatementCount
{
	StatementKey key;
	TimestampTz statement;		/* GetCurrentStatementStartTimestamp() */
	int64		rows;
	uint32		alerted;		/* rules already alerted in this statement */
};

HTAB	   *statement_counts = nullptr;

void		policy_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
									SubTransactionId parentSubid, void *arg);

StatementCount *
statement_count(SaPolicy *p)
{
	if (statement_counts == nullptr)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(StatementKey);
		ctl.entrysize = sizeof(StatementCount);
		ctl.hcxt = TopMemoryContext;
		statement_counts = hash_create("sensitive_audit rows per statement", 16, &ctl,
									   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		RegisterSubXactCallback(policy_subxact_callback, nullptr);
	}

	/* the entry stays where it is: entries of statement_counts are never removed */
	StatementCount *c = (StatementCount *) p->statement_count;
	bool		found = true;

	if (c == nullptr)
	{
		StatementKey key;

		memset(&key, 0, sizeof(key));
		key.tbl = p->tbl;
		namestrcpy(&key.column, p->column);
		c = (StatementCount *) hash_search(statement_counts, &key, HASH_ENTER, &found);
		p->statement_count = c;
	}

	TimestampTz stmt = GetCurrentStatementStartTimestamp();

	/*
	 * A new top-level statement: its start time is set once per statement
	 * the client sends, and stays the same across the COMMITs a procedure
	 * or DO block makes inside it.
	 */
	if (!found || c->statement != stmt)
	{
		c->statement = stmt;
		c->rows = 0;
		c->alerted = 0;
	}
	return c;
}

/*
 * An aborted subtransaction takes the ALERT entries and NOTIFYs it queued
 * with it: alert again.  (Rows it changed stay counted: they were tried.)
 */
void
policy_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						SubTransactionId parentSubid, void *arg)
{
	if (event != SUBXACT_EVENT_ABORT_SUB || statement_counts == nullptr)
		return;

	HASH_SEQ_STATUS status;
	StatementCount *c;

	hash_seq_init(&status, statement_counts);
	while ((c = (StatementCount *) hash_seq_search(&status)) != nullptr)
		c->alerted = 0;
}

/* ---- Violations ------------------------------------------------------------ */

enum Rule
{
	RULE_ROLES = 1,
	RULE_STATEMENT = 2,
	RULE_HOUR = 4
};

const char *
rule_name(Rule r)
{
	return r == RULE_ROLES ? "allowed_roles" : r == RULE_STATEMENT ? "max_rows_per_statement" : "max_rows_per_hour";
}

void
append_json_string(StringInfo s, const char *key, const char *value, bool first = false)
{
	if (!first)
		appendStringInfoString(s, ", ");
	escape_json(s, key);
	appendStringInfoString(s, ": ");
	if (value == nullptr)
		appendStringInfoString(s, "null");
	else
		escape_json(s, value);
}

/* The NOTIFY payload and the entry's new_value: what was attempted and which rule it broke. */
char *
violation_json(const SaPolicy *p, const SaPolicyRow *row, Rule rule, int64 limit, int64 count)
{
	StringInfoData s;

	initStringInfo(&s);
	appendStringInfoChar(&s, '{');
	append_json_string(&s, "event", p->block ? "DENIED" : "ALERT", true);
	append_json_string(&s, "database", get_database_name(MyDatabaseId));
	append_json_string(&s, "table_schema", row->schema);
	append_json_string(&s, "table_name", row->table);
	append_json_string(&s, "column_name", p->column);
	append_json_string(&s, "operation", row->operation);
	append_json_string(&s, "role", GetUserNameFromId(GetUserId(), false));
	append_json_string(&s, "session_role", GetUserNameFromId(GetSessionUserId(), false));
	append_json_string(&s, "rule", rule_name(rule));
	if (rule != RULE_ROLES)
		appendStringInfo(&s, ", \"limit\": " INT64_FORMAT ", \"rows\": " INT64_FORMAT, limit, count);
	append_json_string(&s, "action", p->block ? "block" : "alert");
	appendStringInfoString(&s, ", \"row_key\": ");
	if (row->key != nullptr)
		appendBinaryStringInfo(&s, row->key, row->keylen);
	else
		appendStringInfoString(&s, "null");
	appendStringInfoChar(&s, '}');
	return s.data;
}

void
violated(const SaPolicy *p, const SaPolicyRow *row, StatementCount *sc, Rule rule, int64 limit, int64 count)
{
	char	   *json = violation_json(p, row, rule, limit, count);

	if (p->block)
	{
		/* the refused transaction writes nothing: the worker records it */
		sa_policy_denied(row, p->column, json);
		if (rule == RULE_ROLES)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("role \"%s\" may not change column \"%s\" of \"%s.%s\"",
							GetUserNameFromId(GetUserId(), false), p->column, row->schema, row->table),
					 errdetail("A sensitive_audit policy allows only some roles to change it; the attempt is recorded."),
					 errhint("SELECT * FROM sensitive_audit.policies shows the policy.")));
		ereport(ERROR,
				(errcode(ERRCODE_SA_GUARDRAIL),
				 errmsg("%s of column \"%s\" of \"%s.%s\" exceeds its sensitive_audit policy: " INT64_FORMAT " rows, %s is " INT64_FORMAT,
						row->operation, p->column, row->schema, row->table, count, rule_name(rule), limit),
				 errdetail("The statement is refused and the attempt is recorded."),
				 errhint("SELECT * FROM sensitive_audit.policies shows the policy.")));
	}

	/* alert: once per statement and rule */
	if (sc->alerted & rule)
		return;
	sc->alerted |= rule;

	PendingEntry *e = sa_pending_new(GetCurrentTimestamp());

	sa_pending_set(e, PF_OPERATION, "ALERT");
	sa_pending_set(e, PF_TABLE_SCHEMA, row->schema);
	sa_pending_set(e, PF_TABLE_NAME, row->table);
	sa_pending_set(e, PF_COLUMN_NAME, p->column);
	if (row->key != nullptr)
		sa_pending_set(e, PF_ROW_KEY, pnstrdup(row->key, row->keylen));
	sa_pending_set(e, PF_NEW_VALUE, json);
	sa_pending_fill_who(e);
	Async_Notify(SA_ALERT_CHANNEL, json);
}

}								/* namespace */

/* From _PG_init, while shared_preload_libraries are being loaded. */
void
sa_policy_init(void)
{
	DefineCustomIntVariable("sensitive_audit.rate_counters",
							"Sets how many (database, table, column, role) counters rows-per-hour policies may use.",
							"Counters idle for two hours are reused; a change no counter is free for is refused.",
							&rate_counters,
							4096, 64, 1048576,
							PGC_POSTMASTER,
							0,
							nullptr, nullptr, nullptr);
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = policy_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = policy_shmem_startup;
}

bool
sa_policy_rates_available(void)
{
	return rates != nullptr;
}

namespace {

/* One stored row of policy_info, copied out of the scan. */
struct PolicyRow
{
	ArrayType  *roles;			/* nullptr: no allowed_roles */
	bool		has_stmt;
	int64		stmt;
	bool		has_hour;
	int64		hour;
	char	   *action;
};

/* tbl's column's row of policy_info into *row, palloc'd; false if it has none. */
bool
read_policy_row(Oid tbl, const char *column, PolicyRow *row)
{
	Oid			relid = sa_audit_relid(SA_POLICY_INFO);
	bool		found = false;

	if (!OidIsValid(relid))
		return false;

	/* the extension may have been dropped since the name was looked up */
	Relation	rel = try_table_open(relid, AccessShareLock);

	if (rel == nullptr)
		return false;

	Snapshot	snapshot = RegisterSnapshot(GetLatestSnapshot());
	TableScanDesc scan = table_beginscan(rel, snapshot, 0, nullptr);
	TupleDesc	desc = RelationGetDescr(rel);
	HeapTuple	tuple;

	while (!found && (tuple = heap_getnext(scan, ForwardScanDirection)) != nullptr)
	{
		bool		isnull;
		Datum		d = heap_getattr(tuple, PA_TBL + 1, desc, &isnull);

		if (isnull || DatumGetObjectId(d) != tbl)
			continue;
		d = heap_getattr(tuple, PA_COLUMN + 1, desc, &isnull);
		if (isnull || strcmp(NameStr(*DatumGetName(d)), column) != 0)
			continue;

		found = true;
		d = heap_getattr(tuple, PA_ALLOWED_ROLES + 1, desc, &isnull);
		row->roles = isnull ? nullptr : DatumGetArrayTypePCopy(d);
		d = heap_getattr(tuple, PA_MAX_STMT + 1, desc, &isnull);
		row->has_stmt = !isnull;
		row->stmt = isnull ? 0 : DatumGetInt64(d);
		d = heap_getattr(tuple, PA_MAX_HOUR + 1, desc, &isnull);
		row->has_hour = !isnull;
		row->hour = isnull ? 0 : DatumGetInt64(d);
		d = heap_getattr(tuple, PA_ACTION + 1, desc, &isnull);
		row->action = isnull ? pstrdup("block") : TextDatumGetCString(d);
	}
	table_endscan(scan);
	UnregisterSnapshot(snapshot);
	table_close(rel, AccessShareLock);
	return found;
}

}								/* namespace */

/*
 * The policy of tbl's column, or nullptr; palloc'd in the current context
 * (a relation info's).  Roles that no longer exist are left out.
 */
SaPolicy *
sa_policy_load(Oid tbl, const char *column)
{
	PolicyRow	row;

	if (!read_policy_row(tbl, column, &row))
		return nullptr;

	SaPolicy   *p = (SaPolicy *) palloc0(sizeof(SaPolicy));

	p->tbl = tbl;
	p->column = pstrdup(column);
	if (row.roles != nullptr)
	{
		Datum	   *names;
		bool	   *nulls;
		int			n;

		deconstruct_array(row.roles, NAMEOID, NAMEDATALEN, false, TYPALIGN_CHAR, &names, &nulls, &n);
		p->restrict_roles = true;
		p->roles = (Oid *) palloc0(sizeof(Oid) * Max(n, 1));
		for (int i = 0; i < n; i++)
		{
			if (nulls[i])
				continue;

			Oid			role = get_role_oid(NameStr(*DatumGetName(names[i])), true);

			if (OidIsValid(role))
				p->roles[p->nroles++] = role;
		}
	}
	p->max_rows_per_statement = row.stmt;
	p->max_rows_per_hour = row.hour;
	p->block = strcmp(row.action, "alert") != 0;
	return p;
}

/*
 * One row of a change to a column with policy p: count it, and act on any
 * rule it breaks.  Only changes of data are held to policies (not the
 * BASELINE or ATTACH records an owner makes).
 */
void
sa_policy_check(SaPolicy *p, const SaPolicyRow *row)
{
	StatementCount *sc = statement_count(p);

	if (p->restrict_roles)
	{
		Oid			me = GetUserId();
		bool		allowed = false;

		for (int i = 0; i < p->nroles && !allowed; i++)
			allowed = is_member_of_role(me, p->roles[i]);
		if (!allowed)
			violated(p, row, sc, RULE_ROLES, 0, 0);
	}

	sc->rows++;
	if (p->max_rows_per_statement > 0 && sc->rows > p->max_rows_per_statement)
		violated(p, row, sc, RULE_STATEMENT, p->max_rows_per_statement, sc->rows);

	if (p->max_rows_per_hour > 0)
	{
		if (rates == nullptr)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("the sensitive_audit policy on column \"%s\" of \"%s.%s\" counts rows per hour, which needs the library preloaded",
							p->column, row->schema, row->table),
					 errhint("Add sensitive_audit to shared_preload_libraries and restart.")));

		RateKey    *key = &p->rate_key;

		/* made again when another role changes rows (a policy starts zeroed: no role) */
		if (key->role != GetUserId())
		{
			memset(key, 0, sizeof(*key));
			key->db = MyDatabaseId;
			key->tbl = p->tbl;
			key->role = GetUserId();
			namestrcpy(&key->column, p->column);
			p->rate_hash = get_hash_value(rates, key);
		}

		int64		rows = count_rows_per_hour(key, p->rate_hash, 1);

		if (rows < 0)
			ereport(ERROR,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("sensitive_audit cannot count rows per hour for another role and column: all %d counters are in use",
							rate_counters),
					 errdetail("A change the policy would count cannot be let through uncounted."),
					 errhint("Raise sensitive_audit.rate_counters (a restart); counters idle for two hours are reused.")));
		if (rows > p->max_rows_per_hour)
			violated(p, row, sc, RULE_HOUR, p->max_rows_per_hour, rows);
	}
}

/*
 * A refused attempt: its transaction rolls back with everything it wrote,
 * so the DENIED entry (and its NOTIFY) comes from the event worker.
 * Without one (not preloaded, a standby, a full queue) a structured line
 * in the server log keeps it.
 */
void
sa_policy_denied(const SaPolicyRow *row, const char *column, const char *json)
{
	if (!sa_event_enqueue_session("DENIED", row->schema, row->table, column, json))
		ereport(LOG,
				(errmsg("sensitive_audit: DENIED %s", json),
				 errhidestmt(true)));
}

/* ---- set_policy() and drop_policy() ----------------------------------------- */

/*
 * col is one of tbl's tagged columns, and with must_own the caller owns
 * tbl; what says what needs it ("A policy guards"), in the hint.
 */
void
sa_check_tagged_column(Oid tbl, const char *col, const char *what, bool must_own)
{
	if (must_own)
		sa_check_table_owner(tbl);
	else if (get_rel_relkind(tbl) == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", tbl)));

	ListCell   *lc;
	bool		tagged = false;

	foreach(lc, sa_catalog_columns(tbl))
		tagged |= strcmp((const char *) lfirst(lc), col) == 0;
	if (!tagged)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of \"%s\" is not tagged", col, get_rel_name(tbl)),
				 errhint("%s a tagged column: SELECT sensitive_audit.tag('%s', '%s') first.",
						 what, get_rel_name(tbl), col)));
}

/* Relation infos of tbl and its partitions carry the old policy or protection: rebuild them. */
void
sa_invalidate_tree(Oid tbl)
{
	ListCell   *lc;

	foreach(lc, find_all_inheritors(tbl, NoLock, nullptr))
		CacheInvalidateRelcacheByRelid(lfirst_oid(lc));
}

namespace {

/* The policy of a policy_info row as JSON (the POLICY entry's values). */
char *
policy_json(ArrayType *roles, bool has_stmt, int64 stmt, bool has_hour, int64 hour, const char *action)
{
	StringInfoData s;

	initStringInfo(&s);
	appendStringInfoString(&s, "{\"allowed_roles\": ");
	if (roles == nullptr)
		appendStringInfoString(&s, "null");
	else
	{
		Datum	   *names;
		bool	   *nulls;
		int			n;

		deconstruct_array(roles, NAMEOID, NAMEDATALEN, false, TYPALIGN_CHAR, &names, &nulls, &n);
		appendStringInfoChar(&s, '[');
		for (int i = 0; i < n; i++)
		{
			if (i > 0)
				appendStringInfoString(&s, ", ");
			if (nulls[i])
				appendStringInfoString(&s, "null");
			else
				escape_json(&s, NameStr(*DatumGetName(names[i])));
		}
		appendStringInfoChar(&s, ']');
	}
	appendStringInfoString(&s, ", \"max_rows_per_statement\": ");
	if (has_stmt)
		appendStringInfo(&s, INT64_FORMAT, stmt);
	else
		appendStringInfoString(&s, "null");
	appendStringInfoString(&s, ", \"max_rows_per_hour\": ");
	if (has_hour)
		appendStringInfo(&s, INT64_FORMAT, hour);
	else
		appendStringInfoString(&s, "null");
	append_json_string(&s, "action", action);
	appendStringInfoChar(&s, '}');
	return s.data;
}

/* The stored policy of tbl.column as JSON, or nullptr. */
char *
stored_policy_json(Oid tbl, const char *column)
{
	PolicyRow	row;

	if (!read_policy_row(tbl, column, &row))
		return nullptr;
	return policy_json(row.roles, row.has_stmt, row.stmt, row.has_hour, row.hour, row.action);
}

void
record_policy(Oid tbl, const char *col, const char *old_json, const char *new_json)
{
	sa_record_setup_values("POLICY", get_namespace_name(get_rel_namespace(tbl)), get_rel_name(tbl),
						   col, nullptr, old_json, new_json);
}

/* Remove tbl.col's policy (old_json, as stored), record it, rebuild the infos; SPI connected. */
void
remove_policy(Oid tbl, const char *col, const char *old_json)
{
	sa_run_column_sql_as_owner("DELETE FROM sensitive_audit.policy_info "
							   "WHERE tbl OPERATOR(pg_catalog.=) $1 AND column_name OPERATOR(pg_catalog.=) $2",
							   tbl, col, InvalidOid);
	record_policy(tbl, col, old_json, nullptr);
	sa_invalidate_tree(tbl);
}

}								/* namespace */

extern "C" {
PG_FUNCTION_INFO_V1(sensitive_audit_set_policy);
PG_FUNCTION_INFO_V1(sensitive_audit_drop_policy);
}

/*
 * set_policy(tbl, col, allowed_roles name[], max_rows_per_statement,
 * max_rows_per_hour, action): the column's whole policy.
 */
extern "C" Datum
sensitive_audit_set_policy(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("set_policy() needs a table and a column")));

	Oid			tbl = PG_GETARG_OID(0);
	const char *col = NameStr(*PG_GETARG_NAME(1));
	ArrayType  *roles = PG_ARGISNULL(2) ? nullptr : PG_GETARG_ARRAYTYPE_P(2);
	bool		has_stmt = !PG_ARGISNULL(3);
	int64		stmt = has_stmt ? PG_GETARG_INT64(3) : 0;
	bool		has_hour = !PG_ARGISNULL(4);
	int64		hour = has_hour ? PG_GETARG_INT64(4) : 0;
	const char *action = PG_ARGISNULL(5) ? "block" : text_to_cstring(PG_GETARG_TEXT_PP(5));

	sa_check_tagged_column(tbl, col, "A policy guards", true);
	if (strcmp(action, "block") != 0 && strcmp(action, "alert") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown policy action \"%s\"", action),
				 errhint("The action is 'block' (refuse the statement) or 'alert' (let it through and alert).")));
	if (has_stmt && stmt <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_rows_per_statement must be positive, not " INT64_FORMAT, stmt)));
	if (has_hour && hour <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_rows_per_hour must be positive, not " INT64_FORMAT, hour)));
	if (roles == nullptr && !has_stmt && !has_hour)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a policy needs allowed_roles, max_rows_per_statement or max_rows_per_hour"),
				 errhint("sensitive_audit.drop_policy() removes a policy.")));
	if (roles != nullptr)
	{
		Datum	   *names;
		bool	   *nulls;
		int			n;

		if (ARR_NDIM(roles) > 1)
			ereport(ERROR,
					(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
					 errmsg("allowed_roles must be a one-dimensional array")));
		deconstruct_array(roles, NAMEOID, NAMEDATALEN, false, TYPALIGN_CHAR, &names, &nulls, &n);
		for (int i = 0; i < n; i++)
		{
			if (nulls[i])
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("allowed_roles cannot hold NULL")));
			(void) get_role_oid(NameStr(*DatumGetName(names[i])), false);
		}
	}
	if (has_hour && !sa_policy_rates_available())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("max_rows_per_hour needs the library preloaded"),
				 errdetail("Rows per hour are counted across sessions, in shared memory."),
				 errhint("Add sensitive_audit to shared_preload_libraries and restart.")));

	char	   *old_json = stored_policy_json(tbl, col);
	char	   *new_json = policy_json(roles, has_stmt, stmt, has_hour, hour, action);

	if (old_json != nullptr && strcmp(old_json, new_json) == 0)
		PG_RETURN_VOID();		/* already so: nothing to record */

	Oid			argtypes[8] = {REGCLASSOID, NAMEOID, NAMEARRAYOID, INT8OID, INT8OID, TEXTOID, TIMESTAMPTZOID, TEXTOID};
	Datum		values[8];
	char		nulls[8] = {' ', ' ', roles ? ' ' : 'n', has_stmt ? ' ' : 'n', has_hour ? ' ' : 'n', ' ', ' ', ' '};

	values[0] = ObjectIdGetDatum(tbl);
	values[1] = PG_GETARG_DATUM(1);
	values[2] = roles ? PointerGetDatum(roles) : (Datum) 0;
	values[3] = Int64GetDatum(stmt);
	values[4] = Int64GetDatum(hour);
	values[5] = CStringGetTextDatum(action);
	values[6] = TimestampTzGetDatum(GetCurrentTimestamp());
	values[7] = CStringGetTextDatum(GetUserNameFromId(GetUserId(), false));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	sa_run_sql_as_owner_nulls(
		"INSERT INTO sensitive_audit.policy_info AS p (tbl, column_name, allowed_roles, max_rows_per_statement, "
		"max_rows_per_hour, action, set_at, set_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
		"ON CONFLICT (tbl, column_name) DO UPDATE SET allowed_roles = EXCLUDED.allowed_roles, "
		"max_rows_per_statement = EXCLUDED.max_rows_per_statement, max_rows_per_hour = EXCLUDED.max_rows_per_hour, "
		"action = EXCLUDED.action, set_at = EXCLUDED.set_at, set_by = EXCLUDED.set_by",
		8, argtypes, values, nulls);
	SPI_finish();
	record_policy(tbl, col, old_json, new_json);
	sa_invalidate_tree(tbl);
	PG_RETURN_VOID();
}

extern "C" Datum
sensitive_audit_drop_policy(PG_FUNCTION_ARGS)
{
	Oid			tbl = PG_GETARG_OID(0);
	const char *col = NameStr(*PG_GETARG_NAME(1));

	sa_check_table_owner(tbl);

	char	   *old_json = stored_policy_json(tbl, col);

	if (old_json == nullptr)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("column \"%s\" of \"%s\" has no policy", col, get_rel_name(tbl))));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	remove_policy(tbl, col, old_json);
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * DETACH PARTITION: the detached table stays tagged on its own, and keeps
 * the policies its rows were held to, each recorded as a POLICY entry.
 */
void
sa_policy_copy(Oid from, Oid to)
{
	Oid			relid = sa_audit_relid(SA_POLICY_INFO);

	if (!OidIsValid(relid))
		return;

	ListCell   *lc;

	foreach(lc, sa_catalog_columns(from))
	{
		const char *col = (const char *) lfirst(lc);
		char	   *json = stored_policy_json(from, col);

		if (json == nullptr)
			continue;

		sa_run_column_sql_as_owner("INSERT INTO sensitive_audit.policy_info (tbl, column_name, allowed_roles, "
								   "max_rows_per_statement, max_rows_per_hour, action, set_at, set_by) "
								   "SELECT $3, p.column_name, p.allowed_roles, p.max_rows_per_statement, "
								   "p.max_rows_per_hour, p.action, pg_catalog.statement_timestamp(), p.set_by "
								   "FROM sensitive_audit.policy_info p WHERE p.tbl OPERATOR(pg_catalog.=) $1 "
								   "AND p.column_name OPERATOR(pg_catalog.=) $2 "
								   "ON CONFLICT (tbl, column_name) DO NOTHING",
								   from, col, to);
		record_policy(to, col, nullptr, json);
	}
	sa_invalidate_tree(to);
}

/* untag(): a column no longer tagged keeps no policy (its POLICY entry says so). */
void
sa_policy_forget(Oid tbl, const char *col)
{
	char	   *old_json = stored_policy_json(tbl, col);

	if (old_json != nullptr)
		remove_policy(tbl, col, old_json);
}
