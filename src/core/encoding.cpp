/*
 * encoding.cpp — writes the canonical encoding of an entry (formats 1 and
 * 2, which are laid out alike).
 *
 * Layout (docs/FORMAT.md is the normative description):
 *
 *   "sensitive_audit entry" NUL          22 bytes, domain separation
 *   format                              u16 big-endian, 1 or 2
 *   chain, seq, txid                    u32, u64, u64 big-endian
 *   event_time                          i64 big-endian two's complement
 *   13 text fields                      each: 0x00 (NULL)
 *                                         or 0x01, u32 big-endian length, bytes
 *   backend_pid                         i32 big-endian two's complement
 *   prev_hash                           32 raw bytes
 *
 * The fields, their order and their types are those of SA_ENTRY_FIELDS
 * (entry_fields.h), which this encoder reads: each is written as its type
 * says (put_field below).
 *
 * Every variable-length field carries its own presence byte and length, so
 * NULL and '' encode differently and no byte can move from one field into
 * its neighbour without changing the encoding.
 *
 * This runs once per entry on both capture and verification, so it sizes the
 * output first, grows the caller's buffer at most once, and then writes with
 * a bare pointer: no allocation once the buffer is warm.
 */
#include "cpp_only.hpp"

#include "encoding.hpp"

#include <cstring>
#include <limits>

#include "core_error.hpp"

namespace sensitive_audit
{

namespace
{

/*
 * Fixed-width part: format, chain, seq, txid, event_time, backend_pid,
 * prev_hash, each as wide as its member (2 + 4 + 8 + 8 + 8 + 4 + 32).
 */
#define SA_FIXED_SIZE_(name, ctype, dims) + sizeof(ctype dims)
constexpr size_t kFixedLen = 0 SA_ENTRY_FIELDS(SA_FIXED_SIZE_, SA_FIELD_NONE, SA_FIELD_NONE);
#undef SA_FIXED_SIZE_
static_assert(kFixedLen == 2 + 4 + 8 + 8 + 8 + 4 + SA_DIGEST_LEN, "FORMAT.md section 2");

inline uint8_t *
put_u16(uint8_t *p, uint16_t v)
{
	p[0] = static_cast<uint8_t>(v >> 8);
	p[1] = static_cast<uint8_t>(v);
	return p + 2;
}

inline uint8_t *
put_u32(uint8_t *p, uint32_t v)
{
	p[0] = static_cast<uint8_t>(v >> 24);
	p[1] = static_cast<uint8_t>(v >> 16);
	p[2] = static_cast<uint8_t>(v >> 8);
	p[3] = static_cast<uint8_t>(v);
	return p + 4;
}

inline uint8_t *
put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = static_cast<uint8_t>(v >> (56 - 8 * i));
	return p + 8;
}

/*
 * One field, written as its type says (FORMAT.md section 2): unsigned and
 * signed integers big-endian, signed ones in two's complement (conversion
 * to unsigned is modular by definition), the digest as raw bytes, a text
 * field as its presence byte, then (when present) u32 length and bytes.
 */
inline uint8_t *put_field(uint8_t *p, uint16_t v) { return put_u16(p, v); }
inline uint8_t *put_field(uint8_t *p, uint32_t v) { return put_u32(p, v); }
inline uint8_t *put_field(uint8_t *p, uint64_t v) { return put_u64(p, v); }
inline uint8_t *put_field(uint8_t *p, int32_t v) { return put_u32(p, static_cast<uint32_t>(v)); }
inline uint8_t *put_field(uint8_t *p, int64_t v) { return put_u64(p, static_cast<uint64_t>(v)); }

inline uint8_t *
put_field(uint8_t *p, const uint8_t (&digest)[SA_DIGEST_LEN])
{
	std::memcpy(p, digest, SA_DIGEST_LEN);
	return p + SA_DIGEST_LEN;
}

inline uint8_t *
put_field(uint8_t *p, const sa_bytes &b)
{
	if (b.is_null)
		*p++ = 0;
	else
	{
		*p++ = 1;
		p = put_u32(p, static_cast<uint32_t>(b.len));
		if (b.len > 0)
			std::memcpy(p, b.data, b.len);
		p += b.len;
	}
	return p;
}

/*
 * Checks one text field and returns the bytes it takes in the encoding.  A
 * non-NULL field with len > 0 and no data is a caller bug; a field of 4 GiB
 * or more cannot be described by the u32 length (PostgreSQL's own 1 GB
 * varlena limit keeps real values far below that).
 */
inline size_t
text_field_length(const sa_bytes &b)
{
	if (b.is_null)
		return 1;
	if (b.len > std::numeric_limits<uint32_t>::max() ||
		(b.len > 0 && b.data == nullptr))
		throw CoreError(SA_ERR_INTERNAL);
	return 1 + 4 + b.len;
}

}								/* namespace */

size_t
encoded_length(const sa_entry &e)
{
	if (e.format != SA_FORMAT_VERSION && e.format != SA_FORMAT_PROTECTED)
		throw CoreError(SA_ERR_FORMAT);

	size_t		len = kEntryDomainLen + kFixedLen;

	for (auto field : kEntryTextFields)
		len += text_field_length(e.*field);
	return len;
}

size_t
encode_entry(const sa_entry &e, std::vector<uint8_t> &buf)
{
	const size_t len = encoded_length(e);

	if (buf.size() < len)
		buf.resize(len);

	uint8_t    *p = buf.data();

	std::memcpy(p, kEntryDomain, kEntryDomainLen);
	p += kEntryDomainLen;
#define SA_PUT_FIELD_(name, ...) p = put_field(p, e.name);
	SA_ENTRY_FIELDS(SA_PUT_FIELD_, SA_PUT_FIELD_, SA_PUT_FIELD_)
#undef SA_PUT_FIELD_

	if (static_cast<size_t>(p - buf.data()) != len)
		throw CoreError(SA_ERR_INTERNAL);	/* cannot happen; never hash a torn encoding */
	return len;
}

}								/* namespace sensitive_audit */
