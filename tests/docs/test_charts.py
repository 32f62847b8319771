"""`scripts/bench/charts.py` turns every saved benchmark JSON into an SVG chart."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from scripts.bench.charts import CHARTS, FIGURES, MISSING, render

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


def _svg_size_in_inches(svg: str) -> tuple[float, float]:
    match = re.search(r'<svg[^>]*width="([\d.]+)pt" height="([\d.]+)pt"', svg)
    assert match is not None, svg[:300]
    return float(match[1]) / 72, float(match[2]) / 72


def test_charts_are_as_wide_as_the_page(tmp_path: Path) -> None:
    # The docs' content column is about 7.2 in (690 CSS px): a wider figure is shrunk
    # by the browser and its 7-10 pt labels become unreadable. Two-panel charts stack
    # their panels instead of placing them side by side.
    for path in render(DATA, tmp_path):
        width, height = _svg_size_in_inches(path.read_text())
        assert width <= 7.3, f"{path.name} is {width:.1f} in wide"
        panels = path.read_text().count('id="axes_')
        assert height >= 4 * panels, f"{path.name}: {panels} panels in {height} in"


def test_missing_bars_are_marked(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(DATA / "shm.json", data / "shm.json")
    (svg,) = render(data, tmp_path)
    # Ray has no 100 B resolve, Dask neither that nor a worker resolve.
    assert svg.read_text().count(f">{MISSING}<") == 3
    rows = json.loads((DATA / "stream.json").read_text())
    rows[0]["theirs_items_per_s"] = None
    (data / "stream.json").write_text(json.dumps(rows))
    written = render(data, tmp_path)
    stream = next(p for p in written if p.name == "stream.svg")
    assert stream.read_text().count(f">{MISSING}<") == 1
