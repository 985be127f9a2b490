"""``python eval/reproduce.py``: --list, --status, exit 2 on user errors before any run, and a
target that is interrupted and resumed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import reproduce

from tests.eval.conftest import REPO


def test_list_and_status_on_the_repository(capsys: pytest.CaptureFixture[str]) -> None:
    assert reproduce.main(["--list"]) == 0
    listed = capsys.readouterr().out
    assert "quit_calibration" in listed and "automated" in listed and "by hand" in listed
    assert reproduce.main(["--status"]) == 0
    status = capsys.readouterr().out
    assert "bench_throughput " in status and "no provenance" in status
    assert "no JSON yet" in status


def test_the_script_runs_as_a_command() -> None:
    done = subprocess.run(
        [sys.executable, "eval/reproduce.py", "--status"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "quit_calibration" in done.stdout


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["no_such_target"], "unknown target 'no_such_target'"),
        (["old"], "not automated yet"),
        (["--check"], "--check goes with --readme"),
        (["--list", "calib"], "take no targets"),
        (["--readme", "calib"], "takes no targets"),
    ],
)
def test_user_errors_exit_2(
    argv: list[str], message: str, tiny_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    work = tiny_repo / "work"
    assert reproduce.main(["--root", str(tiny_repo), "--work", str(work), *argv]) == 2
    assert message in capsys.readouterr().err
    assert not work.exists()  # nothing ran


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("[parts\n", "is not TOML"),
        ("[parts]\n[[targets]]\nname = 'x'\n", "does not validate"),
        (
            "[parts]\n[[targets]]\nname='x'\ncommand='c'\nmeasures='m'\nresult='r'\n"
            "manual='by hand'\ndepends=['nope']\n",
            "unknown parts",
        ),
    ],
)
def test_a_broken_spec_exits_2(
    spec: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "targets.toml"
    path.write_text(spec)
    assert reproduce.main(["--specs", str(path), "--status"]) == 2
    assert message in capsys.readouterr().err
    assert reproduce.main(["--specs", str(tmp_path / "absent.toml"), "--list"]) == 2


COUNT = (
    "import pathlib, sys; p = pathlib.Path(sys.argv[1]); "
    "p.write_text(str(int(p.read_text()) + 1) if p.exists() else '1')"
)
FLAKY = COUNT + "; sys.exit(3 if pathlib.Path(sys.argv[2]).exists() else 0)"


def test_an_interrupted_target_resumes_where_it_stopped(tiny_repo: Path) -> None:
    counts, stop = tiny_repo / "counts", tiny_repo / "stop"
    counts.mkdir()
    spec = tiny_repo / "eval" / "targets.toml"
    spec.write_text(
        spec.read_text()
        + f"""
[[targets]]
name = "long"
command = "`python long.py`"
measures = "three steps"
result = "`results/long.md`"
depends = ["prompts"]
steps = [
    ["python", "-c", "{COUNT}", "{{work}}/one"],
    ["python", "-c", "{FLAKY}", "{counts}/two", "{stop}"],
    ["python", "-c", "{COUNT}", "{counts}/three"],
]
"""
    )
    args = ["--root", str(tiny_repo), "--work", str(tiny_repo / "work"), "long"]

    def done() -> tuple[int, int, int]:
        ones = list((tiny_repo / "work" / "long").glob("*/one"))  # one folder per behaviour
        one = sum(int(p.read_text()) for p in ones)
        return (
            one,
            *(int(p.read_text()) if p.exists() else 0 for p in (counts / "two", counts / "three")),
        )

    stop.touch()
    assert reproduce.main(args) == 3  # the second step fails: the run stops there
    assert done() == (1, 1, 0)
    stop.unlink()
    assert reproduce.main(args) == 0  # resumed: step one is not done again
    assert done() == (1, 2, 1)
    assert reproduce.main(args) == 0  # all done: nothing runs
    assert done() == (1, 2, 1)
    assert reproduce.main([*args, "--restart"]) == 0  # afresh
    assert done() == (1, 3, 2)
    # A change to a part the target depends on makes its finished steps stale: they run
    # again, in a new work folder (a script resuming from the old one would mix behaviours).
    template = next((tiny_repo / "prompts").glob("*.j2"))
    template.write_text(template.read_text() + "changed\n")
    assert reproduce.main(args) == 0
    assert done() == (2, 4, 3)
    assert len(list((tiny_repo / "work" / "long").iterdir())) == 2
