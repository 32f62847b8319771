"""`Proxy`: a lazily resolved, transparent stand-in for another object.

A proxy is two layers:

- a *forwarding engine* that stores the slots and forwards every operator,
  attribute and `__class__` to the target: the compiled `_cproxy.ProxyBase` when
  it is built, else the pure-Python `_pure.PurePythonProxyBase` (same behaviour,
  slower);
- `_ProxyAPI`, written once in Python on top of either engine: construction,
  resolution (`__proxy_wrapped__`), `repr`, pickling, copying and the operators
  that have no type slot (`format`, `round`, `math.trunc`, `with`, numpy, ...).
"""

from __future__ import annotations

import builtins
import copy
import math
import operator
import os
from _thread import RLock as _RLock
from _thread import _count as _other_threads
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, SupportsIndex, TypeAlias, TypeVar

from proxystore.proxy._exceptions import ProxyResolveError

if TYPE_CHECKING:
    from proxystore.proxy import Proxy
from proxystore.proxy._pure import (
    FORWARD_ALWAYS,
    MRO_DICTS,
    PurePythonProxyBase,
    mro_dicts,
    on_type,
    slot_or,
    target_of,
)
from proxystore.proxy._pure import target_or as _py_target_or

__all__ = [
    "DefaultClassType",
    "DefaultHashType",
    "FactoryType",
    "PurePythonProxy",
    "compiled",
]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

FactoryType: TypeAlias = Callable[[], T]
"""Anything that, called without arguments, returns the target."""
DefaultClassType: TypeAlias = type | None
"""The class a proxy reports before it is resolved, if cached."""
DefaultHashType: TypeAlias = Exception | int | None
"""The hash (or the error hashing raised) a proxy reports before it is resolved."""

_get = object.__getattribute__
_set = object.__setattr__
_Reduced: TypeAlias = tuple[Callable[..., Any], tuple[Any, ...]]

_target_or = _py_target_or
_use_engine_getattro: Callable[[type], None] | None = None
if TYPE_CHECKING:
    _Engine = PurePythonProxyBase
else:
    try:
        from proxystore.proxy._cproxy import ProxyBase as _Engine
        from proxystore.proxy._cproxy import target_or as _target_or
        from proxystore.proxy._cproxy import use_engine_getattro as _use_engine_getattro
    except ImportError:  # pragma: no cover - built without a compiler
        _Engine = PurePythonProxyBase
    if os.environ.get("PROXYSTORE_PROXY_PURE_PYTHON", "") not in ("", "0"):
        _Engine = PurePythonProxyBase
        _use_engine_getattro = None

#: Marks "no target cached" (a target may legitimately be None).
_MISSING: Any = object()


def compiled() -> bool:
    """Whether `Proxy` uses the compiled forwarding engine."""
    return _Engine is not PurePythonProxyBase


#: Builtin classes by name and back: a cached default class that is a builtin
#: (``int``, ``bytes``, ``dict``...) travels as its name, because pickling a
#: class costs an import and attribute lookups on both sides.
_BUILTIN_CLASSES: dict[str, type] = {
    name: value for name, value in vars(builtins).items() if isinstance(value, type)
}
_BUILTIN_NAMES: dict[type, str] = {cls: name for name, cls in _BUILTIN_CLASSES.items()}


# The public `Proxy` class: defined in `proxystore.proxy` (so that its name, in
# reprs, tracebacks and type checkers, is `proxystore.proxy.Proxy`), which sets it
# here with `_set_public_proxy` right after defining it.
_PublicProxy: type[Any] = object


def _set_public_proxy(cls: type[Any]) -> None:
    global _PublicProxy
    _PublicProxy = cls


def _proxy_trampoline(
    factory: FactoryType[T],
    default_class: DefaultClassType | str,
    default_hash: DefaultHashType,
    cls: type[Proxy[T]] | None = None,
) -> Proxy[T]:
    """Rebuild an (unresolved) proxy from its pickled factory and cached defaults."""
    if type(default_class) is str:
        try:
            default_class = _BUILTIN_CLASSES[default_class]
        except KeyError:
            raise TypeError(f"Unknown builtin class {default_class!r}.") from None
    proxy: Proxy[T] = (_PublicProxy if cls is None else cls)(factory)
    _set(proxy, "__proxy_default_class__", default_class)
    _set(proxy, "__proxy_default_hash__", default_hash)
    return proxy


# Pickles name the public module: shorter, and stable if `_proxy` is renamed.
_proxy_trampoline.__module__ = "proxystore.proxy"


def _unwrap(obj: Any) -> Any:
    return target_of(obj) if issubclass(type(obj), _ProxyAPI) else obj


# Locks of the proxies being resolved now, by id (present only during resolution).
# RLock: a factory that uses its own proxy recurses (RecursionError) like without.
_RESOLVING: dict[int, _RLock] = {}
# A lock held by a thread of the parent must not block the forked child.
os.register_at_fork(after_in_child=_RESOLVING.clear)


def _no_factory(e: AttributeError) -> ProxyResolveError:
    return ProxyResolveError(
        "Cannot resolve the proxy: it has no factory (__init__ never ran).", e
    )


def _factory_failed(factory: object, e: Exception) -> ProxyResolveError:
    return ProxyResolveError(
        f"Cannot resolve the proxy: its factory {factory!r} raised "
        f"{type(e).__name__}: {e}",
        e,
    )


def _call_factory(proxy: _ProxyAPI[T]) -> T:
    try:
        factory: FactoryType[T] = _get(proxy, "__proxy_factory__")
    except AttributeError as e:
        raise _no_factory(e) from e
    try:
        return factory()
    except Exception as e:
        raise _factory_failed(factory, e) from e


def _own_then_getattr(self: Any, name: str) -> Any:
    """`__getattribute__` of subclasses that define their own `__getattr__`.

    As in the reference: the proxy's own attributes (class attributes, properties,
    its instance dict) are found here; any other name raises `AttributeError`,
    which makes Python call the subclass's `__getattr__`.
    """
    if name in FORWARD_ALWAYS:
        return getattr(target_of(self), name)
    return _get(self, name)


def _route_attributes(cls: type) -> None:
    """Choose how attributes of the proxy class `cls` are looked up.

    Classes that keep the base `__getattr__` use the engine's lookup (the compiled
    one keeps its fast slot); classes with their own `__getattr__` get it called
    for every name the proxy itself does not have.
    """
    owner = next(k for k in cls.__mro__ if "__getattr__" in vars(k))
    if owner is _ProxyAPI:
        if _use_engine_getattro is not None and issubclass(cls, _Engine):
            _use_engine_getattro(cls)
        return
    custom = next(k for k in cls.__mro__ if "__getattribute__" in vars(k))
    if custom is _Engine or custom is PurePythonProxyBase:
        type.__setattr__(cls, "__getattribute__", _own_then_getattr)


class _ProxyAPI(Generic[T_co]):
    """The Python half of every proxy class (see the module docstring)."""

    __slots__ = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Attribute routing asks "is this name defined on the proxy's class?" on
        # every access of the pure-Python engine: keep the MRO's namespaces ready.
        setattr(cls, MRO_DICTS, mro_dicts(cls))
        _route_attributes(cls)

    if not TYPE_CHECKING:
        # Hidden from type checkers: a `__getattr__` would type every unknown
        # attribute of a `Proxy[T]` as Any.
        def __getattr__(self, name: str) -> Any:
            # Called by subclasses (`super().__getattr__(name)`) and found by
            # `hasattr(proxy, "__getattr__")`, as in the reference; plain proxies
            # forward in their attribute lookup and never get here.
            if on_type(type(self), name):
                raise AttributeError(
                    f"{type(self).__name__!r} object has no attribute {name!r}"
                )
            return getattr(target_of(self), name)

    def __init__(
        self,
        factory: FactoryType[T_co],
        *,
        cache_defaults: bool = False,
        target: T_co | None = None,
    ) -> None:
        if not callable(factory):
            raise TypeError("Factory must be callable.")
        _set(self, "__proxy_factory__", factory)
        default_class: DefaultClassType = None
        default_hash: DefaultHashType = None
        if target is not None:
            _set(self, "__proxy_target__", target)
            if cache_defaults:
                default_class = target.__class__
                try:
                    default_hash = hash(target)
                except TypeError as e:
                    # Drop the traceback: its frames reference this proxy, a
                    # cycle that would keep the proxy alive until a GC pass.
                    default_hash = e.with_traceback(None)
        _set(self, "__proxy_default_class__", default_class)
        _set(self, "__proxy_default_hash__", default_hash)

    # ------------------------------------------------------------- resolution
    @property
    def __proxy_resolved__(self) -> bool:
        """Whether the target is cached (reading this never resolves)."""
        return _target_or(self, _MISSING) is not _MISSING

    @property
    def __proxy_wrapped__(self) -> T_co:
        """The target: the cached one, or the factory's result (then cached).

        Threads that use an unresolved proxy at the same time call the factory
        once: one resolves, the others wait for its result.

        Raises:
            ProxyResolveError: The factory raised (the error is the `cause`) or
                the proxy has no factory.
        """
        target: T_co = _target_or(self, _MISSING)
        if target is not _MISSING:
            return target
        if not _other_threads():
            # No other thread exists, so none can race: skip the lock (~0.5 us).
            # `_call_factory` inlined: a worker resolving with cold caches pays
            # for every call.
            try:
                factory: FactoryType[T_co] = _get(self, "__proxy_factory__")
            except AttributeError as e:
                raise _no_factory(e) from e
            try:
                target = factory()
            except Exception as e:
                raise _factory_failed(factory, e) from e
            _set(self, "__proxy_target__", target)
            return target
        key = id(self)
        lock = _RESOLVING.setdefault(key, _RLock())
        with lock:
            target = _target_or(self, _MISSING)
            if target is _MISSING:
                try:
                    target = _call_factory(self)
                    _set(self, "__proxy_target__", target)
                finally:
                    # Waiters already took `lock` from the dict; later threads
                    # find the target (or, after a failure, start afresh).
                    if _RESOLVING.get(key) is lock:
                        del _RESOLVING[key]
        return target

    @__proxy_wrapped__.setter
    def __proxy_wrapped__(self, target: Any) -> None:
        # `Any`, not `T_co`: a covariant type cannot be written (see `Proxy`).
        _set(self, "__proxy_target__", target)

    @__proxy_wrapped__.deleter
    def __proxy_wrapped__(self) -> None:
        object.__delattr__(self, "__proxy_target__")

    # ------------------------------------------------------------- attributes
    def __setattr__(self, name: str, value: Any) -> None:
        if on_type(type(self), name):
            _set(self, name, value)
        else:
            setattr(target_of(self), name, value)

    def __delattr__(self, name: str) -> None:
        if on_type(type(self), name):
            object.__delattr__(self, name)
        else:
            delattr(target_of(self), name)

    def __repr__(self) -> str:
        # Never resolves (nor fails): repr is what debuggers and loggers call.
        factory = slot_or(self, "__proxy_factory__", None)
        name = type(self).__name__
        target = _target_or(self, _MISSING)
        if target is _MISSING:
            return f"<{name} at 0x{id(self):x} with factory {factory!r}>"
        return (
            f"<{name} at 0x{id(self):x} wrapping {target!r} at 0x{id(target):x} "
            f"with factory {factory!r}>"
        )

    # ------------------------------------------------------------- pickling, copying
    def __reduce__(self) -> _Reduced:
        # Only the factory and the cached defaults travel, never the target.
        default_class = _get(self, "__proxy_default_class__")
        if type(default_class) is type:  # plain classes only: hashing is safe
            default_class = _BUILTIN_NAMES.get(default_class, default_class)
        args: tuple[Any, ...] = (
            _get(self, "__proxy_factory__"),
            default_class,
            _get(self, "__proxy_default_hash__"),
        )
        if type(self) is not _PublicProxy:
            args = (*args, type(self))
        return _proxy_trampoline, args

    def __reduce_ex__(self, protocol: SupportsIndex) -> _Reduced:
        # Through __reduce__ so that subclasses overriding only it are honoured.
        return self.__reduce__()

    def __copy__(self) -> Any:
        if self.__proxy_resolved__:
            return copy.copy(self.__proxy_wrapped__)
        function, args = self.__reduce__()
        return function(*args)

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        if self.__proxy_resolved__:
            return copy.deepcopy(self.__proxy_wrapped__, memo)
        function, args = self.__reduce__()
        return function(*copy.deepcopy(args, memo))

    # ------------------------------------------------------------- no type slot
    def __format__(self, format_spec: str) -> str:
        return format(target_of(self), format_spec)

    def __bytes__(self) -> bytes:
        return bytes(target_of(self))

    def __dir__(self) -> list[str]:
        return dir(target_of(self))

    def __fspath__(self) -> Any:
        target = target_of(self)
        if isinstance(target, str | bytes):
            return target
        fspath = getattr(target, "__fspath__", None)
        return target if fspath is None else fspath()

    def __reversed__(self) -> Any:
        return reversed(target_of(self))

    def __round__(self, ndigits: SupportsIndex | None = None) -> Any:
        target = target_of(self)
        return round(target) if ndigits is None else round(target, ndigits)

    def __complex__(self) -> complex:
        return complex(target_of(self))

    def __trunc__(self) -> Any:
        return math.trunc(target_of(self))

    def __floor__(self) -> Any:
        return math.floor(target_of(self))

    def __ceil__(self) -> Any:
        return math.ceil(target_of(self))

    def __length_hint__(self) -> int:
        return operator.length_hint(target_of(self))

    def __array_ufunc__(
        self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any
    ) -> Any:
        # numpy treats an object it does not know as an opaque scalar, so
        # `array + Proxy(5)` would give an object array. Defining this hook makes
        # numpy hand the operation over; rerun it on the targets instead.
        inputs = tuple(_unwrap(x) for x in inputs)
        if method == "__call__" and not kwargs and ufunc.__name__ == "power":
            # `array ** proxy` lands here, past the shortcut numpy's `**` takes
            # for scalar exponents (square, sqrt, ...), which may pick another
            # result dtype than np.power: redo the operator to match the target.
            return operator.pow(*inputs)
        if "out" in kwargs:
            kwargs["out"] = tuple(_unwrap(x) for x in kwargs["out"])
        return getattr(ufunc, method)(*inputs, **kwargs)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> Any:
        # Without this, numpy sees every proxy as a sequence (it has __len__ and
        # __getitem__), so np.asarray(Proxy(5)) would fail or give an object array.
        # Only numpy calls this, so numpy is already imported.
        import numpy

        target = target_of(self)
        if copy is None:
            return numpy.asarray(target, dtype=dtype)
        return numpy.array(target, dtype=dtype, copy=copy)

    def __enter__(self) -> Any:
        return target_of(self).__enter__()

    def __exit__(self, *args: object) -> Any:
        return target_of(self).__exit__(*args)

    def __aenter__(self) -> Any:
        return target_of(self).__aenter__()

    def __aexit__(self, *args: object) -> Any:
        return target_of(self).__aexit__(*args)


class PurePythonProxy(_ProxyAPI[T], PurePythonProxyBase):
    """`Proxy` on the pure-Python engine (tests and environments without a compiler).

    Same interface and behaviour as [`Proxy`][proxystore.proxy.Proxy].
    """

    __slots__ = ()
