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
 *   13 text fields, struct order        each: 0x00 (NULL)
 *                                         or 0x01, u32 big-endian length, bytes
 *   backend_pid                         i32 big-endian two's complement
 *   prev_hash                           32 raw bytes
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

/* Fixed-width part: format, chain, seq, txid, event_time, backend_pid, prev_hash. */
constexpr size_t kFixedLen = 2 + 4 + 8 + 8 + 8 + 4 + SA_DIGEST_LEN;

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
	p = put_u16(p, e.format);
	p = put_u32(p, e.chain);
	p = put_u64(p, e.seq);
	p = put_u64(p, e.txid);
	/* Conversion to unsigned is modular, i.e. two's complement, by definition. */
	p = put_u64(p, static_cast<uint64_t>(e.event_time));
	for (auto field : kEntryTextFields)
	{
		const sa_bytes &b = e.*field;

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
	}
	p = put_u32(p, static_cast<uint32_t>(e.backend_pid));
	std::memcpy(p, e.prev_hash, SA_DIGEST_LEN);
	p += SA_DIGEST_LEN;

	if (static_cast<size_t>(p - buf.data()) != len)
		throw CoreError(SA_ERR_INTERNAL);	/* cannot happen; never hash a torn encoding */
	return len;
}

}								/* namespace sensitive_audit */
