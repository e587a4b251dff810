/*
 * base64.hpp — the RFC 4648 standard alphabet, shared by the signed notes
 * of checkpoint.cpp and the sealed values of protect.cpp (each encodes in
 * the way its callers need: into a string, or into a caller's buffer).
 */
#pragma once

#include "cpp_only.hpp"

namespace sensitive_audit
{

inline constexpr char kBase64Alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* The 6-bit value of a base64 character, or -1 for anything else ('=' included). */
inline int
base64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

}								/* namespace sensitive_audit */
