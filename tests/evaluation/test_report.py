"""``python -m billp.evaluation report``: the static page, then the page in headless Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from billp.agents.billp_traces import BillpStepTrace
from billp.evaluation.report import build_report
from billp.records import read_steps
from billp.records.read import load_runs
from tests.evaluation.chromium import Page, filter_episodes, find_chromium
from tests.evaluation.conftest import TINY_TEST_USERS, run_cli

pytestmark = pytest.mark.slow  # shares the session's two tiny simulate runs

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HOSTILE = "</script><img src=x onerror=\"document.title='pwned'\"> & <b>bold</b>"
"""A plan thought an LLM might write; it must show as text and run nothing."""


def report_data(page: str) -> dict:
    match = re.search(
        r'<script id="report-data" type="application/json">(.*?)</script>', page, re.S
    )
    assert match, "no inline data element"
    return json.loads(match.group(1))


@pytest.fixture(scope="module")
def report(
    tiny_runs: tuple[Path, Path], eval_cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    out = tmp_path_factory.mktemp("report") / "report.html"
    done = run_cli(
        ["-m", "billp.evaluation", "report", *map(str, tiny_runs), "-o", str(out)], eval_cache
    )
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="module")
def hostile_report(tiny_runs: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of run A whose first plan thought is hostile markup."""
    folder = tmp_path_factory.mktemp("hostile")
    run = folder / tiny_runs[0].name
    shutil.copytree(tiny_runs[0], run)
    lines = read_steps(run)
    target = next(x for x in lines if x.episode == "test-0000" and x.step == 1)
    assert isinstance(target.trace, BillpStepTrace) and target.trace.plan is not None
    target.trace.plan.thought = HOSTILE
    (run / "steps.jsonl").write_text("".join(json.dumps(x.line()) + "\n" for x in lines))
    out = folder / "hostile.html"
    out.write_text(build_report(load_runs([run]), resamples=100), encoding="utf-8")
    return out


def test_page_is_self_contained(report: Path) -> None:
    page = report.read_text(encoding="utf-8")
    assert 'http-equiv="Content-Security-Policy"' in page and "default-src &#x27;none&#x27;" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "@import" not in page and "url(http" not in page
    assert page.count('src="data:image/png;base64,') == 4
    for title in ("Metrics", "Plots", "Trajectory browser"):
        assert f"<h2>{title}</h2>" in page


def test_page_data_has_every_step_field(report: Path) -> None:
    data = report_data(report.read_text(encoding="utf-8"))
    assert [len(r["episodes"]) for r in data["runs"]] == [3 + TINY_TEST_USERS] * 2
    episode = next(e for e in data["runs"][0]["episodes"] if e["key"] == "test-0000")
    first = episode["steps"][0]
    for field in ("plan", "shortlist", "choice", "reward", "value", "memory_hits"):
        assert first[field] is not None, field
    assert first["value"]["source"] in {"session", "memory"}  # agent.value_source's default
    assert episode["outcome"] and episode["reflection"] is not None
    last = episode["steps"][-1]
    if episode["end"] != "capped":
        assert last["quit_explanation"].startswith(episode["end"].replace("_", " "))
    # every referenced item has a title
    assert str(first["action"]) in data["items"]
    assert all(str(i) in data["items"] for i in first["shortlist"])


def test_hostile_text_is_escaped_in_the_source(hostile_report: Path) -> None:
    page = hostile_report.read_text(encoding="utf-8")
    assert "<img src=x" not in page
    assert report_data(page)["runs"][0]["episodes"][3]["steps"][0]["plan"]["thought"] == HOSTILE


# ------------------------------------------------------------------ in Chromium
@pytest.fixture(scope="module")
def browser() -> Iterator[Page]:
    binary = find_chromium()
    if binary is None:
        message = (
            "chromium is not installed: bash scripts/install.sh test (apt-get install chromium)"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    with Page(binary) as page:
        yield page


def test_report_in_chromium(browser: Page, report: Path, tmp_path: Path) -> None:
    browser.open(report)
    assert (
        browser.evaluate("document.querySelectorAll('#episode-list button').length")
        == TINY_TEST_USERS
    )
    assert browser.evaluate("document.getElementById('episode-title').textContent") == "test-0000"

    only = filter_episodes(browser, "test-0001")
    assert only["listed"] == ["test-0001"] and only["shown"] == "test-0001" and only["steps"] >= 1
    train = filter_episodes(browser, "train")
    assert train["listed"] == ["train-0000", "train-0001", "train-0002"]
    none = filter_episodes(browser, "no-such-episode")
    assert none["listed"] == []
    assert "No episode matches" in browser.evaluate(
        "document.getElementById('episode-view').textContent"
    )

    # The second run is browsable too, and a user id filters as well as a key.
    user = browser.evaluate(
        "JSON.parse(document.getElementById('report-data').textContent)"
        ".runs[1].episodes.find(e => e.key === 'test-0002').user_id"
    )
    browser.evaluate(
        "(() => { const s = document.getElementById('run-select'); s.value = '1';"
        " s.dispatchEvent(new Event('change')); return 0; })()"
    )
    by_user = filter_episodes(browser, str(user))
    assert "test-0002" in by_user["listed"]
    assert all(k.startswith(("test-", "train-")) for k in by_user["listed"])

    shot = browser.screenshot(tmp_path / "report.png")
    blob = shot.read_bytes()
    assert blob.startswith(PNG_SIGNATURE) and len(blob) > 20_000
    assert browser.errors == []


def test_hostile_text_stays_text_in_chromium(browser: Page, hostile_report: Path) -> None:
    browser.open(hostile_report)
    shown = filter_episodes(browser, "test-0000")
    assert shown["shown"] == "test-0000"
    text = browser.evaluate("document.getElementById('episode-view').textContent")
    assert HOSTILE in text
    assert browser.evaluate("document.querySelectorAll('#episode-view img').length") == 0
    assert browser.evaluate("document.title") != "pwned"
    assert browser.errors == []
