"""Ownership and borrowing for store proxies (Rust-like references).

An `OwnedProxy` owns the object stored under its key: when the owner is
garbage collected (or the interpreter exits while it is alive) the key is evicted.
Other code gets access by borrowing:

* `borrow` hands out any number of read-only `RefProxy` borrows;
* `mut_borrow` hands out a single `RefMutProxy` borrow, and only while
  no other borrow exists; `update` writes its changes back to the store.

Borrows end when the borrow proxy is dropped or marked out of scope (see
`proxystore.store.scopes`). Pickling a reference proxy *moves* it: the local
instance becomes invalid and the unpickled copy is the live one. Using an invalid
reference raises [`ReferenceInvalidError`][proxystore.store.ref.ReferenceInvalidError].

Error tree::

    BaseRefProxyError
    ├── MutableBorrowError       (borrow rules broken)
    ├── ReferenceInvalidError    (the reference was moved, dropped or went out of scope)
    └── ReferenceNotOwnedError   (an owner was required but not given)
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import sys
import threading
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar, cast

from proxystore.proxy import Proxy, get_factory, is_resolved
from proxystore.store._registry import _stores
from proxystore.store.exceptions import (
    ProxyResolveMissingKeyError,
    ProxyStoreFactoryError,
)
from proxystore.store.factory import StoreFactory

if TYPE_CHECKING:
    from proxystore.store.types import SerializerT

__all__ = [
    "BaseRefProxy",
    "BaseRefProxyError",
    "MutableBorrowError",
    "OwnedProxy",
    "RefMutProxy",
    "RefProxy",
    "ReferenceInvalidError",
    "ReferenceNotOwnedError",
    "borrow",
    "clone",
    "into_owned",
    "mut_borrow",
    "update",
]

T = TypeVar("T")


class BaseRefProxyError(Exception):
    """Base class of the ownership and borrowing errors."""


class MutableBorrowError(BaseRefProxyError):
    """Raised when a borrow would break the rules: one mutable XOR many shared."""


class ReferenceNotOwnedError(BaseRefProxyError):
    """Raised when an operation needs an owned (or mutably borrowed) proxy."""


class ReferenceInvalidError(BaseRefProxyError):
    """Raised when a reference proxy is used after it was moved, dropped or released."""


# Borrow counters are read-modify-written from any thread (e.g. done-callbacks of
# executors); one lock for all of them is cheap next to a store round trip.
_COUNT_LOCK = threading.Lock()

# Owners alive in this process, so keys whose owner outlives the interpreter are still
# evicted at exit. Keyed by id(owner); the value holds only the factory, not the owner.
_LIVE_OWNERS: dict[int, StoreFactory[Any, Any]] = {}
_LIVE_LOCK = threading.Lock()


def _getslot(proxy: object, name: str) -> Any:
    return object.__getattribute__(proxy, name)


def _setslot(proxy: object, name: str, value: Any) -> None:
    object.__setattr__(proxy, name, value)


def _find_descriptor(cls: type, name: str) -> Any:
    for klass in cls.__mro__:
        if name in klass.__dict__:
            return klass.__dict__[name]
    raise AttributeError(f"{cls.__name__} has no descriptor {name!r}")


# The base class's target descriptor: subclasses wrap it to add the validity check.
_WRAPPED = _find_descriptor(Proxy, "__proxy_wrapped__")


class BaseRefProxy(Proxy[T]):
    """A store proxy that can be invalidated (see `ReferenceInvalidError`).

    Copying is refused (use `clone` to duplicate the stored object). Pickling
    moves the reference: the local instance becomes invalid.
    """

    __slots__ = ("__proxy_valid__",)

    def __init__(
        self,
        factory: StoreFactory[Any, T],
        *,
        cache_defaults: bool = False,
        target: T | None = None,
    ) -> None:
        _setslot(self, "__proxy_valid__", True)
        super().__init__(factory, cache_defaults=cache_defaults, target=target)

    @property
    def __proxy_wrapped__(self) -> T:
        if not _getslot(self, "__proxy_valid__"):
            _raise_invalid(self)
        return _WRAPPED.__get__(self, type(self))  # type: ignore[no-any-return]

    @__proxy_wrapped__.setter
    def __proxy_wrapped__(self, value: T) -> None:
        if not _getslot(self, "__proxy_valid__"):
            _raise_invalid(self)
        _WRAPPED.__set__(self, value)

    @__proxy_wrapped__.deleter
    def __proxy_wrapped__(self) -> None:
        _WRAPPED.__delete__(self)

    def __copy__(self) -> NoReturn:
        raise NotImplementedError(
            f"{type(self).__name__} cannot be copied; use "
            "proxystore.store.ref.clone() to duplicate the stored object."
        )

    def __deepcopy__(self, memo: dict[int, Any]) -> NoReturn:
        self.__copy__()

    def __reduce__(self) -> tuple[Any, ...]:
        _check_valid(self)
        factory = get_factory(self)
        defaults = _defaults(self)
        # Moving: the pickled copy becomes the live reference, this one dies.
        self._invalidate_on_move()
        return _rebuild_ref, (type(self).__name__, factory, *defaults)

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        return self.__reduce__()

    def _invalidate_on_move(self) -> None:
        _invalidate(self)


def _raise_invalid(proxy: BaseRefProxy[Any]) -> NoReturn:
    raise ReferenceInvalidError(
        f"This {type(proxy).__name__} is no longer valid: it was moved (pickled), "
        "dropped, or went out of scope."
    )


def _check_valid(proxy: BaseRefProxy[Any]) -> None:
    if not _getslot(proxy, "__proxy_valid__"):
        _raise_invalid(proxy)


def _invalidate(proxy: BaseRefProxy[Any]) -> None:
    _setslot(proxy, "__proxy_valid__", False)
    # The resolved fast path reads the cached target directly; dropping it routes
    # every later use through the property getter, which raises. The cached class
    # and hash go too, so `isinstance` and `hash` raise as well.
    if is_resolved(proxy):
        _WRAPPED.__delete__(proxy)
    _setslot(proxy, "__proxy_default_class__", None)
    _setslot(proxy, "__proxy_default_hash__", None)


def _defaults(proxy: Proxy[Any]) -> tuple[Any, Any]:
    try:
        default_class = _getslot(proxy, "__proxy_default_class__")
    except AttributeError:
        default_class = None
    try:
        default_hash = _getslot(proxy, "__proxy_default_hash__")
    except AttributeError:
        default_hash = None
    if isinstance(default_hash, BaseException):
        # A cached "unhashable" error keeps its traceback, whose frames reference
        # the proxy: a cycle that would delay the owner's eviction until a GC pass.
        default_hash.__traceback__ = None
    return default_class, default_hash


def _target_or_none(proxy: Proxy[Any], populate: bool) -> tuple[Any, bool]:
    """Return ``(target, True)`` when ``proxy`` is resolved and populating is wanted."""
    if populate and is_resolved(proxy):
        return _WRAPPED.__get__(proxy, type(proxy)), True
    return None, False


def _apply_defaults(proxy: Proxy[Any], defaults: tuple[Any, Any]) -> None:
    default_class, default_hash = defaults
    if default_class is not None:
        _setslot(proxy, "__proxy_default_class__", default_class)
    if default_hash is not None:
        _setslot(proxy, "__proxy_default_hash__", default_hash)


def _rebuild_ref(
    kind: str, factory: StoreFactory[Any, Any], default_class: Any, default_hash: Any
) -> BaseRefProxy[Any]:
    cls = _KINDS[kind]
    proxy: BaseRefProxy[Any] = cls(factory)
    _apply_defaults(proxy, (default_class, default_hash))
    return proxy


class OwnedProxy(BaseRefProxy[T]):
    """A proxy that owns its stored object: dropping the owner evicts the key.

    Args:
        factory: The store factory of the owned key (must not evict on resolve).
        cache_defaults: Record the target's class and hash (needs ``target``).
        target: Pre-populate the proxy with its target.
    """

    __slots__ = ("__proxy_ref_count__", "__proxy_ref_mut_count__")

    def __init__(
        self,
        factory: StoreFactory[Any, T],
        *,
        cache_defaults: bool = False,
        target: T | None = None,
    ) -> None:
        _setslot(self, "__proxy_ref_count__", 0)
        _setslot(self, "__proxy_ref_mut_count__", 0)
        super().__init__(factory, cache_defaults=cache_defaults, target=target)
        with _LIVE_LOCK:
            _LIVE_OWNERS[id(self)] = factory

    def _invalidate_on_move(self) -> None:
        with _COUNT_LOCK:
            if _getslot(self, "__proxy_ref_count__") or _getslot(
                self, "__proxy_ref_mut_count__"
            ):
                raise MutableBorrowError(
                    "Cannot move (pickle) an OwnedProxy while it is borrowed; drop "
                    "or mark its borrows out of scope first."
                )
        _forget_owner(self)
        _invalidate(self)

    def __del__(self) -> None:
        try:
            valid = _getslot(self, "__proxy_valid__")
        except AttributeError:  # __init__ never ran to completion
            return
        if not valid:
            return
        if _getslot(self, "__proxy_ref_count__") or _getslot(
            self, "__proxy_ref_mut_count__"
        ):
            raise RuntimeError(
                "Cannot drop an OwnedProxy while borrows of it remain; the stored "
                "object was not evicted."
            )
        _forget_owner(self)
        _invalidate(self)
        _evict(_store_factory(self))


class RefProxy(BaseRefProxy[T]):
    """A shared, read-only borrow of an `OwnedProxy` (see `borrow`).

    Args:
        factory: The owner's store factory.
        cache_defaults: Record the target's class and hash (needs ``target``).
        owner: The owner whose shared-borrow count this borrow holds.
        target: Pre-populate the proxy with its target.
    """

    __slots__ = ("__proxy_owner__",)
    _counter = "__proxy_ref_count__"

    def __init__(
        self,
        factory: StoreFactory[Any, T],
        *,
        cache_defaults: bool = False,
        owner: OwnedProxy[T] | None = None,
        target: T | None = None,
    ) -> None:
        _setslot(self, "__proxy_owner__", owner)
        super().__init__(factory, cache_defaults=cache_defaults, target=target)

    def _invalidate_on_move(self) -> None:
        # The borrow travels with the pickle: the owner stays borrowed until this
        # local handle is dropped or marked out of scope.
        _invalidate(self)

    def _release(self) -> bool:
        """Return the borrow to the owner; ``False`` when there was none to return."""
        owner = _getslot(self, "__proxy_owner__")
        if owner is None:
            return False
        with _COUNT_LOCK:
            count = _getslot(owner, self._counter)
            _setslot(owner, self._counter, max(0, count - 1))
        _setslot(self, "__proxy_owner__", None)
        return True

    def __del__(self) -> None:
        try:
            self._release()
        except AttributeError:  # __init__ never ran to completion
            return
        _setslot(self, "__proxy_valid__", False)


class RefMutProxy(RefProxy[T]):
    """The single mutable borrow of an `OwnedProxy` (see `mut_borrow`).

    Changes made through it are written back with `update`.
    """

    # Set (to True) only once the borrow is pickled: unset means "not moved".
    __slots__ = ("__proxy_moved__",)
    _counter = "__proxy_ref_mut_count__"

    def _invalidate_on_move(self) -> None:
        # Another process may now change the object and update() the store: when
        # this borrow ends, the owner must drop its (possibly stale) cached copy.
        _setslot(self, "__proxy_moved__", True)
        super()._invalidate_on_move()

    def _release(self) -> bool:
        owner = _getslot(self, "__proxy_owner__")
        released = super()._release()
        try:
            _getslot(self, "__proxy_moved__")
        except AttributeError:
            return released  # never left this process: the owner shares the target
        if released:
            _refetch_on_next_use(owner)
        return released


def _refetch_on_next_use(owner: OwnedProxy[Any]) -> None:
    """Drop the owner's cached target (and the store's) so the next use re-reads it."""
    if not _getslot(owner, "__proxy_valid__"):
        return
    if is_resolved(owner):
        _WRAPPED.__delete__(owner)
    factory = _store_factory(owner)
    store = factory.get_store()
    store.cache.evict(factory.key)


RefT = TypeVar("RefT", bound=RefProxy[Any])

_KINDS: dict[str, type[BaseRefProxy[Any]]] = {
    cls.__name__: cls for cls in (OwnedProxy, RefProxy, RefMutProxy)
}


def _store_factory(proxy: Proxy[T]) -> StoreFactory[Any, T]:
    # Reference proxies are only ever built around store factories.
    return get_factory(proxy)  # type: ignore[return-value]


def _forget_owner(owner: OwnedProxy[Any]) -> None:
    with _LIVE_LOCK:
        _LIVE_OWNERS.pop(id(owner), None)


def _evict(factory: StoreFactory[Any, Any]) -> None:
    # At interpreter shutdown the registry and connectors may already be torn down;
    # the atexit hook below evicts live owners' keys before that happens.
    if sys.is_finalizing():
        return
    factory.get_store().evict(factory.key)


@atexit.register
def _evict_live_owners() -> None:
    with _LIVE_LOCK:
        factories = list(_LIVE_OWNERS.values())
        _LIVE_OWNERS.clear()
    for factory in factories:
        # Only through stores still registered: at exit, rebuilding a closed store
        # from its config (reconnecting, recreating directories) would do harm.
        store = _stores.get(factory.store_config.name)
        if store is None:
            continue
        # Best effort: one unreachable backend must not stop the other evictions.
        with contextlib.suppress(Exception):
            store.evict(factory.key)


def _require_owner(proxy: object, action: str) -> OwnedProxy[Any]:
    # type() not isinstance(): isinstance() on a plain Proxy would resolve it.
    if not issubclass(type(proxy), OwnedProxy):
        raise ReferenceNotOwnedError(
            f"Cannot {action} a {type(proxy).__name__}: only an OwnedProxy can be "
            f"{action}ed (see proxystore.store.ref.into_owned)."
        )
    owner = cast("OwnedProxy[Any]", proxy)
    _check_valid(owner)
    return owner


def _make_borrow(
    cls: type[RefT], owner: OwnedProxy[Any], populate_target: bool
) -> RefT:
    target, populated = _target_or_none(owner, populate_target)
    if populated:
        ref = cls(_store_factory(owner), owner=owner, target=target)
    else:
        ref = cls(_store_factory(owner), owner=owner)
    _apply_defaults(ref, _defaults(owner))
    return ref


def borrow(proxy: OwnedProxy[T], *, populate_target: bool = True) -> RefProxy[T]:
    """Borrow ``proxy`` immutably; any number of shared borrows may coexist.

    Args:
        proxy: The owner to borrow from.
        populate_target: Give the borrow the owner's resolved target (if any).

    Raises:
        ReferenceNotOwnedError: if ``proxy`` is not an `OwnedProxy`.
        ReferenceInvalidError: if the owner was moved or dropped.
        MutableBorrowError: if the owner is currently mutably borrowed.
    """
    owner = _require_owner(proxy, "borrow")
    with _COUNT_LOCK:
        if _getslot(owner, "__proxy_ref_mut_count__"):
            raise MutableBorrowError(
                "Cannot borrow an OwnedProxy immutably while it is mutably borrowed."
            )
        _setslot(
            owner, "__proxy_ref_count__", _getslot(owner, "__proxy_ref_count__") + 1
        )
    return _make_borrow(RefProxy, owner, populate_target)


def mut_borrow(proxy: OwnedProxy[T], *, populate_target: bool = True) -> RefMutProxy[T]:
    """Borrow ``proxy`` mutably: the only borrow allowed while it lives.

    Args:
        proxy: The owner to borrow from.
        populate_target: Give the borrow the owner's resolved target (if any).

    Raises:
        ReferenceNotOwnedError: if ``proxy`` is not an `OwnedProxy`.
        ReferenceInvalidError: if the owner was moved or dropped.
        MutableBorrowError: if the owner already has a shared or mutable borrow.
    """
    owner = _require_owner(proxy, "mutably borrow")
    with _COUNT_LOCK:
        shared = _getslot(owner, "__proxy_ref_count__")
        mutable = _getslot(owner, "__proxy_ref_mut_count__")
        if shared or mutable:
            raise MutableBorrowError(
                "Cannot mutably borrow an OwnedProxy that already has "
                f"{shared} shared and {mutable} mutable borrow(s)."
            )
        _setslot(owner, "__proxy_ref_mut_count__", 1)
    return _make_borrow(RefMutProxy, owner, populate_target)


def clone(proxy: OwnedProxy[T]) -> OwnedProxy[T]:
    """Copy the stored object of ``proxy`` to a new key owned by a new proxy.

    The bytes are copied connector-side (no deserialization); a resolved target is
    deep-copied into the clone.

    Raises:
        ReferenceNotOwnedError: if ``proxy`` is not an `OwnedProxy`.
        ReferenceInvalidError: if the owner was moved or dropped.
        ProxyResolveMissingKeyError: if the owner's key is no longer in the store.
    """
    owner = _require_owner(proxy, "clone")
    factory = _store_factory(owner)
    store = factory.get_store()
    data = store.connector.get(factory.key)
    if data is None:
        raise ProxyResolveMissingKeyError(factory.key, type(store), store.name)
    new_factory: StoreFactory[Any, T] = StoreFactory(
        store.connector.put(data),
        store_config=factory.store_config,
        evict=False,
        deserializer=factory.deserializer,
    )
    target, populated = _target_or_none(owner, True)
    if populated:
        cloned = OwnedProxy(new_factory, target=copy.deepcopy(target))
    else:
        cloned = OwnedProxy(new_factory)
    _apply_defaults(cloned, _defaults(owner))
    return cloned


def into_owned(proxy: Proxy[T], *, populate_target: bool = True) -> OwnedProxy[T]:
    """Turn a plain store proxy into the owner of its key.

    The factory stops evicting on resolve (the owner evicts when dropped instead).

    Args:
        proxy: A plain [`Proxy`][proxystore.proxy.Proxy] made by a store.
        populate_target: Give the owner the proxy's resolved target (if any).

    Raises:
        ValueError: if ``proxy`` is already a reference proxy (or not a proxy).
        ProxyStoreFactoryError: if ``proxy`` was not made by a store.
    """
    if type(proxy) is not Proxy:
        raise ValueError(
            "into_owned() takes a plain Proxy; got "
            f"{type(proxy).__name__} (reference proxies already have an owner)."
        )
    factory = get_factory(proxy)
    if not isinstance(factory, StoreFactory):
        raise ProxyStoreFactoryError(
            "into_owned() needs a proxy created by a Store; its factory is "
            f"{type(factory).__name__}."
        )
    factory.evict = False
    target, populated = _target_or_none(proxy, populate_target)
    if populated:
        owned = OwnedProxy(factory, target=target)
    else:
        owned = OwnedProxy(factory)
    _apply_defaults(owned, _defaults(proxy))
    return owned


def update(
    proxy: OwnedProxy[T] | RefMutProxy[T], *, serializer: SerializerT | None = None
) -> None:
    """Write the (possibly mutated) target of ``proxy`` back to its key.

    A proxy that was never resolved cannot have been changed: nothing is written.

    Raises:
        ReferenceNotOwnedError: if ``proxy`` is a shared borrow or not a
            reference proxy.
        ReferenceInvalidError: if ``proxy`` was moved, dropped or released.
        MutableBorrowError: if ``proxy`` is an owner that is currently borrowed.
        NotImplementedError: if the store's connector cannot overwrite keys.
    """
    kind = type(proxy)
    if not (issubclass(kind, OwnedProxy) or issubclass(kind, RefMutProxy)):
        raise ReferenceNotOwnedError(
            f"Cannot update through a {kind.__name__}: only an OwnedProxy or a "
            "RefMutProxy may write to the store."
        )
    _check_valid(proxy)
    if issubclass(kind, OwnedProxy):
        with _COUNT_LOCK:
            if _getslot(proxy, "__proxy_ref_count__") or _getslot(
                proxy, "__proxy_ref_mut_count__"
            ):
                raise MutableBorrowError(
                    "Cannot update an OwnedProxy while it is borrowed."
                )
    if not is_resolved(proxy):
        return
    factory = _store_factory(proxy)
    target = _WRAPPED.__get__(proxy, type(proxy))
    factory.get_store()._set(factory.key, target, serializer=serializer)
