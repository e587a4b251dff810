/*
 * capture.cpp — the triggers that turn changes to tagged columns into
 * pending log entries.
 *
 * tag() puts two triggers on an audited table, both ENABLE ALWAYS:
 *   sensitive_audit_capture   AFTER INSERT OR DELETE OR UPDATE OF <tagged>
 *                             FOR EACH ROW;
 *   sensitive_audit_truncate  BEFORE TRUNCATE FOR EACH STATEMENT.
 * The capture trigger's own column list (pg_trigger.tgattr) is the list of
 * tagged columns: it follows renames, is dumped by name, and an UPDATE that
 * names no tagged column never queues the trigger at all, which makes such
 * updates nearly free.  AFTER row triggers see the row as finally written
 * (a BEFORE trigger could log a row another BEFORE trigger then changes).
 *
 * Values are written as canonical text that does not depend on the writer's
 * session: output functions of date/time, interval, float and bytea types
 * read DateStyle, IntervalStyle, TimeZone, extra_float_digits and
 * bytea_output, so for those types (and arrays, ranges, composites and
 * domains that contain them) we pin those settings for the duration of the
 * output call.  money depends on lc_monetary and is refused at tag time.
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
};

/* Per audited relation, built once and dropped on relcache invalidation. */
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

/* Does the text output of this type read session settings? */
bool
type_depends_on_settings(Oid typid, int depth)
{
	if (depth > 32)
		return true;
	typid = getBaseType(typid);
	switch (typid)
	{
		case FLOAT4OID:
		case FLOAT8OID:
		case DATEOID:
		case TIMEOID:
		case TIMETZOID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
		case INTERVALOID:
		case BYTEAOID:
			return true;
		default:
			break;
	}
	Oid			elem = get_element_type(typid);

	if (OidIsValid(elem))
		return type_depends_on_settings(elem, depth + 1);
	switch (get_typtype(typid))
	{
		case TYPTYPE_RANGE:
			return type_depends_on_settings(get_range_subtype(typid), depth + 1);
		case TYPTYPE_MULTIRANGE:
			return type_depends_on_settings(get_range_subtype(get_multirange_range(typid)), depth + 1);
		case TYPTYPE_COMPOSITE:
			{
				TupleDesc	desc = lookup_rowtype_tupdesc(typid, -1);
				bool		dep = false;

				for (int i = 0; i < desc->natts && !dep; i++)
				{
					Form_pg_attribute att = TupleDescAttr(desc, i);

					if (!att->attisdropped)
						dep = type_depends_on_settings(att->atttypid, depth + 1);
				}
				ReleaseTupleDesc(desc);
				return dep;
			}
		default:
			return false;
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
	col->settings_dependent = type_depends_on_settings(att->atttypid, 0);
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

/* The key columns of an index, or false if it has expressions. */
bool
index_key_columns(Relation rel, Oid indexoid, RelationInfo *info)
{
	Relation	index = index_open(indexoid, AccessShareLock);
	int			nkeys = index->rd_index->indnkeyatts;
	bool		ok = true;

	info->keys = (ColumnInfo *) palloc0(sizeof(ColumnInfo) * nkeys);
	for (int i = 0; i < nkeys; i++)
	{
		AttrNumber	attnum = index->rd_index->indkey.values[i];

		if (attnum <= 0)
		{
			ok = false;
			break;
		}
		fill_column(&info->keys[i], rel, attnum);
	}
	info->nkeys = ok ? nkeys : 0;
	index_close(index, AccessShareLock);
	return ok;
}

RelationInfo *
get_relation_info(Relation rel, Trigger *trigger)
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
	info = (RelationInfo *) hash_search(relation_infos, &relid, HASH_ENTER, &found);
	if (found && info->valid)
		return info;
	/*
	 * Entries queued in this transaction point at the old names and type
	 * names: keep them until the transaction ends.
	 */
	if (found && info->cxt != nullptr)
		MemoryContextSetParent(info->cxt, TopTransactionContext);
	info->valid = false;
	info->cxt = AllocSetContextCreate(CacheMemoryContext, "sensitive_audit relation",
									  ALLOCSET_SMALL_SIZES);

	MemoryContext old = MemoryContextSwitchTo(info->cxt);

	info->schema = get_namespace_name(RelationGetNamespace(rel));
	info->relname = pstrdup(RelationGetRelationName(rel));
	info->ncols = trigger->tgnattr;
	info->cols = (ColumnInfo *) palloc0(sizeof(ColumnInfo) * Max(info->ncols, 1));
	for (int i = 0; i < info->ncols; i++)
		fill_column(&info->cols[i], rel, trigger->tgattr[i]);

	/* The row's key: primary key, else replica identity, else tagged values. */
	Oid			pk = RelationGetPrimaryKeyIndex(rel);
	Oid			ri = RelationGetReplicaIndex(rel);

	info->nkeys = 0;
	if (OidIsValid(pk) && index_key_columns(rel, pk, info))
		info->key_source = "primary key";
	else if (OidIsValid(ri) && index_key_columns(rel, ri, info))
		info->key_source = "replica identity";
	else
	{
		info->key_source = "tagged values";
		info->nkeys = info->ncols;
		info->keys = (ColumnInfo *) palloc0(sizeof(ColumnInfo) * Max(info->ncols, 1));
		memcpy(info->keys, info->cols, sizeof(ColumnInfo) * info->ncols);
	}
	qsort(info->keys, info->nkeys, sizeof(ColumnInfo), jsonb_key_cmp);
	MemoryContextSwitchTo(old);
	info->valid = true;
	return info;
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

/* Canonical text of column col in tuple, or NULL; copied into the queue. */
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
	const char *copy = sa_pending_strdup(text, *len);

	pfree(text);
	return copy;
}

/*
 * The row's key as compact JSON text, exactly as jsonb prints it: keys in
 * jsonb order, every value a JSON string holding the canonical text.
 */
static const char *
row_key_text(RelationInfo *info, HeapTuple tuple, TupleDesc desc, int *len)
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
	const char *copy = sa_pending_strdup(buf.data, buf.len);

	pfree(buf.data);
	return copy;
}

static void
queue_entry(RelationInfo *info, ColumnInfo *col, const char *operation,
			const char *key, int keylen,
			const char *oldv, int oldlen, const char *newv, int newlen)
{
	PendingEntry *e = sa_pending_new();

	sa_pending_set_shared(e, PF_OPERATION, operation, (int) strlen(operation));
	sa_pending_set_shared(e, PF_TABLE_SCHEMA, info->schema, (int) strlen(info->schema));
	sa_pending_set_shared(e, PF_TABLE_NAME, info->relname, (int) strlen(info->relname));
	sa_pending_set_shared(e, PF_COLUMN_NAME, col->name, col->namelen);
	sa_pending_set_shared(e, PF_ROW_KEY, key, keylen);
	sa_pending_set_shared(e, PF_ROW_KEY_SOURCE, info->key_source, (int) strlen(info->key_source));
	sa_pending_set_shared(e, PF_OLD_VALUE, oldv, oldlen);
	sa_pending_set_shared(e, PF_NEW_VALUE, newv, newlen);
	sa_pending_set_shared(e, PF_VALUE_TYPE, col->type_name, (int) strlen(col->type_name));
	sa_pending_fill_who(e);
}

/* Queue one entry per tagged column of a row that was inserted or deleted. */
static void
capture_whole_row(RelationInfo *info, HeapTuple tuple, TupleDesc desc, const char *operation,
				  bool is_new)
{
	int			keylen;
	const char *key = row_key_text(info, tuple, desc, &keylen);

	for (int i = 0; i < info->ncols; i++)
	{
		ColumnInfo *col = &info->cols[i];
		int			len;
		const char *text = column_text(col, tuple, desc, &len);

		if (is_new)
			queue_entry(info, col, operation, key, keylen, nullptr, 0, text, len);
		else
			queue_entry(info, col, operation, key, keylen, text, len, nullptr, 0);
	}
}

extern "C" {
PG_FUNCTION_INFO_V1(sensitive_audit_capture);
PG_FUNCTION_INFO_V1(sensitive_audit_capture_truncate);
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
	RelationInfo *info = get_relation_info(rel, trigdata->tg_trigger);

	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		capture_whole_row(info, trigdata->tg_trigtuple, desc, "INSERT", true);
	else if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
		capture_whole_row(info, trigdata->tg_trigtuple, desc, "DELETE", false);
	else if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		HeapTuple	oldtup = trigdata->tg_trigtuple;
		HeapTuple	newtup = trigdata->tg_newtuple;
		const char *key = nullptr;
		int			keylen = 0;

		for (int i = 0; i < info->ncols; i++)
		{
			ColumnInfo *col = &info->cols[i];
			bool		oldnull,
						newnull;
			Datum		oldv = heap_getattr(oldtup, col->attnum, desc, &oldnull);
			Datum		newv = heap_getattr(newtup, col->attnum, desc, &newnull);

			/* only columns whose value really changed */
			if (oldnull && newnull)
				continue;
			if (!oldnull && !newnull &&
				datum_image_eq(oldv, newv, col->typbyval, col->typlen))
				continue;

			if (key == nullptr)
				key = row_key_text(info, oldtup, desc, &keylen);

			int			oldlen,
						newlen;
			const char *oldtext = column_text(col, oldtup, desc, &oldlen);
			const char *newtext = column_text(col, newtup, desc, &newlen);

			queue_entry(info, col, "UPDATE", key, keylen, oldtext, oldlen, newtext, newlen);
		}
	}
	else
		sa_called_wrongly("capture", "fired by INSERT, UPDATE or DELETE");

	return PointerGetDatum(nullptr);
}

/* Queue TRUNCATE entries for every visible row of one table with storage. */
static void
capture_truncated_rows(Relation rel, Trigger *trigger)
{
	TupleDesc	desc = RelationGetDescr(rel);
	Snapshot	snapshot = GetActiveSnapshot();
	TableScanDesc scan = table_beginscan(rel, snapshot, 0, nullptr);
	HeapTuple	tuple;
	MemoryContext rowcxt = AllocSetContextCreate(CurrentMemoryContext, "sensitive_audit truncate row",
												 ALLOCSET_DEFAULT_SIZES);

	while ((tuple = heap_getnext(scan, ForwardScanDirection)) != nullptr)
	{
		MemoryContext old = MemoryContextSwitchTo(rowcxt);

		/* the relation info may be rebuilt meanwhile; look it up per row */
		capture_whole_row(get_relation_info(rel, trigger), tuple, desc, "TRUNCATE", false);
		MemoryContextSwitchTo(old);
		MemoryContextReset(rowcxt);
	}
	table_endscan(scan);
	MemoryContextDelete(rowcxt);
}

/* Our capture trigger on rel, if any. */
static Trigger *
find_capture_trigger(Relation rel)
{
	TriggerDesc *td = rel->trigdesc;

	if (td == nullptr)
		return nullptr;
	for (int i = 0; i < td->numtriggers; i++)
	{
		if (strcmp(td->triggers[i].tgname, SA_CAPTURE_TRIGGER) == 0)
			return &td->triggers[i];
	}
	return nullptr;
}

/*
 * BEFORE TRUNCATE: record the tagged values of every row about to go.  On a
 * partitioned table the trigger is on the parent only (statement triggers
 * are not cloned), so the parent's trigger reads every leaf partition; a
 * leaf truncated on its own has a trigger of its own (see setup.cpp), which
 * stays silent when the parent is being truncated in the same statement.
 */
extern "C" Datum
sensitive_audit_capture_truncate(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event)
		|| !TRIGGER_FIRED_BEFORE(trigdata->tg_event))
		sa_called_wrongly("capture_truncate", "fired BEFORE TRUNCATE");

	Relation	rel = trigdata->tg_relation;

	if (rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE)
		return PointerGetDatum(nullptr);	/* each leaf's own trigger fires */

	Trigger    *capture = find_capture_trigger(rel);

	if (capture != nullptr)
		capture_truncated_rows(rel, capture);
	return PointerGetDatum(nullptr);
}

/* Is typid, or anything it contains, a type whose text we cannot pin? */
bool
sa_type_supported(Oid typid, Oid *bad_type)
{
	Oid			base = getBaseType(typid);

	if (base == CASHOID)
	{
		*bad_type = typid;
		return false;
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
	return true;
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

void
sa_capture_init(void)
{
	CacheRegisterRelcacheCallback(invalidate_relation_info, (Datum) 0);
}
