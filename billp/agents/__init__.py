"""Recommender policies: BiLLP and its ablations, and non-LLM baselines (registered in
:mod:`billp.policy_registry`, built by name in :mod:`billp.policy_factory`; the protocol they
implement is :mod:`billp.policy`)."""

from billp.agents.prompts import PromptLibrary

__all__ = [
    "PromptLibrary",
]
