"""The report in a real headless Chromium: what a person opening ``report.html`` from disk would see.

Skipped where no Chromium is installed, except under ``CI=true``, where CI
installs it (``.ci/run``) and its absence is a failure.
"""

from __future__ import annotations

import json
import os

import pytest

from browser import Browser, find_chromium, processes_using, still_running
from lrt_workflow.report import Section, log_files, render
from test_report import sample_run

FAILED = ["demo_L229507_SB030", "demo_L229507_SB060"]
ATTEMPTS = 15  # bars in the sample run's timeline


@pytest.fixture(scope="module")
def chromium():
    binary = find_chromium()
    if binary is None:
        named = os.environ.get("LRT_CHROMIUM")
        reason = (f"no Chromium: LRT_CHROMIUM={named!r} is not an executable" if named else
                  "no Chromium: none of chromium, chromium-browser, google-chrome on PATH, and LRT_CHROMIUM unset")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}; CI installs it (.ci/run), so its absence here is a failure")
        pytest.skip(reason)
    return binary


@pytest.fixture
def browser(chromium, tmp_path):
    """A fresh Chromium for one test, ended (with every helper process) however the test ends."""
    instance = Browser.launch(tmp_path / "browser", chromium)
    try:
        yield instance
    finally:
        instance.close()
        assert not still_running(instance.pids), f"Chromium processes left running: {still_running(instance.pids)}"
        assert not still_running(processes_using(str(instance.profile))), "a process still uses the Chromium profile"


@pytest.fixture
def report_file(tmp_path):
    """The report of a run with failures, retries, a dead pilot and a stopped one, with its logs beside it."""
    folder = tmp_path / "results"
    section = Section("demo_manifest", sample_run())
    for path, data in log_files(section).items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(data)
    page = folder / "report.html"
    page.write_text(render("demo run of L229507", section), encoding="utf-8")
    return page


def rows(page) -> list[str]:
    return page.evaluate("[...document.querySelectorAll('table.tokens tbody tr')].map(r => r.dataset.token)")


def column(page, index: int) -> list[str]:
    return page.evaluate(f"[...document.querySelectorAll('table.tokens tbody tr')]"
                         f".map(r => r.cells[{index}].textContent.trim())")


BARS = """(() => {
  const page = document.documentElement;
  return [...document.querySelectorAll('svg.timeline rect.bar')].map(bar => {
    bar.scrollIntoView({block: 'center', inline: 'center'});
    const r = bar.getBoundingClientRect(), style = getComputedStyle(bar);
    const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
    return {token: bar.parentNode.dataset.token, x: r.left + scrollX, y: r.top + scrollY, width: r.width,
            height: r.height, fill: style.fill, shown: style.display !== 'none' && style.visibility === 'visible',
            onTop: hit === bar, pageWidth: page.scrollWidth, pageHeight: page.scrollHeight};
  });
})()"""


def test_the_timeline_table_and_failures_are_what_a_person_sees(browser, report_file, tmp_path):
    page = browser.new_page()
    page.goto(report_file.as_uri())
    shot = page.screenshot(tmp_path / "report.png")
    assert shot.stat().st_size > 10_000

    bars = page.evaluate(BARS)
    assert len(bars) == ATTEMPTS
    for bar in bars:
        assert bar["width"] >= 2 and bar["height"] >= 4, bar
        assert 0 <= bar["x"] and bar["x"] + bar["width"] <= bar["pageWidth"] + 0.5, bar
        assert 0 <= bar["y"] and bar["y"] + bar["height"] <= bar["pageHeight"], bar
        assert bar["shown"] and bar["onTop"] and bar["fill"] not in ("none", "rgba(0, 0, 0, 0)"), bar
    retried = [b for b in bars if b["token"] == "demo_L229507_SB020"]
    assert len(retried) == 3 and len({round(b["y"]) for b in retried}) == 1  # one strip, three bars
    assert [b["x"] for b in retried] == sorted(b["x"] for b in retried)
    assert len({b["fill"] for b in retried}) == 2  # two failed attempts, then a successful one

    assert rows(page) == sorted(doc["_id"] for doc, _ in sample_run())
    assert page.evaluate("document.querySelector('table.tokens').getBoundingClientRect().height") > 8 * 15

    failures = page.evaluate("""[...document.querySelectorAll('.failure')].map(f => ({
        id: f.querySelector('h4').innerText, tail: (f.querySelector('pre') || {}).innerText || '',
        top: f.getBoundingClientRect().top + scrollY}))""")
    assert [f["id"] for f in failures] == FAILED
    assert "FATAL: disk quota exceeded on /scratch" in failures[0]["tail"]
    assert "</pre><script>alert('pwned')</script>" in failures[0]["tail"]  # shown as text, not run
    assert "line 21: working" not in failures[0]["tail"]
    timeline_top = page.evaluate("document.querySelector('svg.timeline').getBoundingClientRect().top + scrollY")
    assert all(f["top"] < timeline_top for f in failures)  # failures first
    assert page.evaluate("document.scripts.length") == 1 and page.evaluate("document.images.length") == 0
    assert page.evaluate("window.pwned === undefined")


def test_clicking_a_header_sorts_the_rows(browser, report_file):
    page = browser.new_page()
    page.goto(report_file.as_uri())
    page.click("table.tokens thead th:nth-child(5)")  # Exit code
    codes = [int(c) for c in column(page, 4)]
    assert codes == sorted(codes) and codes[0] == -1 and codes[-1] == 2
    assert rows(page)[0] == "demo_L229507_SB060"
    page.click("table.tokens thead th:nth-child(5)")
    assert [int(c) for c in column(page, 4)] == sorted(codes, reverse=True)
    assert page.evaluate("document.querySelector('table.tokens thead th:nth-child(5)').getAttribute('aria-sort')") \
        == "descending"

    page.click("table.tokens thead th:nth-child(11)")  # Last run: by seconds, not by its words
    seconds = page.evaluate("[...document.querySelectorAll('table.tokens tbody tr')]"
                            ".map(r => parseFloat(r.cells[10].dataset.sort))")
    assert seconds == sorted(seconds) and len(set(seconds)) > 3
    shown = column(page, 10)
    assert shown != sorted(shown)  # "5 min 28 s" after "51 s": the words alone would sort wrong

    page.click("table.tokens thead th:nth-child(1)")  # back to the ids
    assert rows(page) == sorted(rows(page))


def test_the_log_links_open_the_logs(browser, report_file):
    page = browser.new_page()
    page.goto(report_file.as_uri())
    page.click(".failure a[href$='SB030.stderr.log']")
    browser.wait_event("Page.loadEventFired", page.session)
    assert page.evaluate("location.href").endswith("/logs/demo_L229507_SB030.stderr.log")
    assert "FATAL: disk quota exceeded" in page.evaluate("document.body.innerText")


def test_without_javascript_the_page_is_still_readable(browser, report_file, tmp_path):
    page = browser.new_page(javascript=False)
    page.goto(report_file.as_uri())
    page.screenshot(tmp_path / "report-no-js.png")
    assert not page.evaluate("document.documentElement.classList.contains('js')")  # the script did not run
    before = rows(page)
    assert len(before) == 8
    bars = page.evaluate(BARS)
    assert len(bars) == ATTEMPTS and all(b["width"] >= 2 and b["height"] >= 4 for b in bars)
    assert page.evaluate("getComputedStyle(document.querySelector('.hint')).display") == "none"
    page.click("table.tokens thead th:nth-child(5)")
    assert rows(page) == before  # not sortable, but all there
    assert json.dumps([f for f in page.evaluate(
        "[...document.querySelectorAll('.failure h4')].map(h => h.innerText)")]) == json.dumps(FAILED)


def test_the_browser_is_gone_after_close(chromium, tmp_path):
    instance = Browser.launch(tmp_path / "browser", chromium)
    page = instance.new_page()
    page.goto("about:blank")
    instance.close()
    assert instance.process.poll() is not None
    assert not still_running(instance.pids) and not still_running(processes_using(str(instance.profile)))
    assert len(instance.pids) > 1  # it did start helpers, and they are gone too
