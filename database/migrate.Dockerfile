# StreamVault `migrate`: the one-shot schema migration step (python database/migrate.py).
# Build context is the repository root:
#   docker build -f database/migrate.Dockerfile -t streamvault/migrate .
# Stages `base` and the start of `build` are byte-identical to the service Dockerfiles so
# the build cache shares them.

# ---- base: Debian + Python runtime + the fixed non-root user -------------------------
FROM debian:bookworm-slim AS base
ENV LANG=C.UTF-8 PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PATH=/opt/venv/bin:$PATH
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 streamvault \
 && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home --shell /usr/sbin/nologin streamvault

# ---- build: virtualenv with svcommon and its dependencies ----------------------------
FROM base AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3-venv \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/venv
COPY common/pyproject.toml /src/common/pyproject.toml
RUN --mount=type=cache,target=/root/.cache/pip \
    python -c "import tomllib; print('\\n'.join(tomllib.load(open('/src/common/pyproject.toml','rb'))['project']['dependencies']))" > /src/common-requirements.txt \
 && pip install --disable-pip-version-check "setuptools>=68" wheel -r /src/common-requirements.txt
COPY common/ /src/common/
RUN pip install --disable-pip-version-check --no-deps --no-build-isolation --no-cache-dir /src/common \
 && pip uninstall -y --disable-pip-version-check setuptools wheel pip >/dev/null

# ---- runtime ------------------------------------------------------------------------
FROM base
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
