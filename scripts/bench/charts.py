"""Render the benchmark charts of the docs from the JSON that `make bench` saved.

`make bench` runs each `scripts/bench/<name>.py --json` and saves its output to
`docs/figures/data/<name>.json`; this script turns every file it knows into
`docs/figures/<name>.svg`: ours next to the reference release (and the raw client or
Ray/Dask where the benchmark measures them). A missing file is skipped, so running one
benchmark by hand and then this script refreshes just that chart.

    uv run --frozen python -m scripts.bench.charts [--data DIR] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

ROOT = Path(__file__).resolve().parents[2]
FIGURES = ROOT / "docs" / "figures"
NOTE = "Best of interleaved rounds on a 2-core machine shared with other jobs."
COLORS = {
    "ours": "#3f51b5",
    "ours (pure Python)": "#9fa8da",
    "reference 1.1.0": "#ef6c00",
    "reference 1.1.0 + Redis": "#ef6c00",
    "raw client": "#9e9e9e",
    "plain object": "#9e9e9e",
    "Ray": "#2e7d32",
    "Dask": "#c62828",
}

#: Written, in the series' colour, where a bar is missing from the data.
MISSING = "not measured"
MISSING_COLOR = "#616161"
#: Width of every chart, in inches: the docs' content column (about 690 CSS pixels
#: at 96 dpi), so charts render at their own size and their 8-10 pt text stays legible.
WIDTH = 7.2
PANEL_HEIGHT = 4.2

Series = dict[str, Sequence[float | None]]


def _bars(
    ax: Axes,
    groups: Sequence[str],
    series: Series,
    *,
    ylabel: str,
    log: bool = True,
    rotation: int = 20,
) -> None:
    """Grouped bars: one group per entry of `groups`, one bar per series."""
    width = 0.8 / len(series)
    for i, (label, values) in enumerate(series.items()):
        xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
        pairs = [(x, v) for x, v in zip(xs, values, strict=True) if v is not None]
        ax.bar(
            [x for x, _ in pairs],
            [v for _, v in pairs],
            width,
            label=label,
            color=COLORS.get(label),
        )
        for x, value in zip(xs, values, strict=True):
            if value is None:
                _mark_missing(ax, x, COLORS.get(label, MISSING_COLOR))
    # Every group keeps its slot, even one whose bars are all missing.
    ax.set_xlim(-0.5, len(groups) - 0.5)
    ha = "right" if rotation else "center"
    size = 8 if rotation or len(groups) < 8 else 7
    ax.set_xticks(range(len(groups)), groups, rotation=rotation, ha=ha, fontsize=size)
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    ax.grid(axis="y", alpha=0.3)


def _mark_missing(ax: Axes, x: float, color: str) -> None:
    """Say where a bar would stand that the data does not have."""
    ax.annotate(
        MISSING,
        (x, 0.02),
        xycoords=("data", "axes fraction"),
        rotation=90,
        ha="center",
        va="bottom",
        fontsize=7,
        color=color,
    )


def _ratio_labels(ax: Axes, ratios: Sequence[float | None], prefix: str = "") -> None:
    """Write `ours/theirs` under each group's tick label."""
    for x, ratio in enumerate(ratios):
        if ratio is not None:
            text = f"{ratio:.2f}" if ratio >= 0.005 else "<0.01"  # not "0.00"
            ax.annotate(
                f"{prefix}{text}\N{MULTIPLICATION SIGN}",
                (x, 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(0, 3),
                textcoords="offset points",
                ha="center",
                fontsize=8,
            )


def _figure(title: str, panels: int = 1) -> tuple[Any, list[Axes]]:
    """A figure of the docs' width with `panels` charts stacked one above the other.

    Side by side, two panels made a figure twice as wide as the page, which the
    browser then shrank to half size, labels included.
    """
    height = 1.2 + PANEL_HEIGHT * panels
    fig, axes = plt.subplots(panels, 1, figsize=(WIDTH, height), squeeze=False)
    fig.suptitle(title)
    fig.text(0.01, 0.1 / height, NOTE, fontsize=7, color=MISSING_COLOR)
    return fig, [row[0] for row in axes]


def proxy_chart(data: dict[str, dict[str, float]]) -> Any:
    """Time per operation on a resolved proxy (ns, lower is better)."""
    ops = list(data)
    fig, (ax,) = _figure("Resolved proxy: time per operation (lower is better)")
    _bars(
        ax,
        ops,
        {
            "ours": [data[o]["ours_ns"] for o in ops],
            "ours (pure Python)": [data[o]["ours_pure_ns"] for o in ops],
            "reference 1.1.0": [data[o]["theirs_ns"] for o in ops],
            "plain object": [data[o]["plain_ns"] for o in ops],
        },
        ylabel="ns per operation (log)",
    )
    _ratio_labels(ax, [data[o]["ratio"] for o in ops])
    return fig


def _size_label(size: int) -> str:
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if size >= scale:
            return f"{size / scale:g} {unit}"
    return f"{size} B"


_SHORT = {"proxy+resolve": "proxy", "put+get": "put/get"}  # tick labels


def store_chart(data: dict[str, dict[str, Any]]) -> Any:
    """Store round trips per connector, size and operation (us, lower is better)."""
    rows = [(case.split(" "), row) for case, row in data.items()]
    kinds = list(dict.fromkeys(kind for (kind, _, _), _ in rows))  # the run's order
    fig, axes = _figure("Store round trips (lower is better)", panels=len(kinds))
    for ax, kind in zip(axes, kinds, strict=True):
        mine = [(parts, row) for parts, row in rows if parts[0] == kind]
        groups = [
            f"{_size_label(int(n))}\n{_SHORT.get(op, op)}" for (_, n, op), _ in mine
        ]
        _bars(
            ax,
            groups,
            {
                "ours": [row["ours_us"] for _, row in mine],
                "reference 1.1.0": [row["theirs_us"] for _, row in mine],
            },
            ylabel="µs per round trip (log)",
            rotation=0,
        )
        _ratio_labels(ax, [row["ratio"] for _, row in mine])
        ax.set_title(f"{kind} connector (labels: ours/theirs)", pad=14, fontsize=10)
    return fig


def redis_chart(data: dict[str, dict[str, float]]) -> Any:
    """Redis put+get per size, and a proxy batch (s, lower is better)."""
    cases = list(data)
    fig, (ax,) = _figure("Redis: put + get (lower is better)")
    _bars(
        ax,
        [c.replace("proxy_batch", "proxy batch") for c in cases],
        {
            "ours": [data[c]["ours_s"] for c in cases],
            "reference 1.1.0": [data[c]["theirs_s"] for c in cases],
            "raw client": [data[c]["raw_s"] for c in cases],
        },
        ylabel="seconds (log)",
    )
    _ratio_labels(ax, [data[c]["ours/theirs"] for c in cases])
    return fig


def stream_chart(data: list[dict[str, Any]]) -> Any:
    """Items per second through each broker (higher is better)."""
    modes = sorted({row["mode"] for row in data})
    fig, axes = _figure("Streaming throughput (higher is better)", panels=len(modes))
    for ax, mode in zip(axes, modes, strict=True):
        rows = [row for row in data if row["mode"] == mode]
        _bars(
            ax,
            [f"{row['broker'].replace('-', ' ')}\n{row['size']}" for row in rows],
            {
                "ours": [row["ours_items_per_s"] for row in rows],
                "reference 1.1.0": [row["theirs_items_per_s"] for row in rows],
                "raw client": [row["raw_items_per_s"] for row in rows],
            },
            ylabel="items per second (log)",
            rotation=0,
        )
        _ratio_labels(ax, [row["ours_vs_theirs"] for row in rows], prefix="")
        title = f"mode: {mode} (labels: ours/theirs throughput)"
        ax.set_title(title, pad=14, fontsize=9)
    return fig


def shm_chart(data: dict[str, Any]) -> Any:
    """A 100 MB array to another process on one node (s, lower is better)."""
    table: dict[str, dict[str, float]] = data["seconds"]
    names = [
        ("task", "task: submit → sum"),
        ("resolve", "resolve in worker"),
        ("put", "put"),
        ("small_resolve", "100 B resolve"),
    ]
    sides = [
        ("ours", "ours"),
        ("theirs", "reference 1.1.0 + Redis"),
        ("ray", "Ray"),
        ("dask", "Dask"),
    ]
    fig, (ax,) = _figure("Shared memory: 100 MB float64 array (lower is better)")
    _bars(
        ax,
        [label for _, label in names],
        {
            label: [table.get(side, {}).get(name) for name, _ in names]
            for side, label in sides
            if side in table
        },
        ylabel="seconds (log)",
    )
    return fig


CHARTS: dict[str, Callable[[Any], Any]] = {
    "proxy": proxy_chart,
    "store": store_chart,
    "redis": redis_chart,
    "stream": stream_chart,
    "shm": shm_chart,
}


def render(data_dir: Path, out_dir: Path) -> list[Path]:
    """Write one SVG per known JSON file found in `data_dir`; return the paths."""
    plt.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "proxystore"})
    written = []
    for name, chart in CHARTS.items():
        source = data_dir / f"{name}.json"
        if not source.exists():
            continue
        fig = chart(json.loads(source.read_text()))
        handles, labels = fig.axes[0].get_legend_handles_labels()
        height = fig.get_figheight()
        # Title, then the legend, then the panels: fixed heights in inches, so tall
        # (stacked) figures keep the same spacing as one-panel ones.
        fig.legend(handles, labels, loc="upper center", ncols=len(labels), fontsize=8,
                   bbox_to_anchor=(0.5, 1 - 0.42 / height), frameon=False)  # fmt: skip
        fig.tight_layout(rect=(0, 0.25 / height, 1, 1 - 0.62 / height))
        target = out_dir / f"{name}.svg"
        fig.savefig(target, format="svg", metadata={"Date": None})
        plt.close(fig)
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> None:
    """Render the charts and list them."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--data", type=Path, default=FIGURES / "data")
    parser.add_argument("--out", type=Path, default=FIGURES)
    args = parser.parse_args(argv)
    for path in render(args.data, args.out):
        print(f"chart: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


if __name__ == "__main__":
    main()
