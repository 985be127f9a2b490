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
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

import numpy as np

from billp.agents.echo import EchoDetector
from billp.agents.item_index import ItemIndex
from billp.agents.loop_trace import HintShown, LoopTrace, RetrievedReflection
from billp.agents.messages import (
    ActorChoice,
    ActorInput,
    CandidateView,
    CriticInput,
    CriticValue,
    Plan,
    PlannerInput,
    Reflection,
    ReflectorInput,
    StepView,
    UserRules,
    actor_schema,
    critic_schema,
    plan_schema,
    reflection_schema,
)
from billp.agents.roles import Role
from billp.agents.shortlist import ShortlistBuilder, exploration_genres
from billp.config import AgentConfig, MemoryConfig
from billp.data import Catalogue
from billp.llm import ChatMessage
from billp.memory import AgentMemories, Embedder, ReflectionEntry
from billp.policy.protocol import (
    ActorWrite,
    CriticWrite,
    EpisodeSummary,
    MemoryWrites,
    ReflectionWrite,
    Transition,
)

log = logging.getLogger(__name__)

FALLBACK_PLAN = "Recommend a well-liked movie from genres the user has not seen recently."
"""Plan used when the Planner's reply cannot be used."""
_INTEGER = re.compile(r"-?\d+")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_SEED_MODULUS = 2**31 - 1


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


def describe_outcome(summary: EpisodeSummary, catalogue: Catalogue, info: dict[str, Any]) -> str:
    """A sentence saying why the episode ended, for the Reflector."""
    if summary.truncated and not summary.terminated:
        return f"the session reached the step cap after {len(summary.items)} recommendations"
    if not summary.items:
        return "the session ended before any recommendation"
    last = catalogue[summary.items[-1]].label
    reason = summary.quit_reason
    if reason == "low_reward":
        return f"the user left because they disliked {last} (reward {summary.rewards[-1]:.1f})"
    if reason in {"too_similar", "repeat"}:
        other = info.get("similar_to")
        other_label = catalogue[other].label if isinstance(other, int) else "a recent movie"
        what = "repeated" if reason == "repeat" else "was too similar to"
        return f"the user left because {last} {what} {other_label}"
    return f"the user left after {last}"


class BiLLPPolicy:
    """The shared part of BiLLP and its ablations: config, roles, memories, shortlists."""

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
        self.value_origin: tuple[str, float | None] | None = None
        """Where ``value`` came from: its source and the similarity consulted."""
        self.writes = MemoryWrites()
        self._calls = 0
        self._trace: dict[str, Any] = {}
        self._episode_trace: dict[str, Any] = {}
        self._pending_thought: str | None = None
        self._quit_info: dict[str, Any] = {}

    # ------------------------------------------------------------ helpers
    def _seed(self) -> int:
        self._calls += 1
        return (self.seed * 1_000_003 + self._calls) % _SEED_MODULUS

    def _recent(self) -> list[int]:
        return (self.history + self.recommended)[-self.cfg.state_window :]

    async def _estimate_value(self, items: list[int]) -> tuple[float, dict[str, Any]]:
        """V(state) and its trace: the critic memory first, then the Critic LLM. The trace
        says the source ("memory" or "critic") and the similarity consulted, if any."""
        state = self.p.state_text(items)
        memories = self.p.memories
        hit = None
        if memories is not None:
            hit = memories.critic.lookup(state, self.p.memory_config.critic_hint_similarity)
        if hit is not None and hit[0] >= self.p.memory_config.critic_reuse_similarity:
            value = self.p.clip_value(hit[1])
            return value, {"source": "memory", "similarity": round(hit[0], 6), "value": value}
        remembered = self.p.clip_value(hit[1]) if hit is not None else None
        rules = self.p.rules
        mean = self._mean_reward()
        result = await self.p.roles.critic(
            CriticInput(
                history=self.p.labels(self.history[-self.cfg.prompt_history_length :]),
                session=self.steps,
                mean_reward=None if mean is None else round(mean, 2),
                remembered_value=remembered,
                rules=rules,
            ),
            fallback=lambda: CriticValue(value=self._fallback_value(remembered, mean)),
            seed=self._seed(),
            schema=critic_schema(rules),
            validate=self._check_value,
            repair=lambda raw: _repair_critic(raw, self.p.clip_value),
        )
        value = round(self.p.clip_value(result.value.value), 4)
        trace = {"source": "critic", "value": value, "call": result.trace.model_dump()}
        if hit is not None:
            trace["similarity"] = round(hit[0], 6)
        return value, trace

    def _mean_reward(self) -> float | None:
        """Mean reward of this session's steps so far (None before the first)."""
        return float(np.mean([s.reward for s in self.steps])) if self.steps else None

    def _fallback_value(self, remembered: float | None, mean: float | None) -> float:
        """A value when the Critic's reply is unusable: the remembered value of a similar
        state, else the session's mean reward, else the middle of the rating scale."""
        if remembered is not None:
            return remembered
        if mean is not None:
            return self.p.clip_value(mean)
        rules = self.p.rules
        return (rules.rating_min + rules.rating_max) / 2

    def _check_value(self, value: CriticValue) -> None:
        rules = self.p.rules
        if not rules.value_min <= value.value <= rules.value_max:
            raise ValueError(f"value must be within [{rules.value_min}, {rules.value_max}]")

    # ------------------------------------------------------------ protocol
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

    async def act(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> int:
        recent = self._recent()
        state = self.p.state_text(recent)
        trace: dict[str, Any] = {"calls": []}
        loop = LoopTrace(reflections=list(self.retrieved))
        if self.cfg.macro:
            trace["reflections"] = self.reflections
        if self.cfg.micro and self.value is None:
            self.value, value_trace = await self._estimate_value(recent)
            self.value_origin = (value_trace["source"], value_trace.get("similarity"))
            trace["value"] = value_trace
            if "call" in value_trace:
                trace["calls"].append(value_trace["call"])
        if self.value_origin is not None:
            loop.value_source, loop.value_similarity = self.value_origin  # type: ignore[assignment]
        hint_window = self.recommended[-self.cfg.hint_window :]
        genre_hints = exploration_genres(
            self.p.catalogue, hint_window, self.cfg.genre_hint_count, self.rng
        )
        plan = Plan()
        planner_turns: list[ChatMessage] = []
        if self.cfg.planner:
            scratch = (
                self.steps[-self.cfg.scratchpad_length :] if self.cfg.scratchpad_length else []
            )
            planned = await self.p.roles.planner(
                PlannerInput(
                    history=self.p.labels(self.history[-self.cfg.prompt_history_length :]),
                    reflections=self.reflections,
                    scratchpad=scratch,
                    genres=list(self.p.catalogue.genres),
                    step=len(self.recommended) + 1,
                    rules=self.p.rules,
                    free_text=self.cfg.free_text,
                ),
                fallback=lambda: Plan(thought=FALLBACK_PLAN, genres=genre_hints),
                seed=self._seed(),
                schema=plan_schema(
                    list(self.p.catalogue.genres),
                    self.p.labels(self.history[-self.cfg.prompt_history_length :]),
                    self.cfg.free_text,
                ),
                validate=self._check_plan,
                repair=self._repair_plan,
            )
            plan = planned.value
            planner_turns = planned.turns
            trace["plan"] = plan.model_dump()
            trace["calls"].append(planned.trace.model_dump())
        hints_enc: list[int] = []
        hints_dis: list[int] = []
        if self.cfg.micro and self.p.memories is not None:
            hints = self.p.memories.actor.hints(
                state, self.p.memory_config.actor_top_k, self.p.memory_config.actor_min_similarity
            )
            hints_enc, hints_dis = hints.encouraged, hints.discouraged
            trace["memory_hits"] = {"encouraged": hints_enc, "discouraged": hints_dis}
            shown = hints_enc[: self.cfg.shortlist_size] + hints_dis[: self.cfg.shortlist_size]
            loop.hints = [
                HintShown(
                    item_id=item,
                    sign=1 if hints.weights.get(item, 0.0) > 0 else -1,
                    weight=hints.weights.get(item, 0.0),
                )
                for item in shown
            ]
        seen = set(self.history) | set(self.recommended)
        shortlist = self.p.shortlister.build(
            size=self.cfg.shortlist_size,
            recent=recent,
            exclude=seen,
            plan_genres=plan.genres,
            hint_genres=genre_hints,
            encouraged=hints_enc,
            discouraged=hints_dis,
        )
        ids = shortlist.item_ids
        if not ids:
            raise RuntimeError(f"episode {self.key}: no unseen catalogue item is left to recommend")
        allowed = set(ids)

        def check(choice: ActorChoice) -> None:
            if choice.item_id not in allowed:
                raise ValueError(f"item_id {choice.item_id} is not one of the candidates")

        def repair(raw: str) -> ActorChoice | None:
            for match in _INTEGER.findall(raw):
                if int(match) in allowed:
                    return ActorChoice(item_id=int(match), reason="repaired: id found in free text")
            grounded = self.p.item_index.ground(raw, exclude=seen)
            if grounded is None:
                return None
            return ActorChoice(item_id=grounded, reason="grounded: nearest catalogue title")

        chosen = await self.p.roles.actor(
            ActorInput(
                plan=plan.text() or None,
                history=[]
                if planner_turns
                else self.p.labels(self.history[-self.cfg.prompt_history_length :]),
                candidates=[
                    CandidateView(
                        item_id=i,
                        title=self.p.catalogue[i].label,
                        genres=list(self.p.catalogue[i].genres),
                    )
                    for i in ids
                ],
                encouraged=self.p.labels(hints_enc[: len(ids)]),
                discouraged=self.p.labels(hints_dis[: len(ids)]),
                genre_hints=genre_hints,
                rules=self.p.rules,
            ),
            fallback=lambda: ActorChoice(item_id=ids[0], reason="fallback: top candidate"),
            seed=self._seed(),
            schema=actor_schema(ids),
            validate=check,
            repair=repair,
            prior=planner_turns,
        )
        trace["calls"].append(chosen.trace.model_dump())
        trace["genre_hints"] = genre_hints
        trace["shortlist"] = ids
        trace["shortlist_sources"] = {str(k): v for k, v in shortlist.sources.items()}
        trace["choice"] = chosen.value.model_dump()
        choice = chosen.value.item_id
        for hint in loop.hints:
            if hint.item_id == choice:
                loop.followed_hint = hint.sign
        trace["loop"] = loop
        self._pending_thought = plan.text() or None
        self._trace = trace
        return choice

    def _check_plan(self, plan: Plan) -> None:
        if self.cfg.free_text:
            _reject_echo(self.p.planner_echo, plan.thought, "the plan's thought is not a plan")

    def _repair_plan(self, raw: str) -> Plan | None:
        text = _own_text(self.p.planner_echo, raw) if self.cfg.free_text else None
        return None if text is None else Plan(thought=text, genres=[])

    async def observe(self, transition: Transition) -> None:
        item = transition.action
        previous = self._recent()
        self.recommended.append(item)
        if transition.terminated:
            self._quit_info = {"similar_to": transition.info.get("similar_to")}
        self.steps.append(
            StepView(
                step=len(self.recommended),
                title=self.p.catalogue[item].label,
                genres=list(self.p.catalogue[item].genres),
                reward=round(float(transition.reward), 4),
                thought=self._pending_thought,
            )
        )
        if not self.cfg.micro:
            return
        assert self.value is not None, "act() must run before observe()"
        if transition.terminated:
            reward, next_value = self.cfg.quit_value, 0.0
            value_trace: dict[str, Any] = {"source": "terminal", "value": 0.0}
        else:
            reward = float(transition.reward)
            next_value, value_trace = await self._estimate_value(self._recent())
            if "call" in value_trace:
                self._trace.setdefault("calls", []).append(value_trace["call"])
        gamma = self.cfg.gamma
        target = (1.0 - gamma) * reward + gamma * next_value
        advantage = target - self.value
        state = self.p.state_text(previous)
        self.writes.actor.append(
            ActorWrite(state=state, item_id=item, sign=1 if advantage >= 0 else -1)
        )
        self.writes.critic.append(CriticWrite(state=state, value=round(target, 6)))
        self._trace["critic"] = {
            "v": self.value,
            "v_next": next_value,
            "next": value_trace,
            "td_target": round(target, 6),
            "advantage": round(advantage, 6),
        }
        next_origin = (value_trace["source"], value_trace.get("similarity"))
        loop: LoopTrace = self._trace.get("loop") or LoopTrace()
        loop.next_value_source = next_origin[0]  # type: ignore[assignment]
        loop.v = round(self.value, 6)
        loop.v_next = round(next_value, 6)
        loop.reward_booked = round(reward, 6)
        loop.td_target = round(target, 6)
        loop.advantage = round(advantage, 6)
        self._trace["loop"] = loop
        self.value = next_value
        self.value_origin = next_origin

    async def end_episode(self, summary: EpisodeSummary) -> MemoryWrites:
        if self.cfg.macro and self.p.memories is not None:
            outcome = describe_outcome(summary, self.p.catalogue, self._quit_info)
            accepted = self.steps[:-1] if summary.terminated else self.steps
            result = await self.p.roles.reflector(
                ReflectorInput(
                    history=self.p.labels(self.history[-self.cfg.prompt_history_length :]),
                    steps=self.steps,
                    outcome=outcome,
                    length=len(accepted),
                    total_reward=round(sum(s.reward for s in accepted), 4),
                    genres=list(self.p.catalogue.genres),
                    rules=self.p.rules,
                    free_text=self.cfg.free_text,
                ),
                fallback=lambda: Reflection(
                    reflection=f"Last time {outcome}; vary genres and follow the user's tastes."
                ),
                seed=self._seed(),
                schema=reflection_schema(list(self.p.catalogue.genres), self.cfg.free_text),
                validate=self._check_reflection,
                repair=self._repair_reflection,
            )
            situation = self.p.state_text(self.history[-self.cfg.state_window :])
            self.writes.reflections.append(
                ReflectionWrite(
                    situation=situation,
                    entry=ReflectionEntry(
                        text=result.value.lesson(),
                        user_id=self.user_id,
                        episode=self.key,
                        length=len(accepted),
                        total_reward=round(sum(s.reward for s in accepted), 4),
                    ),
                )
            )
            self._episode_trace = {
                "outcome": outcome,
                "reflection": result.value.lesson(),
                "calls": [result.trace.model_dump()],
            }
        return self.writes

    def _check_reflection(self, reflection: Reflection) -> None:
        if not self.cfg.free_text:
            if not (reflection.prefer or reflection.avoid):
                raise ValueError("name at least one genre to prefer or to avoid")
            return
        _reject_echo(self.p.reflector_echo, reflection.reflection, "the reflection is not a lesson")

    def _repair_reflection(self, raw: str) -> Reflection | None:
        text = _own_text(self.p.reflector_echo, raw) if self.cfg.free_text else None
        return None if text is None else Reflection(reflection=text)

    def step_trace(self) -> dict[str, Any]:
        trace = dict(self._trace)
        loop = trace.get("loop")
        if isinstance(loop, LoopTrace):
            trace["loop"] = loop.model_dump(mode="json")
        return trace

    def episode_trace(self) -> dict[str, Any]:
        return self._episode_trace


REPAIRED_TEXT_MAX_CHARS = 200
"""Longest free text a repair keeps from an unparsable reply (plans and lessons)."""


def _reject_echo(detector: EchoDetector, text: str, what: str) -> None:
    """Raise (so the reply is re-asked) when ``text`` echoes its template or loops."""
    kind = detector.kind(text)
    if kind is not None:
        raise ValueError(f"{what} ({kind}): write your own sentence")


def _own_text(detector: EchoDetector, raw: str) -> str | None:
    """An unparsable reply's text, kept as free text unless it is empty or an echo."""
    text = raw.strip()[:REPAIRED_TEXT_MAX_CHARS]
    return text if text and detector.kind(text) is None else None


def _repair_critic(raw: str, clip: Callable[[float], float]) -> CriticValue | None:
    """Read a number out of free text, moved into the Critic's scale."""
    match = _NUMBER.search(raw)
    if match is None:
        return None
    return CriticValue(value=clip(float(match.group())))
