/*
 * test_support.hpp — helpers shared by the unit tests of the pure C++ core.
 *
 * A TestEntry owns the text of every field, so tests can copy and mutate
 * entries freely and take an sa_entry view of one just before calling the
 * core.  The list of text fields is written out again here, independently
 * of the core's, so a field dropped or reordered in the encoder shows up
 * as a test failure rather than being mirrored by the test.
 */
#pragma once

#include "core/cpp_only.hpp"

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/sa_core.h"

namespace sa_test
{

using Digest = std::array<uint8_t, SA_DIGEST_LEN>;

/* Text fields of sa_entry, in the order docs/FORMAT.md gives them. */
enum TextField
{
	kOperation,
	kTableSchema,
	kTableName,
	kColumnName,
	kRowKey,
	kRowKeySource,
	kOldValue,
	kNewValue,
	kValueType,
	kSessionRole,
	kEffectiveRole,
	kApplicationName,
	kClientAddr,
	kNumTextFields
};

inline constexpr sa_bytes sa_entry::*kTextMembers[kNumTextFields] = {
	&sa_entry::operation,
	&sa_entry::table_schema,
	&sa_entry::table_name,
	&sa_entry::column_name,
	&sa_entry::row_key,
	&sa_entry::row_key_source,
	&sa_entry::old_value,
	&sa_entry::new_value,
	&sa_entry::value_type,
	&sa_entry::session_role,
	&sa_entry::effective_role,
	&sa_entry::application_name,
	&sa_entry::client_addr,
};

inline const char *const kTextFieldNames[kNumTextFields] = {
	"operation", "table_schema", "table_name", "column_name", "row_key",
	"row_key_source", "old_value", "new_value", "value_type", "session_role",
	"effective_role", "application_name", "client_addr",
};

struct TestEntry
{
	uint16_t	format = SA_FORMAT_VERSION;
	uint32_t	chain = 0;
	uint64_t	seq = 0;
	uint64_t	txid = 0;
	int64_t		event_time = 0;
	std::optional<std::string> text[kNumTextFields];
	int32_t		backend_pid = 0;
	Digest		prev_hash{};

	/* A view valid while this TestEntry lives and is not modified. */
	sa_entry
	view() const
	{
		sa_entry	e;

		std::memset(&e, 0, sizeof(e));
		e.format = format;
		e.chain = chain;
		e.seq = seq;
		e.txid = txid;
		e.event_time = event_time;
		for (int i = 0; i < kNumTextFields; i++)
		{
			sa_bytes   &b = e.*kTextMembers[i];

			if (text[i])
			{
				b.data = text[i]->data();
				b.len = text[i]->size();
				b.is_null = 0;
			}
			else
			{
				b.data = nullptr;
				b.len = 0;
				b.is_null = 1;
			}
		}
		e.backend_pid = backend_pid;
		std::memcpy(e.prev_hash, prev_hash.data(), SA_DIGEST_LEN);
		return e;
	}
};

inline std::string
to_hex(const uint8_t *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	std::string s;

	s.reserve(2 * n);
	for (size_t i = 0; i < n; i++)
	{
		s.push_back(digits[p[i] >> 4]);
		s.push_back(digits[p[i] & 15]);
	}
	return s;
}

inline std::string
to_hex(const Digest &d)
{
	return to_hex(d.data(), d.size());
}

inline std::vector<uint8_t>
from_hex(const std::string &hex)
{
	auto		nibble = [](char c) -> int {
		if (c >= '0' && c <= '9')
			return c - '0';
		if (c >= 'a' && c <= 'f')
			return c - 'a' + 10;
		throw std::invalid_argument("bad hex digit");
	};
	std::vector<uint8_t> out;

	if (hex.size() % 2 != 0)
		throw std::invalid_argument("odd hex length");
	for (size_t i = 0; i < hex.size(); i += 2)
		out.push_back(static_cast<uint8_t>(nibble(hex[i]) << 4 | nibble(hex[i + 1])));
	return out;
}

inline Digest
digest_from_hex(const std::string &hex)
{
	std::vector<uint8_t> v = from_hex(hex);
	Digest		d{};

	if (v.size() != d.size())
		throw std::invalid_argument("digest must be 32 bytes");
	std::memcpy(d.data(), v.data(), d.size());
	return d;
}

/* Hash and encoding through the C API, failing loudly on any error code. */
class Hasher
{
public:
	Hasher() : h_(sa_hasher_create())
	{
		if (h_ == nullptr)
			throw std::runtime_error("sa_hasher_create failed");
	}
	~Hasher() { sa_hasher_destroy(h_); }
	Hasher(const Hasher &) = delete;
	Hasher &operator=(const Hasher &) = delete;

	Digest
	hash(const TestEntry &t)
	{
		sa_entry	e = t.view();
		Digest		d{};
		int			rc = sa_entry_hash(h_, &e, d.data());

		if (rc != SA_OK)
			throw std::runtime_error(sa_strerror(rc));
		return d;
	}

	std::string
	encode_hex(const TestEntry &t)
	{
		sa_entry	e = t.view();
		const uint8_t *p = nullptr;
		size_t		n = 0;
		int			rc = sa_entry_encode(h_, &e, &p, &n);

		if (rc != SA_OK)
			throw std::runtime_error(sa_strerror(rc));
		return to_hex(p, n);
	}

	sa_hasher  *get() { return h_; }

private:
	sa_hasher  *h_;
};

/* An ordinary single-column UPDATE entry; each seq gives distinct values. */
inline TestEntry
make_entry(uint32_t chain, uint64_t seq)
{
	TestEntry	t;

	t.chain = chain;
	t.seq = seq;
	t.txid = 1000 + seq;
	t.event_time = 1704164645000000 + static_cast<int64_t>(seq) * 1000;
	t.text[kOperation] = "UPDATE";
	t.text[kTableSchema] = "public";
	t.text[kTableName] = "patients";
	t.text[kColumnName] = "ssn";
	t.text[kRowKey] = "{\"id\": \"" + std::to_string(seq) + "\"}";
	t.text[kRowKeySource] = "primary key";
	t.text[kOldValue] = "old-" + std::to_string(seq);
	t.text[kNewValue] = "new-" + std::to_string(seq);
	t.text[kValueType] = "text";
	t.text[kSessionRole] = "alice";
	t.text[kEffectiveRole] = "alice";
	t.text[kApplicationName] = "psql";
	t.text[kClientAddr] = "192.0.2.10";
	t.backend_pid = 4242;
	return t;
}

}								/* namespace sa_test */
