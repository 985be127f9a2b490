import pytest
from pydantic import ValidationError

from billp.agents.billp_reflect import left_overlap
from billp.agents.lesson_signals import leaving_overlap, lesson_lift
from billp.agents.messages import StepView
from billp.agents.shortlist import ShortlistBuilder
from billp.config import AgentConfig
from billp.data import Catalogue


def test_lesson_lift_averages_over_the_lessons_that_measured_a_genre() -> None:
    lift = lesson_lift([{"Drama": 1.0, "Horror": -1.0}, {"Drama": 0.0}, {}])
    assert lift == {"Drama": 0.5, "Horror": -1.0}
    assert lesson_lift([]) == {}


def test_leaving_overlap_is_the_least_overlap_users_left_after() -> None:
    assert leaving_overlap([None, 1.0, 0.5]) == 0.5
    assert leaving_overlap([0.0, 0.75]) == 0.75  # no shared genre: nothing to avoid
    assert leaving_overlap([0.0]) is None
    assert leaving_overlap([None, None]) is None
    assert leaving_overlap([]) is None


def test_left_overlap_measures_the_last_two_movies_when_the_user_left() -> None:
    steps = [
        StepView(step=1, title="A", genres=["Drama"], reward=4.0),
        StepView(step=2, title="B", genres=["Drama", "Romance"], reward=4.0),
    ]
    assert left_overlap(steps, left=True) == 0.5
    assert left_overlap(steps, left=False) is None
    assert left_overlap(steps[:1], left=True) is None


def test_shortlist_drops_candidates_too_close_to_the_last_recommendation(
    builder: ShortlistBuilder, catalogue: Catalogue
) -> None:
    # The toy catalogue: 0 Action, 1 Comedy, 2 Drama, 3 Action+Comedy, 4 Drama, 5 Horror.
    assert list(builder.genre_overlap(0)) == [1.0, 0.0, 0.0, 0.5, 0.0, 0.0]
    free = builder.build(size=4, recent=[2], exclude={2})
    limited = builder.build(size=4, recent=[2], exclude={2}, overlap_limit=(2, 1.0))
    assert 4 in free.item_ids
    # Drama after Drama: overlap 1.0 reaches the limit; the other four are kept.
    assert sorted(limited.item_ids) == [0, 1, 3, 5]
    # A limit that would leave fewer than `size` items is not applied.
    everything = builder.build(size=6, recent=[2], exclude=set(), overlap_limit=(2, 0.0))
    assert len(everything.item_ids) == 6


def test_a_fixed_overlap_limit_excludes_learning_one() -> None:
    assert AgentConfig(fixed_overlap_limit=0.5).fixed_overlap_limit == 0.5
    with pytest.raises(ValidationError, match="exclude each other"):
        AgentConfig(fixed_overlap_limit=0.5, lesson_overlap_limit=True)
