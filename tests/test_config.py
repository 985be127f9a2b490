"""The config tree's name lists agree with the code that serves them."""

from __future__ import annotations

from typing import get_args

from billp.config import LLM_AGENTS, AgentConfig, AgentName
from billp.rl.names import RL_AGENT_NAMES

BASELINES = {"random", "popularity", "greedy", "greedy-diverse"}


def test_agent_names_are_llm_presets_baselines_and_rl_policies() -> None:
    """AgentName is spelt out for --help; it must stay the union of the served names."""
    names = set(get_args(AgentName))
    assert names == set(LLM_AGENTS) | BASELINES | set(RL_AGENT_NAMES)
    assert len(names) == len(LLM_AGENTS) + len(BASELINES) + len(RL_AGENT_NAMES)


def test_only_llm_agents_are_llm() -> None:
    for name in get_args(AgentName):
        assert AgentConfig(name=name).is_llm == (name in LLM_AGENTS)
