"""Small inline SVG line charts for the console's pages (no JavaScript, no images to serve).

:func:`line_chart` draws one or more series over the same x positions (one per record, in
order); missing values (None) break the line. The SVG is built from numbers and escaped
labels only, so it is safe to embed in a page.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from html import escape

WIDTH, HEIGHT = 640, 200
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 48, 12, 12, 36
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")


@dataclasses.dataclass(frozen=True)
class Series:
    label: str
    values: Sequence[float | None]


def line_chart(
    title: str, x_labels: Sequence[str], series: Sequence[Series], *, unit: str = ""
) -> str:
    """An SVG chart of ``series`` over ``x_labels``; an empty string when there is no value."""
    numbers = [v for s in series for v in s.values if v is not None]
    if not numbers:
        return ""
    low, high = min(0.0, min(numbers)), max(numbers)
    high = high if high > low else low + 1.0
    n = max(len(x_labels), 1)
    plot_w = WIDTH - PAD_LEFT - PAD_RIGHT
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM

    def x(i: int) -> float:
        return PAD_LEFT + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(v: float) -> float:
        return PAD_TOP + plot_h * (1 - (v - low) / (high - low))

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{PAD_LEFT}" y1="{PAD_TOP + plot_h}" x2="{WIDTH - PAD_RIGHT}" '
        f'y2="{PAD_TOP + plot_h}" stroke="#999"/>',
        f'<text x="4" y="{PAD_TOP + 10}" font-size="11">{high:g}{escape(unit)}</text>',
        f'<text x="4" y="{PAD_TOP + plot_h}" font-size="11">{low:g}{escape(unit)}</text>',
    ]
    for i in sorted({0, n - 1}):
        if i < len(x_labels):
            parts.append(
                f'<text x="{x(i):.1f}" y="{HEIGHT - 8}" font-size="11" '
                f'text-anchor="{"start" if i == 0 else "end"}">{escape(x_labels[i])}</text>'
            )
    for k, s in enumerate(series):
        colour = COLOURS[k % len(COLOURS)]
        runs: list[list[str]] = [[]]
        for i, v in enumerate(s.values):
            if v is None:
                runs.append([])
                continue
            runs[-1].append(f"{x(i):.1f},{y(v):.1f}")
            parts.append(
                f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3" fill="{colour}">'
                f"<title>{escape(s.label)}: {v:g}{escape(unit)}</title></circle>"
            )
        for run in runs:
            if len(run) > 1:
                parts.append(
                    f'<polyline fill="none" stroke="{colour}" stroke-width="2" '
                    f'points="{" ".join(run)}"/>'
                )
        parts.append(
            f'<text x="{PAD_LEFT + 8 + 150 * k}" y="{PAD_TOP + 12}" font-size="12" '
            f'fill="{colour}">{escape(s.label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
