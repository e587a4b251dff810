/*
 * capture.cpp — the triggers that turn changes to tagged columns into
 * pending log entries.
 *
 * The capture triggers (setup.cpp makes them, from the catalog of what is
 * tagged) are AFTER ROW triggers, so they see the row as finally written:
 * whatever BEFORE triggers or generated columns did to it.  The UPDATE
 * trigger fires only when a tagged or key column was set or changed (its
 * column list, or its WHEN clause on a table with BEFORE UPDATE triggers;
 * see setup.cpp); here each tagged column is compared and only those whose
 * value really changed are recorded.  A change of
 * the row key is recorded as a REKEY entry, so that each key's history
 * stays true.  capture() records only from the canonical triggers: any other
 * trigger that calls it gets an error, so nobody mints entries with it, and
 * the columns it records come from the catalog, never from the trigger.
 *
 * Values are written as canonical text that does not depend on the writer's
 * session: output functions of date/time, interval, float and bytea types
 * read DateStyle, IntervalStyle, TimeZone, extra_float_digits and
 * bytea_output, so for those types (and arrays, ranges, composites and
 * domains that contain them) we pin those settings for the duration of the
 * output call.  money depends on lc_monetary and is refused at tag time.
 *
 * event_time is the wall clock (clock_timestamp()) when the trigger ran for
 * the row: for AFTER ROW triggers, at the end of the statement that made the
 * change, so never before the change itself.
 */
#include "sensitive_audit.hpp"

namespace {

/* What we need to print one column. */
struct ColumnInfo
{
	AttrNumber	attnum;
	char	   *name;
	int			namelen;
	FmgrInfo	out;
	bool		settings_dependent;
	char	   *type_name;
	int16		typlen;
	bool		typbyval;
	SaPolicy   *policy;			/* its guardrail, or nullptr */
	SaProtect  *protect;		/* what the log keeps of its values; nullptr: plain */
};

/*
 * Per audited relation, built once and dropped on relcache invalidation
 * (any trigger change, tag() and untag() among them) and on renames of
 * schemas and types.
 */
#define SA_MAX_TRIGGERS 4
struct RelationInfo
{
	Oid			relid;			/* hash key */
	bool		valid;
	MemoryContext cxt;
	char	   *schema;
	char	   *relname;
	int			ncols;
	ColumnInfo *cols;			/* tagged columns, attnum order */
	int			nkeys;
	ColumnInfo *keys;			/* row key columns, sorted as jsonb sorts keys */
	const char *key_source;
	bool		key_is_values;	/* no primary key or replica identity */
	bool		has_erasable;	/* a column's values are kept in erasable_values */
	Bitmapset  *tagged_attnums;
	Bitmapset  *key_attnums;
	int			nchecked;		/* triggers found canonical, by OID */
	Oid			checked[SA_MAX_TRIGGERS];
};

HTAB	   *relation_infos = nullptr;
pg_tz	   *utc_tz = nullptr;

void
invalidate_relation_info(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS status;
	RelationInfo *info;

	if (relation_infos == nullptr)
		return;
	hash_seq_init(&status, relation_infos);
	while ((info = (RelationInfo *) hash_seq_search(&status)) != nullptr)
	{
		if (relid == InvalidOid || info->relid == relid)
			info->valid = false;
	}
}

/*
 * Does the text output of this type read session settings?  Only the types
 * known not to are printed without pinning them: date/time, interval,
 * float, bytea, the geometric types, contrib's cube and any other type whose
 * output prints a float may read DateStyle, IntervalStyle, TimeZone,
 * extra_float_digits or bytea_output, and containers (arrays, ranges,
 * composites, domains) print their elements.
 */
bool
type_depends_on_settings(Oid typid)
{
	switch (getBaseType(typid))
	{
		case BOOLOID:
		case CHAROID:
		case NAMEOID:
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case OIDOID:
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:
		case NUMERICOID:
		case UUIDOID:
		case INETOID:
		case CIDROID:
		case MACADDROID:
		case JSONOID:
		case JSONBOID:
		case BITOID:
		case VARBITOID:
			return false;
		default:
			return true;
	}
}

void
fill_column(ColumnInfo *col, Relation rel, AttrNumber attnum)
{
	Form_pg_attribute att = TupleDescAttr(RelationGetDescr(rel), attnum - 1);
	Oid			outfunc;
	bool		isvarlena;

	col->attnum = attnum;
	col->name = pstrdup(NameStr(att->attname));
	col->namelen = (int) strlen(col->name);
	getTypeOutputInfo(att->atttypid, &outfunc, &isvarlena);
	fmgr_info_cxt(outfunc, &col->out, CurrentMemoryContext);
	col->settings_dependent = type_depends_on_settings(att->atttypid);
	col->type_name = sa_type_name(att->atttypid, att->atttypmod);
	col->typlen = att->attlen;
	col->typbyval = att->attbyval;
}

/* jsonb orders object keys by length, then bytewise. */
int
jsonb_key_cmp(const void *a, const void *b)
{
	const ColumnInfo *ca = (const ColumnInfo *) a;
	const ColumnInfo *cb = (const ColumnInfo *) b;

	if (ca->namelen != cb->namelen)
		return ca->namelen < cb->namelen ? -1 : 1;
	return memcmp(ca->name, cb->name, ca->namelen);
}

/* ColumnInfos for a set of attribute numbers, in attnum order. */
ColumnInfo *
columns_of(Relation rel, Bitmapset *attnums, int *n)
{
	ColumnInfo *cols = (ColumnInfo *) palloc0(sizeof(ColumnInfo) * Max(bms_num_members(attnums), 1));
	int			attnum = -1;

	*n = 0;
	while ((attnum = bms_next_member(attnums, attnum)) >= 0)
		fill_column(&cols[(*n)++], rel, (AttrNumber) attnum);
	return cols;
}

/*
 * Build the relation's info from the catalog of what is tagged.  It is
 * built in a context of the transaction's and moved to the cache only when
 * complete, so an error half way leaves no half-built entry behind.
 */
RelationInfo *
get_relation_info(Relation rel)
{
	Oid			relid = RelationGetRelid(rel);
	bool		found;
	RelationInfo *info;

	if (relation_infos == nullptr)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(RelationInfo);
		ctl.hcxt = CacheMemoryContext;
		relation_infos = hash_create("sensitive_audit relation info", 64, &ctl,
									 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	info = (RelationInfo *) hash_search(relation_infos, &relid, HASH_FIND, &found);
	if (found && info->valid)
		return info;

	RelationInfo fresh;
	MemoryContext cxt = AllocSetContextCreate(TopTransactionContext, "sensitive_audit relation",
											  ALLOCSET_SMALL_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	Oid			root = sa_tagged_root(relid);

	if (!OidIsValid(root))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("relation \"%s\" has capture triggers but no tagged columns",
						RelationGetRelationName(rel)),
				 errdetail("sensitive_audit.tag_info, the catalog of what is tagged, does not list it."),
				 errhint("If this database was updated from sensitive_audit 1.0, run ALTER EXTENSION sensitive_audit UPDATE.")));

	memset(&fresh, 0, sizeof(fresh));
	fresh.relid = relid;
	fresh.cxt = cxt;
	fresh.schema = get_namespace_name(RelationGetNamespace(rel));
	fresh.relname = pstrdup(RelationGetRelationName(rel));
	fresh.tagged_attnums = sa_tagged_attnums(rel, sa_catalog_columns(root));
	fresh.cols = columns_of(rel, fresh.tagged_attnums, &fresh.ncols);
	for (int i = 0; i < fresh.ncols; i++)
	{
		fresh.cols[i].policy = sa_policy_load(root, fresh.cols[i].name);
		fresh.cols[i].protect = sa_protect_load(root, fresh.cols[i].name);
		fresh.has_erasable |= sa_protect_is_erasable(fresh.cols[i].protect);
	}

	/* The row's key: primary key, else replica identity, else tagged values. */
	fresh.key_attnums = sa_key_attnums(rel, &fresh.key_source);
	if (fresh.key_attnums != nullptr)
	{
		fresh.keys = columns_of(rel, fresh.key_attnums, &fresh.nkeys);
	}
	else
	{
		/*
		 * Known by its tagged values, but not by protected ones, which would
		 * show in clear (protect() refuses such a table; its key may have
		 * been dropped since).
		 */
		fresh.key_source = "tagged values";
		fresh.key_is_values = true;
		fresh.keys = (ColumnInfo *) palloc0(sizeof(ColumnInfo) * Max(fresh.ncols, 1));
		fresh.nkeys = 0;
		for (int i = 0; i < fresh.ncols; i++)
			if (fresh.cols[i].protect == nullptr)
				fresh.keys[fresh.nkeys++] = fresh.cols[i];
	}
	qsort(fresh.keys, fresh.nkeys, sizeof(ColumnInfo), jsonb_key_cmp);
	MemoryContextSwitchTo(old);

	/*
	 * Complete: into the cache.  Entries queued in this transaction point at
	 * the old names and type names: keep the old context until the
	 * transaction ends.
	 */
	info = (RelationInfo *) hash_search(relation_infos, &relid, HASH_ENTER, &found);
	if (found && info->cxt != nullptr)
		MemoryContextSetParent(info->cxt, TopTransactionContext);
	MemoryContextSetParent(cxt, CacheMemoryContext);
	*info = fresh;
	info->valid = true;
	return info;
}

/*
 * Refuse to record from anything but a canonical capture trigger: a
 * trigger of the owner's that calls capture() must neither mint entries nor
 * stand in for the real one.
 */
void
check_trigger(RelationInfo *info, Relation rel, const Trigger *trigger)
{
	for (int i = 0; i < info->nchecked; i++)
		if (info->checked[i] == trigger->tgoid)
			return;

	const char *problem;
	SaTriggerState state = sa_trigger_problem(trigger, info->tagged_attnums, info->key_attnums,
											  sa_has_before_update(rel), &problem);

	if (state == SA_TRIGGER_NOT_OURS)
		problem = "Only the capture triggers sensitive_audit makes may call it.";
	if (state == SA_TRIGGER_WRONG && sa_is_release_1_0_trigger(trigger)
		&& trigger->tgenabled == TRIGGER_FIRES_ALWAYS && sa_extension_version_is("1.0"))
		state = SA_TRIGGER_CANONICAL;	/* until ALTER EXTENSION ... UPDATE */
	if (state != SA_TRIGGER_CANONICAL && state != SA_TRIGGER_STALE_KEY)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("sensitive_audit refuses to record from trigger \"%s\" on \"%s\"",
						trigger->tgname, RelationGetRelationName(rel)),
				 errdetail_internal("%s", problem),
				 errhint("Tag and untag columns with sensitive_audit.tag() and untag(); they make the capture triggers.")));
	if (info->nchecked < SA_MAX_TRIGGERS)
		info->checked[info->nchecked++] = trigger->tgoid;
}

}							/* namespace */

/*
 * Canonical text of a non-null value.  For types whose output reads session
 * settings, pin them to fixed values for the call and put them back even if
 * the output function fails.
 */
static char *
canonical_text(ColumnInfo *col, Datum value)
{
	if (!col->settings_dependent)
		return OutputFunctionCall(&col->out, value);

	int			save_datestyle = DateStyle;
	int			save_dateorder = DateOrder;
	int			save_intervalstyle = IntervalStyle;
	int			save_float_digits = extra_float_digits;
	int			save_bytea_output = bytea_output;
	pg_tz	   *save_tz = session_timezone;
	char	   *volatile result = nullptr;

	if (utc_tz == nullptr)
		utc_tz = pg_tzset("UTC");
	PG_TRY();
	{
		DateStyle = USE_XSD_DATES;
		DateOrder = DATEORDER_YMD;
		IntervalStyle = INTSTYLE_ISO_8601;
		extra_float_digits = 1;
		bytea_output = BYTEA_OUTPUT_HEX;
		session_timezone = utc_tz;
		result = OutputFunctionCall(&col->out, value);
	}
	PG_FINALLY();
	{
		DateStyle = save_datestyle;
		DateOrder = save_dateorder;
		IntervalStyle = save_intervalstyle;
		extra_float_digits = save_float_digits;
		bytea_output = save_bytea_output;
		session_timezone = save_tz;
	}
	PG_END_TRY();
	return result;
}

/* Canonical text of column col in tuple, or NULL; palloc'd. */
static const char *
column_text(ColumnInfo *col, HeapTuple tuple, TupleDesc desc, int *len)
{
	bool		isnull;
	Datum		value = heap_getattr(tuple, col->attnum, desc, &isnull);

	if (isnull)
	{
		*len = 0;
		return nullptr;
	}
	char	   *text = canonical_text(col, value);

	*len = (int) strlen(text);
	return text;
}

/*
 * What an entry keeps of column col's value in tuple: its canonical text,
 * or for a protected column the protected form (key: the row key, under
 * which an erasable value is kept).
 */
static const char *
stored_text(RelationInfo *info, ColumnInfo *col, HeapTuple tuple, TupleDesc desc, const char *key,
			int *len)
{
	const char *text = column_text(col, tuple, desc, len);

	if (text == nullptr || col->protect == nullptr)
		return text;
	return sa_protect_value(col->protect, info->relid, info->schema, info->relname, key, text, *len, len);
}

/*
 * The row's key as compact JSON text, exactly as jsonb prints it: keys in
 * jsonb order, every value a JSON string holding the canonical text.
 */
static char *
row_key_json(RelationInfo *info, HeapTuple tuple, TupleDesc desc, int *len)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (int i = 0; i < info->nkeys; i++)
	{
		ColumnInfo *key = &info->keys[i];
		bool		isnull;
		Datum		value = heap_getattr(tuple, key->attnum, desc, &isnull);

		if (i > 0)
			appendStringInfoString(&buf, ", ");
		escape_json(&buf, key->name);
		appendStringInfoString(&buf, ": ");
		if (isnull)
			appendStringInfoString(&buf, "null");
		else
		{
			char	   *text = canonical_text(key, value);

			escape_json(&buf, text);
			pfree(text);
		}
	}
	appendStringInfoChar(&buf, '}');
	*len = buf.len;
	return buf.data;
}

static const char *
row_key_text(RelationInfo *info, HeapTuple tuple, TupleDesc desc, int *len)
{
	return row_key_json(info, tuple, desc, len);
}

/*
 * For reconcile(): the row key (as jsonb prints it) and the canonical text
 * of each tagged column of one row of rel, palloc'd; values[i] is NULL for
 * SQL NULL.  Returns the number of tagged columns.
 */
int
sa_row_texts(Relation rel, HeapTuple tuple, char **key, const char ***columns, char ***values)
{
	RelationInfo *info = get_relation_info(rel);
	TupleDesc	desc = RelationGetDescr(rel);
	int			keylen;

	*key = row_key_json(info, tuple, desc, &keylen);
	*columns = (const char **) palloc(sizeof(char *) * Max(info->ncols, 1));
	*values = (char **) palloc(sizeof(char *) * Max(info->ncols, 1));
	for (int i = 0; i < info->ncols; i++)
	{
		bool		isnull;
		Datum		value = heap_getattr(tuple, info->cols[i].attnum, desc, &isnull);

		(*columns)[i] = pstrdup(info->cols[i].name);
		(*values)[i] = isnull ? nullptr : canonical_text(&info->cols[i], value);
	}
	return info->ncols;
}

/* Queue one entry; the queue copies what it needs of the texts. */
static void
queue_entry(RelationInfo *info, ColumnInfo *col, const char *operation, TimestampTz when,
			const char *key, int keylen,
			const char *oldv, int oldlen, const char *newv, int newlen)
{
	PendingEntry e;

	sa_pending_init(&e, when);
	if (col != nullptr && col->protect != nullptr)
		e.format = SA_FORMAT_PROTECTED;
	sa_pending_set_shared(&e, PF_OPERATION, operation, (int) strlen(operation));
	sa_pending_set_shared(&e, PF_TABLE_SCHEMA, info->schema, (int) strlen(info->schema));
	sa_pending_set_shared(&e, PF_TABLE_NAME, info->relname, (int) strlen(info->relname));
	if (col != nullptr)
		sa_pending_set_shared(&e, PF_COLUMN_NAME, col->name, col->namelen);
	sa_pending_set_shared(&e, PF_ROW_KEY, key, keylen);
	sa_pending_set_shared(&e, PF_ROW_KEY_SOURCE, info->key_source, (int) strlen(info->key_source));
	sa_pending_set_shared(&e, PF_OLD_VALUE, oldv, oldlen);
	sa_pending_set_shared(&e, PF_NEW_VALUE, newv, newlen);
	if (col != nullptr)
		sa_pending_set_shared(&e, PF_VALUE_TYPE, col->type_name, (int) strlen(col->type_name));
	sa_pending_fill_who(&e);
	sa_pending_add(&e);
}

/* Hold one changed column of a row to its guardrail. */
static inline void
check_policy(RelationInfo *info, ColumnInfo *col, const char *operation, const char *key, int keylen)
{
	if (col->policy == nullptr)
		return;

	SaPolicyRow row = {info->schema, info->relname, operation, key, keylen};

	sa_policy_check(col->policy, &row);
}

/* Queue one entry per tagged column of a row that was inserted or deleted. */
static void
capture_whole_row(RelationInfo *info, HeapTuple tuple, TupleDesc desc, const char *operation,
				  bool is_new)
{
	int			keylen;
	const char *key = row_key_text(info, tuple, desc, &keylen);
	TimestampTz now = GetCurrentTimestamp();
	/* what an owner records (BASELINE, ATTACH) is not a change of data */
	bool		held = strcmp(operation, "INSERT") == 0 || strcmp(operation, "DELETE") == 0
		|| strcmp(operation, "TRUNCATE") == 0;

	for (int i = 0; i < info->ncols; i++)
	{
		ColumnInfo *col = &info->cols[i];
		int			len;

		if (held)
			check_policy(info, col, operation, key, keylen);

		const char *text = stored_text(info, col, tuple, desc, key, &len);

		if (is_new)
			queue_entry(info, col, operation, now, key, keylen, nullptr, 0, text, len);
		else
			queue_entry(info, col, operation, now, key, keylen, text, len, nullptr, 0);
	}
}

extern "C" {
PG_FUNCTION_INFO_V1(sensitive_audit_capture);
PG_FUNCTION_INFO_V1(sensitive_audit_capture_truncate);
}

/* Did any of the columns differ between the two tuples? */
static bool
columns_differ(ColumnInfo *cols, int n, HeapTuple a, HeapTuple b, TupleDesc desc)
{
	for (int i = 0; i < n; i++)
	{
		bool		anull,
					bnull;
		Datum		av = heap_getattr(a, cols[i].attnum, desc, &anull);
		Datum		bv = heap_getattr(b, cols[i].attnum, desc, &bnull);

		if (anull != bnull)
			return true;
		if (!anull && !datum_image_eq(av, bv, cols[i].typbyval, cols[i].typlen))
			return true;
	}
	return false;
}

static void
capture_update(RelationInfo *info, HeapTuple oldtup, HeapTuple newtup, TupleDesc desc)
{
	const char *key = nullptr;
	int			keylen = 0;
	TimestampTz now = GetCurrentTimestamp();

	/*
	 * A new row key: the row's history goes on under the new key, and a
	 * REKEY entry (row_key: the old key; old_value, new_value: both keys)
	 * says so.  Without a key of its own a row is known by its tagged
	 * values, whose changes are recorded anyway.
	 */
	if (!info->key_is_values && columns_differ(info->keys, info->nkeys, oldtup, newtup, desc))
	{
		int			newkeylen;
		const char *newkey = row_key_text(info, newtup, desc, &newkeylen);

		key = row_key_text(info, oldtup, desc, &keylen);
		queue_entry(info, nullptr, "REKEY", now, key, keylen, key, keylen, newkey, newkeylen);
		if (info->has_erasable)
			sa_protect_rekey(info->relid, key, newkey);
		key = newkey;
		keylen = newkeylen;
	}

	for (int i = 0; i < info->ncols; i++)
	{
		ColumnInfo *col = &info->cols[i];

		/* only columns whose value really changed */
		if (!columns_differ(col, 1, oldtup, newtup, desc))
			continue;
		if (key == nullptr)
			key = row_key_text(info, oldtup, desc, &keylen);
		check_policy(info, col, "UPDATE", key, keylen);

		int			oldlen,
					newlen;
		const char *oldtext = stored_text(info, col, oldtup, desc, key, &oldlen);
		const char *newtext = stored_text(info, col, newtup, desc, key, &newlen);

		queue_entry(info, col, "UPDATE", now, key, keylen, oldtext, oldlen, newtext, newlen);
	}
}

extern "C" Datum
sensitive_audit_capture(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		sa_called_wrongly("capture", "called as a trigger");
	if (!TRIGGER_FIRED_AFTER(trigdata->tg_event) || !TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		sa_called_wrongly("capture", "fired AFTER, FOR EACH ROW");

	Relation	rel = trigdata->tg_relation;
	TupleDesc	desc = RelationGetDescr(rel);
	RelationInfo *info = get_relation_info(rel);

	check_trigger(info, rel, trigdata->tg_trigger);
	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		capture_whole_row(info, trigdata->tg_trigtuple, desc, "INSERT", true);
	else if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
		capture_whole_row(info, trigdata->tg_trigtuple, desc, "DELETE", false);
	else if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		capture_update(info, trigdata->tg_trigtuple, trigdata->tg_newtuple, desc);
	else
		sa_called_wrongly("capture", "fired by INSERT, UPDATE or DELETE");

	return PointerGetDatum(nullptr);
}

/*
 * Queue one entry per tagged column of every row of rel (a table with
 * storage).  The snapshot is taken now, not the statement's: TRUNCATE calls
 * this once it holds its lock, and must record the rows committed while it
 * waited for it, which are the rows it removes.
 */
static void
capture_all_rows(Relation rel, const char *operation, bool as_new)
{
	TupleDesc	desc = RelationGetDescr(rel);
	Snapshot	snapshot = RegisterSnapshot(GetLatestSnapshot());
	TableScanDesc scan = table_beginscan(rel, snapshot, 0, nullptr);
	HeapTuple	tuple;
	MemoryContext rowcxt = AllocSetContextCreate(CurrentMemoryContext, "sensitive_audit row",
												 ALLOCSET_DEFAULT_SIZES);

	while ((tuple = heap_getnext(scan, ForwardScanDirection)) != nullptr)
	{
		MemoryContext old = MemoryContextSwitchTo(rowcxt);

		/* the relation info may be rebuilt meanwhile; look it up per row */
		capture_whole_row(get_relation_info(rel), tuple, desc, operation, as_new);
		MemoryContextSwitchTo(old);
		MemoryContextReset(rowcxt);
		CHECK_FOR_INTERRUPTS();
	}
	table_endscan(scan);
	UnregisterSnapshot(snapshot);
	MemoryContextDelete(rowcxt);
}

/*
 * Record every row of rel and its partitions (ATTACH PARTITION of a table
 * that holds rows: they become rows of a tagged table).
 */
void
sa_capture_rows(Relation rel, const char *operation, bool as_new)
{
	ListCell   *lc;

	foreach(lc, find_all_inheritors(RelationGetRelid(rel), AccessShareLock, nullptr))
	{
		Relation	r = table_open(lfirst_oid(lc), NoLock);

		if (RELKIND_HAS_STORAGE(r->rd_rel->relkind))
			capture_all_rows(r, operation, as_new);
		table_close(r, NoLock);
	}
}

/*
 * BEFORE TRUNCATE: record the tagged values of every row about to go.  A
 * TRUNCATE of a partitioned table fires the trigger of each partition it
 * empties (setup.cpp gives every partition one), so the parent's own stays
 * silent.
 */
extern "C" Datum
sensitive_audit_capture_truncate(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event)
		|| !TRIGGER_FIRED_BEFORE(trigdata->tg_event))
		sa_called_wrongly("capture_truncate", "fired BEFORE TRUNCATE");

	Relation	rel = trigdata->tg_relation;
	RelationInfo *info = get_relation_info(rel);

	check_trigger(info, rel, trigdata->tg_trigger);
	if (rel->rd_rel->relkind != RELKIND_PARTITIONED_TABLE)
		capture_all_rows(rel, "TRUNCATE", false);
	return PointerGetDatum(nullptr);
}

/*
 * Is typid, or anything it contains, a type whose text we cannot pin?
 * money reads lc_monetary; the reg* types that print a name qualified only
 * when it is not visible read search_path.
 */
bool
sa_type_supported(Oid typid, Oid *bad_type)
{
	Oid			base = getBaseType(typid);

	switch (base)
	{
		case CASHOID:
		case REGCLASSOID:
		case REGTYPEOID:
		case REGPROCOID:
		case REGPROCEDUREOID:
		case REGOPEROID:
		case REGOPERATOROID:
		case REGCONFIGOID:
		case REGDICTIONARYOID:
		case REGCOLLATIONOID:
			*bad_type = base;
			return false;
		default:
			break;
	}

	Oid			elem = get_element_type(base);

	if (OidIsValid(elem))
		return sa_type_supported(elem, bad_type);
	if (get_typtype(base) == TYPTYPE_COMPOSITE)
	{
		TupleDesc	desc = lookup_rowtype_tupdesc(base, -1);
		bool		ok = true;

		for (int i = 0; i < desc->natts && ok; i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, i);

			if (!att->attisdropped)
				ok = sa_type_supported(att->atttypid, bad_type);
		}
		ReleaseTupleDesc(desc);
		return ok;
	}
	if (get_typtype(base) == TYPTYPE_RANGE)
		return sa_type_supported(get_range_subtype(base), bad_type);
	if (get_typtype(base) == TYPTYPE_MULTIRANGE)
		return sa_type_supported(get_multirange_range(base), bad_type);
	return true;
}

/*
 * Does a value of type typid contain a value of type target: is it target,
 * or a domain, array, range, multirange or composite built on it?
 */
bool
sa_type_contains(Oid typid, Oid target)
{
	for (int depth = 0; depth < 64 && OidIsValid(typid); depth++)
	{
		if (typid == target)
			return true;

		char		typtype = get_typtype(typid);
		Oid			elem = get_element_type(typid);

		if (OidIsValid(elem))
			typid = elem;
		else if (typtype == TYPTYPE_DOMAIN)
		{
			/* one level at a time: the target may be a domain in between */
			HeapTuple	tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(typid));

			if (!HeapTupleIsValid(tup))
				return false;
			typid = ((Form_pg_type) GETSTRUCT(tup))->typbasetype;
			ReleaseSysCache(tup);
		}
		else if (typtype == TYPTYPE_RANGE)
			typid = get_range_subtype(typid);
		else if (typtype == TYPTYPE_MULTIRANGE)
			typid = get_multirange_range(typid);
		else if (typtype == TYPTYPE_COMPOSITE)
		{
			TupleDesc	desc = lookup_rowtype_tupdesc(typid, -1);
			bool		found = false;

			for (int i = 0; i < desc->natts && !found; i++)
			{
				Form_pg_attribute att = TupleDescAttr(desc, i);

				if (!att->attisdropped)
					found = sa_type_contains(att->atttypid, target);
			}
			ReleaseTupleDesc(desc);
			return found;
		}
		else
			return false;
	}
	return false;
}

/*
 * The type's name as recorded in value_type: schema-qualified whatever the
 * search_path, except for built-in types, which read as SQL spells them
 * ("numeric(10,2)", "timestamp with time zone", "text[]").
 */
char *
sa_type_name(Oid typid, int32 typmod)
{
	char	   *name = format_type_extended(typid, typmod,
											(typmod >= 0 ? FORMAT_TYPE_TYPEMOD_GIVEN : 0)
											| FORMAT_TYPE_FORCE_QUALIFY);
	const char *prefix = "pg_catalog.";

	if (strncmp(name, prefix, strlen(prefix)) == 0)
		return pstrdup(name + strlen(prefix));
	return name;
}

/* A schema or type renamed: every relation's names may be stale. */
static void
invalidate_all_relation_info(Datum arg, int cacheid, uint32 hashvalue)
{
	invalidate_relation_info(arg, InvalidOid);
}

void
sa_capture_init(void)
{
	CacheRegisterRelcacheCallback(invalidate_relation_info, (Datum) 0);
	/* entries name schemas and types: a rename shows in the next ones */
	CacheRegisterSyscacheCallback(NAMESPACEOID, invalidate_all_relation_info, (Datum) 0);
	CacheRegisterSyscacheCallback(TYPEOID, invalidate_all_relation_info, (Datum) 0);
}

/*
 * The canonical text capture records for a value of relid's column given as
 * text (read through the column's type, as an INSERT would), palloc'd.
 */
char *
sa_canonical_from_text(Oid relid, const char *column, const char *text)
{
	Relation	rel = table_open(relid, AccessShareLock);
	AttrNumber	attnum = get_attnum(relid, column);

	if (attnum == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of \"%s\" does not exist", column, RelationGetRelationName(rel))));

	Form_pg_attribute att = TupleDescAttr(RelationGetDescr(rel), attnum - 1);
	ColumnInfo	col;
	Oid			infunc;
	Oid			ioparam;

	memset(&col, 0, sizeof(col));
	fill_column(&col, rel, attnum);
	getTypeInputInfo(att->atttypid, &infunc, &ioparam);

	/* a candidate is a secret: an input error must not repeat it (nor reach the server log) */
	MemoryContext cxt = CurrentMemoryContext;
	volatile bool bad = false;
	Datum		value = (Datum) 0;

	PG_TRY();
	{
		value = OidInputFunctionCall(infunc, pstrdup(text), ioparam, att->atttypmod);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		FlushErrorState();
		bad = true;
	}
	PG_END_TRY();
	if (bad)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("the value given is not a valid value of column \"%s\" (type %s)", column, col.type_name)));

	char	   *result = canonical_text(&col, value);

	table_close(rel, AccessShareLock);
	return result;
}
