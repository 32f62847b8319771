"""Hypothesis laws of the Globus connector's plain-data parts (no service needed).

- `GlobusEndpoints.from_dict(eps.dict())` rebuilds an equal collection, also through
  JSON (the form the connector's config travels in);
- `get_by_host` finds exactly the endpoint whose host pattern is the host's literal
  name, and fails with `GlobusEndpointError` (a `ValueError`) for any other host;
- two `GlobusKey`s are equal, and hash equal, exactly when their filenames are.
"""

from __future__ import annotations

import json
import pickle
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxystore.connectors.globus import (
    GlobusEndpoint,
    GlobusEndpointError,
    GlobusEndpoints,
    GlobusKey,
)

_names = st.text(
    alphabet=st.characters(categories=["L", "N"], include_characters="-_."),
    min_size=1,
    max_size=20,
)
_paths = st.lists(_names, max_size=4).map(lambda parts: "/" + "/".join(parts))


@st.composite
def endpoint_sets(draw: st.DrawFn) -> GlobusEndpoints:
    uuids = draw(st.lists(st.uuids().map(str), min_size=1, max_size=5, unique=True))
    hosts = draw(
        st.lists(_names, min_size=len(uuids), max_size=len(uuids), unique=True)
    )
    endpoints = []
    for ep_uuid, host in zip(uuids, hosts, strict=True):
        pattern: str | re.Pattern[str] = re.escape(host)
        if draw(st.booleans()):
            pattern = re.compile(pattern)
        local = draw(st.one_of(st.none(), _paths))
        endpoints.append(GlobusEndpoint(ep_uuid, draw(_paths), local, pattern))
    return GlobusEndpoints(endpoints)


def _host_of(endpoint: GlobusEndpoint) -> str:
    regex = endpoint.host_regex
    pattern = regex.pattern if isinstance(regex, re.Pattern) else regex
    return re.sub(r"\\(.)", r"\1", pattern)  # undo re.escape


@given(endpoint_sets())
def test_dict_round_trip(endpoints: GlobusEndpoints) -> None:
    data = endpoints.dict()
    assert GlobusEndpoints.from_dict(data) == endpoints
    through_json: dict[str, dict[str, Any]] = json.loads(json.dumps(data))
    assert GlobusEndpoints.from_dict(through_json).dict() == data
    assert [ep.uuid for ep in endpoints] == list(data)


@given(endpoint_sets(), st.data())
def test_get_by_host_finds_the_matching_endpoint(
    endpoints: GlobusEndpoints, data: st.DataObject
) -> None:
    endpoint = data.draw(st.sampled_from(list(endpoints)))
    assert endpoints.get_by_host(_host_of(endpoint)) is endpoint
    stranger = data.draw(_names.filter(lambda h: h not in map(_host_of, endpoints)))
    with pytest.raises(GlobusEndpointError, match=re.escape(repr(stranger))):
        endpoints.get_by_host(stranger)


@given(
    st.uuids().map(str),
    st.uuids().map(str),
    st.lists(st.uuids().map(str), max_size=3).map(tuple),
    st.lists(st.uuids().map(str), max_size=3).map(tuple),
)
def test_key_identity_is_the_filename(
    a: str, b: str, tasks_a: tuple[str, ...], tasks_b: tuple[str, ...]
) -> None:
    key_a, key_b = GlobusKey(a, tasks_a), GlobusKey(b, tasks_b)
    assert (key_a == key_b) == (a == b)
    assert (key_a != key_b) == (a != b)
    assert GlobusKey(a, tasks_b) == key_a
    assert hash(GlobusKey(a, tasks_b)) == hash(key_a)
    restored = pickle.loads(pickle.dumps(key_a))
    assert restored == key_a
    assert restored.task_id == tasks_a
