"""Service-to-service HTTP client: timeouts, retries on idempotent calls, and the caller's
X-Request-ID forwarded so one request can be followed across services in the logs."""
from __future__ import annotations

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from .logs import current_request_id


class ServiceClient:
    def __init__(self, base_url: str, timeout: float = 10.0, token_provider=None):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.token_provider = token_provider
        self.session = requests.Session()
        retry = Retry(total=3, backoff_factor=0.2, status_forcelist=(502, 503, 504),
                      allowed_methods=frozenset({"GET", "HEAD", "DELETE"}))
        self.session.mount("http://", HTTPAdapter(max_retries=retry, pool_maxsize=32))

    def request(self, method: str, path: str, **kw) -> requests.Response:
        headers = dict(kw.pop("headers", None) or {})
        rid = current_request_id()
        if rid:
            headers.setdefault("X-Request-ID", rid)
        if self.token_provider is not None:
            headers.setdefault("Authorization", f"Bearer {self.token_provider()}")
        kw.setdefault("timeout", self.timeout)
        return self.session.request(method, self.base_url + path, headers=headers, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def put(self, path, **kw):
        return self.request("PUT", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def head(self, path, **kw):
        return self.request("HEAD", path, **kw)
