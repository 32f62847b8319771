"""Scopes for borrowed references passed to asynchronous work.

A [`RefProxy`][proxystore.store.ref.RefProxy] given to a task must stay borrowed until
the task finishes, then be released so the owner can be mutated or dropped again.
`submit` does that bookkeeping for any ``submit``-style API that returns a
future with ``add_done_callback`` (``concurrent.futures``, Dask, Parsl, Globus
Compute, ...).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeVar, runtime_checkable

from proxystore.store.ref import BaseRefProxy, RefMutProxy, RefProxy

__all__ = ["FutureWithCallback", "mark_refs_out_of_scope", "submit"]


@runtime_checkable
class FutureWithCallback(Protocol):
    """A future that calls back when it completes."""

    def add_done_callback(self, callback: Callable[[Any], Any], /) -> Any:
        """Call ``callback(future)`` once the future is done."""
        ...


FutureT = TypeVar("FutureT", bound=FutureWithCallback)


def mark_refs_out_of_scope(*refs: RefProxy[Any] | RefMutProxy[Any]) -> None:
    """End the borrows ``refs``: give them back to their owners and invalidate them.

    References already out of scope (released earlier) are skipped, so calling this
    twice is harmless.

    Raises:
        RuntimeError: if a still-valid reference has no owner in this process (e.g.
            one unpickled here: its borrow belongs to the sender's process).
    """
    for ref in refs:
        if ref._release():
            object.__setattr__(ref, "__proxy_valid__", False)
            _drop_target(ref)
        elif object.__getattribute__(ref, "__proxy_valid__"):
            raise RuntimeError(
                f"Cannot mark this {type(ref).__name__} out of scope: it has no owner "
                "in this process (only the borrowing process can end the borrow)."
            )


def _drop_target(ref: BaseRefProxy[Any]) -> None:
    from proxystore.store.ref import _invalidate

    _invalidate(ref)


def _collect_refs(values: Iterable[object], custom: Iterable[Any]) -> list[Any]:
    # Exact type checks: isinstance() would resolve unrelated plain proxies.
    extra_kinds: list[type[Any]] = []
    refs: list[Any] = []
    for item in custom:
        if issubclass(type(item), type):
            extra_kinds.append(item)  # a reference class (an extension of ours)
        elif type(item) in (RefProxy, RefMutProxy):
            refs.append(item)  # a reference itself, as the reference accepts
    kinds = (RefProxy, RefMutProxy, *extra_kinds)
    refs.extend(value for value in values if type(value) in kinds)
    return refs


def submit(
    submit_func: Callable[..., FutureT],
    *,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    register_custom_refs: Iterable[Any] = (),
) -> FutureT:
    """Call ``submit_func(*args, **kwargs)`` and end its reference borrows when done.

    Every argument (positional or keyword) whose exact type is `RefProxy` or
    `RefMutProxy` (from `proxystore.store.ref`) is marked out of scope by a
    done-callback on the returned future, and so is every reference listed in
    `register_custom_refs` (for references nested in data structures). Classes
    listed there are treated as reference types too.

    Returns:
        The future returned by ``submit_func``.
    """
    kwargs = dict(kwargs or {})
    refs = _collect_refs([*args, *kwargs.values()], register_custom_refs)
    future = submit_func(*args, **kwargs)

    def _release(_: object) -> None:
        mark_refs_out_of_scope(*refs)

    future.add_done_callback(_release)
    return future
