"""One episode of a BiLLP-family agent: its state, and the protocol calls that hand each
job to its module (the step to :mod:`~billp.agents.billp_actor`, the value and TD update to
:mod:`~billp.agents.billp_critic`, the lesson to :mod:`~billp.agents.billp_reflect`)."""

from __future__ import annotations

import asyncio
import hashlib
from typing import TYPE_CHECKING, Any

import numpy as np

from billp.agents.billp_actor import PlannedStep, act_step, plan_step
from billp.agents.billp_critic import td_update
from billp.agents.billp_reflect import reflect
from billp.agents.billp_traces import ObserveTrace
from billp.agents.loop_trace import RetrievedReflection
from billp.agents.messages import StepView
from billp.policy import Decision, EpisodeEnd, EpisodeSummary, MemoryWrites, Transition

if TYPE_CHECKING:
    from billp.agents.billp_agent import BiLLPPolicy

_SEED_MODULUS = 2**31 - 1


class BiLLPEpisode:
    """One episode of a BiLLP-family agent."""

    def __init__(self, policy: BiLLPPolicy, episode_key: str, seed: int) -> None:
        self.p = policy
        self.cfg = policy.config
        self.key = episode_key
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.user_id = -1
        self.history: list[int] = []
        self.recommended: list[int] = []
        self.steps: list[StepView] = []
        self.reflections: list[str] = []
        self.retrieved: list[RetrievedReflection] = []
        self.value: float | None = None
        """V(s) of the current state, once estimated (micro-learning)."""
        self.value_origin: tuple[str, float | None] | None = None
        """Where ``value`` came from: its source and the similarity consulted."""
        self.writes = MemoryWrites()
        self.pending_thought: str | None = None
        """The last plan, shown with its step in later prompts."""
        self.quit_info: dict[str, Any] = {}
        self._role_calls: dict[tuple[int, str], int] = {}
        self._next_plan: asyncio.Task[PlannedStep] | None = None
        """The coming step's Planner request, started by :meth:`observe`."""

    def call_seed(self, role: str) -> int:
        """The sampling seed of this episode's next call of ``role``, from the episode's seed,
        the step (recommendations made so far) and the role.

        Common random numbers: a user's episode draws the same seed for the same step and role
        in every run with the same seed, whatever calls other steps skipped (a critic-memory
        hit) or added, so two arms of a paired comparison share their sampling noise where
        their prompts agree.
        """
        step = len(self.recommended)
        count = self._role_calls[(step, role)] = self._role_calls.get((step, role), -1) + 1
        digest = hashlib.sha256(f"{self.seed}|{step}|{role}|{count}".encode()).digest()
        return int.from_bytes(digest[:8], "big") % _SEED_MODULUS

    def recent(self) -> list[int]:
        """The items that make up the current state."""
        return (self.history + self.recommended)[-self.cfg.state_window :]

    async def reset(self, info: dict[str, Any]) -> None:
        self.user_id = int(info["user_id"])
        self.history = [int(i) for i in info["history"]]
        memories = self.p.memories
        if self.cfg.macro and memories is not None and self.p.memory_config.reflections_top_k > 0:
            situation = self.p.state_text(self.history[-self.cfg.state_window :])
            scored = memories.reflections.retrieve_scored(
                situation,
                self.p.memory_config.reflections_top_k,
                self.cfg.reflection_retrieval or "nearest",
            )
            self.reflections = [entry.text for entry, _ in scored]
            self.retrieved = [
                RetrievedReflection(
                    episode=entry.episode,
                    similarity=None if score is None else round(score, 6),
                )
                for entry, score in scored
            ]

    async def act(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> Decision:
        return await act_step(self)

    def take_prefetched_plan(self) -> asyncio.Task[PlannedStep] | None:
        """The Planner request :meth:`observe` started for this step, if any (handed over once)."""
        task, self._next_plan = self._next_plan, None
        return task

    async def observe(self, transition: Transition) -> ObserveTrace:
        item = transition.action
        previous = self.recent()
        self.recommended.append(item)
        if transition.terminated:
            self.quit_info = {"similar_to": transition.info.get("similar_to")}
        self.steps.append(
            StepView(
                step=len(self.recommended),
                title=self.p.catalogue[item].label,
                genres=list(self.p.catalogue[item].genres),
                reward=round(float(transition.reward), 4),
                thought=self.pending_thought,
            )
        )
        ends = transition.terminated or transition.truncated
        if self.cfg.concurrent_calls and self.cfg.planner and not ends:
            # The next plan needs only what the episode has now seen: its request goes out
            # while the Critic values the new state (engine busy, fewer sequential calls).
            self._next_plan = asyncio.ensure_future(plan_step(self))
        if not self.cfg.micro:
            return ObserveTrace()
        try:
            return await td_update(self, previous, transition)
        except BaseException:
            self._drop_prefetched_plan()
            raise

    def _drop_prefetched_plan(self) -> None:
        """Cancel a Planner request no step will take (the episode failed or was cancelled)."""
        task = self.take_prefetched_plan()
        if task is not None:
            task.cancel()

    async def end_episode(self, summary: EpisodeSummary) -> EpisodeEnd:
        self._drop_prefetched_plan()
        if self.cfg.macro and self.p.memories is not None:
            return EpisodeEnd(writes=self.writes, trace=await reflect(self, summary))
        return EpisodeEnd(writes=self.writes)
