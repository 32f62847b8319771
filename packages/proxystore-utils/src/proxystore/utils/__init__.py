"""Small helpers shared by the proxystore packages.

Import the submodule you need; nothing is re-exported here so that importing one
helper never pays for the others:

* `proxystore.utils.config` -- TOML dump/load of (frozen) dataclasses;
* `proxystore.utils.counter` -- `AtomicCounter`;
* `proxystore.utils.data` -- chunking and human-readable byte sizes;
* `proxystore.utils.environment` -- home directory and hostname;
* `proxystore.utils.imports` -- objects to and from dotted paths;
* `proxystore.utils.tasks` -- guarded asyncio background tasks;
* `proxystore.utils.timer` -- [`Timer`][proxystore.utils.timer.Timer].
"""

from __future__ import annotations

__all__: list[str] = []
