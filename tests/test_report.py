"""The report: pure rendering of token documents, their history and their logs into one HTML page."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest

from lrt_workflow.report import Section, log_files, render, token_views
from lrt_workflow.report.attempts import duration_text, from_history, from_times, view
from lrt_workflow.report.charts import TimeAxis, tick_text

T0 = 1714550400  # 2024-05-01 08:00:00 UTC
OBSID = "L229507"


def token(sb: int, events: list[tuple], *, final: dict | None = None, stderr: bytes | None = None,
          stdout: bytes | None = b"ok\n", links: int = 10):
    """A token document as the worker leaves it, with ``history`` from ``(event, seconds after T0, details)``."""
    doc = {"_id": f"demo_{OBSID}_SB{sb:03d}", "type": "demo", "OBSID": OBSID, "STARTSB": f"{sb:03d}",
           "lock": 0, "done": 0, "status": "todo", "output": "", "exit_code": "", "scrub_count": 0,
           "hostname": "", "times": {}, "history": []}
    for name, offset, *details in events:
        when = T0 + offset
        doc["history"].append({"event": name, "time": when, **(details[0] if details else {})})
        doc["times"][name] = when
        if name in ("reset", "expired"):
            doc["scrub_count"] += 1
    doc.update(final or {})
    files = {"srm.txt": "".join(f"srm://example/SB{sb + i:03d}.tar\n" for i in range(links)).encode()}
    if stdout is not None:
        files["stdout.log"] = stdout
    if stderr is not None:
        files["stderr.log"] = stderr
    return doc, files


def claim(offset, worker="pilot-a", host="node1", **extra):
    return ("locked", offset, {"worker": f"{host}:{worker}", "host": host, **extra})


def done_fields(offset, worker="pilot-a", host="node1", code=0):
    return {"lock": T0 + offset - 5, "done": T0 + offset, "status": "done" if code == 0 else "error",
            "output": code, "exit_code": code, "hostname": host, "worker_id": f"{host}:{worker}"}


EVIL = b"".join(f"line {i}: working\n".encode() for i in range(40)) + (
    b"Traceback: </pre><script>alert('pwned')</script><img src=x onerror=alert(1)>\n"
    b"FATAL: disk quota exceeded on /scratch\n")


def sample_run():
    """A run with what a real one has: retries, a failure, a dead pilot, a stopped pilot, old tokens."""
    tokens = [
        token(0, [("created", 0), claim(2, slurm_job_id="4711"), ("running", 3), ("done", 40, {"exit_code": 0})],
              final={**done_fields(40), "slurm_job_id": "4711"}),
        token(10, [("created", 0), claim(2, "pilot-b", "node2"), ("running", 4),
                   ("done", 55, {"exit_code": 0})], final=done_fields(55, "pilot-b", "node2")),
        # failed twice, then succeeded on its third attempt
        token(20, [("created", 0), claim(41), ("running", 42), ("error", 50, {"exit_code": 3}), ("reset", 50),
                   claim(56, "pilot-b", "node2"), ("running", 57), ("error", 70, {"exit_code": 3}), ("reset", 70),
                   claim(71), ("running", 72), ("done", 110, {"exit_code": 0})], final=done_fields(110)),
        # failed three times: given up, with an evil stderr
        token(30, [("created", 0), claim(51), ("running", 52), ("error", 60, {"exit_code": 2}), ("reset", 60),
                   claim(71, "pilot-b", "node2"), ("running", 72), ("error", 80, {"exit_code": 2}), ("reset", 80),
                   claim(111), ("running", 112), ("error", 125, {"exit_code": 2})],
              final={**done_fields(125, code=2), "scrub_count": 2}, stderr=EVIL),
        # its pilot died: the lease ran out, another pilot ran it
        token(40, [("created", 0), claim(81, "pilot-c", "node3"), ("running", 82),
                   ("expired", 400, {"host": "node3", "silent_seconds": 300}),
                   claim(401), ("running", 402), ("done", 430, {"exit_code": 0})], final=done_fields(430)),
        # its pilot was stopped by a signal and gave it back
        token(50, [("created", 0), claim(126, "pilot-b", "node2"), ("running", 127),
                   ("released", 150, {"reason": "SIGTERM"}), claim(431), ("running", 432),
                   ("done", 470, {"exit_code": 0})], final=done_fields(470)),
        # died twice: given up without an exit code
        token(60, [("created", 0), claim(151, "pilot-b", "node2"), ("running", 152), ("expired", 450),
                   claim(471, "pilot-d", "node4"), ("running", 472), ("failed", 800, {"reason": "went silent"})],
              final={"lock": T0 + 471, "done": T0 + 800, "status": "error", "output": -1, "exit_code": -1,
                     "hostname": "node4", "error_reason": "went silent", "scrub_count": 1},
              stdout=None),
    ]
    # an old token, made before history: only times, lock and done
    old, files = token(70, [], final={**done_fields(90), "times": {"locked": T0 + 85, "running": T0 + 86,
                                                                    "done": T0 + 90}})
    del old["history"]
    tokens.append((old, files))
    return tokens


def sample_section(**extra):
    return Section(name="demo_manifest", tokens=sample_run(), **extra)


def attempts_of(token_id_suffix):
    for t in token_views(sample_section()):
        if t.token_id.endswith(token_id_suffix):
            return t
    raise KeyError(token_id_suffix)


# --- attempts ----------------------------------------------------------------------------


def test_retries_are_separate_attempts_with_their_pilots_and_exit_codes():
    t = attempts_of("SB020")
    assert [a.outcome for a in t.attempts] == ["error", "error", "done"]
    assert [a.exit_code for a in t.attempts] == [3, 3, 0]
    assert [a.host for a in t.attempts] == ["node1", "node2", "node1"]
    assert [(a.start - T0, a.run_start - T0, a.end - T0) for a in t.attempts] == [(41, 42, 50), (56, 57, 70),
                                                                                   (71, 72, 110)]
    assert t.state == "done" and not t.failed and t.from_history


def test_expired_lease_ends_the_attempt_and_the_next_pilot_starts_a_new_one():
    t = attempts_of("SB040")
    assert [(a.outcome, a.host) for a in t.attempts] == [("expired", "node3"), ("done", "node1")]
    assert t.attempts[0].end == T0 + 400


def test_released_and_given_up_tokens():
    assert [a.outcome for a in attempts_of("SB050").attempts] == ["released", "done"]
    gone = attempts_of("SB060")
    assert [a.outcome for a in gone.attempts] == ["expired", "failed"]
    assert gone.failed and gone.given_up and gone.reason == "went silent"


def test_slurm_job_id_and_links_come_from_the_token():
    t = attempts_of("SB000")
    assert t.slurm_job_id == "4711" and t.attempts[0].slurm_job_id == "4711"
    assert t.links == 10 and t.start_sb == "000"


def test_history_out_of_order_and_a_claim_without_an_end():
    attempts, given_up, _ = from_history([
        {"event": "done", "time": 30, "exit_code": 0}, {"event": "locked", "time": 10, "host": "h"},
        {"event": "locked", "time": 20, "host": "k"}, {"event": "bogus"}, "not an event",
    ])
    assert [(a.start, a.end, a.outcome, a.host) for a in attempts] == [(10, 20, "lost", "h"), (20, 30, "done", "k")]
    assert not given_up


def test_fallback_from_times_gives_the_last_attempt_only():
    t = attempts_of("SB070")
    assert not t.from_history
    assert [(a.start - T0, a.run_start - T0, a.end - T0, a.outcome) for a in t.attempts] == [(85, 86, 90, "done")]


@pytest.mark.parametrize("doc, expected", [
    ({"lock": 5, "done": 9, "status": "error", "exit_code": 1, "times": {"locked": 5, "running": 6, "error": 9}},
     [(5, 6, 9, "error", 1)]),
    # the worker's retry: error and reset in one save, back to todo
    ({"lock": 0, "done": 0, "status": "todo", "last_exit_code": 4, "scrub_count": 1,
      "times": {"locked": 5, "running": 6, "error": 9, "reset": 9}}, [(5, 6, 9, "error", 4)]),
    # an old token: no times at all, only the claim and the end
    ({"lock": 5, "done": 8, "status": "done", "output": 0}, [(5, None, 8, "done", 0)]),
    ({"lock": 5, "done": 0, "status": "running", "times": {"locked": 5, "running": 6}},
     [(5, 6, None, "running", None)]),
    ({"lock": 0, "done": 0, "status": "todo", "times": {"locked": 5, "released": 7}},
     [(5, None, 7, "released", None)]),
    ({"lock": 0, "done": 0, "status": "todo", "times": {}}, []),
])
def test_fallback_from_times(doc, expected):
    assert [(a.start, a.run_start, a.end, a.outcome, a.exit_code) for a in from_times(doc)] == expected


def test_counts_come_from_the_tokens_when_not_given():
    page = render("run", Section("step", sample_run()))
    assert re.search(r">done 6</li>.*>error 2</li>.*>total 8</li>", page)
    page = render("run", Section("step", sample_run(), {"done": 5, "error": 3, "total": 8}))
    assert ">done 5</li>" in page and ">error 3</li>" in page


# --- durations ---------------------------------------------------------------------------


@pytest.mark.parametrize("seconds, coarse, text", [
    (0, True, "under 1 s"), (0.0004, False, "under 1 ms"), (0.25, False, "250 ms"), (3.25, False, "3.2 s"),
    (3, True, "3 s"), (42, True, "42 s"), (185, True, "3 min 05 s"), (7800, True, "2 h 10 min"), (None, False, "–"),
])
def test_durations_read_well(seconds, coarse, text):
    assert duration_text(seconds, coarse) == text


def test_sub_second_jobs_are_not_labelled_zero_seconds():
    quick = [({"_id": f"q{i}", "lock": 100, "done": 100, "status": "done", "exit_code": 0,
               "history": [{"event": "locked", "time": 100}, {"event": "done", "time": 100, "exit_code": 0}]}, {})
             for i in range(3)]
    precise = [({"_id": "p", "lock": 100, "done": 101, "status": "done", "exit_code": 0,
                 "history": [{"event": "locked", "time": 100.5}, {"event": "running", "time": 100.6},
                             {"event": "done", "time": 100.85, "exit_code": 0}]}, {})]
    page = render("quick", [Section("whole seconds", quick), Section("floats", precise)])
    assert "0.0 s" not in page and "median 0 s" not in page
    assert "Every successful run took under 1 s." in page
    assert "Every successful run took 250 ms." in page
    assert "ran 250 ms" in page  # the tooltip
    assert tick_text(0.25, 0.05) == "250 ms" and tick_text(90, 30) == "90 s" and tick_text(600, 300) == "10 min"


def test_time_axis_ticks_are_in_real_units_and_cover_the_run():
    ticks = TimeAxis(T0, 800).ticks()
    assert [label for _, label in ticks] == ["0 min", "2 min", "4 min", "6 min", "8 min", "10 min", "12 min",
                                             "14 min"][:len(ticks)]
    assert ticks[-1][0] <= TimeAxis(T0, 800).x(T0 + 800) + 0.01
    # times in whole seconds: no ticks of 200 ms that the data cannot tell apart
    assert [label for _, label in TimeAxis(T0, 1, coarse=True).ticks()] == ["0 s", "1 s"]
    assert [label for _, label in TimeAxis(T0, 1.0).ticks()][:2] == ["0 ms", "200 ms"]


# --- the page ----------------------------------------------------------------------------


class Page(HTMLParser):
    """The parts of the page the tests look at: tags with attributes, and the text under some of them."""

    def __init__(self, text):
        super().__init__()
        self.tags, self.stack, self.text = [], [], {}
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in ("br", "img", "meta", "line", "rect", "polyline"):
            self.stack.append(tag)

    def handle_endtag(self, tag):
        while self.stack and self.stack.pop() != tag:
            pass

    def handle_data(self, data):
        for tag in set(self.stack):
            self.text[tag] = self.text.get(tag, "") + data

    def all(self, tag, **attrs):
        return [a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())]


def test_page_is_one_file_with_no_external_url():
    page = render("run of L229507", sample_section())
    parsed = Page(page)
    for _, attrs in parsed.tags:
        for key in ("src", "href", "action", "xlink:href", "data", "poster"):
            value = attrs.get(key) or ""
            assert not re.match(r"\s*(https?:|//|file:|ftp:|data:)", value, re.I), (key, value)
    assert not parsed.all("link") and not any("src" in a for _, a in parsed.tags if _ in ("script", "img"))
    assert "@import" not in page and "url(" not in page
    assert "http://" not in page and "https://" not in page  # not even an SVG namespace
    assert page.count("<script>") == 1 and page.count("<style>") == 1


def test_failures_come_first_with_an_escaped_tail_of_stderr():
    page = render("run", sample_section())
    parsed = Page(page)
    failed = [a["data-token"] for a in parsed.all("article")]
    assert failed == [f"demo_{OBSID}_SB030", f"demo_{OBSID}_SB060"]
    assert page.index('class="failure"') < page.index("<svg") < page.index("<table")
    assert "<script>alert" not in page and "<img src=x" not in page and "</pre><script>" not in page
    assert "&lt;/pre&gt;&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;" in page
    tail = parsed.text["pre"]
    assert "FATAL: disk quota exceeded" in tail and "line 39: working" in tail
    assert "line 21: working" not in tail  # only the last 20 lines
    assert page.count("No log was attached to this token.") == 1  # SB060's pilots died before attaching any
    assert "given up: went silent" in page


def test_a_failure_without_logs_says_so():
    doc, _ = sample_run()[3]
    page = render("run", Section("s", [(doc, {})]))
    assert "No log was attached to this token." in page


def test_the_token_table_has_a_row_per_token_and_sortable_headers():
    page = render("run", sample_section(), log_dir="logs")
    parsed = Page(page)
    rows = parsed.all("tr")[1:]  # the header row first
    assert [r["data-token"] for r in rows] == sorted(doc["_id"] for doc, _ in sample_run())
    headers = [a for a in parsed.all("th")]
    assert [h["data-type"] for h in headers][:3] == ["text", "num", "num"]
    assert parsed.all("table")[0]["class"] == "tokens sortable"
    assert "addEventListener(\"click\"" in page
    header_text = parsed.text["th"]
    for name in ("Token", "First SB", "Links", "State", "Exit code", "Scrubs", "Host", "Pilot", "SLURM job",
                 "Last run", "Logs"):
        assert name in header_text
    assert '<a href="logs/demo_L229507_SB030.stderr.log">stderr</a>' in page
    assert 'href="logs/demo_L229507_SB060.stderr.log"' not in page  # no link to a log that was not attached


def test_log_files_are_what_the_page_links_to():
    files = log_files(sample_section(), log_dir="logs/tokens")
    assert files["logs/tokens/demo_L229507_SB030.stderr.log"] == EVIL
    page = render("run", sample_section(), log_dir="logs/tokens")
    linked = {a["href"] for a in Page(page).all("a") if a["href"].startswith("logs/")}
    assert linked == set(files)
    assert log_files(Section("s", [({"_id": "../../x"}, {"stderr.log": b"e"})])) == {"logs/_.._.._x.stderr.log": b"e"}
    with pytest.raises(ValueError):
        render("run", sample_section(), log_dir="https://example.org/logs")


def test_timeline_has_a_bar_per_attempt_and_a_tooltip_for_each():
    page = render("run", sample_section())
    svg = ET.fromstring(re.search(r"<svg class=\"timeline\".*?</svg>", page, re.S).group(0))
    groups = svg.findall(".//g[@class='attempt']")
    assert len(groups) == sum(len(t.attempts) for t in token_views(sample_section())) == 15
    titles = [g.find("title").text for g in groups]
    assert any("demo_L229507_SB020: attempt 2 of 3, failed (job exit code not 0) (exit code 3)" in t
               and "host node2" in t for t in titles)
    assert any("lease ran out" in t for t in titles)
    for bar in svg.findall(".//rect[@class='bar']"):
        assert float(bar.get("width")) >= 3 and float(bar.get("height")) > 0
    assert "time since the first claim (2024-05-01 08:00:02 UTC)" in page


def test_throughput_is_cumulative_with_labelled_axes():
    page = render("run", sample_section())
    svg = ET.fromstring(re.search(r"<svg class=\"throughput\".*?</svg>", page, re.S).group(0))
    done = svg.find(".//polyline[@data-series='done']")
    ys = [float(p.split(",")[1]) for p in done.get("points").split()]
    assert ys == sorted(ys, reverse=True)  # never goes down: cumulative
    assert "tokens finished (cumulative)" in page and "done: 6 by" in page


def test_multiple_sections_and_empty_ones():
    page = render("pipeline", [sample_section(), {"name": "second <step>", "tokens": [], "counts": None}])
    assert page.count('<section class="step"') == 2 and "second &lt;step&gt;" in page
    assert "This step has no tokens." in page and "no timeline" in page


def test_view_of_a_bare_document_and_garbage_fields():
    t = view({"_id": "x", "lock": "nonsense", "done": None, "scrub_count": "2", "history": "not a list"})
    assert t.attempts == [] and t.scrub_count == 2 and t.state == "locked"


def test_many_tokens_get_one_strip_per_pilot():
    pilots = ["node1:11:aa", "node2:22:bb", "node3:33:cc"]
    tokens = []
    for i in range(200):
        worker, start = pilots[i % 3], T0 + (i // 3) * 2
        tokens.append({"_id": f"t{i:03d}", "lock": start, "done": start + 1, "status": "done", "exit_code": 0,
                       "history": [{"event": "locked", "time": start, "worker": worker, "host": worker[:5]},
                                   {"event": "done", "time": start + 1, "exit_code": 0}]})
    page = render("big", Section("s", tokens))
    svg = ET.fromstring(re.search(r"<svg class=\"timeline\".*?</svg>", page, re.S).group(0))
    labels = [t.find("title").text for t in svg.findall(".//text[@class='row']")]
    assert labels == pilots
    assert len(svg.findall(".//g[@class='attempt']")) == 200
    assert "3 pilots; each bar is one attempt" in page


def test_a_token_still_running_is_drawn_to_the_end_of_the_run():
    running = {"_id": "r", "lock": T0, "done": 0, "status": "running",
               "history": [{"event": "locked", "time": T0}, {"event": "running", "time": T0 + 1}]}
    finished = {"_id": "f", "lock": T0, "done": T0 + 60, "status": "done", "exit_code": 0,
                "history": [{"event": "locked", "time": T0}, {"event": "done", "time": T0 + 60, "exit_code": 0}]}
    views = {t.token_id: t for t in token_views(Section("s", [running, finished]))}
    assert views["r"].attempts[0].outcome == "running" and views["r"].state == "locked"
    page = render("run", Section("s", [running, finished]))
    svg = ET.fromstring(re.search(r"<svg class=\"timeline\".*?</svg>", page, re.S).group(0))
    bars = {g.get("data-token"): g.find("rect[@class='bar']") for g in svg.findall(".//g[@class='attempt']")}
    right = {k: float(r.get("x")) + float(r.get("width")) for k, r in bars.items()}
    assert right["r"] == pytest.approx(right["f"])
    assert "still running when reported" in page


def test_hostile_ids_hosts_and_step_names_are_escaped_everywhere():
    evil = '"><script>alert(1)</script>'
    doc = {"_id": evil, "STARTSB": evil, "hostname": evil, "worker_id": evil, "slurm_job_id": evil,
           "lock": T0, "done": T0 + 5, "status": "error", "exit_code": evil,
           "history": [{"event": "locked", "time": T0, "worker": evil, "host": evil, "slurm_job_id": evil},
                       {"event": "error", "time": T0 + 5, "exit_code": evil, "reason": evil}]}
    page = render(evil, Section(evil, [(doc, {"stderr.log": evil.encode(), "stdout.log": b""})]))
    assert "<script>alert" not in page and page.count("<script") == 1
    parsed = Page(page)
    assert len(parsed.all("script")) == 1 and parsed.all("h1")
    assert not [key for _, attrs in parsed.tags for key in attrs if key.startswith("on") or "script" in key]
    assert '<a href="logs/%22%3E%3Cscript%3Ealert%281%29%3C_script%3E.stderr.log">' in page  # "/" made "_"
