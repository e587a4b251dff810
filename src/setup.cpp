/*
 * setup.cpp — tagging columns, and the guards around the audit setup.
 *
 * tag(tbl, cols...) and untag(tbl, cols...) rebuild the table's capture
 * trigger with the new column list (see capture.cpp for why the trigger's
 * column list is the list of tagged columns) and record one TAG or UNTAG
 * entry per column whose state changed, in the caller's transaction; asking
 * for what is already so changes nothing and records nothing.  Only the
 * table's owner (or a superuser) may change what is audited.
 *
 * The same is reachable through SECURITY LABEL FOR sensitive_audit ON COLUMN
 * t.c IS 'sensitive' (and IS NULL to untag) when the library is loaded.
 */
#include "sensitive_audit.hpp"

bool		sa_in_setup = false;

namespace {

void
check_taggable(Relation rel)
{
	const char *relname = RelationGetRelationName(rel);
	Oid			nsp = RelationGetNamespace(rel);

	/* first: the log is a view over tables, and neither may be tagged */
	if (strcmp(get_namespace_name(nsp), SA_SCHEMA) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("\"%s\" belongs to the audit schema itself", relname),
				 errdetail("The audit log is protected by its hash chain, not by tagging.")));
	switch (rel->rd_rel->relkind)
	{
		case RELKIND_RELATION:
		case RELKIND_PARTITIONED_TABLE:
			break;
		case RELKIND_VIEW:
		case RELKIND_MATVIEW:
			ereport(ERROR,
					(errcode(ERRCODE_WRONG_OBJECT_TYPE),
					 errmsg(rel->rd_rel->relkind == RELKIND_VIEW ? "\"%s\" is a view"
							: "\"%s\" is a materialized view", relname),
					 errdetail("Only tables can have tagged columns."),
					 errhint("Tag the columns of the tables the view reads.")));
			break;
		case RELKIND_FOREIGN_TABLE:
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("\"%s\" is a foreign table", relname),
					 errdetail("Changes to a foreign table happen on another server and cannot be captured here.")));
			break;
		default:
			ereport(ERROR,
					(errcode(ERRCODE_WRONG_OBJECT_TYPE),
					 errmsg("\"%s\" is not a table", relname)));
	}
	if (IsCatalogRelation(rel) || IsCatalogNamespace(nsp) || IsToastNamespace(nsp)
		|| strcmp(get_namespace_name(nsp), "information_schema") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("\"%s\" is a system catalog", relname),
				 errdetail("System catalogs cannot be audited.")));
	if (rel->rd_rel->relispartition)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("\"%s\" is a partition", relname),
				 errhint("Tag the columns of the partitioned table; every partition, present and future, is covered.")));
	if (!pg_class_ownercheck(RelationGetRelid(rel), GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, get_relkind_objtype(rel->rd_rel->relkind), relname);
}

/* The tagged columns: our capture trigger's column list (empty if none). */
Bitmapset *
current_tagged(Relation rel)
{
	Bitmapset  *set = nullptr;
	TriggerDesc *td = rel->trigdesc;

	if (td == nullptr)
		return nullptr;
	for (int i = 0; i < td->numtriggers; i++)
	{
		Trigger    *t = &td->triggers[i];

		if (strcmp(t->tgname, SA_CAPTURE_TRIGGER) == 0)
		{
			for (int j = 0; j < t->tgnattr; j++)
				set = bms_add_member(set, t->tgattr[j]);
		}
	}
	return set;
}

bool
has_trigger(Relation rel, const char *name)
{
	TriggerDesc *td = rel->trigdesc;

	if (td == nullptr)
		return false;
	for (int i = 0; i < td->numtriggers; i++)
		if (strcmp(td->triggers[i].tgname, name) == 0)
			return true;
	return false;
}

/*
 * Connect to SPI with search_path pinned to pg_catalog for the statements
 * we run: some run as the extension's owner, and none may resolve a name or
 * an operator through a schema the caller controls.
 */
int
spi_begin(void)
{
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	int			level = NewGUCNestLevel();

	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	return level;
}

void
spi_end(int level)
{
	AtEOXact_GUC(true, level);
	SPI_finish();
}

void
run_sql(const char *sql)
{
	int			rc = SPI_execute(sql, false, 0);

	if (rc < 0)
		elog(ERROR, "SPI_execute failed: %s (%s)", SPI_result_code_string(rc), sql);
}

/* Run sql as the extension's owner (for its own bookkeeping tables). */
void
run_sql_as_owner(const char *sql, int nargs, Oid *argtypes, Datum *values)
{
	Oid			save_userid;
	int			save_sec_context;
	Oid			owner;
	Oid			extoid = get_extension_oid("sensitive_audit", false);
	HeapTuple	tuple;
	Relation	extrel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;

	ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(extoid));
	scan = systable_beginscan(extrel, ExtensionOidIndexId, true, nullptr, 1, &key);
	tuple = systable_getnext(scan);
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "extension sensitive_audit not found");
	owner = ((Form_pg_extension) GETSTRUCT(tuple))->extowner;
	systable_endscan(scan);
	table_close(extrel, AccessShareLock);

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(owner, save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	int			rc = SPI_execute_with_args(sql, nargs, argtypes, values, nullptr, false, 0);

	SetUserIdAndSecContext(save_userid, save_sec_context);
	if (rc < 0)
		elog(ERROR, "SPI_execute failed: %s (%s)", SPI_result_code_string(rc), sql);
}

const char *
qualified(Relation rel)
{
	return quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
									  RelationGetRelationName(rel));
}

/*
 * Make the named trigger ENABLE ALWAYS on relid and every partition, so that
 * it fires under session_replication_role = replica and on logical
 * replication apply.  Done through the catalog rather than ALTER TABLE,
 * which refuses a table the calling statement holds open (as SECURITY LABEL
 * does).
 */
void
fire_always(Oid relid, const char *tgname)
{
	List	   *rels = find_all_inheritors(relid, NoLock, nullptr);
	ListCell   *lc;

	CommandCounterIncrement();
	foreach(lc, rels)
	{
		Relation	r = table_open(lfirst_oid(lc), NoLock);

		/* some 15.x releases recurse to partitions themselves: CCI each time */
		if (has_trigger(r, tgname))
			EnableDisableTrigger(r, tgname, TRIGGER_FIRES_ALWAYS, false, ShareRowExclusiveLock);
		table_close(r, NoLock);
		CommandCounterIncrement();
	}
}

/*
 * Each relation in relid's inheritance tree (relid itself, and every
 * partition) with or without a TRUNCATE trigger, as qualified names.  The
 * relations are closed again before any DDL runs on them: ALTER TABLE
 * refuses a relation this session still holds open.
 */
List *
tree_members(Oid relid, bool with_truncate_trigger)
{
	List	   *rels = find_all_inheritors(relid, NoLock, nullptr);
	List	   *names = NIL;
	ListCell   *lc;

	foreach(lc, rels)
	{
		Relation	r = table_open(lfirst_oid(lc), NoLock);

		if (has_trigger(r, SA_TRUNCATE_TRIGGER) == with_truncate_trigger)
			names = lappend(names, pstrdup(qualified(r)));
		table_close(r, NoLock);
	}
	return names;
}

/* Create the TRUNCATE trigger on relid and every partition that lacks it. */
void
ensure_truncate_triggers(Oid relid)
{
	ListCell   *lc;

	foreach(lc, tree_members(relid, false))
	{
		const char *q = (const char *) lfirst(lc);

		run_sql(psprintf("CREATE TRIGGER " SA_TRUNCATE_TRIGGER " BEFORE TRUNCATE ON %s "
						 "FOR EACH STATEMENT EXECUTE FUNCTION sensitive_audit.capture_truncate()", q));
	}
	fire_always(relid, SA_TRUNCATE_TRIGGER);
}

void
drop_truncate_triggers(Oid relid)
{
	ListCell   *lc;

	foreach(lc, tree_members(relid, true))
		run_sql(psprintf("DROP TRIGGER " SA_TRUNCATE_TRIGGER " ON %s", (const char *) lfirst(lc)));
}

}							/* namespace */

/*
 * Queue an entry recording a change to the audit setup.  It enters the chain
 * at commit like any captured change.
 */
void
sa_record_setup(const char *operation, const char *schema, const char *table,
				const char *column, const char *value_type, const char *detail)
{
	PendingEntry *e = sa_pending_new();

	sa_pending_set(e, PF_OPERATION, operation);
	sa_pending_set(e, PF_TABLE_SCHEMA, schema);
	sa_pending_set(e, PF_TABLE_NAME, table);
	sa_pending_set(e, PF_COLUMN_NAME, column);
	sa_pending_set(e, PF_VALUE_TYPE, value_type);
	sa_pending_set(e, PF_NEW_VALUE, detail);
	sa_pending_fill_who(e);
}

/*
 * Rebuild rel's capture triggers for the column set "after" and record the
 * columns whose state changed.  Runs inside SPI, with sa_in_setup set so
 * the guards let our own trigger DDL through.
 */
static void
rebuild_capture(Oid relid, Bitmapset *before, Bitmapset *after, Bitmapset *requested)
{
	const char *schema = get_namespace_name(get_rel_namespace(relid));
	const char *relname = get_rel_name(relid);
	const char *q = quote_qualified_identifier(schema, relname);

	if (!bms_is_empty(before))
		run_sql(psprintf("DROP TRIGGER " SA_CAPTURE_TRIGGER " ON %s", q));
	if (!bms_is_empty(after))
	{
		StringInfoData cols;
		int			attnum = -1;

		initStringInfo(&cols);
		while ((attnum = bms_next_member(after, attnum)) >= 0)
		{
			if (cols.len > 0)
				appendStringInfoString(&cols, ", ");
			appendStringInfoString(&cols, quote_identifier(get_attname(relid, attnum, false)));
		}
		run_sql(psprintf("CREATE TRIGGER " SA_CAPTURE_TRIGGER
						 " AFTER INSERT OR DELETE OR UPDATE OF %s ON %s"
						 " FOR EACH ROW EXECUTE FUNCTION sensitive_audit.capture()",
						 cols.data, q));
		fire_always(relid, SA_CAPTURE_TRIGGER);
		ensure_truncate_triggers(relid);
	}
	else
		drop_truncate_triggers(relid);

	/* who tagged what, and when; and one entry per changed column */
	int			attnum = -1;

	while ((attnum = bms_next_member(requested, attnum)) >= 0)
	{
		bool		was = bms_is_member(attnum, before);
		bool		is = bms_is_member(attnum, after);

		if (was == is)
			continue;

		char	   *colname = get_attname(relid, attnum, false);
		Oid			typid = get_atttype(relid, attnum);
		char	   *typname = sa_type_name(typid, -1);
		Oid			argtypes[3] = {OIDOID, NAMEOID, TEXTOID};
		Datum		args[3];

		args[0] = ObjectIdGetDatum(relid);
		args[1] = DirectFunctionCall1(namein, CStringGetDatum(colname));
		args[2] = CStringGetTextDatum(GetUserNameFromId(GetUserId(), false));
		if (is)
			run_sql_as_owner("INSERT INTO sensitive_audit.tag_info (tbl, column_name, tagged_at, tagged_by) "
							 "VALUES ($1::pg_catalog.regclass, $2, pg_catalog.statement_timestamp(), $3) "
							 "ON CONFLICT (tbl, column_name) DO NOTHING",
							 3, argtypes, args);
		else
			run_sql_as_owner("DELETE FROM sensitive_audit.tag_info "
							 "WHERE tbl = $1::pg_catalog.regclass AND column_name = $2",
							 2, argtypes, args);
		sa_record_setup(is ? "TAG" : "UNTAG", schema, relname, colname, typname, nullptr);
	}
}

/*
 * Run fn(arg) inside SPI, with search_path pinned (spi_begin) and
 * sa_in_setup set so that the guards let our own trigger DDL through.  The
 * flag is put back even on error: a caller's exception block may catch it.
 */
static pg_noinline void
run_in_setup(void (*fn) (void *), void *arg)
{
	bool		save_in_setup = sa_in_setup;
	int			level = spi_begin();

	sa_in_setup = true;
	PG_TRY();
	{
		fn(arg);
	}
	PG_FINALLY();
	{
		sa_in_setup = save_in_setup;
	}
	PG_END_TRY();
	spi_end(level);
}

struct RebuildArgs
{
	Oid			relid;
	Bitmapset  *before;
	Bitmapset  *after;
	Bitmapset  *requested;
};

static void
rebuild_capture_cb(void *arg)
{
	RebuildArgs *a = (RebuildArgs *) arg;

	rebuild_capture(a->relid, a->before, a->after, a->requested);
}

static void
ensure_truncate_triggers_cb(void *arg)
{
	ensure_truncate_triggers(*(Oid *) arg);
}

/*
 * Tag (tag = true) or untag the named columns of relid.  Errors leave
 * everything as it was: they abort the caller's (sub)transaction.
 */
void
sa_tag_columns(Oid relid, List *colnames, bool tag)
{
	Relation	rel = table_open(relid, ShareRowExclusiveLock);

	check_taggable(rel);

	Bitmapset  *before = current_tagged(rel);
	Bitmapset  *after = bms_copy(before);
	Bitmapset  *requested = nullptr;
	ListCell   *lc;

	foreach(lc, colnames)
	{
		const char *colname = (const char *) lfirst(lc);
		AttrNumber	attnum = get_attnum(relid, colname);

		if (attnum == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("column \"%s\" of relation \"%s\" does not exist",
							colname, RelationGetRelationName(rel))));
		if (attnum < 0)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot tag system column \"%s\"", colname)));
		if (tag)
		{
			Oid			typid = get_atttype(relid, attnum);
			Oid			bad;

			if (!sa_type_supported(typid, &bad))
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("column \"%s\" has unsupported type %s", colname, format_type_be(typid)),
						 errdetail("The text of type %s depends on lc_monetary, so the same value could be recorded differently by different sessions.",
								   format_type_be(bad)),
						 errhint("Store the amount as numeric.")));
			after = bms_add_member(after, attnum);
		}
		else
			after = bms_del_member(after, attnum);
		requested = bms_add_member(requested, attnum);
	}

	if (bms_equal(before, after))
	{
		table_close(rel, NoLock);
		return;					/* already so: nothing to do or record */
	}

	/* keep the lock, but let go of the relation before altering it */
	table_close(rel, NoLock);

	RebuildArgs args = {relid, before, after, requested};

	run_in_setup(rebuild_capture_cb, &args);
}

/* ------------------------------------------------------------------------
 * SQL-callable functions.
 */
extern "C" {
PG_FUNCTION_INFO_V1(sensitive_audit_tag);
PG_FUNCTION_INFO_V1(sensitive_audit_untag);
PG_FUNCTION_INFO_V1(sensitive_audit_in_setup);
PG_FUNCTION_INFO_V1(sensitive_audit_sync_partitions);
PG_FUNCTION_INFO_V1(sensitive_audit_record_setup);
PG_FUNCTION_INFO_V1(sensitive_audit_log_guard);
PG_FUNCTION_INFO_V1(sensitive_audit_guard_drop_extension);
}

static List *
name_array_to_list(ArrayType *arr)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	List	   *list = NIL;

	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("column names must be a one-dimensional array")));
	deconstruct_array(arr, NAMEOID, NAMEDATALEN, false, TYPALIGN_CHAR, &elems, &nulls, &n);
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("at least one column name is required")));
	for (int i = 0; i < n; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("column name must not be null")));
		list = lappend(list, pstrdup(NameStr(*DatumGetName(elems[i]))));
	}
	return list;
}

extern "C" Datum
sensitive_audit_tag(PG_FUNCTION_ARGS)
{
	sa_tag_columns(PG_GETARG_OID(0), name_array_to_list(PG_GETARG_ARRAYTYPE_P(1)), true);
	PG_RETURN_VOID();
}

extern "C" Datum
sensitive_audit_untag(PG_FUNCTION_ARGS)
{
	sa_tag_columns(PG_GETARG_OID(0), name_array_to_list(PG_GETARG_ARRAYTYPE_P(1)), false);
	PG_RETURN_VOID();
}

extern "C" Datum
sensitive_audit_in_setup(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(sa_in_setup || creating_extension);
}

/* Give relid (a new or newly attached partition) its TRUNCATE triggers. */
static void
sync_partition(Oid relid)
{
	Relation	rel = try_relation_open(relid, AccessShareLock);
	bool		audited;

	if (rel == nullptr)
		return;
	audited = has_trigger(rel, SA_CAPTURE_TRIGGER);
	relation_close(rel, NoLock);
	if (!audited || tree_members(relid, false) == NIL)
		return;

	run_in_setup(ensure_truncate_triggers_cb, &relid);
}

/*
 * Statement triggers are not cloned to partitions, so a partition created
 * (CREATE TABLE ... PARTITION OF) or attached after its parent was tagged
 * gets its TRUNCATE trigger here, at the end of that command.  Only those two
 * commands act: a restore creates and attaches partitions before any
 * trigger exists, and then brings the partitions' own TRUNCATE triggers
 * from the dump.
 */
extern "C" Datum
sensitive_audit_sync_partitions(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		sa_called_wrongly("sync_partitions", "called as an event trigger");

	EventTriggerData *trigdata = (EventTriggerData *) fcinfo->context;
	Node	   *tree = trigdata->parsetree;

	if (IsA(tree, CreateStmt) && ((CreateStmt *) tree)->partbound != nullptr)
	{
		Oid			relid = RangeVarGetRelid(((CreateStmt *) tree)->relation, NoLock, true);

		if (OidIsValid(relid))
			sync_partition(relid);
	}
	else if (IsA(tree, AlterTableStmt))
	{
		ListCell   *lc;

		foreach(lc, ((AlterTableStmt *) tree)->cmds)
		{
			AlterTableCmd *cmd = (AlterTableCmd *) lfirst(lc);

			if (cmd->subtype == AT_AttachPartition)
			{
				PartitionCmd *pc = (PartitionCmd *) cmd->def;
				Oid			relid = RangeVarGetRelid(pc->name, NoLock, true);

				if (OidIsValid(relid))
					sync_partition(relid);
			}
		}
	}
	PG_RETURN_VOID();
}

extern "C" Datum
sensitive_audit_record_setup(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("operation must not be null")));
	sa_record_setup(text_to_cstring(PG_GETARG_TEXT_PP(0)),
					PG_ARGISNULL(1) ? nullptr : text_to_cstring(PG_GETARG_TEXT_PP(1)),
					PG_ARGISNULL(2) ? nullptr : text_to_cstring(PG_GETARG_TEXT_PP(2)),
					nullptr, nullptr,
					PG_ARGISNULL(3) ? nullptr : text_to_cstring(PG_GETARG_TEXT_PP(3)));
	PG_RETURN_VOID();
}

/*
 * The log is insert-only, and inserted into only below SQL: every SQL write
 * is refused, the superuser's included.  The one exception is restoring a
 * dump, which a superuser allows with sensitive_audit.restoring; restored
 * rows are then checked like any others by verify().
 */
extern "C" Datum
sensitive_audit_log_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		sa_called_wrongly("log_guard", "called as a trigger");
	/* restores write the storage tables, never the view */
	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) && sa_restoring
		&& trigdata->tg_relation->rd_rel->relkind == RELKIND_RELATION)
	{
		/* restored entries extend chains behind the remembered heads */
		sa_heads_restoring();
		return PointerGetDatum(nullptr);
	}

	const char *what = TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) ? "INSERT"
		: TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ? "UPDATE"
		: TRIGGER_FIRED_BY_DELETE(trigdata->tg_event) ? "DELETE" : "TRUNCATE";

	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("the audit log is insert-only: %s on %s.%s is not allowed",
					what, SA_SCHEMA, RelationGetRelationName(trigdata->tg_relation)),
			 TRIGGER_FIRED_BY_INSERT(trigdata->tg_event)
			 ? errdetail("Entries are written only by the extension when an audited change commits.")
			 : errdetail("No role, the owner and superusers included, may change recorded history."),
			 TRIGGER_FIRED_BY_INSERT(trigdata->tg_event)
			 && trigdata->tg_relation->rd_rel->relkind == RELKIND_RELATION
			 ? errhint("To restore a dump of the log, a superuser sets sensitive_audit.restoring = on.")
			 : 0));
	return PointerGetDatum(nullptr);
}

/* Does the log hold any entry?  Read below SQL: the caller may not SELECT. */
static bool
log_has_entries(void)
{
	Oid			nsp = get_namespace_oid(SA_SCHEMA, true);
	Oid			logid = OidIsValid(nsp) ? get_relname_relid(SA_ENTRIES, nsp) : InvalidOid;

	if (!OidIsValid(logid))
		return false;

	Relation	log = table_open(logid, AccessShareLock);
	Snapshot	snapshot = RegisterSnapshot(GetLatestSnapshot());
	TableScanDesc scan = table_beginscan(log, snapshot, 0, nullptr);
	bool		any = heap_getnext(scan, ForwardScanDirection) != nullptr;

	table_endscan(scan);
	UnregisterSnapshot(snapshot);
	table_close(log, AccessShareLock);
	return any;
}

/*
 * DROP EXTENSION sensitive_audit (or DROP SCHEMA sensitive_audit CASCADE)
 * would take the whole history with it, silently.  Refused while the log
 * holds entries, unless a superuser has set sensitive_audit.allow_drop.
 */
extern "C" Datum
sensitive_audit_guard_drop_extension(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		sa_called_wrongly("guard_drop_extension", "called as an event trigger");

	EventTriggerData *trigdata = (EventTriggerData *) fcinfo->context;

	if (!IsA(trigdata->parsetree, DropStmt))
		PG_RETURN_VOID();

	DropStmt   *stmt = (DropStmt *) trigdata->parsetree;
	bool		ours = false;
	ListCell   *lc;

	if (stmt->removeType != OBJECT_EXTENSION && stmt->removeType != OBJECT_SCHEMA)
		PG_RETURN_VOID();
	foreach(lc, stmt->objects)
	{
		Node	   *obj = (Node *) lfirst(lc);

		if (IsA(obj, String) && strcmp(strVal(obj), "sensitive_audit") == 0)
			ours = true;
	}
	if (ours && !sa_allow_drop && log_has_entries())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot drop %s sensitive_audit while the audit log holds entries",
						stmt->removeType == OBJECT_EXTENSION ? "extension" : "schema"),
				 errdetail("Dropping it would delete the whole audit history."),
				 errhint("Export the log first; then a superuser may SET sensitive_audit.allow_drop = on.")));
	PG_RETURN_VOID();
}

/* ------------------------------------------------------------------------
 * SECURITY LABEL FOR sensitive_audit ON COLUMN t.c IS 'sensitive' | NULL
 */
static void
sa_object_relabel(const ObjectAddress *object, const char *seclabel)
{
	if (object->classId != RelationRelationId || object->objectSubId <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("sensitive_audit labels apply to table columns only")));
	if (seclabel != nullptr && strcmp(seclabel, "sensitive") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid sensitive_audit label \"%s\"", seclabel),
				 errhint("The only label is 'sensitive'; IS NULL removes it.")));

	char	   *colname = get_attname(object->objectId, (AttrNumber) object->objectSubId, false);

	sa_tag_columns(object->objectId, list_make1(colname), seclabel != nullptr);
}

void
sa_setup_init(void)
{
	register_label_provider("sensitive_audit", sa_object_relabel);
}
