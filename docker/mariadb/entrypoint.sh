#!/bin/bash
# MariaDB container entrypoint: initialise /var/lib/mysql when empty, ensure the
# application database + user (password from a secret file), then exec the server.
#   MARIADB_DATABASE (streamvault)  MARIADB_USER (streamvault)
#   MARIADB_PASSWORD_FILE | MARIADB_PASSWORD        the application user's password (required)
#   MARIADB_ROOT_PASSWORD_FILE | MARIADB_ROOT_PASSWORD   optional: lets root log in over TCP
#       with a password; without it root@localhost is unix-socket only (no remote root).
#   MARIADB_INNODB_BUFFER_POOL_SIZE (256M)
set -euo pipefail
log() { echo "{\"service\":\"mariadb-entrypoint\",\"msg\":\"$*\"}"; }

file_env() {  # file_env NAME: NAME from NAME_FILE if that is set
  local var=$1 file_var="${1}_FILE"
  if [ -n "${!file_var:-}" ]; then
    [ -z "${!var:-}" ] || { log "both $var and $file_var are set"; exit 2; }
    [ -r "${!file_var}" ] || { log "$file_var=${!file_var} is not readable"; exit 2; }
    export "$var=$(cat "${!file_var}")"
  fi
}
sql_str() { printf "%s" "$1" | sed -e "s/\\\\/\\\\\\\\/g" -e "s/'/\\\\'/g"; }

if [ "${1:-}" != "mariadbd" ]; then exec "$@"; fi
shift

file_env MARIADB_PASSWORD
file_env MARIADB_ROOT_PASSWORD
DB=${MARIADB_DATABASE:-streamvault}
USER_NAME=${MARIADB_USER:-streamvault}
[ -n "${MARIADB_PASSWORD:-}" ] || { log "MARIADB_PASSWORD(_FILE) is required"; exit 2; }
[[ "$DB" =~ ^[A-Za-z0-9_]+$ && "$USER_NAME" =~ ^[A-Za-z0-9_]+$ ]] || { log "bad database/user name"; exit 2; }
DATADIR=/var/lib/mysql
POOL=${MARIADB_INNODB_BUFFER_POOL_SIZE:-256M}

if [ ! -d "$DATADIR/mysql" ]; then
  log "initialising an empty data directory"
  mariadb-install-db --user="$(id -un)" --datadir="$DATADIR" --skip-test-db \
    --auth-root-authentication-method=socket >/dev/null
fi

# Private bootstrap server: no network, its own socket, so nothing (healthcheck included)
# mistakes it for the real one.
INIT_SOCK=/run/mysqld/init.sock
mariadbd --skip-networking --socket="$INIT_SOCK" --innodb-buffer-pool-size=64M &
pid=$!
for _ in $(seq 1 120); do
  mariadb-admin --socket="$INIT_SOCK" ping >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { log "bootstrap server died"; exit 1; }
  sleep 0.5
done
pw=$(sql_str "$MARIADB_PASSWORD")
{
  echo "CREATE DATABASE IF NOT EXISTS \`$DB\` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci;"
  echo "CREATE USER IF NOT EXISTS '$USER_NAME'@'%' IDENTIFIED BY '$pw';"
  echo "ALTER USER '$USER_NAME'@'%' IDENTIFIED BY '$pw';"
  echo "GRANT ALL PRIVILEGES ON \`$DB\`.* TO '$USER_NAME'@'%';"
  if [ -n "${MARIADB_ROOT_PASSWORD:-}" ]; then
    echo "ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('$(sql_str "$MARIADB_ROOT_PASSWORD")');"
  fi
  echo "FLUSH PRIVILEGES;"
} | mariadb --socket="$INIT_SOCK" --user="$(id -un)"
mariadb-admin --socket="$INIT_SOCK" shutdown
wait "$pid" || true
log "database '$DB' and user '$USER_NAME' ready; starting server"

exec mariadbd --innodb-buffer-pool-size="$POOL" "$@"
