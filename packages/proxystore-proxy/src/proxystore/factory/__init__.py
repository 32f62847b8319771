"""Factories that produce the target of a [`Proxy`][proxystore.proxy.Proxy]."""

from proxystore.factory._factory import Factory as Factory
from proxystore.factory._factory import FactoryProtocol as FactoryProtocol
from proxystore.factory._factory import LambdaFactory as LambdaFactory
from proxystore.factory._factory import SimpleFactory as SimpleFactory

__all__ = ["Factory", "FactoryProtocol", "LambdaFactory", "SimpleFactory"]
