/*
 * vectors.hpp — the published format-1 test vectors (docs/FORMAT.md,
 * "Test vectors").
 *
 * Three entries forming the start of chain 3.  Each exercises something an
 * independent implementation is likely to get wrong: a NULL value (vector
 * 1), empty strings next to NULLs (vector 2), and non-ASCII UTF-8, a zero
 * byte inside a value and a negative event_time (vector 3).  The expected
 * encodings and digests were produced once by this implementation, checked
 * against an independent encoder and `xxd -r -p | sha256sum`, and are fixed
 * forever: if a test against them fails, the encoder is wrong, not the
 * vector.
 */
#pragma once

#include "test_support.hpp"

namespace sa_test
{

inline TestEntry
vector1()
{
	TestEntry	t;

	t.chain = 3;
	t.seq = 1;
	t.txid = 748;
	t.event_time = 1704164645123456;	/* 2024-01-02T03:04:05.123456+00:00 */
	t.text[kOperation] = "INSERT";
	t.text[kTableSchema] = "public";
	t.text[kTableName] = "patients";
	t.text[kColumnName] = "ssn";
	t.text[kRowKey] = "{\"id\": \"5\"}";
	t.text[kRowKeySource] = "primary key";
	t.text[kOldValue] = std::nullopt;
	t.text[kNewValue] = "123-45-6789";
	t.text[kValueType] = "text";
	t.text[kSessionRole] = "alice";
	t.text[kEffectiveRole] = "alice";
	t.text[kApplicationName] = "psql";
	t.text[kClientAddr] = "192.0.2.10";
	t.backend_pid = 4242;
	/* prev_hash: 32 zero bytes, the start of a chain */
	return t;
}

inline TestEntry
vector2(const Digest &prev)
{
	TestEntry	t;

	t.chain = 3;
	t.seq = 2;
	t.txid = 749;
	t.event_time = 1704164646000000;	/* 2024-01-02T03:04:06+00:00 */
	t.text[kOperation] = "UPDATE";
	t.text[kTableSchema] = "public";
	t.text[kTableName] = "patients";
	t.text[kColumnName] = "note";
	t.text[kRowKey] = "{\"id\": \"5\"}";
	t.text[kRowKeySource] = "primary key";
	t.text[kOldValue] = "";			/* empty string ... */
	t.text[kNewValue] = std::nullopt;	/* ... replaced by NULL */
	t.text[kValueType] = "text";
	t.text[kSessionRole] = "alice";
	t.text[kEffectiveRole] = "clinic_owner";
	t.text[kApplicationName] = "";	/* set but empty */
	t.text[kClientAddr] = std::nullopt;	/* Unix-domain socket */
	t.backend_pid = 4243;
	t.prev_hash = prev;
	return t;
}

inline TestEntry
vector3(const Digest &prev)
{
	/*
	 * "Grüße" NUL "日本語 🙂", spelled in bytes so that the source file's
	 * encoding cannot matter; literals are split where a hex escape is
	 * followed by a hex digit.
	 */
	static const char old_value[] =
		"Gr\xC3\xBC\xC3\x9F" "e" "\0" "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E" " \xF0\x9F\x99\x82";
	TestEntry	t;

	t.chain = 3;
	t.seq = 3;
	t.txid = 750;
	t.event_time = -1;				/* 1969-12-31T23:59:59.999999+00:00 */
	t.text[kOperation] = "DELETE";
	t.text[kTableSchema] = "klinik";
	t.text[kTableName] = "\xC3\xA4rzte";	/* ärzte */
	t.text[kColumnName] = "bemerkung";
	t.text[kRowKey] = "{\"nr\": \"7\", \"ort\": \"K\xC3\xB6ln\"}";	/* Köln */
	t.text[kRowKeySource] = "primary key";
	t.text[kOldValue] = std::string(old_value, sizeof(old_value) - 1);
	t.text[kNewValue] = std::nullopt;
	t.text[kValueType] = "text";
	t.text[kSessionRole] = "dr_m\xC3\xBCller";	/* dr_müller */
	t.text[kEffectiveRole] = "dr_m\xC3\xBCller";
	t.text[kApplicationName] = "\xC3\xA4rzte-app";	/* ärzte-app */
	t.text[kClientAddr] = "2001:db8::1";
	t.backend_pid = 77;
	t.prev_hash = prev;
	return t;
}

}								/* namespace sa_test */
