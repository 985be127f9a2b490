"""The policy protocol shared by LLM agents, baselines and RL recommenders (below both)."""

from billp.policy.memoryless import MemorylessEpisode, RankedTrace, ScoredChoice, decide
from billp.policy.protocol import EpisodeSummary, LearningPolicy, Policy, Transition, learning
from billp.policy.trace import Decision, EpisodeEnd, TraceRecord
from billp.policy.writes import MemoryWrites

__all__ = [
    "Decision",
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
]
