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

#include "entry_fields.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SA_FORMAT_VERSION 1
#define SA_FORMAT_PROTECTED 2	/* old_value/new_value hold a protected form (FORMAT.md §11) */
#define SA_DIGEST_LEN 32

/* A possibly-NULL byte string; data need not be NUL-terminated. */
typedef struct sa_bytes
{
	const char *data;
	size_t		len;
	int			is_null;
} sa_bytes;

/*
 * Every hashed field of an entry, in encoding order: the members are those
 * of SA_ENTRY_FIELDS (entry_fields.h), one sa_bytes per text field.
 * event_time is microseconds since 1970-01-01 00:00:00 UTC.  row_key is the
 * canonical JSON text of the row's key; row_key_source says which key it
 * is ('primary key', 'replica identity', 'tagged values').  prev_hash is
 * the previous entry's hash; the first entry of a chain uses 32 zero bytes.
 */
#define SA_ENTRY_FIXED_MEMBER_(name, ctype, dims) ctype name dims;
#define SA_ENTRY_TEXT_MEMBER_(name, NAME, sqltype) sa_bytes name;
typedef struct sa_entry
{
	SA_ENTRY_FIELDS(SA_ENTRY_FIXED_MEMBER_, SA_ENTRY_TEXT_MEMBER_, SA_ENTRY_TEXT_MEMBER_)
} sa_entry;
#undef SA_ENTRY_FIXED_MEMBER_
#undef SA_ENTRY_TEXT_MEMBER_

/* Result codes. */
#define SA_OK 0
#define SA_ERR_NOMEM 1
#define SA_ERR_CRYPTO 2
#define SA_ERR_FORMAT 3			/* unsupported format version */
#define SA_ERR_INTERNAL 4
#define SA_ERR_RANGE 16			/* a leaf index or tree size is out of range */
#define SA_ERR_VERIFY 17		/* a proof, root or signature does not verify */
#define SA_ERR_SYNTAX 18		/* malformed checkpoint, note, key or base64 text */
#define SA_ERR_NO_KEY 19		/* a note carries no signature by a known key */
#define SA_ERR_SPACE 20			/* an output array is too small; the count needed is set */

/* Human-readable text for any result code above (static storage). */
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

/*
 * Holding chains to what was recorded of them elsewhere (call before
 * feeding).  expect_root: the first `size` entries of `chain` must have
 * this Merkle root (a stored checkpoint's extension line); label names the
 * checkpoint in problem texts ("checkpoint 7").  A chain shorter than
 * size, or absent, fails with "cut:" or "missing:"; a prefix with another
 * root fails with "rewritten:".  expect_node: a stored complete subtree of
 * the chain's tree must match its entries.  Either makes the verifier
 * build that chain's tree as entries stream by.
 */
int			sa_verifier_expect_root(sa_verifier *v, uint32_t chain, uint64_t size,
									const uint8_t root[SA_DIGEST_LEN], const char *label);
int			sa_verifier_expect_node(sa_verifier *v, uint32_t chain, uint32_t level,
									uint64_t index, const uint8_t hash[SA_DIGEST_LEN]);

/*
 * Merkle trees (docs/FORMAT.md, section 9): one per chain, leaf i being
 * entry seq i + 1.  A subtree is the complete level-`level` node at
 * `index`, over leaves [index * 2^level, (index + 1) * 2^level).
 */
typedef struct sa_subtree
{
	uint32_t	level;
	uint64_t	index;
} sa_subtree;

/* The leaf hash of an entry: SHA-256(0x00 || entry hash). */
int			sa_merkle_leaf(const uint8_t entry_hash[SA_DIGEST_LEN], uint8_t out[SA_DIGEST_LEN]);

/*
 * The root of a complete subtree from its n children at one level (n a
 * power of two, n >= 1; hashes holds n * 32 bytes, left to right).
 */
int			sa_merkle_perfect_root(const uint8_t *hashes, size_t n, uint8_t out[SA_DIGEST_LEN]);

/* What to compute from stored subtrees. */
#define SA_TREE_ROOT 0			/* a = tree size (b unused): its root */
#define SA_TREE_INCLUSION 1		/* a = leaf index, b = tree size: audit path */
#define SA_TREE_CONSISTENCY 2	/* a = old size, b = new size: consistency path */

/*
 * The complete subtrees the computation reads, in order (duplicates
 * possible).  SA_ERR_SPACE when cap is too small, with *n set to the count
 * needed; SA_ERR_RANGE for sizes or indexes out of range.
 */
int			sa_tree_plan(int what, uint64_t a, uint64_t b,
						 sa_subtree *out, size_t cap, size_t *n);

/*
 * The computation, given the hashes of (at least) the planned subtrees:
 * nodes[i] has the hash at hashes + 32 * i.  Writes *n hashes of 32 bytes
 * to out (1 for SA_TREE_ROOT, the path otherwise); SA_ERR_SPACE as above.
 */
int			sa_tree_compute(int what, uint64_t a, uint64_t b,
							const sa_subtree *nodes, const uint8_t *hashes, size_t nnodes,
							uint8_t *out, size_t cap, size_t *n);

/*
 * Checkpoints (docs/FORMAT.md, section 9): a chain's size and root at
 * checkpoint time.
 */
typedef struct sa_chain_head
{
	uint32_t	chain;
	uint64_t	size;
	uint8_t		root[SA_DIGEST_LEN];
} sa_chain_head;

#define SA_MAX_LOG_ID_LEN 128

/*
 * The checkpoint body for log_id and the chains (ascending; empty chains
 * skipped), NUL-terminated in out.  SA_ERR_SPACE when cap < *len + 1.
 */
int			sa_checkpoint_body(const char *log_id, const sa_chain_head *chains, size_t n,
							   char *out, size_t cap, size_t *len);

/*
 * Parses a signed note holding a checkpoint body (syntax only: signatures
 * are not checked, there must be at least one) and checks the body's size
 * and root against its chain lines.  log_id receives the log id
 * (NUL-terminated, SA_MAX_LOG_ID_LEN + 1 bytes), chains the chain lines
 * (SA_ERR_SPACE with *nchains set when cap is too small).  SA_ERR_SYNTAX or
 * SA_ERR_VERIFY when the note is not a well-formed checkpoint.
 */
int			sa_checkpoint_parse(const char *note, size_t len, char *log_id, uint64_t *total,
								sa_chain_head *chains, size_t cap, size_t *nchains);

/* ------------------------------------------------------------------------
 * Protected values (format 2, docs/FORMAT.md §11).  A format 2 entry is
 * encoded exactly as format 1 is, with format = 2; its old_value and
 * new_value hold, instead of the clear canonical text, one of:
 *
 *   "hmac-sha256:" 64 lowercase hex        HMAC-SHA-256(key, value)
 *   "sha256-salted:" 64 lowercase hex      SHA-256("sensitive_audit erasable" NUL ‖ salt ‖ value)
 *   "x25519-aes256gcm:" base64 (RFC 4648, padded) of
 *        key id (8) ‖ ephemeral X25519 public key (32) ‖ nonce (12) ‖ ciphertext ‖ GCM tag (16)
 *     the AES-256-GCM key being HKDF-SHA-256(ikm = X25519(ephemeral, recipient),
 *     salt = ephemeral public ‖ recipient public, info = "sensitive_audit sealed value"),
 *     the additional data the 40 bytes of key id and ephemeral public key, and the
 *     key id the first 8 bytes of SHA-256(recipient's raw 32-byte public key).
 * NULL stays NULL in every mode.
 */
#define SA_PROTECT_KEY_LEN 32		/* fingerprint keys, salts, X25519 keys */
#define SA_KEY_ID_LEN 8
#define SA_FINGERPRINT_PREFIX "hmac-sha256:"
#define SA_COMMITMENT_PREFIX "sha256-salted:"
#define SA_SEALED_PREFIX "x25519-aes256gcm:"
#define SA_FINGERPRINT_TEXT_LEN (12 + 64)	/* without the NUL */
#define SA_COMMITMENT_TEXT_LEN (14 + 64)
#define SA_ERR_KEY 21			/* a key that cannot be used (not X25519, malformed PEM) */
#define SA_ERR_DECRYPT 22		/* a sealed value that does not authenticate under this key */

/*
 * A column's fingerprint key: HMAC-SHA-256(database key, "sensitive_audit
 * fingerprint column" NUL ‖ the column's 16 random bytes), so that equal
 * values fingerprint the same within a column only.
 */
#define SA_COLUMN_SALT_LEN 16
int			sa_fingerprint_column_key(const uint8_t database_key[SA_PROTECT_KEY_LEN],
									  const uint8_t column_salt[SA_COLUMN_SALT_LEN],
									  uint8_t out[SA_PROTECT_KEY_LEN]);

/* out: SA_FINGERPRINT_TEXT_LEN characters and a NUL. */
int			sa_fingerprint_text(const uint8_t key[SA_PROTECT_KEY_LEN], const char *value, size_t len,
								char *out);

/* out: SA_COMMITMENT_TEXT_LEN characters and a NUL. */
int			sa_commitment_text(const uint8_t salt[SA_PROTECT_KEY_LEN], const char *value, size_t len,
							   char *out);

/* Cryptographically strong random bytes (OpenSSL's RAND_bytes). */
int			sa_random_bytes(uint8_t *out, size_t n);

/*
 * The raw 32-byte public key of an X25519 SubjectPublicKeyInfo PEM (what
 * `openssl pkey -pubout` prints) and its key id as 16 lowercase hex digits
 * and a NUL.  SA_ERR_KEY for anything else (a private key, another
 * algorithm, bad PEM).
 */
int			sa_x25519_public_from_pem(const char *pem, size_t len, uint8_t pub[SA_PROTECT_KEY_LEN],
									  char key_id_hex[2 * SA_KEY_ID_LEN + 1]);

/*
 * Sealing values to one recipient.  A sealer makes one ephemeral X25519
 * key and derives one AES-256-GCM key from it, then seals each value with
 * a fresh random nonce; it renews the ephemeral key after 2^20 values.
 * sa_sealer_create_fixed takes the ephemeral private key and makes every
 * nonce from a counter starting at `nonce` (test vectors only).
 * (Implementation, src/core/protect.cpp: the counter is the 96-bit
 * big-endian number `nonce`, plus one per value; a fixed sealer never
 * renews its ephemeral key.  Both return NULL for a recipient key of low
 * order, whose X25519 result is zero.  sa_seal_text returns SA_ERR_RANGE
 * for a value longer than INT_MAX - 1024 bytes (OpenSSL takes int lengths;
 * PostgreSQL's own limit is 1 GB), and sa_sealed_text_len returns 0 for one.
 * The sealer owns OpenSSL objects: in a backend, destroy it from a
 * memory-context reset callback or a ResourceOwner, or keep it for the
 * life of the process.)
 */
typedef struct sa_sealer sa_sealer;
sa_sealer  *sa_sealer_create(const uint8_t recipient[SA_PROTECT_KEY_LEN]);
sa_sealer  *sa_sealer_create_fixed(const uint8_t recipient[SA_PROTECT_KEY_LEN],
								   const uint8_t ephemeral_private[SA_PROTECT_KEY_LEN],
								   const uint8_t nonce[12]);
void		sa_sealer_destroy(sa_sealer *s);
/* Length of the sealed text of a len-byte value, without the NUL. */
size_t		sa_sealed_text_len(size_t len);
/* out: cap bytes; on SA_OK *out_len characters and a NUL were written (SA_ERR_SPACE if cap is too small). */
int			sa_seal_text(sa_sealer *s, const char *value, size_t len, char *out, size_t cap,
						 size_t *out_len);

#ifdef __cplusplus
}
#endif

#endif							/* SA_CORE_H */
