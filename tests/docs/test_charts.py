"""`scripts/bench/charts.py` turns every saved benchmark JSON into an SVG chart."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from scripts.bench.charts import CHARTS, FIGURES, render

DATA = FIGURES / "data"


def test_committed_data_renders_every_chart(tmp_path: Path) -> None:
    present = sorted(p.stem for p in DATA.glob("*.json") if p.stem in CHARTS)
    # proxy, store, Redis, stream and shared-memory figures are part of the docs.
    assert set(present) == set(CHARTS)
    written = render(DATA, tmp_path)
    assert sorted(p.stem for p in written) == sorted(CHARTS)
    for path in written:
        svg = path.read_text()
        assert svg.lstrip().startswith("<?xml")
        assert "</svg>" in svg
        assert "reference 1.1.0" in svg  # every chart puts ours next to the reference
        assert (FIGURES / path.name).exists(), f"{path.name} is not committed"


def test_missing_data_is_skipped(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(DATA / "redis.json", data / "redis.json")
    (data / "unknown.json").write_text(json.dumps({"x": 1}))
    written = render(data, tmp_path)
    assert [p.name for p in written] == ["redis.svg"]


def test_rendering_is_reproducible(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(DATA / "proxy.json", data / "proxy.json")
    (a,) = render(data, first)
    (b,) = render(data, second)
    # No dates or random ids: re-running `make bench` only changes what was measured.
    assert a.read_bytes() == b.read_bytes()
