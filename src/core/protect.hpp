/*
 * protect.hpp — protected values (format 2, docs/FORMAT.md §11): the C++
 * side of what sa_core.h exports, for the command-line program and the
 * verifier.
 *
 * The extension protects values through sa_core.h (fingerprints, salted
 * commitments, sealing to an X25519 public key).  What only a holder of
 * the private key does, opening sealed values, lives here: the database
 * never sees the private key, so the backend never needs it.
 *
 * Every function is noexcept.  An X25519Opener owns OpenSSL objects and
 * the private key; it frees and wipes them in its destructor, so it must
 * not live in a backend (where destructors do not run across an error).
 */
#pragma once

#include "cpp_only.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "sa_core.h"

typedef struct evp_pkey_st EVP_PKEY;
typedef struct evp_cipher_st EVP_CIPHER;
typedef struct evp_cipher_ctx_st EVP_CIPHER_CTX;
typedef struct evp_kdf_st EVP_KDF;

namespace sensitive_audit
{

/* The fixed parts of a sealed value's bytes (after base64 decoding). */
inline constexpr size_t kSealedNonceLen = 12;
inline constexpr size_t kSealedTagLen = 16;
inline constexpr size_t kSealedHeaderLen = SA_KEY_ID_LEN + SA_PROTECT_KEY_LEN + kSealedNonceLen;
inline constexpr size_t kSealedOverhead = kSealedHeaderLen + kSealedTagLen;	/* 68 */
inline constexpr char kSealedInfo[] = "sensitive_audit sealed value";	/* HKDF info, 28 bytes */
inline constexpr char kCommitmentDomain[] = "sensitive_audit erasable";	/* + its NUL: 25 bytes */

using KeyId = std::array<uint8_t, SA_KEY_ID_LEN>;

/* The key id of a raw X25519 public key: SHA-256(pub)[0..8). */
KeyId		x25519_key_id(const uint8_t pub[SA_PROTECT_KEY_LEN]) noexcept;
std::string key_id_hex(const KeyId &id);

/* Which of the three protected forms a value holds. */
enum class ProtectedForm
{
	kFingerprint,				/* "hmac-sha256:" 64 lowercase hex */
	kCommitment,				/* "sha256-salted:" 64 lowercase hex */
	kSealed,					/* "x25519-aes256gcm:" canonical padded base64, >= 68 bytes */
	kMalformed,					/* none of them, or one with a wrong body */
};

/*
 * Classifies v by its prefix and checks the syntax of its body (hex digits
 * and length; base64 alphabet, padding, zero spare bits, at least 68
 * decoded bytes).  Allocates nothing: the verifier calls it per value.
 */
ProtectedForm protected_form(std::string_view v) noexcept;

/*
 * The key id a sealed text is sealed to; false when v is not a
 * well-formed sealed text.
 */
bool		sealed_key_id(std::string_view v, KeyId &out) noexcept;

/* What opening a sealed value found. */
enum class OpenResult
{
	kOpened,					/* authentic: clear holds the value */
	kMalformed,					/* not a well-formed sealed text */
	kOtherKey,					/* sealed to another key id (*other set) */
	kNotAuthentic,				/* sealed to this key id but does not authenticate */
	kError,						/* OpenSSL or memory failure */
};

/*
 * Opens values sealed to one X25519 private key.  Derived AES keys are
 * cached per ephemeral public key (one sealer uses one for up to 2^20
 * values), so opening a log costs about one AES-GCM decryption per value.
 */
class X25519Opener
{
public:
	X25519Opener() = default;
	~X25519Opener();
	X25519Opener(const X25519Opener &) = delete;
	X25519Opener &operator=(const X25519Opener &) = delete;

	/*
	 * An X25519 private key as PKCS#8 PEM ("-----BEGIN PRIVATE KEY-----",
	 * what `openssl genpkey -algorithm X25519` writes; unencrypted).
	 * SA_ERR_KEY for anything else: another algorithm, an encrypted or a
	 * public key, bad PEM, text around the PEM block.
	 */
	int			load_private_pem(std::string_view pem) noexcept;

	bool		loaded() const noexcept { return key_ != nullptr; }
	const std::array<uint8_t, SA_PROTECT_KEY_LEN> &public_key() const noexcept { return pub_; }
	const KeyId &key_id() const noexcept { return id_; }

	/* clear receives the value on kOpened; other (if given) the key id on kOtherKey. */
	OpenResult	open(std::string_view sealed, std::string &clear, KeyId *other = nullptr) noexcept;

private:
	bool		derive(const uint8_t eph[SA_PROTECT_KEY_LEN], uint8_t key[32]);
	void		release() noexcept;

	EVP_PKEY   *key_ = nullptr;
	EVP_CIPHER *cipher_ = nullptr;
	EVP_CIPHER_CTX *ctx_ = nullptr;
	EVP_KDF    *kdf_ = nullptr;
	std::array<uint8_t, SA_PROTECT_KEY_LEN> pub_{};
	KeyId		id_{};
	std::map<std::array<uint8_t, SA_PROTECT_KEY_LEN>, std::array<uint8_t, 32>> keys_;
};

}								/* namespace sensitive_audit */
