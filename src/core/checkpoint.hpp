/*
 * checkpoint.hpp — signed checkpoints: the C2SP tlog-checkpoint body, C2SP
 * signed notes with Ed25519, and the body sensitive_audit itself signs.
 *
 * A checkpoint is how the log's state leaves the database: a short text
 * that names the log, its size and a Merkle root, signed by a key the
 * database never holds, and kept by a witness.  Both formats are the
 * C2SP ones (c2sp.org/tlog-checkpoint, c2sp.org/signed-note), so any
 * implementation of those can read and check what this one writes; the
 * product's own body (origin, per-chain records, extension lines) is
 * specified in docs/FORMAT.md, section 9.
 *
 * Parsing is strict: a text is accepted only in the one form this code
 * would itself write (base64 with padding and zero spare bits, decimals
 * without leading zeros, every line ending in a newline), so a signed text
 * has exactly one meaning.
 *
 * Every public function is noexcept and returns an SA_* code (merkle.hpp
 * lists the codes added for trees and checkpoints).  OpenSSL handles live
 * only for the duration of a call and are freed before it returns.
 */
#pragma once

#include "cpp_only.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "merkle.hpp"
#include "sa_core.h"

namespace sensitive_audit
{

/* Implementation limits, far above what a log of 1024 chains needs. */
inline constexpr size_t kMaxNoteSize = 1 << 20;	/* bytes of a whole signed note */
inline constexpr size_t kMaxCheckpointExtensions = 8192;
inline constexpr size_t kMaxNoteSignatures = 100;	/* c2sp: at least 16 */

inline constexpr size_t kEd25519KeyLen = 32;
inline constexpr size_t kEd25519SignatureLen = 64;
inline constexpr uint8_t kSignatureTypeEd25519 = 0x01;	/* signed-note type byte */

/* ---- Base64 (RFC 4648 section 4, standard alphabet, padded) ----------- */

int			base64_encode(const void *data, size_t len, std::string &out) noexcept;
/* Strict: SA_ERR_SYNTAX unless text is exactly what base64_encode writes. */
int			base64_decode(std::string_view text, std::vector<uint8_t> &out) noexcept;

/* ---- C2SP tlog-checkpoint ------------------------------------------------ */

/*
 * The note text of a checkpoint: origin line, tree size in decimal, root
 * hash in base64, then the optional extension lines, each line ending in
 * a newline.  Extension lines are kept without their newline.
 */
struct Checkpoint
{
	std::string origin;
	uint64_t	size = 0;
	Digest		root{};
	std::vector<std::string> extensions;
};

/*
 * SA_ERR_SYNTAX when a line would be empty or hold a newline or another
 * control character, the text is not UTF-8, or the limits above are
 * exceeded.
 */
int			encode_checkpoint(const Checkpoint &cp, std::string &out) noexcept;
int			parse_checkpoint(std::string_view text, Checkpoint &out) noexcept;

/* ---- C2SP signed-note ---------------------------------------------------- */

/* One signature line: "— <name> <base64(key_id || signature)>". */
struct NoteSignature
{
	std::string name;
	uint32_t	key_id = 0;
	std::vector<uint8_t> signature;	/* without the key ID */
};

struct SignedNote
{
	std::string text;			/* ends in a newline */
	std::vector<NoteSignature> signatures;
};

/*
 * Splits a signed note into its text and signature lines, checking only
 * the syntax (nothing is verified).  SA_ERR_SYNTAX when malformed.
 */
int			parse_note(std::string_view note, SignedNote &out) noexcept;
/* The inverse: text, a blank line, one line per signature. */
int			encode_note(const SignedNote &note, std::string &out) noexcept;

/* A key name is non-empty UTF-8 without Unicode spaces, '+' or control characters. */
bool		valid_key_name(std::string_view name) noexcept;

/* SHA-256(name || 0x0A || 0x01 || public_key)[:4], big-endian. */
int			ed25519_key_id(std::string_view name, const uint8_t public_key[kEd25519KeyLen],
						   uint32_t &out) noexcept;

/* A verifier key, written "<name>+<8 hex digits of key ID>+<base64(0x01 || key)>". */
struct VerifierKey
{
	std::string name;
	uint32_t	key_id = 0;
	std::array<uint8_t, kEd25519KeyLen> public_key{};
};

/* Fills in the key ID; SA_ERR_SYNTAX for an invalid name. */
int			make_verifier_key(std::string_view name, const uint8_t public_key[kEd25519KeyLen],
							  VerifierKey &out) noexcept;
int			encode_verifier_key(const VerifierKey &key, std::string &out) noexcept;
/* SA_ERR_SYNTAX when malformed, not Ed25519, or the key ID does not match the key. */
int			parse_verifier_key(std::string_view text, VerifierKey &out) noexcept;

/*
 * A signing key as golang.org/x/mod/sumdb/note writes one:
 * "PRIVATE+KEY+<name>+<8 hex digits of key ID>+<base64(0x01 || seed)>",
 * the seed being the 32-byte Ed25519 private key of RFC 8032.  Callers
 * holding one should wipe it (OPENSSL_cleanse) when done.
 */
struct SignerKey
{
	std::string name;
	uint32_t	key_id = 0;
	std::array<uint8_t, kEd25519KeyLen> private_key{};
};

int			encode_signer_key(const SignerKey &key, std::string &out) noexcept;
int			parse_signer_key(std::string_view text, SignerKey &out) noexcept;

/* Raw Ed25519 (RFC 8032) through OpenSSL. */
int			ed25519_public_key(const uint8_t private_key[kEd25519KeyLen],
							   uint8_t public_key[kEd25519KeyLen]) noexcept;
int			ed25519_sign(const uint8_t private_key[kEd25519KeyLen], const void *msg,
						 size_t len, uint8_t signature[kEd25519SignatureLen]) noexcept;
/* SA_OK for a valid signature, SA_ERR_VERIFY otherwise. */
int			ed25519_verify(const uint8_t public_key[kEd25519KeyLen], const void *msg,
						   size_t len, const uint8_t *signature, size_t signature_len) noexcept;

/*
 * Signs text (which must be a valid note text: non-empty UTF-8 ending in a
 * newline, no control characters but newlines) as key `name`, writing the
 * whole signed note to out.
 */
int			sign_note(std::string_view text, std::string_view name,
					  const uint8_t private_key[kEd25519KeyLen], std::string &out) noexcept;

/*
 * Opens a signed note with the trusted keys, as c2sp.org/signed-note
 * requires: signature lines whose name and key ID are not both those of a
 * trusted key are ignored; every one that is must verify (SA_ERR_VERIFY
 * otherwise); and at least one must be present (SA_ERR_NO_KEY otherwise).
 * Two different keys sharing a name and key ID are an invalid argument
 * (SA_ERR_INTERNAL) when a signature names them.  On SA_OK, *text (if not
 * null) is the note text and *nverified (if not null) the number of
 * signatures that verified.
 */
int			verify_note(std::string_view note, const VerifierKey *keys, size_t nkeys,
						std::string *text, size_t *nverified) noexcept;

/* ---- The checkpoint body of sensitive_audit ------------------------------ */

/*
 * Origin: "sensitive_audit/<log id>", the log id being 1 to 128 characters
 * from [A-Za-z0-9._-].  Size: the total number of entries over all chains.
 * Root: the Merkle root (merkle.hpp hashing) whose leaves' data are the
 * chain records of the non-empty chains in ascending chain order.  One
 * extension line per non-empty chain, in the same order:
 * "chain <chain> <size> <base64 root>".
 */
inline constexpr char kOriginPrefix[] = "sensitive_audit/";
inline constexpr size_t kMaxLogIdLen = 128;

/*
 * A chain record: the ASCII text "sensitive_audit chain" and a zero byte
 * (22 bytes, domain separation as for entries), chain u32 big-endian,
 * size u64 big-endian, the chain's 32-byte Merkle root: 66 bytes.
 */
inline constexpr char kChainRecordDomain[] = "sensitive_audit chain";
inline constexpr size_t kChainRecordDomainLen = sizeof(kChainRecordDomain);	/* with the NUL */
inline constexpr size_t kChainRecordLen = kChainRecordDomainLen + 4 + 8 + SA_DIGEST_LEN;

/* One chain at checkpoint time: its number, entry count and tree root. */
struct ChainHead
{
	uint32_t	chain = 0;
	uint64_t	size = 0;
	Digest		root{};
};

void		encode_chain_record(const ChainHead &head, uint8_t out[kChainRecordLen]) noexcept;

/*
 * Root over the records of the chains with size > 0 (chains of size 0 are
 * skipped: an empty chain and an absent one are the same state).  Chains
 * must be in strictly ascending order (SA_ERR_RANGE otherwise).
 */
int			chain_records_root(const ChainHead *chains, size_t n, Digest &out) noexcept;

bool		valid_log_id(std::string_view log_id) noexcept;

/*
 * The checkpoint body of the log in the given state, chains as for
 * chain_records_root.  SA_ERR_SYNTAX for an invalid log id, SA_ERR_RANGE
 * for chains out of order or a total that does not fit 64 bits.
 */
int			encode_log_checkpoint(std::string_view log_id, const ChainHead *chains, size_t n,
								  std::string &body) noexcept;

/* A parsed sensitive_audit checkpoint body. */
struct LogCheckpoint
{
	std::string log_id;
	uint64_t	total = 0;
	Digest		root{};
	std::vector<ChainHead> chains;	/* ascending, each with size > 0 */
};

/*
 * Parses and checks a body: SA_ERR_SYNTAX when it is not a well-formed
 * sensitive_audit checkpoint, SA_ERR_VERIFY when its size is not the sum
 * of the chains' sizes or its root not the root of their records.
 */
int			parse_log_checkpoint(std::string_view body, LogCheckpoint &out) noexcept;

}								/* namespace sensitive_audit */
