#!/usr/bin/env bash
# Shows sensitive_audit working, from a fresh Debian 12 machine:
# installs what is missing, builds (make WERROR=1), installs the extension,
# starts a throwaway PostgreSQL 15 cluster in a temporary directory (unix
# socket only, a free high port), runs scripts/demo.sql in it with psql, then
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
cd "$SA_ROOT"

sa_section "done"
sa_note "The demo ran to the end; the throwaway cluster is stopped and removed on exit."
