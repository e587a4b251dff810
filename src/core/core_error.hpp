/*
 * core_error.hpp — the one exception type of the pure C++ core.
 *
 * Inside the core, failures are thrown as CoreError carrying an SA_ERR_*
 * code; the functions the core exports run their bodies through guarded(),
 * which catches everything and turns it back into that code.  Nothing thrown here may ever reach a PostgreSQL
 * frame, so nothing outside the core sees this type.
 */
#pragma once

#include "cpp_only.hpp"

#include <exception>
#include <new>

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

/* Runs body, mapping every exception to a result code. */
template <typename F>
int
guarded(F &&body) noexcept
{
	try
	{
		body();
		return SA_OK;
	}
	catch (const CoreError &e)
	{
		return e.code();
	}
	catch (const std::bad_alloc &)
	{
		return SA_ERR_NOMEM;
	}
	catch (...)
	{
		return SA_ERR_INTERNAL;
	}
}

}								/* namespace sensitive_audit */
