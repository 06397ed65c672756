#!/usr/bin/env bash
# Install whatever is missing on a Debian bookworm machine, idempotently:
# Debian packages, the project venv (.venv) and front-end packages from npm.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"

need_pkgs=()
command -v mariadbd >/dev/null || need_pkgs+=(mariadb-server)
command -v mariadb-install-db >/dev/null || need_pkgs+=(mariadb-server)
command -v ffmpeg >/dev/null || need_pkgs+=(ffmpeg)
command -v nginx >/dev/null || need_pkgs+=(nginx)
command -v node >/dev/null || need_pkgs+=(nodejs)
command -v npm >/dev/null || need_pkgs+=(npm)
if [ "${WITH_BROWSER:-1}" = 1 ]; then command -v chromium >/dev/null || need_pkgs+=(chromium); fi
python3 -c 'import venv, ensurepip' 2>/dev/null || need_pkgs+=(python3-venv)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "==> apt-get install ${need_pkgs[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
  # Debian starts a system nginx/mariadb on install; ours run privately, so stop theirs.
  $SUDO service nginx stop >/dev/null 2>&1 || true
fi

# Python venv: exactly the versions in requirements.lock (hash-checked; the images install
# from the same lock), reinstalled only when the lock changed. docker/README.md: updating it.
[ -x .venv/bin/python ] || python3 -m venv .venv
stamp=.venv/.requirements.sha
want=$(cat requirements.lock common/pyproject.toml cli/pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat $stamp 2>/dev/null)" != "$want" ]; then
  echo "==> pip install -r requirements.lock (project venv)"
  .venv/bin/pip install -q --require-hashes -r requirements.lock
  .venv/bin/pip install -q --no-deps --no-build-isolation -e common
  # The streamvault CLI (its dependencies are in the lock): tests/test_cli.py runs it.
  .venv/bin/pip install -q --no-deps --no-build-isolation -e cli
  echo "$want" > $stamp
fi

# Front-end packages (tus-js-client, the player) per service, never committed.
for pkg in */package.json; do
  [ -e "$pkg" ] || continue
  dir=$(dirname "$pkg")
  if [ ! -d "$dir/node_modules" ] || [ "$pkg" -nt "$dir/node_modules" ]; then
    echo "==> npm install in $dir"
    (cd "$dir" && npm install --no-audit --no-fund --loglevel=error && touch node_modules)
  fi
done
echo "==> setup complete"
