"""What a policy builder receives (the builders named in :mod:`billp.policy_registry`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from billp.config import RunConfig
from billp.envs import World
from billp.llm import Accounting, LLMClient
from billp.policy.protocol import Policy


@dataclass(frozen=True)
class PolicyInputs:
    """A run's parts a policy may be built from; the LLM fields are for LLM agents only.

    ``prompts`` is a :class:`billp.agents.prompts.PromptLibrary`, typed loosely because this
    layer sits below :mod:`billp.agents`; the agent's builder checks it.
    """

    config: RunConfig
    world: World
    client: LLMClient | None = None
    role_clients: Mapping[str, LLMClient] = field(default_factory=dict)
    accounting: Accounting | None = None
    prompts: object | None = None
    memory_root: Path | None = None
    """Where the agent's memories live (only agents with macro- or micro-learning keep any)."""


PolicyBuilder = Callable[[PolicyInputs], Policy]
"""A registered builder: the policy named by ``inputs.config.agent.name``."""
