"""Guarded asyncio background tasks."""

from __future__ import annotations

import asyncio
import logging

import pytest

from proxystore.utils.tasks import (
    SafeTaskExitError,
    exit_on_error,
    spawn_guarded_background_task,
)


async def _ok(out: list[int], value: int, *, extra: int = 0) -> None:
    out.append(value + extra)


async def _safe_exit() -> None:
    raise SafeTaskExitError


async def _fail() -> None:
    raise RuntimeError("boom")


async def _forever() -> None:
    await asyncio.Event().wait()


def test_task_runs_with_arguments() -> None:
    async def main() -> list[int]:
        out: list[int] = []
        await spawn_guarded_background_task(_ok, out, 1, extra=2)
        return out

    assert asyncio.run(main()) == [3]


def test_safe_exit_and_cancel_are_quiet() -> None:
    async def main() -> tuple[bool, bool]:
        task = spawn_guarded_background_task(_safe_exit)
        with pytest.raises(SafeTaskExitError):
            await task
        forever = spawn_guarded_background_task(_forever)
        await asyncio.sleep(0)
        forever.cancel()
        with pytest.raises(asyncio.CancelledError):
            await forever
        return task.done(), forever.cancelled()

    assert asyncio.run(main()) == (True, True)


def test_failure_is_logged_and_exits(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        task = spawn_guarded_background_task(_fail)
        await asyncio.wait([task])
        await asyncio.sleep(0)  # let the done-callbacks run

    caplog.set_level(logging.ERROR, logger="proxystore.utils.tasks")
    with pytest.raises(SystemExit) as info:
        asyncio.run(main())
    assert info.value.code == 1
    assert "boom" in caplog.text
    assert "Traceback" in caplog.text


def test_exit_on_error_ignores_success() -> None:
    async def main() -> None:
        task = asyncio.create_task(_safe_exit())
        await asyncio.wait([task])
        exit_on_error(task)  # SafeTaskExitError: nothing happens

    asyncio.run(main())


def test_spawn_needs_a_running_loop() -> None:
    with pytest.raises(RuntimeError, match="no running event loop"):
        spawn_guarded_background_task(_safe_exit)
