/*
 * trees.cpp — per-chain Merkle trees, checkpoint bodies, stored checkpoints
 * and proofs (DESIGN.md, "Beyond a chain"; docs/FORMAT.md, section 9).
 *
 * Each chain is the leaf sequence of an RFC 9162 tree: leaf i is the entry
 * of seq i + 1.  The complete subtrees at levels 8, 16, 24, ... (one per 256
 * entries, one per 65,536, ...) are kept in sensitive_audit.tree_nodes, so
 * that any complete subtree is the root of at most 256 stored nodes, or of
 * at most 256 entry hashes below level 8, and a root or proof reads a few
 * hundred rows whatever the log's size.  Nodes are added by whoever next
 * needs them (checkpoint_body(), add_checkpoint(), a proof): nothing of
 * this runs when an audited change commits.  The fold that adds them holds
 * a self-conflicting lock on tree_nodes, so concurrent folds take turns, and
 * reads tree_nodes with a fresh snapshot taken after that lock, so a fold
 * never stores a node another one stored meanwhile.  Where nothing may be
 * written (a standby, a read-only transaction) the same nodes are computed
 * in memory for the call.
 *
 * Stored nodes are a cache of what the entries say, never an authority:
 * verify() checks them against the entries, and a proof built from a wrong
 * node fails against any signed checkpoint.
 *
 * Everything here is PostgreSQL-side code: tables are read with index scans
 * into palloc'd arrays, and only arrays cross into the C++ core (sa_core.h).
 */
#include "sensitive_audit.hpp"

extern "C" {
#include "common/base64.h"
}

namespace {

constexpr int kStride = 8;		/* stored levels are multiples of this */
constexpr int kFanout = 1 << kStride;

/* Columns of sensitive_audit.tree_nodes (attnum - 1). */
enum NodeAttr
{
	NA_CHAIN,
	NA_LEVEL,
	NA_IDX,
	NA_HASH,
	NA_NATTS
};

/* Columns of sensitive_audit.checkpoints (attnum - 1). */
enum CheckpointAttr
{
	CA_ID,
	CA_ADDED_AT,
	CA_ADDED_BY,
	CA_LOG_ID,
	CA_TOTAL,
	CA_NOTE,
	CA_NATTS
};

struct NodeKey
{
	int32		chain;
	int32		level;
	int64		idx;
};

struct FreshNode
{
	NodeKey		key;
	uint8		hash[SA_DIGEST_LEN];
};

struct Trees
{
	Relation	entries;
	Relation	entries_pkey;
	Relation	nodes;
	Relation	nodes_pkey;
	Snapshot	snap;			/* the caller's: which entries exist */
	Snapshot	node_snap;		/* registered, taken after the fold lock */
	bool		store;			/* nodes computed may be written */
	LOCKMODE	nodes_lock;
	TupleTableSlot *eslot;
	TupleTableSlot *nslot;
	HTAB	   *fresh;			/* nodes computed during this call */
	/* for inserting nodes */
	EState	   *estate;
	ResultRelInfo *rri;
	TupleTableSlot *islot;
};

Oid
required_relid(const char *name)
{
	Oid			relid = sa_audit_relid(name);

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("%s.%s is missing", SA_SCHEMA, name),
				 errhint("ALTER EXTENSION sensitive_audit UPDATE creates it.")));
	return relid;
}

void
trees_open(Trees *t, bool may_store)
{
	HASHCTL		ctl;

	memset(t, 0, sizeof(*t));
	t->store = may_store && !RecoveryInProgress() && !XactReadOnly;
	t->entries = table_open(required_relid(SA_ENTRIES), AccessShareLock);
	t->entries_pkey = index_open(required_relid(SA_ENTRIES_PKEY), AccessShareLock);

	Oid			nodes = required_relid(SA_TREE_NODES);

	/* ShareUpdateExclusiveLock conflicts with itself, not with readers */
	t->nodes_lock = t->store ? ShareUpdateExclusiveLock : AccessShareLock;
	t->nodes = table_open(nodes, t->nodes_lock);
	if (t->store)
		LockRelationOid(nodes, RowExclusiveLock);
	t->nodes_pkey = index_open(required_relid(SA_TREE_NODES_PKEY), AccessShareLock);
	t->snap = GetActiveSnapshot();
	/* nodes an earlier call of the same statement stored are seen too */
	CommandCounterIncrement();
	t->node_snap = RegisterSnapshot(GetLatestSnapshot());
	t->eslot = table_slot_create(t->entries, nullptr);
	t->nslot = table_slot_create(t->nodes, nullptr);

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(NodeKey);
	ctl.entrysize = sizeof(FreshNode);
	ctl.hcxt = CurrentMemoryContext;
	t->fresh = hash_create("sensitive_audit tree nodes", 256, &ctl,
						   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	if (t->store)
	{
		t->estate = CreateExecutorState();
		t->rri = makeNode(ResultRelInfo);
		InitResultRelInfo(t->rri, t->nodes, 1, nullptr, 0);
		t->rri->ri_TrigDesc = nullptr; /* the guards are for SQL */
		ExecOpenIndices(t->rri, false);
		t->islot = ExecInitExtraTupleSlot(t->estate, RelationGetDescr(t->nodes), &TTSOpsVirtual);
	}
}

void
trees_close(Trees *t)
{
	if (t->store)
	{
		ExecCloseIndices(t->rri);
		ExecResetTupleTable(t->estate->es_tupleTable, false);
		FreeExecutorState(t->estate);
	}
	ExecDropSingleTupleTableSlot(t->eslot);
	ExecDropSingleTupleTableSlot(t->nslot);
	UnregisterSnapshot(t->node_snap);
	index_close(t->nodes_pkey, AccessShareLock);
	table_close(t->nodes, NoLock);
	index_close(t->entries_pkey, AccessShareLock);
	table_close(t->entries, AccessShareLock);
	hash_destroy(t->fresh);
}

void
check_core(int rc, const char *what)
{
	if (rc != SA_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not compute %s: %s", what, sa_strerror(rc))));
}

pg_attribute_noreturn() void
broken_chain(int32 chain, int64 seq, const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("audit log chain %d is broken at seq " INT64_FORMAT ": %s", chain, seq, what),
			 errhint("Run SELECT * FROM sensitive_audit.verify() for every chain's first failure.")));
}

/* ---- Chains and their entries ------------------------------------------- */

/*
 * The highest seq of chain, or of the first chain above `after` when
 * next_chain (then *found_chain is set); 0 when there is none.
 */
int64
chain_size(Trees *t, int32 chain)
{
	ScanKeyData key;
	int64		size = 0;

	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_INT4EQ, Int32GetDatum(chain));
	IndexScanDesc scan = index_beginscan(t->entries, t->entries_pkey, t->snap, 1, 0);

	index_rescan(scan, &key, 1, nullptr, 0);
	if (index_getnext_slot(scan, BackwardScanDirection, t->eslot))
	{
		bool		isnull;
		Datum		d = slot_getattr(t->eslot, EA_SEQ + 1, &isnull);

		size = isnull ? 0 : DatumGetInt64(d);
	}
	index_endscan(scan);
	ExecClearTuple(t->eslot);
	return size;
}

/* The chains present (ascending) and their sizes, found through the index. */
int
list_chains(Trees *t, int32 **chains, int64 **sizes)
{
	int			n = 0;
	int			cap = 16;
	int32		after = -1;
	bool		first = true;

	*chains = (int32 *) palloc(sizeof(int32) * cap);
	*sizes = (int64 *) palloc(sizeof(int64) * cap);
	for (;;)
	{
		ScanKeyData key;
		int32		chain = 0;
		bool		found = false;

		CHECK_FOR_INTERRUPTS();
		IndexScanDesc scan = index_beginscan(t->entries, t->entries_pkey, t->snap, first ? 0 : 1, 0);

		if (!first)
			ScanKeyInit(&key, 1, BTGreaterStrategyNumber, F_INT4GT, Int32GetDatum(after));
		index_rescan(scan, first ? nullptr : &key, first ? 0 : 1, nullptr, 0);
		if (index_getnext_slot(scan, ForwardScanDirection, t->eslot))
		{
			bool		isnull;
			Datum		d = slot_getattr(t->eslot, EA_CHAIN + 1, &isnull);

			found = !isnull;
			chain = isnull ? 0 : DatumGetInt32(d);
		}
		index_endscan(scan);
		ExecClearTuple(t->eslot);
		if (!found)
			break;
		if (chain < 0)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("the audit log holds entries of chain %d; chains are numbered from 0", chain),
					 errhint("Run SELECT * FROM sensitive_audit.verify().")));
		if (n == cap)
		{
			cap *= 2;
			*chains = (int32 *) repalloc(*chains, sizeof(int32) * cap);
			*sizes = (int64 *) repalloc(*sizes, sizeof(int64) * cap);
		}
		(*chains)[n] = chain;
		(*sizes)[n] = chain_size(t, chain);
		n++;
		after = chain;
		first = false;
	}
	return n;
}

/* The stored hashes of entries first_seq .. first_seq + n - 1 of chain. */
void
read_entry_hashes(Trees *t, int32 chain, int64 first_seq, int n, uint8 *out)
{
	ScanKeyData keys[2];
	int			got = 0;

	ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_INT4EQ, Int32GetDatum(chain));
	ScanKeyInit(&keys[1], 2, BTGreaterEqualStrategyNumber, F_INT8GE, Int64GetDatum(first_seq));
	IndexScanDesc scan = index_beginscan(t->entries, t->entries_pkey, t->snap, 2, 0);

	index_rescan(scan, keys, 2, nullptr, 0);
	while (got < n && index_getnext_slot(scan, ForwardScanDirection, t->eslot))
	{
		bool		isnull;
		Datum		d = slot_getattr(t->eslot, EA_SEQ + 1, &isnull);

		if (isnull || DatumGetInt64(d) != first_seq + got)
			broken_chain(chain, first_seq + got, "the entry is missing");
		d = slot_getattr(t->eslot, EA_HASH + 1, &isnull);
		bytea	   *h = isnull ? nullptr : DatumGetByteaPP(d);

		if (h == nullptr || VARSIZE_ANY_EXHDR(h) != SA_DIGEST_LEN)
			broken_chain(chain, first_seq + got, "its hash is missing or malformed");
		memcpy(out + (size_t) got * SA_DIGEST_LEN, VARDATA_ANY(h), SA_DIGEST_LEN);
		got++;
	}
	index_endscan(scan);
	ExecClearTuple(t->eslot);
	if (got < n)
		broken_chain(chain, first_seq + got, "the entry is missing");
}

/*
 * Stored or freshly computed nodes of chain at level, indexes first ..
 * first + n - 1, into out; have[i] says which were found.
 */
void
read_nodes(Trees *t, int32 chain, int level, int64 first, int n, uint8 *out, bool *have)
{
	ScanKeyData keys[3];

	memset(have, 0, sizeof(bool) * n);
	ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_INT4EQ, Int32GetDatum(chain));
	ScanKeyInit(&keys[1], 2, BTEqualStrategyNumber, F_INT2EQ, Int16GetDatum((int16) level));
	ScanKeyInit(&keys[2], 3, BTGreaterEqualStrategyNumber, F_INT8GE, Int64GetDatum(first));
	IndexScanDesc scan = index_beginscan(t->nodes, t->nodes_pkey, t->node_snap, 3, 0);

	index_rescan(scan, keys, 3, nullptr, 0);
	while (index_getnext_slot(scan, ForwardScanDirection, t->nslot))
	{
		bool		isnull;
		Datum		d = slot_getattr(t->nslot, NA_IDX + 1, &isnull);
		int64		idx = isnull ? -1 : DatumGetInt64(d);

		if (idx >= first + n)
			break;
		if (idx < first)
			continue;
		d = slot_getattr(t->nslot, NA_HASH + 1, &isnull);
		bytea	   *h = isnull ? nullptr : DatumGetByteaPP(d);

		if (h == nullptr || VARSIZE_ANY_EXHDR(h) != SA_DIGEST_LEN)
			continue;			/* unusable; recomputed from below */
		memcpy(out + (size_t) (idx - first) * SA_DIGEST_LEN, VARDATA_ANY(h), SA_DIGEST_LEN);
		have[idx - first] = true;
	}
	index_endscan(scan);
	ExecClearTuple(t->nslot);

	for (int i = 0; i < n; i++)
	{
		if (have[i])
			continue;
		NodeKey		key = {chain, level, first + i};
		FreshNode  *f = (FreshNode *) hash_search(t->fresh, &key, HASH_FIND, nullptr);

		if (f != nullptr)
		{
			memcpy(out + (size_t) i * SA_DIGEST_LEN, f->hash, SA_DIGEST_LEN);
			have[i] = true;
		}
	}
}

/* The stored or fresh node count at level: its highest index + 1. */
int64
stored_frontier(Trees *t, int32 chain, int level)
{
	ScanKeyData keys[2];
	int64		frontier = 0;

	ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_INT4EQ, Int32GetDatum(chain));
	ScanKeyInit(&keys[1], 2, BTEqualStrategyNumber, F_INT2EQ, Int16GetDatum((int16) level));
	IndexScanDesc scan = index_beginscan(t->nodes, t->nodes_pkey, t->node_snap, 2, 0);

	index_rescan(scan, keys, 2, nullptr, 0);
	if (index_getnext_slot(scan, BackwardScanDirection, t->nslot))
	{
		bool		isnull;
		Datum		d = slot_getattr(t->nslot, NA_IDX + 1, &isnull);

		if (!isnull)
			frontier = DatumGetInt64(d) + 1;
	}
	index_endscan(scan);
	ExecClearTuple(t->nslot);
	return frontier;
}

void subtree(Trees *t, int32 chain, int level, int64 idx, uint8 *out);

/*
 * The n (a power of two) consecutive nodes of chain at level, from first:
 * leaf hashes at level 0, else stored, fresh or computed nodes.
 */
void
children(Trees *t, int32 chain, int level, int64 first, int n, uint8 *out)
{
	if (level == 0)
	{
		read_entry_hashes(t, chain, first + 1, n, out);
		for (int i = 0; i < n; i++)
		{
			uint8	   *h = out + (size_t) i * SA_DIGEST_LEN;

			check_core(sa_merkle_leaf(h, h), "a leaf hash");
		}
		return;
	}

	bool	   *have = (bool *) palloc(sizeof(bool) * n);

	read_nodes(t, chain, level, first, n, out, have);
	for (int i = 0; i < n; i++)
		if (!have[i])
			subtree(t, chain, level, first + i, out + (size_t) i * SA_DIGEST_LEN);
	pfree(have);
}

/* The hash of the complete level-`level` subtree idx of chain. */
void
subtree(Trees *t, int32 chain, int level, int64 idx, uint8 *out)
{
	int			below;

	CHECK_FOR_INTERRUPTS();
	check_stack_depth();
	if (level == 0)
	{
		children(t, chain, 0, idx, 1, out);
		return;
	}
	if (level % kStride == 0)
	{
		bool		have;

		read_nodes(t, chain, level, idx, 1, out, &have);
		if (have)
			return;
		below = kStride;
	}
	else
		below = level % kStride;

	int			n = 1 << below;
	uint8	   *kids = (uint8 *) palloc((size_t) n * SA_DIGEST_LEN);

	children(t, chain, level - below, idx << below, n, kids);
	check_core(sa_merkle_perfect_root(kids, n, out), "a tree node");
	pfree(kids);
}

void
keep_node(Trees *t, int32 chain, int level, int64 idx, const uint8 *hash)
{
	NodeKey		key = {chain, level, idx};
	bool		found;
	FreshNode  *f = (FreshNode *) hash_search(t->fresh, &key, HASH_ENTER, &found);

	memcpy(f->hash, hash, SA_DIGEST_LEN);
	if (!t->store)
		return;

	TupleTableSlot *slot = t->islot;

	ExecClearTuple(slot);
	memset(slot->tts_isnull, 0, sizeof(bool) * NA_NATTS);
	slot->tts_values[NA_CHAIN] = Int32GetDatum(chain);
	slot->tts_values[NA_LEVEL] = Int16GetDatum((int16) level);
	slot->tts_values[NA_IDX] = Int64GetDatum(idx);

	bytea	   *b = (bytea *) palloc(VARHDRSZ + SA_DIGEST_LEN);

	SET_VARSIZE(b, VARHDRSZ + SA_DIGEST_LEN);
	memcpy(VARDATA(b), hash, SA_DIGEST_LEN);
	slot->tts_values[NA_HASH] = PointerGetDatum(b);
	ExecStoreVirtualTuple(slot);
	table_tuple_insert(t->nodes, slot, GetCurrentCommandId(true), 0, nullptr);
	list_free(ExecInsertIndexTuples(t->rri, slot, t->estate, false, false, nullptr, NIL));
	ResetPerTupleExprContext(t->estate);
	ExecClearTuple(slot);
	pfree(b);
}

/*
 * Make every complete subtree at a stored level within the first `size`
 * entries of chain available: stored when this call may write, else kept
 * for the call.  Bottom up, so each new node is the root of 256 nodes (or
 * entries) just below it.
 */
void
fold(Trees *t, int32 chain, int64 size)
{
	uint8	   *kids = (uint8 *) palloc((size_t) kFanout * SA_DIGEST_LEN);

	for (int level = kStride; level < 63 && (size >> level) > 0; level += kStride)
	{
		int64		complete = size >> level;

		for (int64 i = stored_frontier(t, chain, level); i < complete; i++)
		{
			uint8		node[SA_DIGEST_LEN];

			CHECK_FOR_INTERRUPTS();
			children(t, chain, level - kStride, i << kStride, kFanout, kids);
			check_core(sa_merkle_perfect_root(kids, kFanout, node), "a tree node");
			keep_node(t, chain, level, i, node);
		}
	}
	pfree(kids);
}

/*
 * Root or proof (what: SA_TREE_*) over chain's tree, a and b as in
 * sa_tree_plan; returns the hashes, *n of them.
 */
uint8 *
tree_compute(Trees *t, int32 chain, int what, uint64 a, uint64 b, size_t *n)
{
	size_t		nplan = 0;
	int			rc = sa_tree_plan(what, a, b, nullptr, 0, &nplan);

	if (rc != SA_OK && rc != SA_ERR_SPACE)
		check_core(rc, "a proof plan");

	sa_subtree *plan = (sa_subtree *) palloc(sizeof(sa_subtree) * Max(nplan, 1));

	check_core(sa_tree_plan(what, a, b, plan, nplan, &nplan), "a proof plan");

	uint8	   *hashes = (uint8 *) palloc((size_t) Max(nplan, 1) * SA_DIGEST_LEN);

	for (size_t i = 0; i < nplan; i++)
		subtree(t, chain, (int) plan[i].level, (int64) plan[i].index, hashes + i * SA_DIGEST_LEN);

	size_t		cap = 130;		/* a path has at most 2 * 64 + 1 hashes */
	uint8	   *out = (uint8 *) palloc(cap * SA_DIGEST_LEN);

	check_core(sa_tree_compute(what, a, b, plan, hashes, nplan, out, cap, n), "a proof");
	pfree(plan);
	pfree(hashes);
	return out;
}

void
root_of(Trees *t, int32 chain, int64 size, uint8 *out)
{
	size_t		n;
	uint8	   *r;

	fold(t, chain, size);
	r = tree_compute(t, chain, SA_TREE_ROOT, (uint64) size, 0, &n);
	memcpy(out, r, SA_DIGEST_LEN);
	pfree(r);
}

/* ---- Text ---------------------------------------------------------------- */

void
append_b64(StringInfo s, const uint8 *hash)
{
	char		buf[64];
	int			len = pg_b64_encode((const char *) hash, SA_DIGEST_LEN, buf, sizeof(buf));

	if (len < 0)
		elog(ERROR, "could not encode a hash in base64");
	appendStringInfoChar(s, '"');
	appendBinaryStringInfo(s, buf, len);
	appendStringInfoChar(s, '"');
}

/* A proof's last member, its hashes ", \"path\": [...]", and the closing brace. */
void
append_path(StringInfo s, const uint8 *path, size_t n)
{
	appendStringInfoString(s, ", \"path\": [");
	for (size_t i = 0; i < n; i++)
	{
		if (i > 0)
			appendStringInfoString(s, ", ");
		append_b64(s, path + i * SA_DIGEST_LEN);
	}
	appendStringInfoString(s, "]}");
}

Datum
jsonb_from(StringInfo s)
{
	return DirectFunctionCall1(jsonb_in, CStringGetDatum(s->data));
}

/* ---- Checkpoints ---------------------------------------------------------- */

/* The checkpoint body of the state the caller's snapshot sees. */
char *
make_body(Trees *t)
{
	int32	   *chains;
	int64	   *sizes;
	int			n = list_chains(t, &chains, &sizes);
	sa_chain_head *heads = (sa_chain_head *) palloc0(sizeof(sa_chain_head) * Max(n, 1));
	char	   *log_id = sa_log_id();

	for (int i = 0; i < n; i++)
	{
		heads[i].chain = (uint32) chains[i];
		heads[i].size = (uint64) sizes[i];
		root_of(t, chains[i], sizes[i], heads[i].root);
	}

	size_t		len = 0;
	size_t		cap = 256 + (size_t) n * 128;
	char	   *body = (char *) palloc(cap);

	check_core(sa_checkpoint_body(log_id, heads, (size_t) n, body, cap, &len), "the checkpoint body");
	return body;
}

/* Parse a stored or offered note; false (with *why) when it is not one of ours. */
bool
parse_checkpoint(const char *note, size_t len, char *log_id, uint64 *total,
				 sa_chain_head **heads, size_t *n, const char **why)
{
	size_t		need = 0;
	int			rc = sa_checkpoint_parse(note, len, log_id, total, nullptr, 0, &need);

	*heads = nullptr;
	*n = 0;
	if (rc != SA_OK && rc != SA_ERR_SPACE)
	{
		*why = sa_strerror(rc);
		return false;
	}
	*heads = (sa_chain_head *) palloc(sizeof(sa_chain_head) * Max(need, 1));
	rc = sa_checkpoint_parse(note, len, log_id, total, *heads, need, n);
	if (rc != SA_OK)
	{
		*why = sa_strerror(rc);
		return false;
	}
	return true;
}

}								/* namespace */

/* The log id (sensitive_audit.log_info holds exactly one row). */
char *
sa_log_id(void)
{
	Relation	rel = table_open(required_relid(SA_LOG_INFO), AccessShareLock);
	TableScanDesc scan = table_beginscan(rel, GetActiveSnapshot(), 0, nullptr);
	HeapTuple	tup;
	char	   *id = nullptr;
	int			rows = 0;

	while ((tup = heap_getnext(scan, ForwardScanDirection)) != nullptr)
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, 1, RelationGetDescr(rel), &isnull);

		rows++;
		if (!isnull)
			id = TextDatumGetCString(d);
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	if (rows != 1 || id == nullptr)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("%s.%s must hold exactly one log id, it holds %d rows", SA_SCHEMA, SA_LOG_INFO, rows)));
	return id;
}

/*
 * What verify() holds the log to: every stored checkpoint's chain lines and
 * every stored tree node.  Checkpoints that are not checkpoints of this log
 * are returned in *bad.
 */
void
sa_load_expectations(Snapshot snapshot, SaExpectations *x)
{
	memset(x, 0, sizeof(*x));

	Oid			cpid = sa_audit_relid(SA_CHECKPOINTS);
	Oid			nodesid = sa_audit_relid(SA_TREE_NODES);

	if (!OidIsValid(cpid) || !OidIsValid(nodesid))
		return;					/* release 1.1's schema, before the update */

	char	   *log_id = sa_log_id();
	Relation	rel = table_open(cpid, AccessShareLock);
	TableScanDesc scan = table_beginscan(rel, snapshot, 0, nullptr);
	HeapTuple	tup;
	int			rcap = 16;
	int			bcap = 4;

	x->roots = (SaExpectedRoot *) palloc(sizeof(SaExpectedRoot) * rcap);
	x->bad = (SaBadCheckpoint *) palloc(sizeof(SaBadCheckpoint) * bcap);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != nullptr)
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, CA_ID + 1, RelationGetDescr(rel), &isnull);
		int64		id = isnull ? 0 : DatumGetInt64(d);
		char		cp_log[SA_MAX_LOG_ID_LEN + 1];
		uint64		total;
		sa_chain_head *heads;
		size_t		n;
		const char *why = nullptr;

		CHECK_FOR_INTERRUPTS();
		d = heap_getattr(tup, CA_NOTE + 1, RelationGetDescr(rel), &isnull);
		if (isnull)
			why = "it has no note";
		else
		{
			text	   *note = DatumGetTextPP(d);

			if (!parse_checkpoint(VARDATA_ANY(note), VARSIZE_ANY_EXHDR(note), cp_log, &total,
								  &heads, &n, &why))
				;
			else if (strcmp(cp_log, log_id) != 0)
				why = psprintf("it is a checkpoint of log %s, this is log %s", cp_log, log_id);
		}
		if (why != nullptr)
		{
			if (x->nbad == bcap)
				x->bad = (SaBadCheckpoint *) repalloc(x->bad, sizeof(SaBadCheckpoint) * (bcap *= 2));
			x->bad[x->nbad].id = id;
			x->bad[x->nbad].why = pstrdup(why);
			x->nbad++;
			continue;
		}
		for (size_t i = 0; i < n; i++)
		{
			if (x->nroots == rcap)
				x->roots = (SaExpectedRoot *) repalloc(x->roots, sizeof(SaExpectedRoot) * (rcap *= 2));
			x->roots[x->nroots].chain = heads[i].chain;
			x->roots[x->nroots].size = heads[i].size;
			memcpy(x->roots[x->nroots].root, heads[i].root, SA_DIGEST_LEN);
			x->roots[x->nroots].label = psprintf("checkpoint " INT64_FORMAT, id);
			x->nroots++;
		}
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);

	rel = table_open(nodesid, AccessShareLock);
	scan = table_beginscan(rel, snapshot, 0, nullptr);
	int			ncap = 64;

	x->nodes = (SaExpectedNode *) palloc(sizeof(SaExpectedNode) * ncap);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != nullptr)
	{
		bool		n1,
					n2,
					n3,
					n4;
		Datum		c = heap_getattr(tup, NA_CHAIN + 1, RelationGetDescr(rel), &n1);
		Datum		l = heap_getattr(tup, NA_LEVEL + 1, RelationGetDescr(rel), &n2);
		Datum		i = heap_getattr(tup, NA_IDX + 1, RelationGetDescr(rel), &n3);
		Datum		h = heap_getattr(tup, NA_HASH + 1, RelationGetDescr(rel), &n4);

		CHECK_FOR_INTERRUPTS();
		if (n1 || n2 || n3 || n4)
			continue;
		bytea	   *b = DatumGetByteaPP(h);
		int			level = DatumGetInt16(l);
		int64		idx = DatumGetInt64(i);

		/* a node that cannot be one is a node that does not match */
		if (x->nnodes == ncap)
			x->nodes = (SaExpectedNode *) repalloc_huge(x->nodes, sizeof(SaExpectedNode) * (ncap *= 2));
		SaExpectedNode *e = &x->nodes[x->nnodes++];

		e->chain = (uint32) DatumGetInt32(c);
		e->level = (level < 0 || level >= 56) ? 55 : (uint32) level;
		e->index = idx < 0 ? 0 : (uint64) idx;
		memset(e->hash, 0, SA_DIGEST_LEN);
		if (VARSIZE_ANY_EXHDR(b) == SA_DIGEST_LEN)
			memcpy(e->hash, VARDATA_ANY(b), SA_DIGEST_LEN);
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
}

extern "C" {
PG_FUNCTION_INFO_V1(sensitive_audit_checkpoint_body);
PG_FUNCTION_INFO_V1(sensitive_audit_add_checkpoint);
PG_FUNCTION_INFO_V1(sensitive_audit_inclusion_proof);
PG_FUNCTION_INFO_V1(sensitive_audit_consistency_proof);
PG_FUNCTION_INFO_V1(sensitive_audit_log_info_restore);
PG_FUNCTION_INFO_V1(sensitive_audit_record_update);
}

/*
 * _record_update(versions text): an EXTENSION UPDATE entry, from an update
 * script only (the script creates, calls and drops it).
 */
extern "C" Datum
sensitive_audit_record_update(PG_FUNCTION_ARGS)
{
	if (!creating_extension)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only an update of the extension records an update")));
	sa_record_setup("EXTENSION UPDATE", SA_SCHEMA, nullptr, nullptr, nullptr,
					text_to_cstring(PG_GETARG_TEXT_PP(0)));
	PG_RETURN_VOID();
}

extern "C" Datum
sensitive_audit_checkpoint_body(PG_FUNCTION_ARGS)
{
	Trees		t;

	trees_open(&t, true);

	char	   *body = make_body(&t);

	trees_close(&t);
	PG_RETURN_TEXT_P(cstring_to_text(body));
}

/*
 * add_checkpoint(signed text): a signed checkpoint of this log, checked
 * against the trees and stored.  The signatures are not checked: the
 * database holds no key, and what it stores is checked by whoever holds
 * one.  An identical note already stored gives its id.
 */
extern "C" Datum
sensitive_audit_add_checkpoint(PG_FUNCTION_ARGS)
{
	text	   *note = PG_GETARG_TEXT_PP(0);
	const char *data = VARDATA_ANY(note);
	size_t		len = VARSIZE_ANY_EXHDR(note);
	char		cp_log[SA_MAX_LOG_ID_LEN + 1];
	uint64		total;
	sa_chain_head *heads;
	size_t		n;
	const char *why;

	if (!parse_checkpoint(data, len, cp_log, &total, &heads, &n, &why))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("not a signed sensitive_audit checkpoint: %s", why),
				 errdetail("A checkpoint is the text of sensitive_audit.checkpoint_body(), a blank line and at least one signature line (docs/FORMAT.md).")));

	char	   *log_id = sa_log_id();

	if (strcmp(cp_log, log_id) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the checkpoint is for log %s, this is log %s", cp_log, log_id)));

	/* one at a time: ids in order, no duplicate */
	Relation	cps = table_open(required_relid(SA_CHECKPOINTS), ShareRowExclusiveLock);
	Trees		t;

	trees_open(&t, true);
	for (size_t i = 0; i < n; i++)
	{
		int32		chain = (int32) heads[i].chain;
		int64		size = chain < 0 ? 0 : chain_size(&t, chain);
		uint8		root[SA_DIGEST_LEN];

		if (chain < 0 || heads[i].size > (uint64) size)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("the checkpoint does not match chain %u: it records " UINT64_FORMAT " entries, the chain has " INT64_FORMAT,
							heads[i].chain, heads[i].size, size),
					 errhint("The log no longer extends the state that was signed, or the checkpoint is of another log.")));
		root_of(&t, chain, (int64) heads[i].size, root);
		if (memcmp(root, heads[i].root, SA_DIGEST_LEN) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("the checkpoint does not match chain %u: its first " UINT64_FORMAT " entries have another root",
							heads[i].chain, heads[i].size),
					 errhint("Entries of that chain were changed after they were signed; run SELECT * FROM sensitive_audit.verify().")));
	}
	trees_close(&t);

	/* the same note again: its id (stored by this statement too) */
	CommandCounterIncrement();
	TableScanDesc scan = table_beginscan(cps, GetLatestSnapshot(), 0, nullptr);
	HeapTuple	tup;
	int64		max_id = 0;
	int64		same = 0;

	while ((tup = heap_getnext(scan, ForwardScanDirection)) != nullptr)
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, CA_ID + 1, RelationGetDescr(cps), &isnull);
		int64		id = isnull ? 0 : DatumGetInt64(d);

		max_id = Max(max_id, id);
		d = heap_getattr(tup, CA_NOTE + 1, RelationGetDescr(cps), &isnull);
		if (!isnull && same == 0)
		{
			text	   *other = DatumGetTextPP(d);

			if (VARSIZE_ANY_EXHDR(other) == len && memcmp(VARDATA_ANY(other), data, len) == 0)
				same = id;
		}
	}
	table_endscan(scan);
	if (same != 0)
	{
		table_close(cps, NoLock);
		PG_RETURN_INT64(same);
	}

	EState	   *estate = CreateExecutorState();
	ResultRelInfo *rri = makeNode(ResultRelInfo);

	InitResultRelInfo(rri, cps, 1, nullptr, 0);
	rri->ri_TrigDesc = nullptr;
	ExecOpenIndices(rri, false);

	TupleTableSlot *slot = ExecInitExtraTupleSlot(estate, RelationGetDescr(cps), &TTSOpsVirtual);

	ExecClearTuple(slot);
	memset(slot->tts_isnull, 0, sizeof(bool) * CA_NATTS);
	slot->tts_values[CA_ID] = Int64GetDatum(max_id + 1);
	slot->tts_values[CA_ADDED_AT] = TimestampTzGetDatum(GetCurrentTimestamp());
	slot->tts_values[CA_ADDED_BY] = CStringGetTextDatum(GetUserNameFromId(GetSessionUserId(), false));
	slot->tts_values[CA_LOG_ID] = CStringGetTextDatum(cp_log);
	slot->tts_values[CA_TOTAL] = Int64GetDatum((int64) total);
	slot->tts_values[CA_NOTE] = PointerGetDatum(note);
	ExecStoreVirtualTuple(slot);
	table_tuple_insert(cps, slot, GetCurrentCommandId(true), 0, nullptr);
	list_free(ExecInsertIndexTuples(rri, slot, estate, false, false, nullptr, NIL));
	ExecCloseIndices(rri);
	ExecResetTupleTable(estate->es_tupleTable, false);
	FreeExecutorState(estate);
	table_close(cps, NoLock);
	PG_RETURN_INT64(max_id + 1);
}

/* The chain's size, or an error saying it has no entries. */
static int64
existing_chain(Trees *t, int32 chain)
{
	int64		size = chain < 0 ? 0 : chain_size(t, chain);

	if (size == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("audit log chain %d has no entries", chain)));
	return size;
}

extern "C" Datum
sensitive_audit_inclusion_proof(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("inclusion_proof() needs a chain and a seq")));

	int32		chain = PG_GETARG_INT32(0);
	int64		seq = PG_GETARG_INT64(1);
	Trees		t;

	trees_open(&t, true);

	int64		size = existing_chain(&t, chain);
	int64		tree_size = PG_ARGISNULL(2) ? size : PG_GETARG_INT64(2);

	if (seq < 1 || seq > size)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("audit log chain %d has no entry at seq " INT64_FORMAT, chain, seq),
				 errdetail("Its entries are numbered 1 to " INT64_FORMAT ".", size)));
	if (tree_size < seq || tree_size > size)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("tree size " INT64_FORMAT " is out of range for seq " INT64_FORMAT " of chain %d", tree_size, seq, chain),
				 errdetail("It must be from the seq to the chain's size, " INT64_FORMAT ".", size)));

	uint8		entry[SA_DIGEST_LEN];
	uint8		leaf[SA_DIGEST_LEN];
	uint8		root[SA_DIGEST_LEN];
	size_t		npath;

	read_entry_hashes(&t, chain, seq, 1, entry);
	check_core(sa_merkle_leaf(entry, leaf), "a leaf hash");
	root_of(&t, chain, tree_size, root);

	uint8	   *path = tree_compute(&t, chain, SA_TREE_INCLUSION, (uint64) (seq - 1), (uint64) tree_size, &npath);

	trees_close(&t);

	StringInfoData s;

	initStringInfo(&s);
	appendStringInfo(&s, "{\"chain\": %d, \"seq\": " INT64_FORMAT ", \"leaf_index\": " INT64_FORMAT
					 ", \"tree_size\": " INT64_FORMAT ", \"entry_hash\": ",
					 chain, seq, seq - 1, tree_size);
	append_b64(&s, entry);
	appendStringInfoString(&s, ", \"leaf_hash\": ");
	append_b64(&s, leaf);
	appendStringInfoString(&s, ", \"root\": ");
	append_b64(&s, root);
	append_path(&s, path, npath);
	PG_RETURN_DATUM(jsonb_from(&s));
}

extern "C" Datum
sensitive_audit_consistency_proof(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("consistency_proof() needs a chain and an old size")));

	int32		chain = PG_GETARG_INT32(0);
	int64		old_size = PG_GETARG_INT64(1);
	Trees		t;

	trees_open(&t, true);

	int64		size = existing_chain(&t, chain);
	int64		new_size = PG_ARGISNULL(2) ? size : PG_GETARG_INT64(2);

	if (new_size < 1 || new_size > size)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("new size " INT64_FORMAT " is out of range for chain %d", new_size, chain),
				 errdetail("It must be from 1 to the chain's size, " INT64_FORMAT ".", size)));
	if (old_size < 1 || old_size > new_size)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("old size " INT64_FORMAT " is out of range for chain %d", old_size, chain),
				 errdetail("It must be from 1 to the new size, " INT64_FORMAT ".", new_size)));

	uint8		old_root[SA_DIGEST_LEN];
	uint8		new_root[SA_DIGEST_LEN];
	size_t		npath;

	root_of(&t, chain, new_size, new_root);
	root_of(&t, chain, old_size, old_root);

	uint8	   *path = tree_compute(&t, chain, SA_TREE_CONSISTENCY, (uint64) old_size, (uint64) new_size, &npath);

	trees_close(&t);

	StringInfoData s;

	initStringInfo(&s);
	appendStringInfo(&s, "{\"chain\": %d, \"old_size\": " INT64_FORMAT ", \"new_size\": " INT64_FORMAT
					 ", \"old_root\": ", chain, old_size, new_size);
	append_b64(&s, old_root);
	appendStringInfoString(&s, ", \"new_root\": ");
	append_b64(&s, new_root);
	append_path(&s, path, npath);
	PG_RETURN_DATUM(jsonb_from(&s));
}

/*
 * BEFORE INSERT on log_info.  CREATE EXTENSION makes a log id; restoring a
 * dump brings the old one, which then takes its place, provided no stored
 * checkpoint names the id it replaces (once one does, the id is what
 * signers know this log by).  Only the table's owner restores.
 */
extern "C" Datum
sensitive_audit_log_info_restore(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BY_INSERT(trigdata->tg_event)
		|| !TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) || !TRIGGER_FIRED_BEFORE(trigdata->tg_event))
		sa_called_wrongly("log_info_restore", "called as a BEFORE INSERT row trigger");

	Relation	rel = trigdata->tg_relation;

	if (!pg_class_ownercheck(RelationGetRelid(rel), GetUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("the log id is made by CREATE EXTENSION and only a restore may replace it")));

	bool		isnull;
	Datum		d = heap_getattr(trigdata->tg_trigtuple, 1, RelationGetDescr(rel), &isnull);

	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("a log id cannot be null")));

	char	   *incoming = TextDatumGetCString(d);

	/* the restored id must be one a checkpoint could carry */
	{
		char		log_id[SA_MAX_LOG_ID_LEN + 1];
		size_t		len;
		sa_chain_head none;

		if (sa_checkpoint_body(incoming, &none, 0, log_id, sizeof(log_id), &len) != SA_OK)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("\"%s\" is not a valid log id", incoming),
					 errdetail("A log id is 1 to 128 characters from A-Z, a-z, 0-9, '.', '_' and '-'.")));
	}

	/* the ids named by stored checkpoints */
	Relation	cps = table_open(required_relid(SA_CHECKPOINTS), AccessShareLock);
	TableScanDesc scan = table_beginscan(rel, GetLatestSnapshot(), 0, nullptr);
	HeapTuple	tup;

	while ((tup = heap_getnext(scan, ForwardScanDirection)) != nullptr)
	{
		Datum		old = heap_getattr(tup, 1, RelationGetDescr(rel), &isnull);
		char	   *old_id = isnull ? pstrdup("") : TextDatumGetCString(old);
		TableScanDesc cscan = table_beginscan(cps, GetLatestSnapshot(), 0, nullptr);
		HeapTuple	ctup;
		bool		named = false;

		while (!named && (ctup = heap_getnext(cscan, ForwardScanDirection)) != nullptr)
		{
			Datum		c = heap_getattr(ctup, CA_LOG_ID + 1, RelationGetDescr(cps), &isnull);

			named = !isnull && strcmp(TextDatumGetCString(c), old_id) == 0;
		}
		table_endscan(cscan);
		if (named && strcmp(old_id, incoming) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("the log id %s is named by stored checkpoints and cannot be replaced", old_id)));
		simple_heap_delete(rel, &tup->t_self);
	}
	table_endscan(scan);
	table_close(cps, AccessShareLock);
	CommandCounterIncrement();
	return PointerGetDatum(trigdata->tg_trigtuple);
}
