"""Run episodes of a policy against a simulated user and write the run directory
(through :mod:`billp.records`).

- :mod:`~billp.runner.plan`: which episodes a run plays, their seeds and waves;
- :mod:`~billp.runner.episodes`: one episode, a wave and its memory commits, a phase;
- :mod:`~billp.runner.progress`: progress on stderr;
- :mod:`~billp.runner.run`: a run from config to ``summary.json``, and ``--resume``.
"""

from billp.runner.episodes import RunContext, WaveSequencer, env_threads
from billp.runner.plan import derive_seed, plan_episodes, plan_waves
from billp.runner.run import execute, resume, server_summary

__all__ = [
    "RunContext",
    "WaveSequencer",
    "derive_seed",
    "env_threads",
    "execute",
    "plan_episodes",
    "plan_waves",
    "resume",
    "server_summary",
]
