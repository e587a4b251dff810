/*
 * sa_core.h — the boundary between the backend and the pure C++ core.
 *
 * Only plain C types cross this line, so the header can be included both by
 * files that include postgres.h and by pure C++ files.  Every function here
 * is noexcept: it catches everything inside and reports failure through its
 * return value, because a C++ exception must never unwind through a
 * PostgreSQL frame.  Memory handed in is owned by the caller and only read
 * during the call.
 *
 * The bytes that are hashed are documented in docs/FORMAT.md.
 */
#ifndef SA_CORE_H
#define SA_CORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SA_FORMAT_VERSION 1
#define SA_DIGEST_LEN 32

/* A possibly-NULL byte string; data need not be NUL-terminated. */
typedef struct sa_bytes
{
	const char *data;
	size_t		len;
	int			is_null;
} sa_bytes;

/*
 * Every hashed field of an entry, in encoding order.  event_time is
 * microseconds since 1970-01-01 00:00:00 UTC.  prev_hash is the previous
 * entry's hash; the first entry of a chain uses 32 zero bytes.
 */
typedef struct sa_entry
{
	uint16_t	format;
	uint32_t	chain;
	uint64_t	seq;
	uint64_t	txid;
	int64_t		event_time;
	sa_bytes	operation;
	sa_bytes	table_schema;
	sa_bytes	table_name;
	sa_bytes	column_name;
	sa_bytes	row_key;		/* canonical JSON text of the row's key */
	sa_bytes	row_key_source; /* 'primary key', 'replica identity', 'tagged values' */
	sa_bytes	old_value;
	sa_bytes	new_value;
	sa_bytes	value_type;
	sa_bytes	session_role;
	sa_bytes	effective_role;
	sa_bytes	application_name;
	sa_bytes	client_addr;
	int32_t		backend_pid;
	uint8_t		prev_hash[SA_DIGEST_LEN];
} sa_entry;

/* Result codes. */
#define SA_OK 0
#define SA_ERR_NOMEM 1
#define SA_ERR_CRYPTO 2
#define SA_ERR_FORMAT 3			/* unsupported format version */
#define SA_ERR_INTERNAL 4

/* Human-readable text for a result code (static storage). */
const char *sa_strerror(int code);

/*
 * A reusable hashing context (holds an OpenSSL digest context and an encode
 * buffer).  Create once, use for many entries, destroy.  NULL on failure.
 */
typedef struct sa_hasher sa_hasher;
sa_hasher  *sa_hasher_create(void);
void		sa_hasher_destroy(sa_hasher *h);

/* SHA-256 over the canonical encoding of *e; writes 32 bytes to out. */
int			sa_entry_hash(sa_hasher *h, const sa_entry *e, uint8_t out[SA_DIGEST_LEN]);

/*
 * Canonical encoding of *e (the exact bytes that are hashed).  On SA_OK,
 * *out points into the hasher's buffer, valid until the next call on h.
 */
int			sa_entry_encode(sa_hasher *h, const sa_entry *e,
							const uint8_t **out, size_t *out_len);

/*
 * Streaming verifier.  Feed every entry of the log ordered by (chain, seq),
 * with the hash stored in the log (stored_hash_len is 0 when it is NULL).
 * It never stops at the first failure: for each chain it keeps the first
 * entry that fails and why, and counts all entries.
 */
typedef struct sa_verifier sa_verifier;

typedef struct sa_chain_result
{
	uint32_t	chain;
	uint64_t	entries;
	int			ok;
	uint64_t	first_bad_seq;	/* valid when !ok */
	const char *problem;		/* NUL-terminated; NULL when ok; owned by the verifier */
} sa_chain_result;

sa_verifier *sa_verifier_create(void);
void		sa_verifier_destroy(sa_verifier *v);

/*
 * Accept the chains' entries interleaved: each chain's entries must still
 * arrive in seq order, but entries of different chains may come in any
 * order (as a physical scan of the log yields them).  Call before feeding.
 */
int			sa_verifier_allow_interleaved(sa_verifier *v);
int			sa_verifier_feed(sa_verifier *v, const sa_entry *e,
							 const uint8_t *stored_hash, size_t stored_hash_len);
/* Call once after the last entry; then read results. */
int			sa_verifier_finish(sa_verifier *v);
size_t		sa_verifier_nchains(const sa_verifier *v);
int			sa_verifier_result(const sa_verifier *v, size_t i, sa_chain_result *out);

#ifdef __cplusplus
}
#endif

#endif							/* SA_CORE_H */
