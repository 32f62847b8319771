"""What a stream consumer trusts, decided in one place.

Whoever can write to a stream's broker writes the events a
[`StreamConsumer`][proxystore.stream.StreamConsumer] reads. Every decision the
consumer takes on the word of an event is made here:

* **Which code an event may name.** Key ``NamedTuple`` classes, connector classes
  (including the children of a ``MultiConnector``) and store (de)serializers are
  imported only from trusted modules (``proxystore.connectors.*`` for types,
  ``proxystore.*`` for (de)serializers, plus prefixes given to `trust_modules`),
  checked before anything is imported.
* **What a store config from an event may do** (always, with or without a
  policy): it never resolves a credential by reference (options such as
  ``password_env`` or ``*_credential`` and password-like options are refused,
  and so is a signing key reference when no policy names the key), never clears
  anything (``clear`` is forced off, also where a connector clears by default),
  and never replaces a store registered in this process: a registered store of
  the event's name is used as it is, and a name bound to a store made from an
  earlier event is not rebound by an event with a different config.
* **What every yielded object goes through** (with a `TrustPolicy`): the
  policy's deserializer (by default an empty-allow-list
  [`RestrictedDeserializer`][proxystore.serialize.RestrictedDeserializer]) and,
  if the policy names a signing key, a MAC check under the key that reference
  resolves to *in this process*, for inline objects and for objects fetched
  through stores made from events alike; and whether stores may be made from
  events at all (``create_stores=False`` refuses every store not registered
  here).
* **What a writer may delete** (with a `TrustPolicy`): nothing through a store
  made from an event. Such a store is read-only: an event's ``evict`` is not
  honoured there (its config names any directory or server this process can
  reach, and its key any file or key in it). Producers' ``evict`` requests apply
  to stores registered in this process.

Without a policy, a consumer behaves as the reference release's: it builds
stores from the configs events carry and deserializes with whatever those
configs name (by default pickle), and inline objects are unpickled. That
trusts every writer to the broker to run code in the consumer: set a policy
(or register every store by name yourself and send nothing but plain data
inline) when the broker is shared with anyone you do not trust that far.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import re
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from proxystore.serialize import RestrictedDeserializer, deserialize, verify
from proxystore.store import Store, get_store
from proxystore.store.config import ConnectorConfig, StoreConfig
from proxystore.stream.exceptions import EventDecodeError, UntrustedEventError
from proxystore.utils.credentials import (
    CREDENTIAL_SUFFIX,
    ENV_SUFFIX,
    resolve_secret_bytes,
)

if TYPE_CHECKING:
    from proxystore.serialize import BytesLike
    from proxystore.store.types import DeserializerT

__all__ = [
    "TrustPolicy",
    "check_store_config",
    "trust_modules",
]

_DOTTED: Final = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+")
_BARE: Final = re.compile(r"[A-Za-z_]\w*")
_DOTTED_OR_BARE: Final = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")

# ------------------------------------------------------------- trusted modules
# Module prefixes from which key types and connector classes (first list) and
# store (de)serializers (second list) may be imported when a consumer rebuilds
# them from an event. Extended with trust_modules().
_TRUSTED_TYPES: list[str] = ["proxystore.connectors."]
_TRUSTED_CALLABLES: list[str] = ["proxystore."]


def trust_modules(*prefixes: str) -> None:
    """Allow events to name key types, connectors and (de)serializers from here.

    By default a consumer rebuilds only key ``NamedTuple`` classes and connector
    classes of ``proxystore.connectors.*`` modules, and custom store
    (de)serializers of ``proxystore.*`` modules, so that a message cannot make it
    import or call anything else. Use this to stream through your own connector
    (when the consumer has not registered the store by name itself) or with your
    own serializer.

    Args:
        prefixes: Module path prefixes such as ``"mypackage.connectors."``.

    Raises:
        ValueError: If a prefix is not a dotted module path ending with ``"."``.
    """
    for prefix in prefixes:
        if not prefix.endswith(".") or not _DOTTED_OR_BARE.fullmatch(prefix[:-1]):
            raise ValueError(f"{prefix!r} is not a module prefix like 'pkg.mod.'.")
        for trusted in (_TRUSTED_TYPES, _TRUSTED_CALLABLES):
            if prefix not in trusted:
                trusted.append(prefix)
    _key_class.cache_clear()
    _connector_class.cache_clear()
    _callable_from_path.cache_clear()


def _check_path(path: str, trusted: list[str], what: str) -> None:
    """Refuse ``path`` unless it is a dotted path inside a trusted prefix."""
    if not path.startswith(tuple(trusted)):
        raise EventDecodeError(
            f"{what} {path!r} is outside the trusted modules {trusted} "
            "(see proxystore.stream.trust.trust_modules).",
        )
    if not _DOTTED.fullmatch(path):
        raise EventDecodeError(f"Corrupt event: {what} {path!r} is not a dotted path.")


def _check_callable_path(path: str, what: str) -> None:
    """Refuse a (de)serializer path outside the trusted modules (no import)."""
    _check_path(path, _TRUSTED_CALLABLES, what)


def _import_attr(path: str, trusted: list[str], what: str) -> Any:
    _check_path(path, trusted, what)
    module_name, _, attr = path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
        return getattr(module, attr)
    except (ImportError, AttributeError) as e:
        raise EventDecodeError(f"Cannot import {what} {path!r}: {e}") from e


def _defined_in_trusted(obj: type, trusted: list[str]) -> bool:
    # Guards against re-exported names: `proxystore.connectors.x.os` must not
    # pass because the module it was imported into is trusted.
    return f"{obj.__module__}.".startswith(tuple(trusted))


@functools.lru_cache(maxsize=256)
def _key_class(path: str, connector_module: str | None = None) -> type[Any]:
    """Import the key ``NamedTuple`` class an event names, from trusted modules.

    Args:
        path: Dotted path of the class.
        connector_module: Module of the connector of the consumer's store for
            the event: its key classes are trusted too (a store the consumer set
            up vouches for its connector's keys; the module is already imported).

    Raises:
        EventDecodeError: If ``path`` is outside the trusted modules or is not a
            ``NamedTuple`` class defined there.
    """
    trusted = _TRUSTED_TYPES
    if connector_module is not None and path.startswith(connector_module + "."):
        trusted = [*trusted, connector_module + "."]
    cls = _import_attr(path, trusted, "key type")
    if not (
        isinstance(cls, type)
        and issubclass(cls, tuple)
        and hasattr(cls, "_fields")
        and _defined_in_trusted(cls, trusted)
    ):
        raise EventDecodeError(f"{path!r} is not a connector key NamedTuple.")
    return cls


@functools.lru_cache(maxsize=64)
def _connector_class(kind: str) -> type[Any]:
    # Bare names are short aliases ("redis", "file", ...) that the store config
    # resolves to built-in connectors only.
    if _BARE.fullmatch(kind):
        try:
            return ConnectorConfig(kind).get_connector_type()
        except ValueError as e:
            raise EventDecodeError(f"Unknown connector {kind!r}: {e}") from e
    cls = _import_attr(kind, _TRUSTED_TYPES, "connector")
    if not (
        isinstance(cls, type)
        and hasattr(cls, "from_config")
        and _defined_in_trusted(cls, _TRUSTED_TYPES)
    ):
        raise EventDecodeError(f"{kind!r} is not a connector class.")
    return cls


@functools.lru_cache(maxsize=64)
def _callable_from_path(path: str) -> Any:
    func = _import_attr(path, _TRUSTED_CALLABLES, "(de)serializer")
    if not callable(func):
        raise EventDecodeError(f"{path!r} is not callable.")
    return func


class _ImportOnCall:
    """A store (de)serializer named by an event, imported only when first used.

    Decoding an event never imports it: a consumer that already has the store
    registered by name never does. Importing honours the trusted modules.
    """

    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        self.path = path

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _callable_from_path(self.path)(*args, **kwargs)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _ImportOnCall) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    def __repr__(self) -> str:
        return f"<{self.path} (imported on first call)>"


def _is_multi(cls: type[Any]) -> bool:
    return cls.__module__ == "proxystore.connectors.multi"


def _children(options: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    # MultiConnector options: name -> (connector class path, options, policy).
    children = []
    for name, entry in options.items():
        if not (isinstance(entry, list | tuple) and len(entry) == 3):
            raise EventDecodeError(
                f"Corrupt event: MultiConnector entry {name!r} is not "
                "(class path, options, policy).",
            )
        path, child_options, policy = entry
        if not isinstance(path, str) or not isinstance(child_options, dict):
            raise EventDecodeError(
                f"Corrupt event: MultiConnector entry {name!r} has a bad class "
                "path or options.",
            )
        children.append((path, child_options, policy))
    return children


def _check_connector(kind: str, options: Mapping[str, Any]) -> None:
    cls = _connector_class(kind)
    if _is_multi(cls):
        # Its children are imported by path too: the same allow-list applies.
        for path, child_options, _ in _children(options):
            _check_connector(path, child_options)


def check_store_config(config: StoreConfig, *, callables: bool = True) -> None:
    """Check that a store can be built from ``config`` importing only trusted code.

    `StreamConsumer` calls this before creating a store from an event's
    configuration (a store already registered under the same name is used as
    it is, without this check). The children of a ``MultiConnector`` are
    checked too.

    Args:
        config: The store config an event carries.
        callables: Also check (and import) the config's (de)serializers; a
            consumer with a `TrustPolicy` never uses them, so never imports them.

    Raises:
        EventDecodeError: If a connector class or a (de)serializer lies outside
            the trusted modules (see `trust_modules`).
    """
    _check_connector(config.connector.kind, config.connector.options)
    if callables:
        for func in (config.serializer, config.deserializer):
            if isinstance(func, _ImportOnCall):
                _callable_from_path(func.path)


# ------------------------------------------------------ store configs of events
#: Suffixes of options that name a credential to resolve locally: the two
#: spellings `proxystore.utils.credentials` resolves, and ``_ref``.
_REFERENCE_SUFFIXES: Final = (ENV_SUFFIX, CREDENTIAL_SUFFIX, "_ref")
#: Option names containing one of these are credentials (or paths to them).
_SECRET_WORDS: Final = (
    "password",
    "passwd",
    "secret",
    "token",
    "username",
    "keyfile",
    "credential",
)


def _refuse_secrets(value: Any, store: str, where: str) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            name = str(key).lower()
            if item not in (None, "") and (
                name.endswith(_REFERENCE_SUFFIXES)
                or any(word in name for word in _SECRET_WORDS)
            ):
                raise UntrustedEventError(
                    f"The config of store {store!r} in an event sets the option "
                    f"{where}{key!r}: store configs that arrive in events never "
                    "name credentials (they would be looked up here and sent "
                    "wherever the config points). Register a store named "
                    f"{store!r} in this process to read this stream.",
                )
            _refuse_secrets(item, store, f"{where}{key!r} > ")
    elif isinstance(value, list | tuple):
        for item in value:
            _refuse_secrets(item, store, where)


_TAKES_CLEAR: dict[type[Any], bool] = {}


def _takes_clear(cls: type[Any]) -> bool:
    takes = _TAKES_CLEAR.get(cls)
    if takes is None:
        try:
            takes = "clear" in inspect.signature(cls).parameters
        except (TypeError, ValueError):
            takes = False
        _TAKES_CLEAR[cls] = takes
    return takes


def _never_clear(kind: str, options: dict[str, Any]) -> dict[str, Any]:
    # Forced off explicitly: some connectors clear by default (FileConnector
    # removes its directory on close unless told otherwise).
    # A writer may not widen the modes of files the consumer creates either
    # (FileConnector ``permissions``): the connector's private default applies.
    cls = _connector_class(kind)
    if "permissions" in options:
        options = {k: v for k, v in options.items() if k != "permissions"}
    if _takes_clear(cls):
        options = {**options, "clear": False}
    if _is_multi(cls):
        options = {
            name: [path, _never_clear(path, child), policy]
            for name, (path, child, policy) in zip(
                options, _children(options), strict=True
            )
        }
    return options


# ----------------------------------------------------------------- the policy
@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TrustPolicy:
    """What a `StreamConsumer` may accept from the writers of its stream.

    With a policy, every object the consumer yields (inline in an event, or
    fetched through a store made from an event's config) is deserialized by
    the policy's deserializer and, if ``auth_key_id`` is set, verified under
    that key first. Stores the process registered itself are used as they are
    (their own deserializer and signing apply): registering a store by name is
    how a consumer vouches for it. Objects that reach the consumer already
    decoded (an in-process `EventSubscriber` hands over event objects, no
    bytes) were never serialized, so there is nothing to deserialize; under
    ``auth_key_id`` they must still arrive signed.

    Args:
        allow: Allow-list of the
            [`RestrictedDeserializer`][proxystore.serialize.RestrictedDeserializer]
            every object goes through (dotted names such as ``"numpy"`` or
            ``"myapp.models.Point"``). The default, empty, loads only plain
            builtin data (numbers, strings, bytes, lists, dicts, ...).
        deserializer: A deserializer to use instead of the restricted one
            (e.g. `proxystore.serialize.deserialize` when ``auth_key_id``
            authenticates the producers). Not with ``allow``.
        auth_key_id: Reference (``"env:VAR"`` or a credentials-file entry,
            resolved in this process, never taken from an event) to the key
            every payload must be signed with. Inline objects must then be
            signed too (a `StreamProducer` with the same ``auth_key_id`` signs
            them); an unsigned one is refused.
        create_stores: Build stores from the configs events carry (sanitised:
            no credential references, never clearing, never evicting, the
            policy's deserializer and key). ``False`` refuses every event whose store is
            not registered in this process.
        connectors: Connector classes that stores made from events may use
            (short names such as ``"redis"`` or ``"file"``, or dotted class
            paths; the children of a ``MultiConnector`` too), or ``None`` for
            any connector of the trusted modules. Connectors that act with
            this host's ambient identity (Globus transfers, a local endpoint)
            or start servers (the DIM connectors) are worth leaving out.

    Raises:
        ValueError: If both ``allow`` and ``deserializer`` are given, or an
            allow-list entry is not a dotted name.
    """

    allow: Sequence[str] = ()
    deserializer: DeserializerT | None = None
    auth_key_id: str | None = None
    create_stores: bool = True
    connectors: Sequence[str] | None = None
    _loader: DeserializerT = dataclasses.field(
        init=False, repr=False, compare=False, default=deserialize
    )

    def __post_init__(self) -> None:
        allow = (self.allow,) if isinstance(self.allow, str) else tuple(self.allow)
        if allow and self.deserializer is not None:
            raise ValueError("Give a TrustPolicy either allow or deserializer.")
        key_id: object = self.auth_key_id
        if key_id is not None and not (isinstance(key_id, str) and key_id):
            raise ValueError(
                "TrustPolicy.auth_key_id must be a non-empty reference string, "
                f"got {self.auth_key_id!r}.",
            )
        loader = self.deserializer
        if loader is None:
            loader = RestrictedDeserializer(allow)
        object.__setattr__(self, "allow", allow)
        object.__setattr__(self, "_loader", loader)
        if self.connectors is not None:
            kinds = self.connectors
            object.__setattr__(
                self, "connectors", (kinds,) if isinstance(kinds, str) else tuple(kinds)
            )

    @property
    def object_deserializer(self) -> DeserializerT:
        """The deserializer every yielded object goes through."""
        return self._loader


# Stores made from event configs, with the sanitised config each was made from
# (a store of the process's own is never in here).
_FROM_EVENTS: weakref.WeakKeyDictionary[Store[Any], StoreConfig] = (
    weakref.WeakKeyDictionary()
)
# By name, the sanitised config of the store made from an event and that store's
# own config: a store rebuilt from it later (a proxy resolved after the consumer
# closed its stores) is recognised as made from an event, not as the process's.
_MADE_FROM_EVENTS: dict[str, tuple[StoreConfig, StoreConfig]] = {}
_CREATE_LOCK = threading.Lock()


def _unregistered(config: StoreConfig) -> StoreConfig:
    return dataclasses.replace(config, auto_register=False)


class _ConsumerTrust:
    """The trust decisions of one consumer, from its policy (or the defaults).

    Args:
        policy: The consumer's policy; ``None`` for the reference behaviour
            (see the module docstring for what that trusts).

    Raises:
        CredentialError: If the policy's ``auth_key_id`` does not resolve here.
        ValueError: If the policy names a connector that cannot be imported.
    """

    __slots__ = ("_connectors", "_last", "_seen", "load", "plain_inline", "policy")

    def __init__(self, policy: TrustPolicy | None) -> None:
        self.policy = policy
        # `load` turns a serialized inline object into the object to yield;
        # plain inline values (bytes, str, numbers) are yielded as they are
        # unless the policy requires every object signed.
        self.load: Callable[[BytesLike], Any]
        self.plain_inline = True
        if policy is None:
            self.load = deserialize
        elif policy.auth_key_id is None:
            self.load = policy.object_deserializer
        else:
            key = resolve_secret_bytes(policy.auth_key_id)
            loader = policy.object_deserializer

            def load(data: BytesLike) -> Any:
                return loader(verify(data, key))

            self.load = load
            self.plain_inline = False
        self._connectors: frozenset[type[Any]] | None = None
        if policy is not None and policy.connectors is not None:
            try:
                self._connectors = frozenset(
                    _connector_class(kind) for kind in policy.connectors
                )
            except EventDecodeError as e:
                raise ValueError(f"TrustPolicy.connectors: {e}") from e
        # Store per store name (with the event config it was looked up for),
        # and the last (config, store) pair: a stream repeats one config object.
        self._seen: dict[str, tuple[StoreConfig, Store[Any]]] = {}
        self._last: tuple[StoreConfig, Store[Any]] | None = None

    def unsigned_inline(self, topic: str) -> UntrustedEventError:
        """The error for a plain inline object under a signing policy."""
        return UntrustedEventError(
            f"Unsigned inline object on topic {topic!r}: the trust policy "
            "requires every object signed with "
            f"{self.policy.auth_key_id if self.policy else None!r}.",
        )

    @property
    def stores(self) -> dict[str, Store[Any]]:
        """Stores this consumer resolved objects through, by name."""
        return {name: store for name, (_, store) in self._seen.items()}

    def forget_stores(self) -> None:
        """Drop the stores looked up so far (after the consumer closed them)."""
        self._seen.clear()
        self._last = None

    def may_evict(self, store: Store[Any]) -> bool:
        """Whether an event's ``evict`` may delete from ``store``.

        Always without a policy (the reference behaviour); with one, only from
        a store this process registered itself, never one made from an event.
        """
        return self.policy is None or store not in _FROM_EVENTS

    def store(self, config: StoreConfig) -> Store[Any]:
        """Return the store an event's ``config`` resolves to here.

        A store registered in this process under ``config.name`` (not made
        from an event) is used as it is. Otherwise a store is made from the
        sanitised config (once per name) unless the policy refuses.

        Raises:
            UntrustedEventError: If the policy refuses stores made from events,
                the config names credentials (or, without a policy, a signing
                key), or the name is bound to a store made from a different
                event config.
            EventDecodeError: If the config names code outside the trusted
                modules.
        """
        last = self._last
        if last is not None and last[0] is config:
            return last[1]
        seen = self._seen.get(config.name)
        if seen is not None and (seen[0] is config or seen[0] == config):
            store = seen[1]
        else:
            store = self._lookup(config)
            self._seen[config.name] = (config, store)
        self._last = (config, store)
        return store

    def _lookup(self, config: StoreConfig) -> Store[Any]:
        # Under the lock: a store another consumer is making from an event is
        # never mistaken for one the process registered itself.
        with _CREATE_LOCK:
            return self._lookup_locked(config)

    def _lookup_locked(self, config: StoreConfig) -> Store[Any]:
        name = config.name
        registered = get_store(name)
        if registered is not None and registered not in _FROM_EVENTS:
            made = _MADE_FROM_EVENTS.get(name)
            if made is None or _unregistered(registered.config()) != made[1]:
                return registered  # the process's own store
            _FROM_EVENTS[registered] = made[0]
        if self.policy is not None and not self.policy.create_stores:
            raise UntrustedEventError(
                f"No store named {name!r} is registered in this process, and the "
                "trust policy refuses stores made from event configs "
                "(create_stores=False).",
            )
        safe = self.sanitised(config)
        if registered is None:
            store = Store.from_config(dataclasses.replace(safe, auto_register=True))
            _FROM_EVENTS[store] = safe
            _MADE_FROM_EVENTS[name] = (safe, _unregistered(store.config()))
            return store
        made_from = _FROM_EVENTS.get(registered)
        if made_from is not None and made_from != safe:
            raise UntrustedEventError(
                f"An event names store {name!r} with a config unlike the one that "
                "store was made from (from an earlier event): a name is never "
                "rebound, or a writer to the broker could take over a store. "
                f"Register a store named {name!r} in this process to choose it.",
            )
        return registered

    def _check_allowed(self, store: str, kind: str, options: Mapping[str, Any]) -> None:
        assert self._connectors is not None
        cls = _connector_class(kind)
        if cls not in self._connectors:
            raise UntrustedEventError(
                f"The config of store {store!r} in an event names the connector "
                f"{kind!r}, which the trust policy does not list in its "
                "connectors.",
            )
        if _is_multi(cls):
            for path, child, _ in _children(options):
                self._check_allowed(store, path, child)

    def sanitised(self, config: StoreConfig) -> StoreConfig:
        """Return the config a store may be made from for an event's ``config``.

        Credential options are refused, ``clear`` is forced off, and with a
        policy the deserializer and signing key are the policy's (the
        event's serializer is dropped: nothing it names is imported).

        Raises:
            UntrustedEventError: If the config names credentials, or a signing
                key without a policy to name the key.
            EventDecodeError: If the config names code outside the trusted
                modules.
        """
        policy = self.policy
        _refuse_secrets(config.connector.options, config.name, "")
        check_store_config(config, callables=policy is None)
        if self._connectors is not None:
            self._check_allowed(
                config.name, config.connector.kind, config.connector.options
            )
        connector = ConnectorConfig(
            config.connector.kind,
            _never_clear(config.connector.kind, config.connector.options),
        )
        if policy is None:
            if config.auth_key_id is not None:
                raise UntrustedEventError(
                    f"The config of store {config.name!r} in an event names the "
                    f"signing key {config.auth_key_id!r}: a key is never taken "
                    "from an event. Consume with "
                    "policy=TrustPolicy(auth_key_id=...) or register the store in "
                    "this process.",
                )
            return dataclasses.replace(config, connector=connector)
        return dataclasses.replace(
            config,
            connector=connector,
            serializer=None,
            deserializer=policy.object_deserializer,
            auth_key_id=policy.auth_key_id,
            auth_algorithm="hmac-sha256",  # verification accepts either
        )
