/*
 * core_error.hpp — the one exception type of the pure C++ core.
 *
 * Inside the core, failures are thrown as CoreError carrying an SA_ERR_*
 * code; the extern "C" functions in core_api.cpp catch everything and turn
 * it back into that code.  Nothing thrown here may ever reach a PostgreSQL
 * frame, so nothing outside the core sees this type.
 */
#pragma once

#include "cpp_only.hpp"

#include <exception>

#include "sa_core.h"

namespace sensitive_audit
{

class CoreError : public std::exception
{
public:
	explicit CoreError(int code) noexcept : code_(code) {}

	int			code() const noexcept { return code_; }
	const char *what() const noexcept override { return sa_strerror(code_); }

private:
	int			code_;
};

}								/* namespace sensitive_audit */
