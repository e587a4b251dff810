/*
 * reads.cpp — READ entries: who read the audit log, and who read tagged
 * columns of the tables whose owner asks for it (audit_reads()).
 *
 * One entry per statement and relation read, never per row: when a query
 * ends (ExecutorEnd) its range table says which relations it read and
 * which of their columns, and the executor how many rows it returned; a
 * COPY of a whole table, which runs no query, is seen as a utility
 * command.  The entry (operation READ; table_schema and table_name the
 * relation; new_value {"columns": [...], "rows": n, "query_id": id}; who
 * the reading session) goes through the event worker when the library is
 * preloaded, so that a rolled-back or read-only transaction cannot hide the
 * read; otherwise it is written with the reading transaction when that can
 * write, and as a structured line in the server log when it cannot (a
 * read-only transaction, a standby).
 *
 * Which relations count is cached per backend: the log's three relations
 * by OID for the current database, and the tables with read auditing and
 * their tagged columns, rebuilt after any change to read_audit_info or to
 * the tagged columns (both invalidate the relcache).
 */
#include "sensitive_audit.hpp"

extern "C" {
#include "postmaster/bgworker.h"
#include "tcop/utility.h"
#include "parser/parsetree.h"
#include "utils/queryjumble.h"
}

namespace {

ExecutorStart_hook_type prev_executor_start = nullptr;
ExecutorEnd_hook_type prev_executor_end = nullptr;
ProcessUtility_hook_type prev_process_utility = nullptr;

/* What counts as a read worth recording, for the current database. */
struct ReadTargets
{
	bool		valid;
	Oid			db;
	Oid			log_relids[4];	/* sensitive_audit.log, log_entries, log_contexts, erasable_values */
	HTAB	   *tables;			/* relid -> ReadTable: tables with read auditing */
};

struct ReadTable
{
	Oid			relid;
	Bitmapset  *tagged;			/* attnums of its tagged columns (in CacheMemoryContext) */
};

ReadTargets targets = {false, InvalidOid, {InvalidOid, InvalidOid, InvalidOid}, nullptr};

/*
 * What an entry says of a relation read, kept per backend so that a read
 * costs no catalog lookup: its names, and the JSON list of the columns the
 * last statement reading it read.  Emptied with the targets.
 */
struct RelNames
{
	Oid			relid;
	char		schema[NAMEDATALEN];
	char		table[NAMEDATALEN];
	Bitmapset  *cols;			/* in CacheMemoryContext */
	char	   *json;			/* the columns of cols, in CacheMemoryContext */
};

HTAB	   *rel_names = nullptr;

/* The names of the roles that read last (cleared when any role changes). */
struct RoleName
{
	Oid			roleid;
	char		name[NAMEDATALEN];
};

RoleName	role_names[2];
bool		log_reads = true;	/* sensitive_audit.log_reads */
bool		callbacks_registered = false;
int			nesting = 0;		/* a READ entry written from inside the hook */

/*
 * Statements loading rows into the log (a restore's COPY or INSERT), of
 * which the log's own triggers' lookups are part, not reads of anyone's:
 * while one runs, nothing is recorded.  Emptied by any (sub)transaction
 * abort, which may leave a statement that never ended.
 */
List	   *loaders = NIL;		/* of QueryDesc or PlannedStmt pointers, in TopMemoryContext */

void
loader_push(const void *owner)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

	loaders = lappend(loaders, (void *) owner);
	MemoryContextSwitchTo(old);
}

void
loader_pop(const void *owner)
{
	loaders = list_delete_ptr(loaders, (void *) owner);
}

void
invalidate_targets(Datum arg, Oid relid)
{
	targets.valid = false;
}

void
invalidate_targets_nsp(Datum arg, int cacheid, uint32 hashvalue)
{
	targets.valid = false;
}

void
invalidate_roles(Datum arg, int cacheid, uint32 hashvalue)
{
	memset(role_names, 0, sizeof(role_names));
}

void
free_rel_names(void)
{
	if (rel_names == nullptr)
		return;

	HASH_SEQ_STATUS status;
	RelNames   *n;

	hash_seq_init(&status, rel_names);
	while ((n = (RelNames *) hash_seq_search(&status)) != nullptr)
	{
		bms_free(n->cols);
		if (n->json != nullptr)
			pfree(n->json);
	}
	hash_destroy(rel_names);
	rel_names = nullptr;
}

/* A role's name, from the little cache when it is there. */
const char *
role_name(Oid roleid, int which)
{
	RoleName   *r = &role_names[which];

	if (r->roleid != roleid)	/* an emptied cache holds InvalidOid, which no role has */
	{
		strlcpy(r->name, GetUserNameFromId(roleid, false), sizeof(r->name));
		r->roleid = roleid;
	}
	return r->name;
}

void
load_targets(void)
{
	if (targets.valid && targets.db == MyDatabaseId)
		return;
	if (!callbacks_registered)
	{
		CacheRegisterRelcacheCallback(invalidate_targets, (Datum) 0);
		CacheRegisterSyscacheCallback(NAMESPACEOID, invalidate_targets_nsp, (Datum) 0);
		CacheRegisterSyscacheCallback(AUTHOID, invalidate_roles, (Datum) 0);
		callbacks_registered = true;
	}
	free_rel_names();
	if (targets.tables != nullptr)
	{
		HASH_SEQ_STATUS status;
		ReadTable  *t;

		hash_seq_init(&status, targets.tables);
		while ((t = (ReadTable *) hash_seq_search(&status)) != nullptr)
			bms_free(t->tagged);
		hash_destroy(targets.tables);
		targets.tables = nullptr;
	}
	targets.db = MyDatabaseId;
	targets.log_relids[0] = sa_audit_relid(SA_LOG);
	targets.log_relids[1] = sa_audit_relid(SA_ENTRIES);
	targets.log_relids[2] = sa_audit_relid(SA_CONTEXTS);
	targets.log_relids[3] = sa_audit_relid(SA_ERASABLE_VALUES);

	HASHCTL		ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(ReadTable);
	ctl.hcxt = CacheMemoryContext;
	targets.tables = hash_create("sensitive_audit read auditing", 16, &ctl,
								 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	Oid			relid = sa_audit_relid(SA_READ_AUDIT_INFO);
	/* the extension may have been dropped since the name was looked up */
	Relation	rel = OidIsValid(relid) ? try_table_open(relid, AccessShareLock) : nullptr;

	if (rel != nullptr)
	{
		Snapshot	snapshot = RegisterSnapshot(GetCatalogSnapshot(relid));
		TableScanDesc scan = table_beginscan(rel, snapshot, 0, nullptr);
		HeapTuple	tuple;

		while ((tuple = heap_getnext(scan, ForwardScanDirection)) != nullptr)
		{
			bool		isnull;
			Oid			tbl = DatumGetObjectId(heap_getattr(tuple, 1, RelationGetDescr(rel), &isnull));

			if (isnull || !SearchSysCacheExists1(RELOID, ObjectIdGetDatum(tbl)))
				continue;

			/* the table and its partitions: a partition read directly reads the same rows */
			List	   *tagged_names = sa_catalog_columns(tbl);
			ListCell   *lc2;

			foreach(lc2, find_all_inheritors(tbl, NoLock, nullptr))
			{
				Oid			member = lfirst_oid(lc2);
				bool		found;
				ReadTable  *t = (ReadTable *) hash_search(targets.tables, &member, HASH_ENTER, &found);
				ListCell   *lc;
				Bitmapset  *attnums = nullptr;

				if (found)
					continue;
				foreach(lc, tagged_names)
				{
					AttrNumber	a = get_attnum(member, (const char *) lfirst(lc));

					if (a != InvalidAttrNumber)
						attnums = bms_add_member(attnums, a - FirstLowInvalidHeapAttributeNumber);
				}

				MemoryContext old = MemoryContextSwitchTo(CacheMemoryContext);

				t->tagged = bms_copy(attnums);
				MemoryContextSwitchTo(old);
			}
		}
		table_endscan(scan);
		UnregisterSnapshot(snapshot);
		table_close(rel, AccessShareLock);
	}
	targets.valid = true;
}

bool
is_log_relation(Oid relid)
{
	return relid == targets.log_relids[0] || relid == targets.log_relids[1] || relid == targets.log_relids[2]
		|| relid == targets.log_relids[3];
}

/* The names of the columns in cols (offset by FirstLowInvalidHeapAttributeNumber), as a JSON array. */
void
append_columns(StringInfo s, Oid relid, const Bitmapset *cols)
{
	int			x = -1;
	bool		first = true;
	bool		whole_row = false;

	appendStringInfoChar(s, '[');
	while ((x = bms_next_member(cols, x)) >= 0)
	{
		AttrNumber	a = x + FirstLowInvalidHeapAttributeNumber;

		if (a == InvalidAttrNumber)
		{
			whole_row = true;
			continue;
		}
		if (a < 0)
			continue;

		char	   *name = get_attname(relid, a, true);

		if (name == nullptr)
			continue;
		if (!first)
			appendStringInfoString(s, ", ");
		escape_json(s, name);
		first = false;
	}
	if (whole_row)
	{
		if (!first)
			appendStringInfoString(s, ", ");
		escape_json(s, "*");
	}
	appendStringInfoChar(s, ']');
}

/*
 * A read under way: what its entry will say, prepared when the query
 * starts, because a query that fails (a cast error can print a value) never
 * reaches ExecutorEnd, and an aborting transaction may not look anything
 * up any more.  Kept in TopMemoryContext until written.
 */
struct InflightRead
{
	const void *owner;			/* the QueryDesc or PlannedStmt that reads */
	SubTransactionId subxact;
	const char *schema;			/* these point into text[] */
	const char *table;
	const char *columns;		/* JSON array */
	const char *session_role;
	const char *effective_role;
	const char *application;
	const char *client_addr;	/* or NULL */
	int64		query_id;
	TimestampTz started;
	char		text[FLEXIBLE_ARRAY_MEMBER];
};

List	   *inflight = NIL;		/* of InflightRead *, in TopMemoryContext */

/* The cached names of relid and the JSON list of cols, looked up only when they change. */
RelNames *
rel_names_for(Oid relid, const Bitmapset *cols)
{
	if (rel_names == nullptr)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(RelNames);
		ctl.hcxt = CacheMemoryContext;
		rel_names = hash_create("sensitive_audit read names", 16, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}

	RelNames   *n = (RelNames *) hash_search(rel_names, &relid, HASH_FIND, nullptr);

	if (n == nullptr)
	{
		/* looked up before the entry exists: an error here leaves no half-made entry */
		const char *schema = get_namespace_name(get_rel_namespace(relid));
		const char *table = get_rel_name(relid);

		if (schema == nullptr || table == nullptr)
			return nullptr;
		n = (RelNames *) hash_search(rel_names, &relid, HASH_ENTER, nullptr);
		n->cols = nullptr;
		n->json = nullptr;
		strlcpy(n->schema, schema, sizeof(n->schema));
		strlcpy(n->table, table, sizeof(n->table));
	}
	if (n->json == nullptr || !bms_equal(n->cols, cols))
	{
		StringInfoData s;

		initStringInfo(&s);
		append_columns(&s, relid, cols);

		MemoryContext old = MemoryContextSwitchTo(CacheMemoryContext);

		bms_free(n->cols);
		if (n->json != nullptr)
			pfree(n->json);
		n->cols = bms_copy(cols);
		n->json = pstrdup(s.data);
		MemoryContextSwitchTo(old);
		pfree(s.data);
	}
	return n;
}

void
start_read(const void *owner, Oid relid, const Bitmapset *cols, int64 query_id)
{
	RelNames   *n = rel_names_for(relid, cols);

	if (n == nullptr)
		return;

	/* copied at once: looking up the second may invalidate the cache of the first */
	char		session_role[NAMEDATALEN];
	char		effective_role[NAMEDATALEN];

	strlcpy(session_role, role_name(GetSessionUserId(), 0), sizeof(session_role));
	strlcpy(effective_role, role_name(GetUserId(), 1), sizeof(effective_role));

	const char *parts[] = {n->schema, n->table, n->json, session_role, effective_role,
		application_name ? application_name : "", sa_client_addr()};
	size_t		lens[lengthof(parts)];
	size_t		total = 0;

	for (size_t i = 0; i < lengthof(parts); i++)
	{
		lens[i] = parts[i] ? strlen(parts[i]) + 1 : 0;
		total += lens[i];
	}

	/* one allocation for the read and its text */
	InflightRead *r = (InflightRead *) MemoryContextAlloc(TopMemoryContext,
														   offsetof(InflightRead, text) + total);
	const char *copies[lengthof(parts)];
	char	   *p = r->text;

	for (size_t i = 0; i < lengthof(parts); i++)
	{
		copies[i] = parts[i] ? p : nullptr;
		if (parts[i] != nullptr)
			memcpy(p, parts[i], lens[i]);
		p += lens[i];
	}
	r->owner = owner;
	r->subxact = GetCurrentSubTransactionId();
	r->schema = copies[0];
	r->table = copies[1];
	r->columns = copies[2];
	r->session_role = copies[3];
	r->effective_role = copies[4];
	r->application = copies[5];
	r->client_addr = copies[6];
	r->query_id = query_id;
	r->started = GetCurrentTimestamp();

	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

	inflight = lappend(inflight, r);
	MemoryContextSwitchTo(old);
}

void
free_read(InflightRead *r)
{
	pfree(r);
}

/*
 * Write one read: through the event worker (outside the reading
 * transaction), else with the transaction when it can write (in_xact), else
 * as a server-log line.  rows < 0: the statement failed.
 */
void
write_read(InflightRead *r, int64 rows, bool in_xact)
{
	char		json[SA_EVENT_VALUE_LEN];

	if (rows >= 0)
		snprintf(json, sizeof(json), "{\"columns\": %s, \"rows\": " INT64_FORMAT ", \"query_id\": ",
				 r->columns, rows);
	else
		snprintf(json, sizeof(json), "{\"columns\": %s, \"rows\": null, \"failed\": true, \"query_id\": ",
				 r->columns);
	size_t		len = strlen(json);

	if (r->query_id != 0)
		snprintf(json + len, sizeof(json) - len, INT64_FORMAT "}", r->query_id);
	else
		snprintf(json + len, sizeof(json) - len, "null}");

	SaEventFields f;

	memset(&f, 0, sizeof(f));
	f.dboid = MyDatabaseId;
	f.event_time = r->started;
	f.backend_pid = MyProcPid;
	f.operation = "READ";
	f.session_role = r->session_role;
	f.effective_role = r->effective_role;
	f.application_name = r->application;
	f.client_addr = r->client_addr;
	f.table_schema = r->schema;
	f.table_name = r->table;
	f.new_value = json;
	f.wait_ms = in_xact ? SA_EVENT_WAIT_MS : 0;	/* never while a transaction aborts */
	if (sa_events_available() && !RecoveryInProgress() && sa_event_enqueue(&f))
		return;

	if (in_xact && !RecoveryInProgress() && !XactReadOnly && IsTransactionState())
	{
		PendingEntry *e = sa_pending_new(r->started);

		sa_pending_set(e, PF_OPERATION, "READ");
		sa_pending_set(e, PF_TABLE_SCHEMA, r->schema);
		sa_pending_set(e, PF_TABLE_NAME, r->table);
		sa_pending_set(e, PF_NEW_VALUE, json);
		sa_pending_fill_who(e);
		return;
	}
	ereport(LOG,
			(errmsg("sensitive_audit: READ {\"table_schema\": \"%s\", \"table_name\": \"%s\", \"role\": \"%s\", \"read\": %s}",
					r->schema, r->table, r->effective_role, json),
			 errhidestmt(true)));
}

/* The reads owner started, now finished with rows returned. */
void
finish_reads(const void *owner, uint64 rows)
{
	ListCell   *lc;
	List	   *done = NIL;

	foreach(lc, inflight)
	{
		InflightRead *r = (InflightRead *) lfirst(lc);

		if (r->owner == owner)
			done = lappend(done, r);
	}
	foreach(lc, done)
	{
		InflightRead *r = (InflightRead *) lfirst(lc);

		/* an error here aborts the transaction, whose callback resets nesting */
		inflight = list_delete_ptr(inflight, r);
		nesting++;
		write_read(r, (int64) rows, true);
		nesting--;
		free_read(r);
	}
	list_free(done);
}

/*
 * A (sub)transaction aborts: the reads its failed statements made, whose
 * queries never finished, are written as failed reads.  Nothing is looked
 * up here: what they say was prepared when they started.
 */
void
abort_reads(SubTransactionId subxact)
{
	ListCell   *lc;
	List	   *keep = NIL;

	foreach(lc, inflight)
	{
		InflightRead *r = (InflightRead *) lfirst(lc);

		if (subxact != InvalidSubTransactionId && r->subxact < subxact)
		{
			MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

			keep = lappend(keep, r);
			MemoryContextSwitchTo(old);
			continue;
		}
		write_read(r, -1, false);
		free_read(r);
	}
	list_free(inflight);
	inflight = keep;
}

void
reads_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		nesting = 0;
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT || event == XACT_EVENT_COMMIT
		|| event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PREPARE)
	{
		list_free(loaders);
		loaders = NIL;
	}
	if (inflight == NIL)
		return;
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		abort_reads(InvalidSubTransactionId);
	else if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PREPARE)
	{
		/* a cursor still open at commit ends with it: write what it returned so far */
		abort_reads(InvalidSubTransactionId);
	}
}

void
reads_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		nesting = 0;
		list_free(loaders);
		loaders = NIL;
	}
	if (event == SUBXACT_EVENT_ABORT_SUB && inflight != NIL)
		abort_reads(mySubid);
}

/*
 * Does this backend's reading count at all?  Not the extension's own
 * (nesting), and not while rows are loaded into the log (loaders).
 */
bool
reads_audited_here(void)
{
	return nesting == 0 && loaders == NIL && MyBackendType == B_BACKEND && IsTransactionState()
		&& !creating_extension && OidIsValid(MyDatabaseId);
}

/* Does this statement write rows into one of the log's relations? */
bool
loads_log(const PlannedStmt *stmt)
{
	ListCell   *lc;

	if (stmt->commandType != CMD_INSERT)
		return false;
	load_targets();
	foreach(lc, stmt->resultRelations)
	{
		RangeTblEntry *rte = rt_fetch(lfirst_int(lc), stmt->rtable);

		if (is_log_relation(rte->relid))
			return true;
	}
	return false;
}

void
check_rtable(const void *owner, CmdType command, List *rtable, List *result_rels, int64 query_id)
{
	ListCell   *lc;

	load_targets();
	if (!OidIsValid(targets.log_relids[0]) && hash_get_num_entries(targets.tables) == 0)
		return;					/* no extension here, or nothing to watch */

	/* the log read through its view: one entry, the view's, not also its tables' */
	bool		through_view = false;

	foreach(lc, rtable)
	{
		RangeTblEntry *rte = (RangeTblEntry *) lfirst(lc);

		through_view |= rte->rtekind == RTE_RELATION && rte->relid == targets.log_relids[0];
	}

	foreach(lc, rtable)
	{
		RangeTblEntry *rte = (RangeTblEntry *) lfirst(lc);

		if (rte->rtekind != RTE_RELATION || !(rte->requiredPerms & ACL_SELECT))
			continue;
		if (is_log_relation(rte->relid))
		{
			/*
			 * Not the relation an UPDATE or DELETE changes (its WHERE
			 * reads it): only the extension's own bookkeeping may change
			 * the log's relations, as when it erases a kept value.
			 */
			if (!log_reads || ((command == CMD_UPDATE || command == CMD_DELETE)
							   && list_member_int(result_rels, foreach_current_index(lc) + 1)))
				continue;
			/* the view's own tables, expanded into the query, are checked as its owner */
			if (!(through_view && rte->relid != targets.log_relids[0] && OidIsValid(rte->checkAsUser)))
				start_read(owner, rte->relid, rte->selectedCols, query_id);
			continue;
		}

		ReadTable  *t = (ReadTable *) hash_search(targets.tables, &rte->relid, HASH_FIND, nullptr);

		if (t == nullptr)
			continue;

		/* only reads of tagged columns (a whole-row reference reads them all) */
		bool		whole_row = bms_is_member(InvalidAttrNumber - FirstLowInvalidHeapAttributeNumber, rte->selectedCols);

		if (whole_row || bms_overlap(t->tagged, rte->selectedCols))
			start_read(owner, rte->relid, rte->selectedCols, query_id);
	}
}

void
reads_executor_start(QueryDesc *queryDesc, int eflags)
{
	if (prev_executor_start)
		prev_executor_start(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
	if (!(eflags & EXEC_FLAG_EXPLAIN_ONLY) && reads_audited_here() && queryDesc->plannedstmt != nullptr
		&& queryDesc->plannedstmt->commandType != CMD_UTILITY)
	{
		if (loads_log(queryDesc->plannedstmt))
			loader_push(queryDesc);
		else
			check_rtable(queryDesc, queryDesc->plannedstmt->commandType, queryDesc->plannedstmt->rtable,
						 queryDesc->plannedstmt->resultRelations,
						 (int64) queryDesc->plannedstmt->queryId);
	}
}

void
reads_executor_end(QueryDesc *queryDesc)
{
	if (loaders != NIL)
		loader_pop(queryDesc);
	if (inflight != NIL)
		finish_reads(queryDesc, queryDesc->estate ? queryDesc->estate->es_processed : 0);
	if (prev_executor_end)
		prev_executor_end(queryDesc);
	else
		standard_ExecutorEnd(queryDesc);
}

/* COPY of a whole table TO a file or client runs no query: seen here. */
void
reads_process_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
					  ProcessUtilityContext context, ParamListInfo params,
					  QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;
	Oid			copied = InvalidOid;
	Bitmapset  *cols = nullptr;
	bool		loading = false;

	if (IsA(parsetree, CopyStmt) && ((CopyStmt *) parsetree)->is_from
		&& ((CopyStmt *) parsetree)->relation != nullptr && reads_audited_here())
	{
		Oid			into = RangeVarGetRelid(((CopyStmt *) parsetree)->relation, NoLock, true);

		load_targets();
		loading = OidIsValid(into) && is_log_relation(into);
	}
	if (loading)
		loader_push(pstmt);

	if (IsA(parsetree, CopyStmt) && !((CopyStmt *) parsetree)->is_from
		&& ((CopyStmt *) parsetree)->relation != nullptr && reads_audited_here())
	{
		CopyStmt   *stmt = (CopyStmt *) parsetree;

		copied = RangeVarGetRelid(stmt->relation, NoLock, true);
		if (OidIsValid(copied))
		{
			load_targets();

			ReadTable  *t = targets.tables ? (ReadTable *) hash_search(targets.tables, &copied, HASH_FIND, nullptr) : nullptr;

			if (is_log_relation(copied) ? !log_reads : t == nullptr)
				copied = InvalidOid;
			else if (stmt->attlist == NIL)
				cols = bms_make_singleton(InvalidAttrNumber - FirstLowInvalidHeapAttributeNumber);
			else
			{
				ListCell   *lc;

				foreach(lc, stmt->attlist)
				{
					AttrNumber	a = get_attnum(copied, strVal(lfirst(lc)));

					if (a != InvalidAttrNumber)
						cols = bms_add_member(cols, a - FirstLowInvalidHeapAttributeNumber);
				}
				if (t != nullptr && !bms_overlap(t->tagged, cols))
					copied = InvalidOid;
			}
		}
	}

	if (OidIsValid(copied))
		start_read(pstmt, copied, cols, (int64) pstmt->queryId);
	if (prev_process_utility)
		prev_process_utility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	if (OidIsValid(copied))
		finish_reads(pstmt, qc ? qc->nprocessed : 0);
	if (loading)
		loader_pop(pstmt);
}

}								/* namespace */

void
sa_reads_init(void)
{
	DefineCustomBoolVariable("sensitive_audit.log_reads",
							 "Records every statement that reads the audit log as a READ entry.",
							 "On by default; only a superuser may turn it off.",
							 &log_reads,
							 true,
							 PGC_SUSET,
							 0,
							 nullptr, nullptr, nullptr);
	prev_executor_start = ExecutorStart_hook;
	ExecutorStart_hook = reads_executor_start;
	prev_executor_end = ExecutorEnd_hook;
	ExecutorEnd_hook = reads_executor_end;
	RegisterXactCallback(reads_xact_callback, nullptr);
	RegisterSubXactCallback(reads_subxact_callback, nullptr);
	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = reads_process_utility;
	/* READ entries name the query by its identifier */
	EnableQueryId();
}

extern "C" {
PG_FUNCTION_INFO_V1(sensitive_audit_audit_reads);
}

/* audit_reads(tbl, on): record reads of tbl's tagged columns, or stop. */
extern "C" Datum
sensitive_audit_audit_reads(PG_FUNCTION_ARGS)
{
	Oid			tbl = PG_GETARG_OID(0);
	bool		on = PG_GETARG_BOOL(1);

	sa_check_table_owner(tbl);
	if (sa_catalog_columns(tbl) == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" has no tagged columns", get_rel_name(tbl)),
				 errhint("Reads are recorded of tagged columns: tag some with sensitive_audit.tag() first.")));

	Oid			relid = sa_audit_relid(SA_READ_AUDIT_INFO);
	bool		was = false;

	if (OidIsValid(relid))
	{
		Relation	rel = table_open(relid, AccessShareLock);
		Snapshot	snapshot = RegisterSnapshot(GetLatestSnapshot());
		TableScanDesc scan = table_beginscan(rel, snapshot, 0, nullptr);
		HeapTuple	tuple;

		while (!was && (tuple = heap_getnext(scan, ForwardScanDirection)) != nullptr)
		{
			bool		isnull;

			was = DatumGetObjectId(heap_getattr(tuple, 1, RelationGetDescr(rel), &isnull)) == tbl && !isnull;
		}
		table_endscan(scan);
		UnregisterSnapshot(snapshot);
		table_close(rel, AccessShareLock);
	}
	if (was == on)
		PG_RETURN_VOID();

	Oid			argtypes[2] = {REGCLASSOID, TEXTOID};
	Datum		values[2] = {ObjectIdGetDatum(tbl), CStringGetTextDatum(GetUserNameFromId(GetUserId(), false))};

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (on)
		sa_run_sql_as_owner("INSERT INTO sensitive_audit.read_audit_info (tbl, set_at, set_by) "
							"VALUES ($1, pg_catalog.statement_timestamp(), $2)", 2, argtypes, values);
	else
		sa_run_sql_as_owner("DELETE FROM sensitive_audit.read_audit_info WHERE tbl OPERATOR(pg_catalog.=) $1",
							1, argtypes, values);
	SPI_finish();
	sa_record_setup_values("AUDIT READS", get_namespace_name(get_rel_namespace(tbl)), get_rel_name(tbl),
						   nullptr, nullptr, was ? "on" : "off", on ? "on" : "off");
	CacheInvalidateRelcacheByRelid(tbl);
	PG_RETURN_VOID();
}
