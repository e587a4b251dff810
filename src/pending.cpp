/*
 * pending.cpp — entries captured in the current transaction, not yet linked.
 *
 * Capture runs inside the writer's transaction, but an entry may only enter a
 * chain when its transaction commits (DESIGN invariant 4: aborted work never
 * enters a chain, and chains follow commit order).  So triggers append here,
 * to memory owned by the top transaction, and chain.cpp links the whole
 * queue at pre-commit.  Nothing here takes a lock: writers never wait on
 * each other before commit.
 *
 * Subtransactions: when one aborts, everything it (and its children) queued
 * must be forgotten.  Entries are appended in time order and a subtransaction
 * only appends while it is the innermost one, so whatever was appended after
 * a subtransaction began belongs to it or its descendants; on abort we cut
 * the queue back to its length at that moment.
 */
#include "sensitive_audit.hpp"

namespace {

struct SubxactMark
{
	SubTransactionId subid;
	size_t		length;			/* queue length when it began */
};

struct PendingQueue
{
	MemoryContext cxt;
	PendingEntry *entries;
	size_t		length;
	size_t		capacity;
	SubxactMark *marks;
	int			nmarks;
	int			maxmarks;

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

		q->cxt = cxt;
		q->capacity = 64;
		q->entries = (PendingEntry *) MemoryContextAlloc(cxt, q->capacity * sizeof(PendingEntry));
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

}							/* namespace */

/*
 * A new entry, stamped with when its change happened: the caller passes the
 * wall clock read when it captured the row (see capture.cpp).
 */
PendingEntry *
sa_pending_new(TimestampTz event_time)
{
	if (linked)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot record a change after the transaction's audit entries were linked"),
				 errdetail("A change to a tagged column was made while the transaction was committing.")));

	PendingQueue *q = get_queue();
	PendingEntry *e;

	if (q->length == q->capacity)
	{
		q->capacity *= 2;
		q->entries = (PendingEntry *) repalloc_huge(q->entries, q->capacity * sizeof(PendingEntry));
	}
	e = &q->entries[q->length++];
	memset(e, 0, sizeof(PendingEntry));
	e->event_time = event_time;
	e->backend_pid = MyProcPid;
	return e;
}

const char *
sa_pending_strdup(const char *s, int len)
{
	PendingQueue *q = get_queue();
	char	   *copy = (char *) MemoryContextAllocHuge(q->cxt, (Size) len + 1);

	memcpy(copy, s, len);
	copy[len] = '\0';
	return copy;
}

/* Copy s (NULL for SQL NULL) into the queue's memory. */
void
sa_pending_set(PendingEntry *e, PendingField f, const char *s)
{
	if (s == nullptr)
	{
		e->f[f].str = nullptr;
		e->f[f].len = 0;
		return;
	}
	int			len = (int) strlen(s);

	e->f[f].str = sa_pending_strdup(s, len);
	e->f[f].len = len;
}

/* Point at a string already in the queue's memory (shared by entries). */
void
sa_pending_set_shared(PendingEntry *e, PendingField f, const char *s, int len)
{
	e->f[f].str = s;
	e->f[f].len = s ? len : 0;
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
	sa_pending_set_shared(e, PF_CLIENT_ADDR, q->client_addr,
						  q->client_addr ? (int) strlen(q->client_addr) : 0);
}

bool
sa_pending_any(void)
{
	return queue != nullptr && queue->length > 0;
}

int
sa_pending_count(void)
{
	return queue == nullptr ? 0 : (int) queue->length;
}

void
sa_pending_foreach(sa_pending_visitor fn, void *arg)
{
	if (queue == nullptr)
		return;
	for (size_t i = 0; i < queue->length; i++)
		fn(&queue->entries[i], arg);
}

/*
 * The queue was linked: nothing more may be queued in this transaction.
 * The queue's memory belongs to the top transaction and goes away with it;
 * only the pointer needs clearing.
 */
void
sa_pending_linked(void)
{
	queue = nullptr;
	linked = true;
}

/* The transaction ended (committed, prepared or aborted). */
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
			if (q->nmarks == q->maxmarks)
			{
				q->maxmarks = q->maxmarks ? q->maxmarks * 2 : 8;
				q->marks = (SubxactMark *) (q->marks
											? repalloc(q->marks, q->maxmarks * sizeof(SubxactMark))
											: MemoryContextAlloc(q->cxt, q->maxmarks * sizeof(SubxactMark)));
			}
			q->marks[q->nmarks].subid = mySubid;
			q->marks[q->nmarks].length = q->length;
			q->nmarks++;
			break;

		case SUBXACT_EVENT_COMMIT_SUB:
		case SUBXACT_EVENT_ABORT_SUB:
			{
				size_t		cut = 0;	/* queue created inside this subxact */
				bool		found = false;

				if (q == nullptr)
					return;
				/* pop this subtransaction's mark (and any left by children) */
				while (q->nmarks > 0 && q->marks[q->nmarks - 1].subid >= mySubid)
				{
					if (q->marks[q->nmarks - 1].subid == mySubid)
					{
						cut = q->marks[q->nmarks - 1].length;
						found = true;
					}
					q->nmarks--;
				}
				if (event == SUBXACT_EVENT_ABORT_SUB)
				{
					(void) found;
					q->length = cut;
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
