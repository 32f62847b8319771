"""The ``proxystore-store`` command: what a store holds, and sweeping it.

::

    proxystore-store list STORE [STORE ...] [--json]
    proxystore-store sweep STORE [STORE ...]
    proxystore-store register NAME CONFIG

A ``STORE`` is a store config file (TOML as `StoreConfig.write_toml` writes it,
or JSON of `StoreConfig.as_dict`), or the name of a config registered with
``register`` (kept as ``<proxystore home>/stores/<NAME>.toml``).

``list`` prints every object of each store's connector with its size, age,
remaining time-to-live and holders, then the store's totals; ``--json`` prints
one JSON document instead. The connector must be able to list what it stores
(`ListingConnector`: Redis, files, shared memory, endpoints). Fields a backend
does not record are shown as ``-`` (``null`` in JSON): Redis keeps no creation
time, for instance.

``sweep`` removes expired objects now, for connectors whose clients sweep
(files, shared memory; `SweepingConnector`): a standalone sweeper when no process
of the namespace is running. Other backends expire objects themselves.

Nothing is ever cleared: connectors are opened from the config but closed without
their ``clear`` option. Errors are one line on stderr (exit status 1; 2 for
usage errors), never a traceback. Built with click, like the other console
scripts of the workspace.
"""

from __future__ import annotations

import inspect
import json
import os
import shutil
import sys
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple, NoReturn

import click

from proxystore.connectors.protocols import (
    KeyInfo,
    ListingConnector,
    SweepingConnector,
)
from proxystore.store.config import StoreConfig
from proxystore.utils.environment import home_dir

__all__ = ["CLIError", "cli", "load_config", "stores_dir"]

_PROG = "proxystore-store"


class CLIError(Exception):
    """An error reported as one line (no traceback)."""


def stores_dir() -> str:
    """Directory of the configs registered by name (``<home>/stores``)."""
    return os.path.join(home_dir(), "stores")


def load_config(target: str) -> StoreConfig:
    """Return the store config in file ``target``, or registered as ``target``.

    Raises:
        CLIError: if ``target`` is neither a readable config file nor a
            registered name, or the config is invalid.
    """
    path = target
    if not os.path.isfile(path):
        for suffix in (".toml", ".json"):
            candidate = os.path.join(stores_dir(), target + suffix)
            if os.path.isfile(candidate):
                path = candidate
                break
        else:
            raise CLIError(
                f"{target!r} is neither a store config file nor a registered "
                f"store name (none in {stores_dir()})."
            )
    try:
        if path.endswith(".json"):
            with open(path, encoding="utf-8") as f:
                return StoreConfig.from_dict(json.load(f))
        return StoreConfig.from_toml(path)
    except (OSError, ValueError, TypeError) as e:
        raise CLIError(f"{path}: not a valid store config: {e}") from e


def _open(config: StoreConfig) -> Any:
    try:
        return config.connector.get_connector()
    except Exception as e:
        raise CLIError(
            f"store {config.name!r}: cannot open its connector "
            f"({config.connector.kind}): {type(e).__name__}: {e}"
        ) from e


def _close(connector: Any) -> None:
    # Never clear: a config may say clear=True (FLUSHDB, rm -r) for its owner.
    close = connector.close
    try:
        params = inspect.signature(close).parameters
    except (TypeError, ValueError):
        params = {}  # type: ignore[assignment]
    if "clear" in params:
        close(clear=False)
    else:
        close()


class _Listing(NamedTuple):
    name: str
    kind: str
    objects: list[KeyInfo]


def _list_redis_fast(config: StoreConfig) -> _Listing | None:
    """List a plain Redis over a bare socket, without importing its client.

    Importing ``redis`` alone takes longer than listing 10 000 keys.
    """
    kind = config.connector.kind
    if kind.rpartition(".")[2] != "RedisConnector" or "redis" not in kind:
        return None
    from proxystore.connectors import _redis_list

    options = dict(config.connector.options)
    if not _redis_list.can_list(options):
        return None
    try:
        objects = [
            KeyInfo((name,), size, None, None if left < 0 else left / 1000, holders)
            for name, size, left, holders in _redis_list.list_keys(options)
        ]
    except Exception as e:
        raise CLIError(
            f"store {config.name!r}: listing Redis at {options['hostname']}:"
            f"{options['port']} failed: {type(e).__name__}: {e}"
        ) from e
    return _Listing(config.name, "RedisConnector", objects)


def _list(config: StoreConfig) -> _Listing:
    fast = _list_redis_fast(config)
    if fast is not None:
        return fast
    connector = _open(config)
    try:
        if not isinstance(connector, ListingConnector):
            raise CLIError(
                f"store {config.name!r}: {type(connector).__name__} cannot list "
                "what it stores."
            )
        try:
            objects = list(connector.scan())
        except CLIError:
            raise
        except Exception as e:
            raise CLIError(
                f"store {config.name!r}: listing failed: {type(e).__name__}: {e}"
            ) from e
    finally:
        _close(connector)
    return _Listing(config.name, type(connector).__name__, objects)


def _key_text(key: Any) -> str:
    if isinstance(key, tuple) and key:
        return str(key[0]) if len(key) == 1 else " ".join(str(k) for k in key)
    return str(key)


def _bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 120:
        return f"{value:.1f}s"
    if value < 7200:
        return f"{value / 60:.1f}m"
    return f"{value / 3600:.1f}h"


def _totals(objects: Sequence[KeyInfo]) -> dict[str, int]:
    return {
        "objects": len(objects),
        "bytes": sum(o.size or 0 for o in objects),
        "expiring": sum(1 for o in objects if o.ttl is not None),
    }


def _text_lines(listing: _Listing) -> Iterator[str]:
    objects = listing.objects
    rows = [
        (
            _key_text(o.key),
            "-" if o.size is None else str(o.size),
            _seconds(o.age),
            _seconds(o.ttl),
            "-" if o.holders is None else (",".join(o.holders) or "none"),
        )
        for o in objects
    ]
    header = ("KEY", "SIZE", "AGE", "TTL", "HOLDERS")
    widths = [max([len(header[i]), *(len(r[i]) for r in rows)]) for i in range(5)]
    yield f"store {listing.name} ({listing.kind})"
    if rows:
        fmt = "  {:<%d}  {:>%d}  {:>%d}  {:>%d}  {}" % tuple(widths[:4])  # noqa: UP031
        yield fmt.format(*header)
        for row in rows:
            yield fmt.format(*row)
    totals = _totals(objects)
    yield (
        f"  total: {totals['objects']} objects, {_bytes(totals['bytes'])}, "
        f"{totals['expiring']} with a time-to-live"
    )


def _json(listings: Sequence[_Listing]) -> str:
    stores = [
        {
            "name": listing.name,
            "connector": listing.kind,
            "objects": [
                {
                    "key": list(o.key) if isinstance(o.key, tuple) else o.key,
                    "size": o.size,
                    "age": o.age,
                    "ttl": o.ttl,
                    "holders": None if o.holders is None else list(o.holders),
                }
                for o in listing.objects
            ],
            "total": _totals(listing.objects),
        }
        for listing in listings
    ]
    return json.dumps({"stores": stores}, separators=(",", ":"))


def _fail(e: Exception) -> NoReturn:
    message = str(e) if isinstance(e, CLIError) else f"{type(e).__name__}: {e}"
    click.echo(f"{_PROG}: error: {message}", err=True)
    sys.exit(1)


class _OneLineErrors(click.Group):
    """A group whose commands report any error as one line (exit status 1)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except BrokenPipeError:
            sys.exit(0)
        except Exception as e:
            _fail(e)


@click.group(cls=_OneLineErrors, context_settings={"show_default": True})
def cli() -> None:
    """What a ProxyStore store holds, and sweeping it.

    A STORE is a store config file (TOML, or JSON of StoreConfig.as_dict) or
    the name of a config registered with `register`.
    """


@cli.command("list")
@click.argument("stores", nargs=-1, required=True, metavar="STORE...")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def list_command(stores: tuple[str, ...], as_json: bool) -> None:
    """List keys with size, age, time-to-live and holders, and totals per store."""
    listings = [_list(load_config(target)) for target in stores]
    out = sys.stdout
    if as_json:
        out.write(_json(listings) + "\n")
    else:
        out.write("\n".join(line for li in listings for line in _text_lines(li)))
        out.write("\n")


@cli.command("sweep")
@click.argument("stores", nargs=-1, required=True, metavar="STORE...")
def sweep_command(stores: tuple[str, ...]) -> None:
    """Remove expired objects now (file and shared-memory stores)."""
    for target in stores:
        config = load_config(target)
        connector = _open(config)
        try:
            if not isinstance(connector, SweepingConnector):
                click.echo(
                    f"store {config.name}: {type(connector).__name__} expires "
                    "objects itself; nothing to sweep"
                )
                continue
            removed = connector.sweep()
        finally:
            _close(connector)
        click.echo(f"store {config.name}: removed {removed} expired objects")


@cli.command("register")
@click.argument("name")
@click.argument("config", metavar="CONFIG")
def register_command(name: str, config: str) -> None:
    """Register the store config file CONFIG (TOML or JSON) as NAME."""
    loaded = load_config(config)  # validates before anything is written
    suffix = ".json" if config.endswith(".json") else ".toml"
    os.makedirs(stores_dir(), mode=0o700, exist_ok=True)
    for other in (".toml", ".json"):
        stale = os.path.join(stores_dir(), name + other)
        if other != suffix and os.path.exists(stale):
            os.unlink(stale)
    shutil.copyfile(config, os.path.join(stores_dir(), name + suffix))
    click.echo(f"registered store config {loaded.name!r} as {name!r}")
