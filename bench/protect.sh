#!/usr/bin/env bash
# bench/protect.sh — what each protection mode costs on the write path.
#
# The single-row UPDATE of a tagged column (bench/pgbench/upd_tagged.sql: balance, 1 and 4
# clients) on five copies of the same table, interleaved and repeated, against one throwaway
# cluster (scripts/lib.sh, the library preloaded as in the tests):
#   plain        no auditing
#   sa           sensitive_audit.tag() on name, ssn, balance (values in clear, format 1)
#   fingerprint  the same, balance protected as 'fingerprint' (HMAC-SHA-256)
#   encrypt      the same, balance protected as 'encrypt' (sealed to an X25519 key)
#   erasable     the same, balance protected as 'erasable' (salted commitment; salt and
#                value written to erasable_values in the same transaction)
# reported as median tps and as ratios to the unaudited table measured in the same run.
#
# Usage: bench/protect.sh [--duration S] [--reps N] [--no-build]
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
source "$BENCH_DIR/../scripts/lib.sh"
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"

DURATION=10
REPS=3
BUILD=1
COMMAND_LINE="bench/protect.sh $*"
while [ $# -gt 0 ]; do
	case $1 in
		--duration) DURATION=$2; shift 2 ;;
		--reps) REPS=$2; shift 2 ;;
		--no-build) BUILD=0; shift ;;
		-h | --help) sed -n '2,15p' "$0"; exit 0 ;;
		*) sa_die "unknown option $1" ;;
	esac
done

bench_start "$BUILD"

KEY=$(openssl genpkey -algorithm X25519 2>/dev/null | openssl pkey -pubout)
cp "$BENCH_DIR/setup.sql" "$BENCH_DIR/plpgsql_chain.sql" "$WORK/"
if sa_is_root; then chown "$SA_USER": "$WORK"/*.sql; fi
q -c 'CREATE EXTENSION pgcrypto' -c 'CREATE EXTENSION sensitive_audit' \
	-f "$WORK/plpgsql_chain.sql" -f "$WORK/setup.sql" \
	-c "SELECT sensitive_audit.set_encryption_key(\$k\$$KEY\$k\$)" >/dev/null
VARIANTS="plain sa fingerprint encrypt erasable"
for v in $VARIANTS; do
	kind=$v
	[ "$v" = plain ] || kind=sa
	q -c "SELECT bench_create_table('t_$v', 100000)" -c "SELECT bench_instrument('t_$v', '$kind')" >/dev/null 2>&1
	case $v in
		fingerprint | encrypt | erasable) q -c "SELECT sensitive_audit.protect('t_$v', 'balance', '$v')" >/dev/null ;;
	esac
	sed "s/@T@/t_$v/g" "$BENCH_DIR/pgbench/upd_tagged.sql" | sa_as_user tee "$WORK/upd.$v.sql" >/dev/null
done
q -c 'VACUUM ANALYZE' -c 'CHECKPOINT' >/dev/null
tps() { bench_tps -- -M prepared -T "$DURATION" -c "$2" -j "$2" -D rows=100000 -f "$WORK/upd.$1.sql"; }
results=()
for rep in $(seq 1 "$REPS"); do
	for c in 1 4; do
		for v in $VARIANTS; do
			results+=("$rep $v.$c $(tps "$v" "$c")")
		done
	done
done
FORMAT2=$(q -c 'SELECT count(*) FROM sensitive_audit.log_entries WHERE format = 2')
VERIFIED=$(q -c 'SELECT bool_and(ok) FROM sensitive_audit.verify()')
declare -A M
for v in $VARIANTS; do
	for c in 1 4; do
		M[$v.$c]=$(printf '%s\n' "${results[@]}" | awk -v v="$v.$c" '$2 == v { print $3 }' | median)
	done
done
row() {
	printf '| %s | %s | %s | %s | %s |\n' "$1" "${M[$2.1]}" "$(r "${M[$2.1]}" "${M[plain.1]}")" \
		"${M[$2.4]}" "$(r "${M[$2.4]}" "${M[plain.4]}")"
}
cat <<EOT
## Protection modes on the write path ($(date -u '+%Y-%m-%d'), \`$COMMAND_LINE\`)

Single-row UPDATE of a tagged column (balance), ${DURATION} s x $REPS, medians; $FORMAT2 format 2
entries written, verify(): $VERIFIED.

| variant | tps, 1 client | ratio | tps, 4 clients | ratio |
| --- | --- | --- | --- | --- |
$(row unaudited plain)
$(row "tagged, plain" sa)
$(row "tagged, balance fingerprint" fingerprint)
$(row "tagged, balance encrypt" encrypt)
$(row "tagged, balance erasable" erasable)

Runs: $(printf '%s; ' "${results[@]}")
EOT
