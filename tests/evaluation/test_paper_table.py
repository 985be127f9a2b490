"""eval/paper_table.py: the run plan, the table layout, and a tiny scripted end-to-end run."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest

from billp.evaluation.executors import RAY_INSTALL_HINT, Finished, RayExecutor
from tests.evaluation.conftest import load_eval_script

paper_table = load_eval_script("paper_table")


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
        "sqn-all",
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
        paper_table.simulate_args(
            "matrix", "greedy", 1, tmp_path, passthrough, None, test_user_offset=0
        )
    )
    llm = paper_table.resolve(
        paper_table.simulate_args(
            "matrix", "billp", 1, tmp_path, passthrough, None, test_user_offset=0
        )
    )
    assert base.train_users == 0 and llm.train_users == 4
    assert base.seed == llm.seed == 1 and llm.llm.backend == "scripted"
    assert llm.output_dir == tmp_path / "runs" / "matrix" / "billp"
    assert llm.memory.dir == tmp_path / "memory"


def test_each_seed_plays_its_own_block_of_test_users(tmp_path: Path) -> None:
    """Seeds get disjoint test users; every policy of one seed gets the same ones."""
    offsets = paper_table.test_user_offsets([0, 1, 2], 4)
    assert offsets == {0: 0, 1: 4, 2: 8}
    assert paper_table.test_user_offsets([7, 3], 5, start=10) == {7: 10, 3: 15}
    configs = {
        (policy, seed): paper_table.resolve(
            paper_table.simulate_args(
                "matrix",
                policy,
                seed,
                tmp_path,
                ["--test-users", "4", "--test-user-offset", "99"],  # the table's offset wins
                None,
                test_user_offset=offsets[seed],
            )
        )
        for policy in ("greedy", "billp")
        for seed in offsets
    }
    for (_policy, seed), config in configs.items():
        assert config.test_user_offset == offsets[seed] and config.test_users == 4


def test_runs_of_one_cell_group_across_test_user_offsets(tmp_path: Path) -> None:
    """The offset is run-specific, like the seed: a cell's runs form one group."""
    from billp.records.read import RunData

    def key(seed: int, offset: int, policy: str = "greedy") -> str:
        config = paper_table.resolve(
            paper_table.simulate_args(
                "matrix", policy, seed, tmp_path, [], None, test_user_offset=offset
            )
        )
        return RunData(tmp_path, config, {}, []).experiment_key()

    assert key(0, 0) == key(1, 8) == key(2, 16)
    assert key(0, 0) != key(0, 0, policy="popularity")


def test_too_few_test_users_for_the_seeds_is_refused_before_any_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    split = SimpleNamespace(split=SimpleNamespace(test_users=list(range(5))))
    monkeypatch.setattr(paper_table, "load_dataset", lambda data: split)
    argv = ["--policies", "random", "--seeds", "0", "1", "--out-dir", str(tmp_path)]
    assert paper_table.main([*argv, "--test-users", "3"]) == paper_table.EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "2 seeds x 3 test users each need 6 test users" in err and "has 5" in err
    assert not (tmp_path / "runs").exists()
    base = paper_table.resolve(["--test-users", "2"])
    assert paper_table.missing_test_users(base, {0: 0, 1: 2}) is None
    assert paper_table.missing_test_users(base, {0: 2, 1: 4}) is not None  # start offset counts


def test_caption_names_each_seeds_users() -> None:
    base = paper_table.resolve(["--test-users", "3"])
    text = paper_table.users_caption({0: 0, 1: 3}, base)
    assert "seed 0: 0-2, seed 1: 3-5" in text and "no episode is counted twice" in text


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
    assert "each seed plays its own 3 test users (split positions seed 0: 0-2, seed 1: 3-5)" in text
    assert "| Random |" in text and "| ActOnly |" in text and "| matrix Len |" in text
    cells = json.loads(js.read_text())["cells"]
    assert set(cells) == {"matrix/random", "matrix/actonly"}
    for cell in cells.values():
        assert cell["_"] == {"seeds": 2.0, "episodes": 6.0}
        assert cell["len"]["ci_low"] <= cell["len"]["mean"] <= cell["len"]["ci_high"]
    runs = tmp_path / "out" / "runs" / "matrix"
    users: dict[str, dict[int, set[int]]] = {}
    for policy, train in (("random", 0), ("actonly", 2)):
        for run in (runs / policy).iterdir():
            lines = [json.loads(x) for x in (run / "episodes.jsonl").open()]
            phases = [line["phase"] for line in lines]
            assert phases.count("train") == train and phases.count("test") == 3
            seed = paper_table.load_config(run / "config.toml").seed
            tested = {line["user_id"] for line in lines if line["phase"] == "test"}
            users.setdefault(policy, {})[seed] = tested
    # Seeds play disjoint test users; both policies play the same ones per seed.
    assert users["random"] == users["actonly"]
    assert len(users["random"][0]) == 3 and not users["random"][0] & users["random"][1]
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
    args = paper_table.simulate_args("matrix", "billp", 0, tmp_path, [], None, test_user_offset=0)
    one = paper_table.resolve([*args, "--llm.base-url", "http://127.0.0.1:8001/v1"])
    other = paper_table.resolve([*args, "--llm.base-url", "http://127.0.0.1:8002/v1"])
    assert paper_table._comparable(one) == paper_table._comparable(other)
    bigger = paper_table.resolve([*args, "--llm.model", "Qwen/Qwen2.5-7B-Instruct"])
    assert paper_table._comparable(one) != paper_table._comparable(bigger)


# ------------------------------------------------------------------ executors
def table_rows(markdown: str) -> list[str]:
    """The table lines of a markdown table file (no date, no command)."""
    return [line for line in markdown.splitlines() if line.startswith("|")]


def require_ray() -> None:
    """Skip without Ray locally; in CI (CI=true) a missing Ray is a failure."""
    if importlib.util.find_spec("ray") is None:
        message = f"Ray is not installed ({RAY_INSTALL_HINT}; bash scripts/install.sh test)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)


@pytest.mark.slow
def test_ray_executor_gives_the_local_table(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    eval_cache: Path,
) -> None:
    """The same tiny table through local subprocesses and through Ray tasks on a local
    2-CPU Ray instance: identical numbers, and every Ray run came back from a Ray task."""
    require_ray()
    monkeypatch.setenv("XDG_CACHE_HOME", str(eval_cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    finished: list[Finished] = []
    ray_run = RayExecutor.run

    def recording_run(self: RayExecutor, args: list[str], timeout_s: float | None) -> Finished:
        done = ray_run(self, args, timeout_s)
        finished.append(done)
        return done

    monkeypatch.setattr(RayExecutor, "run", recording_run)
    table = [
        "--envs",
        "matrix",
        "--policies",
        "random",
        "actonly",
        "--seeds",
        "0",
        "--llm.backend",
        "scripted",
        "--memory.embedder",
        "hash",
        "--train-users",
        "2",
        "--test-users",
        "2",
        "--env.max-steps",
        "6",
    ]
    outputs = {}
    for executor in ("local", "ray"):
        flags = ["--ray-num-cpus", "2"] if executor == "ray" else ["--jobs", "2"]
        md, js = tmp_path / f"{executor}.md", tmp_path / f"{executor}.json"
        argv = [*table, "--out-dir", str(tmp_path / executor), "--markdown", str(md)]
        argv += ["--json", str(js), "--executor", executor, *flags]
        assert paper_table.main(argv) == 0
        assert "$ python -m billp.simulate" in capsys.readouterr().out
        outputs[executor] = (table_rows(md.read_text()), json.loads(js.read_text()))
    (local_rows, local), (ray_rows, ray) = outputs["local"], outputs["ray"]
    assert set(local["cells"]) == {"matrix/random", "matrix/actonly"}
    assert local["failures"] == ray["failures"] == []
    # As text: NaN never equals NaN, and a half-width of one seed may be NaN.
    assert json.dumps(ray["cells"], sort_keys=True) == json.dumps(local["cells"], sort_keys=True)
    assert ray_rows == local_rows
    assert len(finished) == 2 and all(f.returncode == 0 and f.node for f in finished)
    assert "ray" not in sys.modules or not sys.modules["ray"].is_initialized()


def hide_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    """``import ray`` fails from here on, installed or not."""
    monkeypatch.setitem(sys.modules, "ray", None)


def test_executor_ray_without_ray_exits_2_before_any_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    hide_ray(monkeypatch)
    argv = ["--policies", "random", "--out-dir", str(tmp_path), "--executor", "ray"]
    assert paper_table.main(argv) == paper_table.EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "--executor ray needs Ray" in err and RAY_INSTALL_HINT in err
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--ray-address", "auto"], "--ray-address need --executor ray"),
        (["--executor", "ray", "--ray-address", "auto", "--ray-num-cpus", "2"], "local Ray"),
        (["--executor", "ray", "--ray-cpus-per-run", "0"], "must be positive"),
        (["--executor", "ray", "--ray-address", "auto"], "--llm.base-url URL [URL ...]"),
    ],
)
def test_contradictory_executor_flags_exit_2_before_any_run(
    flags: list[str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Bad executor flags, and a cluster whose LLM runs would need a server on loopback."""
    monkeypatch.setitem(sys.modules, "ray", ModuleType("ray"))  # found, never started
    argv = ["--policies", "billp", "--seeds", "0", "--out-dir", str(tmp_path), *flags]
    assert paper_table.main(argv) == paper_table.EXIT_BAD_INPUT
    assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
