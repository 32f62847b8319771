"""proxystore-ex compatibility objects of the DIM ZeroMQ module (RPC, ZeroMQServer)."""

from __future__ import annotations

from proxystore.connectors.dim.models import RPC, DIMKey, RPCResponse
from proxystore.connectors.dim.zmq import ZeroMQServer

KEY = DIMKey("zmq", "obj-1", 3, "127.0.0.1", 5555)


def test_server_answers_each_operation() -> None:
    server = ZeroMQServer()
    assert server.handle_rpc(RPC("exists", KEY)).exists is False
    assert server.handle_rpc(RPC("get", KEY)).data is None
    put = server.handle_rpc(RPC("put", KEY, b"abc"))
    assert put == RPCResponse("put", KEY)
    assert server.handle_rpc(RPC("exists", KEY)).exists is True
    assert server.handle_rpc(RPC("get", KEY)).data == b"abc"
    assert server.get("obj-1") == b"abc"
    server.handle_rpc(RPC("evict", KEY))
    assert not server.exists("obj-1")
    server.evict("obj-1")  # evicting a missing key is not an error


def test_server_reports_errors_in_the_response() -> None:
    server = ZeroMQServer()
    response = server.handle_rpc(RPC("put", KEY))
    assert isinstance(response.exception, ValueError)
    assert "no data" in str(response.exception)
    bogus = RPC("get", KEY)
    bogus.operation = "bogus"  # type: ignore[assignment]
    assert isinstance(server.handle_rpc(bogus).exception, ValueError)
