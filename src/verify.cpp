/*
 * verify.cpp — verify() and verify_or_raise().
 *
 * The shared contexts are read into memory first (within
 * maintenance_work_mem; past it, as entries need them); then the entries are
 * streamed (physically, else in (chain, seq) order through their primary
 * key), each entry's fields and its context's handed as bytes to the C++
 * core's streaming verifier, which recomputes every hash and link.  The
 * scans use the caller's MVCC snapshot and so never block writers.
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

/*
 * Turns log rows into sa_entry views.  Row keys and client addresses are
 * printed through PostgreSQL (jsonb_out, inet_out); consecutive rows often
 * share them, so the last text of each is kept in buffers of our own.
 */
struct ContextRec
{
	int64		id;				/* hash key */
	bool		ambiguous;		/* the id is stored more than once */
	bool		missing;		/* no row has the id (cache of reads on demand) */
	sa_bytes	f[SA_CONTEXT_NFIELDS];	/* copies, in the run's memory */
};

struct RowDecoder
{
	MemoryContext cxt;			/* lives as long as the run */
	HTAB	   *contexts;		/* log_contexts, by id: all of them, or a cache */
	MemoryContext ctxcxt;		/* holds contexts and its copies */
	Size		ctx_bytes;		/* about what ctxcxt holds */
	Size		ctx_budget;		/* maintenance_work_mem */
	bool		on_demand;		/* contexts is a cache, filled through the index */
	Relation	ctxrel;
	Relation	ctxidx;
	Snapshot	snapshot;
	TupleTableSlot *ctxslot;
	int64		last_context_id;
	const ContextRec *last_context;
	MemoryContext rowcxt;		/* reset after every row */
	bytea	   *last_addr;
	char	   *last_addr_text;
	Jsonb	   *last_key;
	size_t		last_key_cap;
	char	   *last_key_text;
	size_t		last_key_text_cap;
	Relation	kept;			/* erasable_values, when it exists */
	Relation	kept_pkey;
	HTAB	   *kept_problems;	/* chain -> KeptProblem */
	List	   *erased;			/* ErasedValue: erased values, held to ERASE entries at the end */
	List	   *erase_keys;		/* the row keys of the ERASE entries seen (text) */
};

/* The row keys of ERASE entries, by a hash of their text. */
struct EraseKeys
{
	uint64		hash;			/* hash key */
	List	   *keys;
};

/* An entry whose kept value is erased: an ERASE entry must name its row key. */
struct ErasedValue
{
	uint32		chain;
	uint64		seq;
	char	   *row_key;		/* as erasable_values holds it now */
	const char *which;
};

/*
 * The first entry of a chain whose erasable value, kept beside the log, is
 * gone without an erasure or no longer matches the commitment the entry
 * holds (the hash chain covers the commitment only).
 */
struct KeptProblem
{
	uint32		chain;			/* hash key */
	uint64		seq;
	char	   *problem;
};

/* Copy len bytes into buf (of *cap bytes in cxt), growing it as needed. */
void *
keep_copy(MemoryContext cxt, void *buf, size_t *cap, const void *data, size_t len)
{
	if (len > *cap)
	{
		*cap = Max(len, 2 * *cap);
		buf = buf ? repalloc(buf, *cap) : MemoryContextAlloc(cxt, *cap);
	}
	memcpy(buf, data, len);
	return buf;
}

const ContextRec *find_context(RowDecoder *d, int64 id);

/* Fill *e, *hash and *hashlen from the slot's row; allocates in rowcxt. */
void
decode_row(RowDecoder *d, TupleTableSlot *slot, sa_entry *e, const uint8_t **hash, size_t *hashlen)
{
	bool	   *n;
	Datum	   *v;

	slot_getallattrs(slot);
	v = slot->tts_values;
	n = slot->tts_isnull;
	memset(e, 0, sizeof(*e));
	e->chain = n[EA_CHAIN] ? 0 : (uint32_t) DatumGetInt32(v[EA_CHAIN]);
	e->seq = n[EA_SEQ] ? 0 : (uint64_t) DatumGetInt64(v[EA_SEQ]);
	e->txid = n[EA_TXID] ? 0 : U64FromFullTransactionId(DatumGetFullTransactionId(v[EA_TXID]));
	e->event_time = n[EA_EVENT_TIME] ? 0 : DatumGetTimestampTz(v[EA_EVENT_TIME])
		+ (int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY;
	if (n[EA_ROW_KEY])
		e->row_key = cstring_bytes(nullptr);
	else
	{
		Jsonb	   *jb = DatumGetJsonbP(v[EA_ROW_KEY]);

		if (d->last_key == nullptr || VARSIZE(jb) != VARSIZE(d->last_key)
			|| memcmp(jb, d->last_key, VARSIZE(jb)) != 0)
		{
			char	   *text = JsonbToCString(nullptr, &jb->root, VARSIZE(jb));
			size_t		len = strlen(text);

			d->last_key = (Jsonb *) keep_copy(d->cxt, d->last_key, &d->last_key_cap, jb, VARSIZE(jb));
			d->last_key_text = (char *) keep_copy(d->cxt, d->last_key_text, &d->last_key_text_cap,
												  text, len + 1);
		}
		e->row_key = cstring_bytes(d->last_key_text);
	}
	/* the other texts of log_entries (old_value, new_value) as they are */
#define SA_LOAD_jsonb(name, NAME)	/* the row key, above */
#define SA_LOAD_text(name, NAME) e->name = datum_bytes(v[EA_##NAME], n[EA_##NAME]);
#define SA_LOAD_(name, NAME, sqltype) SA_LOAD_##sqltype(name, NAME)
	SA_ENTRY_TEXT_FIELDS(SA_LOAD_)
#undef SA_LOAD_
#undef SA_LOAD_text
#undef SA_LOAD_jsonb
	e->backend_pid = n[EA_BACKEND_PID] ? 0 : DatumGetInt32(v[EA_BACKEND_PID]);
	e->format = n[EA_FORMAT] ? 0 : (uint16_t) DatumGetInt16(v[EA_FORMAT]);

	/*
	 * The shared fields, from the entry's context.  A context that is
	 * missing, or stored twice, gives none: the entry then fails its hash,
	 * as it should, since what sensitive_audit.log shows for it is not what
	 * was hashed.
	 */
	const ContextRec *c = nullptr;

	if (!n[EA_CONTEXT])
	{
		int64		id = DatumGetInt64(v[EA_CONTEXT]);

		if (d->last_context != nullptr && d->last_context_id == id)
			c = d->last_context;
		else
		{
			c = find_context(d, id);
			d->last_context_id = id;
			d->last_context = c;
		}
		if (c != nullptr && c->ambiguous)
			c = nullptr;
	}
	sa_bytes	none = cstring_bytes(nullptr);
	const sa_bytes *f = c ? c->f : nullptr;

#define SA_FROM_CONTEXT_(name, NAME, sqltype) e->name = f ? f[SA_CTX_##NAME] : none;
	SA_CONTEXT_TEXT_FIELDS(SA_FROM_CONTEXT_)
#undef SA_FROM_CONTEXT_

	*hash = nullptr;
	*hashlen = 0;
	if (!n[EA_HASH])
	{
		bytea	   *h = DatumGetByteaPP(v[EA_HASH]);

		*hash = (const uint8_t *) VARDATA_ANY(h);
		*hashlen = VARSIZE_ANY_EXHDR(h);
	}

	/*
	 * A link that is not exactly 32 bytes cannot be hashed as written:
	 * report the entry as malformed rather than pad or cut it.
	 */
	bytea	   *prev = n[EA_PREV_HASH] ? nullptr : DatumGetByteaPP(v[EA_PREV_HASH]);

	if (prev != nullptr && VARSIZE_ANY_EXHDR(prev) == SA_DIGEST_LEN)
		memcpy(e->prev_hash, VARDATA_ANY(prev), SA_DIGEST_LEN);
	else
		*hashlen = 0;
}

/* Keep the first problem of a chain with the kept values. */
void
kept_problem(RowDecoder *d, const sa_entry *e, const char *problem)
{
	bool		found;
	KeptProblem *p = (KeptProblem *) hash_search(d->kept_problems, &e->chain, HASH_ENTER, &found);

	if (found && p->seq <= e->seq)
		return;
	p->seq = e->seq;
	p->problem = MemoryContextStrdup(d->cxt, problem);
}

/* One value of a format 2 entry: if it is a commitment, hold the kept value to it. */
void
check_kept_value(RowDecoder *d, const sa_entry *e, const sa_bytes *b, const char *which)
{
	uint8_t		digest[SA_DIGEST_LEN];

	if (b->is_null || !sa_protect_commitment_bytes(b->data, b->len, digest))
		return;

	bytea	   *want = (bytea *) palloc(VARHDRSZ + SA_DIGEST_LEN);

	SET_VARSIZE(want, VARHDRSZ + SA_DIGEST_LEN);
	memcpy(VARDATA(want), digest, SA_DIGEST_LEN);

	ScanKeyData key;

	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_BYTEAEQ, PointerGetDatum(want));

	SysScanDesc scan = systable_beginscan(d->kept, RelationGetRelid(d->kept_pkey), true, d->snapshot, 1, &key);
	HeapTuple	tuple = systable_getnext(scan);

	if (!HeapTupleIsValid(tuple))
		kept_problem(d, e, psprintf("erasable value missing: the %s's salt and value are gone without an erasure",
									which));
	else
	{
		TupleDesc	desc = RelationGetDescr(d->kept);
		bool		snull,
					vnull;
		Datum		salt = heap_getattr(tuple, 5, desc, &snull);
		Datum		value = heap_getattr(tuple, 6, desc, &vnull);

		if (snull)
		{
			bool		knull;
			Datum		k = heap_getattr(tuple, 4, desc, &knull);
			MemoryContext old = MemoryContextSwitchTo(d->cxt);
			ErasedValue *ev = (ErasedValue *) palloc(sizeof(ErasedValue));

			ev->chain = e->chain;
			ev->seq = e->seq;
			ev->row_key = knull ? nullptr : JsonbToCString(nullptr, &DatumGetJsonbP(k)->root, VARSIZE_ANY(DatumGetPointer(k)));
			ev->which = which;
			d->erased = lappend(d->erased, ev);
			MemoryContextSwitchTo(old);
		}
		else
		{
			bytea	   *s = DatumGetByteaPP(salt);
			text	   *t = vnull ? nullptr : DatumGetTextPP(value);
			char		got[SA_COMMITMENT_TEXT_LEN + 1];

			if (t == nullptr || VARSIZE_ANY_EXHDR(s) != SA_PROTECT_KEY_LEN
				|| sa_commitment_text((const uint8_t *) VARDATA_ANY(s), VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t),
									  got) != SA_OK
				|| memcmp(got, b->data, SA_COMMITMENT_TEXT_LEN) != 0)
				kept_problem(d, e, psprintf("erasable value changed: the kept %s does not match its commitment",
											which));
		}
	}
	systable_endscan(scan);
}

void
check_kept(RowDecoder *d, const sa_entry *e)
{
	/* the row keys ERASE entries name (format 1 entries of the audit setup) */
	if (d->kept != nullptr && e->format == SA_FORMAT_VERSION && !e->row_key.is_null && !e->operation.is_null
		&& e->operation.len == 5 && memcmp(e->operation.data, "ERASE", 5) == 0)
	{
		MemoryContext old = MemoryContextSwitchTo(d->cxt);

		d->erase_keys = lappend(d->erase_keys, pnstrdup(e->row_key.data, e->row_key.len));
		MemoryContextSwitchTo(old);
	}
	if (e->format != SA_FORMAT_PROTECTED || d->kept == nullptr)
		return;
	check_kept_value(d, e, &e->old_value, "old_value");
	check_kept_value(d, e, &e->new_value, "new_value");
}

/* One row of log_contexts into d->contexts. */
void
load_context_row(TupleTableSlot *slot, RowDecoder *d)
{
	bool		found;

	slot_getallattrs(slot);

	Datum	   *v = slot->tts_values;
	bool	   *n = slot->tts_isnull;

	if (n[0])
		return;					/* no entry can refer to it */

	int64		id = DatumGetInt64(v[0]);
	ContextRec *c = (ContextRec *) hash_search(d->contexts, &id, HASH_ENTER, &found);

	if (found)
	{
		c->ambiguous = true;
		return;
	}
	c->ambiguous = false;
	c->missing = false;
	d->ctx_bytes += sizeof(ContextRec) + 64;	/* the hash table's own share, roughly */
	for (int i = 0; i < SA_CONTEXT_NFIELDS; i++)
	{
		const char *src;
		int			len;

		if (!sa_context_field(slot, i, &src, &len))
		{
			c->f[i] = cstring_bytes(nullptr);
			continue;
		}

		char	   *copy = (char *) MemoryContextAlloc(d->ctxcxt, Max(len, 1));

		memcpy(copy, src, len);
		c->f[i].data = copy;
		c->f[i].len = len;
		c->f[i].is_null = 0;
		d->ctx_bytes += Max(len, 1) + 16;
	}
}

/* An empty d->contexts, in an emptied d->ctxcxt. */
void
reset_contexts(RowDecoder *d)
{
	HASHCTL		ctl;

	MemoryContextReset(d->ctxcxt);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(int64);
	ctl.entrysize = sizeof(ContextRec);
	ctl.hcxt = d->ctxcxt;
	d->contexts = hash_create("sensitive_audit verify contexts", 256, &ctl,
							  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	d->ctx_bytes = 0;
	d->last_context = nullptr;
}

/*
 * Read the stored contexts into d->contexts.  They are usually few (one per
 * combination of table, column, operation and who), but nothing bounds how
 * many there are: past maintenance_work_mem, the run drops them and reads
 * each one when an entry needs it, through the primary key, into a cache
 * that is emptied whenever it outgrows the same budget.  Entries that share
 * a context are mostly stored together, so few are read twice.  Without the
 * primary key (a superuser may drop it), they are all kept.
 */
void
load_contexts(Relation rel, Relation pkey, Snapshot snapshot, RowDecoder *d)
{
	d->ctxcxt = AllocSetContextCreate(d->cxt, "sensitive_audit verify contexts", ALLOCSET_DEFAULT_SIZES);
	d->ctx_budget = (Size) maintenance_work_mem * 1024;
	d->ctxrel = rel;
	d->ctxidx = pkey;
	d->snapshot = snapshot;
	d->ctxslot = table_slot_create(rel, nullptr);
	reset_contexts(d);

	TableScanDesc scan = table_beginscan_strat(rel, snapshot, 0, nullptr, true, false);

	while (table_scan_getnextslot(scan, ForwardScanDirection, d->ctxslot))
	{
		MemoryContext old = MemoryContextSwitchTo(d->rowcxt);

		CHECK_FOR_INTERRUPTS();
		load_context_row(d->ctxslot, d);
		MemoryContextSwitchTo(old);
		MemoryContextReset(d->rowcxt);
		if (d->ctx_bytes > d->ctx_budget && pkey != nullptr)
		{
			d->on_demand = true;
			reset_contexts(d);
			ereport(DEBUG1,
					(errmsg("audit log contexts exceed maintenance_work_mem; reading them as entries need them")));
			break;
		}
	}
	table_endscan(scan);
}

/* The context of this id, or nullptr when there is none. */
const ContextRec *
find_context(RowDecoder *d, int64 id)
{
	ContextRec *c = (ContextRec *) hash_search(d->contexts, &id, HASH_FIND, nullptr);

	if (c != nullptr || !d->on_demand)
		return c != nullptr && c->missing ? nullptr : c;

	if (d->ctx_bytes > d->ctx_budget)
		reset_contexts(d);

	/* every stored row with this id: more than one makes it ambiguous */
	ScanKeyData key;

	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(id));
	IndexScanDesc scan = index_beginscan(d->ctxrel, d->ctxidx, d->snapshot, 1, 0);

	index_rescan(scan, &key, 1, nullptr, 0);
	while (index_getnext_slot(scan, ForwardScanDirection, d->ctxslot))
		load_context_row(d->ctxslot, d);
	index_endscan(scan);
	ExecClearTuple(d->ctxslot);

	bool		found;

	c = (ContextRec *) hash_search(d->contexts, &id, HASH_ENTER, &found);
	if (!found)
	{
		/* remembered as missing, so that its entries do not read it again */
		c->ambiguous = false;
		c->missing = true;
		d->ctx_bytes += sizeof(ContextRec) + 64;
		return nullptr;
	}
	return c;
}

/* ------------------------------------------------------------------------
 * The fast path: one physical pass over the log.
 *
 * Within a chain, entries are appended in seq order, so a physical scan
 * meets each chain's entries nearly in order; only entries written by
 * different backends into different pages can come early.  An entry that
 * comes before its turn waits in a stash (a copy of its bytes) until its
 * predecessor has been fed.  If the stash outgrows its budget (a log
 * reorganised out of order, or a chain missing an early entry with many
 * after it), the pass gives up and the caller verifies in index order.
 */
struct StashKey
{
	uint32		chain;
	uint64		seq;
};

/*
 * The stash hashes and compares its keys as bytes: the padding between the
 * fields must be zero, which brace initialisation does not promise.
 */
StashKey
stash_key(uint32 chain, uint64 seq)
{
	StashKey	key;

	memset(&key, 0, sizeof(key));
	key.chain = chain;
	key.seq = seq;
	return key;
}

struct StashEntry
{
	StashKey	key;			/* hash key; must be first */
	sa_entry	entry;
	uint8_t    *hash;
	size_t		hashlen;
	Size		bytes;
	StashEntry *next_dup;		/* another row with the same chain and seq */
};

struct ChainNext
{
	uint32		chain;			/* hash key */
	uint64		next_seq;
};

void
copy_bytes(sa_bytes *b, char **p)
{
	if (!b->is_null && b->len > 0)
	{
		memcpy(*p, b->data, b->len);
		b->data = *p;
		*p += b->len;
	}
}

Size
entry_bytes(const sa_entry *e)
{
#define SA_TEXT_LEN_(name, NAME, sqltype) + e->name.len
	return 0 SA_TEXT_FIELDS(SA_TEXT_LEN_);
#undef SA_TEXT_LEN_
}

/* Copy an entry and its hash into one allocation in cxt. */
void
stash_copy(StashEntry *s, const sa_entry *e, const uint8_t *hash, size_t hashlen, MemoryContext cxt)
{
	Size		bytes = entry_bytes(e) + hashlen;
	char	   *p = (char *) MemoryContextAllocHuge(cxt, Max(bytes, 1));

	s->entry = *e;
	s->bytes = bytes + sizeof(StashEntry);
	s->hash = hash ? (uint8_t *) p : nullptr;
	s->hashlen = hashlen;
	if (hash)
	{
		memcpy(p, hash, hashlen);
		p += hashlen;
	}
#define SA_COPY_TEXT_(name, NAME, sqltype) copy_bytes(&s->entry.name, &p);
	SA_TEXT_FIELDS(SA_COPY_TEXT_)
#undef SA_COPY_TEXT_
}

int
stash_order(const void *a, const void *b)
{
	const StashEntry *x = *(StashEntry *const *) a;
	const StashEntry *y = *(StashEntry *const *) b;

	if (x->key.chain != y->key.chain)
		return x->key.chain < y->key.chain ? -1 : 1;
	if (x->key.seq != y->key.seq)
		return x->key.seq < y->key.seq ? -1 : 1;
	return 0;
}

bool
physical_pass(Relation log, Snapshot snapshot, sa_verifier *v, RowDecoder *d)
{
	HASHCTL		ctl;
	MemoryContext stashcxt = AllocSetContextCreate(d->cxt, "sensitive_audit verify stash",
												   ALLOCSET_DEFAULT_SIZES);
	/* the stash may use up to maintenance_work_mem */
	Size		budget = (Size) maintenance_work_mem * 1024;
	Size		stashed = 0;
	long		nstashed = 0;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(uint32);
	ctl.entrysize = sizeof(ChainNext);
	ctl.hcxt = d->cxt;
	HTAB	   *nexts = hash_create("sensitive_audit verify chains", 64, &ctl,
									HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(StashKey);
	ctl.entrysize = sizeof(StashEntry);
	ctl.hcxt = stashcxt;
	HTAB	   *stash = hash_create("sensitive_audit verify stash", 1024, &ctl,
									HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	TupleTableSlot *slot = table_slot_create(log, nullptr);

	/* no synchronized scan: it would start in the middle of the log */
	TableScanDesc scan = table_beginscan_strat(log, snapshot, 0, nullptr, true, false);
	bool		complete = true;

	check_core(sa_verifier_allow_interleaved(v));
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		MemoryContext old = MemoryContextSwitchTo(d->rowcxt);
		sa_entry	e;
		const uint8_t *hash;
		size_t		hashlen;
		bool		found;

		CHECK_FOR_INTERRUPTS();
		decode_row(d, slot, &e, &hash, &hashlen);
		check_kept(d, &e);

		ChainNext  *cn = (ChainNext *) hash_search(nexts, &e.chain, HASH_ENTER, &found);

		if (!found)
			cn->next_seq = 1;
		if (e.seq > cn->next_seq)
		{
			/* early: keep it until its predecessor has been fed */
			StashKey	key = stash_key(e.chain, e.seq);
			StashEntry *s = (StashEntry *) hash_search(stash, &key, HASH_ENTER, &found);
			StashEntry *target = s;

			if (found)
			{
				target = (StashEntry *) MemoryContextAlloc(stashcxt, sizeof(StashEntry));
				target->key = key;
				target->next_dup = s->next_dup;
				s->next_dup = target;
			}
			else
				s->next_dup = nullptr;
			stash_copy(target, &e, hash, hashlen, stashcxt);
			stashed += target->bytes;
			nstashed++;
			MemoryContextSwitchTo(old);
			MemoryContextReset(d->rowcxt);
			if (stashed > budget)
			{
				complete = false;
				break;
			}
			continue;
		}

		/* its turn (or a repeat of a seq already fed: the verifier says so) */
		check_core(sa_verifier_feed(v, &e, hash, hashlen));
		if (e.seq == cn->next_seq)
			cn->next_seq++;
		MemoryContextSwitchTo(old);
		MemoryContextReset(d->rowcxt);

		/* feed what was waiting for it */
		while (nstashed > 0)
		{
			StashKey	key = stash_key(cn->chain, cn->next_seq);
			StashEntry *s = (StashEntry *) hash_search(stash, &key, HASH_FIND, nullptr);

			if (s == nullptr)
				break;
			for (StashEntry *x = s; x != nullptr; x = x->next_dup)
			{
				check_core(sa_verifier_feed(v, &x->entry, x->hash, x->hashlen));
				stashed -= x->bytes;
				nstashed--;
			}
			hash_search(stash, &key, HASH_REMOVE, nullptr);
			cn->next_seq++;
		}
	}
	table_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);

	if (complete && nstashed > 0)
	{
		/*
		 * What still waits follows a missing entry: feed it in order, and
		 * the verifier reports the gap where the chain breaks off.
		 */
		StashEntry **all = (StashEntry **) MemoryContextAllocHuge(stashcxt, sizeof(StashEntry *) * nstashed);
		long		n = 0;
		HASH_SEQ_STATUS status;
		StashEntry *s;

		hash_seq_init(&status, stash);
		while ((s = (StashEntry *) hash_seq_search(&status)) != nullptr)
			for (StashEntry *x = s; x != nullptr; x = x->next_dup)
				all[n++] = x;
		qsort(all, n, sizeof(StashEntry *), stash_order);
		for (long i = 0; i < n; i++)
			check_core(sa_verifier_feed(v, &all[i]->entry, all[i]->hash, all[i]->hashlen));
	}
	MemoryContextDelete(stashcxt);
	return complete;
}

/* The fallback: the whole log in (chain, seq) order through its primary key. */
void
index_pass(Relation log, Relation pkey, Snapshot snapshot, sa_verifier *v, RowDecoder *d)
{
	TupleTableSlot *slot = table_slot_create(log, nullptr);
	IndexScanDesc scan = index_beginscan(log, pkey, snapshot, 0, 0);

	index_rescan(scan, nullptr, 0, nullptr, 0);
	while (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		MemoryContext old = MemoryContextSwitchTo(d->rowcxt);
		sa_entry	e;
		const uint8_t *hash;
		size_t		hashlen;

		CHECK_FOR_INTERRUPTS();
		decode_row(d, slot, &e, &hash, &hashlen);
		check_kept(d, &e);
		check_core(sa_verifier_feed(v, &e, hash, hashlen));
		MemoryContextSwitchTo(old);
		MemoryContextReset(d->rowcxt);
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
}

sa_verifier *
new_verifier(VerifyRun *run, const SaExpectations *x)
{
	if (run->verifier != nullptr)
	{
		sa_verifier_destroy(run->verifier);
		run->verifier = nullptr;
	}
	run->verifier = sa_verifier_create();
	if (run->verifier == nullptr)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("could not create verifier")));
	for (int i = 0; i < x->nroots; i++)
		check_core(sa_verifier_expect_root(run->verifier, x->roots[i].chain, x->roots[i].size,
										   x->roots[i].root, x->roots[i].label));
	for (int64 i = 0; i < x->nnodes; i++)
		check_core(sa_verifier_expect_node(run->verifier, x->nodes[i].chain, x->nodes[i].level,
										   x->nodes[i].index, x->nodes[i].hash));
	return run->verifier;
}

/*
 * Stream the whole log through a new verifier, holding it to the stored
 * checkpoints and tree nodes; returns it finished, with in *x what it was
 * held to (x->bad: stored checkpoints that are not checkpoints of this log)
 * and in *kept_problems the first entry per chain whose erasable value
 * fails (KeptProblem).
 */
sa_verifier *
run_verifier(MemoryContext cxt, SaExpectations *x, HTAB **kept_problems)
{
	Oid			nsp = get_namespace_oid(SA_SCHEMA, false);
	Oid			viewid = get_relname_relid(SA_LOG, nsp);
	Oid			logid = get_relname_relid(SA_ENTRIES, nsp);
	Oid			pkeyid = get_relname_relid(SA_ENTRIES_PKEY, nsp);
	Oid			contextsid = get_relname_relid(SA_CONTEXTS, nsp);
	Oid			contextspkeyid = get_relname_relid(SA_CONTEXTS_PKEY, nsp);

	if (!OidIsValid(viewid) || !OidIsValid(logid) || !OidIsValid(pkeyid) || !OidIsValid(contextsid))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the audit log's storage is missing"),
				 errdetail("%s.%s, %s.%s, its primary key and %s.%s must all exist.",
						   SA_SCHEMA, SA_LOG, SA_SCHEMA, SA_ENTRIES, SA_SCHEMA, SA_CONTEXTS)));

	/* Reading below SQL: check the privilege SQL would have checked. */
	AclResult	acl = pg_class_aclcheck(viewid, GetUserId(), ACL_SELECT);

	if (acl != ACLCHECK_OK)
		aclcheck_error(acl, OBJECT_VIEW, SA_SCHEMA "." SA_LOG);

	VerifyRun  *run = (VerifyRun *) MemoryContextAllocZero(cxt, sizeof(VerifyRun));
	MemoryContextCallback *cb = (MemoryContextCallback *) MemoryContextAllocZero(cxt, sizeof(MemoryContextCallback));

	cb->func = free_verifier;
	cb->arg = run;
	MemoryContextRegisterResetCallback(cxt, cb);

	RowDecoder *d = (RowDecoder *) MemoryContextAllocZero(cxt, sizeof(RowDecoder));

	d->cxt = cxt;
	d->rowcxt = AllocSetContextCreate(cxt, "sensitive_audit verify row", ALLOCSET_DEFAULT_SIZES);

	Relation	log = table_open(logid, AccessShareLock);
	Relation	pkey = index_open(pkeyid, AccessShareLock);
	Relation	contexts = table_open(contextsid, AccessShareLock);
	Relation	contexts_pkey = OidIsValid(contextspkeyid) ? index_open(contextspkeyid, AccessShareLock) : nullptr;
	Snapshot	snapshot = RegisterSnapshot(GetTransactionSnapshot());

	load_contexts(contexts, contexts_pkey, snapshot, d);
	d->snapshot = snapshot;

	/* erasable values kept beside the log (1.3), held to their commitments */
	Oid			keptid = get_relname_relid(SA_ERASABLE_VALUES, nsp);
	Oid			keptpkeyid = get_relname_relid(SA_ERASABLE_VALUES "_pkey", nsp);
	HASHCTL		kctl;

	memset(&kctl, 0, sizeof(kctl));
	kctl.keysize = sizeof(uint32);
	kctl.entrysize = sizeof(KeptProblem);
	kctl.hcxt = cxt;
	d->kept_problems = hash_create("sensitive_audit verify kept values", 16, &kctl,
								   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	if (OidIsValid(keptid) && OidIsValid(keptpkeyid))
	{
		d->kept = table_open(keptid, AccessShareLock);
		d->kept_pkey = index_open(keptpkeyid, AccessShareLock);
	}
	{
		MemoryContext old = MemoryContextSwitchTo(cxt);

		sa_load_expectations(snapshot, x);
		MemoryContextSwitchTo(old);
	}

	if (!physical_pass(log, snapshot, new_verifier(run, x), d))
	{
		ereport(DEBUG1,
				(errmsg("audit log entries are out of order beyond maintenance_work_mem; verifying in index order")));
		index_pass(log, pkey, snapshot, new_verifier(run, x), d);
	}
	check_core(sa_verifier_finish(run->verifier));

	/* an erased value no ERASE entry accounts for was erased behind the log's back */
	ListCell   *lc;

	HASHCTL		ectl;

	memset(&ectl, 0, sizeof(ectl));
	ectl.keysize = sizeof(uint64);
	ectl.entrysize = sizeof(EraseKeys);
	ectl.hcxt = cxt;

	HTAB	   *erase_keys = hash_create("sensitive_audit verify erase keys", 64, &ectl,
										 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	foreach(lc, d->erase_keys)
	{
		const char *k = (const char *) lfirst(lc);
		uint64		h = hash_bytes_extended((const unsigned char *) k, (int) strlen(k), 0);
		bool		found;
		EraseKeys  *ek = (EraseKeys *) hash_search(erase_keys, &h, HASH_ENTER, &found);

		if (!found)
			ek->keys = NIL;
		ek->keys = lappend(ek->keys, (void *) k);
	}
	foreach(lc, d->erased)
	{
		ErasedValue *ev = (ErasedValue *) lfirst(lc);
		bool		accounted = false;

		if (ev->row_key != nullptr)
		{
			uint64		h = hash_bytes_extended((const unsigned char *) ev->row_key, (int) strlen(ev->row_key), 0);
			EraseKeys  *ek = (EraseKeys *) hash_search(erase_keys, &h, HASH_FIND, nullptr);
			ListCell   *lk;

			if (ek != nullptr)
				foreach(lk, ek->keys)
					accounted |= strcmp((const char *) lfirst(lk), ev->row_key) == 0;
		}
		if (!accounted)
		{
			sa_entry	e;

			memset(&e, 0, sizeof(e));
			e.chain = ev->chain;
			e.seq = ev->seq;
			kept_problem(d, &e, psprintf("erasable value erased without an ERASE entry: the %s's salt and value "
										 "are gone, and no ERASE entry names row key %s",
										 ev->which, ev->row_key ? ev->row_key : "NULL"));
		}
	}

	ExecDropSingleTupleTableSlot(d->ctxslot);
	if (d->kept != nullptr)
	{
		index_close(d->kept_pkey, AccessShareLock);
		table_close(d->kept, AccessShareLock);
	}
	*kept_problems = d->kept_problems;
	UnregisterSnapshot(snapshot);
	if (contexts_pkey != nullptr)
		index_close(contexts_pkey, AccessShareLock);
	table_close(contexts, AccessShareLock);
	index_close(pkey, AccessShareLock);
	table_close(log, AccessShareLock);
	return run->verifier;
}

/* Chain i's result, with a failing erasable value that comes first. */
void
chain_result(sa_verifier *v, HTAB *kept_problems, size_t i, sa_chain_result *r)
{
	check_core(sa_verifier_result(v, i, r));

	KeptProblem *p = (KeptProblem *) hash_search(kept_problems, &r->chain, HASH_FIND, nullptr);

	if (p != nullptr && (r->ok || p->seq < r->first_bad_seq))
	{
		r->ok = 0;
		r->first_bad_seq = p->seq;
		r->problem = p->problem;
	}
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

	SaExpectations x;
	HTAB	   *kept;
	sa_verifier *v = run_verifier(cxt, &x, &kept);
	size_t		n = sa_verifier_nchains(v);

	/* a stored checkpoint that is not one of this log's: no chain to blame */
	for (int i = 0; i < x.nbad; i++)
	{
		Datum		values[5];
		bool		nulls[5] = {true, false, false, true, false};

		values[1] = Int64GetDatum(0);
		values[2] = BoolGetDatum(false);
		values[4] = CStringGetTextDatum(psprintf("checkpoint " INT64_FORMAT " is not valid: %s",
												 x.bad[i].id, x.bad[i].why));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}

	for (size_t i = 0; i < n; i++)
	{
		sa_chain_result r;
		Datum		values[5];
		bool		nulls[5] = {false, false, false, false, false};

		chain_result(v, kept, i, &r);
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
	SaExpectations x;
	HTAB	   *kept;
	sa_verifier *v = run_verifier(cxt, &x, &kept);
	size_t		n = sa_verifier_nchains(v);
	int64		total = 0;
	int			bad = 0;
	sa_chain_result first_bad;

	memset(&first_bad, 0, sizeof(first_bad));
	for (size_t i = 0; i < n; i++)
	{
		sa_chain_result r;

		chain_result(v, kept, i, &r);
		total += (int64) r.entries;
		if (!r.ok && bad++ == 0)
			first_bad = r;
	}
	if (x.nbad > 0)
	{
		char	   *why = psprintf("checkpoint " INT64_FORMAT " is not valid: %s", x.bad[0].id, x.bad[0].why);

		MemoryContextDelete(cxt);	/* why was copied out of it */
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("a stored audit log checkpoint is corrupted"),
				 errdetail("%s.", why)));
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
