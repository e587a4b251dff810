/*
 * core_api.cpp — the extern "C" functions of sa_core.h.
 *
 * This is the only place where the core meets its caller, the backend.
 * Each function runs its body inside try/catch(...) and turns any failure
 * (CoreError, std::bad_alloc, anything else) into an SA_ERR_* code, because
 * a C++ exception must never unwind into PostgreSQL's C frames.  The
 * functions therefore behave as noexcept even though the C header cannot
 * say so.
 */
#include "cpp_only.hpp"

#include "sa_core.h"

#include <cstring>
#include <new>
#include <vector>

#include "core_error.hpp"
#include "digest.hpp"
#include "encoding.hpp"
#include "merkle.hpp"
#include "verifier.hpp"

using sensitive_audit::ChainVerifier;
using sensitive_audit::guarded;
using sensitive_audit::Sha256;

/* The opaque types of sa_core.h. */
struct sa_hasher
{
	Sha256		sha;
	std::vector<uint8_t> buf;	/* reused encode buffer; only grows */
};

struct sa_verifier
{
	ChainVerifier verifier;
};

extern "C" {

const char *
sa_strerror(int code)
{
	switch (code)
	{
		case SA_OK:
			return "success";
		case SA_ERR_NOMEM:
			return "out of memory";
		case SA_ERR_CRYPTO:
			return "OpenSSL failed (digest, MAC, key derivation, cipher or random number generator)";
		case SA_ERR_FORMAT:
			return "unsupported entry format version";
		case SA_ERR_INTERNAL:
			return "internal error in the sensitive_audit core (invalid argument or state)";
		case SA_ERR_RANGE:
		case SA_ERR_VERIFY:
		case SA_ERR_SYNTAX:
		case SA_ERR_NO_KEY:
			return sensitive_audit::core_strerror(code);
		case SA_ERR_SPACE:
			return "output array too small";
		case SA_ERR_KEY:
			return "not a usable X25519 key (malformed PEM, another algorithm, or a private key where a public one is needed)";
		case SA_ERR_DECRYPT:
			return "a sealed value does not authenticate under this key";
		default:
			return "unknown sensitive_audit core error";
	}
}

sa_hasher *
sa_hasher_create(void)
{
	try
	{
		return new sa_hasher();
	}
	catch (...)
	{
		return nullptr;
	}
}

void
sa_hasher_destroy(sa_hasher *h)
{
	/* The destructors only free memory and cannot throw. */
	delete h;
}

int
sa_entry_encode(sa_hasher *h, const sa_entry *e, const uint8_t **out, size_t *out_len)
{
	if (h == nullptr || e == nullptr || out == nullptr || out_len == nullptr)
		return SA_ERR_INTERNAL;
	return guarded([&] {
		const size_t len = sensitive_audit::encode_entry(*e, h->buf);

		*out = h->buf.data();
		*out_len = len;
	});
}

int
sa_entry_hash(sa_hasher *h, const sa_entry *e, uint8_t out[SA_DIGEST_LEN])
{
	if (h == nullptr || e == nullptr || out == nullptr)
		return SA_ERR_INTERNAL;
	return guarded([&] {
		const size_t len = sensitive_audit::encode_entry(*e, h->buf);

		/* A hasher may live as long as the backend: start each use clean. */
		Sha256::clear_error_queue();
		h->sha.digest(h->buf.data(), len, out);
	});
}

sa_verifier *
sa_verifier_create(void)
{
	try
	{
		return new sa_verifier();
	}
	catch (...)
	{
		return nullptr;
	}
}

void
sa_verifier_destroy(sa_verifier *v)
{
	delete v;
}

int
sa_verifier_allow_interleaved(sa_verifier *v)
{
	if (v == nullptr)
		return SA_ERR_INTERNAL;
	v->verifier.allow_interleaved();
	return SA_OK;
}

int
sa_verifier_feed(sa_verifier *v, const sa_entry *e,
				 const uint8_t *stored_hash, size_t stored_hash_len)
{
	if (v == nullptr || e == nullptr)
		return SA_ERR_INTERNAL;
	return guarded([&] {
		v->verifier.feed(*e, stored_hash, stored_hash_len);
	});
}

int
sa_verifier_finish(sa_verifier *v)
{
	if (v == nullptr)
		return SA_ERR_INTERNAL;
	return guarded([&] {
		v->verifier.finish();
	});
}

int
sa_verifier_expect_root(sa_verifier *v, uint32_t chain, uint64_t size,
						const uint8_t root[SA_DIGEST_LEN], const char *label)
{
	if (v == nullptr || root == nullptr || label == nullptr)
		return SA_ERR_INTERNAL;
	return guarded([&] {
		sensitive_audit::Digest d;

		std::memcpy(d.data(), root, SA_DIGEST_LEN);
		v->verifier.expect_root(chain, size, d, label);
	});
}

int
sa_verifier_expect_node(sa_verifier *v, uint32_t chain, uint32_t level, uint64_t index,
						const uint8_t hash[SA_DIGEST_LEN])
{
	if (v == nullptr || hash == nullptr)
		return SA_ERR_INTERNAL;
	return guarded([&] {
		sensitive_audit::Digest d;

		std::memcpy(d.data(), hash, SA_DIGEST_LEN);
		v->verifier.expect_node(chain, sensitive_audit::Subtree{level, index}, d);
	});
}

size_t
sa_verifier_nchains(const sa_verifier *v)
{
	return v == nullptr ? 0 : v->verifier.nchains();
}

int
sa_verifier_result(const sa_verifier *v, size_t i, sa_chain_result *out)
{
	if (v == nullptr || out == nullptr)
		return SA_ERR_INTERNAL;
	return guarded([&] {
		*out = v->verifier.result(i);
	});
}

}								/* extern "C" */
