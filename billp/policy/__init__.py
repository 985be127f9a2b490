"""The policy protocol shared by LLM agents, baselines and RL recommenders (below both)."""

from billp.policy.memoryless import MemorylessEpisode, RankedTrace, ScoredChoice, decide
from billp.policy.protocol import (
    EpisodeAgent,
    EpisodeSummary,
    LearningPolicy,
    MemoryWrites,
    Policy,
    Transition,
    learning,
)
from billp.policy.trace import Decision, EpisodeEnd, TraceRecord, step_record

__all__ = [
    "Decision",
    "EpisodeAgent",
    "EpisodeEnd",
    "EpisodeSummary",
    "LearningPolicy",
    "MemoryWrites",
    "MemorylessEpisode",
    "Policy",
    "RankedTrace",
    "ScoredChoice",
    "TraceRecord",
    "Transition",
    "decide",
    "learning",
    "step_record",
]
