"""The BiLLP agent assembled from a run's parts: the builder of every LLM policy preset."""

from __future__ import annotations

import numpy as np

from billp.agents.billp_agent import BiLLPPolicy
from billp.agents.billp_state import BiLLPRoles
from billp.agents.item_index import ItemIndex
from billp.agents.messages import ActorChoice, CriticValue, Plan, Reflection, UserRules
from billp.agents.prompts import PromptLibrary
from billp.agents.roles import Role, RoleSettings
from billp.agents.shortlist import ShortlistBuilder
from billp.config import RunConfig
from billp.data.dataset import RATING_SCALE
from billp.envs import World
from billp.memory import AgentMemories, make_embedder
from billp.policy.build import PolicyInputs


def role_settings(config: RunConfig, role: str) -> RoleSettings:
    """Sampling and model of ``role``: the shared llm settings patched by llm.roles[role].

    A role with a LoRA adapter in ``llm.server.lora`` asks for it by name (vLLM serves
    each adapter under the name given in ``--lora-modules``), unless it names another.
    """
    override = config.llm.roles.get(role)
    settings = RoleSettings(temperature=config.llm.temperature, max_tokens=config.llm.max_tokens)
    if role in config.llm.server.lora:
        settings.model = role
    if override is not None:
        if override.temperature is not None:
            settings.temperature = override.temperature
        if override.max_tokens is not None:
            settings.max_tokens = override.max_tokens
        settings.model = override.adapter or override.model or settings.model
    return settings


def user_rules(config: RunConfig, world: World | None = None) -> UserRules:
    """What the agent's prompts say about the user and the Critic's scale, from the config.

    Values are discounted averages of rewards (see :mod:`billp.agents.billp_agent`), so
    the scale is the dataset's rating scale, extended down to the reward booked for a quit.
    """
    low, high = RATING_SCALE
    typical = (low + high) / 2
    if world is not None:
        dataset = world.dataset
        logged = dataset.train_interactions
        train = np.isin(logged.users, np.asarray(dataset.split.train_users))
        if train.any():
            typical = round(float(logged.ratings[train].mean()), 2)
    return UserRules(
        knowledge=config.agent.knowledge,
        typical_rating=typical,
        quit_threshold=config.env.quit_reward_threshold,
        quit_window=config.env.quit_window,
        similarity_threshold=config.env.similarity_threshold,
        rating_min=low,
        rating_max=high,
        value_min=min(0.0, config.agent.quit_value, low),
        value_max=high,
    )


def build(inputs: PolicyInputs) -> BiLLPPolicy:
    """The BiLLP agent with ``config.agent``'s switches (the name's preset, resolved).

    Raises:
        ValueError: ``inputs`` lacks the LLM client, the accounting or the prompts.
    """
    config, world, client, prompts = inputs.config, inputs.world, inputs.client, inputs.prompts
    accounting = inputs.accounting
    if client is None or accounting is None or not isinstance(prompts, PromptLibrary):
        raise ValueError(f"agent {config.agent.name!r} needs an LLM client, accounting and prompts")
    catalogue = world.dataset.catalogue
    embedder = make_embedder(config.memory.embedder)
    index = ItemIndex(catalogue, embedder, config.env.cache_dir)
    shortlister = ShortlistBuilder(catalogue, index, world.dataset.item_popularity)
    memories = None
    if (config.agent.macro or config.agent.micro) and inputs.memory_root is not None:
        memories = AgentMemories.open(inputs.memory_root, embedder)

    def role(role_name: str, output_type: type) -> Role:
        return Role(
            role_name,
            output_type,
            inputs.role_clients.get(role_name, client),
            prompts,
            accounting,
            role_settings(config, role_name),
            reask=config.llm.reask_on_invalid,
        )

    roles = BiLLPRoles(
        planner=role("planner", Plan),
        actor=role("actor", ActorChoice),
        critic=role("critic", CriticValue),
        reflector=role("reflector", Reflection),
    )
    return BiLLPPolicy(
        config.agent,
        config.memory,
        catalogue,
        roles,
        index,
        shortlister,
        memories,
        embedder,
        rules=user_rules(config, world),
    )
