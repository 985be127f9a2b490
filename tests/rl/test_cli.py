"""``python -m billp.rl`` end to end on the toy data with tiny budgets and the fake LE.

Every trainer runs through the CLI once (module fixture); the trained policies are then
evaluated offline and played through the agent protocol in both simulators.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from billp.config import EnvConfig, RatingModelConfig
from billp.data import Dataset
from billp.envs import World, build_world
from billp.policy.protocol import EpisodeSummary, Transition
from billp.policy_registry import names
from billp.rl.checkpoint import CHECKPOINT_ENV_VAR, MODEL_FILE, RLCheckpointError, read_manifest
from billp.rl.cli import main
from billp.rl.le_models import RandomVectorLE
from billp.rl.policy import build_rl_policy
from tests.rl.conftest import tiny_flags

pytestmark = pytest.mark.slow

TRAIN_COMMANDS: list[list[str]] = [
    ["--variant", "all"],
    ["--algo", "bcq"],
    ["--algo", "cql"],
    ["--algo", "crr"],
    ["--algo", "dqn", "--env", "matrix"],
    ["--algo", "dqn", "--env", "le"],
    ["--algo", "a2c", "--env", "matrix"],
    ["--algo", "a2c", "--env", "le"],
]

RL_AGENT_NAMES = names("rl")
"""Every trained RL policy, from the policy registry."""


@pytest.fixture(scope="module")
def trained(toy_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rl-cli")
    for command in TRAIN_COMMANDS:
        assert main(["train", *command, *tiny_flags(toy_folder, root)]) == 0, command
    return root


def test_every_trainer_writes_a_checkpoint(trained: Path) -> None:
    for name in RL_AGENT_NAMES:
        manifest = read_manifest(trained / "rl" / name)
        assert manifest.policy == name and manifest.steps > 0
        assert manifest.train_seconds < 60
    assert read_manifest(trained / "rl" / "lea").le_source == "fake"
    assert read_manifest(trained / "rl" / "sqn").le_state_dim == 0
    assert read_manifest(trained / "rl" / "dqn-le").le_state_dim == 8


def test_evaluate_writes_the_offline_table(trained: Path, toy_folder: Path) -> None:
    markdown, numbers = trained / "offline.md", trained / "offline.json"
    flags = tiny_flags(toy_folder, trained)
    assert main(["evaluate", *flags, "--markdown", str(markdown), "--json", str(numbers)]) == 0
    results = json.loads(numbers.read_text())["results"]
    assert set(results) == {"popularity", *RL_AGENT_NAMES}
    for metrics in results.values():
        assert 0.0 <= metrics["HR@5"] <= metrics["HR@10"] <= metrics["HR@20"] <= 1.0
        assert metrics["NDCG@5"] <= metrics["HR@5"]
    # Each row says what data it saw: the SQN rows one subset, sqn-all every transition of
    # the users the LE learned from, the LE rows how many users taught that LE.
    sqn, everything, lea = results["sqn"], results["sqn-all"], results["lea"]
    assert sqn["train_users"] == lea["train_users"] <= everything["train_users"]
    assert sqn["transitions"] == lea["transitions"] <= everything["transitions"]
    assert lea["le_train_users"] == everything["train_users"]
    assert "le_train_users" not in sqn
    text = markdown.read_text()
    assert "python -m billp.rl evaluate" in text and "| lea |" in text
    assert "| popularity |" in text and "users the LE saw" in text


def test_training_is_deterministic(trained: Path, toy_folder: Path, tmp_path: Path) -> None:
    assert main(["train", "--variant", "lea", *tiny_flags(toy_folder, tmp_path)]) == 0
    first = load_file(str(trained / "rl" / "lea" / MODEL_FILE))
    second = load_file(str(tmp_path / "rl" / "lea" / MODEL_FILE))
    assert first.keys() == second.keys()
    for name in first:
        np.testing.assert_array_equal(first[name], second[name])


def test_bad_config_is_an_input_error(toy_folder: Path, tmp_path: Path) -> None:
    flags = tiny_flags(toy_folder, tmp_path)
    assert main(["train", "--variant", "lea", *flags, "--lea.n-augmented", "9"]) == 2


async def _play(policy: object, env: object, user: int) -> tuple[list[int], list[int]]:
    observation, info = env.reset(options={"user_id": user})  # type: ignore[attr-defined]
    agent = policy.spawn("episode", 0)  # type: ignore[attr-defined]
    await agent.reset(info)
    start = list(info["history"])
    items: list[int] = []
    rewards: list[float] = []
    done = False
    while not done:
        action = (await agent.act(observation, info)).item_id
        observation, reward, terminated, truncated, info = env.step(action)  # type: ignore[attr-defined]
        await agent.observe(
            Transition(
                action=action,
                reward=reward,
                terminated=terminated,
                truncated=truncated,
                next_obs=observation,
                info=info,
            )
        )
        items.append(action)
        rewards.append(reward)
        done = terminated or truncated
    await agent.end_episode(
        EpisodeSummary(
            user_id=user,
            items=items,
            rewards=rewards,
            terminated=terminated,
            truncated=truncated,
            quit_reason=info.get("quit_reason"),
        )
    )
    return start, items


def test_every_policy_plays_in_both_simulators(
    trained: Path, toy_dataset: Dataset, toy_data_config: object
) -> None:
    env_config = EnvConfig(
        name="matrix",
        cache_dir=trained / "cache",
        rating_model=RatingModelConfig(dim=4, epochs=30),
        max_steps=5,
    )
    matrix = build_world(env_config, toy_data_config)  # type: ignore[arg-type]
    fake = RandomVectorLE(len(toy_dataset.catalogue), dim=8, seed=0)
    le = World(toy_dataset, fake, env_config.model_copy(update={"name": "le"}), state_model=fake)
    user = toy_dataset.split.test_users[0]

    def no_le() -> RandomVectorLE:
        raise AssertionError("a fake-LE policy must not load the real LE")

    for world in (matrix, le):
        for name in RL_AGENT_NAMES:
            policy = build_rl_policy(
                name, toy_dataset.catalogue, world.state_model, no_le, trained / "rl"
            )
            start, items = asyncio.run(_play(policy, world.make_env([user]), user))
            assert items, name
            assert len(set(items)) == len(items) and not set(items) & set(start), name


def test_a_missing_policy_names_the_folder(toy_dataset: Dataset, tmp_path: Path) -> None:
    with pytest.raises(RLCheckpointError, match=str(tmp_path / "sqn")):
        build_rl_policy("sqn", toy_dataset.catalogue, None, RandomVectorLE, tmp_path)


def test_simulate_plays_a_trained_policy(
    trained: Path, toy_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from billp.simulate import main as simulate

    monkeypatch.setenv(CHECKPOINT_ENV_VAR, str(trained / "rl"))
    args = [
        "--agent.name", "lea",
        "--env.name", "matrix",
        "--data.path", str(toy_folder),
        "--data.history-length", "4",
        "--env.cache-dir", str(trained / "cache"),
        "--env.rating-model.dim", "4",
        "--env.rating-model.epochs", "30",
        "--env.max-steps", "5",
        "--train-users", "0",
        "--test-users", "2",
        "--output-dir", str(tmp_path),
        "--progress", "false",
        "--llm.backend", "scripted",
    ]  # fmt: skip
    assert simulate(args) == 0
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    episodes = [json.loads(line) for line in (run / "episodes.jsonl").read_text().splitlines()]
    assert len(episodes) == 2
    assert (run / "summary.json").is_file()
