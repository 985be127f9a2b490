"""Build the policy named by ``agent.name`` from a run's parts, through the policy registry.

:mod:`billp.policy_registry` names each policy's builder as ``"module:function"``; the module
is imported here, when its policy is built (torch and Tianshou load only for RL policies).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path

from billp.agents.prompts import PromptLibrary
from billp.config import RunConfig
from billp.envs import World
from billp.llm import Accounting, LLMClient
from billp.policy.build import PolicyBuilder, PolicyInputs
from billp.policy.protocol import Policy
from billp.policy_registry import policy_spec


def resolve_builder(name: str) -> PolicyBuilder:
    """The builder registered for the policy ``name``, imported.

    Raises:
        KeyError: no policy is registered under ``name``.
    """
    module, _, function = policy_spec(name).builder.partition(":")
    builder: PolicyBuilder = getattr(importlib.import_module(module), function)
    return builder


def build_policy(
    config: RunConfig,
    world: World,
    *,
    client: LLMClient | None = None,
    role_clients: Mapping[str, LLMClient] | None = None,
    accounting: Accounting | None = None,
    prompts: PromptLibrary | None = None,
    memory_root: Path | None = None,
) -> Policy:
    """The policy of ``config.agent.name`` acting in ``world``.

    LLM agents need ``client``, ``accounting`` and ``prompts``; ``role_clients`` replace
    ``client`` for roles with their own endpoint. ``memory_root`` is where their memories
    live (only agents with macro- or micro-learning keep memories).
    """
    inputs = PolicyInputs(
        config,
        world,
        client=client,
        role_clients=role_clients or {},
        accounting=accounting,
        prompts=prompts,
        memory_root=memory_root,
    )
    return resolve_builder(config.agent.name)(inputs)
