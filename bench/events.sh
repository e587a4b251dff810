#!/usr/bin/env bash
# bench/events.sh — what recording authorization changes and failed logins costs
# (DESIGN.md, "Events no transaction can write").
#
# Against one throwaway cluster (scripts/lib.sh, the library preloaded as in the tests):
#   1. a GRANT and a REVOKE on a table, one transaction each (pgbench, 1 client), in a
#      database with the extension (two entries per pair) against a database without it,
#      interleaved and repeated; reported as the ratio to the database without it;
#   2. failed password logins one after the other: how long after the client sees its login
#      refused the LOGIN FAILED entry is in the log (polled by the server every 5 ms), against
#      how long the refused login itself took.
# Writes a markdown report to stdout.
#
# Usage: bench/events.sh [--duration S] [--reps N] [--logins N] [--no-build]
#   --duration S   seconds per pgbench run (default 10)
#   --reps N       repetitions of the GRANT/REVOKE pair (default 3)
#   --logins N     failed logins timed (default 50)
#   --no-build     do not build and install the extension first
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
source "$BENCH_DIR/../scripts/lib.sh"
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"

DURATION=10
REPS=3
LOGINS=50
BUILD=1
COMMAND_LINE="bench/events.sh $*"
while [ $# -gt 0 ]; do
	case $1 in
		--duration) DURATION=$2; shift 2 ;;
		--reps) REPS=$2; shift 2 ;;
		--logins) LOGINS=$2; shift 2 ;;
		--no-build) BUILD=0; shift ;;
		-h | --help) sed -n '2,17p' "$0"; exit 0 ;;
		*) sa_die "unknown option $1" ;;
	esac
done

bench_start "$BUILD"


# a role that logs in with a password (everyone else: trust, as the cluster is set up)
{
	echo 'local all bench_pw scram-sha-256'
	cat "$SA_PGDATA/pg_hba.conf"
} | sa_as_user tee "$WORK/pg_hba.conf" >/dev/null
sa_as_user cp "$WORK/pg_hba.conf" "$SA_PGDATA/pg_hba.conf"
q -c "SET password_encryption = 'scram-sha-256'" -c "CREATE ROLE bench_pw LOGIN PASSWORD 'bench-right-pw'" \
	-c 'CREATE ROLE bench_grantee' -c 'CREATE DATABASE audited' -c 'CREATE DATABASE plain' \
	-c 'SELECT pg_reload_conf()' >/dev/null
q -d audited -c 'CREATE EXTENSION sensitive_audit' -c 'CREATE TABLE t (id int PRIMARY KEY, v text)' >/dev/null
q -d plain -c 'CREATE TABLE t (id int PRIMARY KEY, v text)' >/dev/null

# 1. GRANT and REVOKE
printf '%s\n' 'GRANT SELECT ON t TO bench_grantee;' 'REVOKE SELECT ON t FROM bench_grantee;' |
	sa_as_user tee "$WORK/grant.sql" >/dev/null
tps() { bench_tps PGDATABASE="$1" -- -T "$DURATION" -c 1 -f "$WORK/grant.sql"; }
ratios=()
rows=()
for rep in $(seq 1 "$REPS"); do
	p=$(tps plain)
	a=$(tps audited)
	r=$(awk -v a="$a" -v p="$p" 'BEGIN { printf "%.2f", a / p }')
	ratios+=("$r")
	rows+=("| $rep | $p | $a | $r |")
done
ENTRIES=$(q -d audited -c "SELECT count(*) FROM sensitive_audit.log WHERE operation IN ('GRANT', 'REVOKE')")
OK=$(q -d audited -c 'SELECT bool_and(ok) FROM sensitive_audit.verify()')

# 2. failed logins
now() { date +%s.%N; }
lat=()
att=()
for _ in $(seq 1 "$LOGINS"); do
	before=$(q -d audited -c "SELECT count(*) FROM sensitive_audit.log WHERE operation = 'LOGIN FAILED'")
	t0=$(now)
	sa_as_user PGHOST="$SA_SOCKDIR" PGPORT="$SA_PORT_USED" PGPASSWORD=bench-wrong-pw \
		psql -X -d audited -U bench_pw -c 'SELECT 1' >/dev/null 2>&1 || true
	t1=$(now)
	seen=$(q -d audited -c "DO \$\$BEGIN
		WHILE (SELECT count(*) FROM sensitive_audit.log WHERE operation = 'LOGIN FAILED') <= $before LOOP
			PERFORM pg_sleep(0.005);
		END LOOP; END\$\$" -c 'SELECT extract(epoch FROM clock_timestamp())')
	att+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) * 1000 }')")
	lat+=("$(awk -v a="$t1" -v b="$seen" 'BEGIN { printf "%.1f", (b - a) * 1000 }')")
done
stats() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { printf "%s %s %s", v[int((NR + 1) / 2)], v[int(NR * 0.95 + 0.5)], v[NR] }'; }
read -r LAT_MED LAT_P95 LAT_MAX <<<"$(stats "${lat[@]}")"
read -r ATT_MED ATT_P95 ATT_MAX <<<"$(stats "${att[@]}")"
FAILED=$(q -d audited -c "SELECT count(*) FROM sensitive_audit.log WHERE operation = 'LOGIN FAILED'")
OK2=$(q -d audited -c 'SELECT bool_and(ok) FROM sensitive_audit.verify()')

cat <<EOF
# bench/events.sh — $(date -u +%Y-%m-%dT%H:%MZ)

Command: \`$COMMAND_LINE\` ($(nproc) cores; PostgreSQL $(q -c 'SHOW server_version'))

## GRANT + REVOKE on a table, one transaction each, 1 client, ${DURATION} s runs

| rep | pairs/s without the extension | pairs/s with it | ratio |
| --- | --- | --- | --- |
$(printf '%s\n' "${rows[@]}")

Median ratio: $(printf '%s\n' "${ratios[@]}" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }');
$ENTRIES GRANT/REVOKE entries written, every chain verifies: $OK.

## Failed password logins ($LOGINS, one after the other)

| | median ms | p95 ms | max ms |
| --- | --- | --- | --- |
| the refused login, as the client sees it (baseline) | $ATT_MED | $ATT_P95 | $ATT_MAX |
| from the refusal until its LOGIN FAILED entry is in the log | $LAT_MED | $LAT_P95 | $LAT_MAX |

Median ratio of the entry's delay to the refused login: $(awk -v a="$LAT_MED" -v b="$ATT_MED" 'BEGIN { printf "%.2f", a / b }');
$FAILED LOGIN FAILED entries, every chain verifies: $OK2.
EOF
