#!/bin/bash
# Gateway entrypoint (compose / swarm): render gateway/nginx.conf.template, then exec nginx.
#
# Upstreams are the services' DNS names (from AUTH_SVC_URL, UPLOAD_SVC_URL,
# STREAMING_SVC_URL, WATERMARK_SVC_URL), resolved by nginx itself through Docker's DNS
# (GATEWAY_RESOLVER, default 127.0.0.11) and cached GATEWAY_DNS_TTL (default 5s): every
# `proxy_pass http://<name>_svc;` of the template becomes `proxy_pass http://$sv_upstream_<name>;`
# (a variable makes nginx re-resolve at run time), so replicas added or removed with
# `docker compose up --scale` are picked up without restarting the gateway, and a request
# that cannot connect to one replica is retried on the next (proxy_next_upstream).
#
# HTTPS: with TLS_CERT_FILE and TLS_KEY_FILE (PEM files, e.g. compose secrets; see
# docs/operations.md) the gateway serves HTTPS on GATEWAY_TLS_LISTEN_PORT (8443; TLS 1.2+,
# HSTS) and plain HTTP on GATEWAY_LISTEN_PORT only redirects to PUBLIC_URL (which must
# then be https://...). Body limits follow BODY_MAX_BYTES, UPLOAD_MAX_BYTES, CAPTION_MAX_BYTES
# and FORENSICS_MAX_UPLOAD_BYTES, the same settings the services enforce. Behind a load
# balancer or TLS-terminating proxy, GATEWAY_TRUSTED_PROXIES (its addresses or networks) makes
# the gateway believe its X-Forwarded-For/-Proto/-Port (docs/operations.md). Encrypted media
# (/media/) is cached in GATEWAY_MEDIA_CACHE_DIR (the gateway-cache volume), at most
# GATEWAY_MEDIA_CACHE_MAX_SIZE (10g), objects unused for GATEWAY_MEDIA_CACHE_INACTIVE (7d) dropped.
#
#   sv-gateway-entrypoint healthcheck   -> exit 0 when /gateway/healthz answers 200
set -euo pipefail
PREFIX=/var/lib/gateway
PORT=${GATEWAY_LISTEN_PORT:-8080}
TLS_PORT=${GATEWAY_TLS_LISTEN_PORT:-8443}

if [ "${1:-}" = healthcheck ]; then
  exec 3<>/dev/tcp/127.0.0.1/"$PORT" || exit 1
  printf 'GET /gateway/healthz HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
  read -r -t 2 status <&3 || exit 1
  case "$status" in "HTTP/1.1 200"*) exit 0 ;; *) exit 1 ;; esac
fi

hostport() {  # http://auth-svc:8000/ -> auth-svc:8000
  local u=${1#*://}; u=${u%%/*}
  [[ "$u" =~ ^[A-Za-z0-9._-]+:[0-9]+$ ]] || { echo "gateway: bad upstream URL '$1' (want http://host:port)" >&2; exit 2; }
  printf '%s' "$u"
}
upstreams=""
for name in auth upload streaming watermark; do
  var="${name^^}_SVC_URL"
  url=${!var:-http://${name}-svc:$(case $name in auth) echo 8000;; upload) echo 3000;; streaming) echo 3100;; watermark) echo 5000;; esac)}
  upstreams+="map \$host \$sv_upstream_${name} { default \"$(hostport "$url")\"; }"$'\n    '
done
tls=""
if [ -n "${TLS_CERT_FILE:-}${TLS_KEY_FILE:-}" ]; then
  for f in "${TLS_CERT_FILE:-}" "${TLS_KEY_FILE:-}"; do
    [ -n "$f" ] && [ -r "$f" ] || { echo "gateway: TLS_CERT_FILE and TLS_KEY_FILE must both name readable PEM files (got '$f')" >&2; exit 2; }
  done
  origin=${PUBLIC_URL:-}; origin=${origin%/}
  [[ "$origin" =~ ^https://[^/]+$ ]] || { echo "gateway: with TLS, PUBLIC_URL must be the https:// origin (got '$origin')" >&2; exit 2; }
  tls=1
fi
# A load balancer in front (same rendering as stack/components.py gateway_trusted_proxies).
realip=""; geo=""
proxies=${GATEWAY_TRUSTED_PROXIES:-}
for entry in ${proxies//,/ }; do
  [[ "$entry" =~ ^([0-9]{1,3}(\.[0-9]{1,3}){3}|[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*)(/[0-9]{1,3})?$ ]] || {
    echo "gateway: GATEWAY_TRUSTED_PROXIES: '$entry' is not an IP address or network" >&2; exit 2; }
  realip+="set_real_ip_from $entry;"$'\n    '
  geo+="$entry 1; "
done
[ -n "$realip" ] && realip+="real_ip_header X-Forwarded-For;"$'\n    '"real_ip_recursive on;"
resolver="resolver ${GATEWAY_RESOLVER:-127.0.0.11} valid=${GATEWAY_DNS_TTL:-5s} ipv6=off;
    resolver_timeout 3s;
    # A stopped replica must not hold a request for long: fail fast, try the next one.
    proxy_connect_timeout ${GATEWAY_CONNECT_TIMEOUT:-3s};
    proxy_next_upstream error timeout http_502 http_503;
    proxy_next_upstream_tries 3;"

template=$(cat /etc/streamvault/nginx.conf.template)
template=${template//'{{UPSTREAMS}}'/$upstreams}
template=${template//'{{RESOLVER}}'/$resolver}
template=${template//'{{TRUSTED_PROXIES}}'/$realip}
template=${template//'{{TRUSTED_PROXY_GEO}}'/$geo}
if [ -n "$tls" ]; then
  template=${template//'{{LISTEN}}'/"0.0.0.0:$TLS_PORT ssl"}
  # Same text as stack/components.py tls_block() and redirect_server().
  template=${template//'{{TLS}}'/"ssl_certificate $TLS_CERT_FILE;
        ssl_certificate_key $TLS_KEY_FILE;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_prefer_server_ciphers off;
        ssl_session_cache shared:sv_tls:10m;
        ssl_session_tickets off;"}
  template=${template//'{{HTTP_REDIRECT}}'/"server {
        listen 0.0.0.0:$PORT;
        location = /gateway/healthz { access_log off; return 200 \"ok\\n\"; }
        location / { return 308 $origin\$request_uri; }
    }"}
else
  template=${template//'{{LISTEN}}'/"0.0.0.0:$PORT"}
  template=${template//'{{TLS}}'/}
  template=${template//'{{HTTP_REDIRECT}}'/}
fi
num() { [[ "${1:-}" =~ ^[0-9]+$ ]] && printf '%s' "$1" || printf '%s' "$2"; }
template=${template//'{{BODY_MAX}}'/$(num "${BODY_MAX_BYTES:-}" 65536)}
template=${template//'{{UPLOAD_BODY_MAX}}'/$(( $(num "${UPLOAD_MAX_BYTES:-}" 21474836480) + 65536 ))}
template=${template//'{{CAPTION_BODY_MAX}}'/$(( $(num "${CAPTION_MAX_BYTES:-}" 524288) + 65536 ))}
template=${template//'{{FORENSICS_BODY_MAX}}'/$(( $(num "${FORENSICS_MAX_UPLOAD_BYTES:-}" 17179869184) + 65536 ))}
# /media/ cache: a volume (docker-compose.yml gateway-cache) so it survives restarts.
size() { [[ "${1:-}" =~ ^[0-9]+[$3]?$ ]] && printf '%s' "$1" || printf '%s' "$2"; }
template=${template//'{{MEDIA_CACHE_DIR}}'/${GATEWAY_MEDIA_CACHE_DIR:-/var/cache/gateway}}
template=${template//'{{MEDIA_CACHE_MAX_SIZE}}'/$(size "${GATEWAY_MEDIA_CACHE_MAX_SIZE:-}" 10g kmg)}
template=${template//'{{MEDIA_CACHE_INACTIVE}}'/$(size "${GATEWAY_MEDIA_CACHE_INACTIVE:-}" 7d smhd)}
template=${template//'{{USER}}'/}
template=${template//'{{TMP}}'/$PREFIX/tmp}
template=${template//'{{PID}}'/$PREFIX/nginx.pid}
template=${template//'{{ACCESS_LOG}}'/\/dev\/stdout}
conf=$(printf '%s\n' "$template" | sed -E \
  -e 's#proxy_pass http://([a-z]+)_svc;#proxy_pass http://$sv_upstream_\1;#g')
if grep -q '{{' <<<"$conf"; then
  echo "gateway: unrendered placeholder in the template: $(grep -o '{{[A-Z_]*}}' <<<"$conf" | sort -u | tr '\n' ' ')" >&2; exit 2
fi
if grep -Eq 'proxy_pass http://[A-Za-z0-9_]+;' <<<"$conf"; then
  echo "gateway: a proxy_pass to a static upstream is left (would not see scaled replicas):" >&2
  grep -En 'proxy_pass http://[A-Za-z0-9_]+;' <<<"$conf" >&2; exit 2
fi
mkdir -p "$PREFIX/tmp"
printf '%s\n' "$conf" > "$PREFIX/nginx.conf"
nginx -q -t -p "$PREFIX" -c "$PREFIX/nginx.conf" -e stderr
exec "$@"
