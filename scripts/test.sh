#!/usr/bin/env bash
# Install everything the test suite needs on a fresh Debian machine, then run it.
# Usage: bash scripts/test.sh [pytest args...]   (STRONGROOM_TEST_WORKERS=N: N workers, 0: none)
# Python packages go into the active virtualenv, else .venv (scripts/venv.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/venv.sh

# System parts the tests start themselves: SoftHSM 2 (PKCS#11) and a PostgreSQL server.
need=()
command -v softhsm2-util >/dev/null 2>&1 || need+=(softhsm2)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need+=(postgresql)
command -v mariadbd >/dev/null 2>&1 || need+=(mariadb-server)  # tests/vault: MariaDB's own plugin
[ -e /usr/lib/mysql/plugin/hashicorp_key_management.so ] || need+=(mariadb-plugin-hashicorp-key-management)
# LUKS2 volumes (tests/volume): cryptsetup, Clevis with its LUKS tools (and jose), Tang.
command -v cryptsetup >/dev/null 2>&1 || [ -x /usr/sbin/cryptsetup ] || need+=(cryptsetup-bin)
command -v clevis >/dev/null 2>&1 || need+=(clevis)
command -v clevis-luks-bind >/dev/null 2>&1 || need+=(clevis-luks)
[ -x /usr/libexec/tangd ] || need+=(tang)
# `backup mount` (tests/backup/test_mount.py mounts where /dev/fuse is usable): libfuse 3.
command -v fusermount3 >/dev/null 2>&1 || need+=(fuse3)
if [ ${#need[@]} -gt 0 ]; then
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

ensure_venv
ensure_installed test
venv="$(venv_dir)"
# The tests run `strongroom` and `aws` as a user would: from the virtualenv's bin on PATH.
export VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH"
# They start hundreds of Python processes (CLI commands, servers, workers): with bytecode
# caches (git-ignored __pycache__) each imports compiled modules instead of compiling
# src/strongroom again (0.1-0.3 s of CPU each), and pytest keeps its rewritten test modules.
unset PYTHONDONTWRITEBYTECODE
# Every core runs tests (pytest-xdist): one worker per core, each given whole test files, so
# a module's fixtures (a server process, a tenant) start once, on one worker; each worker
# starts its own session servers (PostgreSQL, SoftHSM token) on its own free ports and temp
# dirs. Files go out in collection order, the longest first (tests/conftest.py), not
# xdist's most-tests-first, which leaves the long one-test files for the end.
# STRONGROOM_TEST_WORKERS=0 runs them all in this process (--pdb, ordered -x).
exec "$venv/bin/python" -m pytest -n "${STRONGROOM_TEST_WORKERS:-auto}" --dist loadfile \
  --no-loadscope-reorder "$@"
