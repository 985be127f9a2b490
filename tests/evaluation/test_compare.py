"""``python -m billp.evaluation compare`` on two tiny runs that differ in a template."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from billp.evaluation.compare import PairingError, compare_runs, pair_episodes
from billp.evaluation.metrics import METRICS
from billp.records.read import load_run
from tests.evaluation.conftest import PROMPT_EDIT, TINY_TEST_USERS, make_episode, run_cli

pytestmark = pytest.mark.slow  # shares the session's two tiny simulate runs


def test_compare_cli_shows_metrics_and_the_template_diff(
    tiny_runs: tuple[Path, Path], eval_cache: Path, tmp_path: Path
) -> None:
    run_a, run_b = tiny_runs
    out = tmp_path / "cmp.json"
    done = run_cli(
        ["-m", "billp.evaluation", "compare", str(run_a), str(run_b), "--json", str(out)],
        eval_cache,
    )
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert f"over {TINY_TEST_USERS} episode pairs" in text
    assert "planner.j2" in text and PROMPT_EDIT.strip() in text
    assert "prompts_dir" in text  # the config difference
    data = json.loads(out.read_text())
    assert data["pairs"] == TINY_TEST_USERS and data["difference"] == "B - A"
    assert [t["name"] for t in data["templates"]] == ["planner.j2"]
    diff = data["templates"][0]["diff"]
    assert "--- A/planner.j2" in diff and "+++ B/planner.j2" in diff
    assert any(line.startswith("+") and PROMPT_EDIT.strip() in line for line in diff.splitlines())
    assert [c["key"] for c in data["config"]] == ["prompts_dir"]
    for name in ("len", "r_each", "r_traj"):
        m = data["metrics"][name]
        assert m["diff"] == pytest.approx(m["b"] - m["a"], abs=1e-9)
        assert 0 < m["p_value"] <= 1


def test_compare_a_run_with_itself(tiny_runs: tuple[Path, Path]) -> None:
    run = load_run(tiny_runs[0])
    result = compare_runs(run, run, resamples=200)
    assert result.pairs == TINY_TEST_USERS
    assert result.templates == [] and result.config == [] and result.warnings == []
    for spec in METRICS:
        r = result.results[spec.name]
        if r.a == r.a:  # defined
            assert r.difference.mean == pytest.approx(0.0, abs=1e-9)
            assert r.p_value == 1.0


def test_compare_refuses_different_seeds(tiny_runs: tuple[Path, Path], tmp_path: Path) -> None:
    run_a = tiny_runs[0]
    other = tmp_path / "other-seed"
    other.mkdir()
    for line_file in ("episodes.jsonl",):
        lines = [json.loads(x) for x in (run_a / line_file).read_text().splitlines()]
        for line in lines:
            line["seed"] += 1
        (other / line_file).write_text("".join(json.dumps(x) + "\n" for x in lines))
    (other / "config.toml").write_text((run_a / "config.toml").read_text())
    with pytest.raises(PairingError, match=r"different seeds.*--allow-seed-mismatch"):
        compare_runs(load_run(run_a), load_run(other))
    allowed = compare_runs(
        load_run(run_a), load_run(other), allow_seed_mismatch=True, resamples=100
    )
    assert allowed.pairs == TINY_TEST_USERS and "different seeds" in allowed.warnings[0]


def test_pairing_by_user() -> None:
    a = [
        make_episode(f"test-{i}", [0], [3.0], terminated=True, user_id=u, index=i)
        for i, u in enumerate([5, 6, 7])
    ]
    b = [
        make_episode(f"test-{i}", [0], [3.0], terminated=True, user_id=u, index=i)
        for i, u in enumerate([6, 7, 8])
    ]
    left, right, warnings = pair_episodes(a, b, allow_seed_mismatch=False)
    assert [e.user_id for e in left] == [6, 7] == [e.user_id for e in right]
    assert warnings == ["users differ: 1 only in A, 1 only in B; comparing the 2 shared users"]
    with pytest.raises(PairingError, match="share no user"):
        pair_episodes(a[:1], b[2:], allow_seed_mismatch=False)
