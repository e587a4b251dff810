/*
 * cpp_only.hpp — included first by every pure C++ translation unit.
 *
 * The encoding, hashing and verification core must never see PostgreSQL's
 * headers: those bring longjmp-based error handling that skips C++
 * destructors.  Including this header after postgres.h fails the build.
 */
#pragma once

#ifdef POSTGRES_H
#error "pure C++ file must not include postgres.h"
#endif
