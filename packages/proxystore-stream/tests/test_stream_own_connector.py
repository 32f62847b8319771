"""Keys of a user's own connector stream to a consumer whose store uses it.

No `trust_modules` call: the consumer's registered store vouches for the key
class of its connector's module. Keys of other modules are still refused.
"""

from __future__ import annotations

import queue
import sys
import types
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from proxystore.store import Store
from proxystore.store.utils import get_key
from proxystore.stream import StreamConsumer, StreamProducer
from proxystore.stream.exceptions import EventDecodeError
from proxystore.stream.shims.queue import QueuePublisher, QueueSubscriber

pytestmark = pytest.mark.timeout(30)


# A user's package (importable by a plain dotted name, unlike a test module that
# pytest imports by file path) holding a connector and its key type.
_USER_MODULE = "streamuser.connectors"
_USER_SOURCE = """
import uuid
from typing import NamedTuple


class TagKey(NamedTuple):
    tag: str


class TagConnector:
    def __init__(self):
        self.data = {}

    def __enter__(self):
        return self

    def __exit__(self, *args):
        self.close()

    def close(self):
        pass

    def config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls()

    def put(self, obj):
        key = TagKey(uuid.uuid4().hex)
        self.data[key.tag] = bytes(obj)
        return key

    def get(self, key):
        return self.data.get(key.tag)

    def exists(self, key):
        return key.tag in self.data

    def evict(self, key):
        self.data.pop(key.tag, None)

    def put_batch(self, objs):
        return [self.put(o) for o in objs]

    def get_batch(self, keys):
        return [self.get(k) for k in keys]
"""


@pytest.fixture
def user_module() -> Iterator[types.ModuleType]:
    package = types.ModuleType("streamuser")
    package.__path__ = []
    module = types.ModuleType(_USER_MODULE)
    sys.modules["streamuser"] = package
    sys.modules[_USER_MODULE] = module
    try:
        exec(compile(_USER_SOURCE, _USER_MODULE, "exec"), module.__dict__)
        yield module
    finally:
        del sys.modules[_USER_MODULE], sys.modules["streamuser"]


@pytest.fixture
def store(user_module: types.ModuleType) -> Iterator[Store[Any]]:
    connector: Any = user_module.TagConnector()
    with Store(f"own-{uuid.uuid4()}", connector, register=True) as s:
        yield s


def test_own_connector_keys_decode_without_extra_call(store: Store[Any]) -> None:
    q: queue.Queue[bytes] = queue.Queue()
    producer: StreamProducer[Any] = StreamProducer(
        QueuePublisher({"t": q}), stores={"t": store}
    )
    consumer: StreamConsumer[Any] = StreamConsumer(QueueSubscriber(q))
    producer.send("t", {"n": 1})
    producer.send("t", [2])
    producer.close(topics=["t"], publisher=False)
    first = consumer.next()
    assert type(get_key(first)).__module__ == _USER_MODULE
    assert first == {"n": 1}
    assert consumer.next_object() == [2]
    consumer.close()


def test_keys_from_an_untrusted_module_are_still_refused(store: Store[Any]) -> None:
    # The store's connector is this module's; a key claiming another module is not.
    from proxystore.stream.events import NewObjectKeyEvent

    event = NewObjectKeyEvent(
        topic="t",
        key_type="collections.OrderedDict",
        raw_key=["x"],
        evict=False,
        metadata={},
        store_config=store.config(),
    )
    with pytest.raises(EventDecodeError):
        event.get_key(connector=store.connector)
    assert event.get_key.__doc__
