/*
 * digest.cpp — the Sha256 helper (see digest.hpp for why it is reused).
 *
 * OpenSSL keeps a per-thread error queue.  The backend shares it with
 * PostgreSQL's own SSL and pgcrypto code, which read it after their calls,
 * so the core never leaves anything behind and never inherits a stale
 * entry: the queue is cleared before the context is set up, whenever a call
 * here fails, and by each use of the API (sa_entry_hash, or creating a
 * verifier).  It is not cleared before every digest of a verification run:
 * that costs about 100 ns, a third of the time it takes to verify an entry,
 * and success and failure are judged by return values, never by what is in
 * the queue.
 *
 * OpenSSL 3.0's EVP_DigestInit_ex2 frees and re-creates its small provider
 * context on every call, even for the same EVP_MD, so each digest costs one
 * malloc/free pair inside libcrypto, served from glibc's per-thread cache.
 * Nothing in the core itself allocates per entry.
 */
#include "cpp_only.hpp"

/*
 * SHA256_Init, SHA256_Update and SHA256_Final are deprecated in OpenSSL 3.0
 * in favour of EVP, which is used in FIPS mode (see digest.hpp).
 */
#define OPENSSL_SUPPRESS_DEPRECATED

#include "digest.hpp"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "core_error.hpp"

namespace sensitive_audit
{

Sha256::Sha256()
{
	ERR_clear_error();
	md_ = EVP_MD_fetch(nullptr, "SHA256", nullptr);
	if (md_ == nullptr)
		fail();
	ctx_ = EVP_MD_CTX_new();
	if (ctx_ == nullptr)
	{
		EVP_MD_free(md_);
		md_ = nullptr;
		fail();
	}
	direct_ = EVP_default_properties_is_fips_enabled(nullptr) == 0;
}

Sha256::~Sha256()
{
	EVP_MD_CTX_free(ctx_);
	EVP_MD_free(md_);
}

void
Sha256::clear_error_queue() noexcept
{
	ERR_clear_error();
}

void
Sha256::fail()
{
	ERR_clear_error();
	throw CoreError(SA_ERR_CRYPTO);
}

void
Sha256::digest(const uint8_t *data, size_t len, uint8_t out[SA_DIGEST_LEN])
{
	unsigned int out_len = 0;

	if (direct_)
	{
		SHA256_CTX	c;

		if (SHA256_Init(&c) != 1 || SHA256_Update(&c, data, len) != 1 || SHA256_Final(out, &c) != 1)
			fail();
		return;
	}

	/*
	 * Re-initialising with the prefetched EVP_MD skips the algorithm lookup
	 * (an implicit fetch by name takes a lock and a hash-table probe).
	 */
	if (EVP_DigestInit_ex2(ctx_, md_, nullptr) != 1 ||
		EVP_DigestUpdate(ctx_, data, len) != 1 ||
		EVP_DigestFinal_ex(ctx_, out, &out_len) != 1 ||
		out_len != SA_DIGEST_LEN)
		fail();
}

}								/* namespace sensitive_audit */
