"""The provenance block, its markdown header, and atomic results writes under injected faults."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from pipeline.provenance import (
    Provenance,
    collect,
    git_commit,
    header_markdown,
    machine,
    source,
    write_results,
)

from billp.common import faults


def test_machine_reads_model_cores_and_simd(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nmodel name\t: AMD EPYC 9654\nflags\t\t: fpu sse avx2 fma avx512f "
        "avx512_bf16 amx_tile\n\nprocessor\t: 1\nmodel name\t: AMD EPYC 9654\n"
    )
    found = machine(cpuinfo)
    assert found.cpu_model == "AMD EPYC 9654"
    assert found.simd == ["avx2", "fma", "avx512f", "avx512_bf16", "amx_tile"]
    assert found.cores >= 1


def test_collect_and_header(tiny_repo: Path) -> None:
    prov = collect(
        ["python", "calib.py", "--goal", "0.8"],
        125.0,
        model="none",
        knowledge="informed",
        users="train users",
        root=tiny_repo,
    )
    assert prov.command == "python calib.py --goal 0.8"
    assert set(prov.fingerprint) == {"prompts", "envs", "calib.py"}
    head = header_markdown("Calibration", prov)
    for text in ("`python calib.py --goal 0.8`", "2 min", "informed", "train users", " UTC"):
        assert text in head
    assert head.startswith("<!-- generated")


def _render(data: dict) -> str:
    return f"# value {data['value']}\n"


def _data(root: Path, value: int) -> dict:
    return {"provenance": collect("python calib.py", 1.0, root=root).model_dump(), "value": value}


def test_write_results_renders_from_the_json(tiny_repo: Path) -> None:
    out_json, out_md = tiny_repo / "results" / "r.json", tiny_repo / "results" / "r.md"
    write_results(out_json, out_md, _data(tiny_repo, 1), _render)
    written = json.loads(out_json.read_text())
    Provenance.model_validate(written["provenance"])
    assert out_md.read_text() == _render(written)
    with pytest.raises(ValueError, match="provenance"):
        write_results(out_json, out_md, {"value": 2}, _render)
    assert json.loads(out_json.read_text())["value"] == 1


@pytest.mark.parametrize(
    ("match", "stage"),
    [("r.json", "atomic.mid"), ("r.json", "atomic.rename"), ("r.md", "atomic.mid")],
)
def test_a_failed_write_leaves_the_old_file(tiny_repo: Path, match: str, stage: str) -> None:
    out_json, out_md = tiny_repo / "results" / "r.json", tiny_repo / "results" / "r.md"
    write_results(out_json, out_md, _data(tiny_repo, 1), _render)
    old = {p: p.read_bytes() for p in (out_json, out_md)}
    faults.configure({"errno": "ENOSPC", "match": match, "stage": stage})
    try:
        with pytest.raises(OSError, match="No space left"):
            write_results(out_json, out_md, _data(tiny_repo, 2), _render)
    finally:
        faults.configure(None)
    failed = tiny_repo / "results" / match
    assert failed.read_bytes() == old[failed]  # the old file, whole
    assert json.loads(out_json.read_text())["value"] in (1, 2)
    assert not list((tiny_repo / "results").glob(".*.tmp"))  # no temporary file left
    if match == "r.json":  # the JSON failed first: the markdown was not touched either
        assert out_md.read_bytes() == old[out_md]


def test_commit_and_dirty_flag(tiny_repo: Path) -> None:
    assert git_commit(tiny_repo) == ("unknown", True)  # not a git work tree
    git = ["git", "-C", str(tiny_repo), "-c", "user.name=t", "-c", "user.email=t@t.invalid"]
    subprocess.run(["git", "init", "-q", str(tiny_repo)], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "tiny"], check=True)
    head = subprocess.run(
        [*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert git_commit(tiny_repo) == (head, False)
    (tiny_repo / "prompts" / "actor.j2").write_text("edited\n")
    assert git_commit(tiny_repo) == (head, True)
    assert "(with uncommitted changes)" in header_markdown("T", collect("c", 1.0, root=tiny_repo))


def test_provenance_is_what_the_run_started_from(tiny_repo: Path) -> None:
    """A long run's tree may change under it: the commit, dirty flag and fingerprint are
    those read when it started."""
    git = ["git", "-C", str(tiny_repo), "-c", "user.name=t", "-c", "user.email=t@t.invalid"]
    subprocess.run(["git", "init", "-q", str(tiny_repo)], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "tiny"], check=True)
    at_start = source(tiny_repo)
    (tiny_repo / "prompts" / "actor.j2").write_text("edited during the run\n")
    prov = collect("c", 1.0, root=tiny_repo, started=at_start)
    assert (prov.commit, prov.dirty, prov.fingerprint) == (
        at_start.commit,
        False,
        at_start.fingerprint,
    )
    assert collect("c", 1.0, root=tiny_repo).fingerprint != at_start.fingerprint
