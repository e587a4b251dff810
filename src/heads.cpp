/*
 * heads.cpp — chain heads remembered in shared memory (when preloaded).
 *
 * Linking a transaction's entries starts from its chain's head: the last
 * seq and hash.  Read from the log, that is an index probe at every commit.
 * When the library is in shared_preload_libraries, the head each committer
 * leaves is also kept in shared memory, and the next holder of the chain
 * lock starts from there instead.  The log stays the authority:
 *  - a head is stored only at XACT_EVENT_COMMIT, after the commit record,
 *    while the committer still holds the chain lock, so whoever takes the
 *    lock next finds exactly the head the log now ends with;
 *  - a transaction that fails after it started linking forgets its chain's
 *    head, and so does one that prepares (its fate is decided elsewhere):
 *    the next holder reads the head from the log.  So a head made stale by
 *    rows forced into the log behind the extension's back costs at most
 *    one failed commit (its entry collides with them on the primary key);
 *  - heads are keyed by database, chain and the OID of the entries table,
 *    so a reinstalled extension never inherits them; an invalidation of
 *    that table (DDL such as a superuser disabling its guards, VACUUM's
 *    statistics) makes the backends that have used it forget its heads,
 *    and so does a restore into it;
 *  - shared memory does not survive a crash or restart, and starts empty.
 * Without preloading, nothing here is used and every commit reads the log.
 */
#include "sensitive_audit.hpp"

#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"

#define SA_MAX_HEADS 4096

namespace {

struct HeadKey
{
	Oid			dbid;
	Oid			relid;			/* sensitive_audit.log_entries */
	int32		chain;
};

struct HeadEntry
{
	HeadKey		key;			/* hash key; must be first */
	uint64		seq;
	uint8		hash[SA_DIGEST_LEN];
};

/*
 * The entries tables that have heads here, by database: a relcache
 * invalidation of any other relation (the common case) is then dismissed
 * without taking the lock.  Slots are written under the lock: a table gets
 * one before its first head is stored, and gives it back when all its heads
 * are forgotten (relid InvalidOid: a free slot below the high-water mark n).
 */
#define SA_MAX_TABLES 64

struct HeadTables
{
	int			n;
	Oid			dbid[SA_MAX_TABLES];
	Oid			relid[SA_MAX_TABLES];
};

HTAB	   *heads = nullptr;
HeadTables *tables = nullptr;
LWLock	   *heads_lock = nullptr;

shmem_request_hook_type prev_shmem_request_hook = nullptr;
shmem_startup_hook_type prev_shmem_startup_hook = nullptr;

/* The head this transaction linked, to store at commit or forget at abort. */
bool		linked = false;
bool		restored = false;	/* this transaction restored entries */
HeadKey		linked_key;
uint64		linked_seq;
uint8		linked_hash[SA_DIGEST_LEN];

void
heads_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(add_size(hash_estimate_size(SA_MAX_HEADS, sizeof(HeadEntry)),
									sizeof(HeadTables)));
	RequestNamedLWLockTranche("sensitive_audit", 1);
}

void
heads_shmem_startup(void)
{
	HASHCTL		info;
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	tables = (HeadTables *) ShmemInitStruct("sensitive_audit chain head tables",
											sizeof(HeadTables), &found);
	if (!found)
		memset(tables, 0, sizeof(HeadTables));
	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(HeadKey);
	info.entrysize = sizeof(HeadEntry);
	/* fixed size: never grow into the shared memory the lock tables need */
	heads = ShmemInitHash("sensitive_audit chain heads", SA_MAX_HEADS, SA_MAX_HEADS, &info,
						  HASH_ELEM | HASH_BLOBS | HASH_FIXED_SIZE);
	heads_lock = &(GetNamedLWLockTranche("sensitive_audit"))->lock;
	LWLockRelease(AddinShmemInitLock);
}

void
make_key(HeadKey *key, Oid relid, int chain)
{
	memset(key, 0, sizeof(*key));	/* hashed as bytes */
	key->dbid = MyDatabaseId;
	key->relid = relid;
	key->chain = chain;
}

/* Give (dbid, relid) a slot in tables, if it has none; false if full.  Lock held. */
bool
watch_table(Oid dbid, Oid relid)
{
	int			free_slot = -1;

	for (int i = 0; i < tables->n; i++)
	{
		if (tables->dbid[i] == dbid && tables->relid[i] == relid)
			return true;
		if (tables->relid[i] == InvalidOid && free_slot < 0)
			free_slot = i;
	}
	if (free_slot < 0)
	{
		if (tables->n == SA_MAX_TABLES)
			return false;
		free_slot = tables->n;
	}
	tables->dbid[free_slot] = dbid;
	tables->relid[free_slot] = relid;
	pg_write_barrier();
	if (free_slot == tables->n)
		tables->n = free_slot + 1;
	return true;
}

void
forget(const HeadKey *key)
{
	LWLockAcquire(heads_lock, LW_EXCLUSIVE);
	hash_search(heads, key, HASH_REMOVE, nullptr);
	LWLockRelease(heads_lock);
}

}							/* namespace */

/* From _PG_init, while shared_preload_libraries are being loaded. */
void
sa_heads_init(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = heads_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = heads_shmem_startup;
}

/*
 * The remembered head of a chain whose lock the caller holds, if any.  Call
 * it after opening the entries table, so that invalidations sent before
 * have been processed.
 */
bool
sa_heads_lookup(Oid relid, int chain, uint64 *seq, uint8_t hash[SA_DIGEST_LEN])
{
	HeadKey		key;
	bool		found = false;

	if (heads == nullptr)
		return false;
	make_key(&key, relid, chain);
	LWLockAcquire(heads_lock, LW_SHARED);

	HeadEntry  *e = (HeadEntry *) hash_search(heads, &key, HASH_FIND, nullptr);

	if (e != nullptr)
	{
		*seq = e->seq;
		memcpy(hash, e->hash, SA_DIGEST_LEN);
		found = true;
	}
	LWLockRelease(heads_lock);
	return found;
}

/*
 * The transaction has the chain's lock and starts linking: from now on, if
 * it fails, the chain's remembered head is forgotten (it may be what made
 * it fail: a head left stale by rows a superuser forced into the log makes
 * the entry's insert collide with them on the primary key).
 */
void
sa_heads_begin(Oid relid, int chain)
{
	if (heads == nullptr)
		return;
	make_key(&linked_key, relid, chain);
	linked = true;
	linked_seq = 0;
}

/*
 * The head the transaction leaves once linked, stored if it commits.  A
 * prepared transaction commits elsewhere: the head is forgotten now (it
 * still holds the chain) and read from the log by the next holder.
 */
void
sa_heads_linked(uint64 seq, const uint8_t hash[SA_DIGEST_LEN], bool preparing)
{
	if (!linked)
		return;
	if (preparing)
	{
		forget(&linked_key);
		linked = false;
		return;
	}
	linked_seq = seq;
	memcpy(linked_hash, hash, SA_DIGEST_LEN);
}

/*
 * At the end of the transaction (still holding the chain lock): remember
 * the new head if it committed, else forget the chain's head.  Nothing here
 * can fail; a full table just means this chain is read from the log.
 */
void
sa_heads_xact_end(bool committed)
{
	if (restored)
	{
		/* committers may have stored heads while the restore ran */
		restored = false;
		sa_heads_forget_table(InvalidOid);
	}
	if (!linked)
		return;
	linked = false;
	if (!committed || linked_seq == 0)
	{
		forget(&linked_key);
		return;
	}
	LWLockAcquire(heads_lock, LW_EXCLUSIVE);

	HeadEntry  *e = (HeadEntry *) hash_search(heads, &linked_key, HASH_ENTER_NULL, nullptr);

	if (e != nullptr)
	{
		e->seq = linked_seq;
		memcpy(e->hash, linked_hash, SA_DIGEST_LEN);
	}

	if (e != nullptr && !watch_table(linked_key.dbid, linked_key.relid))
	{
		/* no slot to watch the table's invalidations: do not keep its head */
		hash_search(heads, &linked_key, HASH_REMOVE, nullptr);
	}
	LWLockRelease(heads_lock);
}

/*
 * Entries are being restored into the log (an INSERT under
 * sensitive_audit.restoring): they extend chains behind the remembered
 * heads, so this database's heads are forgotten now and again when the
 * restoring transaction ends.
 */
void
sa_heads_restoring(void)
{
	if (heads == nullptr || restored)
		return;
	restored = true;
	sa_heads_forget_table(InvalidOid);
}

/*
 * A relcache invalidation of relid (InvalidOid: of every relation): forget
 * the heads of this database's entries table if that is the one.
 */
void
sa_heads_invalidate(Oid relid)
{
	if (heads == nullptr)
		return;
	if (relid != InvalidOid)
	{
		int			n = tables->n;
		bool		ours = false;

		pg_read_barrier();
		for (int i = 0; i < n && !ours; i++)
			ours = tables->relid[i] == relid && tables->dbid[i] == MyDatabaseId;
		if (!ours)
			return;
	}
	sa_heads_forget_table(relid);
}

/* Forget every remembered head of the entries table relid (InvalidOid: all) in this database. */
void
sa_heads_forget_table(Oid relid)
{
	HASH_SEQ_STATUS status;
	HeadEntry  *e;

	if (heads == nullptr)
		return;
	LWLockAcquire(heads_lock, LW_EXCLUSIVE);
	hash_seq_init(&status, heads);
	while ((e = (HeadEntry *) hash_seq_search(&status)) != nullptr)
	{
		if (e->key.dbid == MyDatabaseId && (relid == InvalidOid || e->key.relid == relid))
			hash_search(heads, &e->key, HASH_REMOVE, nullptr);
	}
	/* the table(s) have no heads left: their slots are free again */
	for (int i = 0; i < tables->n; i++)
		if (tables->dbid[i] == MyDatabaseId && (relid == InvalidOid || tables->relid[i] == relid))
			tables->relid[i] = InvalidOid;
	LWLockRelease(heads_lock);
}
