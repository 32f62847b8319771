"""Tests of proxystore.connectors.globus.

No Globus service is reachable here, so the Transfer API is served at the HTTP
boundary: `responses` (what `globus_sdk.testing` registers its responses with)
intercepts every request the real `globus_sdk.TransferClient` sends. `TransferService`
below plays the service: it records each request, answers with the bodies of
`globus_sdk.testing`'s registered responses, and performs the copy or delete on real
local directories that stand in for the endpoints' storage.
"""

from __future__ import annotations

import importlib
import itertools
import json
import os
import pathlib
import pickle
import re
import shutil
import sys
import uuid
from collections.abc import Iterator
from typing import Any
from unittest import mock

import globus_sdk
import globus_sdk.testing
import pytest
import responses
from globus_sdk.testing import RegisteredResponse, get_response_set

from proxystore.connectors.exceptions import ConnectorTimeoutError
from proxystore.connectors.globus import (
    GlobusAuthError,
    GlobusConnector,
    GlobusEndpoint,
    GlobusEndpointError,
    GlobusEndpoints,
    GlobusKey,
    GlobusTaskFailedError,
    GlobusTaskTimeoutError,
    GlobusTransferError,
)
from proxystore.connectors.protocols import Connector
from proxystore.store import Store
from proxystore.utils.environment import hostname
from tests.conformance.connector_suite import ConnectorSuite

EP_A = "aaaaaaaa-0000-4000-8000-00000000000a"
EP_B = "bbbbbbbb-0000-4000-8000-00000000000b"
HOST_B = "globus-test-host-b"


def _static_contracts(connector: GlobusConnector) -> None:
    # Never called: mypy proves GlobusConnector satisfies the Connector protocol.
    _c: Connector[GlobusKey] = connector


def _url(path: str) -> str:
    return RegisteredResponse(service="transfer", path=path).full_url


def _template(method: Any) -> dict[str, Any]:
    response = get_response_set(method).lookup("default")
    assert isinstance(response, RegisteredResponse)
    body = response.json
    assert isinstance(body, dict)
    return dict(body)


class TransferService:
    """Globus Transfer, as far as the connector uses it, over local directories.

    Args:
        roots: Local directory standing in for each endpoint's storage root; an
            endpoint path `/x/y` on endpoint `E` is the file `roots[E]/x/y`.
    """

    def __init__(self, roots: dict[str, pathlib.Path]) -> None:
        self.roots = roots
        self.outcome = "SUCCEEDED"  # status given to newly submitted tasks
        self.tasks: dict[str, dict[str, Any]] = {}
        self.submitted: list[dict[str, Any]] = []
        self.reject_submit: tuple[int, str] | None = None
        self._ids = itertools.count(1)

    def install(self, mock: responses.RequestsMock) -> None:
        mock.add_callback(
            "GET", _url("/v0.10/submission_id"), callback=self._submission_id
        )
        mock.add_callback("POST", _url("/v0.10/transfer"), callback=self._transfer)
        mock.add_callback("POST", _url("/v0.10/delete"), callback=self._delete)
        task = re.compile(re.escape(_url("/v0.10/task/")) + r"([^/]+)$")
        mock.add_callback("GET", task, callback=self._get_task)
        cancel = re.compile(re.escape(_url("/v0.10/task/")) + r"([^/]+)/cancel$")
        mock.add_callback("POST", cancel, callback=self._cancel)

    # ------------------------------------------------------------- helpers

    def _local(self, endpoint: str, path: str) -> pathlib.Path:
        return self.roots[endpoint] / path.lstrip("/")

    def _new_task(self, kind: str, endpoint: str) -> str:
        task_id = str(uuid.UUID(int=next(self._ids)))
        self.tasks[task_id] = {
            "DATA_TYPE": "task",
            "task_id": task_id,
            "type": kind,
            "status": self.outcome,
            "nice_status": "PERMISSION_DENIED" if self.outcome == "FAILED" else "OK",
            "destination_endpoint_id": endpoint,
        }
        return task_id

    @staticmethod
    def _json(status: int, body: dict[str, Any]) -> tuple[int, dict[str, str], str]:
        return status, {"Content-Type": "application/json"}, json.dumps(body)

    def _error(self, status: int, code: str) -> tuple[int, dict[str, str], str]:
        return self._json(
            status, {"code": code, "message": f"{code} (test)", "request_id": "t"}
        )

    # ------------------------------------------------------------- routes

    def _submission_id(self, request: Any) -> tuple[int, dict[str, str], str]:
        return self._json(200, {"value": str(uuid.uuid4())})

    def _transfer(self, request: Any) -> tuple[int, dict[str, str], str]:
        body = json.loads(request.body)
        self.submitted.append(body)
        if self.reject_submit is not None:
            return self._error(*self.reject_submit)
        src, dst = body["source_endpoint"], body["destination_endpoint"]
        task_id = self._new_task("TRANSFER", dst)
        if self.outcome == "SUCCEEDED":
            for item in body["DATA"]:
                target = self._local(dst, item["destination_path"])
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(self._local(src, item["source_path"]), target)
        answer = _template(globus_sdk.TransferClient.submit_transfer)
        answer.update(task_id=task_id, submission_id=body["submission_id"])
        return self._json(202, answer)

    def _delete(self, request: Any) -> tuple[int, dict[str, str], str]:
        body = json.loads(request.body)
        self.submitted.append(body)
        if self.reject_submit is not None:
            return self._error(*self.reject_submit)
        endpoint = body["endpoint"]
        task_id = self._new_task("DELETE", endpoint)
        if self.outcome == "SUCCEEDED":
            for item in body["DATA"]:
                target = self._local(endpoint, item["path"])
                if target.is_dir() and body.get("recursive"):
                    shutil.rmtree(target)
                elif target.exists():
                    target.unlink()
        answer = _template(globus_sdk.TransferClient.submit_delete)
        answer.update(task_id=task_id, submission_id=body["submission_id"])
        return self._json(202, answer)

    def _get_task(self, request: Any) -> tuple[int, dict[str, str], str]:
        task_id = request.url.rsplit("/", 1)[1]
        if task_id not in self.tasks:
            return self._error(404, "ClientError.NotFound")
        return self._json(200, self.tasks[task_id])

    def _cancel(self, request: Any) -> tuple[int, dict[str, str], str]:
        task_id = request.url.rsplit("/", 2)[1]
        self.tasks[task_id]["status"] = "FAILED"
        return self._json(200, _template(globus_sdk.TransferClient.cancel_task))


@pytest.fixture
def service(tmp_path: pathlib.Path) -> Iterator[TransferService]:
    roots = {EP_A: tmp_path / "site-a", EP_B: tmp_path / "site-b"}
    for root in roots.values():
        root.mkdir()
    fake = TransferService(roots)
    with (
        responses.RequestsMock(assert_all_requests_are_fired=False) as mocked,
        mock.patch(
            "proxystore.connectors.globus.get_transfer_client",
            side_effect=lambda **_: globus_sdk.TransferClient(
                authorizer=globus_sdk.AccessTokenAuthorizer("test-token")
            ),
        ),
    ):
        fake.install(mocked)
        yield fake


@pytest.fixture
def endpoints(service: TransferService) -> GlobusEndpoints:
    return GlobusEndpoints(
        [
            GlobusEndpoint(
                EP_A,
                "/store",
                str(service.roots[EP_A] / "store"),
                re.escape(hostname()),
            ),
            GlobusEndpoint(EP_B, "/store", str(service.roots[EP_B] / "store"), HOST_B),
        ]
    )


def _connector(
    endpoints: GlobusEndpoints | list[GlobusEndpoint] | dict[str, dict[str, Any]],
    **options: Any,
) -> GlobusConnector:
    options.setdefault("polling_interval", 0.01)
    options.setdefault("timeout", 5)
    return GlobusConnector(endpoints, **options)


class TestGlobusConformance(ConnectorSuite):
    @pytest.fixture
    def connector(self, endpoints: GlobusEndpoints) -> Iterator[GlobusConnector]:
        with _connector(endpoints) as connector:
            yield connector


# ----------------------------------------------------------------- endpoints


def _ep(uuid: str = "1", host: str = "localhost") -> GlobusEndpoint:
    return GlobusEndpoint(uuid, "/path", "/path", host)


@pytest.mark.parametrize(
    "bad",
    [
        {"uuid": 1},
        {"endpoint_path": 1},
        {"local_path": 1},
        {"host_regex": 1},
    ],
)
def test_endpoint_type_checks(bad: dict[str, Any]) -> None:
    fields: dict[str, Any] = {
        "uuid": "u",
        "endpoint_path": "/p",
        "local_path": "/l",
        "host_regex": "h",
    }
    fields.update(bad)
    with pytest.raises(TypeError, match=next(iter(bad))):
        GlobusEndpoint(**fields)


def test_endpoint_equality_and_repr() -> None:
    assert _ep("1") == _ep("1")
    assert _ep("1") != _ep("2")
    assert GlobusEndpoint("1", "/p", "/p", re.compile("h")) == GlobusEndpoint(
        "1", "/p", "/p", "h"
    )
    assert _ep("1") != "1"
    assert len({_ep("1"), _ep("1")}) == 1
    assert "uuid='1'" in repr(_ep("1"))
    assert "uuid='1'" in repr(GlobusEndpoints([_ep("1")]))


def test_endpoints_collection() -> None:
    ep4 = GlobusEndpoint("4", "/path", "/path", r"^\w{4}4$")
    eps = GlobusEndpoints([_ep("1"), _ep("2"), ep4])
    assert len(eps) == 3
    assert eps["2"] == _ep("2")
    assert [ep.uuid for ep in eps] == ["1", "2", "4"]
    with pytest.raises(KeyError, match="-1"):
        eps["-1"]
    assert eps.get_by_host("localhost") == _ep("1")  # first match wins
    assert eps.get_by_host("host4") == ep4
    with pytest.raises(GlobusEndpointError, match="'host3'") as info:
        eps.get_by_host("host3")
    assert isinstance(info.value, ValueError)
    assert "4: " in str(info.value)


def test_endpoints_bad_input_names_the_problem() -> None:
    with pytest.raises(ValueError, match="at least one"):
        GlobusEndpoints([])
    with pytest.raises(GlobusEndpointError, match="UUID 1 is given more than once"):
        GlobusEndpoints([_ep("1"), _ep("1", host="other")])
    with pytest.raises(GlobusEndpointError, match="u1 misses host_regex"):
        GlobusEndpoints.from_dict({"u1": {"endpoint_path": "/", "local_path": "/"}})


def test_endpoints_dict_and_json_round_trip(tmp_path: pathlib.Path) -> None:
    data: dict[str, dict[str, Any]] = {
        "UUID1": {"endpoint_path": "/~/", "local_path": "/home/a/", "host_regex": "h1"},
        "UUID2": {"endpoint_path": "/~/", "local_path": None, "host_regex": "h2"},
    }
    assert GlobusEndpoints.from_dict(data).dict() == data
    path = tmp_path / "endpoints.json"
    path.write_text(json.dumps(data))
    loaded = GlobusEndpoints.from_json(str(path))
    assert loaded == GlobusEndpoints.from_dict(data)
    assert loaded["UUID2"].local_path is None
    with_pattern = {"U": {**data["UUID1"], "host_regex": re.compile("h1")}}
    assert GlobusEndpoints.from_dict(with_pattern).dict()["U"]["host_regex"] == "h1"


def test_key_equality_is_by_filename() -> None:
    key = GlobusKey("a", ("t1",))
    assert key == GlobusKey("a", ("t2",))
    assert key == ("a", "c")
    assert key != ("b", ("t1",))
    assert key != "a"
    assert hash(key) == hash(GlobusKey("a", "other"))
    assert pickle.loads(pickle.dumps(key)) == key


# ----------------------------------------------------------------- construction


def test_constructor_accepts_every_endpoints_form(endpoints: GlobusEndpoints) -> None:
    a = _connector(endpoints, clear=False)
    b = _connector(list(endpoints), clear=False)
    c = _connector(endpoints.dict(), clear=False)
    assert a.config() == b.config() == c.config()
    assert GlobusConnector.from_config(a.config()).config() == a.config()
    assert EP_A in repr(a)


def test_constructor_bad_input(endpoints: GlobusEndpoints) -> None:
    with pytest.raises(GlobusEndpointError, match="not NoneType"):
        GlobusConnector(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=f"At least two .*only {EP_A}"):
        GlobusConnector([endpoints[EP_A]])
    with pytest.raises(ValueError, match="sync_level"):
        _connector(endpoints, sync_level="sometimes")
    with pytest.raises(ValueError, match="polling_interval"):
        _connector(endpoints, polling_interval=0)


def test_default_transfer_client_asks_consent_for_every_endpoint(
    endpoints: GlobusEndpoints,
) -> None:
    with mock.patch("proxystore.connectors.globus.get_transfer_client") as factory:
        GlobusConnector(endpoints)
    factory.assert_called_once_with(collections=[EP_A, EP_B])


def test_no_endpoint_for_this_host(service: TransferService) -> None:
    eps = [_ep("x", host="nowhere-1"), _ep("y", host="nowhere-2")]
    connector = _connector(eps, clear=False)
    with pytest.raises(GlobusEndpointError, match=re.escape(repr(hostname()))):
        connector.put(b"data")
    assert service.submitted == []


# ----------------------------------------------------------------- requests we send


def test_put_submits_one_transfer_per_other_endpoint(
    endpoints: GlobusEndpoints, service: TransferService
) -> None:
    connector = _connector(endpoints, sync_level="checksum", clear=False)
    key = connector.put(b"payload")
    assert len(service.submitted) == 1
    sent = service.submitted[0]
    assert sent["DATA_TYPE"] == "transfer"
    assert sent["source_endpoint"] == EP_A
    assert sent["destination_endpoint"] == EP_B
    assert sent["sync_level"] == 3  # "checksum", as globus-sdk encodes it
    assert sent["label"] == "proxystore put 1 object(s)"
    assert not any(sent[f"notify_on_{x}"] for x in ("succeeded", "failed", "inactive"))
    [item] = sent["DATA"]
    assert item["source_path"] == f"/store/{key.filename}"
    assert item["destination_path"] == f"/store/{key.filename}"
    assert key.task_id == (sent_task := next(iter(service.tasks)),)
    assert service.tasks[sent_task]["type"] == "TRANSFER"
    # The file side is real: the copy is on "site B".
    assert (service.roots[EP_B] / "store" / key.filename).read_bytes() == b"payload"


def test_put_batch_uses_one_task_for_all_objects(
    endpoints: GlobusEndpoints, service: TransferService
) -> None:
    connector = _connector(endpoints, clear=False)
    keys = connector.put_batch([b"1", b"22", b"333"])
    assert len(service.submitted) == 1
    assert len(service.submitted[0]["DATA"]) == 3
    assert len({k.task_id for k in keys}) == 1
    assert connector.get_batch(keys) == [b"1", b"22", b"333"]


def test_object_put_on_one_host_is_read_on_the_other(
    endpoints: GlobusEndpoints, service: TransferService
) -> None:
    with Store("globus-a", _connector(endpoints, clear=False)) as store_a:
        key = store_a.put({"weights": list(range(100))})
        config = store_a.config()
    with mock.patch("proxystore.connectors.globus.hostname", return_value=HOST_B):
        store_b = Store.from_config(config)
        assert store_b.connector._get_local_endpoint().uuid == EP_B
        assert store_b.get(key) == {"weights": list(range(100))}
        store_b.evict(key)
        # Host B evicts: its copy goes, and a delete task goes to endpoint A.
        assert not (service.roots[EP_B] / "store" / key[0]).exists()
        assert service.submitted[-1]["DATA_TYPE"] == "delete"
        assert service.submitted[-1]["endpoint"] == EP_A
        assert not (service.roots[EP_A] / "store" / key[0]).exists()
        store_b.close(clear=False)


def test_repeated_reads_do_not_poll_finished_tasks(endpoints: GlobusEndpoints) -> None:
    connector = _connector(endpoints, clear=False)
    key = connector.put(b"x")
    with mock.patch.object(
        connector._transfer_client,
        "get_task",
        wraps=connector._transfer_client.get_task,
    ) as get_task:
        assert connector.exists(key)
        assert connector.get(key) == b"x"
        assert connector.get(key) == b"x"
    assert get_task.call_count == 1


def test_close_clear_deletes_every_endpoint_directory(
    endpoints: GlobusEndpoints, service: TransferService
) -> None:
    connector = _connector(endpoints)
    connector.put(b"x")
    assert (service.roots[EP_B] / "store").is_dir()
    before = len(service.submitted)
    connector.close()
    deletes = service.submitted[before:]
    assert sorted(d["endpoint"] for d in deletes) == [EP_A, EP_B]
    assert all(d["recursive"] and d["DATA"][0]["path"] == "/store" for d in deletes)
    assert not (service.roots[EP_A] / "store").exists()
    assert not (service.roots[EP_B] / "store").exists()
    connector.close()  # harmless: nothing more is sent
    assert len(service.submitted) == before + 2


@pytest.mark.parametrize(("default", "override"), [(False, None), (True, False)])
def test_close_without_clear_sends_nothing(
    endpoints: GlobusEndpoints,
    service: TransferService,
    default: bool,
    override: bool | None,
) -> None:
    connector = _connector(endpoints, clear=default)
    connector.close(clear=override)
    assert service.submitted == []


# ----------------------------------------------------------------- task states


def test_failed_transfer_is_a_typed_error_and_no_key_claims_to_exist(
    endpoints: GlobusEndpoints, service: TransferService
) -> None:
    connector = _connector(endpoints, clear=False)
    service.outcome = "FAILED"
    key = connector.put(b"doomed")
    assert isinstance(key.task_id, tuple)
    [task_id] = key.task_id
    with pytest.raises(GlobusTaskFailedError, match=task_id) as info:
        connector.get(key)
    assert isinstance(info.value, GlobusTransferError)
    assert info.value.task_id == task_id
    assert "PERMISSION_DENIED" in str(info.value)
    assert not connector.exists(key)
    assert not (service.roots[EP_A] / "store" / key.filename).exists()
    assert not (service.roots[EP_B] / "store" / key.filename).exists()
    connector.evict(key)  # harmless; no delete is sent for copies that never arrived
    assert [s["DATA_TYPE"] for s in service.submitted] == ["transfer"]


def test_unfinished_transfer_times_out_naming_the_task(
    endpoints: GlobusEndpoints, service: TransferService
) -> None:
    connector = _connector(endpoints, timeout=0.1, polling_interval=0.02, clear=False)
    service.outcome = "ACTIVE"
    key = connector.put(b"slow")
    assert isinstance(key.task_id, tuple)
    [task_id] = key.task_id
    for call in (connector.get, connector.exists):
        with pytest.raises(GlobusTaskTimeoutError, match=task_id) as info:
            call(key)
        assert info.value.task_id == task_id
        assert isinstance(info.value, ConnectorTimeoutError)
        assert isinstance(info.value, RuntimeError)  # what the reference raised
    # Once the service finishes the task, the object is there.
    service.tasks[task_id]["status"] = "SUCCEEDED"
    assert connector.get(key) == b"slow"


def test_unknown_task_means_missing(endpoints: GlobusEndpoints) -> None:
    connector = _connector(endpoints, clear=False)
    key = connector.put(b"x")
    forged = GlobusKey(key.filename, (str(uuid.uuid4()),))
    assert not connector._validate_task_id(forged.task_id)
    assert not connector.exists(forged)
    assert connector.get(forged) is None
    assert connector._validate_task_id(key.task_id)


def test_refused_status_lookup_keeps_the_object(
    endpoints: GlobusEndpoints, service: TransferService
) -> None:
    connector = _connector(endpoints, clear=False)
    key = connector.put(b"kept")
    other = _connector(endpoints, clear=False)  # has not seen the task finish
    refusal = globus_sdk.testing.construct_error(
        http_status=409, body={"code": "Conflict", "message": "busy"}
    )
    assert isinstance(refusal, globus_sdk.GlobusAPIError)
    with (
        mock.patch.object(other._transfer_client, "get_task", side_effect=refusal),
        pytest.raises(GlobusTransferError, match="Conflict") as info,
    ):
        other.exists(key)
    assert not isinstance(info.value, GlobusTaskFailedError)
    # Not a failed transfer: the object stays, and a later lookup finds it.
    assert other.get(key) == b"kept"


def test_rejected_submission_leaves_nothing(
    endpoints: GlobusEndpoints, service: TransferService
) -> None:
    connector = _connector(endpoints, clear=False)
    service.reject_submit = (409, "Conflict.EndpointPaused")
    with pytest.raises(GlobusTransferError, match=EP_B) as info:
        connector.put_batch([b"a", b"b"])
    assert info.value.endpoint == EP_B
    assert "EndpointPaused" in str(info.value)
    assert list((service.roots[EP_A] / "store").iterdir()) == []


def test_expired_token_is_an_auth_error_with_a_hint(
    endpoints: GlobusEndpoints, service: TransferService
) -> None:
    connector = _connector(endpoints, clear=False)
    service.reject_submit = (401, "AuthenticationFailed")
    with pytest.raises(GlobusAuthError, match="proxystore-globus-auth login") as info:
        connector.put(b"x")
    assert EP_B in str(info.value)
    assert isinstance(info.value, PermissionError)
    assert list((service.roots[EP_A] / "store").iterdir()) == []


def test_expired_token_while_waiting(
    endpoints: GlobusEndpoints, service: TransferService
) -> None:
    connector = _connector(endpoints, clear=False)
    key = connector.put(b"x")
    other = _connector(endpoints, clear=False)
    with (
        mock.patch.object(
            other._transfer_client,
            "get_task",
            side_effect=globus_sdk.GlobusError("tokens expired, no refresh token"),
        ),
        pytest.raises(GlobusAuthError, match="tokens expired"),
    ):
        other.get(key)


def test_auth_error_is_also_the_sdks_transfer_api_error(
    endpoints: GlobusEndpoints, service: TransferService
) -> None:
    # Code written for the reference catches the SDK's error on a 401/403.
    connector = _connector(endpoints, clear=False)
    service.reject_submit = (403, "PermissionDenied")
    with pytest.raises(globus_sdk.TransferAPIError) as info:
        connector.put(b"x")
    error = info.value
    assert isinstance(error, GlobusAuthError)
    assert error.http_status == 403
    assert error.code == "PermissionDenied"
    assert isinstance(error.__cause__, globus_sdk.TransferAPIError)
    assert "proxystore-globus-auth login" in str(error)  # our wording stays
    # Without an HTTP answer (no usable tokens) it still reads as a 401.
    bare = GlobusAuthError("no tokens stored; log in")
    assert isinstance(bare, globus_sdk.TransferAPIError)
    assert (bare.http_status, bare.code) == (401, "AuthenticationFailed")
    assert str(bare) == "no tokens stored; log in"
    copy = pickle.loads(pickle.dumps(bare))
    assert isinstance(copy, GlobusAuthError)
    assert str(copy) == str(bare)


# ----------------------------------------------------------------- packaging


def test_import_without_globus_sdk_gives_install_hint() -> None:
    hidden: dict[str, Any] = {
        name: None
        for name in sys.modules
        if name.startswith(("globus_sdk", "proxystore.globus"))
        or name == "proxystore.connectors.globus"
    }
    with mock.patch.dict(sys.modules, hidden):
        del sys.modules["proxystore.connectors.globus"]
        with pytest.raises(ImportError, match=r"proxystore-connectors\[globus\]"):
            importlib.import_module("proxystore.connectors.globus")


def test_local_path_none_cannot_be_the_local_endpoint(
    service: TransferService,
) -> None:
    eps = [
        GlobusEndpoint(EP_A, "/store", None, re.escape(hostname())),
        GlobusEndpoint(EP_B, "/store", str(service.roots[EP_B]), HOST_B),
    ]
    connector = _connector(eps, clear=False)
    with pytest.raises(GlobusEndpointError, match=f"{EP_A} has no local_path"):
        connector.put(b"x")
    assert os.listdir(service.roots[EP_B]) == []
