"""Embedders and FAISS-backed memories: reflections, actor hints and critic values."""

from __future__ import annotations

from billp.memory.embedders import (
    EMBED_BATCH_SIZE,
    EMBED_CACHE_SIZE,
    Embedder,
    EmbedderError,
    HashEmbedder,
    MiniLMEmbedder,
    make_embedder,
    minilm_model_dir,
)
from billp.memory.stores import (
    ActorEntry,
    ActorHints,
    ActorMemory,
    AgentMemories,
    CriticEntry,
    CriticMemory,
    ReflectionEntry,
    ReflectionMemory,
)
from billp.memory.vector_store import MemoryHit, MemoryStoreError, VectorMemory

__all__ = [
    "EMBED_BATCH_SIZE",
    "EMBED_CACHE_SIZE",
    "ActorEntry",
    "ActorHints",
    "ActorMemory",
    "AgentMemories",
    "CriticEntry",
    "CriticMemory",
    "Embedder",
    "EmbedderError",
    "HashEmbedder",
    "MemoryHit",
    "MemoryStoreError",
    "MiniLMEmbedder",
    "ReflectionEntry",
    "ReflectionMemory",
    "VectorMemory",
    "make_embedder",
    "minilm_model_dir",
]
