#!/bin/bash
# SeaweedFS entrypoint: write the S3 identities file from the secrets, then run
# `weed server` with every port pinned (gRPC too) and only S3 on the network.
#   S3_ACCESS_KEY(_FILE), S3_SECRET_KEY(_FILE)  required: the one identity (full access)
#   S3_BUCKETS (streamvault)                    buckets created at start if missing (comma list)
#   S3_VOLUME_SIZE_LIMIT_MB (1024)              SeaweedFS volume size
# Healthy (docker/s3/healthcheck.sh) once S3 answers and the buckets exist.
set -euo pipefail
file_env() {
  local var=$1 file_var="${1}_FILE"
  if [ -n "${!file_var:-}" ]; then
    [ -z "${!var:-}" ] || { echo "s3-entrypoint: both $var and $file_var are set" >&2; exit 2; }
    export "$var=$(cat "${!file_var}")"
  fi
}
if [ "${1:-}" != "weed" ]; then exec "$@"; fi
shift
file_env S3_ACCESS_KEY
file_env S3_SECRET_KEY
[ -n "${S3_ACCESS_KEY:-}" ] && [ -n "${S3_SECRET_KEY:-}" ] || { echo "s3-entrypoint: S3_ACCESS_KEY and S3_SECRET_KEY (or *_FILE) are required" >&2; exit 2; }
json_str() { printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g'; }
umask 077
conf=/tmp/s3-identities.json
printf '{"identities":[{"name":"streamvault","credentials":[{"accessKey":"%s","secretKey":"%s"}],"actions":["Admin","Read","Write","List","Tagging"]}]}\n' \
  "$(json_str "$S3_ACCESS_KEY")" "$(json_str "$S3_SECRET_KEY")" > "$conf"
unset S3_ACCESS_KEY S3_SECRET_KEY
rm -f /tmp/.buckets-ready
# Create the buckets once the filer answers (idempotent), in the background so that weed
# itself is PID 1 and gets the stop signal.
(
  for _ in $(seq 1 240); do
    (exec 3<>/dev/tcp/127.0.0.1/8333) 2>/dev/null && break
    sleep 0.5
  done
  cmds=""
  IFS=, read -r -a buckets <<<"${S3_BUCKETS:-streamvault}"
  for b in "${buckets[@]}"; do
    [[ "$b" =~ ^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$ ]] || { echo "s3-entrypoint: bad bucket name '$b'" >&2; continue; }
    cmds+="s3.bucket.create -name $b"$'\n'
  done
  for _ in $(seq 1 60); do
    out=$(printf '%ss3.bucket.list\n' "$cmds" | weed shell -master=127.0.0.1:9333 -filer=127.0.0.1:8888 2>&1) || true
    missing=0
    for b in "${buckets[@]}"; do grep -q "^  $b[[:space:]]" <<<"$out" || missing=1; done
    if [ $missing = 0 ]; then touch /tmp/.buckets-ready; echo "s3-entrypoint: buckets ready: ${buckets[*]}"; exit 0; fi
    sleep 1
  done
  echo "s3-entrypoint: could not create buckets: $out" >&2
) &
exec weed server -dir=/data -ip=127.0.0.1 -ip.bind=127.0.0.1 \
  -master.port=9333 -master.port.grpc=19333 -volume.port=8081 -volume.port.grpc=18081 \
  -filer.port=8888 -filer.port.grpc=18888 -filer.localSocket=/tmp/filer.sock \
  -s3 -s3.port=8333 -s3.port.grpc=18333 -s3.ip.bind=0.0.0.0 -s3.config="$conf" \
  -s3.port.iceberg=0 -s3.port.lance=0 \
  -metricsPort=9327 -metricsIp=0.0.0.0 -master.telemetry=false \
  -volume.max=0 -master.volumeSizeLimitMB="${S3_VOLUME_SIZE_LIMIT_MB:-1024}" "$@"
