"""The gateway behind a load balancer that terminates TLS (Traefik, Caddy, a cloud balancer, a
Kubernetes ingress: how many teams put a service on their network). With its addresses in
GATEWAY_TRUSTED_PROXIES the gateway believes that balancer, and only it, about the client's
address (X-Forwarded-For) and the scheme and port clients used (X-Forwarded-Proto/-Port):
viewers play over the balancer's https URL (DPoP ``htu``), cookies are Secure, and the
recorded address is the viewer's, not the balancer's.

Before, the gateway replaced those headers with its own view (http, the balancer's address):
every DPoP proof for the https URL was refused, so nothing played, and every client had the
balancer's address (one login throttle for everyone). What docs/operations.md said to do
(TRUSTED_PROXY_HOPS=2 on the services) could not help, since the services never saw the
balancer's headers.

Here the balancer is a real nginx with TLS on 127.0.0.1; clients connect from 127.0.0.2 (the
whole 127/8 is loopback), so the gateway can tell the balancer (trusted) from anyone else."""
from __future__ import annotations


import pytest
import requests
from requests.adapters import HTTPAdapter

from stack import components
from tests.support.contract_client import ContractClient
from tests.support.dpop import FINGERPRINT, DeviceKey
from tests.support.tls import self_signed_certificate
from tests.support.videos import make_ready_video, register_user, sql

GATEWAY_SHIFT, BALANCER_SHIFT = 10, 11       # beside the live gateway's port (5-9: other gateway tests)
CLIENT = "127.0.0.2"                         # a viewer: not the balancer's address


class FromAddress(HTTPAdapter):
    """Connections from a given local address."""

    def __init__(self, address: str):
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


def session_from(address: str, verify: str | bool = True) -> requests.Session:
    http = requests.Session()
    http.verify = verify
    http.trust_env = False          # (REQUESTS_CA_BUNDLE would win over verify)
    for scheme in ("http://", "https://"):
        http.mount(scheme, FromAddress(address))
    return http


BALANCER_CONF = """user root;
worker_processes 1;
pid {base}/nginx.pid;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {base}/body; proxy_temp_path {base}/proxy; fastcgi_temp_path {base}/fastcgi;
    uwsgi_temp_path {base}/uwsgi; scgi_temp_path {base}/scgi;
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        client_max_body_size 16m;
        location / {{
            proxy_pass http://127.0.0.1:{gateway_port};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Port $server_port;
        }}
    }}
}}
"""


@pytest.fixture(scope="module")
def balanced(live_stack, tmp_path_factory):
    """A gateway trusting 127.0.0.1 (GATEWAY_TRUSTED_PROXIES), and a TLS balancer in front of it
    that connects from 127.0.0.1."""
    stack, procs = live_stack["stack"], live_stack["procs"]
    gateway_port, port = stack.gateway_port + GATEWAY_SHIFT, stack.gateway_port + BALANCER_SHIFT
    components.nginx_prepare(stack, {**live_stack["env"], "GATEWAY_TRUSTED_PROXIES": "127.0.0.1"},
                             folder="nginx-behind-balancer", port=gateway_port)
    gateway = procs.start("gateway-behind-balancer", components.nginx_command(stack, "nginx-behind-balancer"))
    try:
        base = tmp_path_factory.mktemp("balancer")
        cert, key = self_signed_certificate(base)
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (base / sub).mkdir()
        (base / "nginx.conf").write_text(BALANCER_CONF.format(base=base, port=port, cert=cert, key=key,
                                                              gateway_port=gateway_port))
        balancer = procs.start("balancer", ["nginx", "-p", str(base), "-c", str(base / "nginx.conf"),
                                            "-e", str(base / "error.log"), "-g", "daemon off;"])
        components.wait_http(f"http://127.0.0.1:{gateway_port}/gateway/healthz", gateway)
        components.wait_http(f"https://127.0.0.1:{port}/gateway/healthz", balancer, verify=str(cert))
        yield {"url": f"https://127.0.0.1:{port}", "ca": str(cert), "gateway": f"http://127.0.0.1:{gateway_port}"}
    finally:
        procs.stop("balancer")               # (a name never started: nothing to stop)
        procs.stop("gateway-behind-balancer")


@pytest.fixture(scope="module")
def video(live_stack, worker_app, mdb, stores, clip):
    owner = register_user(live_stack["url"], "lbowner")
    return make_ready_video(worker_app, mdb, stores, owner["id"], clip, title="Behind a balancer")


def test_viewers_play_through_a_tls_balancer_and_are_recorded_as_themselves(balanced, live_stack, video, mdb):
    user = register_user(live_stack["url"], "lbview")
    http = session_from(CLIENT, verify=balanced["ca"])
    page = http.get(f"{balanced['url']}/auth/login", timeout=10)
    assert page.status_code == 200 and "; secure" in page.headers["Set-Cookie"].lower()   # the services saw https
    viewer = ContractClient(balanced["url"], http=http).login(user["username"], user["password"])
    s = viewer.open_session(video)                       # DPoP proofs for https://…:port/…
    rep = viewer.representations(s)[0]
    assert viewer.fetch(s, rep.segment_urls[0])           # a segment decrypted with the session's key
    row = sql(mdb, "SELECT ip FROM playback_sessions WHERE id = %s", (s.id,), one=True)
    assert row["ip"] == CLIENT                            # the viewer's address, not the balancer's
    viewer.end(s)


def test_nobody_else_is_believed(balanced, live_stack, video, mdb):
    """A client talking to that gateway directly, with forged X-Forwarded-* headers: it stays
    plain HTTP from its own address."""
    user = register_user(live_stack["url"], "lbspoof")
    forged = {"X-Forwarded-For": "203.0.113.66", "X-Forwarded-Proto": "https", "X-Forwarded-Port": "443"}
    http = session_from(CLIENT)
    http.headers.update(forged)
    gw = balanced["gateway"]
    token = http.post(f"{gw}/api/auth/login", json={"username": user["username"], "password": user["password"]},
                      timeout=10).json()["access_token"]
    key = DeviceKey()
    https_url = "https://127.0.0.1/api/auth/device-token"      # what the forged headers claim
    r = http.post(f"{gw}/api/auth/device-token", json={"fingerprint": FINGERPRINT}, timeout=10,
                  headers={"Authorization": f"Bearer {token}", "DPoP": key.proof("POST", https_url)})
    assert r.status_code == 401 and r.json()["code"] == "invalid_dpop_proof", r.text
    viewer = ContractClient(gw, device=key, http=http).login(user["username"], user["password"])
    s = viewer.open_session(video)
    assert sql(mdb, "SELECT ip FROM playback_sessions WHERE id = %s", (s.id,), one=True)["ip"] == CLIENT
    viewer.end(s)


def test_a_bad_trusted_proxy_setting_stops_the_start(live_stack):
    """A typo there must not start a gateway that believes nobody (or anybody)."""
    for bad in ("10.0.0.0/8 evil;", "127.0.0.1/33", "*"):
        with pytest.raises(ValueError, match="not an IP address or network"):
            components.nginx_prepare(live_stack["stack"], {"GATEWAY_TRUSTED_PROXIES": bad}, folder="nginx-bad-proxies",
                                     port=live_stack["stack"].gateway_port + GATEWAY_SHIFT)
