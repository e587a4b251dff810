# bench/lib.sh — what the benchmark scripts beside bench/run.sh share (source it after
# scripts/lib.sh).

# bench_start BUILD: install and build unless BUILD is 0, then a throwaway cluster in a new
# WORK directory (scripts/lib.sh), stopped and removed on exit.
bench_start() {
	if [ "$1" = 1 ]; then
		sa_install_deps
		sa_build_and_install
	fi
	sa_pick_user
	WORK=$(sa_mktemp_dir)
	trap 'sa_cluster_stop; rm -rf "$WORK"' EXIT
	sa_cluster_start "$WORK" >&2
}

# psql against the cluster's postgres database, stopping at the first error.
q() { sa_psql -v ON_ERROR_STOP=1 -Atq "$@"; }

# bench_tps [NAME=VALUE ...] -- PGBENCH-ARGS...: pgbench against the cluster (database
# postgres unless PGDATABASE=... is given), as the cluster's user, printing its tps.
bench_tps() {
	local envs=()
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		envs+=("$1")
		shift
	done
	shift
	sa_as_user PGHOST="$SA_SOCKDIR" PGPORT="$SA_PORT_USED" PGUSER="$SA_PGUSER" PGDATABASE=postgres \
		"${envs[@]}" pgbench -n "$@" 2>/dev/null | awk '/^tps/ { print int($3) }'
}

# The median of the numbers on stdin, one per line.
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# r A B: A / B with two decimals.
r() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
