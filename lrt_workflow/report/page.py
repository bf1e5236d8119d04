"""The HTML around the pictures: counts, failures first, the token table, the style and the sorting script."""

from __future__ import annotations

import re
import statistics
import urllib.parse
from typing import Mapping, Sequence

from lrt_workflow.report.attempts import OUTCOMES, STATES, TokenView, clock, duration_text, tail_lines
from lrt_workflow.report.charts import esc, throughput_svg, timeline_svg

TAIL_LINES = 20
STATE_COLOURS = {"todo": "#9aa5b1", "locked": "#f0a202", "done": "#2e8b57", "error": "#c0392b"}
#: (header, sort type) of the token table, in order.
COLUMNS = (("Token", "text"), ("First SB", "num"), ("Links", "num"), ("State", "text"), ("Exit code", "num"),
           ("Scrubs", "num"), ("Attempts", "num"), ("Host", "text"), ("Pilot", "text"), ("SLURM job", "num"),
           ("Last run", "num"), ("Logs", "text"))

CSS = """
:root { --ink: #1f2933; --muted: #616e7c; --line: #d9e2ec; --bg: #f5f7fa; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink); margin: 0;
       background: var(--bg); }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 20px; margin: 0 0 8px; }
h3 { font-size: 15px; margin: 22px 0 6px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
section.step { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 18px 22px;
               margin: 20px 0; }
nav a { margin-right: 12px; }
.counts { display: flex; flex-wrap: wrap; gap: 8px; margin: 6px 0 10px; padding: 0; list-style: none; }
.counts li { border-radius: 12px; padding: 2px 10px; color: #fff; font-weight: 600; }
.counts li.total { background: #fff; color: var(--ink); border: 1px solid var(--line); }
.summary, .empty, figcaption, .hint { color: var(--muted); }
.failures { border-left: 4px solid #c0392b; background: #fdf2f1; padding: 8px 14px; border-radius: 4px; }
.failures.none { border-left-color: #2e8b57; background: #eef8f2; }
.failure { margin: 10px 0 14px; }
.failure h4 { margin: 0; font: 600 14px/1.4 ui-monospace, Menlo, Consolas, monospace; }
.failure p { margin: 2px 0 4px; }
pre.tail { background: #1f2933; color: #f5f7fa; padding: 8px 10px; border-radius: 4px; overflow-x: auto;
           margin: 0; font: 12px/1.4 ui-monospace, Menlo, Consolas, monospace; }
figure { margin: 0; } svg { max-width: 100%; height: auto; display: block; }
svg text { font: 11px system-ui, sans-serif; fill: var(--ink); }
svg text.row { font-family: ui-monospace, Menlo, Consolas, monospace; }
svg text.label { fill: var(--muted); }
svg .axis { stroke: #52606d; } svg .grid { stroke: #e4e7eb; } svg .stripe { fill: #f7f9fb; }
svg g.attempt:hover rect { stroke: #1f2933; stroke-width: 1; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 16px; margin: 4px 0 8px; padding: 0; list-style: none; }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px; margin-right: 5px;
          vertical-align: -1px; }
.table-wrap { overflow-x: auto; }
table.tokens { border-collapse: collapse; width: 100%; font-size: 12.5px; }
table.tokens th, table.tokens td { padding: 3px 7px; border-bottom: 1px solid var(--line); text-align: left;
                                   white-space: nowrap; }
table.tokens td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.tokens thead th { position: sticky; top: 0; background: #fff; border-bottom: 2px solid #9aa5b1; }
.js table.sortable thead th { cursor: pointer; user-select: none; }
.js table.sortable thead th:hover { background: #f0f4f8; }
th[aria-sort=ascending]::after { content: " \\25B2"; } th[aria-sort=descending]::after { content: " \\25BC"; }
tr.state-error td { background: #fdf2f1; } tr.state-locked td { background: #fff8e6; }
.state { display: inline-block; border-radius: 8px; padding: 0 7px; color: #fff; font-size: 12px; }
.hint { display: none; } .js .hint { display: block; }
td .pilot { display: inline-block; max-width: 14em; overflow: hidden; text-overflow: ellipsis;
            vertical-align: bottom; }
code, .mono { font-family: ui-monospace, Menlo, Consolas, monospace; }
"""

SCRIPT = """
document.documentElement.classList.add("js");
document.querySelectorAll("table.sortable").forEach(function (table) {
  var heads = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(heads, function (th, column) {
    th.tabIndex = 0;
    function sort() {
      var ascending = th.getAttribute("aria-sort") !== "ascending";
      Array.prototype.forEach.call(heads, function (other) { other.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      var numeric = th.dataset.type === "num", body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows).map(function (row, index) {
        var cell = row.cells[column], raw = cell.dataset.sort !== undefined ? cell.dataset.sort : cell.textContent;
        var key = numeric ? parseFloat(raw) : raw.trim().toLowerCase();
        return { row: row, key: key, blank: numeric ? isNaN(key) : key === "", index: index };
      });
      rows.sort(function (a, b) {
        if (a.blank !== b.blank) return a.blank ? 1 : -1;  /* empty cells last, either way */
        var order = a.key < b.key ? -1 : a.key > b.key ? 1 : a.index - b.index;
        return ascending ? order : -order;
      });
      rows.forEach(function (item) { body.appendChild(item.row); });
    }
    th.addEventListener("click", sort);
    th.addEventListener("keydown", function (event) { if (event.key === "Enter") sort(); });
  });
});
"""


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-") or "step"


def log_path(log_dir: str, token_id: str, name: str) -> str:
    """Where a token's log goes, relative to the report: ``<log_dir>/<token id>.<name>``.

    A ``/`` or ``\\`` in the id becomes ``_`` and a leading dot is escaped, so no id leaves ``log_dir``."""
    file = re.sub(r"[/\\\x00]", "_", f"{token_id}.{name}")
    if file.startswith("."):
        file = "_" + file
    return f"{log_dir}/{file}" if log_dir else file


def log_href(log_dir: str, token_id: str, name: str) -> str:
    """The relative link to `log_path`."""
    return urllib.parse.quote(log_path(log_dir, token_id, name), safe="/")


def _log_links(token: TokenView, log_dir: str) -> str:
    links = [f'<a href="{esc(log_href(log_dir, token.token_id, name))}">{name.split(".")[0]}'
             f'{"" if token.logs[name].strip() else " (empty)"}</a>'
             for name in ("stdout.log", "stderr.log") if name in token.logs]
    return " ".join(links) if links else '<span class="empty">none</span>'


def _number_or_blank(value) -> str:
    try:
        return repr(float(value))
    except (TypeError, ValueError):
        return ""


def _row(token: TokenView, row_id: str, log_dir: str) -> str:
    last = token.last
    duration = last.duration if last else None
    state = token.state + (" (given up)" if token.given_up else "")
    cells = [
        (f'<span class="mono">{esc(token.token_id)}</span>', token.token_id),
        (esc(token.start_sb), _number_or_blank(token.start_sb)),
        ("" if token.links is None else str(token.links), "" if token.links is None else str(token.links)),
        (f'<span class="state" style="background:{STATE_COLOURS.get(token.state, "#777")}">{esc(state)}</span>',
         state),
        ("" if token.exit_code is None else esc(token.exit_code), _number_or_blank(token.exit_code)),
        (str(token.scrub_count), str(token.scrub_count)),
        (str(len(token.attempts)) + ("" if token.from_history or not token.attempts else " (last only)"),
         str(len(token.attempts))),
        (esc(token.host), token.host),
        (f'<span class="mono pilot" title="{esc(token.worker)}">{esc(token.worker)}</span>', token.worker),
        (esc(token.slurm_job_id), _number_or_blank(token.slurm_job_id)),
        (esc(duration_text(duration, last.coarse)) if duration is not None else "",
         "" if duration is None else repr(duration)),
        (_log_links(token, log_dir), ""),
    ]
    tds = "".join(
        f'<td class="{"num" if kind == "num" else "text"}" data-sort="{esc(key)}">{content}</td>'
        for (content, key), (_, kind) in zip(cells, COLUMNS)
    )
    return f'<tr id="{row_id}" class="state-{esc(token.state)}" data-token="{esc(token.token_id)}">{tds}</tr>'


def token_table(tokens: Sequence[TokenView], prefix: str, log_dir: str) -> str:
    if not tokens:
        return '<p class="empty">This step has no tokens.</p>'
    heads = "".join(f'<th scope="col" data-type="{kind}">{esc(name)}</th>' for name, kind in COLUMNS)
    rows = "\n".join(_row(t, f"{prefix}-t{i}", log_dir) for i, t in enumerate(tokens))
    return (f'<p class="hint">Click a column header to sort by it; click again to reverse.</p>'
            f'<div class="table-wrap"><table class="tokens sortable"><thead><tr>{heads}</tr></thead>'
            f"<tbody>\n{rows}\n</tbody></table></div>")


def failures(tokens: Sequence[TokenView], row_ids: Mapping[str, str], log_dir: str) -> str:
    failed = [t for t in tokens if t.failed]
    if not failed:
        retried = sum(1 for t in tokens if t.scrub_count and t.state == "done")
        extra = f" ({retried} succeeded after a retry)" if retried else ""
        return f'<div class="failures none"><p>No token failed{extra}.</p></div>'
    items = []
    for token in failed:
        last = token.last
        facts = [f"exit code {token.exit_code if token.exit_code is not None else 'unknown'}",
                 f"{len(token.attempts)} attempt{'s' if len(token.attempts) != 1 else ''}",
                 f"{token.scrub_count} reset{'s' if token.scrub_count != 1 else ''}"]
        if token.host:
            facts.append(f"host {token.host}")
        if last and last.end is not None:
            facts.append(f"ended {clock(last.end)} after {duration_text(last.duration, last.coarse)}")
        if token.given_up and token.reason:
            facts.append(f"given up: {token.reason}")
        name, data = ("stderr", token.logs["stderr.log"]) if token.logs.get("stderr.log", b"").strip() else (
            ("stdout", token.logs["stdout.log"]) if token.logs.get("stdout.log", b"").strip() else (None, b""))
        if name:
            tail = (f'<p>last {TAIL_LINES} lines of {name}:</p>'
                    f'<pre class="tail">{esc(tail_lines(data, TAIL_LINES))}</pre>')
        else:
            tail = '<p class="empty">No log was attached to this token.</p>'
        logs = f" Logs: {_log_links(token, log_dir)}" if token.logs else ""
        items.append(
            f'<article class="failure" data-token="{esc(token.token_id)}">'
            f'<h4><a href="#{row_ids[token.token_id]}">{esc(token.token_id)}</a></h4>'
            f"<p>{esc('; '.join(facts))}.{logs}</p>{tail}</article>"
        )
    return (f'<div class="failures"><p><strong>{len(failed)} token{"s" if len(failed) != 1 else ""} '
            f'failed</strong>, each with the end of its log:</p>{"".join(items)}</div>')


def summary(tokens: Sequence[TokenView]) -> str:
    attempts = sum(len(t.attempts) for t in tokens)
    ran = [t for t in tokens if t.attempts]
    text = (f"{len(tokens)} tokens; {len(ran)} were claimed by a pilot, in {attempts} attempt"
            f"{'s' if attempts != 1 else ''}; {sum(1 for t in tokens if len(t.attempts) > 1)} ran more than once.")
    finished = [t.last for t in tokens if t.state == "done" and t.last and t.last.duration is not None]
    if finished:
        durations = sorted(a.duration for a in finished)
        coarse = all(a.coarse for a in finished)
        median = statistics.median(durations)
        shortest, longest = duration_text(durations[0], coarse), duration_text(durations[-1], coarse)
        if shortest == longest:
            text += f" Every successful run took {shortest}."
        else:
            text += (f" Successful runs took {shortest} to {longest}, median {duration_text(median, coarse)}.")
    if any(not t.from_history for t in ran):
        text += " Tokens without a history show only their last attempt."
    return f'<p class="summary">{esc(text)}</p>'


def legend(tokens: Sequence[TokenView]) -> str:
    present = {a.outcome for t in tokens for a in t.attempts}
    items = "".join(f'<li><span class="swatch" style="background:{colour}"></span>{esc(words)}</li>'
                    for outcome, (colour, words) in OUTCOMES.items() if outcome in present)
    return f'<ul class="legend" aria-label="legend">{items}</ul>' if items else ""


def counts_list(counts: Mapping[str, int]) -> str:
    items = "".join(f'<li style="background:{STATE_COLOURS[s]}">{s} {int(counts.get(s, 0) or 0)}</li>'
                    for s in STATES)
    return f'<ul class="counts">{items}<li class="total">total {int(counts.get("total", 0) or 0)}</li></ul>'


def section_html(index: int, name: str, counts: Mapping[str, int], tokens: Sequence[TokenView],
                 log_dir: str) -> str:
    prefix = f"s{index}"
    ordered = sorted(tokens, key=lambda t: t.token_id)
    row_ids = {t.token_id: f"{prefix}-t{i}" for i, t in enumerate(ordered)}
    return f"""<section class="step" id="{prefix}-{slug(name)}" data-step="{esc(name)}">
<h2>{esc(name)}</h2>
{counts_list(counts)}
{summary(ordered)}
<h3>Failures</h3>
{failures(ordered, row_ids, log_dir)}
<h3>Timeline</h3>
{legend(ordered)}
{timeline_svg(ordered)}
<h3>Throughput</h3>
{throughput_svg(ordered)}
<h3>Tokens</h3>
{token_table(ordered, prefix, log_dir)}
</section>"""


def page(title: str, sections: Sequence[tuple[str, Mapping[str, int], Sequence[TokenView]]], log_dir: str) -> str:
    nav = ""
    if len(sections) > 1:
        nav = "<nav>" + "".join(f'<a href="#s{i}-{slug(name)}">{esc(name)}</a>'
                                for i, (name, _, _) in enumerate(sections)) + "</nav>"
    body = "\n".join(section_html(i, name, counts, tokens, log_dir)
                     for i, (name, counts, tokens) in enumerate(sections))
    order = ("the failed tokens first, then the timeline of every attempt, the throughput and every token"
             + (" of each" if len(sections) > 1 else ""))
    steps = f"{len(sections)} steps: " if len(sections) > 1 else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title>
<style>{CSS}</style>
</head><body><main>
<h1>{esc(title)}</h1>
<p class="summary">{steps}{order.capitalize() if not steps else order}. Times are UTC; the log links point into
<code>{esc(log_dir or ".")}/</code> next to this file.</p>
{nav}
{body}
</main>
<script>{SCRIPT}</script>
</body></html>
"""
