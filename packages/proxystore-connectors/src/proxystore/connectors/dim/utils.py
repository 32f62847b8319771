"""Address helpers shared by the DIM connectors."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import socket
import struct
import sys

__all__ = ["get_ip_address", "interface_addresses", "resolve_address"]

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


class _IfAddrs(ctypes.Structure):
    """``struct ifaddrs`` of <ifaddrs.h> (the fields read here)."""


_IfAddrs._fields_ = [
    ("ifa_next", ctypes.POINTER(_IfAddrs)),
    ("ifa_name", ctypes.c_char_p),
    ("ifa_flags", ctypes.c_uint),
    ("ifa_addr", ctypes.c_void_p),
]

# Offset of the address bytes inside sockaddr_in / sockaddr_in6.
_ADDRESS_AT: dict[int, tuple[int, int]] = {
    socket.AF_INET: (4, 4),
    socket.AF_INET6: (8, 16),
}


def interface_addresses() -> dict[str, str]:
    """Return every IP address assigned to a network interface, with its name.

    Secondary addresses count (``ip addr add 127.0.0.2/8 dev lo``), but an
    address merely inside an assigned subnet does not: ``127.0.0.2`` is not an
    interface address when only ``127.0.0.1/8`` is on ``lo``, although the
    kernel lets a socket bind it. Libraries that pick their network by address
    (libfabric's providers, for one) see exactly this list (``getifaddrs(3)``).

    Raises:
        OSError: If the C library has no ``getifaddrs`` or it fails.
    """
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    head = ctypes.POINTER(_IfAddrs)()
    if libc.getifaddrs(ctypes.byref(head)) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"getifaddrs() failed: {os.strerror(errno)}")
    found: dict[str, str] = {}
    try:
        entry = head
        while bool(entry):  # a NULL pointer is false
            item = entry.contents
            if item.ifa_addr:
                # sa_family: a native 16-bit field on Linux, the second byte on BSDs.
                raw = ctypes.string_at(item.ifa_addr, 2)
                if sys.platform == "darwin":
                    family = raw[1]
                else:
                    family = int.from_bytes(raw, sys.byteorder)
                where = _ADDRESS_AT.get(family)
                if where is not None:
                    start, size = where
                    packed = ctypes.string_at(item.ifa_addr, start + size)[start:]
                    name = (item.ifa_name or b"").decode(errors="replace")
                    found.setdefault(socket.inet_ntop(family, packed), name)
            entry = item.ifa_next
    finally:
        libc.freeifaddrs(head)
    return found
