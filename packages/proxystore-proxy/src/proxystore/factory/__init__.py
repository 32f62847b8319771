"""Factories that produce the target of a [`Proxy`][proxystore.proxy.Proxy]."""

from proxystore.factory._factory import Factory as Factory
from proxystore.factory._factory import FactoryProtocol as FactoryProtocol
from proxystore.factory._factory import LambdaFactory as LambdaFactory
from proxystore.factory._factory import SimpleFactory as SimpleFactory

__all__ = ["Factory", "FactoryProtocol", "LambdaFactory", "SimpleFactory"]

# Public names report this module in reprs and tracebacks (pickles stay valid: each
# name is importable from here).
for _public in (Factory, FactoryProtocol, LambdaFactory, SimpleFactory):
    _public.__module__ = __name__
del _public
