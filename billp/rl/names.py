"""Agent names of the trained RL policies: those registered in :mod:`billp.policy_registry`."""

from __future__ import annotations

from billp.policy_registry import names

RL_AGENT_NAMES: tuple[str, ...] = names("rl")
"""SQN base, +SM, +RM, +LEA and base on all the LE's users' transitions; then the Tianshou
baselines (offline ones by algorithm, online ones by the simulator they trained in)."""
