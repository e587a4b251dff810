/*
 * events.cpp — events no transaction of the acting session can write.
 *
 * A failed login has no transaction (the session never starts one), and a
 * refused statement's transaction rolls back: their entries are written by
 * background workers instead, from a queue in shared memory.  Only when the
 * library is preloaded (shared_preload_libraries); otherwise none of this
 * exists and sa_events_available() says so.
 *
 *  - The queue: sensitive_audit.event_queue_size fixed slots, under one
 *    LWLock.  A slot holds one event: its database (by OID, or by name when
 *    the enqueuer could not resolve it, as at login), the entry's fields, and
 *    which worker has claimed it.  A slot is freed only after the entry that
 *    records it has committed, so a worker that dies loses nothing: its
 *    claims are taken over by the next worker for that database.
 *  - A full queue never drops silently: the events it could not take are
 *    counted per database, a WARNING goes to the server log when counting
 *    starts, and as soon as there is room a LOST event carrying the count
 *    (new_value) is queued in their place.
 *  - A clean shutdown keeps the queue in a file the next start loads; a
 *    crash keeps nothing and is recorded as a LOST entry of unknown count
 *    in every database (see "Across restarts" below).
 *  - One worker can connect to one database only.  A static launcher,
 *    connected to no database (it reads only the shared catalog
 *    pg_database), resolves database names and starts one dynamic worker per
 *    database that has queued events and no worker.  The launcher restarts
 *    after a crash (bgw_restart_time); database workers are started again by
 *    the launcher while their database has events, and leave after a few idle
 *    seconds.
 *  - A database worker writes its events as pending entries (pending.cpp),
 *    with the who-fields taken from the event, and commits: the ordinary
 *    pre-commit linking (chain.cpp) puts them into a chain, exactly as it
 *    does any other entry.  A database without the extension sends its
 *    events on to sensitive_audit.events_database, if that is set and is
 *    another database, or drops them with a LOG line.
 */
#include "sensitive_audit.hpp"

extern "C" {
#include "commands/async.h"
#include "postmaster/postmaster.h"
}

extern "C" {
#include "access/xlog.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_control.h"
#include "catalog/pg_database.h"
#include "commands/dbcommands.h"
#include "common/controldata_utils.h"
#include "common/ip.h"
#include "libpq/auth.h"
#include "libpq/hba.h"
#include "libpq/libpq-be.h"
#include "pgstat.h"
#include "port/pg_crc32c.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "tcop/tcopprot.h"

PGDLLEXPORT void sa_events_launcher_main(Datum arg);
PGDLLEXPORT void sa_events_worker_main(Datum arg);
}

int			sa_event_queue_size = 1024;
char	   *sa_events_database = nullptr;

namespace {

#define SA_LOST_SLOTS 32		/* databases whose lost events are counted */
#define SA_MAX_DB_WORKERS 64	/* database workers known at once */
#define SA_WORKER_BATCH 1024	/* events linked per transaction, at most */
/*
 * Once events arrive, a database worker waits up to this many milliseconds
 * for more before it writes (or until a quarter of the queue has arrived):
 * one transaction, one commit, for many events.  A busy source of events,
 * such as a workload reading the log, then costs a few commits a second
 * instead of one per event.
 */
#define SA_WORKER_GATHER_MS 20
/*
 * Idle seconds before a database worker leaves: soon, because DROP DATABASE
 * and CREATE DATABASE ... TEMPLATE wait only 5 seconds for the database's
 * other sessions to go, and a worker is one.
 */
#define SA_WORKER_IDLE_EXIT 2
#define SA_MAX_ATTEMPTS 3		/* workers that may fail on one event */

struct EventSlot
{
	bool		in_use;
	uint8		attempts;		/* workers that claimed it */
	uint16		nulls;			/* bit per SaEvent string field that is NULL */
	int32		claimed_by;		/* pid of the worker writing it, or 0 */
	uint64		order;			/* queue order */
	SaEvent		ev;
	bool		unknown_count;	/* a LOST of unknown count (see queue_unknown_losses) */
};

struct LostCount
{
	Oid			dboid;
	char		dbname[NAMEDATALEN];
	uint64		count;
	TimestampTz first;
};

struct DbWorker
{
	Oid			dboid;
	pid_t		pid;
	Latch	   *latch;
};

struct EventQueue
{
	LWLock	   *lock;
	Latch	   *launcher_latch;
	uint64		next_order;		/* also counts the events ever queued */
	int			capacity;
	int			free_hint;		/* where the search for a free slot starts */
	LostCount	lost[SA_LOST_SLOTS];
	DbWorker	workers[SA_MAX_DB_WORKERS];
	/* a loss of unknown count (a crash restart), until the launcher records it */
	TimestampTz unknown_since;	/* 0: none */
	Oid			unknown_done;	/* databases up to this OID have their LOST */
	char		unknown_reason[32];
	EventSlot	slots[FLEXIBLE_ARRAY_MEMBER];
};

EventQueue *eq = nullptr;

shmem_request_hook_type prev_shmem_request_hook = nullptr;
shmem_startup_hook_type prev_shmem_startup_hook = nullptr;
ClientAuthentication_hook_type prev_client_auth_hook = nullptr;
emit_log_hook_type prev_emit_log_hook = nullptr;

Size
queue_size(void)
{
	return add_size(offsetof(EventQueue, slots), mul_size(sizeof(EventSlot), sa_event_queue_size));
}

void
events_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(queue_size());
	RequestNamedLWLockTranche("sensitive_audit events", 1);
}

void		restore_queue(void);
void		save_queue(int code, Datum arg);

void
events_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	eq = (EventQueue *) ShmemInitStruct("sensitive_audit event queue", queue_size(), &found);
	if (!found)
	{
		memset(eq, 0, queue_size());
		eq->capacity = sa_event_queue_size;
		eq->lock = &(GetNamedLWLockTranche("sensitive_audit events"))->lock;
	}
	LWLockRelease(AddinShmemInitLock);
	/* the postmaster (or a standalone backend): the queue across restarts */
	if (!IsUnderPostmaster)
	{
		on_shmem_exit(save_queue, (Datum) 0);
		if (!found)
			restore_queue();
	}
}

/* Copy a possibly-NULL string into a fixed field, cut at a character boundary. */
void
copy_field(char *dst, size_t size, const char *src, uint16 *nulls, int bit)
{
	if (src == nullptr)
	{
		dst[0] = '\0';
		*nulls |= (uint16) (1 << bit);
		return;
	}
	size_t		len = strlen(src);

	if (len >= size)
		len = pg_mbcliplen(src, (int) len, (int) size - 1);
	memcpy(dst, src, len);
	dst[len] = '\0';
}

/*
 * Copy an event field by field, each string only as far as its end: a
 * slot is large and mostly empty, and copying all of it would move every
 * cache line of it between the enqueuing backend and the worker.
 */
void
copy_event(SaEvent *dst, const SaEvent *src)
{
	dst->dboid = src->dboid;
	dst->event_time = src->event_time;
	dst->backend_pid = src->backend_pid;
	strcpy(dst->dbname, src->dbname);
	strcpy(dst->operation, src->operation);
	strcpy(dst->session_role, src->session_role);
	strcpy(dst->effective_role, src->effective_role);
	strcpy(dst->application_name, src->application_name);
	strcpy(dst->client_addr, src->client_addr);
	strcpy(dst->table_schema, src->table_schema);
	strcpy(dst->table_name, src->table_name);
	strcpy(dst->column_name, src->column_name);
	strcpy(dst->new_value, src->new_value);
}

enum EventBit
{
	EB_TABLE_SCHEMA,
	EB_TABLE_NAME,
	EB_COLUMN_NAME,
	EB_NEW_VALUE,
	EB_CLIENT_ADDR
};

int
free_slots(void)
{
	int			n = 0;

	for (int i = 0; i < eq->capacity; i++)
		if (!eq->slots[i].in_use)
			n++;
	return n;
}

/*
 * A free slot, searched from where the last one was found: slots are taken
 * and freed roughly in queue order, so the search seldom walks over many
 * taken ones.  Lock held exclusively.
 */
EventSlot *
free_slot(void)
{
	for (int k = 0; k < eq->capacity; k++)
	{
		int			i = (eq->free_hint + k) % eq->capacity;

		if (!eq->slots[i].in_use)
		{
			eq->free_hint = (i + 1) % eq->capacity;
			return &eq->slots[i];
		}
	}
	return nullptr;
}

/* Wake whoever will write events of this database.  Lock held. */
void
wake_for(Oid dboid)
{
	for (int i = 0; i < SA_MAX_DB_WORKERS; i++)
	{
		if (eq->workers[i].pid != 0 && eq->workers[i].dboid == dboid && OidIsValid(dboid))
		{
			SetLatch(eq->workers[i].latch);
			return;
		}
	}
	if (eq->launcher_latch)
		SetLatch(eq->launcher_latch);
}

/*
 * "database \"name\"", or by OID when the event has only that (events of a
 * session name their database by OID); no catalog lookup, as it may be
 * called with the queue's lock held.  Static storage.
 */
const char *
database_label(Oid dboid, const char *dbname)
{
	static char label[NAMEDATALEN + 32];

	if (dbname[0] != '\0')
		snprintf(label, sizeof(label), "database \"%s\"", dbname);
	else
		snprintf(label, sizeof(label), "the database with OID %u", dboid);
	return label;
}

/*
 * Queue a LOST event of a database, with new_value `value`, in a free slot
 * (the caller has seen that there is one).  Lock held exclusively.
 */
EventSlot *
put_lost(Oid dboid, const char *dbname, TimestampTz when, const char *value)
{
	EventSlot  *s = free_slot();

	memset(s, 0, sizeof(*s));
	s->in_use = true;
	s->order = eq->next_order++;
	s->ev.dboid = dboid;
	strlcpy(s->ev.dbname, dbname, sizeof(s->ev.dbname));
	s->ev.event_time = when;
	s->ev.backend_pid = 0;
	strlcpy(s->ev.operation, "LOST", sizeof(s->ev.operation));
	strlcpy(s->ev.new_value, value, sizeof(s->ev.new_value));
	s->nulls = (1 << EB_TABLE_SCHEMA) | (1 << EB_TABLE_NAME) | (1 << EB_COLUMN_NAME)
		| (1 << EB_CLIENT_ADDR);
	/* the who-fields are the writing worker's own (see write_batch) */
	s->ev.session_role[0] = '\0';
	wake_for(dboid);
	return s;
}

/*
 * Turn counted losses into LOST events while there is room, keeping `keep`
 * slots free for the caller.  Lock held exclusively.
 */
void
queue_lost(int keep)
{
	for (int i = 0; i < SA_LOST_SLOTS; i++)
	{
		LostCount  *l = &eq->lost[i];

		if (l->count == 0)
			continue;
		if (free_slots() <= keep)
			return;

		char		count[32];

		snprintf(count, sizeof(count), UINT64_FORMAT, l->count);
		(void) put_lost(l->dboid, l->dbname, l->first, count);
		ereport(LOG,
				(errmsg("sensitive_audit: " UINT64_FORMAT " events lost for %s are recorded as one LOST entry",
						l->count, database_label(l->dboid, l->dbname))));
		memset(l, 0, sizeof(*l));
	}
}

/*
 * The counter of a database's lost events; *first says it was not counting
 * yet, and now counts from `since`.  Lock held exclusively.
 */
LostCount *
lost_counter(Oid dboid, const char *dbname, TimestampTz since, bool *first)
{
	LostCount  *l = nullptr;

	*first = false;
	for (int i = 0; i < SA_LOST_SLOTS && l == nullptr; i++)
		if (eq->lost[i].count > 0 && eq->lost[i].dboid == dboid
			&& strcmp(eq->lost[i].dbname, dbname) == 0)
			l = &eq->lost[i];
	for (int i = 0; i < SA_LOST_SLOTS && l == nullptr; i++)
		if (eq->lost[i].count == 0)
			l = &eq->lost[i];
	if (l == nullptr)
		l = &eq->lost[0];		/* every slot taken: count them with the first */
	if (l->count == 0)
	{
		l->dboid = dboid;
		strlcpy(l->dbname, dbname, sizeof(l->dbname));
		l->first = since;
		*first = true;
	}
	return l;
}

/*
 * Count an event the full queue could not take.  Lock held exclusively.
 * True for the first of a run of losses: the caller then warns, once the
 * lock is released (a WARNING goes to the client, who may not be reading).
 */
bool
count_lost(const SaEvent *ev)
{
	bool		first;

	lost_counter(ev->dboid, ev->dbname, ev->event_time, &first)->count++;
	return first;
}

/* ------------------------------------------------------------------------
 * Across restarts.
 *
 * A clean shutdown keeps the queue: once every other process has exited,
 * the postmaster writes it to QUEUE_FILE (the shape pg_stat_statements
 * keeps its statistics in), and the next start puts it back and removes the
 * file.  A crash keeps nothing, as shared memory can no longer be trusted:
 * the new queue remembers that whatever the old one held is lost, and the
 * launcher records that as one LOST entry of unknown count per database.
 */
#define QUEUE_FILE PGSTAT_STAT_PERMANENT_DIRECTORY "/sensitive_audit_events.queue"
#define QUEUE_FILE_MAGIC 0x53414551 /* "SAEQ" */
#define QUEUE_FILE_VERSION 1	/* bump whenever SaEvent, SavedEvent or LostCount change */

/* The file: this header, the events in queue order, the lost counts, a CRC-32C of all that. */
struct QueueFileHeader
{
	uint32		magic;
	uint32		version;
	uint32		event_size;		/* sizeof(SavedEvent) */
	uint32		lost_size;		/* sizeof(LostCount) */
	uint32		namedatalen;
	uint32		value_len;		/* SA_EVENT_VALUE_LEN */
	uint64		nevents;
	uint32		nlost;
	Oid			unknown_done;
	TimestampTz unknown_since;
	char		unknown_reason[32];
};

/* An event as saved: its slot without claim, attempts or order. */
struct SavedEvent
{
	uint16		nulls;
	bool		unknown_count;
	SaEvent		ev;
};

/*
 * Remember a loss of unknown count for the launcher to record: the earliest
 * such loss's time and reason, and every database again.  Postmaster, no
 * other process.
 */
void
note_unknown_loss(const char *reason)
{
	if (eq->unknown_since == 0)
	{
		eq->unknown_since = GetCurrentTimestamp();
		strlcpy(eq->unknown_reason, reason, sizeof(eq->unknown_reason));
	}
	eq->unknown_done = InvalidOid;
}

int
cmp_slot_order(const void *a, const void *b)
{
	uint64		x = eq->slots[*(const int *) a].order;
	uint64		y = eq->slots[*(const int *) b].order;

	return x < y ? -1 : (x > y ? 1 : 0);
}

bool
write_crc(FILE *f, const void *p, size_t len, pg_crc32c *crc)
{
	COMP_CRC32C(*crc, p, len);
	return fwrite(p, 1, len, f) == len;
}

bool
read_crc(FILE *f, void *p, size_t len, pg_crc32c *crc)
{
	if (fread(p, 1, len, f) != len)
		return false;
	COMP_CRC32C(*crc, p, len);
	return true;
}

/* Write what the queue holds to f; false on an I/O error (errno set). */
bool
write_queue_file(FILE *f, const int *order, uint64 n, uint32 nlost)
{
	QueueFileHeader h;
	pg_crc32c	crc;

	memset(&h, 0, sizeof(h));
	h.magic = QUEUE_FILE_MAGIC;
	h.version = QUEUE_FILE_VERSION;
	h.event_size = sizeof(SavedEvent);
	h.lost_size = sizeof(LostCount);
	h.namedatalen = NAMEDATALEN;
	h.value_len = SA_EVENT_VALUE_LEN;
	h.nevents = n;
	h.nlost = nlost;
	h.unknown_done = eq->unknown_done;
	h.unknown_since = eq->unknown_since;
	strlcpy(h.unknown_reason, eq->unknown_reason, sizeof(h.unknown_reason));
	INIT_CRC32C(crc);
	if (!write_crc(f, &h, sizeof(h), &crc))
		return false;
	for (uint64 i = 0; i < n; i++)
	{
		const EventSlot *s = &eq->slots[order[i]];
		SavedEvent	rec;

		memset(&rec, 0, sizeof(rec));
		rec.nulls = s->nulls;
		rec.unknown_count = s->unknown_count;
		rec.ev = s->ev;
		if (!write_crc(f, &rec, sizeof(rec), &crc))
			return false;
	}
	for (int i = 0; i < SA_LOST_SLOTS; i++)
		if (eq->lost[i].count > 0 && !write_crc(f, &eq->lost[i], sizeof(LostCount), &crc))
			return false;
	FIN_CRC32C(crc);
	return fwrite(&crc, sizeof(crc), 1, f) == 1;
}

/*
 * The server's last run ended in a clean shutdown, as pg_control says: at
 * the postmaster's exit, or at its start before the startup process changes
 * it.  An immediate shutdown is not one (its processes were killed).
 */
bool
last_shutdown_clean(void)
{
	bool		crc_ok;
	ControlFileData *cf = get_controlfile(DataDir, &crc_ok);
	bool		clean = crc_ok && (cf->state == DB_SHUTDOWNED || cf->state == DB_SHUTDOWNED_IN_RECOVERY);

	pfree(cf);
	return clean;
}

/*
 * on_shmem_exit of the postmaster, after every other process has exited:
 * save what is still queued.  Not after a crash (code != 0) or an immediate
 * shutdown, when shared memory is not to be trusted: the next start records
 * the loss.  No lock: nobody else is left.
 */
void
save_queue(int code, Datum arg)
{
	if (code != 0 || eq == nullptr)
		return;

	int		   *order = (int *) palloc(sizeof(int) * eq->capacity);
	uint64		n = 0;
	uint32		nlost = 0;

	for (int i = 0; i < eq->capacity; i++)
		if (eq->slots[i].in_use)
			order[n++] = i;
	for (int i = 0; i < SA_LOST_SLOTS; i++)
		if (eq->lost[i].count > 0)
			nlost++;
	if (n == 0 && nlost == 0 && eq->unknown_since == 0)
	{
		/* a file there now was not written by a shutdown (a server file write): never load it */
		if (access(QUEUE_FILE, F_OK) == 0)
			(void) durable_unlink(QUEUE_FILE, LOG);
		return;
	}
	if (!last_shutdown_clean())
	{
		ereport(LOG,
				(errmsg("sensitive_audit: " UINT64_FORMAT " queued events are not saved: the server did not shut down cleanly", n)));
		return;
	}
	qsort(order, n, sizeof(int), cmp_slot_order);

	const char *tmp = QUEUE_FILE ".tmp";
	FILE	   *f = AllocateFile(tmp, PG_BINARY_W);
	bool		ok = f != nullptr && write_queue_file(f, order, n, nlost);

	if (f != nullptr && FreeFile(f) != 0)
		ok = false;
	if (!ok)
	{
		ereport(LOG,
				(errcode_for_file_access(),
				 errmsg("sensitive_audit: could not write file \"%s\": %m", tmp),
				 errdetail("The " UINT64_FORMAT " events still queued are lost.", n)));
		unlink(tmp);
		return;
	}
	if (durable_rename(tmp, QUEUE_FILE, LOG) != 0)
		return;
	ereport(LOG,
			(errmsg("sensitive_audit: " UINT64_FORMAT " queued events saved in \"%s\" for the next start",
					n, QUEUE_FILE)));
}

/*
 * Load the queue file into the (empty) queue.  NULL when done, or why the
 * file is refused; the caller empties the queue again then.
 */
const char *
read_queue_file(FILE *f, uint64 *loaded, uint64 *overflow)
{
	QueueFileHeader h;
	pg_crc32c	crc;
	pg_crc32c	saved;

	INIT_CRC32C(crc);
	if (!read_crc(f, &h, sizeof(h), &crc) || h.magic != QUEUE_FILE_MAGIC)
		return "it is not a sensitive_audit event queue file";
	if (h.version != QUEUE_FILE_VERSION || h.event_size != sizeof(SavedEvent)
		|| h.lost_size != sizeof(LostCount) || h.namedatalen != NAMEDATALEN
		|| h.value_len != SA_EVENT_VALUE_LEN)
		return psprintf("its layout (version %u, event size %u) is not this build's (version %d, event size %zu)",
						h.version, h.event_size, QUEUE_FILE_VERSION, sizeof(SavedEvent));
	if (h.nlost > SA_LOST_SLOTS)
		return "it is corrupt";
	for (uint64 i = 0; i < h.nevents; i++)
	{
		SavedEvent	rec;

		if (!read_crc(f, &rec, sizeof(rec), &crc))
			return "it is truncated";
		rec.ev.dbname[NAMEDATALEN - 1] = '\0';
		if (*loaded < (uint64) eq->capacity)
		{
			/*
			 * The queue is new and empty: its slots in turn (free_slot()
			 * would give the same, a whole scan each time).  Unclaimed, no
			 * attempts yet.
			 */
			EventSlot  *s = &eq->slots[(*loaded)++];

			s->in_use = true;
			s->order = eq->next_order++;
			s->nulls = rec.nulls;
			s->unknown_count = rec.unknown_count;
			s->ev = rec.ev;
		}
		else
		{
			/* a smaller queue now: what does not fit is counted, never dropped */
			(void) count_lost(&rec.ev);
			(*overflow)++;
		}
	}
	for (uint32 i = 0; i < h.nlost; i++)
	{
		LostCount	rec;
		bool		first;

		if (!read_crc(f, &rec, sizeof(rec), &crc))
			return "it is truncated";
		rec.dbname[NAMEDATALEN - 1] = '\0';

		LostCount  *l = lost_counter(rec.dboid, rec.dbname, rec.first, &first);

		if (!first && rec.first < l->first)
			l->first = rec.first;
		l->count += rec.count;
	}
	FIN_CRC32C(crc);
	if (fread(&saved, sizeof(saved), 1, f) != 1 || !EQ_CRC32C(crc, saved))
		return "its checksum does not match its contents";
	if (h.unknown_since != 0 && eq->unknown_since == 0)
	{
		eq->unknown_since = h.unknown_since;
		eq->unknown_done = h.unknown_done;
		h.unknown_reason[sizeof(h.unknown_reason) - 1] = '\0';
		strlcpy(eq->unknown_reason, h.unknown_reason, sizeof(eq->unknown_reason));
	}
	return nullptr;
}

/*
 * Put back the queue a clean shutdown saved, if any, and remove the file.
 * After a run that did not end in one, a file there was not written by it.
 */
void
load_queue_file(bool standby, bool unclean)
{
	FILE	   *f = AllocateFile(QUEUE_FILE, PG_BINARY_R);

	if (f == nullptr)
	{
		if (errno != ENOENT)
		{
			ereport(LOG,
					(errcode_for_file_access(),
					 errmsg("sensitive_audit: could not read file \"%s\": %m", QUEUE_FILE)));
			note_unknown_loss("saved queue unreadable");
		}
		return;
	}
	if (standby)
	{
		FreeFile(f);
		ereport(LOG,
				(errmsg("sensitive_audit: event queue file \"%s\" discarded: this server starts as a standby",
						QUEUE_FILE),
				 errdetail("A standby writes no events; the ones saved there are those of the server it was copied from.")));
		(void) durable_unlink(QUEUE_FILE, LOG);
		return;
	}

	uint64		loaded = 0;
	uint64		overflow = 0;
	const char *why = unclean ? "the server's last run did not end in a clean shutdown, which alone writes it"
		: read_queue_file(f, &loaded, &overflow);

	FreeFile(f);
	if (why != nullptr)
	{
		/* nothing of it, rather than part */
		memset(eq->slots, 0, sizeof(EventSlot) * eq->capacity);
		memset(eq->lost, 0, sizeof(eq->lost));
		eq->next_order = 0;
		ereport(LOG,
				(errmsg("sensitive_audit: event queue file \"%s\" refused: %s", QUEUE_FILE, why),
				 errdetail("Nothing was loaded from it; it is kept as \"%s\".  A LOST entry of unknown count will be written in each database.",
						   QUEUE_FILE ".refused")));
		(void) durable_rename(QUEUE_FILE, QUEUE_FILE ".refused", LOG);
		note_unknown_loss("saved queue refused");
		return;
	}
	/* durably: a file loaded twice would write its events twice */
	(void) durable_unlink(QUEUE_FILE, LOG);
	ereport(LOG,
			(errmsg("sensitive_audit: " UINT64_FORMAT " events restored from \"%s\"", loaded, QUEUE_FILE)));
	if (overflow > 0)
		ereport(LOG,
				(errmsg("sensitive_audit: " UINT64_FORMAT " saved events do not fit into sensitive_audit.event_queue_size = %d",
						overflow, eq->capacity),
				 errdetail("They are recorded as LOST entries with their count.")));
}

/*
 * From the shmem startup hook of the postmaster, once the queue is new: put
 * back what a clean shutdown saved, or remember what a crash lost.
 */
void
restore_queue(void)
{
	/* the postmaster's memory: set once it has made a queue */
	static bool made_before = false;

	if (made_before)
	{
		/* shared memory made again after a crash: the old queue is not read */
		note_unknown_loss("crash restart");
		ereport(LOG,
				(errmsg("sensitive_audit: the events queued before the crash are lost"),
				 errdetail("A LOST entry of unknown count will be written in each database.")));
		return;
	}
	made_before = true;

	/* a standby, or a recovery to a target: the events saved here are not its own */
	bool		standby = access(STANDBY_SIGNAL_FILE, F_OK) == 0
		|| access(RECOVERY_SIGNAL_FILE, F_OK) == 0;

	/* a restored backup (backup_label) had no queue of its own */
	bool		unclean = !standby && access(BACKUP_LABEL_FILE, F_OK) != 0 && !last_shutdown_clean();

	if (unclean)
	{
		note_unknown_loss("crash restart");
		ereport(LOG,
				(errmsg("sensitive_audit: the server was not shut down cleanly: the events queued before are lost"),
				 errdetail("A LOST entry of unknown count will be written in each database.")));
	}
	load_queue_file(standby, unclean);
}

}							/* namespace */

bool
sa_events_available(void)
{
	return eq != nullptr;
}

/*
 * Queue one event.  Safe in any backend attached to shared memory, before
 * authentication is done too: it takes one LWLock and allocates nothing.
 * Returns false if the event was lost (counted) or there is no queue.
 */
bool
sa_event_enqueue(const SaEventFields *f)
{
	if (eq == nullptr)
		return false;

	SaEvent		ev;			/* every string field is set below; copy_event() copies no further */
	uint16		nulls = 0;

	ev.dboid = f->dboid;
	ev.event_time = f->event_time;
	ev.backend_pid = f->backend_pid;
	/* never NULL: unset ones are empty */
	strlcpy(ev.dbname, f->dbname ? f->dbname : "", sizeof(ev.dbname));
	strlcpy(ev.operation, f->operation, sizeof(ev.operation));
	strlcpy(ev.session_role, f->session_role ? f->session_role : "", sizeof(ev.session_role));
	strlcpy(ev.effective_role, f->effective_role ? f->effective_role : ev.session_role,
			sizeof(ev.effective_role));
	strlcpy(ev.application_name, f->application_name ? f->application_name : "",
			sizeof(ev.application_name));
	/* possibly NULL */
	copy_field(ev.table_schema, sizeof(ev.table_schema), f->table_schema, &nulls, EB_TABLE_SCHEMA);
	copy_field(ev.table_name, sizeof(ev.table_name), f->table_name, &nulls, EB_TABLE_NAME);
	copy_field(ev.column_name, sizeof(ev.column_name), f->column_name, &nulls, EB_COLUMN_NAME);
	copy_field(ev.new_value, sizeof(ev.new_value), f->new_value, &nulls, EB_NEW_VALUE);
	copy_field(ev.client_addr, sizeof(ev.client_addr), f->client_addr, &nulls, EB_CLIENT_ADDR);

	bool		queued = false;

	LWLockAcquire(eq->lock, LW_EXCLUSIVE);
	queue_lost(1);
	EventSlot  *s = free_slot();

	/*
	 * A session's own events wait a little for room rather than be lost: the
	 * worker is woken, and the session sleeps while it writes.
	 */
	for (int waited = 0; s == nullptr && waited < f->wait_ms; waited++)
	{
		wake_for(ev.dboid);
		LWLockRelease(eq->lock);
		CHECK_FOR_INTERRUPTS();
		pg_usleep(1000L);
		LWLockAcquire(eq->lock, LW_EXCLUSIVE);
		queue_lost(1);
		s = free_slot();
	}

	if (s != nullptr)
	{
		s->in_use = true;
		s->attempts = 0;
		s->claimed_by = 0;
		s->unknown_count = false;
		s->order = eq->next_order++;
		s->nulls = nulls;
		copy_event(&s->ev, &ev);
		queued = true;
	}
	bool		warn = !queued && count_lost(&ev);

	wake_for(ev.dboid);
	LWLockRelease(eq->lock);
	if (warn)
		ereport(WARNING,
				(errmsg("sensitive_audit event queue is full: events for %s are being lost",
						database_label(ev.dboid, ev.dbname)),
				 errdetail("Their number will be recorded as a LOST entry as soon as there is room."),
				 errhint("Raise sensitive_audit.event_queue_size, or see why the event workers do not keep up.")));
	return queued;
}

/*
 * Queue an event of the current session, for its database, with the
 * who-fields of an ordinary entry: a refused change (DENIED) or a read
 * (READ), which the session's own transaction cannot be trusted to keep.
 * False when there is no queue (not preloaded), on a standby (the workers
 * cannot write there) or when the queue is full (counted as LOST).
 */
bool
sa_event_enqueue_session(const char *operation, const char *schema, const char *table,
						 const char *column, const char *new_value)
{
	if (eq == nullptr || RecoveryInProgress() || !OidIsValid(MyDatabaseId))
		return false;

	SaEventFields f;

	memset(&f, 0, sizeof(f));
	f.dboid = MyDatabaseId;
	f.event_time = GetCurrentTimestamp();
	f.backend_pid = MyProcPid;
	f.operation = operation;
	f.session_role = GetUserNameFromId(GetSessionUserId(), false);
	f.effective_role = GetUserNameFromId(GetUserId(), false);
	f.application_name = application_name ? application_name : "";
	f.client_addr = sa_client_addr();
	f.table_schema = schema;
	f.table_name = table;
	f.column_name = column;
	f.new_value = new_value;
	f.wait_ms = SA_EVENT_WAIT_MS;
	return sa_event_enqueue(&f);
}

namespace {

/* ------------------------------------------------------------------------
 * Failed logins.
 */

/* s with its bytes outside ASCII written as \xNN (a new string). */
char *
ascii_escaped(const char *s)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (const unsigned char *p = (const unsigned char *) s; *p; p++)
	{
		if (*p < 0x80)
			appendStringInfoChar(&buf, (char) *p);
		else
			appendStringInfo(&buf, "\\x%02x", *p);
	}
	return buf.data;
}


/*
 * Why the login failed, as a class that tells an auditor what happened
 * without helping whoever is guessing: never anything the client sent
 * besides the role's name.  pg_authid is a shared catalog, readable here as
 * the authentication code itself reads it.
 */
const char *
failure_reason(const Port *port)
{
	HeapTuple	tuple = SearchSysCache1(AUTHNAME, PointerGetDatum(port->user_name));

	if (!HeapTupleIsValid(tuple))
		return "role does not exist";

	const char *reason = "authentication failed";
	bool		isnull;
	Datum		until = SysCacheGetAttr(AUTHNAME, tuple, Anum_pg_authid_rolvaliduntil, &isnull);

	bool		no_password;

	(void) SysCacheGetAttr(AUTHNAME, tuple, Anum_pg_authid_rolpassword, &no_password);
	if (!((Form_pg_authid) GETSTRUCT(tuple))->rolcanlogin)
		reason = "role may not log in";
	else if (!isnull && DatumGetTimestampTz(until) < GetCurrentTimestamp())
		reason = "password expired";
	else if (no_password && port->hba
			 && (port->hba->auth_method == uaPassword || port->hba->auth_method == uaMD5
				 || port->hba->auth_method == uaSCRAM))
		reason = "no password set";
	ReleaseSysCache(tuple);
	return reason;
}

/* Queue a LOGIN FAILED event for port, with the reason class given. */
void
queue_login_failed(Port *port, const char *reason)
{
	SaEventFields f;
	char		host[NI_MAXHOST];
	StringInfoData value;
	const char *method = port->hba ? hba_authname(port->hba->auth_method) : "unknown";

	memset(&f, 0, sizeof(f));
	f.dboid = InvalidOid;		/* resolved by the launcher */
	f.dbname = port->database_name;
	f.event_time = GetCurrentTimestamp();
	f.backend_pid = MyProcPid;
	f.operation = "LOGIN FAILED";
	f.session_role = port->user_name;
	f.effective_role = port->user_name;
	f.application_name = port->application_name;
	host[0] = '\0';
	if (port->raddr.addr.ss_family != AF_UNIX
		&& pg_getnameinfo_all(&port->raddr.addr, port->raddr.salen, host, sizeof(host),
							  nullptr, 0, NI_NUMERICHOST) == 0)
		f.client_addr = host;
	initStringInfo(&value);
	appendStringInfoString(&value, "{\"method\": ");
	escape_json(&value, method);
	appendStringInfoString(&value, ", \"reason\": ");
	escape_json(&value, reason);
	appendStringInfoString(&value, ", \"database\": ");
	/*
	 * The database is named inside JSON: keep that JSON valid in whatever
	 * encoding the database that records it uses (see storable()).
	 */
	const char *dbname = port->database_name ? port->database_name : "";

	if (!pg_verify_mbstr(PG_UTF8, dbname, (int) strlen(dbname), true))
		dbname = ascii_escaped(dbname);
	escape_json(&value, dbname);
	appendStringInfoChar(&value, '}');
	f.new_value = value.data;
	(void) sa_event_enqueue(&f);
	pfree(value.data);
}

void
client_auth_hook(Port *port, int status)
{
	if (prev_client_auth_hook)
		prev_client_auth_hook(port, status);
	if (status != STATUS_ERROR || eq == nullptr)
		return;
	queue_login_failed(port, failure_reason(port));
}

/*
 * A connection pg_hba.conf rejects (a "reject" line, or no line at all)
 * fails before any authentication method runs, so ClientAuthentication_hook
 * never sees it: the FATAL error that refuses it is the only sign.  Only
 * that error is taken, while authentication is in progress, once.
 */
void
emit_log(ErrorData *edata)
{
	static bool queued = false;

	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);
	if (!ClientAuthInProgress || queued || eq == nullptr || edata->elevel != FATAL
		|| edata->sqlerrcode != ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION
		|| MyProcPort == nullptr || MyProcPort->hba == nullptr)
		return;
	if (MyProcPort->hba->auth_method != uaReject && MyProcPort->hba->auth_method != uaImplicitReject)
		return;
	queued = true;
	queue_login_failed(MyProcPort, MyProcPort->hba->auth_method == uaReject
					   ? "rejected by pg_hba.conf" : "no pg_hba.conf entry");
}

/* ------------------------------------------------------------------------
 * The workers.
 */

void
register_launcher(void)
{
	BackgroundWorker w;

	memset(&w, 0, sizeof(w));
	w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	w.bgw_start_time = BgWorkerStart_RecoveryFinished;
	w.bgw_restart_time = 1;
	strlcpy(w.bgw_library_name, "sensitive_audit", BGW_MAXLEN);
	strlcpy(w.bgw_function_name, "sa_events_launcher_main", BGW_MAXLEN);
	strlcpy(w.bgw_name, "sensitive_audit event launcher", BGW_MAXLEN);
	strlcpy(w.bgw_type, "sensitive_audit event launcher", BGW_MAXLEN);
	RegisterBackgroundWorker(&w);
}

/*
 * The databases, read with a plain heap scan of pg_database, as the
 * autovacuum launcher reads them: a process connected to no database may
 * not use the catalog's indexes (after an invalidation reset, rebuilding a
 * shared index's relcache entry would read pg_class, which it cannot).
 */
struct DbInfo
{
	Oid			oid;
	NameData	name;
	bool		usable;			/* a worker may connect to it */
};

struct DbList
{
	DbInfo	   *dbs;
	int			n;
};

DbList
read_databases(void)
{
	DbList		out = {nullptr, 0};
	int			max = 16;
	Relation	rel = table_open(DatabaseRelationId, AccessShareLock);
	TableScanDesc scan = table_beginscan_catalog(rel, 0, nullptr);
	HeapTuple	tuple;

	out.dbs = (DbInfo *) palloc(sizeof(DbInfo) * max);
	while ((tuple = heap_getnext(scan, ForwardScanDirection)) != nullptr)
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tuple);

		if (out.n == max)
		{
			max *= 2;
			out.dbs = (DbInfo *) repalloc(out.dbs, sizeof(DbInfo) * max);
		}
		out.dbs[out.n].oid = db->oid;
		out.dbs[out.n].name = db->datname;
		out.dbs[out.n].usable = db->datallowconn && db->datconnlimit != DATCONNLIMIT_INVALID_DB;
		out.n++;
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	return out;
}

/* A database by name, or InvalidOid; *usable says if a worker may connect. */
Oid
find_database(const DbList *l, const char *name, bool *usable)
{
	for (int i = 0; i < l->n; i++)
		if (strcmp(NameStr(l->dbs[i].name), name) == 0)
		{
			*usable = l->dbs[i].usable;
			return l->dbs[i].oid;
		}
	*usable = false;
	return InvalidOid;
}

bool
database_usable(const DbList *l, Oid dboid)
{
	for (int i = 0; i < l->n; i++)
		if (l->dbs[i].oid == dboid)
			return l->dbs[i].usable;
	return false;
}

/* The database events are sent to when theirs cannot take them, or InvalidOid. */
Oid
events_database_oid(const DbList *l)
{
	bool		usable;

	if (sa_events_database == nullptr || sa_events_database[0] == '\0')
		return InvalidOid;

	Oid			dboid = find_database(l, sa_events_database, &usable);

	return usable ? dboid : InvalidOid;
}

/* Drop a slot's event with a LOG line saying why.  Lock held exclusively. */
void
drop_event(EventSlot *s, const char *why)
{
	ereport(LOG,
			(errmsg("sensitive_audit: %s event for database \"%s\" dropped: %s",
					s->ev.operation, s->ev.dbname, why)));
	s->in_use = false;
}

struct WorkerStart
{
	Oid			dboid;
	BackgroundWorkerHandle *handle;
};

WorkerStart started[SA_MAX_DB_WORKERS];

/* Is a worker for this database running or starting?  Lock held. */
bool
has_worker(Oid dboid)
{
	for (int i = 0; i < SA_MAX_DB_WORKERS; i++)
		if (eq->workers[i].pid != 0 && eq->workers[i].dboid == dboid)
			return true;
	for (int i = 0; i < SA_MAX_DB_WORKERS; i++)
	{
		pid_t		pid;

		if (started[i].handle == nullptr || started[i].dboid != dboid)
			continue;
		BgwHandleStatus st = GetBackgroundWorkerPid(started[i].handle, &pid);

		if (st == BGWH_STARTED || st == BGWH_NOT_YET_STARTED)
			return true;
		pfree(started[i].handle);
		started[i].handle = nullptr;
	}
	return false;
}

void
start_worker(Oid dboid)
{
	BackgroundWorker w;
	BackgroundWorkerHandle *handle;
	int			free_i = -1;

	for (int i = 0; i < SA_MAX_DB_WORKERS; i++)
		if (started[i].handle == nullptr)
		{
			free_i = i;
			break;
		}
	if (free_i < 0)
		return;
	memset(&w, 0, sizeof(w));
	w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	w.bgw_start_time = BgWorkerStart_RecoveryFinished;
	w.bgw_restart_time = BGW_NEVER_RESTART;
	strlcpy(w.bgw_library_name, "sensitive_audit", BGW_MAXLEN);
	strlcpy(w.bgw_function_name, "sa_events_worker_main", BGW_MAXLEN);
	snprintf(w.bgw_name, BGW_MAXLEN, "sensitive_audit event worker for database %u", dboid);
	strlcpy(w.bgw_type, "sensitive_audit event worker", BGW_MAXLEN);
	w.bgw_main_arg = ObjectIdGetDatum(dboid);
	w.bgw_notify_pid = MyProcPid;
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
	bool		ok = RegisterDynamicBackgroundWorker(&w, &handle);

	MemoryContextSwitchTo(old);
	if (!ok)
	{
		ereport(LOG,
				(errmsg("sensitive_audit: could not start an event worker for database %u", dboid),
				 errhint("Raise max_worker_processes.")));
		return;
	}
	started[free_i].dboid = dboid;
	started[free_i].handle = handle;
}

int
cmp_db_oid(const void *a, const void *b)
{
	Oid			x = ((const DbInfo *) a)->oid;
	Oid			y = ((const DbInfo *) b)->oid;

	return x < y ? -1 : (x > y ? 1 : 0);
}

/*
 * After a crash the queue's events are gone, whoever's they were: queue one
 * LOST entry of unknown count for every database a worker can connect to,
 * as room allows, in OID order (the rest on a later pass).  A database
 * without the extension drops its own (see drop_unknown_losses).
 */
void
queue_unknown_losses(void)
{
	LWLockAcquire(eq->lock, LW_SHARED);
	bool		pending = eq->unknown_since != 0;

	LWLockRelease(eq->lock);
	if (!pending)
		return;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();

	DbList		dbs = read_databases();
	StringInfoData value;
	int			queued = 0;
	int			i;

	qsort(dbs.dbs, dbs.n, sizeof(DbInfo), cmp_db_oid);
	initStringInfo(&value);
	LWLockAcquire(eq->lock, LW_EXCLUSIVE);
	appendStringInfoString(&value, "{\"count\": null, \"reason\": ");
	escape_json(&value, eq->unknown_reason);
	appendStringInfoChar(&value, '}');
	for (i = 0; i < dbs.n; i++)
	{
		const DbInfo *d = &dbs.dbs[i];

		if (!d->usable || d->oid <= eq->unknown_done)
			continue;
		if (free_slot() == nullptr)
			break;
		put_lost(d->oid, NameStr(d->name), eq->unknown_since, value.data)->unknown_count = true;
		eq->unknown_done = d->oid;
		queued++;
	}
	if (i == dbs.n)
	{
		eq->unknown_since = 0;
		eq->unknown_done = InvalidOid;
	}
	LWLockRelease(eq->lock);
	CommitTransactionCommand();
	if (queued > 0)
		ereport(LOG,
				(errmsg("sensitive_audit: %d LOST entries of unknown count queued, one per database", queued)));
}

void
launcher_detach(int code, Datum arg)
{
	LWLockAcquire(eq->lock, LW_EXCLUSIVE);
	if (eq->launcher_latch == MyLatch)
		eq->launcher_latch = nullptr;
	LWLockRelease(eq->lock);
}

/*
 * One pass of the launcher: give every queued event a database that can
 * take it, and every such database a worker.
 */
void
launcher_pass(void)
{
	Oid			need[SA_MAX_DB_WORKERS];
	int			nneed = 0;
	Oid			fallback;
	bool		waiting = false;

	LWLockAcquire(eq->lock, LW_SHARED);
	for (int i = 0; i < eq->capacity && !waiting; i++)
		waiting = eq->slots[i].in_use && eq->slots[i].claimed_by == 0;
	for (int i = 0; i < SA_LOST_SLOTS && !waiting; i++)
		waiting = eq->lost[i].count > 0;
	LWLockRelease(eq->lock);
	if (!waiting)
		return;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();

	DbList		dbs = read_databases();

	fallback = events_database_oid(&dbs);

	LWLockAcquire(eq->lock, LW_EXCLUSIVE);
	for (int i = 0; i < eq->capacity; i++)
	{
		EventSlot  *s = &eq->slots[i];

		if (!s->in_use || s->claimed_by != 0)
			continue;
		if (!OidIsValid(s->ev.dboid))
		{
			/* named by the client at login: it may not exist */
			bool		usable;

			s->ev.dboid = find_database(&dbs, s->ev.dbname, &usable);
		}
		if (!OidIsValid(s->ev.dboid) || !database_usable(&dbs, s->ev.dboid))
		{
			/* a LOST of unknown count is its own database's only */
			if (OidIsValid(fallback) && s->ev.dboid != fallback && !s->unknown_count)
				s->ev.dboid = fallback;
			else
			{
				drop_event(s, "the database does not exist or does not allow connections, "
						   "and sensitive_audit.events_database names no other");
				continue;
			}
		}

		bool		listed = false;

		for (int j = 0; j < nneed; j++)
			listed |= need[j] == s->ev.dboid;
		if (listed)
			continue;
		if (has_worker(s->ev.dboid))
			wake_for(s->ev.dboid);	/* an event it could not know was its own */
		else if (nneed < SA_MAX_DB_WORKERS)
			need[nneed++] = s->ev.dboid;
	}
	queue_lost(0);
	LWLockRelease(eq->lock);
	CommitTransactionCommand();

	for (int j = 0; j < nneed; j++)
		start_worker(need[j]);
}

}							/* namespace */

void
sa_events_launcher_main(Datum arg)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	/* no database: only the shared catalogs, which is all it reads */
	BackgroundWorkerInitializeConnection(nullptr, nullptr, 0);
	pgstat_report_appname("sensitive_audit event launcher");

	memset(started, 0, sizeof(started));
	LWLockAcquire(eq->lock, LW_EXCLUSIVE);
	eq->launcher_latch = MyLatch;
	LWLockRelease(eq->lock);
	on_shmem_exit(launcher_detach, (Datum) 0);
	ereport(LOG, (errmsg("sensitive_audit event launcher started")));

	for (;;)
	{
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		queue_unknown_losses();
		launcher_pass();
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 1000L,
						 PG_WAIT_EXTENSION);
	}
}

namespace {

Oid			worker_db = InvalidOid;

void
worker_detach(int code, Datum arg)
{
	LWLockAcquire(eq->lock, LW_EXCLUSIVE);
	for (int i = 0; i < SA_MAX_DB_WORKERS; i++)
		if (eq->workers[i].pid == MyProcPid)
			eq->workers[i].pid = 0;
	/* whatever it had claimed and not written goes back to the queue */
	for (int i = 0; i < eq->capacity; i++)
		if (eq->slots[i].in_use && eq->slots[i].claimed_by == MyProcPid)
			eq->slots[i].claimed_by = 0;
	if (eq->launcher_latch)
		SetLatch(eq->launcher_latch);
	LWLockRelease(eq->lock);
}

/*
 * Become this database's worker, or say that another one is.  Claims left
 * by a worker that died before its exit callback ran are taken over: only
 * the database's one worker ever claims its events.
 */
bool
worker_register(void)
{
	int			free_i = -1;

	LWLockAcquire(eq->lock, LW_EXCLUSIVE);
	for (int i = 0; i < SA_MAX_DB_WORKERS; i++)
	{
		DbWorker   *w = &eq->workers[i];

		if (w->pid != 0 && w->dboid == worker_db && w->pid != MyProcPid)
		{
			if (kill(w->pid, 0) == 0)
			{
				LWLockRelease(eq->lock);
				return false;
			}
			w->pid = 0;
		}
		if (w->pid == 0 && free_i < 0)
			free_i = i;
	}
	if (free_i < 0)
	{
		LWLockRelease(eq->lock);
		return false;
	}
	eq->workers[free_i].dboid = worker_db;
	eq->workers[free_i].pid = MyProcPid;
	eq->workers[free_i].latch = MyLatch;
	for (int i = 0; i < eq->capacity; i++)
		if (eq->slots[i].in_use && eq->slots[i].ev.dboid == worker_db)
			eq->slots[i].claimed_by = 0;
	LWLockRelease(eq->lock);
	return true;
}

struct Claimed
{
	int			index;
	uint64		order;
	uint16		nulls;
	SaEvent		ev;
};

/*
 * Claim up to SA_WORKER_BATCH of this database's events, in queue order
 * within the batch.  (Each entry carries its event's own time; the order of
 * entries in a chain is their commit order, as for every entry.)
 */
/* A claimed slot, sorted as such: the events themselves are large. */
struct Pick
{
	uint64		order;
	int			index;
};

int
cmp_pick(const void *a, const void *b)
{
	uint64		x = ((const Pick *) a)->order;
	uint64		y = ((const Pick *) b)->order;

	return x < y ? -1 : (x > y ? 1 : 0);
}

int
claim_batch(Claimed *out)
{
	static Pick picks[SA_WORKER_BATCH];
	int			n = 0;

	LWLockAcquire(eq->lock, LW_EXCLUSIVE);
	for (int i = 0; i < eq->capacity && n < SA_WORKER_BATCH; i++)
	{
		EventSlot  *s = &eq->slots[i];

		if (!s->in_use || s->claimed_by != 0 || s->ev.dboid != worker_db)
			continue;
		if (s->attempts >= SA_MAX_ATTEMPTS)
		{
			drop_event(s, "writing it failed too often; see the earlier errors in the server log");
			continue;
		}
		s->claimed_by = MyProcPid;
		s->attempts++;
		picks[n].order = s->order;
		picks[n].index = i;
		n++;
	}
	qsort(picks, n, sizeof(Pick), cmp_pick);
	for (int k = 0; k < n; k++)
	{
		const EventSlot *s = &eq->slots[picks[k].index];

		out[k].index = picks[k].index;
		out[k].order = s->order;
		out[k].nulls = s->nulls;
		copy_event(&out[k].ev, &s->ev);
	}
	LWLockRelease(eq->lock);
	return n;
}

const char *
field(const Claimed *c, int bit, const char *s)
{
	return (c->nulls & (1 << bit)) ? nullptr : s;
}

/*
 * A field as the database can store it.  A client names its role and
 * database with whatever bytes it likes, before anything has checked them
 * against any encoding: text that is not valid in this database's encoding
 * would poison the log (every read, dump and restore of it would fail), so
 * its bytes outside ASCII are written as \xNN instead.
 */
const char *
storable(const char *s)
{
	if (s == nullptr || pg_verifymbstr(s, (int) strlen(s), true))
		return s;
	return ascii_escaped(s);
}

/* Queue the batch as pending entries, in this worker's transaction. */
void
write_batch(const Claimed *batch, int n)
{
	for (int i = 0; i < n; i++)
	{
		const Claimed *c = &batch[i];
		PendingEntry *e = sa_pending_new(c->ev.event_time);

		sa_pending_set(e, PF_OPERATION, c->ev.operation);
		sa_pending_set(e, PF_TABLE_SCHEMA, storable(field(c, EB_TABLE_SCHEMA, c->ev.table_schema)));
		sa_pending_set(e, PF_TABLE_NAME, storable(field(c, EB_TABLE_NAME, c->ev.table_name)));
		sa_pending_set(e, PF_COLUMN_NAME, storable(field(c, EB_COLUMN_NAME, c->ev.column_name)));
		sa_pending_set(e, PF_NEW_VALUE, storable(field(c, EB_NEW_VALUE, c->ev.new_value)));
		/* a refused change alerts too, once its entry is written */
		if (strcmp(c->ev.operation, "DENIED") == 0 && field(c, EB_NEW_VALUE, c->ev.new_value) != nullptr)
			Async_Notify(SA_ALERT_CHANNEL, c->ev.new_value);
		if (c->ev.session_role[0] == '\0')
		{
			/* LOST: nobody's action; the worker's own who-fields */
			sa_pending_fill_who(e);
			continue;
		}
		e->backend_pid = c->ev.backend_pid;
		sa_pending_set(e, PF_SESSION_ROLE, storable(c->ev.session_role));
		sa_pending_set(e, PF_EFFECTIVE_ROLE, storable(c->ev.effective_role));
		sa_pending_set(e, PF_APPLICATION_NAME, storable(c->ev.application_name));

		const char *addr = field(c, EB_CLIENT_ADDR, c->ev.client_addr);

		/* as inet prints it, the form ordinary entries record */
		if (addr != nullptr)
			addr = DatumGetCString(DirectFunctionCall1(inet_out,
													   DirectFunctionCall1(inet_in, CStringGetDatum(addr))));
		sa_pending_set(e, PF_CLIENT_ADDR, addr);
	}
}

/* The batch is written (or dropped): free its slots. */
void
release_batch(const Claimed *batch, int n, Oid reroute)
{
	LWLockAcquire(eq->lock, LW_EXCLUSIVE);
	for (int i = 0; i < n; i++)
	{
		EventSlot  *s = &eq->slots[batch[i].index];

		if (!s->in_use || s->claimed_by != MyProcPid)
			continue;
		if (OidIsValid(reroute))
		{
			s->ev.dboid = reroute;
			s->claimed_by = 0;
			s->attempts = 0;
			wake_for(reroute);
		}
		else
			s->in_use = false;
	}
	queue_lost(0);
	LWLockRelease(eq->lock);
}

/*
 * Let events accumulate before the next batch (SA_WORKER_GATHER_MS).  The
 * latch is left set meanwhile, so that enqueuers setting it again cost no
 * signal.
 */
void
gather(void)
{
	volatile uint64 *queued = &eq->next_order;	/* read without the lock: only a hint */
	uint64		start = *queued;

	for (int waited = 0; waited < SA_WORKER_GATHER_MS; waited += 2)
	{
		CHECK_FOR_INTERRUPTS();
		if (*queued - start >= (uint64) (eq->capacity / 4 + 1))
			return;
		(void) WaitLatch(MyLatch, WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 2L, PG_WAIT_EXTENSION);
	}
}

/*
 * A LOST entry of unknown count speaks for its own database only: where the
 * extension is not installed it is dropped with a LOG line, not sent on to
 * sensitive_audit.events_database, which has its own.
 */
void
drop_unknown_losses(const Claimed *batch, int n)
{
	LWLockAcquire(eq->lock, LW_EXCLUSIVE);
	for (int i = 0; i < n; i++)
	{
		EventSlot  *s = &eq->slots[batch[i].index];

		if (s->in_use && s->claimed_by == MyProcPid && s->unknown_count)
			drop_event(s, "the extension is not installed there");
	}
	LWLockRelease(eq->lock);
}

void
process_batch(const Claimed *batch, int n)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());

	bool		installed = OidIsValid(get_extension_oid("sensitive_audit", true))
		&& OidIsValid(sa_audit_relid(SA_ENTRIES));
	Oid			reroute = InvalidOid;

	if (installed)
		write_batch(batch, n);
	else
	{
		DbList		dbs = read_databases();

		reroute = events_database_oid(&dbs);
		if (reroute == MyDatabaseId)
			reroute = InvalidOid;
		if (!OidIsValid(reroute))
			ereport(LOG,
					(errmsg("sensitive_audit: %d events for database \"%s\" dropped: the extension is not installed there, "
							"and sensitive_audit.events_database names no other database",
							n, get_database_name(MyDatabaseId))));
		else
			drop_unknown_losses(batch, n);
	}
	PopActiveSnapshot();
	/* pre-commit links the pending entries into a chain (chain.cpp) */
	CommitTransactionCommand();
	pgstat_report_stat(false);
	release_batch(batch, n, reroute);
}

}							/* namespace */

void
sa_events_worker_main(Datum arg)
{
	Claimed    *batch;
	int			idle = 0;

	worker_db = DatumGetObjectId(arg);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(worker_db, InvalidOid, 0);
	SetConfigOption("application_name", "sensitive_audit event worker", PGC_USERSET, PGC_S_SESSION);
	pgstat_report_appname("sensitive_audit event worker");

	on_shmem_exit(worker_detach, (Datum) 0);
	if (!worker_register())
		proc_exit(0);

	batch = (Claimed *) MemoryContextAlloc(TopMemoryContext, sizeof(Claimed) * SA_WORKER_BATCH);
	for (;;)
	{
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		int			n = claim_batch(batch);

		if (n > 0)
		{
			idle = 0;
			process_batch(batch, n);
			if (n < SA_WORKER_BATCH)
				gather();
			continue;
		}
		if (++idle > SA_WORKER_IDLE_EXIT)
			proc_exit(0);		/* worker_detach hands anything new to the launcher */
		if (WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 1000L,
					  PG_WAIT_EXTENSION) & WL_LATCH_SET)
			gather();
	}
}

/* From _PG_init: settings always; queue, workers and login hook when preloaded. */
void
sa_events_init(void)
{
	DefineCustomStringVariable("sensitive_audit.events_database",
							   "Names the database that takes events whose own database cannot record them.",
							   "A failed login to a database without the extension, or to one that does "
							   "not exist, is recorded in this database; when empty, such events are "
							   "dropped with a LOG line.",
							   &sa_events_database,
							   "",
							   PGC_SIGHUP,
							   0,
							   nullptr, nullptr, nullptr);

	/* the queue exists only when preloaded, and so does its size */
	if (!process_shared_preload_libraries_in_progress)
		return;
	DefineCustomIntVariable("sensitive_audit.event_queue_size",
							"Sets how many events the shared-memory queue of the event workers holds.",
							"Events no transaction of the acting session can write, such as failed "
							"logins, wait here until a worker links them into a chain.  When the queue "
							"is full, further events are counted and recorded as one LOST entry.",
							&sa_event_queue_size,
							1024, 4, 1000000,
							PGC_POSTMASTER,
							0,
							nullptr, nullptr, nullptr);
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = events_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = events_shmem_startup;
	prev_client_auth_hook = ClientAuthentication_hook;
	ClientAuthentication_hook = client_auth_hook;
	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = emit_log;
	register_launcher();
}
