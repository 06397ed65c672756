"""StreamVault's shared package: what every service needs, and nothing more.

Modules: config (env settings, fail fast), db (MariaDB pool on ``g``), errors (uniform
JSON errors), logs (JSON logs + X-Request-ID), health (/healthz /readyz /metrics),
jwks (access-token verification against the published JWKS), dpop (RFC 9449 proofs),
auth (request principal, CSRF, decorators), http (service-to-service client),
service (wires the above into a Flask app).
"""
