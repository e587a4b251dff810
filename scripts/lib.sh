# shellcheck shell=bash
# Shared shell helpers for scripts/demo.sh and scripts/test.sh.
#
# Sourced, never run. It knows three things the two scripts share: which
# PostgreSQL to build against (Debian's 15, from /usr/lib/postgresql/15/bin),
# who runs the server (PostgreSQL refuses to run as root, so root hands the
# cluster to an unprivileged system user), and how to start and remove a
# throwaway cluster that listens only on a unix socket in a private directory.
#
# Settings read from the environment:
#   SA_PG_BIN     PostgreSQL's bin directory (default /usr/lib/postgresql/15/bin)
#   SA_OS_USER    OS user that runs the cluster when started as root
#                 (default sa_cluster; created if missing)
#   SA_PORT       port of the throwaway cluster (default: a free high port)
#   SKIP_DEPS=1   do not check or install Debian packages
# A file test/cluster.conf, if present, is appended to the throwaway
# cluster's postgresql.conf (for settings the tests need on the server).

set -euo pipefail

SA_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SA_PG_BIN=${SA_PG_BIN:-/usr/lib/postgresql/15/bin}
export PATH="$SA_PG_BIN:$PATH"
export PG_CONFIG="$SA_PG_BIN/pg_config"
# Not "sensitive_audit": TAP clusters name their superuser after the OS user,
# and a role named like the extension's schema would create its tables there
# through search_path's "$user".
SA_OS_USER_DEFAULT=sa_cluster

# ---------------------------------------------------------------------------
# Output

sa_section() {
	printf '\n==== %s ====\n' "$*"
}

sa_note() {
	printf '%s\n' "$*"
}

sa_die() {
	printf 'error: %s\n' "$*" >&2
	exit 1
}

sa_is_root() {
	[ "$(id -u)" -eq 0 ]
}

# Runs a command as root: directly when we are root, else through sudo.
sa_as_root() {
	if sa_is_root; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		sa_die "'$*' needs root and sudo is not installed; run this script as root or install sudo"
	fi
}

# ---------------------------------------------------------------------------
# Steps shared by both scripts

sa_install_deps() {
	if [ "${SKIP_DEPS:-0}" = 1 ]; then
		sa_note "SKIP_DEPS=1: not checking Debian packages"
	else
		bash "$SA_ROOT/scripts/install-deps.sh"
	fi
	[ -x "$PG_CONFIG" ] || sa_die "$PG_CONFIG not found; install postgresql-server-dev-15"
}

sa_build_and_install() {
	sa_section "build (make WERROR=1)"
	# Explicit returns: callers may run this as an if condition, where
	# set -e does not apply.
	make -C "$SA_ROOT" -j"$(nproc)" WERROR=1 PG_CONFIG="$PG_CONFIG" || return 1
	sa_section "install (make install)"
	# sudo may reset PATH: pass PG_CONFIG explicitly so that Debian's
	# wrapper in /usr/bin is never used.
	sa_as_root make -C "$SA_ROOT" install PG_CONFIG="$PG_CONFIG" || return 1
}

# ---------------------------------------------------------------------------
# The unprivileged OS user

# Sets SA_USER and SA_USER_HOME. As root, creates the system user if missing.
sa_pick_user() {
	if sa_is_root; then
		SA_USER=${SA_OS_USER:-$SA_OS_USER_DEFAULT}
		if ! id -u "$SA_USER" >/dev/null 2>&1; then
			sa_note "creating system user $SA_USER to run PostgreSQL (it refuses to run as root)"
			useradd --system --create-home --shell /bin/bash \
				--comment "sensitive_audit test and demo clusters" "$SA_USER"
		fi
		[ "$(id -u "$SA_USER")" -ne 0 ] || sa_die "SA_OS_USER must not be root"
	else
		SA_USER=$(id -un)
	fi
	SA_USER_HOME=$(getent passwd "$SA_USER" | cut -d: -f6)
	if [ -z "$SA_USER_HOME" ] || [ ! -d "$SA_USER_HOME" ]; then
		SA_USER_HOME=/tmp
	fi
	export SA_USER SA_USER_HOME
}

# Runs a command as SA_USER with a clean, predictable environment: our PATH
# (PostgreSQL 15's bin first), the user's HOME, and no PG* variables other
# than those passed in as NAME=VALUE arguments before the command.
sa_as_user() {
	local envs=(PATH="$PATH" HOME="$SA_USER_HOME" LANG=C.UTF-8 LC_ALL=C.UTF-8
		PG_CONFIG="$PG_CONFIG" TMPDIR=/tmp)
	while [ $# -gt 0 ] && [[ $1 == *=* ]]; do
		envs+=("$1")
		shift
	done
	local unset_pg=()
	local v
	for v in $(compgen -e | grep '^PG' || true); do
		unset_pg+=(-u "$v")
	done
	if sa_is_root; then
		runuser -u "$SA_USER" -- env "${unset_pg[@]}" "${envs[@]}" "$@"
	else
		env "${unset_pg[@]}" "${envs[@]}" "$@"
	fi
}

# Makes a temporary directory owned by SA_USER; prints its path. Kept short
# and under /tmp so a unix socket path inside it stays well below 107 bytes.
sa_mktemp_dir() {
	local dir
	dir=$(mktemp -d /tmp/sensitive_audit.XXXXXX)
	if sa_is_root; then
		chown "$SA_USER": "$dir"
	fi
	chmod 700 "$dir"
	printf '%s\n' "$dir"
}

# ---------------------------------------------------------------------------
# A throwaway cluster

# Prints a TCP port that nothing listens on (the cluster itself only uses a
# unix socket, but a free port keeps it clear of anything else on the machine).
sa_free_port() {
	if [ -n "${SA_PORT:-}" ]; then
		printf '%s\n' "$SA_PORT"
		return
	fi
	local used port hex tries=0
	used=$(cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk 'NR > 1 && $4 == "0A" { split($2, a, ":"); print a[2] }' || true)
	while :; do
		port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
		printf -v hex '%04X' "$port"
		if ! grep -qx "$hex" <<<"$used"; then
			printf '%s\n' "$port"
			return
		fi
		tries=$((tries + 1))
		[ "$tries" -lt 100 ] || sa_die "no free port found"
	done
}

# sa_cluster_start DIR: initdb into DIR/data and start a server whose socket
# is in DIR/sock. Sets SA_PGDATA, SA_SOCKDIR, SA_PORT_USED, SA_PGUSER and
# SA_CLUSTER_LOG. DIR must belong to SA_USER.
sa_cluster_start() {
	local dir=$1
	SA_PGDATA="$dir/data"
	SA_SOCKDIR="$dir/sock"
	SA_CLUSTER_LOG="$dir/postgresql.log"
	SA_PORT_USED=$(sa_free_port)
	# The database superuser is always "postgres", whoever runs the server:
	# expected outputs name it, and a role named like the extension's schema
	# would put "$user" tables into that schema.
	SA_PGUSER=postgres
	export SA_PGDATA SA_SOCKDIR SA_CLUSTER_LOG SA_PORT_USED SA_PGUSER

	sa_as_user mkdir -p "$SA_SOCKDIR"
	sa_as_user initdb --pgdata="$SA_PGDATA" --username="$SA_PGUSER" \
		--auth=trust --encoding=UTF8 --no-locale --no-sync >"$dir/initdb.log" 2>&1 ||
		{ cat "$dir/initdb.log" >&2; sa_die "initdb failed"; }

	# A throwaway cluster: no TCP, no durability, room for the tests'
	# prepared transactions.
	sa_as_user tee -a "$SA_PGDATA/postgresql.conf" >/dev/null <<EOF

# --- throwaway cluster for sensitive_audit's demo and tests
listen_addresses = ''
unix_socket_directories = '$SA_SOCKDIR'
port = $SA_PORT_USED
fsync = off
synchronous_commit = off
full_page_writes = off
max_prepared_transactions = 10
log_min_messages = warning
log_line_prefix = '%m [%p] %q%a '
EOF
	# Settings the extension needs on a test server (shared_preload_libraries,
	# for example) belong in test/cluster.conf, which is appended as is.
	if [ -f "$SA_ROOT/test/cluster.conf" ]; then
		sa_as_user tee -a "$SA_PGDATA/postgresql.conf" >/dev/null <"$SA_ROOT/test/cluster.conf"
	fi

	sa_as_user pg_ctl --pgdata="$SA_PGDATA" --log="$SA_CLUSTER_LOG" --wait \
		--timeout=120 start >/dev/null ||
		{ tail -n 50 "$SA_CLUSTER_LOG" >&2 || true; sa_die "the server did not start"; }
	SA_CLUSTER_UP=1
	sa_note "PostgreSQL $("$SA_PG_BIN/postgres" --version | awk '{print $3}') running as OS user $SA_USER: PGHOST=$SA_SOCKDIR PGPORT=$SA_PORT_USED PGUSER=$SA_PGUSER"
}

sa_cluster_stop() {
	if [ "${SA_CLUSTER_UP:-0}" = 1 ]; then
		sa_as_user pg_ctl --pgdata="$SA_PGDATA" --mode=fast --wait --timeout=60 stop >/dev/null 2>&1 ||
			sa_as_user pg_ctl --pgdata="$SA_PGDATA" --mode=immediate stop >/dev/null 2>&1 || true
		SA_CLUSTER_UP=0
	fi
}

# psql against the throwaway cluster, as SA_USER; extra NAME=VALUE
# environment settings may come first, as for sa_as_user.
sa_psql() {
	local envs=()
	while [ $# -gt 0 ] && [[ $1 == *=* ]]; do
		envs+=("$1")
		shift
	done
	sa_as_user PGHOST="$SA_SOCKDIR" PGPORT="$SA_PORT_USED" PGUSER="$SA_PGUSER" \
		PGDATABASE=postgres "${envs[@]}" psql -X "$@"
}

# ---------------------------------------------------------------------------
# A writable copy of the source tree for SA_USER

# sa_copy_tree DEST: copies the checkout's source files (tracked, and
# untracked but not ignored) into DEST, owned by SA_USER. Build products are
# left behind: installcheck and tapcheck need only sources and the installed
# extension.
sa_copy_tree() {
	local dest=$1
	sa_as_user mkdir -p "$dest"
	if git -c safe.directory='*' -C "$SA_ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		(
			cd "$SA_ROOT"
			git -c safe.directory='*' ls-files -z --cached --others --exclude-standard |
				while IFS= read -r -d '' f; do
					# Tracked files deleted from the work tree are listed too.
					[ -e "$f" ] && printf '%s\0' "$f"
				done |
				tar --null --no-recursion --files-from=- -cf -
		) | sa_as_user tar -xf - -C "$dest"
	else
		tar -C "$SA_ROOT" --exclude=./.git --exclude='*.o' --exclude='*.so' \
			--exclude='*.bc' --exclude=./tmp_check --exclude=./test/results \
			--exclude=./test/output_iso -cf - . | sa_as_user tar -xf - -C "$dest"
	fi
}

# ---------------------------------------------------------------------------
# Counting results. Each counter reads a log and prints "PASSED FAILED".

# GoogleTest: "[  PASSED  ] 12 tests." and "[  FAILED  ] 2 tests, listed below:".
sa_count_gtest() {
	awk '
		/^\[  PASSED  \] [0-9]+ tests?\./ { p += $4 }
		/^\[  FAILED  \] [0-9]+ tests?, listed below:/ { f += $4 }
		END { printf "%d %d\n", p, f }
	' "$1"
}

# pg_regress and pg_isolation_regress (PostgreSQL 15): one line per test,
#   "test name                     ... ok          12 ms"
#   "     name                     ... FAILED      30 ms"   (in a parallel group)
#   "test name                     ... failed (ignored)"
# An ignored failure counts as neither.
sa_count_pg_regress() {
	awk '
		/^(test |     )[^ ].* \.\.\. ok( |$)/ { p++; next }
		/^(test |     )[^ ].* \.\.\. FAILED( |$)/ { f++; next }
		END { printf "%d %d\n", p, f }
	' "$1"
}

# prove -v: per test script a header "test/t/001_x.pl .. ", then its TAP
# lines ("ok 1 - ...", "not ok 2 - ..."), then prove's verdict for the script.
# A script that dies without a failing test line ("Dubious", "No subtests
# run", "Parse errors", "Bailout") counts as one failure.
sa_count_prove() {
	awk '
		function close_script() {
			if (bad && script_failed == 0)
				f++
			bad = 0; script_failed = 0
		}
		/^ok [0-9]+/ { p++; next }
		/^not ok [0-9]+/ {
			if ($0 ~ /# *TODO/) p++; else { f++; script_failed++ }
			next
		}
		/^[^ #].*\.(pl|t) \.\.+ *$/ { close_script(); next }
		/^Dubious, test returned/ || /^No subtests run/ || /^Parse errors:/ ||
		/^Bailout called/ || /^Bail out!/ || /^Failed [0-9]+\/[0-9]+ subtests/ { bad = 1 }
		/^Test Summary Report/ { close_script(); done = 1 }
		END { if (!done) close_script(); printf "%d %d\n", p, f }
	' "$1"
}
