"""Integrations under their proxystore-ex import paths (``proxystore.ex.plugins``).

`proxystore.ex.plugins.distributed` re-exports `proxystore.store.dask`
(the Dask ``Client`` that proxies large task arguments and results).
"""

__all__: list[str] = []
