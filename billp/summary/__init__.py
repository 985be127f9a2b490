"""What a run writes into ``summary.json``: episode point estimates, learning-loop statistics
and throughput. Below the runner (which writes it) and evaluation (which reads it)."""

from billp.summary.episodes import summarize

__all__ = [
    "summarize",
]
