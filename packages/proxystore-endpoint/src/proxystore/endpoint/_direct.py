"""Which HTTP addresses an endpoint's direct path may talk to.

A peer tells an endpoint its HTTP address over the peer connection (the `info`
request). The peer is who the relay says it is, but the address is only its word: a
peer could name any host, port or redirecting server and have this endpoint send
requests there. So an advertised address is used only when

* it is a plain `http://host:port` URL (no credentials, path, query or fragment);
* the host is, or resolves to, an address of this machine (loopback or an address
  a local socket can bind to) or of a network the endpoint's configuration lists
  (`peering.direct_networks`), and requests then go to that IP address, never
  to the name again (no second DNS answer can move them elsewhere);
* `GET /endpoint` there answers 200 with the peer's own UUID (checked by the
  endpoint), without following a redirect.

Anything else leaves the peer on the WebRTC path.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import urllib.parse
from collections.abc import Iterable, Sequence

__all__ = ["allowed_ip", "direct_networks", "pin_direct_url"]

_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def direct_networks(networks: Iterable[str]) -> tuple[_IPNetwork, ...]:
    """Parse CIDR networks (`'10.0.0.0/8'`) a direct path may reach.

    Raises:
        ValueError: If a network does not parse.
    """
    return tuple(ipaddress.ip_network(n, strict=False) for n in networks)


def _binds_locally(ip: _IPAddress) -> bool:
    """Whether `ip` is an address of one of this machine's interfaces."""
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.bind((str(ip), 0))
    except OSError:
        return False
    return True


def allowed_ip(ip: _IPAddress, networks: Sequence[_IPNetwork] = ()) -> bool:
    """Whether the direct path may connect to `ip`."""
    if ip.is_unspecified or ip.is_multicast:
        return False
    if ip.is_loopback or any(ip in network for network in networks):
        return True
    return _binds_locally(ip)


async def pin_direct_url(url: str, networks: Sequence[_IPNetwork] = ()) -> str | None:
    """Return `url` with its host pinned to an allowed IP address, or `None`.

    Args:
        url: Address a peer advertised, e.g. `http://host:5555`.
        networks: Networks allowed beyond this machine's own addresses.
    """
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname
    if (
        parts.scheme != "http"
        or host is None
        or port is None
        or parts.username is not None
        or parts.password is not None
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        return None
    try:
        candidates: list[_IPAddress] = [ipaddress.ip_address(host)]
    except ValueError:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError:
            return None
        candidates = []
        for info in infos:
            try:
                candidates.append(ipaddress.ip_address(info[4][0]))
            except ValueError:
                continue
    for ip in candidates:
        if allowed_ip(ip, networks):
            shown = f"[{ip}]" if ip.version == 6 else str(ip)
            return f"http://{shown}:{port}"
    return None
