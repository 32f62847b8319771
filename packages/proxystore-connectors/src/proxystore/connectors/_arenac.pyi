"""Type stub of the optional C read path of the shared-memory arena."""

from typing import Any, Final, Literal

def hold(
    fd: int, entry_address: int, gen: int, pid: int, lock: bool, /
) -> tuple[int, int] | Literal[False] | None: ...

class HeldView:
    proxystore_zero_copy: Final[bool]
    def __init__(
        self, address: int, size: int, arena: Any, slot: int, gen: int
    ) -> None: ...
    def __buffer__(self, flags: int, /) -> memoryview: ...
