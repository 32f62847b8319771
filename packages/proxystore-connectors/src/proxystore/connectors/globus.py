"""Connector that keeps directories on several Globus endpoints in sync.

Each host that uses the connector has a Globus endpoint (collection) whose directory
it can also see as a local path. `put` writes the object to a file in the local
endpoint's directory and starts one Globus Transfer task to every *other* endpoint;
the key carries the task IDs. `get` and `exists` on any host first wait (up to
`timeout` seconds) for those tasks, then read the local copy.

Errors are translated at one boundary (`_globus_errors`) into this tree, each
naming the endpoint or the task concerned::

    ConnectorError
    └── GlobusConnectorError
        ├── GlobusEndpointError        bad endpoint set, or no endpoint for this host
        │                              (also a ValueError)
        ├── GlobusAuthError            Globus refused our tokens (expired, revoked,
        │                              missing consent); also a PermissionError and
        │                              the SDK's TransferAPIError
        ├── GlobusTransferError        Transfer refused a request (task submission,
        │   │                          status lookup)
        │   └── GlobusTaskFailedError  a task ended FAILED
        └── GlobusTaskTimeoutError     a task did not finish within `timeout`
                                       (also ConnectorTimeoutError and RuntimeError)

A transfer that fails never leaves a key that claims to exist: `put` removes the local
file when a task cannot be submitted, and once a task is known to have failed the
local copy is removed and `exists` answers `False`.

This module needs `globus-sdk` (`pip install 'proxystore-connectors[globus]'`).
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import Any, Literal, NamedTuple, Self

try:
    import globus_sdk
    import requests

    from proxystore.globus.client import get_transfer_client
except ImportError as exc:  # pragma: no cover - exercised by a test that hides it
    raise ImportError(
        "proxystore.connectors.globus needs globus-sdk and proxystore-globus. "
        "Install them with `pip install 'proxystore-connectors[globus]'`.",
        name=exc.name,
    ) from exc

from proxystore.connectors.exceptions import (
    ConnectorConnectionError,
    ConnectorError,
    ConnectorTimeoutError,
)
from proxystore.connectors.file import FileConnector, FileKey
from proxystore.connectors.protocols import BytesLike
from proxystore.utils.environment import hostname

__all__ = [
    "GlobusAuthError",
    "GlobusConnector",
    "GlobusConnectorError",
    "GlobusEndpoint",
    "GlobusEndpointError",
    "GlobusEndpoints",
    "GlobusKey",
    "GlobusTaskFailedError",
    "GlobusTaskTimeoutError",
    "GlobusTransferError",
]

logger = logging.getLogger(__name__)

SyncLevel = int | Literal["exists", "size", "mtime", "checksum"]
_SYNC_LEVELS: tuple[object, ...] = (0, 1, 2, 3, "exists", "size", "mtime", "checksum")
# Transfer answers these for a task ID it does not know (malformed or foreign).
_UNKNOWN_TASK_STATUSES = (400, 404)


class GlobusConnectorError(ConnectorError):
    """Base class of the errors raised by `GlobusConnector`."""


class GlobusEndpointError(GlobusConnectorError, ValueError):
    """Raised for a bad set of endpoints, or when no endpoint matches this host."""


class GlobusAuthError(
    GlobusConnectorError, PermissionError, globus_sdk.TransferAPIError
):
    """Raised when Globus refuses the tokens (expired, revoked or lacking consent).

    Run `proxystore-globus-auth login` (with `-c UUID` for collections that need
    `data_access` consent) and retry.

    It is also a `globus_sdk.TransferAPIError`, so handlers of the SDK's errors
    (what the reference connector lets through) still catch it: `http_status`,
    `code` and `message` come from Transfer's answer. When no HTTP answer was
    involved (no usable tokens were stored), they describe a 401 built here.

    Args:
        message: What went wrong and how to fix it (the `str()` of the error).
        response: Transfer's 401/403 response, when there was one.
    """

    def __init__(self, message: str, response: requests.Response | None = None) -> None:
        globus_sdk.TransferAPIError.__init__(
            self, _unauthorized_response(message) if response is None else response
        )
        self.args = (message,)

    def __str__(self) -> str:
        return str(self.args[0])


def _unauthorized_response(message: str) -> requests.Response:
    """A Transfer-style 401 for an auth failure that happened before any request."""
    response = requests.Response()
    response.status_code = 401
    response.reason = "Unauthorized"
    response.url = "https://transfer.api.globus.org/v0.10/"
    response.headers["Content-Type"] = "application/json"
    response._content = json.dumps(
        {"code": "AuthenticationFailed", "message": message}
    ).encode()
    response.request = requests.Request("GET", response.url).prepare()
    return response


class GlobusTransferError(GlobusConnectorError):
    """Raised when a Transfer task cannot be submitted, or has failed.

    Attributes:
        task_id: The task concerned (`None` when submission itself failed).
        endpoint: UUID of the endpoint the task was writing to or deleting on.
    """

    def __init__(
        self, message: str, *, task_id: str | None = None, endpoint: str | None = None
    ) -> None:
        super().__init__(message)
        self.task_id = task_id
        self.endpoint = endpoint


class GlobusTaskFailedError(GlobusTransferError):
    """Raised when a Transfer task ended in the FAILED state (names the task)."""


class GlobusTaskTimeoutError(ConnectorTimeoutError, GlobusConnectorError, RuntimeError):
    """Raised when a Transfer task is not finished after the connector's `timeout`.

    Attributes:
        task_id: The unfinished task.
    """

    def __init__(self, message: str, *, task_id: str) -> None:
        super().__init__(message)
        self.task_id = task_id


class GlobusEndpoint:
    """A Globus endpoint (collection) and where its directory is seen locally.

    Args:
        uuid: UUID of the endpoint.
        endpoint_path: Directory for the objects, as a path on the endpoint.
        local_path: The same directory as seen by the host's file system (`~` is
            expanded); `None` for an endpoint no proxystore host mounts.
        host_regex: Hostname, or a regular expression that fully matches the
            hostnames, of the hosts where `local_path` is visible.

    Raises:
        TypeError: if an argument has the wrong type.
    """

    def __init__(
        self,
        uuid: str,
        endpoint_path: str,
        local_path: str | None,
        host_regex: str | re.Pattern[str],
    ) -> None:
        if not isinstance(uuid, str):
            raise TypeError(f"uuid must be a str, not {type(uuid).__name__}.")
        if not isinstance(endpoint_path, str):
            raise TypeError(
                f"endpoint_path of endpoint {uuid} must be a str, "
                f"not {type(endpoint_path).__name__}.",
            )
        if local_path is not None and not isinstance(local_path, str):
            raise TypeError(
                f"local_path of endpoint {uuid} must be a str or None, "
                f"not {type(local_path).__name__}.",
            )
        if not isinstance(host_regex, str | re.Pattern):
            raise TypeError(
                f"host_regex of endpoint {uuid} must be a str or re.Pattern, "
                f"not {type(host_regex).__name__}.",
            )
        self.uuid = uuid
        self.endpoint_path = endpoint_path
        self.local_path = local_path
        self.host_regex = host_regex

    @property
    def _pattern(self) -> str:
        regex = self.host_regex
        return regex.pattern if isinstance(regex, re.Pattern) else regex

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GlobusEndpoint):
            return NotImplemented
        return (
            self.uuid == other.uuid
            and self.endpoint_path == other.endpoint_path
            and self.local_path == other.local_path
            and self._pattern == other._pattern
        )

    def __hash__(self) -> int:
        return hash((self.uuid, self.endpoint_path, self.local_path, self._pattern))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(uuid='{self.uuid}', "
            f"endpoint_path='{self.endpoint_path}', local_path='{self.local_path}', "
            f"host_regex='{self._pattern}')"
        )


class GlobusEndpoints:
    """A non-empty collection of endpoints with distinct UUIDs.

    Args:
        endpoints: The endpoints.

    Raises:
        GlobusEndpointError: (a `ValueError`) if `endpoints` is empty or two of them
            share a UUID (the message names it).
    """

    def __init__(self, endpoints: Collection[GlobusEndpoint]) -> None:
        if len(endpoints) == 0:
            raise GlobusEndpointError(
                "GlobusEndpoints needs at least one GlobusEndpoint.",
            )
        self._endpoints: dict[str, GlobusEndpoint] = {}
        for endpoint in endpoints:
            if endpoint.uuid in self._endpoints:
                raise GlobusEndpointError(
                    f"Endpoint UUID {endpoint.uuid} is given more than once: each "
                    "GlobusEndpoint needs its own UUID.",
                )
            self._endpoints[endpoint.uuid] = endpoint

    def __getitem__(self, uuid: str) -> GlobusEndpoint:
        try:
            return self._endpoints[uuid]
        except KeyError:
            raise KeyError(f"Endpoint with UUID {uuid} does not exist.") from None

    def __iter__(self) -> Iterator[GlobusEndpoint]:
        return iter(list(self._endpoints.values()))

    def __len__(self) -> int:
        return len(self._endpoints)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GlobusEndpoints):
            return NotImplemented
        return self._endpoints == other._endpoints

    __hash__ = None  # type: ignore[assignment]  # mutable-looking container

    def __repr__(self) -> str:
        inner = ", ".join(repr(ep) for ep in self._endpoints.values())
        return f"{type(self).__name__}([{inner}])"

    @classmethod
    def from_dict(cls, json_object: Mapping[str, Mapping[str, Any]]) -> Self:
        """Build the collection from a mapping of endpoint UUID to its fields.

        The format (also what `dict()` returns)::

            {
                "<endpoint uuid>": {
                    "endpoint_path": "/path/on/endpoint",
                    "local_path": "/path/on/host",
                    "host_regex": "host-[0-9]+",
                },
                ...
            }

        Raises:
            GlobusEndpointError: if an entry misses a field or the mapping is empty.
            TypeError: if a field has the wrong type.
        """
        endpoints = []
        for ep_uuid, fields in json_object.items():
            missing = {"endpoint_path", "local_path", "host_regex"} - set(fields)
            if missing:
                raise GlobusEndpointError(
                    f"Endpoint {ep_uuid} misses {', '.join(sorted(missing))}.",
                )
            endpoints.append(
                GlobusEndpoint(
                    uuid=ep_uuid,
                    endpoint_path=fields["endpoint_path"],
                    local_path=fields["local_path"],
                    host_regex=fields["host_regex"],
                ),
            )
        return cls(endpoints)

    @classmethod
    def from_json(cls, json_file: str) -> Self:
        """Build the collection from a JSON file in the `from_dict` format.

        Raises:
            OSError: if the file cannot be read.
            json.JSONDecodeError: if the file is not JSON.
            GlobusEndpointError: as `from_dict`.
        """
        with open(json_file) as f:
            return cls.from_dict(json.load(f))

    def dict(self) -> dict[str, dict[str, Any]]:
        """Return the `from_dict` form (patterns become their source strings)."""
        return {
            ep.uuid: {
                "endpoint_path": ep.endpoint_path,
                "local_path": ep.local_path,
                "host_regex": ep._pattern,
            }
            for ep in self._endpoints.values()
        }

    def get_by_host(self, host: str) -> GlobusEndpoint:
        """Return the first endpoint whose `host_regex` fully matches `host`.

        Raises:
            GlobusEndpointError: (a `ValueError`) if no endpoint matches; the message
                names the host and the patterns tried.
        """
        for endpoint in self._endpoints.values():
            if re.fullmatch(endpoint.host_regex, host) is not None:
                return endpoint
        patterns = ", ".join(
            f"{ep.uuid}: {ep._pattern!r}" for ep in self._endpoints.values()
        )
        raise GlobusEndpointError(
            f"Cannot find endpoint matching host {host!r} (host_regex of each "
            f"endpoint: {patterns}).",
        )


class GlobusKey(NamedTuple):
    """Key of an object stored with a `GlobusConnector`.

    Keys compare (and hash) by `filename` only: the task IDs tell how to wait for
    the object, not which object it is.
    """

    filename: str
    """Name of the object's file in each endpoint's directory (a UUID4 string)."""
    task_id: str | tuple[str, ...]
    """Transfer task(s) copying the file to the other endpoints (a single string in
    keys made by very old releases)."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, tuple) and len(other) > 0 and self[0] == other[0]

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash(self[0])


def _task_ids(task_id: str | tuple[str, ...]) -> tuple[str, ...]:
    return (task_id,) if isinstance(task_id, str) else tuple(task_id)


@contextmanager
def _globus_errors(
    action: str, *, endpoint: str, task_id: str | None = None
) -> Iterator[None]:
    """Translate globus-sdk errors raised while doing `action` on `endpoint`."""
    subject = (
        f"task {task_id} (endpoint {endpoint})" if task_id else f"endpoint {endpoint}"
    )
    try:
        yield
    except globus_sdk.GlobusAPIError as exc:
        if exc.http_status in (401, 403):
            raise GlobusAuthError(
                f"Globus refused to {action} for {subject}: {exc.code} "
                f"({exc.message}). The Globus tokens may have expired or lack "
                "consent: run `proxystore-globus-auth login` (add `-c "
                f"{endpoint}` if the collection needs data_access consent).",
                getattr(exc, "_underlying_response", None),
            ) from exc
        raise GlobusTransferError(
            f"Globus could not {action} for {subject}: HTTP {exc.http_status} "
            f"{exc.code} ({exc.message}).",
            task_id=task_id,
            endpoint=endpoint,
        ) from exc
    except globus_sdk.NetworkError as exc:
        raise ConnectorConnectionError(
            f"Cannot reach Globus Transfer to {action} for {subject}: {exc}.",
            address="transfer.api.globus.org",
        ) from exc
    except globus_sdk.GlobusError as exc:
        # Token problems surfaced by the Globus app (e.g. no valid tokens stored).
        raise GlobusAuthError(
            f"Cannot {action} for {subject}: {exc}. Run "
            "`proxystore-globus-auth login` and retry.",
        ) from exc


class GlobusConnector:
    """Store objects as files kept in sync across Globus endpoints.

    Log in once per host with `proxystore-globus-auth login` (or set
    `PROXYSTORE_GLOBUS_CLIENT_ID`/`PROXYSTORE_GLOBUS_CLIENT_SECRET`); without tokens
    the constructor starts an interactive login and waits for it.

    Each put starts `n - 1` Transfer tasks for `n` endpoints, so keep the set small.

    Args:
        endpoints: The endpoints to keep in sync (at least two): a
            `GlobusEndpoints`, a list of `GlobusEndpoint`, or the
            `GlobusEndpoints.from_dict` form.
        polling_interval: Seconds between two checks of an unfinished task.
        sync_level: Transfer sync level (`"exists"`, `"size"`, `"mtime"`,
            `"checksum"`, or 0-3).
        timeout: Seconds `get`/`exists`/`close` wait for a task before raising
            `GlobusTaskTimeoutError`.
        clear: On `close`, delete every endpoint's directory (through Globus).
        buffering: Buffering policy for writing the local files (see `open`).

    Raises:
        GlobusEndpointError: (a `ValueError`) if `endpoints` has the wrong type,
            fewer than two endpoints, or a duplicate UUID.
        ValueError: if `sync_level` is not one Transfer knows.
    """

    def __init__(
        self,
        endpoints: GlobusEndpoints | list[GlobusEndpoint] | dict[str, dict[str, Any]],
        polling_interval: float = 1,
        sync_level: SyncLevel = "mtime",
        timeout: float = 60,
        clear: bool = True,
        buffering: int = -1,
    ) -> None:
        if isinstance(endpoints, GlobusEndpoints):
            self.endpoints = endpoints
        elif isinstance(endpoints, list):
            self.endpoints = GlobusEndpoints(endpoints)
        elif isinstance(endpoints, dict):
            self.endpoints = GlobusEndpoints.from_dict(endpoints)
        else:
            raise GlobusEndpointError(
                "endpoints must be GlobusEndpoints, a list of GlobusEndpoint or a "
                f"dict, not {type(endpoints).__name__}.",
            )
        if len(self.endpoints) < 2:
            only = next(iter(self.endpoints)).uuid
            raise GlobusEndpointError(
                f"At least two Globus endpoints are required (got only {only}).",
            )
        if sync_level not in _SYNC_LEVELS or isinstance(sync_level, bool):
            raise ValueError(
                f"sync_level must be one of {', '.join(map(repr, _SYNC_LEVELS))}, "
                f"not {sync_level!r}.",
            )
        if polling_interval <= 0 or timeout < 0:
            raise ValueError(
                "polling_interval must be positive and timeout not negative "
                f"(got {polling_interval} and {timeout}).",
            )
        self.polling_interval = polling_interval
        self.sync_level = sync_level
        self.timeout = timeout
        self.clear = clear
        self.buffering = buffering
        self._closed = False
        self._lock = threading.Lock()
        self._local: GlobusEndpoint | None = None
        self._files: FileConnector | None = None
        # Terminal task states seen so far: a finished task never changes again,
        # so repeated get/exists calls cost no request.
        self._succeeded: set[str] = set()
        self._failed: dict[str, str] = {}
        self._transfer_client = get_transfer_client(
            collections=[ep.uuid for ep in self.endpoints],
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *args: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(endpoints={self.endpoints})"

    # ------------------------------------------------------------- locations

    def _get_local_endpoint(self) -> GlobusEndpoint:
        """Return the endpoint whose directory this host sees."""
        if self._local is None:
            self._local = self.endpoints.get_by_host(hostname())
        return self._local

    def _get_filepath(
        self, filename: str, endpoint: GlobusEndpoint | None = None
    ) -> str:
        """Return the local path of `filename` in `endpoint`'s directory.

        Raises:
            GlobusEndpointError: if the endpoint has no `local_path`.
        """
        endpoint = self._get_local_endpoint() if endpoint is None else endpoint
        if endpoint.local_path is None:
            raise GlobusEndpointError(
                f"Endpoint {endpoint.uuid} has no local_path, so this host "
                f"({hostname()}) cannot read or write its files.",
            )
        return os.path.join(os.path.expanduser(endpoint.local_path), filename)

    def _local_files(self) -> FileConnector:
        if self._files is None:
            with self._lock:
                if self._files is None:
                    self._files = FileConnector(
                        self._get_filepath(""), clear=False, buffering=self.buffering
                    )
        return self._files

    # ------------------------------------------------------------- tasks

    def _task_status(self, task_id: str, endpoint: str) -> str | None:
        """Return the task's status, or `None` if Transfer does not know it."""
        try:
            with _globus_errors(
                "look up the transfer", endpoint=endpoint, task_id=task_id
            ):
                task = self._transfer_client.get_task(task_id)
        except GlobusTransferError as exc:
            cause = exc.__cause__
            if (
                isinstance(cause, globus_sdk.GlobusAPIError)
                and cause.http_status in _UNKNOWN_TASK_STATUSES
            ):
                return None
            raise
        status = str(task["status"])
        if status == "FAILED":
            self._failed[task_id] = str(task.get("nice_status") or "FAILED")
        elif status == "SUCCEEDED":
            self._succeeded.add(task_id)
        return status

    def _validate_task_id(self, task_ids: str | tuple[str, ...]) -> bool:
        """Return whether Transfer knows every task in `task_ids`."""
        local = self._get_local_endpoint().uuid
        return all(
            tid in self._succeeded
            or tid in self._failed
            or self._task_status(tid, local) is not None
            for tid in _task_ids(task_ids)
        )

    def _wait_on_tasks(self, task_ids: str | tuple[str, ...]) -> bool:
        """Wait until every task has finished.

        Returns:
            `False` if a task is unknown to Transfer (a key from another service or
            a forged one), `True` once all have succeeded.

        Raises:
            GlobusTaskFailedError: if a task failed (names the task).
            GlobusTransferError: if Transfer refuses the status lookup.
            GlobusTaskTimeoutError: if a task is unfinished after `timeout` seconds.
        """
        endpoint = self._get_local_endpoint().uuid
        deadline = time.monotonic() + self.timeout
        for tid in _task_ids(task_ids):
            status: str | None = "SUCCEEDED" if tid in self._succeeded else None
            while tid not in self._succeeded and tid not in self._failed:
                status = self._task_status(tid, endpoint)
                if status is None:
                    return False
                if status in ("SUCCEEDED", "FAILED"):
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise GlobusTaskTimeoutError(
                        f"Globus task {tid} did not complete within the timeout "
                        f"of {self.timeout} s (last status: {status}).",
                        task_id=tid,
                    )
                time.sleep(min(self.polling_interval, remaining))
            if tid in self._failed:
                raise GlobusTaskFailedError(
                    f"Globus transfer task {tid} failed ({self._failed[tid]}); "
                    "the object it carried is not available.",
                    task_id=tid,
                    endpoint=endpoint,
                )
        return True

    def _submit(
        self,
        task: globus_sdk.TransferData | globus_sdk.DeleteData,
        endpoint: str,
    ) -> str:
        action = (
            "delete files"
            if isinstance(task, globus_sdk.DeleteData)
            else "start a transfer"
        )
        with _globus_errors(action, endpoint=endpoint):
            if isinstance(task, globus_sdk.DeleteData):
                response = self._transfer_client.submit_delete(task)
            else:
                response = self._transfer_client.submit_transfer(task)
        task_id = str(response["task_id"])
        logger.debug("Submitted Globus task %s (%s on %s)", task_id, action, endpoint)
        return task_id

    def _cancel(self, task_ids: Sequence[str]) -> None:
        for tid in task_ids:
            with suppress(globus_sdk.GlobusError):
                self._transfer_client.cancel_task(tid)

    def _transfer_files(
        self, filenames: str | Sequence[str], delete: bool = False
    ) -> tuple[str, ...]:
        """Start one task per other endpoint copying (or deleting) `filenames`.

        Returns:
            The task IDs, one per destination endpoint.

        Raises:
            GlobusTransferError, GlobusAuthError: if a task cannot be submitted;
                tasks already submitted for the other endpoints are cancelled.
        """
        names = [filenames] if isinstance(filenames, str) else list(filenames)
        src = self._get_local_endpoint()
        submitted: list[str] = []
        try:
            for dst in self.endpoints:
                if dst.uuid == src.uuid:
                    continue
                task: globus_sdk.TransferData | globus_sdk.DeleteData
                if delete:
                    task = globus_sdk.DeleteData(
                        dst.uuid,
                        label=f"proxystore evict {len(names)} object(s)",
                        ignore_missing=True,
                        notify_on_succeeded=False,
                        notify_on_failed=False,
                        notify_on_inactive=False,
                    )
                    for name in names:
                        task.add_item(_endpoint_join(dst.endpoint_path, name))
                else:
                    task = globus_sdk.TransferData(
                        src.uuid,
                        dst.uuid,
                        label=f"proxystore put {len(names)} object(s)",
                        sync_level=self.sync_level,
                        notify_on_succeeded=False,
                        notify_on_failed=False,
                        notify_on_inactive=False,
                    )
                    for name in names:
                        task.add_item(
                            _endpoint_join(src.endpoint_path, name),
                            _endpoint_join(dst.endpoint_path, name),
                        )
                submitted.append(self._submit(task, dst.uuid))
        except BaseException:
            self._cancel(submitted)
            raise
        return tuple(submitted)

    # ------------------------------------------------------------- lifecycle

    def close(self, clear: bool | None = None) -> None:
        """Close the connector, deleting every endpoint's directory when clearing.

        Call it once every proxy is resolved: clearing deletes the objects on all
        endpoints (one recursive Globus delete task each, waited for). Closing twice
        is harmless.

        Args:
            clear: Override the `clear` given to the constructor.

        Raises:
            GlobusTransferError, GlobusAuthError: if a delete task cannot be
                submitted or fails.
            GlobusTaskTimeoutError: if a delete task does not finish in `timeout`.
        """
        if self._closed:
            return
        self._closed = True
        if not (self.clear if clear is None else clear):
            return
        for endpoint in self.endpoints:
            task = globus_sdk.DeleteData(
                endpoint.uuid,
                label="proxystore close",
                recursive=True,
                ignore_missing=True,
                notify_on_succeeded=False,
                notify_on_failed=False,
                notify_on_inactive=False,
            )
            task.add_item(endpoint.endpoint_path)
            task_id = self._submit(task, endpoint.uuid)
            self._wait_on_tasks(task_id)

    def config(self) -> dict[str, Any]:
        """Return the options that `from_config` takes."""
        return {
            "endpoints": self.endpoints.dict(),
            "polling_interval": self.polling_interval,
            "sync_level": self.sync_level,
            "timeout": self.timeout,
            "clear": self.clear,
            "buffering": self.buffering,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Self:
        """Create a connector from the output of `config`."""
        return cls(**config)

    # ------------------------------------------------------------- operations

    def _ready(self, key: GlobusKey) -> bool:
        """Wait for the key's tasks; `False` if Transfer does not know them.

        Raises:
            GlobusTaskFailedError: if a task failed; the local copy of the object
                is removed first, so nothing claims the object exists.
            GlobusTransferError: if Transfer refuses the status lookup.
            GlobusTaskTimeoutError: if a task is unfinished after `timeout`.
        """
        try:
            return self._wait_on_tasks(key.task_id)
        except GlobusTaskFailedError:
            with suppress(OSError, ConnectorError):
                self._local_files().evict(FileKey(key.filename))
            raise

    def evict(self, key: GlobusKey) -> None:
        """Remove the object locally and start deleting it on the other endpoints.

        A transfer still running is waited for first, so it cannot re-create the
        file after the delete. A missing object is ignored.

        Raises:
            GlobusTaskTimeoutError: if the object's transfer is still running after
                `timeout`.
            GlobusTransferError, GlobusAuthError: if the delete cannot be submitted.
        """
        try:
            known = self._wait_on_tasks(key.task_id)
        except GlobusTaskFailedError:
            known = False  # the copies never arrived: only the local file remains
        local = self._local_files()
        present = local.exists(FileKey(key.filename))
        local.evict(FileKey(key.filename))
        if known and present:
            self._transfer_files(key.filename, delete=True)

    def exists(self, key: GlobusKey) -> bool:
        """Return whether the object exists, waiting for its transfer first.

        Returns:
            `False` when the key's tasks are unknown to Transfer or failed (the
            local copy of a failed transfer is removed), else whether the file is in
            the local endpoint's directory.

        Raises:
            GlobusTaskTimeoutError: if a transfer is unfinished after `timeout`.
            GlobusTransferError: if Transfer refuses the status lookup (the local
                copy is kept: the task may well have succeeded).
        """
        try:
            if not self._ready(key):
                return False
        except GlobusTaskFailedError:
            return False
        return self._local_files().exists(FileKey(key.filename))

    def get(self, key: GlobusKey) -> bytes | memoryview | None:
        """Return the object, waiting for its transfer first.

        Returns:
            The bytes, or `None` when the key's tasks are unknown to Transfer or the
            file is gone (evicted).

        Raises:
            GlobusTaskFailedError: if the object's transfer failed (names the task).
            GlobusTransferError: if Transfer refuses the status lookup.
            GlobusTaskTimeoutError: if a transfer is unfinished after `timeout`.
        """
        if not self._ready(key):
            return None
        return self._local_files().get(FileKey(key.filename))

    def get_batch(self, keys: Sequence[GlobusKey]) -> list[BytesLike | None]:
        """Return each object (`None` where missing), in order (see `get`)."""
        return [self.get(key) for key in keys]

    def put(self, obj: BytesLike) -> GlobusKey:
        """Write the object locally and start transferring it to the other endpoints.

        Raises:
            GlobusEndpointError: if no endpoint matches this host.
            GlobusTransferError, GlobusAuthError: if a transfer cannot be started;
                the local file is removed, so no key to it exists.
            ConnectorConnectionError: if the local file cannot be written.
        """
        return self.put_batch([obj])[0]

    def put_batch(self, objs: Sequence[BytesLike]) -> list[GlobusKey]:
        """Write the objects locally and transfer them in one task per endpoint.

        Raises the same exceptions as `put`; on failure none of the objects is left
        behind.
        """
        if not objs:
            return []
        local = self._local_files()
        names = [str(uuid.uuid4()) for _ in objs]
        try:
            for name, obj in zip(names, objs, strict=True):
                local.set(FileKey(name), obj)
            task_ids = self._transfer_files(names)
        except BaseException:
            for name in names:
                with suppress(OSError, ConnectorError):
                    local.evict(FileKey(name))
            raise
        return [GlobusKey(filename=name, task_id=task_ids) for name in names]


def _endpoint_join(directory: str, filename: str) -> str:
    # Paths on an endpoint are POSIX paths whatever the local OS.
    return directory.rstrip("/") + "/" + filename if directory else filename
