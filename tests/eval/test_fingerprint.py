"""The behaviour fingerprint: content hashes, stable across copies, sensitive to a template."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from pipeline.fingerprint import _matches, blob_id, changed_parts, fingerprint
from pipeline.specs import load_specs

from tests.eval.conftest import REPO

PARTS = {"prompts": ["prompts/*.j2"], "agents": ["billp/agents/**/*.py"]}


def test_blob_id_is_gits() -> None:
    data = b"The user's recent movies are [A; B]\n"
    done = subprocess.run(
        ["git", "hash-object", "--stdin"], input=data, capture_output=True, check=True
    )
    assert blob_id(data) == done.stdout.decode().strip()


@pytest.mark.parametrize(
    ("path", "pattern", "hit"),
    [
        ("prompts/actor.j2", "prompts/*.j2", True),
        ("prompts/old/actor.j2", "prompts/*.j2", False),
        ("billp/agents/a/b.py", "billp/agents/**/*.py", True),
        ("billp/agents/b.py", "billp/agents/**/*.py", True),
        ("billp/agents/b.pyc", "billp/agents/**/*.py", False),
        ("billp/le/checkpoints/x/le.safetensors", "billp/le/checkpoints/*/le.safetensors", True),
        ("billp/le/checkpoints/x/fidelity.json", "billp/le/checkpoints/*/le.safetensors", False),
        ("billp/le/checkpoints/x/y", "billp/le/checkpoints/**", True),
    ],
)
def test_patterns(path: str, pattern: str, hit: bool) -> None:
    assert _matches(path, pattern) is hit


def _copy(dest: Path) -> Path:
    shutil.copytree(REPO / "prompts", dest / "prompts")
    shutil.copytree(
        REPO / "billp" / "agents",
        dest / "billp" / "agents",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    return dest


def test_stable_across_copies_and_mtimes(tmp_path: Path) -> None:
    a = _copy(tmp_path / "a")
    b = _copy(tmp_path / "b")
    first = fingerprint(a, PARTS)
    for path in b.rglob("*.j2"):
        os.utime(path, (1, 1))  # an old mtime changes nothing: contents are hashed
    assert fingerprint(b, PARTS) == first == fingerprint(a, PARTS)


def test_a_template_edit_changes_its_part_only(tmp_path: Path) -> None:
    root = _copy(tmp_path / "a")
    before = fingerprint(root, PARTS)
    template = root / "prompts" / "planner.j2"
    template.write_text(template.read_text() + " Prefer genres the user has not seen.\n")
    after = fingerprint(root, PARTS)
    assert changed_parts(before, after, ["prompts", "agents"]) == ["prompts"]
    assert changed_parts(before, after, ["agents"]) == []


def test_in_a_git_tree_only_tracked_files_count(tmp_path: Path) -> None:
    root = _copy(tmp_path / "a")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(["git", "-C", str(root), "add", "."], check=True)
    tracked = fingerprint(root, PARTS)
    (root / "prompts" / "scratch.j2").write_text("not added\n")
    assert fingerprint(root, PARTS) == tracked  # a clean clone would not have it either
    subprocess.run(["git", "-C", str(root), "add", "prompts/scratch.j2"], check=True)
    assert fingerprint(root, PARTS)["prompts"] != tracked["prompts"]
    assert fingerprint(root, PARTS)["agents"] == tracked["agents"]


@pytest.mark.parametrize("error", [FileNotFoundError, PermissionError])
def test_a_git_that_cannot_run_falls_back_to_plain_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: type[OSError]
) -> None:
    root = _copy(tmp_path / "a")
    plain = fingerprint(root, PARTS)

    def broken(*args: object, **kwargs: object) -> None:
        raise error("git")

    monkeypatch.setattr("pipeline.fingerprint.subprocess.run", broken)
    assert fingerprint(root, PARTS) == plain


def test_the_repository_spec_covers_what_decides_behaviour() -> None:
    specs = load_specs()
    for part in ("prompts", "agents", "envs", "le", "llm", "memory", "config", "checkpoints"):
        assert part in specs.parts
    now = fingerprint(REPO, specs.parts, specs.script_files())
    assert "eval/quit_calibration.py" in now
    empty = fingerprint(REPO, {"none": ["no/such/*.py"]})["none"]
    assert all(now[p] != empty for p in specs.parts), "a part matches no tracked file"
