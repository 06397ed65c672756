"""Where a webhook may go. A URL is http(s) with a host and no credentials; its host is
resolved when the endpoint is registered and again at every delivery, and every address
it resolves to must be public (not loopback, private, link-local, shared, multicast,
reserved or unspecified: ``ipaddress``'s classes, an IPv4-mapped IPv6 address judged as
its IPv4 one) unless WEBHOOK_ALLOW_PRIVATE_TARGETS. The delivery then connects to the
address checked here, never resolving again (no DNS rebinding between check and
connection), and follows no redirect."""
from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2048
SCHEMES = {"https": 443, "http": 80}


class TargetRefused(Exception):
    """The URL may not be called; the message says why (shown to the endpoint's owner)."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str           # as written: the Host header and the TLS server name
    port: int
    path: str           # path and query, as sent in the request line
    address: str        # the checked address the delivery connects to

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == SCHEMES[self.scheme] else f"{host}:{self.port}"


def parse(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path) of an acceptable URL, else TargetRefused."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise TargetRefused(f"the URL must be text of 1 to {MAX_URL_LENGTH} characters")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise TargetRefused("the URL may not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetRefused(f"not a valid URL: {exc}") from None
    if parts.scheme not in SCHEMES:
        raise TargetRefused("only https:// and http:// URLs are accepted")
    if not parts.hostname:
        raise TargetRefused("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise TargetRefused("the URL may not carry credentials (user:password@)")
    if parts.fragment:
        raise TargetRefused("the URL may not have a #fragment")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, parts.hostname, port or SCHEMES[parts.scheme], path


def public_address(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])     # an IPv6 zone id is never public anyway
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_loopback or ip.is_link_local
                                 or ip.is_private or ip.is_unspecified)


def resolve(url: str, allow_private: bool) -> Target:
    """The URL's target with the address to connect to, or TargetRefused. Every address the
    host resolves to is checked (a name with one public and one private address is refused)."""
    scheme, host, port, path = parse(url)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise TargetRefused(f"the host {host} does not resolve ({exc})") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise TargetRefused(f"the host {host} does not resolve")
    if not allow_private:
        refused = [a for a in addresses if not public_address(a)]
        if refused:
            raise TargetRefused(f"{host} resolves to {refused[0]}, a loopback, private or reserved address; "
                                "webhooks go to public addresses only")
    return Target(scheme, host, port, path, addresses[0])
