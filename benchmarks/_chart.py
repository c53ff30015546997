"""Bar charts of workload tables, one under the other in one PNG (``--plot``).

matplotlib is imported only when a chart is drawn: worker processes import
the benchmark script again, and this module with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from _harness import Table


def require_matplotlib() -> None:
    """Stop before the rounds, not after them, when the charts cannot be drawn."""
    try:
        import matplotlib as mpl  # noqa: F401
    except ImportError as exc:
        raise SystemExit(
            f"--plot needs matplotlib, which is not importable ({exc}); "
            'install it with pip install matplotlib, or pip install -e ".[bench]"'
        ) from None


def write_plot(path: str, tables: Sequence[Table]) -> None:
    """A horizontal bar per contender that ran, of each table that has a chart title:
    the median, with the fastest and slowest round as whiskers; snake in green, the
    reference in grey."""
    import matplotlib as mpl

    mpl.use("Agg")
    import matplotlib.pyplot as plt

    charts = [t for t in tables if t.chart is not None and any(c.ok for c in t.shown)]
    if not charts:
        print(f"\nno chart to plot: {path} not written")
        return
    height = sum(1.2 + 0.35 * sum(c.ok for c in t.shown) for t in charts)
    fig, axes = plt.subplots(len(charts), 1, figsize=(10, height), squeeze=False)
    for ax, t in zip(axes[:, 0], charts, strict=True):
        ran = [c for c in t.shown if c.ok][::-1]
        values = [t.metric.values(c) for c in ran]
        medians = [t.metric.median(c) for c in ran]
        low = [m - min(v) for m, v in zip(medians, values, strict=True)]
        high = [max(v) - m for m, v in zip(medians, values, strict=True)]
        colours = [
            "tab:green"
            if c.name.startswith("snake")
            else "tab:gray"
            if c is t.reference
            else "tab:blue"
            for c in ran
        ]
        ax.barh([c.name for c in ran], medians, xerr=[low, high], color=colours, capsize=3)
        ax.set_title(t.chart, fontsize=10)
        ax.set_xlabel(f"median, {t.metric.unit}; whiskers: fastest and slowest round", fontsize=8)
        ax.tick_params(axis="y", labelsize=8)
        ax.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"\nplot written to {path}")
