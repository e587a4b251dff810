/*
 * protect.cpp — protected values (format 2, docs/FORMAT.md §11):
 * fingerprints (HMAC-SHA-256), salted commitments (SHA-256), and values
 * sealed to an X25519 public key (X25519, HKDF-SHA-256, AES-256-GCM), all
 * through OpenSSL 3's libcrypto, plus the opener the command-line program
 * decrypts with.
 *
 * A sealed value is
 *
 *   "x25519-aes256gcm:" base64( key id (8) || ephemeral public (32) ||
 *                               nonce (12) || ciphertext || tag (16) )
 *
 * where the AES-256-GCM key is HKDF-SHA-256 of the X25519 shared secret
 * (salt: ephemeral public || recipient public; info: "sensitive_audit
 * sealed value") and the additional data is the first 40 bytes.  A sealer
 * derives that key once per ephemeral key and renews the ephemeral key
 * after 2^20 values, so sealing a value costs one AES-GCM encryption and a
 * RAND_bytes call; the random 96-bit nonces stay far from the 2^32 values
 * per key that GCM allows with random nonces.
 *
 * The sa_sealer owns OpenSSL objects: inside a backend it must live as
 * long as the process or be destroyed with sa_sealer_destroy from a
 * memory-context reset callback or a ResourceOwner, because destructors
 * do not run across a PostgreSQL error.
 */
#include "cpp_only.hpp"

#include "protect.hpp"

#include <climits>
#include <cstring>
#include <new>
#include <vector>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "base64.hpp"
#include "core_error.hpp"

namespace sensitive_audit
{

namespace
{

constexpr size_t kAeadKeyLen = 32;
constexpr uint64_t kValuesPerEphemeralKey = uint64_t{1} << 20;
/* A value up to this long can be sealed (OpenSSL takes int lengths). */
constexpr size_t kMaxSealLen = static_cast<size_t>(INT_MAX) - 1024;

const char kHex[] = "0123456789abcdef";

[[noreturn]] void
crypto_fail()
{
	ERR_clear_error();
	throw CoreError(SA_ERR_CRYPTO);
}

void
hex_into(const uint8_t *p, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
	{
		out[2 * i] = kHex[p[i] >> 4];
		out[2 * i + 1] = kHex[p[i] & 15];
	}
}

/* Writes base64 (padded) of p[0..n) to out; returns the characters written. */
size_t
base64_into(const uint8_t *p, size_t n, char *out)
{
	char	   *o = out;
	size_t		i = 0;

	for (; i + 3 <= n; i += 3)
	{
		uint32_t	v = (uint32_t{p[i]} << 16) | (uint32_t{p[i + 1]} << 8) | p[i + 2];

		*o++ = kBase64Alphabet[v >> 18];
		*o++ = kBase64Alphabet[(v >> 12) & 63];
		*o++ = kBase64Alphabet[(v >> 6) & 63];
		*o++ = kBase64Alphabet[v & 63];
	}
	if (n - i == 1)
	{
		uint32_t	v = uint32_t{p[i]} << 16;

		*o++ = kBase64Alphabet[v >> 18];
		*o++ = kBase64Alphabet[(v >> 12) & 63];
		*o++ = '=';
		*o++ = '=';
	}
	else if (n - i == 2)
	{
		uint32_t	v = (uint32_t{p[i]} << 16) | (uint32_t{p[i + 1]} << 8);

		*o++ = kBase64Alphabet[v >> 18];
		*o++ = kBase64Alphabet[(v >> 12) & 63];
		*o++ = kBase64Alphabet[(v >> 6) & 63];
		*o++ = '=';
	}
	return static_cast<size_t>(o - out);
}


/*
 * Decoded length of canonical padded base64, or -1: length a multiple of
 * 4, alphabet only, '=' only as the last one or two characters, spare bits
 * zero (so every byte string has exactly one spelling).  When out is not
 * null the bytes are written there.
 */
long long
base64_check(std::string_view t, uint8_t *out)
{
	if (t.size() % 4 != 0 || t.empty())
		return -1;
	size_t		pad = 0;

	if (t[t.size() - 1] == '=')
		pad = t[t.size() - 2] == '=' ? 2 : 1;
	const size_t body = t.size() - pad;
	uint32_t	acc = 0;
	int			bits = 0;
	size_t		n = 0;

	for (size_t i = 0; i < body; i++)
	{
		int			v = base64_value(t[i]);

		if (v < 0)
			return -1;
		acc = (acc << 6) | static_cast<uint32_t>(v);
		bits += 6;
		if (bits >= 8)
		{
			bits -= 8;
			if (out != nullptr)
				out[n] = static_cast<uint8_t>(acc >> bits);
			n++;
			acc &= (1u << bits) - 1;
		}
	}
	/* What is left over must be the zero spare bits of a padded group. */
	if (acc != 0)
		return -1;
	return static_cast<long long>(n);
}

bool
lower_hex(std::string_view t, size_t n)
{
	if (t.size() != n)
		return false;
	for (char c : t)
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
	return true;
}

bool
starts_with(std::string_view v, std::string_view prefix)
{
	return v.size() >= prefix.size() && v.compare(0, prefix.size(), prefix) == 0;
}

constexpr std::string_view kFingerprintPrefix = SA_FINGERPRINT_PREFIX;
constexpr std::string_view kCommitmentPrefix = SA_COMMITMENT_PREFIX;
constexpr std::string_view kSealedPrefix = SA_SEALED_PREFIX;

/*
 * X25519(priv, peer) into shared; false when the peer is a low-order
 * point (an all-zero result: no key can be derived from it).
 */
bool
x25519_shared(EVP_PKEY *priv, const uint8_t peer_raw[SA_PROTECT_KEY_LEN], uint8_t shared[32])
{
	EVP_PKEY   *peer = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr, peer_raw,
												   SA_PROTECT_KEY_LEN);

	if (peer == nullptr)
		crypto_fail();
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(nullptr, priv, nullptr);
	size_t		len = 32;
	bool		ok = ctx != nullptr && EVP_PKEY_derive_init(ctx) == 1 &&
		EVP_PKEY_derive_set_peer(ctx, peer) == 1 &&
		EVP_PKEY_derive(ctx, shared, &len) == 1 && len == 32;

	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(peer);
	if (!ok)
	{
		/* OpenSSL refuses an all-zero shared secret itself; so do we. */
		ERR_clear_error();
		OPENSSL_cleanse(shared, 32);
		return false;
	}
	uint8_t		any = 0;

	for (int i = 0; i < 32; i++)
		any |= shared[i];
	return any != 0;
}

/* HKDF-SHA-256(ikm = shared, salt = eph || recipient, info) -> 32 bytes. */
void
hkdf_key(EVP_KDF *kdf, const uint8_t shared[32], const uint8_t eph[SA_PROTECT_KEY_LEN],
		 const uint8_t recipient[SA_PROTECT_KEY_LEN], uint8_t out[kAeadKeyLen])
{
	uint8_t		salt[2 * SA_PROTECT_KEY_LEN];

	std::memcpy(salt, eph, SA_PROTECT_KEY_LEN);
	std::memcpy(salt + SA_PROTECT_KEY_LEN, recipient, SA_PROTECT_KEY_LEN);

	EVP_KDF_CTX *ctx = EVP_KDF_CTX_new(kdf);
	char		digest[] = "SHA256";
	OSSL_PARAM	params[5] = {
		OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<uint8_t *>(shared), 32),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, salt, sizeof(salt)),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, const_cast<char *>(kSealedInfo),
										  sizeof(kSealedInfo) - 1),
		OSSL_PARAM_construct_end(),
	};
	bool		ok = ctx != nullptr && EVP_KDF_derive(ctx, out, kAeadKeyLen, params) == 1;

	EVP_KDF_CTX_free(ctx);
	if (!ok)
		crypto_fail();
}

EVP_KDF    *
fetch_hkdf()
{
	EVP_KDF    *kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);

	if (kdf == nullptr)
		crypto_fail();
	return kdf;
}

EVP_CIPHER *
fetch_gcm()
{
	EVP_CIPHER *c = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);

	if (c == nullptr)
		crypto_fail();
	return c;
}

/* Adds one to a 96-bit big-endian counter. */
void
increment_nonce(uint8_t nonce[kSealedNonceLen])
{
	for (int i = static_cast<int>(kSealedNonceLen) - 1; i >= 0; i--)
		if (++nonce[i] != 0)
			break;
}

/*
 * Reads a PEM block of one type: the text must be exactly that block
 * (surrounding whitespace aside).  Returns the BIO positioned on it.
 */
BIO		   *
pem_bio(std::string_view pem, std::string_view type)
{
	size_t		b = 0, e = pem.size();

	while (b < e && (pem[b] == ' ' || pem[b] == '\t' || pem[b] == '\r' || pem[b] == '\n'))
		b++;
	while (e > b && (pem[e - 1] == ' ' || pem[e - 1] == '\t' || pem[e - 1] == '\r' || pem[e - 1] == '\n'))
		e--;
	std::string_view t = pem.substr(b, e - b);
	const std::string begin = "-----BEGIN " + std::string(type) + "-----";
	const std::string end = "-----END " + std::string(type) + "-----";

	if (t.find('\0') != std::string_view::npos || !starts_with(t, begin) ||
		t.size() < begin.size() + end.size() ||
		t.compare(t.size() - end.size(), end.size(), end) != 0 ||
		t.find("-----BEGIN", begin.size()) != std::string_view::npos ||
		t.size() > INT_MAX)
		throw CoreError(SA_ERR_KEY);
	BIO		   *bio = BIO_new_mem_buf(t.data(), static_cast<int>(t.size()));

	if (bio == nullptr)
		throw std::bad_alloc();
	return bio;
}

/* A password callback that supplies none: an encrypted key is refused, never prompted for. */
int
no_password(char *, int, int, void *)
{
	return -1;
}

}								/* namespace */

KeyId
x25519_key_id(const uint8_t pub[SA_PROTECT_KEY_LEN]) noexcept
{
	uint8_t		d[SHA256_DIGEST_LENGTH];
	KeyId		id{};

	if (EVP_Digest(pub, SA_PROTECT_KEY_LEN, d, nullptr, EVP_sha256(), nullptr) == 1)
		std::memcpy(id.data(), d, SA_KEY_ID_LEN);
	else
		ERR_clear_error();
	return id;
}

std::string
key_id_hex(const KeyId &id)
{
	std::string s(2 * SA_KEY_ID_LEN, '0');

	hex_into(id.data(), id.size(), s.data());
	return s;
}

ProtectedForm
protected_form(std::string_view v) noexcept
{
	if (starts_with(v, kFingerprintPrefix))
		return lower_hex(v.substr(kFingerprintPrefix.size()), 64) ? ProtectedForm::kFingerprint
			: ProtectedForm::kMalformed;
	if (starts_with(v, kCommitmentPrefix))
		return lower_hex(v.substr(kCommitmentPrefix.size()), 64) ? ProtectedForm::kCommitment
			: ProtectedForm::kMalformed;
	if (starts_with(v, kSealedPrefix))
	{
		long long	n = base64_check(v.substr(kSealedPrefix.size()), nullptr);

		return n >= static_cast<long long>(kSealedOverhead) ? ProtectedForm::kSealed
			: ProtectedForm::kMalformed;
	}
	return ProtectedForm::kMalformed;
}

bool
sealed_key_id(std::string_view v, KeyId &out) noexcept
{
	if (protected_form(v) != ProtectedForm::kSealed)
		return false;
	/* The key id is the first 8 bytes: the first 12 base64 characters. */
	uint8_t		b[9];

	if (base64_check(v.substr(kSealedPrefix.size(), 12), b) != 9)
		return false;
	std::memcpy(out.data(), b, SA_KEY_ID_LEN);
	return true;
}

/* ---- The opener ------------------------------------------------------------ */

X25519Opener::~X25519Opener()
{
	release();
}

void
X25519Opener::release() noexcept
{
	for (auto &kv : keys_)
		OPENSSL_cleanse(kv.second.data(), kv.second.size());
	keys_.clear();
	EVP_PKEY_free(key_);
	EVP_CIPHER_CTX_free(ctx_);
	EVP_CIPHER_free(cipher_);
	EVP_KDF_free(kdf_);
	key_ = nullptr;
	ctx_ = nullptr;
	cipher_ = nullptr;
	kdf_ = nullptr;
}

int
X25519Opener::load_private_pem(std::string_view pem) noexcept
{
	release();
	int			rc = guarded([&] {
		ERR_clear_error();
		BIO		   *bio = pem_bio(pem, "PRIVATE KEY");
		EVP_PKEY   *k = PEM_read_bio_PrivateKey(bio, nullptr, no_password, nullptr);

		BIO_free(bio);
		if (k == nullptr)
		{
			ERR_clear_error();
			throw CoreError(SA_ERR_KEY);
		}
		key_ = k;
		size_t		len = pub_.size();

		if (EVP_PKEY_get_id(k) != EVP_PKEY_X25519 ||
			EVP_PKEY_get_raw_public_key(k, pub_.data(), &len) != 1 || len != pub_.size())
		{
			ERR_clear_error();
			throw CoreError(SA_ERR_KEY);
		}
		id_ = x25519_key_id(pub_.data());
		kdf_ = fetch_hkdf();
		cipher_ = fetch_gcm();
		ctx_ = EVP_CIPHER_CTX_new();
		if (ctx_ == nullptr)
			crypto_fail();
	});

	if (rc != SA_OK)
		release();
	return rc;
}

bool
X25519Opener::derive(const uint8_t eph[SA_PROTECT_KEY_LEN], uint8_t key[kAeadKeyLen])
{
	std::array<uint8_t, SA_PROTECT_KEY_LEN> e;

	std::memcpy(e.data(), eph, e.size());
	auto		it = keys_.find(e);

	if (it != keys_.end())
	{
		std::memcpy(key, it->second.data(), kAeadKeyLen);
		return true;
	}
	uint8_t		shared[32];

	if (!x25519_shared(key_, eph, shared))
		return false;
	hkdf_key(kdf_, shared, eph, pub_.data(), key);
	OPENSSL_cleanse(shared, sizeof(shared));
	/* Bounded: a log sealed with more ephemeral keys than this is re-derived. */
	if (keys_.size() < 4096)
	{
		std::array<uint8_t, kAeadKeyLen> k;

		std::memcpy(k.data(), key, kAeadKeyLen);
		keys_.emplace(e, k);
		OPENSSL_cleanse(k.data(), k.size());
	}
	return true;
}

OpenResult
X25519Opener::open(std::string_view sealed, std::string &clear, KeyId *other) noexcept
{
	if (key_ == nullptr)
		return OpenResult::kError;
	try
	{
		if (protected_form(sealed) != ProtectedForm::kSealed)
			return OpenResult::kMalformed;
		std::string_view b64 = sealed.substr(kSealedPrefix.size());

		if (b64.size() > static_cast<size_t>(INT_MAX))
			return OpenResult::kMalformed;
		std::vector<uint8_t> raw(b64.size() / 4 * 3);
		long long	n = base64_check(b64, raw.data());

		if (n < static_cast<long long>(kSealedOverhead))
			return OpenResult::kMalformed;
		raw.resize(static_cast<size_t>(n));

		KeyId		id;

		std::memcpy(id.data(), raw.data(), SA_KEY_ID_LEN);
		if (id != id_)
		{
			if (other != nullptr)
				*other = id;
			return OpenResult::kOtherKey;
		}
		const uint8_t *eph = raw.data() + SA_KEY_ID_LEN;
		const uint8_t *nonce = eph + SA_PROTECT_KEY_LEN;
		const uint8_t *ct = nonce + kSealedNonceLen;
		const size_t ctlen = raw.size() - kSealedOverhead;
		const uint8_t *tag = ct + ctlen;
		uint8_t		key[kAeadKeyLen];

		ERR_clear_error();
		if (!derive(eph, key))
			return OpenResult::kNotAuthentic;

		std::string out(ctlen, '\0');
		int			len = 0;
		bool		ok = EVP_DecryptInit_ex2(ctx_, cipher_, key, nonce, nullptr) == 1 &&
			EVP_DecryptUpdate(ctx_, nullptr, &len, raw.data(), SA_KEY_ID_LEN + SA_PROTECT_KEY_LEN) == 1 &&
			EVP_DecryptUpdate(ctx_, reinterpret_cast<uint8_t *>(out.data()), &len, ct,
							  static_cast<int>(ctlen)) == 1 &&
			static_cast<size_t>(len) <= ctlen;

		OPENSSL_cleanse(key, sizeof(key));
		if (!ok)
		{
			ERR_clear_error();
			return OpenResult::kError;
		}
		int			fin = 0;
		size_t		got = static_cast<size_t>(len);

		if (EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_GCM_SET_TAG, static_cast<int>(kSealedTagLen),
								const_cast<uint8_t *>(tag)) != 1 ||
			EVP_DecryptFinal_ex(ctx_, reinterpret_cast<uint8_t *>(out.data()) + got, &fin) != 1)
		{
			ERR_clear_error();
			OPENSSL_cleanse(out.data(), out.size());
			return OpenResult::kNotAuthentic;
		}
		out.resize(got + static_cast<size_t>(fin));
		clear.swap(out);
		OPENSSL_cleanse(out.data(), out.size());
		return OpenResult::kOpened;
	}
	catch (...)
	{
		ERR_clear_error();
		return OpenResult::kError;
	}
}

}								/* namespace sensitive_audit */

/* ---- sa_core.h ---------------------------------------------------------------- */

using namespace sensitive_audit;

struct sa_sealer
{
	uint8_t		recipient[SA_PROTECT_KEY_LEN] = {};
	KeyId		key_id{};
	uint8_t		eph_pub[SA_PROTECT_KEY_LEN] = {};
	uint8_t		aead_key[kAeadKeyLen] = {};
	uint8_t		nonce[kSealedNonceLen] = {};	/* the next one, when fixed */
	bool		fixed = false;
	uint64_t	used = 0;		/* values sealed under the current ephemeral key */
	EVP_CIPHER *cipher = nullptr;
	EVP_CIPHER_CTX *ctx = nullptr;
	EVP_KDF    *kdf = nullptr;
	std::vector<uint8_t> buf;	/* the binary sealed value; only grows */

	~sa_sealer()
	{
		OPENSSL_cleanse(aead_key, sizeof(aead_key));
		EVP_CIPHER_CTX_free(ctx);
		EVP_CIPHER_free(cipher);
		EVP_KDF_free(kdf);
	}

	/* A new ephemeral key (ephemeral_private, or a random one) and its AES key. */
	void		rekey(const uint8_t *ephemeral_private)
	{
		uint8_t		priv[SA_PROTECT_KEY_LEN];

		if (ephemeral_private != nullptr)
			std::memcpy(priv, ephemeral_private, sizeof(priv));
		else if (RAND_priv_bytes(priv, sizeof(priv)) != 1)
			crypto_fail();
		EVP_PKEY   *eph = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, priv, sizeof(priv));

		OPENSSL_cleanse(priv, sizeof(priv));
		if (eph == nullptr)
			crypto_fail();
		size_t		len = sizeof(eph_pub);
		uint8_t		shared[32];
		bool		ok = EVP_PKEY_get_raw_public_key(eph, eph_pub, &len) == 1 && len == sizeof(eph_pub);

		ok = ok && x25519_shared(eph, recipient, shared);
		EVP_PKEY_free(eph);
		if (!ok)
		{
			OPENSSL_cleanse(shared, sizeof(shared));
			/* A recipient key of low order: nothing sealed to it could be secret. */
			throw CoreError(SA_ERR_KEY);
		}
		try
		{
			hkdf_key(kdf, shared, eph_pub, recipient, aead_key);
		}
		catch (...)
		{
			OPENSSL_cleanse(shared, sizeof(shared));
			throw;
		}
		OPENSSL_cleanse(shared, sizeof(shared));
		used = 0;
	}
};

namespace
{

sa_sealer  *
make_sealer(const uint8_t *recipient, const uint8_t *ephemeral_private, const uint8_t *nonce)
{
	if (recipient == nullptr)
		return nullptr;
	sa_sealer  *s = nullptr;

	try
	{
		ERR_clear_error();
		s = new sa_sealer();
		std::memcpy(s->recipient, recipient, SA_PROTECT_KEY_LEN);
		s->key_id = x25519_key_id(recipient);
		s->kdf = fetch_hkdf();
		s->cipher = fetch_gcm();
		s->ctx = EVP_CIPHER_CTX_new();
		if (s->ctx == nullptr)
			crypto_fail();
		if (ephemeral_private != nullptr)
		{
			s->fixed = true;
			std::memcpy(s->nonce, nonce, kSealedNonceLen);
		}
		s->rekey(ephemeral_private);
		return s;
	}
	catch (...)
	{
		ERR_clear_error();
		delete s;
		return nullptr;
	}
}

}								/* namespace */

extern "C" {

int
sa_fingerprint_text(const uint8_t key[SA_PROTECT_KEY_LEN], const char *value, size_t len, char *out)
{
	if (key == nullptr || out == nullptr || (value == nullptr && len != 0))
		return SA_ERR_INTERNAL;
	return guarded([&] {
		static const uint8_t empty = 0;
		uint8_t		mac[EVP_MAX_MD_SIZE];
		unsigned int maclen = 0;

		ERR_clear_error();
		if (HMAC(EVP_sha256(), key, SA_PROTECT_KEY_LEN,
				 len == 0 ? &empty : reinterpret_cast<const uint8_t *>(value), len,
				 mac, &maclen) == nullptr || maclen != SA_DIGEST_LEN)
			crypto_fail();
		std::memcpy(out, SA_FINGERPRINT_PREFIX, kFingerprintPrefix.size());
		hex_into(mac, SA_DIGEST_LEN, out + kFingerprintPrefix.size());
		out[SA_FINGERPRINT_TEXT_LEN] = '\0';
	});
}

int
sa_fingerprint_column_key(const uint8_t database_key[SA_PROTECT_KEY_LEN],
						  const uint8_t column_salt[SA_COLUMN_SALT_LEN], uint8_t out[SA_PROTECT_KEY_LEN])
{
	if (database_key == nullptr || column_salt == nullptr || out == nullptr)
		return SA_ERR_INTERNAL;
	return guarded([&] {
		static const char label[] = "sensitive_audit fingerprint column";	/* and its NUL */
		uint8_t		msg[sizeof(label) + SA_COLUMN_SALT_LEN];
		unsigned int maclen = 0;

		std::memcpy(msg, label, sizeof(label));
		std::memcpy(msg + sizeof(label), column_salt, SA_COLUMN_SALT_LEN);
		ERR_clear_error();
		if (HMAC(EVP_sha256(), database_key, SA_PROTECT_KEY_LEN, msg, sizeof(msg), out, &maclen) == nullptr
			|| maclen != SA_DIGEST_LEN)
			crypto_fail();
	});
}

int
sa_commitment_text(const uint8_t salt[SA_PROTECT_KEY_LEN], const char *value, size_t len, char *out)
{
	if (salt == nullptr || out == nullptr || (value == nullptr && len != 0))
		return SA_ERR_INTERNAL;
	return guarded([&] {
		uint8_t		d[SA_DIGEST_LEN];
		unsigned int dlen = 0;
		EVP_MD_CTX *ctx = EVP_MD_CTX_new();
		bool		ok = ctx != nullptr && EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) == 1 &&
			EVP_DigestUpdate(ctx, kCommitmentDomain, sizeof(kCommitmentDomain)) == 1 &&
			EVP_DigestUpdate(ctx, salt, SA_PROTECT_KEY_LEN) == 1 &&
			(len == 0 || EVP_DigestUpdate(ctx, value, len) == 1) &&
			EVP_DigestFinal_ex(ctx, d, &dlen) == 1 && dlen == SA_DIGEST_LEN;

		EVP_MD_CTX_free(ctx);
		if (!ok)
			crypto_fail();
		std::memcpy(out, SA_COMMITMENT_PREFIX, kCommitmentPrefix.size());
		hex_into(d, SA_DIGEST_LEN, out + kCommitmentPrefix.size());
		out[SA_COMMITMENT_TEXT_LEN] = '\0';
	});
}

int
sa_random_bytes(uint8_t *out, size_t n)
{
	if ((out == nullptr && n != 0) || n > static_cast<size_t>(INT_MAX))
		return SA_ERR_INTERNAL;
	if (n == 0)
		return SA_OK;
	if (RAND_bytes(out, static_cast<int>(n)) != 1)
	{
		ERR_clear_error();
		return SA_ERR_CRYPTO;
	}
	return SA_OK;
}

int
sa_x25519_public_from_pem(const char *pem, size_t len, uint8_t pub[SA_PROTECT_KEY_LEN],
						  char key_id_hex_out[2 * SA_KEY_ID_LEN + 1])
{
	if (pem == nullptr || pub == nullptr || key_id_hex_out == nullptr)
		return SA_ERR_INTERNAL;
	return guarded([&] {
		ERR_clear_error();
		BIO		   *bio = pem_bio(std::string_view(pem, len), "PUBLIC KEY");
		EVP_PKEY   *k = PEM_read_bio_PUBKEY(bio, nullptr, no_password, nullptr);

		BIO_free(bio);
		uint8_t		raw[SA_PROTECT_KEY_LEN];
		size_t		rlen = sizeof(raw);
		bool		ok = k != nullptr && EVP_PKEY_get_id(k) == EVP_PKEY_X25519 &&
			EVP_PKEY_get_raw_public_key(k, raw, &rlen) == 1 && rlen == sizeof(raw);

		EVP_PKEY_free(k);
		if (!ok)
		{
			ERR_clear_error();
			throw CoreError(SA_ERR_KEY);
		}
		KeyId		id = x25519_key_id(raw);

		std::memcpy(pub, raw, sizeof(raw));
		hex_into(id.data(), id.size(), key_id_hex_out);
		key_id_hex_out[2 * SA_KEY_ID_LEN] = '\0';
	});
}

sa_sealer  *
sa_sealer_create(const uint8_t recipient[SA_PROTECT_KEY_LEN])
{
	return make_sealer(recipient, nullptr, nullptr);
}

sa_sealer  *
sa_sealer_create_fixed(const uint8_t recipient[SA_PROTECT_KEY_LEN],
					   const uint8_t ephemeral_private[SA_PROTECT_KEY_LEN],
					   const uint8_t nonce[12])
{
	if (ephemeral_private == nullptr || nonce == nullptr)
		return nullptr;
	return make_sealer(recipient, ephemeral_private, nonce);
}

void
sa_sealer_destroy(sa_sealer *s)
{
	/* The destructor only wipes and frees memory and cannot throw. */
	delete s;
}

size_t
sa_sealed_text_len(size_t len)
{
	if (len > kMaxSealLen)
		return 0;
	return kSealedPrefix.size() + (kSealedOverhead + len + 2) / 3 * 4;
}

int
sa_seal_text(sa_sealer *s, const char *value, size_t len, char *out, size_t cap, size_t *out_len)
{
	if (s == nullptr || out == nullptr || out_len == nullptr || (value == nullptr && len != 0))
		return SA_ERR_INTERNAL;
	if (len > kMaxSealLen)
		return SA_ERR_RANGE;
	const size_t need = sa_sealed_text_len(len);

	if (cap < need + 1)
		return SA_ERR_SPACE;
	return guarded([&] {
		ERR_clear_error();
		/* A fixed sealer (test vectors) keeps its one ephemeral key. */
		if (!s->fixed && s->used >= kValuesPerEphemeralKey)
			s->rekey(nullptr);

		const size_t rawlen = kSealedOverhead + len;

		if (s->buf.size() < rawlen)
			s->buf.resize(rawlen);
		uint8_t    *p = s->buf.data();
		uint8_t    *nonce = p + SA_KEY_ID_LEN + SA_PROTECT_KEY_LEN;
		uint8_t    *ct = nonce + kSealedNonceLen;

		std::memcpy(p, s->key_id.data(), SA_KEY_ID_LEN);
		std::memcpy(p + SA_KEY_ID_LEN, s->eph_pub, SA_PROTECT_KEY_LEN);
		if (s->fixed)
		{
			std::memcpy(nonce, s->nonce, kSealedNonceLen);
			increment_nonce(s->nonce);
		}
		else if (RAND_bytes(nonce, static_cast<int>(kSealedNonceLen)) != 1)
			crypto_fail();

		int			n = 0, fin = 0;
		bool		ok = EVP_EncryptInit_ex2(s->ctx, s->cipher, s->aead_key, nonce, nullptr) == 1 &&
			EVP_EncryptUpdate(s->ctx, nullptr, &n, p, SA_KEY_ID_LEN + SA_PROTECT_KEY_LEN) == 1 &&
			(len == 0 || EVP_EncryptUpdate(s->ctx, ct, &n, reinterpret_cast<const uint8_t *>(value),
										   static_cast<int>(len)) == 1) &&
			(len == 0 || static_cast<size_t>(n) == len) &&
			EVP_EncryptFinal_ex(s->ctx, ct + len, &fin) == 1 && fin == 0 &&
			EVP_CIPHER_CTX_ctrl(s->ctx, EVP_CTRL_GCM_GET_TAG, static_cast<int>(kSealedTagLen),
								ct + len) == 1;

		if (!ok)
			crypto_fail();
		s->used++;

		std::memcpy(out, SA_SEALED_PREFIX, kSealedPrefix.size());
		size_t		w = kSealedPrefix.size() + base64_into(p, rawlen, out + kSealedPrefix.size());

		/* (The reused buffer holds only ciphertext: no clear value lingers in it.) */
		if (w != need)
			throw CoreError(SA_ERR_INTERNAL);
		out[w] = '\0';
		*out_len = w;
	});
}

}								/* extern "C" */
