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
#include "utils/queryjumble.h"
}

namespace {

ExecutorEnd_hook_type prev_executor_end = nullptr;
ProcessUtility_hook_type prev_process_utility = nullptr;

/* What counts as a read worth recording, for the current database. */
struct ReadTargets
{
	bool		valid;
	Oid			db;
	Oid			log_relids[3];	/* sensitive_audit.log, log_entries, log_contexts */
	HTAB	   *tables;			/* relid -> ReadTable: tables with read auditing */
};

struct ReadTable
{
	Oid			relid;
	Bitmapset  *tagged;			/* attnums of its tagged columns (in CacheMemoryContext) */
};

ReadTargets targets = {false, InvalidOid, {InvalidOid, InvalidOid, InvalidOid}, nullptr};
bool		log_reads = false;	/* sensitive_audit.log_reads */
bool		callbacks_registered = false;
int			nesting = 0;		/* a READ entry written from inside the hook */

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
load_targets(void)
{
	if (targets.valid && targets.db == MyDatabaseId)
		return;
	if (!callbacks_registered)
	{
		CacheRegisterRelcacheCallback(invalidate_targets, (Datum) 0);
		CacheRegisterSyscacheCallback(NAMESPACEOID, invalidate_targets_nsp, (Datum) 0);
		callbacks_registered = true;
	}
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
	return relid == targets.log_relids[0] || relid == targets.log_relids[1] || relid == targets.log_relids[2];
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

void
record_read(Oid relid, const Bitmapset *cols, uint64 rows, int64 query_id)
{
	StringInfoData s;

	initStringInfo(&s);
	appendStringInfoString(&s, "{\"columns\": ");
	append_columns(&s, relid, cols);
	appendStringInfo(&s, ", \"rows\": " UINT64_FORMAT ", \"query_id\": ", rows);
	if (query_id != 0)
		appendStringInfo(&s, INT64_FORMAT, query_id);
	else
		appendStringInfoString(&s, "null");
	appendStringInfoChar(&s, '}');

	const char *schema = get_namespace_name(get_rel_namespace(relid));
	const char *table = get_rel_name(relid);

	if (schema == nullptr || table == nullptr)
		return;

	nesting++;
	PG_TRY();
	{
		if (!sa_read_via_worker(schema, table, s.data))
		{
			if (!RecoveryInProgress() && !XactReadOnly && IsTransactionState())
			{
				PendingEntry *e = sa_pending_new(GetCurrentTimestamp());

				sa_pending_set(e, PF_OPERATION, "READ");
				sa_pending_set(e, PF_TABLE_SCHEMA, schema);
				sa_pending_set(e, PF_TABLE_NAME, table);
				sa_pending_set(e, PF_NEW_VALUE, s.data);
				sa_pending_fill_who(e);
			}
			else
				ereport(LOG,
						(errmsg("sensitive_audit: READ {\"table_schema\": \"%s\", \"table_name\": \"%s\", \"role\": \"%s\", \"read\": %s}",
								schema, table, GetUserNameFromId(GetUserId(), false), s.data),
						 errhidestmt(true)));
		}
	}
	PG_FINALLY();
	{
		nesting--;
	}
	PG_END_TRY();
}

/* Does this backend's reading count at all? */
bool
reads_audited_here(void)
{
	return nesting == 0 && MyBackendType == B_BACKEND && IsTransactionState() && !creating_extension
		&& OidIsValid(MyDatabaseId);
}

void
check_rtable(List *rtable, uint64 rows, int64 query_id)
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
			if (!log_reads)
				continue;
			/* the view's own tables, expanded into the query, are checked as its owner */
			if (!(through_view && rte->relid != targets.log_relids[0] && OidIsValid(rte->checkAsUser)))
				record_read(rte->relid, rte->selectedCols, rows, query_id);
			continue;
		}

		ReadTable  *t = (ReadTable *) hash_search(targets.tables, &rte->relid, HASH_FIND, nullptr);

		if (t == nullptr)
			continue;

		/* only reads of tagged columns (a whole-row reference reads them all) */
		bool		whole_row = bms_is_member(InvalidAttrNumber - FirstLowInvalidHeapAttributeNumber, rte->selectedCols);

		if (whole_row || bms_overlap(t->tagged, rte->selectedCols))
			record_read(rte->relid, rte->selectedCols, rows, query_id);
	}
}

void
reads_executor_end(QueryDesc *queryDesc)
{
	if (reads_audited_here() && queryDesc->plannedstmt != nullptr && queryDesc->estate != nullptr
		&& queryDesc->plannedstmt->commandType != CMD_UTILITY)
		check_rtable(queryDesc->plannedstmt->rtable, queryDesc->estate->es_processed,
					 (int64) queryDesc->plannedstmt->queryId);
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

	if (prev_process_utility)
		prev_process_utility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);

	if (OidIsValid(copied))
		record_read(copied, cols, qc ? qc->nprocessed : 0, (int64) pstmt->queryId);
}

}								/* namespace */

/*
 * Without the event worker there is nothing outside the reading
 * transaction to take the entry (see the top of this file).
 */
bool
sa_read_via_worker(const char *schema, const char *table, const char *json)
{
	return false;
}

void
sa_reads_init(void)
{
	DefineCustomBoolVariable("sensitive_audit.log_reads",
							 "Records every statement that reads the audit log as a READ entry.",
							 "Each read then adds to the log; only a superuser may change it.",
							 &log_reads,
							 false,
							 PGC_SUSET,
							 0,
							 nullptr, nullptr, nullptr);
	prev_executor_end = ExecutorEnd_hook;
	ExecutorEnd_hook = reads_executor_end;
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

	if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(tbl)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", tbl)));
	if (!pg_class_ownercheck(tbl, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_TABLE, get_rel_name(tbl));
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
