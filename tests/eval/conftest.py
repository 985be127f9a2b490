"""Fixtures for the results pipeline's tests: ``eval/`` on ``sys.path`` (as when its scripts
run) and a tiny repository in a temporary folder with a spec, a README and a results JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "eval") not in sys.path:
    sys.path.insert(0, str(REPO / "eval"))

from pipeline.readme import BEGIN, END  # noqa: E402

SPEC = """
[parts]
prompts = ["prompts/*.j2"]
envs = ["billp/envs/**/*.py"]

[[targets]]
name = "calib"
command = "`python calib.py`"
measures = "a calibration"
result = "`results/calib.md`"
steps = [["python", "-c", "pass"]]
json = "results/calib.json"
depends = ["envs"]
scripts = ["calib.py"]

[[targets.goals]]
name = "share"
estimate = "share.mean"
low = "share.low"
high = "share.high"
direction = "above"
threshold = 0.5

[[targets]]
name = "bench"
command = "`python bench.py`"
measures = "a benchmark"
result = "`results/bench.md`"
steps = [["python", "-c", "pass"]]
json = "results/bench.json"
depends = ["prompts", "envs"]

[[targets]]
name = "old"
command = "`python old.py`"
measures = "a hand-written result"
result = "`results/old.md`"
manual = "written by hand"
"""


@pytest.fixture
def tiny_repo(tmp_path: Path) -> Path:
    """A folder (not a git work tree) with two parts, a script, the spec and a README."""
    root = tmp_path / "repo"
    (root / "prompts").mkdir(parents=True)
    (root / "prompts" / "actor.j2").write_text("Pick an item.\n")
    (root / "billp" / "envs").mkdir(parents=True)
    (root / "billp" / "envs" / "quit.py").write_text("THRESHOLD = 2\n")
    (root / "calib.py").write_text("print('calibrating')\n")
    (root / "eval").mkdir()
    (root / "eval" / "targets.toml").write_text(SPEC)
    (root / "results").mkdir()
    (root / "README.md").write_text(f"# Tiny\n\n{BEGIN}\n{END}\n\nAfter.\n")
    return root


def write_result(root: Path, name: str, data: dict) -> Path:
    path = root / "results" / f"{name}.json"
    path.write_text(json.dumps(data))
    return path
