"""Real servers for integration tests, one module per backend.

* :mod:`.mode` — Testcontainers or plain processes (``PROXYSTORE_TEST_BACKEND``);
* :mod:`.images` — server programs and local images built from host binaries;
* :mod:`.servers` — one server handle (start/kill/restart/stop) for either mode;
* :mod:`.ports` — free loopback ports, distinct per xdist worker;
* :mod:`.redis` — Redis / Valkey standalone and Redis Cluster;
* :mod:`.kafka` — tansu (Kafka protocol);
* :mod:`.netns` — networks of namespaces (NATed sites with coturn and a relay, a
  cluster pair), for ``test_sites_nat.py`` and ``scripts/bench/nat.py``.

The pytest fixtures themselves live in ``tests/integration/conftest.py``.
"""

from __future__ import annotations

from .mode import BackendUnavailableError as BackendUnavailableError
from .mode import Mode as Mode
from .mode import select_mode as select_mode
from .servers import Server as Server
from .servers import ServerAddress as ServerAddress
from .servers import reap as reap

__all__ = [
    "BackendUnavailableError",
    "Mode",
    "Server",
    "ServerAddress",
    "reap",
    "select_mode",
]
