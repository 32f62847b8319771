"""Route each object to one of several connectors according to policies.

A `MultiConnector` holds named connectors, each with a `Policy` saying
which objects it takes (by size and tags) and on which hosts it can be used. ``put``
sends an object to the highest-priority connector whose policy accepts it and returns a
`MultiKey` naming that connector, so ``get``/``exists``/``evict`` go straight to
it.

When a MultiConnector is rebuilt from its `config` on another
host, connectors whose ``host_pattern`` does not match that host stay *dormant*: they
are not created there, keys they stored cannot be read there, and their configuration
is kept so it travels on to the next host.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from collections.abc import Collection, Iterable, Sequence
from typing import Any, NamedTuple, Self, TypedDict

from proxystore.connectors.exceptions import MultiConnectorError
from proxystore.connectors.protocols import (
    BytesLike,
    Connector,
    EvictingConnector,
)
from proxystore.utils._closeable import Closeable
from proxystore.utils.environment import hostname
from proxystore.utils.imports import get_object_path, import_from_path

__all__ = [
    "ConnectorPolicyConfig",
    "MultiConnector",
    "MultiConnectorError",
    "MultiKey",
    "Policy",
    "PolicyDict",
]


class PolicyDict(TypedDict):
    """Plain-data form of a `Policy` (see `Policy.as_dict`)."""

    priority: int
    host_pattern: list[str] | str | None
    min_size_bytes: int
    max_size_bytes: int
    subset_tags: list[str]
    superset_tags: list[str]


#: Plain-data description of one connector of a MultiConnector: the dotted path of
#: its class, its `config`, and its policy.
ConnectorPolicyConfig = tuple[str, dict[str, Any], PolicyDict]


@dataclasses.dataclass(frozen=True)
class Policy:
    """Which objects a connector of a `MultiConnector` accepts, and where.

    Attributes:
        priority: Connectors are tried from the highest priority down.
        host_pattern: Regular expression(s) one of which must fully match this host's
            name for the connector to be used here; ``None`` allows every host.
        min_size_bytes: Smallest object size accepted (inclusive).
        max_size_bytes: Largest object size accepted (inclusive).
        subset_tags: A ``put`` is accepted only if all of its ``subset_tags`` are
            among these.
        superset_tags: A ``put`` is accepted only if its ``superset_tags`` include
            all of these.

    Raises:
        ValueError: if a size bound is negative or ``min_size_bytes`` exceeds
            ``max_size_bytes``.
    """

    priority: int = 0
    host_pattern: Iterable[str] | str | None = None
    min_size_bytes: int = 0
    max_size_bytes: int = sys.maxsize
    subset_tags: list[str] = dataclasses.field(default_factory=list)
    superset_tags: list[str] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        if self.min_size_bytes < 0 or self.max_size_bytes < self.min_size_bytes:
            raise ValueError(
                "Policy needs 0 <= min_size_bytes <= max_size_bytes, got "
                f"min_size_bytes={self.min_size_bytes} and "
                f"max_size_bytes={self.max_size_bytes}."
            )
        # Own copies: a generator would be consumed by the first check, and a caller's
        # list mutated later must not change the policy.
        if self.host_pattern is not None and not isinstance(self.host_pattern, str):
            object.__setattr__(self, "host_pattern", list(self.host_pattern))
        object.__setattr__(self, "subset_tags", list(self.subset_tags))
        object.__setattr__(self, "superset_tags", list(self.superset_tags))

    def is_valid(
        self,
        *,
        size_bytes: int | None = None,
        subset_tags: Iterable[str] | None = None,
        superset_tags: Iterable[str] | None = None,
    ) -> bool:
        """Return whether an object with these properties may use this connector.

        Arguments left as ``None`` are not checked. The host is always checked (see
        `is_valid_on_host`).
        """
        return (
            self._accepts(
                size_bytes,
                None if subset_tags is None else frozenset(subset_tags),
                None if superset_tags is None else frozenset(superset_tags),
            )
            and self.is_valid_on_host()
        )

    def _accepts(
        self,
        size_bytes: int | None,
        subset_tags: Collection[str] | None,
        superset_tags: Collection[str] | None,
    ) -> bool:
        if size_bytes is not None and not (
            self.min_size_bytes <= size_bytes <= self.max_size_bytes
        ):
            return False
        if subset_tags is not None and not set(subset_tags).issubset(self.subset_tags):
            return False
        return superset_tags is None or set(superset_tags).issuperset(
            self.superset_tags
        )

    def is_valid_on_host(self) -> bool:
        """Return whether one of the host patterns fully matches this host's name."""
        if self.host_pattern is None:
            return True
        patterns = (
            [self.host_pattern]
            if isinstance(self.host_pattern, str)
            else self.host_pattern
        )
        host = hostname()
        return any(re.fullmatch(pattern, host) for pattern in patterns)

    def as_dict(self) -> PolicyDict:
        """Return the policy as plain data; ``Policy(**d)`` rebuilds it."""
        host = self.host_pattern
        return PolicyDict(
            priority=self.priority,
            host_pattern=host if host is None or isinstance(host, str) else list(host),
            min_size_bytes=self.min_size_bytes,
            max_size_bytes=self.max_size_bytes,
            subset_tags=list(self.subset_tags),
            superset_tags=list(self.superset_tags),
        )


class MultiKey(NamedTuple):
    """Key of an object in a `MultiConnector`."""

    connector_name: str
    """Name of the connector holding the object."""
    # Any, not tuple[Any, ...]: the key type depends on which connector was chosen at
    # run time, and callers hand it straight back to that connector.
    connector_key: Any
    """That connector's own key (itself a NamedTuple of plain data)."""


def _size(obj: BytesLike) -> int:
    return obj.nbytes if isinstance(obj, memoryview) else len(obj)


class MultiConnector(Closeable):
    """Connector that routes objects to other connectors by `Policy`.

    Args:
        connectors: Connectors to use, by name, each with its policy. The
            MultiConnector owns them: `close` closes them all.
        dormant_connectors: Connectors (as `ConnectorPolicyConfig`) that are
            not usable on this host; kept only so `config` carries them on.

    Raises:
        ValueError: if a name is both an active and a dormant connector.
    """

    def __init__(
        self,
        connectors: dict[str, tuple[Connector[Any], Policy]],
        dormant_connectors: dict[str, ConnectorPolicyConfig] | None = None,
    ) -> None:
        self.connectors = dict(connectors)
        self.dormant_connectors = dict(dormant_connectors or {})
        both = sorted(self.connectors.keys() & self.dormant_connectors.keys())
        if both:
            raise ValueError(f"Connectors {both} are given as active and as dormant.")
        # sorted() is stable: equal priorities keep the order they were given in.
        self.connectors_by_priority = sorted(
            self.connectors, key=lambda name: -self.connectors[name][1].priority
        )
        # Host names do not change while we run, so host patterns are checked once.
        self._routes = [
            (name, *self.connectors[name])
            for name in self.connectors_by_priority
            if self.connectors[name][1].is_valid_on_host()
        ]

    def __repr__(self) -> str:
        inner = ", ".join(
            f"{name}={connector!r}" for name, (connector, _) in self.connectors.items()
        )
        return f"{type(self).__name__}({inner})"

    def _route(
        self, size: int, subset_tags: Iterable[str], superset_tags: Iterable[str]
    ) -> tuple[str, Connector[Any]]:
        subset = frozenset(subset_tags)
        superset = frozenset(superset_tags)
        for name, connector, policy in self._routes:
            if policy._accepts(size, subset, superset):
                return name, connector
        raise MultiConnectorError(
            f"No connector accepts an object of {size} bytes with "
            f"subset_tags={sorted(subset)} and superset_tags={sorted(superset)} on "
            f"host {hostname()!r}; policies by priority: "
            + (
                "; ".join(
                    f"{name}: {self.connectors[name][1]}"
                    for name in self.connectors_by_priority
                )
                or "(no connectors)"
            )
        )

    def _connector(self, name: str) -> Connector[Any]:
        try:
            return self.connectors[name][0]
        except KeyError:
            pass
        if name in self.dormant_connectors:
            raise MultiConnectorError(
                f"Connector {name!r} is dormant on host {hostname()!r} (its policy's "
                "host_pattern does not match), so its objects cannot be reached here."
            )
        raise MultiConnectorError(
            f"Connector {name!r} does not exist in this MultiConnector "
            f"(connectors: {sorted(self.connectors)}, "
            f"dormant: {sorted(self.dormant_connectors)})."
        )

    def close(self) -> None:
        """Close every active connector (all are closed even if one fails)."""
        first_error: BaseException | None = None
        for connector, _ in self.connectors.values():
            try:
                connector.close()
            except Exception as exc:  # keep closing the others
                first_error = first_error or exc
        if first_error is not None:
            raise first_error

    def config(self) -> dict[str, ConnectorPolicyConfig]:
        """Return every connector (active and dormant) as plain data.

        Each value is ``(dotted class path, connector config, policy dict)``.
        """
        cfg = dict(self.dormant_connectors)
        for name, (connector, policy) in self.connectors.items():
            cfg[name] = (
                get_object_path(type(connector)),
                connector.config(),
                policy.as_dict(),
            )
        return cfg

    @classmethod
    def from_config(cls, config: dict[str, ConnectorPolicyConfig]) -> Self:
        """Create a MultiConnector from the output of `config`.

        Connectors whose policy is not valid on this host become dormant; the others
        are created with their class's ``from_config``. Entries may be lists instead
        of tuples (as after a JSON or TOML round trip).

        Raises:
            MultiConnectorError: if a connector class cannot be imported.
        """
        connectors: dict[str, tuple[Connector[Any], Policy]] = {}
        dormant: dict[str, ConnectorPolicyConfig] = {}
        for name, (path, options, policy_dict) in config.items():
            policy = Policy(**policy_dict)
            if not policy.is_valid_on_host():
                dormant[name] = (path, options, policy_dict)
                continue
            try:
                connector_type = import_from_path(path)
            except ImportError as exc:
                raise MultiConnectorError(
                    f"Cannot import connector class {path!r} of connector {name!r}: "
                    f"{exc}"
                ) from exc
            connectors[name] = (connector_type.from_config(options), policy)
        return cls(connectors, dormant)

    def evict(self, key: MultiKey) -> None:
        """Remove the object at ``key``; a missing object is ignored.

        Raises:
            MultiConnectorError: if the key's connector is unknown or dormant here.
        """
        self._connector(key.connector_name).evict(key.connector_key)

    def exists(self, key: MultiKey) -> bool:
        """Return whether an object is stored at ``key``.

        Raises:
            MultiConnectorError: if the key's connector is unknown or dormant here.
        """
        return self._connector(key.connector_name).exists(key.connector_key)

    def get(self, key: MultiKey) -> BytesLike | None:
        """Return the object at ``key``, or ``None`` when missing.

        Raises:
            MultiConnectorError: if the key's connector is unknown or dormant here.
        """
        return self._connector(key.connector_name).get(key.connector_key)

    def get_evict(self, key: MultiKey) -> BytesLike | None:
        """Return the object at ``key`` and remove it; ``None`` when missing.

        One call to the key's connector when it is an
        `EvictingConnector`, else its
        ``get`` then (when found) its ``evict``.

        Raises:
            MultiConnectorError: if the key's connector is unknown or dormant here.
        """
        connector = self._connector(key.connector_name)
        if isinstance(connector, EvictingConnector):
            return connector.get_evict(key.connector_key)
        data = connector.get(key.connector_key)
        if data is not None:
            connector.evict(key.connector_key)
        return data

    def get_batch(self, keys: Sequence[MultiKey]) -> list[BytesLike | None]:
        """Return the object at each key (``None`` where missing), in order.

        Keys of one connector are fetched with a single ``get_batch`` call.

        Raises:
            MultiConnectorError: if a key's connector is unknown or dormant here.
        """
        groups: dict[str, list[int]] = {}
        for index, key in enumerate(keys):
            groups.setdefault(key.connector_name, []).append(index)
        results: list[BytesLike | None] = [None] * len(keys)
        for name, indices in groups.items():
            values = self._connector(name).get_batch(
                [keys[i].connector_key for i in indices]
            )
            for index, value in zip(indices, values, strict=True):
                results[index] = value
        return results

    def put(
        self,
        obj: BytesLike,
        subset_tags: Iterable[str] = (),
        superset_tags: Iterable[str] = (),
    ) -> MultiKey:
        """Store ``obj`` with the highest-priority connector whose policy accepts it.

        Args:
            obj: Bytes to store.
            subset_tags: Tags that must all be among a policy's ``subset_tags``.
            superset_tags: Tags that must include all of a policy's
                ``superset_tags``.

        Raises:
            MultiConnectorError: if no connector's policy accepts the object.
        """
        name, connector = self._route(_size(obj), subset_tags, superset_tags)
        return MultiKey(name, connector.put(obj))

    def put_batch(
        self,
        objs: Sequence[BytesLike],
        subset_tags: Iterable[str] = (),
        superset_tags: Iterable[str] = (),
    ) -> list[MultiKey]:
        """Store each object as `put` would; return the keys in order.

        Objects routed to the same connector are stored with one ``put_batch`` call.

        Raises:
            MultiConnectorError: if no connector accepts one of the objects (then
                nothing is stored).
        """
        subset = frozenset(subset_tags)
        superset = frozenset(superset_tags)
        groups: dict[str, tuple[Connector[Any], list[int]]] = {}
        for index, obj in enumerate(objs):
            name, connector = self._route(_size(obj), subset, superset)
            groups.setdefault(name, (connector, []))[1].append(index)
        keys: list[MultiKey | None] = [None] * len(objs)
        for name, (connector, indices) in groups.items():
            sub_keys = connector.put_batch([objs[i] for i in indices])
            for index, sub_key in zip(indices, sub_keys, strict=True):
                keys[index] = MultiKey(name, sub_key)
        return [key for key in keys if key is not None]
