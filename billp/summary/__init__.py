"""What a run writes into ``summary.json``: episode point estimates, learning-loop statistics
and throughput. Below the runner (which writes it) and evaluation (which reads it)."""

from billp.summary.episodes import summarize, summarize_episodes, throughput
from billp.summary.loop_stats import PhaseLoopStats, loop_stats_by_phase

__all__ = [
    "PhaseLoopStats",
    "loop_stats_by_phase",
    "summarize",
    "summarize_episodes",
    "throughput",
]
