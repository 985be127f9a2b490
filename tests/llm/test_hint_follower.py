import json

from billp.agents.messages import plan_choices, plan_schema
from billp.llm.hint_follower import HintFollowingScriptedLLM
from tests.llm.test_scripted import reply, request_for

GENRES = ["War", "Drama", "Action"]  # in the order the Planner is offered them


def test_planner_takes_the_first_genre_offered_as_json() -> None:
    llm = HintFollowingScriptedLLM(seed=0)
    schema = plan_schema(GENRES, [], False, "none", False)
    for seed in range(5):
        answer = json.loads(reply(llm, request_for(schema, role="planner", seed=seed)))
        assert answer["genres"] == ["War"]


def test_planner_takes_the_first_choice_when_bare() -> None:
    llm = HintFollowingScriptedLLM(seed=0)
    request = request_for(None, role="planner", choices=list(plan_choices(GENRES)))
    assert reply(llm, request) == "War"
