#!/usr/bin/env bash
# bench/trees.sh — what Merkle trees, checkpoints and proofs cost (DESIGN.md, "Beyond a chain").
#
# Against one throwaway cluster (scripts/lib.sh, the library preloaded as in the tests):
#   1. a log of --entries entries in one chain (audited INSERTs, a million per transaction);
#   2. the first checkpoint_body(): every tree node of the log is computed and stored
#      (leaves per second), and the storage of tree_nodes against the log's;
#   3. checkpoint_body() again with nothing new, and after 100,000 new entries;
#   4. inclusion and consistency proof latency (pgbench, random seqs over the whole chain);
#   5. verify() over the log without stored nodes or checkpoints, and with both;
#   6. the single-row UPDATE of a tagged column (bench/pgbench/upd_tagged.sql, 4 clients)
#      against the unaudited table, with and without checkpoint_body() called every 10 s by
#      another session, interleaved and repeated; reported as ratios to the unaudited table
#      measured in the same run.
# Writes a markdown report to stdout.
#
# Usage: bench/trees.sh [--entries N] [--duration S] [--reps N] [--no-build]
#   --entries N    size of the log (default 10000000)
#   --duration S   seconds per pgbench run (default 10)
#   --reps N       repetitions of the UPDATE grid (default 3)
#   --no-build     do not build and install the extension first
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
source "$BENCH_DIR/../scripts/lib.sh"
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"

ENTRIES=10000000
DURATION=10
REPS=3
BUILD=1
COMMAND_LINE="bench/trees.sh $*"
while [ $# -gt 0 ]; do
	case $1 in
		--entries) ENTRIES=$2; shift 2 ;;
		--duration) DURATION=$2; shift 2 ;;
		--reps) REPS=$2; shift 2 ;;
		--no-build) BUILD=0; shift ;;
		-h | --help) sed -n '2,22p' "$0"; exit 0 ;;
		*) sa_die "unknown option $1" ;;
	esac
done

bench_start "$BUILD"

# seconds a statement takes, measured by the server
timed() {
	printf '%s\n' "SELECT extract(epoch FROM clock_timestamp()) AS t0 \\gset" "$1;" \
		"SELECT round((extract(epoch FROM clock_timestamp()) - :t0)::numeric, 3);" | q | tail -n 1
}

q -c 'CREATE EXTENSION sensitive_audit' -c 'CREATE TABLE big (id bigint PRIMARY KEY, v text)' \
	-c "SELECT sensitive_audit.tag('big', 'v')" >/dev/null

sa_note "building a log of $ENTRIES entries" >&2
# one session, so that every transaction takes the same chain (the committer's pid picks it)
load_sql="SELECT extract(epoch FROM clock_timestamp()) AS t0 \\gset"
done_rows=0
while [ "$done_rows" -lt "$ENTRIES" ]; do
	n=$((ENTRIES - done_rows))
	[ "$n" -le 1000000 ] || n=1000000
	load_sql+=$'\n'"INSERT INTO big SELECT g, 'value ' || g FROM generate_series($done_rows + 1, $done_rows + $n) g;"
	done_rows=$((done_rows + n))
done
load_sql+=$'\n'"SELECT round((extract(epoch FROM clock_timestamp()) - :t0)::numeric, 3);"
load_secs=$(printf '%s\n' "$load_sql" | q | tail -n 1)
CHAIN=$(q -c 'SELECT chain FROM sensitive_audit.log_entries GROUP BY chain ORDER BY count(*) DESC LIMIT 1')
SIZE=$(q -c "SELECT max(seq) FROM sensitive_audit.log_entries WHERE chain = $CHAIN")

VERIFY_PLAIN=$(timed 'SELECT sensitive_audit.verify_or_raise()')
FIRST_BODY=$(timed 'SELECT sensitive_audit.checkpoint_body()')
AGAIN_BODY=$(timed 'SELECT sensitive_audit.checkpoint_body()')
q -c "INSERT INTO big SELECT g, 'value ' || g FROM generate_series($ENTRIES + 1, $ENTRIES + 100000) g" >/dev/null
NEW_BODY=$(timed 'SELECT sensitive_audit.checkpoint_body()')
NODES=$(q -c 'SELECT count(*) FROM sensitive_audit.tree_nodes')
STORAGE=$(q -c "SELECT pg_total_relation_size('sensitive_audit.tree_nodes') || ' '
	|| pg_total_relation_size('sensitive_audit.log_entries') + pg_total_relation_size('sensitive_audit.log_contexts')")
read -r TREE_BYTES LOG_BYTES <<<"$STORAGE"

# a stored checkpoint for verify() to hold the log to (add_checkpoint checks no signature)
q -c "SELECT sensitive_audit.add_checkpoint(sensitive_audit.checkpoint_body() || E'\n\u2014 bench '
	|| translate(encode(decode(repeat('00', 68), 'hex'), 'base64'), E'\n', '') || E'\n')" >/dev/null
VERIFY_TREES=$(timed 'SELECT sensitive_audit.verify_or_raise()')
TOTAL=$(q -c 'SELECT count(*) FROM sensitive_audit.log_entries')
SIZE=$(q -c "SELECT max(seq) FROM sensitive_audit.log_entries WHERE chain = $CHAIN")

# proof latency
printf '%s\n' "\\set seq random(1, $SIZE)" "SELECT sensitive_audit.inclusion_proof($CHAIN, :seq);" |
	sa_as_user tee "$WORK/incl.sql" >/dev/null
printf '%s\n' "\\set old random(1, $SIZE)" "SELECT sensitive_audit.consistency_proof($CHAIN, :old);" |
	sa_as_user tee "$WORK/cons.sql" >/dev/null
latency() {
	sa_as_user PGHOST="$SA_SOCKDIR" PGPORT="$SA_PORT_USED" PGUSER="$SA_PGUSER" PGDATABASE=postgres \
		pgbench -n -M prepared -T 5 -c 1 -f "$1" 2>/dev/null | awk '/latency average/ { print $4 }'
}
INCL_MS=$(latency "$WORK/incl.sql")
CONS_MS=$(latency "$WORK/cons.sql")

# the single-row UPDATE, with and without a checkpointer
cp "$BENCH_DIR/setup.sql" "$BENCH_DIR/plpgsql_chain.sql" "$WORK/"
if sa_is_root; then chown "$SA_USER": "$WORK"/*.sql; fi
q -c 'CREATE EXTENSION pgcrypto' -f "$WORK/plpgsql_chain.sql" -f "$WORK/setup.sql" >/dev/null
for v in plain sa; do
	q -c "SELECT bench_create_table('t_$v', 100000)" -c "SELECT bench_instrument('t_$v', '$v')" >/dev/null
	sed "s/@T@/t_$v/g" "$BENCH_DIR/pgbench/upd_tagged.sql" | sa_as_user tee "$WORK/upd.$v.sql" >/dev/null
done
q -c 'VACUUM ANALYZE' -c 'CHECKPOINT'
tps() { bench_tps -- -M prepared -T "$DURATION" -c 4 -j 2 -D rows=100000 -f "$WORK/upd.$1.sql"; }
results=()
for rep in $(seq 1 "$REPS"); do
	for mode in plain sa sa_checkpointing; do
		if [ "$mode" = sa_checkpointing ]; then
			(
				while :; do
					q -c 'SELECT sensitive_audit.checkpoint_body()' >/dev/null 2>&1 || true
					sleep 10
				done
			) &
			bg=$!
			t=$(tps sa)
			kill "$bg" 2>/dev/null || true
			wait "$bg" 2>/dev/null || true
		else
			t=$(tps "$mode")
		fi
		results+=("$rep $mode $t")
	done
done
M_PLAIN=$(printf '%s\n' "${results[@]}" | awk '$2 == "plain" { print $3 }' | median)
M_SA=$(printf '%s\n' "${results[@]}" | awk '$2 == "sa" { print $3 }' | median)
M_CP=$(printf '%s\n' "${results[@]}" | awk '$2 == "sa_checkpointing" { print $3 }' | median)

cat <<EOF
## Trees, checkpoints and proofs ($(date -u '+%Y-%m-%d'), \`$COMMAND_LINE\`)

Log: $(q -c "SELECT count(*) FROM sensitive_audit.log_entries WHERE chain = $CHAIN") of the $ENTRIES entries in chain $CHAIN, loaded in ${load_secs} s, then 100,000 more (in whichever chain their session took): $TOTAL in all.

| measure | result |
| --- | --- |
| first \`checkpoint_body()\`: every tree node of $ENTRIES entries computed and stored | $FIRST_BODY s ($(awk -v n="$ENTRIES" -v s="$FIRST_BODY" 'BEGIN { printf "%.2f", n / s / 1e6 }') M leaves/s) |
| \`checkpoint_body()\` again, nothing new | $AGAIN_BODY s |
| \`checkpoint_body()\` after 100,000 new entries | $NEW_BODY s |
| stored tree nodes | $NODES rows, $TREE_BYTES bytes = $(awk -v a="$TREE_BYTES" -v b="$LOG_BYTES" 'BEGIN { printf "%.2f", 100 * a / b }') % of the log's $LOG_BYTES bytes |
| \`inclusion_proof()\` at $SIZE entries, random seq | $INCL_MS ms |
| \`consistency_proof()\` to $SIZE entries, random old size | $CONS_MS ms |
| \`verify()\`, no stored nodes or checkpoints | $VERIFY_PLAIN s for $ENTRIES entries ($(awk -v n="$ENTRIES" -v s="$VERIFY_PLAIN" 'BEGIN { printf "%.2f", n / s / 1e6 }') M entries/s) |
| \`verify()\` holding the log to a checkpoint and its stored nodes | $VERIFY_TREES s for $TOTAL entries ($(awk -v n="$TOTAL" -v s="$VERIFY_TREES" 'BEGIN { printf "%.2f", n / s / 1e6 }') M entries/s) |

Single-row UPDATE of a tagged column, 4 clients, ${DURATION} s x $REPS, medians:

| variant | tps | ratio to unaudited |
| --- | --- | --- |
| unaudited | $M_PLAIN | 1.00 |
| tagged | $M_SA | $(r "$M_SA" "$M_PLAIN") |
| tagged, \`checkpoint_body()\` every 10 s | $M_CP | $(r "$M_CP" "$M_PLAIN") |

Runs: $(printf '%s; ' "${results[@]}")
EOF
