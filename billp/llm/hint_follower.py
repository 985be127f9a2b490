"""A scripted model that uses its memories as well as they can be used: it follows the
Actor's hints (an offline ceiling for the learning loop, with no language model).

``HintFollowingScriptedLLM`` answers like :class:`billp.llm.scripted.ScriptedLLM` (seeded,
schema-valid JSON, or one of a request's choices) except in two roles, where it reads the
rendered prompt:

* actor: the first candidate the prompt says "worked well" in similar situations, else
  a seeded draw among the candidates that are not said to have made things worse;
* critic: the session's mean rating as printed in the prompt ("... average 3.4"), else
  the typical rating it prints;
* planner: the first genre of the list it is offered (``agent.genre_order`` ranks that list,
  by the lessons' measured genre lifts with ``lessons``).

It shows the learning loop closing end to end through the real CLI without a language model
(tests), and bounds what memories can give a model that follows them (experiments: the same
learning curve with this model is the ceiling, with SmolLM2 between it and no memory); select
it with ``llm.backend = "scripted"`` and ``llm.scripted_policy = "follow-hints"``. It is not a
recommender of its own: the Reflector answers at random from its schema.
"""

from __future__ import annotations

import json
import random
import re

from billp.llm.messages import LLMRequest
from billp.llm.scripted import ScriptedLLM, request_seed

_ENCOURAGED = re.compile(r"these worked well: (.*)\.$", re.MULTILINE)
_DISCOURAGED = re.compile(r"these made things worse: (.*)\.$", re.MULTILINE)
_CANDIDATE = re.compile(r"^(\d+): (.*) \([^()]*\)$", re.MULTILINE)
_MEAN = re.compile(r"average (\d+(?:\.\d+)?)\.")
_TYPICAL = re.compile(r"typical rating is (\d+(?:\.\d+)?)\.")


class HintFollowingScriptedLLM(ScriptedLLM):
    """Scripted replies, except an Actor that follows hints and a Critic that reads means."""

    def generate(self, request: LLMRequest) -> str:
        prompt = request.messages[-1].content if request.messages else ""
        if request.role == "actor":
            return self._actor(request, prompt)
        if request.role == "planner":
            return self._planner(request)
        if request.role == "critic":
            found = _MEAN.search(prompt) or _TYPICAL.search(prompt)
            if found is not None and request.choices is not None:
                mean = float(found.group(1))
                return min(request.choices, key=lambda c: abs(float(c) - mean))
            if found is not None:
                return json.dumps({"value": float(found.group(1))})
        return super().generate(request)

    def _planner(self, request: LLMRequest) -> str:
        """The first genre of the list offered (its order carries the fresh and lesson
        ranking), so the ceiling follows the Planner's options as they are ranked."""
        if request.choices is not None:
            return request.choices[0]
        reply = json.loads(super().generate(request))
        genres = (request.response_schema or {}).get("properties", {}).get("genres", {})
        offered = genres.get("items", {}).get("enum", [])
        if offered:
            reply["genres"] = offered[:1]
        return json.dumps(reply)

    def _actor(self, request: LLMRequest, prompt: str) -> str:
        candidates = {title: int(item) for item, title in _CANDIDATE.findall(prompt)}
        if request.choices is not None:
            ids = [int(c) for c in request.choices]
        else:
            allowed = (request.response_schema or {}).get("properties", {}).get("item_id", {})
            ids = [int(i) for i in allowed.get("enum", candidates.values())]
        good = _ENCOURAGED.search(prompt)
        pick = None
        for title in good.group(1).split("; ") if good else []:
            if candidates.get(title) in ids:
                pick, reason = candidates[title], "worked before"
                break
        if pick is None:
            bad = _DISCOURAGED.search(prompt)
            avoid = {candidates.get(t) for t in (bad.group(1).split("; ") if bad else [])}
            pool = [i for i in ids if i not in avoid] or ids
            pick = random.Random(request_seed(self.seed, request)).choice(pool)
            reason = "no hint"
        if request.choices is not None:
            return str(pick)
        return json.dumps({"item_id": pick, "reason": reason})
