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
#include "catalog/pg_authid.h"
#include "catalog/pg_database.h"
#include "commands/dbcommands.h"
#include "common/ip.h"
#include "libpq/auth.h"
#include "libpq/hba.h"
#include "libpq/libpq-be.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
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

		EventSlot  *s = free_slot();
		char		count[32];

		memset(s, 0, sizeof(*s));
		s->in_use = true;
		s->order = eq->next_order++;
		s->ev.dboid = l->dboid;
		strlcpy(s->ev.dbname, l->dbname, sizeof(s->ev.dbname));
		s->ev.event_time = l->first;
		s->ev.backend_pid = 0;
		strlcpy(s->ev.operation, "LOST", sizeof(s->ev.operation));
		snprintf(count, sizeof(count), UINT64_FORMAT, l->count);
		strlcpy(s->ev.new_value, count, sizeof(s->ev.new_value));
		s->nulls = (1 << EB_TABLE_SCHEMA) | (1 << EB_TABLE_NAME) | (1 << EB_COLUMN_NAME)
			| (1 << EB_CLIENT_ADDR);
		/* the who-fields are the writing worker's own (see write_batch) */
		s->ev.session_role[0] = '\0';
		ereport(LOG,
				(errmsg("sensitive_audit: " UINT64_FORMAT " events lost for %s are recorded as one LOST entry",
						l->count, database_label(l->dboid, l->dbname))));
		wake_for(l->dboid);
		memset(l, 0, sizeof(*l));
	}
}

/*
 * Count an event the full queue could not take.  Lock held exclusively.
 * True for the first of a run of losses: the caller then warns, once the
 * lock is released (a WARNING goes to the client, who may not be reading).
 */
bool
count_lost(const SaEvent *ev)
{
	bool		first = false;

	LostCount  *l = nullptr;

	for (int i = 0; i < SA_LOST_SLOTS && l == nullptr; i++)
		if (eq->lost[i].count > 0 && eq->lost[i].dboid == ev->dboid
			&& strcmp(eq->lost[i].dbname, ev->dbname) == 0)
			l = &eq->lost[i];
	for (int i = 0; i < SA_LOST_SLOTS && l == nullptr; i++)
		if (eq->lost[i].count == 0)
			l = &eq->lost[i];
	if (l == nullptr)
		l = &eq->lost[0];		/* every slot taken: count them with the first */
	if (l->count == 0)
	{
		l->dboid = ev->dboid;
		strlcpy(l->dbname, ev->dbname, sizeof(l->dbname));
		l->first = ev->event_time;
		first = true;
	}
	l->count++;
	return first;
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
			if (OidIsValid(fallback) && s->ev.dboid != fallback)
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
