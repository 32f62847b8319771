"""Connectors under their proxystore-ex import paths (``proxystore.ex.connectors``).

ProxyStore's extension package (``proxystore_ex``, reached through ``proxystore.ex``)
shipped the DIM connectors; here they live in `proxystore.connectors.dim` and
these modules re-export them, so code written for proxystore-ex runs unchanged.
"""

__all__: list[str] = []
