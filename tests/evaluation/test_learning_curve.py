"""eval/learning_curve.py: the run plan, the numbers, and a tiny scripted end-to-end run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from billp.evaluation.executors import RAY_INSTALL_HINT
from tests.evaluation.conftest import load_eval_script

learning_curve = load_eval_script("learning_curve")


def test_train_pass_snapshots_each_point_and_tests_learn_nothing(tmp_path: Path) -> None:
    train = learning_curve.train_args("matrix", "billp", 3, [0, 4, 8], tmp_path, ["--x", "1"])
    assert train[:2] == ["--x", "1"]
    at = train.index("--memory.snapshot-after")
    assert train[at + 1 : at + 3] == ["4", "8"]
    assert train[train.index("--train-users") + 1] == "8"
    assert train[train.index("--test-users") + 1] == "0"
    test = learning_curve.test_args("matrix", "billp", 3, 4, tmp_path / "snap", 5, tmp_path, [])
    assert test[test.index("--memory.learn-during-test") + 1] == "false"
    assert test[test.index("--memory.init") + 1] == str(tmp_path / "snap")
    empty = learning_curve.test_args("matrix", "billp", 3, 0, None, 5, tmp_path, [])
    assert "--memory.init" not in empty


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--points", "4", "8"], "include 0"),
        (["--points", "0", "6"], "multiples of wave_size"),
        (["--agents", "random"], "LLM agents"),
        (["--variant", "no-equals-sign"], "expected NAME=FLAGS"),
        (["--variant", "a=", "--variant", "a=--seed 1"], "given twice"),
        (["--variant", "a=--agent.knowledge clairvoyant"], "invalid simulate flags"),
    ],
)
def test_bad_arguments_exit_2_before_any_run(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = learning_curve.main([*argv, "--out-dir", str(tmp_path), "--llm.backend", "scripted"])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_executor_ray_without_ray_exits_2_before_any_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails, installed or not
    code = learning_curve.main(["--out-dir", str(tmp_path), "--executor", "ray"])
    assert code == 2
    assert RAY_INSTALL_HINT in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
def test_tiny_curve_end_to_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, billp_cache: Path
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(billp_cache))
    out = tmp_path / "out"
    code = learning_curve.main(
        [
            "--worlds",
            "matrix",
            "--agents",
            "billp",
            "actonly",
            "--points",
            "0",
            "4",
            "--test-users",
            "2",
            "--out-dir",
            str(out),
            "--markdown",
            str(tmp_path / "curve.md"),
            "--json",
            str(tmp_path / "curve.json"),
            "--plot",
            str(tmp_path / "curve.png"),
            "--llm.backend",
            "scripted",
            "--memory.embedder",
            "hash",
            "--env.max-steps",
            "4",
        ]
    )
    assert code == 0
    payload = json.loads((tmp_path / "curve.json").read_text())
    by_agent = {r["agent"]: r for r in payload["results"]}
    assert set(by_agent) == {"billp", "actonly"}
    billp = by_agent["billp"]
    assert set(billp["points"]) == {"0", "4"}
    assert billp["gain"]["total_reward"]["pairs"] == 2
    assert billp["train_loop"]["episodes"] == 4
    # The memoryless reference is played once and drawn flat.
    actonly = by_agent["actonly"]["points"]
    assert actonly["0"]["total_reward"] == actonly["4"]["total_reward"]
    # billp at its last point against the memoryless reference, over the same users.
    (comparison,) = payload["comparisons"]
    assert (comparison["agent"], comparison["point"]) == ("billp", 4)
    assert (comparison["other"], comparison["other_point"]) == ("actonly", 0)
    assert comparison["total_reward"]["pairs"] == 2
    # The same figures, seeds pooled, addressable by the goals of eval/targets.toml.
    figures = payload["figures"]["matrix_billp"]
    assert figures["gain"] == billp["gain"]
    assert figures["vs"]["actonly"]["total_reward"] == comparison["total_reward"]
    text = (tmp_path / "curve.md").read_text()
    assert "Paired difference" in text
    # Provenance: generated from the JSON, naming the users' block and the knowledge setting.
    prov = payload["provenance"]
    assert prov["users"] == "train users 0-3; test users 0-1 (final block)"
    assert prov["knowledge"] == "informed"
    assert prov["model"] == "scripted test double (random)"
    assert text == learning_curve.render(payload)
    assert (tmp_path / "curve.png").stat().st_size > 0


@pytest.mark.slow
def test_seed_blocks_and_variants(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, billp_cache: Path
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(billp_cache))
    flags = ["--worlds", "matrix", "--agents", "actonly", "--points", "0", "--test-users", "2"]
    code = learning_curve.main(
        [
            *flags,
            "--seeds",
            "0",
            "1",
            "--seed-blocks",
            "--variant",
            "untold=--agent.knowledge uninformed",
            "--test-user-offset",
            "100",
            "--out-dir",
            str(tmp_path / "out"),
            "--json",
            str(tmp_path / "curve.json"),
            "--llm.backend",
            "scripted",
            "--env.max-steps",
            "2",
        ]
    )
    assert code == 0
    payload = json.loads((tmp_path / "curve.json").read_text())
    offsets = {(r["variant"], r["seed"]): r["test_user_offset"] for r in payload["results"]}
    assert offsets == {("untold", 0): 100, ("untold", 1): 102}
    prov = payload["provenance"]
    assert prov["users"] == (
        "no train users; seed 0: test users 100-101 (dev block); "
        "seed 1: test users 102-103 (dev block)"
    )
    assert prov["knowledge"] == "untold: uninformed"  # the variant's flags reach its runs
    played = {}
    for seed in (0, 1):
        (run,) = (tmp_path / "out" / "untold" / "test").rglob(f"*__{seed}__*")
        assert 'knowledge = "uninformed"' in (run / "config.toml").read_text()
        lines = (run / "episodes.jsonl").read_text().splitlines()
        played[seed] = {json.loads(line)["user_id"] for line in lines}
    assert played[0].isdisjoint(played[1]) and len(played[0]) == len(played[1]) == 2
    text = learning_curve.render(payload)
    assert "| world | variant | agent | seed |" in text
    assert "| matrix_untold_actonly: N_max - 0 |" not in text  # memoryless: no gain
    assert set(payload["figures"]) == {"matrix_untold_actonly"}
    assert payload["figures"]["matrix_untold_actonly"]["seeds"] == [0, 1]
