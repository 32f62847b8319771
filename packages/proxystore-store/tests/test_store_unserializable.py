"""`Store.proxy` of an object that cannot be serialized names the part to blame."""

from __future__ import annotations

import pathlib
import threading

import pytest

from proxystore.connectors.file import FileConnector
from proxystore.connectors.local import LocalConnector
from proxystore.serialize import SerializationError
from proxystore.store import Store


@pytest.mark.parametrize("kind", ["local", "file"])
def test_proxy_of_a_dict_holding_a_lock_names_the_lock(
    tmp_path: pathlib.Path, kind: str
) -> None:
    connector = LocalConnector() if kind == "local" else FileConnector(str(tmp_path))
    with Store(f"culprit-{kind}", connector) as store:
        with pytest.raises(SerializationError) as info:
            store.proxy({"ok": 1, "bad": threading.Lock()})
        message = str(info.value)
        assert "obj['bad'] is a _thread.lock, which cannot be serialized" in message
        with pytest.raises(SerializationError, match=r"obj\[1\]\.guard"):
            store.put([0, _Holder(threading.Lock())])
        if kind == "file":
            assert list(tmp_path.iterdir()) == []  # nothing half-written
        assert store.get(store.put({"ok": 1})) == {"ok": 1}  # the store still works


class _Holder:
    def __init__(self, guard: object) -> None:
        self.guard = guard
