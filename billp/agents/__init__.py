"""Recommender policies: BiLLP and its ablations, and non-LLM baselines."""

from billp.agents.factory import build_policy
from billp.agents.prompts import PromptError, PromptLibrary
from billp.agents.protocol import (
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
    "Policy",
    "PromptError",
    "PromptLibrary",
    "Transition",
    "build_policy",
]
