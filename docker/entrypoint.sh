#!/bin/sh
# StreamVault container entrypoint (Python services, migrate, worker).
# Secrets come as files (compose/swarm secrets under /run/secrets): for every variable
# NAME_FILE=/run/secrets/... that is set, NAME is exported with the file's content (trailing
# newlines dropped) and NAME_FILE is unset. Other *_FILE variables (SSL_CERT_FILE, ...) are
# left alone. Setting both NAME and NAME_FILE is an error.
set -eu
for name in $(env | sed -n 's#^\([A-Z][A-Z0-9_]*\)_FILE=/run/secrets/.*#\1#p'); do
  eval "file=\${${name}_FILE}"
  eval "direct=\${${name}:-}"
  if [ -n "$direct" ]; then
    echo "entrypoint: both $name and ${name}_FILE are set; use one" >&2
    exit 2
  fi
  if [ ! -r "$file" ]; then
    echo "entrypoint: ${name}_FILE=$file is not readable by uid $(id -u)" >&2
    exit 2
  fi
  value=$(cat "$file")
  export "$name=$value"
  unset "${name}_FILE"
done
exec "$@"
