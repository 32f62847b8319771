"""A Redis that demands authentication, on a plain port and a TLS port.

The throwaway CA, server and client certificates are made with ``cryptography``
in the server's work directory, which a container sees at the same path (mounted
read-only), so the same arguments work in both harness modes.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .images import REDIS, Program
from .redis import _base_args, redis_command
from .servers import Server, ServerAddress, start_server

__all__ = ["SecureRedis", "TLSFiles", "make_tls_files", "start_secure_redis"]

#: The TLS port is the plain port plus this (both probed free together).
TLS_PORT_OFFSET = 1


@dataclass(frozen=True)
class TLSFiles:
    """PEM files of a throwaway PKI: one CA, a server and a client certificate."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _write_key(path: Path, key: object) -> None:
    from cryptography.hazmat.primitives import serialization

    pem = key.private_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)


def make_tls_files(directory: Path) -> TLSFiles:
    """Create a CA and a server (``127.0.0.1``/``localhost``) and client cert."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    lifetime = (now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=1))

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(name("proxystore test CA"))
        .issuer_name(name("proxystore test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(lifetime[0])
        .not_valid_after(lifetime[1])
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(ca_key, hashes.SHA256())
    )

    def issue(common: str, usage: x509.ObjectIdentifier) -> tuple[object, bytes]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(common))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(lifetime[0])
            .not_valid_after(lifetime[1])
            .add_extension(x509.ExtendedKeyUsage([usage]), False)
            .add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName("localhost"),
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    ]
                ),
                False,
            )
        )
        cert = builder.sign(ca_key, hashes.SHA256())
        return key, cert.public_bytes(serialization.Encoding.PEM)

    files = TLSFiles(
        ca=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server.key",
        client_cert=directory / "client.pem",
        client_key=directory / "client.key",
    )
    files.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    server_key, server_pem = issue("127.0.0.1", ExtendedKeyUsageOID.SERVER_AUTH)
    client_key, client_pem = issue("proxystore client", ExtendedKeyUsageOID.CLIENT_AUTH)
    files.server_cert.write_bytes(server_pem)
    files.client_cert.write_bytes(client_pem)
    _write_key(files.server_key, server_key)
    _write_key(files.client_key, client_key)
    return files


@dataclass(frozen=True)
class SecureRedis:
    """A running Redis with ``requirepass``, an ACL user and a TLS port."""

    server: Server
    plain: ServerAddress
    tls: ServerAddress
    password: str
    user: str
    user_password: str
    files: TLSFiles

    def stop(self) -> None:
        """Stop the server."""
        self.server.stop()


def _answers(address: ServerAddress) -> bool:
    # Any reply (NOAUTH included) proves the server is serving.
    try:
        return redis_command(address, "PING", timeout=0.5).startswith((b"-", b"+"))
    except OSError:
        return False


def start_secure_redis(program: Program = REDIS) -> SecureRedis:
    """Start Redis requiring a password on 127.0.0.1, plain and TLS ports.

    Clients may present a certificate (``--tls-auth-clients optional``). Besides
    the default user (``requirepass``), an ACL user with its own password exists.

    Raises:
        BackendUnavailableError: When the server cannot be started.
    """
    workdir = Path(tempfile.mkdtemp(prefix=f"ps-{program.name}-secure-"))
    files = make_tls_files(workdir)
    password = secrets.token_hex(16)
    user, user_password = "proxystore-acl", secrets.token_hex(16)

    def make_args(port: int) -> list[str]:
        return [
            *_base_args(port, workdir),
            "--tls-port",
            str(port + TLS_PORT_OFFSET),
            "--tls-cert-file",
            str(files.server_cert),
            "--tls-key-file",
            str(files.server_key),
            "--tls-ca-cert-file",
            str(files.ca),
            "--tls-auth-clients",
            "optional",
            "--requirepass",
            password,
            "--user",
            user,
            "on",
            f">{user_password}",
            "~*",
            "&*",
            "+@all",
        ]

    server = start_server(
        program,
        make_args,
        _answers,
        workdir=workdir,
        companions=(TLS_PORT_OFFSET,),
        mounts=(workdir,),
    )
    host, port = server.address
    return SecureRedis(
        server=server,
        plain=server.address,
        tls=ServerAddress(host, port + TLS_PORT_OFFSET),
        password=password,
        user=user,
        user_password=user_password,
        files=files,
    )
