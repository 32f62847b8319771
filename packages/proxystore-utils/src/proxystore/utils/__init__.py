"""Small helpers shared by the proxystore packages.

The reference's helpers are re-exported here (`hostname`, `home_dir`,
`bytes_to_readable`, `readable_to_bytes`, `chunk_bytes`, `get_object_path`,
`import_from_path`); the submodules are:

* `proxystore.utils.config` -- TOML dump/load of (frozen) dataclasses;
* `proxystore.utils.counter` -- `AtomicCounter`;
* `proxystore.utils.data` -- chunking and human-readable byte sizes;
* `proxystore.utils.environment` -- home directory and hostname;
* `proxystore.utils.imports` -- objects to and from dotted paths;
* `proxystore.utils.tasks` -- guarded asyncio background tasks;
* `proxystore.utils.timer` -- [`Timer`][proxystore.utils.timer.Timer].
"""

from __future__ import annotations

# The reference's re-exports (all from light modules: no third-party imports).
from proxystore.utils.data import bytes_to_readable as bytes_to_readable
from proxystore.utils.data import chunk_bytes as chunk_bytes
from proxystore.utils.data import readable_to_bytes as readable_to_bytes
from proxystore.utils.environment import home_dir as home_dir
from proxystore.utils.environment import hostname as hostname
from proxystore.utils.imports import get_object_path as get_object_path
from proxystore.utils.imports import import_from_path as import_from_path

__all__ = [
    "bytes_to_readable",
    "chunk_bytes",
    "get_object_path",
    "home_dir",
    "hostname",
    "import_from_path",
    "readable_to_bytes",
]
