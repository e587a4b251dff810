#!/usr/bin/env bash
# bench/cli_verify.sh — end-to-end speed of `sensitive-audit verify --db` over a local
# socket, against a throwaway cluster, as entries per second and as ratios to baselines
# measured in the same run, interleaved and repeated:
#   copy       psql reading the same rows with the same COPY ... TO STDOUT (FORMAT binary)
#              into /dev/null: what the server alone takes to send them (the floor);
#   sql        SELECT * FROM sensitive_audit.verify() (the extension's own verifier);
#   cli_j1     sensitive-audit verify --db --jobs 1 (one connection);
#   cli_j2     sensitive-audit verify --db --jobs 2 (chains split over two connections);
#   bundle     sensitive-audit verify --bundle of an export of the same log.
# The log is written by four concurrent sessions (so its entries spread over four chains),
# INSERTs of rows with one tagged column and then UPDATEs of all of them, and covered by one
# signed checkpoint (so the trees are checked too).
#
# Usage: bench/cli_verify.sh [--entries N] [--reps N] [--no-build]
#   --entries N   log size (default 2000000)
#   --reps N      repetitions of each measurement (default 5; the median is reported)
#   --no-build    use the installed extension and program
#   SA_PG_BIN     PostgreSQL's bin directory (default /usr/lib/postgresql/15/bin)
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
source "$BENCH_DIR/../scripts/lib.sh"

ENTRIES=2000000
REPS=5
BUILD=1
while [ $# -gt 0 ]; do
	case $1 in
	--entries) ENTRIES=$2; shift 2 ;;
	--reps) REPS=$2; shift 2 ;;
	--no-build) BUILD=0; shift ;;
	-h | --help) sed -n '2,22p' "$0"; exit 0 ;;
	*) sa_die "unknown option $1" ;;
	esac
done

if [ "$BUILD" = 1 ]; then
	sa_install_deps
	sa_build_and_install >/dev/null
fi
command -v sensitive-audit >/dev/null || sa_die "sensitive-audit is not installed in $SA_PG_BIN"

sa_pick_user
WORK=$(sa_mktemp_dir)
cleanup() {
	sa_cluster_stop
	rm -rf "$WORK"
}
trap cleanup EXIT
sa_cluster_start "$WORK" >/dev/null
sa_as_user tee -a "$SA_PGDATA/postgresql.conf" >/dev/null <<<"sensitive_audit.chains = 4"
sa_as_user pg_ctl --pgdata="$SA_PGDATA" --wait restart --log="$SA_CLUSTER_LOG" >/dev/null

CONN="host=$SA_SOCKDIR port=$SA_PORT_USED user=$SA_PGUSER dbname=postgres"
psql_q() { sa_psql -q -v ON_ERROR_STOP=1 "$@"; }

ROWS=$((ENTRIES / 2 / 4))
psql_q -c "CREATE EXTENSION sensitive_audit;
	CREATE TABLE t (id integer PRIMARY KEY, s text);
	SELECT sensitive_audit.tag('t', 's');" >/dev/null
for part in 0 1 2 3; do
	psql_q -c "INSERT INTO t SELECT g, 'value ' || g FROM generate_series($part * $ROWS + 1, ($part + 1) * $ROWS) g" &
done
wait
for part in 0 1 2 3; do
	psql_q -c "UPDATE t SET s = s || '.1' WHERE id BETWEEN $part * $ROWS + 1 AND ($part + 1) * $ROWS" &
done
wait
N=$(psql_q -At -c "SELECT count(*) FROM sensitive_audit.log_entries")
CHAINS=$(psql_q -At -c "SELECT count(DISTINCT chain) FROM sensitive_audit.log_entries")

sa_as_user sensitive-audit keygen --name bench --private "$WORK/k" --public "$WORK/k.pub" >/dev/null
sa_as_user sensitive-audit checkpoint --db "$CONN" --key "$WORK/k" --state "$WORK/state" >/dev/null
sa_as_user sensitive-audit export --db "$CONN" --out "$WORK/log.bundle" >/dev/null
psql_q -c "VACUUM ANALYZE" >/dev/null

COPY_SQL="COPY (SELECT e.chain, e.seq, e.txid, e.event_time, e.context, e.format, e.row_key, e.old_value, e.new_value, e.backend_pid, e.prev_hash, e.hash FROM sensitive_audit.log_entries e ORDER BY e.chain, e.seq) TO STDOUT (FORMAT binary)"

# seconds of one run of a command (as the cluster's user); fails if it fails
timed() {
	local t0 t1
	t0=$(date +%s.%N)
	sa_as_user "$@" >/dev/null || sa_die "failed: $*"
	t1=$(date +%s.%N)
	echo "$t1 - $t0" | bc -l
}

declare -A RUNS
NAMES=(copy sql cli_j1 cli_j2 bundle)
for rep in $(seq "$REPS"); do
	RUNS[copy]+=" $(timed env PGHOST="$SA_SOCKDIR" PGPORT="$SA_PORT_USED" PGUSER="$SA_PGUSER" psql -X -q -d postgres -c "$COPY_SQL" -o /dev/null)"
	RUNS[sql]+=" $(timed env PGHOST="$SA_SOCKDIR" PGPORT="$SA_PORT_USED" PGUSER="$SA_PGUSER" psql -X -q -d postgres -c "SELECT * FROM sensitive_audit.verify()")"
	RUNS[cli_j1]+=" $(timed sensitive-audit verify --db "$CONN" --pubkey "$WORK/k.pub" --state "$WORK/state" --jobs 1)"
	RUNS[cli_j2]+=" $(timed sensitive-audit verify --db "$CONN" --pubkey "$WORK/k.pub" --state "$WORK/state" --jobs 2)"
	RUNS[bundle]+=" $(timed sensitive-audit verify --bundle "$WORK/log.bundle" --pubkey "$WORK/k.pub" --state "$WORK/state")"
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
spread() { tr ' ' '\n' | grep -v '^$' | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.2f-%.2f", lo, hi }'; }

BASE=$(median <<<"${RUNS[copy]}")
echo "## sensitive-audit verify: $N entries in $CHAINS chains, $REPS repetitions, $(nproc) cores"
echo
echo "Command: \`bench/cli_verify.sh --entries $ENTRIES --reps $REPS\`; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| measurement | median s | spread s | entries/s | time / COPY alone |"
echo "| --- | ---: | ---: | ---: | ---: |"
for name in "${NAMES[@]}"; do
	m=$(median <<<"${RUNS[$name]}")
	printf '| %s | %.2f | %s | %.0f | %.2f |\n' "$name" "$m" "$(spread <<<"${RUNS[$name]}")" \
		"$(echo "$N / $m" | bc -l)" "$(echo "$m / $BASE" | bc -l)"
done
