"""Embedders and FAISS-backed memories: reflections, actor hints and critic values."""

from __future__ import annotations

from billp.memory.embedders import Embedder, HashEmbedder, make_embedder
from billp.memory.stores import AgentMemories, ReflectionEntry

__all__ = [
    "AgentMemories",
    "Embedder",
    "HashEmbedder",
    "ReflectionEntry",
    "make_embedder",
]
