"""`proxy_property`: a property with a distinct value when read from the class."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

__all__ = ["ProxyProperty", "proxy_property"]

T = TypeVar("T")


class ProxyProperty(Generic[T]):
    """A data descriptor that returns `default` when accessed on the class.

    On an instance it calls the getter like a `property`. Read from the class
    (where a property would return itself) it gives `default`, so a proxy class
    can answer e.g. `Proxy.__module__` with a string while instances forward the
    same name to their target.

    Args:
        fget: Getter called with the instance.
        fset: Optional setter.
        fdel: Optional deleter.
        default: Value returned on class access.
    """

    def __init__(
        self,
        fget: Callable[[Any], T],
        fset: Callable[[Any, T], None] | None = None,
        fdel: Callable[[Any], None] | None = None,
        *,
        default: T | None = None,
    ) -> None:
        self.fget = fget
        self.fset = fset
        self.fdel = fdel
        self.default = default
        self.__doc__ = fget.__doc__

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> T | None: ...

    @overload
    def __get__(self, instance: object, owner: type | None = None) -> T: ...

    def __get__(self, instance: object, owner: type | None = None) -> T | None:
        if instance is None:
            return self.default
        return self.fget(instance)

    def __set__(self, instance: object, value: T) -> None:
        if self.fset is None:
            raise AttributeError("This proxy property has no setter.")
        self.fset(instance, value)

    def __delete__(self, instance: object) -> None:
        if self.fdel is None:
            raise AttributeError("This proxy property has no deleter.")
        self.fdel(instance)

    def setter(self, fset: Callable[[Any, T], None], /) -> ProxyProperty[T]:
        """Return a copy of this property with `fset` as setter."""
        return ProxyProperty(self.fget, fset, self.fdel, default=self.default)

    def deleter(self, fdel: Callable[[Any], None], /) -> ProxyProperty[T]:
        """Return a copy of this property with `fdel` as deleter."""
        return ProxyProperty(self.fget, self.fset, fdel, default=self.default)


@overload
def proxy_property(
    function: Callable[[Any], T], *, default: T | None = ...
) -> ProxyProperty[T]: ...


@overload
def proxy_property(
    function: None = ..., *, default: T | None = ...
) -> Callable[[Callable[[Any], T]], ProxyProperty[T]]: ...


def proxy_property(
    function: Callable[[Any], T] | None = None, *, default: T | None = None
) -> ProxyProperty[T] | Callable[[Callable[[Any], T]], ProxyProperty[T]]:
    """Decorate a getter as a [`ProxyProperty`][.ProxyProperty].

    Usable bare (`@proxy_property`) or with a class-level default
    (`@proxy_property(default="x")`).
    """
    if function is not None:
        return ProxyProperty(function, default=default)

    def decorator(fget: Callable[[Any], T]) -> ProxyProperty[T]:
        return ProxyProperty(fget, default=default)

    return decorator
