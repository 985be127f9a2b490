"""Run episodes of a policy against a simulated user and write the run directory
(through :mod:`billp.records`).

- :mod:`~billp.runner.plan`: which episodes a run plays, their seeds and waves;
- :mod:`~billp.runner.episodes`: one episode, a wave and its memory commits, a phase;
- :mod:`~billp.runner.progress`: progress on stderr;
- :mod:`~billp.runner.run`: a run from config to ``summary.json``, and ``--resume``.
"""

from billp.runner.episodes import (
    RunContext,
    WaveSequencer,
    commit_wave,
    env_threads,
    learns_from,
    run_episode,
    run_phase,
    run_wave,
    snapshot_memories,
)
from billp.runner.plan import EpisodeSpec, derive_seed, plan_episodes, plan_waves, run_name
from billp.runner.progress import PlainProgress
from billp.runner.run import RunResult, execute, prepare_run_dir, resume, server_summary

__all__ = [
    "EpisodeSpec",
    "PlainProgress",
    "RunContext",
    "RunResult",
    "WaveSequencer",
    "commit_wave",
    "derive_seed",
    "env_threads",
    "execute",
    "learns_from",
    "plan_episodes",
    "plan_waves",
    "prepare_run_dir",
    "resume",
    "run_episode",
    "run_name",
    "run_phase",
    "run_wave",
    "server_summary",
    "snapshot_memories",
]
