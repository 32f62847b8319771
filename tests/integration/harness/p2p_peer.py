"""A peer in its own process: `python -m tests.integration.harness.p2p_peer RELAY UUID`.

It registers with the relay under `UUID` (ICE on 127.0.0.1 only), prints `READY`, and
answers every message: messages under 1 MiB are echoed, larger ones are answered with
`"<length>:<sha256 hex>"`. With `--send PEER NBYTES` it first sends NBYTES of data to
PEER (to be killed mid-transfer by a test).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import logging
import sys
import uuid

from proxystore.p2p.manager import PeerManager
from proxystore.p2p.relay.client import RelayClient

ECHO_LIMIT = 2**20


def digest(message: bytes | str) -> str:
    data = message.encode() if isinstance(message, str) else message
    return f"{len(data)}:{hashlib.sha256(data).hexdigest()}"


async def serve(relay: str, me: uuid.UUID, send: tuple[str, str] | None) -> None:
    # initial_backoff: come back quickly when the relay returns.
    client = RelayClient(
        relay, client_name=f"peer-{str(me)[:4]}", client_uuid=me, initial_backoff=0.2
    )
    async with PeerManager(
        client, ice_servers=[], ice_addresses=["127.0.0.1"], timeout=30
    ) as manager:
        print("READY", flush=True)
        if send is not None:
            peer, size = uuid.UUID(send[0]), int(send[1])
            await manager.send(peer, b"\x01" * size, timeout=60)
            print("SENT", flush=True)
        while True:
            source, message = await manager.recv()
            reply = message if len(message) < ECHO_LIMIT else digest(message)
            await manager.send(source, reply, timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("relay")
    parser.add_argument("uuid")
    parser.add_argument("--send", nargs=2, metavar=("PEER", "NBYTES"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    asyncio.run(serve(args.relay, uuid.UUID(args.uuid), args.send))


if __name__ == "__main__":
    main()
