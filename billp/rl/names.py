"""Agent names of the trained RL policies (no heavy imports: the agent factory reads this)."""

from __future__ import annotations

SQN_AGENT_NAMES: tuple[str, ...] = ("sqn", "sqn-sm", "sqn-rm", "lea", "sqn-all")
"""SQN base, +SM, +RM, +LEA, and base on all the LE's users' transitions."""
TIANSHOU_AGENT_NAMES: tuple[str, ...] = (
    "dqn-matrix",
    "dqn-le",
    "bcq",
    "cql",
    "crr",
    "a2c-matrix",
    "a2c-le",
)
"""Offline baselines by algorithm; online ones by the simulator they trained in."""
RL_AGENT_NAMES: tuple[str, ...] = (*SQN_AGENT_NAMES, *TIANSHOU_AGENT_NAMES)
