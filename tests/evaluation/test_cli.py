"""``python -m billp.evaluation RUN_DIR...`` end to end on tiny scripted runs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from billp.evaluation.__main__ import main
from billp.evaluation.metrics import METRICS
from billp.evaluation.output import METRICS_CSV, METRICS_JSON, SURVIVAL_CSV
from billp.evaluation.plots import PLOT_FILES
from tests.evaluation.conftest import TINY_TEST_USERS, run_cli

pytestmark = pytest.mark.slow  # shares the session's two tiny simulate runs

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CAP = 8  # env.max_steps of tests/e2e/tiny.toml


def test_eval_one_run(tiny_runs: tuple[Path, Path], eval_cache: Path, tmp_path: Path) -> None:
    run_a, _ = tiny_runs
    out = tmp_path / "out"
    done = run_cli(["-m", "billp.evaluation", str(run_a), "-o", str(out)], eval_cache)
    assert done.returncode == 0, done.stderr
    for header in ("Len", "R_each", "R_traj", "coverage", "genre H", "pop pct"):
        assert header in done.stdout
    assert "matrix/billp/seed0" in done.stdout

    data = json.loads((out / METRICS_JSON).read_text())
    (run,) = data["runs"]
    assert run["episodes"] == TINY_TEST_USERS and run["interval_over"] == "episodes"
    assert set(run["metrics"]) == {m.name for m in METRICS}
    # The point estimates agree with the runner's own summary.json.
    summary = json.loads((run_a / "summary.json").read_text())["test"]
    for name in ("len", "r_each", "r_traj", "coverage", "quit_share", "capped_share"):
        assert run["metrics"][name]["mean"] == pytest.approx(summary[name], abs=1e-6), name
        low, high = run["metrics"][name]["ci_low"], run["metrics"][name]["ci_high"]
        assert low <= run["metrics"][name]["mean"] <= high
    survival = run["survival"]
    assert survival["t"] == list(range(CAP + 1)) and survival["survival"][0] == 1.0
    assert all(a >= b for a, b in zip(survival["survival"], survival["survival"][1:], strict=False))
    # S(t) = share of episodes with Len >= t when only the cap censors
    lengths = [
        json.loads(line)["length"]
        for line in (run_a / "episodes.jsonl").open()
        if json.loads(line)["phase"] == "test"
    ]
    for t, s in enumerate(survival["survival"]):
        assert s == pytest.approx(sum(n >= t for n in lengths) / len(lengths), abs=1e-6)

    with (out / METRICS_CSV).open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 * len(METRICS)  # the run and its one-run group
    assert {r["metric"] for r in rows} == {m.name for m in METRICS}
    with (out / SURVIVAL_CSV).open() as handle:
        assert len(list(csv.DictReader(handle))) == 2 * (CAP + 1)
    for name in PLOT_FILES.values():
        blob = (out / name).read_bytes()
        assert blob.startswith(PNG_SIGNATURE) and len(blob) > 5000, name


def test_eval_several_runs_default_out_dir(tiny_runs: tuple[Path, Path]) -> None:
    run_a, run_b = tiny_runs
    # Called in-process: the default output folder is <common parent>/eval.
    assert main([str(run_a), str(run_b), "--no-plots", "--resamples", "200"]) == 0
    out = Path(__import__("os").path.commonpath([run_a, run_b])) / "eval"
    data = json.loads((out / METRICS_JSON).read_text())
    assert len(data["runs"]) == 2
    # Different planner templates: two experiments, not two seeds of one.
    assert len(data["groups"]) == 2
    assert all("@" in g["label"] for g in data["groups"])


def test_eval_folder_of_runs_and_seed_groups(tiny_runs: tuple[Path, Path], tmp_path: Path) -> None:
    run_a, _ = tiny_runs
    folder = tmp_path / "runs"
    folder.mkdir()
    # Two copies of the run with seeds 0 and 1 make one group of two seeds.
    for seed in (0, 1):
        copy = folder / f"copy-{seed}"
        copy.mkdir()
        for name in ("manifest.json", "episodes.jsonl", "steps.jsonl"):
            (copy / name).write_bytes((run_a / name).read_bytes())
        config = (run_a / "config.toml").read_text().replace("seed = 0\n", f"seed = {seed}\n", 1)
        (copy / "config.toml").write_text(config)
    out = tmp_path / "out"
    assert main([str(folder), "-o", str(out), "--no-plots", "--resamples", "200"]) == 0
    data = json.loads((out / METRICS_JSON).read_text())
    (group,) = data["groups"]
    assert group["seeds"] == [0, 1] and group["interval_over"] == "seeds"
    assert group["episodes"] == 2 * TINY_TEST_USERS
    assert group["metrics"]["len"]["mean"] == pytest.approx(
        data["runs"][0]["metrics"]["len"]["mean"]
    )


def test_eval_rejects_a_folder_without_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(tmp_path)]) == 2
    assert f"{tmp_path} is not a run directory" in capsys.readouterr().err


def test_eval_names_a_broken_episode_line(
    tiny_runs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_a, _ = tiny_runs
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.toml").write_text((run_a / "config.toml").read_text())
    (broken / "episodes.jsonl").write_text('{"key": "test-0000", "user_id": 1}\n')
    assert main([str(broken), "--no-plots"]) == 2
    err = capsys.readouterr().err
    assert "episodes.jsonl: record 1 is not a valid EpisodeRecord (field phase" in err
