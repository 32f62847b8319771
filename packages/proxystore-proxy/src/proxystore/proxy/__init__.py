"""Lazy, transparent object proxies.

A [`Proxy`][proxystore.proxy.Proxy] wraps a *factory*; on first use it calls the
factory once, caches the result (the *target*) and then behaves like the target.
Pickling a proxy sends only the factory, so a proxy is a cheap reference to data
that is fetched where and when it is used.

`Proxy` itself is defined here (its engine lives in `_proxy`), so that reprs,
tracebacks and type checkers name it `proxystore.proxy.Proxy`.
"""

from typing import TypeVar

from typing_extensions import TypeAliasType

from proxystore.proxy._exceptions import ProxyResolveError as ProxyResolveError
from proxystore.proxy._proxy import DefaultClassType as DefaultClassType
from proxystore.proxy._proxy import DefaultHashType as DefaultHashType
from proxystore.proxy._proxy import FactoryType as FactoryType
from proxystore.proxy._proxy import T_co, _Engine, _ProxyAPI, _set_public_proxy
from proxystore.proxy._proxy import _proxy_trampoline as _proxy_trampoline
from proxystore.proxy._utils import ProxyLocker as ProxyLocker
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

T = TypeVar("T")


class Proxy(_ProxyAPI[T_co], _Engine):
    """A lazy, transparent proxy of the object its factory returns.

    The proxy calls `factory` once, on first use, caches the result (the *target*)
    and from then on behaves like it: attributes, operators, `len`, indexing,
    iteration, calls, comparisons, hashing, `str`, `format`, `isinstance(proxy,
    type(target))`. `type(proxy)` stays `Proxy` and `repr(proxy)` never resolves.
    Pickling a proxy sends only its factory (and cached defaults), never the target.

    ```python
    from proxystore.factory import SimpleFactory
    from proxystore.proxy import Proxy

    p = Proxy(SimpleFactory([1, 2, 3]))
    assert isinstance(p, list) and p == [1, 2, 3] and len(p) == 3
    ```

    Names defined on the proxy class (the `__proxy_*__` attributes, `__class__`,
    pickling hooks, ...) refer to the proxy itself; every other attribute is read,
    set and deleted on the target.

    Args:
        factory: Zero-argument callable returning the target.
        cache_defaults: With `target`, also cache `target.__class__` and
            `hash(target)` so that `isinstance` and `hash` keep working without
            resolving after the proxy is pickled.
        target: An already known target: the proxy is born resolved.

    `Proxy` is covariant in the target type: a `Proxy[bool]` is a `Proxy[int]`.

    Raises:
        TypeError: `factory` is not callable.
        ProxyResolveError: (on use) the factory raised while resolving.
    """

    __slots__ = ()


_set_public_proxy(Proxy)

ProxyOr = TypeAliasType("ProxyOr", Proxy[T] | T, type_params=(T,))
"""A value that is either a `Proxy[T]` or a plain `T`."""

# Public names report this module (reprs, tracebacks, pickles stay valid: the
# names are importable from here).
for _public in (
    ProxyResolveError,
    ProxyLocker,
    extract,
    get_factory,
    is_resolved,
    resolve,
):
    _public.__module__ = __name__
del _public
