"""SIGKILL a scripted run at seeded fault points (inside appends and memory saves), resume it,
and find exactly what an uninterrupted run leaves: episodes.jsonl byte for byte, memories."""

from __future__ import annotations

import random
import signal
from collections import defaultdict
from pathlib import Path

from tests.faults.conftest import (
    FIGURES,
    ForkServer,
    Reference,
    memory_state,
    run_args,
    run_dirs,
    steps_state,
)

SEED = 20261201
KILL_POINTS = 32
"""Kill points per session: one in every (stage, file) group of the reference run's fault
points, the rest drawn at random."""
RESUME_KILLS = 4
"""Of those, how many also kill the first resume (at a random early point) before resuming."""


def choose_points(trace: list[tuple[int, str, str]], rng: random.Random) -> list[int]:
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for number, stage, path in trace:
        groups[(stage, Path(path).name)].append(number)
    chosen = {rng.choice(numbers) for numbers in groups.values()}
    rest = sorted({n for n, _, _ in trace} - chosen)
    chosen |= set(rng.sample(rest, max(0, min(len(rest), KILL_POINTS - len(chosen)))))
    return sorted(chosen)


def finished_run_dir(forkserver: ForkServer, out: Path) -> Path:
    """Resume the run in ``out`` (or start it again when it died before its config existed)."""
    dirs = [d for d in run_dirs(out) if (d / "config.toml").is_file()]
    for partial in (d for d in run_dirs(out) if not (d / "config.toml").is_file()):
        result = forkserver.run(["--resume", str(partial)])
        assert result.rc == 2 and "config.toml is missing" in result.stderr, result.stderr
    if not dirs:
        result = forkserver.run(run_args(out))
        assert result.rc == 0, result.stderr[-3000:]
        dirs = [d for d in run_dirs(out) if (d / "config.toml").is_file()]
        assert len(dirs) == 1
        return dirs[0]
    (run_dir,) = dirs
    result = forkserver.run(["--resume", str(run_dir)])
    assert result.rc == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    return run_dir


def test_sigkill_at_seeded_points_then_resume_loses_nothing(
    forkserver: ForkServer, reference: Reference, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    points = choose_points(reference.trace, rng)
    stages = {(s, Path(p).name) for n, s, p in reference.trace if n in points}
    assert len(points) >= 30
    for required in (
        ("append.mid", "episodes.jsonl"),
        ("append.mid", "steps.jsonl"),
        ("atomic.mid", "index.faiss"),
        ("atomic.rename", "meta.json"),
    ):
        assert required in stages, required
    resume_kills = set(rng.sample(points, RESUME_KILLS))
    expected_keys = reference.episodes.count(b"\n")
    failures = []
    for number in points:
        out = tmp_path / f"kill-{number}"
        FIGURES.kill_points += 1
        result = forkserver.run(run_args(out), {"kill_at": number})
        assert result.rc == -signal.SIGKILL, (number, result.rc, result.stderr[-2000:])
        if number in resume_kills and any((d / "config.toml").is_file() for d in run_dirs(out)):
            (run_dir,) = [d for d in run_dirs(out) if (d / "config.toml").is_file()]
            FIGURES.kill_points += 1
            again = forkserver.run(["--resume", str(run_dir)], {"kill_at": rng.randint(1, 60)})
            assert again.rc in (0, -signal.SIGKILL), again.stderr[-2000:]
            if again.rc == -signal.SIGKILL:
                FIGURES.kill_points_survived += 1  # counted when the final resume passes below
            else:
                FIGURES.kill_points -= 1  # the resume ended before its kill point
        run_dir = finished_run_dir(forkserver, out)
        episodes = (run_dir / "episodes.jsonl").read_bytes()
        lost = expected_keys - episodes.count(b"\n")
        if episodes != reference.episodes:
            failures.append(f"kill at {number}: episodes.jsonl differs ({lost} lines fewer)")
            FIGURES.episodes_lost += max(lost, 0)
            FIGURES.episodes_repeated += max(-lost, 0)
            continue
        if memory_state(run_dir) != reference.memories:
            failures.append(f"kill at {number}: memories differ")
            continue
        if steps_state(run_dir) != reference.steps:
            failures.append(f"kill at {number}: steps.jsonl differs")
            continue
        FIGURES.kill_points_survived += 1
    assert not failures, failures
