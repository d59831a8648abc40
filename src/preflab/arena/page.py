"""A self-contained HTML page of a leaderboard: tables and inline SVG plots, no scripts, no CDN.

Sections (each a ``<section>`` with an ``id`` tests and readers can find): ``ratings`` (the
table, every rating with its interval and rank interval), ``ratings-plot`` (dots with interval
bars), ``win-rate`` (observed win-rate matrix), ``predicted-win`` (P(row beats column) from the
fit), ``battle-counts`` (heatmap), ``style`` (style-controlled ratings, when fitted) and
``hygiene`` (what was filtered).
"""

from __future__ import annotations

import math
from html import escape

import numpy as np

from preflab.arena.report import Leaderboard, ModelRow

__all__ = ["render_leaderboard_html", "render_leaderboard_sections"]

_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:1rem 0}
th,td{padding:.25rem .6rem;border-bottom:1px solid #ddd}
td.num{text-align:right;font-variant-numeric:tabular-nums}caption{text-align:left;font-weight:600}
svg text{font-family:system-ui,sans-serif}.muted{color:#777}
"""


def _fmt(value: float) -> str:
    return f"{value:.1f}"


def _ratings_table(rows: tuple[ModelRow, ...], caption: str, table_id: str) -> str:
    body = []
    for r in rows:
        body.append(
            "<tr>"
            f'<td class="rank">{escape(r.rank_interval)}</td>'
            f'<td class="model">{escape(r.model)}</td>'
            f'<td class="num rating">{_fmt(r.rating)}</td>'
            f'<td class="num interval">{_fmt(r.ci_low)} – {_fmt(r.ci_high)}</td>'
            f'<td class="num">+{_fmt(r.ci_high - r.rating)} / −{_fmt(r.rating - r.ci_low)}</td>'
            f'<td class="num battles">{r.battles}</td>'
            "</tr>"
        )
    return (
        f'<table id="{table_id}"><caption>{escape(caption)}</caption>'
        "<thead><tr><th>Rank (interval)</th><th>Model</th><th>Rating</th>"
        "<th>Interval</th><th>±</th><th>Battles</th></tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _ratings_svg(rows: tuple[ModelRow, ...]) -> str:
    label_w, plot_w, row_h = 220, 520, 20
    low = min(r.ci_low for r in rows)
    high = max(r.ci_high for r in rows)
    span = max(high - low, 1.0)
    low, high = low - 0.05 * span, high + 0.05 * span

    def x(v: float) -> float:
        return label_w + (v - low) / (high - low) * plot_w

    height = row_h * len(rows) + 40
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + plot_w + 20}" '
        f'height="{height}" role="img" aria-label="ratings with intervals">'
    ]
    ticks = np.linspace(low, high, 6)
    for t in ticks:
        parts.append(
            f'<line x1="{x(t):.1f}" y1="10" x2="{x(t):.1f}" y2="{height - 25}" stroke="#eee"/>'
            f'<text x="{x(t):.1f}" y="{height - 10}" font-size="10" text-anchor="middle">'
            f"{t:.0f}</text>"
        )
    for n, r in enumerate(rows):
        y = 20 + n * row_h
        parts.append(
            f'<g class="rating"><title>{escape(r.model)}: {_fmt(r.rating)} '
            f"({_fmt(r.ci_low)} – {_fmt(r.ci_high)}), rank {escape(r.rank_interval)}</title>"
            f'<text x="{label_w - 6}" y="{y + 4}" font-size="11" text-anchor="end">'
            f"{escape(r.model)}</text>"
            f'<line x1="{x(r.ci_low):.1f}" y1="{y}" x2="{x(r.ci_high):.1f}" y2="{y}" '
            'stroke="#4a6fa5" stroke-width="2"/>'
            f'<circle cx="{x(r.rating):.1f}" cy="{y}" r="3.5" fill="#1f3b63"/></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _color(value: float, diverging: bool) -> str:
    if math.isnan(value):
        return "#f4f4f4"
    if diverging:  # 0 → red, 0.5 → white, 1 → blue
        t = max(0.0, min(1.0, value))
        if t < 0.5:
            s = (0.5 - t) * 2
            r, g, b = 255, int(255 - 140 * s), int(255 - 140 * s)
        else:
            s = (t - 0.5) * 2
            r, g, b = int(255 - 140 * s), int(255 - 100 * s), 255
    else:  # 0 → white, 1 → dark green
        t = max(0.0, min(1.0, value))
        r, g, b = int(255 - 200 * t), int(255 - 110 * t), int(255 - 180 * t)
    return f"#{r:02x}{g:02x}{b:02x}"


def _heatmap_svg(
    models: tuple[str, ...], values: np.ndarray, *, diverging: bool, label: str, digits: int
) -> str:
    k = len(models)
    cell = 34 if k <= 12 else max(10, 420 // k)
    margin = min(200, 20 + 6 * max(len(m) for m in models))  # room for the longest label
    show_numbers = cell >= 24
    finite = values[np.isfinite(values)]
    top = float(finite.max()) if finite.size and not diverging else 1.0
    size = margin + cell * k + 10
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" role="img" '
        f'aria-label="{escape(label)}">'
    ]
    for n, m in enumerate(models):
        parts.append(
            f'<text x="{margin - 4}" y="{margin + n * cell + cell / 2 + 4:.1f}" font-size="10" '
            f'text-anchor="end">{escape(m)}</text>'
            f'<text transform="translate({margin + n * cell + cell / 2 + 4:.1f},{margin - 4}) '
            f'rotate(-60)" font-size="10">{escape(m)}</text>'
        )
    for r in range(k):
        for c in range(k):
            v = float(values[r, c])
            shade = v if diverging else (v / top if top > 0 else 0.0)
            text = "–" if math.isnan(v) else f"{v:.{digits}f}"
            parts.append(
                f'<rect class="cell" x="{margin + c * cell}" y="{margin + r * cell}" '
                f'width="{cell}" height="{cell}" fill="{_color(shade, diverging)}" stroke="#fff">'
                f"<title>{escape(models[r])} vs {escape(models[c])}: {text}</title></rect>"
            )
            if show_numbers and r != c and not math.isnan(v):
                parts.append(
                    f'<text x="{margin + c * cell + cell / 2:.1f}" '
                    f'y="{margin + r * cell + cell / 2 + 3:.1f}" font-size="9" '
                    f'text-anchor="middle">{text}</text>'
                )
    parts.append("</svg>")
    return "".join(parts)


def render_leaderboard_html(board: Leaderboard, *, title: str = "Leaderboard") -> str:
    """Return a self-contained HTML page (inline CSS and SVG; opens offline).

    Args:
        board: the leaderboard (:func:`~preflab.arena.report.build_leaderboard`).
        title: page title.

    Returns:
        The HTML text.
    """
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{escape(title)}</h1>{render_leaderboard_sections(board)}</body></html>\n"
    )


def render_leaderboard_sections(board: Leaderboard) -> str:
    """Return the body of the leaderboard page: the intro paragraph and its ``<section>``s.

    Every text from the data (model names, notes) is escaped, so the fragment can be placed
    in another page as it is (the app's leaderboard page does).

    Args:
        board: the leaderboard.

    Returns:
        HTML text (no ``<html>``, ``<head>`` or CSS).
    """
    s = board.settings
    conf = int(round(100 * board.bootstrap.confidence))
    anchor = (
        f", anchor {escape(str(s['anchor']))} = {s['anchor_rating']:g}" if s.get("anchor") else ""
    )
    tie_param = (
        f", fitted tie parameter {board.fit.tie_parameter:.3f}"
        if board.fit.tie_parameter is not None
        else ""
    )
    intro = (
        f"<p>{s['battles']} battles among {s['models']} models. Bradley–Terry fit, ties: "
        f"{escape(str(s['ties']))}, both-bad: {escape(str(s['both_bad']))}{anchor}{tie_param}. "
        f"Intervals: {conf}% bootstrap percentile intervals over {board.bootstrap.rounds} rounds "
        f"(seed {s['seed']}); rank intervals from non-overlapping intervals."
        + (
            f" {board.bootstrap.regularized_rounds} rounds left a model unbeaten or winless "
            "and used a weak prior (l2 = 1e-6)."
            if board.bootstrap.regularized_rounds
            else ""
        )
        + "</p>"
    )
    sections = [
        f'<section id="ratings"><h2>Ratings</h2>'
        f"{_ratings_table(board.rows, f'Ratings with {conf}% intervals', 'ratings-table')}"
        "</section>",
        f'<section id="ratings-plot"><h2>Ratings with intervals</h2>{_ratings_svg(board.rows)}'
        "</section>",
        '<section id="win-rate"><h2>Win rate (row beats column; ties count half)</h2>'
        + _heatmap_svg(
            board.models, board.win_rate, diverging=True, label="win-rate matrix", digits=2
        )
        + "</section>",
        '<section id="predicted-win"><h2>Predicted win probability (Bradley–Terry)</h2>'
        + _heatmap_svg(
            board.models,
            board.predicted_win,
            diverging=True,
            label="predicted win probability",
            digits=2,
        )
        + "</section>",
        '<section id="battle-counts"><h2>Battles per pair</h2>'
        + _heatmap_svg(
            board.models, board.battle_counts, diverging=False, label="battle counts", digits=0
        )
        + "</section>",
    ]
    if board.style_rows is not None and board.style_fit is not None:
        coefs = ", ".join(f"{escape(k)} {v:+.3f}" for k, v in board.style_fit.coefficients.items())
        sections.append(
            '<section id="style"><h2>Style-controlled ratings</h2>'
            f"<p>Covariates (logit per standard deviation of the normalized difference): "
            f"{coefs or 'none varied'}.</p>"
            + _ratings_table(board.style_rows, "Ratings with style control", "style-table")
            + "</section>"
        )
    if board.hygiene is not None:
        rows = "".join(
            f"<tr><td>{escape(st.name)}</td><td>{escape(st.reason)}</td>"
            f'<td class="num">{st.dropped if st.applied else "not applied"}</td>'
            f"<td>{escape(st.note)}</td></tr>"
            for st in board.hygiene.steps
        )
        sections.append(
            '<section id="hygiene"><h2>Filtered votes</h2>'
            f"<p>{board.hygiene.rows_in} votes in, {board.hygiene.rows_out} kept.</p>"
            '<table id="hygiene-table"><thead><tr><th>Filter</th><th>Why</th><th>Dropped</th>'
            f"<th>Note</th></tr></thead><tbody>{rows}</tbody></table></section>"
        )
    return intro + "".join(sections)
