"""Type stub of the optional C read path of the shared-memory arena."""

from types import NotImplementedType
from typing import Any, Final, Literal

def hold_view(
    arena: Any, name: str, stem: str, /
) -> memoryview | Literal[False] | NotImplementedType | None: ...

class HeldView:
    proxystore_zero_copy: Final[bool]
    def __init__(
        self, address: int, size: int, arena: Any, slot: int, gen: int
    ) -> None: ...
    def __buffer__(self, flags: int, /) -> memoryview: ...
