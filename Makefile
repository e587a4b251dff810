# sensitive_audit — PGXS build of the extension, and (in cli/, its own
# Makefile) the command-line program sensitive-audit; make, make install and
# make clean cover both, as pg_repack's top-level Makefile covers bin/ and lib/.
#
# C++ under PGXS has a few traps, each handled below:
#  - PGXS knows how to compile .cpp files but not to link libstdc++: add it.
#  - Debian's server is built with LLVM JIT, so PGXS would try to emit LLVM
#    bitcode for every object with clang; the extension has nothing worth
#    inlining into JIT-compiled expressions, so bitcode is switched off.
#  - PostgreSQL's headers use the 'register' keyword (s_lock.h), which C++17
#    removed; -Wno-register keeps -Werror builds clean.

EXTENSION = sensitive_audit
EXTVERSION = $(shell grep default_version $(EXTENSION).control | sed -e "s/default_version[[:space:]]*=[[:space:]]*'\([^']*\)'/\1/")

MODULE_big = sensitive_audit
OBJS = $(patsubst %.cpp,%.o,$(sort $(wildcard src/*.cpp src/core/*.cpp)))

# The current install script and every upgrade script.
DATA = $(wildcard sql/$(EXTENSION)--*.sql)

# pg_regress and isolation tests live under test/ (test/sql, test/specs,
# test/expected); every file present is run.
REGRESS = $(sort $(patsubst test/sql/%.sql,%,$(wildcard test/sql/*.sql)))
REGRESS_OPTS = --inputdir=test --outputdir=test --load-extension=$(EXTENSION)
ISOLATION = $(sort $(patsubst test/specs/%.spec,%,$(wildcard test/specs/*.spec)))
ISOLATION_OPTS = --inputdir=test --outputdir=test/output_iso --load-extension=$(EXTENSION)

PG_CPPFLAGS = -I$(srcdir)/src
PG_CXXFLAGS = -std=c++17 -Wall -Wextra -Wno-register -Wno-unused-parameter -Wno-missing-field-initializers -fno-omit-frame-pointer
ifdef WERROR
PG_CXXFLAGS += -Werror
endif
SHLIB_LINK = -lcrypto -lstdc++

EXTRA_CLEAN = test/results test/regression.diffs test/regression.out \
	test/output_iso tmp_check test/unit/unit_tests

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
override with_llvm = no
include $(PGXS)

# ---------------------------------------------------------------------------
# The command-line program (cli/).
CLI_MAKE = $(MAKE) -C cli PG_CONFIG='$(PG_CONFIG)' $(if $(WERROR),WERROR=1)

.PHONY: cli cli-install cli-clean
all: cli
install: cli-install
clean: cli-clean
cli:
	+$(CLI_MAKE) all
cli-install:
	+$(CLI_MAKE) install
cli-clean:
	+$(CLI_MAKE) clean

# ---------------------------------------------------------------------------
# Unit tests of the pure C++ core and of the program's parts that need no
# database (GoogleTest); no PostgreSQL needed.
UNIT_SRCS = $(sort $(wildcard test/unit/*.cpp))
CORE_SRCS = $(sort $(wildcard src/core/*.cpp))
CLI_PURE_SRCS = cli/scan.cpp cli/files.cpp cli/verify.cpp cli/report.cpp cli/decrypt.cpp

test/unit/unit_tests: $(UNIT_SRCS) $(CORE_SRCS) $(CLI_PURE_SRCS) $(wildcard src/core/*.h src/core/*.hpp cli/*.hpp test/unit/*.hpp)
	$(CXX) -std=c++17 -O2 -g -Wall -Wextra $(if $(WERROR),-Werror) -I$(srcdir)/src -I$(srcdir) \
		-o $@ $(UNIT_SRCS) $(CORE_SRCS) $(CLI_PURE_SRCS) -lgtest -lgtest_main -lpthread -lcrypto

.PHONY: unittest
unittest: test/unit/unit_tests
	test/unit/unit_tests

# ---------------------------------------------------------------------------
# TAP tests (PostgreSQL::Test::Cluster) against the installed server; each
# test creates its own throwaway clusters.
PROVE ?= prove
PG_TEST_PERL = $(shell $(PG_CONFIG) --pgxs | sed 's,src/makefiles/pgxs.mk,src/test/perl,')
PG_REGRESS_BIN = $(shell $(PG_CONFIG) --pgxs | sed 's,src/makefiles/pgxs.mk,src/test/regress/pg_regress,')

.PHONY: tapcheck
tapcheck:
	rm -rf $(CURDIR)/tmp_check
	TESTDIR='$(CURDIR)' PATH="$(bindir):$$PATH" PG_REGRESS='$(PG_REGRESS_BIN)' \
		PERL5LIB='$(PG_TEST_PERL)' $(PROVE) -v $(PROVE_FLAGS) \
		$(if $(PROVE_TESTS),$(PROVE_TESTS),test/t/*.pl)

# PGXS tracks no header dependencies for C++ objects: rebuild on any header change.
$(OBJS): $(wildcard src/*.hpp src/core/*.hpp src/core/*.h)
