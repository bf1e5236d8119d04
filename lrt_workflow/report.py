"""A picture of a run: token states over time, and how long each token's job took.

Pure: it turns the wait step's poll records and the tokens' ``times`` into
one self-contained HTML page with inline SVG, which any browser shows and
which needs no plotting library.
"""

from __future__ import annotations

import html
from typing import Iterable, Mapping, Sequence

STATE_COLOURS = {"todo": "#9aa5b1", "locked": "#f0a202", "done": "#2e8b57", "error": "#c0392b"}
WIDTH, HEIGHT, MARGIN = 760, 260, 48


def run_times(tokens: Iterable[Mapping]) -> list[tuple[str, float, bool]]:
    """(token id, seconds its last job ran, whether it succeeded) for the tokens that ran."""
    result = []
    for token in tokens:
        times = token.get("times") or {}
        start = times.get("running")
        end = times.get("done") or times.get("error")
        if start and end and end >= start:
            ok = str(token.get("output")) == "0" or str(token.get("exit_code")) == "0"
            result.append((token["_id"], float(end - start), ok))
    return sorted(result)


def _axes(x_label: str, y_label: str, y_max: float) -> list[str]:
    bottom, right = HEIGHT - MARGIN, WIDTH - 12
    parts = [
        f'<line x1="{MARGIN}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="#333"/>',
        f'<line x1="{MARGIN}" y1="12" x2="{MARGIN}" y2="{bottom}" stroke="#333"/>',
        f'<text x="{(MARGIN + right) / 2}" y="{HEIGHT - 10}" text-anchor="middle">{html.escape(x_label)}</text>',
        f'<text x="14" y="{HEIGHT / 2}" transform="rotate(-90 14 {HEIGHT / 2})" text-anchor="middle">'
        f"{html.escape(y_label)}</text>",
        f'<text x="{MARGIN - 4}" y="16" text-anchor="end">{y_max:g}</text>',
        f'<text x="{MARGIN - 4}" y="{bottom}" text-anchor="end">0</text>',
    ]
    return parts


def states_svg(polls: Sequence[Mapping]) -> str:
    """Lines of the count of each state at each poll (``{"time", "todo", "locked", "done", "error"}``)."""
    if not polls:
        return "<p>No polls were recorded.</p>"
    t0 = polls[0]["time"]
    span = max(polls[-1]["time"] - t0, 1e-9)
    top = max(max(p.get(s, 0) for s in STATE_COLOURS) for p in polls) or 1
    plot_w, plot_h = WIDTH - MARGIN - 12, HEIGHT - MARGIN - 12
    parts = _axes(f"seconds since the first poll ({span:.0f} s in all)", "tokens", top)
    for state, colour in STATE_COLOURS.items():
        points = " ".join(
            f"{MARGIN + (p['time'] - t0) / span * plot_w:.1f},{12 + plot_h - p.get(state, 0) / top * plot_h:.1f}"
            for p in polls
        )
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}"/>')
    legend = "".join(
        f'<tspan fill="{colour}" dx="10">■ {state}</tspan>' for state, colour in STATE_COLOURS.items()
    )
    parts.append(f'<text x="{MARGIN}" y="10" font-size="11">{legend}</text>')
    return _svg(parts)


def run_times_svg(times: Sequence[tuple[str, float, bool]]) -> str:
    """One bar per token: how long its job ran, red where it failed."""
    if not times:
        return "<p>No token recorded a run.</p>"
    top = max(seconds for _, seconds, _ in times) or 1
    plot_w, plot_h = WIDTH - MARGIN - 12, HEIGHT - MARGIN - 12
    bar = plot_w / len(times)
    parts = _axes(f"{len(times)} tokens, in id order", "seconds", round(top, 1))
    for index, (token_id, seconds, ok) in enumerate(times):
        h = seconds / top * plot_h
        colour = STATE_COLOURS["done" if ok else "error"]
        parts.append(
            f'<rect x="{MARGIN + index * bar:.1f}" y="{12 + plot_h - h:.1f}" width="{max(bar - 1, 0.5):.1f}" '
            f'height="{h:.1f}" fill="{colour}"><title>{html.escape(token_id)}: {seconds:.1f} s</title></rect>'
        )
    return _svg(parts)


def _svg(parts: list[str]) -> str:
    body = "\n  ".join(parts)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
            f'font-family="sans-serif" font-size="12">\n  {body}\n</svg>')


def render(title: str, status: Mapping, polls: Sequence[Mapping], tokens: Iterable[Mapping]) -> str:
    """The whole page."""
    times = run_times(tokens)
    counts = status.get("counts", {})
    summary = ", ".join(f"{state} {counts.get(state, 0)}" for state in (*STATE_COLOURS, "total"))
    median = sorted(s for _, s, _ in times)[len(times) // 2] if times else 0
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body {{ font-family: sans-serif; margin: 2em; }} h2 {{ margin-top: 1.5em; }}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p>Final counts: {html.escape(summary)}.</p>
<h2>Token states over time</h2>
{states_svg(polls)}
<h2>Run time per token</h2>
<p>{len(times)} tokens ran; median {median:.1f} s.</p>
{run_times_svg(times)}
</body></html>
"""
