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

# The CPU the cluster has used so far, in jiffies: the postmaster, its live children and the
# children it has reaped (backends that have exited), from /proc.
server_jiffies() {
	local pm
	pm=$(head -n 1 "$SA_PGDATA/postmaster.pid")
	# (processes that end while cat reads make it fail: that is no error here)
	{ cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v pm="$pm" '{
			pid = $1
			sub(/^.*\) /, "")
			if ($2 == pm) t += $12 + $13
			if (pid == pm) t += $12 + $13 + $14 + $15
		} END { printf "%d", t }'
}

# bench_tps_cpu [NAME=VALUE ...] -- PGBENCH-ARGS...: like bench_tps, printing "tps cpu" where
# cpu is the cluster's CPU time per transaction in microseconds, counted until the event
# workers have written what the run queued (a quieter figure than tps on a shared machine:
# time stolen by neighbours does not inflate it).
bench_tps_cpu() {
	local envs=() out before after n
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		envs+=("$1")
		shift
	done
	shift
	before=$(server_jiffies)
	out=$(sa_as_user PGHOST="$SA_SOCKDIR" PGPORT="$SA_PORT_USED" PGUSER="$SA_PGUSER" PGDATABASE=postgres \
		"${envs[@]}" pgbench -n "$@" 2>/dev/null)
	sleep 1
	after=$(server_jiffies)
	n=$(awk '/number of transactions actually processed/ { split($NF, a, "/"); print a[1] }' <<<"$out")
	awk -v out="$(awk '/^tps/ { print int($3) }' <<<"$out")" -v j=$((after - before)) -v n="${n:-0}" \
		-v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%s %.1f\n", out, (n > 0 ? j * 1e6 / hz / n : 0) }'
}
