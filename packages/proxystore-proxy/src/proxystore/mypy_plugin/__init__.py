"""A mypy plugin that types attribute access through a proxy as on its target.

``Proxy[T]`` forwards every attribute it does not define itself to the target, so
mypy, which only sees ``Proxy`` forwarding unknown names, types them as ``Any``::

    proxy = Proxy(lambda: [1, 2])
    reveal_type(proxy.append)  # Any, without the plugin

With the plugin the access is checked against ``T``: ``proxy.append`` is
``def (int)`` and ``proxy.missing`` is an ``attr-defined`` error, like on a list.
Names that ``Proxy`` (or a subclass such as ``OwnedProxy``) defines itself keep
their own type. Enable it in the mypy configuration::

    # mypy.ini / setup.cfg
    [mypy]
    plugins = proxystore.mypy_plugin

    # pyproject.toml
    [tool.mypy]
    plugins = ["proxystore.mypy_plugin"]

This module imports mypy (a development tool); nothing in ProxyStore imports it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

# mypy's modules import each other circularly: loading mypy.plugin first sets them
# up in a working order (importing mypy.maptype first fails).
from mypy.plugin import AttributeContext, Plugin

# isort: split
from mypy.errorcodes import ATTR_DEFINED, UNION_ATTR
from mypy.maptype import map_instance_to_supertype
from mypy.messages import format_type
from mypy.subtypes import find_member
from mypy.typeops import make_simplified_union
from mypy.types import (
    AnyType,
    CallableType,
    Instance,
    LiteralType,
    ProperType,
    TupleType,
    Type,
    TypedDictType,
    TypeOfAny,
    UnionType,
    get_proper_type,
)

__all__ = ["ProxyStoreMypyPlugin", "plugin", "proxy_attribute_access"]

# The class whose type parameter is the target type, and the class defining the
# `__getattribute__` that forwards unknown names (mypy reports forwarded attributes
# under the fullname of the class defining `__getattribute__`/`__getattr__`).
_PROXY_GENERIC = "proxystore.proxy._proxy._ProxyAPI"
_FORWARDING_CLASSES = (
    "proxystore.proxy._pure.PurePythonProxyBase",
    "proxystore.proxy._proxy._ProxyAPI",
    "proxystore.proxy.Proxy",
)


def _as_instance(typ: ProperType) -> Instance | None:
    """The instance type mypy looks attributes up on (literals, tuples, ...)."""
    if isinstance(typ, Instance):
        return typ
    if isinstance(typ, LiteralType | TypedDictType | CallableType):
        return typ.fallback
    if isinstance(typ, TupleType):
        return typ.partial_fallback
    return None


def _target_type(proxy: ProperType) -> ProperType | None:
    """``T`` of a ``Proxy[T]`` (or of a subclass instance), if known."""
    if not isinstance(proxy, Instance):
        return None
    for info in proxy.type.mro:
        if info.fullname == _PROXY_GENERIC:
            base = map_instance_to_supertype(proxy, info)
            return get_proper_type(base.args[0]) if base.args else None
    return None


def _member_of(
    name: str,
    target: ProperType,
    ctx: AttributeContext,
    union: UnionType | None = None,
) -> Type:
    if isinstance(target, AnyType):
        return target
    if isinstance(target, UnionType):
        items = [
            _member_of(name, get_proper_type(item), ctx, target)
            for item in target.items
        ]
        return make_simplified_union(items)
    instance = _as_instance(target)
    if instance is None:
        # Type variables, callables without fallback...: keep mypy's answer.
        return ctx.default_attr_type
    # `is_lvalue` exists on AttributeContext since mypy 1.14.
    is_lvalue = bool(getattr(ctx, "is_lvalue", False))
    member = find_member(name, instance, instance, is_lvalue=is_lvalue)
    if member is None:
        options = ctx.api.options
        if union is None:
            where, code = f"{format_type(target, options)}", ATTR_DEFINED
        else:
            # Same wording and code as mypy's own check of a union.
            where = (
                f"Item {format_type(target, options)} of {format_type(union, options)}"
            )
            code = UNION_ATTR
        proxy = format_type(ctx.type, options)
        ctx.api.fail(
            f'{where} (target of {proxy}) has no attribute "{name}"',
            ctx.context,
            code=code,
        )
        return AnyType(TypeOfAny.from_error)
    return member


def proxy_attribute_access(ctx: AttributeContext, *, attr: str) -> Type:
    """Type of ``proxy.<attr>``: the attribute's type on the proxy's target type.

    Attributes the proxy class itself defines (e.g. ``__proxy_wrapped__``) keep
    their own type; a name the target lacks is reported as an ``attr-defined``
    error (``union-attr`` for a member of a union target).
    """
    proxy = get_proper_type(ctx.type)
    if isinstance(proxy, Instance) and proxy.type.get(attr) is not None:
        return ctx.default_attr_type
    target = _target_type(proxy)
    if target is None:
        return ctx.default_attr_type
    return _member_of(attr, target, ctx)


class ProxyStoreMypyPlugin(Plugin):
    """Types ``Proxy[T].name`` like ``T.name`` for names ``Proxy`` forwards."""

    def get_attribute_hook(
        self, fullname: str
    ) -> Callable[[AttributeContext], Type] | None:
        """Return the hook for attributes forwarded by a proxy class."""
        owner, _, name = fullname.rpartition(".")
        if owner in _FORWARDING_CLASSES:
            return functools.partial(proxy_attribute_access, attr=name)
        return None


def plugin(version: str) -> type[ProxyStoreMypyPlugin]:
    """Entry point mypy calls with its version; returns the plugin class."""
    return ProxyStoreMypyPlugin
