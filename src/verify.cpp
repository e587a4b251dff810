/*
 * verify.cpp — verify() and verify_or_raise().
 *
 * The log is read in (chain, seq) order through its primary key, one row at
 * a time, and each row's fields are handed as bytes to the C++ core's
 * streaming verifier, which recomputes every hash and link.  Nothing is
 * materialised but one row; the scan uses the caller's MVCC snapshot and so
 * never blocks writers.
 *
 * The verifier lives on the C++ heap; a reset callback on the function's
 * memory context frees it even when an error (or a cancel) ends the scan.
 */
#include "sensitive_audit.hpp"

namespace {

struct VerifyRun
{
	sa_verifier *verifier;
};

void
free_verifier(void *arg)
{
	VerifyRun  *run = (VerifyRun *) arg;

	if (run->verifier != nullptr)
	{
		sa_verifier_destroy(run->verifier);
		run->verifier = nullptr;
	}
}

sa_bytes
datum_bytes(Datum d, bool isnull)
{
	sa_bytes	b;

	if (isnull)
	{
		b.data = nullptr;
		b.len = 0;
		b.is_null = 1;
		return b;
	}
	text	   *t = DatumGetTextPP(d);

	b.data = VARDATA_ANY(t);
	b.len = VARSIZE_ANY_EXHDR(t);
	b.is_null = 0;
	return b;
}

sa_bytes
cstring_bytes(const char *s)
{
	sa_bytes	b;

	b.data = s;
	b.len = s ? strlen(s) : 0;
	b.is_null = s == nullptr;
	return b;
}

void
check_core(int rc)
{
	if (rc != SA_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("audit log verification failed: %s", sa_strerror(rc))));
}

/* Stream the whole log through a new verifier; returns it finished. */
sa_verifier *
run_verifier(MemoryContext cxt)
{
	Oid			nsp = get_namespace_oid(SA_SCHEMA, false);
	Oid			logid = get_relname_relid(SA_LOG, nsp);
	Oid			pkeyid = get_relname_relid(SA_LOG_PKEY, nsp);

	if (!OidIsValid(logid) || !OidIsValid(pkeyid))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("relation %s.%s or its primary key is missing", SA_SCHEMA, SA_LOG)));

	/* Reading below SQL: check the privilege SQL would have checked. */
	AclResult	acl = pg_class_aclcheck(logid, GetUserId(), ACL_SELECT);

	if (acl != ACLCHECK_OK)
		aclcheck_error(acl, OBJECT_TABLE, SA_SCHEMA "." SA_LOG);

	VerifyRun  *run = (VerifyRun *) MemoryContextAllocZero(cxt, sizeof(VerifyRun));
	MemoryContextCallback *cb = (MemoryContextCallback *) MemoryContextAllocZero(cxt, sizeof(MemoryContextCallback));

	run->verifier = sa_verifier_create();
	if (run->verifier == nullptr)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("could not create verifier")));
	cb->func = free_verifier;
	cb->arg = run;
	MemoryContextRegisterResetCallback(cxt, cb);

	Relation	log = table_open(logid, AccessShareLock);
	Relation	pkey = index_open(pkeyid, AccessShareLock);
	TupleTableSlot *slot = table_slot_create(log, nullptr);
	Snapshot	snapshot = RegisterSnapshot(GetTransactionSnapshot());
	IndexScanDesc scan = index_beginscan(log, pkey, snapshot, 0, 0);
	MemoryContext rowcxt = AllocSetContextCreate(cxt, "sensitive_audit verify row", ALLOCSET_DEFAULT_SIZES);
	bytea	   *last_addr = nullptr;
	char	   *last_addr_text = nullptr;
	Jsonb	   *last_key = nullptr;
	size_t		last_key_cap = 0;
	char	   *last_key_text = nullptr;
	size_t		last_key_text_cap = 0;

	index_rescan(scan, nullptr, 0, nullptr, 0);
	while (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		MemoryContext old = MemoryContextSwitchTo(rowcxt);
		sa_entry	e;
		bool	   *n;
		Datum	   *v;

		CHECK_FOR_INTERRUPTS();
		slot_getallattrs(slot);
		v = slot->tts_values;
		n = slot->tts_isnull;
		memset(&e, 0, sizeof(e));
		e.chain = n[0] ? 0 : (uint32_t) DatumGetInt32(v[0]);
		e.seq = n[1] ? 0 : (uint64_t) DatumGetInt64(v[1]);
		e.txid = n[2] ? 0 : U64FromFullTransactionId(DatumGetFullTransactionId(v[2]));
		e.event_time = n[3] ? 0 : DatumGetTimestampTz(v[3])
			+ (int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY;
		e.operation = datum_bytes(v[4], n[4]);
		e.table_schema = datum_bytes(v[5], n[5]);
		e.table_name = datum_bytes(v[6], n[6]);
		e.column_name = datum_bytes(v[7], n[7]);
		if (n[8])
			e.row_key = cstring_bytes(nullptr);
		else
		{
			/*
			 * Consecutive entries of one row share the key: print it once.
			 * The printing allocates in the per-row context; the text is
			 * kept in a buffer of our own that only ever grows.
			 */
			Jsonb	   *jb = DatumGetJsonbP(v[8]);

			if (last_key == nullptr || VARSIZE(jb) != VARSIZE(last_key)
				|| memcmp(jb, last_key, VARSIZE(jb)) != 0)
			{
				char	   *text = JsonbToCString(nullptr, &jb->root, VARSIZE(jb));
				size_t		len = strlen(text);

				if (VARSIZE(jb) > last_key_cap)
				{
					last_key_cap = Max(VARSIZE(jb), 2 * last_key_cap);
					last_key = (Jsonb *) (last_key ? repalloc(last_key, last_key_cap)
										  : MemoryContextAlloc(cxt, last_key_cap));
				}
				memcpy(last_key, jb, VARSIZE(jb));
				if (len + 1 > last_key_text_cap)
				{
					last_key_text_cap = Max(len + 1, 2 * last_key_text_cap);
					last_key_text = (char *) (last_key_text ? repalloc(last_key_text, last_key_text_cap)
											  : MemoryContextAlloc(cxt, last_key_text_cap));
				}
				memcpy(last_key_text, text, len + 1);
			}
			e.row_key = cstring_bytes(last_key_text);
		}
		e.row_key_source = datum_bytes(v[9], n[9]);
		e.old_value = datum_bytes(v[10], n[10]);
		e.new_value = datum_bytes(v[11], n[11]);
		e.value_type = datum_bytes(v[12], n[12]);
		e.session_role = datum_bytes(v[13], n[13]);
		e.effective_role = datum_bytes(v[14], n[14]);
		e.application_name = datum_bytes(v[15], n[15]);
		if (n[16])
			e.client_addr = cstring_bytes(nullptr);
		else
		{
			/* few distinct client addresses: print each run once */
			bytea	   *addr = DatumGetByteaPP(v[16]);

			if (last_addr == nullptr || VARSIZE_ANY(addr) != VARSIZE_ANY(last_addr)
				|| memcmp(addr, last_addr, VARSIZE_ANY(addr)) != 0)
			{
				MemoryContext keep = MemoryContextSwitchTo(cxt);

				last_addr = (bytea *) palloc(VARSIZE_ANY(addr));
				memcpy(last_addr, addr, VARSIZE_ANY(addr));
				last_addr_text = DatumGetCString(DirectFunctionCall1(inet_out, v[16]));
				MemoryContextSwitchTo(keep);
			}
			e.client_addr = cstring_bytes(last_addr_text);
		}
		e.backend_pid = n[17] ? 0 : DatumGetInt32(v[17]);
		e.format = n[20] ? 0 : (uint16_t) DatumGetInt16(v[20]);

		const uint8_t *hash = nullptr;
		size_t		hashlen = 0;

		if (!n[19])
		{
			bytea	   *h = DatumGetByteaPP(v[19]);

			hash = (const uint8_t *) VARDATA_ANY(h);
			hashlen = VARSIZE_ANY_EXHDR(h);
		}

		/*
		 * A link that is not exactly 32 bytes cannot be hashed as written:
		 * report the entry as malformed rather than pad or cut it.
		 */
		bytea	   *prev = n[18] ? nullptr : DatumGetByteaPP(v[18]);

		if (prev != nullptr && VARSIZE_ANY_EXHDR(prev) == SA_DIGEST_LEN)
			memcpy(e.prev_hash, VARDATA_ANY(prev), SA_DIGEST_LEN);
		else
			hashlen = 0;
		check_core(sa_verifier_feed(run->verifier, &e, hash, hashlen));
		MemoryContextSwitchTo(old);
		MemoryContextReset(rowcxt);
	}
	check_core(sa_verifier_finish(run->verifier));

	index_endscan(scan);
	UnregisterSnapshot(snapshot);
	ExecDropSingleTupleTableSlot(slot);
	index_close(pkey, AccessShareLock);
	table_close(log, AccessShareLock);
	return run->verifier;
}

}							/* namespace */

extern "C" {
PG_FUNCTION_INFO_V1(sensitive_audit_verify);
PG_FUNCTION_INFO_V1(sensitive_audit_verify_or_raise);
}

extern "C" Datum
sensitive_audit_verify(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "sensitive_audit verify",
											  ALLOCSET_DEFAULT_SIZES);

	InitMaterializedSRF(fcinfo, 0);

	sa_verifier *v = run_verifier(cxt);
	size_t		n = sa_verifier_nchains(v);

	for (size_t i = 0; i < n; i++)
	{
		sa_chain_result r;
		Datum		values[5];
		bool		nulls[5] = {false, false, false, false, false};

		check_core(sa_verifier_result(v, i, &r));
		values[0] = Int32GetDatum((int32) r.chain);
		values[1] = Int64GetDatum((int64) r.entries);
		values[2] = BoolGetDatum(r.ok != 0);
		if (r.ok)
		{
			nulls[3] = true;
			nulls[4] = true;
		}
		else
		{
			values[3] = Int64GetDatum((int64) r.first_bad_seq);
			values[4] = CStringGetTextDatum(r.problem ? r.problem : "unknown");
		}
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	MemoryContextDelete(cxt);
	return (Datum) 0;
}

extern "C" Datum
sensitive_audit_verify_or_raise(PG_FUNCTION_ARGS)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "sensitive_audit verify",
											  ALLOCSET_DEFAULT_SIZES);
	sa_verifier *v = run_verifier(cxt);
	size_t		n = sa_verifier_nchains(v);
	int64		total = 0;
	int			bad = 0;
	sa_chain_result first_bad;

	memset(&first_bad, 0, sizeof(first_bad));
	for (size_t i = 0; i < n; i++)
	{
		sa_chain_result r;

		check_core(sa_verifier_result(v, i, &r));
		total += (int64) r.entries;
		if (!r.ok && bad++ == 0)
			first_bad = r;
	}
	if (bad > 0)
	{
		char	   *problem = pstrdup(first_bad.problem ? first_bad.problem : "unknown");

		MemoryContextDelete(cxt);	/* problem text belonged to the verifier */
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("audit log chain %u is corrupted at seq " UINT64_FORMAT,
						first_bad.chain, (uint64) first_bad.first_bad_seq),
				 errdetail("%s; %d of %zu chains fail verification.", problem, bad, n),
				 errhint("Run SELECT * FROM sensitive_audit.verify() for every chain's first failure.")));
	}
	MemoryContextDelete(cxt);
	PG_RETURN_INT64(total);
}
