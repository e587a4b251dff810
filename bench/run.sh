#!/usr/bin/env bash
# bench/run.sh — the sensitive_audit benchmark suite, in one command.
#
# Measures what DESIGN.md's "Performance targets" ask for, against one throwaway cluster:
#   1. throughput (pgbench -M prepared, a 100k-row table) of five variants of the same table,
#      run interleaved and repeated, reported as median tps and as ratios to the unaudited
#      table measured in the same run:
#        plain          no auditing
#        sa             sensitive_audit.tag() on name, ssn, balance
#        plpgsql_chain  a column-level PL/pgSQL trigger with a hand-rolled SHA-256 chain
#                       (advisory lock, previous hash from the last row, pgcrypto digest)
#        plpgsql_jsonb  the same trigger without a chain (a jsonb log)
#        pgaudit        pgaudit object audit of the same columns, to the server log
#      over these pgbench scripts (bench/pgbench/): a single-row UPDATE of a tagged column,
#      an UPDATE of untagged columns only, an INSERT and a DELETE of rows with three tagged
#      columns, and a transaction of ten tagged single-row UPDATEs;
#   2. verification speed over >= 1,000,000 entries: sensitive_audit.verify() against the
#      PL/pgSQL verifier of the hand-rolled chain, over logs of the same size;
#   3. storage per log entry (heap, indexes and TOAST) after single-column UPDATEs with
#      short values;
#   4. optionally (when perf works) a CPU profile of a backend running tagged UPDATEs;
#   5. bulk loads and large transactions: COPY and INSERT ... SELECT of --bulk-rows rows with
#      three tagged columns, against the same into an unaudited table and against COPY /
#      INSERT ... SELECT of the same log rows into a bare copy of the log's table (the bound),
#      interleaved, --bulk-reps times; and one UPDATE of --update-rows tagged rows in one
#      transaction, unaudited and audited, with the backend's peak memory (VmHWM).
# It writes a markdown report to stdout and to bench/results/<timestamp>.md, and the raw
# numbers of every run to bench/results/<timestamp>.csv.
#
# Usage: bench/run.sh [options]
#   --quick              smoke run, about a minute: 1 s runs, 1 repetition, 4 clients,
#                        100k-entry verification, no profile, no waiting for a quiet machine
#   --duration N         seconds per pgbench run (default 10)
#   --reps N             repetitions of the whole grid (default 3)
#   --clients "1 4"      client counts; with --sync or --scenarios, runs the full cross
#   --sync "off on"      product of scenarios x clients x synchronous_commit instead of the
#   --scenarios "..."    default grid (upd_tagged upd_untagged insert delete txn10)
#   --variants "..."     variants to run (default all five; plain is always run)
#   --rows N             rows in each table (default 100000)
#   --verify-entries N   log size for the verification test (default 1000000)
#   --storage-updates N  UPDATEs for the storage test (default 10000)
#   --bulk-rows N        rows per bulk load (default 1000000; --quick: 20000)
#   --bulk-reps N        repetitions of the bulk loads (default 3; --quick: 1)
#   --update-rows N      rows of the one-transaction UPDATE (default 10000000; --quick: 50000)
#   --bulk-only          only part 5 (bulk loads and the large UPDATE)
#   --max-other-load P   the machine may be shared: before each run, wait (up to 30 s) until
#                        other processes use at most P % of the CPUs, and run again (once) a
#                        run during which they used more (default 10; at most 5 minutes of
#                        waiting and a fifth of the runs repeated)
#   --profile | --no-profile   take a perf profile (default: on in full runs if perf works)
#   --build-commit REV   build and install the extension from a clean copy of git commit
#                        REV (git archive) instead of the work tree
#   --no-build           do not install packages, build or install the extension
#   --keep               keep the cluster's directory (and its server log) afterwards
#   -h, --help
#
# Run it as root (the cluster then runs as the unprivileged system user scripts/lib.sh
# picks, as the demo and test scripts do) or as an ordinary user with sudo for apt-get and
# make install.  It needs nothing but bash, awk, psql and pgbench (and perf for the profile).
#
# shellcheck disable=SC2016  # backquotes in single quotes are markdown, not expansions
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
source "$BENCH_DIR/../scripts/lib.sh"

COMMAND_LINE=bench/run.sh
for arg in "$@"; do
	COMMAND_LINE+=" $(printf '%q' "$arg")"
done
STARTED_AT=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
STAMP=$(date -u '+%Y%m%d-%H%M%S')
T_START=$SECONDS

# ---------------------------------------------------------------------------
# Options

DURATION=10
REPS=3
ROWS=100000
VERIFY_ENTRIES=1000000
STORAGE_UPDATES=10000
BULK_ROWS=1000000
BULK_REPS=3
UPDATE_ROWS=10000000
BULK_ONLY=0
MAX_OTHER_LOAD=10
PROFILE=auto
BUILD=1
BUILD_COMMIT=
KEEP=0
QUICK=0
OPT_CLIENTS=
OPT_SYNC=
OPT_SCENARIOS=
OPT_VARIANTS=
ALL_SCENARIOS="upd_tagged upd_untagged insert delete txn10"
ALL_VARIANTS="plain sa plpgsql_chain plpgsql_jsonb pgaudit"

usage() {
	sed -n '/^# Usage:/,/^#   -h, --help/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

while [ $# -gt 0 ]; do
	case $1 in
	--quick) QUICK=1 ;;
	--duration) DURATION=$2; shift ;;
	--reps) REPS=$2; shift ;;
	--clients) OPT_CLIENTS=$2; shift ;;
	--sync) OPT_SYNC=$2; shift ;;
	--scenarios) OPT_SCENARIOS=$2; shift ;;
	--variants) OPT_VARIANTS=$2; shift ;;
	--rows) ROWS=$2; shift ;;
	--verify-entries) VERIFY_ENTRIES=$2; shift ;;
	--storage-updates) STORAGE_UPDATES=$2; shift ;;
	--bulk-rows) BULK_ROWS=$2; shift ;;
	--bulk-reps) BULK_REPS=$2; shift ;;
	--update-rows) UPDATE_ROWS=$2; shift ;;
	--bulk-only) BULK_ONLY=1 ;;
	--max-other-load) MAX_OTHER_LOAD=$2; shift ;;
	--profile) PROFILE=1 ;;
	--no-profile) PROFILE=0 ;;
	--build-commit) BUILD_COMMIT=$2; shift ;;
	--no-build) BUILD=0 ;;
	--keep) KEEP=1 ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; sa_die "unknown option $1" ;;
	esac
	shift
done

if [ "$QUICK" = 1 ]; then
	# Explicit options given with --quick still win, whatever their order.
	[[ " $COMMAND_LINE " == *" --duration "* ]] || DURATION=1
	[[ " $COMMAND_LINE " == *" --max-other-load "* ]] || MAX_OTHER_LOAD=100
	[[ " $COMMAND_LINE " == *" --reps "* ]] || REPS=1
	[[ " $COMMAND_LINE " == *" --verify-entries "* ]] || VERIFY_ENTRIES=100000
	[[ " $COMMAND_LINE " == *" --storage-updates "* ]] || STORAGE_UPDATES=2000
	[[ " $COMMAND_LINE " == *" --bulk-rows "* ]] || BULK_ROWS=20000
	[[ " $COMMAND_LINE " == *" --bulk-reps "* ]] || BULK_REPS=1
	[[ " $COMMAND_LINE " == *" --update-rows "* ]] || UPDATE_ROWS=50000
	[ "$PROFILE" != auto ] || PROFILE=0
fi

for n in "$DURATION" "$REPS" "$ROWS" "$VERIFY_ENTRIES" "$STORAGE_UPDATES" "$BULK_ROWS" "$BULK_REPS" "$UPDATE_ROWS"; do
	[[ $n =~ ^[1-9][0-9]*$ ]] || sa_die "not a positive integer: $n"
done
[[ $MAX_OTHER_LOAD =~ ^[0-9]+([.][0-9]+)?$ ]] || sa_die "--max-other-load takes a percentage"
if [ "$ROWS" -lt 1000 ] || [ "$ROWS" -ge 1000000 ]; then sa_die "--rows must be between 1000 and 999999"; fi

VARIANTS=${OPT_VARIANTS:-$ALL_VARIANTS}
for v in $VARIANTS; do
	[[ " $ALL_VARIANTS " == *" $v "* ]] || sa_die "unknown variant $v (known: $ALL_VARIANTS)"
done
[[ " $VARIANTS " == *" plain "* ]] || VARIANTS="plain $VARIANTS"

# The grid: one cell per "scenario clients sync".  The default keeps a full run under about
# 25 minutes on two cores: the tagged and untagged UPDATEs at 1 and 4 clients with
# synchronous_commit off (the hard, CPU-bound case), the rest at 4 clients, and
# synchronous_commit on where commits matter most.  The chain-less PL/pgSQL trigger is a
# reference point for the tagged UPDATE with synchronous_commit off only, unless --variants
# names it.
CELLS=()
if [ -n "$OPT_CLIENTS$OPT_SYNC$OPT_SCENARIOS" ]; then
	for s in ${OPT_SCENARIOS:-$ALL_SCENARIOS}; do
		[[ " $ALL_SCENARIOS " == *" $s "* ]] || sa_die "unknown scenario $s (known: $ALL_SCENARIOS)"
		for c in ${OPT_CLIENTS:-1 4}; do
			[[ $c =~ ^[1-9][0-9]*$ ]] || sa_die "not a client count: $c"
			for y in ${OPT_SYNC:-off}; do
				[[ $y == on || $y == off ]] || sa_die "--sync takes on and/or off"
				CELLS+=("$s $c $y")
			done
		done
	done
elif [ "$QUICK" = 1 ]; then
	CELLS=("upd_tagged 4 off" "upd_untagged 4 off" "insert 4 off" "delete 4 off" "txn10 4 off")
else
	CELLS=("upd_tagged 1 off" "upd_tagged 4 off" "upd_tagged 4 on"
		"upd_untagged 1 off" "upd_untagged 4 off"
		"insert 4 off" "delete 4 off"
		"txn10 4 off" "txn10 4 on")
fi

# Variants run in one cell: cell_variants SCENARIO SYNC
cell_variants() {
	local scenario=$1 sync=$2 v out=""
	for v in $VARIANTS; do
		if [ "$v" = plpgsql_jsonb ] && [ -z "$OPT_VARIANTS" ] &&
			{ [ "$scenario" != upd_tagged ] || [ "$sync" != off ]; }; then
			continue
		fi
		out+="$v "
	done
	printf '%s\n' "${out% }"
}

scenario_title() {
	case $1 in
	upd_tagged) echo "UPDATE of 1 tagged column" ;;
	upd_untagged) echo "UPDATE of untagged columns" ;;
	insert) echo "INSERT, 3 tagged columns" ;;
	delete) echo "DELETE, 3 tagged columns" ;;
	txn10) echo "10 tagged UPDATEs / transaction" ;;
	esac
}

table_of() { printf 't_%s\n' "$1"; }

# Tables VACUUMed before a run of a variant: its table and its log.
tables_to_vacuum() {
	case $1 in
	sa) echo "t_sa, sensitive_audit.log_entries, sensitive_audit.log_contexts" ;;
	plpgsql_chain) echo "t_plpgsql_chain, bench_audit_chain" ;;
	plpgsql_jsonb) echo "t_plpgsql_jsonb, bench_audit_jsonb" ;;
	*) echo "t_$1" ;;
	esac
}

# ---------------------------------------------------------------------------
# Set-up: packages, build, cluster

WORK=
BG_PID=
cleanup() {
	local rc=$?
	if [ -n "$BG_PID" ]; then
		kill "$BG_PID" 2>/dev/null || true
		wait "$BG_PID" 2>/dev/null || true
	fi
	sa_cluster_stop
	if [ -n "$WORK" ]; then
		if [ "$KEEP" = 1 ]; then
			echo "kept $WORK (server log: $WORK/postgresql.log)" >&2
		else
			rm -rf "$WORK"
		fi
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

progress() {
	printf '[%4ds] %s\n' "$((SECONDS - T_START))" "$*" >&2
}

git_() { git -c safe.directory='*' -C "$SA_ROOT" "$@"; }
if [ -n "$BUILD_COMMIT" ]; then
	BUILD_REV=$(git_ rev-parse --short "$BUILD_COMMIT^{commit}" 2>/dev/null) || sa_die "not a commit: $BUILD_COMMIT"
fi
if [ "$BUILD" = 1 ]; then
	sa_install_deps
	sa_section "build and install sensitive_audit"
	BUILD_DIR=$SA_ROOT
	if [ -n "$BUILD_COMMIT" ]; then
		# A clean copy of the commit, so that the numbers belong to it and not to whatever the
		# work tree holds at the moment.
		BUILD_DIR=$(mktemp -d /tmp/sa_bench_src.XXXXXX)
		git_ archive "$BUILD_REV" | tar -x -C "$BUILD_DIR"
	fi
	# No WERROR here: a benchmark should not stop on a new warning.  If the tree does not
	# build (someone is in the middle of a change), measure what is installed.
	if make -C "$BUILD_DIR" -j"$(nproc)" PG_CONFIG="$PG_CONFIG" >"/tmp/sa_bench_build.$$.log" 2>&1 &&
		sa_as_root make -C "$BUILD_DIR" install PG_CONFIG="$PG_CONFIG" >>"/tmp/sa_bench_build.$$.log" 2>&1; then
		sa_note "built and installed"
		if [ -n "$BUILD_COMMIT" ]; then
			BUILD_NOTE="built and installed from a clean copy of commit $BUILD_REV by this run"
		else
			BUILD_NOTE="built and installed from the work tree by this run"
		fi
	else
		tail -n 20 "/tmp/sa_bench_build.$$.log" >&2
		sa_note "warning: the build failed; measuring the sensitive_audit already installed"
		BUILD_NOTE="build FAILED; measured the previously installed library"
	fi
	rm -f "/tmp/sa_bench_build.$$.log"
	[ "$BUILD_DIR" = "$SA_ROOT" ] || rm -rf "$BUILD_DIR"
else
	BUILD_NOTE="not rebuilt (--no-build)"
fi
[ -x "$PG_CONFIG" ] || sa_die "$PG_CONFIG not found"
PG_SHAREDIR=$("$PG_CONFIG" --sharedir)
PG_PKGLIBDIR=$("$PG_CONFIG" --pkglibdir)
[ -f "$PG_SHAREDIR/extension/sensitive_audit.control" ] || sa_die "sensitive_audit is not installed"
[ -f "$PG_SHAREDIR/extension/pgcrypto.control" ] || sa_die "pgcrypto is not installed (postgresql-contrib)"
if [[ " $VARIANTS " == *" pgaudit "* ]] && [ ! -f "$PG_PKGLIBDIR/pgaudit.so" ]; then
	sa_die "pgaudit is not installed (postgresql-15-pgaudit)"
fi

sa_pick_user
WORK=$(sa_mktemp_dir)

# The cluster: like scripts/lib.sh's throwaway cluster (unix socket only, owned by SA_USER),
# but durable (fsync on, so that synchronous_commit = on means something) and tuned for a
# CPU-bound benchmark: everything in shared_buffers, no checkpoint or autovacuum during a run
# (run.sh VACUUMs and CHECKPOINTs before every run instead).  sensitive_audit (as the
# README recommends) and pgaudit are preloaded for the whole cluster; only the pgaudit
# variant's sessions set pgaudit.role.
bench_cluster_start() {
	SA_PGDATA="$WORK/data"
	SA_SOCKDIR="$WORK/sock"
	SA_CLUSTER_LOG="$WORK/postgresql.log"
	SA_PORT_USED=$(sa_free_port)
	SA_PGUSER=postgres
	export SA_PGDATA SA_SOCKDIR SA_CLUSTER_LOG SA_PORT_USED SA_PGUSER
	sa_as_user mkdir -p "$SA_SOCKDIR"
	sa_as_user initdb --pgdata="$SA_PGDATA" --username="$SA_PGUSER" --auth=trust \
		--encoding=UTF8 --no-locale --no-sync >"$WORK/initdb.log" 2>&1 ||
		{ cat "$WORK/initdb.log" >&2; sa_die "initdb failed"; }
	local preload=sensitive_audit
	[[ " $VARIANTS " != *" pgaudit "* ]] || preload+=,pgaudit
	sa_as_user tee -a "$SA_PGDATA/postgresql.conf" >/dev/null <<EOF

# --- sensitive_audit benchmark cluster (bench/run.sh)
listen_addresses = ''
unix_socket_directories = '$SA_SOCKDIR'
port = $SA_PORT_USED
max_connections = 40
shared_buffers = 1GB
fsync = on
synchronous_commit = off
wal_buffers = 16MB
max_wal_size = 20GB
min_wal_size = 2GB
checkpoint_timeout = 1h
autovacuum = off
jit = off
log_min_messages = warning
log_line_prefix = '%m [%p] %q%a '
shared_preload_libraries = '$preload'
pgaudit.log = 'none'
pgaudit.log_parameter = off
EOF
	sa_as_user pg_ctl --pgdata="$SA_PGDATA" --log="$SA_CLUSTER_LOG" --wait --timeout=120 start >/dev/null ||
		{ tail -n 50 "$SA_CLUSTER_LOG" >&2 || true; sa_die "the server did not start"; }
	# shellcheck disable=SC2034  # read by sa_cluster_stop
	SA_CLUSTER_UP=1
}

sa_section "cluster"
# Others may run `make install` on this machine while the benchmark runs (a test suite
# does).  The library is preloaded: the postmaster loads it once, now, and every backend
# inherits it (a function call finds the library already loaded under the same file name and
# never reads the file again), so what is measured is what was installed at this point.
SO_SUM=$(md5sum "$PG_PKGLIBDIR/sensitive_audit.so" | cut -c1-12)
bench_cluster_start
PG_VERSION=$(sa_psql -Atq -c 'SHOW server_version')
sa_note "PostgreSQL $PG_VERSION running as OS user $SA_USER in $WORK"

# Our SQL and pgbench scripts, readable by SA_USER.
cp "$BENCH_DIR/setup.sql" "$BENCH_DIR/plpgsql_chain.sql" "$WORK/"
mkdir -p "$WORK/scripts"
if sa_is_root; then chown -R "$SA_USER": "$WORK/setup.sql" "$WORK/plpgsql_chain.sql" "$WORK/scripts"; fi

# psql against one database of the cluster: db_psql DB [psql args...]
db_psql() {
	local db=$1
	shift
	sa_psql -d "$db" -v ON_ERROR_STOP=1 -Atq "$@"
}

# Builds the pgbench script for a scenario and a table; prints its path.
script_for() {
	local scenario=$1 table=$2 path="$WORK/scripts/$1.$2.sql"
	if [ ! -f "$path" ]; then
		sed "s/@T@/$table/g" "$BENCH_DIR/pgbench/$scenario.sql" | sa_as_user tee "$path" >/dev/null
	fi
	printf '%s\n' "$path"
}

# A database with the extensions and the helpers.
make_db() {
	local db=$1
	sa_psql -v ON_ERROR_STOP=1 -q -c "CREATE DATABASE $db"
	db_psql "$db" -c 'CREATE EXTENSION pgcrypto' -c 'CREATE EXTENSION sensitive_audit' >/dev/null
	db_psql "$db" -f "$WORK/plpgsql_chain.sql" -f "$WORK/setup.sql" >/dev/null
}

sa_psql -v ON_ERROR_STOP=1 -q -c "CREATE TABLE bench_runs (
	run serial, rep int, scenario text, clients int, sync text, variant text, seconds int,
	tps float8, latency_ms float8, xacts bigint, failed bigint, deleted bigint,
	other_cpu_pct float8, steal_pct float8)"
sa_psql -v ON_ERROR_STOP=1 -q -c "CREATE TABLE bench_verify (verifier text, try int, seconds float8, entries bigint, ok boolean)"
sa_psql -v ON_ERROR_STOP=1 -q -c "CREATE TABLE bench_storage (log text, entries bigint, heap bigint, indexes bigint, total bigint)"
PROFILE_TEXT=

# Parts 1 to 4 (everything but the bulk loads), unless --bulk-only.
if [ "$BULK_ONLY" = 0 ]; then
sa_section "set-up: $ROWS-row tables for: $VARIANTS"
make_db bench
make_db verify
make_db storage
for v in $VARIANTS; do
	db_psql bench -c "SELECT bench_create_table('$(table_of "$v")', $ROWS)" \
		-c "SELECT bench_instrument('$(table_of "$v")', '$v')" >/dev/null
done
db_psql bench -c 'VACUUM ANALYZE' -c 'CHECKPOINT'

# ---------------------------------------------------------------------------
# Throughput

# PGOPTIONS for a variant's sessions.
pgoptions_for() {
	local variant=$1 sync=$2
	local o="-c synchronous_commit=$sync"
	[ "$variant" != pgaudit ] || o+=" -c pgaudit.role=auditor"
	printf '%s\n' "$o"
}

# Runs pgbench against the bench database: run_pgbench OUTFILE VARIANT SYNC ARGS...
run_pgbench() {
	local out=$1 variant=$2 sync=$3
	shift 3
	sa_as_user PGHOST="$SA_SOCKDIR" PGPORT="$SA_PORT_USED" PGUSER="$SA_PGUSER" PGDATABASE=bench \
		PGOPTIONS="$(pgoptions_for "$variant" "$sync")" \
		pgbench --no-vacuum -M prepared -D rows="$ROWS" "$@" >"$out" 2>&1
}

# Last measured tps of a variant in a scenario at a client count (any sync), or empty.
last_tps() {
	sa_psql -Atq -c "SELECT round(tps) FROM bench_runs WHERE scenario = '$1' AND variant = '$2'
		AND clients = $3 AND tps IS NOT NULL ORDER BY rep DESC, run DESC LIMIT 1"
}

# Before a DELETE run: make sure the table holds enough rows above its delete sequence.
top_up_for_delete() {
	local variant=$1 clients=$2 table est need have
	table=$(table_of "$variant")
	est=$(last_tps delete "$variant" "$clients")
	[ -n "$est" ] || est=$(last_tps insert "$variant" "$clients")
	[ -n "$est" ] || est=20000
	need=$((est * DURATION * 3 / 2 + 1000))
	have=$(db_psql bench -c "SELECT bench_pool('$table')")
	if [ "$have" -lt "$need" ]; then
		db_psql bench -c "CALL bench_top_up('$table', $((need - have)))"
	fi
}

# The machine is shared: to tell a clean run from a disturbed one, every run records how
# much CPU the rest of the machine used meanwhile.  cpu_snapshot prints: wall-clock seconds,
# busy (user, nice and system) and steal jiffies of all CPUs (/proc/stat), jiffies used by
# our cluster (the postmaster, its live children, and its exited children) and by kernel
# threads (the I/O our own commits cause is done there, and interrupts are left out for the
# same reason), and this shell's exited children (pgbench) in jiffies, from the output of
# bash's `times` in file $1 (it must be run by the shell that runs pgbench, not in a $(...)
# subshell).
CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)
NCPU=$(nproc)
cpu_snapshot() {
	local pm wall busy_steal ours kids
	pm=$(head -n 1 "$SA_PGDATA/postmaster.pid" 2>/dev/null || echo 0)
	wall=$(date +%s.%N)
	busy_steal=$(awk '$1 == "cpu" { print $2 + $3 + $4, $9; exit }' /proc/stat)
	# /proc/PID/stat: after the ") " that closes the command name, field 2 is the ppid,
	# 12 and 13 utime and stime, 14 and 15 the exited children's.
	ours=$(cat /proc/[0-9]*/stat 2>/dev/null | awk -v pm="$pm" '{
			pid = $1
			sub(/^.*\) /, "")
			if ($2 == pm || $2 == 2 || pid == 2) t += $12 + $13
			if (pid == pm) t += $12 + $13 + $14 + $15
		} END { printf "%d", t }')
	kids=$(awk 'NR == 2 { split($1, u, /[ms]/); split($2, s, /[ms]/);
		printf "%d", (u[1] * 60 + u[2] + s[1] * 60 + s[2]) * '"$CLK_TCK"' }' "$1")
	printf '%s %s %s %s\n' "$wall" "$busy_steal" "$ours" "$kids"
}

# other_load SNAPSHOT_BEFORE SNAPSHOT_AFTER: prints "other% steal%": CPU used by processes
# other than our cluster and pgbench, and stolen by the hypervisor, in % of all CPUs.
other_load() {
	awk -v hz="$CLK_TCK" -v ncpu="$NCPU" -v a="$1" -v b="$2" 'BEGIN {
		split(a, x, " "); split(b, y, " ")
		cap = (y[1] - x[1]) * hz * ncpu
		other = (y[2] - x[2]) - (y[4] - x[4]) - (y[5] - x[5])
		if (other < 0) other = 0
		printf "%.1f %.1f\n", 100 * other / cap, 100 * (y[3] - x[3]) / cap
	}'
}

# Before a run, wait (a bounded time) until the rest of the machine is quiet: the share of
# the CPUs other processes use, sampled over half a second, must be at most MAX_OTHER_LOAD.
# Waits at most 30 s per run and WAIT_BUDGET seconds in all.
WAITED=0
WAIT_BUDGET=$((QUICK ? 20 : 300))
wait_for_quiet() {
	local t0=$SECONDS a b other steal
	# (nothing to wait for when any load is accepted)
	awk -v m="$MAX_OTHER_LOAD" 'BEGIN { exit !(m < 100) }' || return 0
	while :; do
		times >"$WORK/times"
		a=$(cpu_snapshot "$WORK/times")
		sleep 0.5
		b=$(cpu_snapshot "$WORK/times")
		read -r other steal <<<"$(other_load "$a" "$b")"
		if awk -v o="$other" -v m="$MAX_OTHER_LOAD" 'BEGIN { exit !(o <= m) }' ||
			[ $((SECONDS - t0)) -ge 30 ] || [ $((WAITED + SECONDS - t0)) -ge "$WAIT_BUDGET" ]; then
			break
		fi
		sleep 2
	done
	WAITED=$((WAITED + SECONDS - t0))
}

# One timed run: measure REP SCENARIO CLIENTS SYNC VARIANT
measure() {
	local rep=$1 scenario=$2 clients=$3 sync=$4 variant=$5
	local table script out pool_before="" pool_after deleted=NULL
	table=$(table_of "$variant")
	script=$(script_for "$scenario" "$table")
	out="$WORK/pgbench.out"
	if [ "$scenario" = delete ]; then
		top_up_for_delete "$variant" "$clients"
		pool_before=$(db_psql bench -c "SELECT bench_pool('$table')")
	fi
	db_psql bench -c "VACUUM $(tables_to_vacuum "$variant")" -c 'CHECKPOINT'
	wait_for_quiet
	local tps=NULL lat=NULL xacts=NULL failed=NULL snap0 snap1 other steal ok=1
	times >"$WORK/times"
	snap0=$(cpu_snapshot "$WORK/times")
	run_pgbench "$out" "$variant" "$sync" -c "$clients" -j "$((clients < 2 ? clients : 2))" \
		-T "$DURATION" -f "$script" || ok=0
	times >"$WORK/times"
	snap1=$(cpu_snapshot "$WORK/times")
	read -r other steal <<<"$(other_load "$snap0" "$snap1")"
	if [ "$ok" = 1 ]; then
		tps=$(awk '/^tps = / { print $3; exit }' "$out")
		lat=$(awk '/^latency average = / { print $4; exit }' "$out")
		xacts=$(awk '/^number of transactions actually processed: / { print $6; exit }' "$out")
		failed=$(awk '/^number of failed transactions: / { print $5; exit }' "$out")
		tps=${tps:-NULL} lat=${lat:-NULL} xacts=${xacts:-NULL} failed=${failed:-0}
	else
		sa_note "warning: pgbench failed for $variant / $scenario / $clients clients:"
		tail -n 15 "$out" | sed 's/^/    /' >&2
	fi
	if [ -n "$pool_before" ]; then
		pool_after=$(db_psql bench -c "SELECT bench_pool('$table')")
		deleted=$((pool_before - pool_after))
	fi
	LAST_RUN=$(sa_psql -v ON_ERROR_STOP=1 -Atq -c "INSERT INTO bench_runs (rep, scenario, clients, sync,
		variant, seconds, tps, latency_ms, xacts, failed, deleted, other_cpu_pct, steal_pct)
		VALUES ($rep, '$scenario', $clients, '$sync', '$variant', $DURATION, $tps, $lat, $xacts,
		$failed, $deleted, $other, $steal) RETURNING run")
	LAST_OTHER=$other
	progress "rep $rep/$REPS  $(printf '%-12s c=%-2s sync=%-3s %-14s %8.0f tps' "$scenario" "$clients" "$sync" "$variant" "${tps/NULL/0}")  (other load ${other}%, steal ${steal}%)"
}

sa_section "throughput: ${#CELLS[@]} cells x variants, $DURATION s per run, $REPS repetitions"
# A short warm-up of every variant, not recorded.
for v in $VARIANTS; do
	run_pgbench "$WORK/warmup.out" "$v" off -c 2 -j 2 -T "$((QUICK ? 1 : 3))" -f "$(script_for upd_tagged "$(table_of "$v")")" ||
		{ cat "$WORK/warmup.out" >&2; sa_die "pgbench failed on the $v variant"; }
done
# A run during which other processes used more than MAX_OTHER_LOAD % of the CPUs is run once
# more, and the run with the quieter machine is kept; at most a fifth of the runs are
# repeated, so that a busy machine cannot make the benchmark run forever.
TOTAL_RUNS=0
for cell in "${CELLS[@]}"; do
	read -r scenario clients sync <<<"$cell"
	TOTAL_RUNS=$((TOTAL_RUNS + $(wc -w <<<"$(cell_variants "$scenario" "$sync")")))
done
TOTAL_RUNS=$((TOTAL_RUNS * REPS))
RETRY_BUDGET=$((TOTAL_RUNS / 5))
RETRIED=0
for ((rep = 1; rep <= REPS; rep++)); do
	for cell in "${CELLS[@]}"; do
		read -r scenario clients sync <<<"$cell"
		# Variants in turn, starting one further along at each repetition.
		read -r -a vs <<<"$(cell_variants "$scenario" "$sync")"
		n=${#vs[@]}
		for ((i = 0; i < n; i++)); do
			v=${vs[$(((i + rep - 1) % n))]}
			measure "$rep" "$scenario" "$clients" "$sync" "$v"
			if awk -v o="$LAST_OTHER" -v m="$MAX_OTHER_LOAD" 'BEGIN { exit !(o > m) }' &&
				[ "$RETRIED" -lt "$RETRY_BUDGET" ]; then
				RETRIED=$((RETRIED + 1))
				first=$LAST_RUN
				progress "  other processes used ${LAST_OTHER}% of the CPUs: running it again"
				measure "$rep" "$scenario" "$clients" "$sync" "$v"
				sa_psql -v ON_ERROR_STOP=1 -q -c "DELETE FROM bench_runs WHERE run = (SELECT run FROM bench_runs
					WHERE run IN ($first, $LAST_RUN) ORDER BY other_cpu_pct DESC, run LIMIT 1)"
			fi
		done
	done
done

# ---------------------------------------------------------------------------
# Verification speed

sa_section "verification over $VERIFY_ENTRIES entries"
VROWS=$((VERIFY_ENTRIES < ROWS ? VERIFY_ENTRIES : ROWS))
VUPDATES=$(((VERIFY_ENTRIES + VROWS - 1) / VROWS))
db_psql verify -c "SELECT bench_create_table('v_sa', $VROWS)" -c "SELECT bench_instrument('v_sa', 'sa')" \
	-c "SELECT bench_create_table('v_chain', $VROWS)" -c "SELECT bench_instrument('v_chain', 'plpgsql_chain')" >/dev/null
# Each UPDATE of every row commits $VROWS entries; time how long building the log takes.
bulk_update() {
	local table=$1 t0 t1
	t0=$(date +%s.%N)
	for ((i = 0; i < VUPDATES; i++)); do
		db_psql verify -c "UPDATE $table SET balance = balance + 1" >/dev/null
	done
	t1=$(date +%s.%N)
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f\n", b - a }'
}
BUILD_SA=$(bulk_update v_sa)
progress "built the sensitive_audit log: $VUPDATES UPDATEs of $VROWS rows in $BUILD_SA s"
BUILD_CHAIN=$(bulk_update v_chain)
progress "built the PL/pgSQL chain: $VUPDATES UPDATEs of $VROWS rows in $BUILD_CHAIN s"
db_psql verify -c 'VACUUM ANALYZE' -c 'CHECKPOINT'
for try in 1 2 3; do
	for w in sa plpgsql_chain; do
		r=$(db_psql verify -F ' ' -c "SELECT seconds, entries, ok FROM bench_timed_verify('$w')")
		read -r secs entries ok <<<"$r"
		sa_psql -v ON_ERROR_STOP=1 -q -c "INSERT INTO bench_verify VALUES ('$w', $try, $secs, $entries, '$ok')"
		progress "verify $w try $try: $entries entries in $secs s (ok: $ok)"
	done
done

# ---------------------------------------------------------------------------
# Storage per entry

sa_section "storage: $STORAGE_UPDATES single-column UPDATEs with short values"
SROWS=10000
storage_of() {
	# Size of a log: entries, heap, indexes, and heap + indexes + TOAST.  The heap is counted
	# as the pages that hold at least one entry: concurrent inserters make PostgreSQL extend a
	# table by many empty pages at a time, which later entries fill, and counting those would
	# charge a few hundred entries with tens of pages.  A second table (sensitive_audit's
	# shared contexts) is counted whole: heap, indexes and TOAST.
	local extra=${2:-}
	local xheap=0 xidx=0 xall=0
	if [ -n "$extra" ]; then
		xheap="pg_table_size('$extra')"
		xidx="pg_indexes_size('$extra')"
		xall="pg_total_relation_size('$extra')"
	fi
	db_psql storage -F ' ' -c "SELECT count(*), 8192 * count(DISTINCT (ctid::text::point)[0]) + $xheap,
		pg_indexes_size('$1') + $xidx,
		8192 * count(DISTINCT (ctid::text::point)[0]) + pg_indexes_size('$1')
		+ coalesce((SELECT pg_total_relation_size(reltoastrelid) FROM pg_class
					WHERE oid = '$1'::regclass AND reltoastrelid <> 0), 0) + $xall
		FROM $1"
}
for v in sa plpgsql_chain plpgsql_jsonb; do
	case $v in
	sa) log=sensitive_audit.log_entries extra=sensitive_audit.log_contexts ;;
	plpgsql_chain) log=bench_audit_chain extra= ;;
	plpgsql_jsonb) log=bench_audit_jsonb extra= ;;
	esac
	db_psql storage -c "SELECT bench_create_table('s_$v', $SROWS)" -c "SELECT bench_instrument('s_$v', '$v')" >/dev/null
	read -r n0 h0 i0 t0 <<<"$(storage_of "$log" "$extra")"
	sa_as_user PGHOST="$SA_SOCKDIR" PGPORT="$SA_PORT_USED" PGUSER="$SA_PGUSER" PGDATABASE=storage \
		PGOPTIONS="-c synchronous_commit=off" pgbench --no-vacuum -M prepared -D rows="$SROWS" \
		-c 4 -j 2 -t $(((STORAGE_UPDATES + 3) / 4)) -f "$(script_for storage "s_$v")" >"$WORK/storage.out" 2>&1 ||
		{ cat "$WORK/storage.out" >&2; sa_die "pgbench failed in the storage test"; }
	read -r n1 h1 i1 t1 <<<"$(storage_of "$log" "$extra")"
	sa_psql -v ON_ERROR_STOP=1 -q -c "INSERT INTO bench_storage VALUES ('$v', $((n1 - n0)), $((h1 - h0)), $((i1 - i0)), $((t1 - t0)))"
	progress "storage $v: $((n1 - n0)) entries, $(((t1 - t0) / (n1 - n0))) bytes each"
done

# ---------------------------------------------------------------------------
# Profile

# profile_variant VARIANT: runs the tagged single-row UPDATE on one client, records the
# backend with perf for PROF_SECONDS and prints a markdown summary (bench/perf_summary.awk).
PROF_SECONDS=$((DURATION < 8 ? 8 : DURATION))
PROF_HZ=2000
profile_variant() {
	local v=$1 pid="" tps
	db_psql bench -c "VACUUM $(tables_to_vacuum "$v")" -c 'CHECKPOINT'
	run_pgbench "$WORK/profile.$v.out" "$v" off -c 1 -j 1 -T "$((PROF_SECONDS + 3))" \
		-f "$(script_for upd_tagged "$(table_of "$v")")" &
	BG_PID=$!
	for _ in $(seq 1 50); do
		sleep 0.1
		pid=$(sa_psql -Atq -c "SELECT pid FROM pg_stat_activity WHERE datname = 'bench'
			AND application_name = 'pgbench' LIMIT 1")
		[ -z "$pid" ] || break
	done
	if [ -n "$pid" ]; then
		sleep 1
		sa_as_root perf record -q -e cpu-clock -F "$PROF_HZ" --call-graph dwarf,16384 -p "$pid" \
			-o "$WORK/perf.$v.data" -- sleep "$PROF_SECONDS" >/dev/null 2>&1 || true
	fi
	wait "$BG_PID" || true
	BG_PID=
	tps=$(awk '/^tps = / { print $3; exit }' "$WORK/profile.$v.out")
	if [ ! -s "$WORK/perf.$v.data" ] || [ -z "$tps" ]; then
		printf '(no profile of %s: perf recorded nothing)\n' "$v"
		return
	fi
	printf '**%s** (%.0f tps while profiled): ' "$v" "$tps"
	sa_as_root perf script -i "$WORK/perf.$v.data" -F ip,sym,dso 2>/dev/null |
		awk -v hz="$PROF_HZ" -v xacts="$(awk -v t="$tps" -v s="$PROF_SECONDS" 'BEGIN { print t * s }')" \
			-v top=12 -v ext=sensitive_audit.so \
			-v focus='sensitive_audit_capture|sa_link_pending|link_one|CommitTransactionCommand|PortalRun' \
			-f "$BENCH_DIR/perf_summary.awk"
	printf '\n'
}

if [ "$PROFILE" != 0 ]; then
	if ! command -v perf >/dev/null 2>&1; then
		PROFILE_TEXT="(no profile: perf is not installed)"
	elif ! sa_as_root perf record -q -e cpu-clock -o /dev/null -- true >/dev/null 2>&1; then
		PROFILE_TEXT="(no profile: perf record does not work here)"
	else
		sa_section "profile: tagged UPDATE, 1 client, plain and sa"
		PROFILE_TEXT=$(for v in plain sa; do
			if [[ " $VARIANTS " == *" $v "* ]]; then profile_variant "$v"; fi
		done)
		progress "profiles taken"
	fi
fi
fi # parts 1 to 4

# ---------------------------------------------------------------------------
# Bulk loads and large transactions
# Part 5, in a database of its own.  Rows with three tagged columns (name, ssn, balance) are
# loaded into b_plain (unaudited) and b_sa (tagged) from the same server-side CSV file, and
# from the same source table; the bound is the same work done by the log rows themselves: the
# entries one load of b_sa made, COPYed (and INSERT ... SELECTed) into b_bare, a bare copy of
# sensitive_audit.log_entries (same columns and primary key; no triggers).  The three are
# interleaved, in an order rotated each repetition, each after a CHECKPOINT; the log itself
# cannot be emptied, so it grows by one load per repetition.
sa_section "bulk loads: $BULK_ROWS rows with 3 tagged columns, $BULK_REPS repetition(s)"
sa_psql -v ON_ERROR_STOP=1 -q -c "CREATE DATABASE bulk"
db_psql bulk -c 'CREATE EXTENSION sensitive_audit' >/dev/null
sa_psql -v ON_ERROR_STOP=1 -q -c "CREATE TABLE bench_bulk (rep int, op text, variant text, seconds float8)"
sa_psql -v ON_ERROR_STOP=1 -q -c "CREATE TABLE bench_bigupdate (variant text, rows bigint, seconds float8, hwm_kb bigint, shmem_kb bigint, entries bigint)"
BULK_CSV=$WORK/bulk_rows.csv
BULK_LOG_CSV=$WORK/bulk_log.csv
db_psql bulk >/dev/null <<EOF
CREATE TABLE b_src (id int PRIMARY KEY, name text, ssn text, balance numeric, note text);
INSERT INTO b_src SELECT g, 'name ' || g, lpad(((g::bigint * 7919) % 1000000000)::text, 9, '0'),
       100 + (g % 10000) / 100.0, 'note' FROM generate_series(1, $BULK_ROWS) g;
CREATE TABLE b_plain (LIKE b_src INCLUDING ALL);
CREATE TABLE b_sa (LIKE b_src INCLUDING ALL);
SELECT sensitive_audit.tag('b_sa', 'name', 'ssn', 'balance');
CREATE TABLE b_bare (LIKE sensitive_audit.log_entries INCLUDING ALL);
CREATE TABLE b_logsrc (LIKE sensitive_audit.log_entries);
COPY b_src TO '$BULK_CSV' (FORMAT csv);
EOF

# timed_sql DB SQL: runs SQL, prints its wall-clock seconds.
timed_sql() {
	local t0 t1
	t0=$(date +%s.%N)
	db_psql "$1" -c "$2" >/dev/null
	t1=$(date +%s.%N)
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }'
}

# bulk_run REP OP VARIANT: one timed load.
bulk_run() {
	local rep=$1 op=$2 v=$3 target sql secs
	case $v in
	plain) target=b_plain ;;
	sa) target=b_sa ;;
	bare) target=b_bare ;;
	esac
	# Each load starts from an empty table.  A TRUNCATE of b_sa would record every row it
	# removes: it is dropped and made again instead (its log entries stay).
	if [ "$v" = sa ]; then
		db_psql bulk -c "DROP TABLE b_sa" -c "CREATE TABLE b_sa (LIKE b_src INCLUDING ALL)" \
			-c "SELECT sensitive_audit.tag('b_sa', 'name', 'ssn', 'balance')" >/dev/null
	else
		db_psql bulk -c "TRUNCATE $target" >/dev/null
	fi
	db_psql bulk -c "VACUUM $target" -c 'CHECKPOINT' >/dev/null
	case $op/$v in
	copy/bare) sql="COPY b_bare FROM '$BULK_LOG_CSV' (FORMAT csv)" ;;
	copy/*) sql="COPY $target FROM '$BULK_CSV' (FORMAT csv)" ;;
	insert/bare) sql="INSERT INTO b_bare SELECT * FROM b_logsrc" ;;
	insert/*) sql="INSERT INTO $target SELECT * FROM b_src" ;;
	esac
	secs=$(timed_sql bulk "$sql")
	sa_psql -v ON_ERROR_STOP=1 -q -c "INSERT INTO bench_bulk VALUES ($rep, '$op', '$v', $secs)"
	progress "bulk rep $rep/$BULK_REPS  $(printf '%-6s %-5s %8.2f s' "$op" "$v" "$secs")"
}

# The bound's input: the entries of one load of b_sa.
db_psql bulk -c "TRUNCATE b_sa" -c "COPY b_sa FROM '$BULK_CSV' (FORMAT csv)" >/dev/null
db_psql bulk >/dev/null <<EOF
INSERT INTO b_logsrc SELECT e.* FROM sensitive_audit.log_entries e
 WHERE e.txid = (SELECT max(e2.txid) FROM sensitive_audit.log_entries e2);
COPY b_logsrc TO '$BULK_LOG_CSV' (FORMAT csv);
VACUUM ANALYZE;
EOF
progress "bulk set-up: $(db_psql bulk -c 'SELECT count(*) FROM b_logsrc') log rows per load"
BULK_VARIANTS=(plain sa bare)
for ((rep = 1; rep <= BULK_REPS; rep++)); do
	for op in copy insert; do
		for ((i = 0; i < 3; i++)); do
			bulk_run "$rep" "$op" "${BULK_VARIANTS[$(((i + rep - 1) % 3))]}"
		done
	done
done
BULK_VERIFIED=$(db_psql bulk -c 'SELECT bool_and(ok) FROM sensitive_audit.verify()')

# One UPDATE of UPDATE_ROWS tagged rows in one transaction, in a fresh session each (VmHWM is
# the backend's high-water mark of resident memory, which counts the pages of shared_buffers
# it touched: RssShmem at the end, which only grows, says how much of it that is).
sa_section "one UPDATE of $UPDATE_ROWS rows in one transaction, unaudited and audited"
db_psql bulk >/dev/null <<EOF
CREATE TABLE u_plain (id int PRIMARY KEY, ssn text, note text);
INSERT INTO u_plain SELECT g, lpad(g::text, 9, '0'), 'note' FROM generate_series(1, $UPDATE_ROWS) g;
CREATE TABLE u_sa (LIKE u_plain INCLUDING ALL);
INSERT INTO u_sa SELECT * FROM u_plain;
SET client_min_messages = warning;
SELECT sensitive_audit.tag('u_sa', 'ssn');
VACUUM ANALYZE u_plain, u_sa;
CHECKPOINT;
EOF
for v in plain sa; do
	before=$(db_psql bulk -c "SELECT count(*) FROM sensitive_audit.log_entries")
	t0=$(date +%s.%N)
	read -r hwm shm <<<"$(db_psql bulk -F ' ' -c "UPDATE u_$v SET ssn = ssn || 'x'" \
		-c "SELECT substring(s from 'VmHWM:\s*(\d+)'), substring(s from 'RssShmem:\s*(\d+)')
			FROM pg_read_file('/proc/self/status') s" | tail -n 1)"
	t1=$(date +%s.%N)
	after=$(db_psql bulk -c "SELECT count(*) FROM sensitive_audit.log_entries")
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f\n", b - a }')
	sa_psql -v ON_ERROR_STOP=1 -q -c "INSERT INTO bench_bigupdate VALUES ('$v', $UPDATE_ROWS, $secs, $hwm, $shm, $((after - before)))"
	progress "UPDATE of $UPDATE_ROWS rows, $v: $secs s, VmHWM $hwm kB (RssShmem $shm kB), $((after - before)) entries"
	db_psql bulk -c 'CHECKPOINT' >/dev/null
done
BIGUPDATE_VERIFIED=$(db_psql bulk -c 'SELECT bool_and(ok) FROM sensitive_audit.verify()')
PENDING_MEMORY=$(db_psql bulk -c 'SHOW sensitive_audit.pending_memory' 2>/dev/null || echo 'not a setting of this build')

# ---------------------------------------------------------------------------
# Report

SO_SUM_END=$(md5sum "$PG_PKGLIBDIR/sensitive_audit.so" | cut -c1-12)
CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
if [ -n "$BUILD_COMMIT" ]; then
	GIT_REV="commit $BUILD_REV"
else
	GIT_REV="commit $(git_ rev-parse --short HEAD 2>/dev/null || echo unknown)"
	if [ -n "$(git_ status --porcelain -- src sql Makefile sensitive_audit.control 2>/dev/null)" ]; then
		GIT_REV+=" (src/, sql/ or Makefile modified in the work tree)"
	fi
fi
ELAPSED=$((SECONDS - T_START))

report() {
	local q
	printf '# sensitive_audit benchmark, %s\n\n' "$STARTED_AT"
	printf -- '- command: `%s` (took %dm%02ds)\n' "$COMMAND_LINE" $((ELAPSED / 60)) $((ELAPSED % 60))
	printf -- '- PostgreSQL %s; CPU: %s, %s cores; %s\n' "$PG_VERSION" "$CPU_MODEL" "$(nproc)" "$(uname -sr)"
	printf -- '- sensitive_audit: %s; %s; library md5 %s, preloaded at the start' "$GIT_REV" "$BUILD_NOTE" "$SO_SUM"
	if [ "$SO_SUM" != "$SO_SUM_END" ]; then
		printf ' (the installed library was replaced during the run, by %s; the benchmark did not load it)' "$SO_SUM_END"
	fi
	printf '\n'
	printf -- '- pgbench -M prepared, %d-row tables, %d s per run, %d repetition(s), variants interleaved (order rotated each repetition), VACUUM of the table and its log and CHECKPOINT before every run; -j = min(clients, 2)\n' \
		"$ROWS" "$DURATION" "$REPS"
	printf -- '- server: shared_buffers = 1GB, fsync = on, autovacuum = off, checkpoint_timeout = 1h, max_wal_size = 20GB, shared_preload_libraries = sensitive_audit, pgaudit (every variant; pgaudit.role = auditor only in the pgaudit sessions)\n\n'

	if [ "$BULK_ONLY" = 0 ]; then
	printf '## Throughput\n\n'
	printf 'Median tps of plain; for the others, median tps as a ratio to plain in the same cell (median tps in brackets).\n\n'
	local header='| scenario | clients | sync commit | plain tps |' sep='|---|---:|---|---:|' v
	for v in $VARIANTS; do
		[ "$v" = plain ] || { header+=" $v |"; sep+='---:|'; }
	done
	if [[ " $VARIANTS " == *" sa "* && " $VARIANTS " == *" plpgsql_chain "* ]]; then
		header+=' sa / plpgsql_chain |'
		sep+='---:|'
	fi
	printf '%s\n%s\n' "$header" "$sep"
	local cell scenario clients sync line med plain_med sa_med chain_med
	for cell in "${CELLS[@]}"; do
		read -r scenario clients sync <<<"$cell"
		line="| $(scenario_title "$scenario") | $clients | $sync |"
		q="SELECT variant, round(percentile_cont(0.5) WITHIN GROUP (ORDER BY tps)::numeric) FROM bench_runs
			WHERE scenario = '$scenario' AND clients = $clients AND sync = '$sync' AND tps IS NOT NULL GROUP BY variant"
		declare -A M=()
		while read -r v med; do
			[ -n "$v" ] && M[$v]=$med
		done < <(sa_psql -Atq -F ' ' -c "$q")
		plain_med=${M[plain]:-}
		line+=" ${plain_med:-failed} |"
		for v in $VARIANTS; do
			[ "$v" != plain ] || continue
			if [[ " $(cell_variants "$scenario" "$sync") " != *" $v "* ]]; then
				line+=' – |'
			elif [ -z "${M[$v]:-}" ] || [ -z "$plain_med" ]; then
				line+=' failed |'
			else
				line+=" $(awk -v a="${M[$v]}" -v b="$plain_med" 'BEGIN { printf "%.2f", a / b }') (${M[$v]}) |"
			fi
		done
		if [[ " $VARIANTS " == *" sa "* && " $VARIANTS " == *" plpgsql_chain "* ]]; then
			sa_med=${M[sa]:-} chain_med=${M[plpgsql_chain]:-}
			if [ -n "$sa_med" ] && [ -n "$chain_med" ]; then
				line+=" $(awk -v a="$sa_med" -v b="$chain_med" 'BEGIN { printf "%.1fx", a / b }') |"
			else
				line+=' – |'
			fi
		fi
		unset M
		printf '%s\n' "$line"
	done

	# The machine may be shared: how much CPU did everything else use during the runs?
	sa_psql -Atq -F ' ' -c "SELECT to_char(percentile_cont(0.5) WITHIN GROUP (ORDER BY other_cpu_pct), 'FM990.0'),
			to_char(max(other_cpu_pct), 'FM990.0'), to_char(max(steal_pct), 'FM990.0'),
			count(*) FILTER (WHERE other_cpu_pct > 5), count(*) FROM bench_runs" |
		while read -r med mx st noisy n; do
			printf '\nOther processes on the machine used %s%% of its CPUs during the median run (at most %s%%; %s of %s runs above 5%%); the hypervisor stole at most %s%%. ' \
				"$med" "$mx" "$noisy" "$n" "$st"
			if awk -v m="$MAX_OTHER_LOAD" 'BEGIN { exit !(m < 100) }'; then
				printf 'Before each run the benchmark waited for other processes to use at most %s%% of the CPUs (%s s of waiting in all, at most %s s); ' \
					"$MAX_OTHER_LOAD" "$WAITED" "$WAIT_BUDGET"
				printf '%s run(s) were repeated because the machine got busier than that during them (the quieter of the two runs is kept; at most %s repeats).\n' \
					"$RETRIED" "$RETRY_BUDGET"
			else
				printf 'Runs were neither delayed nor repeated for load on the machine.\n'
			fi
		done

	# Spread: per repetition, a variant's tps over plain's in the same repetition.  Runs close
	# in time pair up better on a machine whose speed drifts: where the median of these
	# paired ratios and the ratio of the medians disagree, the difference is noise.
	if [ "$REPS" -gt 1 ]; then
		printf '\nSpread over the repetitions: the ratio of each repetition'"'"'s run to the plain run of the same repetition, as median (lowest – highest); plain tps (lowest – highest); the most CPU other processes used during any of these runs.\n\n'
		printf '| scenario | clients | sync commit | sa, paired | plpgsql_chain, paired | sa / plpgsql_chain, paired | plain tps | other load |\n|---|---:|---|---|---|---|---|---:|\n'
		for cell in "${CELLS[@]}"; do
			read -r scenario clients sync <<<"$cell"
			printf '| %s | %s | %s | %s | %s | %s | %s | %s%% |\n' "$(scenario_title "$scenario")" "$clients" "$sync" \
				"$(paired_text "$scenario" "$clients" "$sync" sa)" \
				"$(paired_text "$scenario" "$clients" "$sync" plpgsql_chain)" \
				"$(paired_text "$scenario" "$clients" "$sync" sa plpgsql_chain)" \
				"$(sa_psql -Atq -F ' – ' -c "SELECT round(min(tps)::numeric), round(max(tps)::numeric) FROM bench_runs
					WHERE variant = 'plain' AND scenario = '$scenario' AND clients = $clients AND sync = '$sync'")" \
				"$(sa_psql -Atq -c "SELECT to_char(max(other_cpu_pct), 'FM990.0') FROM bench_runs
					WHERE scenario = '$scenario' AND clients = $clients AND sync = '$sync'")"
		done
	fi

	# DELETE runs must delete one row per transaction.
	local dq
	dq=$(sa_psql -Atq -F ' ' -c "SELECT variant, clients, sync, to_char(min(deleted::float8 / xacts), 'FM0.000')
		FROM bench_runs WHERE scenario = 'delete' AND xacts > 0 GROUP BY 1, 2, 3 ORDER BY 2, 3, 1")
	if [ -n "$dq" ]; then
		printf '\nDELETE runs, rows deleted per transaction (lowest over repetitions; 1 = every DELETE found its row): '
		awk '{ printf "%s%s %s", (NR > 1 ? ", " : ""), $1, $4 } END { print "" }' <<<"$dq"
	fi

	printf '\n## Verification\n\n'
	printf '| verifier | entries | best of 3 (s) | entries / s | ok |\n|---|---:|---:|---:|---|\n'
	sa_psql -Atq -F ' ' -c "SELECT verifier, max(entries), to_char(min(seconds), 'FM990.000'),
			round(max(entries) / min(seconds)), bool_and(ok) FROM bench_verify GROUP BY 1 ORDER BY 1 DESC" |
		while read -r w e s r ok; do
			case $w in
			sa) w='sensitive_audit.verify()' ;;
			plpgsql_chain) w='PL/pgSQL chain verifier (bench_audit_chain_verify)' ;;
			esac
			printf '| %s | %s | %s | %s | %s |\n' "$w" "$e" "$s" "$r" "$ok"
		done
	printf '\nBuilding the logs (%d UPDATEs of all %d rows, one transaction each): sensitive_audit %s s, PL/pgSQL chain %s s.\n' \
		"$VUPDATES" "$VROWS" "$BUILD_SA" "$BUILD_CHAIN"

	printf '\n## Storage per entry\n\n'
	printf 'After %d single-row UPDATEs of one tagged column (a 9-character text value) from 4 clients; bytes per new entry.\n\n' "$STORAGE_UPDATES"
	printf '| log | entries | heap | indexes | heap + indexes + TOAST |\n|---|---:|---:|---:|---:|\n'
	sa_psql -Atq -F ' ' -c "SELECT log, entries, round(heap::numeric / entries), round(indexes::numeric / entries),
			round(total::numeric / entries) FROM bench_storage WHERE entries > 0" |
		while read -r l e h i t; do
			case $l in
			sa) l='sensitive_audit.log (log_entries + log_contexts)' ;;
			plpgsql_chain) l='PL/pgSQL chain (bench_audit_chain)' ;;
			plpgsql_jsonb) l='PL/pgSQL jsonb log (bench_audit_jsonb)' ;;
			esac
			printf '| %s | %s | %s | %s | %s |\n' "$l" "$e" "$h" "$i" "$t"
		done

	report_targets

	if [ -n "$PROFILE_TEXT" ]; then
		printf '\n## Profile\n\n'
		printf 'One backend running the tagged single-row UPDATE (1 client, synchronous_commit off), recorded with '
		printf '`perf record -e cpu-clock -F %s --call-graph dwarf` for %s s; kernel time is charged to the user-space function that entered the kernel, ' "$PROF_HZ" "$PROF_SECONDS"
		printf 'and static functions of the (stripped) postgres binary are skipped over in the breakdowns. '
		printf 'µs per transaction = CPU samples / sampling rate / (tps x seconds profiled).\n\n%s\n' "$PROFILE_TEXT"
	fi
	fi # parts 1 to 4
	report_bulk
}

# bulk_median OP VARIANT: median seconds of a bulk load.
bulk_median() {
	sa_psql -Atq -c "SELECT to_char(percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds), 'FM99990.00')
		FROM bench_bulk WHERE op = '$1' AND variant = '$2'"
}

report_bulk() {
	local op title p a b r pr
	printf '\n## Bulk loads and large transactions\n\n'
	printf '%s rows with three tagged columns, %s repetition(s), interleaved (order rotated each repetition), CHECKPOINT before each load; ' \
		"$BULK_ROWS" "$BULK_REPS"
	printf 'the bound is the same load of the log rows one audited load made (%s of them) into a bare copy of `sensitive_audit.log_entries` (its columns and primary key, no triggers). ' \
		"$(db_psql bulk -c 'SELECT count(*) FROM b_logsrc')"
	printf 'Median seconds; overhead = audited - unaudited; in brackets the median (lowest – highest) of the same ratio within each repetition.\n\n'
	printf '| load | unaudited (s) | audited (s) | overhead (s) | bound: log rows into a bare table (s) | overhead / bound |\n|---|---:|---:|---:|---:|---:|\n'
	for op in copy insert; do
		case $op in
		copy) title='COPY FROM a CSV file' ;;
		insert) title='INSERT ... SELECT from a table' ;;
		esac
		p=$(bulk_median "$op" plain)
		a=$(bulk_median "$op" sa)
		b=$(bulk_median "$op" bare)
		r=$(awk -v p="$p" -v a="$a" -v b="$b" 'BEGIN { if (b > 0) printf "%.2f", (a - p) / b }')
		pr=$(sa_psql -Atq -F ' ' -c "SELECT to_char(percentile_cont(0.5) WITHIN GROUP (ORDER BY r), 'FM990.00'),
				to_char(min(r), 'FM990.00'), to_char(max(r), 'FM990.00')
			FROM (SELECT (s.seconds - p.seconds) / b.seconds AS r FROM bench_bulk p
				JOIN bench_bulk s USING (rep, op) JOIN bench_bulk b USING (rep, op)
				WHERE op = '$op' AND p.variant = 'plain' AND s.variant = 'sa' AND b.variant = 'bare') x" |
			awk '{ printf "%s (%s – %s)", $1, $2, $3 }')
		printf '| %s | %s | %s | %s | %s | %s |\n' "$title" "$p" "$a" \
			"$(awk -v p="$p" -v a="$a" 'BEGIN { printf "%.2f", a - p }')" "$b" "${r}x; paired ${pr}"
	done
	printf '\nThe log verified afterwards: %s.\n\n' "$BULK_VERIFIED"
	printf 'One UPDATE of every row of a %s-row table, one tagged column, in one transaction (a fresh session each; sensitive_audit.pending_memory = %s). ' \
		"$UPDATE_ROWS" "$PENDING_MEMORY"
	printf 'VmHWM is the backend'"'"'s peak resident memory, which includes the pages of shared_buffers (1GB here) it touched; RssShmem at the end says how many those were (they stay mapped), and VmHWM - RssShmem is the peak of its own memory, roughly.\n\n'
	printf '| table | seconds | entries | VmHWM (MB) | RssShmem at end (MB) | VmHWM - RssShmem (MB) |\n|---|---:|---:|---:|---:|---:|\n'
	sa_psql -Atq -F ' ' -c "SELECT variant, seconds, entries, round(hwm_kb / 1024.0), round(shmem_kb / 1024.0),
			round((hwm_kb - shmem_kb) / 1024.0) FROM bench_bigupdate ORDER BY variant" |
		while read -r v secs n h sh d; do
			case $v in
			plain) v=unaudited ;;
			sa) v='audited (`sensitive_audit.tag()`)' ;;
			esac
			printf '| %s | %s | %s | %s | %s | %s |\n' "$v" "$secs" "$n" "$h" "$sh" "$d"
		done
	printf '\nThe log verified afterwards: %s.\n' "$BIGUPDATE_VERIFIED"
}

# ratio SCENARIO CLIENTS SYNC VARIANT [BASE]: median tps of VARIANT over median tps of BASE
# (default plain) in a cell, as DESIGN.md defines the targets; empty if not measured.
ratio() {
	sa_psql -Atq -c "SELECT to_char(percentile_cont(0.5) WITHIN GROUP (ORDER BY tps) FILTER (WHERE variant = '$4')
			/ percentile_cont(0.5) WITHIN GROUP (ORDER BY tps) FILTER (WHERE variant = '${5:-plain}'), 'FM990.00')
		FROM bench_runs WHERE scenario = '$1' AND clients = $2 AND sync = '$3' AND tps IS NOT NULL"
}

# paired SCENARIO CLIENTS SYNC VARIANT [BASE]: "median lowest highest" of the per-repetition
# ratios VARIANT tps / BASE tps; empty if not measured.
paired() {
	sa_psql -Atq -F ' ' -c "SELECT to_char(percentile_cont(0.5) WITHIN GROUP (ORDER BY s.tps / p.tps), 'FM990.00'),
			to_char(min(s.tps / p.tps), 'FM990.00'), to_char(max(s.tps / p.tps), 'FM990.00')
		FROM bench_runs p JOIN bench_runs s USING (rep, scenario, clients, sync)
		WHERE p.variant = '${5:-plain}' AND s.variant = '$4' AND scenario = '$1' AND clients = $2
		  AND sync = '$3' AND p.tps IS NOT NULL AND s.tps IS NOT NULL HAVING count(*) > 0"
}

paired_text() {
	local m lo hi
	read -r m lo hi <<<"$(paired "$@")"
	if [ -n "$m" ]; then printf '%s (%s – %s)' "$m" "$lo" "$hi"; else printf '–'; fi
}

# target_row TEXT MEASURED VERDICT: VERDICT is 1 (met), 0 (missed), b (borderline) or empty.
target_row() {
	local verdict=${3:-}
	case $verdict in
	1) verdict=yes ;;
	0) verdict='**no**' ;;
	b) verdict='borderline: the two estimates disagree' ;;
	*) verdict='not measured' ;;
	esac
	printf '| %s | %s | %s |\n' "$1" "${2:-–}" "$verdict"
}

ge() { # ge VALUE MIN: 1 if VALUE >= MIN, 0 if not, empty if VALUE is empty
	[ -n "$1" ] || return 0
	awk -v a="$1" -v b="$2" 'BEGIN { print (a + 0 >= b + 0) ? 1 : 0 }'
}

# ratio_target TEXT SCENARIO CLIENTS SYNC VARIANT BASE MIN UNIT: one row for a throughput
# target, judged on the ratio of medians (DESIGN.md's definition) and cross-checked with the
# median of the per-repetition ratios.
ratio_target() {
	local text=$1 scenario=$2 clients=$3 sync=$4 variant=$5 base=$6 min=$7 unit=$8 r m lo hi v1 v2
	r=$(ratio "$scenario" "$clients" "$sync" "$variant" "$base")
	if [ -z "$r" ]; then
		target_row "$text" "" ""
		return
	fi
	read -r m lo hi <<<"$(paired "$scenario" "$clients" "$sync" "$variant" "$base")"
	v1=$(ge "$r" "$min")
	if [ "$REPS" -gt 1 ] && [ -n "$m" ]; then
		v2=$(ge "$m" "$min")
		[ "$v1" = "$v2" ] || v1=b
		target_row "$text" "$r$unit (paired: $m$unit, $lo – $hi)" "$v1"
	else
		target_row "$text" "$r$unit" "$v1"
	fi
}

report_targets() {
	printf '\n## Targets (DESIGN.md, "Performance targets")\n\n'
	printf 'Throughput targets are judged, as DESIGN.md defines them, on the ratio of median tps, with synchronous_commit off (the hard, CPU-bound case) unless noted; '
	printf 'in brackets, the median (lowest – highest) of the ratios within each repetition, which pairs runs made close in time.\n\n'
	printf '| target | measured | met |\n|---|---|---|\n'
	local c r r1 r4 p1 p4 s v1 v2
	for c in 1 4; do
		ratio_target "tagged single-row UPDATE, $c client(s): sa >= 0.75 of plain" upd_tagged "$c" off sa plain 0.75 ""
	done
	[ -z "$(ratio upd_tagged 4 on sa)" ] ||
		ratio_target "tagged single-row UPDATE, 4 clients, synchronous_commit on: sa >= 0.75" upd_tagged 4 on sa plain 0.75 ""
	r1=$(ratio upd_tagged 1 off sa)
	r4=$(ratio upd_tagged 4 off sa)
	if [ -n "$r1" ] && [ -n "$r4" ]; then
		v1=$(awk -v a="$r4" -v b="$r1" 'BEGIN { print (a + 0.02 >= b) ? 1 : 0 }')
		read -r p1 _ _ <<<"$(paired upd_tagged 1 off sa)"
		read -r p4 _ _ <<<"$(paired upd_tagged 4 off sa)"
		if [ "$REPS" -gt 1 ] && [ -n "$p1" ] && [ -n "$p4" ]; then
			v2=$(awk -v a="$p4" -v b="$p1" 'BEGIN { print (a + 0.02 >= b) ? 1 : 0 }')
			[ "$v1" = "$v2" ] || v1=b
			target_row "no loss going from 1 to 4 clients (sa ratio at 4 >= ratio at 1, 0.02 allowed for noise)" \
				"$r1 at 1 client, $r4 at 4 (paired: $p1, $p4)" "$v1"
		else
			target_row "no loss going from 1 to 4 clients (sa ratio at 4 >= ratio at 1, 0.02 allowed for noise)" \
				"$r1 at 1 client, $r4 at 4" "$v1"
		fi
	else
		target_row "no loss going from 1 to 4 clients" "" ""
	fi
	for c in 1 4; do
		[ -z "$(ratio upd_untagged "$c" off sa)" ] && [ "$c" = 1 ] && continue
		ratio_target "UPDATE of untagged columns only, $c client(s): sa >= 0.97" upd_untagged "$c" off sa plain 0.97 ""
	done
	ratio_target "tagged UPDATE, 4 clients: sa >= 3x the hash-chained PL/pgSQL trigger" upd_tagged 4 off sa plpgsql_chain 3 x
	[ -z "$(ratio txn10 4 off sa plpgsql_chain)" ] ||
		ratio_target "10-UPDATE transactions, 4 clients: sa >= 3x the hash-chained PL/pgSQL trigger" txn10 4 off sa plpgsql_chain 3 x
	for s in insert delete; do
		c=4
		[ -n "$(ratio "$s" 4 off sa)" ] || c=1
		ratio_target "${s^^} of rows with 3 tagged columns, $c client(s): sa >= 0.6" "$s" "$c" off sa plain 0.6 ""
	done
	r=$(sa_psql -Atq -c "SELECT round(max(entries) / min(seconds)) FROM bench_verify WHERE verifier = 'sa'")
	target_row "verification >= 1,000,000 entries/s on one core" "${r:+$r entries/s}" "$(ge "$r" 1000000)"
	for op in copy insert; do
		r=$(awk -v p="$(bulk_median "$op" plain)" -v a="$(bulk_median "$op" sa)" -v b="$(bulk_median "$op" bare)" \
			'BEGIN { if (b > 0) printf "%.2f", (a - p) / b }')
		target_row "bulk ${op^^} of rows with 3 tagged columns: audited - unaudited <= 1.2x the same log rows into a bare table" \
			"${r:+${r}x}" "$( [ -z "$r" ] || awk -v a="$r" 'BEGIN { print (a <= 1.2) ? 1 : 0 }')"
	done
	r=$(sa_psql -Atq -c "SELECT round(total::numeric / entries) FROM bench_storage WHERE log = 'sa' AND entries > 0")
	target_row "storage <= 250 bytes per single-column entry with short values" "${r:+$r bytes}" "$( [ -z "$r" ] || awk -v a="$r" 'BEGIN { print (a <= 250) ? 1 : 0 }')"
}

mkdir -p "$BENCH_DIR/results"
REPORT="$BENCH_DIR/results/$STAMP.md"
CSV="$BENCH_DIR/results/$STAMP.csv"
report >"$REPORT"
printf '\nRaw numbers of every run: bench/results/%s.csv\n' "$STAMP" >>"$REPORT"
sa_psql -Atq -c "COPY (SELECT * FROM bench_runs ORDER BY rep, scenario, clients, sync, variant) TO STDOUT WITH (FORMAT csv, HEADER)" >"$CSV"
sa_section "report (also in bench/results/$STAMP.md)"
cat "$REPORT"
