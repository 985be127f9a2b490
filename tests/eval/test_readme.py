"""README's results table: generated from the specs and JSONs; out of date fails, stale does
not."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest
import reproduce
from pipeline.provenance import collect
from pipeline.readme import BEGIN, END, ReadmeError, current_table, replace_table

from tests.eval.conftest import REPO, write_result


def test_replace_and_read_back() -> None:
    text = f"head\n{BEGIN}\nold table\n{END}\ntail\n"
    new = replace_table(text, "| a |\n")
    assert new == f"head\n{BEGIN}\n| a |\n{END}\ntail\n"
    assert current_table(new) == "| a |\n"
    with pytest.raises(ReadmeError, match="markers"):
        replace_table("no markers\n", "| a |\n")


def test_the_repository_readme_is_up_to_date() -> None:
    """Fails when README's results table differs from the one the specs and committed JSONs
    give today (a stale result is fine as long as the table says so)."""
    assert reproduce.main(["--readme", "--check"]) == 0, (
        "README's results table is out of date: run python eval/reproduce.py --readme"
    )


def test_stale_is_shown_not_failed(tiny_repo: Path) -> None:
    args = ["--root", str(tiny_repo)]
    data = {
        "provenance": collect("python calib.py", 65.0, root=tiny_repo).model_dump(),
        "share": {"mean": 0.7, "low": 0.6, "high": 0.8},
    }
    write_result(tiny_repo, "calib", data)
    assert reproduce.main([*args, "--readme", "--check"]) == 1  # the table is empty
    assert reproduce.main([*args, "--readme"]) == 0
    assert reproduce.main([*args, "--readme", "--check"]) == 0
    readme = (tiny_repo / "README.md").read_text()
    assert "| calib | `python calib.py` | a calibration | `results/calib.md` | fresh | 65 s |" in (
        readme
    )
    assert "share: 0.7 [0.6, 0.8], met" in readme
    assert "| old |" in readme and "no JSON yet" in readme and "| bench |" in readme

    (tiny_repo / "billp" / "envs" / "quit.py").write_text("THRESHOLD = 3\n")
    assert reproduce.main([*args, "--readme", "--check"]) == 1  # "fresh" would hide it
    assert reproduce.main([*args, "--readme"]) == 0
    assert reproduce.main([*args, "--readme", "--check"]) == 0  # stale, and shown as stale
    assert "stale (envs changed)" in (tiny_repo / "README.md").read_text()

    write_result(tiny_repo, "calib", {**data, "share": {"mean": 0.5, "low": 0.4, "high": 0.6}})
    assert reproduce.main([*args, "--readme", "--check"]) == 1  # new numbers, old table


def test_committed_results_markdown_is_rendered_from_its_json() -> None:
    """A converted target's committed markdown is exactly its script's render of its JSON."""
    specs = reproduce.load_specs()
    for target in specs.targets:
        if not (target.json_path and target.markdown and target.automated and target.scripts):
            continue
        json_path = REPO / target.json_path
        if not json_path.exists():
            continue
        data = json.loads(json_path.read_text(encoding="utf-8"))
        if "provenance" not in data:
            continue
        module = importlib.import_module(Path(target.scripts[0]).stem)
        rendered = module.render(data)
        assert (REPO / target.markdown).read_text(encoding="utf-8") == rendered, target.name
