/*
 * chain.cpp — linking a committing transaction's entries into a chain.
 *
 * Design (DESIGN invariants 4 and 5):
 *  - Writers never serialize while they work: entries wait in the pending
 *    queue (pending.cpp: bounded memory, then a temporary file) until the
 *    transaction is about to commit; linking reads them back in order.
 *  - At XACT_EVENT_PRE_COMMIT (or PRE_PREPARE) the transaction picks one of
 *    sensitive_audit.chains chains, takes that chain's lock, reads the
 *    chain's head (last seq and hash) from the log's primary key, hashes its
 *    entries one after the other and inserts them below SQL (no triggers, no
 *    privilege checks: the writer needs no grant on the log).
 *  - The chain lock is an ordinary transaction-scoped heavyweight lock, so it
 *    is released only after the commit record is written and the
 *    transaction is visible; the next holder therefore always sees the
 *    previous holder's entries, and a chain's order is its commit order.  If
 *    the transaction fails after linking (say a serialization failure at
 *    commit), its entries vanish with it and the lock is released: the chain
 *    has no gap, because a head is remembered (heads.cpp) only once its
 *    transaction has committed, and otherwise read from the log.
 *    A prepared transaction keeps the lock until COMMIT/ROLLBACK PREPARED.
 *  - Committers start at a chain chosen by their pid and take the first free
 *    chain without waiting, so concurrent commits spread over the chains and
 *    only wait when all are busy; then they try them all again, after a
 *    short sleep, until one is free (a prepared transaction can hold one
 *    for long).
 * No shared memory is needed, so the library need not be preloaded, and a
 * crash leaves nothing to repair: the log itself is the state.  Preloaded,
 * it keeps chain heads in shared memory as a cache of the log (heads.cpp).
 */
#include "sensitive_audit.hpp"

extern "C" {
#include "access/twophase.h"
#include "storage/proc.h"
}

/* The lock tag for one chain: an advisory-lock tag in a key space users'
 * pg_advisory_* functions cannot reach (their field4 is 1 or 2). */
#define SA_LOCK_KEY1 0x53415544 /* "SAUD" */
#define SA_LOCK_FIELD4 0x5341

namespace {

void
chain_locktag(LOCKTAG *tag, int chain)
{
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, SA_LOCK_KEY1, (uint32) chain, SA_LOCK_FIELD4);
}

/*
 * A committer has waited `waited_ms` for a free chain: if prepared
 * transactions hold any of them, say so, once per commit.  A WARNING, so
 * that both the waiting client (whose COMMIT is slow for a reason it cannot
 * see) and the server log get it; ordinary committers holding every chain
 * for a moment are contention, not a problem, and stay silent.  A prepared
 * transaction's lock is held under the virtual transaction id it had before
 * it prepared, which twophase.c maps to its xid.
 */
void
warn_prepared_holders(int nchains, int waited_ms)
{
	int			held = 0;
	LOCKTAG		tag;

	for (int i = 0; i < nchains; i++)
	{
		int			count = 0;

		chain_locktag(&tag, i);

		VirtualTransactionId *holders = GetLockConflicts(&tag, ExclusiveLock, &count);

		for (int h = 0; h < count; h++)
		{
			bool		more = false;

			if (VirtualTransactionIdIsRecoveredPreparedXact(holders[h])
				|| TransactionIdIsValid(TwoPhaseGetXidByVirtualXID(holders[h], &more)))
			{
				held++;
				break;
			}
		}
	}
	if (held > 0)
		ereport(WARNING,
				(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
				 errmsg("commit has waited more than %d ms for an audit chain, %d of %d chains being held by prepared transactions",
						waited_ms, held, nchains),
				 errdetail("A prepared transaction keeps its audit chain until COMMIT PREPARED or ROLLBACK PREPARED."),
				 errhint("End the transactions listed in pg_prepared_xacts, or set sensitive_audit.chains above max_prepared_transactions.")));
}

/* Lock a chain for the rest of the transaction; return its number. */
int
lock_some_chain(void)
{
	int			nchains = Max(sa_chains, 1);
	int			start = MyProcPid % nchains;
	LOCKTAG		tag;

	if (nchains == 1)
	{
		chain_locktag(&tag, 0);
		(void) LockAcquire(&tag, ExclusiveLock, false, false);
		return 0;
	}

	/*
	 * Every chain busy: try them all again after a short sleep, rather than
	 * queue behind one, whose holder may be a prepared transaction that
	 * keeps it for a long time while others free theirs.  The wait can be
	 * cancelled.
	 */
	TimestampTz wait_start = 0;
	bool		warned = false;

	for (long delay_ms = 1;; delay_ms = Min(delay_ms * 2, 10))
	{
		for (int i = 0; i < nchains; i++)
		{
			int			chain = (start + i) % nchains;

			chain_locktag(&tag, chain);
			if (LockAcquire(&tag, ExclusiveLock, false, true) != LOCKACQUIRE_NOT_AVAIL)
				return chain;
		}
		if (wait_start == 0)
			wait_start = GetCurrentTimestamp();
		else if (!warned && sa_prepared_wait_warning >= 0
				 && TimestampDifferenceExceeds(wait_start, GetCurrentTimestamp(),
											   sa_prepared_wait_warning))
		{
			warn_prepared_holders(nchains, sa_prepared_wait_warning);
			warned = true;
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, delay_ms,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

Oid
lookup_log_relid(const char *name)
{
	Oid			relid = sa_audit_relid(name);

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("relation %s.%s does not exist", SA_SCHEMA, name),
				 errdetail("Changes to tagged columns cannot be recorded, so the transaction is aborted."),
				 errhint("Is the extension sensitive_audit installed in this database?")));
	return relid;
}

/*
 * The storage relations' OIDs, looked up once per backend and forgotten
 * when any of them is invalidated (dropped, or the extension reinstalled).
 * The same callback tells contexts.cpp and heads.cpp, whose caches are tied
 * to these relations too.
 */
SaStorage	cached_storage;

void
invalidate_storage(Datum arg, Oid relid)
{
	sa_heads_invalidate(relid);
	sa_contexts_invalidate(relid);
	if (relid == InvalidOid || relid == cached_storage.entries
		|| relid == cached_storage.entries_pkey || relid == cached_storage.contexts
		|| relid == cached_storage.contexts_pkey)
		memset(&cached_storage, 0, sizeof(cached_storage));
}

}							/* namespace */

void
sa_storage_relids(SaStorage *s)
{
	if (!OidIsValid(cached_storage.entries) || !OidIsValid(cached_storage.entries_pkey)
		|| !OidIsValid(cached_storage.contexts) || !OidIsValid(cached_storage.contexts_pkey))
	{
		SaStorage	found;

		found.entries = lookup_log_relid(SA_ENTRIES);
		found.entries_pkey = lookup_log_relid(SA_ENTRIES_PKEY);
		found.contexts = lookup_log_relid(SA_CONTEXTS);
		found.contexts_pkey = lookup_log_relid(SA_CONTEXTS_PKEY);
		cached_storage = found;
	}
	*s = cached_storage;
}

/*
 * Register the relcache callback that forgets cached storage OIDs, contexts
 * and (when preloaded) chain heads.  Every backend needs it as soon as it
 * may see an invalidation of the log, not only backends that have linked:
 * _PG_init calls it, once per process.
 */
void
sa_storage_watch(void)
{
	CacheRegisterRelcacheCallback(invalidate_storage, (Datum) 0);
}

namespace {

/*
 * The chain's head: the committed entry with the highest seq.  Read with a
 * non-MVCC snapshot (committed rows, now): we hold the chain's lock, so every
 * earlier holder has ended, and the read takes no serializable predicate
 * locks that would make concurrent serializable writers fail.
 */
bool
read_chain_head(Relation log, Relation pkey, int chain, uint64 *seq, uint8_t hash[SA_DIGEST_LEN])
{
	ScanKeyData key;
	IndexScanDesc scan;
	TupleTableSlot *slot = table_slot_create(log, nullptr);
	bool		found = false;

	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_INT4EQ, Int32GetDatum(chain));
	scan = index_beginscan(log, pkey, SnapshotSelf, 1, 0);
	index_rescan(scan, &key, 1, nullptr, 0);
	if (index_getnext_slot(scan, BackwardScanDirection, slot))
	{
		bool		isnull;
		Datum		d;

		d = slot_getattr(slot, EA_SEQ + 1, &isnull);
		*seq = isnull ? 0 : (uint64) DatumGetInt64(d);
		d = slot_getattr(slot, EA_HASH + 1, &isnull);
		if (!isnull)
		{
			bytea	   *h = DatumGetByteaPP(d);

			memset(hash, 0, SA_DIGEST_LEN);
			memcpy(hash, VARDATA_ANY(h), Min((size_t) VARSIZE_ANY_EXHDR(h), (size_t) SA_DIGEST_LEN));
		}
		else
			memset(hash, 0, SA_DIGEST_LEN);
		found = true;
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	return found;
}

struct LinkState
{
	Relation	log;
	EState	   *estate;
	ResultRelInfo *rri;
	TupleTableSlot **slots;		/* a batch of entries, inserted together */
	int			nslots;
	int			maxslots;
	Size		batch_bytes;
	sa_hasher  *hasher;
	int			chain;
	uint64		seq;
	uint8_t		prev[SA_DIGEST_LEN];
	FullTransactionId fxid;
	const int64 *context_ids;	/* stored ids of the pending contexts */
	MemoryContext rowcxt;		/* the batch's values; reset after each flush */
	bool		last_key_valid; /* row keys are shared by a row's entries */
	Datum		last_key_jsonb;
};

sa_bytes
to_bytes(const PendingStr &s)
{
	sa_bytes	b;

	b.data = s.str;
	b.len = s.str ? (size_t) s.len : 0;
	b.is_null = s.str == nullptr;
	return b;
}

Datum
text_or_null(const PendingStr &s, bool *isnull)
{
	*isnull = s.str == nullptr;
	return *isnull ? (Datum) 0 : PointerGetDatum(cstring_to_text_with_len(s.str, s.len));
}

/* Unix-epoch microseconds, the form the hash covers. */
int64
unix_micros(TimestampTz ts)
{
	return ts + (int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY;
}

/*
 * PostgreSQL stops the statement_timeout timer before a transaction's
 * commit processing, where entries are linked; so the link step holds
 * itself to it, counted from the start of the statement that commits (the
 * COMMIT, or the single statement of its own transaction).  Refusing aborts
 * the transaction with nothing of it linked, as a cancel does.
 */
void
check_statement_timeout(void)
{
	if (StatementTimeout > 0 &&
		TimestampDifferenceExceeds(GetCurrentStatementStartTimestamp(), GetCurrentTimestamp(), StatementTimeout))
		ereport(ERROR,
				(errcode(ERRCODE_QUERY_CANCELED),
				 errmsg("canceling statement due to statement timeout"),
				 errdetail("The transaction was linking its audit entries at commit; none of it is committed.")));
}

/*
 * Insert the batch of entries: one heap call for all of them (heap pages
 * are filled and WAL-logged a page at a time, as COPY does), then their
 * index entries.  Below SQL, so no trigger fires and no privilege is
 * checked: the guards are for SQL, and writers need no grant on the log.
 */
void
flush_batch(LinkState *st)
{
	if (st->nslots == 0)
		return;

	/*
	 * Whatever inserting allocates goes with the batch.  The slots are the
	 * table's own kind, so each holds its heap tuple and frees it when
	 * cleared (a virtual slot would make heap_multi_insert leave a copy of
	 * every tuple in the current context: memory growing with the commit).
	 */
	MemoryContext old = MemoryContextSwitchTo(st->rowcxt);

	/* a large commit can be cancelled while it links: its entries go with it */
	if (sa_link_delay > 0)
	{
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, sa_link_delay,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
	CHECK_FOR_INTERRUPTS();
	check_statement_timeout();
	/* most commits link one entry: the plain insert path is lighter then */
	if (st->nslots == 1)
		table_tuple_insert(st->log, st->slots[0], GetCurrentCommandId(true), 0, nullptr);
	else
		table_multi_insert(st->log, st->slots, st->nslots, GetCurrentCommandId(true), 0, nullptr);
	if (st->rri->ri_NumIndices > 0)
	{
		for (int i = 0; i < st->nslots; i++)
		{
			List	   *recheck = ExecInsertIndexTuples(st->rri, st->slots[i], st->estate,
														false, false, nullptr, NIL);

			list_free(recheck);
			ResetPerTupleExprContext(st->estate);
		}
	}
	for (int i = 0; i < st->nslots; i++)
		ExecClearTuple(st->slots[i]);
	st->nslots = 0;
	st->batch_bytes = 0;
	st->last_key_valid = false; /* its jsonb lived in the batch's memory */
	MemoryContextSwitchTo(old);
	MemoryContextReset(st->rowcxt);
}

void
link_one(const PendingEntry *e, int context, bool key_repeated, void *arg)
{
	LinkState  *st = (LinkState *) arg;
	sa_entry	entry;
	uint8_t		digest[SA_DIGEST_LEN];
	MemoryContext old = MemoryContextSwitchTo(st->rowcxt);

	memset(&entry, 0, sizeof(entry));
	entry.format = e->format != 0 ? e->format : SA_FORMAT_VERSION;
	entry.chain = (uint32_t) st->chain;
	entry.seq = st->seq + 1;
	entry.txid = U64FromFullTransactionId(st->fxid);
	entry.event_time = unix_micros(e->event_time);
#define SA_FROM_PENDING_(name, NAME, sqltype) entry.name = to_bytes(e->f[PF_##NAME]);
	SA_TEXT_FIELDS(SA_FROM_PENDING_)
#undef SA_FROM_PENDING_
	entry.backend_pid = e->backend_pid;
	memcpy(entry.prev_hash, st->prev, SA_DIGEST_LEN);

	int			rc = sa_entry_hash(st->hasher, &entry, digest);

	if (rc != SA_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not hash audit log entry: %s", sa_strerror(rc))));

	/* slots are made as the first batch needs them: most commits link one entry */
	if (st->slots[st->nslots] == nullptr)
	{
		MemoryContext keep = MemoryContextSwitchTo(st->estate->es_query_cxt);

		st->slots[st->nslots] = ExecInitExtraTupleSlot(st->estate, RelationGetDescr(st->log),
													   table_slot_callbacks(st->log));
		MemoryContextSwitchTo(keep);
	}

	TupleTableSlot *slot = st->slots[st->nslots];
	Datum	   *v = slot->tts_values;
	bool	   *n = slot->tts_isnull;

	ExecClearTuple(slot);
	memset(n, 0, sizeof(bool) * slot->tts_tupleDescriptor->natts);
	v[EA_CHAIN] = Int32GetDatum(st->chain);
	v[EA_BACKEND_PID] = Int32GetDatum(e->backend_pid);
	v[EA_SEQ] = Int64GetDatum((int64) entry.seq);
	v[EA_TXID] = FullTransactionIdGetDatum(st->fxid);
	v[EA_EVENT_TIME] = TimestampTzGetDatum(e->event_time);
	v[EA_CONTEXT] = Int64GetDatum(st->context_ids[context]);
	v[EA_FORMAT] = Int16GetDatum((int16) entry.format);
	if (e->f[PF_ROW_KEY].str == nullptr)
		n[EA_ROW_KEY] = true;
	else
	{
		if (!key_repeated || !st->last_key_valid)
		{
			st->last_key_jsonb = DirectFunctionCall1(jsonb_in, CStringGetDatum(e->f[PF_ROW_KEY].str));
			st->last_key_valid = true;
		}
		v[EA_ROW_KEY] = st->last_key_jsonb;
	}
	/* the other texts of log_entries (old_value, new_value) as they are */
#define SA_STORE_jsonb(NAME)	/* the row key, above */
#define SA_STORE_text(NAME) v[EA_##NAME] = text_or_null(e->f[PF_##NAME], &n[EA_##NAME]);
#define SA_STORE_(name, NAME, sqltype) SA_STORE_##sqltype(NAME)
	SA_ENTRY_TEXT_FIELDS(SA_STORE_)
#undef SA_STORE_
#undef SA_STORE_text
#undef SA_STORE_jsonb

	bytea	   *prev = (bytea *) palloc(VARHDRSZ + SA_DIGEST_LEN);
	bytea	   *hash = (bytea *) palloc(VARHDRSZ + SA_DIGEST_LEN);

	SET_VARSIZE(prev, VARHDRSZ + SA_DIGEST_LEN);
	SET_VARSIZE(hash, VARHDRSZ + SA_DIGEST_LEN);
	memcpy(VARDATA(prev), st->prev, SA_DIGEST_LEN);
	memcpy(VARDATA(hash), digest, SA_DIGEST_LEN);
	v[EA_PREV_HASH] = PointerGetDatum(prev);
	v[EA_HASH] = PointerGetDatum(hash);
	ExecStoreVirtualTuple(slot);

	st->nslots++;
	st->batch_bytes += entry.old_value.len + entry.new_value.len + entry.row_key.len + 128;

	st->seq = entry.seq;
	memcpy(st->prev, digest, SA_DIGEST_LEN);
	MemoryContextSwitchTo(old);
	if (st->nslots == st->maxslots || st->batch_bytes > 1024 * 1024)
		flush_batch(st);
}

/*
 * One hashing context per backend, made on first use and kept: it holds an
 * OpenSSL digest context and a buffer, nothing tied to a transaction, so an
 * error in the middle of linking leaves it reusable.  It lives as long as
 * the process and is reclaimed with it.
 */
sa_hasher  *backend_hasher = nullptr;

sa_hasher *
get_hasher(void)
{
	if (backend_hasher == nullptr)
	{
		backend_hasher = sa_hasher_create();
		if (backend_hasher == nullptr)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("could not create hashing context")));
	}
	return backend_hasher;
}

}							/* namespace */

void
sa_link_pending(bool preparing)
{
	if (!sa_pending_any())
	{
		sa_pending_linked();	/* nothing may be queued from here on */
		return;
	}

	SaStorage	storage;
	LinkState	st;

	sa_storage_relids(&storage);

	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "sensitive_audit link",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);

	memset(&st, 0, sizeof(st));
	st.hasher = get_hasher();

	/* the shared fields first, before any chain is held: one id per pending context */
	int64	   *ids = (int64 *) palloc(sizeof(int64) * Max(sa_pending_ncontexts(), 1));

	sa_contexts_resolve(&storage, ids);
	st.context_ids = ids;

	PushActiveSnapshot(GetTransactionSnapshot());

	/*
	 * Every lock on the log this commit needs is taken before its chain's:
	 * whoever could make us wait for one then delays only this commit, not
	 * every committer queued behind the chain.
	 */
	st.fxid = GetTopFullTransactionId();
	st.log = table_open(storage.entries, RowExclusiveLock);
	if (strcmp(RelationGetRelationName(st.log), SA_ENTRIES) != 0)
		elog(ERROR, "cached OID %u of %s.%s names relation \"%s\"",
			 storage.entries, SA_SCHEMA, SA_ENTRIES, RelationGetRelationName(st.log));
	st.estate = CreateExecutorState();
	st.rri = makeNode(ResultRelInfo);
	InitResultRelInfo(st.rri, st.log, 1, nullptr, 0);
	st.rri->ri_TrigDesc = nullptr;	/* the guards are for SQL, not for us */
	ExecOpenIndices(st.rri, false);

	Relation	pkey = index_open(storage.entries_pkey, RowExclusiveLock);

	st.chain = lock_some_chain();

	/* the chain's head: remembered in shared memory, else read from the log */
	sa_heads_begin(storage.entries, st.chain);
	if (!sa_heads_lookup(storage.entries, st.chain, &st.seq, st.prev)
		&& !read_chain_head(st.log, pkey, st.chain, &st.seq, st.prev))
	{
		st.seq = 0;
		memset(st.prev, 0, SA_DIGEST_LEN);
	}
	index_close(pkey, NoLock);
	st.maxslots = 64;
	st.slots = (TupleTableSlot **) palloc0(sizeof(TupleTableSlot *) * st.maxslots);
	st.rowcxt = AllocSetContextCreate(cxt, "sensitive_audit link batch", ALLOCSET_DEFAULT_SIZES);

	sa_pending_foreach(link_one, &st);
	flush_batch(&st);
	sa_heads_linked(st.seq, st.prev, preparing);

	ExecCloseIndices(st.rri);
	ExecResetTupleTable(st.estate->es_tupleTable, false);
	FreeExecutorState(st.estate);
	table_close(st.log, NoLock);
	PopActiveSnapshot();
	CommandCounterIncrement();

	sa_pending_linked();
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
}
