/*
 * checkpoint.cpp — checkpoint bodies, signed notes and Ed25519 (see
 * checkpoint.hpp; the formats are C2SP's tlog-checkpoint and signed-note,
 * the product's body is in docs/FORMAT.md).
 *
 * Everything that reads text is written to accept one spelling only and to
 * say no early: the limits are checked before anything is copied, and any
 * doubt is SA_ERR_SYNTAX rather than a guess, because a verifier that is
 * lenient where the signer was not can be shown a text that means two
 * things.
 *
 * Ed25519 goes through OpenSSL's EVP_PKEY_ED25519 with EVP_DigestSign and
 * EVP_DigestVerify (no digest: Ed25519 hashes the message itself).  Its
 * handles are held by unique_ptrs for the length of one call; nothing here
 * calls back into PostgreSQL, so they are always freed.  OpenSSL's error
 * queue is emptied before and after, as digest.cpp explains.
 */
#include "cpp_only.hpp"

#include "checkpoint.hpp"

#include "base64.hpp"

#include <cstring>
#include <limits>
#include <memory>
#include <new>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "core_error.hpp"
#include "digest.hpp"

namespace sensitive_audit
{

namespace
{

/* The em dash U+2014 and a space that open a signature line. */
constexpr char kSignaturePrefix[] = "\xe2\x80\x94 ";
constexpr size_t kSignaturePrefixLen = sizeof(kSignaturePrefix) - 1;

constexpr char kSignerKeyPrefix[] = "PRIVATE+KEY+";
constexpr char kChainLinePrefix[] = "chain ";

[[noreturn]] void
syntax_error()
{
	throw CoreError(SA_ERR_SYNTAX);
}

void
check(int rc)
{
	if (rc != SA_OK)
		throw CoreError(rc);
}

/* ---- Text ----------------------------------------------------------------- */

/*
 * Decodes the UTF-8 sequence at s[i], advancing i.  Rejects what RFC 3629
 * forbids: overlong forms, surrogates, code points above U+10FFFF.
 */
bool
next_code_point(std::string_view s, size_t &i, uint32_t &cp)
{
	const uint8_t c = static_cast<uint8_t>(s[i]);
	size_t		n;
	uint32_t	min;

	if (c < 0x80)
	{
		cp = c;
		i++;
		return true;
	}
	if (c >= 0xc2 && c <= 0xdf)
	{
		n = 1;
		cp = c & 0x1f;
		min = 0x80;
	}
	else if (c >= 0xe0 && c <= 0xef)
	{
		n = 2;
		cp = c & 0x0f;
		min = 0x800;
	}
	else if (c >= 0xf0 && c <= 0xf4)
	{
		n = 3;
		cp = c & 0x07;
		min = 0x10000;
	}
	else
		return false;
	if (s.size() - i - 1 < n)
		return false;
	for (size_t j = 1; j <= n; j++)
	{
		const uint8_t cc = static_cast<uint8_t>(s[i + j]);

		if ((cc & 0xc0) != 0x80)
			return false;
		cp = cp << 6 | (cc & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return false;
	i += n + 1;
	return true;
}

/* What signed-note allows in a note: UTF-8, no control characters but newline. */
bool
valid_note_chars(std::string_view s)
{
	size_t		i = 0;
	uint32_t	cp;

	while (i < s.size())
	{
		if (!next_code_point(s, i, cp))
			return false;
		if (cp < 0x20 && cp != '\n')
			return false;
	}
	return true;
}

/* Unicode White_Space, as Go's unicode.IsSpace (which the reference note code uses). */
bool
is_unicode_space(uint32_t cp)
{
	switch (cp)
	{
		case '\t':
		case '\n':
		case '\v':
		case '\f':
		case '\r':
		case ' ':
		case 0x85:
		case 0xa0:
		case 0x1680:
		case 0x2028:
		case 0x2029:
		case 0x202f:
		case 0x205f:
		case 0x3000:
			return true;
		default:
			return cp >= 0x2000 && cp <= 0x200a;
	}
}

/* Decimal without sign or leading zeros ("0" itself is fine), fitting 64 bits. */
bool
parse_decimal(std::string_view s, uint64_t &out)
{
	constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
	uint64_t	v = 0;

	if (s.empty() || (s.size() > 1 && s[0] == '0'))
		return false;
	for (char c : s)
	{
		if (c < '0' || c > '9')
			return false;

		const uint64_t d = static_cast<uint64_t>(c - '0');

		if (v > (kMax - d) / 10)
			return false;
		v = v * 10 + d;
	}
	out = v;
	return true;
}

/* Splits text into lines; every line, the last included, must end in '\n'. */
std::vector<std::string_view>
split_lines(std::string_view text, size_t max_lines)
{
	std::vector<std::string_view> lines;

	if (text.empty() || text.back() != '\n')
		syntax_error();
	size_t		start = 0;

	while (start < text.size())
	{
		const size_t end = text.find('\n', start);

		if (lines.size() == max_lines)
			syntax_error();
		lines.push_back(text.substr(start, end - start));
		start = end + 1;
	}
	return lines;
}

std::string
hex8(uint32_t v)
{
	static const char digits[] = "0123456789abcdef";
	std::string s(8, '0');

	for (int i = 7; i >= 0; i--, v >>= 4)
		s[static_cast<size_t>(i)] = digits[v & 15];
	return s;
}

bool
parse_hex8(std::string_view s, uint32_t &out)
{
	uint32_t	v = 0;

	if (s.size() != 8)
		return false;
	for (char c : s)
	{
		uint32_t	d;

		if (c >= '0' && c <= '9')
			d = static_cast<uint32_t>(c - '0');
		else if (c >= 'a' && c <= 'f')
			d = static_cast<uint32_t>(c - 'a' + 10);
		else
			return false;
		v = v << 4 | d;
	}
	out = v;
	return true;
}

inline uint32_t
get_u32(const uint8_t *p)
{
	return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 |
		static_cast<uint32_t>(p[2]) << 8 | static_cast<uint32_t>(p[3]);
}

inline void
put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 3; i >= 0; i--, v >>= 8)
		p[i] = static_cast<uint8_t>(v);
}

inline void
put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = static_cast<uint8_t>(v);
}

/* ---- Base64 --------------------------------------------------------------- */

std::string
to_base64(const uint8_t *p, size_t len)
{
	std::string out;

	out.reserve((len + 2) / 3 * 4);
	for (size_t i = 0; i < len; i += 3)
	{
		const size_t n = len - i < 3 ? len - i : 3;
		uint32_t	v = static_cast<uint32_t>(p[i]) << 16;

		if (n > 1)
			v |= static_cast<uint32_t>(p[i + 1]) << 8;
		if (n > 2)
			v |= p[i + 2];
		out.push_back(kBase64Alphabet[v >> 18 & 63]);
		out.push_back(kBase64Alphabet[v >> 12 & 63]);
		out.push_back(n > 1 ? kBase64Alphabet[v >> 6 & 63] : '=');
		out.push_back(n > 2 ? kBase64Alphabet[v & 63] : '=');
	}
	return out;
}


/*
 * Only the canonical form: whole quads, '=' only as the padding of the last
 * one, and the spare low bits before the padding zero.  Otherwise several
 * texts would decode to the same bytes.
 */
std::vector<uint8_t>
from_base64(std::string_view s)
{
	std::vector<uint8_t> out;

	if (s.size() % 4 != 0)
		syntax_error();
	out.reserve(s.size() / 4 * 3);
	for (size_t i = 0; i < s.size(); i += 4)
	{
		const bool	last = i + 4 == s.size();
		size_t		pad = 0;

		if (last && s[i + 3] == '=')
			pad = s[i + 2] == '=' ? 2 : 1;

		uint32_t	v = 0;

		for (size_t j = 0; j < 4; j++)
		{
			int			d = 0;

			if (j < 4 - pad)
			{
				d = base64_value(s[i + j]);
				if (d < 0)
					syntax_error();
			}
			v = v << 6 | static_cast<uint32_t>(d);
		}
		if ((pad == 1 && (v & 0xff) != 0) || (pad == 2 && (v & 0xffff) != 0))
			syntax_error();
		out.push_back(static_cast<uint8_t>(v >> 16));
		if (pad < 2)
			out.push_back(static_cast<uint8_t>(v >> 8));
		if (pad < 1)
			out.push_back(static_cast<uint8_t>(v));
	}
	return out;
}

Digest
digest_from_base64(std::string_view s)
{
	const std::vector<uint8_t> bytes = from_base64(s);
	Digest		d;

	if (bytes.size() != d.size())
		syntax_error();
	std::memcpy(d.data(), bytes.data(), d.size());
	return d;
}

/* ---- Ed25519 through OpenSSL ---------------------------------------------- */

struct PkeyFree
{
	void		operator() (EVP_PKEY *p) const { EVP_PKEY_free(p); }
};
struct MdCtxFree
{
	void		operator() (EVP_MD_CTX *c) const { EVP_MD_CTX_free(c); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

/* Clears OpenSSL's error queue on the way in and on every way out. */
class OpenSslScope
{
public:
	OpenSslScope() { ERR_clear_error(); }
	~OpenSslScope() { ERR_clear_error(); }
	OpenSslScope(const OpenSslScope &) = delete;
	OpenSslScope &operator=(const OpenSslScope &) = delete;
};

[[noreturn]] void
crypto_error()
{
	throw CoreError(SA_ERR_CRYPTO);
}

Pkey
private_pkey(const uint8_t private_key[kEd25519KeyLen])
{
	Pkey		k(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, private_key,
											   kEd25519KeyLen));

	if (!k)
		crypto_error();
	return k;
}

void
public_of(const uint8_t private_key[kEd25519KeyLen], uint8_t public_key[kEd25519KeyLen])
{
	OpenSslScope scope;
	Pkey		k = private_pkey(private_key);
	size_t		len = kEd25519KeyLen;

	if (EVP_PKEY_get_raw_public_key(k.get(), public_key, &len) != 1 || len != kEd25519KeyLen)
		crypto_error();
}

void
sign_bytes(const uint8_t private_key[kEd25519KeyLen], const void *msg, size_t len,
		   uint8_t signature[kEd25519SignatureLen])
{
	OpenSslScope scope;
	Pkey		k = private_pkey(private_key);
	MdCtx		ctx(EVP_MD_CTX_new());
	size_t		sig_len = kEd25519SignatureLen;

	if (!ctx ||
		EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, k.get()) != 1 ||
		EVP_DigestSign(ctx.get(), signature, &sig_len,
					   static_cast<const unsigned char *>(msg), len) != 1 ||
		sig_len != kEd25519SignatureLen)
		crypto_error();
}

/* True when the signature verifies; throws only when OpenSSL cannot check. */
bool
verify_bytes(const uint8_t public_key[kEd25519KeyLen], const void *msg, size_t len,
			 const uint8_t *signature, size_t signature_len)
{
	if (signature_len != kEd25519SignatureLen)
		return false;

	OpenSslScope scope;
	Pkey		k(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, public_key,
											  kEd25519KeyLen));
	MdCtx		ctx(EVP_MD_CTX_new());

	if (!k || !ctx ||
		EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, k.get()) != 1)
		crypto_error();

	/*
	 * 1 is a valid signature.  0 is an invalid one, and so, for this
	 * purpose, is a negative result (input OpenSSL could not process, such
	 * as a public key that is not a curve point): either way the note was
	 * not signed by this key.
	 */
	return EVP_DigestVerify(ctx.get(), signature, signature_len,
							static_cast<const unsigned char *>(msg), len) == 1;
}

uint32_t
key_id_of(std::string_view name, const uint8_t public_key[kEd25519KeyLen])
{
	std::vector<uint8_t> buf(name.begin(), name.end());
	uint8_t		d[SA_DIGEST_LEN];
	Sha256		sha;

	buf.push_back('\n');
	buf.push_back(kSignatureTypeEd25519);
	buf.insert(buf.end(), public_key, public_key + kEd25519KeyLen);
	sha.digest(buf.data(), buf.size(), d);
	return get_u32(d);
}

/* ---- Signed notes ------------------------------------------------------- */

void
check_note_text(std::string_view text)
{
	if (text.empty() || text.back() != '\n' || text.size() > kMaxNoteSize ||
		!valid_note_chars(text))
		syntax_error();
}

SignedNote
split_note(std::string_view note)
{
	if (note.size() > kMaxNoteSize || !valid_note_chars(note))
		syntax_error();

	/*
	 * Signature lines are never empty, so the last empty line of the note
	 * is the one that separates text from signatures; the text keeps its
	 * final newline.
	 */
	const size_t split = note.rfind("\n\n");

	if (split == std::string_view::npos)
		syntax_error();

	SignedNote	out;
	const std::vector<std::string_view> lines =
		split_lines(note.substr(split + 2), kMaxNoteSignatures);

	out.text.assign(note.substr(0, split + 1));
	for (std::string_view line : lines)
	{
		if (line.substr(0, kSignaturePrefixLen) != kSignaturePrefix)
			syntax_error();
		line.remove_prefix(kSignaturePrefixLen);

		const size_t space = line.find(' ');

		if (space == std::string_view::npos || !valid_key_name(line.substr(0, space)))
			syntax_error();

		std::vector<uint8_t> blob = from_base64(line.substr(space + 1));

		if (blob.size() < 5)	/* a key ID and at least one byte */
			syntax_error();

		NoteSignature sig;

		sig.name.assign(line.substr(0, space));
		sig.key_id = get_u32(blob.data());
		sig.signature.assign(blob.begin() + 4, blob.end());
		out.signatures.push_back(std::move(sig));
	}
	return out;
}

std::string
signature_line(const NoteSignature &sig)
{
	std::vector<uint8_t> blob(4);

	put_u32(blob.data(), sig.key_id);
	blob.insert(blob.end(), sig.signature.begin(), sig.signature.end());
	return std::string(kSignaturePrefix) + sig.name + " " + to_base64(blob.data(), blob.size()) +
		"\n";
}

/* Wipes a buffer that held key material on every way out of a scope. */
class Wipe
{
public:
	Wipe(void *p, size_t n) : p_(p), n_(n) {}
	~Wipe() { OPENSSL_cleanse(p_, n_); }
	Wipe(const Wipe &) = delete;
	Wipe &operator=(const Wipe &) = delete;

private:
	void	   *p_;
	size_t		n_;
};

/* "<name>+<hex8>+<base64>": the name has no '+', though the base64 may. */
void
split_key(std::string_view text, std::string_view &name, uint32_t &id,
		  std::vector<uint8_t> &blob)
{
	const size_t p1 = text.find('+');

	if (p1 == std::string_view::npos)
		syntax_error();

	const size_t p2 = text.find('+', p1 + 1);

	if (p2 == std::string_view::npos)
		syntax_error();
	name = text.substr(0, p1);
	if (!valid_key_name(name) || !parse_hex8(text.substr(p1 + 1, p2 - p1 - 1), id))
		syntax_error();
	blob = from_base64(text.substr(p2 + 1));
	if (blob.size() != 1 + kEd25519KeyLen || blob[0] != kSignatureTypeEd25519)
	{
		OPENSSL_cleanse(blob.data(), blob.size());
		syntax_error();
	}
}

/* ---- The product's body ------------------------------------------------- */

void
check_chain_order(const ChainHead *chains, size_t n)
{
	bool		have_prev = false;
	uint32_t	prev = 0;

	if (chains == nullptr && n != 0)
		throw CoreError(SA_ERR_INTERNAL);
	for (size_t i = 0; i < n; i++)
	{
		if (chains[i].size == 0)
			continue;
		if (have_prev && chains[i].chain <= prev)
			throw CoreError(SA_ERR_RANGE);
		prev = chains[i].chain;
		have_prev = true;
	}
}

Digest
records_root(const ChainHead *chains, size_t n)
{
	std::unique_ptr<MerkleBuilder> b = MerkleBuilder::create();
	Digest		root;

	if (!b)
		throw CoreError(SA_ERR_CRYPTO);
	for (size_t i = 0; i < n; i++)
	{
		uint8_t		record[kChainRecordLen];

		if (chains[i].size == 0)
			continue;
		encode_chain_record(chains[i], record);
		check(b->append_data(record, sizeof(record)));
	}
	check(b->root(root));
	return root;
}

/* "chain <chain> <size> <base64 root>" */
ChainHead
parse_chain_line(std::string_view line)
{
	ChainHead	head;
	uint64_t	chain;

	if (line.substr(0, sizeof(kChainLinePrefix) - 1) != kChainLinePrefix)
		syntax_error();
	line.remove_prefix(sizeof(kChainLinePrefix) - 1);

	const size_t s1 = line.find(' ');
	const size_t s2 = s1 == std::string_view::npos ? s1 : line.find(' ', s1 + 1);

	if (s2 == std::string_view::npos ||
		!parse_decimal(line.substr(0, s1), chain) ||
		chain > std::numeric_limits<uint32_t>::max() ||
		!parse_decimal(line.substr(s1 + 1, s2 - s1 - 1), head.size) || head.size == 0)
		syntax_error();
	head.chain = static_cast<uint32_t>(chain);
	head.root = digest_from_base64(line.substr(s2 + 1));
	return head;
}

}								/* namespace */

/* ---- Base64 ------------------------------------------------------------- */

int
base64_encode(const void *data, size_t len, std::string &out) noexcept
{
	if (data == nullptr && len != 0)
		return SA_ERR_INTERNAL;
	return guarded([&] {
		out = to_base64(static_cast<const uint8_t *>(data), len);
	});
}

int
base64_decode(std::string_view text, std::vector<uint8_t> &out) noexcept
{
	return guarded([&] {
		out = from_base64(text);
	});
}

/* ---- C2SP tlog-checkpoint ------------------------------------------------ */

int
encode_checkpoint(const Checkpoint &cp, std::string &out) noexcept
{
	return guarded([&] {
		if (cp.extensions.size() > kMaxCheckpointExtensions)
			syntax_error();

		std::string text = cp.origin + "\n" + std::to_string(cp.size) + "\n" +
			to_base64(cp.root.data(), cp.root.size()) + "\n";

		for (const std::string &ext : cp.extensions)
			text += ext + "\n";

		/*
		 * Parsing what was written checks every rule once, in one place:
		 * a line that is empty or holds a newline, a control character or
		 * bad UTF-8 does not come back the same.
		 */
		Checkpoint	back;

		check(parse_checkpoint(text, back));
		if (back.origin != cp.origin || back.extensions != cp.extensions)
			syntax_error();
		out.swap(text);
	});
}

int
parse_checkpoint(std::string_view text, Checkpoint &out) noexcept
{
	return guarded([&] {
		check_note_text(text);

		const std::vector<std::string_view> lines =
			split_lines(text, 3 + kMaxCheckpointExtensions);
		Checkpoint	cp;

		if (lines.size() < 3)
			syntax_error();
		for (std::string_view line : lines)
			if (line.empty())
				syntax_error();
		cp.origin.assign(lines[0]);
		if (!parse_decimal(lines[1], cp.size))
			syntax_error();
		cp.root = digest_from_base64(lines[2]);
		for (size_t i = 3; i < lines.size(); i++)
			cp.extensions.emplace_back(lines[i]);
		out = std::move(cp);
	});
}

/* ---- C2SP signed-note ---------------------------------------------------- */

bool
valid_key_name(std::string_view name) noexcept
{
	size_t		i = 0;
	uint32_t	cp;

	if (name.empty())
		return false;
	while (i < name.size())
	{
		if (!next_code_point(name, i, cp) || cp < 0x20 || cp == '+' || is_unicode_space(cp))
			return false;
	}
	return true;
}

int
parse_note(std::string_view note, SignedNote &out) noexcept
{
	return guarded([&] {
		out = split_note(note);
	});
}

int
encode_note(const SignedNote &note, std::string &out) noexcept
{
	return guarded([&] {
		if (note.signatures.empty() || note.signatures.size() > kMaxNoteSignatures)
			syntax_error();
		check_note_text(note.text);

		std::string text = note.text + "\n";

		for (const NoteSignature &sig : note.signatures)
		{
			if (!valid_key_name(sig.name) || sig.signature.empty())
				syntax_error();
			text += signature_line(sig);
		}
		if (text.size() > kMaxNoteSize)
			syntax_error();
		out.swap(text);
	});
}

int
ed25519_key_id(std::string_view name, const uint8_t public_key[kEd25519KeyLen],
			   uint32_t &out) noexcept
{
	if (public_key == nullptr)
		return SA_ERR_INTERNAL;
	return guarded([&] {
		out = key_id_of(name, public_key);
	});
}

int
make_verifier_key(std::string_view name, const uint8_t public_key[kEd25519KeyLen],
				  VerifierKey &out) noexcept
{
	if (public_key == nullptr)
		return SA_ERR_INTERNAL;
	return guarded([&] {
		VerifierKey k;

		if (!valid_key_name(name))
			syntax_error();
		k.name.assign(name);
		k.key_id = key_id_of(name, public_key);
		std::memcpy(k.public_key.data(), public_key, kEd25519KeyLen);
		out = std::move(k);
	});
}

int
encode_verifier_key(const VerifierKey &key, std::string &out) noexcept
{
	return guarded([&] {
		uint8_t		blob[1 + kEd25519KeyLen];

		if (!valid_key_name(key.name))
			syntax_error();
		blob[0] = kSignatureTypeEd25519;
		std::memcpy(blob + 1, key.public_key.data(), kEd25519KeyLen);
		out = key.name + "+" + hex8(key.key_id) + "+" + to_base64(blob, sizeof(blob));
	});
}

int
parse_verifier_key(std::string_view text, VerifierKey &out) noexcept
{
	return guarded([&] {
		std::string_view name;
		std::vector<uint8_t> blob;
		VerifierKey k;

		split_key(text, name, k.key_id, blob);
		std::memcpy(k.public_key.data(), blob.data() + 1, kEd25519KeyLen);
		/* The key ID is a checksum of name and key: a key that fails it was mistyped. */
		if (key_id_of(name, k.public_key.data()) != k.key_id)
			syntax_error();
		k.name.assign(name);
		out = std::move(k);
	});
}

int
encode_signer_key(const SignerKey &key, std::string &out) noexcept
{
	return guarded([&] {
		uint8_t		blob[1 + kEd25519KeyLen];
		Wipe		wipe_blob(blob, sizeof(blob));

		if (!valid_key_name(key.name))
			syntax_error();
		blob[0] = kSignatureTypeEd25519;
		std::memcpy(blob + 1, key.private_key.data(), kEd25519KeyLen);

		std::string encoded = to_base64(blob, sizeof(blob));
		Wipe		wipe_encoded(&encoded[0], encoded.size());

		out = kSignerKeyPrefix + key.name + "+" + hex8(key.key_id) + "+" + encoded;
	});
}

int
parse_signer_key(std::string_view text, SignerKey &out) noexcept
{
	return guarded([&] {
		const std::string_view prefix(kSignerKeyPrefix);

		if (text.substr(0, prefix.size()) != prefix)
			syntax_error();

		std::string_view name;
		std::vector<uint8_t> blob;
		SignerKey	k;
		Wipe		wipe_key(k.private_key.data(), k.private_key.size());
		uint8_t		pub[kEd25519KeyLen];

		split_key(text.substr(prefix.size()), name, k.key_id, blob);
		std::memcpy(k.private_key.data(), blob.data() + 1, kEd25519KeyLen);
		OPENSSL_cleanse(blob.data(), blob.size());
		public_of(k.private_key.data(), pub);
		/* The key ID is a checksum of name and key: a key that fails it was mistyped. */
		if (key_id_of(name, pub) != k.key_id)
			syntax_error();
		k.name.assign(name);
		out.name.swap(k.name);
		out.key_id = k.key_id;
		out.private_key = k.private_key;
	});
}

int
ed25519_public_key(const uint8_t private_key[kEd25519KeyLen],
				   uint8_t public_key[kEd25519KeyLen]) noexcept
{
	if (private_key == nullptr || public_key == nullptr)
		return SA_ERR_INTERNAL;
	return guarded([&] {
		public_of(private_key, public_key);
	});
}

int
ed25519_sign(const uint8_t private_key[kEd25519KeyLen], const void *msg, size_t len,
			 uint8_t signature[kEd25519SignatureLen]) noexcept
{
	if (private_key == nullptr || signature == nullptr || (msg == nullptr && len != 0))
		return SA_ERR_INTERNAL;
	return guarded([&] {
		sign_bytes(private_key, msg, len, signature);
	});
}

int
ed25519_verify(const uint8_t public_key[kEd25519KeyLen], const void *msg, size_t len,
			   const uint8_t *signature, size_t signature_len) noexcept
{
	if (public_key == nullptr || (signature == nullptr && signature_len != 0) ||
		(msg == nullptr && len != 0))
		return SA_ERR_INTERNAL;

	bool		ok = false;
	const int	rc = guarded([&] {
		ok = verify_bytes(public_key, msg, len, signature, signature_len);
	});

	if (rc != SA_OK)
		return rc;
	return ok ? SA_OK : SA_ERR_VERIFY;
}

int
sign_note(std::string_view text, std::string_view name,
		  const uint8_t private_key[kEd25519KeyLen], std::string &out) noexcept
{
	if (private_key == nullptr)
		return SA_ERR_INTERNAL;
	return guarded([&] {
		SignedNote	note;
		NoteSignature sig;
		uint8_t		pub[kEd25519KeyLen];

		check_note_text(text);
		if (!valid_key_name(name))
			syntax_error();
		public_of(private_key, pub);
		sig.name.assign(name);
		sig.key_id = key_id_of(name, pub);
		sig.signature.resize(kEd25519SignatureLen);
		sign_bytes(private_key, text.data(), text.size(), sig.signature.data());
		note.text.assign(text);
		note.signatures.push_back(std::move(sig));
		check(encode_note(note, out));
	});
}

int
verify_note(std::string_view note, const VerifierKey *keys, size_t nkeys, std::string *text,
			size_t *nverified) noexcept
{
	if (keys == nullptr && nkeys != 0)
		return SA_ERR_INTERNAL;
	return guarded([&] {
		const SignedNote parsed = split_note(note);
		size_t		verified = 0;

		for (const NoteSignature &sig : parsed.signatures)
		{
			const VerifierKey *key = nullptr;

			for (size_t i = 0; i < nkeys; i++)
			{
				if (keys[i].name != sig.name || keys[i].key_id != sig.key_id)
					continue;
				if (key != nullptr && key->public_key != keys[i].public_key)
					throw CoreError(SA_ERR_INTERNAL);	/* ambiguous key list */
				key = &keys[i];
			}
			if (key == nullptr)
				continue;		/* someone else's signature, e.g. a witness's */
			if (!verify_bytes(key->public_key.data(), parsed.text.data(), parsed.text.size(),
							  sig.signature.data(), sig.signature.size()))
				throw CoreError(SA_ERR_VERIFY);
			verified++;
		}
		if (verified == 0)
			throw CoreError(SA_ERR_NO_KEY);
		if (text != nullptr)
			*text = parsed.text;
		if (nverified != nullptr)
			*nverified = verified;
	});
}

/* ---- The checkpoint body of sensitive_audit ------------------------------ */

void
encode_chain_record(const ChainHead &head, uint8_t out[kChainRecordLen]) noexcept
{
	std::memcpy(out, kChainRecordDomain, kChainRecordDomainLen);
	put_u32(out + kChainRecordDomainLen, head.chain);
	put_u64(out + kChainRecordDomainLen + 4, head.size);
	std::memcpy(out + kChainRecordDomainLen + 12, head.root.data(), SA_DIGEST_LEN);
}

int
chain_records_root(const ChainHead *chains, size_t n, Digest &out) noexcept
{
	return guarded([&] {
		check_chain_order(chains, n);
		out = records_root(chains, n);
	});
}

bool
valid_log_id(std::string_view log_id) noexcept
{
	if (log_id.empty() || log_id.size() > kMaxLogIdLen)
		return false;
	for (char c : log_id)
	{
		const bool	ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			(c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';

		if (!ok)
			return false;
	}
	return true;
}

int
encode_log_checkpoint(std::string_view log_id, const ChainHead *chains, size_t n,
					  std::string &body) noexcept
{
	return guarded([&] {
		if (!valid_log_id(log_id))
			syntax_error();
		check_chain_order(chains, n);

		Checkpoint	cp;

		cp.origin = std::string(kOriginPrefix) + std::string(log_id);
		for (size_t i = 0; i < n; i++)
		{
			const ChainHead &h = chains[i];

			if (h.size == 0)
				continue;
			if (cp.size > std::numeric_limits<uint64_t>::max() - h.size)
				throw CoreError(SA_ERR_RANGE);
			cp.size += h.size;
			cp.extensions.push_back(kChainLinePrefix + std::to_string(h.chain) + " " +
									std::to_string(h.size) + " " +
									to_base64(h.root.data(), h.root.size()));
		}
		cp.root = records_root(chains, n);
		check(encode_checkpoint(cp, body));
	});
}

int
parse_log_checkpoint(std::string_view body, LogCheckpoint &out) noexcept
{
	return guarded([&] {
		Checkpoint	cp;
		LogCheckpoint lc;
		const std::string_view prefix(kOriginPrefix);

		check(parse_checkpoint(body, cp));
		if (cp.origin.compare(0, prefix.size(), prefix) != 0 ||
			!valid_log_id(std::string_view(cp.origin).substr(prefix.size())))
			syntax_error();
		lc.log_id = cp.origin.substr(prefix.size());
		lc.total = cp.size;
		lc.root = cp.root;

		uint64_t	sum = 0;

		for (const std::string &line : cp.extensions)
		{
			const ChainHead head = parse_chain_line(line);

			if (!lc.chains.empty() && head.chain <= lc.chains.back().chain)
				syntax_error();
			if (sum > std::numeric_limits<uint64_t>::max() - head.size)
				throw CoreError(SA_ERR_VERIFY);
			sum += head.size;
			lc.chains.push_back(head);
		}
		if (sum != lc.total)
			throw CoreError(SA_ERR_VERIFY);

		const Digest root = records_root(lc.chains.data(), lc.chains.size());

		if (root != lc.root)
			throw CoreError(SA_ERR_VERIFY);
		out = std::move(lc);
	});
}

}								/* namespace sensitive_audit */
