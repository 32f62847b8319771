"""Exceptions raised by `proxystore.stream`.

```
Exception
 ├── TopicClosedError        send() to a topic after close_topics()
 └── ValueError
      └── EventDecodeError   bytes that are not a valid stream event
```
"""

from __future__ import annotations

__all__ = ["EventDecodeError", "TopicClosedError"]


class TopicClosedError(Exception):
    """Raised when an object is sent to a topic that has already been closed."""


class EventDecodeError(ValueError):
    """Raised when a message cannot be decoded into a stream event.

    The message may be truncated, corrupted, from an incompatible wire-format
    version, or may name a key type or connector outside the allow-list. Decoding
    never executes code, so a hostile message can only ever produce this error.
    """
