"""The run picture: pure rendering from polls and token times."""

import xml.etree.ElementTree as ET

from lrt_workflow import report

POLLS = [
    {"time": 100.0, "todo": 3, "locked": 0, "done": 0, "error": 0},
    {"time": 105.0, "todo": 1, "locked": 2, "done": 0, "error": 0},
    {"time": 110.0, "todo": 0, "locked": 0, "done": 2, "error": 1},
]
TOKENS = [
    {"_id": "t_b", "output": 0, "times": {"running": 10, "done": 14}},
    {"_id": "t_a", "output": 2, "exit_code": 2, "times": {"running": 10, "error": 11}},
    {"_id": "t_c", "output": "", "exit_code": 0, "times": {"running": 20, "done": 30}},
    {"_id": "never_ran", "output": "", "times": {}},
]


def test_run_times_are_per_token_sorted_and_skip_tokens_that_never_ran():
    assert report.run_times(TOKENS) == [("t_a", 1.0, False), ("t_b", 4.0, True), ("t_c", 10.0, True)]


def test_states_svg_is_valid_svg_with_one_line_per_state():
    svg = ET.fromstring(report.states_svg(POLLS))
    lines = svg.findall("{http://www.w3.org/2000/svg}polyline")
    assert len(lines) == 4
    done = [line for line in lines if line.get("stroke") == report.STATE_COLOURS["done"]][0]
    points = [tuple(map(float, p.split(","))) for p in done.get("points").split()]
    assert len(points) == 3
    assert points[0][1] > points[-1][1]  # more done at the end: higher on the page


def test_run_time_bars_are_red_for_failures():
    svg = ET.fromstring(report.run_times_svg(report.run_times(TOKENS)))
    bars = svg.findall("{http://www.w3.org/2000/svg}rect")
    assert [bar.find("{http://www.w3.org/2000/svg}title").text.split(":")[0] for bar in bars] == ["t_a", "t_b", "t_c"]
    assert bars[0].get("fill") == report.STATE_COLOURS["error"]
    heights = [float(bar.get("height")) for bar in bars]
    assert heights[2] > heights[1] > heights[0]


def test_page_holds_both_pictures_the_counts_and_escapes_names():
    page = report.render("run <of> L1", {"counts": {"done": 2, "error": 1, "total": 3}}, POLLS,
                         TOKENS + [{"_id": "<script>", "output": 0, "times": {"running": 1, "done": 2}}])
    assert page.count("<svg") == 2
    assert "done 2, error 1, total 3" in page
    assert "run &lt;of&gt; L1" in page and "<script>" not in page


def test_empty_inputs_say_so():
    assert "No polls" in report.states_svg([])
    assert "No token" in report.run_times_svg([])
