"""The policy protocol shared by LLM agents, baselines and RL recommenders (below both)."""

from billp.policy.memoryless import MemorylessEpisode
from billp.policy.protocol import (
    EpisodeAgent,
    EpisodeSummary,
    MemoryWrites,
    Policy,
    Transition,
)

__all__ = [
    "EpisodeAgent",
    "EpisodeSummary",
    "MemoryWrites",
    "MemorylessEpisode",
    "Policy",
    "Transition",
]
