"""Stream objects through message brokers, with bulk data kept in stores.

A `StreamProducer` publishes objects to topics through a publisher shim
(`proxystore.stream.shims`); a `StreamConsumer` reads them back,
as lazy proxies when the producer put them in a [`Store`][proxystore.store.Store].
A `TrustPolicy` (`proxystore.stream.trust`) sets what a consumer accepts from
the writers of its broker.

This API is experimental: importing this package emits
[`proxystore.warnings.ExperimentalWarning`][proxystore.warnings.ExperimentalWarning].
"""

from __future__ import annotations

import warnings

from proxystore.stream._consumer import StreamConsumer as StreamConsumer
from proxystore.stream._producer import StreamProducer as StreamProducer
from proxystore.stream.trust import TrustPolicy as TrustPolicy
from proxystore.warnings import ExperimentalWarning

__all__ = ["StreamConsumer", "StreamProducer", "TrustPolicy"]

# Public names report this module in reprs and tracebacks (pickles stay valid: each
# name is importable from here).
for _public in (StreamConsumer, StreamProducer):
    _public.__module__ = __name__
del _public

warnings.warn(
    "Streaming is an experimental feature and its API may change in future "
    "releases without notice.",
    category=ExperimentalWarning,
    stacklevel=2,
)
