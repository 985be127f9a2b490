"""The policy registry drives names, presets, --help, the factory and the README table."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from billp.agents.baselines import (
    GreedyDiversePolicy,
    GreedyPolicy,
    PopularityPolicy,
    RandomPolicy,
)
from billp.agents.billp_agent import BiLLPPolicy
from billp.agents.prompts import PromptLibrary
from billp.config import (
    AgentConfig,
    DataConfig,
    EnvConfig,
    MemoryConfig,
    RatingModelConfig,
    RunConfig,
)
from billp.config.flags import add_config_arguments
from billp.config.policy_table import README, main, markdown_table, readme_with_table
from billp.data import write_toy_dataset
from billp.envs import World, build_world
from billp.llm import Accounting, ScriptedLLM
from billp.policy_factory import build_policy
from billp.policy_registry import POLICIES, POLICY_NAMES, policy_spec
from billp.rl.checkpoint import CHECKPOINT_ENV_VAR, RLCheckpointError

BASELINE_TYPES: dict[str, type] = {
    "random": RandomPolicy,
    "popularity": PopularityPolicy,
    "greedy": GreedyPolicy,
    "greedy-diverse": GreedyDiversePolicy,
}


def test_the_readme_table_is_the_registry() -> None:
    """Regenerate with ``python -m billp.config.policy_table --write-readme``."""
    text = README.read_text(encoding="utf-8")
    assert readme_with_table(text) == text
    assert markdown_table() in text


def test_every_name_is_listed_once_and_in_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert len(set(POLICY_NAMES)) == len(POLICY_NAMES) == len(POLICIES)
    table = markdown_table()
    assert all(f"`{name}`" in table for name in POLICY_NAMES)
    assert main([]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert listed == list(POLICY_NAMES)


def test_help_lists_every_registered_name() -> None:
    parser = argparse.ArgumentParser()
    add_config_arguments(parser, RunConfig)
    (action,) = [a for a in parser._actions if "--agent.name" in a.option_strings]
    assert action.help is not None
    assert action.help.endswith("{" + ", ".join(POLICY_NAMES) + "}")


def test_unknown_names_are_refused() -> None:
    with pytest.raises(KeyError, match="unknown policy 'nonsense'"):
        policy_spec("nonsense")


@pytest.mark.parametrize("name", POLICY_NAMES)
def test_the_name_resolves_its_preset(name: str) -> None:
    spec = policy_spec(name)
    agent = AgentConfig(name=name)
    assert agent.is_llm == (spec.family == "llm")
    preset = spec.preset
    expected = (preset.planner, preset.macro, preset.micro, preset.retrieval)
    assert (agent.planner, agent.macro, agent.micro, agent.reflection_retrieval) == expected
    if spec.family != "llm":
        assert not (agent.planner or agent.macro or agent.micro)


def test_builders_live_below_the_factory() -> None:
    """The factory imports builders by name; they must sit in a layer below it."""
    for spec in POLICIES.values():
        module, sep, function = spec.builder.partition(":")
        assert sep and function.isidentifier(), spec.name
        assert module.startswith(("billp.agents.", "billp.rl.")), spec.name


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("registry")
    folder = write_toy_dataset(root / "toy", n_users=16, n_items=30, per_user=14)
    env = EnvConfig(
        name="matrix",
        cache_dir=root / "cache",
        rating_model=RatingModelConfig(dim=4, epochs=30),
        max_steps=5,
    )
    return build_world(env, DataConfig(path=folder, history_length=4))


@pytest.mark.parametrize("name", POLICY_NAMES)
def test_every_registered_policy_builds_through_the_factory(
    name: str, world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LLM presets and baselines build; RL policies reach their (here missing) checkpoint."""
    config = RunConfig(
        env=world.config,
        memory=MemoryConfig(embedder="hash", dir=tmp_path / "memory"),
        agent=AgentConfig(name=name),
    )
    spec = policy_spec(name)
    if spec.family == "rl":
        monkeypatch.setenv(CHECKPOINT_ENV_VAR, str(tmp_path))
        with pytest.raises(RLCheckpointError, match=str(tmp_path / name)):
            build_policy(config, world)
        return
    policy = build_policy(
        config,
        world,
        client=ScriptedLLM(seed=0),
        accounting=Accounting(),
        prompts=PromptLibrary(),
        memory_root=tmp_path / "memory" / "run",
    )
    if spec.family == "llm":
        assert isinstance(policy, BiLLPPolicy)
    else:
        assert type(policy) is BASELINE_TYPES[name]


def test_llm_agents_need_the_llm_parts(world: World) -> None:
    config = RunConfig(env=world.config, memory=MemoryConfig(embedder="hash"))
    with pytest.raises(ValueError, match="needs an LLM client"):
        build_policy(config, world)
