#!/usr/bin/env bash
# `make test-compose`: build every image, start the suite with docker compose, run the
# smoke checks through the published gateway, scale, restart with data intact, and clean
# up (down -v) even on failure. Prints build time and time to healthy.
#
#   SV_COMPOSE_KEEP=1   leave the project running at the end (debugging); default: down -v
#   GATEWAY_PORT=NNNN   publish the gateway elsewhere than 127.0.0.1:8080
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
PY=${PYTHON:-.venv/bin/python}; [ -x "$PY" ] || PY=python3
ENV_FILE=tests/compose/ci.env
export COMPOSE_PROJECT_NAME=streamvault-ci
export SV_COMPOSE_ENV_FILE=$ROOT/$ENV_FILE
export GATEWAY_PORT=${GATEWAY_PORT:-8080}
export SV_GATEWAY_URL=http://127.0.0.1:$GATEWAY_PORT
export PUBLIC_URL=$SV_GATEWAY_URL
export SV_ADMIN_PASSWORD_FILE=$ROOT/var/compose-ci/secrets/admin_password
WORK=var/compose-ci
mkdir -p "$WORK"
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
t_start=$(now)

bash docker/ensure-engine.sh
bash docker/build-base.sh
bash docker/gen-secrets.sh "$WORK/secrets" >/dev/null

dc() { docker compose --project-directory "$ROOT" -f docker-compose.yml --env-file "$ENV_FILE" -p "$COMPOSE_PROJECT_NAME" "$@"; }
export SV_COMPOSE="docker compose"

cleanup() {
  rc=$?
  if [ $rc -ne 0 ]; then
    echo "==> FAILED (exit $rc): state and recent logs"
    dc ps -a || true
    for s in $(dc ps -a --services 2>/dev/null); do
      echo "---- $s (last 40 lines)"; dc logs --no-color --tail 40 "$s" 2>&1 || true
    done
  fi
  if [ "${SV_COMPOSE_KEEP:-0}" = 1 ]; then
    echo "==> SV_COMPOSE_KEEP=1: project $COMPOSE_PROJECT_NAME left running"
  else
    echo "==> down -v"; dc down -v --remove-orphans >/dev/null 2>&1 || true
  fi
  # Superseded builds of our images (untagged by the rebuild); nothing else is touched.
  docker image prune -f --filter label=org.streamvault.image=1 >/dev/null 2>&1 || true
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A previous run that was killed may have left the project behind.
dc down -v --remove-orphans >/dev/null 2>&1 || true
if (exec 3<>/dev/tcp/127.0.0.1/"$GATEWAY_PORT") 2>/dev/null; then
  echo "127.0.0.1:$GATEWAY_PORT is already in use (a native \`make up\`?): stop it or set GATEWAY_PORT" >&2
  exit 1
fi

echo "==> docker compose build (log: $WORK/build.log)"
t0=$(now)
if ! dc --progress plain build >"$WORK/build.log" 2>&1; then
  tail -60 "$WORK/build.log"; exit 1
fi
t_build=$(secs "$t0" "$(now)")
echo "==> build time: ${t_build}s"
docker images --format '{{.Repository}}:{{.Tag}}  {{.Size}}' | grep "^streamvault/.*:ci " || true

echo "==> docker compose up -d --wait"
t0=$(now)
dc up -d --wait --wait-timeout 300
t_healthy=$(secs "$t0" "$(now)")
echo "==> time to healthy: ${t_healthy}s"
dc ps

echo "==> smoke checks through $SV_GATEWAY_URL"
"$PY" -m pytest -c tests/compose/pytest.ini --rootdir tests/compose tests/compose -v -s
echo "==> compose suite: build ${t_build}s, healthy ${t_healthy}s, total $(secs "$t_start" "$(now)")s"
