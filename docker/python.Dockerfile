# StreamVault's Python images: the five services (default target) and `migrate` (target
# migrate). One file, so the stages every image shares exist once and BuildKit builds them
# once: `base` (Debian + python3 + the non-root user), the venv with svcommon's locked
# dependencies, `node` (npm for front-end builds). docker-compose.yml passes the build args:
#   docker build -f docker/python.Dockerfile --build-arg SERVICE=auth-svc \
#     --build-arg PACKAGE=auth_svc --build-arg PORT=8000 -t streamvault/auth-svc .
#   docker build -f docker/python.Dockerfile --target migrate -t streamvault/migrate .
# Build context is the repository root. Python packages come from requirements.lock only
# (pinned, hash-checked; docker/README.md says how to update it).
ARG SERVICE=auth-svc

# ---- base: Debian + Python runtime + the fixed non-root user -------------------------
FROM debian:bookworm-slim AS base
ENV LANG=C.UTF-8 PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PATH=/opt/venv/bin:$PATH
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 streamvault \
 && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home --shell /usr/sbin/nologin streamvault

# ---- common: a venv with svcommon and its locked dependencies (shared by every image) --
FROM base AS common
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3-venv \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/venv
COPY requirements.lock docker/locked.py /src/
RUN --mount=type=cache,target=/root/.cache/pip \
    python /src/locked.py /src/requirements.lock svcommon setuptools > /src/common.txt \
 && pip install --disable-pip-version-check --require-hashes -r /src/common.txt
COPY common/ /src/common/
RUN pip install --disable-pip-version-check --no-deps --no-build-isolation --no-cache-dir /src/common

# ---- build: plus this service's locked packages; no pip or setuptools left behind ----
FROM common AS build
ARG SERVICE
RUN --mount=type=cache,target=/root/.cache/pip \
    python /src/locked.py /src/requirements.lock "$SERVICE" > /src/service.txt \
 && if [ -s /src/service.txt ]; then pip install --disable-pip-version-check --require-hashes -r /src/service.txt; fi \
 && pip uninstall -y --disable-pip-version-check setuptools pip >/dev/null

# ---- node: Node.js + npm for front-end builds (never in a runtime image) --------------
FROM base AS node
RUN apt-get update \
 && apt-get install -y --no-install-recommends nodejs npm \
 && rm -rf /var/lib/apt/lists/*

# ---- assets: the service's code, and its front-end packages when it has a package.json
FROM node AS assets
ARG SERVICE
WORKDIR /src/app
COPY ${SERVICE}/package*.json ./
RUN --mount=type=cache,target=/root/.npm \
    if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; \
    elif [ -f package.json ]; then npm install --no-audit --no-fund; fi
COPY ${SERVICE}/ ./
RUN if [ -f package.json ]; then npm run --if-present build && npm prune --omit=dev --no-audit --no-fund; fi \
 && rm -rf tests .dockerignore

# ---- migrate: the one-shot schema migration (python database/migrate.py) -------------
FROM base AS migrate
COPY --from=build /opt/venv /opt/venv
COPY database/migrate.py /app/database/migrate.py
COPY database/migrations/ /app/database/migrations/
COPY docker/entrypoint.sh /usr/local/bin/sv-entrypoint
WORKDIR /app
USER 10001:10001
# One-shot: nothing to probe while it runs; compose waits for it to exit 0.
HEALTHCHECK NONE
ENTRYPOINT ["/usr/local/bin/sv-entrypoint"]
CMD ["python", "database/migrate.py"]

# ---- service runtime (default target) ----------------------------------------------
FROM base AS service
# System packages and a writable scratch directory, when the service needs them:
# upload-svc (ffprobe; PROBE_SCRATCH_DIR) and watermark-svc (ffmpeg; WORK_DIR) pass the
# same SYSTEM_PACKAGES, so they share this layer. Compose mounts a volume on the scratch dir.
ARG SYSTEM_PACKAGES=""
RUN if [ -n "$SYSTEM_PACKAGES" ]; then apt-get update \
      && apt-get install -y --no-install-recommends $SYSTEM_PACKAGES \
      && rm -rf /var/lib/apt/lists/*; fi
ARG SCRATCH_DIR=""
RUN if [ -n "$SCRATCH_DIR" ]; then mkdir -p "$SCRATCH_DIR" && chown 10001:10001 "$SCRATCH_DIR"; fi
COPY --from=build /opt/venv /opt/venv
COPY --from=assets /src/app /app
COPY docker/entrypoint.sh /usr/local/bin/sv-entrypoint
WORKDIR /app
USER 10001:10001
ARG PACKAGE=auth_svc
ARG PORT=8000
# Tunables (override from .env): gunicorn processes and its extra flags. SV_APP/SV_PORT
# carry the build args into the CMD and the healthcheck. --graceful-timeout: after SIGTERM,
# requests in flight get 10 s to finish (stack.environment.GRACEFUL_TIMEOUT_SECONDS natively;
# compose's stop_grace_period of 20 s is longer, so Docker never kills one still finishing).
ENV WEB_CONCURRENCY=2 \
    GUNICORN_CMD_ARGS="--worker-class gthread --threads 8 --timeout 120 --graceful-timeout 10" \
    SV_APP="${PACKAGE}:create_app()" SV_PORT=${PORT}
EXPOSE ${PORT}
HEALTHCHECK --interval=10s --timeout=4s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ['SV_PORT'], timeout=3)"]
ENTRYPOINT ["/usr/local/bin/sv-entrypoint"]
# No gunicorn access log: svcommon logs one JSON line per request, with its request id.
CMD ["sh", "-c", "exec gunicorn --bind \"0.0.0.0:$SV_PORT\" --no-control-socket \"$SV_APP\""]
