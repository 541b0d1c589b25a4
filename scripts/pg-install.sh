#!/usr/bin/env bash
# Installs Debian's PostgreSQL server when it is missing, for the tests that
# start a throwaway server (internal/pgtest). They run it as the postgres
# user when they run as root (CI does), so no cluster of the package is
# used or started here.
set -euo pipefail

have() {
	local d
	for d in /usr/lib/postgresql/*/bin; do
		[[ -x $d/postgres && -x $d/initdb ]] && { echo "pg-install: PostgreSQL present ($d)"; return 0; }
	done
	if command -v postgres >/dev/null && command -v initdb >/dev/null; then
		echo "pg-install: PostgreSQL present ($(command -v postgres))"
		return 0
	fi
	return 1
}

have && exit 0

if ! command -v apt-get >/dev/null; then
	echo "pg-install: no PostgreSQL and no apt-get: install PostgreSQL (postgres and initdb) by hand" >&2
	exit 1
fi
sudo=()
if [[ $(id -u) -ne 0 ]]; then
	if ! sudo -n true 2>/dev/null; then
		echo "pg-install: installing PostgreSQL needs root: run 'sudo apt-get install postgresql'" >&2
		exit 1
	fi
	sudo=(sudo -n)
fi
echo "pg-install: installing Debian's postgresql package"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q
"${sudo[@]}" apt-get install -y -q --no-install-recommends postgresql
have
