"""Choose which local addresses ICE offers, and how fast its checks retransmit.

aioice offers every interface address except loopback, with no setting to change
that. Hosts with several interfaces (and tests, which must stay on 127.0.0.0/8) need
to pick the addresses. aioice looks its address list up through the module-level
function `aioice.ice.get_host_addresses` at gathering time; we wrap that function once
so that, inside `allowed_host_addresses(...)`, it returns the configured addresses
instead. Outside that context (and for any other aioice user in the process) the
original function answers unchanged. Gathering runs in tasks spawned by
`RTCPeerConnection.setLocalDescription`, which inherit the context variable.

`fast_retransmits()` does the same for the first retransmission delay of aioice's
STUN transactions (connectivity checks, STUN and TURN requests): 0.5 s in aioice,
`RETRANSMIT_AFTER` inside the block (then doubling as before, 7 tries). Behind a
NAT that drops unsolicited packets, the first check of one side is often dropped
because it reaches the other router before that router's host has sent anything;
the connection then waits for the retransmission, so this delay is most of the
set-up time through a NAT. Checks that must not be retried (consent freshness)
keep aioice's timeout.

`bounded_gathering()` bounds how long gathering waits for STUN and TURN servers:
`GATHER_TIMEOUT` instead of aioice's 5 s, so an unreachable server (e.g. the public
default on a network without internet access) delays a new connection by at most
that, without trickle ICE.
"""

from __future__ import annotations

import contextlib
import contextvars
import ipaddress
from collections.abc import Callable, Iterable, Iterator
from typing import Any

__all__ = [
    "GATHER_TIMEOUT",
    "RETRANSMIT_AFTER",
    "allowed_host_addresses",
    "bounded_gathering",
    "fast_retransmits",
    "validate_addresses",
]

RETRANSMIT_AFTER = 0.05
"""Seconds before a STUN transaction's first retransmission (then doubling)."""
GATHER_TIMEOUT = 1.5
"""Seconds candidate gathering waits for STUN and TURN servers."""

_ALLOWED: contextvars.ContextVar[tuple[str, ...] | None] = contextvars.ContextVar(
    "proxystore_p2p_ice_addresses", default=None
)
_RTO: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "proxystore_p2p_ice_rto", default=None
)
_GATHER: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "proxystore_p2p_ice_gather", default=None
)
_installed = False
_rto_installed = False
_gather_installed = False


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


def _install_rto() -> None:
    global _rto_installed
    if _rto_installed:
        return
    import aioice.stun

    transaction = aioice.stun.Transaction
    original: Callable[..., None] = transaction.__init__
    # aioice keeps the delay in a private attribute; if a release renames it,
    # the patch does nothing (aioice's own delay applies).
    attribute = "_Transaction__timeout_delay"

    def __init__(
        self: Any,
        request: Any,
        addr: Any,
        protocol: Any,
        retransmissions: int | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        original(self, request, addr, protocol, retransmissions, *args, **kwargs)
        rto = _RTO.get()
        if rto is not None and retransmissions is None and hasattr(self, attribute):
            setattr(self, attribute, rto)

    transaction.__init__ = __init__  # type: ignore[method-assign]
    _rto_installed = True


@contextlib.contextmanager
def fast_retransmits(delay: float = RETRANSMIT_AFTER) -> Iterator[None]:
    """Within the block, new aioice STUN transactions retransmit after `delay`."""
    _install_rto()
    token = _RTO.set(delay)
    try:
        yield
    finally:
        _RTO.reset(token)


def _install_gather() -> None:
    global _gather_installed
    if _gather_installed:
        return
    import aioice.ice

    connection = aioice.ice.Connection
    original: Callable[..., Any] = connection.get_component_candidates

    async def get_component_candidates(
        self: Any,
        component: int,
        addresses: list[str],
        timeout: float = 5,  # noqa: ASYNC109
    ) -> Any:
        bound = _GATHER.get()
        return await original(
            self, component, addresses, timeout if bound is None else bound
        )

    connection.get_component_candidates = get_component_candidates  # type: ignore[method-assign]
    _gather_installed = True


@contextlib.contextmanager
def bounded_gathering(seconds: float = GATHER_TIMEOUT) -> Iterator[None]:
    """Within the block, gathering waits at most `seconds` for STUN/TURN servers."""
    _install_gather()
    token = _GATHER.set(seconds)
    try:
        yield
    finally:
        _GATHER.reset(token)


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
