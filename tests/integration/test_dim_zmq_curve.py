"""CurveZMQ on the DIM ZeroMQ peers: only key holders get answers.

A real server process spawned with a deployment key pair serves clients that hold
the pair (or a listed client key). A plain-text client and a client with an
unknown key get nothing (a timeout), and the server keeps serving the others.
The secret key never appears in a config, a pickled proxy or the server's
command line.
"""

from __future__ import annotations

import os
import pickle
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
import zmq

from proxystore.connectors.dim.exceptions import ServerTimeoutError
from proxystore.connectors.dim.models import Op, Request
from proxystore.connectors.dim.zmq import (
    CurveKeys,
    ZeroMQConnector,
    ZeroMQTransport,
    curve_keypair,
)
from proxystore.store import Store
from proxystore.utils.credentials import CredentialNotFoundError
from tests.integration.harness.ports import free_port

pytestmark = pytest.mark.integration

HOST = "127.0.0.1"
SECRET_VAR = "PS_IT_DIM_CURVE_SECRET"


def _port() -> int:
    while True:
        port = free_port()
        with socket.socket() as sock:
            try:
                sock.bind((HOST, port))
            except OSError:
                continue
        return port


class Deployment:
    """A spawned Curve-protected server, the keys, and an extra allowed client."""

    def __init__(self) -> None:
        self.public, self.secret = curve_keypair()
        self.guest_public, self.guest_secret = curve_keypair()
        self.port = _port()

    def connector(self, **options: object) -> ZeroMQConnector:
        return ZeroMQConnector(
            self.port,
            address=HOST,
            timeout=2,
            curve_public_key=self.public,
            curve_secret_key_env=SECRET_VAR,
            curve_clients=[self.guest_public],
            **options,  # type: ignore[arg-type]
        )


@pytest.fixture(scope="module")
def deployment() -> Iterator[tuple[Deployment, ZeroMQConnector]]:
    d = Deployment()
    os.environ[SECRET_VAR] = d.secret
    try:
        connector = d.connector()
        try:
            assert connector.server is not None
            yield d, connector
        finally:
            connector.close()
    finally:
        del os.environ[SECRET_VAR]


def _ping(transport: ZeroMQTransport, port: int) -> None:
    try:
        transport.exchange(HOST, port, [Request(Op.PING)], timeout=0.5)
    finally:
        transport.close()


def test_key_holders_are_served(deployment: tuple[Deployment, ZeroMQConnector]) -> None:
    d, connector = deployment
    key = connector.put(b"curve payload")
    assert connector.get(key) == b"curve payload"
    # A listed client with its own key pair (it knows the server's public key).
    guest = ZeroMQTransport(curve=CurveKeys(d.public, d.secret))
    _ping(guest, d.port)


def test_unauthenticated_clients_get_nothing_and_others_keep_working(
    deployment: tuple[Deployment, ZeroMQConnector],
) -> None:
    d, connector = deployment
    key = connector.put(b"still here")
    # Plain text (no Curve at all).
    with pytest.raises(ServerTimeoutError):
        _ping(ZeroMQTransport(), d.port)
    # A key pair of its own that the server does not know.
    stranger_public, stranger_secret = curve_keypair()
    context = zmq.Context()
    sock = context.socket(zmq.DEALER)
    try:
        sock.setsockopt(zmq.LINGER, 0)
        sock.curve_publickey = stranger_public.encode()
        sock.curve_secretkey = stranger_secret.encode()
        sock.curve_serverkey = d.public.encode()  # public: in every config
        sock.connect(f"tcp://{HOST}:{d.port}")
        sock.send_multipart([b"\x00" * 16])
        assert sock.poll(500) == 0  # no answer, not even an error frame
    finally:
        sock.close(linger=0)
        context.term()
    # The stranger's raw socket vs a listed guest key: the guest is admitted.
    guest_raw = zmq.Context()
    g = guest_raw.socket(zmq.DEALER)
    try:
        g.setsockopt(zmq.LINGER, 0)
        g.curve_publickey = d.guest_public.encode()
        g.curve_secretkey = d.guest_secret.encode()
        g.curve_serverkey = d.public.encode()
        g.connect(f"tcp://{HOST}:{d.port}")
        g.send_multipart([b"\xff"])  # malformed request: answered with an error
        assert g.poll(5000) != 0
    finally:
        g.close(linger=0)
        guest_raw.term()
    assert connector.get(key) == b"still here"


def test_secret_stays_out_of_configs_proxies_and_argv(
    deployment: tuple[Deployment, ZeroMQConnector],
) -> None:
    d, connector = deployment
    config = connector.config()
    assert config["curve_public_key"] == d.public
    assert config["curve_secret_key_env"] == SECRET_VAR
    assert d.secret not in repr(config)
    # A second connector attaches to the running server; the store closes it.
    with Store(f"curve-{uuid.uuid4().hex[:8]}", d.connector()) as store:
        assert store.connector.server is None
        proxy = store.proxy([1, 2, 3])
        blob = pickle.dumps(proxy)
        assert d.secret.encode() not in blob
        assert d.public.encode() in blob
    server = connector.server
    assert server is not None
    with open(f"/proc/{server.pid}/cmdline", "rb") as f:
        assert d.secret.encode() not in f.read()


_RESOLVE = """
import pickle, sys
proxy = pickle.loads(sys.stdin.buffer.read())
print(sum(proxy))
"""


def _resolve_elsewhere(
    blob: bytes, env: dict[str, str]
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-c", _RESOLVE],
        input=blob,
        capture_output=True,
        timeout=60,
        check=False,
        env=env,
    )


def test_proxy_resolves_where_the_key_reference_resolves(
    deployment: tuple[Deployment, ZeroMQConnector],
) -> None:
    d, _ = deployment
    name = f"curve-{uuid.uuid4().hex[:8]}"
    with Store(name, d.connector()) as store:
        blob = pickle.dumps(store.proxy([4, 5, 6]))
        ok = _resolve_elsewhere(blob, dict(os.environ))
        assert ok.returncode == 0, ok.stderr.decode()
        assert ok.stdout.strip() == b"15"
        env = {k: v for k, v in os.environ.items() if k != SECRET_VAR}
        missing = _resolve_elsewhere(blob, env)
        assert missing.returncode != 0
        assert CredentialNotFoundError.__name__ in missing.stderr.decode()


def test_bad_curve_arguments() -> None:
    with pytest.raises(ValueError, match="40 characters"):
        CurveKeys("short", "x" * 40).check()
    with pytest.raises(ValueError, match="curve_public_key"):
        ZeroMQConnector(_port(), address=HOST, curve_secret_key="x" * 40)
