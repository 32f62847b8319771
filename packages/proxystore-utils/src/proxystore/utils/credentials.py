"""Secrets by reference: configs name a secret, each process looks it up locally.

Anything inside a proxy (its store config, its connector's options) is public: it
travels wherever the proxy goes. So a config never holds a password, a token, a
TLS key or an HMAC key. It holds a *reference*, and the process that needs the
secret resolves the reference against its own environment:

* ``"env:NAME"`` -- the environment variable ``NAME``;
* ``"NAME"`` (or ``"cred:NAME"``) -- the entry ``NAME`` of the credentials file,
  ``<home_dir()>/credentials.toml`` (see `proxystore.utils.environment.home_dir`).

The credentials file is TOML with one string per name::

    redis-prod = "s3cr3t"
    hmac-key = "base64:6Ki0...=="

It must not be readable or writable by group or others (``chmod 600``): a file
that is refuses to load (`InsecureCredentialsFileError`).

Connectors spell references per option: for a secret option ``password`` they
accept ``password_env="VAR"`` (an environment variable) or
``password_credential="name"`` (a credentials-file entry) next to, or instead of,
``password="..."``. A value passed directly is used by the process that passed it
and is left out of ``config()``; the references are kept there
(`split_secret_options`, `resolve_secret_options`).

Exception tree::

    Exception
     └── CredentialError                 a secret cannot be resolved
          ├── CredentialNotFoundError    (also a KeyError) no such variable/entry
          └── InsecureCredentialsFileError  (also a PermissionError) file mode too open
"""

from __future__ import annotations

import base64
import binascii
import os
import stat
import threading
import tomllib
from collections.abc import Iterable, Mapping
from typing import Any, Final

from proxystore.utils.environment import home_dir

__all__ = [
    "CREDENTIALS_FILENAME",
    "CredentialError",
    "CredentialNotFoundError",
    "InsecureCredentialsFileError",
    "credentials_path",
    "resolve_secret",
    "resolve_secret_bytes",
    "resolve_secret_options",
    "split_secret_options",
]

#: Name of the credentials file inside the proxystore home directory.
CREDENTIALS_FILENAME: Final = "credentials.toml"
#: Suffixes of the two reference spellings of a secret option.
ENV_SUFFIX: Final = "_env"
CREDENTIAL_SUFFIX: Final = "_credential"
_ENV_PREFIX: Final = "env:"
_CRED_PREFIX: Final = "cred:"
_BASE64_PREFIX: Final = "base64:"
_HEX_PREFIX: Final = "hex:"


class CredentialError(Exception):
    """Raised when a secret reference cannot be resolved."""


class CredentialNotFoundError(CredentialError, KeyError):
    """Raised when the named environment variable or credentials entry is missing."""

    def __str__(self) -> str:
        # KeyError would quote the message.
        return str(self.args[0]) if self.args else ""


class InsecureCredentialsFileError(CredentialError, PermissionError):
    """Raised when the credentials file is readable or writable by group/others."""


def credentials_path() -> str:
    """Return the path of the credentials file (it may not exist)."""
    return os.path.join(home_dir(), CREDENTIALS_FILENAME)


# Parsed files by path, reused while the file's (mtime, size, inode) is unchanged.
_cache: dict[str, tuple[tuple[int, int, int], dict[str, Any]]] = {}
_cache_lock = threading.Lock()


def _load_credentials(path: str) -> dict[str, Any]:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return {}
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InsecureCredentialsFileError(
            f"credentials file {path} has mode {stat.S_IMODE(st.st_mode):04o}: it "
            "must not be accessible by group or others (run: chmod 600 "
            f"{path})"
        )
    stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
    with _cache_lock:
        cached = _cache.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
    with open(path, "rb") as f:
        try:
            data = tomllib.load(f)
        except tomllib.TOMLDecodeError:
            # The parser's message may quote the file (a secret): keep it out.
            raise CredentialError(
                f"credentials file {path} is not valid TOML"
            ) from None
    with _cache_lock:
        _cache[path] = (stamp, data)
    return data


def resolve_secret(ref: str) -> str:
    """Return the secret that ``ref`` names, looked up in this process.

    Args:
        ref: ``"env:NAME"`` for the environment variable ``NAME``; ``"NAME"`` or
            ``"cred:NAME"`` for the entry ``NAME`` of the credentials file.

    Raises:
        ValueError: if ``ref`` is not a non-empty string.
        CredentialNotFoundError: if the variable or entry does not exist (the
            message names the reference, never a secret).
        InsecureCredentialsFileError: if the credentials file is accessible by
            group or others.
        CredentialError: if the file is not valid TOML or the entry is not a string.
    """
    if not ref:
        raise ValueError(f"a secret reference must be a non-empty string: {ref!r}")
    if ref.startswith(_ENV_PREFIX):
        var = ref[len(_ENV_PREFIX) :]
        value = os.environ.get(var)
        if value is None:
            raise CredentialNotFoundError(
                f"secret {ref!r}: environment variable {var!r} is not set"
            )
        return value
    name = ref.removeprefix(_CRED_PREFIX)
    path = credentials_path()
    entry = _load_credentials(path).get(name)
    if entry is None:
        raise CredentialNotFoundError(
            f"secret {ref!r}: no entry {name!r} in credentials file {path}"
        )
    if not isinstance(entry, str):
        raise CredentialError(
            f"secret {ref!r}: entry {name!r} in {path} must be a string"
        )
    return entry


def resolve_secret_bytes(ref: str) -> bytes:
    """Return the secret that ``ref`` names as bytes (e.g. an HMAC key).

    A value written ``"base64:..."`` or ``"hex:..."`` is decoded; any other value
    is encoded as UTF-8.

    Raises:
        CredentialError: as `resolve_secret`, or if a ``base64:``/``hex:`` value
            does not decode, or the secret is empty.
    """
    value = resolve_secret(ref)
    try:
        if value.startswith(_BASE64_PREFIX):
            raw = base64.b64decode(value[len(_BASE64_PREFIX) :], validate=True)
        elif value.startswith(_HEX_PREFIX):
            raw = bytes.fromhex(value[len(_HEX_PREFIX) :])
        else:
            raw = value.encode("utf-8")
    except (binascii.Error, ValueError):
        raise CredentialError(f"secret {ref!r} does not decode") from None
    if not raw:
        raise CredentialError(f"secret {ref!r} is empty")
    return raw


def split_secret_options(
    options: Mapping[str, Any], secret_names: Iterable[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split ``options`` into (shareable options, directly passed secrets).

    For each name in ``secret_names``, ``options[name]`` is a secret passed
    directly: it goes to the second dict, which must stay in this process. The
    references ``<name>_env`` and ``<name>_credential`` stay in the first.

    Raises:
        ValueError: if a reference is not a non-empty string.
    """
    public = dict(options)
    secrets: dict[str, Any] = {}
    for name in secret_names:
        if name in public:
            secrets[name] = public.pop(name)
        for suffix in (ENV_SUFFIX, CREDENTIAL_SUFFIX):
            ref = public.get(name + suffix)
            if ref is not None and (not isinstance(ref, str) or not ref):
                raise ValueError(
                    f"{name}{suffix} must name a secret (a non-empty string), "
                    f"got {ref!r}"
                )
    return public, secrets


def resolve_secret_options(
    public: Mapping[str, Any],
    secrets: Mapping[str, Any],
    secret_names: Iterable[str],
) -> dict[str, Any]:
    """Return the options to hand to a client: references replaced by secrets.

    A directly passed secret wins over a reference; ``<name>_env`` wins over
    ``<name>_credential``. Reference keys never appear in the result.

    Raises:
        CredentialError: if a reference cannot be resolved (see `resolve_secret`).
    """
    out = dict(public)
    for name in secret_names:
        env = out.pop(name + ENV_SUFFIX, None)
        cred = out.pop(name + CREDENTIAL_SUFFIX, None)
        if name in secrets:
            out[name] = secrets[name]
        elif env is not None:
            out[name] = resolve_secret(_ENV_PREFIX + env)
        elif cred is not None:
            out[name] = resolve_secret(_CRED_PREFIX + cred)
    return out
