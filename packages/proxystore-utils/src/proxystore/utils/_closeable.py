"""`Closeable`: `with` support for any class that has a `close()` method."""

from __future__ import annotations

from typing import Self

__all__ = ["Closeable"]


class Closeable:
    """Mixin: `with obj:` returns `obj` and calls `obj.close()` on the way out.

    Subclasses define `close()`; it must accept being called with no arguments.
    Exceptions raised in the block are never suppressed.
    """

    __slots__ = ()

    def close(self) -> None:
        """Release the resources held (subclasses override this).

        Raises:
            NotImplementedError: always, in this base class.
        """
        raise NotImplementedError(f"{type(self).__name__} must define close().")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
