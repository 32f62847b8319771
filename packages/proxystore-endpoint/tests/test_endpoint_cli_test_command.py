"""`proxystore-endpoint test ...`: a request that fails is one line saying what to do.

Run through the real console script: whatever answers (nothing, a web server that
is not an endpoint, a server answering garbage), stderr gets exactly one line,
no traceback, and the exit code is 1.
"""

from __future__ import annotations

import http.server
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
import requests
from click.testing import CliRunner

from proxystore.endpoint.cli import cli
from proxystore.endpoint.config import read_config, write_config


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PROXYSTORE_HOME", str(tmp_path))
    return tmp_path


class _Garbage(http.server.BaseHTTPRequestHandler):
    """Answers every request with 200 and a body that is not JSON."""

    def do_GET(self) -> None:
        body = b"<html>\n<body>hello</body>\n</html>\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, *args: object) -> None:
        pass


class _NotFound(_Garbage):
    """Answers every request with a multi-line HTML 404 page."""

    def do_GET(self) -> None:
        self.send_error(404)

    do_POST = do_GET


def _serve(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def not_found_server() -> Iterator[int]:
    yield from _serve(_NotFound)


@pytest.fixture
def garbage_server() -> Iterator[int]:
    yield from _serve(_Garbage)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _configure(home: Path, port: int, host: str = "127.0.0.1") -> None:
    result = CliRunner().invoke(
        cli, ["configure", "ep", "--host", host, "--port", str(port)]
    )
    assert result.exit_code == 0, result.output


def _test_command(home: Path, *args: str) -> str:
    """Run `proxystore-endpoint test ep ARGS`; return its one stderr line."""
    script = shutil.which("proxystore-endpoint", path=os.path.dirname(sys.executable))
    assert script is not None
    done = subprocess.run(  # noqa: PLW1510 - exit codes are asserted
        [script, "test", "ep", *args],
        env={**os.environ, "PROXYSTORE_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.mark.parametrize("args", [["exists", "k"], ["put", "v"], ["evict", "k"]])
def test_server_that_is_not_an_endpoint(
    home: Path, not_found_server: int, args: list[str]
) -> None:
    _configure(home, not_found_server)
    line = _test_command(home, *args)
    assert "is not endpoint ep (its answer: HTTP 404)" in line
    assert f"port {not_found_server}" in line
    assert "proxystore-endpoint stop ep" in line


def test_answer_that_is_not_json(home: Path, garbage_server: int) -> None:
    _configure(home, garbage_server)
    line = _test_command(home, "exists", "k")
    assert "is not endpoint ep (its answer: not the endpoint API)" in line


def test_nothing_listening(home: Path) -> None:
    _configure(home, _free_port())
    line = _test_command(home, "put", "hello")
    assert line.startswith(
        "ERROR: Unable to connect to endpoint ep at http://127.0.0.1:"
    )
    assert "proxystore-endpoint start ep" in line


def test_never_started(home: Path) -> None:
    _configure(home, _free_port(), host="ip")
    cfg = read_config(str(home / "ep"))
    cfg.host = None
    write_config(cfg, str(home / "ep"))
    line = _test_command(home, "exists", "k")
    assert "never started" in line
    assert "proxystore-endpoint start ep" in line


@pytest.mark.parametrize("command", ["evict", "exists", "get", "put"])
def test_requests_errors_from_the_client(home: Path, command: str) -> None:
    # The reference's users (and tests) make the client raise requests' errors.
    _configure(home, _free_port())
    for error, expected in (
        (requests.exceptions.RequestException, "its log may say why"),
        (requests.exceptions.ConnectionError, "Unable to connect to endpoint ep"),
    ):
        with mock.patch(f"proxystore.endpoint.client.{command}", side_effect=error):
            result = CliRunner().invoke(cli, ["test", "ep", command, "k"])
        assert result.exit_code == 1
        [line] = result.output.strip().splitlines()
        assert expected in line
        assert "--log-level DEBUG" not in line
