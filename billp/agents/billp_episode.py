"""One episode of a BiLLP-family agent: the protocol calls that hand each job to its module
(the step to :mod:`~billp.agents.billp_actor`, the value and TD update to
:mod:`~billp.agents.billp_critic`, the lesson to :mod:`~billp.agents.billp_reflect`); its
state is :class:`~billp.agents.billp_state.EpisodeState`."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from billp.agents.billp_actor import act_step, plan_step
from billp.agents.billp_critic import td_update
from billp.agents.billp_reflect import reflect
from billp.agents.billp_state import EpisodeState
from billp.agents.billp_traces import ObserveTrace
from billp.agents.lesson_signals import leaving_overlap, lesson_lift
from billp.agents.loop_trace import RetrievedReflection
from billp.agents.messages import StepView
from billp.agents.reward_shuffle import shuffle_learning_signal
from billp.policy import Decision, EpisodeEnd, EpisodeSummary, Transition


class BiLLPEpisode(EpisodeState):
    """One episode of a BiLLP-family agent: the protocol calls, in order."""

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
            self.lesson_lift = lesson_lift(entry.genre_lift for entry, _ in scored)
            if self.cfg.lesson_overlap_limit:
                self.overlap_limit = leaving_overlap(entry.left_overlap for entry, _ in scored)
            self.retrieved = [
                RetrievedReflection(
                    episode=entry.episode,
                    similarity=None if score is None else round(score, 6),
                )
                for entry, score in scored
            ]

    async def act(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> Decision:
        return await act_step(self)

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
            self.next_plan = asyncio.ensure_future(plan_step(self))
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
        if self.p.memory_config.shuffle_rewards:
            shuffle_learning_signal(self, summary.terminated)
        if self.cfg.macro and self.p.memories is not None:
            return EpisodeEnd(writes=self.writes, trace=await reflect(self, summary))
        return EpisodeEnd(writes=self.writes)
