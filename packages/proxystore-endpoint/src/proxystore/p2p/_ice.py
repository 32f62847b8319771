"""Choose which local addresses ICE offers as host candidates.

aioice offers every interface address except loopback, with no setting to change
that. Hosts with several interfaces (and tests, which must stay on 127.0.0.0/8) need
to pick the addresses. aioice looks its address list up through the module-level
function `aioice.ice.get_host_addresses` at gathering time; we wrap that function once
so that, inside `allowed_host_addresses(...)`, it returns the configured addresses
instead. Outside that context (and for any other aioice user in the process) the
original function answers unchanged. Gathering runs in tasks spawned by
`RTCPeerConnection.setLocalDescription`, which inherit the context variable.
"""

from __future__ import annotations

import contextlib
import contextvars
import ipaddress
from collections.abc import Callable, Iterable, Iterator

__all__ = ["allowed_host_addresses", "validate_addresses"]

_ALLOWED: contextvars.ContextVar[tuple[str, ...] | None] = contextvars.ContextVar(
    "proxystore_p2p_ice_addresses", default=None
)
_installed = False


def validate_addresses(addresses: Iterable[str]) -> tuple[str, ...]:
    """Return `addresses` as a tuple of normalised IP address strings.

    Raises:
        ValueError: If an entry is not an IPv4 or IPv6 address, or none is given.
    """
    out: list[str] = []
    for address in addresses:
        try:
            out.append(str(ipaddress.ip_address(address)))
        except ValueError as exc:
            raise ValueError(f"ICE address {address!r} is not an IP address.") from exc
    if not out:
        raise ValueError("At least one ICE address is needed (or None for all).")
    return tuple(out)


def _install() -> None:
    global _installed
    if _installed:
        return
    import aioice.ice

    original: Callable[[bool, bool], list[str]] = aioice.ice.get_host_addresses

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        allowed = _ALLOWED.get()
        if allowed is None:
            return original(use_ipv4, use_ipv6)
        return [
            a
            for a in allowed
            if (use_ipv6 if ipaddress.ip_address(a).version == 6 else use_ipv4)
        ]

    aioice.ice.get_host_addresses = get_host_addresses
    _installed = True


@contextlib.contextmanager
def allowed_host_addresses(addresses: tuple[str, ...] | None) -> Iterator[None]:
    """Within the block, ICE gathering offers only `addresses` (all when `None`)."""
    if addresses is None:
        yield
        return
    _install()
    token = _ALLOWED.set(addresses)
    try:
        yield
    finally:
        _ALLOWED.reset(token)
