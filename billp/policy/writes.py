"""What one episode adds to an LLM agent's memories, buffered until the runner commits it."""

from __future__ import annotations

from pydantic import BaseModel, Field

from billp.memory import ReflectionEntry


class ReflectionWrite(BaseModel):
    situation: str
    entry: ReflectionEntry


class ActorWrite(BaseModel):
    state: str
    item_id: int
    sign: int


class CriticWrite(BaseModel):
    state: str
    value: float


class MemoryWrites(BaseModel):
    """Everything one episode adds to the memories."""

    reflections: list[ReflectionWrite] = Field(default_factory=list)
    actor: list[ActorWrite] = Field(default_factory=list)
    critic: list[CriticWrite] = Field(default_factory=list)

    def is_empty(self) -> bool:
        return not (self.reflections or self.actor or self.critic)
