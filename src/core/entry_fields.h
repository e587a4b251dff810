/*
 * entry_fields.h — the one description of a log entry's fields.
 *
 * SA_ENTRY_FIELDS lists every hashed field of an entry, in encoding order
 * (docs/FORMAT.md sections 1 and 2; formats 1 and 2 are laid out alike),
 * with its kind and where it is stored.  Generated from it: the sa_entry
 * struct and the encoder (src/core); the pending field ids PF_*, the
 * context field table and the copying of text fields between pending
 * entries, log rows and sa_entry in capture, pending storage, linking and
 * verify() (src/); the context and text column lists of the command-line
 * program's COPY, its bundle and proof JSON keys and its row -> sa_entry
 * mapping (cli/).  Reordering, adding or changing a line here changes the
 * encoding, so it is a new format version (FORMAT.md), never an edit.
 *
 * Still written out by hand, on purpose: the SQL schema (the install and
 * upgrade scripts in sql/: log_entries, log_contexts and the log view;
 * EntryAttr in src/sensitive_audit.hpp mirrors log_entries' column order);
 * the fixed fields' conversions to and from their SQL types (xid8,
 * timestamptz, bytea: each its own); the few fields a queued event carries
 * in shared memory (src/events.cpp); and test/pyverify, the independent
 * checker, which must not share this code.
 *
 * Plain C preprocessor, no postgres.h: the backend and pure C++ both
 * include it.  The caller passes one macro per kind of field, and a kind it
 * does not want as SA_FIELD_NONE:
 *
 *   FIXED(name, ctype, dims)      a fixed-width field: an integer, or (dims
 *                                 [SA_DIGEST_LEN]) prev_hash's raw bytes;
 *                                 its member in sa_entry is `ctype name dims`
 *   ENTRY_TEXT(name, NAME, sqltype)    a nullable text field stored in each
 *                                 log_entries row
 *   CONTEXT_TEXT(name, NAME, sqltype)  a nullable text field stored once in
 *                                 log_contexts, shared by the entries that
 *                                 refer to that context (FORMAT.md §6)
 *
 * name is the field's name everywhere: the log column, the sa_entry member,
 * the key in bundle and proof JSON (FORMAT.md §10).  NAME is the same in
 * capitals, for generated identifiers: the pending field PF_<NAME>
 * (src/sensitive_audit.hpp) and, for a context field, its index
 * SA_CTX_<NAME> among the log_contexts columns after id (below).  sqltype
 * is the column's SQL type, which says how it reads back as the hashed
 * text: text as is, jsonb through its output function, inet through its.
 * Fixed fields are stored in log_entries.
 */
#ifndef SA_ENTRY_FIELDS_H
#define SA_ENTRY_FIELDS_H

#define SA_ENTRY_FIELDS(FIXED, ENTRY_TEXT, CONTEXT_TEXT) \
	FIXED(format, uint16_t, ) \
	FIXED(chain, uint32_t, ) \
	FIXED(seq, uint64_t, ) \
	FIXED(txid, uint64_t, ) \
	FIXED(event_time, int64_t, ) \
	CONTEXT_TEXT(operation, OPERATION, text) \
	CONTEXT_TEXT(table_schema, TABLE_SCHEMA, text) \
	CONTEXT_TEXT(table_name, TABLE_NAME, text) \
	CONTEXT_TEXT(column_name, COLUMN_NAME, text) \
	ENTRY_TEXT(row_key, ROW_KEY, jsonb) \
	CONTEXT_TEXT(row_key_source, ROW_KEY_SOURCE, text) \
	ENTRY_TEXT(old_value, OLD_VALUE, text) \
	ENTRY_TEXT(new_value, NEW_VALUE, text) \
	CONTEXT_TEXT(value_type, VALUE_TYPE, text) \
	CONTEXT_TEXT(session_role, SESSION_ROLE, text) \
	CONTEXT_TEXT(effective_role, EFFECTIVE_ROLE, text) \
	CONTEXT_TEXT(application_name, APPLICATION_NAME, text) \
	CONTEXT_TEXT(client_addr, CLIENT_ADDR, inet) \
	FIXED(backend_pid, int32_t, ) \
	FIXED(prev_hash, uint8_t, [SA_DIGEST_LEN])

/* For a kind of field the caller skips. */
#define SA_FIELD_NONE(...)

/* Every text field (encoding order), and the ones of each storage. */
#define SA_TEXT_FIELDS(X) SA_ENTRY_FIELDS(SA_FIELD_NONE, X, X)
#define SA_ENTRY_TEXT_FIELDS(X) SA_ENTRY_FIELDS(SA_FIELD_NONE, X, SA_FIELD_NONE)
#define SA_CONTEXT_TEXT_FIELDS(X) SA_ENTRY_FIELDS(SA_FIELD_NONE, SA_FIELD_NONE, X)

/*
 * The context fields' indexes: the columns of log_contexts after its id
 * (attnum - 2), in encoding order.
 */
#define SA_CTX_ENUM_(name, NAME, sqltype) SA_CTX_##NAME,
enum sa_context_field_index
{
	SA_CONTEXT_TEXT_FIELDS(SA_CTX_ENUM_)
	SA_CONTEXT_NFIELDS
};
#undef SA_CTX_ENUM_

/* The number of text fields, and of those stored in log_entries. */
#define SA_FIELD_COUNT_(...) + 1
#define SA_TEXT_NFIELDS (0 SA_TEXT_FIELDS(SA_FIELD_COUNT_))
#define SA_ENTRY_TEXT_NFIELDS (0 SA_ENTRY_TEXT_FIELDS(SA_FIELD_COUNT_))

#endif							/* SA_ENTRY_FIELDS_H */
