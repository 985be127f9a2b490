from billp.agents.genre_order import genres_by_frequency, planner_genres
from billp.data import Catalogue

# The toy catalogue's genres (tests/agents/conftest.py): Action, Comedy, Drama, Horror.


def test_genres_by_frequency_put_the_users_genres_first(catalogue: Catalogue) -> None:
    order = genres_by_frequency(catalogue, [0, 1])
    assert sorted(order) == sorted(catalogue.genres)
    shown = set().union(*(catalogue.genre_sets[i] for i in (0, 1)))
    assert set(order[: len(shown)]) == shown


def test_catalogue_and_history_orders(catalogue: Catalogue) -> None:
    assert planner_genres(catalogue, "catalogue", [2, 4], [0]) == list(catalogue.genres)
    # Drama twice, then the rest in catalogue order.
    assert planner_genres(catalogue, "history", [2, 4], [0])[0] == "Drama"


def test_fresh_order_moves_recent_genres_last(catalogue: Catalogue) -> None:
    order = planner_genres(catalogue, "fresh", [0, 0, 2], [0])  # Action recommended last
    assert order[-1] == "Action"
    assert order[0] == "Drama"


def test_lessons_order_ranks_genres_by_the_lessons_lift(catalogue: Catalogue) -> None:
    lift = {"Drama": -0.5, "Horror": 0.8}
    order = planner_genres(catalogue, "lessons", [2, 2, 1], [0], lift)
    # Not recent first: Horror (lifted), Comedy (unmeasured), Drama (rated below); then the
    # recent Action, whatever its lift.
    assert order == ["Horror", "Comedy", "Drama", "Action"]
    no_lessons = planner_genres(catalogue, "lessons", [2, 2, 1], [0], {})
    assert no_lessons == planner_genres(catalogue, "fresh", [2, 2, 1], [0])
    # Other orders ignore the lift.
    assert planner_genres(catalogue, "fresh", [2, 2, 1], [0], lift) == no_lessons
