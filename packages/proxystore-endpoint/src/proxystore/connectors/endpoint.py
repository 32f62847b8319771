"""Connector to ProxyStore endpoints.

`EndpointConnector(endpoints)` talks to the first endpoint in `endpoints` that runs
on this host (found through the endpoint configurations in the proxystore home
directory). Keys name the endpoint that holds the object, so a proxy resolved on
another site asks its own local endpoint, which fetches the object from the
owner through the peer connection.

Objects put with `ttl=` expire on the endpoint that holds them: the endpoint
process keeps each deadline with its object and sweeps expired ones, so they go
whether or not any client process is still alive.

This module ships with the `proxystore-endpoint` distribution; the
`proxystore.connectors` package finds it with `pkgutil.extend_path`.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple, Self
from uuid import UUID

from proxystore.connectors.exceptions import ConnectorError
from proxystore.connectors.protocols import BytesLike, KeyInfo, check_ttl
from proxystore.endpoint import client
from proxystore.endpoint.config import EndpointConfig, get_configs
from proxystore.utils.environment import home_dir

__all__ = ["EndpointConnector", "EndpointConnectorError", "EndpointKey"]

logger = logging.getLogger(__name__)

#: Seconds allowed to check that a configured endpoint is running.
_PROBE_TIMEOUT = 5.0


class EndpointConnectorError(ConnectorError):
    """Raised when an endpoint cannot be found, reached, or fails a request.

    The message names the endpoint (UUID and address) involved.
    """


class EndpointKey(NamedTuple):
    """Key to an object stored on an endpoint.

    Attributes:
        object_id: Identifier of the object.
        endpoint_id: UUID of the endpoint holding the object.
    """

    object_id: str
    endpoint_id: str | None


def _endpoint_uuid(value: str | UUID) -> UUID:
    """Parse one entry of `EndpointConnector(endpoints)`; the error says what fits."""
    if isinstance(value, UUID):
        return value
    try:
        return UUID(str(value))
    except ValueError:
        raise ValueError(
            f"EndpointConnector takes endpoint UUIDs, got {value!r}; "
            "`proxystore-endpoint list` shows the UUID of each endpoint "
            "configured on this host."
        ) from None


class EndpointConnector:
    """Connector to ProxyStore endpoints.

    Args:
        endpoints: UUIDs of the endpoints this connector may use; the first one
            running on this host becomes the local endpoint.
        proxystore_dir: Proxystore home directory holding endpoint
            configurations (default: `proxystore.utils.environment.home_dir()`).
            Leave unset when proxies travel between hosts, whose home
            directories may differ.

    Raises:
        ValueError: If `endpoints` is empty or holds an invalid UUID.
        EndpointConnectorError: If none of `endpoints` runs on this host.
    """

    def __init__(
        self,
        endpoints: Sequence[str | UUID],
        proxystore_dir: str | None = None,
    ) -> None:
        if len(endpoints) == 0:
            raise ValueError("At least one endpoint must be specified.")
        self.endpoints: list[UUID] = [_endpoint_uuid(e) for e in endpoints]
        self.proxystore_dir = proxystore_dir
        self._session = client.Session()
        directory = home_dir() if proxystore_dir is None else proxystore_dir
        found = self._find_local(get_configs(directory))
        if found is None:
            self._session.close()
            names = ", ".join(str(e) for e in self.endpoints)
            raise EndpointConnectorError(
                f"None of the endpoints [{names}] is running on this host "
                f"(configurations searched in {directory}). Start one with "
                "`proxystore-endpoint start NAME`."
            )
        self.endpoint_uuid: UUID = UUID(found.uuid)
        self.endpoint_host: str | None = found.host
        self.endpoint_port: int = found.port
        self.address = f"http://{found.host}:{found.port}"

    def _find_local(self, configs: list[EndpointConfig]) -> EndpointConfig | None:
        by_uuid = {UUID(cfg.uuid): cfg for cfg in configs}
        probe = client.Session(timeout=_PROBE_TIMEOUT)
        try:
            for wanted in self.endpoints:
                cfg = by_uuid.get(wanted)
                if cfg is None:
                    continue
                if cfg.host is None:
                    logger.warning(
                        "Endpoint %r (%s) is configured but was never started",
                        cfg.name,
                        wanted,
                    )
                    continue
                address = f"http://{cfg.host}:{cfg.port}"
                try:
                    status, _, body = probe.request("GET", address, "endpoint", {})
                    answered = status == 200 and UUID(str(json.loads(body)["uuid"]))
                except (client.RequestException, ValueError, KeyError, TypeError):
                    logger.debug("Endpoint %s at %s does not answer", wanted, address)
                    continue
                if answered == wanted:
                    return cfg
                logger.debug("Endpoint at %s is not %s", address, wanted)
        finally:
            probe.close()
        return None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *args: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(connected to {self.endpoint_uuid} @ {self.address})"
        )

    def close(self) -> None:
        """Close the connections to the local endpoint."""
        self._session.close()

    def config(self) -> dict[str, Any]:
        """Return the configuration `from_config` rebuilds this connector from."""
        return {
            "endpoints": [str(e) for e in self.endpoints],
            "proxystore_dir": self.proxystore_dir,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Self:
        """Create a connector from the output of `config()`.

        Raises:
            EndpointConnectorError: If none of the endpoints runs on this host.
        """
        return cls(**config)

    def _fail(self, op: str, exc: client.RequestException) -> EndpointConnectorError:
        where = f"endpoint {self.endpoint_uuid} at {self.address}"
        if isinstance(exc, client.EndpointConnectionError):
            return EndpointConnectorError(
                f"{op} failed: {where} is not reachable (is it stopped?)."
            )
        return EndpointConnectorError(
            f"{op} failed with error code {exc.status_code} from {where}: {exc.text}"
        )

    def evict(self, key: EndpointKey) -> None:
        """Remove the object at `key` (a missing key is not an error).

        Raises:
            EndpointConnectorError: If the endpoint fails the request.
        """
        try:
            client.evict(self.address, key.object_id, key.endpoint_id, self._session)
        except client.RequestException as exc:
            raise self._fail("Evict", exc) from exc

    def exists(self, key: EndpointKey) -> bool:
        """Return whether an object is stored at `key`.

        Raises:
            EndpointConnectorError: If the endpoint fails the request.
        """
        try:
            return client.exists(
                self.address, key.object_id, key.endpoint_id, self._session
            )
        except client.RequestException as exc:
            raise self._fail("Exists", exc) from exc

    def get(self, key: EndpointKey) -> BytesLike | None:
        """Return the bytes at `key`, or `None` when there are none.

        Raises:
            EndpointConnectorError: If the endpoint fails the request.
        """
        try:
            return client.get(
                self.address, key.object_id, key.endpoint_id, self._session
            )
        except client.RequestException as exc:
            raise self._fail("Get", exc) from exc

    def get_batch(self, keys: Sequence[EndpointKey]) -> list[BytesLike | None]:
        """Return the bytes for each key (`None` where missing), in order.

        Raises:
            EndpointConnectorError: If the endpoint fails a request.
        """
        return [self.get(key) for key in keys]

    def new_key(self, obj: BytesLike | None = None) -> EndpointKey:
        """Return a new key on the local endpoint, with nothing stored under it yet.

        As in the reference, `obj` is ignored: the object is only stored by a later
        `set(key, obj)`.
        """
        return EndpointKey(
            object_id=str(uuid.uuid4()), endpoint_id=str(self.endpoint_uuid)
        )

    def put(self, obj: BytesLike, *, ttl: float | None = None) -> EndpointKey:
        """Store `obj` on the local endpoint and return its key.

        Args:
            obj: Bytes to store.
            ttl: Seconds after which the endpoint removes the object (`None`:
                never).

        Raises:
            ValueError: If `ttl` is not a positive, finite number.
            EndpointConnectorError: If the endpoint fails the request (e.g. the
                object exceeds its maximum size).
        """
        key = EndpointKey(
            object_id=str(uuid.uuid4()), endpoint_id=str(self.endpoint_uuid)
        )
        self.set(key, obj, ttl=ttl)
        return key

    def put_batch(
        self, objs: Sequence[BytesLike], *, ttl: float | None = None
    ) -> list[EndpointKey]:
        """Store each object; return their keys in order.

        Raises:
            ValueError: If `ttl` is not a positive, finite number.
            EndpointConnectorError: If the endpoint fails a request.
        """
        return [self.put(obj, ttl=ttl) for obj in objs]

    def set(
        self, key: EndpointKey, obj: BytesLike, *, ttl: float | None = None
    ) -> None:
        """Store `obj` at `key` (made by `new_key`), overwriting.

        Raises:
            ValueError: If `ttl` is not a positive, finite number.
            EndpointConnectorError: If the endpoint fails the request.
        """
        checked = check_ttl(ttl)
        try:
            client.put(
                self.address,
                key.object_id,
                obj,
                key.endpoint_id,
                self._session,
                ttl=checked,
            )
        except client.RequestException as exc:
            raise self._fail("Set", exc) from exc

    def expire(self, key: EndpointKey, ttl: float | None) -> bool:
        """Give the object at `key` a new time-to-live on its endpoint.

        Args:
            key: Key of the object.
            ttl: Seconds from now; `None` removes its deadline.

        Returns:
            Whether an (unexpired) object exists at `key`.

        Raises:
            ValueError: If `ttl` is not a positive, finite number.
            EndpointConnectorError: If the endpoint fails the request.
        """
        checked = check_ttl(ttl)
        try:
            return client.expire(
                self.address, key.object_id, checked, key.endpoint_id, self._session
            )
        except client.RequestException as exc:
            raise self._fail("Expire", exc) from exc

    def ttl(self, key: EndpointKey) -> float | None:
        """Return the seconds before the object at `key` expires (`None`: never).

        Raises:
            EndpointConnectorError: If the endpoint fails the request.
        """
        try:
            return client.ttl(
                self.address, key.object_id, key.endpoint_id, self._session
            )
        except client.RequestException as exc:
            raise self._fail("TTL", exc) from exc

    def scan(self) -> Iterator[KeyInfo]:
        """List the objects stored on the local endpoint (one request).

        Raises:
            EndpointConnectorError: If the endpoint fails the request.
        """
        try:
            objects = client.listing(self.address, self._session)
        except client.RequestException as exc:
            raise self._fail("List", exc) from exc
        endpoint_id = str(self.endpoint_uuid)
        for item in objects:
            yield KeyInfo(
                EndpointKey(item["key"], endpoint_id),
                item["size"],
                item["age"],
                item["ttl"],
            )
