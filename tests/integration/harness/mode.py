"""Which way the integration servers run: Testcontainers or plain processes.

``PROXYSTORE_TEST_BACKEND`` picks the mode:

* ``testcontainers`` — each server runs in a container of a private or local Docker
  engine (``DOCKER_HOST``), on the host network, bound to 127.0.0.1;
* ``process`` — each server is a child process on loopback (no engine needed);
* ``auto`` (default) — Testcontainers when an engine answers, processes otherwise.

``PROXYSTORE_TEST_IMAGES`` picks the images in Testcontainers mode: ``local`` (default:
images built from host binaries by ``scripts/build_images.sh``, no registry needed) or
``official`` (``redis:7``, ``valkey/valkey:8``, ... pulled from Docker Hub).

Under ``CI=true`` the Testcontainers mode is required: a missing engine or server is an
error, never a skip.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Literal, NamedTuple

__all__ = [
    "BackendUnavailableError",
    "Mode",
    "docker_client",
    "engine_answers",
    "in_ci",
    "select_mode",
]

#: Containers are never reaped by Ryuk (its image cannot be pulled here): our own
#: teardown removes them. Set before testcontainers reads its configuration.
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")

BACKEND_ENV = "PROXYSTORE_TEST_BACKEND"
IMAGES_ENV = "PROXYSTORE_TEST_IMAGES"


class BackendUnavailableError(RuntimeError):
    """Raised when a server needed by a test cannot be started in the chosen mode."""


class Mode(NamedTuple):
    """The selected way of running servers, and why it was selected."""

    kind: Literal["testcontainers", "process"]
    images: Literal["local", "official"]
    reason: str

    def describe(self) -> str:
        """One line for the pytest header."""
        if self.kind == "process":
            return f"process ({self.reason})"
        return f"testcontainers, {self.images} images ({self.reason})"


def in_ci() -> bool:
    """Return whether we run under CI (``CI=true``), where skips become errors."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def docker_client(timeout: float = 60) -> Any:
    """Return a ``docker.DockerClient`` for the engine testcontainers would use.

    Built through testcontainers (which resolves ``DOCKER_HOST`` and contexts the same
    way for the containers it starts). Close it after use.

    Raises:
        BackendUnavailableError: When no client can be built.
    """
    from testcontainers.core.docker_client import DockerClient

    try:
        return DockerClient(timeout=timeout).client
    except Exception as exc:  # docker raises many kinds here; all mean "no engine"
        raise BackendUnavailableError(f"no Docker engine: {exc}") from exc


def engine_answers() -> bool:
    """Return whether a Docker engine answers a ping within a few seconds."""
    host = os.environ.get("DOCKER_HOST")
    if not host and not Path("/var/run/docker.sock").exists():
        return False
    try:
        client = docker_client(timeout=5)
    except BackendUnavailableError:
        return False
    try:
        return bool(client.ping())
    except Exception:
        return False
    finally:
        client.close()


@functools.cache
def select_mode() -> Mode:
    """Decide the mode once per process from the environment.

    Raises:
        BackendUnavailableError: When the environment asks for Testcontainers (or CI
            requires it) and no engine answers, or names an unknown mode.
    """
    requested = os.environ.get(BACKEND_ENV, "auto").strip().lower() or "auto"
    images_env = os.environ.get(IMAGES_ENV, "local").strip().lower() or "local"
    if requested not in {"auto", "testcontainers", "process"}:
        raise BackendUnavailableError(
            f"{BACKEND_ENV}={requested!r}: expected testcontainers, process or auto"
        )
    if images_env not in {"local", "official"}:
        raise BackendUnavailableError(
            f"{IMAGES_ENV}={images_env!r}: expected local or official"
        )
    images: Literal["local", "official"] = (
        "official" if images_env == "official" else "local"
    )
    if in_ci() and requested == "process":
        raise BackendUnavailableError(
            f"CI=true requires Testcontainers, but {BACKEND_ENV}=process"
        )
    if requested == "process":
        return Mode("process", images, f"{BACKEND_ENV}=process")
    if engine_answers():
        return Mode("testcontainers", images, f"engine at {_engine_name()}")
    if requested == "testcontainers" or in_ci():
        why = "CI=true" if in_ci() else f"{BACKEND_ENV}=testcontainers"
        raise BackendUnavailableError(
            f"{why} requires a Docker engine, but none answers at {_engine_name()}"
        )
    return Mode("process", images, "no Docker engine answers")


def _engine_name() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
