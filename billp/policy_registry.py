"""Every policy ``--agent.name`` accepts, as data: the one list names, presets and docs come from.

Design. A :class:`PolicySpec` per policy holds its name, family, LLM preset (Planner, macro
and micro switches, reflection retrieval), a one-line description, what it knows of the
world (the README's agents table) and its builder as an import string,
``"package.module:function"``. A builder takes one :class:`billp.policy.build.PolicyInputs`
and returns the policy. The specs sit here, grouped by the package that implements them
(:data:`AGENT_POLICIES`, :data:`RL_POLICIES`), rather than being registered by those packages
at import time: :mod:`billp.config` needs the names and presets when it is imported and may
import no layer (import-linter's "shared modules" contract), so the registry is pure data in
a shared module. :mod:`billp.policy_factory`, above ``billp.agents`` and ``billp.rl``, imports
a builder only when its policy is built (torch loads only for RL policies); a test checks that
every builder lives in one of those two packages.

Adding a policy: write its module in ``billp/agents/`` or ``billp/rl/`` (the policy and a
``build(inputs)`` function), add one :class:`PolicySpec` to the package's tuple below, and
regenerate the README's table with ``python -m billp.config.policy_table --write-readme`` (a
test checks that the table is current). An LLM ablation needs no module: it is a spec with a new
:class:`LLMPreset` and the BiLLP builder. An RL policy also needs its trainer in ``billp.rl``
(the builder loads the checkpoint named after the policy). ``--agent.name``'s choices and
``--help``, the presets, ``AgentConfig.is_llm``, ``billp.config.LLM_AGENTS`` and
the RL policies' names (``names("rl")``) follow from the specs.

``python -m billp.config.policy_table`` lists the policies; ``--markdown`` prints the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Family = Literal["llm", "baseline", "rl"]
Retrieval = Literal["nearest", "recent", "useful"]
"""How the Planner's reflections are retrieved (:meth:`billp.memory.ReflectionMemory.retrieve`)."""


@dataclass(frozen=True)
class LLMPreset:
    """The BiLLP agent's switches a policy name stands for (``agent.*`` fields override)."""

    planner: bool
    macro: bool
    micro: bool
    retrieval: Retrieval = "nearest"


NO_LLM = LLMPreset(planner=False, macro=False, micro=False)
"""The switches of every policy that is not an LLM agent."""


@dataclass(frozen=True)
class PolicySpec:
    """One policy: how it is named, built and described.

    The fields after ``preset`` are the README table's columns on what the policy knows of
    the world (an empty string leaves the cell blank).
    """

    name: str
    family: Family
    builder: str
    """``"module:function"``; the function takes ``PolicyInputs`` and returns the policy."""
    description: str
    preset: LLMPreset = NO_LLM
    quit_rule: str = ""
    genre_hints: bool = False
    chooses_from: str = "whole catalogue"
    user_model: str = ""
    learns_from: str = "nothing"

    @property
    def is_llm(self) -> bool:
        """Whether the policy talks to a language model."""
        return self.family == "llm"


_BILLP = "billp.agents.billp_build:build"


def _llm(
    name: str, description: str, preset: LLMPreset, learns_from: str, prompts: str = "prompts"
) -> PolicySpec:
    return PolicySpec(
        name,
        "llm",
        _BILLP,
        description,
        preset,
        quit_rule=f"informed: in its {prompts}; uninformed: not told",
        genre_hints=True,
        chooses_from="shortlist",
        learns_from=learns_from,
    )


_REFLECTIONS = "its train-phase episodes (reflections)"
_RL = "billp.rl.policy:build"
_LOGS = "train users' logs (offline)"
_ONLINE = "simulated episodes of train users (online)"
_LE_PLAY = "LE state at play"
_ENDS_TRAINING = "ends its training episodes"


def _rl(
    name: str, description: str, *, learns_from: str, quit_rule: str = "", user_model: str = ""
) -> PolicySpec:
    return PolicySpec(
        name,
        "rl",
        _RL,
        description,
        quit_rule=quit_rule,
        user_model=user_model,
        learns_from=learns_from,
    )


AGENT_POLICIES: tuple[PolicySpec, ...] = (
    _llm(
        "billp",
        "BiLLP: Planner, Actor, Critic and Reflector with macro- and micro-learning.",
        LLMPreset(planner=True, macro=True, micro=True),
        "its train-phase episodes (memories)",
    ),
    _llm(
        "billp-no-macro",
        "BiLLP without reflections.",
        LLMPreset(planner=True, macro=False, micro=True),
        "its train-phase episodes (actor/critic memory)",
    ),
    _llm(
        "billp-no-micro",
        "BiLLP without the Critic and actor memory.",
        LLMPreset(planner=True, macro=True, micro=False),
        _REFLECTIONS,
    ),
    _llm(
        "reflexion",
        "Planner with the most recent reflections; no Critic.",
        LLMPreset(planner=True, macro=True, micro=False, retrieval="recent"),
        _REFLECTIONS,
    ),
    _llm(
        "react",
        "Planner and Actor, no learning.",
        LLMPreset(planner=True, macro=False, micro=False),
        "nothing",
    ),
    _llm(
        "actonly",
        "The Actor alone.",
        LLMPreset(planner=False, macro=False, micro=False),
        "nothing",
        prompts="prompt",
    ),
    PolicySpec(
        "random",
        "baseline",
        "billp.agents.baselines:build_random",
        "A uniformly random unseen item.",
    ),
    PolicySpec(
        "popularity",
        "baseline",
        "billp.agents.baselines:build_popularity",
        "The most popular unseen item of the training log.",
        learns_from="item counts of the log (held-out part excluded)",
    ),
    PolicySpec(
        "greedy",
        "baseline",
        "billp.agents.baselines:build_greedy",
        "Oracle: the argmax of the simulator's reward model.",
        user_model="✓ oracle: argmax of its reward model",
    ),
    PolicySpec(
        "greedy-diverse",
        "baseline",
        "billp.agents.baselines:build_greedy_diverse",
        "Oracle: the reward model's argmax among items the quit rule accepts.",
        quit_rule="✓ in code: repeat/similarity test",
        user_model="✓ oracle: argmax of its reward model",
    ),
)
"""Policies of :mod:`billp.agents`: the BiLLP agent's presets and the baselines."""

RL_POLICIES: tuple[PolicySpec, ...] = (
    _rl("sqn", "SQN on the train users' logs.", learns_from=_LOGS),
    _rl(
        "sqn-sm",
        "SQN with the LE state as input.",
        user_model=_LE_PLAY,
        learns_from=_LOGS,
    ),
    _rl(
        "sqn-rm",
        "SQN with LE rewards.",
        user_model="LE rewards in training",
        learns_from=_LOGS,
    ),
    _rl(
        "lea",
        "SQN with the LE's state, rewards and actions (LEA).",
        user_model=f"{_LE_PLAY}; LE rewards and actions in training",
        learns_from=_LOGS,
    ),
    _rl(
        "sqn-all",
        "SQN on every logged transition of the LE's users.",
        learns_from="every logged transition of the users the LE learned from",
    ),
    _rl(
        "dqn-matrix",
        "DQN trained online in the matrix simulator.",
        quit_rule=_ENDS_TRAINING,
        user_model="rewards by interaction",
        learns_from=_ONLINE,
    ),
    _rl(
        "dqn-le",
        "DQN trained online in the LE simulator.",
        quit_rule=_ENDS_TRAINING,
        user_model=f"{_LE_PLAY}; rewards by interaction",
        learns_from=_ONLINE,
    ),
    *(
        _rl(
            algo,
            f"{algo.upper()} trained offline on the logs.",
            quit_rule="cuts the logged episodes",
            user_model="buffer simulator's rewards label the logs",
            learns_from=_LOGS,
        )
        for algo in ("bcq", "cql", "crr")
    ),
    _rl(
        "a2c-matrix",
        "A2C trained online in the matrix simulator.",
        quit_rule=_ENDS_TRAINING,
        user_model="rewards by interaction",
        learns_from=_ONLINE,
    ),
    _rl(
        "a2c-le",
        "A2C trained online in the LE simulator.",
        quit_rule=_ENDS_TRAINING,
        user_model=f"{_LE_PLAY}; rewards by interaction",
        learns_from=_ONLINE,
    ),
)
"""Trained policies of :mod:`billp.rl` (``python -m billp.rl train`` first)."""

POLICIES: dict[str, PolicySpec] = {spec.name: spec for spec in (*AGENT_POLICIES, *RL_POLICIES)}
"""Every policy by name, in ``--help`` order."""
POLICY_NAMES: tuple[str, ...] = tuple(POLICIES)


def names(family: Family) -> tuple[str, ...]:
    """The names of ``family``'s policies, in registry order."""
    return tuple(spec.name for spec in POLICIES.values() if spec.family == family)


def policy_spec(name: str) -> PolicySpec:
    """The spec of ``name``.

    Raises:
        KeyError: no policy is registered under ``name``.
    """
    try:
        return POLICIES[name]
    except KeyError:
        raise KeyError(f"unknown policy {name!r}; known: {', '.join(POLICY_NAMES)}") from None
