"""Small helpers shared by the proxystore packages.

Import the submodule you need; nothing is re-exported here so that importing one
helper never pays for the others:

* :mod:`proxystore.utils.config` -- TOML dump/load of (frozen) dataclasses;
* :mod:`proxystore.utils.counter` -- :class:`~proxystore.utils.counter.AtomicCounter`;
* :mod:`proxystore.utils.data` -- chunking and human-readable byte sizes;
* :mod:`proxystore.utils.environment` -- home directory and hostname;
* :mod:`proxystore.utils.imports` -- objects to and from dotted paths;
* :mod:`proxystore.utils.tasks` -- guarded asyncio background tasks;
* :mod:`proxystore.utils.timer` -- :class:`~proxystore.utils.timer.Timer`.
"""

from __future__ import annotations

__all__: list[str] = []
