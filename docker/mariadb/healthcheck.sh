#!/bin/sh
# Healthy = the real server (not the bootstrap one) answers a query on its socket.
exec mariadb --socket=/run/mysqld/mysqld.sock --user="$(id -un)" --batch --skip-column-names -e "SELECT 1" >/dev/null
