"""A hand-written inline SVG bar chart (no script, no external asset, CSP-safe)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value: int


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    bars: list[Bar]
    peak: int


def hourly_bars(counts: list[int], width: int = 720, height: int = 160) -> BarChart:
    """Geometry for 24 hourly bars; the template draws them as <rect>s with <title>s."""
    plot_h = height - 20
    peak = max(counts) if counts else 0
    slot = width / max(len(counts), 1)
    bars = []
    for hour, value in enumerate(counts):
        h = 0.0 if peak == 0 else plot_h * value / peak
        bars.append(Bar(hour * slot + 2, plot_h - h, slot - 4, h, f"{hour:02d}", value))
    return BarChart(width, height, bars, peak)
