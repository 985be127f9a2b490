"""BiLLP: Planner, Actor, Critic and Reflector over shared FAISS memories.

One class covers BiLLP and its ablations; the switches come from ``AgentConfig``:

============== ======= ===== ===== ===========================
preset         planner macro micro reflection retrieval
============== ======= ===== ===== ===========================
billp          yes     yes   yes   nearest (FAISS top-K)
billp-no-macro yes     no    yes   -
billp-no-micro yes     yes   no    nearest
reflexion      yes     yes   no    recent
react          yes     no    no    -
actonly        no      no    no    -
============== ======= ===== ===== ===========================

Macro-learning: after each episode the Reflector writes a lesson; the Planner retrieves
the K lessons nearest to the user's situation. Micro-learning: the Critic values each
state (its memory first); the signed one-step advantage is stored as
``actor memory[state][item] = sign(A)``, and the TD target as the critic memory of
``state``. On the step where the user quits, ``r`` is ``agent.quit_value`` and
``V(s') = 0``.

The value scale: V(s) is the discounted *average* of the rewards still to come,
``(1 - gamma) * sum_k gamma^k r_{t+k}``, so values live on the world's rating scale
(1-5, down to the quit value for a lost user) and the Critic is asked for a number on
the same scale as the rewards it sees. The TD target is then
``(1 - gamma) * r + gamma * V(s')``: the textbook ``r + gamma * V(s')`` times
``(1 - gamma)``, so the advantage ``A = target - V(s)`` has the textbook sign.

This module holds the policy (what all episodes share, and the memory commits); one
episode is :mod:`~billp.agents.billp_episode`, its step :mod:`~billp.agents.billp_actor`,
its values and TD update :mod:`~billp.agents.billp_critic`, its lesson
:mod:`~billp.agents.billp_reflect`, and the traces they return
:mod:`~billp.agents.billp_traces`.
"""

from __future__ import annotations

from billp.agents.billp_actor import FALLBACK_PLAN
from billp.agents.billp_episode import BiLLPEpisode
from billp.agents.billp_reflect import describe_outcome
from billp.agents.echo import EchoDetector
from billp.agents.item_index import ItemIndex
from billp.agents.messages import ActorChoice, CriticValue, Plan, Reflection, UserRules
from billp.agents.roles import Role
from billp.agents.shortlist import ShortlistBuilder
from billp.config import AgentConfig, MemoryConfig
from billp.data import Catalogue
from billp.memory import AgentMemories, Embedder
from billp.policy import MemoryWrites

__all__ = ["FALLBACK_PLAN", "BiLLPEpisode", "BiLLPPolicy", "BiLLPRoles", "describe_outcome"]


class BiLLPRoles:
    """The four roles of one run, bound to their clients and templates."""

    def __init__(
        self,
        planner: Role[Plan],
        actor: Role[ActorChoice],
        critic: Role[CriticValue],
        reflector: Role[Reflection],
    ) -> None:
        self.planner = planner
        self.actor = actor
        self.critic = critic
        self.reflector = reflector


class BiLLPPolicy:
    """The shared part of BiLLP and its ablations: config, roles, memories, shortlists. A
    learning policy (:class:`billp.policy.LearningPolicy`): episodes' writes are committed
    to its memories, which the test phase reloads."""

    def __init__(
        self,
        config: AgentConfig,
        memory_config: MemoryConfig,
        catalogue: Catalogue,
        roles: BiLLPRoles,
        item_index: ItemIndex,
        shortlister: ShortlistBuilder,
        memories: AgentMemories | None,
        embedder: Embedder | None = None,
        rules: UserRules | None = None,
    ) -> None:
        self.name = config.name
        self.config = config
        self.memory_config = memory_config
        self.catalogue = catalogue
        self.roles = roles
        self.item_index = item_index
        self.shortlister = shortlister
        self.memories = memories
        self._embedder = embedder
        self.rules = rules or UserRules(value_min=min(0.0, config.quit_value))
        self.planner_echo = EchoDetector([roles.planner.template_source()])
        self.reflector_echo = EchoDetector([roles.reflector.template_source()])

    def clip_value(self, value: float) -> float:
        """``value`` moved into the Critic's scale."""
        return float(min(self.rules.value_max, max(self.rules.value_min, value)))

    @property
    def uses_memory(self) -> bool:
        return bool(self.config.macro or self.config.micro)

    def spawn(self, episode_key: str, seed: int) -> BiLLPEpisode:
        return BiLLPEpisode(self, episode_key, seed)

    def commit(self, writes: MemoryWrites, episode_key: str) -> None:
        """Apply an episode's buffered writes and persist the memories atomically.

        Each memory records the episodes it holds, so a commit interrupted between the
        three saves is completed on resume without applying any write twice.
        """
        memories = self.memories
        if memories is None:
            return
        if episode_key not in memories.reflections.memory.committed:
            for reflection in writes.reflections:
                memories.reflections.add(reflection.situation, reflection.entry)
        if episode_key not in memories.actor.memory.committed:
            for write in writes.actor:
                memories.actor.record(write.state, write.item_id, write.sign)
        if episode_key not in memories.critic.memory.committed:
            for write in writes.critic:
                memories.critic.record(write.state, write.value)
        memories.save(committed_episode=episode_key)

    def committed_episodes(self) -> set[str]:
        return set(self.memories.committed) if self.memories is not None else set()

    def reload(self) -> None:
        if self.memories is not None and self._embedder is not None:
            self.memories = AgentMemories.open(self.memories.root, self._embedder)

    def state_text(self, items: list[int]) -> str:
        """The text that identifies a state in memories (BiLLP's "viewing history is [...]")."""
        titles = "; ".join(self.catalogue[i].label for i in items)
        return f"The user's recent movies are [{titles}]"

    def labels(self, items: list[int]) -> list[str]:
        return [self.catalogue[i].label for i in items]
