"""The two pictures of a section, as inline SVG: the timeline of attempts and the throughput.

Both share one time axis: seconds (or minutes, hours) since the first claim,
with the wall-clock time of that first claim in the axis title.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Sequence

from lrt_workflow.report.attempts import OUTCOMES, Attempt, TokenView, clock, duration_text

WIDTH = 960
LEFT, RIGHT = 200, 24
PLOT = WIDTH - LEFT - RIGHT
#: Above this many tokens the timeline has one strip per pilot instead of one per token.
MAX_TOKEN_ROWS = 150
NICE_STEPS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600,
              900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800)
MIN_BAR = 3.0  # pixels: a job of no measurable length still shows


def esc(value) -> str:
    return html.escape(str(value), quote=True)


@dataclass
class TimeAxis:
    """Maps unix times onto the plot, and labels them in real units."""

    t0: float
    span: float
    coarse: bool = False  #: times in whole seconds: no ticks finer than a second

    @classmethod
    def of(cls, tokens: Sequence[TokenView]) -> "TimeAxis | None":
        starts = [a.start for t in tokens for a in t.attempts]
        if not starts:
            return None
        ends = [t for tok in tokens for a in tok.attempts for t in (a.end, a.run_start, a.start) if t is not None]
        t0, coarse = min(starts), all(float(t).is_integer() for t in ends)
        return cls(t0, max(max(ends) - t0, 1.0 if coarse else 0.001), coarse)

    def x(self, when: float) -> float:
        return LEFT + (when - self.t0) / self.span * PLOT

    @property
    def step(self) -> float:
        return next((s for s in NICE_STEPS if self.span / s <= 8 and (s >= 1 or not self.coarse)), NICE_STEPS[-1])

    def ticks(self) -> list[tuple[float, str]]:
        step, result, k = self.step, [], 0
        while k * step <= self.span * 1.0001:
            result.append((self.x(self.t0 + k * step), tick_text(k * step, step)))
            k += 1
        return result

    def title(self) -> str:
        return f"time since the first claim ({clock(self.t0)}); {duration_text(self.span)} in all"

    def draw(self, top: float, bottom: float) -> list[str]:
        """Vertical grid lines, tick labels under ``bottom``, and the axis title."""
        parts = [f'<line x1="{LEFT}" y1="{bottom}" x2="{LEFT + PLOT}" y2="{bottom}" class="axis"/>']
        for x, label in self.ticks():
            parts.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom}" class="grid"/>')
            parts.append(f'<text x="{x:.1f}" y="{bottom + 14}" text-anchor="middle" class="tick">{esc(label)}</text>')
        parts.append(f'<text x="{LEFT + PLOT / 2}" y="{bottom + 32}" text-anchor="middle" class="label">'
                     f"{esc(self.title())}</text>")
        return parts


def tick_text(offset: float, step: float) -> str:
    """A tick's label in the unit its step suits: ms, s, min or h."""
    if step < 1:
        return f"{offset * 1000:.0f} ms" if step < 0.01 or offset < 1 else f"{round(offset, 3):g} s"
    if step < 60:
        return f"{offset:g} s"
    if step < 3600:
        return f"{round(offset / 60, 2):g} min"
    if step < 86400:
        return f"{round(offset / 3600, 2):g} h"
    return f"{round(offset / 86400, 2):g} d"


def _short(label: str, limit: int = 28) -> str:
    return label if len(label) <= limit else "…" + label[-(limit - 1):]


def attempt_tooltip(token: TokenView, attempt: Attempt) -> str:
    words = OUTCOMES.get(attempt.outcome, ("", attempt.outcome))[1]
    lines = [f"{token.token_id}: attempt {attempt.number} of {len(token.attempts)}, {words}"]
    if attempt.exit_code not in (None, ""):
        lines[0] += f" (exit code {attempt.exit_code})"
    lines.append(f"host {attempt.host or token.host or 'unknown'}"
                 + (f", pilot {attempt.worker}" if attempt.worker else "")
                 + (f", SLURM job {attempt.slurm_job_id}" if attempt.slurm_job_id else ""))
    lines.append(f"claimed {clock(attempt.start)}")
    if attempt.run_start is not None and attempt.run_start > attempt.start:
        lines.append(f"waited {duration_text(attempt.run_start - attempt.start, attempt.coarse)} before running")
    lines.append(f"ran {duration_text(attempt.duration, attempt.coarse)}" if attempt.end is not None
                 else "no end recorded")
    if attempt.reason:
        lines.append(attempt.reason)
    return "\n".join(lines)


def _bar(axis: TimeAxis, token: TokenView, attempt: Attempt, y: float, h: float) -> str:
    end = attempt.end if attempt.end is not None else (
        axis.t0 + axis.span if attempt.outcome == "running" else attempt.start)
    x1, x2 = axis.x(attempt.start), axis.x(end)
    width = max(x2 - x1, MIN_BAR)
    colour = OUTCOMES.get(attempt.outcome, ("#777", ""))[0]
    parts = [f'<g class="attempt" data-token="{esc(token.token_id)}" data-outcome="{esc(attempt.outcome)}">'
             f"<title>{esc(attempt_tooltip(token, attempt))}</title>"]
    if attempt.run_start is not None and attempt.run_start > attempt.start and x2 - x1 > MIN_BAR:
        xr = axis.x(attempt.run_start)  # claimed, fetching inputs: the lighter part
        parts.append(f'<rect class="wait" x="{x1:.1f}" y="{y:.1f}" width="{max(xr - x1, 0.5):.1f}" '
                     f'height="{h:.1f}" fill="{colour}" opacity="0.4"/>')
        x1, width = xr, max(x2 - xr, MIN_BAR)
    parts.append(f'<rect class="bar" x="{x1:.1f}" y="{y:.1f}" width="{width:.1f}" height="{h:.1f}" '
                 f'fill="{colour}" stroke="#fff" stroke-width="0.75"/></g>')
    return "".join(parts)


def timeline_svg(tokens: Sequence[TokenView]) -> str:
    """One strip per token (per pilot when there are many), one bar per attempt."""
    ran = [t for t in tokens if t.attempts]
    axis = TimeAxis.of(ran)
    if axis is None:
        return '<p class="empty">No token was claimed by a pilot, so there is no timeline.</p>'
    if len(ran) <= MAX_TOKEN_ROWS:
        rows = [(t.token_id, [(t, a) for a in t.attempts])
                for t in sorted(ran, key=lambda t: (t.first_start, t.token_id))]
        kind = "token"
    else:
        pilots: dict[str, list] = {}
        for t in ran:
            for a in t.attempts:
                pilots.setdefault(a.worker or a.host or t.host or "unknown pilot", []).append((t, a))
        rows = sorted(pilots.items(), key=lambda item: min(a.start for _, a in item[1]))
        kind = "pilot"
    row_h = 18 if len(rows) <= 60 else 10
    top = 8
    bottom = top + row_h * len(rows)
    parts = []
    for index, (label, bars) in enumerate(rows):
        y = top + index * row_h
        if index % 2:
            parts.append(f'<rect class="stripe" x="{LEFT}" y="{y}" width="{PLOT}" height="{row_h}"/>')
        if row_h >= 14 or index % max(1, 14 // row_h) == 0:
            parts.append(f'<text x="{LEFT - 6}" y="{y + row_h / 2 + 4}" text-anchor="end" class="row">'
                         f"<title>{esc(label)}</title>{esc(_short(label))}</text>")
    parts.extend(axis.draw(top, bottom))
    for index, (_, bars) in enumerate(rows):
        y = top + index * row_h + 2
        parts.extend(_bar(axis, t, a, y, row_h - 4) for t, a in bars)
    height = bottom + 42
    caption = (f"{len(rows)} {kind}s; each bar is one attempt, from the pilot's claim (lighter part: "
               "fetching inputs) to the end of its job")
    return _svg(parts, height, f"Timeline: {caption}", "timeline")


def throughput_svg(tokens: Sequence[TokenView]) -> str:
    """Cumulative tokens finished over time: done, and failed attempts, on the timeline's axis."""
    axis = TimeAxis.of([t for t in tokens if t.attempts])
    series = {
        "done": sorted(a.end for t in tokens for a in t.attempts if a.outcome == "done" and a.end is not None),
        "error": sorted(a.end for t in tokens for a in t.attempts
                        if a.outcome in ("error", "failed", "expired") and a.end is not None),
    }
    if axis is None or not any(series.values()):
        return '<p class="empty">No job has finished yet, so there is no throughput.</p>'
    top, height_plot = 12, 180
    bottom = top + height_plot
    y_max = max(len(s) for s in series.values())
    y_step = next(s for s in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000, 10 ** 9)
                  if y_max / s <= 6)
    y_top = max(y_step, -(-y_max // y_step) * y_step)

    def y(count: float) -> float:
        return bottom - count / y_top * height_plot

    parts = [f'<line x1="{LEFT}" y1="{top}" x2="{LEFT}" y2="{bottom}" class="axis"/>']
    for value in range(0, y_top + 1, y_step):
        parts.append(f'<line x1="{LEFT}" y1="{y(value):.1f}" x2="{LEFT + PLOT}" y2="{y(value):.1f}" class="grid"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y(value) + 4:.1f}" text-anchor="end" class="tick">{value}</text>')
    parts.append(f'<text x="{LEFT - 44}" y="{(top + bottom) / 2}" text-anchor="middle" class="label" '
                 f'transform="rotate(-90 {LEFT - 44} {(top + bottom) / 2})">tokens finished (cumulative)</text>')
    parts.extend(axis.draw(top, bottom))
    names = {"done": "done", "error": "failed or lost attempts"}
    for name, ends in series.items():
        if not ends:
            continue
        colour = OUTCOMES[name][0]
        points, count = [f"{LEFT:.1f},{y(0):.1f}"], 0
        for when in ends:
            points.append(f"{axis.x(when):.1f},{y(count):.1f}")
            count += 1
            points.append(f"{axis.x(when):.1f},{y(count):.1f}")
        points.append(f"{LEFT + PLOT:.1f},{y(count):.1f}")
        parts.append(f'<polyline class="series" data-series="{name}" fill="none" stroke="{colour}" '
                     f'stroke-width="2" points="{" ".join(points)}"><title>{esc(names[name])}: {count} '
                     f"by {esc(duration_text(ends[-1] - axis.t0))}</title></polyline>")
    key_x = LEFT + 10
    for name in (n for n in series if series[n]):
        parts.append(f'<line x1="{key_x}" y1="{top + 10}" x2="{key_x + 18}" y2="{top + 10}" '
                     f'stroke="{OUTCOMES[name][0]}" stroke-width="3"/><text x="{key_x + 23}" y="{top + 14}">'
                     f"{esc(names[name])} ({len(series[name])})</text>")
        key_x += 190
    rate = _rate(series["done"], axis)
    return _svg(parts, bottom + 42, f"Throughput: tokens finished over time{rate}", "throughput")


def _rate(ends: list[float], axis: TimeAxis) -> str:
    if not ends:
        return ""
    took = ends[-1] - axis.t0
    text = f"; {len(ends)} done {duration_text(took, axis.coarse)} after the first claim"
    if took >= 1:
        text += f", {len(ends) / took * 60:.3g} per minute"
    return text


def _svg(parts: list[str], height: float, label: str, kind: str) -> str:
    body = "\n".join(parts)
    return (f'<figure class="chart {kind}"><svg class="{kind}" viewBox="0 0 {WIDTH} {height:.0f}" '
            f'width="{WIDTH}" height="{height:.0f}" role="img" aria-label="{esc(label)}">\n{body}\n</svg>'
            f"<figcaption>{esc(label)}</figcaption></figure>")
