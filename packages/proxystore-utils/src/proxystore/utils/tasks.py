"""Background asyncio tasks whose failures are never silent."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec

__all__ = ["SafeTaskExitError", "exit_on_error", "spawn_guarded_background_task"]

logger = logging.getLogger(__name__)

P = ParamSpec("P")

# The event loop keeps only weak references to tasks; hold spawned ones here until
# they finish so they cannot be garbage collected mid-flight.
_RUNNING: set[asyncio.Task[None]] = set()


class SafeTaskExitError(Exception):
    """Raised inside a guarded task to end it without stopping the program."""


def exit_on_error(task: asyncio.Task[Any]) -> None:
    """Done-callback: raise `SystemExit` if ``task`` failed.

    Cancellation and `SafeTaskExitError` are normal endings and do nothing.

    Raises:
        SystemExit: If the task raised any other exception (it is logged first).
    """
    if task.cancelled():
        return
    exc = task.exception()
    if exc is None or isinstance(exc, SafeTaskExitError):
        return
    logger.error("Exception in background task (name=%r): %r", task.get_name(), exc)
    raise SystemExit(1)


async def _logged(
    coro: Callable[P, Coroutine[Any, Any, None]],
    *args: P.args,
    **kwargs: P.kwargs,
) -> None:
    try:
        await coro(*args, **kwargs)
    except SafeTaskExitError:
        raise
    except Exception:
        logger.exception("Background task failed")
        raise


def spawn_guarded_background_task(
    coro: Callable[P, Coroutine[Any, Any, None]],
    *args: P.args,
    **kwargs: P.kwargs,
) -> asyncio.Task[None]:
    """Run ``coro(*args, **kwargs)`` as a background task on the running loop.

    An exception escaping the task is logged with its traceback and then stops the
    program via `exit_on_error` -- instead of being lost in a task nobody
    awaits. Raise `SafeTaskExitError` inside the task to end it quietly.

    Raises:
        RuntimeError: If no event loop is running.
    """
    loop = asyncio.get_running_loop()  # before creating the coroutine: no leak
    task = loop.create_task(_logged(coro, *args, **kwargs))
    _RUNNING.add(task)
    task.add_done_callback(_RUNNING.discard)
    task.add_done_callback(exit_on_error)
    return task
