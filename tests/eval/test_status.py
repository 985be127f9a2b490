"""Fresh, stale (with the changed parts), missing, no provenance, no JSON yet."""

from __future__ import annotations

from pathlib import Path

from pipeline.fingerprint import fingerprint
from pipeline.provenance import collect
from pipeline.specs import load_specs
from pipeline.status import State, target_status

from tests.eval.conftest import write_result


def _statuses(root: Path) -> dict[str, object]:
    specs = load_specs(root / "eval" / "targets.toml")
    today = fingerprint(root, specs.parts, specs.script_files())
    return {t.name: target_status(t, root, today) for t in specs.targets}


def _result(root: Path) -> dict:
    return {"provenance": collect("python calib.py", 1.0, root=root).model_dump(), "x": 1}


def test_fresh_then_stale_on_its_own_parts_only(tiny_repo: Path) -> None:
    write_result(tiny_repo, "calib", _result(tiny_repo))
    write_result(tiny_repo, "bench", _result(tiny_repo))
    status = _statuses(tiny_repo)
    assert status["calib"].state is State.FRESH and status["bench"].state is State.FRESH

    (tiny_repo / "prompts" / "actor.j2").write_text("Pick an item the user has not seen.\n")
    status = _statuses(tiny_repo)
    assert status["calib"].state is State.FRESH  # calib does not depend on prompts
    assert status["bench"].state is State.STALE
    assert status["bench"].changed == ["prompts"]
    assert status["bench"].describe() == "stale (prompts changed)"

    (tiny_repo / "calib.py").write_text("print('calibrating better')\n")
    (tiny_repo / "billp" / "envs" / "quit.py").write_text("THRESHOLD = 3\n")
    status = _statuses(tiny_repo)
    assert status["calib"].changed == ["envs", "calib.py"]
    assert status["bench"].changed == ["prompts", "envs"]


def test_missing_no_provenance_and_no_json(tiny_repo: Path) -> None:
    write_result(tiny_repo, "bench", {"figures": {}})  # made before the pipeline
    status = _statuses(tiny_repo)
    assert status["calib"].state is State.MISSING
    assert status["bench"].state is State.NO_PROVENANCE
    assert status["old"].state is State.NO_JSON
    assert str(status["old"].describe()) == "no JSON yet"
