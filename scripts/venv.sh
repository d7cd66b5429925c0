# shellcheck shell=bash
# Sourced by scripts/strongroom, scripts/test.sh and .ci/run: the virtualenv they share.
#
# Inside an active virtualenv ($VIRTUAL_ENV) that one is used; otherwise .venv at the top of
# the checkout (or $STRONGROOM_VENV), made with the distribution's python3 on first use. So
# the commands work on a stock Debian or Ubuntu, whose own python3 refuses `pip install`
# (PEP 668, "externally-managed-environment"), and never install into a system Python.

strongroom_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# The directory of the virtualenv to use (it may not exist yet).
venv_dir() {
  if [ -n "${VIRTUAL_ENV:-}" ] && [ -x "$VIRTUAL_ENV/bin/python" ]; then
    printf '%s\n' "$VIRTUAL_ENV"
  else
    printf '%s\n' "${STRONGROOM_VENV:-$strongroom_root/.venv}"
  fi
}

# Make the virtualenv if it is missing or has no pip (Debian and Ubuntu ship the venv
# module's pip in a separate package, python3-venv, that a stock image lacks).
ensure_venv() {
  local venv
  venv="$(venv_dir)"
  if [ -x "$venv/bin/python" ] && "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
    return 0
  fi
  if [ -n "${VIRTUAL_ENV:-}" ] && [ "$venv" = "$VIRTUAL_ENV" ]; then
    # the user's own virtualenv (uv makes them without pip): add pip, never remove it
    "$venv/bin/python" -m ensurepip -q >/dev/null 2>&1 || "$venv/bin/python" -m pip --version >/dev/null 2>&1 || {
      echo "error: the active virtualenv $venv has no pip: install pip into it, or deactivate it" >&2
      return 1
    }
    return 0
  fi
  command -v python3 >/dev/null 2>&1 || { echo "error: python3 (3.11 or later) is not installed" >&2; return 1; }
  if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "error: $(command -v python3) is Python $(python3 -V 2>&1 | cut -d' ' -f2); Strongroom needs 3.11 or later" >&2
    return 1
  fi
  if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    echo "Installing python3-venv (the distribution's venv module with pip)..." >&2
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
  fi
  rm -rf "$venv"  # a half-made one (venv without ensurepip) would be found again
  echo "Creating the virtualenv $venv..." >&2
  python3 -m venv "$venv"
}

# Install the checkout (editable) with the given extras into the virtualenv, unless the
# same pyproject.toml with the same extras was installed there before.
# What an install stamp records: the checkout and pyproject.toml's checksum (the test
# constraints are passed to pip beside it, so a change of either installs again).
install_stamp() {
  printf '%s %s\n' "$(cat "$strongroom_root/pyproject.toml" "$strongroom_root/scripts/test-constraints.txt" 2>/dev/null | cksum)" "$strongroom_root"
}

ensure_installed() {
  local extras="${1:-}" venv spec stamp want
  venv="$(venv_dir)"
  spec="$strongroom_root"
  [ -n "$extras" ] && spec="$strongroom_root[$extras]"
  stamp="$venv/.strongroom-installed${extras:+-$extras}"
  want="$(install_stamp)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  # the test extras include the package itself
  if [ -z "$extras" ] && [ -f "$stamp-test" ] && [ "$(cat "$stamp-test")" = "$want" ]; then
    return 0
  fi
  local constraints=()
  # the test tools' upper bounds (scripts/test-constraints.txt says why)
  if [ "$extras" = test ] && [ -f "$strongroom_root/scripts/test-constraints.txt" ]; then
    constraints=(-c "$strongroom_root/scripts/test-constraints.txt")
  fi
  echo "Installing Strongroom${extras:+ [$extras]} into $venv (once)..." >&2
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "${constraints[@]}" -e "$spec"
  printf '%s\n' "$want" >"$stamp"
}
