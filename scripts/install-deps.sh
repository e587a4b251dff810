#!/usr/bin/env bash
# Installs the Debian 12 packages needed to build, test and demonstrate
# sensitive_audit. Only missing packages are installed, and the package lists
# are refreshed only when something is missing, so a second run is quick and
# touches nothing. Uses sudo when not run as root.
set -euo pipefail

PACKAGES=(
	build-essential g++ make
	postgresql-15 postgresql-server-dev-15 postgresql-client-15 postgresql-contrib
	postgresql-15-pgaudit
	openssl libssl-dev libkrb5-dev libgtest-dev nlohmann-json3-dev libcli11-dev libpq-dev
	libipc-run-perl rsync
	python3 python3-cryptography chromium
)

missing=()
for pkg in "${PACKAGES[@]}"; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
	[ "$status" = installed ] || missing+=("$pkg")
done

if [ ${#missing[@]} -eq 0 ]; then
	echo "Debian packages: all ${#PACKAGES[@]} present"
	exit 0
fi

echo "Debian packages to install: ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
	as_root=()
elif command -v sudo >/dev/null 2>&1; then
	as_root=(sudo)
else
	echo "error: installing packages needs root, and sudo is not installed" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o Dpkg::Use-Pty=0 \
	--no-install-recommends "${missing[@]}" </dev/null
