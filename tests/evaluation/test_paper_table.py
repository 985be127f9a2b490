"""eval/paper_table.py: the run plan, the table layout, and a tiny scripted end-to-end run."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.evaluation.conftest import REPO


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("paper_table", REPO / "eval" / "paper_table.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["paper_table"] = module
    spec.loader.exec_module(module)
    return module


paper_table = load_script()


def test_every_policy_of_the_issue_is_in_the_table() -> None:
    assert set(paper_table.POLICIES) == {
        "random",
        "popularity",
        "greedy",
        "greedy-diverse",
        "sqn",
        "sqn-sm",
        "sqn-rm",
        "lea",
        "dqn-matrix",
        "dqn-le",
        "bcq",
        "cql",
        "crr",
        "a2c-matrix",
        "a2c-le",
        "actonly",
        "react",
        "reflexion",
        "billp",
        "billp-no-macro",
        "billp-no-micro",
    }
    assert paper_table.ENVS == ("matrix", "le") and paper_table.SEEDS == (0, 1, 2)


def test_baselines_skip_the_train_phase_llm_agents_do_not(tmp_path: Path) -> None:
    passthrough = ["--llm.backend", "scripted", "--train-users", "4"]
    base = paper_table.resolve(
        paper_table.simulate_args("matrix", "greedy", 1, tmp_path, passthrough, None)
    )
    llm = paper_table.resolve(
        paper_table.simulate_args("matrix", "billp", 1, tmp_path, passthrough, None)
    )
    assert base.train_users == 0 and llm.train_users == 4
    assert base.seed == llm.seed == 1 and llm.llm.backend == "scripted"
    assert llm.output_dir == tmp_path / "runs" / "matrix" / "billp"
    assert llm.memory.dir == tmp_path / "memory"


def test_cell_format_and_markdown() -> None:
    cell = paper_table.format_cell({"mean": 3.456, "ci_low": 3.0, "ci_high": 3.8}, 2)
    assert cell == "3.46 ± 0.40"
    assert paper_table.format_cell({"mean": float("nan"), "ci_low": 0, "ci_high": 0}, 2) == "-"
    text = paper_table.markdown([["Random", "1", "2", "3"]], ["matrix"], "python x", "cap")
    assert "| Method | matrix Len | matrix R_each | matrix R_traj |" in text
    assert "| Random | 1 | 2 | 3 |" in text and "python x" in text


@pytest.mark.slow
def test_tiny_table_end_to_end(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    eval_cache: Path,
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(eval_cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    md, js = tmp_path / "table.md", tmp_path / "table.json"
    argv = [
        "--envs",
        "matrix",
        "no-such-env",
        "--policies",
        "random",
        "actonly",
        "--seeds",
        "0",
        "1",
        "--out-dir",
        str(tmp_path / "out"),
        "--markdown",
        str(md),
        "--json",
        str(js),
        "--llm.backend",
        "scripted",
        "--memory.embedder",
        "hash",
        "--train-users",
        "2",
        "--test-users",
        "3",
        "--env.max-steps",
        "6",
        "--jobs",
        "2",
    ]
    assert paper_table.main(argv) == 0
    out = capsys.readouterr().out
    assert "skipping environment 'no-such-env'" in out
    text = md.read_text()
    assert "python eval/paper_table.py --envs matrix no-such-env" in text
    assert "| Random |" in text and "| ActOnly |" in text and "| matrix Len |" in text
    cells = json.loads(js.read_text())["cells"]
    assert set(cells) == {"matrix/random", "matrix/actonly"}
    for cell in cells.values():
        assert cell["_"] == {"seeds": 2.0, "episodes": 6.0}
        assert cell["len"]["ci_low"] <= cell["len"]["mean"] <= cell["len"]["ci_high"]
    runs = tmp_path / "out" / "runs" / "matrix"
    for policy, train in (("random", 0), ("actonly", 2)):
        for run in (runs / policy).iterdir():
            phases = [json.loads(x)["phase"] for x in (run / "episodes.jsonl").open()]
            assert phases.count("train") == train and phases.count("test") == 3
    # A second call reuses every complete run.
    assert paper_table.main(argv) == 0
    again = capsys.readouterr().out
    assert again.count("reusing") == 4 and "$ python -m billp.simulate" not in again


@pytest.mark.parametrize(
    ("passthrough", "policies"),
    [
        (["--llm.backend", "scripted"], ["billp"]),
        (["--llm.base-url", "http://127.0.0.1:9/v1"], ["billp"]),
        ([], ["random", "greedy"]),
    ],
)
def test_no_shared_server_when_none_is_needed(
    tmp_path: Path, passthrough: list[str], policies: list[str]
) -> None:
    """No server starts for scripted runs, given endpoints, or tables without LLM policies."""
    console = paper_table.Console()
    llm = paper_table.resolve(passthrough).llm
    with paper_table.shared_server(llm, policies, tmp_path, console) as flags:
        assert flags == []
    assert not (tmp_path / "vllm_server.log").exists()


def test_runs_are_matched_by_model_not_by_endpoint(tmp_path: Path) -> None:
    args = paper_table.simulate_args("matrix", "billp", 0, tmp_path, [], None)
    one = paper_table.resolve([*args, "--llm.base-url", "http://127.0.0.1:8001/v1"])
    other = paper_table.resolve([*args, "--llm.base-url", "http://127.0.0.1:8002/v1"])
    assert paper_table._comparable(one) == paper_table._comparable(other)
    bigger = paper_table.resolve([*args, "--llm.model", "Qwen/Qwen2.5-7B-Instruct"])
    assert paper_table._comparable(one) != paper_table._comparable(bigger)
