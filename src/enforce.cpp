/*
 * enforce.cpp — nothing changes silently: the invariant over the audit
 * setup, checked after every DDL command and on every drop, and the guards
 * that keep the log insert-only.
 *
 * The invariant, stated once (DESIGN, "Nothing changes silently"):
 *   every relation whose rows are rows of a tagged table (the table, its
 *   partitions present, future and attached) is a permanent table or
 *   partitioned table, not an inheritance child, and carries only canonical
 *   capture triggers (setup.cpp's sa_trigger_problem()); a tagged table is
 *   not itself a partition, an inheritance child or a typed table, whose
 *   columns another table's or type's DDL could change; no other trigger
 *   anywhere calls capture() or capture_truncate(); and the catalog of what
 *   is tagged follows what happens to the tables it names.
 * enforce_ddl() (ddl_command_end, every command) checks it for the members
 * of tagged tables a command touched (and those it recursed to), and refuses
 * the command otherwise, rather than matching trigger names or particular
 * commands; capture() checks the firing trigger again (capture.cpp).  What
 * the check cannot express as a state it handles by command:
 *   - DETACH PARTITION: the detached table stays tagged on its own, and a
 *     DETACH entry says so; ATTACH PARTITION records the rows it brings;
 *     a new partition gets its TRUNCATE trigger;
 *   - renames of tagged and key columns, of tagged tables (by any command
 *     form) and of their schemas are recorded, and the catalog follows a
 *     column's new name; a change to a type a tagged column's values are
 *     read through is refused;
 *   - a missing capture trigger is not a state the check refuses (a restore
 *     creates a table's triggers one command at a time), so every drop of
 *     one is refused in enforce_drop() instead, and DETACH, whose removal of
 *     cloned triggers no event trigger sees, re-creates them.
 * enforce_drop() (sql_drop) sees every drop a command reports, cascaded ones
 * included: the log and its guards cannot be dropped, a capture trigger
 * cannot be dropped while its table stays, and a dropped tagged table or
 * column leaves an entry.  guard_start() (ddl_command_start) refuses, before
 * any lock is taken, the commands that would lock the log's tables before
 * checking who asks.
 *
 * What a superuser can still force (disabling event triggers, writing the
 * catalogs) is beyond these checks; verification and reconciliation against
 * the table's contents are the answer to that.
 */
#include "sensitive_audit.hpp"

namespace {

/* One row of pg_event_trigger_ddl_commands(), with the relation it changes. */
struct DdlCommand
{
	Oid			classid;
	Oid			objid;
	Oid			relid;			/* the relation it changes, if any */
	char	   *command_tag;
	char	   *identity;
};

char *
spi_text(HeapTuple tuple, TupleDesc desc, int col)
{
	char	   *v = SPI_getvalue(tuple, desc, col);

	return v ? pstrdup(v) : nullptr;
}

Oid
spi_oid(HeapTuple tuple, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tuple, desc, col, &isnull);

	return isnull ? InvalidOid : DatumGetObjectId(d);
}

/*
 * The command's objects, in the caller's memory context.  The relation a
 * command changes is the object itself, or the owner of a rule (CREATE RULE
 * "_RETURN" redefines a view), trigger or policy.
 */
List *
ddl_commands(void)
{
	MemoryContext caller = CurrentMemoryContext;
	List	   *list = NIL;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	int			rc = SPI_execute(
		"SELECT c.classid, c.objid, "
		"  CASE c.classid "
		"    WHEN 'pg_catalog.pg_class'::pg_catalog.regclass THEN c.objid "
		"    WHEN 'pg_catalog.pg_rewrite'::pg_catalog.regclass THEN "
		"      (SELECT r.ev_class FROM pg_catalog.pg_rewrite r WHERE r.oid OPERATOR(pg_catalog.=) c.objid) "
		"    WHEN 'pg_catalog.pg_trigger'::pg_catalog.regclass THEN "
		"      (SELECT t.tgrelid FROM pg_catalog.pg_trigger t WHERE t.oid OPERATOR(pg_catalog.=) c.objid) "
		"    WHEN 'pg_catalog.pg_policy'::pg_catalog.regclass THEN "
		"      (SELECT p.polrelid FROM pg_catalog.pg_policy p WHERE p.oid OPERATOR(pg_catalog.=) c.objid) "
		"  END, c.command_tag, c.object_identity "
		"FROM pg_catalog.pg_event_trigger_ddl_commands() c",
		false, 0);				/* not read-only: see what the command just did */

	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not read the DDL command's objects: %s", SPI_result_code_string(rc));

	MemoryContext old = MemoryContextSwitchTo(caller);

	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		DdlCommand *c = (DdlCommand *) palloc0(sizeof(DdlCommand));

		c->classid = spi_oid(tuple, desc, 1);
		c->objid = spi_oid(tuple, desc, 2);
		c->relid = spi_oid(tuple, desc, 3);
		c->command_tag = spi_text(tuple, desc, 4);
		c->identity = spi_text(tuple, desc, 5);
		list = lappend(list, c);
	}
	MemoryContextSwitchTo(old);
	SPI_finish();
	return list;
}

bool
in_audit_schema(Oid relid)
{
	Oid			nsp = get_rel_namespace(relid);

	return OidIsValid(nsp) && nsp == get_namespace_oid(SA_SCHEMA, true);
}

/* The log, its storage, the catalog: no DDL reaches them but ours. */
void
guard_audit_schema(List *commands)
{
	ListCell   *lc;

	foreach(lc, commands)
	{
		DdlCommand *c = (DdlCommand *) lfirst(lc);

		if (OidIsValid(c->relid) && in_audit_schema(c->relid))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("the audit log cannot be altered"),
					 errdetail("%s would change %s.", c->command_tag,
							   c->identity ? c->identity : get_rel_name(c->relid))));
	}
}

const char *
qualified_name(Oid relid)
{
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
									  get_rel_name(relid));
}

/* ------------------------------------------------------------------------
 * The invariant for one tagged table's tree.
 */

/* Append the OIDs of more to *list, once each. */
void
foreach_oid_append(List **list, List *more)
{
	ListCell   *lc;

	foreach(lc, more)
		*list = list_append_unique_oid(*list, lfirst_oid(lc));
}

/* What check_tree found that enforce_ddl() repairs. */
struct Repairs
{
	List	   *stale;			/* tagged tables whose UPDATE trigger lacks a key column */
	List	   *enable;			/* (relid, trigger name) pairs CREATE TRIGGER left ENABLE ORIGIN */
	List	   *old_form;		/* tagged tables given 1.0's capture trigger by a restore */
};

/*
 * Was trigger t just made by this command, a CREATE TRIGGER (not OR
 * REPLACE), or cloned to a partition from the one it made?
 */
bool
created_here(Node *parsetree, const Trigger *t)
{
	return parsetree != nullptr && IsA(parsetree, CreateTrigStmt)
		&& !((CreateTrigStmt *) parsetree)->replace
		&& strcmp(((CreateTrigStmt *) parsetree)->trigname, t->tgname) == 0;
}

void
check_member(Oid tbl, Oid member, List *tagged_names, Node *parsetree, Repairs *repairs)
{
	Relation	rel = relation_open(member, AccessShareLock);
	const char *relname = RelationGetRelationName(rel);

	if (member == tbl && (has_superclass(tbl) || OidIsValid(rel->rd_rel->reloftype)))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("audited table \"%s\" cannot become a partition, an inheritance child or a typed table",
						relname),
				 errdetail("Its columns could then be renamed or changed through another table or type, unseen."),
				 errhint("Untag its columns first, or tag the parent table instead.")));
	if (member != tbl && !rel->rd_rel->relispartition)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("\"%s\" cannot inherit from audited table \"%s\"", relname, get_rel_name(tbl)),
				 errdetail("Rows of an inheritance child are read and written through its parent, unaudited."),
				 errhint("Use declarative partitioning, whose partitions are all covered.")));
	if (rel->rd_rel->relkind == RELKIND_FOREIGN_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("foreign table \"%s\" cannot be a partition of audited table \"%s\"",
						relname, get_rel_name(tbl)),
				 errdetail("Changes to a foreign table happen on another server and cannot be captured here.")));
	if (rel->rd_rel->relpersistence != RELPERSISTENCE_PERMANENT)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("audited table \"%s\" must stay a logged table", relname),
				 errdetail("After a crash the rows of an unlogged table are gone while the log still records them."),
				 errhint("Untag its columns with sensitive_audit.untag() first; that is recorded in the log.")));

	sa_protect_check_member(tbl, rel);

	TriggerDesc *td = rel->trigdesc;
	Bitmapset  *tagged = sa_tagged_attnums(rel, tagged_names);
	Bitmapset  *key = sa_key_attnums(rel, nullptr);

	for (int i = 0; td != nullptr && i < td->numtriggers; i++)
	{
		const Trigger *t = &td->triggers[i];
		const char *why;

		/*
		 * BEFORE TRUNCATE triggers fire in name order: one that fires after
		 * ours could write rows that TRUNCATE then removes unrecorded.
		 */
		if (TRIGGER_FOR_TRUNCATE(t->tgtype) && TRIGGER_FOR_BEFORE(t->tgtype)
			&& strcmp(t->tgname, SA_TRUNCATE_TRIGGER) > 0)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("BEFORE TRUNCATE trigger \"%s\" on audited table \"%s\" would fire after sensitive_audit's",
							t->tgname, relname),
					 errdetail("Rows it writes would be removed by the TRUNCATE without being recorded."),
					 errhint("Give the trigger a name that sorts before \"%s\".", SA_TRUNCATE_TRIGGER)));
		SaTriggerState state = sa_trigger_problem(t, tagged, key, sa_has_before_update(rel), &why);

		switch (state)
		{
			case SA_TRIGGER_NOT_OURS:
			case SA_TRIGGER_CANONICAL:
				break;
			case SA_TRIGGER_STALE_KEY:
			case SA_TRIGGER_STALE_FORM:
				repairs->stale = list_append_unique_oid(repairs->stale, tbl);
				break;
			case SA_TRIGGER_NOT_ALWAYS:

				/*
				 * A capture trigger just created, as a restore does (pg_dump
				 * follows CREATE TRIGGER with ENABLE ALWAYS): we enable it
				 * ourselves.  Anything else that leaves one not ALWAYS, a
				 * CREATE OR REPLACE included, is refused below.
				 */
				if (created_here(parsetree, t))
				{
					repairs->enable = lappend_oid(repairs->enable, member);
					repairs->enable = lappend(repairs->enable, pstrdup(t->tgname));
					break;
				}
				/* FALLTHROUGH */
			case SA_TRIGGER_WRONG:

				/*
				 * A dump made by release 1.0 creates 1.0's capture trigger
				 * (AFTER INSERT OR DELETE OR UPDATE OF <tagged>): the table
				 * gets 1.1's row triggers in its place.
				 */
				if (state == SA_TRIGGER_WRONG && sa_is_release_1_0_trigger(t)
					&& (created_here(parsetree, t)
						|| (t->tgisclone && list_member_oid(repairs->old_form, tbl))))
				{
					repairs->old_form = list_append_unique_oid(repairs->old_form, tbl);
					break;
				}
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("capture of audited table \"%s\" cannot be changed or disabled", relname),
						 errdetail_internal("%s", why),
						 errhint("Use sensitive_audit.untag() to stop auditing a column; it is recorded in the log.")));
		}
	}
	relation_close(rel, AccessShareLock);
}

/*
 * Triggers that call our functions on a relation that is not tagged: only
 * in the shape of the capture triggers.  A parallel restore may create a
 * table's capture triggers before another of its sessions has loaded the
 * catalog of what is tagged; until then capture() refuses to record from
 * them, and writes fail rather than go unrecorded or forge entries.
 */
void
check_untagged(Oid relid)
{
	Relation	rel = try_relation_open(relid, AccessShareLock);

	if (rel == nullptr)
		return;

	TriggerDesc *td = rel->trigdesc;

	for (int i = 0; td != nullptr && i < td->numtriggers; i++)
	{
		const Trigger *t = &td->triggers[i];
		const char *why;

		if (sa_trigger_problem(t, nullptr, nullptr, false, &why) == SA_TRIGGER_WRONG)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("trigger \"%s\" on \"%s\" cannot call %s", t->tgname,
							RelationGetRelationName(rel), format_procedure(t->tgfoid)),
					 errdetail_internal("%s", why),
					 errhint("Tag columns with sensitive_audit.tag().")));
	}
	relation_close(rel, AccessShareLock);
}

/* Is relid (a relation or a type) used by a tagged column's type? */
void
refuse_if_type_in_use(Oid typid, const char *what)
{
	ListCell   *lc;

	foreach(lc, sa_catalog_rows(InvalidOid))
	{
		SaTagRow   *row = (SaTagRow *) lfirst(lc);
		AttrNumber	attnum = get_attnum(row->tbl, row->column);

		if (attnum == InvalidAttrNumber)
			continue;
		if (sa_type_contains(get_atttype(row->tbl, attnum), typid))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("type %s is used by tagged column \"%s\" of \"%s\"",
							format_type_be(typid), row->column, get_rel_name(row->tbl)),
					 errdetail("%s would change what the recorded values of that column mean.", what),
					 errhint("Untag the column first; that is recorded in the log.")));
	}
}

/* ------------------------------------------------------------------------
 * Actions by command, run as our own setup (SPI, guards off).
 */
struct DetachArgs
{
	Oid			root;
	Oid			parent;
	Oid			detached;
};

void
tag_detached_cb(void *arg)
{
	DetachArgs *a = (DetachArgs *) arg;
	ListCell   *lc;

	foreach(lc, sa_catalog_columns(a->root))
		sa_catalog_set(a->detached, (const char *) lfirst(lc), true);
	CommandCounterIncrement();
	sa_sync_triggers(a->detached, false);
	sa_record_setup_values("DETACH", get_namespace_name(get_rel_namespace(a->detached)),
						   get_rel_name(a->detached), nullptr, nullptr,
						   qualified_name(a->parent), qualified_name(a->detached));
	sa_policy_copy(a->root, a->detached);
	sa_protect_copy(a->root, a->detached);
}

void
attach_cb(void *arg)
{
	Oid			attached = *(Oid *) arg;
	Relation	rel = table_open(attached, AccessShareLock);

	sa_ensure_truncate_triggers(attached);
	sa_capture_rows(rel, "ATTACH", true);
	table_close(rel, AccessShareLock);
}

void
truncate_triggers_cb(void *arg)
{
	sa_ensure_truncate_triggers(*(Oid *) arg);
}

struct RenameArgs
{
	Oid			tbl;
	const char *oldname;
	const char *newname;
};

void
rename_column_cb(void *arg)
{
	RenameArgs *a = (RenameArgs *) arg;

	sa_catalog_rename(a->tbl, a->oldname, a->newname);
}

void
enable_cb(void *arg)
{
	List	   *pairs = (List *) arg;

	for (int i = 0; i + 1 < list_length(pairs); i += 2)
	{
		Oid			relid = list_nth_oid(pairs, i);
		const char *tgname = (const char *) list_nth(pairs, i + 1);
		Relation	r = table_open(relid, NoLock);

		EnableDisableTrigger(r, tgname, TRIGGER_FIRES_ALWAYS, false, ShareRowExclusiveLock);
		table_close(r, NoLock);
		CommandCounterIncrement();
	}
}

/* The first relation among a command's objects. */
Oid
first_relation(List *commands)
{
	ListCell   *lc;

	foreach(lc, commands)
	{
		DdlCommand *c = (DdlCommand *) lfirst(lc);

		if (c->classid == RelationRelationId)
			return c->objid;
	}
	return InvalidOid;
}

void
handle_alter_table(AlterTableStmt *stmt)
{
	Oid			relid = RangeVarGetRelid(stmt->relation, NoLock, true);
	ListCell   *lc;

	if (!OidIsValid(relid))
		return;
	if (stmt->objtype == OBJECT_TYPE)
	{
		/* ALTER TYPE of a composite type: ADD, DROP, ALTER ATTRIBUTE */
		refuse_if_type_in_use(get_rel_type_id(relid), "Changing its attributes");
		return;
	}
	foreach(lc, stmt->cmds)
	{
		AlterTableCmd *cmd = (AlterTableCmd *) lfirst(lc);

		/* a table's row type is a composite type too */
		if (cmd->subtype == AT_AddColumn || cmd->subtype == AT_DropColumn
			|| cmd->subtype == AT_AlterColumnType)
			refuse_if_type_in_use(get_rel_type_id(relid), "Changing the columns of its row type");
		if (cmd->subtype != AT_AttachPartition && cmd->subtype != AT_DetachPartition
			&& cmd->subtype != AT_DetachPartitionFinalize)
			continue;

		Oid			part = RangeVarGetRelid(((PartitionCmd *) cmd->def)->name, NoLock, true);
		Oid			root = sa_tagged_root(relid);

		if (!OidIsValid(part) || !OidIsValid(root))
			continue;
		if (cmd->subtype == AT_AttachPartition)
			sa_run_in_setup(attach_cb, &part);
		else if (!list_member_oid(sa_catalog_tables(), part))
		{
			DetachArgs	args = {root, relid, part};

			sa_run_in_setup(tag_detached_cb, &args);
		}
	}
}

void
handle_rename(RenameStmt *stmt, List *commands)
{
	switch (stmt->renameType)
	{
		case OBJECT_COLUMN:
			{
				Oid			relid = RangeVarGetRelid(stmt->relation, NoLock, true);
				ListCell   *lc;

				if (!OidIsValid(relid))
					return;
				bool		recorded = false;

				foreach(lc, sa_catalog_columns(relid))
				{
					if (strcmp((const char *) lfirst(lc), stmt->subname) != 0)
						continue;

					RenameArgs	args = {relid, stmt->subname, stmt->newname};

					sa_run_in_setup(rename_column_cb, &args);
					sa_record_setup_values("RENAME COLUMN", get_namespace_name(get_rel_namespace(relid)),
										   get_rel_name(relid), stmt->newname, nullptr,
										   stmt->subname, stmt->newname);
					recorded = true;
				}

				/* a column of the row key: later entries' row_key names it anew */
				AttrNumber	attnum = get_attnum(relid, stmt->newname);

				if (!recorded && attnum != InvalidAttrNumber && OidIsValid(sa_tagged_root(relid)))
				{
					Relation	rel = relation_open(relid, AccessShareLock);

					if (bms_is_member(attnum, sa_key_attnums(rel, nullptr)))
						sa_record_setup_values("RENAME COLUMN", get_namespace_name(get_rel_namespace(relid)),
											   get_rel_name(relid), stmt->newname, nullptr,
											   stmt->subname, stmt->newname);
					relation_close(rel, AccessShareLock);
				}
				break;
			}
		case OBJECT_ATTRIBUTE:
			{
				Oid			relid = RangeVarGetRelid(stmt->relation, NoLock, true);

				if (OidIsValid(relid))
					refuse_if_type_in_use(get_rel_type_id(relid), "Renaming its attributes");
				break;
			}
		case OBJECT_TABLE:
		case OBJECT_INDEX:
		case OBJECT_VIEW:
		case OBJECT_MATVIEW:
		case OBJECT_SEQUENCE:
		case OBJECT_FOREIGN_TABLE:
			{
				/* ALTER INDEX t RENAME renames a table t as well: go by the object */
				Oid			relid = first_relation(commands);

				if (OidIsValid(relid) && OidIsValid(sa_tagged_root(relid)))
					sa_record_setup_values("RENAME TABLE", get_namespace_name(get_rel_namespace(relid)),
										   get_rel_name(relid), nullptr, nullptr,
										   stmt->relation->relname, stmt->newname);
				break;
			}
		case OBJECT_SCHEMA:
			{
				Oid			nsp = get_namespace_oid(stmt->newname, true);
				ListCell   *lc;

				List	   *members = NIL;

				/* tagged tables and their partitions in the schema */
				foreach(lc, sa_catalog_tables())
					foreach_oid_append(&members, find_all_inheritors(lfirst_oid(lc), NoLock, nullptr));
				foreach(lc, members)
				{
					if (get_rel_namespace(lfirst_oid(lc)) != nsp)
						continue;
					sa_record_setup_values("RENAME SCHEMA", stmt->newname, get_rel_name(lfirst_oid(lc)),
										   nullptr, nullptr, stmt->subname, stmt->newname);
				}
				break;
			}
		default:
			break;
	}
}

void
handle_command(Node *tree, List *commands)
{
	switch (nodeTag(tree))
	{
		case T_AlterTableStmt:
			handle_alter_table((AlterTableStmt *) tree);
			break;
		case T_RenameStmt:
			handle_rename((RenameStmt *) tree, commands);
			break;
		case T_AlterObjectSchemaStmt:
			{
				AlterObjectSchemaStmt *stmt = (AlterObjectSchemaStmt *) tree;
				Oid			relid = first_relation(commands);

				if (OidIsValid(relid)
					&& OidIsValid(sa_tagged_root(relid)))
					sa_record_setup_values("SET SCHEMA", stmt->newschema, get_rel_name(relid),
										   nullptr, nullptr, stmt->relation->schemaname, stmt->newschema);
				break;
			}
		case T_AlterEnumStmt:
			{
				AlterEnumStmt *stmt = (AlterEnumStmt *) tree;

				if (stmt->oldVal != nullptr)
					refuse_if_type_in_use(typenameTypeId(nullptr, makeTypeNameFromNameList(stmt->typeName)),
										  "Renaming its values");
				break;
			}
		default:
			break;
	}

	/*
	 * New partitions (CREATE TABLE ... PARTITION OF, also inside CREATE
	 * SCHEMA) get their TRUNCATE trigger; their row triggers are cloned.
	 * Only at creation: a restore creates partitions before any trigger, and
	 * brings their TRUNCATE triggers itself.
	 */
	ListCell   *lc;

	foreach(lc, commands)
	{
		DdlCommand *c = (DdlCommand *) lfirst(lc);

		if (c->classid == RelationRelationId && strcmp(c->command_tag, "CREATE TABLE") == 0
			&& get_rel_relispartition(c->objid) && OidIsValid(sa_tagged_root(c->objid)))
			sa_run_in_setup(truncate_triggers_cb, &c->objid);
	}
}

/*
 * The relations a command changes: those it reports, and the partitions
 * ATTACH PARTITION brings (the command reports only the parent).
 */
List *
touched_relations(List *commands, Node *tree)
{
	List	   *touched = NIL;
	ListCell   *lc;

	foreach(lc, commands)
	{
		DdlCommand *c = (DdlCommand *) lfirst(lc);

		if (OidIsValid(c->relid))
			touched = list_append_unique_oid(touched, c->relid);
	}
	if (tree != nullptr && IsA(tree, AlterTableStmt))
	{
		foreach(lc, ((AlterTableStmt *) tree)->cmds)
		{
			AlterTableCmd *cmd = (AlterTableCmd *) lfirst(lc);

			if (cmd->subtype == AT_AttachPartition)
			{
				Oid			part = RangeVarGetRelid(((PartitionCmd *) cmd->def)->name, NoLock, true);

				if (OidIsValid(part))
					foreach_oid_append(&touched, find_all_inheritors(part, NoLock, nullptr));
			}
		}
	}
	return touched;
}

/*
 * What a command may have recursed to: a rename of a parent's column renames
 * its inheritance children's and partitions' too.  A descendant the command
 * changed is one it holds a lock on; one it did not lock it did not change,
 * and is passed over rather than waited for (waiting could deadlock with a
 * session working on that partition, as a parallel restore does).
 */
List *
changed_descendants(List *touched)
{
	List	   *more = NIL;
	ListCell   *lc;

	foreach(lc, touched)
	{
		ListCell   *lc2;

		foreach(lc2, find_all_inheritors(lfirst_oid(lc), NoLock, nullptr))
		{
			Oid			d = lfirst_oid(lc2);

			if (!list_member_oid(touched, d) && !list_member_oid(more, d)
				&& ConditionalLockRelationOid(d, AccessShareLock))
				more = lappend_oid(more, d);
		}
	}
	return more;
}

/* The invariant, for the members of tagged tables a command touched. */
void
check_invariant(List *commands, Node *tree)
{
	List	   *tables = sa_catalog_tables();
	List	   *touched = touched_relations(commands, tree);
	ListCell   *lc;

	if (touched == NIL)
		return;
	touched = list_concat(touched, changed_descendants(touched));

	Repairs		repairs = {NIL, NIL, NIL};
	List	   *covered = NIL;

	foreach(lc, tables)
	{
		Oid			tbl = lfirst_oid(lc);

		if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(tbl)))
			continue;

		List	   *members = find_all_inheritors(tbl, NoLock, nullptr);
		ListCell   *lc2;
		bool		hit = false;

		foreach(lc2, members)
			hit |= list_member_oid(touched, lfirst_oid(lc2));
		if (!hit)
			continue;

		List	   *names = sa_catalog_columns(tbl);

		/*
		 * Only the members the command touched: the others are as the
		 * last command that touched them left them, and locking them
		 * could deadlock with DDL on a sibling partition.
		 */
		foreach(lc2, members)
		{
			if (!list_member_oid(touched, lfirst_oid(lc2)))
				continue;
			check_member(tbl, lfirst_oid(lc2), names, tree, &repairs);
			covered = list_append_unique_oid(covered, lfirst_oid(lc2));
		}
	}
	foreach(lc, touched)
	{
		if (!list_member_oid(covered, lfirst_oid(lc)))
			check_untagged(lfirst_oid(lc));
	}
	if (repairs.enable != NIL)
		sa_run_in_setup(enable_cb, repairs.enable);
	foreach(lc, repairs.stale)
		sa_sync_triggers_in_setup(lfirst_oid(lc), false);
	foreach(lc, repairs.old_form)
		sa_sync_triggers_in_setup(lfirst_oid(lc), true);
}

/* ------------------------------------------------------------------------
 * Drops.
 */
struct DroppedObject
{
	Oid			classid;
	Oid			objid;
	int32		objsubid;
	char	   *object_type;
	char	   *schema_name;
	char	   *object_name;
	char	   *identity;
	List	   *address;		/* address_names, as strings */
};

List *
dropped_objects(void)
{
	MemoryContext caller = CurrentMemoryContext;
	List	   *list = NIL;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	int			rc = SPI_execute(
		"SELECT d.classid, d.objid, d.objsubid, d.object_type, d.schema_name, d.object_name, "
		"  d.object_identity, d.address_names "
		"FROM pg_catalog.pg_event_trigger_dropped_objects() d", true, 0);

	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not read the dropped objects: %s", SPI_result_code_string(rc));

	MemoryContext old = MemoryContextSwitchTo(caller);

	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		DroppedObject *d = (DroppedObject *) palloc0(sizeof(DroppedObject));
		bool		isnull;

		d->classid = spi_oid(tuple, desc, 1);
		d->objid = spi_oid(tuple, desc, 2);
		d->objsubid = DatumGetInt32(SPI_getbinval(tuple, desc, 3, &isnull));
		d->object_type = spi_text(tuple, desc, 4);
		d->schema_name = spi_text(tuple, desc, 5);
		d->object_name = spi_text(tuple, desc, 6);
		d->identity = spi_text(tuple, desc, 7);

		Datum		names = SPI_getbinval(tuple, desc, 8, &isnull);

		if (!isnull)
		{
			Datum	   *elems;
			bool	   *nulls;
			int			n;

			deconstruct_array(DatumGetArrayTypeP(names), TEXTOID, -1, false, TYPALIGN_INT,
							  &elems, &nulls, &n);
			for (int k = 0; k < n; k++)
				d->address = lappend(d->address, nulls[k] ? nullptr : TextDatumGetCString(elems[k]));
		}
		list = lappend(list, d);
	}
	MemoryContextSwitchTo(old);
	SPI_finish();
	return list;
}

bool
is_capture_trigger_name(const char *name)
{
	return strcmp(name, SA_CAPTURE_TRIGGER) == 0 || strcmp(name, SA_UPDATE_TRIGGER) == 0
		|| strcmp(name, SA_TRUNCATE_TRIGGER) == 0;
}

struct DropRecords
{
	List	   *forget;			/* tagged tables gone */
	List	   *columns;		/* (tbl, column) pairs gone */
	List	   *captured;		/* relations gone that had capture triggers */
};

void
forget_cb(void *arg)
{
	DropRecords *r = (DropRecords *) arg;
	ListCell   *lc;

	foreach(lc, r->forget)
		sa_catalog_forget(lfirst_oid(lc));
	foreach(lc, r->captured)
		sa_protect_forget_relation(lfirst_oid(lc));
	for (int i = 0; i + 1 < list_length(r->columns); i += 2)
		sa_catalog_set(list_nth_oid(r->columns, i), (const char *) list_nth(r->columns, i + 1), false);
}

/*
 * Some commands lock their relation before checking the caller's right to
 * run them: CREATE RULE and CREATE TRIGGER take a lock on it that would
 * queue every committer behind them, whoever asks.  On the audit schema's
 * relations they are refused here, at ddl_command_start, before any lock,
 * to anyone but a superuser; so is a foreign key referencing them.
 */
bool
audit_relation(RangeVar *rv)
{
	Oid			relid = rv != nullptr ? RangeVarGetRelid(rv, NoLock, true) : InvalidOid;

	return OidIsValid(relid) && in_audit_schema(relid);
}

bool
references_audit_relation(List *elts)
{
	ListCell   *lc;

	foreach(lc, elts)
	{
		Node	   *n = (Node *) lfirst(lc);
		List	   *constraints = NIL;
		ListCell   *lc2;

		if (IsA(n, Constraint))
			constraints = list_make1(n);
		else if (IsA(n, ColumnDef))
			constraints = ((ColumnDef *) n)->constraints;
		foreach(lc2, constraints)
		{
			Constraint *c = (Constraint *) lfirst(lc2);

			if (IsA(c, Constraint) && c->contype == CONSTR_FOREIGN && audit_relation(c->pktable))
				return true;
		}
	}
	return false;
}

}							/* namespace */

extern "C" {
PG_FUNCTION_INFO_V1(sensitive_audit_guard_start);
}

/* ddl_command_start, every command: refusals that must come before any lock. */
extern "C" Datum
sensitive_audit_guard_start(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		sa_called_wrongly("guard_start", "called as an event trigger");
	if (sa_in_own_setup())
		PG_RETURN_VOID();

	Node	   *tree = ((EventTriggerData *) fcinfo->context)->parsetree;
	bool		refuse = false;

	/* the log stays part of the extension, so that pg_dump carries it */
	if (IsA(tree, AlterExtensionContentsStmt)
		&& strcmp(((AlterExtensionContentsStmt *) tree)->extname, "sensitive_audit") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("objects cannot be added to or removed from extension sensitive_audit"),
				 errdetail("Its tables are what pg_dump carries as the audit log.")));
	/*
	 * A table tagged on its own (a detached partition, say) attached to a
	 * tagged table would get that table's capture triggers next to its own,
	 * which PostgreSQL refuses with a trigger-name clash: say why instead.
	 */
	if (IsA(tree, AlterTableStmt))
	{
		ListCell   *lc;

		foreach(lc, ((AlterTableStmt *) tree)->cmds)
		{
			AlterTableCmd *cmd = (AlterTableCmd *) lfirst(lc);

			if (cmd->subtype != AT_AttachPartition || cmd->def == nullptr)
				continue;

			Oid			part = RangeVarGetRelid(((PartitionCmd *) cmd->def)->name, NoLock, true);
			Oid			parent = RangeVarGetRelid(((AlterTableStmt *) tree)->relation, NoLock, true);

			if (!OidIsValid(part) || !OidIsValid(parent) || sa_catalog_columns(part) == NIL)
				continue;

			Oid			root = sa_tagged_root(parent);

			if (OidIsValid(root))
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("table \"%s\" is tagged on its own and cannot become a partition of tagged table \"%s\"",
								get_rel_name(part), get_rel_name(parent)),
						 errdetail("Its rows would be captured twice over, by its own triggers and by those of \"%s\".",
								   get_rel_name(root)),
						 errhint("Untag its columns first with sensitive_audit.untag() (that is recorded); ATTACH then records its rows.")));
		}
	}
	if (superuser())
		PG_RETURN_VOID();
	switch (nodeTag(tree))
	{
		case T_RuleStmt:
			refuse = audit_relation(((RuleStmt *) tree)->relation);
			break;
		case T_CreateTrigStmt:
			refuse = audit_relation(((CreateTrigStmt *) tree)->relation);
			break;
		case T_CreateStmt:
			refuse = references_audit_relation(((CreateStmt *) tree)->tableElts);
			break;
		case T_AlterTableStmt:
			{
				ListCell   *lc;

				foreach(lc, ((AlterTableStmt *) tree)->cmds)
				{
					AlterTableCmd *cmd = (AlterTableCmd *) lfirst(lc);

					if ((cmd->subtype == AT_AddConstraint || cmd->subtype == AT_AddColumn)
						&& cmd->def != nullptr)
						refuse |= references_audit_relation(list_make1(cmd->def));
				}
				break;
			}
		default:
			break;
	}
	if (refuse)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for the audit log"),
				 errdetail("Only a superuser may attach rules, triggers or foreign keys to the audit schema's tables.")));
	PG_RETURN_VOID();
}

/* ------------------------------------------------------------------------
 * SQL-callable functions.
 */
extern "C" {
PG_FUNCTION_INFO_V1(sensitive_audit_changed);
PG_FUNCTION_INFO_V1(sensitive_audit_enforce_ddl);
PG_FUNCTION_INFO_V1(sensitive_audit_enforce_drop);
PG_FUNCTION_INFO_V1(sensitive_audit_log_guard);
PG_FUNCTION_INFO_V1(sensitive_audit_log_restored);
PG_FUNCTION_INFO_V1(sensitive_audit_guard_drop_extension);
}

/*
 * changed(VARIADIC "any"): arguments come in (old, new) pairs; true if any
 * pair differs in its stored image (NULL differs from any value, NULLs are
 * alike).  Images, not the type's equality: 1.0 and 1.00 are equal
 * numerics, but their recorded texts differ.
 */
struct ChangedArg
{
	int16		typlen;
	bool		typbyval;
};

struct ChangedCache
{
	int			nargs;
	ChangedArg	args[FLEXIBLE_ARRAY_MEMBER];
};

extern "C" Datum
sensitive_audit_changed(PG_FUNCTION_ARGS)
{
	int			nargs = PG_NARGS();
	ChangedCache *cache = (ChangedCache *) fcinfo->flinfo->fn_extra;

	if (cache == nullptr || cache->nargs != nargs)
	{
		if (nargs % 2 != 0 || get_fn_expr_variadic(fcinfo->flinfo))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("sensitive_audit.changed() takes pairs of old and new values")));
		cache = (ChangedCache *) MemoryContextAlloc(fcinfo->flinfo->fn_mcxt,
													offsetof(ChangedCache, args) + sizeof(ChangedArg) * Max(nargs, 1));
		cache->nargs = nargs;
		for (int i = 0; i < nargs; i++)
		{
			Oid			type = get_fn_expr_argtype(fcinfo->flinfo, i);

			if (!OidIsValid(type))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("could not determine the type of argument %d of sensitive_audit.changed()", i + 1)));
			get_typlenbyval(type, &cache->args[i].typlen, &cache->args[i].typbyval);
		}
		fcinfo->flinfo->fn_extra = cache;
	}
	for (int i = 0; i < nargs; i += 2)
	{
		bool		oldnull = PG_ARGISNULL(i);
		bool		newnull = PG_ARGISNULL(i + 1);

		if (oldnull != newnull)
			PG_RETURN_BOOL(true);
		if (oldnull)
			continue;

		if (!datum_image_eq(PG_GETARG_DATUM(i), PG_GETARG_DATUM(i + 1),
							cache->args[i].typbyval, cache->args[i].typlen))
			PG_RETURN_BOOL(true);
	}
	PG_RETURN_BOOL(false);
}

/*
 * ddl_command_end, every command: the invariant (see the top of this file).
 */
extern "C" Datum
sensitive_audit_enforce_ddl(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		sa_called_wrongly("enforce_ddl", "called as an event trigger");
	if (sa_in_own_setup())
		PG_RETURN_VOID();

	EventTriggerData *trigdata = (EventTriggerData *) fcinfo->context;
	List	   *commands = ddl_commands();

	guard_audit_schema(commands);
	handle_command(trigdata->parsetree, commands);
	check_invariant(commands, trigdata->parsetree);
	PG_RETURN_VOID();
}

/*
 * sql_drop: every drop, by any path.
 */
extern "C" Datum
sensitive_audit_enforce_drop(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		sa_called_wrongly("enforce_drop", "called as an event trigger");
	if (sa_in_own_setup())
		PG_RETURN_VOID();

	List	   *dropped = dropped_objects();
	ListCell   *lc;

	/* our own extension going (guard_drop_extension decides whether it may) */
	foreach(lc, dropped)
	{
		DroppedObject *d = (DroppedObject *) lfirst(lc);

		if (d->classid == ExtensionRelationId && d->object_name != nullptr
			&& strcmp(d->object_name, "sensitive_audit") == 0)
			PG_RETURN_VOID();
		if (d->classid == ExtensionRelationId && d->identity != nullptr
			&& strcmp(d->identity, "sensitive_audit") == 0)
			PG_RETURN_VOID();
	}

	List	   *tables = sa_catalog_tables();
	List	   *audited = NIL;	/* qualified names of dropped tables that had capture triggers */
	DropRecords records = {NIL, NIL, NIL};

	foreach(lc, dropped)
	{
		DroppedObject *d = (DroppedObject *) lfirst(lc);

		if (d->classid == RelationRelationId && d->objsubid == 0 && d->schema_name != nullptr
			&& strcmp(d->schema_name, SA_SCHEMA) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("the audit log cannot be dropped"),
					 errdetail("%s belongs to it.", d->identity),
					 errhint("DROP EXTENSION sensitive_audit removes the whole history; see sensitive_audit.allow_drop.")));
		if (d->classid != TriggerRelationId || list_length(d->address) != 3)
			continue;

		const char *schema = (const char *) linitial(d->address);
		const char *table = (const char *) lsecond(d->address);
		const char *tgname = (const char *) lthird(d->address);

		if (schema != nullptr && strcmp(schema, SA_SCHEMA) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("the audit log's guards cannot be dropped"),
					 errdetail("%s keeps the log insert-only.", d->identity)));
		if (tgname == nullptr || !is_capture_trigger_name(tgname) || schema == nullptr || table == nullptr)
			continue;

		Oid			nsp = get_namespace_oid(schema, true);
		Oid			relid = OidIsValid(nsp) ? get_relname_relid(table, nsp) : InvalidOid;

		/* the table stays: its capture must stay too */
		if (OidIsValid(relid) && OidIsValid(sa_tagged_root(relid)))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("capture trigger of an audited table cannot be dropped"),
					 errdetail("Dropping %s would stop auditing.", d->identity),
					 errhint("Use sensitive_audit.untag() first; it is recorded in the log.")));
		audited = lappend(audited, pstrdup(quote_qualified_identifier(schema, table)));
	}

	foreach(lc, dropped)
	{
		DroppedObject *d = (DroppedObject *) lfirst(lc);

		if (d->classid != RelationRelationId || d->schema_name == nullptr || d->object_name == nullptr)
			continue;
		if (d->objsubid == 0)
		{
			bool		tagged = list_member_oid(tables, d->objid);
			bool		had_capture = false;
			ListCell   *lc2;
			const char *q = quote_qualified_identifier(d->schema_name, d->object_name);

			foreach(lc2, audited)
				had_capture |= strcmp((const char *) lfirst(lc2), q) == 0;
			if (tagged || had_capture)
			{
				sa_record_setup("DROP TABLE", d->schema_name, d->object_name, nullptr, nullptr, nullptr);
				records.captured = lappend_oid(records.captured, d->objid);
			}
			if (tagged)
				records.forget = lappend_oid(records.forget, d->objid);
		}
		else if (list_member_oid(tables, d->objid) && list_length(d->address) == 3
				 && lthird(d->address) != nullptr)
		{
			const char *column = (const char *) lthird(d->address);
			ListCell   *lc2;

			foreach(lc2, sa_catalog_columns(d->objid))
			{
				if (strcmp((const char *) lfirst(lc2), column) != 0)
					continue;
				sa_record_setup("DROP COLUMN", d->schema_name, d->object_name, column, nullptr, nullptr);
				records.columns = lappend_oid(records.columns, d->objid);
				records.columns = lappend(records.columns, pstrdup(column));
			}
		}
	}
	if (records.forget != NIL || records.columns != NIL || records.captured != NIL)
		sa_run_in_setup(forget_cb, &records);
	PG_RETURN_VOID();
}

/*
 * Does log_contexts hold a row other than the context of a RESTORE entry?
 * Read below SQL, with a fresh snapshot.
 */
static bool
has_contexts_but_restores(Relation contexts)
{
	Snapshot	snapshot = RegisterSnapshot(GetLatestSnapshot());
	TableScanDesc scan = table_beginscan(contexts, snapshot, 0, nullptr);
	HeapTuple	tuple;
	bool		any = false;

	while (!any && (tuple = heap_getnext(scan, ForwardScanDirection)) != nullptr)
	{
		bool		isnull;
		Datum		op = heap_getattr(tuple, 2, RelationGetDescr(contexts), &isnull);

		any = isnull || strcmp(TextDatumGetCString(op), "RESTORE") != 0;
	}
	table_endscan(scan);
	UnregisterSnapshot(snapshot);
	return any;
}

/* The log's storage table named name, open with lockmode, or NULL. */
static Relation
open_storage(const char *name, LOCKMODE lockmode)
{
	Oid			relid = sa_audit_relid(name);

	return OidIsValid(relid) ? table_open(relid, lockmode) : nullptr;
}

/*
 * The log is insert-only, and inserted into only below SQL: every SQL write
 * is refused, the superuser's included.  Restoring a dump is the exception,
 * and needs no setting: while log_entries is empty its owner may load it and
 * log_contexts, as pg_restore and psql do (a parallel restore may load
 * log_entries first; log_contexts then holds only the context of the
 * RESTORE entry that recorded it, and still loads).  A superuser may also
 * restore into a log
 * that already holds entries by setting sensitive_audit.restoring.  Either
 * way the restore is recorded (log_restored) and restored rows are verified
 * like any others.
 */
extern "C" Datum
sensitive_audit_log_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		sa_called_wrongly("log_guard", "called as a trigger");

	Relation	rel = trigdata->tg_relation;

	/* restores write the storage tables, never the view */
	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) && rel->rd_rel->relkind == RELKIND_RELATION)
	{
		bool		owner = pg_class_ownercheck(RelationGetRelid(rel), GetUserId());
		bool		empty = false;

		if (owner && strcmp(RelationGetRelationName(rel), SA_CONTEXTS) == 0)
		{
			/*
			 * log_contexts loads while log_entries is empty, or after it
			 * when a parallel restore loaded log_entries first: then it
			 * holds only the context of that RESTORE entry.  A share lock
			 * on log_entries, kept until this load commits, orders the two
			 * loads of a parallel restore: this one waits for a load of
			 * log_entries under way, whose RESTORE entry may store a
			 * context this one holds too (the log's trigger then skips the
			 * copy, once it is committed), and one that starts later waits
			 * for this one (and then finds the context stored).
			 */
			Relation	entries = open_storage(SA_ENTRIES, ShareLock);

			empty = entries == nullptr || !sa_has_rows(entries) || !has_contexts_but_restores(rel);
			if (entries != nullptr)
				table_close(entries, NoLock);
		}
		else if (owner)
			empty = !sa_has_rows(rel);
		if (sa_restoring || empty)
		{
			/* restored entries extend chains behind the remembered heads */
			sa_heads_restoring();
			return PointerGetDatum(nullptr);
		}
	}

	const char *what = TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) ? "INSERT"
		: TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ? "UPDATE"
		: TRIGGER_FIRED_BY_DELETE(trigdata->tg_event) ? "DELETE" : "TRUNCATE";

	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("the audit log is insert-only: %s on %s.%s is not allowed",
					what, SA_SCHEMA, RelationGetRelationName(rel)),
			 TRIGGER_FIRED_BY_INSERT(trigdata->tg_event)
			 ? errdetail("Entries are written only by the extension when an audited change commits.")
			 : errdetail("No role, the owner and superusers included, may change recorded history."),
			 TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) && rel->rd_rel->relkind == RELKIND_RELATION
			 ? errhint("A dump of the log loads into an empty log; to restore into one that holds entries, a superuser sets sensitive_audit.restoring = on.")
			 : 0));
	return PointerGetDatum(nullptr);
}

/*
 * AFTER INSERT (statement) on log_entries: only restores insert through
 * SQL, so this records one: a RESTORE entry saying how many entries the
 * statement loaded.  It enters a chain at commit, after what was restored.
 */
extern "C" Datum
sensitive_audit_log_restored(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BY_INSERT(trigdata->tg_event)
		|| !TRIGGER_FIRED_FOR_STATEMENT(trigdata->tg_event) || trigdata->tg_newtable == nullptr)
		sa_called_wrongly("log_restored", "fired AFTER INSERT FOR EACH STATEMENT with a transition table");

	int64		n = tuplestore_tuple_count(trigdata->tg_newtable);

	if (n > 0)
	{
		sa_heads_restoring();
		sa_record_setup("RESTORE", SA_SCHEMA, RelationGetRelationName(trigdata->tg_relation),
						nullptr, nullptr, psprintf(INT64_FORMAT " entries", n));
	}
	return PointerGetDatum(nullptr);
}

/* Does the log hold any entry?  Read below SQL: the caller may not SELECT. */
static bool
log_has_entries(void)
{
	Relation	log = open_storage(SA_ENTRIES, AccessShareLock);
	bool		any = log != nullptr && sa_has_rows(log);

	if (log != nullptr)
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
