"""The learning loop closes end to end through the real CLI (with a test double LLM).

``llm.scripted_policy = "follow-hints"`` is a test double whose Actor takes the candidate
its actor-memory hints encourage; a model that learns from memories should behave so.
With it, memories built on train users must lift the scores of fixed test users, and a
hint written during one user's episode must reach another user's shortlist.
"""

from __future__ import annotations

import json
from pathlib import Path

from billp.agents.billp_traces import BillpStepTrace
from billp.records import StepRecord, read_steps
from tests.e2e.conftest import only_run_dir, run_cli, simulate_cmd

FOLLOW_HINTS = [
    "--llm.scripted-policy",
    "follow-hints",
    # The hash embedder of tests has no notion of similar states: every stored state counts.
    "--memory.actor-min-similarity",
    "-1",
    "--memory.actor-top-k",
    "50",
]
TRAIN_USERS = 8
TEST_USERS = 6


def _records(run_dir: Path) -> list[dict]:
    return [json.loads(x) for x in (run_dir / "episodes.jsonl").read_text().splitlines()]


def _mean_return(run_dir: Path) -> float:
    test = [r["total_reward"] for r in _records(run_dir) if r["phase"] == "test"]
    assert len(test) == TEST_USERS
    return sum(test) / len(test)


def test_memories_of_train_users_lift_fixed_test_users(tmp_path: Path, shared_cache: Path) -> None:
    train = run_cli(
        simulate_cmd(
            tmp_path / "train",
            *FOLLOW_HINTS,
            "--train-users",
            str(TRAIN_USERS),
            "--test-users",
            "0",
            "--memory.snapshot-after",
            str(TRAIN_USERS),
        ),
        shared_cache,
    )
    assert train.returncode == 0, train.stderr[-3000:]
    train_dir = only_run_dir(tmp_path / "train")
    snapshot = train_dir / "memory_snapshots" / f"after-{TRAIN_USERS:04d}"
    assert (snapshot / "actor").is_dir(), "the snapshot holds the memories"

    runs = {}
    for label, init in (("none", []), ("trained", ["--memory.init", str(snapshot)])):
        result = run_cli(
            simulate_cmd(
                tmp_path / label,
                *FOLLOW_HINTS,
                *init,
                "--train-users",
                "0",
                "--test-users",
                str(TEST_USERS),
                "--memory.learn-during-test",
                "false",
            ),
            shared_cache,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        runs[label] = only_run_dir(tmp_path / label)

    assert _mean_return(runs["trained"]) > _mean_return(runs["none"])

    # A hint written in a train user's episode reaches a different (test) user's shortlist.
    written: dict[int, set[int]] = {}
    for record in _records(train_dir):
        for write in record["memory_writes"]["actor"]:
            if write["sign"] > 0:
                written.setdefault(write["item_id"], set()).add(record["user_id"])
    crossed = [
        (step.user_id, int(item))
        for step in read_steps(runs["trained"])
        if isinstance(step, StepRecord) and isinstance(step.trace, BillpStepTrace)
        for item, source in step.trace.shortlist_sources.items()
        if source == "memory" and step.user_id not in written.get(int(item), {step.user_id})
    ]
    assert crossed, "no train user's hint reached a test user's shortlist"
    loop = json.loads((runs["trained"] / "summary.json").read_text())["loop"]["test"]
    assert loop["hint_rate"] > 0 and loop["hint_follow_rate"] > 0
    untrained = json.loads((runs["none"] / "summary.json").read_text())["loop"]["test"]
    assert untrained["hint_rate"] == 0


def test_replay_reproduces_concurrent_episodes_byte_for_byte(
    tmp_path: Path, shared_cache: Path
) -> None:
    """Record with jittered latencies (episodes finish out of order), replay with none."""
    common = ["--train-users", "3", "--test-users", "3", "--concurrency", "3", "--wave-size", "3"]
    cache_dir = tmp_path / "llm_cache"
    record = run_cli(
        simulate_cmd(
            tmp_path / "record",
            *common,
            "--llm.scripted-latency-s",
            "0.02",
            "--llm.cache",
            "record",
            "--llm.cache-dir",
            str(cache_dir),
        ),
        shared_cache,
    )
    assert record.returncode == 0, record.stderr[-3000:]
    replay = run_cli(
        simulate_cmd(
            tmp_path / "replay",
            *common,
            "--llm.cache",
            "replay",
            "--llm.cache-dir",
            str(cache_dir),
        ),
        shared_cache,
    )
    assert replay.returncode == 0, replay.stderr[-3000:]
    recorded = only_run_dir(tmp_path / "record") / "episodes.jsonl"
    replayed = only_run_dir(tmp_path / "replay") / "episodes.jsonl"
    assert replayed.read_bytes() == recorded.read_bytes()
    keys = [r["key"] for r in _records(only_run_dir(tmp_path / "record"))]
    assert keys == sorted(keys, key=lambda k: (k.startswith("test"), k)), "plan order"
