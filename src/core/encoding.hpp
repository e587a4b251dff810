/*
 * encoding.hpp — the canonical, byte-exact encoding of a log entry
 * (format versions 1 and 2).
 *
 * These are exactly the bytes that are hashed, so they are specified field
 * by field in docs/FORMAT.md and must never change for a format once
 * published: any change to what is encoded, or how, is a new format
 * version.  Format 2 (protected values, FORMAT.md §11) is laid out exactly
 * as format 1; only the version number and what old_value and new_value
 * hold differ.
 */
#pragma once

#include "cpp_only.hpp"

#include <cstddef>
#include <cstdint>
#include <vector>

#include "sa_core.h"

namespace sensitive_audit
{

/*
 * Domain-separation prefix: the ASCII text "sensitive_audit entry" and its
 * terminating zero byte, 22 bytes in all.  It keeps an entry's digest from
 * ever colliding with a digest that some other structure (a checkpoint, a
 * Merkle node) computes over similar-looking bytes.
 */
inline constexpr char kEntryDomain[] = "sensitive_audit entry";
inline constexpr size_t kEntryDomainLen = sizeof(kEntryDomain);	/* includes the NUL */

/* The nullable text fields of sa_entry, in encoding (= struct) order. */
#define SA_MEMBER_POINTER_(name, NAME, sqltype) &sa_entry::name,
inline constexpr sa_bytes sa_entry::*kEntryTextFields[] = {SA_TEXT_FIELDS(SA_MEMBER_POINTER_)};
#undef SA_MEMBER_POINTER_

/*
 * Length in bytes of the encoding of e.  Throws CoreError(SA_ERR_FORMAT)
 * for a format other than 1 or 2 and CoreError(SA_ERR_INTERNAL) for an sa_bytes
 * that cannot be encoded (no data but a nonzero length, or 4 GiB or more).
 */
size_t		encoded_length(const sa_entry &e);

/*
 * Encodes e into buf, growing buf if it is too small (it never shrinks, so a
 * buffer reused across entries stops allocating once it has seen the
 * largest).  Returns the number of bytes written at buf.data(); anything in
 * buf past that is stale.  Throws as encoded_length does.
 */
size_t		encode_entry(const sa_entry &e, std::vector<uint8_t> &buf);

}								/* namespace sensitive_audit */
