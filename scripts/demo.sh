#!/usr/bin/env bash
# Shows sensitive_audit working, from a fresh Debian 12 machine:
# installs what is missing, builds (make WERROR=1), installs the extension,
# starts a throwaway PostgreSQL 15 cluster in a temporary directory (unix
# socket only, a free high port), runs scripts/demo.sql in it with psql and
# the command-line program sensitive-audit against it (keys, checkpoints,
# verification, a bundle and a proof), then
# stops the cluster and removes it, whatever happens.
#
# Run it as root or as an ordinary user (sudo is then used for apt-get and
# make install). PostgreSQL refuses to run as root, so as root the cluster
# belongs to the system user sensitive_audit (created if missing; SA_OS_USER
# picks another).
#
#   SKIP_DEPS=1   skip the Debian package check
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$SA_ROOT"

WORK=
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
	local rc=$?
	sa_cluster_stop
	if [ -n "$WORK" ]; then
		rm -rf "$WORK"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

sa_section "Debian packages"
sa_install_deps

sa_build_and_install

sa_section "throwaway PostgreSQL 15 cluster"
sa_pick_user
WORK=$(sa_mktemp_dir)
sa_cluster_start "$WORK"

# The unprivileged user may not be able to read the checkout: give it its own
# copy of the script, at the same relative path so psql's messages name
# scripts/demo.sql.
sa_as_user mkdir -p "$WORK/scripts"
sa_as_user tee "$WORK/scripts/demo.sql" >/dev/null <"$SA_ROOT/scripts/demo.sql"

sa_section "demo (scripts/demo.sql)"
cd "$WORK"
sa_psql -v ON_ERROR_STOP=1 --echo-queries -P pager=off -f scripts/demo.sql

# The command-line program: a witness outside the database signs checkpoints and
# checks everything itself.  The demo database's log was tampered with above, so
# it refuses to sign it; a second database with an intact log is signed,
# verified, exported and proven.
sa_section "the command-line program (sensitive-audit)"
SA_CLI="$SA_PG_BIN/sensitive-audit"
CONN="host=$SA_SOCKDIR port=$SA_PORT_USED user=$SA_PGUSER"
demo_cli() {
	echo "\$ sensitive-audit $*"
	set +e
	sa_as_user "$SA_CLI" "$@"
	local rc=$?
	set -e
	echo "(exit status $rc)"
	return $rc
}
sa_as_user mkdir -p "$WORK/witness"
demo_cli keygen --name "demo-witness" --private "$WORK/witness/key" --public "$WORK/witness/key.pub"
if demo_cli checkpoint --db "$CONN dbname=postgres" --key "$WORK/witness/key" --state "$WORK/witness/demo"; then
	sa_die "demo check failed: the program signed a tampered log"
fi
sa_psql -v ON_ERROR_STOP=1 -q -c 'CREATE DATABASE clean'
sa_psql -v ON_ERROR_STOP=1 -q -d clean >/dev/null <<'SQL'
CREATE EXTENSION sensitive_audit;
CREATE TABLE accounts (id int PRIMARY KEY, iban text);
SELECT sensitive_audit.tag('accounts', 'iban');
INSERT INTO accounts SELECT g, 'DE' || g FROM generate_series(1, 100) g;
UPDATE accounts SET iban = iban || '0' WHERE id <= 10;
SQL
demo_cli checkpoint --db "$CONN dbname=clean" --key "$WORK/witness/key" --state "$WORK/witness/clean"
demo_cli verify --db "$CONN dbname=clean" --pubkey "$WORK/witness/key.pub" --state "$WORK/witness/clean"
demo_cli export --db "$CONN dbname=clean" --out "$WORK/witness/clean.bundle"
demo_cli verify --bundle "$WORK/witness/clean.bundle" --pubkey "$WORK/witness/key.pub"
CHAIN=$(sa_psql -Atq -d clean -c "SELECT chain FROM sensitive_audit.log WHERE operation = 'UPDATE' LIMIT 1")
SEQ=$(sa_psql -Atq -d clean -c "SELECT seq FROM sensitive_audit.log WHERE operation = 'UPDATE' ORDER BY seq LIMIT 1")
demo_cli prove --db "$CONN dbname=clean" --chain "$CHAIN" --seq "$SEQ" --out "$WORK/witness/entry.proof"
demo_cli verify-proof "$WORK/witness/entry.proof" --pubkey "$WORK/witness/key.pub"

# Values only an outside key holder can read: the key pair is made outside the
# database, only its public half goes in, and decrypt shows the clear values.
sa_as_user openssl genpkey -algorithm X25519 -out "$WORK/witness/values.pem" 2>/dev/null
PUBLIC_KEY=$(sa_as_user openssl pkey -in "$WORK/witness/values.pem" -pubout)
sa_psql -v ON_ERROR_STOP=1 -q -d clean -v key="$PUBLIC_KEY" >/dev/null <<'SQL'
SELECT sensitive_audit.set_encryption_key(:'key');
SELECT sensitive_audit.protect('accounts', 'iban', 'encrypt');
UPDATE accounts SET iban = 'FR7630006000011234567890189' WHERE id = 1;
SQL
echo "\$ psql -c \"SELECT new_value FROM sensitive_audit.log WHERE operation = 'UPDATE' AND format = 2\""
sa_psql -Atq -d clean -c "SELECT new_value FROM sensitive_audit.log WHERE operation = 'UPDATE' AND format = 2"
demo_cli decrypt --key "$WORK/witness/values.pem" --db "$CONN dbname=clean" 2>&1 | grep -E 'FR76|decrypted|exit status'
cd "$SA_ROOT"

sa_section "done"
sa_note "The demo ran to the end; the throwaway cluster is stopped and removed on exit."
