"""What BiLLP's steps read and write: the run's shared parts and one episode's state.

The BiLLP agent is a chain of modules with no loop between them: this one (state), then the
Critic (:mod:`~billp.agents.billp_critic`: values and the TD update), the Planner and Actor
(:mod:`~billp.agents.billp_actor`), the Reflector (:mod:`~billp.agents.billp_reflect`), the
episode that calls them in protocol order (:mod:`~billp.agents.billp_episode`) and the policy
that spawns episodes and commits their memories (:mod:`~billp.agents.billp_agent`).
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from billp.agents.billp_traces import PlannedStep
from billp.agents.echo import EchoDetector
from billp.agents.item_index import ItemIndex
from billp.agents.loop_trace import RetrievedReflection
from billp.agents.messages import ActorChoice, CriticValue, Plan, Reflection, StepView, UserRules
from billp.agents.roles import Role
from billp.agents.shortlist import ShortlistBuilder
from billp.config import AgentConfig, MemoryConfig
from billp.data import Catalogue
from billp.memory import AgentMemories
from billp.policy import MemoryWrites

_SEED_MODULUS = 2**31 - 1


@dataclass(frozen=True)
class BiLLPRoles:
    """The four roles of one run, bound to their clients and templates."""

    planner: Role[Plan]
    actor: Role[ActorChoice]
    critic: Role[CriticValue]
    reflector: Role[Reflection]


@dataclass(frozen=True)
class TDRecord:
    """One TD update as it was made: what the reward-shuffle control needs to redo it."""

    state: str
    item: int
    reward: float
    """The reward the update booked: the step's real reward (``agent.quit_value`` on the
    step the user left at)."""
    v: float
    v_source: str
    v_next: float
    v_next_source: str
    terminal: bool


class BiLLPCore:
    """What every episode of a run shares: the switches, roles, memories and shortlists."""

    def __init__(
        self,
        config: AgentConfig,
        memory_config: MemoryConfig,
        catalogue: Catalogue,
        roles: BiLLPRoles,
        item_index: ItemIndex,
        shortlister: ShortlistBuilder,
        memories: AgentMemories | None,
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
        self.rules = rules or UserRules(value_min=min(0.0, config.quit_value))
        self.planner_echo = EchoDetector([roles.planner.template_source()])
        self.reflector_echo = EchoDetector([roles.reflector.template_source()])

    def clip_value(self, value: float) -> float:
        """``value`` moved into the Critic's scale."""
        return float(min(self.rules.value_max, max(self.rules.value_min, value)))

    def state_text(self, items: list[int]) -> str:
        """The text that identifies a state in memories (BiLLP's "viewing history is [...]")."""
        titles = "; ".join(self.catalogue[i].label for i in items)
        return f"The user's recent movies are [{titles}]"

    def labels(self, items: list[int]) -> list[str]:
        return [self.catalogue[i].label for i in items]


class EpisodeState:
    """One episode's state: the user, what was recommended and learnt, and the seeds."""

    def __init__(self, core: BiLLPCore, episode_key: str, seed: int) -> None:
        self.p = core
        self.cfg = core.config
        self.key = episode_key
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.user_id = -1
        self.history: list[int] = []
        self.recommended: list[int] = []
        self.steps: list[StepView] = []
        self.reflections: list[str] = []
        self.retrieved: list[RetrievedReflection] = []
        self.lesson_lift: dict[str, float] = {}
        """The retrieved lessons' mean lift per genre (``agent.genre_order = "lessons"``)."""
        self.overlap_limit: float | None = core.config.fixed_overlap_limit
        """The genre overlap with the last recommendation that shortlisted candidates must
        stay below (``agent.lesson_overlap_limit`` or ``agent.fixed_overlap_limit``; None:
        no limit)."""
        self.value: float | None = None
        """V(s) of the current state, once estimated (micro-learning)."""
        self.value_origin: tuple[str, float | None] | None = None
        """Where ``value`` came from: its source and the similarity consulted."""
        self.writes = MemoryWrites()
        self.td_log: list[TDRecord] = []
        """The episode's TD updates in order (``memory.shuffle_rewards`` redoes them)."""
        self.pending_thought: str | None = None
        """The last plan, shown with its step in later prompts."""
        self.quit_info: dict[str, Any] = {}
        self._role_calls: dict[tuple[int, str], int] = {}
        self.next_plan: asyncio.Task[PlannedStep] | None = None
        """The coming step's Planner request, started when the last step was observed."""

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

    def last_recommended(self) -> list[int]:
        """The last ``agent.hint_window`` recommendations (none when the window is 0)."""
        window = self.cfg.hint_window
        return self.recommended[-window:] if window > 0 else []

    def recent(self) -> list[int]:
        """The items that make up the current state."""
        return (self.history + self.recommended)[-self.cfg.state_window :]

    def take_prefetched_plan(self) -> asyncio.Task[PlannedStep] | None:
        """The Planner request started for this step, if any (handed over once)."""
        task, self.next_plan = self.next_plan, None
        return task
