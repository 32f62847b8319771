"""The reference keyword names of utils.config functions are accepted."""

from __future__ import annotations

import dataclasses
import io

from proxystore.utils.config import dump, dumps, load, loads


@dataclasses.dataclass
class _Conf:
    name: str
    size: int = 1


def test_config_functions_take_model_keyword() -> None:
    text = dumps(model=_Conf("a", 2))
    assert loads(model=_Conf, data=text) == _Conf("a", 2)
    buffer = io.BytesIO()
    dump(model=_Conf("b"), fp=buffer)
    buffer.seek(0)
    assert load(model=_Conf, fp=buffer) == _Conf("b")
