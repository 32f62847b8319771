"""Listing a Redis database fast, over a bare socket (no ``redis`` import).

``proxystore-store list`` runs in a new process each time: importing the
``redis`` client alone takes longer than listing 10 000 keys, and its pipeline
parser spends tens of microseconds per reply. This module speaks just enough of
the Redis protocol (RESP2) for the listing: ``AUTH``/``SELECT``, ``SCAN`` with a
large ``COUNT``, and one pipelined ``STRLEN`` + ``PTTL`` per key of each reply.

Only plain TCP to a standalone server is handled (`can_list` says whether a
`RedisConnector` config qualifies); anything else (TLS, clusters, unusual
client options) goes through `RedisConnector.scan`.
"""

from __future__ import annotations

import io
import socket
from collections.abc import Iterator, Mapping
from typing import Any, cast

from proxystore.utils.credentials import resolve_secret_options, split_secret_options

__all__ = ["can_list", "list_keys"]

_SECRETS = ("password", "username")
_SIMPLE = {
    "hostname",
    "port",
    "clear",
    "clustered",
    "db",
    "socket_timeout",
    "socket_connect_timeout",
    *(f"{n}{suffix}" for n in _SECRETS for suffix in ("", "_env", "_credential")),
}
_COUNT = 5000
#: Prefix of the hash holding a refcounted object's holds (`_holders_redis`).
_HOLDERS = b"proxystore:holders:"


class RedisListError(Exception):
    """The server answered an error to a command the listing needs."""


def can_list(options: Mapping[str, Any]) -> bool:
    """Return whether a `RedisConnector` config can be listed by `list_keys`."""
    return (
        not options.get("clustered")
        and set(options) <= _SIMPLE
        and "hostname" in options
        and "port" in options
    )


def _command(*args: bytes | str | int) -> bytes:
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def _reply(f: io.BufferedReader) -> Any:
    line = f.readline()
    if not line:
        raise ConnectionError("Redis closed the connection")
    kind, rest = line[:1], line[1:-2]
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)
        return data[:-2]
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_reply(f) for _ in range(n)]
    if kind == b"+":
        return rest
    if kind == b"-":
        return RedisListError(rest.decode("utf-8", "replace"))
    raise ConnectionError(f"unexpected Redis reply {line[:40]!r}")


def list_keys(
    options: Mapping[str, Any],
) -> Iterator[tuple[str, int, int, tuple[str, ...] | None]]:
    """Yield ``(key, STRLEN, PTTL, holders)`` of each string key of the database.

    ``PTTL`` is ``-1`` for a key without expiry. Keys of other types, and keys
    removed during the listing, are left out. ``holders`` names the live holds
    of a reference-counted object (its ``proxystore:holders:<key>`` hash:
    holders, and ``t:<token>`` for proxies in flight), ``None`` for others.

    Raises:
        OSError: if the server cannot be reached.
        RedisListError: if the server refuses ``AUTH``, ``SELECT`` or ``SCAN``.
        CredentialError: if a secret reference does not resolve.
    """
    public, secrets = split_secret_options(options, _SECRETS)
    resolved = resolve_secret_options(public, secrets, _SECRETS)
    timeout = resolved.get("socket_connect_timeout") or 10.0
    with socket.create_connection(
        (resolved["hostname"], int(resolved["port"])), timeout=timeout
    ) as sock:
        sock.settimeout(resolved.get("socket_timeout") or 30.0)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with cast("io.BufferedReader", sock.makefile("rb", 1 << 16)) as f:
            yield from _scan(sock, f, resolved)


def _scan(
    sock: socket.socket, f: io.BufferedReader, resolved: Mapping[str, Any]
) -> Iterator[tuple[str, int, int, tuple[str, ...] | None]]:
    setup = []
    if resolved.get("password") is not None:
        user = resolved.get("username")
        password = resolved["password"]
        auth = ("AUTH", user, password) if user else ("AUTH", password)
        setup.append(_command(*auth))
    if resolved.get("db"):
        setup.append(_command("SELECT", int(resolved["db"])))
    if setup:
        sock.sendall(b"".join(setup))
        for _ in setup:
            answer = _reply(f)
            if isinstance(answer, RedisListError):
                raise answer
    found: list[tuple[str, int, int]] = []
    hashes: list[bytes] = []
    cursor = b"0"
    while True:
        sock.sendall(_command("SCAN", cursor, "COUNT", _COUNT))
        answer = _reply(f)
        if isinstance(answer, RedisListError):
            raise answer
        cursor, names = answer
        if names:
            sock.sendall(
                b"".join(
                    _command("STRLEN", name) + _command("PTTL", name) for name in names
                )
            )
            for name in names:
                size, left = _reply(f), _reply(f)
                if isinstance(size, RedisListError) or left == -2:
                    # Not a string (WRONGTYPE), or gone since.
                    if name.startswith(_HOLDERS):
                        hashes.append(name)
                    continue
                if isinstance(left, RedisListError):
                    continue
                found.append((name.decode("utf-8", "replace"), size, left))
        if cursor == b"0":
            break
    holders = _holders(sock, f, hashes) if hashes else {}
    for name, size, left in found:
        yield name, size, left, holders.get(name)


def _holders(
    sock: socket.socket, f: io.BufferedReader, hashes: list[bytes]
) -> dict[str, tuple[str, ...]]:
    """Live hold records of each refcounted object (``HGETALL`` pipelined)."""
    sock.sendall(_command("TIME") + b"".join(_command("HGETALL", h) for h in hashes))
    now = _reply(f)
    now_ms = int(now[0]) * 1000 + int(now[1]) // 1000
    out: dict[str, tuple[str, ...]] = {}
    for name in hashes:
        flat = _reply(f)
        if not isinstance(flat, list):
            continue
        records = tuple(
            flat[i].decode("utf-8", "replace")
            for i in range(0, len(flat), 2)
            if int(flat[i + 1]) > now_ms and not flat[i].startswith((b"x:", b"c:"))
        )
        out[name[len(_HOLDERS) :].decode("utf-8", "replace")] = records
    return out
