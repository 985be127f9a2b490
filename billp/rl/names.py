"""Agent names of the trained RL policies (no heavy imports: the agent factory reads this)."""

from __future__ import annotations

SQN_AGENT_NAMES: tuple[str, ...] = ("sqn", "sqn-sm", "sqn-rm", "lea")
"""SQN base, +SM, +RM and +LEA."""
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
