"""Every request Chat-Tonic makes to another server, through one guarded ``requests`` session.

Tenants choose some of the URLs the worker calls (a lead webhook, the API channel's webhook
URL, a flow's HTTP node), and operators choose the others (the platforms' and Trello's API
bases). None of them may reach the deployment's own network: the session refuses private,
loopback, link-local (the cloud metadata address 169.254.169.254 among them), shared
(CGNAT 100.64/10), multicast, reserved and unspecified addresses, the IPv6 forms that carry
such an IPv4 address (IPv4-mapped, 6to4, NAT64), and every scheme but http and https.
``OUTBOUND_ALLOWED_HOSTS`` names the hosts (``host`` or ``host:port``) allowed all the same.

How: the transport adapter resolves the URL's host name once, refuses the request when any
address of the name is refused, and connects to the very address it checked: the connection
pool's host is that IP, while the ``Host`` header, TLS's SNI and the certificate check keep
the name. There is no second lookup between the check and the connection, so a name that
answers with a public address first and an internal one next (DNS rebinding) gains nothing,
and no packet is ever sent to a refused address. Every redirect hop passes through the
adapter again. The adapter hooks into ``HTTPAdapter.build_connection_pool_key_attributes``,
which requests documents for subclasses to change the connection's parameters (the same
hook Saleor's requests-hardened uses; that library has no per-host allowance, so this
module does the small part it needed by hand).

A refused request raises :class:`OutboundRefused`, whose text is always :data:`REFUSED`:
it reads the same for an open port and a closed one, and no packet tells them apart.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.util.connection import allowed_gai_family

logger = logging.getLogger(__name__)

REFUSED = "refused: the address is not allowed"
DEFAULT_PORTS = {"http": 80, "https": 443}
#: (connect, read) seconds when a caller passes no time-out: no request waits forever.
DEFAULT_TIMEOUT = (5.0, 30.0)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Ranges refused although Python calls them global (or did before 3.12): they carry another
# address (6to4, NAT64) or reach a provider's internal network.
_EXTRA_REFUSED = tuple(
    ipaddress.ip_network(net)
    for net in (
        "192.0.0.0/24",  # IETF protocol assignments (global in Python 3.11.7)
        "192.88.99.0/24",  # 6to4 relay anycast
        "2002::/16",  # 6to4: an IPv4 address inside
        "64:ff9b::/96",  # NAT64, well-known prefix: an IPv4 address inside
        "64:ff9b:1::/48",  # NAT64, local-use prefix
    )
)


class OutboundRefused(requests.RequestException):
    """The request's destination is not allowed (its address, or its scheme). Nothing was
    sent; trying again will not help until the URL or ``OUTBOUND_ALLOWED_HOSTS`` changes."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(REFUSED, **kwargs)


class HostUnresolved(requests.ConnectionError):
    """The host name does not resolve: nothing was sent (the caller may try again later)."""


def address_refused(address: IPAddress) -> bool:
    """True for an address that outbound requests must not reach."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (
        not address.is_global
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or any(address in net for net in _EXTRA_REFUSED if net.version == address.version)
    )


def _ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])  # an IPv6 scope (fe80::1%eth0)
    except ValueError:
        return None


def _normal_host(host: str) -> str:
    host = host.strip().strip("[]").rstrip(".").lower()
    address = _ip(host)
    return str(address) if address is not None else host


@lru_cache(maxsize=8)
def _allowances(entries: tuple[str, ...]) -> frozenset[tuple[str, int | None]]:
    allowed = set()
    for entry in entries:
        text = entry.strip().lower()
        if text.startswith("["):  # [::1] or [::1]:8080
            host, _, rest = text[1:].partition("]")
            port = rest[1:] if rest.startswith(":") else ""
        elif text.count(":") == 1:  # host:port
            host, _, port = text.partition(":")
        else:  # a name, an IPv4 address, or a bare IPv6 address
            host, port = text, ""
        allowed.add((_normal_host(host), int(port) if port.isdigit() else None))
    return frozenset(allowed)


def host_allowed(host: str, port: int) -> bool:
    """True when ``OUTBOUND_ALLOWED_HOSTS`` names the host (any port) or ``host:port``."""
    entries = tuple(getattr(settings, "OUTBOUND_ALLOWED_HOSTS", ()) or ())
    if not entries:
        return False
    allowed = _allowances(entries)
    host = _normal_host(host)
    return (host, None) in allowed or (host, port) in allowed


def _checked_address(host: str, port: int) -> str:
    """The address to connect to for ``host``: its only (or first) address, once every
    address it resolves to has passed the check."""
    literal = _ip(host)
    if literal is not None:
        candidates = [literal]
    else:
        try:
            infos = socket.getaddrinfo(host, port, allowed_gai_family(), socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            raise HostUnresolved(f"The host name {host!r} does not resolve.") from None
        candidates = [address for info in infos if (address := _ip(str(info[4][0])))]
    refused = [address for address in candidates if address_refused(address)]
    if refused or not candidates:
        logger.warning(
            "outbound: refused a request to %s port %s (%s)",
            host,
            port,
            ", ".join(str(address) for address in refused) or "no address",
        )
        raise OutboundRefused()
    return str(candidates[0])


class GuardedAdapter(HTTPAdapter):
    """Connects only to checked addresses (see the module's docstring)."""

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        scheme, host = host_params["scheme"], host_params["host"] or ""
        if scheme not in DEFAULT_PORTS or not host:
            raise OutboundRefused()
        port = host_params["port"] or DEFAULT_PORTS[scheme]
        # Set on every hop: a redirect's copy of the request keeps the previous hop's header.
        shown = f"[{host}]" if ":" in host else host
        request.headers["Host"] = f"{shown}:{host_params['port']}" if host_params["port"] else shown
        if host_allowed(host, port):
            return host_params, pool_kwargs
        address = _checked_address(host, port)
        if scheme == "https":
            # TLS checks the certificate against the name, and sends the name as SNI.
            pool_kwargs["assert_hostname"] = host
            pool_kwargs["server_hostname"] = host
        host_params["host"] = address
        return host_params, pool_kwargs


class OutboundSession(requests.Session):
    """A ``requests.Session`` whose every request is guarded; it ignores the environment's
    proxies and .netrc (a proxy would resolve the name itself, past the check)."""

    def __init__(self) -> None:
        super().__init__()
        self.trust_env = False
        self.mount("http://", GuardedAdapter())
        self.mount("https://", GuardedAdapter())

    def get_adapter(self, url: str):
        if urlsplit(url).scheme.lower() not in DEFAULT_PORTS:
            raise OutboundRefused()
        return super().get_adapter(url)

    def send(self, request, **kwargs):
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = DEFAULT_TIMEOUT
        return super().send(request, **kwargs)


def session() -> OutboundSession:
    """A new guarded session (keep one per thread to reuse connections)."""
    return OutboundSession()


def request(method: str, url: str, **kwargs: Any) -> requests.Response:
    """One guarded request on a session of its own (as ``requests.request``)."""
    with OutboundSession() as one:
        return one.request(method, url, **kwargs)


def url_problem(url: str) -> str | None:
    """Why a URL a tenant saves will be refused, said at save time; None when it may be
    tried. Only what the URL itself shows (its scheme, an IP literal, "localhost"): names
    are checked when the request connects, which is the real guard."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "Not a valid URL."
    if parts.scheme.lower() not in DEFAULT_PORTS:
        return "Must be an http:// or https:// URL."
    host = parts.hostname or ""
    if not host:
        return "The URL has no host."
    if host_allowed(host, port or DEFAULT_PORTS[parts.scheme.lower()]):
        return None
    address = _ip(host)
    name = host.rstrip(".").lower()
    if (address is not None and address_refused(address)) or (
        name == "localhost" or name.endswith(".localhost")
    ):
        return "Private, loopback, link-local and reserved addresses are not allowed."
    return None
