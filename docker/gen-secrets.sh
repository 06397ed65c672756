#!/usr/bin/env bash
# Create the compose secret files that are missing, with random values (never overwrites).
#   docker/gen-secrets.sh [DIR]     DIR defaults to $SECRETS_DIR or ./docker/secrets
# The folder is 0700 (only you can reach it on the host); the files are 0644 so the
# containers' non-root users can read them once bind-mounted at /run/secrets/<name>.
# PRODUCTION: generate these on the host that runs the suite (or `docker secret create` on
# Swarm), back them up with the volumes — AUTH_KEY_ENCRYPTION_SECRET encrypts the token
# signing keys stored in MariaDB: lose it and every session must log in again.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:-${SECRETS_DIR:-./docker/secrets}}
mkdir -p "$DIR"; chmod 0700 "$DIR"
rand() { python3 -c "import secrets,sys; print(secrets.token_urlsafe(int(sys.argv[1])))" "$1"; }
made=()
put() {  # put NAME VALUE
  [ -s "$DIR/$1" ] && return 0
  ( umask 022; printf '%s' "$2" > "$DIR/$1.tmp" ); mv "$DIR/$1.tmp" "$DIR/$1"; chmod 0644 "$DIR/$1"
  made+=("$1")
}
put db_password "$(rand 24)"
put s3_access_key "sv$(python3 -c 'import secrets; print(secrets.token_hex(8))')"
put s3_secret_key "$(rand 30)"
put auth_key_encryption_secret "$(rand 32)"
put admin_password "$(rand 12)"
put service_secret_upload "$(rand 32)"
put service_secret_streaming "$(rand 32)"
put service_secret_watermark "$(rand 32)"
put service_secret_fsck "$(rand 32)"
put watermark_secret "$(rand 32)"
put stream_master_key "$(rand 32)"
put media_master_key "$(rand 32)"
if [ ${#made[@]} -gt 0 ]; then echo "==> created secrets in $DIR: ${made[*]}"; else echo "==> secrets in $DIR already present"; fi
