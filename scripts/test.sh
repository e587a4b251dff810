#!/usr/bin/env bash
# Runs the whole sensitive_audit test suite, from a fresh Debian 12 machine:
#   1. installs missing Debian packages, builds with make WERROR=1, installs;
#   2. unit tests of the C++ core (make unittest, GoogleTest);
#   3. pg_regress (test/sql, test/expected) and isolation tests (test/specs)
#      through make installcheck, against a throwaway PostgreSQL 15 cluster;
#   4. TAP tests (test/t/*.pl, make tapcheck), which make their own clusters.
# It ends with the line "N passed, M failed" and exits non-zero if anything
# failed or if no test ran.
#
# Run it as root or as an ordinary user (sudo is then used for apt-get and
# make install). PostgreSQL refuses to run as root, so as root the servers
# and tests run as the system user sensitive_audit (created if missing;
# SA_OS_USER picks another), in a copy of the source tree that it owns;
# results and diffs are copied back into test/ and tmp_check/ afterwards.
#
#   SKIP_DEPS=1   skip the Debian package check
#   SKIP_TAP=1    skip the TAP tests (quicker local runs; CI runs them all)
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$SA_ROOT"

# Time limits per step, in seconds: a hung test must not hang the whole run.
UNIT_TIMEOUT=${SA_UNIT_TIMEOUT:-900}
INSTALLCHECK_TIMEOUT=${SA_INSTALLCHECK_TIMEOUT:-900}
TAP_TIMEOUT=${SA_TAP_TIMEOUT:-1500}

PASSED=0
FAILED=0
SUMMARY=()
WORK=
TREE=$SA_ROOT
STARTED=$SECONDS

FINISHED=0
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
	local rc=$?
	sa_cluster_stop
	if [ "$FINISHED" = 0 ] && [ "$rc" -ne 0 ]; then
		# Stopped by an error outside any test step: still end with the totals.
		echo
		echo "error: the test run stopped early (status $rc)"
		echo "$PASSED passed, $((FAILED + 1)) failed"
	fi
	if [ -n "$WORK" ]; then
		rm -rf "$WORK"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# record NAME PASSED FAILED EXIT_CODE: adds one step's counts to the totals.
# A step that failed without any failing test (it did not build, crashed,
# timed out) counts as one failure.
record() {
	local name=$1 p=$2 f=$3 rc=$4
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		sa_note "$name: exited with status $rc without a failing test; counted as one failure"
		f=1
	fi
	PASSED=$((PASSED + p))
	FAILED=$((FAILED + f))
	SUMMARY+=("$(printf '  %-34s passed %4d   failed %4d' "$name" "$p" "$f")")
}

# run_logged LOG COMMAND...: runs COMMAND, showing its output and keeping a
# copy in LOG; returns COMMAND's exit status.
run_logged() {
	local log=$1
	shift
	set +e
	"$@" 2>&1 | tee "$log"
	local rc=${PIPESTATUS[0]}
	set -e
	return "$rc"
}

finish() {
	FINISHED=1
	sa_section "summary"
	local line
	for line in "${SUMMARY[@]}"; do
		printf '%s\n' "$line"
	done
	printf '  %-34s %d s\n' "time" "$((SECONDS - STARTED))"
	echo
	echo "$PASSED passed, $FAILED failed"
	if [ "$FAILED" -ne 0 ]; then
		exit 1
	fi
	if [ "$PASSED" -eq 0 ]; then
		echo "error: no test ran" >&2
		exit 1
	fi
	exit 0
}

have_files() {
	compgen -G "$1" >/dev/null
}

# ---------------------------------------------------------------------------
sa_section "Debian packages"
sa_install_deps

# Everything temporary lives in one directory owned by the user that runs
# the servers: the cluster, a copy of the tree when we are root, the logs.
sa_pick_user
WORK=$(sa_mktemp_dir)
LOGS=$WORK/logs
mkdir -p "$LOGS"

if ! sa_build_and_install; then
	record "build and install" 0 1 1
	finish
fi

# ---------------------------------------------------------------------------
sa_section "unit tests (make unittest)"
if have_files "test/unit/*.cpp"; then
	rc=0
	run_logged "$LOGS/unit.log" timeout --kill-after=30 "$UNIT_TIMEOUT" \
		make unittest WERROR=1 PG_CONFIG="$PG_CONFIG" || rc=$?
	read -r p f < <(sa_count_gtest "$LOGS/unit.log")
	record "unit (GoogleTest)" "$p" "$f" "$rc"
else
	sa_note "no test/unit/*.cpp: skipped"
fi

# ---------------------------------------------------------------------------
sa_section "throwaway PostgreSQL 15 cluster"
if sa_is_root; then
	# pg_regress and the TAP tests write into the source tree: give the
	# unprivileged user a copy it owns.
	TREE=$WORK/src
	sa_copy_tree "$TREE"
	sa_note "source tree copied to $TREE for $SA_USER"
fi
sa_cluster_start "$WORK"

PGCONN=(PGHOST="$SA_SOCKDIR" PGPORT="$SA_PORT_USED" PGUSER="$SA_PGUSER")

# make installcheck runs pg_regress, then pg_isolation_regress, and stops at
# the first that fails; running each alone lets both always run.
installcheck() {
	local name=$1 log=$2
	shift 2
	local rc=0
	run_logged "$log" sa_as_user "${PGCONN[@]}" \
		timeout --kill-after=30 "$INSTALLCHECK_TIMEOUT" \
		make -C "$TREE" installcheck PG_CONFIG="$PG_CONFIG" "${PGCONN[@]}" "$@" || rc=$?
	local p f
	read -r p f < <(sa_count_pg_regress "$log")
	record "$name" "$p" "$f" "$rc"
	return "$rc"
}

show_file() {
	if [ -s "$1" ]; then
		printf -- '---- %s\n' "${1#"$TREE"/}"
		cat "$1"
	fi
}

sa_section "regression tests (make installcheck: pg_regress)"
if have_files "test/sql/*.sql"; then
	if ! installcheck "regress (pg_regress)" "$LOGS/regress.log" ISOLATION=; then
		show_file "$TREE/test/regression.diffs"
	fi
else
	sa_note "no test/sql/*.sql: skipped"
fi

sa_section "isolation tests (make installcheck: pg_isolation_regress)"
if have_files "test/specs/*.spec"; then
	if ! installcheck "isolation (pg_isolation_regress)" "$LOGS/isolation.log" REGRESS=; then
		show_file "$TREE/test/output_iso/regression.diffs"
	fi
else
	sa_note "no test/specs/*.spec: skipped"
fi

if grep -qE 'server closed the connection|terminated by signal|PANIC' "$SA_CLUSTER_LOG" 2>/dev/null; then
	sa_section "server log (the server crashed or restarted)"
	tail -n 100 "$SA_CLUSTER_LOG"
fi
sa_cluster_stop

# ---------------------------------------------------------------------------
sa_section "TAP tests (make tapcheck)"
if [ "${SKIP_TAP:-0}" = 1 ]; then
	sa_note "SKIP_TAP=1: skipped"
elif have_files "test/t/*.pl"; then
	rc=0
	run_logged "$LOGS/tap.log" sa_as_user \
		timeout --kill-after=30 "$TAP_TIMEOUT" \
		make -C "$TREE" tapcheck PG_CONFIG="$PG_CONFIG" || rc=$?
	read -r p f < <(sa_count_prove "$LOGS/tap.log")
	record "TAP (prove)" "$p" "$f" "$rc"
	if [ "$rc" -ne 0 ]; then
		# The end of each failing script's own log: PostgreSQL::Test::Cluster
		# writes everything it did to tmp_check/log/regress_log_<script>.
		awk '/^[^ ]+\.pl +\(Wstat/ { print $1 }' "$LOGS/tap.log" | while read -r script; do
			base=$(basename "$script" .pl)
			if [ -f "$TREE/tmp_check/log/regress_log_$base" ]; then
				printf -- '---- tmp_check/log/regress_log_%s (last 80 lines)\n' "$base"
				tail -n 80 "$TREE/tmp_check/log/regress_log_$base"
			fi
		done
	fi
else
	sa_note "no test/t/*.pl: skipped"
fi

# ---------------------------------------------------------------------------
# A smoke run of the benchmark (about a minute; its numbers mean nothing), so
# that bench/ cannot rot: it must run every variant and scenario to the end
# and find the verified log intact.
sa_section "benchmark smoke run (bench/run.sh --quick)"
if [ "${SKIP_BENCH:-0}" = 1 ]; then
	sa_note "SKIP_BENCH=1: skipped"
elif [ -x "$SA_ROOT/bench/run.sh" ]; then
	rc=0
	run_logged "$LOGS/bench.log" timeout --kill-after=30 600 \
		bash "$SA_ROOT/bench/run.sh" --quick --no-build || rc=$?
	if [ "$rc" -eq 0 ] && grep -qE '^\| sensitive_audit\.verify\(\) \|.*\| t \|$' "$LOGS/bench.log"; then
		record "benchmark smoke" 1 0 0
	else
		tail -n 40 "$LOGS/bench.log"
		record "benchmark smoke" 0 1 "$rc"
	fi
else
	sa_note "no bench/run.sh: skipped"
fi

# ---------------------------------------------------------------------------
if [ "$TREE" != "$SA_ROOT" ]; then
	# Bring results and diffs back where a developer looks for them.
	for path in test/results test/regression.diffs test/regression.out \
		test/output_iso tmp_check/log; do
		if [ -e "$TREE/$path" ]; then
			rm -rf "${SA_ROOT:?}/$path"
			mkdir -p "$(dirname "$SA_ROOT/$path")"
			cp -a "$TREE/$path" "$SA_ROOT/$path"
		fi
	done
fi

finish
