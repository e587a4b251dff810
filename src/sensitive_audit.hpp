/*
 * sensitive_audit.hpp — declarations shared by the backend-side files.
 *
 * The flow of one audited change:
 *   capture.cpp   row and TRUNCATE triggers turn a change into pending
 *                 entries;
 *   pending.cpp   the pending queue, in bounded memory (spilling to a
 *                 temporary file), which forgets what an aborted
 *                 subtransaction queued;
 *   chain.cpp     at pre-commit (or PREPARE) the queue is linked into one
 *                 chain, hashed by the C++ core and written to the log;
 *   verify.cpp    verify() streams the log through the core's verifier;
 *   setup.cpp     what is tagged (sensitive_audit.tag_info), tag(), untag(),
 *                 the security-label provider, and the canonical capture
 *                 triggers derived from the catalog;
 *   enforce.cpp   the invariant, checked after every DDL command and every
 *                 drop, and the log's own guards;
 *   authz.cpp     authorization changes (GRANT, roles, labels), recorded by a
 *                 utility hook in the changing transaction;
 *   events.cpp    events no transaction can write (failed logins), queued in
 *                 shared memory and linked by background workers.
 */
#pragma once

#include "pg.hpp"

/* GUCs */
extern int	sa_chains;
extern bool sa_restoring;
extern bool sa_allow_drop;
extern int	sa_link_delay;
extern int	sa_prepared_wait_warning;

/* Names fixed by the install script. */
#define SA_SCHEMA "sensitive_audit"
#define SA_LOG "log"				/* the view users read */
#define SA_ENTRIES "log_entries"	/* its storage: one row per entry */
#define SA_ENTRIES_PKEY "log_entries_pkey"
#define SA_CONTEXTS "log_contexts"	/* and the fields entries share */
#define SA_CONTEXTS_PKEY "log_contexts_pkey"
#define SA_CAPTURE_TRIGGER "sensitive_audit_capture"
#define SA_UPDATE_TRIGGER "sensitive_audit_capture_update"
#define SA_TRUNCATE_TRIGGER "sensitive_audit_truncate"
#define SA_TAG_INFO "tag_info"
#define SA_TREE_NODES "tree_nodes"		/* stored complete subtrees (trees.cpp) */
#define SA_TREE_NODES_PKEY "tree_nodes_pkey"
#define SA_CHECKPOINTS "checkpoints"	/* signed checkpoints (trees.cpp) */
#define SA_LOG_INFO "log_info"			/* the log id */
#define SA_POLICY_INFO "policy_info"	/* guardrails (policy.cpp) */
#define SA_READ_AUDIT_INFO "read_audit_info"	/* tables whose reads are recorded (reads.cpp) */
#define SA_PROTECT_INFO "protect_info"		/* protection of tagged columns (protect.cpp) */
#define SA_FINGERPRINT_KEY "fingerprint_key"
#define SA_ENCRYPTION_KEYS "encryption_keys"
#define SA_ERASABLE_VALUES "erasable_values"
#define SA_ALERT_CHANNEL "sensitive_audit_alerts"
/* A guardrail's threshold refused a statement. */
#define ERRCODE_SA_GUARDRAIL MAKE_SQLSTATE('S', 'A', '0', '0', '1')

/*
 * The fields of a pending entry that the writer supplies: PF_<NAME> for each
 * text field of SA_ENTRY_FIELDS (core/entry_fields.h), in encoding order.
 */
#define SA_PF_ENUM_(name, NAME, sqltype) PF_##NAME,
enum PendingField
{
	SA_TEXT_FIELDS(SA_PF_ENUM_)
	PF_NFIELDS
};
#undef SA_PF_ENUM_

/*
 * Columns of sensitive_audit.log_entries, in table order (attnum - 1), as
 * the install script lays them out (fixed-width columns first).
 */
enum EntryAttr
{
	EA_CHAIN,
	EA_BACKEND_PID,
	EA_SEQ,
	EA_TXID,
	EA_EVENT_TIME,
	EA_CONTEXT,
	EA_FORMAT,
	EA_ROW_KEY,
	EA_OLD_VALUE,
	EA_NEW_VALUE,
	EA_PREV_HASH,
	EA_HASH,
	EA_NATTS
};

/*
 * The pending fields the columns of sensitive_audit.log_contexts after its
 * id hold (attnum - 2; SA_CTX_<NAME> indexes, core/entry_fields.h).
 */
#define SA_CONTEXT_PF_(name, NAME, sqltype) PF_##NAME,
inline constexpr PendingField sa_context_fields[SA_CONTEXT_NFIELDS] = {
	SA_CONTEXT_TEXT_FIELDS(SA_CONTEXT_PF_)
};
#undef SA_CONTEXT_PF_

/* A possibly-NULL string (str == NULL means SQL NULL). */
struct PendingStr
{
	const char *str;
	int			len;
};

struct PendingEntry
{
	PendingStr	f[PF_NFIELDS];
	TimestampTz event_time;
	int32		backend_pid;
	uint16		format;			/* 0 for format 1; SA_FORMAT_PROTECTED for protected values */
};

/* Refuse a call from the wrong context ("must be called as a trigger"). */
extern pg_attribute_noreturn() void sa_called_wrongly(const char *function, const char *how);

/* pending.cpp */
extern int	sa_pending_memory;
extern PendingEntry *sa_pending_new(TimestampTz event_time);
extern void sa_pending_init(PendingEntry *e, TimestampTz event_time);
extern void sa_pending_set(PendingEntry *e, PendingField f, const char *s);
extern void sa_pending_set_shared(PendingEntry *e, PendingField f, const char *s, int len);
extern void sa_pending_fill_who(PendingEntry *e);
extern void sa_pending_add(const PendingEntry *e);
extern bool sa_pending_any(void);
extern uint64 sa_pending_count(void);
extern int	sa_pending_ncontexts(void);
extern void sa_pending_context(int i, PendingEntry *e);
typedef void (*sa_pending_visitor) (const PendingEntry *e, int context, bool key_repeated,
									void *arg);
extern void sa_pending_foreach(sa_pending_visitor fn, void *arg);
extern void sa_pending_linked(void);
extern void sa_pending_xact_end(void);
extern void sa_pending_subxact(SubXactEvent event, SubTransactionId mySubid);

/* chain.cpp */
struct SaStorage
{
	Oid			entries;
	Oid			entries_pkey;
	Oid			contexts;
	Oid			contexts_pkey;
};
extern void sa_storage_relids(SaStorage *s);
extern void sa_storage_watch(void);
extern void sa_link_pending(bool preparing);

/* heads.cpp */
extern void sa_heads_init(void);
extern bool sa_heads_lookup(Oid relid, int chain, uint64 *seq, uint8_t hash[SA_DIGEST_LEN]);
extern void sa_heads_begin(Oid relid, int chain);
extern void sa_heads_linked(uint64 seq, const uint8_t hash[SA_DIGEST_LEN], bool preparing);
extern void sa_heads_xact_end(bool committed);
extern void sa_heads_restoring(void);
extern void sa_heads_invalidate(Oid relid);
extern void sa_heads_forget_table(Oid relid);

/* contexts.cpp */
extern void sa_contexts_resolve(const SaStorage *s, int64 *ids);
extern void sa_contexts_xact_end(bool committed);
extern bool sa_context_field(TupleTableSlot *slot, int i, const char **data, int *len);
extern void sa_contexts_invalidate(Oid relid);
extern void sa_contexts_forget(void);

/* capture.cpp */
extern void sa_capture_init(void);
extern bool sa_type_supported(Oid typid, Oid *bad_type);
extern char *sa_type_name(Oid typid, int32 typmod);
extern char *sa_canonical_from_text(Oid relid, const char *column, const char *text);

/* setup.cpp */
struct SaTagRow
{
	Oid			tbl;
	char	   *column;
};
extern bool sa_in_setup;
extern bool sa_in_own_setup(void);
extern Oid	sa_audit_relid(const char *name);
extern bool sa_has_rows(Relation rel);
extern void sa_setup_init(void);
extern List *sa_catalog_rows(Oid tbl);
extern List *sa_catalog_tables(void);
extern List *sa_catalog_columns(Oid tbl);
extern Oid	sa_tagged_root(Oid relid);
extern void sa_catalog_set(Oid tbl, const char *column, bool tagged);
extern void sa_catalog_rename(Oid tbl, const char *oldname, const char *newname);
extern void sa_catalog_forget(Oid tbl);
extern Bitmapset *sa_key_attnums(Relation rel, const char **source);
extern Bitmapset *sa_tagged_attnums(Relation rel, List *tagged_names);
extern Oid	sa_capture_fn(void);
extern Oid	sa_truncate_fn(void);
enum SaTriggerState
{
	SA_TRIGGER_NOT_OURS,
	SA_TRIGGER_CANONICAL,
	SA_TRIGGER_STALE_KEY,
	SA_TRIGGER_STALE_FORM,
	SA_TRIGGER_NOT_ALWAYS,
	SA_TRIGGER_WRONG
};
extern SaTriggerState sa_trigger_problem(const Trigger *t, Bitmapset *tagged, Bitmapset *key,
										 bool before_update, const char **why);
extern bool sa_has_before_update(Relation rel);
extern bool sa_is_release_1_0_trigger(const Trigger *t);
extern bool sa_extension_version_is(const char *version);
extern void sa_run_sql(const char *sql);
extern void sa_check_table_owner(Oid relid);
extern void sa_run_sql_as_owner(const char *sql, int nargs, Oid *argtypes, Datum *values);
extern void sa_run_column_sql_as_owner(const char *sql, Oid tbl, const char *col, Oid other);
extern void sa_run_sql_as_owner_nulls(const char *sql, int nargs, Oid *argtypes, Datum *values,
									  const char *nulls);
extern void sa_run_in_setup(void (*fn) (void *), void *arg);
extern void sa_sync_triggers(Oid relid, bool row_only);
extern void sa_sync_triggers_in_setup(Oid relid, bool row_only);
extern void sa_ensure_truncate_triggers(Oid relid);
extern void sa_record_setup(const char *operation, const char *schema,
							const char *table, const char *column,
							const char *value_type, const char *detail);
extern void sa_record_setup_values(const char *operation, const char *schema,
								   const char *table, const char *column,
								   const char *value_type,
								   const char *old_value, const char *new_value);
extern void sa_record_setup_row(const char *operation, const char *schema, const char *table,
								const char *column, const char *value_type, const char *row_key,
								const char *old_value, const char *new_value);
extern void sa_tag_columns(Oid relid, List *colnames, bool tag);

/* capture.cpp, used by enforce.cpp */
extern void sa_capture_rows(Relation rel, const char *operation, bool as_new);
extern bool sa_type_contains(Oid typid, Oid target);
extern int	sa_row_texts(Relation rel, HeapTuple tuple, char **key, const char ***columns, char ***values);

/* trees.cpp: what verify() holds the log to besides its own chains. */
struct SaExpectedRoot
{
	uint32		chain;
	uint64		size;
	uint8		root[SA_DIGEST_LEN];
	char	   *label;			/* "checkpoint <id>" */
};

struct SaExpectedNode
{
	uint32		chain;
	uint32		level;
	uint64		index;
	uint8		hash[SA_DIGEST_LEN];
};

struct SaBadCheckpoint
{
	int64		id;
	char	   *why;
};

struct SaExpectations
{
	SaExpectedRoot *roots;
	int			nroots;
	SaExpectedNode *nodes;
	int64		nnodes;
	SaBadCheckpoint *bad;
	int			nbad;
};

extern char *sa_log_id(void);
extern void sa_load_expectations(Snapshot snapshot, SaExpectations *x);

/* policy.cpp: guardrails on tagged columns. */
/* The key of a rows-per-hour counter in shared memory. */
struct SaRateKey
{
	Oid			db;
	Oid			tbl;
	Oid			role;
	NameData	column;
};

struct SaPolicy
{
	Oid			tbl;			/* the tagged table */
	char	   *column;
	bool		restrict_roles;	/* allowed_roles set */
	int			nroles;
	Oid		   *roles;
	int64		max_rows_per_statement; /* 0: none */
	int64		max_rows_per_hour;	/* 0: none */
	bool		block;			/* else alert */
	/* found on first use, then kept (policy.cpp): the row counts' lookups */
	void	   *statement_count;	/* this backend's count for the column */
	SaRateKey	rate_key;		/* the rows-per-hour counter's key, for the role in it */
	uint32		rate_hash;		/* and its hash */
};

/* The row a checked change is to. */
struct SaPolicyRow
{
	const char *schema;
	const char *table;
	const char *operation;
	const char *key;			/* row key JSON, keylen bytes; may be nullptr */
	int			keylen;
};

extern void sa_policy_init(void);
extern bool sa_policy_rates_available(void);
extern SaPolicy *sa_policy_load(Oid tbl, const char *column);
extern void sa_policy_check(SaPolicy *p, const SaPolicyRow *row);
extern void sa_policy_forget(Oid tbl, const char *col);
extern void sa_policy_copy(Oid from, Oid to);
extern void sa_check_tagged_column(Oid tbl, const char *col, const char *what, bool must_own);
extern void sa_invalidate_tree(Oid tbl);

/* protection.cpp */
struct SaProtect;
extern SaProtect *sa_protect_load(Oid tbl, const char *column);
extern char *sa_protect_value(const SaProtect *p, Oid relid, const char *schema, const char *table, const char *key,
							  const char *value, int len, int *outlen);
extern bool sa_protect_column_key(Oid tbl, const char *column, uint8_t key[SA_PROTECT_KEY_LEN]);
extern char *sa_protect_fingerprint(const uint8_t key[SA_PROTECT_KEY_LEN], const char *value, int len);
extern void sa_protect_forget(Oid tbl, const char *col);
extern void sa_protect_copy(Oid from, Oid to);
extern void sa_protect_check_member(Oid root, Relation member);
extern bool sa_protect_is_erasable(const SaProtect *p);
extern bool sa_protect_commitment_bytes(const char *data, size_t len, uint8_t out[SA_DIGEST_LEN]);
extern void sa_protect_rekey(Oid relid, const char *oldkey, const char *newkey);
extern void sa_protect_forget_relation(Oid relid);
/* A refused attempt, to be recorded outside the transaction that fails. */
extern void sa_policy_denied(const SaPolicyRow *row, const char *column, const char *json);

/* reads.cpp: READ entries. */
extern void sa_reads_init(void);

/* events.cpp: events written by the background workers (when preloaded). */
#define SA_EVENT_VALUE_LEN 1024

/* One queued event, as it sits in shared memory: fixed size, no pointers. */
struct SaEvent
{
	Oid			dboid;			/* InvalidOid: resolve dbname */
	char		dbname[NAMEDATALEN];
	TimestampTz event_time;
	int32		backend_pid;
	char		operation[32];
	char		session_role[NAMEDATALEN];	/* empty: the writing worker's own */
	char		effective_role[NAMEDATALEN];
	char		application_name[NAMEDATALEN];
	char		client_addr[64];
	char		table_schema[NAMEDATALEN];
	char		table_name[NAMEDATALEN];
	char		column_name[NAMEDATALEN];
	char		new_value[SA_EVENT_VALUE_LEN];
};

/* What an enqueuer supplies (NULL pointers for SQL NULL). */
struct SaEventFields
{
	Oid			dboid;
	const char *dbname;
	TimestampTz event_time;
	int32		backend_pid;
	const char *operation;
	const char *session_role;
	const char *effective_role;
	const char *application_name;
	const char *client_addr;
	const char *table_schema;
	const char *table_name;
	const char *column_name;
	const char *new_value;
	int			wait_ms;		/* how long to wait for room in a full queue */
};

/* How long a session's own events (READ, DENIED) wait for room in a full queue. */
#define SA_EVENT_WAIT_MS 1000

extern int	sa_event_queue_size;
extern char *sa_events_database;
extern void sa_events_init(void);
extern bool sa_events_available(void);
extern bool sa_event_enqueue(const SaEventFields *f);
extern bool sa_event_enqueue_session(const char *operation, const char *schema, const char *table,
									 const char *column, const char *new_value);
extern const char *sa_client_addr(void);

/* authz.cpp: authorization changes, recorded in the changing transaction. */
extern void sa_authz_init(void);
