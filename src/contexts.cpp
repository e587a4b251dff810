/*
 * contexts.cpp — the fields entries share, stored once.
 *
 * Most of an entry's texts repeat from one entry to the next: operation,
 * table, column, value type, key source, and who made the change.  They are
 * stored once per distinct combination (a "context") in log_contexts, and
 * each entry refers to its context by id; the view sensitive_audit.log joins
 * them back.  Hashing is unaffected: an entry's hash covers the texts
 * themselves.
 *
 * A context's id is derived from its texts (a 64-bit hash of their
 * length-prefixed encoding), so backends agree on it without talking to
 * each other.  A new context is inserted by the first committing
 * transaction that needs it, at pre-commit, before the chain lock is taken.
 * The id is probed with a dirty snapshot, which also shows rows other
 * transactions are still inserting, under a lock on the id held only for
 * the probe and the insert (so two transactions never insert one id at
 * once, which would make the second fail on the primary key).  An id whose
 * row another transaction has inserted but not yet committed (or has
 * prepared with), or whose row holds other texts (two contexts that hash
 * alike), is passed over for the next id, where this transaction stores its
 * own copy.  So the same texts may be stored under a few ids, which is
 * harmless (an entry refers to one id); nobody waits for another
 * transaction to end, and no lock is kept until commit.
 *
 * Each backend remembers the contexts it has seen committed; a context this
 * transaction inserted is remembered only once the transaction commits.
 */
#include "sensitive_audit.hpp"

/* Lock tags for context ids: an advisory key space apart from the chains'. */
#define SA_CONTEXT_LOCK_FIELD4 0x5343

namespace {

struct CachedContext
{
	uint64		key;			/* hash of the encoding; the HTAB key */
	int64		id;
	int			len;
	char	   *bytes;			/* the encoding, in cache_cxt */
	bool		inserted_here;	/* by the current transaction: not yet known committed */
};

MemoryContext cache_cxt = nullptr;
HTAB	   *cache = nullptr;
Oid			cache_relid = InvalidOid;	/* the log_contexts the cache describes */

/* Keys of the contexts the current transaction inserted. */
uint64	   *inserted_keys = nullptr;
int			n_inserted = 0;
int			max_inserted = 0;

void
ensure_cache(void)
{
	if (cache != nullptr)
		return;
	if (cache_cxt == nullptr)
		cache_cxt = AllocSetContextCreate(TopMemoryContext, "sensitive_audit contexts",
										  ALLOCSET_SMALL_SIZES);

	HASHCTL		ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(uint64);
	ctl.entrysize = sizeof(CachedContext);
	ctl.hcxt = cache_cxt;
	cache = hash_create("sensitive_audit contexts", 64, &ctl,
						HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

/*
 * The encoding a context is known by: for each field, its length as 4 bytes
 * (-1 for NULL) and its bytes.
 */
void
encode_field(StringInfo buf, const char *s, int len)
{
	int32		l = s ? len : -1;

	appendBinaryStringInfo(buf, (const char *) &l, sizeof(l));
	if (s)
		appendBinaryStringInfo(buf, s, len);
}

void
encode_pending(StringInfo buf, const PendingEntry *e)
{
	resetStringInfo(buf);
	for (int i = 0; i < SA_CONTEXT_NFIELDS; i++)
	{
		const PendingStr *f = &e->f[sa_context_fields[i]];

		encode_field(buf, f->str, f->len);
	}
}

uint64
encoding_key(StringInfo buf)
{
	return hash_bytes_extended((const unsigned char *) buf->data, buf->len, 0);
}

/*
 * The cache may be reset by a relcache invalidation whenever the catalogs
 * are read (opening a relation, say): every use goes through ensure_cache().
 */
CachedContext *
cache_lookup(StringInfo buf, uint64 key)
{
	ensure_cache();

	CachedContext *c = (CachedContext *) hash_search(cache, &key, HASH_FIND, nullptr);

	if (c != nullptr && c->len == buf->len && memcmp(c->bytes, buf->data, buf->len) == 0)
		return c;
	return nullptr;
}

void
note_inserted(uint64 key)
{
	if (n_inserted == max_inserted)
	{
		int			n = Max(16, 2 * max_inserted);

		inserted_keys = inserted_keys
			? (uint64 *) repalloc(inserted_keys, sizeof(uint64) * n)
			: (uint64 *) MemoryContextAlloc(cache_cxt, sizeof(uint64) * n);
		max_inserted = n;
	}
	inserted_keys[n_inserted++] = key;
}

void
cache_store(StringInfo buf, uint64 key, int64 id, bool inserted_here)
{
	bool		found;

	ensure_cache();

	CachedContext *c = (CachedContext *) hash_search(cache, &key, HASH_ENTER, &found);

	if (found && c->bytes)
		pfree(c->bytes);
	c->id = id;
	c->len = buf->len;
	c->bytes = (char *) MemoryContextAlloc(cache_cxt, Max(buf->len, 1));
	memcpy(c->bytes, buf->data, buf->len);
	c->inserted_here = inserted_here;
	if (inserted_here)
		note_inserted(key);
}

}							/* namespace */

/*
 * Field i (in sa_context_fields order) of a log_contexts row whose
 * attributes are deformed: its text as the entry's hash covers it, in
 * *data (valid while the slot's row and the current memory context are),
 * or false for NULL.  The one place that says how a stored context reads
 * back; linking (to recognise a stored context) and verify() both use it.
 */
bool
sa_context_field(TupleTableSlot *slot, int i, const char **data, int *len)
{
	Datum		d = slot->tts_values[i + 1];

	if (slot->tts_isnull[i + 1])
		return false;
	if (i == SA_CTX_CLIENT_ADDR)
	{
		*data = DatumGetCString(DirectFunctionCall1(inet_out, d));
		*len = (int) strlen(*data);
	}
	else
	{
		text	   *t = DatumGetTextPP(d);

		*data = VARDATA_ANY(t);
		*len = (int) VARSIZE_ANY_EXHDR(t);
	}
	return true;
}

namespace {

/* The row's fields, encoded as encode_pending() encodes a pending entry's. */
void
encode_row(StringInfo buf, TupleTableSlot *slot)
{
	resetStringInfo(buf);
	slot_getallattrs(slot);
	for (int i = 0; i < SA_CONTEXT_NFIELDS; i++)
	{
		const char *data = nullptr;
		int			len = 0;

		if (!sa_context_field(slot, i, &data, &len))
			data = nullptr;
		encode_field(buf, data, len);
	}
}

struct ContextSink
{
	const SaStorage *storage;
	Relation	rel;			/* opened when first needed */
	Relation	pkey;
	EState	   *estate;
	ResultRelInfo *rri;
	TupleTableSlot *probe_slot;
	TupleTableSlot *insert_slot;
	StringInfoData row;
};

void
sink_open(ContextSink *s)
{
	if (s->rel != nullptr)
		return;
	s->rel = table_open(s->storage->contexts, RowExclusiveLock);
	s->pkey = index_open(s->storage->contexts_pkey, RowExclusiveLock);
	s->estate = CreateExecutorState();
	s->rri = makeNode(ResultRelInfo);
	InitResultRelInfo(s->rri, s->rel, 1, nullptr, 0);
	s->rri->ri_TrigDesc = nullptr;	/* the guards are for SQL */
	ExecOpenIndices(s->rri, false);
	s->probe_slot = table_slot_create(s->rel, nullptr);
	s->insert_slot = ExecInitExtraTupleSlot(s->estate, RelationGetDescr(s->rel), &TTSOpsVirtual);
	initStringInfo(&s->row);
}

void
sink_close(ContextSink *s)
{
	if (s->rel == nullptr)
		return;
	ExecDropSingleTupleTableSlot(s->probe_slot);
	ExecCloseIndices(s->rri);
	ExecResetTupleTable(s->estate->es_tupleTable, false);
	FreeExecutorState(s->estate);
	index_close(s->pkey, NoLock);
	table_close(s->rel, NoLock);
	s->rel = nullptr;
}

enum ProbeResult
{
	PROBE_NONE,					/* no row has this id */
	PROBE_COMMITTED,			/* a committed row (or our own), in s->row */
	PROBE_IN_PROGRESS,			/* another transaction's row, not yet committed */
};

/*
 * The row with this id, if any, encoded into s->row; *own says whether this
 * transaction inserted it.  Read with a dirty snapshot: committed rows, our
 * own, and rows other transactions are inserting; no serializable
 * predicate locks.  The caller holds the id's lock, so no one else is
 * between probe and insert for it.
 */
ProbeResult
probe(ContextSink *s, int64 id, bool *own)
{
	ScanKeyData skey;
	IndexScanDesc scan;
	SnapshotData dirty;
	ProbeResult result = PROBE_NONE;

	InitDirtySnapshot(dirty);
	ScanKeyInit(&skey, 1, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(id));
	scan = index_beginscan(s->rel, s->pkey, &dirty, 1, 0);
	index_rescan(scan, &skey, 1, nullptr, 0);
	while (index_getnext_slot(scan, ForwardScanDirection, s->probe_slot))
	{
		bool		should_free;
		HeapTuple	tup = ExecFetchSlotHeapTuple(s->probe_slot, false, &should_free);
		TransactionId xmin = HeapTupleHeaderGetXmin(tup->t_data);

		if (should_free)
			heap_freetuple(tup);
		if (TransactionIdIsValid(dirty.xmin) && !TransactionIdIsCurrentTransactionId(dirty.xmin))
		{
			result = PROBE_IN_PROGRESS;
			break;
		}
		*own = TransactionIdIsCurrentTransactionId(xmin);
		encode_row(&s->row, s->probe_slot);
		result = PROBE_COMMITTED;
		break;
	}
	index_endscan(scan);
	ExecClearTuple(s->probe_slot);
	return result;
}

/* Insert a context from its encoding; below SQL, like the entries. */
void
insert_context(ContextSink *s, int64 id, const char *bytes, int len)
{
	TupleTableSlot *slot = s->insert_slot;
	const char *p = bytes;

	ExecClearTuple(slot);
	slot->tts_values[0] = Int64GetDatum(id);
	slot->tts_isnull[0] = false;
	for (int i = 0; i < SA_CONTEXT_NFIELDS; i++)
	{
		int32		l;

		Assert(p + sizeof(l) <= bytes + len);
		memcpy(&l, p, sizeof(l));
		p += sizeof(l);
		slot->tts_isnull[i + 1] = l < 0;
		if (l < 0)
			slot->tts_values[i + 1] = (Datum) 0;
		else if (i == SA_CTX_CLIENT_ADDR)
			slot->tts_values[i + 1] = DirectFunctionCall1(inet_in, CStringGetDatum(pnstrdup(p, l)));
		else
			slot->tts_values[i + 1] = PointerGetDatum(cstring_to_text_with_len(p, l));
		if (l > 0)
			p += l;
	}
	ExecStoreVirtualTuple(slot);
	table_tuple_insert(s->rel, slot, GetCurrentCommandId(true), 0, nullptr);
	list_free(ExecInsertIndexTuples(s->rri, slot, s->estate, false, false, nullptr, NIL));
	ResetPerTupleExprContext(s->estate);
	ExecClearTuple(slot);
}

/*
 * Find or create the stored context with this encoding; returns its id and
 * remembers it.
 */
int64
resolve_in_table(ContextSink *s, StringInfo enc, uint64 key)
{
	sink_open(s);
	for (int64 id = (int64) key;; id++)
	{
		LOCKTAG		tag;
		bool		own = false;
		bool		stored = false;

		CHECK_FOR_INTERRUPTS();
		SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) ((uint64) id >> 32), (uint32) id,
							 SA_CONTEXT_LOCK_FIELD4);
		if (LockAcquire(&tag, ExclusiveLock, false, true) == LOCKACQUIRE_NOT_AVAIL)
			continue;			/* another transaction is probing it right now */

		ProbeResult r = probe(s, id, &own);

		if (r == PROBE_NONE)
		{
			insert_context(s, id, enc->data, enc->len);
			own = stored = true;
		}
		else if (r == PROBE_COMMITTED && s->row.len == enc->len
				 && memcmp(s->row.data, enc->data, enc->len) == 0)
			stored = true;
		LockRelease(&tag, ExclusiveLock, false);
		if (stored)
		{
			cache_store(enc, key, id, own);
			return id;
		}
		/* someone else's uncommitted row, or other texts: try the next id */
	}
}

}							/* namespace */

/*
 * Set ids[i] to the stored id of the transaction's pending context i
 * (pending.cpp interns them: each is distinct), storing the contexts not
 * stored yet.  Runs in the caller's (short-lived) memory context, before
 * the chain lock is taken.  Work and memory are per context, not per entry.
 */
void
sa_contexts_resolve(const SaStorage *s, int64 *ids)
{
	ContextSink sink;
	StringInfoData enc;
	int			n = sa_pending_ncontexts();

	/* a cache made for another log_contexts (the extension reinstalled) is void */
	if (cache_relid != s->contexts)
	{
		sa_contexts_forget();
		cache_relid = s->contexts;
	}
	memset(&sink, 0, sizeof(sink));
	sink.storage = s;
	initStringInfo(&enc);
	for (int i = 0; i < n; i++)
	{
		PendingEntry e;

		sa_pending_context(i, &e);
		encode_pending(&enc, &e);

		uint64		key = encoding_key(&enc);
		CachedContext *c = cache_lookup(&enc, key);

		ids[i] = c != nullptr ? c->id : resolve_in_table(&sink, &enc, key);
	}
	sink_close(&sink);
}

/*
 * At the end of a transaction: the contexts it inserted are now known to be
 * stored for good, or (abort, or PREPARE: its fate is decided elsewhere)
 * are forgotten.  Runs in abort processing too: nothing here can fail.
 */
void
sa_contexts_xact_end(bool committed)
{
	if (cache != nullptr)
	{
		for (int i = 0; i < n_inserted; i++)
		{
			uint64		key = inserted_keys[i];
			CachedContext *c = (CachedContext *) hash_search(cache, &key, HASH_FIND, nullptr);

			if (c == nullptr || !c->inserted_here)
				continue;
			if (committed)
				c->inserted_here = false;
			else
			{
				pfree(c->bytes);
				hash_search(cache, &key, HASH_REMOVE, nullptr);
			}
		}
	}
	n_inserted = 0;
}

/* A relcache invalidation of relid (InvalidOid: of every relation). */
void
sa_contexts_invalidate(Oid relid)
{
	if (relid == InvalidOid || relid == cache_relid)
		sa_contexts_forget();
}

/* Forget every remembered context (the table was dropped, replaced, ...). */
void
sa_contexts_forget(void)
{
	if (cache_cxt != nullptr)
		MemoryContextReset(cache_cxt);
	cache = nullptr;
	inserted_keys = nullptr;
	n_inserted = 0;
	max_inserted = 0;
}
