/*
 * sensitive_audit.cpp — module entry point: settings and transaction hooks.
 *
 * The library works without shared_preload_libraries: all shared state is in
 * the log itself (see chain.cpp).  Loaded at start-up, it also keeps each
 * chain's head in shared memory, which saves reading it from the log at
 * every commit (heads.cpp), and its security-label provider is available
 * before the first audited change, background workers write the events no
 * transaction can (events.cpp), and authorization changes are recorded by a
 * utility hook (authz.cpp).
 */
#include "sensitive_audit.hpp"

extern "C" {
PG_MODULE_MAGIC;
void		_PG_init(void);
}

int			sa_chains = 32;
bool		sa_restoring = false;
bool		sa_allow_drop = false;
int			sa_link_delay = 0;
int			sa_prepared_wait_warning = 1000;

void
sa_called_wrongly(const char *function, const char *how)
{
	ereport(ERROR,
			(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
			 errmsg("sensitive_audit.%s() must be %s", function, how)));
}

/*
 * Entries are linked when the transaction commits or prepares; whatever is
 * pending when it ends any other way is dropped with its memory.
 */
static void
sa_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			sa_link_pending(event == XACT_EVENT_PRE_PREPARE);
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
			sa_pending_xact_end();
			sa_contexts_xact_end(event == XACT_EVENT_COMMIT);
			sa_heads_xact_end(event == XACT_EVENT_COMMIT);
			sa_in_setup = false;
			break;
		default:
			break;
	}
}

static void
sa_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					SubTransactionId parentSubid, void *arg)
{
	sa_pending_subxact(event, mySubid);
}

void
_PG_init(void)
{
	DefineCustomIntVariable("sensitive_audit.chains",
							"Sets the number of hash chains committing transactions spread over.",
							"Each committing transaction appends its entries to one chain, holding "
							"that chain's lock until its commit is durable; more chains let more "
							"transactions commit at once.  Changing it never breaks existing chains.",
							&sa_chains,
							32, 1, 1024,
							PGC_SIGHUP,
							0,
							nullptr, nullptr, nullptr);

	DefineCustomBoolVariable("sensitive_audit.restoring",
							 "Allows INSERT into the audit log, to restore a dump of it.",
							 "Only pg_restore or psql loading a dump should run with this on. "
							 "Restored entries are verified like any others.",
							 &sa_restoring,
							 false,
							 PGC_SUSET,
							 0,
							 nullptr, nullptr, nullptr);

	DefineCustomBoolVariable("sensitive_audit.allow_drop",
							 "Allows dropping the extension while the audit log holds entries.",
							 "Dropping the extension deletes the whole audit history; export it first.",
							 &sa_allow_drop,
							 false,
							 PGC_SUSET,
							 0,
							 nullptr, nullptr, nullptr);

	DefineCustomIntVariable("sensitive_audit.pending_memory",
							"Sets the memory a transaction's audit entries may use before they spill to a temporary file.",
							"Entries wait until commit; beyond this much, they are written to a temporary "
							"file and read back when they are linked.  It trades memory for temporary-file "
							"I/O and never changes what is recorded.",
							&sa_pending_memory,
							32 * 1024, 64, MAX_KILOBYTES,
							PGC_USERSET,
							GUC_UNIT_KB,
							nullptr, nullptr, nullptr);

	DefineCustomIntVariable("sensitive_audit.prepared_wait_warning",
							"Warns when a commit waits this long for a chain while prepared transactions hold chains.",
							"A prepared transaction keeps its chain until COMMIT PREPARED or ROLLBACK PREPARED; "
							"a committer that finds every chain busy waits.  -1 turns the warning off.",
							&sa_prepared_wait_warning,
							1000, -1, INT_MAX,
							PGC_SUSET,
							GUC_UNIT_MS,
							nullptr, nullptr, nullptr);

	DefineCustomIntVariable("sensitive_audit.test_link_delay",
							"For tests only: sleeps this long before inserting each batch of linked entries.",
							"Lets a test cancel a commit while it links; never set it in production.",
							&sa_link_delay,
							0, 0, 60 * 1000,
							PGC_SUSET,
							GUC_UNIT_MS | GUC_NOT_IN_SAMPLE,
							nullptr, nullptr, nullptr);

	/* READ entries (reads.cpp): its setting too, before the prefix is reserved */
	sa_reads_init();

	/* chain heads and rows-per-hour counters in shared memory: only when preloaded (their settings too) */
	if (process_shared_preload_libraries_in_progress)
	{
		sa_heads_init();
		sa_policy_init();
	}

	/* the event queue's settings; queue, workers and login hook when preloaded */
	sa_events_init();

	MarkGUCPrefixReserved("sensitive_audit");

	sa_storage_watch();

	RegisterXactCallback(sa_xact_callback, nullptr);
	RegisterSubXactCallback(sa_subxact_callback, nullptr);
	sa_capture_init();
	sa_setup_init();
	sa_authz_init();
}
