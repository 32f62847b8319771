"""Factories: zero-argument callables that produce a proxy's target."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

__all__ = ["Factory", "FactoryProtocol", "LambdaFactory", "SimpleFactory"]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class FactoryProtocol(Protocol[T_co]):
    """What a `Proxy` needs from a factory: a call without arguments.

    Any zero-argument callable satisfies it (functions, lambdas, bound methods,
    `functools.partial`, [`Factory`][proxystore.factory.Factory] subclasses).
    """

    def __call__(self) -> T_co:
        """Return the target object."""
        ...


class Factory(Generic[T]):
    """Base class of factories whose work lives in `resolve()`.

    Calling the factory calls `resolve()`. Subclasses define both `__init__` and
    `resolve`.

    Raises:
        NotImplementedError: From `__init__` and `resolve` of this base class.
    """

    def __init__(self) -> None:
        raise NotImplementedError(
            f"{type(self).__name__} must define __init__ (Factory is abstract)."
        )

    def __call__(self) -> T:
        return self.resolve()

    def resolve(self) -> T:
        """Produce the target object.

        Raises:
            NotImplementedError: Subclasses must override this.
        """
        raise NotImplementedError(
            f"{type(self).__name__} must define resolve() (Factory is abstract)."
        )


class SimpleFactory(Factory[T]):
    """Factory that returns the object it was given (pickled along with it).

    Args:
        obj: The object to return from `resolve()`.
    """

    def __init__(self, obj: T) -> None:
        self._obj = obj

    def resolve(self) -> T:
        """Return the stored object."""
        return self._obj


class LambdaFactory(Factory[T]):
    """Factory that calls `target(*args, **kwargs)` on every resolve.

    Args:
        target: The callable producing the object.
        args: Positional arguments for `target`.
        kwargs: Keyword arguments for `target`.
    """

    def __init__(self, target: Callable[..., T], *args: Any, **kwargs: Any) -> None:
        self._target = target
        self._args = args
        self._kwargs = kwargs

    def resolve(self) -> T:
        """Return `target(*args, **kwargs)` (computed anew on every call)."""
        return self._target(*self._args, **self._kwargs)
