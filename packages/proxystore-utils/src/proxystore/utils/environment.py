"""Facts about the environment the process runs in."""

from __future__ import annotations

import os
import socket

__all__ = ["home_dir", "hostname"]


def home_dir() -> str:
    """Return the absolute path of the proxystore home directory.

    ``$PROXYSTORE_HOME`` when set, else ``$XDG_DATA_HOME/proxystore``, else
    ``~/.local/share/proxystore``. The directory is not created.
    """
    path = os.environ.get("PROXYSTORE_HOME")
    if path is None:
        data_home = os.environ.get("XDG_DATA_HOME") or os.path.expanduser(
            "~/.local/share"
        )
        path = os.path.join(data_home, "proxystore")
    return os.path.abspath(path)


def hostname() -> str:
    """Return this machine's hostname (`socket.gethostname`)."""
    return socket.gethostname()
