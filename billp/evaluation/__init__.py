"""Metrics, comparisons, plots and reports computed from run directories alone (read through
:mod:`billp.records.read`); ``python -m billp.evaluation``.

Modules:

- :mod:`.metrics`: the metrics beyond those ``summary.json`` shares
  (:mod:`billp.summary.episodes`): diversity, popularity, end reasons, as weighted statistics;
- :mod:`.bootstrap`: seeded bootstrap (episodes, two-level over seeds, paired) and the
  paired permutation test;
- :mod:`.survival`: Kaplan-Meier survival of episode length (the cap censors);
- :mod:`.series`: metrics with intervals for each run and each group of seeds;
- :mod:`.output`, :mod:`.plots`, :mod:`.compare`, :mod:`.report`: tables, JSON/CSV,
  PNG plots, paired run comparison, the static HTML report;
- :mod:`.executors`: where the ``eval/`` sweeps' simulate runs execute;
- :mod:`.__main__`: the command line.

Kept light on purpose: importing this package imports neither matplotlib nor the data.
"""
