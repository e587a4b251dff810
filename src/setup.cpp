/*
 * setup.cpp — what is tagged, and the capture triggers derived from it.
 *
 * sensitive_audit.tag_info is the one source of truth: one row per tagged
 * column of a tagged table (a table, a partitioned table, or a partition
 * detached from one).  Everything else is derived from it and rebuilt from
 * it whenever it changes (sa_sync_triggers):
 *   sensitive_audit_capture         AFTER INSERT OR DELETE FOR EACH ROW
 *   sensitive_audit_capture_update  AFTER UPDATE OF <tagged and key columns>
 *                                   FOR EACH ROW, or, on a table with BEFORE
 *                                   UPDATE row triggers, AFTER UPDATE ... WHEN
 *                                   (sensitive_audit.changed(OLD.c, NEW.c, ...))
 *   sensitive_audit_truncate        BEFORE TRUNCATE FOR EACH STATEMENT
 * all ENABLE ALWAYS, on the tagged table (row triggers are cloned to every
 * partition; the TRUNCATE trigger is put on each partition).  Either form of
 * the UPDATE trigger sees every change to a tagged or key column, made by the
 * statement, a generated column or a BEFORE trigger, and an UPDATE that
 * changes none of them queues nothing (see sa_trigger_problem()).
 *
 * sa_trigger_problem() says whether a trigger is exactly one of these; the
 * invariant (enforce.cpp, and capture() itself) is that every relation whose
 * rows are rows of a tagged table carries only canonical capture triggers.
 *
 * tag(tbl, cols...) and untag(tbl, cols...) change tag_info, record one TAG
 * or UNTAG entry per column whose state changed, in the caller's
 * transaction, and rebuild the triggers; asking for what is already so
 * changes nothing and records nothing.  Only the table's owner (or a
 * superuser) may change what is audited, and that is checked before any lock
 * is taken.  SECURITY LABEL FOR sensitive_audit ON COLUMN t.c IS 'sensitive'
 * (IS NULL to untag) does the same when the library is loaded; untag() also
 * clears that label.
 */
#include "sensitive_audit.hpp"

bool		sa_in_setup = false;

/* Is this our own work: tag()/untag(), or our extension's own script? */
bool
sa_in_own_setup(void)
{
	if (sa_in_setup)
		return true;
	return creating_extension
		&& CurrentExtensionObject == get_extension_oid("sensitive_audit", true);
}

/* ------------------------------------------------------------------------
 * The catalog: sensitive_audit.tag_info, read below SQL (writers and DDL
 * checks may not have the right to SELECT it), with a fresh snapshot so that
 * this transaction's own changes are seen.
 */

/* Does rel hold any row?  Read below SQL, with a fresh snapshot. */
bool
sa_has_rows(Relation rel)
{
	Snapshot	snapshot = RegisterSnapshot(GetLatestSnapshot());
	TableScanDesc scan = table_beginscan(rel, snapshot, 0, nullptr);
	bool		any = heap_getnext(scan, ForwardScanDirection) != nullptr;

	table_endscan(scan);
	UnregisterSnapshot(snapshot);
	return any;
}

/* A relation of the audit schema by name, or InvalidOid if there is none. */
Oid
sa_audit_relid(const char *name)
{
	Oid			nsp = get_namespace_oid(SA_SCHEMA, true);

	return OidIsValid(nsp) ? get_relname_relid(name, nsp) : InvalidOid;
}

/*
 * The catalog's rows for table tbl, or every row if tbl is InvalidOid, as
 * a list of SaTagRow, in the current memory context.
 */
List *
sa_catalog_rows(Oid tbl)
{
	Oid			relid = sa_audit_relid(SA_TAG_INFO);
	List	   *rows = NIL;

	if (!OidIsValid(relid))
		return NIL;

	Relation	rel = table_open(relid, AccessShareLock);
	Snapshot	snapshot = RegisterSnapshot(GetLatestSnapshot());
	TableScanDesc scan = table_beginscan(rel, snapshot, 0, nullptr);
	TupleDesc	desc = RelationGetDescr(rel);
	HeapTuple	tuple;

	while ((tuple = heap_getnext(scan, ForwardScanDirection)) != nullptr)
	{
		bool		isnull;
		Oid			t = DatumGetObjectId(heap_getattr(tuple, 1, desc, &isnull));

		if (isnull || (OidIsValid(tbl) && t != tbl))
			continue;

		Datum		col = heap_getattr(tuple, 2, desc, &isnull);

		if (isnull)
			continue;

		SaTagRow   *row = (SaTagRow *) palloc(sizeof(SaTagRow));

		row->tbl = t;
		row->column = pstrdup(NameStr(*DatumGetName(col)));
		rows = lappend(rows, row);
	}
	table_endscan(scan);
	UnregisterSnapshot(snapshot);
	table_close(rel, AccessShareLock);
	return rows;
}

/* The distinct tagged tables, as a list of OIDs. */
List *
sa_catalog_tables(void)
{
	List	   *tables = NIL;
	ListCell   *lc;

	foreach(lc, sa_catalog_rows(InvalidOid))
		tables = list_append_unique_oid(tables, ((SaTagRow *) lfirst(lc))->tbl);
	return tables;
}

/*
 * The tagged table whose rows relid's rows are: relid itself, or the
 * nearest of its partition ancestors that is tagged; InvalidOid if none.
 */
Oid
sa_tagged_root(Oid relid)
{
	List	   *tables = sa_catalog_tables();

	if (list_member_oid(tables, relid))
		return relid;
	if (!get_rel_relispartition(relid))
		return InvalidOid;

	ListCell   *lc;

	foreach(lc, get_partition_ancestors(relid))
	{
		if (list_member_oid(tables, lfirst_oid(lc)))
			return lfirst_oid(lc);
	}
	return InvalidOid;
}

/* The names of tbl's tagged columns, in the catalog. */
List *
sa_catalog_columns(Oid tbl)
{
	List	   *names = NIL;
	ListCell   *lc;

	foreach(lc, sa_catalog_rows(tbl))
		names = lappend(names, ((SaTagRow *) lfirst(lc))->column);
	return names;
}

/* ------------------------------------------------------------------------
 * Canonical triggers.
 */

/*
 * The row key's columns: primary key, else replica identity, as long as it
 * has no expressions; NULL if neither.  *source (if given) says which.
 */
Bitmapset *
sa_key_attnums(Relation rel, const char **source)
{
	Oid			index_oids[2] = {RelationGetPrimaryKeyIndex(rel), RelationGetReplicaIndex(rel)};
	static const char *const sources[2] = {"primary key", "replica identity"};

	for (int k = 0; k < 2; k++)
	{
		if (!OidIsValid(index_oids[k]))
			continue;

		Relation	index = index_open(index_oids[k], AccessShareLock);
		Bitmapset  *set = nullptr;
		bool		ok = true;

		for (int i = 0; i < index->rd_index->indnkeyatts; i++)
		{
			AttrNumber	attnum = index->rd_index->indkey.values[i];

			if (attnum <= 0)
				ok = false;
			else
				set = bms_add_member(set, attnum);
		}
		index_close(index, AccessShareLock);
		if (ok)
		{
			if (source != nullptr)
				*source = sources[k];
			return set;
		}
	}
	return nullptr;
}

/*
 * The attribute numbers in rel of the tagged columns of its tagged table (by
 * name: a partition's attribute numbers may differ from its parent's).
 */
Bitmapset *
sa_tagged_attnums(Relation rel, List *tagged_names)
{
	Bitmapset  *set = nullptr;
	ListCell   *lc;

	foreach(lc, tagged_names)
	{
		const char *name = (const char *) lfirst(lc);
		AttrNumber	attnum = get_attnum(RelationGetRelid(rel), name);

		if (attnum == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("tagged column \"%s\" of relation \"%s\" does not exist",
							name, RelationGetRelationName(rel)),
					 errdetail("sensitive_audit.tag_info names a column the table does not have.")));
		set = bms_add_member(set, attnum);
	}
	return set;
}

/*
 * One of our functions, by name and argument types, looked up with no
 * privilege check: DDL by a role that may not use the audit schema is
 * checked all the same.
 */
static Oid
our_function(const char *name, int nargs, const Oid *argtypes)
{
	Oid			nsp = get_namespace_oid(SA_SCHEMA, true);

	if (!OidIsValid(nsp))
		return InvalidOid;
	return GetSysCacheOid3(PROCNAMEARGSNSP, Anum_pg_proc_oid, CStringGetDatum(name),
						   PointerGetDatum(buildoidvector(argtypes, nargs)),
						   ObjectIdGetDatum(nsp));
}

Oid
sa_capture_fn(void)
{
	return our_function("capture", 0, nullptr);
}

Oid
sa_truncate_fn(void)
{
	return our_function("capture_truncate", 0, nullptr);
}

static Oid
changed_fn(void)
{
	const Oid	any = ANYOID;

	return our_function("changed", 1, &any);
}

/*
 * Is trigger t exactly the canonical capture trigger its name says?
 * SA_TRIGGER_NOT_OURS if it neither has one of our names nor calls one of our
 * functions; else SA_TRIGGER_CANONICAL, or why not with *why set to a
 * sentence for errdetail:
 *   SA_TRIGGER_STALE_KEY   an UPDATE trigger that compares every tagged
 *                          column but not every key column (a primary key
 *                          added since it was made): enforce.cpp rebuilds it
 *                          and capture() tolerates it;
 *   SA_TRIGGER_STALE_FORM  an UPDATE OF trigger on a relation that now has a
 *                          BEFORE UPDATE row trigger, which could change a
 *                          tagged column the statement does not name:
 *                          enforce.cpp rebuilds it in its WHEN form;
 *   SA_TRIGGER_NOT_ALWAYS  canonical but for ENABLE ALWAYS, as CREATE
 *                          TRIGGER leaves it (a restore enables it next);
 *   SA_TRIGGER_WRONG       anything else.
 * tagged, key: the columns an UPDATE trigger must compare; before_update:
 * the relation has BEFORE UPDATE row triggers.
 *
 * The UPDATE trigger has two canonical forms.  Without BEFORE UPDATE row
 * triggers on the table, the columns an UPDATE sets (generated columns
 * included) are the only ones it can change, and
 *   AFTER UPDATE OF <tagged and key columns>
 * queues nothing at all for an UPDATE of other columns.  With them, a BEFORE
 * trigger may change a tagged column the statement does not name, and
 *   AFTER UPDATE ... WHEN (sensitive_audit.changed(OLD.a, NEW.a, ...))
 * compares the final row instead, at the cost of evaluating the WHEN clause.
 */
SaTriggerState
sa_trigger_problem(const Trigger *t, Bitmapset *tagged, Bitmapset *key, bool before_update,
				   const char **why)
{
	Oid			capture_fn = sa_capture_fn();
	Oid			truncate_fn = sa_truncate_fn();
	int16		want_type;
	Oid			want_fn;
	bool		is_update = false;

	*why = nullptr;
	if (strcmp(t->tgname, SA_CAPTURE_TRIGGER) == 0)
	{
		want_type = TRIGGER_TYPE_ROW | TRIGGER_TYPE_INSERT | TRIGGER_TYPE_DELETE;
		want_fn = capture_fn;
	}
	else if (strcmp(t->tgname, SA_UPDATE_TRIGGER) == 0)
	{
		want_type = TRIGGER_TYPE_ROW | TRIGGER_TYPE_UPDATE;
		want_fn = capture_fn;
		is_update = true;
	}
	else if (strcmp(t->tgname, SA_TRUNCATE_TRIGGER) == 0)
	{
		want_type = TRIGGER_TYPE_BEFORE | TRIGGER_TYPE_TRUNCATE;
		want_fn = truncate_fn;
	}
	else if (t->tgfoid == capture_fn || t->tgfoid == truncate_fn)
	{
		*why = psprintf("Trigger \"%s\" executes %s but is not one of the capture triggers sensitive_audit makes.",
						t->tgname, format_procedure(t->tgfoid));
		return SA_TRIGGER_WRONG;
	}
	else
		return SA_TRIGGER_NOT_OURS;

	if (t->tgfoid != want_fn)
		*why = psprintf("Trigger \"%s\" must execute %s.", t->tgname, format_procedure(want_fn));
	else if (t->tgtype != want_type)
		*why = psprintf("Trigger \"%s\" fires on other events than sensitive_audit's.", t->tgname);
	else if (t->tgnargs != 0 || OidIsValid(t->tgconstraint) || t->tgdeferrable
			 || t->tgoldtable != nullptr || t->tgnewtable != nullptr)
		*why = psprintf("Trigger \"%s\" has arguments, transition tables or a constraint.", t->tgname);
	else if (!is_update && (t->tgqual != nullptr || t->tgnattr != 0))
		*why = psprintf("Trigger \"%s\" must not have a WHEN clause or a column list.", t->tgname);
	else if (is_update && (t->tgqual != nullptr) == (t->tgnattr != 0))
		*why = psprintf("Trigger \"%s\" must have either the WHEN clause or the column list sensitive_audit makes.",
						t->tgname);
	if (*why != nullptr)
		return SA_TRIGGER_WRONG;

	if (is_update)
	{
		Bitmapset  *compared = nullptr;

		if (t->tgnattr != 0)
		{
			/* AFTER UPDATE OF a, b, ... */
			for (int i = 0; i < t->tgnattr; i++)
				compared = bms_add_member(compared, t->tgattr[i]);
		}
		else
		{
			/* WHEN (sensitive_audit.changed(OLD.a, NEW.a, OLD.b, NEW.b, ...)) */
			Node	   *qual = (Node *) stringToNode(t->tgqual);
			FuncExpr   *call = IsA(qual, FuncExpr) ? (FuncExpr *) qual : nullptr;
			bool		ok = call != nullptr && call->funcid == changed_fn()
				&& list_length(call->args) % 2 == 0;

			for (int i = 0; ok && i < list_length(call->args); i += 2)
			{
				Node	   *o = (Node *) list_nth(call->args, i);
				Node	   *n = (Node *) list_nth(call->args, i + 1);

				ok = IsA(o, Var) && IsA(n, Var)
					&& ((Var *) o)->varno == PRS2_OLD_VARNO && ((Var *) n)->varno == PRS2_NEW_VARNO
					&& ((Var *) o)->varattno == ((Var *) n)->varattno && ((Var *) o)->varattno > 0
					&& ((Var *) o)->varlevelsup == 0 && ((Var *) n)->varlevelsup == 0;
				if (ok)
					compared = bms_add_member(compared, ((Var *) o)->varattno);
			}
			if (!ok)
			{
				*why = psprintf("Trigger \"%s\" must have the WHEN clause sensitive_audit makes.", t->tgname);
				return SA_TRIGGER_WRONG;
			}
		}
		if (!bms_is_subset(tagged, compared))
		{
			*why = psprintf("Trigger \"%s\" does not compare every tagged column.", t->tgname);
			return SA_TRIGGER_WRONG;
		}
		if (t->tgenabled == TRIGGER_FIRES_ALWAYS && t->tgnattr != 0 && before_update)
		{
			*why = psprintf("Trigger \"%s\" lists the columns an UPDATE names, but a BEFORE UPDATE trigger may change others.",
							t->tgname);
			return SA_TRIGGER_STALE_FORM;
		}
		if (t->tgenabled == TRIGGER_FIRES_ALWAYS && !bms_is_subset(key, compared))
		{
			*why = psprintf("Trigger \"%s\" does not compare every column of the row key.", t->tgname);
			return SA_TRIGGER_STALE_KEY;
		}
	}
	if (t->tgenabled != TRIGGER_FIRES_ALWAYS)
	{
		*why = psprintf("Trigger \"%s\" must stay ENABLE ALWAYS.", t->tgname);
		return SA_TRIGGER_NOT_ALWAYS;
	}
	return SA_TRIGGER_CANONICAL;
}

/*
 * Is t release 1.0's capture trigger, AFTER INSERT OR DELETE OR UPDATE OF
 * <tagged columns> (in any enabled state: a restore creates it ENABLE
 * ORIGIN)?  A dump of 1.0 brings it; a database still at 1.0 records through
 * it until ALTER EXTENSION sensitive_audit UPDATE.
 */
bool
sa_is_release_1_0_trigger(const Trigger *t)
{
	return strcmp(t->tgname, SA_CAPTURE_TRIGGER) == 0 && t->tgfoid == sa_capture_fn()
		&& t->tgtype == (TRIGGER_TYPE_ROW | TRIGGER_TYPE_INSERT | TRIGGER_TYPE_DELETE | TRIGGER_TYPE_UPDATE)
		&& t->tgnattr > 0 && t->tgqual == nullptr && t->tgnargs == 0;
}

/* Does the relation have BEFORE UPDATE row triggers (none of them ours)? */
bool
sa_has_before_update(Relation rel)
{
	return rel->trigdesc != nullptr && rel->trigdesc->trig_update_before_row;
}

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
	if (rel->rd_rel->relpersistence == RELPERSISTENCE_TEMP)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("\"%s\" is a temporary table", relname),
				 errdetail("Its rows vanish at the end of the session, leaving the log's entries behind."),
				 errhint("Only permanent tables can have tagged columns.")));
	if (rel->rd_rel->relpersistence == RELPERSISTENCE_UNLOGGED)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("\"%s\" is an unlogged table", relname),
				 errdetail("After a crash its rows are gone while the log still records them."),
				 errhint("ALTER TABLE ... SET LOGGED first.")));
	if (rel->rd_rel->relispartition)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("\"%s\" is a partition", relname),
				 errhint("Tag the columns of the partitioned table; every partition, present and future, is covered.")));
	if (has_superclass(RelationGetRelid(rel))
		|| (rel->rd_rel->relkind == RELKIND_RELATION && rel->rd_rel->relhassubclass
			&& find_inheritance_children(RelationGetRelid(rel), NoLock) != NIL))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("\"%s\" takes part in table inheritance", relname),
				 errdetail("Rows of an inheritance child are read and written through its parent."),
				 errhint("Use declarative partitioning, whose partitions are all covered.")));
	if (!pg_class_ownercheck(RelationGetRelid(rel), GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, get_relkind_objtype(rel->rd_rel->relkind), relname);
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

void
drop_truncate_triggers(Oid relid)
{
	ListCell   *lc;

	foreach(lc, tree_members(relid, true))
		sa_run_sql(psprintf("DROP TRIGGER " SA_TRUNCATE_TRIGGER " ON %s", (const char *) lfirst(lc)));
}

}							/* namespace */

void
sa_run_sql(const char *sql)
{
	int			rc = SPI_execute(sql, false, 0);

	if (rc < 0)
		elog(ERROR, "SPI_execute failed: %s (%s)", SPI_result_code_string(rc), sql);
}

/* The installed extension's owner and version (palloc'd). */
static void
extension_info(Oid *owner, char **version)
{
	Oid			extoid = get_extension_oid("sensitive_audit", false);
	HeapTuple	tuple;
	Relation	extrel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	bool		isnull;

	ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(extoid));
	scan = systable_beginscan(extrel, ExtensionOidIndexId, true, nullptr, 1, &key);
	tuple = systable_getnext(scan);
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "extension sensitive_audit not found");
	*owner = ((Form_pg_extension) GETSTRUCT(tuple))->extowner;

	Datum		v = heap_getattr(tuple, Anum_pg_extension_extversion, RelationGetDescr(extrel), &isnull);

	*version = isnull ? pstrdup("") : TextDatumGetCString(v);
	systable_endscan(scan);
	table_close(extrel, AccessShareLock);
}

/* Is the extension installed in this database at that version? */
bool
sa_extension_version_is(const char *version)
{
	Oid			owner;
	char	   *installed;

	extension_info(&owner, &installed);
	return strcmp(installed, version) == 0;
}

/* Run sql as the extension's owner (for its own bookkeeping tables). */
void
sa_run_sql_as_owner(const char *sql, int nargs, Oid *argtypes, Datum *values)
{
	sa_run_sql_as_owner_nulls(sql, nargs, argtypes, values, nullptr);
}

/* The same, with SPI's nulls (' ' or 'n' per argument; nullptr: none). */
void
sa_run_sql_as_owner_nulls(const char *sql, int nargs, Oid *argtypes, Datum *values, const char *nulls)
{
	Oid			save_userid;
	int			save_sec_context;
	Oid			owner;
	char	   *version;

	extension_info(&owner, &version);
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(owner, save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	int			rc = SPI_execute_with_args(sql, nargs, argtypes, values, nulls, false, 0);

	SetUserIdAndSecContext(save_userid, save_sec_context);
	if (rc < 0)
		elog(ERROR, "SPI_execute failed: %s (%s)", SPI_result_code_string(rc), sql);
}

/*
 * Run sql as the extension's owner on one column's row of a catalog of the
 * audit schema: $1 the table, $2 the column's name, and $3 another table
 * when other is valid (the detached table a row is copied to).
 */
void
sa_run_column_sql_as_owner(const char *sql, Oid tbl, const char *col, Oid other)
{
	Oid			argtypes[3] = {REGCLASSOID, NAMEOID, REGCLASSOID};
	NameData	name;
	Datum		values[3];

	namestrcpy(&name, col);
	values[0] = ObjectIdGetDatum(tbl);
	values[1] = NameGetDatum(&name);
	values[2] = ObjectIdGetDatum(other);
	sa_run_sql_as_owner(sql, OidIsValid(other) ? 3 : 2, argtypes, values);
}

/* Add (tag) or remove one column of tbl in the catalog. */
void
sa_catalog_set(Oid tbl, const char *column, bool tagged)
{
	Oid			argtypes[3] = {OIDOID, NAMEOID, TEXTOID};
	Datum		args[3];

	args[0] = ObjectIdGetDatum(tbl);
	args[1] = DirectFunctionCall1(namein, CStringGetDatum(column));
	args[2] = CStringGetTextDatum(GetUserNameFromId(GetUserId(), false));
	if (tagged)
		sa_run_sql_as_owner("INSERT INTO sensitive_audit.tag_info (tbl, column_name, tagged_at, tagged_by) "
							"VALUES ($1::pg_catalog.regclass, $2, pg_catalog.statement_timestamp(), $3) "
							"ON CONFLICT (tbl, column_name) DO NOTHING",
							3, argtypes, args);
	else
	{
		sa_policy_forget(tbl, column);
		sa_protect_forget(tbl, column);
		sa_run_sql_as_owner("DELETE FROM sensitive_audit.tag_info "
							"WHERE tbl OPERATOR(pg_catalog.=) $1::pg_catalog.regclass "
							"AND column_name OPERATOR(pg_catalog.=) $2",
							2, argtypes, args);
	}
}

/* Rename a tagged column in the catalog. */
void
sa_catalog_rename(Oid tbl, const char *oldname, const char *newname)
{
	Oid			argtypes[3] = {OIDOID, NAMEOID, NAMEOID};
	Datum		args[3];

	args[0] = ObjectIdGetDatum(tbl);
	args[1] = DirectFunctionCall1(namein, CStringGetDatum(oldname));
	args[2] = DirectFunctionCall1(namein, CStringGetDatum(newname));
	sa_run_sql_as_owner("UPDATE sensitive_audit.tag_info SET column_name = $3 "
						"WHERE tbl OPERATOR(pg_catalog.=) $1::pg_catalog.regclass "
						"AND column_name OPERATOR(pg_catalog.=) $2",
						3, argtypes, args);
	if (OidIsValid(sa_audit_relid(SA_POLICY_INFO)))
		sa_run_sql_as_owner("UPDATE sensitive_audit.policy_info SET column_name = $3 "
							"WHERE tbl OPERATOR(pg_catalog.=) $1::pg_catalog.regclass "
							"AND column_name OPERATOR(pg_catalog.=) $2",
							3, argtypes, args);
	if (OidIsValid(sa_audit_relid(SA_PROTECT_INFO)))
		sa_run_sql_as_owner("UPDATE sensitive_audit.protect_info SET column_name = $3 "
							"WHERE tbl OPERATOR(pg_catalog.=) $1::pg_catalog.regclass "
							"AND column_name OPERATOR(pg_catalog.=) $2",
							3, argtypes, args);
}

/* Forget every column of a table that is gone. */
void
sa_catalog_forget(Oid tbl)
{
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1] = {ObjectIdGetDatum(tbl)};

	sa_run_sql_as_owner("DELETE FROM sensitive_audit.tag_info "
						"WHERE tbl::pg_catalog.oid OPERATOR(pg_catalog.=) $1",
						1, argtypes, args);
	if (OidIsValid(sa_audit_relid(SA_POLICY_INFO)))
		sa_run_sql_as_owner("DELETE FROM sensitive_audit.policy_info "
							"WHERE tbl::pg_catalog.oid OPERATOR(pg_catalog.=) $1",
							1, argtypes, args);
	if (OidIsValid(sa_audit_relid(SA_PROTECT_INFO)))
		sa_run_sql_as_owner("DELETE FROM sensitive_audit.protect_info "
							"WHERE tbl::pg_catalog.oid OPERATOR(pg_catalog.=) $1",
							1, argtypes, args);
}

/*
 * Queue an entry recording a change to the audit setup.  It enters the chain
 * at commit like any captured change.
 */
void
sa_record_setup(const char *operation, const char *schema, const char *table,
				const char *column, const char *value_type, const char *detail)
{
	sa_record_setup_values(operation, schema, table, column, value_type, nullptr, detail);
}

void
sa_record_setup_values(const char *operation, const char *schema, const char *table,
					   const char *column, const char *value_type,
					   const char *old_value, const char *new_value)
{
	sa_record_setup_row(operation, schema, table, column, value_type, nullptr, old_value, new_value);
}

/* The same for a change that concerns one row (an ERASE): row_key names it. */
void
sa_record_setup_row(const char *operation, const char *schema, const char *table,
					const char *column, const char *value_type, const char *row_key,
					const char *old_value, const char *new_value)
{
	PendingEntry *e = sa_pending_new(GetCurrentTimestamp());

	sa_pending_set(e, PF_OPERATION, operation);
	sa_pending_set(e, PF_TABLE_SCHEMA, schema);
	sa_pending_set(e, PF_TABLE_NAME, table);
	sa_pending_set(e, PF_COLUMN_NAME, column);
	sa_pending_set(e, PF_ROW_KEY, row_key);
	sa_pending_set(e, PF_VALUE_TYPE, value_type);
	sa_pending_set(e, PF_OLD_VALUE, old_value);
	sa_pending_set(e, PF_NEW_VALUE, new_value);
	sa_pending_fill_who(e);
}

/* Create the TRUNCATE trigger on relid and every partition that lacks it. */
void
sa_ensure_truncate_triggers(Oid relid)
{
	ListCell   *lc;

	foreach(lc, tree_members(relid, false))
	{
		const char *q = (const char *) lfirst(lc);

		sa_run_sql(psprintf("CREATE TRIGGER " SA_TRUNCATE_TRIGGER " BEFORE TRUNCATE ON %s "
							"FOR EACH STATEMENT EXECUTE FUNCTION sensitive_audit.capture_truncate()", q));
	}
	fire_always(relid, SA_TRUNCATE_TRIGGER);
}

/*
 * Rebuild relid's capture triggers from the catalog: none if nothing of it
 * is tagged, else the three canonical ones.  With row_only, the TRUNCATE
 * triggers are left as they are (a restore of a 1.0 dump brings its own).
 * Runs inside sa_run_in_setup().
 */
void
sa_sync_triggers(Oid relid, bool row_only)
{
	List	   *tagged = sa_catalog_columns(relid);
	Relation	rel = table_open(relid, ShareRowExclusiveLock);
	const char *q = pstrdup(qualified(rel));
	bool		had_row = has_trigger(rel, SA_CAPTURE_TRIGGER);
	bool		had_update = has_trigger(rel, SA_UPDATE_TRIGGER);
	StringInfoData when;

	StringInfoData cols;
	bool		before_update = false;
	ListCell   *lc;

	/*
	 * The UPDATE trigger's form (see sa_trigger_problem), and the key
	 * columns it compares: the table's own key and any partition's (a
	 * partition may have a primary key its parent lacks), by name.
	 */
	Bitmapset  *keys = sa_key_attnums(rel, nullptr);

	foreach(lc, find_all_inheritors(relid, NoLock, nullptr))
	{
		Relation	r = table_open(lfirst_oid(lc), NoLock);
		Bitmapset  *member_key = sa_key_attnums(r, nullptr);
		int			k = -1;

		before_update |= sa_has_before_update(r);
		while ((k = bms_next_member(member_key, k)) >= 0)
		{
			AttrNumber	own = get_attnum(relid, get_attname(RelationGetRelid(r), k, false));

			if (own != InvalidAttrNumber)
				keys = bms_add_member(keys, own);
		}
		table_close(r, NoLock);
	}
	initStringInfo(&when);
	initStringInfo(&cols);
	if (tagged != NIL)
	{
		Bitmapset  *compared = bms_union(sa_tagged_attnums(rel, tagged), keys);
		int			attnum = -1;

		while ((attnum = bms_next_member(compared, attnum)) >= 0)
		{
			const char *name = quote_identifier(get_attname(relid, attnum, false));

			appendStringInfo(&when, "%sOLD.%s, NEW.%s", when.len > 0 ? ", " : "", name, name);
			appendStringInfo(&cols, "%s%s", cols.len > 0 ? ", " : "", name);
		}
	}
	table_close(rel, NoLock);

	if (had_row)
		sa_run_sql(psprintf("DROP TRIGGER " SA_CAPTURE_TRIGGER " ON %s", q));
	if (had_update)
		sa_run_sql(psprintf("DROP TRIGGER " SA_UPDATE_TRIGGER " ON %s", q));
	if (!row_only)
		drop_truncate_triggers(relid);
	if (tagged == NIL)
		return;

	sa_run_sql(psprintf("CREATE TRIGGER " SA_CAPTURE_TRIGGER " AFTER INSERT OR DELETE ON %s"
						" FOR EACH ROW EXECUTE FUNCTION sensitive_audit.capture()", q));
	if (before_update)
		sa_run_sql(psprintf("CREATE TRIGGER " SA_UPDATE_TRIGGER " AFTER UPDATE ON %s FOR EACH ROW"
							" WHEN (sensitive_audit.changed(%s))"
							" EXECUTE FUNCTION sensitive_audit.capture()", q, when.data));
	else
		sa_run_sql(psprintf("CREATE TRIGGER " SA_UPDATE_TRIGGER " AFTER UPDATE OF %s ON %s FOR EACH ROW"
							" EXECUTE FUNCTION sensitive_audit.capture()", cols.data, q));
	fire_always(relid, SA_CAPTURE_TRIGGER);
	fire_always(relid, SA_UPDATE_TRIGGER);
	if (!row_only)
		sa_ensure_truncate_triggers(relid);
}

/*
 * Run fn(arg) inside SPI, with search_path pinned (spi_begin) and
 * sa_in_setup set so that the guards let our own trigger DDL through.  The
 * flag is put back even on error: a caller's exception block may catch it.
 */
pg_noinline void
sa_run_in_setup(void (*fn) (void *), void *arg)
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

namespace {

/* Does relid, or any of its partitions, hold a row? */
bool
tree_has_rows(Oid relid)
{
	ListCell   *lc;
	bool		any = false;

	foreach(lc, find_all_inheritors(relid, AccessShareLock, nullptr))
	{
		Relation	r = table_open(lfirst_oid(lc), NoLock);

		any = any || (RELKIND_HAS_STORAGE(r->rd_rel->relkind) && sa_has_rows(r));
		table_close(r, NoLock);
	}
	return any;
}

struct TagArgs
{
	Oid			relid;
	List	   *changed;		/* column names whose state changes */
	bool		tag;
};

void
tag_columns_cb(void *arg)
{
	TagArgs    *a = (TagArgs *) arg;
	Oid			relid = a->relid;
	const char *schema = get_namespace_name(get_rel_namespace(relid));
	const char *relname = get_rel_name(relid);
	ListCell   *lc;

	foreach(lc, a->changed)
	{
		const char *colname = (const char *) lfirst(lc);
		AttrNumber	attnum = get_attnum(relid, colname);

		sa_catalog_set(relid, colname, a->tag);
		sa_record_setup(a->tag ? "TAG" : "UNTAG", schema, relname, colname,
						sa_type_name(get_atttype(relid, attnum), -1), nullptr);
		if (!a->tag)
		{
			/* the label, if the column was tagged by one, goes too */
			ObjectAddress addr;

			ObjectAddressSubSet(addr, RelationRelationId, relid, attnum);
			SetSecurityLabel(&addr, "sensitive_audit", nullptr);
		}
	}
	CommandCounterIncrement();
	sa_sync_triggers(relid, false);
}

struct SyncArgs
{
	Oid			relid;
	bool		row_only;
};

void
sync_triggers_cb(void *arg)
{
	SyncArgs   *a = (SyncArgs *) arg;

	sa_sync_triggers(a->relid, a->row_only);
}

}							/* namespace */

/*
 * Tag (tag = true) or untag the named columns of relid.  Errors leave
 * everything as it was: they abort the caller's (sub)transaction.
 */
/*
 * relid exists and the caller owns it, checked before any lock: whoever may
 * not change its audit setup must not be able to make its writers wait.
 */
void
sa_check_table_owner(Oid relid)
{
	char		relkind = get_rel_relkind(relid);

	if (relkind == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	if (!pg_class_ownercheck(relid, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, get_relkind_objtype(relkind), get_rel_name(relid));
}

void
sa_tag_columns(Oid relid, List *colnames, bool tag)
{
	/* ownership first, before any lock */
	sa_check_table_owner(relid);

	Relation	rel = table_open(relid, ShareRowExclusiveLock);

	check_taggable(rel);

	List	   *before = sa_catalog_columns(relid);
	List	   *changed = NIL;
	ListCell   *lc;

	foreach(lc, colnames)
	{
		const char *colname = (const char *) lfirst(lc);
		AttrNumber	attnum = get_attnum(relid, colname);
		bool		was = false;
		ListCell   *lc2;

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
						 errdetail("The text of type %s depends on %s, so the same value could be recorded differently by different sessions.",
								   format_type_be(bad), bad == CASHOID ? "lc_monetary" : "search_path"),
						 bad == CASHOID ? errhint("Store the amount as numeric.")
						 : errhint("Store the object's OID or its qualified name instead.")));
		}
		foreach(lc2, before)
		{
			if (strcmp((const char *) lfirst(lc2), colname) == 0)
				was = true;
		}
		foreach(lc2, changed)
		{
			if (strcmp((const char *) lfirst(lc2), colname) == 0)
				was = tag;		/* named twice: once is enough */
		}
		if (was != tag)
			changed = lappend(changed, pstrdup(colname));
	}

	/* keep the lock, but let go of the relation before altering it */
	table_close(rel, NoLock);
	if (changed == NIL)
		return;					/* already so: nothing to do or record */

	TagArgs		args = {relid, changed, tag};

	sa_run_in_setup(tag_columns_cb, &args);

	if (tag && tree_has_rows(relid))
		ereport(NOTICE,
				(errmsg("table \"%s\" already holds rows, whose values are not in the log",
						get_rel_name(relid)),
				 errhint("SELECT sensitive_audit.baseline('%s') records them as BASELINE entries, so that reconcile() can check them.",
						 quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
													get_rel_name(relid)))));
}

/* Rebuild relid's capture triggers from the catalog (enforce.cpp, upgrades). */
void
sa_sync_triggers_in_setup(Oid relid, bool row_only)
{
	SyncArgs	args = {relid, row_only};

	sa_run_in_setup(sync_triggers_cb, &args);
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
PG_FUNCTION_INFO_V1(sensitive_audit_sync_triggers);
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

/* 1.0's _in_setup(), kept for databases not yet updated. */
extern "C" Datum
sensitive_audit_in_setup(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(sa_in_own_setup());
}

/* _sync_triggers(tbl): rebuild a tagged table's capture triggers. */
extern "C" Datum
sensitive_audit_sync_triggers(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);

	if (!pg_class_ownercheck(relid, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_TABLE, get_rel_name(relid));
	sa_sync_triggers_in_setup(relid, false);
	PG_RETURN_VOID();
}

/*
 * 1.0's event trigger for new partitions.  The library serves databases
 * still at 1.0 until ALTER EXTENSION sensitive_audit UPDATE; 1.1 does this
 * in enforce_ddl().
 */
extern "C" Datum
sensitive_audit_sync_partitions(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		sa_called_wrongly("sync_partitions", "called as an event trigger");
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

	/*
	 * A dump's script (pg_dump, pg_restore) runs with check_function_bodies
	 * off and brings the label before the catalog of what is tagged and the
	 * capture triggers, which it restores itself: tagging here would tag
	 * twice and turn the table's restored rows into new INSERT entries.  The
	 * label is then only recorded.
	 */
	if (!check_function_bodies)
		return;

	char	   *colname = get_attname(object->objectId, (AttrNumber) object->objectSubId, false);

	sa_tag_columns(object->objectId, list_make1(colname), seclabel != nullptr);
}

void
sa_setup_init(void)
{
	register_label_provider("sensitive_audit", sa_object_relabel);
}
