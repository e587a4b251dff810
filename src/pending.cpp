/*
 * pending.cpp — entries captured in the current transaction, not yet linked.
 *
 * Capture runs inside the writer's transaction, but an entry may only enter a
 * chain when its transaction commits (DESIGN invariant 4: aborted work never
 * enters a chain, and chains follow commit order).  So triggers append here,
 * and chain.cpp links the whole queue at pre-commit (or PREPARE).  Nothing
 * here takes a lock: writers never wait on each other before commit.
 *
 * Memory is bounded, whatever the size of the transaction:
 *  - What entries share (operation, table, column, value type, key source
 *    and who: the fields of a log_contexts row) is interned once per
 *    transaction as a "pending context"; an entry refers to its context by
 *    number.  There are as many contexts as distinct combinations of those
 *    texts, a handful per statement, not one per entry.
 *  - The rest of an entry (event time, row key, old and new value) is
 *    serialized into a buffer of at most sensitive_audit.pending_memory
 *    bytes.  When it is full it is written to a temporary file (a BufFile,
 *    deleted at transaction end whatever happens) and emptied.  At link time
 *    the file is read back from the start, then the buffer: the entries in
 *    the order they were queued.  A row key equal to the previous entry's
 *    (a row's entries, one per tagged column) is stored once.
 *  No allocation grows with the number of entries, and none is proportional
 *  to it: a transaction may queue any number of entries, limited by disk
 *  (and temp_file_limit, which fails the transaction, never an entry).
 *
 * Subtransactions: when one aborts, everything it (and its children) queued
 * must be forgotten.  Entries are appended in time order and a subtransaction
 * only appends while it is the innermost one, so whatever was appended after
 * a subtransaction began belongs to it or its descendants; on abort we cut
 * the queue back to its length at that moment: the buffer, and the file's
 * logical end (the next spill overwrites what was cut; a cut to nothing
 * closes and deletes the file).  Contexts interned after that moment are
 * forgotten too, so no log_contexts row is stored for them.
 *
 * PREPARE TRANSACTION links the entries at PRE_PREPARE like a commit, so a
 * temporary file never has to outlive the backend.
 */
#include "sensitive_audit.hpp"

extern "C" {
#include "commands/tablespace.h"
#include "storage/buffile.h"
#include "storage/fd.h"
#include "utils/resowner.h"
}

int			sa_pending_memory = 32 * 1024;	/* kB */

namespace {

/*
 * One serialized entry: this header, then the row key's bytes (unless NULL
 * or repeated), the old value's and the new value's.  Lengths are -1 for
 * NULL; the key's is KEY_REPEATED when it equals the previous entry's.
 */
struct RecordHeader
{
	int64		event_time;
	uint32		context;
	int32		backend_pid;
	int32		key_len;
	int32		old_len;
	int32		new_len;
	int32		format;			/* the entry's format version (0: format 1) */
};

/* A text field stored in log_entries would need its own length here. */
static_assert(SA_ENTRY_TEXT_NFIELDS == 3, "RecordHeader carries row_key, old_value and new_value");

#define LEN_NULL (-1)
#define KEY_REPEATED (-2)

struct SubxactMark
{
	SubTransactionId subid;
	uint64		bytes;			/* queue length (bytes) when it began */
	uint64		count;			/* and entries */
	int			ncontexts;		/* and contexts */
};

/* A pending context: the fields of one log_contexts row, interned. */
struct PendingContext
{
	PendingStr	f[SA_CONTEXT_NFIELDS];	/* in sa_context_fields order */
	uint64		hash;
	int			next;			/* another context with the same hash, or -1 */
};

struct ContextSlot
{
	uint64		hash;			/* hash key; must be first */
	int			first;
};

struct PendingQueue
{
	MemoryContext cxt;

	/* the entries: bytes [0, file_bytes) in the file, the rest in buf */
	char	   *buf;
	Size		buf_len;
	Size		buf_cap;
	BufFile    *file;
	uint64		file_bytes;
	uint64		count;
	StringInfoData last_key;	/* the last entry's row key; len -1 when unknown or NULL */

	/* interned contexts */
	PendingContext *contexts;
	int			ncontexts;
	int			maxcontexts;
	HTAB	   *context_slots;
	int			last_context;	/* the last entry's, or -1 */
	StringInfoData enc;

	SubxactMark *marks;
	int			nmarks;
	int			maxmarks;

	/* an entry made by sa_pending_new(), queued when the next one starts */
	PendingEntry staged;
	bool		staged_valid;
	MemoryContext staged_cxt;	/* copies of its texts */

	/* per-transaction cache of who is writing */
	Oid			session_user_id;
	Oid			current_user_id;
	const char *session_user_name;
	const char *current_user_name;
	const char *app_name;
	const char *client_addr;
	bool		who_valid;
};

PendingQueue *queue = nullptr;

/*
 * Set once this transaction's entries are linked: an entry queued after
 * that (by another module's pre-commit work, say) could never enter a
 * chain, so it is an error rather than silently dropped.
 */
bool		linked = false;

/* client address of this backend, computed once (it cannot change) */
bool		client_addr_done = false;
char	   *client_addr_text = nullptr;

PendingQueue *
get_queue(void)
{
	if (queue == nullptr)
	{
		MemoryContext cxt = AllocSetContextCreate(TopTransactionContext,
												  "sensitive_audit pending entries",
												  ALLOCSET_DEFAULT_SIZES);
		PendingQueue *q = (PendingQueue *) MemoryContextAllocZero(cxt, sizeof(PendingQueue));
		MemoryContext old = MemoryContextSwitchTo(cxt);
		HASHCTL		ctl;

		q->cxt = cxt;
		initStringInfo(&q->last_key);
		q->last_key.len = -1;
		initStringInfo(&q->enc);
		q->last_context = -1;
		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(uint64);
		ctl.entrysize = sizeof(ContextSlot);
		ctl.hcxt = cxt;
		q->context_slots = hash_create("sensitive_audit pending contexts", 16, &ctl,
									   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		MemoryContextSwitchTo(old);
		queue = q;
	}
	return queue;
}

/*
 * The client's address as the inet type prints it, or NULL for a Unix
 * socket.  Round-tripping through inet_in/inet_out makes the stored text and
 * the hashed text identical.
 */
const char *
client_addr(void)
{
	if (!client_addr_done)
	{
		/*
		 * inet_client_addr() knows the connection; it returns NULL for a
		 * Unix socket, so call it through a full fcinfo.
		 */
		LOCAL_FCINFO(fcinfo, 0);
		Datum		addr;

		InitFunctionCallInfoData(*fcinfo, nullptr, 0, InvalidOid, nullptr, nullptr);
		addr = inet_client_addr(fcinfo);
		if (!fcinfo->isnull)
		{
			MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

			client_addr_text = DatumGetCString(DirectFunctionCall1(inet_out, addr));
			MemoryContextSwitchTo(old);
		}
		client_addr_done = true;
	}
	return client_addr_text;
}

bool
same_str(const PendingStr &a, const PendingStr &b)
{
	if (a.str == nullptr || b.str == nullptr)
		return a.str == b.str;
	return a.len == b.len && (a.str == b.str || memcmp(a.str, b.str, a.len) == 0);
}

bool
context_matches(const PendingContext *c, const PendingEntry *e)
{
	for (int i = 0; i < SA_CONTEXT_NFIELDS; i++)
		if (!same_str(c->f[i], e->f[sa_context_fields[i]]))
			return false;
	return true;
}

/* The number of e's context, interned if new. */
int
intern_context(PendingQueue *q, const PendingEntry *e)
{
	/* a statement's entries mostly share every text: try the last one first */
	if (q->last_context >= 0 && context_matches(&q->contexts[q->last_context], e))
		return q->last_context;

	resetStringInfo(&q->enc);
	for (int i = 0; i < SA_CONTEXT_NFIELDS; i++)
	{
		const PendingStr *f = &e->f[sa_context_fields[i]];
		int32		l = f->str ? f->len : -1;

		appendBinaryStringInfo(&q->enc, (const char *) &l, sizeof(l));
		if (f->str)
			appendBinaryStringInfo(&q->enc, f->str, f->len);
	}

	uint64		hash = hash_bytes_extended((const unsigned char *) q->enc.data, q->enc.len, 0);
	bool		found;
	ContextSlot *slot = (ContextSlot *) hash_search(q->context_slots, &hash, HASH_ENTER, &found);

	if (!found)
		slot->first = -1;
	for (int c = slot->first; c >= 0; c = q->contexts[c].next)
		if (context_matches(&q->contexts[c], e))
			return q->last_context = c;

	if (q->ncontexts == q->maxcontexts)
	{
		q->maxcontexts = Max(16, 2 * q->maxcontexts);
		q->contexts = (PendingContext *) (q->contexts
										  ? repalloc(q->contexts, sizeof(PendingContext) * q->maxcontexts)
										  : MemoryContextAlloc(q->cxt, sizeof(PendingContext) * q->maxcontexts));
	}

	int			n = q->ncontexts;
	PendingContext *c = &q->contexts[n];

	for (int i = 0; i < SA_CONTEXT_NFIELDS; i++)
	{
		const PendingStr *f = &e->f[sa_context_fields[i]];

		if (f->str == nullptr)
		{
			c->f[i].str = nullptr;
			c->f[i].len = 0;
			continue;
		}

		char	   *copy = (char *) MemoryContextAlloc(q->cxt, (Size) f->len + 1);

		memcpy(copy, f->str, f->len);
		copy[f->len] = '\0';
		c->f[i].str = copy;
		c->f[i].len = f->len;
	}
	c->hash = hash;
	c->next = slot->first;
	slot->first = n;
	q->ncontexts++;
	return q->last_context = n;
}

/* Forget the contexts numbered n and up (interned by an aborted subtransaction). */
void
forget_contexts(PendingQueue *q, int n)
{
	for (int c = q->ncontexts - 1; c >= n; c--)
	{
		uint64		hash = q->contexts[c].hash;
		ContextSlot *slot = (ContextSlot *) hash_search(q->context_slots, &hash, HASH_FIND, nullptr);

		/* contexts are pushed on their slot's list in order: c is its head */
		Assert(slot != nullptr && slot->first == c);
		if (slot == nullptr)
			continue;
		slot->first = q->contexts[c].next;
		if (slot->first < 0)
			hash_search(q->context_slots, &hash, HASH_REMOVE, nullptr);
	}
	if (q->ncontexts > n)
		q->ncontexts = n;
	q->last_context = -1;
}

/*
 * The temporary file belongs to the top transaction: a subtransaction's
 * resource owner would close it when the subtransaction ends.
 */
void
open_file(PendingQueue *q)
{
	ResourceOwner save_owner = CurrentResourceOwner;
	MemoryContext old = MemoryContextSwitchTo(q->cxt);

	PrepareTempTablespaces();
	CurrentResourceOwner = TopTransactionResourceOwner;
	PG_TRY();
	{
		q->file = BufFileCreateTemp(false);
	}
	PG_FINALLY();
	{
		CurrentResourceOwner = save_owner;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);
}

void
close_file(PendingQueue *q)
{
	if (q->file != nullptr)
	{
		ResourceOwner save_owner = CurrentResourceOwner;

		CurrentResourceOwner = TopTransactionResourceOwner;
		BufFileClose(q->file);
		CurrentResourceOwner = save_owner;
		q->file = nullptr;
	}
	q->file_bytes = 0;
}

/* Position a BufFile at a logical offset (it is split into 1 GB segments). */
void
seek_file(BufFile *file, uint64 offset)
{
	const uint64 seg = 1024 * 1024 * 1024;

	if (BufFileSeek(file, (int) (offset / seg), (off_t) (offset % seg), SEEK_SET) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not seek in the temporary file of pending audit entries")));
}

/* Write bytes at the file's logical end. */
void
spill(PendingQueue *q, const char *data, Size len)
{
	if (len == 0)
		return;
	if (q->file == nullptr)
		open_file(q);
	seek_file(q->file, q->file_bytes);
	BufFileWrite(q->file, (void *) data, len);
	q->file_bytes += len;
}

Size
budget_bytes(void)
{
	return (Size) sa_pending_memory * 1024;
}

/* Cut the queue back to its first `bytes` bytes (a subtransaction aborted). */
void
cut_to(PendingQueue *q, uint64 bytes)
{
	if (bytes >= q->file_bytes)
		q->buf_len = (Size) (bytes - q->file_bytes);
	else
	{
		q->buf_len = 0;
		if (bytes == 0)
			close_file(q);		/* the space goes back at once */
		else
			q->file_bytes = bytes;	/* reused by the next spill */
	}
	/* an empty buffer gives its memory back */
	if (q->buf_len == 0 && q->buf != nullptr)
	{
		pfree(q->buf);
		q->buf = nullptr;
		q->buf_cap = 0;
	}
	q->last_key.len = -1;		/* the next entry stores its key in full */
}

}							/* namespace */

/* An entry to fill in, stamped with when its change happened (see capture.cpp). */
void
sa_pending_init(PendingEntry *e, TimestampTz event_time)
{
	memset(e, 0, sizeof(PendingEntry));
	e->event_time = event_time;
	e->backend_pid = MyProcPid;
}

/*
 * Set field f to a copy of s (NULL for SQL NULL): in the entry's own memory
 * for one made by sa_pending_new(), else in the current memory context.
 */
void
sa_pending_set(PendingEntry *e, PendingField f, const char *s)
{
	if (s == nullptr)
	{
		e->f[f].str = nullptr;
		e->f[f].len = 0;
		return;
	}

	MemoryContext cxt = (queue != nullptr && e == &queue->staged) ? queue->staged_cxt
		: CurrentMemoryContext;
	int			len = (int) strlen(s);
	char	   *copy = (char *) MemoryContextAlloc(cxt, (Size) len + 1);

	memcpy(copy, s, (Size) len + 1);
	e->f[f].str = copy;
	e->f[f].len = len;
}

/* Point field f at s, len bytes; it must stay valid until the entry is queued. */
void
sa_pending_set_shared(PendingEntry *e, PendingField f, const char *s, int len)
{
	e->f[f].str = s;
	e->f[f].len = s ? len : 0;
}

namespace {

void
refuse_if_linked(void)
{
	if (linked)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot record a change after the transaction's audit entries were linked"),
				 errdetail("A change to a tagged column was made while the transaction was committing.")));
}

/* Serialize one entry: its shared fields interned, the rest copied. */
void
add_entry(PendingQueue *q, const PendingEntry *e)
{
	RecordHeader h;
	const PendingStr *key = &e->f[PF_ROW_KEY];
	const PendingStr *oldv = &e->f[PF_OLD_VALUE];
	const PendingStr *newv = &e->f[PF_NEW_VALUE];

	memset(&h, 0, sizeof(h));
	h.event_time = e->event_time;
	h.context = (uint32) intern_context(q, e);
	h.backend_pid = e->backend_pid;
	h.format = e->format;
	h.old_len = oldv->str ? oldv->len : LEN_NULL;
	h.new_len = newv->str ? newv->len : LEN_NULL;
	if (key->str == nullptr)
	{
		h.key_len = LEN_NULL;
		q->last_key.len = -1;
	}
	else if (q->last_key.len == key->len && memcmp(q->last_key.data, key->str, key->len) == 0)
		h.key_len = KEY_REPEATED;
	else
	{
		h.key_len = key->len;
		resetStringInfo(&q->last_key);
		appendBinaryStringInfo(&q->last_key, key->str, key->len);
	}

	Size		len = sizeof(h) + (h.key_len > 0 ? h.key_len : 0)
		+ (h.old_len > 0 ? h.old_len : 0) + (h.new_len > 0 ? h.new_len : 0);
	Size		budget = budget_bytes();

	if (q->buf_len + len > budget)
	{
		/* the buffer is full: to the file, in order */
		spill(q, q->buf, q->buf_len);
		q->buf_len = 0;
	}
	if (len > budget)
	{
		/* larger than the whole budget: straight to the file */
		spill(q, (const char *) &h, sizeof(h));
		if (h.key_len > 0)
			spill(q, key->str, h.key_len);
		if (h.old_len > 0)
			spill(q, oldv->str, h.old_len);
		if (h.new_len > 0)
			spill(q, newv->str, h.new_len);
	}
	else
	{
		if (q->buf_len + len > q->buf_cap)
		{
			/* grow by doubling, never beyond the budget */
			Size		cap = Max(q->buf_cap, (Size) 8192);

			while (cap < q->buf_len + len)
				cap *= 2;
			cap = Min(cap, budget);
			q->buf = (char *) (q->buf
							   ? repalloc_huge(q->buf, cap)
							   : MemoryContextAllocHuge(q->cxt, cap));
			q->buf_cap = cap;
		}

		char	   *p = q->buf + q->buf_len;

		memcpy(p, &h, sizeof(h));
		p += sizeof(h);
		if (h.key_len > 0)
		{
			memcpy(p, key->str, h.key_len);
			p += h.key_len;
		}
		if (h.old_len > 0)
		{
			memcpy(p, oldv->str, h.old_len);
			p += h.old_len;
		}
		if (h.new_len > 0)
			memcpy(p, newv->str, h.new_len);
		q->buf_len += len;
	}
	q->count++;
}

/* Queue the entry sa_pending_new() made, if any. */
void
flush_staged(PendingQueue *q)
{
	if (q == nullptr || !q->staged_valid)
		return;
	q->staged_valid = false;
	add_entry(q, &q->staged);
	MemoryContextReset(q->staged_cxt);
}

}							/* namespace */

/*
 * Queue the entry: its shared fields are interned, the rest copied.  The
 * caller's strings may go away afterwards.
 */
void
sa_pending_add(const PendingEntry *e)
{
	refuse_if_linked();

	PendingQueue *q = get_queue();

	flush_staged(q);			/* queued first, so the order is kept */
	add_entry(q, e);
}

/*
 * A new entry to fill in with sa_pending_set() (which copies) and
 * sa_pending_fill_who(), stamped with when its change happened.  It is
 * queued when the next entry is made, or when the queue is read, whichever
 * comes first; a subtransaction that begins queues it first (it belongs to
 * the parent), and one that aborts forgets it.
 */
PendingEntry *
sa_pending_new(TimestampTz event_time)
{
	refuse_if_linked();

	PendingQueue *q = get_queue();

	flush_staged(q);
	if (q->staged_cxt == nullptr)
		q->staged_cxt = AllocSetContextCreate(q->cxt, "sensitive_audit staged entry",
											  ALLOCSET_SMALL_SIZES);
	sa_pending_init(&q->staged, event_time);
	q->staged_valid = true;
	return &q->staged;
}

/*
 * Who is writing: session and effective role, application, client address.
 * Role names are looked up once per transaction and role pair; the entry
 * records the names in force when the change was made.
 */
void
sa_pending_fill_who(PendingEntry *e)
{
	PendingQueue *q = get_queue();
	Oid			suser = GetSessionUserId();
	Oid			cuser = GetUserId();

	if (!q->who_valid || q->session_user_id != suser || q->current_user_id != cuser
		|| q->app_name == nullptr || strcmp(q->app_name, application_name ? application_name : "") != 0)
	{
		MemoryContext old = MemoryContextSwitchTo(q->cxt);

		q->session_user_id = suser;
		q->current_user_id = cuser;
		q->session_user_name = GetUserNameFromId(suser, false);
		q->current_user_name = (cuser == suser) ? q->session_user_name : GetUserNameFromId(cuser, false);
		q->app_name = pstrdup(application_name ? application_name : "");
		q->client_addr = client_addr();
		q->who_valid = true;
		MemoryContextSwitchTo(old);
	}
	sa_pending_set_shared(e, PF_SESSION_ROLE, q->session_user_name, (int) strlen(q->session_user_name));
	sa_pending_set_shared(e, PF_EFFECTIVE_ROLE, q->current_user_name, (int) strlen(q->current_user_name));
	sa_pending_set_shared(e, PF_APPLICATION_NAME, q->app_name, (int) strlen(q->app_name));
	sa_pending_set_shared(e, PF_CLIENT_ADDR, q->client_addr, q->client_addr ? (int) strlen(q->client_addr) : 0);
}

bool
sa_pending_any(void)
{
	flush_staged(queue);
	return queue != nullptr && queue->count > 0;
}

uint64
sa_pending_count(void)
{
	flush_staged(queue);
	return queue == nullptr ? 0 : queue->count;
}

int
sa_pending_ncontexts(void)
{
	flush_staged(queue);
	return queue == nullptr ? 0 : queue->ncontexts;
}

/*
 * Context i as an entry whose shared fields only are set (for
 * contexts.cpp, which stores it); valid until the transaction ends.
 */
void
sa_pending_context(int i, PendingEntry *e)
{
	Assert(queue != nullptr && i >= 0 && i < queue->ncontexts);
	memset(e, 0, sizeof(PendingEntry));
	for (int f = 0; f < SA_CONTEXT_NFIELDS; f++)
		e->f[sa_context_fields[f]] = queue->contexts[i].f[f];
}

namespace {

/* Reads the queue back in order: the file, then the buffer. */
struct Reader
{
	PendingQueue *q;
	uint64		file_left;
	Size		buf_pos;
	char	   *payload;		/* an entry read from the file */
	Size		payload_cap;
	StringInfoData key;			/* the last row key, for repeats */
	bool		key_null;
};

void
read_file_bytes(Reader *r, void *dst, Size len)
{
	if (len > r->file_left || BufFileRead(r->q->file, dst, len) != len)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read the temporary file of pending audit entries")));
	r->file_left -= len;
}

}							/* namespace */

/*
 * Call fn for every pending entry, in the order they were queued, with the
 * number of its context (sa_pending_context) and whether its row key is the
 * previous entry's.  The entry's strings are valid during the call only.
 */
void
sa_pending_foreach(sa_pending_visitor fn, void *arg)
{
	PendingQueue *q = queue;
	Reader		r;
	PendingEntry e;

	if (q == nullptr)
		return;
	flush_staged(q);
	memset(&r, 0, sizeof(r));
	r.q = q;
	r.file_left = q->file_bytes;
	initStringInfo(&r.key);
	r.key_null = true;
	if (q->file != nullptr && q->file_bytes > 0)
		seek_file(q->file, 0);

	for (;;)
	{
		RecordHeader h;
		const char *p;

		if (r.file_left > 0)
		{
			read_file_bytes(&r, &h, sizeof(h));

			Size		plen = (h.key_len > 0 ? h.key_len : 0) + (h.old_len > 0 ? h.old_len : 0)
				+ (h.new_len > 0 ? h.new_len : 0);

			if (plen > r.payload_cap)
			{
				/* old and new value together may exceed 1GB: a huge allocation */
				if (r.payload != nullptr)
					pfree(r.payload);
				r.payload_cap = Max(plen, (Size) 8192);
				r.payload = (char *) MemoryContextAllocHuge(CurrentMemoryContext, r.payload_cap);
			}
			read_file_bytes(&r, r.payload, plen);
			p = r.payload;
		}
		else if (r.buf_pos < q->buf_len)
		{
			memcpy(&h, q->buf + r.buf_pos, sizeof(h));
			p = q->buf + r.buf_pos + sizeof(h);
			r.buf_pos += sizeof(h) + (h.key_len > 0 ? h.key_len : 0)
				+ (h.old_len > 0 ? h.old_len : 0) + (h.new_len > 0 ? h.new_len : 0);
		}
		else
			break;

		if ((int) h.context >= q->ncontexts)
			elog(ERROR, "pending audit entry refers to unknown context %u", h.context);
		memset(&e, 0, sizeof(e));
		e.event_time = h.event_time;
		e.backend_pid = h.backend_pid;
		e.format = (uint16) h.format;

		bool		repeated = h.key_len == KEY_REPEATED;

		if (h.key_len == LEN_NULL)
			r.key_null = true;
		else if (!repeated)
		{
			resetStringInfo(&r.key);
			appendBinaryStringInfo(&r.key, p, h.key_len);
			r.key_null = false;
			p += h.key_len;
		}
		if (!r.key_null)
			sa_pending_set_shared(&e, PF_ROW_KEY, r.key.data, r.key.len);
		if (h.old_len >= 0)
		{
			sa_pending_set_shared(&e, PF_OLD_VALUE, p, h.old_len);
			p += h.old_len;
		}
		if (h.new_len >= 0)
			sa_pending_set_shared(&e, PF_NEW_VALUE, p, h.new_len);

		PendingEntry ctx;

		sa_pending_context((int) h.context, &ctx);
		for (int f = 0; f < SA_CONTEXT_NFIELDS; f++)
			e.f[sa_context_fields[f]] = ctx.f[sa_context_fields[f]];
		fn(&e, (int) h.context, repeated && !r.key_null, arg);
	}
	if (r.payload != nullptr)
		pfree(r.payload);
	pfree(r.key.data);
}

/*
 * The queue was linked: nothing more may be queued in this transaction.
 * Its file is closed now (a commit must not leave a temporary file to the
 * resource owner, which would warn of a leak); its memory belongs to the top
 * transaction and goes away with it.
 */
void
sa_pending_linked(void)
{
	if (queue != nullptr)
		close_file(queue);
	queue = nullptr;
	linked = true;
}

/*
 * The transaction ended (committed, prepared or aborted).  On abort the
 * resource owner has closed and deleted the file, or is about to.
 */
void
sa_pending_xact_end(void)
{
	queue = nullptr;
	linked = false;
}

void
sa_pending_subxact(SubXactEvent event, SubTransactionId mySubid)
{
	PendingQueue *q = queue;

	switch (event)
	{
		case SUBXACT_EVENT_START_SUB:
			if (q == nullptr)
				return;			/* nothing to protect yet: an abort cuts to 0 */
			flush_staged(q);	/* made before it began: the parent's */
			if (q->nmarks == q->maxmarks)
			{
				q->maxmarks = q->maxmarks ? q->maxmarks * 2 : 8;
				q->marks = (SubxactMark *) (q->marks
											? repalloc(q->marks, q->maxmarks * sizeof(SubxactMark))
											: MemoryContextAlloc(q->cxt, q->maxmarks * sizeof(SubxactMark)));
			}
			q->marks[q->nmarks].subid = mySubid;
			q->marks[q->nmarks].bytes = q->file_bytes + q->buf_len;
			q->marks[q->nmarks].count = q->count;
			q->marks[q->nmarks].ncontexts = q->ncontexts;
			q->nmarks++;
			break;

		case SUBXACT_EVENT_COMMIT_SUB:
		case SUBXACT_EVENT_ABORT_SUB:
			{
				/* queue created inside this subxact: cut to nothing */
				SubxactMark cut = {mySubid, 0, 0, 0};

				if (q == nullptr)
					return;
				/* pop this subtransaction's mark (and any left by children) */
				while (q->nmarks > 0 && q->marks[q->nmarks - 1].subid >= mySubid)
				{
					if (q->marks[q->nmarks - 1].subid == mySubid)
						cut = q->marks[q->nmarks - 1];
					q->nmarks--;
				}
				if (event == SUBXACT_EVENT_ABORT_SUB)
				{
					q->staged_valid = false;	/* made inside it */
					cut_to(q, cut.bytes);
					q->count = cut.count;
					forget_contexts(q, cut.ncontexts);
				}
				break;
			}

		case SUBXACT_EVENT_PRE_COMMIT_SUB:
			break;
	}
}

/* The client's address as inet prints it, or nullptr for a Unix socket. */
const char *
sa_client_addr(void)
{
	return client_addr();
}
