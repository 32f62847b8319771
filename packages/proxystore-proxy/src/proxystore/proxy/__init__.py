"""Lazy, transparent object proxies.

A [`Proxy`][proxystore.proxy.Proxy] wraps a *factory*; on first use it calls the
factory once, caches the result (the *target*) and then behaves like the target.
Pickling a proxy sends only the factory, so a proxy is a cheap reference to data
that is fetched where and when it is used.
"""

from proxystore.proxy._exceptions import ProxyResolveError as ProxyResolveError
from proxystore.proxy._proxy import DefaultClassType as DefaultClassType
from proxystore.proxy._proxy import DefaultHashType as DefaultHashType
from proxystore.proxy._proxy import FactoryType as FactoryType
from proxystore.proxy._proxy import Proxy as Proxy
from proxystore.proxy._proxy import _proxy_trampoline as _proxy_trampoline
from proxystore.proxy._utils import ProxyLocker as ProxyLocker
from proxystore.proxy._utils import ProxyOr as ProxyOr
from proxystore.proxy._utils import extract as extract
from proxystore.proxy._utils import get_factory as get_factory
from proxystore.proxy._utils import is_resolved as is_resolved
from proxystore.proxy._utils import resolve as resolve

__all__ = [
    "DefaultClassType",
    "DefaultHashType",
    "FactoryType",
    "Proxy",
    "ProxyLocker",
    "ProxyOr",
    "ProxyResolveError",
    "extract",
    "get_factory",
    "is_resolved",
    "resolve",
]
