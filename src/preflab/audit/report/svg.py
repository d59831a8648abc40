"""Small static SVG charts (bars, histograms, lines) for the offline HTML report.

No JavaScript and no external assets: each function returns an ``<svg>`` element as text,
with every label escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

__all__ = ["bar_chart", "histogram", "line_chart"]

_W, _H, _PAD_L, _PAD_B, _PAD_T, _PAD_R = 560, 220, 48, 42, 14, 12
_COLORS = ("#3b6fb6", "#d9822b", "#2e9e5b", "#b63b5e", "#7a5cb8")


def _frame(title: str, y_max: float, y_label: str) -> list[str]:
    parts = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 {_W} {_H}" '
            f'width="{_W}" height="{_H}"><title>{escape(title)}</title>'
        ),
        f'<line x1="{_PAD_L}" y1="{_H - _PAD_B}" x2="{_W - _PAD_R}" y2="{_H - _PAD_B}" stroke="#888"/>',
        f'<line x1="{_PAD_L}" y1="{_PAD_T}" x2="{_PAD_L}" y2="{_H - _PAD_B}" stroke="#888"/>',
    ]
    for frac in (0.0, 0.5, 1.0):
        y = _H - _PAD_B - frac * (_H - _PAD_B - _PAD_T)
        parts.append(
            f'<text x="{_PAD_L - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="10">'
            f"{_fmt(frac * y_max)}</text>"
        )
    parts.append(
        f'<text x="12" y="{_PAD_T + 60}" font-size="10" transform="rotate(-90 12 {_PAD_T + 60})">'
        f"{escape(y_label)}</text>"
    )
    return parts


def _fmt(x: float) -> str:
    if x == 0:
        return "0"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 1:
        return f"{x:.1f}"
    return f"{x:.2f}"


def _legend(parts: list[str], names: Sequence[str]) -> None:
    for k, name in enumerate(names):
        x = _PAD_L + 10 + k * 130
        parts.append(f'<rect x="{x}" y="2" width="10" height="10" fill="{_COLORS[k % len(_COLORS)]}"/>')
        parts.append(f'<text x="{x + 14}" y="11" font-size="10">{escape(name)}</text>')


def bar_chart(
    labels: Sequence[str], series: dict[str, Sequence[float | None]], *, title: str, y_label: str = "",
    y_max: float | None = None,
) -> str:
    """Return grouped vertical bars: one group per label, one bar per series."""
    vals = [v for s in series.values() for v in s if v is not None]
    top = y_max if y_max is not None else (max(vals) if vals else 1.0) or 1.0
    parts = _frame(title, top, y_label)
    n, k = max(len(labels), 1), max(len(series), 1)
    plot_w = _W - _PAD_L - _PAD_R
    group_w = plot_w / n
    bar_w = max(group_w * 0.8 / k, 1.0)
    for si, (name, values) in enumerate(series.items()):
        color = _COLORS[si % len(_COLORS)]
        for i, v in enumerate(values):
            if v is None:
                continue
            h = (v / top) * (_H - _PAD_B - _PAD_T) if top else 0
            x = _PAD_L + i * group_w + group_w * 0.1 + si * bar_w
            parts.append(
                f'<rect x="{x:.1f}" y="{_H - _PAD_B - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{color}"><title>{escape(str(labels[i]))} · {escape(name)}: {_fmt(v)}</title></rect>'
            )
    step = max(1, n // 12)
    for i, lab in enumerate(labels):
        if i % step == 0:
            x = _PAD_L + (i + 0.5) * group_w
            parts.append(
                f'<text x="{x:.1f}" y="{_H - _PAD_B + 14}" text-anchor="middle" font-size="9">'
                f"{escape(str(lab))[:14]}</text>"
            )
    if len(series) > 1:
        _legend(parts, list(series))
    parts.append("</svg>")
    return "".join(parts)


def histogram(
    edges: Sequence[float], counts: dict[str, Sequence[int]], *, title: str, x_label: str = ""
) -> str:
    """Return a histogram (one or more overlaid series over the same bin edges)."""
    labels = [_fmt(e) for e in edges[:-1]]
    out = bar_chart(labels, {k: [float(c) for c in v] for k, v in counts.items()}, title=title, y_label="count")
    if x_label:
        out = out.replace(
            "</svg>",
            f'<text x="{_W / 2}" y="{_H - 4}" text-anchor="middle" font-size="10">{escape(x_label)}</text></svg>',
        )
    return out


def line_chart(
    x: Sequence[float], series: dict[str, Sequence[float | None]], *, title: str, y_label: str = "",
    x_label: str = "", y_max: float | None = None,
) -> str:
    """Return lines with dots; ``None`` values leave a gap."""
    vals = [v for s in series.values() for v in s if v is not None]
    top = y_max if y_max is not None else (max(vals) if vals else 1.0) or 1.0
    parts = _frame(title, top, y_label)
    x_min, x_max = (min(x), max(x)) if len(x) else (0.0, 1.0)
    span = (x_max - x_min) or 1.0
    plot_w = _W - _PAD_L - _PAD_R - 10

    def px(v: float) -> float:
        return _PAD_L + 5 + (v - x_min) / span * plot_w

    def py(v: float) -> float:
        return _H - _PAD_B - (v / top) * (_H - _PAD_B - _PAD_T)

    for si, (name, values) in enumerate(series.items()):
        color = _COLORS[si % len(_COLORS)]
        pts = [(px(a), py(b)) for a, b in zip(x, values, strict=False) if b is not None]
        if len(pts) > 1:
            d = " ".join(f"{a:.1f},{b:.1f}" for a, b in pts)
            parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{d}"/>')
        for (a, b), (xv, yv) in zip(pts, [(a, b) for a, b in zip(x, values, strict=False) if b is not None], strict=True):
            parts.append(
                f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3" fill="{color}"><title>{escape(name)} at '
                f"{_fmt(xv)}: {_fmt(yv)}</title></circle>"
            )
    for v in (x_min, (x_min + x_max) / 2, x_max):
        parts.append(
            f'<text x="{px(v):.1f}" y="{_H - _PAD_B + 14}" text-anchor="middle" font-size="9">{_fmt(v)}</text>'
        )
    if x_label:
        parts.append(f'<text x="{_W / 2}" y="{_H - 4}" text-anchor="middle" font-size="10">{escape(x_label)}</text>')
    if len(series) > 1 or series:
        _legend(parts, list(series))
    parts.append("</svg>")
    return "".join(parts)
