"""Serve a relay server (the `proxystore-relay` console script)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import logging.handlers
import os
import signal
import ssl
import sys
from typing import Any

import click
from aiohttp import web

from proxystore.p2p.relay.authenticate import get_authenticator
from proxystore.p2p.relay.config import RelayServingConfig
from proxystore.p2p.relay.server import RelayServer

__all__ = ["cli", "periodic_client_logger", "serve"]

logger = logging.getLogger(__name__)


def periodic_client_logger(
    server: RelayServer[Any],
    interval: float = 60,
    limit: int | None = 60,
    level: int = logging.INFO,
) -> asyncio.Task[None]:
    """Start a task logging the connected clients every `interval` seconds.

    Args:
        server: The relay whose clients are logged.
        interval: Seconds between logs.
        limit: List clients by name when there are at most this many.
        level: Log level of the lines.

    Returns:
        The task; cancel it to stop.
    """

    async def _log() -> None:
        while True:
            await asyncio.sleep(interval)
            clients = server.client_manager.get_clients()
            logger.log(level, "Connected clients: %d", len(clients))
            if limit is not None and 0 < len(clients) <= limit:
                for client in clients:
                    logger.log(level, "  %r", client)

    return asyncio.create_task(_log(), name="relay-client-logger")


def _ssl_context(config: RelayServingConfig) -> ssl.SSLContext | None:
    if config.certfile is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(config.certfile, keyfile=config.keyfile)
    return context


async def serve(
    config: RelayServingConfig, *, stop: asyncio.Event | None = None
) -> None:
    """Serve a relay until SIGINT/SIGTERM (or until `stop` is set).

    Logging is not configured here; `cli()` does that.

    Args:
        config: What to serve and how.
        stop: Optional event ending the server when set (signal handlers are then
            not installed, so the server can run inside another program).

    Raises:
        OSError: If the address cannot be bound.
        ValueError: If the authentication configuration is wrong.
    """
    server: RelayServer[Any] = RelayServer(
        get_authenticator(config.auth),
        max_message_bytes=config.max_message_bytes,
        heartbeat_seconds=config.heartbeat_seconds,
        probe_seconds=config.probe_seconds,
        max_registrations=config.max_registrations,
    )
    runner = web.AppRunner(server.app(), handle_signals=False, access_log=None)
    await runner.setup()
    loop = asyncio.get_running_loop()
    own_stop = stop is None
    stop_event = asyncio.Event() if stop is None else stop
    log_task: asyncio.Task[None] | None = None
    try:
        site = web.TCPSite(
            runner, config.host, config.port, ssl_context=_ssl_context(config)
        )
        await site.start()
        if own_stop:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop_event.set)
        if config.logging.current_client_interval is not None:
            level = config.logging.default_level
            log_task = periodic_client_logger(
                server,
                config.logging.current_client_interval,
                config.logging.current_client_limit,
                level=level if isinstance(level, int) else logging.getLevelName(level),
            )
        scheme = "wss" if config.certfile is not None else "ws"
        logger.info(
            "Relay server listening on %s://%s:%d",
            scheme,
            config.host or "0.0.0.0",
            config.port,
        )
        await stop_event.wait()
    finally:
        if log_task is not None:
            log_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await log_task
        if own_stop:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
        await runner.cleanup()
        logger.info("Relay server stopped")


def _configure_logging(config: RelayServingConfig) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stdout)]
    if config.logging.log_dir is not None:
        # The log names every endpoint that connects and where from: the relay's
        # user alone reads it. The umask also covers the files rotation creates.
        os.umask(os.umask(0) | 0o077)
        os.makedirs(config.logging.log_dir, mode=0o700, exist_ok=True)
        handlers.append(
            logging.handlers.TimedRotatingFileHandler(
                os.path.join(config.logging.log_dir, "server.log"),
                when="W6",
                atTime=datetime.time(0, 0, 0),
            )
        )
    logging.basicConfig(
        format="[%(asctime)s.%(msecs)03d] %(levelname)-5s (%(name)s) :: %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
        level=config.logging.default_level,
        handlers=handlers,
        force=True,
    )
    for name in ("aiohttp", "aiohttp.access", "aiohttp.server", "aiohttp.web"):
        logging.getLogger(name).setLevel(config.logging.websockets_level)


def _level_name(level: int | str) -> str:
    return level if isinstance(level, str) else logging.getLevelName(level)


_DEFAULTS = RelayServingConfig()
_DEFAULT_LEVEL = _level_name(_DEFAULTS.logging.default_level)


@click.command(context_settings={"show_default": True})
@click.option(
    "--config",
    "-c",
    "config_path",
    metavar="PATH",
    type=click.Path(exists=True, dir_okay=False),
    help="TOML configuration file (relay.toml); options given here override it.",
)
@click.option(
    "--host",
    metavar="ADDR",
    help="Interface to bind to.  [default: every interface]",
)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    metavar="PORT",
    help=f"Port to bind to.  [default: {_DEFAULTS.port}]",
)
@click.option(
    "--log-dir",
    metavar="PATH",
    help="Directory for the server log file.  [default: log to stdout only]",
)
@click.option(
    "--log-level",
    type=click.Choice(
        ["CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"], case_sensitive=False
    ),
    help=f"Minimum log level.  [default: {_DEFAULT_LEVEL}]",
)
def cli(
    config_path: str | None,
    host: str | None,
    port: int | None,
    log_dir: str | None,
    log_level: str | None,
) -> None:
    """Run a relay server that introduces peers for WebRTC connections.

    Options given here override the configuration file; without a file the
    defaults of RelayServingConfig are used.
    """
    try:
        config = (
            RelayServingConfig()
            if config_path is None
            else RelayServingConfig.from_toml(config_path)
        )
    except (OSError, ValueError, TypeError) as exc:
        raise click.ClickException(f"Cannot read relay config: {exc}") from exc
    if host is not None:
        config.host = host
    if port is not None:
        config.port = port
    if log_dir is not None:
        config.logging.log_dir = log_dir
    if log_level is not None:
        config.logging.default_level = log_level.upper()
    try:
        _configure_logging(config)
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"Cannot set up logging: {exc}") from exc
    try:
        asyncio.run(serve(config))
    except OSError as exc:
        raise click.ClickException(
            f"Cannot serve on {config.host or '0.0.0.0'}:{config.port}: {exc}"
        ) from exc
    except (ValueError, ImportError) as exc:
        raise click.ClickException(str(exc)) from exc


if __name__ == "__main__":  # `python -m proxystore.p2p.relay.run`
    cli()
