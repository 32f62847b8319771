"""The `proxystore-endpoint` command line tool.

A thin shell over `proxystore.endpoint.commands`: each command parses its
arguments, calls one function there, and exits with its code. Messages go to
stdout, warnings and errors (one line each, no traceback) to stderr. An error no
command anticipated is still one line; `--log-level DEBUG` adds its traceback.
`--help` shows every option's default.

Built with click, like the reference release's tool, so scripts and tests driving
it (click's `CliRunner`) keep working.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import uuid
from importlib import metadata
from typing import NoReturn

import click

from proxystore.endpoint import client
from proxystore.endpoint.commands import (
    configure_endpoint,
    list_endpoints,
    remove_endpoint,
    start_endpoint,
    stop_endpoint,
)
from proxystore.endpoint.config import (
    ENDPOINT_CONFIG_FILE,
    get_log_filepath,
    read_config,
)
from proxystore.utils.environment import home_dir

__all__ = ["cli"]

logger = logging.getLogger(__name__)


class _CLIHandler(logging.Handler):
    """Info to stdout as is; warnings and errors to stderr with their level."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
            if record.exc_info and record.levelno <= logging.DEBUG:
                text += "\n" + logging.Formatter().formatException(record.exc_info)
            if record.levelno >= logging.WARNING:
                click.echo(f"{record.levelname}: {text}", err=True)
            else:
                click.echo(text)
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)


class _OneLineErrors(click.Group):
    """A group whose unexpected errors print as one line instead of a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:
            logger.debug("Traceback of the error below", exc_info=True)
            logger.error(
                f"{type(exc).__name__}: {exc} (run with --log-level DEBUG for the "
                "traceback)"
            )
            raise SystemExit(1) from None


@click.group(cls=_OneLineErrors, context_settings={"show_default": True})
@click.option(
    "--log-level",
    default="INFO",
    type=click.Choice(["ERROR", "WARNING", "INFO", "DEBUG"], case_sensitive=False),
    help="Minimum logging level.",
)
@click.pass_context
def cli(ctx: click.Context, log_level: str) -> None:
    """Manage and start ProxyStore Endpoints."""
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if not isinstance(h, _CLIHandler)]
    root.addHandler(_CLIHandler())
    root.setLevel(log_level.upper())
    ctx.ensure_object(dict)
    ctx.obj["LOG_LEVEL"] = log_level.upper()


@cli.command(name="help")
def show_help() -> None:
    """Show available commands and options."""
    with click.Context(cli) as ctx:
        click.echo(cli.get_help(ctx))


@cli.command()
def version() -> None:
    """Show the ProxyStore version."""
    click.echo(f"ProxyStore v{metadata.version('proxystore-endpoint')}")


@cli.command(name="check-nat")
@click.option("--host", default="0.0.0.0", metavar="ADDR", help="Address to bind.")
@click.option(
    "--port",
    default=0,
    type=click.IntRange(0, 65535),
    metavar="PORT",
    help="Port to bind (0: any free port).",
)
@click.option(
    "--server",
    "servers",
    multiple=True,
    metavar="HOST:PORT",
    help=(
        "STUN server to ask (repeat; at least two at different addresses, e.g. "
        "your own coturn's). Default: public STUN servers."
    ),
)
@click.option(
    "--timeout",
    default=2.0,
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Seconds for the whole check.",
)
def check_nat_command(
    host: str, port: int, servers: tuple[str, ...], timeout: float
) -> None:
    """Check the NAT mapping behavior of your network."""
    from proxystore.p2p.nat import check_nat_and_log

    stun: list[tuple[str, int]] = []
    for server in servers:
        name, _, number = server.rpartition(":")
        if not name or not number.isdigit() or not 0 < int(number) < 65536:
            raise click.BadParameter(
                f"{server!r} is not HOST:PORT.", param_hint="'--server'"
            )
        stun.append((name.strip("[]"), int(number)))
    asyncio.run(check_nat_and_log(host, port, timeout, servers=stun or None))


@cli.command()
@click.argument("name", metavar="NAME", required=True)
@click.option(
    "--host",
    default="ip",
    type=str,
    help='Set endpoint host using the "ip", "fqdn", or a static address.',
)
@click.option(
    "--port",
    default=None,
    type=click.IntRange(1, 65535),
    metavar="PORT",
    help="Port to listen on.  [default: a random port in 10240-20480]",
)
@click.option(
    "--relay-address",
    default="wss://relay.proxystore.dev",
    metavar="ADDR",
    help="Relay server address.",
)
@click.option(
    "--relay-auth/--no-relay-auth",
    default=True,
    help=(
        "Authenticate with the relay server through Globus Auth (log in first "
        "with `proxystore-globus-auth login`)."
    ),
)
@click.option(
    "--relay-server/--no-relay-server",
    default=True,
    help="Connect to the relay server on start.",
)
@click.option(
    "--peer-channels",
    default=1,
    type=click.IntRange(min=1),
    metavar="COUNT",
    help="Datachannels to use per peer connection.",
)
@click.option(
    "--persist/--no-persist",
    default=False,
    help="Persist data to a database.",
)
def configure(
    name: str,
    host: str,
    port: int | None,
    relay_address: str,
    relay_auth: bool,
    relay_server: bool,
    peer_channels: int,
    persist: bool,
) -> None:
    """Configure a new endpoint."""
    raise SystemExit(
        configure_endpoint(
            name,
            host=host,
            peer_channels=peer_channels,
            persist_data=persist,
            port=port,
            relay_auth=relay_auth,
            relay_server=relay_address if relay_server else None,
        )
    )


@cli.command(name="list")
def list_all() -> None:
    """List all user endpoints."""
    raise SystemExit(list_endpoints())


@cli.command()
@click.argument("name", metavar="NAME", required=True)
def remove(name: str) -> None:
    """Remove an endpoint."""
    raise SystemExit(remove_endpoint(name))


@cli.command()
@click.argument("name", metavar="NAME", required=True)
@click.option(
    "--detach/--no-detach",
    default=True,
    help="Run as a daemon in the background (--no-detach: in this terminal).",
)
@click.pass_context
def start(ctx: click.Context, name: str, detach: bool) -> None:
    """Start an endpoint (detached, as a daemon, unless --no-detach).

    Before detaching, checks that the port is free, that the relay's credentials
    exist and that the relay answers; then reports whether the relay accepted
    the endpoint. The daemon logs to log.txt in the endpoint's directory.
    """
    raise SystemExit(
        start_endpoint(name, detach=detach, log_level=ctx.obj["LOG_LEVEL"])
    )


@cli.command()
@click.argument("name", metavar="NAME", required=True)
def stop(name: str) -> None:
    """Stop a detached endpoint."""
    raise SystemExit(stop_endpoint(name))


@cli.group()
@click.argument("name", metavar="NAME", required=True)
@click.option("--remote", metavar="UUID", help="UUID of a remote endpoint to use.")
@click.pass_context
def test(ctx: click.Context, name: str, remote: str | None) -> None:
    """Execute test commands on an endpoint.

    Options go before NAME, e.g. `proxystore-endpoint test --remote UUID NAME get
    KEY` reads KEY from the endpoint UUID through the endpoint NAME. A request
    that fails is one line on stderr (what failed and what to do) and exit code 1.
    """
    ctx.ensure_object(dict)
    endpoint_dir = os.path.join(home_dir(), name)
    try:
        cfg = read_config(endpoint_dir)
    except FileNotFoundError:
        logger.error(f"An endpoint named {name} does not exist.")
        raise SystemExit(1) from None
    except ValueError as exc:
        logger.error(str(exc))
        raise SystemExit(1) from None
    if remote is not None:
        try:
            uuid.UUID(remote)
        except ValueError:
            logger.error(f"--remote must be an endpoint UUID, got {remote!r}.")
            raise SystemExit(1) from None
    if cfg.host is None:
        logger.error(
            f"Endpoint {name} has no address yet (it was never started): start it "
            f"with `proxystore-endpoint start {name}`."
        )
        raise SystemExit(1)
    ctx.obj["ENDPOINT_NAME"] = name
    ctx.obj["ENDPOINT_ADDRESS"] = f"http://{cfg.host}:{cfg.port}"
    ctx.obj["REMOTE_ENDPOINT_UUID"] = remote


#: What a failed `test` request may raise: the client's errors (also `requests`'
#: errors), `requests`' own (e.g. a patched client), and an answer that is not
#: an endpoint's (not JSON, or JSON without the expected field).
_REQUEST_FAILURES = (OSError, ValueError, KeyError, TypeError)


def _one_line(text: str, limit: int | None = None) -> str:
    line = " ".join(text.split())
    return line if limit is None or len(line) <= limit else line[: limit - 3] + "..."


def _request_failed(ctx: click.Context, exc: BaseException) -> NoReturn:
    """Log one line saying why a `test` request failed and what to do; exit 1."""
    name, address = ctx.obj["ENDPOINT_NAME"], ctx.obj["ENDPOINT_ADDRESS"]
    logger.debug("Traceback of the failed request", exc_info=exc)
    import requests

    status = getattr(exc, "status_code", None)
    if isinstance(exc, (ConnectionError, requests.exceptions.ConnectionError)):
        logger.error(
            f"Unable to connect to endpoint {name} at {address}; is it running? "
            f"Start it with `proxystore-endpoint start {name}` (`proxystore-endpoint "
            "list` shows its status)."
        )
    elif getattr(exc, "error", None) and getattr(exc, "text", ""):
        # The endpoint's own message names the cause (e.g. the relay or the
        # peer); the HTTP status adds nothing for a person.
        logger.error(_one_line(exc.text))  # type: ignore[attr-defined]
    elif (status is not None and status < 500) or isinstance(
        exc, (ValueError, KeyError, TypeError)
    ):
        # Not an answer an endpoint gives (no error header, or no JSON).
        answered = f"HTTP {status}" if status is not None else "not the endpoint API"
        logger.error(
            f"The server at {address} is not endpoint {name} (its answer: "
            f"{answered}); another program may hold port {address.rsplit(':', 1)[1]}: "
            f"restart the endpoint (`proxystore-endpoint stop {name}`, then `start "
            f"{name}`) or change its port in {ENDPOINT_CONFIG_FILE}."
        )
    else:
        log_file = get_log_filepath(os.path.join(home_dir(), name))
        logger.error(
            f"Request to endpoint {name} at {address} failed: "
            f"{_one_line(str(exc), 300) or type(exc).__name__}; its log may say why: "
            f"{log_file}"
        )
    sys.exit(1)


@test.command()
@click.argument("key", metavar="KEY", required=True)
@click.pass_context
def evict(ctx: click.Context, key: str) -> None:
    """Evict object from an endpoint."""
    address, remote = ctx.obj["ENDPOINT_ADDRESS"], ctx.obj["REMOTE_ENDPOINT_UUID"]
    try:
        client.evict(address, key, remote)
    except _REQUEST_FAILURES as exc:
        _request_failed(ctx, exc)
    logger.info("Evicted object from endpoint.")


@test.command()
@click.argument("key", metavar="KEY", required=True)
@click.pass_context
def exists(ctx: click.Context, key: str) -> None:
    """Check if object exists in an endpoint."""
    address, remote = ctx.obj["ENDPOINT_ADDRESS"], ctx.obj["REMOTE_ENDPOINT_UUID"]
    try:
        found = client.exists(address, key, remote)
    except _REQUEST_FAILURES as exc:
        _request_failed(ctx, exc)
    logger.info(f"Object exists: {found}")


@test.command()
@click.argument("key", metavar="KEY", required=True)
@click.pass_context
def get(ctx: click.Context, key: str) -> None:
    """Get an object from an endpoint."""
    from proxystore.serialize import deserialize

    address, remote = ctx.obj["ENDPOINT_ADDRESS"], ctx.obj["REMOTE_ENDPOINT_UUID"]
    try:
        data = client.get(address, key, remote)
    except _REQUEST_FAILURES as exc:
        _request_failed(ctx, exc)
    if data is None:
        logger.info("Object does not exist.")
    else:
        logger.info(f"Result: {deserialize(data)}")


@test.command()
@click.argument("data", required=True)
@click.pass_context
def put(ctx: click.Context, data: str) -> None:
    """Put an object in an endpoint."""
    from proxystore.serialize import serialize

    address, remote = ctx.obj["ENDPOINT_ADDRESS"], ctx.obj["REMOTE_ENDPOINT_UUID"]
    key = str(uuid.uuid4())
    try:
        client.put(address, key, serialize(data), remote)
    except _REQUEST_FAILURES as exc:
        _request_failed(ctx, exc)
    logger.info(f"Put object in endpoint with key {key}")
