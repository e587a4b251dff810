/*
 * digest.hpp — SHA-256 through OpenSSL 3's EVP interface, set up once and
 * reused.
 *
 * Looking the algorithm up (EVP_MD_fetch, or the implicit fetch behind
 * EVP_sha256()) or creating a digest context for each entry nearly doubles
 * the cost of hashing it: about 250 ns for a 250-byte entry when both are
 * reused, 410 to 540 ns when either is not (OpenSSL 3.0, one core).  So a
 * Sha256 object does both once and then only re-initialises its context
 * per message.
 *
 * Even then, OpenSSL 3.0's EVP re-initialisation frees and re-creates the
 * provider's context on every message: about 90 ns of a 250 ns digest of
 * a short message such as a Merkle leaf or node, which verify() computes
 * twice per entry when it holds a log to its checkpoints.  So unless
 * OpenSSL runs in FIPS mode (where only the provider's implementation may
 * be used), digest() calls libcrypto's SHA-256 block functions directly;
 * they are the same code the default provider runs.
 *
 * The object owns OpenSSL memory.  Inside a backend, whatever owns it (an
 * sa_hasher or sa_verifier) must either live as long as the process or be
 * destroyed from a memory-context reset callback or a ResourceOwner,
 * because destructors do not run across a PostgreSQL error.
 */
#pragma once

#include "cpp_only.hpp"

#include <cstddef>
#include <cstdint>

#include "sa_core.h"

typedef struct evp_md_st EVP_MD;
typedef struct evp_md_ctx_st EVP_MD_CTX;

namespace sensitive_audit
{

class Sha256
{
public:
	/* Throws CoreError(SA_ERR_CRYPTO) when OpenSSL cannot provide SHA-256. */
	Sha256();
	~Sha256();

	Sha256(const Sha256 &) = delete;
	Sha256 &operator=(const Sha256 &) = delete;

	/* out = SHA-256(data[0..len)); throws CoreError(SA_ERR_CRYPTO). */
	void		digest(const uint8_t *data, size_t len, uint8_t out[SA_DIGEST_LEN]);

	/* Empties this thread's OpenSSL error queue (about 100 ns). */
	static void clear_error_queue() noexcept;

private:
	[[noreturn]] void fail();

	EVP_MD	   *md_ = nullptr;
	EVP_MD_CTX *ctx_ = nullptr;
	bool		direct_ = false;	/* not in FIPS mode: SHA256_Init and co. */
};

}								/* namespace sensitive_audit */
