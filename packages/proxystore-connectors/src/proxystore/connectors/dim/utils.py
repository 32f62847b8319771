"""Address helpers shared by the DIM connectors."""

from __future__ import annotations

import socket
import struct
import sys

__all__ = ["get_ip_address", "resolve_address"]

# ioctl request that reads an interface's IPv4 address (Linux <linux/sockios.h>).
_SIOCGIFADDR = 0x8915


def get_ip_address(ifname: str) -> str:
    """Return the IPv4 address assigned to the network interface ``ifname``.

    Only Linux exposes the ``SIOCGIFADDR`` ioctl this relies on.

    Raises:
        ValueError: If ``ifname`` does not exist or has no IPv4 address.
        NotImplementedError: On platforms other than Linux.
    """
    if not sys.platform.startswith("linux"):
        raise NotImplementedError(
            f"get_ip_address() needs Linux; pass an explicit address on {sys.platform}",
        )
    import fcntl  # Linux-only module: imported where it is needed

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("256s", ifname[:15].encode())
        try:
            reply = fcntl.ioctl(sock.fileno(), _SIOCGIFADDR, request)
        except OSError as exc:
            raise ValueError(
                f"network interface {ifname!r} does not exist or has no IPv4 "
                f"address: {exc.strerror}",
            ) from exc
    return socket.inet_ntoa(reply[20:24])


def resolve_address(address: str | None, interface: str | None) -> str:
    """Choose the address a DIM server binds to and peers dial.

    ``address`` wins over ``interface``; with neither, the address the host name
    resolves to is used.

    Raises:
        ValueError: If ``interface`` names an interface without an IPv4 address.
        OSError: If the host name cannot be resolved.
    """
    if address is not None:
        return address
    if interface is not None:
        return get_ip_address(interface)
    return socket.gethostbyname(socket.gethostname())
