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

Module by module, in the order they build on each other (no loop): the state the steps
share (:mod:`~billp.agents.billp_state`), the Critic's values and TD update
(:mod:`~billp.agents.billp_critic`), the Planner and the Actor
(:mod:`~billp.agents.billp_actor`), the Reflector (:mod:`~billp.agents.billp_reflect`), one
episode calling them in protocol order (:mod:`~billp.agents.billp_episode`), and here the
policy that spawns episodes and commits their memory writes.
"""

from __future__ import annotations

from billp.agents.billp_episode import BiLLPEpisode
from billp.agents.billp_state import BiLLPCore, BiLLPRoles
from billp.agents.item_index import ItemIndex
from billp.agents.messages import UserRules
from billp.agents.shortlist import ShortlistBuilder
from billp.config import AgentConfig, MemoryConfig
from billp.data import Catalogue
from billp.memory import AgentMemories, Embedder
from billp.policy import MemoryWrites


class BiLLPPolicy(BiLLPCore):
    """BiLLP and its ablations: what all episodes share (:class:`BiLLPCore`), and the memory
    commits. A learning policy (:class:`billp.policy.LearningPolicy`): episodes' writes are
    committed to its memories, which the test phase reloads."""

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
        super().__init__(
            config, memory_config, catalogue, roles, item_index, shortlister, memories, rules
        )
        self._embedder = embedder

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
