"""What a run writes into ``summary.json``: the episode metrics it shares with the evaluation
(:mod:`.episodes`), learning-loop statistics (:mod:`.loop_stats`), wall time per phase
(:mod:`.phases`) and throughput and tokens per step (:mod:`.throughput`). Below the runner
(which writes it) and evaluation (which reads it)."""
