/*
 * reconcile.cpp — cross-checking a tagged table against its history.
 *
 * sensitive_audit.reconcile(tbl) (SQL, in the install script) joins two
 * streams made here:
 *   _current_values(tbl)  every row's key and tagged values as they are now,
 *                         in the canonical text capture records;
 *   _logged_values(tbl)   every entry of the table's history that sets or
 *                         clears a tagged value, under the row key it
 *                         belongs to now: a REKEY entry moves what came
 *                         before it to the new key.
 * The SQL side keeps the latest entry per (row key, column) and reports
 * where it and the current value disagree.  Both streams go through
 * tuplestores and the executor's sorts and joins, which spill to disk past
 * work_mem: memory stays bounded whatever the table's size; only the table's
 * REKEY entries are held in memory.
 *
 * sensitive_audit.baseline(tbl) records the current values of every row as
 * BASELINE entries, for a table that held rows before it was tagged.
 */
#include "sensitive_audit.hpp"

namespace {

/* reconcile() and baseline() take a tagged table itself, not a partition. */
void
require_tagged(Oid relid)
{
	if (sa_tagged_root(relid) != relid)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" is not a tagged table", get_rel_name(relid)),
				 errhint("Tag its columns with sensitive_audit.tag() first.")));
}

/* Who may see values: SELECT on the table, and on the log for the history. */
void
check_read(Oid relid, bool log_too)
{
	AclResult	acl = pg_class_aclcheck(relid, GetUserId(), ACL_SELECT);

	if (acl != ACLCHECK_OK)
		aclcheck_error(acl, get_relkind_objtype(get_rel_relkind(relid)), get_rel_name(relid));
	if (log_too)
	{
		acl = pg_class_aclcheck(sa_audit_relid(SA_LOG), GetUserId(), ACL_SELECT);
		if (acl != ACLCHECK_OK)
			aclcheck_error(acl, OBJECT_VIEW, SA_LOG);
	}
	require_tagged(relid);
}

/* One REKEY entry: the rows of old key before it are rows of new key after. */
struct Rekey
{
	TimestampTz at;
	int32		chain;
	int64		seq;
	char	   *from;
	char	   *to;
};

struct RekeyList
{
	char		key[NAMEDATALEN];	/* hash key: a digest of the old key */
	List	   *rekeys;			/* of Rekey, in log order; compare r->from */
};

/* Is entry (at, chain, seq) before rekey r in the log's order? */
bool
before(TimestampTz at, int32 chain, int64 seq, const Rekey *r)
{
	if (at != r->at)
		return at < r->at;
	if (chain != r->chain)
		return chain < r->chain;
	return seq < r->seq;
}

/*
 * The qualified names of tbl and every partition: entries name the
 * relation the change was made on.
 */
void
member_names(Oid relid, Datum **schemas, Datum **names, int *n)
{
	List	   *members = find_all_inheritors(relid, AccessShareLock, nullptr);
	ListCell   *lc;
	int			i = 0;

	*n = list_length(members);
	*schemas = (Datum *) palloc(sizeof(Datum) * *n);
	*names = (Datum *) palloc(sizeof(Datum) * *n);
	foreach(lc, members)
	{
		(*schemas)[i] = CStringGetTextDatum(get_namespace_name(get_rel_namespace(lfirst_oid(lc))));
		(*names)[i] = CStringGetTextDatum(get_rel_name(lfirst_oid(lc)));
		i++;
	}
}

/* May the caller test candidate values with fingerprint()? */
bool
may_test_fingerprints(void)
{
	Oid			argtypes[3] = {REGCLASSOID, NAMEOID, TEXTOID};
	Oid			fn = LookupFuncName(list_make2(makeString(pstrdup(SA_SCHEMA)), makeString(pstrdup("fingerprint"))),
									3, argtypes, true);

	return OidIsValid(fn) && pg_proc_aclcheck(fn, GetUserId(), ACL_EXECUTE) == ACLCHECK_OK;
}

/*
 * tbl's column's fingerprint key, looked up once per call (names and keys
 * are parallel lists; a key is nullptr for a column never fingerprinted),
 * kept in cxt.
 */
const uint8_t *
column_key(Oid tbl, const char *column, List **names, List **keys, MemoryContext cxt)
{
	ListCell   *n,
			   *k;

	forboth(n, *names, k, *keys)
		if (strcmp((const char *) lfirst(n), column) == 0)
			return (const uint8_t *) lfirst(k);

	MemoryContext old = MemoryContextSwitchTo(cxt);
	uint8_t    *key = (uint8_t *) palloc(SA_PROTECT_KEY_LEN);

	if (!sa_protect_column_key(tbl, column, key))
	{
		pfree(key);
		key = nullptr;
	}
	*names = lappend(*names, pstrdup(column));
	*keys = lappend(*keys, key);
	MemoryContextSwitchTo(old);
	return key;
}

const char *
hash_key(const char *s)
{
	/* keys can be long: the table is keyed by a 64-bit hash, lists compare the text */
	static char buf[NAMEDATALEN];

	memset(buf, 0, sizeof(buf));
	snprintf(buf, sizeof(buf), "%016llx", (unsigned long long) hash_bytes_extended((const unsigned char *) s, (int) strlen(s), 0));
	return buf;
}

}							/* namespace */

extern "C" {
PG_FUNCTION_INFO_V1(sensitive_audit_current_values);
PG_FUNCTION_INFO_V1(sensitive_audit_logged_values);
PG_FUNCTION_INFO_V1(sensitive_audit_baseline);
}

/*
 * _current_values(tbl) RETURNS TABLE (row_key text, column_name text, value
 * text, fingerprint text): fingerprint is what the value would be in the
 * log under its column's fingerprint key (NULL for a column never
 * fingerprinted).  It is made here, from the row itself, and only for a
 * caller who may test candidates with fingerprint() anyway: with any table
 * the caller can write and read, it would otherwise be that test.
 */
extern "C" Datum
sensitive_audit_current_values(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	check_read(relid, false);
	InitMaterializedSRF(fcinfo, 0);

	/*
	 * Read below SQL, in each partition's own format (as capture did), with
	 * the statement's snapshot.  Row-level security would hide rows from a
	 * SELECT but not from this scan: such a table is not reconciled.
	 */
	if (check_enable_rls(relid, InvalidOid, true) == RLS_ENABLED)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("\"%s\" has row-level security enabled for the current user", get_rel_name(relid)),
				 errdetail("reconcile() compares every row of the table."),
				 errhint("Run it as the table's owner with row security off, or as a role that bypasses it.")));

	MemoryContext rowcxt = AllocSetContextCreate(CurrentMemoryContext, "sensitive_audit reconcile row",
												 ALLOCSET_DEFAULT_SIZES);
	ListCell   *lc;
	/* the columns' fingerprint keys, by name (the same for every partition) */
	bool		may_fingerprint = may_test_fingerprints();
	MemoryContext outer = CurrentMemoryContext;
	List	   *key_names = NIL;
	List	   *keys = NIL;

	foreach(lc, find_all_inheritors(relid, AccessShareLock, nullptr))
	{
		Relation	rel = table_open(lfirst_oid(lc), NoLock);

		if (!RELKIND_HAS_STORAGE(rel->rd_rel->relkind))
		{
			table_close(rel, NoLock);
			continue;
		}

		TableScanDesc scan = table_beginscan(rel, GetActiveSnapshot(), 0, nullptr);
		HeapTuple	tuple;

		while ((tuple = heap_getnext(scan, ForwardScanDirection)) != nullptr)
		{
			MemoryContext old = MemoryContextSwitchTo(rowcxt);
			char	   *key;
			const char **columns;
			char	  **values;
			int			n = sa_row_texts(rel, tuple, &key, &columns, &values);

			for (int c = 0; c < n; c++)
			{
				Datum		out[4];
				bool		nulls[4] = {false, false, values[c] == nullptr, true};
				const uint8_t *fpkey = may_fingerprint && values[c] != nullptr
					? column_key(relid, columns[c], &key_names, &keys, outer) : nullptr;
				char	   *fp = fpkey == nullptr ? nullptr
					: sa_protect_fingerprint(fpkey, values[c], (int) strlen(values[c]));

				out[0] = CStringGetTextDatum(key);
				out[1] = CStringGetTextDatum(columns[c]);
				out[2] = values[c] ? CStringGetTextDatum(values[c]) : (Datum) 0;
				out[3] = fp ? CStringGetTextDatum(fp) : (Datum) 0;
				nulls[3] = fp == nullptr;
				tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, out, nulls);
			}
			MemoryContextSwitchTo(old);
			MemoryContextReset(rowcxt);
			CHECK_FOR_INTERRUPTS();
		}
		table_endscan(scan);
		table_close(rel, NoLock);
	}
	foreach(lc, keys)
		if (lfirst(lc) != nullptr)
			explicit_bzero(lfirst(lc), SA_PROTECT_KEY_LEN);
	return (Datum) 0;
}

/*
 * _logged_values(tbl) RETURNS TABLE (row_key text, column_name text,
 * present boolean, value text, event_time timestamptz, chain int, seq bigint,
 * protection text): the entries that set (present) or clear a tagged value,
 * with row_key the key the row has now, and the form of a protected value.
 */
extern "C" Datum
sensitive_audit_logged_values(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum	   *schemas;
	Datum	   *names;
	int			n;

	check_read(relid, true);
	InitMaterializedSRF(fcinfo, 0);
	member_names(relid, &schemas, &names, &n);

	Oid			argtypes[2] = {TEXTARRAYOID, TEXTARRAYOID};
	Datum		args[2] = {
		PointerGetDatum(construct_array(schemas, n, TEXTOID, -1, false, TYPALIGN_INT)),
		PointerGetDatum(construct_array(names, n, TEXTOID, -1, false, TYPALIGN_INT))
	};
	const char *from =
		"FROM sensitive_audit.log l "
		"WHERE (l.table_schema, l.table_name) IN "
		"  (SELECT * FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.text[]), "
		"                          pg_catalog.unnest($2::pg_catalog.text[]))) ";

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	/* the REKEY entries first (few): old key -> list of (position, new key) */
	HASHCTL		ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = NAMEDATALEN;
	ctl.entrysize = sizeof(RekeyList);
	ctl.hcxt = CurrentMemoryContext;

	HTAB	   *rekeys = hash_create("sensitive_audit rekeys", 64, &ctl, HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	MemoryContext outer = CurrentMemoryContext;
	/* the new key as row_key::text will print it */
	int			rc = SPI_execute_with_args(psprintf("SELECT l.row_key::pg_catalog.text, "
												   "l.new_value::pg_catalog.jsonb::pg_catalog.text, "
												   "l.event_time, l.chain, l.seq %s"
												   "AND l.operation OPERATOR(pg_catalog.=) 'REKEY' "
												   "ORDER BY l.event_time, l.chain, l.seq", from),
										   2, argtypes, args, nullptr, true, 0);

	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not read the log: %s", SPI_result_code_string(rc));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	t = SPI_tuptable->vals[i];
		TupleDesc	d = SPI_tuptable->tupdesc;
		bool		isnull;
		char	   *oldkey = SPI_getvalue(t, d, 1);
		char	   *newkey = SPI_getvalue(t, d, 2);

		if (oldkey == nullptr || newkey == nullptr)
			continue;

		MemoryContext old = MemoryContextSwitchTo(outer);
		bool		found;
		RekeyList  *list = (RekeyList *) hash_search(rekeys, hash_key(oldkey), HASH_ENTER, &found);
		Rekey	   *r = (Rekey *) palloc(sizeof(Rekey));

		if (!found)
			list->rekeys = NIL;
		r->at = DatumGetTimestampTz(SPI_getbinval(t, d, 3, &isnull));
		r->chain = DatumGetInt32(SPI_getbinval(t, d, 4, &isnull));
		r->seq = DatumGetInt64(SPI_getbinval(t, d, 5, &isnull));
		r->from = pstrdup(oldkey);
		r->to = pstrdup(newkey);
		list->rekeys = lappend(list->rekeys, r);
		MemoryContextSwitchTo(old);
	}
	SPI_freetuptable(SPI_tuptable);

	SPIPlanPtr	plan = SPI_prepare(psprintf("SELECT l.row_key::pg_catalog.text, l.column_name, l.operation, l.new_value, "
											"l.event_time, l.chain, l.seq, l.protection %s"
											"AND l.operation OPERATOR(pg_catalog.=) ANY "
											"('{INSERT,UPDATE,DELETE,TRUNCATE,ATTACH,BASELINE}'::pg_catalog.text[])", from),
								   2, argtypes);

	if (plan == nullptr)
		elog(ERROR, "could not read the log: %s", SPI_result_code_string(SPI_result));

	Portal		portal = SPI_cursor_open(nullptr, plan, args, nullptr, true);
	MemoryContext rowcxt = AllocSetContextCreate(outer, "sensitive_audit reconcile entry",
												 ALLOCSET_DEFAULT_SIZES);

	for (;;)
	{
		SPI_cursor_fetch(portal, true, 1000);
		if (SPI_processed == 0)
			break;
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			MemoryContext old = MemoryContextSwitchTo(rowcxt);
			HeapTuple	t = SPI_tuptable->vals[i];
			TupleDesc	d = SPI_tuptable->tupdesc;
			bool		isnull;
			char	   *key = SPI_getvalue(t, d, 1);
			char	   *op = SPI_getvalue(t, d, 3);
			char	   *value = SPI_getvalue(t, d, 4);
			TimestampTz at = DatumGetTimestampTz(SPI_getbinval(t, d, 5, &isnull));
			int32		chain = DatumGetInt32(SPI_getbinval(t, d, 6, &isnull));
			int64		seq = DatumGetInt64(SPI_getbinval(t, d, 7, &isnull));
			TimestampTz pos_at = at;
			int32		pos_chain = chain;
			int64		pos_seq = seq;

			/* follow the REKEYs that came after the entry, each from where the last left */
			for (int hops = 0; key != nullptr && hops < 10000; hops++)
			{
				RekeyList  *list = (RekeyList *) hash_search(rekeys, hash_key(key), HASH_FIND, nullptr);
				Rekey	   *next = nullptr;
				ListCell   *lc;

				if (list == nullptr)
					break;
				foreach(lc, list->rekeys)
				{
					Rekey	   *r = (Rekey *) lfirst(lc);

					if (strcmp(r->from, key) == 0 && before(pos_at, pos_chain, pos_seq, r))
					{
						next = r;
						break;
					}
				}
				if (next == nullptr)
					break;
				key = next->to;
				pos_at = next->at;
				pos_chain = next->chain;
				pos_seq = next->seq;
			}

			Datum		out[8];
			bool		nulls[8] = {key == nullptr, false, false, true, false, false, false, false};
			bool		present = strcmp(op, "DELETE") != 0 && strcmp(op, "TRUNCATE") != 0;

			out[0] = key ? CStringGetTextDatum(key) : (Datum) 0;
			out[1] = SPI_getbinval(t, d, 2, &nulls[1]);
			out[2] = BoolGetDatum(present);
			if (present && value != nullptr)
			{
				out[3] = CStringGetTextDatum(value);
				nulls[3] = false;
			}
			out[4] = TimestampTzGetDatum(at);
			out[5] = Int32GetDatum(chain);
			out[6] = Int64GetDatum(seq);
			out[7] = SPI_getbinval(t, d, 8, &nulls[7]);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, out, nulls);
			MemoryContextSwitchTo(old);
			MemoryContextReset(rowcxt);
		}
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);
	SPI_finish();
	return (Datum) 0;
}

/* baseline(tbl): every row's current tagged values as BASELINE entries. */
extern "C" Datum
sensitive_audit_baseline(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);

	if (!pg_class_ownercheck(relid, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, get_relkind_objtype(get_rel_relkind(relid)), get_rel_name(relid));
	require_tagged(relid);

	/* no row may change while its baseline is taken */
	Relation	rel = table_open(relid, ShareLock);

	sa_capture_rows(rel, "BASELINE", true);
	table_close(rel, NoLock);
	PG_RETURN_VOID();
}
