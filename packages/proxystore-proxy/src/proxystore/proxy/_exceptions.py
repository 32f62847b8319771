"""Exceptions raised by `proxystore.proxy`.

```
Exception
 └── ProxyResolveError      the factory of a proxy failed while resolving its target
```
"""

from __future__ import annotations

__all__ = ["ProxyResolveError"]


class ProxyResolveError(Exception):
    """Raised when a proxy cannot produce its target.

    The proxy's factory raised (or the proxy has no factory at all). The original
    exception is kept in `cause` and is also the `__cause__` of this error.

    Args:
        message: What went wrong.
        cause: The exception raised while resolving.
    """

    def __init__(self, message: str, cause: BaseException) -> None:
        super().__init__(message)
        self.cause = cause

    def __reduce__(self) -> tuple[type[ProxyResolveError], tuple[str, BaseException]]:
        # The default reduce passes only `args` (the message) back to __init__,
        # which would fail on the missing `cause` when unpickled.
        return type(self), (str(self), self.cause)
