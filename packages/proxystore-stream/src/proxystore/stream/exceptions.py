"""Exceptions raised by `proxystore.stream`.

```
Exception
 ├── TopicClosedError              send() to a topic after close_topics()
 └── ValueError
      └── EventDecodeError         bytes that are not a valid stream event
           └── UntrustedEventError a valid event the consumer's trust refuses
```
"""

from __future__ import annotations

__all__ = ["EventDecodeError", "TopicClosedError", "UntrustedEventError"]


class TopicClosedError(Exception):
    """Raised when an object is sent to a topic that has already been closed."""


class EventDecodeError(ValueError):
    """Raised when a message cannot be decoded into a stream event.

    The message may be truncated, corrupted, from an incompatible wire-format
    version, or may name a key type or connector outside the allow-list. Decoding
    never executes code, so a hostile message can only ever produce this error.
    """


class UntrustedEventError(EventDecodeError):
    """Raised when an event asks a consumer for something it does not trust.

    For example a store config that names a credential or a signing key, a
    store name already bound to a different config, a store not registered
    here under a policy with ``create_stores=False``, or an unsigned inline
    object under a policy that requires signatures (see
    `proxystore.stream.trust`).
    """
