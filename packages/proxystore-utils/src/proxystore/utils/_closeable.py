"""`with` support from `close()`, and `async with`/`await` support from `_astart()`.

`Closeable` serves synchronous resources; `AsyncStartable` serves asyncio objects that
are started by awaiting them (or entering `async with`) and stopped by `await close()`.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, Self

__all__ = ["AsyncStartable", "Closeable"]


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


class AsyncStartable:
    """Mixin: `await obj` and `async with obj:` start `obj`; the block's end closes it.

    Subclasses define `_astart()` (idempotent start-up) and `close()`. Exceptions
    raised in the block are never suppressed.
    """

    __slots__ = ()

    async def _astart(self) -> None:
        """Start the resource (subclasses override this).

        Raises:
            NotImplementedError: always, in this base class.
        """
        raise NotImplementedError(f"{type(self).__name__} must define _astart().")

    async def close(self) -> None:
        """Release the resources held (subclasses override this).

        Raises:
            NotImplementedError: always, in this base class.
        """
        raise NotImplementedError(f"{type(self).__name__} must define close().")

    async def __aenter__(self) -> Self:
        await self._astart()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __await__(self) -> Generator[Any, None, Self]:
        return self.__aenter__().__await__()
