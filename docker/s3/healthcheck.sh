#!/bin/bash
# Healthy = the buckets exist (entrypoint marker) and the S3 gateway answers HTTP
# (anonymous requests get 403: that is an answer).
[ -e /tmp/.buckets-ready ] || exit 1
exec 3<>/dev/tcp/127.0.0.1/8333 || exit 1
printf 'GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
read -r -t 3 status <&3 || exit 1
case "$status" in HTTP/1.?\ [2-4]??*) exit 0 ;; *) exit 1 ;; esac
