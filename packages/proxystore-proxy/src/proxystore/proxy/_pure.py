"""Pure-Python forwarding engine of `Proxy`, twin of the compiled `_cproxy.ProxyBase`.

The engine stores the four proxy slots and forwards every operator to the target.
It is used when the C extension is not built (no compiler at install time) or when
`PROXYSTORE_PROXY_PURE_PYTHON=1` is set, and tests run against both engines, so the
two must behave the same. The rules both follow:

- An attribute found in the MRO of the proxy's type is read from / written to the
  proxy itself, and so is one in the instance dict of a subclass declared without
  `__slots__`; any other name goes to the target. `__doc__`, `__module__`,
  `__annotations__`, `__dict__` and `__weakref__` always go to the target.
- The cached target (`__proxy_target__`) is used when present. Otherwise the proxy
  resolves through `type(proxy).__proxy_wrapped__`, which subclasses may override.
- In-place operators rebind the target through `__proxy_wrapped__` and return the
  proxy.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["PurePythonProxyBase"]

#: Names read from the target even though `type` or `object` define them.
FORWARD_ALWAYS = frozenset(
    {"__doc__", "__module__", "__annotations__", "__dict__", "__weakref__"}
)

#: The engine's own names: slots and the resolving property, always read from
#: the proxy (a subclass may override them, which `_get` honours).
ENGINE_NAMES = frozenset(
    {
        "__proxy_wrapped__",
        "__proxy_target__",
        "__proxy_factory__",
        "__proxy_default_class__",
        "__proxy_default_hash__",
    }
)

_get = object.__getattribute__
_set = object.__setattr__
_MISSING: Any = object()


#: Class attribute caching the namespaces of a proxy class's MRO (see `on_type`).
MRO_DICTS = "_proxy_mro_dicts_"


def mro_dicts(cls: type) -> tuple[Mapping[str, Any], ...]:
    """The namespaces of the classes in the MRO of `cls`, in order.

    Each is a live view (`mappingproxy`), so attributes added to a class later
    are seen; proxy classes store the tuple at creation (`__init_subclass__`).
    """
    return tuple(vars(klass) for klass in cls.__mro__)


def on_type(cls: type, name: str) -> bool:
    """Whether `name` belongs to the proxy itself (it is in the MRO of `cls`)."""
    if name in FORWARD_ALWAYS:
        return False
    dicts = cls.__dict__.get(MRO_DICTS)
    for namespace in mro_dicts(cls) if dicts is None else dicts:
        if name in namespace:
            return True
    return False


def target_of(proxy: object) -> Any:
    """The cached target of `proxy`, resolving it when nothing is cached."""
    try:
        return _get(proxy, "__proxy_target__")
    except AttributeError:
        return _get(proxy, "__proxy_wrapped__")


def slot_or(proxy: object, name: str, default: Any) -> Any:
    """The value of slot `name` of `proxy`, or `default` when it is unset."""
    try:
        return _get(proxy, name)
    except AttributeError:
        return default


def target_or(proxy: object, default: Any) -> Any:
    """The cached target of `proxy`, or `default` when none is cached."""
    return slot_or(proxy, "__proxy_target__", default)


def rebind(proxy: object, value: object) -> None:
    """Replace the target of `proxy` through its `__proxy_wrapped__` setter."""
    _set(proxy, "__proxy_wrapped__", value)


_Binary = Callable[[Any, Any], Any]


def _forward(op: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def method(self: Any) -> Any:
        return op(target_of(self))

    return method


def _binary(op: _Binary) -> tuple[_Binary, _Binary]:
    def method(self: Any, other: Any) -> Any:
        return op(target_of(self), other)

    def reflected(self: Any, other: Any) -> Any:
        return op(other, target_of(self))

    return method, reflected


def _inplace(op: _Binary) -> _Binary:
    def method(self: Any, other: Any) -> Any:
        rebind(self, op(target_of(self), other))
        return self

    return method


def _async_slot(name: str, message: str) -> Callable[[Any], Any]:
    def method(self: Any) -> Any:
        target = target_of(self)
        for klass in type(target).__mro__:
            if name in vars(klass):
                return vars(klass)[name](target)
        raise TypeError(message % type(target).__name__)

    return method


def _index(target: Any) -> int:
    # Same rule as the reference: index() when the target has __index__, else int().
    if on_type(type(target), "__index__"):
        return operator.index(target)
    return int(target)


class PurePythonProxyBase:
    """Forwarding engine written in Python (see the module docstring)."""

    __slots__ = (
        "__proxy_default_class__",
        "__proxy_default_hash__",
        "__proxy_factory__",
        "__proxy_target__",
        "__weakref__",
    )

    @property
    def __class__(self) -> type:
        """The target's class; the cached default class while unresolved."""
        if target_or(self, _MISSING) is _MISSING:
            default: type | None = slot_or(self, "__proxy_default_class__", None)
            if default is not None:
                return default
        return target_of(self).__class__  # type: ignore[no-any-return]

    @__class__.setter
    def __class__(self, value: type) -> None:
        target_of(self).__class__ = value

    def __getattribute__(self, name: str) -> Any:
        if name in ENGINE_NAMES:
            return _get(self, name)
        cls = type(self)
        if on_type(cls, name):
            return _get(self, name)
        if cls.__dictoffset__ and name not in FORWARD_ALWAYS:
            # A subclass without __slots__: attributes set on the proxy itself win.
            try:
                return _get(self, name)
            except AttributeError:
                pass
        return getattr(target_of(self), name)

    def __hash__(self) -> int:
        if target_or(self, _MISSING) is _MISSING:
            default = slot_or(self, "__proxy_default_hash__", None)
            if isinstance(default, BaseException):
                # hash(target) failed when the defaults were cached: fail alike
                # (without the old traceback, which would grow on every raise).
                raise default.with_traceback(None)
            if default is not None:
                return default  # type: ignore[no-any-return]
        return hash(target_of(self))

    def __next__(self) -> Any:
        return next(target_of(self))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return target_of(self)(*args, **kwargs)

    def __getitem__(self, key: Any) -> Any:
        return target_of(self)[key]

    def __setitem__(self, key: Any, value: Any) -> None:
        target_of(self)[key] = value

    def __delitem__(self, key: Any) -> None:
        del target_of(self)[key]

    def __contains__(self, value: Any) -> bool:
        return value in target_of(self)

    def __pow__(self, other: Any, mod: Any = None) -> Any:
        return pow(target_of(self), other, mod)

    def __rpow__(self, other: Any, mod: Any = None) -> Any:
        return pow(other, target_of(self), mod)

    def __ipow__(self, other: Any, mod: Any = None) -> Any:
        target = target_of(self)
        target **= other
        rebind(self, target)
        return self

    __eq__ = _binary(operator.eq)[0]
    __ne__ = _binary(operator.ne)[0]
    __lt__ = _binary(operator.lt)[0]
    __le__ = _binary(operator.le)[0]
    __gt__ = _binary(operator.gt)[0]
    __ge__ = _binary(operator.ge)[0]

    __add__, __radd__ = _binary(operator.add)
    __sub__, __rsub__ = _binary(operator.sub)
    __mul__, __rmul__ = _binary(operator.mul)
    __matmul__, __rmatmul__ = _binary(operator.matmul)
    __truediv__, __rtruediv__ = _binary(operator.truediv)
    __floordiv__, __rfloordiv__ = _binary(operator.floordiv)
    __mod__, __rmod__ = _binary(operator.mod)
    __divmod__, __rdivmod__ = _binary(divmod)
    __lshift__, __rlshift__ = _binary(operator.lshift)
    __rshift__, __rrshift__ = _binary(operator.rshift)
    __and__, __rand__ = _binary(operator.and_)
    __xor__, __rxor__ = _binary(operator.xor)
    __or__, __ror__ = _binary(operator.or_)

    __iadd__ = _inplace(operator.iadd)
    __isub__ = _inplace(operator.isub)
    __imul__ = _inplace(operator.imul)
    __imatmul__ = _inplace(operator.imatmul)
    __itruediv__ = _inplace(operator.itruediv)
    __ifloordiv__ = _inplace(operator.ifloordiv)
    __imod__ = _inplace(operator.imod)
    __ilshift__ = _inplace(operator.ilshift)
    __irshift__ = _inplace(operator.irshift)
    __iand__ = _inplace(operator.iand)
    __ixor__ = _inplace(operator.ixor)
    __ior__ = _inplace(operator.ior)

    __neg__ = _forward(operator.neg)
    __pos__ = _forward(operator.pos)
    __abs__ = _forward(abs)
    __invert__ = _forward(operator.invert)
    __int__ = _forward(int)
    __float__ = _forward(float)
    __index__ = _forward(_index)
    __bool__ = _forward(bool)
    __len__ = _forward(len)
    __iter__ = _forward(iter)
    __str__ = _forward(str)

    __await__ = _async_slot(
        "__await__", "object %.100s can't be used in 'await' expression"
    )
    __aiter__ = _async_slot("__aiter__", "'%.100s' object is not an async iterable")
    __anext__ = _async_slot("__anext__", "'%.100s' object is not an async iterator")
