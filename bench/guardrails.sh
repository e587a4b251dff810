#!/usr/bin/env bash
# bench/guardrails.sh — what a guardrail costs on the write path.
#
# The single-row UPDATE of a tagged column (bench/pgbench/upd_tagged.sql, 4 clients) on four
# copies of the same table, interleaved and repeated, against one throwaway cluster
# (scripts/lib.sh, the library preloaded as in the tests):
#   plain    no auditing
#   sa       sensitive_audit.tag() on name, ssn, balance
#   policy   the same, and a policy on balance with every rule: allowed roles (the role
#            updating is a member), at most 1000 rows per statement, at most 10^12 rows per
#            hour, action block
#   alert    the same policy with action alert (never triggered: the rules hold)
# reported as median tps and as ratios to the unaudited table measured in the same run, with
# the spread of the paired ratios and the cluster's CPU time per transaction; and two SELECTs
# of the log (4 clients), one entry by its key and a page of 50 entries, with
# sensitive_audit.log_reads off and on (each read then a READ entry, written by the event
# worker), as ratios of the two.
#
# Usage: bench/guardrails.sh [--duration S] [--reps N] [--no-build]
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
source "$BENCH_DIR/../scripts/lib.sh"
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"

DURATION=10
REPS=3
BUILD=1
COMMAND_LINE="bench/guardrails.sh $*"
while [ $# -gt 0 ]; do
	case $1 in
		--duration) DURATION=$2; shift 2 ;;
		--reps) REPS=$2; shift 2 ;;
		--no-build) BUILD=0; shift ;;
		-h | --help) sed -n '2,18p' "$0"; exit 0 ;;
		*) sa_die "unknown option $1" ;;
	esac
done

bench_start "$BUILD"

cp "$BENCH_DIR/setup.sql" "$BENCH_DIR/plpgsql_chain.sql" "$WORK/"
if sa_is_root; then chown "$SA_USER": "$WORK"/*.sql; fi
q -c 'CREATE EXTENSION pgcrypto' -c 'CREATE EXTENSION sensitive_audit' \
	-f "$WORK/plpgsql_chain.sql" -f "$WORK/setup.sql" -c 'CREATE ROLE bench_payroll' \
	-c 'GRANT bench_payroll TO postgres' >/dev/null
VARIANTS="plain sa policy alert"
for v in $VARIANTS; do
	kind=$v
	[ "$v" = plain ] || kind=sa
	q -c "SELECT bench_create_table('t_$v', 100000)" -c "SELECT bench_instrument('t_$v', '$kind')" >/dev/null 2>&1
	sed "s/@T@/t_$v/g" "$BENCH_DIR/pgbench/upd_tagged.sql" | sa_as_user tee "$WORK/upd.$v.sql" >/dev/null
done
q -c "SELECT sensitive_audit.set_policy('t_policy', 'balance', ARRAY['bench_payroll'], 1000, 1000000000000, 'block')" \
	-c "SELECT sensitive_audit.set_policy('t_alert', 'balance', ARRAY['bench_payroll'], 1000, 1000000000000, 'alert')" \
	-c 'VACUUM ANALYZE' -c 'CHECKPOINT' >/dev/null
tps() { bench_tps_cpu -- -M prepared -T "$DURATION" -c 4 -j 2 -D rows=100000 -f "$WORK/upd.$1.sql"; }
results=()
# each run starts after a checkpoint, so that none pays for another's full-page writes, and
# each repetition starts the variants at another place, so that none always follows the same
rotated() { local n=$1; shift; local a=("$@"); printf '%s\n' "${a[@]:n % ${#a[@]}}" "${a[@]:0:n % ${#a[@]}}"; }
for rep in $(seq 1 "$REPS"); do
	for v in $(rotated "$rep" $VARIANTS); do
		q -c 'CHECKPOINT' >/dev/null
		results+=("$rep $v $(tps "$v")")
	done
done
# reads of the log: one entry by its key (the worst case: the cheapest read there is), and a
# page of 50 consecutive entries of a chain (what an auditor's query reads)
q -c "INSERT INTO t_sa SELECT g, 'n', 's', 1, 'x', 0 FROM generate_series(900001, 920000) g" >/dev/null
printf '%s\n' '\set s random(1, 20000)' 'SELECT new_value FROM sensitive_audit.log WHERE chain = :c AND seq = :s;' |
	sa_as_user tee "$WORK/read_point.sql" >/dev/null
printf '%s\n' '\set s random(1, 19950)' \
	'SELECT * FROM sensitive_audit.log WHERE chain = :c AND seq BETWEEN :s AND :s + 49;' |
	sa_as_user tee "$WORK/read_page.sql" >/dev/null
CHAIN=$(q -c 'SELECT chain FROM sensitive_audit.log_entries GROUP BY chain ORDER BY count(*) DESC LIMIT 1')
q -c 'VACUUM ANALYZE' -c 'CHECKPOINT' >/dev/null
read_tps() {
	bench_tps_cpu PGOPTIONS="-c sensitive_audit.log_reads=$2" -- \
		-M prepared -T "$DURATION" -c 4 -j 2 -D c="$CHAIN" -f "$WORK/read_$1.sql"
}
for rep in $(seq 1 "$REPS"); do
	for query in point page; do
		for mode in $(rotated "$rep" off on); do
			q -c 'CHECKPOINT' >/dev/null
			results+=("$rep ${query}_$mode $(read_tps "$query" "$mode")")
		done
	done
done
declare -A M C
for v in $VARIANTS point_off point_on page_off page_on; do
	M[$v]=$(printf '%s\n' "${results[@]}" | awk -v v="$v" '$2 == v { print $3 }' | median)
	C[$v]=$(printf '%s\n' "${results[@]}" | awk -v v="$v" '$2 == v { print $4 }' | median)
done
# the spread of the paired ratios, repetition by repetition
spread() {
	printf '%s\n' "${results[@]}" | awk -v a="$1" -v b="$2" -v f="$3" '
		$2 == a { x[$1] = $f } $2 == b { y[$1] = $f }
		END { lo = 1e9; hi = -1e9; for (k in x) if (k in y && y[k] > 0) { q = x[k] / y[k]; if (q < lo) lo = q; if (q > hi) hi = q }
			  printf "%.2f-%.2f", lo, hi }'
}
cat <<EOT
## Guardrails on the write path ($(date -u '+%Y-%m-%d'), \`$COMMAND_LINE\`)

Single-row UPDATE of a tagged column, 4 clients, ${DURATION} s x $REPS, medians (tps; the cluster's
CPU time per transaction, background processes and event workers included):

| variant | tps | ratio to unaudited (spread) | CPU µs/tx | CPU ratio to unaudited |
| --- | --- | --- | --- | --- |
| unaudited | ${M[plain]} | 1.00 | ${C[plain]} | 1.00 |
| tagged | ${M[sa]} | $(r "${M[sa]}" "${M[plain]}") ($(spread sa plain 3)) | ${C[sa]} | $(r "${C[sa]}" "${C[plain]}") |
| tagged, a policy with every rule (block) | ${M[policy]} | $(r "${M[policy]}" "${M[plain]}") ($(spread policy plain 3)) | ${C[policy]} | $(r "${C[policy]}" "${C[plain]}") |
| tagged, the same policy (alert) | ${M[alert]} | $(r "${M[alert]}" "${M[plain]}") ($(spread alert plain 3)) | ${C[alert]} | $(r "${C[alert]}" "${C[plain]}") |

Reads of the log, 4 clients, ${DURATION} s x $REPS, medians, sensitive_audit.log_reads off and on
(on: a READ entry per statement, written by the event worker):

| SELECT | tps off | tps on | ratio (spread) | CPU µs/stmt off | on | CPU ratio |
| --- | --- | --- | --- | --- | --- | --- |
| one entry by (chain, seq) | ${M[point_off]} | ${M[point_on]} | $(r "${M[point_on]}" "${M[point_off]}") ($(spread point_on point_off 3)) | ${C[point_off]} | ${C[point_on]} | $(r "${C[point_on]}" "${C[point_off]}") |
| 50 consecutive entries of a chain | ${M[page_off]} | ${M[page_on]} | $(r "${M[page_on]}" "${M[page_off]}") ($(spread page_on page_off 3)) | ${C[page_off]} | ${C[page_on]} | $(r "${C[page_on]}" "${C[page_off]}") |

Runs (rep variant tps cpu): $(printf '%s; ' "${results[@]}")
EOT
