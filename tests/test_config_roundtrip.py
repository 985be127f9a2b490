"""Every field of the config tree survives config.toml exactly (property test)."""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from billp.config import (
    LEEvalCommandConfig,
    LETrainCommandConfig,
    RunConfig,
    config_to_toml_dict,
    load_config,
    load_model_config,
)

INT64 = 2**63 - 1
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)


def _bounds(metadata: list[Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for item in metadata:
        for name in ("ge", "gt", "le", "lt"):
            if getattr(item, name, None) is not None and isinstance(
                item, annotated_types.BaseMetadata
            ):
                found[name] = getattr(item, name)
    return found


def strategy_for(annotation: Any, metadata: list[Any]) -> st.SearchStrategy[Any]:
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        options = [a for a in get_args(annotation) if a is not type(None)]
        inner = st.one_of(*(strategy_for(a, metadata) for a in options))
        return st.none() | inner if len(options) < len(get_args(annotation)) else inner
    if origin is Literal:
        return st.sampled_from(get_args(annotation))
    if origin is list:
        return st.lists(strategy_for(get_args(annotation)[0], []), max_size=3)
    if origin is dict:
        _key, value = get_args(annotation)
        return st.dictionaries(TEXT, strategy_for(value, []), max_size=2)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return model_strategy(annotation)
    bounds = _bounds(metadata)
    if annotation is bool:
        return st.booleans()
    if annotation is int:
        low = bounds.get("ge", bounds["gt"] + 1 if "gt" in bounds else -INT64)
        high = bounds.get("le", bounds["lt"] - 1 if "lt" in bounds else INT64)
        return st.integers(low, high)
    if annotation is float:
        return st.floats(
            min_value=bounds.get("ge", bounds.get("gt")),
            max_value=bounds.get("le", bounds.get("lt")),
            exclude_min="gt" in bounds,
            exclude_max="lt" in bounds,
            allow_nan=False,
        )
    if annotation is str:
        return TEXT
    if annotation is Path:
        return st.lists(
            st.sampled_from(["a", "b c", "é", "..", "x.toml"]), min_size=1, max_size=3
        ).map(lambda parts: Path(*parts))
    raise NotImplementedError(f"no strategy for {annotation!r}")


def model_strategy(model: type[BaseModel]) -> st.SearchStrategy[BaseModel]:
    fields = {
        name: strategy_for(field.annotation, list(field.metadata))
        for name, field in model.model_fields.items()
    }
    return (
        st.fixed_dictionaries(fields)
        .map(lambda values: _build(model, values))
        .filter(lambda built: built is not None)
    )


def _build(model: type[BaseModel], values: dict[str, Any]) -> BaseModel | None:
    """``model(**values)``, or None when a cross-field rule rejects the combination (for
    example memory snapshots off the run's wave boundaries)."""
    try:
        return model(**values)
    except ValidationError:
        return None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model_strategy(RunConfig))
def test_every_field_round_trips_through_config_toml(tmp_path_factory: Any, config: Any) -> None:
    path = tmp_path_factory.mktemp("rt") / "config.toml"
    path.write_text(tomli_w.dumps(config_to_toml_dict(config)), encoding="utf-8")
    loaded = load_config(path)
    assert loaded.model_dump() == config.model_dump()


def test_none_values_come_back_as_none(tmp_path: Path) -> None:
    config = load_config(
        None, {"llm.server.block_size": None, "env.le.score_threads": None, "data.name": "none"}
    )
    path = tmp_path / "config.toml"
    path.write_text(tomli_w.dumps(config_to_toml_dict(config)), encoding="utf-8")
    loaded = load_config(path)
    assert loaded.llm.server.block_size is None
    assert loaded.env.le.score_threads is None
    assert loaded.data.name == "none"
    assert loaded == config


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model_strategy(LETrainCommandConfig), model_strategy(LEEvalCommandConfig))
def test_le_command_trees_round_trip_through_toml(
    tmp_path_factory: Any, train: Any, evaluate: Any
) -> None:
    folder = tmp_path_factory.mktemp("rt")
    for config in (train, evaluate):
        path = folder / "config.toml"
        path.write_text(tomli_w.dumps(config_to_toml_dict(config)), encoding="utf-8")
        loaded = load_model_config(type(config), path)
        assert loaded.model_dump() == config.model_dump()
